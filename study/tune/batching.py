"""A trial's epochs handed to the driver in batches (:class:`EpochBatches`).

Ray Tune's function trainable reports synchronously: ``tune.report`` holds the trial's thread
until the driver has taken the result and asked for the next one, a round trip through the
driver's event loop for every epoch. For short epochs (a sweep's one-second trials, 0.1 s
epochs) that round trip is a tenth of the trial or more. A trial instead reports at most
every ``every_s`` seconds (and always its last epoch): each report is the latest epoch's
metrics, with the epochs before it since the last report under :data:`EPOCHS_KEY`, in order;
the recorder logs every one of them (:class:`study.tune.tracking.MlflowRecorder`), so the
records are the same epoch for epoch. Under ASHA, which decides at every reported iteration,
``every_s`` is 0: one report per epoch, as before. Imports only the standard library.

    >>> sent = []
    >>> clock = iter([0.0, 0.4, 0.8, 1.2, 1.3, 1.5]).__next__
    >>> report = EpochBatches(sent.append, every_s=1.0, last_epoch=5, clock=clock)
    >>> for epoch in range(1, 6):
    ...     report({"epoch": epoch})
    >>> [(r["epoch"], [e["epoch"] for e in r.get(EPOCHS_KEY, [])]) for r in sent]
    [(3, [1, 2]), (5, [4])]
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

#: Result key: the epochs reported before the result's own, since the previous report.
EPOCHS_KEY = "__epochs"
#: A trial reports to the driver at most this often, in seconds (its last epoch at once).
REPORT_EVERY_S = 1.0


class EpochBatches:
    """The ``report`` a trial's training loop calls once per epoch: it sends (``send``,
    e.g. ``tune.report``) when ``every_s`` seconds have passed since it started or last
    sent, when the epoch is the last (``epoch >= last_epoch``) or diverged, and on
    :meth:`flush`; otherwise it keeps the epoch for the next report."""

    def __init__(
        self,
        send: Callable[[dict[str, Any]], None],
        *,
        every_s: float,
        last_epoch: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.send = send
        self.every_s = float(every_s)
        self.last_epoch = int(last_epoch)
        self.clock = clock
        self._kept: list[dict[str, Any]] = []
        self._since = clock()

    def __call__(self, metrics: dict[str, Any]) -> None:
        self._kept.append(dict(metrics))
        last = bool(metrics.get("diverged")) or int(metrics.get("epoch") or 0) >= self.last_epoch
        now = self.clock()
        if last or now - self._since >= self.every_s:
            self._send(now)

    def flush(self) -> None:
        """Send the epochs kept, if any (the latest with the earlier ones under its key)."""
        self._send(self.clock())

    def __enter__(self) -> EpochBatches:
        return self

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> None:
        """The training loop is over: send what is kept. When it failed, the epochs it ran
        still reach the records, and the loop's own error is what is raised (a failing send
        then is dropped)."""
        if kind is None:
            self.flush()
            return
        with contextlib.suppress(Exception):
            self.flush()

    def _send(self, now: float) -> None:
        if not self._kept:
            return
        kept, self._kept = self._kept, []
        result = dict(kept[-1])
        if len(kept) > 1:
            result[EPOCHS_KEY] = kept[:-1]
        self._since = now
        self.send(result)
