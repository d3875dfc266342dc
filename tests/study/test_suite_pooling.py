"""random_effects(): statsmodels' combine_effects read right. Checked against a meta-analysis
written in the test from the textbook formulas (tests/study/suite_cases.py), on hand-worked
inputs (docs/suites.md's examples) and on generated ones; the edge cases statsmodels leaves to
the caller (tau2 below 0, identical estimates, fewer than 2 estimates) and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from study.analysis.pooling import random_effects
from study.errors import ConfigError
from tests.study.suite_cases import textbook_random_effects

#: t(0.975, 2) in closed form (F(t) = 1/2 + t / (2 sqrt(2 + t^2)) with 2 df).
T_2 = 0.95 * math.sqrt(2 / 0.0975)


def _matches(got, want) -> None:
    assert got.estimate == pytest.approx(want["estimate"], rel=1e-9, abs=1e-13)
    assert got.ci == pytest.approx(want["ci"], rel=1e-9, abs=1e-13)
    assert got.se == pytest.approx(want["se"], rel=1e-9)
    assert got.tau2 == pytest.approx(want["tau2"], rel=1e-8, abs=1e-13)
    assert got.i2 == pytest.approx(want["i2"], rel=1e-8, abs=1e-10)
    assert got.weights == pytest.approx(want["weights"], rel=1e-9)


def test_worked_example_equal_standard_errors_by_hand():
    """docs/suites.md: y = (+0.05, +0.01, +0.03), every se 0.01 (v = 10,000). ȳ = 0.03,
    Q = 10,000 · (0.02² + 0.02² + 0) = 8, c = 30,000 − 3·10⁸/30,000 = 20,000, τ² = (8 − 2) /
    20,000 = 0.0003; w = 1/(0.0001 + 0.0003) = 2,500 each, μ = 0.03, q = 2,500 · 0.0008 / 2 = 1,
    se = √(1/7,500) = 0.011547, interval 0.03 ± 4.3027 · 0.011547 = [−0.0197, +0.0797];
    I² = (8 − 2)/8 = 0.75."""
    got = random_effects([0.05, 0.01, 0.03], [0.01, 0.01, 0.01])
    assert got.k == 3
    assert got.tau2 == pytest.approx(0.0003, rel=1e-12)
    assert got.estimate == pytest.approx(0.03, rel=1e-12)
    assert got.se == pytest.approx(math.sqrt(1 / 7500), rel=1e-12)
    half = T_2 * math.sqrt(1 / 7500)
    assert half == pytest.approx(0.049683, abs=1e-6)
    assert got.ci == pytest.approx([0.03 - half, 0.03 + half], rel=1e-12)
    assert got.i2 == pytest.approx(0.75, rel=1e-12)
    assert got.weights == pytest.approx([1 / 3] * 3, rel=1e-12)
    # with equal standard errors and tau2 > 0, DL + Hartung-Knapp is the one-sample t
    # interval of the k estimates: 0.03 ± t(0.975, 2) · sd / √3, sd = 0.02
    assert got.ci == pytest.approx([0.03 - T_2 * 0.02 / math.sqrt(3), 0.03 + half], rel=1e-12)


def test_identical_estimates_use_the_standard_interval_not_a_point():
    """y = 0.02 three times, se 0.01: Q = 0, τ² = 0, I² = 0. The plain Hartung-Knapp variance
    q/Σw is 0 (statsmodels' conf_int()[2] is the point [0.02, 0.02]), which would call three
    noisy estimates that happen to agree a certain +0.02. The modified interval uses max(q, 1):
    0.02 ± t(0.975, 2) · √(1/30,000) = 0.02 ± 0.0248 = [−0.0048, +0.0448]."""
    got = random_effects([0.02, 0.02, 0.02], [0.01, 0.01, 0.01])
    assert (got.tau2, got.i2) == (0.0, 0.0)
    assert got.estimate == pytest.approx(0.02, rel=1e-12)
    half = T_2 * math.sqrt(1 / 30000)
    assert half == pytest.approx(0.024842, abs=1e-6)
    assert got.ci == pytest.approx([0.02 - half, 0.02 + half], rel=1e-12)
    from statsmodels.stats.meta_analysis import combine_effects

    # (with equal variances statsmodels' untruncated tau2 is -v: its random-effects weights
    # divide by 0, hence the errstate)
    with np.errstate(divide="ignore", invalid="ignore"):
        plain = combine_effects(np.full(3, 0.02), np.full(3, 1e-4), method_re="dl", use_t=True)
        assert plain.tau2 == pytest.approx(-1e-4)
        assert plain.conf_int(use_t=True)[2] == pytest.approx([0.02, 0.02], abs=1e-15)


def test_a_negative_dl_tau2_from_statsmodels_is_truncated_at_zero():
    """Q < k − 1: statsmodels 0.15's DL tau2 is (Q − (k−1))/c < 0 and its random-effects
    weights 1/(v + tau2) use it. The DL estimate is max(0, ·): the fixed-effect weights."""
    y, se = [0.030, 0.031, 0.029], [0.01, 0.02, 0.015]
    from statsmodels.stats.meta_analysis import combine_effects

    raw = combine_effects(np.array(y), np.array(se) ** 2, method_re="dl", use_t=True)
    assert raw.tau2 < 0 and raw.i2 < 0  # what the caller must not pass on
    got = random_effects(y, se)
    assert got.tau2 == 0.0 and got.i2 == 0.0
    v = [1 / s**2 for s in se]
    assert got.estimate == pytest.approx(
        sum(a * b for a, b in zip(v, y, strict=True)) / sum(v), rel=1e-12
    )
    _matches(got, textbook_random_effects(y, se))


def test_heterogeneous_estimates_by_the_textbook():
    y, se = [0.03, 0.01, -0.02, 0.05], [0.01, 0.02, 0.015, 0.03]
    got = random_effects(y, se)
    want = textbook_random_effects(y, se)
    assert want["tau2"] > 0 and got.tau2 > 0
    _matches(got, want)


@given(
    st.lists(
        st.tuples(
            st.floats(-0.3, 0.3, allow_nan=False),
            st.floats(1e-3, 0.1, allow_nan=False),
        ),
        min_size=2,
        max_size=8,
    )
)
def test_generated_inputs_match_the_textbook(pairs):
    y = [p[0] for p in pairs]
    se = [p[1] for p in pairs]
    got = random_effects(y, se)
    want = textbook_random_effects(y, se)
    assert got.k == len(y)
    _matches(got, want)
    assert got.ci[0] <= got.estimate <= got.ci[1]
    assert 0.0 <= got.i2 <= 1.0 and got.tau2 >= 0.0


def test_fewer_than_two_estimates_pool_nothing():
    for y, se in (([], []), ([0.02], [0.01])):
        got = random_effects(y, se)
        assert got.k == len(y)
        assert (got.estimate, got.ci, got.se, got.tau2, got.i2, got.weights) == (None,) * 6


@pytest.mark.parametrize(
    ("y", "se", "match"),
    [
        ([0.1, 0.2], [0.01], "effects and ses must be two lists of one length"),
        ([0.1, float("nan")], [0.01, 0.01], "effects must be finite"),
        ([0.1, 0.2], [0.01, 0.0], r"ses must be finite and > 0, got \[0.01, 0.0\]"),
        ([0.1, 0.2], [0.01, float("inf")], "ses must be finite and > 0"),
        ([0.1, 0.2], [0.01, -0.01], "ses must be finite and > 0"),
    ],
)
def test_bad_input_is_refused(y, se, match):
    with pytest.raises(ConfigError, match=match):
        random_effects(y, se)
    with pytest.raises(ConfigError, match=r"level must be in \(0, 1\), got 1.0"):
        random_effects([0.1, 0.2], [0.01, 0.01], level=1.0)
