"""The text beside a study's progress bar, shared by ``hprobust run`` and ``submit --wait``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from study.eta import format_duration


def progress_text(
    counts: Mapping[str, Any],
    *,
    eta_s: float | None = None,
    best: Mapping[str, float] | None = None,
    arms: Sequence[str] = (),
    status: str | None = None,
    paused: str | None = None,
) -> str:
    """``"2 running, 3 diverged · about 4 min left · best val_acc: sgd 0.919, insgd –"``.

    Zero counts are left out; ``status`` (``queued``, ``cancelled``, ...) leads when it is not
    ``running``; ``paused`` (why a live study waits: a dependency down) follows it; the best
    accuracies only when ``best`` is given.

        >>> progress_text({"running": 2, "diverged": 0, "failed": 1}, eta_s=250)
        '2 running, 1 failed · about 4 min left'
        >>> progress_text({"running": 0}, status="queued")
        'queued'
        >>> progress_text({"running": 1}, status="running", paused="MLflow unreachable")
        '1 running · paused: MLflow unreachable'
    """
    parts = []
    if status and status != "running":
        parts.append(status)
    counts_text = ", ".join(
        f"{counts[key]} {key}" for key in ("running", "diverged", "failed") if counts.get(key)
    )
    if counts_text:
        parts.append(counts_text)
    if paused:
        parts.append(f"paused: {paused}")
    if eta_s is not None and eta_s >= 1 and status in (None, "running") and not paused:
        parts.append(f"about {format_duration(eta_s)} left")
    if best is not None and arms:
        values = ", ".join(f"{arm} {best[arm]:.3f}" if arm in best else f"{arm} –" for arm in arms)
        parts.append(f"best val_acc: {values}")
    return " · ".join(parts)
