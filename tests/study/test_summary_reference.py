"""``study.analysis.summarize`` against an independent reading of the summary's contract, v3.

``tests/study/summary_reference.py`` is a slow, literal reference written from the contract
(docs/summary.md) and the output contract alone. Each hand-worked table below asserts the
numbers worked out by hand on the reference AND that ``summarize`` gives the same dump; seeded
random tables and Hypothesis-generated grid studies then compare every key (floats to 1e-9;
the bootstrap draws are prescribed, so CIs and bands too).
"""

from __future__ import annotations

import json
import math
import random
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.study.summary_reference import reference_summary

TOL = 1e-9


def row(arm, lr, init, seed, acc, loss=0.5, diverged=False, scale=1.0, **extra) -> dict:
    return {
        "arm": arm,
        "lr": lr,
        "init": init,
        "init_scale": scale,
        "seed": seed,
        "val_acc": acc,
        "val_loss": loss,
        "diverged": diverged,
        **extra,
    }


def implementation(rows: list[dict], **kw: Any) -> str:
    """``summarize``'s JSON dump (what the API and summary.json serve)."""
    from study.analysis import summarize

    return summarize(rows, **kw).model_dump_json()


def differences(got: Any, want: Any, path: str = "") -> list[str]:
    """Every place where ``got`` (the implementation) and ``want`` (the reference) differ."""
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return [f"{path}: {got!r} is not a dict"]
        out = []
        if set(got) != set(want):
            out.append(f"{path}: keys {sorted(set(got) ^ set(want))} differ")
        for k in want:
            if k in got:
                out += differences(got[k], want[k], f"{path}.{k}")
        return out
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            return [f"{path}: {got!r} != {want!r}"]
        return [
            d
            for i, (g, w) in enumerate(zip(got, want, strict=True))
            for d in differences(g, w, f"{path}[{i}]")
        ]
    if isinstance(want, float) or (isinstance(got, float) and not isinstance(want, bool)):
        ok = (
            isinstance(got, int | float)
            and not isinstance(got, bool)
            and isinstance(want, int | float)
            and abs(got - want) <= TOL
        )
        return [] if ok else [f"{path}: {got!r} != {want!r}"]
    if type(got) is not type(want) or got != want:
        return [f"{path}: {got!r} != {want!r}"]
    return []


def reject_constant(name: str) -> None:
    raise AssertionError(f"the dump holds {name}")


def check(rows: list[dict], **kw: Any) -> dict:
    """The reference's summary, after asserting the implementation matches it everywhere.

    Also: the rows in another order give a byte-identical dump.
    """
    want = reference_summary(rows, **kw)
    dump = implementation(rows, **kw)
    shuffled = list(rows)
    random.Random(len(rows)).shuffle(shuffled)
    assert implementation(shuffled, **kw) == dump, "the dump depends on the row order"
    got = json.loads(dump, parse_constant=reject_constant)  # strict JSON: no NaN/Infinity
    warnings = got.pop("warnings", None)
    assert isinstance(warnings, list) and all(isinstance(w, str) for w in warnings)
    diffs = differences(got, want)
    assert not diffs, "summarize differs from the reference:\n" + "\n".join(diffs[:40])
    # the orders the contract fixes: arms (spec, then by name), inits by name
    assert list(got["arms"]) == list(want["arms"]) == want["settings"]["arms"]
    for arm, summary in want["arms"].items():
        assert list(got["arms"][arm]["by_init"]) == sorted(summary["by_init"])
    assert [c["arm"] for c in got["comparisons"]] == want["settings"]["arms"][1:]
    return want


def point_ci(d: list[float]) -> list[float]:
    """The contract's point bootstrap written with numpy (a second check of the reference)."""
    d = np.asarray(d, dtype=np.float64)
    idx = np.random.default_rng(0).integers(0, len(d), size=(10_000, len(d)))
    return np.percentile(d[idx].mean(axis=1), [2.5, 97.5]).tolist()


# ---- hand-worked tables -----------------------------------------------------------------


