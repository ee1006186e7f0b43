"""A progress line on a terminal, silence elsewhere (CI logs, pipes)."""

import sys
import time


class Progress:
    """``update(done, total)`` redraws one line on stderr when it is a terminal."""

    def __init__(self, label: str, enabled: bool = True, stream=None):
        self.stream = stream or sys.stderr
        self.label = label
        self.enabled = enabled and self.stream.isatty()
        self.last_draw = 0.0
        self.drawn = False

    def update(self, done: int, total):
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.last_draw < 0.1 and (total is None or done < total):
            return
        self.last_draw = now
        if total:
            width = 30
            filled = int(width * done / total)
            text = f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}"
        else:
            text = f"\r{self.label} {done} bytes"
        self.stream.write(text)
        self.stream.flush()
        self.drawn = True

    def clear(self):
        if self.drawn:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.drawn = False

    @classmethod
    def for_download(cls):
        """A callback for the data downloads: (file name, bytes so far, total)."""
        bars = {}

        def report(name, done, total):
            bar = bars.setdefault(name, cls(f"downloading {name}"))
            bar.update(done, total)
            if total is not None and done >= total:
                bar.clear()

        return report


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class EpochProgress:
    """Training progress within an epoch, with the epoch, the rate and the time left.

    On a terminal one line is redrawn on stderr:
    ``epoch 3/10 [#########.....] 30000/50000  21000 ex/s  0:01 left, run 0:17``.
    On a pipe (a log) there is no bar: a plain line at most every ``plain_every``
    seconds, so a long epoch still shows it is alive.
    """

    def __init__(self, epochs: int, stream=None, plain_every: float = 60.0):
        self.stream = stream or sys.stderr
        self.epochs, self.plain_every = epochs, plain_every
        self.terminal = self.stream.isatty()
        self.bar = Progress("", stream=self.stream)
        self.epoch, self.started, self.first, self.last_plain = 1, None, 0, None

    def start_epoch(self, epoch: int):
        self.epoch, self.started, self.first = epoch, None, 0

    def describe(self, done: int, total: int, now: float) -> str:
        elapsed = now - self.started if self.started is not None else 0.0
        rate = (done - self.first) / elapsed if elapsed > 0 else 0.0
        text = f"epoch {self.epoch}/{self.epochs}"
        if rate > 0:
            epoch_left = (total - done) / rate
            run_left = epoch_left + (self.epochs - self.epoch) * total / rate
            text += f"  {done}/{total}  {rate:.0f} ex/s  {_clock(epoch_left)} left, run {_clock(run_left)}"
        else:
            text += f"  {done}/{total}"
        return text

    def update(self, done: int, total: int):
        now = time.monotonic()
        if self.started is None:   # the first minibatch of this call: rates count from here
            self.started, self.first = now, done
            self.last_plain = self.last_plain or now
            return
        if self.terminal:
            if now - self.bar.last_draw < 0.1 and done < total:
                return
            self.bar.last_draw = now
            filled = int(30 * done / total)
            label, _, figures = self.describe(done, total, now).partition("  ")
            self.stream.write(f"\r{label} [{'#' * filled}{'.' * (30 - filled)}] {figures}\033[K")
            self.stream.flush()
            self.bar.drawn = True
        elif now - self.last_plain >= self.plain_every:
            self.last_plain = now
            self.stream.write(self.describe(done, total, now) + "\n")
            self.stream.flush()

    def clear(self):
        self.bar.clear()
