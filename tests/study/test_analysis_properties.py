"""Property tests of the robustness summary (Hypothesis, derandomized CI profile in
tests/conftest.py): exact row-order independence, bounds and orderings, strict JSON, the
replicate mean of a balanced design, and no verdict before the study ends."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from study.analysis import summarize
from study.analysis.metrics import expected_max

LRS = [1e-3, 1e-2, 0.1, 1.0]
C = 10

row_strategy = st.fixed_dictionaries(
    {
        "arm": st.sampled_from(["sgd", "insgd"]),
        "lr": st.sampled_from(LRS),
        "init": st.sampled_from(["he", "xavier"]),
        "init_scale": st.sampled_from([1.0, 2.0]),
        "seed": st.integers(0, 2),
        # a few values only, so that ties (the hard case for order independence) are common
        "val_acc": st.sampled_from([0.1, 0.3, 0.5, 0.5, 0.8, 0.9]),
        "val_loss": st.sampled_from([0.2, 0.7, 2.0, 5.0]),
        "diverged": st.sampled_from([False, False, False, True]),
        "status": st.sampled_from(["finished"] * 5 + ["early_stopped"]),
    }
)
tables = st.lists(row_strategy, min_size=1, max_size=16)


@settings(max_examples=60)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=60))
def test_expected_max_curve(values):
    em = np.array(expected_max(np.array(values)))
    assert em.shape == (len(values),)
    assert em[0] == pytest.approx(np.mean(values), abs=1e-12)
    assert em[-1] == pytest.approx(max(values), abs=1e-12)
    assert np.all(np.diff(em) >= -1e-12)  # never decreases


@settings(max_examples=15)
@given(tables, st.data())
def test_summary_does_not_depend_on_row_order(rows, data):
    shuffled = data.draw(st.permutations(rows))
    arms = ["sgd", "insgd"]
    a = summarize(rows, num_classes=C, arms=arms).model_dump_json()
    b = summarize(shuffled, num_classes=C, arms=arms).model_dump_json()
    assert a == b


@settings(max_examples=20)
@given(tables)
def test_summary_invariants(rows):
    s = summarize(rows, num_classes=C, arms=["sgd", "insgd"], lr_range=(1e-3, 1.0))
    data = s.model_dump(mode="json")
    json.dumps(data, allow_nan=False)
    st_ = s.settings
    assert st_.n_used + sum(st_.excluded.values()) == len(rows)
    ref = s.reference
    for name, arm in s.arms.items():
        used = [r for r in rows if r["arm"] == name and r["status"] == "finished"]
        assert arm.n_trials == len(used)
        groups = [arm, *arm.by_init.values()]
        if not used:
            assert arm.best is None and arm.expected_max == [] and arm.by_init == {}
            continue
        assert sum(v.n_trials for v in arm.by_init.values()) == arm.n_trials
        assert (arm.init_spread is None) == (len(arm.by_init) < 2)
        assert arm.best <= ref.best_acc
        assert arm.init_regret >= 0
        assert arm.expected_max[0] == pytest.approx(np.mean(_cell_means(used)), abs=1e-12)
        for g in groups:
            assert g.worst <= g.median <= g.best
            assert g.expected_max[-1] == pytest.approx(g.best, abs=1e-12)
            low, high = g.expected_max_band
            assert len(low) == len(high) == g.n_cells
            assert all(lo <= hi for lo, hi in zip(low, high, strict=True))
            assert g.divergence_rate <= g.failure_rate <= 1.0
            assert 0.0 <= g.good_fraction <= 1.0
            assert g.worst - 1e-12 <= g.auc <= g.best + 1e-12
            assert g.lr_sensitivity >= 0.0
            assert 0.0 <= g.lr_window_decades <= 3.0 + 1e-12  # the tried range, at most
        for init, g in arm.by_init.items():
            tried = {r["lr"] for r in used if r["init"] == init}
            assert g.best_lr is None or g.best_lr in tried
            assert g.range_cut in ([], ["low"], ["high"], ["low", "high"])
            if g.best_lr is None:  # never reached h: no end can be >= h
                assert g.range_cut == []
    for c in s.comparisons:
        if c.n_points:
            assert c.ci[0] <= c.mean_diff + 1e-12 and c.mean_diff <= c.ci[1] + 1e-12
            assert 0.0 <= c.win_rate <= 1.0 and c.n_live <= c.n_points
        for key in ("auc_diff", "window_diff", "good_fraction_diff", "init_regret_diff"):
            value, ci = getattr(c, key), getattr(c, f"{key}_ci")
            assert ci is None or ci[0] - 1e-12 <= value <= ci[1] + 1e-12
            assert (ci is None) == (c.n_seeds < 2)
        assert c.auc_p is None or 0.0 <= c.auc_p <= 1.0
        cut = {(x.arm, x.init, x.end) for x in c.range_cut}
        for name in (c.arm, c.baseline):
            for init, g in s.arms[name].by_init.items():
                assert {(name, init, end) for end in g.range_cut} <= cut
        if c.verdict not in ("not_enough_data", "range_limited"):
            assert c.range_cut == [] and c.n_seeds >= 3 and c.n_points >= 6


@settings(max_examples=10)
@given(tables)
def test_a_study_that_has_not_ended_gives_only_pending_verdicts(rows):
    s = summarize(rows, num_classes=C, arms=["sgd", "insgd", "adam"], complete=False)
    assert s.partial and [c.verdict for c in s.comparisons] == ["pending", "pending"]


#: A full grid: every arm x lr x init x seed, accuracies multiples of 1/16.
balanced = st.lists(st.integers(1, 15), min_size=2 * 4 * 2 * 3, max_size=2 * 4 * 2 * 3)


@settings(max_examples=20)
@given(balanced)
def test_the_replicate_mean_of_a_balanced_design_is_the_all_seeds_auc_difference(values):
    """The AUC is linear in the cells, so with every cell holding every seed the mean over
    seeds of the per-seed AUC differences is the difference of the all-seeds AUCs."""
    keys = [
        (arm, lr, init, seed)
        for arm in ("sgd", "insgd")
        for lr in LRS
        for init in ("he", "xavier")
        for seed in range(3)
    ]
    rows = [
        {"arm": a, "lr": lr, "init": i, "seed": sd, "val_acc": v / 16, "val_loss": 1.0}
        for (a, lr, i, sd), v in zip(keys, values, strict=True)
    ]
    s = summarize(rows, num_classes=C, arms=["sgd", "insgd"], lr_range=(1e-4, 10.0))
    (c,) = s.comparisons
    assert c.auc_diff == pytest.approx(s.arms["insgd"].auc - s.arms["sgd"].auc, abs=1e-12)


def _cell_means(used):
    """The arm's cell means (E[max of 1] is their mean)."""
    cells: dict[tuple, list[float]] = {}
    for r in used:
        a = 1 / C if r["diverged"] else r["val_acc"]
        cells.setdefault((r["lr"], r["init"], r["init_scale"]), []).append(a)
    return [sum(v) / len(v) for v in cells.values()]


def test_lr_window_is_at_most_the_tried_range():
    rows = [
        {"arm": "sgd", "lr": lr, "init": "he", "seed": 0, "val_acc": 0.9, "val_loss": 0.1}
        for lr in (1e-3, 1e-1)
    ]
    s = summarize(rows, num_classes=C)
    assert s.arms["sgd"].lr_window_decades == pytest.approx(2.0, abs=1e-12)
    assert math.isclose(s.arms["sgd"].auc, 0.9)