def test_window_crossings_auc_expected_max_and_sensitivity_on_one_curve():
    # y = 0.2, 0.9, 0.9, 0.3 at x = -3..0; A* = 0.9, tau = 0.02 -> g = 0.88
    losses = [2.0, 0.5, 0.4, 3.0]  # 3.0 > ln 10: clipped to ln 10
    rows = [
        row("sgd", lr, "he", 0, a, loss)
        for lr, a, loss in zip([1e-3, 1e-2, 1e-1, 1.0], [0.2, 0.9, 0.9, 0.3], losses, strict=True)
    ]
    s = check(rows, num_classes=10)
    ref = s["reference"]
    assert ref["best_acc"] == pytest.approx(0.9) and ref["good_threshold"] == pytest.approx(0.88)
    assert ref["learned_threshold"] == pytest.approx(0.5) and ref["best_loss"] == 0.4
    assert ref["lr_range"] == [1e-3, 1.0]
    # the two 0.9 cells tie on accuracy: the lower loss (lr 0.1) wins over the lower lr
    assert ref["best_cell"] == {"arm": "sgd", "lr": 0.1, "init": "he", "init_scale": 1.0}
    arm = s["arms"]["sgd"]
    he = arm["by_init"]["he"]
    # up-crossing at -3 + 0.68/0.7, down-crossing at -1 + 0.02/0.6: 1 + 1/35 + 1/30 = 223/210
    assert he["lr_window_decades"] == pytest.approx(223 / 210, abs=1e-12)
    assert arm["lr_window_decades"] == pytest.approx(223 / 210, abs=1e-12)
    assert he["auc"] == pytest.approx((0.55 + 0.9 + 0.6) / 3, abs=1e-12)
    clipped = ((2.0 + 0.5) / 2 + (0.5 + 0.4) / 2 + (0.4 + math.log(10)) / 2) / 3
    assert he["lr_sensitivity"] == pytest.approx(clipped - 0.4, abs=1e-12)
    assert (he["best"], he["median"], he["worst"]) == pytest.approx((0.9, 0.6, 0.2))
    assert he["failure_rate"] == 0.5 and he["good_fraction"] == 0.5
    assert he["divergence_rate"] == 0.0 and he["n_trials"] == he["n_cells"] == 4
    # sorted 0.2, 0.3, 0.9, 0.9: n=2 -> (0.3 + 2*0.9 + 3*0.9)/6, n=3 -> (0.9 + 3*0.9)/4
    assert he["expected_max"] == pytest.approx([0.575, 0.8, 0.9, 0.9], abs=1e-12)
    # band: at n = 1 the estimator is the resample's mean, at n = N its maximum
    cells = np.array([0.2, 0.9, 0.9, 0.3])  # canonical (lr) order
    draws = cells[np.random.default_rng(0).integers(0, 4, size=(1000, 4))]
    low, high = he["expected_max_band"]
    assert [low[0], high[0]] == pytest.approx(np.percentile(draws.mean(1), [2.5, 97.5]))
    assert [low[3], high[3]] == pytest.approx(np.percentile(draws.max(1), [2.5, 97.5]))
    assert arm["init_regret"] == 0.0 and arm["init_spread"] is None
    assert s["comparisons"] == [] and s["settings"]["n_seeds"] == 1


def test_window_touch_two_runs_single_lr_and_never_good():
    a = [0.5, 0.88, 0.5, 0.9, 0.9]  # x = -3..1: a touch at -2 (length 0), then [-0.05, 1]
    d = [0.9, 0.9, 0.1, 0.89]  # x = -3..0: [-3, -1.975] beats [-0.0127, 0]
    rows = [row("sgd", 10.0**k, "a", 0, y) for k, y in zip(range(-3, 2), a, strict=True)]
    rows += [row("sgd", 1e-2, "b", 0, 0.9)]  # one lr tried
    rows += [row("sgd", 1e-3, "c", 0, 0.1), row("sgd", 1e-2, "c", 0, 0.3)]  # never >= g
    rows += [row("sgd", 10.0**k, "d", 0, y) for k, y in zip(range(-3, 1), d, strict=True)]
    s = check(rows, num_classes=10)
    by = s["arms"]["sgd"]["by_init"]
    windows = [by[i]["lr_window_decades"] for i in "abcd"]
    assert windows == pytest.approx([1.05, 0.0, 0.0, 1.025], abs=1e-12)
    assert s["arms"]["sgd"]["lr_window_decades"] == pytest.approx(2.075 / 4, abs=1e-12)
    # lr range [1e-3, 10]: 4 decades; b and c are flat beyond their tried lrs
    aucs = [by[i]["auc"] for i in "abcd"]
    assert aucs == pytest.approx([2.98 / 4, 0.9, 1.1 / 4, 2.785 / 4], abs=1e-12)
    assert s["arms"]["sgd"]["auc"] == pytest.approx(sum(aucs) / 4, abs=1e-12)
    assert s["arms"]["sgd"]["init_regret"] == pytest.approx(0.6 / 4)
    assert s["arms"]["sgd"]["init_spread"] == pytest.approx(0.6)
    assert by["b"]["expected_max"] == [0.9]
    assert by["b"]["expected_max_band"] == [[0.9], [0.9]]


