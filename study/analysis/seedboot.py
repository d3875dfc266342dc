"""The paired seed bootstrap of the arm-level differences (``auc_diff_ci`` and the others).

S = the sorted distinct seeds of all used rows. One draw serves the whole summary:
``idx = default_rng(0).integers(0, len(S), size=(2000, len(S)))``. In resample ``r`` a seed's
multiplicity is how often it was drawn, and every row weighs its seed's multiplicity. From the
weighted rows everything is recomputed: cell means (a cell whose rows all weigh 0 disappears),
A*, g, then per arm the curves, ``auc``, ``lr_window_decades``, ``good_fraction`` and
``init_regret`` (the lr range stays the full data's). The CI of ``B - A`` is the 2.5 and 97.5
percentiles over the resamples where the difference is defined.

Vectorized over resamples: the weighted cell sums are one sparse (cells x seeds) by dense
(seeds x resamples) product per chunk of resamples, the curves are sums over each lr's cells,
and the window and area are batch functions of :mod:`study.analysis.curves`. Where a curve has
lost points in some resamples (a cell whose seeds were not drawn, as in a partial study), the
resamples are grouped by which of the curve's lrs remain, and each group is computed at once.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from study.analysis.curves import area_weights, at_least, window_decades
from study.analysis.groups import Context

N_SEED_BOOTSTRAP = 2_000
SEED_BOOTSTRAP_SEED = 0
METRICS = ("auc", "lr_window_decades", "good_fraction", "init_regret")
_CHUNK_ELEMENTS = 2_000_000


class _Curve:
    """One arm x init: its cells (canonical order: by lr, then init_scale), grouped by lr."""

    def __init__(self, ctx: Context, index: np.ndarray) -> None:
        self.index = index
        lr = ctx.cells.lr[index]
        self.starts = np.flatnonzero(np.concatenate(([True], lr[1:] != lr[:-1])))
        self.x = np.log10(lr[self.starts])
        self.x_lo, self.x_hi = ctx.x_lo, ctx.x_hi
        self._weights: dict[bytes, np.ndarray] = {}

    def weights(self, cols: np.ndarray) -> np.ndarray:
        key = cols.tobytes()
        if key not in self._weights:
            self._weights[key] = area_weights(self.x[cols], self.x_lo, self.x_hi)
        return self._weights[key]

    def numbers(
        self, acc: np.ndarray, present: np.ndarray, g: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(auc, window, best)`` per resample (NaN where the init has no cell left)."""
        a = acc[:, self.index]
        p = present[:, self.index]
        y_sum = np.add.reduceat(np.where(p, a, 0.0), self.starts, axis=1)
        y_cnt = np.add.reduceat(p.astype(np.int64), self.starts, axis=1)
        best = np.where(p, a, -np.inf).max(axis=1)
        best[~np.isfinite(best)] = np.nan
        with np.errstate(invalid="ignore", divide="ignore"):
            y = y_sum / y_cnt
        have = y_cnt > 0
        r = acc.shape[0]
        auc = np.full(r, np.nan)
        window = np.full(r, np.nan)
        if have.all():  # every lr kept its cells (a complete design): one batch
            auc[:] = y @ self.weights(np.ones(self.x.size, dtype=bool))
            window[:] = window_decades(self.x, y, g)
            return auc, window, best
        packed = np.packbits(have, axis=1)
        keys = [row.tobytes() for row in packed]
        for key in sorted(set(keys)):
            rows = np.flatnonzero([k == key for k in keys])
            cols = have[rows[0]]
            if not cols.any():
                continue
            yk = y[np.ix_(rows, np.flatnonzero(cols))]
            auc[rows] = yk @ self.weights(cols)
            window[rows] = window_decades(self.x[cols], yk, g[rows])
        return auc, window, best


