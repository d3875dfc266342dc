"""summarize(): comparisons over points, replicate intervals, where curves peak and whether the
lr range holds them, verdicts (each one reached by a hand-worked table), arms that never learn,
filtering by status, input validation, null (never NaN), exact order independence."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest

from study.analysis import summarize
from study.errors import ConfigError
from tests.study.analysis_rows import row

# Two arms, init he, C = 10. Restricted to the seeds both arms have at each point:
#   lr 1e-3: sgd {s0: .2, s1: .4}, insgd {s0: .5}          -> seed 0 only: d = .5 - .2 = .3
#   lr 1e-2: sgd .8 .6 (.7), insgd .9 .7 (.8)              -> d = .1
#   lr 1e-1: sgd diverged (.1) .5 (.3), insgd .7 .7        -> d = .4
#   lr 1:    sgd both diverged (.1), insgd .35 .15 (.25)   -> d = .15
#   lr 10:   insgd only (.2): not a shared point, so the comparison is unpaired
# A* = .8 (insgd at 1e-2), h = .45: live points are those where either arm reached .45:
# 1e-3 (.5), 1e-2, 1e-1 (.7); not lr 1 (.1, .25).
PAIRED = [
    row("sgd", 1e-3, "he", 0, 0.2),
    row("sgd", 1e-3, "he", 1, 0.4),
    row("sgd", 1e-2, "he", 0, 0.8),
    row("sgd", "0.01", "he", 1, 0.6),  # MLflow gives params back as strings
    row("sgd", 1e-1, "he", 0, None, None, diverged=True),
    row("sgd", 1e-1, "he", "1", 0.5),
    row("sgd", 1.0, "he", 0, None, None, diverged="true"),
    row("sgd", 1.0, "he", 1, None, None, diverged=True),
    row("insgd", 1e-3, "he", 0, 0.5),
    row("insgd", 0.010000000000000002, "he", 0, 0.9),  # float noise: still the same point
    row("insgd", 1e-2, "he", 1, 0.7),
    row("insgd", 1e-1, "he", 0, 0.7),
    row("insgd", 1e-1, "he", 1, 0.7),
    row("insgd", 1.0, "he", 0, 0.35),
    row("insgd", 1.0, "he", 1, 0.15),
    row("insgd", 10.0, "he", 0, 0.2),
]
D = np.array([0.5 - 0.2, 0.8 - 0.7, 0.7 - 0.3, 0.25 - 0.1])


@pytest.fixture(scope="module")
def paired():
    return summarize(PAIRED, num_classes=10, arms=["sgd", "insgd"])


def test_comparison_over_points_by_hand(paired):
    (c,) = paired.comparisons
    assert (c.arm, c.baseline, c.paired, c.n_seeds, c.n_points) == ("insgd", "sgd", False, 2, 4)
    assert c.mean_diff == pytest.approx(0.2375, abs=1e-12)
    assert (c.n_nonzero, c.win_rate) == (4, 1.0)
    # Wilcoxon, exact: 4 positive differences of distinct size: T- = 0, p = 2 / 2^4
    assert c.wilcoxon_p == pytest.approx(0.125)
    assert c.n_live == 3
    assert c.mean_diff_live == pytest.approx((0.3 + 0.1 + 0.4) / 3, abs=1e-12)
    assert c.verdict == "not_enough_data"  # 2 seeds, 4 points
    assert "comparison insgd vs sgd is unpaired (different points): it uses only the 4 " in (
        " ".join(paired.warnings)
    )


def _point_ci(d: np.ndarray) -> list[float]:
    """The contract's recipe: 10,000 resamples of the points, default_rng(0), int64."""
    idx = np.random.default_rng(0).integers(0, d.size, size=(10_000, d.size))
    return np.percentile(d[idx].mean(axis=1), [2.5, 97.5]).tolist()


def test_point_bootstrap_follows_the_recipe(paired):
    (c,) = paired.comparisons
    assert c.ci == pytest.approx(_point_ci(D), abs=1e-12)
    assert c.ci_live == pytest.approx(_point_ci(D[:3]), abs=1e-12)
    # and against the exact bootstrap distribution (4^4 equally likely resamples)
    means = [sum(r) / 4 for r in itertools.product(D, repeat=4)]
    exact = np.percentile(means, [2.5, 97.5])
    assert c.ci == pytest.approx(exact.tolist(), abs=0.03)


