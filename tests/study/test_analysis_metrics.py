"""Hand-worked examples for every per-arm number of the summary (docs/summary.md works the
first one through in prose)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from study.analysis import summarize
from study.analysis.curves import mean_over_range, window_decades
from study.analysis.metrics import expected_max, expected_max_band
from tests.study.analysis_rows import row

L = math.log(10)  # ln C, C = 10

# One seed, C = 10, tau = 0.02, lr range [1e-4, 10] (x from -4 to 1, 5 decades).
#   sgd, init a: lr 1e-3 1e-2 1e-1 1    acc .3 .9 .8 .2   loss 1.5 .4 .6 3.0 (> ln 10: clipped)
#   sgd, init b: lr      1e-2 1e-1      acc    .5 .7      loss     1.2 .9
#   adam, init a: lr     1e-2           acc    .85        loss     .3  (the study's best loss)
# A* = .9 (sgd a 1e-2), g = .88, h = (.1 + .9)/2 = .5, l* = .3 (adam).
WORKED = [
    row("sgd", 1e-3, "a", 0, 0.3, 1.5),
    row("sgd", 1e-2, "a", 0, 0.9, 0.4),
    row("sgd", 1e-1, "a", 0, 0.8, 0.6),
    row("sgd", 1.0, "a", 0, 0.2, 3.0),
    row("sgd", 1e-2, "b", 0, 0.5, 1.2),
    row("sgd", 1e-1, "b", 0, 0.7, 0.9),
    row("adam", 1e-2, "a", 0, 0.85, 0.3),
]


@pytest.fixture(scope="module")
def worked():
    return summarize(WORKED, num_classes=10, arms=["sgd", "adam"], lr_range=(1e-4, 10.0))


def test_reference(worked):
    ref = worked.reference
    assert ref.best_acc == 0.9 and ref.best_loss == 0.3
    assert ref.good_threshold == pytest.approx(0.88, abs=1e-15)
    assert ref.learned_threshold == pytest.approx(0.5, abs=1e-15)
    assert (ref.chance_acc, ref.chance_loss, ref.tolerance) == (0.1, L, 0.02)
    assert ref.lr_range == [1e-4, 10.0]
    assert ref.best_cell.model_dump() == {"lr": 0.01, "init": "a", "init_scale": 1.0, "arm": "sgd"}


def test_window_crossings_are_interpolated(worked):
    a = worked.arms["sgd"].by_init["a"]
    # only lr 1e-2 (.9) is >= g. Left, .3 -> .9 crosses .88 at 0.58/0.6 of the decade: 1/30 of
    # a decade above g; right, .9 -> .8 crosses at 0.02/0.1 = 0.2. Window = 1/30 + 0.2.
    assert a.lr_window_decades == pytest.approx(1 / 30 + 0.2, abs=1e-12)
    # init b never reaches g: 0
    assert worked.arms["sgd"].by_init["b"].lr_window_decades == 0.0
    # the arm: the mean over its inits
    assert worked.arms["sgd"].lr_window_decades == pytest.approx((1 / 30 + 0.2) / 2, abs=1e-12)


def test_auc_is_flat_beyond_the_tried_lrs(worked):
    # a: flat .3 on [-4,-3], trapezoids .6 .85 .5, flat .2 on [0, 1]: 2.45 / 5
    assert worked.arms["sgd"].by_init["a"].auc == pytest.approx(0.49, abs=1e-12)
    # b: flat .5 on [-4,-2] (2 decades), .6, flat .7 on [-1, 1] (2 decades): 3.0 / 5
    assert worked.arms["sgd"].by_init["b"].auc == pytest.approx(0.6, abs=1e-12)
    assert worked.arms["sgd"].auc == pytest.approx(0.545, abs=1e-12)
    assert worked.arms["adam"].auc == pytest.approx(0.85, abs=1e-12)  # one lr: flat


def test_where_the_curves_peak_and_the_ends_the_range_cuts(worked):
    """docs/summary.md's worked example: h = .5. sgd a peaks at 1e-2 and is below h at both
    ends tried (.3, .2); sgd b is .5 and .7 at its two lrs, both >= h (.5 counts): cut at
    both ends; adam's one lr (.85) is both its lowest and highest: cut at both."""
    by = worked.arms["sgd"].by_init
    assert (by["a"].best_lr, by["a"].range_cut) == (0.01, [])
    assert (by["b"].best_lr, by["b"].range_cut) == (0.1, ["low", "high"])
    adam = worked.arms["adam"].by_init["a"]
    assert (adam.best_lr, adam.range_cut) == (0.01, ["low", "high"])
    (c,) = worked.comparisons
    assert [(x.arm, x.init, x.end) for x in c.range_cut] == [
        ("sgd", "b", "low"),
        ("sgd", "b", "high"),
        ("adam", "a", "low"),
        ("adam", "a", "high"),
    ]
    assert c.lr_shift_decades == 0.0  # init a: both peak at 1e-2 (b: adam has no init b)
    assert c.verdict == "not_enough_data"  # one seed comes first


