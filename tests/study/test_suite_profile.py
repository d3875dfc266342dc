"""The Dolan-Moré performance profile of the arms over a suite's workloads (docs/suites.md,
"The performance profile"), worked by hand, and from real study summaries."""

from __future__ import annotations

import itertools

import pytest

from study.analysis.suite import PROFILE_T, WorkloadResult, performance_profile, summarize_suite
from tests.study.suite_cases import study_summary

ARMS = ["sgd", "insgd", "adam"]
#: AUCs per workload. w0: best insgd 0.65 -> gaps sgd 0.05, insgd 0, adam 0.15. w1: best adam
#: 0.71 -> gaps 0.01, 0.03, 0. w2: insgd has no AUC; best sgd 0.55 -> gaps 0, none, 0.15.
#: w3: no arm has an AUC (no finished trial): not profiled.
AUCS = {
    "w0": {"sgd": 0.60, "insgd": 0.65, "adam": 0.50},
    "w1": {"sgd": 0.70, "insgd": 0.68, "adam": 0.71},
    "w2": {"sgd": 0.55, "insgd": None, "adam": 0.40},
    "w3": {"sgd": None, "insgd": None, "adam": None},
}


def _rho_at(profile, arm: str, t: float) -> float:
    return profile["arms"][arm]["rho"][PROFILE_T.index(t)]


def test_the_grid():
    assert len(PROFILE_T) == 51 and PROFILE_T[0] == 0.0 and PROFILE_T[-1] == 0.5
    assert PROFILE_T[3] == 0.03 and PROFILE_T[15] == 0.15  # exact decimals


def test_profile_by_hand():
    p = performance_profile(AUCS, ARMS)
    assert p["workloads"] == ["w0", "w1", "w2"]
    gaps = p["arms"]["sgd"]["gaps"]
    assert gaps["w0"] == pytest.approx(0.05) and gaps["w1"] == pytest.approx(0.01)
    assert gaps["w2"] == 0.0 and gaps["w3"] is None
    assert p["arms"]["insgd"]["gaps"]["w2"] is None
    # sgd: best on w2 (1/3), within 0.01 on w1 too (2/3), within 0.05 on all three
    # (0.65 − 0.60 is 0.05000000000000004 in floating point: a gap within 1e-12 of t counts)
    assert [_rho_at(p, "sgd", t) for t in (0.0, 0.01, 0.04, 0.05, 0.5)] == pytest.approx(
        [1 / 3, 2 / 3, 2 / 3, 1.0, 1.0]
    )
    # insgd: best on w0, within 0.03 on w1, never on w2 (no AUC): at most 2/3
    assert [_rho_at(p, "insgd", t) for t in (0.0, 0.02, 0.03, 0.5)] == pytest.approx(
        [1 / 3, 1 / 3, 2 / 3, 2 / 3]
    )
    # adam: best on w1; 0.15 behind on w0 and w2
    assert [_rho_at(p, "adam", t) for t in (0.0, 0.14, 0.15, 0.5)] == pytest.approx(
        [1 / 3, 1 / 3, 1.0, 1.0]
    )
    for arm in ARMS:  # a profile never falls
        rho = p["arms"][arm]["rho"]
        assert all(a <= b for a, b in itertools.pairwise(rho))


def test_no_workload_with_an_auc_gives_a_flat_zero_profile():
    p = performance_profile({"w": {"sgd": None, "insgd": None}}, ["sgd", "insgd"])
    assert p["workloads"] == [] and p["arms"]["sgd"]["rho"] == [0.0] * 51


def test_the_suite_profile_from_study_summaries():
    """insgd adds +0.05 on w0 and −0.02 on w1 (AUC exactly that much above or below sgd's)."""
    w0 = study_summary({"insgd": (0.05, 0.05, 0.05)})
    w1 = study_summary({"insgd": (-0.02, -0.02, -0.02)})
    suite = summarize_suite(
        [
            WorkloadResult("w0", "a", "finished", w0),
            WorkloadResult("w1", "b", "finished", w1),
            WorkloadResult("w2", "c", "running", None),
        ],
        arms=["sgd", "insgd"],
        suite_id="s",
        name="n",
    )
    prof = suite.profile
    assert prof.workloads == ["w0", "w1"] and prof.t == list(PROFILE_T)
    assert prof.arms["sgd"].gaps == pytest.approx({"w0": 0.05, "w1": 0.0, "w2": None})
    assert prof.arms["insgd"].gaps == pytest.approx({"w0": 0.0, "w1": 0.02, "w2": None})
    assert prof.arms["sgd"].rho[0] == 0.5 and prof.arms["sgd"].rho[5] == 1.0
    assert prof.arms["insgd"].rho[0] == 0.5 and prof.arms["insgd"].rho[2] == 1.0
    assert prof.arms["insgd"].rho[1] == 0.5
