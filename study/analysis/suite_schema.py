"""The typed suite summary (docs/suites.md defines every number).

:func:`study.analysis.suite.summarize_suite` returns a :class:`SuiteSummary`;
``summary.model_dump(mode="json")`` is what ``GET /suites/{id}/summary`` serves, and the API uses
:class:`SuiteSummary` as its ``response_model`` so the OpenAPI schema documents every field.
Like the study summary (:mod:`study.analysis.schema`), a value that cannot be computed is
``None`` (``null``), never NaN: every model refuses NaN and infinity.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from study.analysis.schema import Fraction, Pair, RangeCut, Verdict
from study.vocab import StudyStatus

#: The version of the suite summary :func:`~study.analysis.suite.summarize_suite` computes.
SUITE_SUMMARY_VERSION = 1

#: A suite comparison's verdict, listed in the order its rules are tried (docs/suites.md).
SuiteVerdict = Literal[
    "pending",
    "not_enough_data",
    "mixed",
    "more_robust",
    "less_robust",
    "no_clear_difference",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class WorkloadComparison(_Model):
    """One comparison (B against the baseline A) in one workload: the study's own numbers and
    verdict, and how the workload enters the pooled estimate."""

    arm: str = Field(description="B.")
    baseline: str = Field(description="A (the suite's first arm).")
    verdict: Verdict = Field(
        description="The study's own verdict (docs/summary.md); pending while the study runs, "
        "not_enough_data when it has no summary yet."
    )
    auc_diff: float | None = Field(description="The study's auc_diff (B - A).")
    auc_diff_ci: Pair | None = Field(description="Its 95% replicate interval (Student t).")
    auc_diff_se: float | None = Field(
        ge=0.0, description="Its replicate standard error sd(D)/sqrt(n); null with one seed."
    )
    n_seeds: int = Field(description="Seeds both arms have in the study (0 without a summary).")
    window_diff: float | None = Field(description="The study's window_diff (decades).")
    window_diff_ci: Pair | None = Field(description="Its 95% replicate interval.")
    range_cut: list[RangeCut] = Field(
        description="The arm x init ends the study's lr range cuts for A or B."
    )
    range_limited: bool = Field(
        description="The study's verdict is range_limited: its auc_diff is pooled as measured "
        "over its stated lr range, and flagged."
    )
    pooled: bool = Field(
        description="This workload enters the pooled estimate: it has an interval (n_seeds >= "
        "2) and a standard error > 0."
    )
    weight: Fraction | None = Field(
        description="Its share of the random-effects weights 1/(se^2 + tau2) in the pool; null "
        "when it is not pooled or the pool has fewer than 2 workloads."
    )


class SuiteWorkload(_Model):
    """A workload of the suite: its study, the study's status and each comparison in it."""

    name: str = Field(description="The workload's name in the suite spec.")
    study_id: str = Field(description="The study that runs it.")
    status: StudyStatus = Field(description="The study's status.")
    has_summary: bool = Field(description="At least one trial finished: there is a summary.")
    partial: bool = Field(
        description="Its summary comes from the trials finished so far (the study did not "
        "finish); false without a summary."
    )
    comparisons: list[WorkloadComparison] = Field(
        description="Each other arm against the baseline, in arm order."
    )


