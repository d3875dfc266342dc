"""The suite verdict (docs/suites.md, "The suite verdict"): every verdict reached from real study
summaries, the boundary of "a workload says the opposite", range-limited workloads pooled as
measured and flagged, a workload whose seeds all agree (standard error 0), a workload with one
seed, a summary stored before auc_diff_se existed."""

from __future__ import annotations

import math

import pytest

from study.analysis.suite import WorkloadResult, suite_sentence, suite_verdict, summarize_suite
from study.analysis.suite_schema import SuiteComparison
from tests.study.suite_cases import study_summary, textbook_random_effects, with_comparison

ARMS = ["sgd", "insgd"]


def _suite(summaries, statuses=None) -> SuiteComparison:
    statuses = statuses or ["finished"] * len(summaries)
    workloads = [
        WorkloadResult(f"w{i}", f"s{i}", st, s)
        for i, (s, st) in enumerate(zip(summaries, statuses, strict=True))
    ]
    suite = summarize_suite(workloads, arms=ARMS, suite_id="suite", name="test")
    (c,) = suite.comparisons
    return c


UP = [(0.04, 0.05, 0.06), (0.03, 0.04, 0.05), (0.05, 0.06, 0.07)]


def test_more_robust_when_every_workload_agrees():
    c = _suite([study_summary({"insgd": s}) for s in UP])
    assert c.verdict == "more_robust" and c.pooled_ci[0] > 0
    assert c.above_zero == ["w0", "w1", "w2"] and c.below_zero == []
    assert c.verdict_counts["more_robust"] == 3
    assert suite_sentence(c).endswith("; more robust on 3: more robust")


def test_less_robust_is_the_mirror_image():
    c = _suite([study_summary({"insgd": tuple(-x for x in s)}) for s in UP])
    assert c.verdict == "less_robust" and c.pooled_ci[1] < 0
    assert c.below_zero == ["w0", "w1", "w2"]
    assert suite_sentence(c).endswith("; less on 3: less robust")


def test_mixed_when_workloads_exclude_zero_on_both_sides():
    c = _suite(
        [
            study_summary({"insgd": (0.04, 0.05, 0.06)}),
            study_summary({"insgd": (-0.04, -0.05, -0.06)}),
            study_summary({"insgd": (0.0, 0.01, -0.01)}),
        ]
    )
    assert (c.above_zero, c.below_zero) == (["w0"], ["w1"])
    assert c.verdict == "mixed"
    text = suite_sentence(c)
    assert text.endswith(
        "more robust on 1, less on 1, no clear difference on 1: mixed (higher AUC on w0; "
        "lower on w1)"
    )


def test_no_clear_difference_when_the_pooled_interval_holds_zero():
    c = _suite([study_summary({"insgd": s}) for s in [(0.01, 0.03, 0.05), (0.0, 0.02, -0.01)]])
    assert c.k == 2 and c.pooled_ci[0] < 0 < c.pooled_ci[1]
    assert c.verdict == "no_clear_difference"


def test_not_enough_data_with_fewer_than_two_workloads_with_intervals():
    one_seed = study_summary({"insgd": (0.05,)})
    assert one_seed.comparisons[0].auc_diff_ci is None
    c = _suite([study_summary({"insgd": UP[0]}), one_seed])
    assert c.k == 1 and c.pooled_workloads == ["w0"]
    assert (c.pooled_auc_diff, c.pooled_ci, c.tau2, c.i2, c.pooled_se) == (None,) * 5
    assert c.verdict == "not_enough_data"
    assert suite_sentence(c) == (
        "insgd vs sgd over 2 workloads: no pooled AUC (1 of 2 workloads with an interval); "
        "more robust on 1, not enough data on 1: not enough data for a verdict (1 workload "
        "with an AUC interval; pooling needs 2)"
    )
    none = _suite([])
    assert none.k == 0 and none.verdict == "not_enough_data" and none.n_workloads == 0


