"""Property tests of the sensitivity summary (hypothesis): expected-max curve shape, row-order
independence, ordering of the statistics, strict JSON."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from study.analysis import summarize
from study.analysis.metrics import expected_max

LRS = [1e-3, 3e-3, 1e-2, 0.1, 1.0]
C = 10

row_strategy = st.fixed_dictionaries(
    {
        "arm": st.sampled_from(["sgd", "insgd"]),
        "lr": st.sampled_from(LRS),
        "init": st.sampled_from(["he", "xavier", "orthogonal"]),
        "init_scale": st.sampled_from([1.0, 1.0, 2.0]),
        "seed": st.integers(0, 2),
        "val_acc": st.floats(0.0, 1.0),
        "val_loss": st.floats(0.0, 2 * math.log(C)),
        "diverged": st.booleans(),
        "status": st.sampled_from(["finished"] * 4 + ["early_stopped", "failed"]),
    }
)
tables = st.lists(row_strategy, min_size=1, max_size=30)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=60))
def test_expected_max_curve(values):
    em = np.array(expected_max(np.array(values)))
    assert em.shape == (len(values),)
    assert em[0] == pytest.approx(np.mean(values), abs=1e-12)
    assert em[-1] == pytest.approx(max(values), abs=1e-12)
    assert np.all(np.diff(em) >= -1e-12)  # never decreases
    assert np.all(em <= max(values) + 1e-12) and np.all(em >= min(values) - 1e-12)


def _imputed(rows):
    return [1 / C if r["diverged"] else r["val_acc"] for r in rows if r["status"] == "finished"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables, st.randoms(use_true_random=False))
def test_summary_does_not_depend_on_row_order(rows, rnd):
    arms = sorted({r["arm"] for r in rows})
    shuffled = list(rows)
    rnd.shuffle(shuffled)
    a = summarize(rows, num_classes=C, arms=arms)
    b = summarize(shuffled, num_classes=C, arms=arms)
    assert a == b


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables)
def test_summary_invariants(rows):
    s = summarize(rows, num_classes=C)
    json.dumps(s, allow_nan=False)
    assert s["settings"]["n_used"] + sum(s["settings"]["excluded"].values()) == len(rows)
    for arm, out in s["arms"].items():
        mine = [r for r in rows if r["arm"] == arm]
        acc = _imputed(mine)
        assert out["n"] == len(acc)
        if not acc:
            assert out["best"] is None and out["expected_max"] == []
            continue
        assert out["worst"] <= out["median"] <= out["best"]
        assert out["expected_max"][0] == pytest.approx(np.mean(acc), abs=1e-12)
        assert out["expected_max"][-1] == pytest.approx(max(acc), abs=1e-12)
        assert np.all(np.diff(out["expected_max"]) >= -1e-12)
        assert 0.0 <= out["divergence_rate"] <= 1.0
        n_bins = len(
            {
                math.floor(math.log10(r["lr"]) / 0.25 + 1e-9)
                for r in mine
                if r["status"] == "finished"
            }
        )
        assert 0.25 <= out["lr_window_decades"] <= 0.25 * n_bins + 1e-12
        assert out["lr_sensitivity"] <= math.log(C)
        inits = {r["init"] for r in mine if r["status"] == "finished"}
        assert set(out["by_init"]) == inits
        assert (out["init_sensitivity"] is None) == (len(inits) < 2)
        if out["init_sensitivity"] is not None:
            assert 0.0 <= out["init_sensitivity"] <= 1.0
        assert sum(v["n"] for v in out["by_init"].values()) == out["n"]
    for c in s["comparisons"]:
        if c["n_pairs"]:
            assert c["ci_low"] <= c["mean_diff"] + 1e-12
            assert c["mean_diff"] <= c["ci_high"] + 1e-12
            assert 0.0 <= c["win_rate"] <= 1.0
