"""Per-group numbers of the summary: an arm x init, or a whole arm (docs/summary.md, "Per arm,
and per arm × init").

Everything here reads a :class:`Context` (the canonical table, its cells and the study-wide
reference) and returns plain dicts shaped like :class:`~study.analysis.schema.InitSummary` /
:class:`~study.analysis.schema.ArmSummary`, with ``None`` where a value cannot be computed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from study.analysis.cells import Cells
from study.analysis.curves import at_least, mean_over_range, window_decades
from study.analysis.metrics import expected_max, expected_max_band
from study.analysis.table import TrialTable


@dataclass(frozen=True)
class Context:
    """The canonical table, its cells and the study-wide reference values."""

    table: TrialTable
    cells: Cells
    tolerance: float
    best_acc: float | None  # A*
    best_loss: float | None  # ℓ*
    x_lo: float | None  # log10 of the lr range
    x_hi: float | None

    @property
    def good(self) -> float | None:  # g
        return None if self.best_acc is None else self.best_acc - self.tolerance

    @property
    def learned(self) -> float | None:  # h
        return None if self.best_acc is None else (self.table.chance_acc + self.best_acc) / 2

    def arm_rows(self, arm: int) -> np.ndarray:
        return self.table.arm_index == arm

    def arm_cells(self, arm: int) -> np.ndarray:
        return self.cells.arm == arm


def best_cell_index(cells: Cells, index: np.ndarray, *, arm_first: bool = False) -> int:
    """The best of the cells ``index``: highest ā, then lowest ℓ̄, then lowest lr, then (for the
    study-wide reference) arm order, then init name, then init_scale."""
    init_rank = _rank(cells.init[index])
    keys = [cells.init_scale[index], init_rank]
    if arm_first:
        keys.append(cells.arm[index])
    keys += [cells.lr[index], cells.loss[index], -cells.acc[index]]
    return int(index[np.lexsort(tuple(keys))[0]])


def _rank(names: np.ndarray) -> np.ndarray:
    order = {name: k for k, name in enumerate(sorted(set(names.tolist())))}
    return np.array([order[x] for x in names.tolist()], dtype=np.int64)


def curve(ctx: Context, index: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The lr curve of the cells ``index`` (one arm x init): ``x = log10(lr)`` of the distinct
    lrs, ``y`` the mean ā there, ``yl`` the mean clipped loss ``min(ℓ̄, ln C)`` there."""
    cells = ctx.cells
    lrs, inverse = np.unique(cells.lr[index], return_inverse=True)
    count = np.bincount(inverse, minlength=lrs.size)
    y = np.bincount(inverse, weights=cells.acc[index], minlength=lrs.size) / count
    clipped = np.minimum(cells.loss[index], ctx.table.chance_loss)
    yl = np.bincount(inverse, weights=clipped, minlength=lrs.size) / count
    return np.log10(lrs), y, yl


def curve_numbers(ctx: Context, index: np.ndarray) -> dict[str, float | None]:
    """``lr_window_decades``, ``auc`` and ``lr_sensitivity`` of one arm x init's curve."""
    if index.size == 0 or ctx.best_acc is None:
        return dict.fromkeys(("lr_window_decades", "auc", "lr_sensitivity"))
    x, y, yl = curve(ctx, index)
    window = float(window_decades(x, y[None, :], ctx.good)[0])
    auc = mean_over_range(x, y, ctx.x_lo, ctx.x_hi)
    sensitivity = mean_over_range(x, yl, ctx.x_lo, ctx.x_hi) - ctx.best_loss
    if -1e-12 < sensitivity < 0.0:
        sensitivity = 0.0
    return {"lr_window_decades": window, "auc": auc, "lr_sensitivity": sensitivity}