@pytest.mark.parametrize(
    ("lr_range", "auc"),
    [
        ((1e-4, 1.0), (0.2 + 0.4 + 0.8 + 1.0) / 4),  # flat ends on both sides
        ((10**-2.5, 10**-1), (0.25 + 0.8) / 1.5),  # the tried lr 1e-3 lies outside: cut off
        ((1e-2, 1e-2), 0.6),  # a zero-width range: the curve's value there
    ],
)
def test_auc_flat_ends_and_the_study_lr_range(lr_range, auc):
    rows = [
        row("sgd", lr, "he", 0, y)
        for lr, y in zip([1e-3, 1e-2, 1e-1], [0.2, 0.6, 1.0], strict=True)
    ]
    rows.append(row("sgd", 1e-2, "xavier", 0, 0.5))  # one lr: flat everywhere
    s = check(rows, num_classes=10, lr_range=lr_range)
    assert s["reference"]["lr_range"] == pytest.approx(list(lr_range))
    by = s["arms"]["sgd"]["by_init"]
    assert by["he"]["auc"] == pytest.approx(auc, abs=1e-12)
    assert by["xavier"]["auc"] == pytest.approx(0.5, abs=1e-12)
    assert s["arms"]["sgd"]["auc"] == pytest.approx((auc + 0.5) / 2, abs=1e-12)


def test_dead_and_all_diverged_arms_rank_worst_against_the_study_reference():
    lrs = [1e-3, 1e-2, 1e-1]
    rows = [
        row("sgd", lr, "he", 0, a, loss)
        for lr, a, loss in zip(lrs, [0.6, 0.9, 0.7], [0.8, 0.3, 0.6], strict=True)
    ]
    rows += [row("dead", lr, "he", 0, 0.25, 1.5) for lr in lrs]  # chance, loss > ln 4
    rows += [row("boom", lr, "he", 0, 0.9, 0.1, diverged=True) for lr in lrs]
    s = check(rows, num_classes=4, arms=["sgd", "dead", "boom"])
    ln4 = math.log(4)
    ref = s["reference"]
    assert (ref["best_acc"], ref["best_loss"]) == (0.9, 0.3)  # diverged rows count as chance
    assert ref["learned_threshold"] == pytest.approx((0.25 + 0.9) / 2)
    sgd, dead, boom = (s["arms"][a] for a in ("sgd", "dead", "boom"))
    assert sgd["lr_window_decades"] == pytest.approx(1 / 15 + 0.1, abs=1e-12)  # -2.067..-1.9
    assert sgd["auc"] == pytest.approx(0.775) and sgd["lr_sensitivity"] == pytest.approx(0.2)
    assert sgd["good_fraction"] == pytest.approx(1 / 3) and sgd["failure_rate"] == 0.0
    for arm in (dead, boom):
        assert arm["lr_window_decades"] == 0.0 and arm["good_fraction"] == 0.0
        assert arm["auc"] == pytest.approx(0.25) and arm["best"] == 0.25
        assert arm["lr_sensitivity"] == pytest.approx(ln4 - 0.3)  # not 0: study-wide l*
        assert arm["init_regret"] == pytest.approx(0.65) and arm["failure_rate"] == 1.0
        assert arm["auc"] < sgd["auc"] and arm["init_regret"] > sgd["init_regret"]
    assert (dead["divergence_rate"], boom["divergence_rate"]) == (0.0, 1.0)
    dead_vs = s["comparisons"][0]
    d = [0.25 - 0.6, 0.25 - 0.9, 0.25 - 0.7]
    assert dead_vs["arm"] == "dead" and dead_vs["baseline"] == "sgd" and dead_vs["paired"]
    assert dead_vs["n_points"] == 3 and dead_vs["mean_diff"] == pytest.approx(sum(d) / 3)
    assert dead_vs["ci"] == pytest.approx(point_ci(d), abs=1e-12)
    assert dead_vs["wilcoxon_p"] == pytest.approx(0.25) and dead_vs["win_rate"] == 0.0
    assert dead_vs["n_live"] == 3 and dead_vs["ci_live"] == dead_vs["ci"]
    assert dead_vs["auc_diff"] == pytest.approx(0.25 - 0.775)
    assert dead_vs["window_diff"] == pytest.approx(-1 / 6)
    assert dead_vs["good_fraction_diff"] == pytest.approx(-1 / 3)
    assert dead_vs["init_regret_diff"] == pytest.approx(0.65)
    assert dead_vs["auc_diff_ci"] is None and dead_vs["verdict"] == "not_enough_data"