#: Student t quantiles in closed form: with 1 degree of freedom t is Cauchy, t(0.975, 1) =
#: tan(0.475 pi); with 2, F(t) = 1/2 + t / (2 sqrt(2 + t^2)), so t(0.975, 2) =
#: 0.95 sqrt(2 / 0.0975).
T_1 = math.tan(0.475 * math.pi)  # 12.7062
T_2 = 0.95 * math.sqrt(2 / 0.0975)  # 4.3027


def test_replicates_with_two_seeds_by_hand(paired):
    """Each seed's AUC and window from its own rows, against the all-seeds reference (A* = 0.8,
    g = 0.78) and the rows' lr range 1e-3..10 (x from -3 to 1, 4 decades, flat ends):

    seed 0: sgd .2 .8 .1 .1 (x = -3..0; lr 1e-1 and 1 diverged) -> (.5 + .45 + .1 + .1) / 4
    = .2875; insgd .5 .9 .7 .35 .2 (x = -3..1) -> (.7 + .8 + .525 + .275) / 4 = .575.
    seed 1: sgd .4 .6 .5 .1 -> (.5 + .55 + .3 + .1) / 4 = .3625; insgd .7 .7 .15 (x = -2..0)
    -> (.7 + .7 + .425 + .15) / 4 = .49375.
    D = (.2875, .13125). Windows at g = .78: sgd seed 0 only around lr 1e-2 (.8): crossings
    1/30 (up from .2) and 1/35 (down to .1) of a decade; insgd seed 0 around 1e-2 (.9): .3 and
    .6; seed 1 neither arm reaches .78. D_window = (.9 - 13/210, 0).
    """
    (c,) = paired.comparisons
    d = (0.575 - 0.2875, 0.49375 - 0.3625)
    assert c.auc_diff == pytest.approx(sum(d) / 2, abs=1e-12)
    half = T_1 * abs(d[0] - d[1]) / 2  # t sd / sqrt(2), sd = |d0 - d1| / sqrt(2)
    assert c.auc_diff_ci == pytest.approx([sum(d) / 2 - half, sum(d) / 2 + half], abs=1e-9)
    t = (sum(d) / 2) / (abs(d[0] - d[1]) / 2)
    assert c.auc_p == pytest.approx(1 - 2 / math.pi * math.atan(t), abs=1e-9)
    w = (0.9 - 13 / 210, 0.0)
    assert c.window_diff == pytest.approx(sum(w) / 2, abs=1e-12)
    assert c.window_diff_ci == pytest.approx(
        [sum(w) / 2 - T_1 * w[0] / 2, sum(w) / 2 + T_1 * w[0] / 2], abs=1e-9
    )
    # the table is unbalanced (insgd lacks seed 1 at lr 1e-3 and 10), so the replicate mean
    # (0.209375) is not the difference of the all-seeds AUCs: insgd .5 .8 .7 .25 .2 -> .525,
    # sgd .3 .7 .3 .1 -> .325
    assert paired.arms["insgd"].auc - paired.arms["sgd"].auc == pytest.approx(0.2, abs=1e-12)
    assert c.auc_diff == pytest.approx(0.209375, abs=1e-12)


def _grid_rows(arms, lrs, inits, seeds, acc_of, drop=()):
    rows = []
    for arm, lr, init, seed in itertools.product(arms, lrs, inits, seeds):
        if (arm, lr, init, seed) in drop:
            continue
        acc = acc_of(arm, lr, init, seed)
        rows.append(row(arm, lr, init, seed, acc, loss=1.0 - acc))
    return rows


def _bump(x: float, centre: float = -2.0, width: float = 0.6, top: float = 0.8) -> float:
    """A curve over log10(lr) that falls to 0.1 (chance, C = 10) well inside 1e-5..10."""
    return 0.1 + top * math.exp(-(((x - centre) / width) ** 2))


LRS = [10.0 ** (-5 + k / 2) for k in range(13)]  # 1e-5 .. 10, 2 per decade