def test_two_seeds_give_an_interval_and_are_pooled():
    """n_seeds = 2: the study says not_enough_data (it needs 3), but its interval (t with 1 df)
    and standard error exist, so the suite pools it."""
    two = study_summary({"insgd": (0.02, 0.04)})
    assert two.comparisons[0].verdict == "not_enough_data"
    c = _suite([two, study_summary({"insgd": UP[0]})])
    assert c.k == 2 and c.verdict_counts["not_enough_data"] == 1


def test_pending_until_every_study_has_ended_whatever_the_numbers():
    summaries = [study_summary({"insgd": s}) for s in UP]
    for status in ("queued", "running"):
        c = _suite(summaries, ["finished", status, "finished"])
        assert c.verdict == "pending" and c.pooled_ci[0] > 0
    for status in ("failed", "cancelled"):
        assert _suite(summaries, ["finished", status, "finished"]).verdict == "more_robust"


#: Five workloads that each hold 0 (y = +0.03, se 0.01, 3 seeds: +0.03 ± 0.043) but pool to
#: [+0.017, +0.039] with a sixth, y = −0.01 with se 0.02, whose interval is set per test.
def _boundary(sixth_ci):
    base = study_summary({"insgd": UP[0]})
    t2 = 0.95 * math.sqrt(2 / 0.0975)
    holding = with_comparison(
        base,
        auc_diff=0.03,
        auc_diff_se=0.01,
        auc_diff_ci=[0.03 - t2 * 0.01, 0.03 + t2 * 0.01],
        verdict="no_clear_difference",
    )
    sixth = with_comparison(
        base, auc_diff=-0.01, auc_diff_se=0.02, auc_diff_ci=sixth_ci, verdict="no_clear_difference"
    )
    return _suite([holding] * 5 + [sixth])


def test_a_workload_says_the_opposite_when_its_interval_lies_wholly_on_the_other_side():
    touching = _boundary([-0.05, 0.0])  # its high end is 0: it does not exclude 0
    want = textbook_random_effects([0.03] * 5 + [-0.01], [0.01] * 5 + [0.02])
    assert touching.pooled_ci == pytest.approx(want["ci"], rel=1e-9)
    assert touching.pooled_ci[0] > 0
    assert touching.below_zero == [] and touching.verdict == "more_robust"
    opposite = _boundary([-0.05, -1e-9])  # just below 0: it says the opposite
    assert opposite.pooled_ci == touching.pooled_ci
    assert opposite.below_zero == ["w5"] and opposite.above_zero == []
    assert opposite.verdict == "no_clear_difference"


def test_the_rules_in_order():
    above, below, holds = [0.01, 0.05], [-0.05, -0.01], [-0.01, 0.05]
    cases = [
        (dict(complete=False, k=5, pooled_ci=above, above=2, below=0), "pending"),
        (dict(complete=False, k=0, pooled_ci=None, above=0, below=0), "pending"),
        (dict(complete=True, k=1, pooled_ci=None, above=1, below=0), "not_enough_data"),
        (dict(complete=True, k=3, pooled_ci=above, above=1, below=1), "mixed"),
        (dict(complete=True, k=3, pooled_ci=holds, above=1, below=1), "mixed"),
        (dict(complete=True, k=3, pooled_ci=above, above=0, below=0), "more_robust"),
        (dict(complete=True, k=3, pooled_ci=above, above=0, below=1), "no_clear_difference"),
        (dict(complete=True, k=3, pooled_ci=below, above=0, below=2), "less_robust"),
        (dict(complete=True, k=3, pooled_ci=below, above=1, below=0), "no_clear_difference"),
        (dict(complete=True, k=3, pooled_ci=[0.0, 0.05], above=1, below=0), "no_clear_difference"),
        (dict(complete=True, k=3, pooled_ci=[-0.05, 0.0], above=0, below=1), "no_clear_difference"),
        (dict(complete=True, k=2, pooled_ci=holds, above=0, below=0), "no_clear_difference"),
    ]
    for kwargs, want in cases:
        assert suite_verdict(**kwargs) == want, kwargs