def test_init_regret_against_a_best_from_another_arm():
    rows = [row("sgd", 1e-2, "he", 0, 0.95), row("sgd", 1e-1, "he", 0, 0.5)]
    rows += [row("insgd", 1e-2, "he", 0, 0.9), row("insgd", 1e-1, "he", 0, 0.7)]
    rows += [row("insgd", 1e-2, "normal", 0, 0.5), row("insgd", 1e-1, "normal", 0, 0.2)]
    s = check(rows, num_classes=10, arms=["sgd", "insgd"])
    insgd = s["arms"]["insgd"]
    assert insgd["init_regret"] == pytest.approx((0.05 + 0.45) / 2)
    assert insgd["init_spread"] == pytest.approx(0.4)
    assert s["arms"]["sgd"]["init_regret"] == 0.0 and s["arms"]["sgd"]["init_spread"] is None
    assert s["comparisons"][0]["init_regret_diff"] == pytest.approx(0.25)
    assert s["comparisons"][0]["paired"] is False  # insgd has points sgd lacks


def test_a_point_with_seeds_missing_in_one_arm():
    rows = [row("sgd", 1e-2, "he", k, a) for k, a in enumerate([0.5, 0.6, 0.7])]
    rows += [row("insgd", 1e-2, "he", k, a) for k, a in enumerate([0.8, 0.6])]  # no seed 2
    rows += [row("sgd", 1e-1, "he", k, 0.4) for k in (0, 1)]
    rows += [row("insgd", 1e-1, "he", 2, 0.9)]  # no common seed: the point is dropped
    rows += [row(arm, 1.0, "he", k, 0.3) for arm in ("sgd", "insgd") for k in range(3)]
    rows += [row("sgd", 10.0, "he", 0, 0.3)]  # sgd only
    s = check(rows, num_classes=10, arms=["sgd", "insgd"])
    c = s["comparisons"][0]
    d = [(0.8 + 0.6) / 2 - (0.5 + 0.6) / 2, 0.0]  # seeds 0 and 1 only at lr 1e-2
    assert (c["n_points"], c["n_seeds"], c["paired"]) == (2, 3, False)
    assert c["mean_diff"] == pytest.approx(0.075) and c["win_rate"] == 0.75
    assert c["n_nonzero"] == 1 and c["ci"] == pytest.approx(point_ci(d), abs=1e-12)
    # A* = 0.9 -> h = 0.5: only the lr 1e-2 point has an arm that learned
    assert c["n_live"] == 1 and c["mean_diff_live"] == pytest.approx(0.15)
    assert c["ci_live"] == pytest.approx([0.15, 0.15])
    assert s["arms"]["sgd"]["best"] == pytest.approx(0.6)  # the full cell keeps its 3 seeds


