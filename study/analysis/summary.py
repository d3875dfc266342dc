"""``summarize``: the robustness summary of a study's trial table (version 3; docs/summary.md
defines every number and works examples by hand)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from study.analysis.cells import build_cells
from study.analysis.compare import N_BOOTSTRAP, point_comparison
from study.analysis.design import MIN_POINTS, MIN_SEEDS, seeds_warning
from study.analysis.groups import Context, arm_summary, best_cell_index
from study.analysis.metrics import N_BAND_BOOTSTRAP
from study.analysis.replicates import replicate_comparisons
from study.analysis.schema import Summary
from study.analysis.table import TrialTable, build_table
from study.errors import ConfigError

DEFAULT_TOLERANCE = 0.02


def check_tolerance(value: Any) -> float:
    """``tolerance`` as a float in [0, 1), or a ConfigError naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"tolerance must be a number in [0, 1), got {value!r}")
    x = float(value)
    if not (math.isfinite(x) and 0.0 <= x < 1.0):
        raise ConfigError(f"tolerance must be a number in [0, 1), got {value!r}")
    return x


def check_lr_range(value: Any) -> tuple[float, float] | None:
    """``lr_range`` as ``(low, high)`` with 0 < low <= high, finite; or None."""
    if value is None:
        return None
    rule = "must be two finite numbers (low, high) with 0 < low <= high"
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"lr_range {rule}, got {value!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and 0 < low <= high):
        raise ConfigError(f"lr_range {rule}, got {value!r}")
    return low, high


def _reference(table: TrialTable, ctx_cells, tolerance: float, lr_range) -> dict[str, Any]:
    cells = ctx_cells
    ref: dict[str, Any] = {
        "best_acc": None,
        "best_loss": None,
        "good_threshold": None,
        "learned_threshold": None,
        "tolerance": tolerance,
        "chance_acc": table.chance_acc,
        "chance_loss": table.chance_loss,
        "lr_range": list(lr_range) if lr_range is not None else None,
        "best_cell": None,
    }
    if len(cells) == 0:
        return ref
    best_acc = float(cells.acc.max())
    best = best_cell_index(cells, np.arange(len(cells)), arm_first=True)
    ref.update(
        best_acc=best_acc,
        best_loss=float(np.minimum(cells.loss, table.chance_loss).min()),
        good_threshold=best_acc - tolerance,
        learned_threshold=(table.chance_acc + best_acc) / 2,
        best_cell={
            "lr": float(cells.lr[best]),
            "init": str(cells.init[best]),
            "init_scale": float(cells.init_scale[best]),
            "arm": table.arms[int(cells.arm[best])],
        },
    )
    return ref


def verdict(c: Mapping[str, Any], *, complete: bool = True) -> str:
    """The comparison's verdict, the first rule that holds (docs/summary.md): ``pending`` (the
    study has not ended), ``not_enough_data``, ``range_limited``, then from the AUC's and the
    window's replicate intervals ``mixed``, ``more_robust``, ``less_robust`` or
    ``no_clear_difference``."""
    if not complete:
        return "pending"
    auc, window = c["auc_diff_ci"], c["window_diff_ci"]
    if c["n_seeds"] < MIN_SEEDS or c["n_points"] < MIN_POINTS or auc is None or window is None:
        return "not_enough_data"
    if c["range_cut"]:
        return "range_limited"
    auc_up, auc_down = auc[0] > 0, auc[1] < 0
    window_up, window_down = window[0] > 0, window[1] < 0
    if (auc_up and window_down) or (auc_down and window_up):
        return "mixed"
    if auc_up:
        return "more_robust"
    if auc_down:
        return "less_robust"
    return "no_clear_difference"


def peak_comparison(
    by_b: Mapping[str, Any], by_a: Mapping[str, Any], names: tuple[str, str]
) -> dict[str, Any]:
    """``lr_shift_decades`` and ``range_cut`` of B against A from their ``by_init``
    (``names``: B's and A's)."""
    shifts = [
        math.log10(by_b[i]["best_lr"]) - math.log10(by_a[i]["best_lr"])
        for i in sorted(set(by_a) & set(by_b))
        if by_a[i]["best_lr"] is not None and by_b[i]["best_lr"] is not None
    ]
    cuts = [
        {"arm": name, "init": init, "end": end}
        for name, by in ((names[1], by_a), (names[0], by_b))
        for init in sorted(by)
        for end in by[init]["range_cut"]
    ]
    return {
        "lr_shift_decades": float(np.median(shifts)) if shifts else None,
        "range_cut": cuts,
    }


