"""How long a grid still has to go, from the runs that finished so far.

The grid's processes take runs in order, ``lanes`` at a time: a run starts when one ends.
That is the model of this estimate: each run in progress started when the run before it
in its lane ended (the first ``lanes`` when the grid did), and every run takes the mean
duration of the runs this call trained. A run in progress is then counted with the time
it has already had, so two runs trained side by side are not counted one after the
other when the first of them ends. Runs found done before take no time and are not
counted in the mean.
"""

from __future__ import annotations

import heapq


class TimeLeft:
    """Feed it every finished run; ``seconds_left`` says how much wall time the rest need."""

    def __init__(self, runs: int, lanes: int, now: float):
        if runs < 0 or lanes < 1:
            raise ValueError(f"a grid has runs >= 0 and lanes >= 1, got {runs} and {lanes}")
        self.queued = runs
        self.starts: list[float] = []       # start times of the runs in progress, earliest first
        self.durations: list[float] = []
        for _ in range(min(lanes, runs)):
            self._start(now)

    def _start(self, now: float):
        self.queued -= 1
        heapq.heappush(self.starts, now)

    def finished(self, now: float, trained: bool = True):
        """A run ended at ``now``; ``trained``: it ran here (not found done before)."""
        start = heapq.heappop(self.starts)   # the run that began first ends first
        if trained:
            self.durations.append(now - start)
        if self.queued > 0:
            self._start(now)

    def seconds_left(self, now: float) -> float | None:
        """Wall seconds until the last run ends, or None before any run was trained here."""
        if not self.durations:
            return None
        if not self.starts:
            return 0.0
        duration = sum(self.durations) / len(self.durations)
        lanes = [max(now, start + duration) for start in self.starts]   # when each lane frees
        heapq.heapify(lanes)
        for _ in range(self.queued):
            heapq.heappush(lanes, heapq.heappop(lanes) + duration)
        return max(lanes) - now


__all__ = ["TimeLeft"]