def test_best_cell_ties():
    rows = [
        row("zeta", 1e-2, "normal", 0, 0.75, 0.5),
        row("zeta", 1e-2, "he", 0, 0.75, 0.5, scale=2.0),
        row("zeta", 1e-2, "he", 0, 0.75, 0.5, scale=1.0),
        row("zeta", 1e-3, "xavier", 0, 0.75, 0.625),
        row("zeta", 1e-1, "xavier", 0, 0.75, 0.5),
        row("alpha", 1e-2, "he", 0, 0.75, 0.5),
    ]
    s = check(rows, num_classes=10, arms=["zeta", "alpha"])
    # equal accuracy, loss and lr across arms: the spec's arm order, not the name
    assert s["reference"]["best_cell"] == {
        "arm": "zeta",
        "lr": 0.01,
        "init": "he",
        "init_scale": 1.0,
    }
    zeta = s["arms"]["zeta"]
    assert zeta["best_cell"] == {"lr": 0.01, "init": "he", "init_scale": 1.0}
    assert zeta["by_init"]["xavier"]["best_cell"]["lr"] == 0.1  # lower loss beats lower lr
    assert zeta["by_init"]["he"]["best_cell"]["init_scale"] == 1.0
    assert zeta["n_cells"] == 5 and zeta["good_fraction"] == 1.0
    assert zeta["expected_max_band"][0] == pytest.approx([0.75] * 5, abs=1e-12)


def test_excluded_and_nonfinite_rows_and_settings():
    rows = [
        row("sgd", 1e-2, "he", 0, 0.5, status="finished"),
        row("sgd", 1e-1, "he", 0, 0.75),  # no status: finished
        row("sgd", 1e-1, "he", 1, 0.99, status="early_stopped"),
        row("sgd", 1e-2, "he", 1, 0.99, status="failed"),
        row("sgd", 1.0, "he", 0, 0.3, float("nan")),  # NaN loss, not flagged
        row("sgd", 1.0, "he", 1, None, 0.2),  # missing accuracy
        row("sgd", 1.0, "he", 2, 0.2, 0.2, diverged=True),
        row("adam", 1e-2, "he", 0, 0.5),
        row("adam", 1e-2, "he", 1, 0.5, status="running"),
        row("adam", 1e-2, "he", 2, 0.5, status="pending"),
    ]
    s = check(rows, num_classes=4)
    st = s["settings"]
    assert st["arms"] == ["adam", "sgd"] and st["baseline"] == "adam"  # by name without a spec
    assert (st["n_rows"], st["n_used"], st["nonfinite_as_diverged"]) == (10, 6, 2)
    assert st["excluded"] == {
        "early_stopped": 1, "failed": 1, "running": 1, "pending": 1, "stopped": 0,
    }  # fmt: skip
    sgd = s["arms"]["sgd"]
    assert sgd["best"] == 0.75 and sgd["divergence_rate"] == pytest.approx(3 / 5)
    assert sgd["by_init"]["he"]["worst"] == 0.25  # lr 1: three diverged rows, chance
    assert st["n_seeds"] == 3 and st["n_bootstrap"] == 10_000


def test_a_spec_arm_without_rows_is_empty():
    rows = [row("sgd", lr, "he", k, 0.5 + k / 8) for lr in (1e-2, 1e-1) for k in range(2)]
    s = check(rows, num_classes=10, arms=["sgd", "insgd"])
    insgd = s["arms"]["insgd"]
    assert (insgd["n_trials"], insgd["n_cells"], insgd["by_init"]) == (0, 0, {})
    assert insgd["best"] is None and insgd["auc"] is None and insgd["expected_max"] == []
    c = s["comparisons"][0]
    assert c["n_points"] == 0 and c["mean_diff"] is None and c["ci"] is None
    assert c["auc_diff_ci"] is None and c["verdict"] == "not_enough_data"


def test_an_arm_whose_trials_were_all_left_out_is_listed_and_empty():
    rows = [row("sgd", 1e-2, "he", 0, 0.5), row("sgd", 1e-1, "he", 0, 0.75)]
    rows += [row("adam", 1e-2, "he", 0, 0.6, status="failed"), {"arm": None, "status": "failed"}]
    s = check(rows, num_classes=10)
    assert s["settings"]["arms"] == ["adam", "sgd"]  # no spec: by name, left-out rows count
    assert s["arms"]["adam"]["n_trials"] == 0 and s["arms"]["adam"]["best"] is None
    assert s["settings"]["excluded"]["failed"] == 2 and s["settings"]["n_rows"] == 4
    assert s["comparisons"][0]["n_points"] == 0
    assert s["comparisons"][0]["verdict"] == "not_enough_data"