def test_three_seeds_give_the_t_interval_by_hand():
    """B is A plus 0.01, 0.03, 0.05 in seeds 0, 1, 2 at every lr: the AUC is linear in the
    curve and flat beyond it, so D = (0.01, 0.03, 0.05), mean 0.03, sd 0.02, and the 95%
    interval is 0.03 ± t(0.975, 2) · 0.02 / √3 = 0.03 ± 0.0497: [-0.0197, +0.0797], which
    holds 0. The one-sample t is 0.03 / (0.02 / √3) = 2.598 with 2 df: p = 1 - t / √(2 + t²)."""
    offset = {0: 0.01, 1: 0.03, 2: 0.05}

    def acc(arm, lr, init, seed):
        return _bump(math.log10(lr)) + (offset[seed] if arm == "b" else 0.0)

    rows = _grid_rows(["a", "b"], LRS, ["he"], [0, 1, 2], acc)
    s = summarize(rows, num_classes=10, arms=["a", "b"], lr_range=(1e-5, 10.0))
    (c,) = s.comparisons
    assert c.auc_diff == pytest.approx(0.03, abs=1e-12)
    half = T_2 * 0.02 / math.sqrt(3)
    assert half == pytest.approx(0.0497, abs=1e-4)
    assert c.auc_diff_ci == pytest.approx([0.03 - half, 0.03 + half], abs=1e-12)
    assert c.auc_diff_se == pytest.approx(0.02 / math.sqrt(3), abs=1e-12)  # 0.01155
    t = 0.03 / (0.02 / math.sqrt(3))
    assert c.auc_p == pytest.approx(1 - t / math.sqrt(2 + t * t), abs=1e-9)
    # the identity of a balanced table: the replicate mean is the all-seeds AUC difference
    assert c.auc_diff == pytest.approx(s.arms["b"].auc - s.arms["a"].auc, abs=1e-12)
    assert (c.n_seeds, c.n_points, c.range_cut) == (3, 13, [])
    assert c.verdict == "no_clear_difference"
    assert s.settings.n_seeds == 3 and "n_seed_bootstrap" not in s.settings.model_dump()


def test_a_shifted_optimum_inside_the_range_is_no_clear_difference():
    """B peaks half a decade higher than A with the same shape (as INSGD moves SGD's optimum):
    both curves fall to chance inside the range, so the AUC and the window are the same up to
    seed noise. Not more or less robust: the same robustness elsewhere; the shift is reported
    in lr_shift_decades."""
    noise = {0: 0.004, 1: -0.003, 2: 0.001}

    def acc(arm, lr, init, seed):
        centre = -2.5 if arm == "a" else -2.0
        return _bump(math.log10(lr), centre) + noise[seed] * (1 if arm == "b" else -1)

    rows = _grid_rows(["a", "b"], LRS, ["he", "xavier"], [0, 1, 2], acc)
    s = summarize(rows, num_classes=10, arms=["a", "b"], lr_range=(1e-5, 10.0))
    (c,) = s.comparisons
    for arm, best in (("a", 10**-2.5), ("b", 1e-2)):
        for init in ("he", "xavier"):
            assert s.arms[arm].by_init[init].best_lr == pytest.approx(best)
            assert s.arms[arm].by_init[init].range_cut == []
    assert c.lr_shift_decades == pytest.approx(0.5, abs=1e-12)
    assert c.range_cut == []
    assert c.auc_diff_ci[0] < 0 < c.auc_diff_ci[1]
    assert c.verdict == "no_clear_difference"


