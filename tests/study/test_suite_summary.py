"""summarize_suite() end to end on real study summaries: per-workload numbers taken from each
study, the pooled numbers against an independent meta-analysis of the studies' own differences
and standard errors, pending while a study runs, the JSON form, bad input."""

from __future__ import annotations

import json
import math

import pytest

from study.analysis.suite import WorkloadResult, suite_sentence, summarize_suite
from study.analysis.suite_schema import SuiteSummary
from study.errors import ConfigError
from tests.study.suite_cases import study_summary, textbook_random_effects

#: Three workloads; insgd's per-seed AUC differences in each (3 seeds).
SHIFTS = {
    "digits-cnn": (0.01, 0.03, 0.05),  # mean +0.030, sd 0.020
    "digits-bn": (0.00, 0.02, -0.01),  # mean +0.0033
    "digits-mlp": (0.04, 0.05, 0.06),  # mean +0.050, sd 0.010
}


def _workloads(status: dict[str, str] | None = None, **kw) -> list[WorkloadResult]:
    status = status or {}
    out = []
    for i, (name, shifts) in enumerate(SHIFTS.items()):
        st = status.get(name, "finished")
        summary = study_summary({"insgd": shifts}, complete=st != "running", **kw)
        out.append(WorkloadResult(name, f"study-{i}", st, summary))
    return out


@pytest.fixture(scope="module")
def suite() -> SuiteSummary:
    return summarize_suite(_workloads(), arms=["sgd", "insgd"], suite_id="s-1", name="digits")


def test_workloads_carry_their_studies_numbers(suite):
    assert [w.name for w in suite.workloads] == list(SHIFTS)
    for (name, shifts), w in zip(SHIFTS.items(), suite.workloads, strict=True):
        (wc,) = w.comparisons
        mean = sum(shifts) / 3
        sd = math.sqrt(sum((s - mean) ** 2 for s in shifts) / 2)
        assert (wc.arm, wc.baseline, wc.n_seeds) == ("insgd", "sgd", 3)
        assert wc.auc_diff == pytest.approx(mean, abs=1e-12), name
        assert wc.auc_diff_se == pytest.approx(sd / math.sqrt(3), abs=1e-12), name
        assert wc.pooled and not wc.range_limited and wc.range_cut == []
        assert w.status == "finished" and w.has_summary and not w.partial
    verdicts = [w.comparisons[0].verdict for w in suite.workloads]
    # digits-mlp: [+0.025, +0.075] above 0 (windows agree): more robust; the others hold 0
    assert verdicts == ["no_clear_difference", "no_clear_difference", "more_robust"]


def test_pooled_numbers_match_an_independent_meta_analysis(suite):
    (c,) = suite.comparisons
    y = [w.comparisons[0].auc_diff for w in suite.workloads]
    se = [w.comparisons[0].auc_diff_se for w in suite.workloads]
    want = textbook_random_effects(y, se)
    assert c.k == 3 and c.n_workloads == 3 and c.pooled_workloads == list(SHIFTS)
    assert c.pooled_auc_diff == pytest.approx(want["estimate"], rel=1e-9, abs=1e-12)
    assert c.pooled_ci == pytest.approx(want["ci"], rel=1e-9, abs=1e-12)
    assert c.pooled_se == pytest.approx(want["se"], rel=1e-9)
    assert c.tau2 == pytest.approx(want["tau2"], rel=1e-9, abs=1e-15)
    assert c.i2 == pytest.approx(want["i2"], rel=1e-9, abs=1e-12)
    weights = [w.comparisons[0].weight for w in suite.workloads]
    assert weights == pytest.approx(want["weights"], rel=1e-9)
    assert sum(weights) == pytest.approx(1.0)
    assert c.verdict_counts["more_robust"] == 1 and c.verdict_counts["no_clear_difference"] == 2
    assert sum(c.verdict_counts.values()) == 3
    assert c.above_zero == ["digits-mlp"] and c.below_zero == []
    # the pooled interval holds 0 (t with 2 df is wide): no clear difference
    assert c.pooled_ci[0] < 0 < c.pooled_ci[1]
    assert c.verdict == "no_clear_difference"


def test_the_sentence(suite):
    (c,) = suite.comparisons
    text = suite_sentence(c)
    assert text.startswith("insgd vs sgd over 3 workloads: AUC +")
    assert f"I² {c.i2:.0%}" in text
    assert text.endswith("; more robust on 1, no clear difference on 2: no clear difference")


def test_pending_while_a_study_runs():
    running = summarize_suite(
        _workloads({"digits-bn": "running"}), arms=["sgd", "insgd"], suite_id="s", name="n"
    )
    assert running.partial
    (c,) = running.comparisons
    assert c.verdict == "pending"
    assert running.workloads[1].partial and running.workloads[1].comparisons[0].verdict == (
        "pending"
    )
    assert c.pooled_auc_diff is not None  # provisional numbers all the same
    assert suite_sentence(c).endswith("no verdict yet (a study is still running; the numbers "
                                      "are provisional)")  # fmt: skip
    queued = [
        WorkloadResult("a", "s1", "queued", None),
        WorkloadResult("b", "s2", "finished", study_summary({"insgd": (0.01, 0.02, 0.03)})),
    ]
    early = summarize_suite(queued, arms=["sgd", "insgd"], suite_id="s", name="n")
    assert early.partial and early.comparisons[0].verdict == "pending"
    assert early.workloads[0].comparisons[0].verdict == "pending"
    assert early.workloads[0].has_summary is False
    assert early.settings.n_ended == 1 and early.settings.status_counts == {
        "queued": 1,
        "finished": 1,
    }