def test_verdicts_from_a_shift_that_is_the_same_for_every_seed():
    base = [0.25, 0.5, 0.625, 0.625, 0.5, 0.25]
    offsets = [0.0, 1 / 64, -1 / 64]
    rows = []
    for arm, shift in (("sgd", 0.0), ("better", 0.125), ("worse", -0.125)):
        for k, y in enumerate(base):
            for seed, off in enumerate(offsets):
                rows.append(row(arm, 10.0 ** (k - 5), "he", seed, y + off + shift))
    s = check(rows, num_classes=10, arms=["sgd", "better", "worse"])
    better, worse = s["comparisons"]
    for c, sign, verdict in ((better, 1, "more_robust"), (worse, -1, "less_robust")):
        assert (c["n_points"], c["n_seeds"], c["paired"]) == (6, 3, True)
        assert c["mean_diff"] == sign * 0.125 and c["ci"] == [sign * 0.125] * 2
        assert c["wilcoxon_p"] == pytest.approx(1 / 32) and c["win_rate"] == (sign > 0)
        # every seed's row moves by the same amount: each resample's AUC difference is it too
        assert c["auc_diff"] == pytest.approx(sign * 0.125)
        assert c["auc_diff_ci"] == pytest.approx([sign * 0.125] * 2)
        assert sign * c["window_diff"] >= 0 and c["verdict"] == verdict


def test_replicate_intervals_over_two_seeds_by_hand():
    # Each seed is one replicate, its metrics from its own rows against the all-seeds
    # reference: A* = 0.8 (insgd at lr 1e-2, seeds averaged), g = 0.78. With n = 2 seeds the
    # Student t quantile has 1 degree of freedom (the Cauchy): t(0.975, 1) = tan(0.475 pi).
    accs = {
        ("sgd", 0): [0.5, 0.5],
        ("sgd", 1): [0.7, 0.7],
        ("insgd", 0): [0.7, 0.5],
        ("insgd", 1): [0.9, 1.0],
    }
    rows = [
        row(arm, lr, "he", seed, a)
        for (arm, seed), ys in accs.items()
        for lr, a in zip([1e-2, 1e-1], ys, strict=True)
    ]
    s = check(rows, num_classes=10, arms=["sgd", "insgd"])
    c = s["comparisons"][0]
    t1 = math.tan(0.475 * math.pi)  # 12.706

    def interval(d0, d1):  # mean ± t sd / sqrt(2), sd = |d0 - d1| / sqrt(2)
        m, half = (d0 + d1) / 2, t1 * abs(d0 - d1) / 2
        return [m - half, m + half]

    # AUC per seed: seed 0, insgd 0.6 - sgd 0.5 = 0.1; seed 1, 0.95 - 0.7 = 0.25
    assert c["auc_diff"] == pytest.approx(0.175, abs=1e-12)
    assert c["auc_diff_ci"] == pytest.approx(interval(0.1, 0.25), abs=1e-9)
    # t = 0.175 / 0.075 with 1 df: p = 1 - (2 / pi) atan(t)
    assert c["auc_p"] == pytest.approx(1 - 2 / math.pi * math.atan(0.175 / 0.075), abs=1e-9)
    # windows at g = 0.78: seed 0 insgd (0.7, 0.5) none, seed 1 (0.9, 1.0) the whole decade;
    # sgd none in either seed. The same for the good fraction (0 of 2, then 2 of 2).
    assert c["window_diff"] == pytest.approx(0.5) and c["good_fraction_diff"] == pytest.approx(0.5)
    assert c["window_diff_ci"] == pytest.approx(interval(0.0, 1.0), abs=1e-9)
    assert c["good_fraction_diff_ci"] == pytest.approx(interval(0.0, 1.0), abs=1e-9)
    # regrets against A* = 0.8: seed 0 insgd 0.1, sgd 0.3 (-0.2); seed 1 -0.2, 0.1 (-0.3)
    assert c["init_regret_diff"] == pytest.approx(-0.25)
    assert c["init_regret_diff_ci"] == pytest.approx(interval(-0.2, -0.3), abs=1e-9)
    assert (c["n_seeds"], c["verdict"]) == (2, "not_enough_data")