class SuiteComparison(_Model):
    """An arm B against the baseline A over the suite's workloads: the random-effects pooled
    AUC difference and the suite verdict."""

    arm: str = Field(description="B.")
    baseline: str = Field(description="A (the suite's first arm).")
    n_workloads: int = Field(description="Workloads in the suite.")
    k: int = Field(
        description="Workloads pooled: those with an AUC interval (n_seeds >= 2) and a standard "
        "error > 0."
    )
    pooled_workloads: list[str] = Field(description="Their names, in suite order.")
    pooled_auc_diff: float | None = Field(
        description="Random-effects estimate of auc_diff: sum w_i y_i / sum w_i with w_i = "
        "1/(se_i^2 + tau2); null with k < 2."
    )
    pooled_ci: Pair | None = Field(
        description="95% Hartung-Knapp interval: pooled_auc_diff +- t(0.975, k-1) pooled_se; "
        "null with k < 2."
    )
    pooled_se: float | None = Field(
        ge=0.0,
        description="Standard error of pooled_auc_diff: sqrt(max(q, 1) / sum w_i), q the "
        "Hartung-Knapp scale sum w_i (y_i - mu)^2 / (k-1) (the modified Hartung-Knapp "
        "interval is never narrower than the standard one); null with k < 2.",
    )
    tau2: float | None = Field(
        ge=0.0,
        description="DerSimonian-Laird between-workload variance max(0, (Q - (k-1)) / (sum v_i "
        "- sum v_i^2 / sum v_i)), v_i = 1/se_i^2; null with k < 2.",
    )
    i2: Fraction | None = Field(
        description="I^2 as a fraction (0 to 1, not percent): max(0, 1 - (k-1)/Q), the share of "
        "the spread of the workloads' estimates beyond what their standard errors explain; 0 "
        "when Q is 0; null with k < 2."
    )
    verdict_counts: dict[Verdict, int] = Field(
        description="How many workloads have each study verdict (every verdict listed, 0 included)."
    )
    range_limited: list[str] = Field(
        description="The workloads whose verdict is range_limited (pooled as measured over "
        "their stated lr range)."
    )
    above_zero: list[str] = Field(
        description="The workloads whose AUC interval lies above 0 (low > 0)."
    )
    below_zero: list[str] = Field(
        description="The workloads whose AUC interval lies below 0 (high < 0)."
    )
    verdict: SuiteVerdict = Field(
        description="In this order: pending (a study has not ended); not_enough_data (k < 2); "
        "mixed (some workload's AUC interval lies above 0 and another's below 0); more_robust "
        "(pooled_ci above 0 and no workload's AUC interval below 0); less_robust (the mirror "
        "image); else no_clear_difference."
    )


class ArmProfile(_Model):
    """An arm's Dolan-Moré performance profile over the workloads."""

    gaps: dict[str, float | None] = Field(
        description="Per workload (suite order): the best arm's AUC there minus this arm's "
        "(>= 0); null when this arm has no AUC there."
    )
    rho: list[Fraction] = Field(
        description="rho(t) at each t of the profile: the share of the profiled workloads "
        "where the gap is <= t."
    )


class Profile(_Model):
    """The Dolan-Moré performance profile of every arm (AUC gaps to the best arm)."""

    t: list[float] = Field(description="The gaps t at which rho is given: 0, 0.01, ..., 0.5.")
    workloads: list[str] = Field(
        description="The profiled workloads: those where at least one arm has an AUC."
    )
    arms: dict[str, ArmProfile] = Field(description="Per arm, in arm order.")


class SuiteSettings(_Model):
    """What the suite summary was computed with."""

    baseline: str = Field(description="The baseline (first) arm.")
    arms: list[str] = Field(description="The arms, in the suite's order.")
    level: float = Field(description="Confidence level of every interval.")
    tau2_method: Literal["dersimonian_laird"] = "dersimonian_laird"
    interval_method: Literal["hartung_knapp_modified"] = "hartung_knapp_modified"
    n_workloads: int = Field(description="Workloads in the suite.")
    n_ended: int = Field(description="Workloads whose study has ended.")
    status_counts: dict[StudyStatus, int] = Field(
        description="How many workloads' studies are in each status (only those present)."
    )


class SuiteSummary(_Model):
    """The summary of a suite: its workloads, each comparison pooled over them, the
    performance profile (version 1; docs/suites.md)."""

    version: Literal[1] = SUITE_SUMMARY_VERSION
    suite_id: str
    name: str
    partial: bool = Field(
        description="A study of the suite has not ended: every suite verdict is pending and the "
        "pooled numbers are provisional."
    )
    workloads: list[SuiteWorkload] = Field(description="In the suite's order.")
    comparisons: list[SuiteComparison] = Field(
        description="Each other arm against the baseline, pooled over the workloads."
    )
    profile: Profile
    settings: SuiteSettings
    warnings: list[str] = Field(
        description="Plain sentences: what cannot be pooled or trusted in this suite."
    )