def test_lr_sensitivity_is_against_the_study_wide_best_loss(worked):
    # a: clipped losses 1.5 .4 .6 ln10: (1.5 + .95 + .5 + (.6 + L)/2 + L) / 5 - .3 = .35 + .3 L
    a = worked.arms["sgd"].by_init["a"].lr_sensitivity
    assert a == pytest.approx(0.35 + 0.3 * L, abs=1e-12)
    # b: (2 * 1.2 + 1.05 + 2 * .9) / 5 - .3 = .75 -- not 0 although it is b's own best loss
    assert worked.arms["sgd"].by_init["b"].lr_sensitivity == pytest.approx(0.75, abs=1e-12)
    assert worked.arms["sgd"].lr_sensitivity == pytest.approx(0.55 + 0.15 * L, abs=1e-12)
    assert worked.arms["adam"].lr_sensitivity == 0.0  # adam's one cell defines l*


def test_group_numbers(worked):
    sgd = worked.arms["sgd"]
    assert (sgd.n_trials, sgd.n_cells) == (6, 6)
    assert (sgd.best, sgd.median, sgd.worst) == (0.9, pytest.approx(0.6), 0.2)
    assert sgd.best_cell.model_dump() == {"lr": 0.01, "init": "a", "init_scale": 1.0}
    assert sgd.divergence_rate == 0.0
    assert sgd.failure_rate == pytest.approx(2 / 6)  # .3 and .2 are < h = .5; .5 is not
    assert sgd.good_fraction == pytest.approx(1 / 6)
    assert sgd.init_regret == pytest.approx((0.0 + 0.2) / 2)
    assert sgd.init_spread == pytest.approx(0.2)
    assert sgd.by_init["b"].best_cell.lr == pytest.approx(0.1)
    adam = worked.arms["adam"]
    assert adam.good_fraction == 0.0 and adam.init_spread is None
    assert adam.init_regret == pytest.approx(0.05)
    assert "arm adam, init a: only 1 lr tried; its lr window is 0 and its AUC is flat" in (
        worked.warnings
    )


def test_a_run_that_only_touches_g_has_length_zero():
    rows = [row("sgd", lr, "a", 0, acc) for lr, acc in ((1e-3, 0.5), (1e-2, 0.9), (1e-1, 0.5))]
    s = summarize(rows, num_classes=10, tolerance=0.0)
    assert s.reference.good_threshold == 0.9
    assert s.arms["sgd"].lr_window_decades == 0.0
    # tau = .2: g = .7, crossings at .5 of each decade: 1 decade
    s = summarize(rows, num_classes=10, tolerance=0.2)
    assert s.arms["sgd"].lr_window_decades == pytest.approx(1.0, abs=1e-12)


