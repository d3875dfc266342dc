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
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from study.vocab import TRIAL_DONE, TrialStatus


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


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def study_eta(
    *,
    status: str,
    started_at: str | None,
    done_at_start: int | None,
    progress: Mapping[str, int],
    now: datetime | None = None,
) -> float | None:
    """Seconds left in a running study, from the trials that ended since its driver started.

    ``started_at`` is when the current run of the study's driver began (a resumed study's
    driver starts again) and ``done_at_start`` how many trials had ended by then (None: 0,
    a record from before segments were kept). Trials recorded before a resume took no time
    in this run, so they say nothing about its pace: without a trial ended since the start
    there is no estimate (None), never one that divides the time by trials done earlier.

        >>> p = {"total": 20, "pending": 7, "running": 2}     # 11 ended, 9 left
        >>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
        >>> study_eta(status="running", started_at=t0.isoformat(), done_at_start=11,
        ...           progress=p, now=t0.replace(second=5)) is None
        True
        >>> p = {"total": 20, "pending": 6, "running": 2}     # one more in 50 s: 8 left
        >>> study_eta(status="running", started_at=t0.isoformat(), done_at_start=11,
        ...           progress=p, now=t0.replace(second=50))
        400.0
    """
    started = _parse_time(started_at)
    if status != "running" or started is None:
        return None
    left = int(progress.get("pending", 0)) + int(progress.get("running", 0))
    done = int(progress.get("total", 0)) - left
    since = done - int(done_at_start or 0)
    if since <= 0:
        return None
    elapsed = ((now or datetime.now(UTC)) - started).total_seconds()
    return round(max(elapsed, 0.0) / since * left, 1)


def arm_eta(
    rows: Sequence[Mapping[str, Any]], planned: Mapping[str, int], *, slots: int
) -> float | None:
    """Seconds left in a study, arm by arm: each arm's trials not yet ended at the mean
    duration of that arm's finished trials, run ``slots`` at a time.

    Arms differ in speed (an optimizer's step costs more or less, a grid runs one arm after
    the other), so the pace of the trials finished so far says little about an arm none of
    whose trials has finished: that arm is taken at the mean of every finished trial until
    one of its own has. A running trial counts as half done; a failed one as done (it is not
    run again). ``rows``: trial rows (``arm``, ``status``, ``duration_s``); ``planned``:
    trials per arm; None before any trial has finished with a duration.

    Hand-worked: the fast arm has finished (4 x 10 s), the other has not started; two slots.
    The other arm is taken at 10 s a trial: 4 x 10 / 2 = 20 s.

        >>> done = {"arm": "sgd", "status": "finished", "duration_s": 10.0}
        >>> arm_eta([done] * 4, {"sgd": 4, "insgd": 4}, slots=2)
        20.0

    Its first trial took 30 s and one runs: sgd has 2 left at 10 s (20 s); insgd has 2 not
    started at 30 s (60 s) and one half done (15 s); (20 + 60 + 15) / 2 = 47.5 s.

        >>> rows = [done, done, {"arm": "insgd", "status": "finished", "duration_s": 30.0},
        ...         {"arm": "insgd", "status": "running", "duration_s": None}]
        >>> arm_eta(rows, {"sgd": 4, "insgd": 4}, slots=2)
        47.5
    """
    finished: dict[str, list[float]] = {}
    ended: dict[str, int] = {}
    running: dict[str, int] = {}
    for row in rows:
        arm, status = str(row.get("arm")), str(row.get("status"))
        if status in TRIAL_DONE or status == TrialStatus.FAILED:
            ended[arm] = ended.get(arm, 0) + 1
            duration = row.get("duration_s")
            if status in TRIAL_DONE and duration is not None and duration > 0:
                finished.setdefault(arm, []).append(float(duration))
        elif status == TrialStatus.RUNNING:
            running[arm] = running.get(arm, 0) + 1
    every = [d for durations in finished.values() for d in durations]
    if not every:
        return None
    overall = sum(every) / len(every)
    work = 0.0
    for arm, total in planned.items():
        own = finished.get(arm)
        per_trial = sum(own) / len(own) if own else overall
        in_flight = running.get(arm, 0)
        not_started = max(0, int(total) - ended.get(arm, 0) - in_flight)
        work += (not_started + 0.5 * in_flight) * per_trial
    return round(work / max(1, int(slots)), 1)


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