def test_an_arm_still_learning_at_the_top_of_the_range_is_range_limited():
    """B's optimum sits two and a half decades above A's: at the range's top (lr 10) B still
    learns, so its good region goes on past the range. v2 judged it on where the range ended;
    v3 says range_limited, and the warning names arm, init and end and the bound to try (one
    decade further out: lr 100)."""

    def acc(arm, lr, init, seed):
        centre = -2.0 if arm == "a" else 0.6
        return _bump(math.log10(lr), centre, width=0.8) + 0.002 * seed

    rows = _grid_rows(["a", "b"], LRS, ["he"], [0, 1, 2], acc)
    s = summarize(rows, num_classes=10, arms=["a", "b"], lr_range=(1e-5, 10.0))
    (c,) = s.comparisons
    assert s.arms["b"].by_init["he"].range_cut == ["high"]
    assert s.arms["a"].by_init["he"].range_cut == []
    assert [cut.model_dump() for cut in c.range_cut] == [{"arm": "b", "init": "he", "end": "high"}]
    assert c.lr_shift_decades == pytest.approx(2.5)  # b peaks at lr 10^0.5 (0.6 is off-grid)
    assert c.verdict == "range_limited"
    (warning,) = [w for w in s.warnings if "still learns" in w]
    assert warning.startswith("arm b, init he: still learns at the highest lr tried (10;")
    assert warning.endswith("try search.lr.high: 100")
    # widened two decades, the curve falls to chance inside the range: no cut, a verdict
    wider = [10.0 ** (-5 + k / 2) for k in range(17)]
    rows = _grid_rows(["a", "b"], wider, ["he"], [0, 1, 2], acc)
    s = summarize(rows, num_classes=10, arms=["a", "b"], lr_range=(1e-5, 1e3))
    assert s.comparisons[0].range_cut == [] and s.comparisons[0].verdict != "range_limited"


def test_a_cut_at_the_low_end_and_a_single_lr():
    rows = [row("a", lr, "he", 0, y) for lr, y in ((1e-3, 0.9), (1e-2, 0.9), (1e-1, 0.1))]
    rows += [row("a", 1e-2, "one", 0, 0.8)]  # a single lr that learned: both ends cut
    rows += [row("a", 1e-2, "dead", 0, 0.1), row("a", 1e-1, "dead", 0, 0.2)]
    by = summarize(rows, num_classes=10).arms["a"].by_init
    assert (by["he"].best_lr, by["he"].range_cut) == (1e-3, ["low"])  # a tie: the lower lr
    assert (by["one"].best_lr, by["one"].range_cut) == (1e-2, ["low", "high"])
    assert (by["dead"].best_lr, by["dead"].range_cut) == (None, [])  # never reached h = 0.5


def test_mixed_is_reachable():
    """B keeps a broad plateau just below A's sharp peak (as Adam against SGD on digits): its
    AUC is higher in every seed, but it never comes within the tolerance of the study's best,
    while A does, so its window is smaller in every seed. The two intervals exclude 0 on
    opposite sides: mixed, not "no clear difference"."""

    def acc(arm, lr, init, seed):
        x = math.log10(lr)
        if arm == "a":
            return _bump(x, -2.0, width=0.5, top=0.85) + 0.003 * seed
        return _bump(x, -2.0, width=1.6, top=0.78) + 0.002 * seed

    rows = _grid_rows(["a", "b"], LRS, ["he"], [0, 1, 2], acc)
    s = summarize(rows, num_classes=10, arms=["a", "b"], lr_range=(1e-5, 10.0))
    (c,) = s.comparisons
    assert c.auc_diff_ci[0] > 0 and c.window_diff_ci[1] < 0
    assert c.range_cut == [] and c.verdict == "mixed"


def test_the_mixed_example_of_the_docs_by_hand():
    """docs/summary.md, "Worked: mixed": D_AUC = (.04, .05, .06) gives .05 ± 4.3027 · .01/√3 =
    [+.025, +.075]; D_window = (-.5, -.25, -.4) gives -.383 ± 4.3027 · .1258/√3 = [-.696,
    -.071]: both exclude 0, on opposite sides."""
    from study.analysis.replicates import t_interval
    from study.analysis.summary import verdict

    auc = t_interval(np.array([0.04, 0.05, 0.06]))
    window = t_interval(np.array([-0.5, -0.25, -0.4]))
    assert auc == pytest.approx(
        [0.05 - T_2 * 0.01 / math.sqrt(3), 0.05 + T_2 * 0.01 / math.sqrt(3)]
    )
    assert auc == pytest.approx([0.0252, 0.0748], abs=1e-4)
    assert window == pytest.approx([-0.6959, -0.0708], abs=1e-4)
    c = {"n_seeds": 3, "n_points": 6, "range_cut": [], "auc_diff_ci": auc, "window_diff_ci": window}
    assert verdict(c) == "mixed"
    assert verdict({**c, "window_diff_ci": [-0.1, 0.2]}) == "more_robust"
    assert verdict({**c, "window_diff_ci": [0.1, 0.2], "auc_diff_ci": [-0.2, -0.1]}) == "mixed"
    assert verdict({**c, "auc_diff_ci": [-0.2, -0.1], "window_diff_ci": [-0.3, 0.1]}) == (
        "less_robust"
    )
    assert verdict({**c, "auc_diff_ci": [-0.1, 0.1], "window_diff_ci": [0.1, 0.3]}) == (
        "no_clear_difference"
    )
    cut = {**c, "range_cut": [{"arm": "b", "init": "he", "end": "high"}]}
    assert verdict(cut) == "range_limited" and verdict(cut, complete=False) == "pending"
    assert verdict({**cut, "n_seeds": 2}) == "not_enough_data"  # before the range


