"""Paired comparison of an arm against the baseline arm (DESIGN.md, "The sensitivity summary").

Rows are matched on ``(lr, init, init_scale, seed)``; lr and init_scale are rounded to 12
significant digits first, since they come back from MLflow params as decimal strings. If an arm
holds several finished rows with the same key (a spec should never produce that), their
imputed accuracies are averaged into one. Diverged rows take part with their imputed accuracy.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from study.analysis.table import TrialTable

N_BOOTSTRAP = 10_000
BOOTSTRAP_SEED = 0
_CHUNK_ELEMENTS = 4_000_000  # resampled indices held at once (16 MB of int32)


def _round_sig(x: np.ndarray, digits: int = 12) -> list[float]:
    return [float(f"{v:.{digits - 1}e}") for v in x.tolist()]


def _keyed_acc(table: TrialTable) -> dict[tuple[Any, ...], float]:
    """Mean accuracy per matching key."""
    keys = zip(
        _round_sig(table.lr),
        table.init.tolist(),
        _round_sig(table.init_scale),
        table.seed.tolist(),
        strict=True,
    )
    sums: dict[tuple[Any, ...], list[float]] = {}
    for key, a in zip(keys, table.acc.tolist(), strict=True):
        s = sums.setdefault(key, [0.0, 0.0])
        s[0] += a
        s[1] += 1.0
    return {k: s[0] / s[1] for k, s in sums.items()}


def bootstrap_ci(
    diffs: np.ndarray, *, n_resamples: int = N_BOOTSTRAP, seed: int = BOOTSTRAP_SEED
) -> tuple[float, float]:
    """95% percentile bootstrap CI of the mean of ``diffs`` (resampling pairs, vectorized).

    Resamples are drawn with ``numpy.random.default_rng(seed)`` in chunks of rows of the
    ``(n_resamples, n)`` index matrix, so memory stays bounded for large ``n``.
    """
    n = diffs.size
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples, dtype=np.float64)
    rows = max(1, _CHUNK_ELEMENTS // max(n, 1))
    for start in range(0, n_resamples, rows):
        stop = min(start + rows, n_resamples)
        idx = rng.integers(0, n, size=(stop - start, n), dtype=np.int32)
        means[start:stop] = diffs[idx].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def wilcoxon_p(diffs: np.ndarray) -> float | None:
    """Two-sided Wilcoxon signed-rank p-value, ``None`` where scipy cannot give one (all
    differences zero, no pairs)."""
    if diffs.size == 0 or not np.any(diffs != 0):
        return None
    from scipy.stats import wilcoxon

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p = float(wilcoxon(diffs).pvalue)
    except ValueError:
        return None
    return p if np.isfinite(p) else None


def compare_arms(arm: TrialTable, baseline: TrialTable, *, arm_name: str, baseline_name: str):
    """The comparison of ``arm`` against ``baseline`` over matched rows."""
    a, b = _keyed_acc(arm), _keyed_acc(baseline)
    keys = sorted(set(a) & set(b))
    diffs = np.array([a[k] - b[k] for k in keys], dtype=np.float64)
    out: dict[str, Any] = {"arm": arm_name, "baseline": baseline_name, "n_pairs": len(keys)}
    if not keys:
        return {**out, **dict.fromkeys(("mean_diff", "ci_low", "ci_high", "p_value", "win_rate"))}
    ci_low, ci_high = bootstrap_ci(diffs)
    wins = float(np.count_nonzero(diffs > 0)) + 0.5 * float(np.count_nonzero(diffs == 0))
    return {
        **out,
        "mean_diff": float(diffs.mean()),
        "ci_low": ci_low,
        "ci_high": ci_high,
        "p_value": wilcoxon_p(diffs),
        "win_rate": wins / len(keys),
    }