def further_out(lr_range: Sequence[float] | None, end: str) -> float | None:
    """The bound to try for a cut ``end``: one decade past the range's end."""
    if lr_range is None:
        return None
    return float(lr_range[0]) / 10.0 if end == "low" else float(lr_range[1]) * 10.0


def _warnings(
    table: TrialTable,
    arms: dict[str, dict[str, Any]],
    comparisons: list[dict[str, Any]],
    lr_range: Sequence[float] | None,
    learned: float | None,
) -> list[str]:
    out: list[str] = []
    if len(table) == 0:
        out.append("no finished trials: every number is null")
    for name, arm in arms.items():
        if arm["n_cells"] == 0:
            if len(table):
                out.append(f"arm {name}: no finished trials; its numbers are null")
            continue
        for init in arm["by_init"]:
            n_lrs = _n_lrs(table, name, init)
            if n_lrs < 2:
                out.append(
                    f"arm {name}, init {init}: only 1 lr tried; its lr window is 0 and its "
                    "AUC is flat"
                )
    out += _cut_warnings(table, arms, lr_range, learned)
    n_seeds = int(np.unique(table.seed).size)
    if comparisons and len(table) and seeds_warning(n_seeds) is not None:
        out.append(seeds_warning(n_seeds))
    for c in comparisons:
        pair = f"{c['arm']} vs {c['baseline']}"
        if c["n_points"] == 0:
            out.append(f"comparison {pair}: no shared points; nothing to compare")
            continue
        if not c["paired"]:
            out.append(
                f"comparison {pair} is unpaired (different points): it uses only the "
                f"{c['n_points']} points both arms have"
            )
        if c["n_points"] < MIN_POINTS:
            out.append(
                f"comparison {pair}: only {c['n_points']} shared points (fewer than "
                f"{MIN_POINTS}); its verdict is not_enough_data"
            )
    excluded = {k: v for k, v in table.excluded.items() if v}
    if excluded:
        parts = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in excluded.items())
        out.append(f"trials left out of every number: {parts}")
    if table.nonfinite_as_diverged:
        out.append(
            f"{table.nonfinite_as_diverged} finished trials had no finite accuracy or loss "
            "and count as diverged"
        )
    return out


def _cut_warnings(
    table: TrialTable,
    arms: dict[str, dict[str, Any]],
    lr_range: Sequence[float] | None,
    learned: float | None,
) -> list[str]:
    """One sentence per arm x init end where the curve is still >= h: the arm still learns
    there, so its good region goes on past the range; the bound to try."""
    out: list[str] = []
    for name, arm in arms.items():
        for init, group in arm["by_init"].items():
            for end in group["range_cut"]:
                mask = (table.arm == name) & (table.init == init)
                lrs = table.lr[mask]
                at = float(lrs.min() if end == "low" else lrs.max())
                bound = further_out(lr_range, end)
                side = "lowest" if end == "low" else "highest"
                key = "search.lr.low" if end == "low" else "search.lr.high"
                out.append(
                    f"arm {name}, init {init}: still learns at the {side} lr tried ({at:.3g}; "
                    f"accuracy >= h = {learned:.3f}), so its good region goes on past the lr "
                    "range and every comparison with it is range_limited"
                    + (f"; try {key}: {bound:.3g}" if bound is not None else "")
                )
    return out


def _n_lrs(table: TrialTable, arm: str, init: str) -> int:
    mask = (table.arm == arm) & (table.init == init)
    return int(np.unique(table.lr[mask]).size)