def peak_and_cuts(ctx: Context, index: np.ndarray) -> dict[str, Any]:
    """``best_lr`` and ``range_cut`` of one arm x init's curve (cells ``index``).

    ``best_lr``: the lr of the curve's maximum, the lower lr on a tie; None when the maximum
    is below the learned threshold h. ``range_cut``: ``"low"`` when the curve at the lowest lr
    tried is ``>= h``, ``"high"`` at the highest (both for a single lr that reached h).
    """
    if index.size == 0 or ctx.learned is None:
        return {"best_lr": None, "range_cut": []}
    _, y, _ = curve(ctx, index)
    top = int(np.argmax(y))  # the first maximum: lrs ascend, so the lower lr wins a tie
    lrs = np.unique(ctx.cells.lr[index])
    best_lr = float(lrs[top]) if at_least(y[top], ctx.learned) else None
    cuts = [end for end, value in (("low", y[0]), ("high", y[-1])) if at_least(value, ctx.learned)]
    return {"best_lr": best_lr, "range_cut": cuts}


def group_numbers(ctx: Context, rows: np.ndarray, index: np.ndarray) -> dict[str, Any]:
    """The numbers every group has, over its row mask ``rows`` and cell indices ``index``
    (without the curve numbers)."""
    table, cells = ctx.table, ctx.cells
    n_trials, n_cells = int(np.count_nonzero(rows)), int(index.size)
    if n_cells == 0:
        return {
            "n_trials": n_trials,
            "n_cells": 0,
            **dict.fromkeys(
                ("best", "median", "worst", "best_cell", "divergence_rate", "failure_rate")
            ),
            "good_fraction": None,
            "expected_max": [],
            "expected_max_band": [[], []],
        }
    acc = cells.acc[index]
    best = best_cell_index(cells, index)
    diverged = table.diverged[rows]
    failed = diverged | (table.acc[rows] < ctx.learned - 1e-12)
    return {
        "n_trials": n_trials,
        "n_cells": n_cells,
        "best": float(acc.max()),
        "median": float(np.median(acc)),
        "worst": float(acc.min()),
        "best_cell": {
            "lr": float(cells.lr[best]),
            "init": str(cells.init[best]),
            "init_scale": float(cells.init_scale[best]),
        },
        "divergence_rate": float(np.count_nonzero(diverged)) / n_trials,
        "failure_rate": float(np.count_nonzero(failed)) / n_trials,
        "good_fraction": float(np.count_nonzero(at_least(acc, ctx.good))) / n_cells,
        "expected_max": expected_max(acc),
        "expected_max_band": expected_max_band(acc),
    }


def init_summary(ctx: Context, arm: int, init: str) -> dict[str, Any]:
    cells = ctx.cells
    index = np.flatnonzero((cells.arm == arm) & (cells.init == init))
    rows = ctx.arm_rows(arm) & (ctx.table.init == init)
    numbers = group_numbers(ctx, rows, index)
    curve_part = curve_numbers(ctx, index)
    em = (numbers.pop("expected_max"), numbers.pop("expected_max_band"))
    return {
        **numbers,
        **curve_part,
        "expected_max": em[0],
        "expected_max_band": em[1],
        **peak_and_cuts(ctx, index),
    }


def arm_summary(ctx: Context, arm: int) -> dict[str, Any]:
    """The arm's group numbers, its curve numbers averaged over inits, init regret and spread,
    importances and ``by_init``."""
    from study.analysis.importance import importances

    cells = ctx.cells
    index = np.flatnonzero(ctx.arm_cells(arm))
    numbers = group_numbers(ctx, ctx.arm_rows(arm), index)
    inits = sorted(set(cells.init[index].tolist()))
    by_init = {init: init_summary(ctx, arm, init) for init in inits}
    curve_part: dict[str, float | None] = {}
    for key in ("lr_window_decades", "auc", "lr_sensitivity"):
        values = [v[key] for v in by_init.values() if v[key] is not None]
        curve_part[key] = float(np.mean(values)) if values else None
    best_per_init = [v["best"] for v in by_init.values()]
    if best_per_init and ctx.best_acc is not None:
        regret = float(np.mean([ctx.best_acc - b for b in best_per_init]))
    else:
        regret = None
    spread = float(max(best_per_init) - min(best_per_init)) if len(best_per_init) >= 2 else None
    em = (numbers.pop("expected_max"), numbers.pop("expected_max_band"))
    return {
        **numbers,
        **curve_part,
        "expected_max": em[0],
        "expected_max_band": em[1],
        "init_regret": regret,
        "init_spread": spread,
        "importance": importances(
            cells.lr[index], cells.init[index], cells.init_scale[index], cells.acc[index]
        ),
        "by_init": by_init,
    }