def test_a_range_limited_workload_is_pooled_as_measured_and_flagged():
    cut = study_summary({"insgd": (0.02, 0.03, 0.02)}, cut_high=True)
    (cc,) = cut.comparisons
    assert cc.verdict == "range_limited" and cc.auc_diff_ci[0] > 0
    workloads = [study_summary({"insgd": s}) for s in UP[:2]] + [cut]
    c = _suite(workloads)
    assert c.range_limited == ["w2"] and "w2" in c.pooled_workloads and c.k == 3
    assert c.above_zero == ["w0", "w1", "w2"]
    y = [s.comparisons[0].auc_diff for s in workloads]
    se = [s.comparisons[0].auc_diff_se for s in workloads]
    assert c.pooled_auc_diff == pytest.approx(textbook_random_effects(y, se)["estimate"])
    assert c.verdict == "more_robust"
    assert "more robust on 2, range-limited on 1: more robust" in suite_sentence(c)
    suite = summarize_suite(
        [WorkloadResult(f"w{i}", f"s{i}", "finished", s) for i, s in enumerate(workloads)],
        arms=ARMS,
        suite_id="x",
        name="x",
    )
    wc = suite.workloads[2].comparisons[0]
    assert wc.range_limited and wc.pooled
    assert [(r.arm, r.end) for r in wc.range_cut] == [("sgd", "high"), ("insgd", "high")]
    assert any("insgd vs sgd: the lr range cuts w2 (range_limited)" in w for w in suite.warnings)


def test_a_workload_whose_seeds_all_agree_is_not_pooled_but_still_heard():
    """Every seed gives D = +0.02: sd 0, standard error 0, the interval the point itself. An
    inverse-variance weight 1/0 would let it alone set the pooled value and interval; it is
    left out of the pool, named in a warning, and its verdict and interval still count."""
    exact = study_summary({"insgd": (0.02, 0.02, 0.02)})
    (ec,) = exact.comparisons
    assert ec.auc_diff_se == 0.0 and ec.verdict == "more_robust"
    others = [study_summary({"insgd": s}) for s in [(0.01, 0.03, 0.05), (0.0, 0.02, -0.01)]]
    workloads = [
        WorkloadResult(f"w{i}", f"s{i}", "finished", s) for i, s in enumerate([exact, *others])
    ]
    suite = summarize_suite(workloads, arms=ARMS, suite_id="x", name="x")
    (c,) = suite.comparisons
    assert c.k == 2 and c.pooled_workloads == ["w1", "w2"]
    wc = suite.workloads[0].comparisons[0]
    assert not wc.pooled and wc.weight is None and wc.auc_diff_se == 0.0
    y = [s.comparisons[0].auc_diff for s in others]
    se = [s.comparisons[0].auc_diff_se for s in others]
    assert c.pooled_auc_diff == pytest.approx(textbook_random_effects(y, se)["estimate"])
    assert c.verdict_counts["more_robust"] == 1 and c.above_zero == ["w0"]
    assert any(
        "insgd vs sgd, workload w0: every seed gives the same AUC difference (+0.020; standard "
        "error 0), so it is left out of the pool" in w
        for w in suite.warnings
    )
    assert suite_sentence(c).startswith("insgd vs sgd over 2 of 3 workloads: AUC ")


def test_a_summary_stored_before_auc_diff_se_existed():
    """The standard error is recovered from the interval: (high − low) / (2 t(0.975, n − 1))."""
    summaries = [study_summary({"insgd": s}) for s in UP]
    stored = []
    for s in summaries:
        data = s.model_dump(mode="json")
        del data["comparisons"][0]["auc_diff_se"]
        stored.append(data)
    new = _suite(summaries)
    old = _suite(stored)
    assert old.pooled_ci == pytest.approx(new.pooled_ci, rel=1e-9)
    assert old.pooled_auc_diff == pytest.approx(new.pooled_auc_diff, rel=1e-9)