def test_init_scales_average_into_the_curve_and_lrs_are_keyed_to_12_digits():
    rows = [
        row("sgd", 1e-2, "he", 0, 0.375, scale=0.5),
        row("sgd", 1e-2, "he", 0, 0.875, scale=1.0),
        row("sgd", 1e-1, "he", 0, 0.25, scale=0.5),
        row("sgd", 0.30000000000000004 / 3, "he", 1, 0.25, scale=0.5),  # the same lr, 0.1
        row("sgd", 1e-1, "he", 0, 0.5, scale=1.0),
    ]
    s = check(rows, num_classes=4)
    he = s["arms"]["sgd"]["by_init"]["he"]
    assert he["n_cells"] == 4 and he["n_trials"] == 5
    assert he["auc"] == pytest.approx((0.625 + 0.375) / 2)  # y = 0.625 at 1e-2, 0.375 at 0.1
    assert he["best_cell"] == {"lr": 0.01, "init": "he", "init_scale": 1.0}
    # g = 0.855: no lr's mean reaches it although one cell does
    assert he["lr_window_decades"] == 0.0 and he["good_fraction"] == 0.25
    assert s["reference"]["lr_range"] == [0.01, 0.1]


# ---- seeded random tables ---------------------------------------------------------------

ARMS = ["sgd", "insgd", "adam"]
INITS = ["he", "normal", "xavier", "orthogonal"]


def random_table(seed: int) -> tuple[list[dict], dict[str, Any]]:
    """2-3 arms, 2-4 inits, 3-9 lrs on a log grid, 1-4 seeds; diverged, excluded, missing.

    Accuracies are multiples of 1/32 and losses of 1/32: sums are exact, and ties are real.
    """
    rng = np.random.default_rng(seed)
    arms = ARMS[: rng.integers(2, 4)]
    inits = sorted(rng.choice(INITS, size=rng.integers(2, 5), replace=False).tolist())
    per_decade = int(rng.choice([2, 4]))
    n_lrs = int(rng.integers(3, 10)) if len(inits) < 4 else int(rng.integers(3, 6))
    lrs = [10.0 ** (-4 + k / per_decade) for k in range(n_lrs)]
    seeds = list(range(int(rng.integers(1, 5))))
    scales = [1.0] if rng.random() < 0.7 else [0.5, 1.0]
    num_classes = int(rng.choice([4, 8, 16]))  # 1/C dyadic too: sums exact in any order
    p_point, p_seed, p_excluded = (float(rng.choice(p)) for p in ([0, 0, 0.15], [0, 0.1], [0, 0.1]))
    rows = []
    for arm in arms:
        peak, slope = int(rng.integers(0, n_lrs)), int(rng.integers(1, 5))
        for init in inits:
            if rng.random() < 0.1:
                continue  # an init this arm never tried
            top = int(rng.integers(16, 33))
            for i, lr in enumerate(lrs):
                if rng.random() < p_point:
                    continue  # a missing point
                for scale in scales:
                    for s in seeds:
                        if rng.random() < p_seed:
                            continue  # a missing seed
                        k = top - slope * abs(i - peak) + int(rng.integers(-1, 2))
                        acc: float | None = min(32, max(0, k)) / 32
                        loss: float | None = int(rng.integers(2, 120)) / 32
                        diverged = bool(rng.random() < 0.03 * i)
                        if rng.random() < 0.04:
                            acc, loss = (None, 0.5) if rng.random() < 0.5 else (0.5, math.nan)
                        r = row(arm, lr, init, s, acc, loss, diverged, scale)
                        if rng.random() < p_excluded:
                            r["status"] = str(rng.choice(["failed", "early_stopped", "running"]))
                        elif rng.random() < 0.5:
                            r["status"] = "finished"
                        rows.append(r)
    kw: dict[str, Any] = {
        "num_classes": num_classes,
        "tolerance": float(rng.choice([0.02, 0.05, 0.1])),
    }
    if rng.random() < 0.6:
        kw["arms"] = list(arms)
    if rng.random() < 0.5:
        wider = 10.0 ** rng.integers(0, 2, size=2)
        kw["lr_range"] = (float(lrs[0] / wider[0]), float(lrs[-1] * wider[1]))
    return rows, kw


