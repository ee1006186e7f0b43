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
