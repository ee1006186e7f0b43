"""SIGINT, SIGTERM and SIGHUP (a closed terminal or SSH connection) as requests to stop at
the next safe point.

Python runs a signal handler between bytecodes; one that raises
KeyboardInterrupt while a Numba kernel is returning surfaces as a
``SystemError: CPUDispatcher(...) returned a result with an exception set``
traceback. So during training and evaluation the handler only records the
signal, and the loops poll it at minibatch boundaries, where stopping is
safe and the state can be checkpointed. A second signal while the first is
being honoured stops at once (KeyboardInterrupt), for a user who cannot wait.
"""

from __future__ import annotations

import signal


class StopRequests:
    """Callable: True once SIGINT, SIGTERM or SIGHUP has arrived (after :meth:`install`)."""

    def __init__(self):
        self.signum: int | None = None
        self._previous = {}

    def install(self) -> "StopRequests":
        if self._previous:   # already installed
            return self
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            self._previous[sig] = signal.signal(sig, self._record)
        return self

    def uninstall(self):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def _record(self, signum, frame):
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum

    def __call__(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else "stop"

    @property
    def exit_code(self) -> int:
        """128 + the signal's number, as a shell reports a process stopped by it: 130, 143, 129."""
        return 128 + (self.signum or signal.SIGINT)

    def __enter__(self):
        return self.install()

    def __exit__(self, *exc):
        self.uninstall()
