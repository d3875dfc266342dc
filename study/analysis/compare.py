"""An arm B against the baseline A over the points both have (docs/summary.md, "Each arm
against the baseline").

For every point both arms have, both cells are restricted to the seeds both have there (a
point with no common seed is dropped) and ``d = ā_B - ā_A`` over those seeds. Inference is over
points, the unit the design randomizes: the seeds of one point are not independent pairs.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from study.analysis.curves import at_least
from study.analysis.groups import Context

N_BOOTSTRAP = 10_000
BOOTSTRAP_SEED = 0
_CHUNK_ELEMENTS = 4_000_000  # resampled indices held at once (32 MB of int64)


def bootstrap_ci(
    diffs: np.ndarray, *, n_resamples: int = N_BOOTSTRAP, seed: int = BOOTSTRAP_SEED
) -> list[float] | None:
    """95% percentile bootstrap CI of the mean of ``diffs``, resampling its entries.

    The draw is ``default_rng(seed).integers(0, n, size=(n_resamples, n))`` (int64), taken in
    row chunks (the same stream) so memory stays bounded. ``None`` when ``diffs`` is empty.
    """
    n = diffs.size
    if n == 0:
        return None
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples, dtype=np.float64)
    rows = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, n_resamples, rows):
        stop = min(start + rows, n_resamples)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = diffs[idx].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return [float(low), float(high)]


def wilcoxon_p(diffs: np.ndarray) -> float | None:
    """``scipy.stats.wilcoxon(diffs).pvalue`` (two-sided, zeros dropped); ``None`` where no
    difference is non-zero or scipy cannot give one."""
    if diffs.size == 0 or not np.any(diffs != 0):
        return None
    from scipy.stats import wilcoxon

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p = float(wilcoxon(diffs).pvalue)
    except (ValueError, FloatingPointError):
        return None
    return p if np.isfinite(p) else None


def _point_seed_means(ctx: Context, arm: int) -> dict[int, dict[int, list[float]]]:
    """point -> seed -> [sum of a, count] over the arm's rows."""
    table, cells = ctx.table, ctx.cells
    rows = np.flatnonzero(ctx.arm_rows(arm))
    point = cells.point[cells.row_cell[rows]]
    out: dict[int, dict[int, list[float]]] = {}
    for p, s, a in zip(
        point.tolist(), table.seed[rows].tolist(), table.acc[rows].tolist(), strict=True
    ):
        acc = out.setdefault(p, {}).setdefault(s, [0.0, 0])
        acc[0] += a
        acc[1] += 1
    return out


def paired_points(ctx: Context, arm_b: int, arm_a: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """``(a_A, a_B, paired)``: the restricted cell means of A and B at each shared point (in
    canonical point order), and whether both arms have exactly the same points."""
    a = _point_seed_means(ctx, arm_a)
    b = _point_seed_means(ctx, arm_b)
    mean_a: list[float] = []
    mean_b: list[float] = []
    for p in sorted(set(a) & set(b)):
        common = sorted(set(a[p]) & set(b[p]))
        if not common:
            continue
        sa = sum(a[p][s][0] for s in common)
        na = sum(a[p][s][1] for s in common)
        sb = sum(b[p][s][0] for s in common)
        nb = sum(b[p][s][1] for s in common)
        mean_a.append(sa / na)
        mean_b.append(sb / nb)
    paired = set(a) == set(b)
    return np.array(mean_a, dtype=np.float64), np.array(mean_b, dtype=np.float64), paired


def point_comparison(ctx: Context, arm_b: int, arm_a: int) -> dict[str, Any]:
    """The point-level keys of a comparison: ``paired, n_seeds, n_points, mean_diff, ci,
    wilcoxon_p, n_nonzero, win_rate, n_live, mean_diff_live, ci_live``."""
    table = ctx.table
    arm_index = table.arm_index
    seeds_a = set(table.seed[arm_index == arm_a].tolist())
    seeds_b = set(table.seed[arm_index == arm_b].tolist())
    acc_a, acc_b, paired = paired_points(ctx, arm_b, arm_a)
    d = acc_b - acc_a
    n = int(d.size)
    out: dict[str, Any] = {
        "paired": paired,
        "n_seeds": len(seeds_a & seeds_b),
        "n_points": n,
        "mean_diff": float(d.mean()) if n else None,
        "ci": bootstrap_ci(d),
        "wilcoxon_p": wilcoxon_p(d),
        "n_nonzero": int(np.count_nonzero(d)),
        "win_rate": (
            (float(np.count_nonzero(d > 0)) + 0.5 * float(np.count_nonzero(d == 0))) / n
            if n
            else None
        ),
    }
    if n and ctx.learned is not None:
        live = at_least(np.maximum(acc_a, acc_b), ctx.learned)
    else:
        live = np.zeros(n, dtype=bool)
    d_live = d[live]
    out["n_live"] = int(d_live.size)
    out["mean_diff_live"] = float(d_live.mean()) if d_live.size else None
    out["ci_live"] = bootstrap_ci(d_live)
    return out