def summarize(
    trials: Iterable[Mapping[str, Any]] | Any,
    *,
    num_classes: int,
    arms: Sequence[str] | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    lr_range: Sequence[float] | None = None,
    complete: bool = True,
) -> Summary:
    """The robustness summary of a trial table (version 3; docs/summary.md explains every
    number with worked examples).

    Args:
        trials: rows (mappings, or a pandas DataFrame) with ``arm, lr, init, init_scale, seed,
            val_acc, val_loss, diverged`` and optionally ``status`` (strings from MLflow are
            accepted). Only finished rows count; the others are counted in
            ``settings.excluded``.
        num_classes: number of classes C (chance accuracy 1/C, chance loss ln C).
        arms: the spec's arm order; the first arm is the baseline. Arms found in the rows but
            not listed follow, sorted by name.
        tolerance: τ; the good threshold is ``g = A* - τ`` (0 <= τ < 1).
        lr_range: ``(low, high)``, the spec's ``search.lr.low/high``: the range the AUC and
            lr_sensitivity average over. Default: the smallest and largest lr of the rows.
        complete: whether the study has ended. False (a running study's partial summary):
            every verdict is ``pending`` and the summary is marked ``partial``; the numbers
            are computed all the same, as provisional.

    Returns:
        A :class:`~study.analysis.schema.Summary`; ``summary.model_dump(mode="json")`` is the
        JSON form. Values that cannot be computed are ``None``, never NaN. The result is the
        same, bit for bit, for any order of the rows.

    Raises:
        ConfigError: a bad argument or row; the message names the field, rule and value.

    Example:
        >>> rows = [
        ...     {"arm": "sgd", "lr": lr, "init": "kaiming", "init_scale": 1.0, "seed": 0,
        ...      "val_acc": acc, "val_loss": 0.5, "diverged": False}
        ...     for lr, acc in [(0.01, 0.5), (0.1, 0.9), (1.0, 0.9)]
        ... ]
        >>> s = summarize(rows, num_classes=10, lr_range=(0.01, 1.0))
        >>> s.reference.best_acc, s.arms["sgd"].lr_window_decades, s.arms["sgd"].auc
        (0.9, 1.05, 0.8)
    """
    tolerance = check_tolerance(tolerance)
    checked_range = check_lr_range(lr_range)
    table = build_table(trials, num_classes=num_classes, arms=arms)
    cells = build_cells(table)
    if checked_range is None and len(table):
        checked_range = (float(table.lr.min()), float(table.lr.max()))
    ref = _reference(table, cells, tolerance, checked_range)
    ctx = Context(
        table=table,
        cells=cells,
        tolerance=tolerance,
        best_acc=ref["best_acc"],
        best_loss=ref["best_loss"],
        x_lo=math.log10(checked_range[0]) if checked_range else None,
        x_hi=math.log10(checked_range[1]) if checked_range else None,
    )
    per_arm = {name: arm_summary(ctx, k) for k, name in enumerate(table.arms)}
    pairs = [(k, 0) for k in range(1, len(table.arms))]
    comparisons: list[dict[str, Any]] = []
    for (b, a), replicates in zip(pairs, replicate_comparisons(ctx, pairs), strict=True):
        name_b, name_a = table.arms[b], table.arms[a]
        c: dict[str, Any] = {"arm": name_b, "baseline": name_a}
        c.update(point_comparison(ctx, b, a))
        c.update(replicates)
        by_b, by_a = per_arm[name_b]["by_init"], per_arm[name_a]["by_init"]
        c.update(peak_comparison(by_b, by_a, (name_b, name_a)))
        c["verdict"] = verdict(c, complete=complete)
        comparisons.append(c)
    settings = {
        "num_classes": table.num_classes,
        "tolerance": tolerance,
        "baseline": table.arms[0] if table.arms else None,
        "arms": list(table.arms),
        "n_rows": table.n_rows,
        "n_used": len(table),
        "excluded": dict(table.excluded),
        "nonfinite_as_diverged": table.nonfinite_as_diverged,
        "n_seeds": int(np.unique(table.seed).size),
        "n_bootstrap": N_BOOTSTRAP,
        "n_band_bootstrap": N_BAND_BOOTSTRAP,
    }
    return Summary.model_validate(
        {
            "partial": not complete,
            "reference": ref,
            "arms": per_arm,
            "comparisons": comparisons,
            "settings": settings,
            "warnings": _warnings(table, per_arm, comparisons, checked_range, ctx.learned),
        }
    )
