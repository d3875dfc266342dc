"""Time left in a study, from the pace of its recent trials.

Trials end in bursts (``max_concurrent_trials`` at a time, and a poll sees several at once),
so the time between two updates says little. :class:`Eta` measures the pace over the last
``window`` completed trials, from the moment the trial before them completed (or the first
observation) to now::

    >>> eta = Eta(total=10, window=4)
    >>> eta.update(0, now=0.0) is None     # nothing done yet: no estimate
    True
    >>> eta.update(2, now=10.0)            # 2 done in 10 s: 8 left at 0.2/s
    40.0
    >>> eta.update(4, now=20.0)            # 4 in 20 s
    30.0
    >>> eta.update(6, now=30.0)            # the last 4 (2 -> 6) took 20 s: 4 left
    20.0
    >>> eta.update(6, now=35.0)            # no new trial: 4 took 25 s since trial 2
    25.0
"""

from __future__ import annotations

import time


class Eta:
    """Seconds left for ``total`` trials from the pace of the last ``window`` completions."""

    def __init__(self, total: int, *, window: int = 8) -> None:
        self.total = int(total)
        self.window = max(1, int(window))
        self._events: list[tuple[float, int]] = []  # (time, done) when done changed

    def update(self, done: int, *, now: float | None = None) -> float | None:
        """Record that ``done`` trials have ended by ``now`` (monotonic seconds); return the
        seconds left, or None before any trial has ended since the first observation."""
        now = time.monotonic() if now is None else float(now)
        done = int(done)
        if not self._events or done != self._events[-1][1]:
            self._events.append((now, done))
        start_t, start_done = self._events[0]
        for t, d in self._events:  # the earliest point with at most `window` completions since
            if done - d <= self.window:
                start_t, start_done = t, d
                break
        del self._events[: max(0, len(self._events) - 4 * self.window)]
        finished = done - start_done
        elapsed = now - start_t
        if finished <= 0 or elapsed <= 0:
            return None
        left = max(0, self.total - done)
        return round(left * elapsed / finished, 1)


def format_duration(seconds: float | None) -> str:
    """``"45 s"``, ``"12 min"``, ``"1.5 h"``; ``"–"`` for None."""
    if seconds is None:
        return "–"
    seconds = max(0, round(seconds))
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"
