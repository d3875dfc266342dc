"""The expected-maximum curve (Dodge et al. 2019) with Tang et al. 2020's unbiased estimator,
and its bootstrap band.

Over ``N`` values sorted ascending, ``E[max of n] = Σ_i a_(i) C(i-1, n-1) / C(N, n)`` (``i``
1-based) for ``n = 1..N``. ``C(N, n)`` overflows a float long before N = 10,000, so the weights
are evaluated in log space from a table of ``ln m!`` (:func:`scipy.special.gammaln`), a block
of ``n`` values at a time (only the columns ``i >= n`` can be non-zero). Each weight vector is
divided by its sum (exactly 1 in exact arithmetic, by the hockey-stick identity), so the curve
starts at the mean and ends at the maximum up to rounding.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

N_BAND_BOOTSTRAP = 1_000
BAND_SEED = 0
_BLOCK = 64
_CHUNK_ELEMENTS = 2_000_000
_NEGLIGIBLE = 1e-18


def _weight_blocks(n_total: int) -> Iterator[tuple[int, int, np.ndarray]]:
    """``(first, start, W)`` for blocks of n = start..start+len(W)-1: ``W[k, i - first]`` is the
    weight of the sorted value ``a_(i)`` (1-based ``i >= first``) in ``E[max of n]``."""
    from scipy.special import gammaln

    log_fact = gammaln(np.arange(1, n_total + 2, dtype=np.float64))  # log_fact[m] = ln m!
    for start in range(1, n_total + 1, _BLOCK):
        n = np.arange(start, min(start + _BLOCK, n_total + 1))[:, None]
        i = np.arange(start, n_total + 1)[None, :]
        # ln C(i-1, n-1) - ln C(N, n); entries with i < n are zeroed below.
        log_w = (log_fact[i - 1] - log_fact[n - 1] - log_fact[np.maximum(i - n, 0)]) - (
            log_fact[n_total] - log_fact[n] - log_fact[n_total - n]
        )
        w = np.exp(log_w)
        w[i < n] = 0.0
        w /= w.sum(axis=1, keepdims=True)
        # For large n the weight sits on the top values: the leading columns whose weights are
        # all below _NEGLIGIBLE change the curve by less than N * _NEGLIGIBLE (relative).
        # Weights grow with i for every n >= 2, so the negligible columns are a prefix.
        keep = np.flatnonzero(w.max(axis=0) >= _NEGLIGIBLE)
        first = int(keep[0]) if keep.size else 0
        yield start + first, start, w[:, first:]


def expected_max(values: np.ndarray) -> list[float]:
    """The curve ``E[max of n]`` for n = 1..N over ``values`` (any order)."""
    a = np.sort(np.asarray(values, dtype=np.float64))
    out = np.empty(a.size, dtype=np.float64)
    for first, start, w in _weight_blocks(a.size):
        out[start - 1 : start - 1 + w.shape[0]] = w @ a[first - 1 :]
    return out.tolist()


def expected_max_band(
    values: np.ndarray, *, n_resamples: int = N_BAND_BOOTSTRAP, seed: int = BAND_SEED
) -> list[list[float]]:
    """``[low, high]``: per n, the 2.5 and 97.5 percentiles of the curve over ``n_resamples``
    bootstrap resamples of ``values`` (``values`` in canonical cell order; the draw is
    ``default_rng(seed).integers(0, N, size=(n_resamples, N))``, taken in row chunks)."""
    a = np.asarray(values, dtype=np.float64)
    n_total = a.size
    if n_total == 0:
        return [[], []]
    rng = np.random.default_rng(seed)
    rows = max(1, _CHUNK_ELEMENTS // n_total)
    resampled = np.empty((n_resamples, n_total), dtype=np.float64)
    for start in range(0, n_resamples, rows):
        stop = min(start + rows, n_resamples)
        resampled[start:stop] = np.sort(a[rng.integers(0, n_total, size=(stop - start, n_total))])
    low = np.empty(n_total, dtype=np.float64)
    high = np.empty(n_total, dtype=np.float64)
    for first, start, w in _weight_blocks(n_total):
        curves = w @ resampled[:, first - 1 :].T  # (block, n_resamples)
        lo, hi = np.percentile(curves, [2.5, 97.5], axis=1)
        low[start - 1 : start - 1 + w.shape[0]] = lo
        high[start - 1 : start - 1 + w.shape[0]] = hi
    return [low.tolist(), high.tolist()]
