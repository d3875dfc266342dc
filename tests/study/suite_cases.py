"""Study summaries for suite tests: real ``summarize`` results of hand-built trial tables, and
an independent random-effects meta-analysis written from the textbook formulas (no
statsmodels), which ``summarize_suite``'s pooled numbers must match."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from study.analysis import summarize
from study.analysis.schema import Summary
from tests.study.analysis_rows import row

#: A curve that rises to 0.9 at lr 1e-2 and falls back to chance inside the range 1e-5..10:
#: no end of the range is cut (the arm learns only in the middle).
LRS = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)
BASE = (0.1, 0.15, 0.5, 0.9, 0.6, 0.2, 0.1)
LR_RANGE = (1e-5, 10.0)


def study_summary(
    shifts: dict[str, Sequence[float]],
    *,
    arms: Sequence[str] = ("sgd", "insgd"),
    complete: bool = True,
    cut_high: bool = False,
) -> Summary:
    """The summary of a one-init grid study: the baseline follows :data:`BASE` in every seed;
    arm B adds ``shifts[B][s]`` to every cell of seed ``s`` (so its per-seed AUC difference is
    exactly that shift, the AUC being a mean over the flat-ended curve). ``cut_high``: the
    baseline still learns at the highest lr (0.8 there), so every comparison is range-limited.
    """
    base = list(BASE)
    if cut_high:
        base[-1] = 0.8
    n_seeds = len(next(iter(shifts.values())))
    rows = []
    for s in range(n_seeds):
        for lr, a in zip(LRS, base, strict=True):
            rows.append(row(arms[0], lr, "he", s, a))
            for arm in arms[1:]:
                rows.append(row(arm, lr, "he", s, a + shifts[arm][s]))
    return summarize(rows, num_classes=10, arms=list(arms), lr_range=LR_RANGE, complete=complete)


def textbook_random_effects(y: Sequence[float], se: Sequence[float]) -> dict[str, Any]:
    """DerSimonian-Laird and the modified Hartung-Knapp interval, from the formulas:

    v_i = 1/se_i², Q = Σ v_i (y_i − ȳ_v)², τ² = max(0, (Q − (k−1)) / (Σv − Σv²/Σv)),
    w_i = 1/(se_i² + τ²), μ = Σ w y / Σ w, q = Σ w (y − μ)² / (k − 1),
    se(μ) = √(max(q, 1) / Σ w), interval μ ± t(0.975, k − 1) se(μ), I² = max(0, (Q − (k−1))/Q).
    """
    from scipy.stats import t

    k = len(y)
    v = [1.0 / s**2 for s in se]
    ybar = sum(vi * yi for vi, yi in zip(v, y, strict=True)) / sum(v)
    q_stat = sum(vi * (yi - ybar) ** 2 for vi, yi in zip(v, y, strict=True))
    c = sum(v) - sum(vi**2 for vi in v) / sum(v)
    tau2 = max(0.0, (q_stat - (k - 1)) / c)
    w = [1.0 / (s**2 + tau2) for s in se]
    mu = sum(wi * yi for wi, yi in zip(w, y, strict=True)) / sum(w)
    q_hk = sum(wi * (yi - mu) ** 2 for wi, yi in zip(w, y, strict=True)) / (k - 1)
    se_mu = math.sqrt(max(q_hk, 1.0) / sum(w))
    half = float(t.ppf(0.975, k - 1)) * se_mu
    i2 = max(0.0, (q_stat - (k - 1)) / q_stat) if q_stat > 0 else 0.0
    return {
        "estimate": mu,
        "ci": [mu - half, mu + half],
        "se": se_mu,
        "tau2": tau2,
        "i2": i2,
        "weights": [wi / sum(w) for wi in w],
        "q": q_stat,
    }


def with_comparison(summary: Summary, **fields: Any) -> Summary:
    """``summary`` with its first comparison's ``fields`` replaced (validated again): for the
    boundaries of the suite rules, where a study table that lands exactly on them is not worth
    building."""
    data = summary.model_dump(mode="json")
    data["comparisons"][0].update(fields)
    return Summary.model_validate(data)