def test_a_study_that_has_not_ended_states_no_verdict():
    noise = {0: 0.004, 1: -0.003, 2: 0.001}

    def acc(arm, lr, init, seed):
        centre = -1.0 if arm == "c" else -2.0
        top = 0.8 - 0.1 * (arm == "b")
        return _bump(math.log10(lr), centre, top=top) + noise[seed] * (arm == "c")

    rows = _grid_rows(["a", "b", "c"], LRS, ["he"], [0, 1, 2], acc)
    done = summarize(rows, num_classes=10, arms=["a", "b", "c"])
    running = summarize(rows, num_classes=10, arms=["a", "b", "c"], complete=False)
    assert [c.verdict for c in done.comparisons] == ["less_robust", "no_clear_difference"]
    assert [c.verdict for c in running.comparisons] == ["pending", "pending"]
    assert running.partial and not done.partial
    # every number is the same: only the verdicts wait
    a, b = done.model_dump(), running.model_dump()
    for c in a["comparisons"] + b["comparisons"]:
        c.pop("verdict")
    a.pop("partial")
    b.pop("partial")
    assert a == b


def _learns(arm, lr, init, seed):
    x = math.log10(lr)
    return 0.1 + 0.8 * math.exp(-(((x + 2) / 1.0) ** 2)) + 0.01 * seed - 0.05 * (init == "b")


def test_an_arm_that_never_learns_ranks_worst():
    """v1 scored an arm that never learns (and one whose trials all diverge) as the most robust:
    a whole-range window and zero sensitivity. Against the study-wide reference both rank
    worst on every robustness number."""
    lrs = [1e-4, 1e-3, 1e-2, 1e-1, 1.0]
    rows = _grid_rows(["sgd"], lrs, ["a", "b"], [0, 1, 2], _learns)
    rows += _grid_rows(["dead"], lrs, ["a", "b"], [0, 1, 2], lambda *k: 0.1 + 0.001 * k[3])
    rows += [
        {**r, "arm": "diverges", "val_acc": None, "val_loss": None, "diverged": True}
        for r in rows
        if r["arm"] == "sgd"
    ]
    s = summarize(rows, num_classes=10, arms=["sgd", "dead", "diverges"])
    sgd, dead, div = (s.arms[a] for a in ("sgd", "dead", "diverges"))
    for worst in (dead, div):
        assert worst.auc < sgd.auc
        assert worst.good_fraction == 0.0 < sgd.good_fraction
        assert worst.init_regret > sgd.init_regret
        assert worst.lr_window_decades == 0.0 < sgd.lr_window_decades
        assert worst.lr_sensitivity > sgd.lr_sensitivity
        assert worst.failure_rate == 1.0
    assert div.divergence_rate == 1.0 and div.auc == pytest.approx(0.1)
    for c in s.comparisons:
        assert c.auc_diff < 0 and c.window_diff < 0 and c.init_regret_diff > 0
        assert c.auc_diff_ci[1] < 0
        assert c.verdict == "less_robust"
        assert c.n_live == 2  # only sgd at lr 1e-2 (both inits) reached h = .5
    flipped = summarize(rows, num_classes=10, arms=["dead", "sgd"])
    assert flipped.comparisons[0].verdict == "more_robust"


