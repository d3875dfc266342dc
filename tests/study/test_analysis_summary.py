"""summarize(): comparisons, null cases, filtering by status, imputation, input validation, JSON."""

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

# Paired table (C = 10). Matched keys and differences insgd - sgd:
#   (1e-2, he, s0): .7 - .5 = +.2      (1e-2, he, s1): .6 - .6 = 0 (tie)
#   (1e-1, he, s0): .4 - .1 = +.3 (sgd diverged, imputed .1)   (1e-1, he, s1): .4 - .5 = -.1
# insgd at lr 1.0 has no sgd partner. mean_diff = .4/4 = .1, win_rate = (2 + .5)/4 = .625.
# Wilcoxon (zeros dropped): |d| = .2 .3 .1 -> ranks 2 3 1, T+ = 5, T- = 1; of the 8 sign
# patterns of 3 ranks, T+ >= 5 in 2 (5, 6): two-sided p = 2 * 2/8 = 0.5.
PAIRED = [
    row("sgd", 1e-2, "he", 0, 0.5),
    row("sgd", 1e-2, "he", 1, 0.6),
    row("sgd", 1e-1, "he", 0, None, None, diverged=True),
    row("sgd", 1e-1, "he", 1, 0.5),
    row("insgd", "0.01", "he", 0, 0.7),  # MLflow gives params back as strings
    row("insgd", 0.010000000000000002, "he", 1, 0.6),  # float noise: still the same point
    row("insgd", 1e-1, "he", "0", 0.4),
    row("insgd", 1e-1, "he", 1, 0.4),
    row("insgd", 1.0, "he", 0, 0.9),
]


def test_paired_comparison_by_hand():
    s = summarize(PAIRED, num_classes=10)
    assert list(s["arms"]) == ["sgd", "insgd"]
    (c,) = s["comparisons"]
    assert (c["arm"], c["baseline"], c["n_pairs"]) == ("insgd", "sgd", 4)
    assert c["mean_diff"] == pytest.approx(0.1)
    assert c["win_rate"] == pytest.approx(0.625)
    assert c["p_value"] == pytest.approx(0.5)
    # The bootstrap CI: with 4 pairs the exact bootstrap distribution has 4^4 equally likely
    # resamples; 10,000 draws put the percentiles within one atom (.025) of the exact ones.
    diffs = [0.2, 0.0, 0.3, -0.1]
    means = sorted(sum(r) / 4 for r in itertools.product(diffs, repeat=4))
    exact_low, exact_high = np.percentile(means, [2.5, 97.5])
    assert c["ci_low"] == pytest.approx(exact_low, abs=0.026)
    assert c["ci_high"] == pytest.approx(exact_high, abs=0.026)
    assert -0.1 <= c["ci_low"] < 0.1 < c["ci_high"] <= 0.3
    # seed 0: the same CI every time
    assert summarize(PAIRED, num_classes=10)["comparisons"] == s["comparisons"]


def test_baseline_follows_the_arms_argument():
    s = summarize(PAIRED, num_classes=10, arms=["insgd", "sgd"])
    assert list(s["arms"]) == ["insgd", "sgd"]
    (c,) = s["comparisons"]
    assert (c["arm"], c["baseline"]) == ("sgd", "insgd")
    assert c["mean_diff"] == pytest.approx(-0.1)
    assert c["win_rate"] == pytest.approx(0.375)
    assert s["settings"]["baseline"] == "insgd"


def test_identical_arms_compare_equal():
    base = [
        row("sgd", lr, init, seed, acc)
        for (lr, init, seed), acc in zip(
            itertools.product([1e-3, 1e-2, 1e-1], ["he", "xavier"], [0, 1]),
            np.linspace(0.2, 0.9, 12),
            strict=True,
        )
    ]
    twin = [{**r, "arm": "twin"} for r in base]
    s = summarize(base + twin, num_classes=10)
    (c,) = s["comparisons"]
    assert c["n_pairs"] == 12
    assert c["mean_diff"] == 0.0
    assert c["win_rate"] == 0.5
    assert (c["ci_low"], c["ci_high"]) == (0.0, 0.0)
    assert c["p_value"] is None  # Wilcoxon on all-zero differences
    a, b = s["arms"]["sgd"], s["arms"]["twin"]
    assert a == b


def test_no_pairs_gives_nulls():
    rows = [row("sgd", 1e-2, "he", 0, 0.5), row("insgd", 1e-1, "he", 0, 0.7)]
    (c,) = summarize(rows, num_classes=10)["comparisons"]
    assert c == {
        "arm": "insgd",
        "baseline": "sgd",
        "n_pairs": 0,
        "mean_diff": None,
        "ci_low": None,
        "ci_high": None,
        "p_value": None,
        "win_rate": None,
    }