def random_unpaired_table(seed: int) -> tuple[list[dict], dict[str, Any]]:
    """As a tpe study: each arm x init draws its own lrs (log-uniform); a few shared ones."""
    rng = np.random.default_rng(seed)
    shared = [10.0 ** float(x) for x in rng.uniform(-4, 0, size=2)]
    rows = []
    for arm in ARMS[:2]:
        for init in INITS[:2]:
            lrs = shared + [10.0 ** float(x) for x in rng.uniform(-4, 0, size=rng.integers(1, 5))]
            for lr in lrs:
                for s in range(int(rng.integers(1, 4))):
                    acc = int(rng.integers(4, 33)) / 32
                    rows.append(row(arm, lr, init, s, acc, int(rng.integers(2, 90)) / 32))
    return rows, {"num_classes": 8, "arms": ["insgd", "sgd"]}


@pytest.mark.parametrize("seed", range(8))
def test_random_tables_match_the_reference_and_do_not_depend_on_row_order(seed):
    rows, kw = random_table(seed)
    check(rows, **kw)


@pytest.mark.parametrize("seed", range(2))
def test_random_unpaired_tables_match_the_reference(seed):
    rows, kw = random_unpaired_table(seed)
    s = check(rows, **kw)
    assert s["comparisons"][0]["paired"] is False


# ---- hypothesis-generated tables ------------------------------------------------------------


@st.composite
def designed_tables(draw) -> tuple[list[dict], dict[str, Any]]:
    """A grid study as hprobust runs one: 2-3 arms, 1-2 inits, 6-8 lrs half a decade apart,
    3-4 seeds. Each arm x init curve rises to a peak inside the range and falls towards chance
    at both ends, unless the draw lets it still learn at an end (a range cut); a constant arm
    effect and per-row noise make every verdict reachable. Values are multiples of 1/32 (C = 8:
    chance 4/32), so sums are exact and ties real; a few rows are missing, diverged or
    excluded."""
    arms = draw(st.sampled_from([["sgd", "insgd"], ["sgd", "insgd", "adam"]]))
    inits = draw(st.sampled_from([["he"], ["he", "xavier"]]))
    n_lrs = draw(st.integers(6, 8))
    lrs = [10.0 ** (-4 + k / 2) for k in range(n_lrs)]
    seeds = list(range(draw(st.integers(3, 4))))
    rows = []
    for arm in arms:
        peak = draw(st.integers(1, n_lrs - 2))
        top = draw(st.integers(22, 32))
        slope = draw(st.integers(3, 10))
        cut = draw(st.sampled_from([None, None, None, "low", "high"]))
        for init in inits:
            for i, lr in enumerate(lrs):
                end = i in (0, n_lrs - 1)
                for s in seeds:
                    if draw(st.integers(0, 40)) == 17:
                        continue  # a missing row
                    k = top - slope * abs(i - peak) + draw(st.integers(-2, 2))
                    if end:
                        learns = (cut == "low" and i == 0) or (cut == "high" and i > 0)
                        k = top - 2 if learns else draw(st.integers(2, 8))
                    acc = min(32, max(2, k)) / 32
                    diverged = not end and draw(st.integers(0, 60)) == 17
                    r = row(arm, lr, init, s, acc, draw(st.integers(2, 90)) / 32, diverged)
                    if draw(st.integers(0, 50)) == 17:
                        r["status"] = "failed"
                    rows.append(r)
    kw = {
        "num_classes": 8,
        "arms": arms,
        "tolerance": draw(st.sampled_from([0.02, 0.05])),
        "lr_range": (lrs[0], lrs[-1]),
        "complete": draw(st.sampled_from([True, True, True, False])),
    }
    return rows, kw


@settings(max_examples=20)
@given(designed_tables())
def test_generated_tables_match_the_reference(table):
    rows, kw = table
    s = check(rows, **kw)
    for c in s["comparisons"]:
        assert (c["verdict"] == "pending") == (not kw["complete"])