def _mean_defined(values: list[np.ndarray]) -> np.ndarray:
    """Row-wise mean over the arrays' defined (non-NaN) entries; NaN where none is."""
    stack = np.stack(values, axis=1)
    ok = ~np.isnan(stack)
    count = ok.sum(axis=1)
    total = np.where(ok, stack, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def seed_bootstrap(
    ctx: Context,
    pairs: list[tuple[int, int]],
    *,
    n_resamples: int = N_SEED_BOOTSTRAP,
    seed: int = SEED_BOOTSTRAP_SEED,
) -> list[dict[str, list[float] | None]]:
    """For each ``(arm_b, arm_a)`` in ``pairs``: ``{metric: [low, high] | None}`` for the
    metrics in :data:`METRICS` (``None`` with fewer than 2 seeds or no defined resample)."""
    empty = [dict.fromkeys(METRICS) for _ in pairs]
    table, cells = ctx.table, ctx.cells
    seeds = np.unique(table.seed)
    if seeds.size < 2 or not pairs or len(cells) == 0:
        return empty
    from scipy.sparse import csr_matrix

    n_seeds, n_cells = seeds.size, len(cells)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n_seeds, size=(n_resamples, n_seeds))
    offsets = (np.arange(n_resamples) * n_seeds)[:, None]
    mult = np.bincount((idx + offsets).ravel(), minlength=n_resamples * n_seeds)
    mult = mult.reshape(n_resamples, n_seeds).astype(np.float64)

    seed_pos = np.searchsorted(seeds, table.seed)
    shape = (n_cells, n_seeds)
    sums = csr_matrix((table.acc, (cells.row_cell, seed_pos)), shape=shape)
    counts = csr_matrix((np.ones(len(table)), (cells.row_cell, seed_pos)), shape=shape)
    sums.sum_duplicates()
    counts.sum_duplicates()

    arms = sorted({a for pair in pairs for a in pair})
    curves: dict[int, list[_Curve]] = {}
    arm_index: dict[int, np.ndarray] = {}
    for arm in arms:
        index = np.flatnonzero(cells.arm == arm)
        arm_index[arm] = index
        inits = sorted(set(cells.init[index].tolist()))
        curves[arm] = [_Curve(ctx, index[cells.init[index] == init]) for init in inits]

    values: dict[int, dict[str, list[np.ndarray]]] = {a: {m: [] for m in METRICS} for a in arms}
    chunk = max(1, _CHUNK_ELEMENTS // n_cells)
    for start in range(0, n_resamples, chunk):
        w = mult[start : start + chunk].T  # (seeds, R)
        cell_sum = np.ascontiguousarray((sums @ w).T)  # (R, cells)
        cell_cnt = np.ascontiguousarray((counts @ w).T)
        present = cell_cnt > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            acc = np.where(present, cell_sum / cell_cnt, np.nan)
        best_acc = np.where(present, acc, -np.inf).max(axis=1)  # every drawn seed has rows
        g = best_acc - ctx.tolerance
        for arm in arms:
            index = arm_index[arm]
            p = present[:, index]
            n_present = p.sum(axis=1)
            good = (p & at_least(np.nan_to_num(acc[:, index], nan=-np.inf), g[:, None])).sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                good_fraction = np.where(n_present > 0, good / np.maximum(n_present, 1), np.nan)
            aucs, windows, regrets = [], [], []
            for c in curves[arm]:
                auc, window, best = c.numbers(acc, present, g)
                aucs.append(auc)
                windows.append(window)
                regrets.append(best_acc - best)
            out = values[arm]
            if curves[arm]:
                out["auc"].append(_mean_defined(aucs))
                out["lr_window_decades"].append(_mean_defined(windows))
                out["init_regret"].append(_mean_defined(regrets))
            else:
                nan = np.full(w.shape[1], np.nan)
                for m in ("auc", "lr_window_decades", "init_regret"):
                    out[m].append(nan)
            out["good_fraction"].append(good_fraction)

    result: list[dict[str, Any]] = []
    for arm_b, arm_a in pairs:
        cis: dict[str, list[float] | None] = {}
        for metric in METRICS:
            diff = np.concatenate(values[arm_b][metric]) - np.concatenate(values[arm_a][metric])
            diff = diff[~np.isnan(diff)]
            if diff.size == 0:
                cis[metric] = None
            else:
                low, high = np.percentile(diff, [2.5, 97.5])
                cis[metric] = [float(low), float(high)]
        result.append(cis)
    return result
