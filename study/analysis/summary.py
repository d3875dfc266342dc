"""``summarize``: the sensitivity summary of a study's trial table (DESIGN.md)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from study.analysis.compare import compare_arms
from study.analysis.importance import importances
from study.analysis.metrics import group_metrics, init_sensitivity
from study.analysis.table import TrialTable, build_table
from study.errors import ConfigError


def _check_positive(name: str, value: Any, *, allow_zero: bool = False) -> float:
    rule = ">= 0" if allow_zero else "> 0"
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"{name} must be a finite number {rule}, got {value!r}")
    x = float(value)
    if not math.isfinite(x) or x < 0 or (x == 0 and not allow_zero):
        raise ConfigError(f"{name} must be a finite number {rule}, got {value!r}")
    return x


def json_safe(value: Any) -> Any:
    """``value`` with numpy scalars/arrays turned into Python ones and NaN/inf into ``None``."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_safe(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        x = float(value)
        return x if math.isfinite(x) else None
    return value


def _arm_summary(table: TrialTable, *, bin_width: float, delta: float) -> dict[str, Any]:
    def metrics_of(rows: TrialTable):
        return group_metrics(
            rows.lr,
            rows.acc,
            rows.loss,
            rows.diverged,
            bin_width=bin_width,
            delta=delta,
            chance_loss=table.chance_loss,
        )

    metrics, _ = metrics_of(table)
    by_init: dict[str, Any] = {}
    best_bin: dict[str, float] = {}
    for init in sorted(set(table.init.tolist())):
        init_metrics, bins = metrics_of(table.select(table.init == init))
        by_init[init] = init_metrics
        best_bin[init] = float(bins.acc.max())
    expected = metrics.pop("expected_max")
    return {
        **metrics,
        "init_sensitivity": init_sensitivity(best_bin),
        "expected_max": expected,
        "importance": importances(table),
        "by_init": by_init,
    }


def summarize(
    trials: Iterable[Mapping[str, Any]] | Any,
    *,
    num_classes: int,
    bin_width: float = 0.25,
    delta: float = 0.01,
    arms: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The sensitivity summary of a trial table: per-arm metrics and paired comparisons.

    Every number is defined in DESIGN.md ("The sensitivity summary"); the choices it leaves
    open are stated in the docstrings of :mod:`study.analysis.table` (filtering, imputation),
    :mod:`study.analysis.metrics`, :mod:`study.analysis.compare` and
    :mod:`study.analysis.importance`.

    Args:
        trials: rows (mappings, or a pandas DataFrame) with ``arm, lr, init, init_scale, seed,
            val_acc, val_loss, diverged`` and optionally ``status``. Only finished rows count;
            the others are left out and counted in ``settings.excluded``.
        num_classes: number of classes C (chance accuracy 1/C, chance loss ln C).
        bin_width: width ``w`` of the log10(lr) bins, in decades.
        delta: tolerance of the lr window (bins within ``delta`` of the best bin mean).
        arms: the spec's arm order; its first arm is the baseline of the comparisons. Arms
            found in the rows but not listed follow in order of first appearance. Default:
            order of first appearance.

    Returns:
        A JSON-serializable dict ``{"arms": {arm: {...}}, "comparisons": [...],
        "settings": {...}}``; values that cannot be computed are ``None``, never NaN.

    Raises:
        ConfigError: a bad argument or row; the message names the field, rule and value.

    Example:
        >>> rows = [
        ...     {"arm": "sgd", "lr": 0.1, "init": "kaiming", "init_scale": 1.0, "seed": 0,
        ...      "val_acc": 0.9, "val_loss": 0.3, "diverged": False},
        ...     {"arm": "sgd", "lr": 1.0, "init": "kaiming", "init_scale": 1.0, "seed": 0,
        ...      "val_acc": None, "val_loss": None, "diverged": True},
        ... ]
        >>> s = summarize(rows, num_classes=10)
        >>> s["arms"]["sgd"]["best"], s["arms"]["sgd"]["worst"], s["arms"]["sgd"]["expected_max"]
        (0.9, 0.1, [0.5, 0.9])
    """
    bin_width = _check_positive("bin_width", bin_width)
    delta = _check_positive("delta", delta, allow_zero=True)
    table = build_table(trials, num_classes=num_classes, arms=arms)
    per_arm = {
        arm: _arm_summary(table.select(table.arm == arm), bin_width=bin_width, delta=delta)
        for arm in table.arms
    }
    comparisons = []
    if table.arms:
        baseline = table.arms[0]
        base = table.select(table.arm == baseline)
        for arm in table.arms[1:]:
            comparisons.append(
                compare_arms(
                    table.select(table.arm == arm), base, arm_name=arm, baseline_name=baseline
                )
            )
    settings = {
        "bin_width": bin_width,
        "delta": delta,
        "num_classes": table.num_classes,
        "chance_acc": table.chance_acc,
        "chance_loss": table.chance_loss,
        "baseline": table.arms[0] if table.arms else None,
        "n_rows": table.n_rows,
        "n_used": len(table),
        "excluded": dict(table.excluded),
        "nonfinite_as_diverged": table.nonfinite_as_diverged,
    }
    return json_safe({"arms": per_arm, "comparisons": comparisons, "settings": settings})
