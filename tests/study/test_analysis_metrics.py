"""Hand-worked checks of every per-group metric of the sensitivity summary (DESIGN.md)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from study.analysis import summarize
from study.analysis.metrics import bin_index, expected_max
from tests.study.analysis_rows import row

LN10 = math.log(10)


# One arm, one init, C = 10, w = 0.25, delta = 0.01. Bins k = floor(log10(lr) / 0.25):
#   lr 1e-3       -> -3/0.25      = -12        rows a .50 l 1.2 and a .60 l 1.0 -> a .55,  l 1.1
#   lr 2e-3       -> -2.699/0.25  = -10.80 -> -11   a .80  l .60
#   lr 10**-2.5   -> -2.5/0.25    = -10 (edge)      a .805 l .50
#   (bin -9 empty)
#   lr 1e-2       -> -2/0.25      = -8  (edge)      a .81  l .55
#   lr 1e-1       -> -4, diverged: imputed a = 1/10, l = ln 10
TABLE = [
    row("sgd", 1e-3, "he", 0, 0.50, 1.2),
    row("sgd", 1e-3, "he", 1, 0.60, 1.0),
    row("sgd", 2e-3, "he", 0, 0.80, 0.6),
    row("sgd", 10**-2.5, "he", 0, 0.805, 0.5),
    row("sgd", 1e-2, "he", 0, 0.81, 0.55),
    row("sgd", 1e-1, "he", 0, None, None, diverged=True),
]


def test_bin_edges_are_exact():
    # 1e-2 is bin -8 and 10**-2.5 bin -10, although log10/w may land a hair below the edge.
    assert bin_index(np.array([1e-2, 10**-2.5, 1e-3, 2e-3, 0.1, 1.0]), 0.25).tolist() == [
        -8,
        -10,
        -12,
        -11,
        -4,
        0,
    ]
    # Each bin covers [k w, (k + 1) w): just below an edge is the previous bin.
    assert bin_index(np.array([1e-2 * 0.9999, 10**0.25]), 0.25).tolist() == [-9, 1]


def test_hand_worked_arm_metrics():
    s = summarize(TABLE, num_classes=10)
    arm = s["arms"]["sgd"]
    assert arm["n"] == 6
    assert arm["best"] == pytest.approx(0.81)
    assert arm["worst"] == pytest.approx(0.1)  # the diverged row, imputed at chance
    # sorted a: .1 .5 .6 .8 .805 .81 -> median (.6 + .8) / 2
    assert arm["median"] == pytest.approx(0.7)
    assert arm["divergence_rate"] == pytest.approx(1 / 6)
    assert arm["best_lr"] == pytest.approx(1e-2)
    # best bin mean .81, threshold .80: bins -11 (.80, equality counts) and -10 (.805) form a
    # run of 2; bin -8 (.81) is cut off by the empty bin -9; -12 (.55) and -4 (.1) fail.
    assert arm["lr_window_decades"] == pytest.approx(0.5)
    # Wortsman: bin losses 1.1 .6 .5 .55 ln10, min .5 ->
    # mean(.6, .1, 0, .05, ln10 - .5) = (0.75 + ln10 - 0.5) / 5
    assert arm["lr_sensitivity"] == pytest.approx((0.75 + LN10 - 0.5) / 5)
    assert arm["init_sensitivity"] is None  # one init
    # expected max: n=1 the mean 3.615/6; n=2: sum a_(i) (i-1) / C(6,2)
    #   = (.5 + 2*.6 + 3*.8 + 4*.805 + 5*.81) / 15 = 11.37 / 15; n=6 the max.
    em = arm["expected_max"]
    assert len(em) == 6
    assert em[0] == pytest.approx(3.615 / 6)
    assert em[1] == pytest.approx(11.37 / 15)
    assert em[-1] == pytest.approx(0.81)
    # the only init: by_init repeats the arm's numbers
    he = arm["by_init"]["he"]
    for key in ("n", "best", "median", "worst", "divergence_rate", "best_lr"):
        assert he[key] == pytest.approx(arm[key])
    assert he["lr_window_decades"] == pytest.approx(0.5)
    assert he["expected_max"] == pytest.approx(em)


def test_window_depends_on_delta_and_bin_width():
    # delta = 0.02: threshold .79 -> the same runs ({-11, -10} and {-8}): still 0.5
    assert summarize(TABLE, num_classes=10, delta=0.02)["arms"]["sgd"][
        "lr_window_decades"
    ] == pytest.approx(0.5)
    # delta = 0.3: threshold .51 -> bins -12 (.55), -11, -10 form a run of 3 -> 0.75
    assert summarize(TABLE, num_classes=10, delta=0.3)["arms"]["sgd"][
        "lr_window_decades"
    ] == pytest.approx(0.75)
    # w = 1 decade: bins -3 (1e-3, 2e-3, 10**-2.5: a .5 .6 .8 .805 -> .67625), -2 (.81),
    # -1 (.1). Best .81, threshold .80: only bin -2 -> 1 bin x 1 decade.
    s = summarize(TABLE, num_classes=10, bin_width=1.0)["arms"]["sgd"]
    assert s["lr_window_decades"] == pytest.approx(1.0)
    # Wortsman with w = 1: bin losses (1.2+1.0+.6+.5)/4 = .825, .55, ln10; min .55
    #   -> mean(.275, 0, ln10 - .55)
    assert s["lr_sensitivity"] == pytest.approx((0.275 + LN10 - 0.55) / 3)


def test_init_sensitivity_uses_best_bin_mean_per_init():
    # init A: lr 1e-2 a .9 and .7 (bin -8 mean .8), lr 1e-1 a .75 -> b_A = .8 (best ROW .9)
    # init B: lr 1e-2 a .6, lr 1e-1 a .85 -> b_B = .85
    # init C: lr 1e-2 diverged -> a = 1/10 -> b_C = .1
    # max b = .85 -> mean(.05, 0, .75) = .8 / 3
    rows = [
        row("sgd", 1e-2, "A", 0, 0.9, 0.3),
        row("sgd", 1e-2, "A", 1, 0.7, 0.6),
        row("sgd", 1e-1, "A", 0, 0.75, 0.5),
        row("sgd", 1e-2, "B", 0, 0.6, 0.9),
        row("sgd", 1e-1, "B", 0, 0.85, 0.4),
        row("sgd", 1e-2, "C", 0, float("nan"), float("nan"), diverged=True),
    ]
    arm = summarize(rows, num_classes=10)["arms"]["sgd"]
    assert arm["init_sensitivity"] == pytest.approx(0.8 / 3)
    assert sorted(arm["by_init"]) == ["A", "B", "C"]
    a, b, c = (arm["by_init"][k] for k in "ABC")
    assert (a["n"], a["best"], a["worst"], a["best_lr"]) == (3, 0.9, 0.7, 1e-2)
    assert a["median"] == pytest.approx(0.75)
    # A's bins: -8 mean .8, -4 mean .75; threshold .79 -> only -8 -> .25 decades
    assert a["lr_window_decades"] == pytest.approx(0.25)
    # A's losses: -8 (.3+.6)/2 = .45, -4 .5 -> mean(0, .05)
    assert a["lr_sensitivity"] == pytest.approx(0.025)
    assert b["best_lr"] == pytest.approx(1e-1)
    assert b["expected_max"] == pytest.approx([0.725, 0.85])
    assert c == {
        "n": 1,
        "best": pytest.approx(0.1),
        "median": pytest.approx(0.1),
        "worst": pytest.approx(0.1),
        "divergence_rate": 1.0,
        "best_lr": pytest.approx(1e-2),
        "lr_window_decades": pytest.approx(0.25),
        "lr_sensitivity": 0.0,  # min(ln10, ln10) - ln10
        "expected_max": [pytest.approx(0.1)],
    }


def test_expected_max_three_values_by_hand():
    # sorted .2 .5 .9: n=1 mean 1.6/3; n=2 over the pairs {.2,.5} {.2,.9} {.5,.9}: (.5+.9+.9)/3
    assert expected_max(np.array([0.9, 0.2, 0.5])) == pytest.approx([1.6 / 3, 2.3 / 3, 0.9])


@pytest.mark.parametrize("n_values", [1, 2, 5, 8])
def test_expected_max_matches_enumeration_of_subsets(n_values):
    values = np.random.default_rng(n_values).random(n_values).round(2)  # with ties
    em = expected_max(values)
    for n in range(1, n_values + 1):
        maxima = [max(c) for c in itertools.combinations(values.tolist(), n)]
        assert em[n - 1] == pytest.approx(sum(maxima) / len(maxima), abs=1e-12)


def test_expected_max_is_exact_for_large_n_where_binomials_overflow():
    # C(10000, 5000) ~ 1e3008 overflows a float; the log-space weights do not.
    values = np.random.default_rng(0).random(10_000)
    em = np.array(expected_max(values))
    assert np.all(np.isfinite(em))
    assert em[0] == pytest.approx(values.mean(), abs=1e-12)
    assert em[-1] == pytest.approx(values.max(), abs=1e-12)
    assert np.all(np.diff(em) >= -1e-12)
    # E[max of 2] = sum_i a_(i) (i-1) / C(N, 2), computed directly
    a = np.sort(values)
    direct = float(np.sum(a * np.arange(10_000)) / (10_000 * 9_999 / 2))
    assert em[1] == pytest.approx(direct, rel=1e-12)
    # n = N-1: every (N-1)-subset misses one value; the max is a_(N) unless it misses a_(N)
    # -> (a_(N) (N-1) + a_(N-1)) / N
    assert em[-2] == pytest.approx((a[-1] * 9_999 + a[-2]) / 10_000, rel=1e-12)


def test_lr_sensitivity_is_zero_when_every_bin_is_equally_good():
    rows = [row("sgd", lr, "he", 0, 0.9, 0.3) for lr in (1e-3, 1e-2, 1e-1)]
    arm = summarize(rows, num_classes=10)["arms"]["sgd"]
    assert arm["lr_sensitivity"] == 0.0
    # three non-adjacent bins (-12, -8, -4): each run has length 1
    assert arm["lr_window_decades"] == pytest.approx(0.25)


def test_loss_above_chance_is_capped_in_wortsman():
    # bins: lr 1e-2 loss .5, lr 1e-1 loss 5.0 (worse than ln 10, not diverged)
    # -> mean(min(.5, ln10) - .5, min(5, ln10) - .5) = (ln10 - .5) / 2
    rows = [row("sgd", 1e-2, "he", 0, 0.9, 0.5), row("sgd", 1e-1, "he", 0, 0.3, 5.0)]
    assert summarize(rows, num_classes=10)["arms"]["sgd"]["lr_sensitivity"] == pytest.approx(
        (LN10 - 0.5) / 2
    )


def test_best_lr_tie_breaks_on_loss_then_lr():
    rows = [
        row("sgd", 1e-1, "he", 0, 0.9, 0.4),
        row("sgd", 1e-2, "he", 0, 0.9, 0.3),  # same accuracy, lower loss -> best
        row("sgd", 1e-3, "he", 0, 0.9, 0.3),  # same again: the smaller lr wins the tie
    ]
    assert summarize(rows, num_classes=10)["arms"]["sgd"]["best_lr"] == pytest.approx(1e-3)
    assert summarize(rows[:2], num_classes=10)["arms"]["sgd"]["best_lr"] == pytest.approx(1e-2)