def test_one_arm_has_no_comparisons_and_one_row_has_no_importance():
    s = summarize([row("sgd", 1e-2, "he", 0, 0.5)], num_classes=10)
    assert s["comparisons"] == []
    arm = s["arms"]["sgd"]
    assert arm["importance"] == {"ped_anova": None, "fanova": None}
    assert arm["init_sensitivity"] is None
    assert (arm["n"], arm["best"], arm["median"], arm["worst"]) == (1, 0.5, 0.5, 0.5)
    assert arm["expected_max"] == [0.5]


def test_empty_table_and_arm_without_finished_trials():
    empty = summarize([], num_classes=10)
    assert empty["arms"] == {} and empty["comparisons"] == []
    assert empty["settings"]["n_rows"] == 0 and empty["settings"]["baseline"] is None

    rows = [row("sgd", 1e-2, "he", 0, 0.5), row("insgd", 1e-2, "he", 0, None, status="pending")]
    s = summarize(rows, num_classes=10)
    insgd = s["arms"]["insgd"]
    assert insgd["n"] == 0
    for key in (
        "best",
        "median",
        "worst",
        "divergence_rate",
        "best_lr",
        "lr_window_decades",
        "lr_sensitivity",
        "init_sensitivity",
    ):
        assert insgd[key] is None, key
    assert insgd["expected_max"] == [] and insgd["by_init"] == {}
    assert insgd["importance"] == {"ped_anova": None, "fanova": None}
    assert s["comparisons"][0]["n_pairs"] == 0
    json.dumps(s, allow_nan=False)


def test_unfinished_rows_are_left_out_and_counted():
    rows = [
        row("sgd", 1e-2, "he", 0, 0.5, status="finished"),
        row("sgd", 1e-2, "he", 1, 0.6),  # no status: finished
        row("sgd", 1e-1, "he", 0, 0.99, status="early_stopped"),  # partial value: left out
        row("sgd", 1e-1, "he", 1, 0.99, status="early_stopped"),
        {"arm": None, "status": "failed"},  # a failed run may lack everything
        {"arm": "sgd", "lr": None, "status": "running"},
        {"arm": "insgd", "status": "pending"},
    ]
    s = summarize(rows, num_classes=10)
    assert s["arms"]["sgd"]["n"] == 2
    assert s["arms"]["sgd"]["best"] == pytest.approx(0.6)  # not the early-stopped .99
    assert s["settings"]["excluded"] == {
        "early_stopped": 2,
        "failed": 1,
        "running": 1,
        "pending": 1,
    }
    assert (s["settings"]["n_rows"], s["settings"]["n_used"]) == (7, 2)
    assert list(s["arms"]) == ["sgd", "insgd"]


def test_nonfinite_results_count_as_diverged():
    rows = [
        row("sgd", 1e-2, "he", 0, 0.8, 0.4),
        row("sgd", 1e-1, "he", 0, 0.3, float("nan")),  # NaN loss, not flagged
        row("sgd", 1.0, "he", 0, None, float("inf")),  # missing accuracy, inf loss
        row("sgd", 1.0, "he", 1, 0.1, 2.0, diverged="true"),  # MLflow tag string
    ]
    s = summarize(rows, num_classes=4)
    arm = s["arms"]["sgd"]
    assert arm["divergence_rate"] == pytest.approx(3 / 4)
    assert arm["worst"] == pytest.approx(0.25)  # imputed 1/C, C = 4
    assert s["settings"]["nonfinite_as_diverged"] == 2
    # bins -8 (l .4), -4 (l ln4), 0 (l ln4) -> mean(0, ln4 - .4, ln4 - .4)
    assert arm["lr_sensitivity"] == pytest.approx(2 * (math.log(4) - 0.4) / 3)
    text = json.dumps(s, allow_nan=False)  # no NaN anywhere
    assert "NaN" not in text and "Infinity" not in text


def test_init_scale_missing_means_one_and_matches():
    rows = [
        {**row("sgd", 1e-2, "he", 0, 0.5), "init_scale": None},
        {k: v for k, v in row("insgd", 1e-2, "he", 0, 0.7).items() if k != "init_scale"},
        row("insgd", 1e-2, "he", 0, 0.9) | {"init_scale": 2.0, "seed": 0},
    ]
    s = summarize(rows, num_classes=10)
    assert s["comparisons"][0]["n_pairs"] == 1
    assert s["comparisons"][0]["mean_diff"] == pytest.approx(0.2)