def test_correlated_seeds_widen_the_point_bootstrap():
    """Seeds of one point share its difference (correlation ~1): the 48 seed pairs carry the
    information of 12 points. The bootstrap over points is measurably wider than v1's
    bootstrap over rows, which treated the 48 pairs as independent."""
    lrs = [10 ** (-4 + k / 3) for k in range(12)]
    effect = np.array([0.12, -0.08, 0.15, -0.1, 0.05, 0.2, -0.12, 0.09, -0.04, 0.18, -0.06, 0.1])
    jitter = np.random.default_rng(2).normal(0, 0.005, (12, 4))
    rows = []
    for p, lr in enumerate(lrs):
        for seed in range(4):
            base = 0.5 + 0.01 * seed
            rows.append(row("sgd", lr, "a", seed, base))
            rows.append(row("insgd", lr, "a", seed, base + effect[p] + jitter[p, seed]))
    s = summarize(rows, num_classes=10, arms=["sgd", "insgd"])
    (c,) = s.comparisons
    assert c.n_points == 12
    row_d = (effect[:, None] + jitter).ravel()  # the 48 per-row differences
    idx = np.random.default_rng(0).integers(0, row_d.size, size=(10_000, row_d.size))
    row_ci = np.percentile(row_d[idx].mean(axis=1), [2.5, 97.5])
    point_width = c.ci[1] - c.ci[0]
    row_width = row_ci[1] - row_ci[0]
    assert c.mean_diff == pytest.approx(row_d.mean(), abs=1e-12)
    assert point_width > 1.6 * row_width, (point_width, row_width)


def test_verdicts_need_three_seeds_and_six_points():
    lrs = [1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0]
    better = lambda arm, lr, init, seed: _learns(arm, lr, init, seed) + 0.05 * (arm == "insgd")  # noqa: E731
    rows = _grid_rows(["sgd", "insgd"], lrs, ["a"], [0, 1, 2], better)
    s = summarize(rows, num_classes=10, arms=["sgd", "insgd"])
    (c,) = s.comparisons
    assert (c.n_seeds, c.n_points, c.paired) == (3, 6, True)
    assert c.auc_diff == pytest.approx(0.05, abs=1e-12) and c.window_diff > 0
    assert c.auc_diff_ci[0] > 0 and c.verdict == "more_robust"
    two_seeds = summarize([r for r in rows if r["seed"] < 2], num_classes=10, arms=["sgd", "insgd"])
    assert two_seeds.comparisons[0].verdict == "not_enough_data"
    assert any("fewer than 3 seeds (2)" in w for w in two_seeds.warnings)
    five_points = summarize(
        [r for r in rows if r["lr"] != 10.0], num_classes=10, arms=["sgd", "insgd"]
    )
    assert five_points.comparisons[0].verdict == "not_enough_data"
    same = summarize(
        rows + [{**r, "arm": "twin"} for r in rows if r["arm"] == "sgd"],
        num_classes=10,
        arms=["sgd", "insgd", "twin"],
    )
    twin = same.comparisons[1]
    assert (twin.mean_diff, twin.ci, twin.win_rate, twin.wilcoxon_p) == (0.0, [0.0, 0.0], 0.5, None)
    assert twin.auc_diff_ci == [0.0, 0.0] and twin.verdict == "no_clear_difference"
    assert twin.auc_diff_se == 0.0
    one_seed = summarize([r for r in rows if r["seed"] == 0], num_classes=10)
    assert one_seed.comparisons[0].auc_diff_ci is None
    assert one_seed.comparisons[0].auc_diff_se is None
    assert any(w.startswith("only 1 seed") for w in one_seed.warnings)


def test_empty_table_arms_without_rows_and_a_missing_baseline():
    empty = summarize([], num_classes=10)
    assert empty.arms == {} and empty.comparisons == []
    assert empty.reference.best_acc is None and empty.reference.lr_range is None
    assert empty.settings.baseline is None and empty.settings.n_rows == 0

    rows = [row("sgd", 1e-2, "he", 0, 0.5), row("insgd", 1e-2, "he", 0, None, status="pending")]
    s = summarize(rows, num_classes=10, arms=["sgd", "insgd", "adam"])
    assert list(s.arms) == ["sgd", "insgd", "adam"]
    for name in ("insgd", "adam"):
        arm = s.arms[name]
        assert (arm.n_trials, arm.n_cells, arm.best, arm.auc, arm.init_regret) == (
            0,
            0,
            None,
            None,
            None,
        )
        assert arm.expected_max == [] and arm.expected_max_band == [[], []]
        assert arm.by_init == {}
    c = s.comparisons[0]
    assert (c.n_points, c.mean_diff, c.ci, c.win_rate, c.auc_diff) == (0, None, None, None, None)
    assert c.verdict == "not_enough_data"
    assert s.settings.excluded["pending"] == 1 and s.settings.n_used == 1
    assert "arm insgd: no finished trials; its numbers are null" in s.warnings
    s = summarize([row("insgd", 1e-2, "he", 0, 0.5)], num_classes=10, arms=["sgd", "insgd"])
    assert s.settings.baseline == "sgd" and s.comparisons[0].n_points == 0