def test_json_round_trip_has_no_nan(suite):
    text = suite.model_dump_json()
    assert "NaN" not in text and "Infinity" not in text
    again = SuiteSummary.model_validate(json.loads(text))
    assert again == suite
    # a workload given as the study summary's JSON dict gives the same suite
    as_dicts = [
        WorkloadResult(w.name, w.study_id, w.status, w.summary.model_dump(mode="json"))
        for w in _workloads()
    ]
    same = summarize_suite(as_dicts, arms=["sgd", "insgd"], suite_id="s-1", name="digits")
    assert same == suite


def test_bad_workloads_are_refused_with_the_field_named():
    ok = _workloads()
    with pytest.raises(ConfigError, match=r"workloads\[1\] \('digits-cnn'\)\.name must be unique"):
        summarize_suite([ok[0], ok[0]], arms=["sgd", "insgd"], suite_id="s", name="n")
    bad = WorkloadResult("x", "s", "done", None)
    with pytest.raises(ConfigError, match=r"workloads\[0\] \('x'\)\.status must be one of .*"):
        summarize_suite([bad], arms=["sgd", "insgd"], suite_id="s", name="n")
    with pytest.raises(ConfigError, match=r"\.summary must have the suite's baseline 'adam'"):
        summarize_suite(ok, arms=["adam", "insgd"], suite_id="s", name="n")
    with pytest.raises(ConfigError, match=r"workloads\[0\] \('x'\)\.summary must be a version 3"):
        summarize_suite(
            [WorkloadResult("x", "s", "finished", {"version": 2})],
            arms=["sgd", "insgd"],
            suite_id="s",
            name="n",
        )
    with pytest.raises(ConfigError, match="arms must be distinct"):
        summarize_suite(ok, arms=["sgd", "sgd"], suite_id="s", name="n")


def test_the_schema_refuses_nan_infinity_and_unknown_keys(suite):
    from pydantic import ValidationError

    data = suite.model_dump(mode="json")
    for path, value in (
        (("comparisons", 0, "pooled_auc_diff"), float("nan")),
        (("comparisons", 0, "tau2"), float("inf")),
        (("workloads", 0, "comparisons", 0, "auc_diff"), float("nan")),
        (("profile", "arms", "sgd", "rho", 0), float("nan")),
        (("comparisons", 0, "i2"), 1.5),  # a fraction, not percent
        (("comparisons", 0, "tau2"), -0.001),
        (("comparisons", 0, "verdict"), "range_limited"),  # a study verdict, not a suite's
    ):
        bad = json.loads(json.dumps(data))
        at = bad
        for key in path[:-1]:
            at = at[key]
        at[path[-1]] = value
        with pytest.raises(ValidationError):
            SuiteSummary.model_validate(bad)
    with pytest.raises(ValidationError, match="extra"):
        SuiteSummary.model_validate({**data, "pooled": 1})


def test_the_per_workload_table(suite):
    from study.analysis.suite_present import workload_rows

    headers, rows = workload_rows(suite)
    assert headers[:5] == ["workload", "study", "status", "B vs A", "verdict"]
    assert [r[0] for r in rows] == list(SHIFTS)
    cnn = rows[0]
    assert cnn[1:5] == ["study-0", "finished", "insgd vs sgd", "no clear difference"]
    assert cnn[5] == "+0.030 [−0.020, +0.080]" and cnn[6] == "3" and cnn[8] == "none"
    weight = suite.workloads[0].comparisons[0].weight
    assert cnn[9] == f"{weight:.0%}"


def test_the_worked_example_of_docs_suites_md():
    """Three 5-seed studies with auc_diff +0.05, +0.01, +0.03 and standard error 0.01 each
    (per-seed shifts m + 0.01·√2·(−2, −1, 0, 1, 2): sd 0.01·√5): τ² = 0.0003, weights 1/3,
    μ = 0.03, q = 1, pooled_se = √(1/7,500), interval [−0.020, +0.080], I² = 0.75."""
    d = 0.01 * math.sqrt(2)
    workloads = [
        WorkloadResult(
            name, name, "finished", study_summary({"insgd": tuple(m + d * k for k in range(-2, 3))})
        )
        for name, m in (("digits-cnn", 0.05), ("digits-cnn-bn", 0.01), ("digits-mlp", 0.03))
    ]
    suite = summarize_suite(workloads, arms=["sgd", "insgd"], suite_id="x", name="x")
    got = [
        x
        for w in suite.workloads
        for x in (w.comparisons[0].auc_diff, w.comparisons[0].auc_diff_se)
    ]
    assert got == pytest.approx([0.05, 0.01, 0.01, 0.01, 0.03, 0.01], abs=1e-12)
    assert [w.comparisons[0].verdict for w in suite.workloads] == [
        "more_robust",
        "no_clear_difference",
        "more_robust",
    ]
    (c,) = suite.comparisons
    t2 = 0.95 * math.sqrt(2 / 0.0975)
    assert c.tau2 == pytest.approx(0.0003, rel=1e-9)
    assert c.pooled_auc_diff == pytest.approx(0.03, rel=1e-9)
    assert c.pooled_se == pytest.approx(math.sqrt(1 / 7500), rel=1e-9)
    assert c.pooled_ci == pytest.approx([0.03 - t2 * 0.011547005, 0.03 + t2 * 0.011547005])
    assert c.i2 == pytest.approx(0.75, rel=1e-9)
    assert [w.comparisons[0].weight for w in suite.workloads] == pytest.approx([1 / 3] * 3)
    assert suite_sentence(c) == (
        "insgd vs sgd over 3 workloads: AUC +0.030 [−0.020, +0.080], I² 75%; more robust on 2, "
        "no clear difference on 1: no clear difference"
    )
