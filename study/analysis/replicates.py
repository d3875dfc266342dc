"""Replicate intervals of the arm-level differences (``auc_diff``, ``window_diff``,
``good_fraction_diff``, ``init_regret_diff``, their ``…_ci``, ``auc_diff_se`` and ``auc_p``;
docs/summary.md).

A seed is one full replicate of the design. For each seed ``s`` that both arms have, each arm's
metric ``M(s)`` is computed from that seed's rows alone, with the study-wide reference (A*, g,
h, ℓ*, the lr range) held at its all-seeds value, and ``D_s = M_B(s) - M_A(s)``. Over the ``n``
shared seeds: the difference is ``mean(D)``, its 95% interval ``mean(D) ± t(0.975, n-1) ·
sd(D) / √n`` (Student t, ``sd`` with n - 1; ``None`` with one seed; the point itself when ``sd``
is 0), ``auc_diff_se`` the AUC's replicate standard error ``sd(D) / √n`` (what a suite weighs
each workload by; ``None`` with one seed), and ``auc_p`` the two-sided one-sample t-test p of
the AUC's ``D``.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from study.analysis.cells import build_cells
from study.analysis.curves import at_least
from study.analysis.groups import Context, curve_numbers

#: The arm-level metrics with a replicate interval: ``(comparison key, metric)``.
METRICS = (
    ("auc_diff", "auc"),
    ("window_diff", "lr_window_decades"),
    ("good_fraction_diff", "good_fraction"),
    ("init_regret_diff", "init_regret"),
)
#: The interval's level.
LEVEL = 0.95


def seed_context(ctx: Context, seed: int) -> Context:
    """The context of one seed's rows: its own cells, the study-wide reference kept."""
    table = ctx.table.select(ctx.table.seed == seed)
    return replace(ctx, table=table, cells=build_cells(table))


def arm_metrics(ctx: Context, arm: int) -> dict[str, float] | None:
    """The arm's ``auc``, ``lr_window_decades``, ``good_fraction`` and ``init_regret`` over the
    cells of ``ctx`` (curves per init, averaged over inits); None when it has no cell."""
    cells = ctx.cells
    index = np.flatnonzero(cells.arm == arm)
    if index.size == 0 or ctx.best_acc is None:
        return None
    inits = sorted(set(cells.init[index].tolist()))
    per_init = [index[cells.init[index] == init] for init in inits]
    curves = [curve_numbers(ctx, sub) for sub in per_init]
    return {
        "auc": float(np.mean([c["auc"] for c in curves])),
        "lr_window_decades": float(np.mean([c["lr_window_decades"] for c in curves])),
        "good_fraction": float(np.count_nonzero(at_least(cells.acc[index], ctx.good))) / index.size,
        "init_regret": float(np.mean([ctx.best_acc - cells.acc[sub].max() for sub in per_init])),
    }


def t_interval(d: np.ndarray, level: float = LEVEL) -> list[float] | None:
    """``mean(d) ± t((1 + level)/2, n-1) · sd(d)/√n``; None with fewer than 2 values."""
    n = d.size
    if n < 2:
        return None
    from scipy.stats import t

    mean = float(d.mean())
    sd = float(d.std(ddof=1))
    half = float(t.ppf((1.0 + level) / 2.0, n - 1)) * sd / math.sqrt(n)
    return [mean - half, mean + half]


def standard_error(d: np.ndarray) -> float | None:
    """``sd(d) / √n`` (``sd`` with n - 1); None with fewer than 2 values."""
    n = d.size
    if n < 2:
        return None
    return float(d.std(ddof=1)) / math.sqrt(n)


def t_test_p(d: np.ndarray) -> float | None:
    """Two-sided one-sample t-test p of ``d`` against 0. None with fewer than 2 values, or when
    every value is 0 (0/0); 0.0 when the values are equal and not 0 (an infinite t)."""
    n = d.size
    if n < 2:
        return None
    mean = float(d.mean())
    sd = float(d.std(ddof=1))
    if sd == 0.0:
        return None if mean == 0.0 else 0.0
    from scipy.stats import t

    p = float(2.0 * t.sf(abs(mean) / (sd / math.sqrt(n)), n - 1))
    return p if math.isfinite(p) else None


def replicate_comparisons(ctx: Context, pairs: list[tuple[int, int]]) -> list[dict[str, Any]]:
    """For each ``(arm_b, arm_a)``: the four ``…_diff`` with their ``…_ci``, ``auc_diff_se`` and
    ``auc_p``, from
    the seeds both arms have (each seed's metrics computed once and shared by the pairs)."""
    table = ctx.table
    arm_index = table.arm_index
    per_seed: dict[int, Context] = {}
    metrics: dict[tuple[int, int], dict[str, float] | None] = {}
    out: list[dict[str, Any]] = []
    for arm_b, arm_a in pairs:
        seeds = sorted(
            set(table.seed[arm_index == arm_a].tolist())
            & set(table.seed[arm_index == arm_b].tolist())
        )
        diffs: dict[str, list[float]] = {m: [] for _, m in METRICS}
        for seed in seeds:
            if seed not in per_seed:
                per_seed[seed] = seed_context(ctx, seed)
            for arm in (arm_a, arm_b):
                if (seed, arm) not in metrics:
                    metrics[(seed, arm)] = arm_metrics(per_seed[seed], arm)
            mb, ma = metrics[(seed, arm_b)], metrics[(seed, arm_a)]
            if ma is None or mb is None:  # cannot happen: both arms have rows in this seed
                continue
            for _, m in METRICS:
                diffs[m].append(mb[m] - ma[m])
        result: dict[str, Any] = {}
        for key, m in METRICS:
            d = np.array(diffs[m], dtype=np.float64)
            result[key] = float(d.mean()) if d.size else None
            result[f"{key}_ci"] = t_interval(d)
        auc = np.array(diffs["auc"], dtype=np.float64)
        result["auc_diff_se"] = standard_error(auc)
        result["auc_p"] = t_test_p(auc)
        out.append(result)
    return out