def test_arms_not_listed_follow_by_name():
    rows = [row(a, 1e-2, "he", 0, 0.5) for a in ("zeta", "alpha", "sgd", "mid")]
    assert list(summarize(rows, num_classes=10, arms=["sgd"]).arms) == [
        "sgd",
        "alpha",
        "mid",
        "zeta",
    ]
    assert list(summarize(rows[::-1], num_classes=10).arms) == ["alpha", "mid", "sgd", "zeta"]


def test_filtering_by_status():
    rows = [
        row("sgd", 1e-2, "he", 0, 0.5),
        row("sgd", 1e-1, "he", 0, 0.99, status="early_stopped"),
        row("sgd", 1e-1, "he", 1, None, None, status="failed"),
        {"arm": "sgd", "status": "running"},
        {"arm": "sgd", "status": "pending"},
    ]
    s = summarize(rows, num_classes=10)
    assert s.arms["sgd"].best == 0.5 and s.arms["sgd"].n_trials == 1
    assert s.settings.excluded == {
        "early_stopped": 1, "failed": 1, "running": 1, "pending": 1, "stopped": 0,
    }  # fmt: skip
    assert "trials left out of every number: 1 early stopped, 1 failed, 1 running, 1 pending" in (
        s.warnings
    )


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"lr": 0}, "trials[0].lr must be a finite number > 0, got 0"),
        ({"val_acc": 1.5}, "trials[0].val_acc must be a fraction in [0, 1], got 1.5"),
        ({"seed": 1.5}, "trials[0].seed must be an integer, got 1.5"),
        ({"diverged": "maybe"}, "trials[0].diverged must be a boolean (true/false), got 'maybe'"),
        ({"status": "done"}, "trials[0].status must be one of finished, early_stopped"),
        ({"arm": ""}, "trials[0] lacks the required field 'arm'"),
    ],
)
def test_bad_rows_are_refused_naming_row_field_and_value(bad, message):
    with pytest.raises(ConfigError) as err:
        summarize([row("sgd", 1e-2, "he", 0, 0.5) | bad], num_classes=10)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_classes": 1}, "num_classes must be an integer >= 2, got 1"),
        ({"tolerance": 1.0}, "tolerance must be a number in [0, 1), got 1.0"),
        ({"tolerance": -0.1}, "tolerance must be a number in [0, 1), got -0.1"),
        ({"tolerance": float("nan")}, "tolerance must be a number in [0, 1), got nan"),
        ({"lr_range": (1.0, 0.1)}, "lr_range must be two finite numbers (low, high)"),
        ({"lr_range": (0, 1)}, "with 0 < low <= high, got (0, 1)"),
        ({"arms": ["sgd", "sgd"]}, "arms must not repeat a name"),
    ],
)
def test_bad_arguments(kwargs, message):
    args = {"num_classes": 10} | kwargs
    with pytest.raises(ConfigError) as err:
        summarize([row("sgd", 1e-2, "he", 0, 0.5)], **args)
    assert message in str(err.value)


def test_strict_json_with_nulls_never_nan(paired):
    text = paired.model_dump_json()
    data = json.loads(text)
    json.dumps(data, allow_nan=False)
    assert "NaN" not in text and "Infinity" not in text
    one = summarize([row("sgd", 1e-2, "he", 0, 0.5)], num_classes=10).model_dump(mode="json")
    json.dumps(one, allow_nan=False)
    assert one["arms"]["sgd"]["init_spread"] is None
    assert one["arms"]["sgd"]["importance"] == {"ped_anova": None, "fanova": None}
    assert list(data) == [
        "version",
        "partial",
        "reference",
        "arms",
        "comparisons",
        "settings",
        "warnings",
    ]