def test_dataframe_input_gives_the_same_summary():
    df = pd.DataFrame(PAIRED)
    assert summarize(df, num_classes=10) == summarize(PAIRED, num_classes=10)


def test_importances_over_lr_and_init():
    # accuracy depends on lr only; init has no effect -> lr dominates both importances
    rows = [
        row("sgd", lr, init, seed, acc)
        for lr, acc in zip(np.logspace(-4, 0, 12), np.linspace(0.1, 0.9, 12), strict=True)
        for init in ("he", "xavier")
        for seed in (0, 1)
    ]
    imp = summarize(rows, num_classes=10)["arms"]["sgd"]["importance"]
    for name in ("ped_anova", "fanova"):
        assert set(imp[name]) == {"lr", "init"}
        assert sum(imp[name].values()) == pytest.approx(1.0)
        assert imp[name]["lr"] > 0.8, name
    # init_scale enters only when it varies
    varied = [r | {"init_scale": 0.5 if i % 2 else 2.0} for i, r in enumerate(rows)]
    imp = summarize(varied, num_classes=10)["arms"]["sgd"]["importance"]
    assert set(imp["fanova"]) == {"lr", "init", "init_scale"}
    # constant accuracy: nothing to attribute -> null
    flat = [r | {"val_acc": 0.5} for r in rows]
    assert summarize(flat, num_classes=10)["arms"]["sgd"]["importance"] == {
        "ped_anova": None,
        "fanova": None,
    }


@pytest.mark.parametrize(
    ("change", "field", "value"),
    [
        ({"lr": 0}, "lr", "0"),
        ({"lr": -1e-3}, "lr", "-0.001"),
        ({"lr": "fast"}, "lr", "'fast'"),
        ({"lr": float("inf")}, "lr", "inf"),
        ({"val_acc": 95.0}, "val_acc", "95.0"),
        ({"init_scale": 0.0}, "init_scale", "0.0"),
        ({"seed": 1.5}, "seed", "1.5"),
        ({"seed": None}, "seed", "seed"),
        ({"diverged": "maybe"}, "diverged", "'maybe'"),
        ({"status": "done"}, "status", "'done'"),
        ({"arm": ""}, "arm", "arm"),
        ({"init": None}, "init", "init"),
    ],
)
def test_bad_rows_name_the_field_and_value(change, field, value):
    rows = [row("sgd", 1e-2, "he", 0, 0.5), row("sgd", 1e-1, "he", 0, 0.5) | change]
    with pytest.raises(ConfigError) as err:
        summarize(rows, num_classes=10)
    msg = str(err.value)
    assert "trials[1]" in msg and field in msg and value in msg


def test_missing_result_key_is_an_error_not_a_divergence():
    bad = row("sgd", 1e-2, "he", 0, 0.5)
    del bad["val_loss"]
    with pytest.raises(ConfigError, match=r"trials\[0\].*val_loss"):
        summarize([bad], num_classes=10)


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"num_classes": 1}, "num_classes must be an integer >= 2, got 1"),
        ({"num_classes": 10.0}, "num_classes must be an integer >= 2, got 10.0"),
        ({"num_classes": 10, "bin_width": 0}, "bin_width must be a finite number > 0, got 0"),
        ({"num_classes": 10, "delta": -0.1}, "delta must be a finite number >= 0, got -0.1"),
        ({"num_classes": 10, "arms": ["sgd", "sgd"]}, "arms must not repeat a name"),
        ({"num_classes": 10, "arms": "sgd"}, "arms must be a list"),
    ],
)
def test_bad_arguments(kwargs, text):
    with pytest.raises(ConfigError, match=text):
        summarize([row("sgd", 1e-2, "he", 0, 0.5)], **kwargs)


def test_trials_must_be_rows():
    with pytest.raises(ConfigError, match=r"trials\[0\] must be a mapping"):
        summarize([("sgd", 0.1)], num_classes=10)
    with pytest.raises(ConfigError, match="trials must be an iterable"):
        summarize({"arm": "sgd"}, num_classes=10)


def test_summary_is_strict_json_and_reports_settings():
    s = summarize(PAIRED, num_classes=10, bin_width=0.5, delta=0.02)
    assert json.loads(json.dumps(s, allow_nan=False)) == s
    st = s["settings"]
    assert (st["bin_width"], st["delta"], st["num_classes"]) == (0.5, 0.02, 10)
    assert st["chance_acc"] == pytest.approx(0.1) and st["chance_loss"] == pytest.approx(
        math.log(10)
    )
    assert (st["n_rows"], st["n_used"]) == (9, 9)