def test_window_stays_inside_the_tried_range_and_auc_inside_the_lr_range():
    rows = [row("sgd", lr, "a", 0, 0.9) for lr in (1e-2, 1e-1)]
    # flat at A*: the window is the tried range (1 decade), not the lr range
    s = summarize(rows, num_classes=10, lr_range=(1e-4, 1.0))
    assert s.arms["sgd"].lr_window_decades == pytest.approx(1.0, abs=1e-12)
    assert s.arms["sgd"].auc == pytest.approx(0.9, abs=1e-12)
    # a narrower lr range integrates only its part; a point range gives the value there
    rows = [row("sgd", 1e-2, "a", 0, 0.2), row("sgd", 1.0, "a", 0, 0.6)]
    s = summarize(rows, num_classes=10, lr_range=(0.1, 1.0))  # from .4 (at 0.1) to .6
    assert s.arms["sgd"].auc == pytest.approx(0.5, abs=1e-12)
    s = summarize(rows, num_classes=10, lr_range=(0.1, 0.1))
    assert s.arms["sgd"].auc == pytest.approx(0.4, abs=1e-12)
    assert s.reference.lr_range == [0.1, 0.1]
    # no lr_range: the rows' smallest and largest lr
    s = summarize(rows, num_classes=10)
    assert s.reference.lr_range == [0.01, 1.0]
    assert s.arms["sgd"].auc == pytest.approx(0.4, abs=1e-12)


def test_init_scales_are_averaged_into_the_curve():
    rows = [
        row("sgd", 1e-2, "a", 0, 0.4) | {"init_scale": 0.5},
        row("sgd", 1e-2, "a", 0, 0.8) | {"init_scale": 2.0},
        row("sgd", 1e-1, "a", 0, 0.8) | {"init_scale": 0.5},
        row("sgd", 1e-1, "a", 0, 0.6) | {"init_scale": 2.0},
    ]
    s = summarize(rows, num_classes=10)
    arm = s.arms["sgd"]
    assert arm.n_cells == 4 and arm.best == 0.8
    assert arm.auc == pytest.approx((0.6 + 0.7) / 2, abs=1e-12)  # curve .6 -> .7
    assert arm.lr_window_decades == 0.0  # the curve never reaches g = .78
    # best cell ties at .8: lowest loss (equal), then lowest lr
    assert arm.best_cell.model_dump() == {"lr": 0.01, "init": "a", "init_scale": 2.0}


def test_seeds_average_into_cells_and_diverged_rows_count_at_chance():
    rows = [
        row("sgd", 1e-2, "a", 0, 0.9, 0.3),
        row("sgd", 1e-2, "a", 1, 0.7, 0.5),
        row("sgd", 1.0, "a", 0, None, None, diverged=True),
        row("sgd", 1.0, "a", 1, 0.5, float("nan")),  # non-finite loss: diverged
    ]
    s = summarize(rows, num_classes=10)
    arm = s.arms["sgd"]
    assert (arm.n_trials, arm.n_cells) == (4, 2)
    assert (arm.best, arm.worst) == (pytest.approx(0.8), pytest.approx(0.1))
    assert arm.divergence_rate == 0.5
    assert arm.failure_rate == 0.5  # h = (.1 + .8) / 2 = .45: only the two diverged rows
    assert s.reference.best_loss == pytest.approx(0.4)
    assert s.settings.nonfinite_as_diverged == 1


def test_best_cell_ties():
    rows = [
        row("sgd", 1e-1, "b", 0, 0.9, 0.3),
        row("sgd", 1e-2, "b", 0, 0.9, 0.3),
        row("sgd", 1e-2, "a", 0, 0.9, 0.3),
        row("sgd", 1e-3, "a", 0, 0.9, 0.4),  # lower lr but higher loss
        row("adam", 1e-3, "a", 0, 0.9, 0.3),  # lower lr, same loss: wins study-wide
    ]
    s = summarize(rows, num_classes=10, arms=["sgd", "adam"])
    assert s.arms["sgd"].best_cell.model_dump() == {"lr": 0.01, "init": "a", "init_scale": 1.0}
    assert s.reference.best_cell.model_dump() == {
        "lr": 0.001,
        "init": "a",
        "init_scale": 1.0,
        "arm": "adam",
    }
    s = summarize([*rows[:3], {**rows[2], "arm": "adam"}], num_classes=10, arms=["sgd", "adam"])
    assert s.reference.best_cell.arm == "sgd"  # a full tie: arm order