def test_dataframe_input_equals_rows():
    a = summarize(pd.DataFrame(PAIRED), num_classes=10, arms=["sgd", "insgd"])
    b = summarize(PAIRED, num_classes=10, arms=["sgd", "insgd"])
    assert a.model_dump_json() == b.model_dump_json()


def _study_table():
    """Three arms, two inits, two init_scales, three seeds, a duplicate row, diverged and
    missing values, unequal points: every path of the summary."""
    rng = np.random.default_rng(11)
    rows = []
    for arm, lr, init, scale, seed in itertools.product(
        ("sgd", "insgd", "adam"),
        (1e-3, 3e-3, 1e-2, 0.1, 1.0),
        ("he", "xavier"),
        (0.5, 2.0),
        (0, 1, 2),
    ):
        if arm == "adam" and lr == 1.0:
            continue
        acc = float(rng.uniform(0.05, 0.95))
        diverged = bool(rng.uniform() < 0.1)
        rows.append(
            row(arm, lr, init, seed, acc, loss=float(rng.uniform(0.1, 3)), diverged=diverged)
            | {"init_scale": scale}
        )
    rows.append(dict(rows[5]))  # an exact duplicate
    rows.append(rows[9] | {"val_acc": 0.3})  # a second row in the same cell and seed
    rows.append(row("insgd", 0.1, "he", 7, 0.6, status="failed"))
    return rows


def test_the_summary_does_not_depend_on_row_order():
    rows = _study_table()
    want = summarize(rows, num_classes=10, arms=["sgd", "insgd", "adam"]).model_dump_json()
    for seed in range(3):
        order = np.random.default_rng(seed).permutation(len(rows))
        shuffled = [rows[i] for i in order]
        got = summarize(shuffled, num_classes=10, arms=["sgd", "insgd", "adam"])
        assert got.model_dump_json() == want
    assert (
        summarize(rows[::-1], num_classes=10, arms=["sgd", "insgd", "adam"]).model_dump_json()
        == want
    )


def test_summary_args_from_a_recorded_spec():
    from study.analysis import summary_args

    spec = {
        "arms": [{"name": "sgd", "optimizer": "sgd"}, {"name": "insgd", "optimizer": "insgd"}],
        "search": {"lr": {"low": 1e-3, "high": 10.0, "points_per_decade": 2}, "init": ["a"]},
        "analysis": {"tolerance": 0.05},
    }
    assert summary_args(spec) == {
        "arms": ["sgd", "insgd"],
        "tolerance": 0.05,
        "lr_range": (1e-3, 10.0),
    }
    old = {k: v for k, v in spec.items() if k != "analysis"}  # recorded before analysis existed
    assert summary_args(old) == {"arms": ["sgd", "insgd"], "lr_range": (1e-3, 10.0)}
    assert summary_args(None) == {}


def test_importance_is_computed_on_cells():
    """PED-ANOVA and fANOVA over the arm's cells (seeds averaged first): accuracy that depends
    on lr alone gives lr nearly all the importance; a flat arm or a single cell gives null."""
    lrs = [1e-4, 1e-3, 1e-2, 1e-1, 1.0]
    peak = {1e-4: 0.2, 1e-3: 0.5, 1e-2: 0.9, 1e-1: 0.6, 1.0: 0.1}
    rows = [
        row("sgd", lr, init, seed, peak[lr] + 0.001 * seed)
        for lr, init, seed in itertools.product(lrs, ("a", "b", "c"), (0, 1, 2))
    ]
    imp = summarize(rows, num_classes=10).arms["sgd"].importance
    for name in ("ped_anova", "fanova"):
        values = getattr(imp, name)
        assert set(values) == {"lr", "init"}
        assert values["lr"] > 0.9 and sum(values.values()) == pytest.approx(1.0)
    flat = [r | {"val_acc": 0.5} for r in rows]
    assert summarize(flat, num_classes=10).arms["sgd"].importance.model_dump() == {
        "ped_anova": None,
        "fanova": None,
    }
    # the same cells in another order, or with the seeds in other rows: the same importances
    again = summarize(rows[::-1], num_classes=10).arms["sgd"].importance
    assert again == imp
