"""The per-group sensitivity metrics of DESIGN.md ("The sensitivity summary").

Every function takes plain numpy arrays of one group (an arm, or an arm x init) whose diverged
rows are already imputed (accuracy ``1/C``, loss ``ln C``), and returns Python floats or
``None`` where the value cannot be computed (an empty group).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln

#: Tolerance, in bins, for ``floor(log10(lr) / w)`` at exact bin edges (1e-2 with w = 0.25 is
#: bin -8, although ``log10(1e-2) / 0.25`` may come out a hair below -8 in floating point).
BIN_EDGE_TOL = 1e-9
#: Floating-point slack when comparing a bin mean to ``best bin mean - delta``.
WINDOW_TOL = 1e-12


@dataclass(frozen=True)
class Bins:
    """Non-empty log10(lr) bins of one group: bin ``k[j]`` covers ``[k w, (k + 1) w)`` decades."""

    k: np.ndarray  # int64, sorted ascending, unique
    acc: np.ndarray  # mean (imputed) accuracy per bin
    loss: np.ndarray  # mean (imputed) loss per bin
    count: np.ndarray  # rows per bin


def bin_index(lr: np.ndarray, bin_width: float) -> np.ndarray:
    """``k = floor(log10(lr) / w)`` with a 1e-9-bin tolerance at the edges."""
    return np.floor(np.log10(np.asarray(lr, dtype=np.float64)) / bin_width + BIN_EDGE_TOL).astype(
        np.int64
    )


def lr_bins(lr: np.ndarray, acc: np.ndarray, loss: np.ndarray, bin_width: float) -> Bins:
    """Mean accuracy and loss of every non-empty bin."""
    k_all = bin_index(lr, bin_width)
    k, inverse, count = np.unique(k_all, return_inverse=True, return_counts=True)
    acc_mean = np.bincount(inverse, weights=acc, minlength=k.size) / np.maximum(count, 1)
    loss_mean = np.bincount(inverse, weights=loss, minlength=k.size) / np.maximum(count, 1)
    return Bins(k=k, acc=acc_mean, loss=loss_mean, count=count)


def lr_window_decades(bins: Bins, bin_width: float, delta: float) -> float | None:
    """Longest run of adjacent non-empty bins with mean accuracy >= best bin mean - delta, x w.

    Bins ``k`` and ``k + 1`` are adjacent when both are non-empty; an empty bin ends a run.
    """
    if bins.k.size == 0:
        return None
    good = bins.acc >= bins.acc.max() - delta - WINDOW_TOL
    best_run = run = 0
    prev_k = None
    for k, ok in zip(bins.k.tolist(), good.tolist(), strict=True):
        if not ok:
            run = 0
        elif prev_k is not None and k == prev_k + 1 and run > 0:
            run += 1
        else:
            run = 1
        best_run = max(best_run, run)
        prev_k = k
    return best_run * float(bin_width)


def lr_sensitivity(bins: Bins, chance_loss: float) -> float | None:
    """Wortsman et al. 2023: mean over non-empty bins of ``min(l_bin, l0) - min_bins l_bin``.

    Taken literally from DESIGN.md: the subtracted minimum is not capped at ``l0``, so in the
    degenerate case where every bin's mean loss exceeds ``l0 = ln C`` the value is negative.
    """
    if bins.k.size == 0:
        return None
    return float(np.mean(np.minimum(bins.loss, chance_loss) - bins.loss.min()))


def init_sensitivity(best_bin_acc: dict[str, float]) -> float | None:
    """Mean over inits of ``max_init b_init - b_init``; ``None`` with fewer than two inits."""
    if len(best_bin_acc) < 2:
        return None
    b = np.array(list(best_bin_acc.values()), dtype=np.float64)
    return float(np.mean(b.max() - b))


def expected_max(acc: np.ndarray, *, block: int = 64) -> list[float]:
    """Dodge et al. 2019's unbiased expected maximum of ``n`` draws without replacement.

    Over the ``N`` values sorted ascending, ``E[max_n] = sum_i a_(i) C(i-1, n-1) / C(N, n)``
    (``i`` 1-based) for ``n = 1..N``. ``C(N, n)`` overflows a float long before N = 10,000, so
    the weights are evaluated in log space from a table of ``ln m!``
    (:func:`scipy.special.gammaln`), ``block`` values of ``n`` at a time (only the columns
    ``i >= n`` that can be non-zero). Each weight vector is divided by its sum (exactly 1 in
    exact arithmetic, by the hockey-stick identity), so the curve starts at the mean and ends at
    the maximum up to rounding.
    """
    a = np.sort(np.asarray(acc, dtype=np.float64))
    n_total = a.size
    if n_total == 0:
        return []
    log_fact = gammaln(np.arange(1, n_total + 2, dtype=np.float64))  # log_fact[m] = ln m!
    out = np.empty(n_total, dtype=np.float64)
    for start in range(1, n_total + 1, block):
        n = np.arange(start, min(start + block, n_total + 1))[:, None]
        i = np.arange(start, n_total + 1)[None, :]
        # ln C(i-1, n-1) - ln C(N, n); entries with i < n are zeroed below.
        log_w = (log_fact[i - 1] - log_fact[n - 1] - log_fact[np.maximum(i - n, 0)]) - (
            log_fact[n_total] - log_fact[n] - log_fact[n_total - n]
        )
        w = np.exp(log_w)
        w[i < n] = 0.0
        w /= w.sum(axis=1, keepdims=True)
        out[start - 1 : start - 1 + n.shape[0]] = w @ a[start - 1 :]
    return out.tolist()


def best_row(lr: np.ndarray, acc: np.ndarray, loss: np.ndarray) -> int:
    """Index of the best row: highest accuracy, then lowest loss, then smallest lr (so the
    choice does not depend on row order)."""
    return int(np.lexsort((lr, loss, -acc))[0])


def group_metrics(
    lr: np.ndarray,
    acc: np.ndarray,
    loss: np.ndarray,
    diverged: np.ndarray,
    *,
    bin_width: float,
    delta: float,
    chance_loss: float,
) -> tuple[dict[str, object], Bins]:
    """The metrics every group shares (DESIGN.md's table, less init_sensitivity/importance),
    plus its bins."""
    n = int(acc.size)
    bins = lr_bins(lr, acc, loss, bin_width)
    if n == 0:
        empty: dict[str, object] = dict.fromkeys(
            (
                "best",
                "median",
                "worst",
                "divergence_rate",
                "best_lr",
                "lr_window_decades",
                "lr_sensitivity",
            )
        )
        return {"n": 0, **empty, "expected_max": []}, bins
    return {
        "n": n,
        "best": float(acc.max()),
        "median": float(np.median(acc)),
        "worst": float(acc.min()),
        "divergence_rate": float(np.count_nonzero(diverged)) / n,
        "best_lr": float(lr[best_row(lr, acc, loss)]),
        "lr_window_decades": lr_window_decades(bins, bin_width, delta),
        "lr_sensitivity": lr_sensitivity(bins, chance_loss),
        "expected_max": expected_max(acc),
    }, bins