def test_expected_max_by_hand():
    # .2 .5 .9: E1 = mean; E2 = (0 * .2 + 1 * .5 + 2 * .9) / C(3, 2); E3 = max
    assert expected_max(np.array([0.9, 0.2, 0.5])) == pytest.approx(
        [1.6 / 3, 2.3 / 3, 0.9], abs=1e-12
    )
    assert expected_max(np.array([])) == []


def _brute_expected_max(values):
    a = list(values)
    return [np.mean([max(c) for c in itertools.combinations(a, n)]) for n in range(1, len(a) + 1)]


def test_expected_max_matches_brute_force_and_its_band_the_recipe():
    values = np.array([0.31, 0.72, 0.55, 0.9, 0.12, 0.66, 0.72])
    assert expected_max(values) == pytest.approx(_brute_expected_max(values), abs=1e-12)
    low, high = expected_max_band(values, n_resamples=200)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, values.size, size=(200, values.size))
    curves = np.array([_brute_expected_max(values[i]) for i in idx])
    want_low, want_high = np.percentile(curves, [2.5, 97.5], axis=0)
    assert low == pytest.approx(want_low.tolist(), abs=1e-12)
    assert high == pytest.approx(want_high.tolist(), abs=1e-12)
    assert all(lo <= e + 1e-12 for lo, e in zip(low, expected_max(values), strict=True))


def test_expected_max_of_many_values_starts_at_the_mean_and_ends_at_the_max():
    values = np.random.default_rng(1).uniform(0.1, 0.95, 3000)
    curve = np.array(expected_max(values))
    assert curve[0] == pytest.approx(values.mean(), abs=1e-12)
    assert curve[-1] == pytest.approx(values.max(), abs=1e-12)
    assert np.all(np.diff(curve) >= -1e-12)


def _window_by_segments(x, y, g):
    """A literal walk over the segments, for comparison with the batch implementation."""
    best = run = 0.0
    for j in range(len(x) - 1):
        dx, y0, y1 = x[j + 1] - x[j], y[j], y[j + 1]
        if y0 >= g and y1 >= g:
            run += dx
        elif y0 >= g:  # leaves at the crossing
            run += (y0 - g) / (y0 - y1) * dx
            best, run = max(best, run), 0.0
        elif y1 >= g:  # enters at the crossing
            run = (y1 - g) / (y1 - y0) * dx
        else:
            run = 0.0
        best = max(best, run)
    return best


def test_batch_window_matches_a_segment_walk():
    rng = np.random.default_rng(3)
    for n in (1, 2, 3, 5, 9, 17):
        x = np.sort(rng.uniform(-4, 1, n))
        y = rng.uniform(0, 1, (50, n))
        g = rng.uniform(0.2, 0.8, 50)
        got = window_decades(x, y, g)
        want = [_window_by_segments(x, y[r], g[r]) if n > 1 else 0.0 for r in range(50)]
        assert got == pytest.approx(want, abs=1e-12)


def test_the_area_is_linear_in_the_curve():
    """The AUC is a weighted sum of the curve's values (the reason the replicate mean of the
    per-seed AUC differences equals the difference of the all-seeds AUCs): the area of each
    unit curve gives the weights, and every curve's area is its values times them."""
    rng = np.random.default_rng(4)
    x = np.sort(rng.uniform(-3, 0, 7))
    eye = np.eye(7)
    for lo, hi in ((-4.0, 1.0), (-2.0, -1.0), (-1.5, -1.5), (-0.5, 2.0)):
        v = np.array([mean_over_range(x, eye[j], lo, hi) for j in range(7)])
        for y in rng.uniform(0, 1, (5, 7)):
            assert y @ v == pytest.approx(mean_over_range(x, y, lo, hi), abs=1e-12)
