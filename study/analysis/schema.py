"""The typed robustness summary, version 3 (docs/summary.md defines every number).

:func:`study.analysis.summarize` returns a :class:`Summary`; ``summary.model_dump(mode="json")``
is what ``summary.json`` and ``GET /studies/{id}/summary`` hold, and the API uses
:class:`Summary` as its ``response_model`` so the OpenAPI schema documents every field.

A value that cannot be computed is ``None`` (``null``), never NaN: every model refuses NaN and
infinity (``allow_inf_nan=False``). Field order is the key order of the JSON.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

#: The version of the summary :func:`~study.analysis.summarize` computes; a stored summary of
#: another version is recomputed from its trials when read.
SUMMARY_VERSION = 3

#: Two numbers ``[low, high]`` (a 95% interval, or a range).
Pair = Annotated[list[float], Field(min_length=2, max_length=2)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
#: A comparison's verdict; listed in the order the rules are tried (docs/summary.md).
Verdict = Literal[
    "pending",
    "not_enough_data",
    "range_limited",
    "more_robust",
    "less_robust",
    "mixed",
    "no_clear_difference",
]
VERDICTS: tuple[str, ...] = get_args(Verdict)
#: An end of the lr range: the lowest or the highest lr tried.
End = Literal["low", "high"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Cell(_Model):
    """A point of the search space: (lr, init, init_scale)."""

    lr: float = Field(description="Learning rate (rounded to 12 significant digits).")
    init: str = Field(description="Initialization scheme.")
    init_scale: float = Field(description="Initialization scale.")


class ArmCell(Cell):
    """A cell: an arm at a point."""

    arm: str = Field(description="The arm.")


class Reference(_Model):
    """The study-wide reference every arm is measured against."""

    best_acc: float | None = Field(
        description="A*: the largest cell mean accuracy over all cells of all arms."
    )
    best_loss: float | None = Field(
        description="l*: the smallest min(cell mean loss, ln C) over all cells of all arms."
    )
    good_threshold: float | None = Field(description="g = A* - tolerance.")
    learned_threshold: float | None = Field(description="h = (1/C + A*) / 2.")
    tolerance: float = Field(description="tau, the spec's analysis.tolerance.")
    chance_acc: float = Field(description="1/C.")
    chance_loss: float = Field(description="ln C.")
    lr_range: Pair | None = Field(
        description="[low, high] in lr units: the range the AUC and lr_sensitivity average "
        "over (the spec's search.lr.low/high; without a spec, the smallest and largest lr)."
    )
    best_cell: ArmCell | None = Field(
        description="The cell that defines A* (ties: lowest mean loss, then lowest lr, then "
        "arm order, init name, init_scale)."
    )


class GroupSummary(_Model):
    """The numbers every group of cells has: an arm x init (under ``by_init``) or a whole arm."""

    n_trials: int = Field(description="Rows (finished trials, diverged included) used.")
    n_cells: int = Field(description="Cells (points) used.")
    best: float | None = Field(description="Largest cell mean accuracy.")
    median: float | None = Field(description="Median cell mean accuracy.")
    worst: float | None = Field(description="Smallest cell mean accuracy.")
    best_cell: Cell | None = Field(
        description="The best cell (ties: lowest mean loss, then lowest lr, init, init_scale)."
    )
    divergence_rate: Fraction | None = Field(description="Diverged rows / rows.")
    failure_rate: Fraction | None = Field(
        description="Rows that diverged or ended below the learned threshold h / rows."
    )
    good_fraction: Fraction | None = Field(
        description="Cells with mean accuracy >= g / cells (higher is more robust)."
    )
    lr_window_decades: float | None = Field(
        description="Longest run of log10(lr), inside the tried range, where the lr curve "
        "stays >= g (an arm: the mean over its inits; higher is more robust)."
    )
    auc: float | None = Field(
        description="Mean of the lr curve over log10(lr) across the study's lr range, flat "
        "beyond the tried lrs (an arm: the mean over its inits; higher is more robust)."
    )
    lr_sensitivity: float | None = Field(
        description="Mean clipped loss over log10(lr) across the lr range minus l* (Wortsman "
        "et al. 2023; an arm: the mean over its inits; lower is more robust)."
    )
    expected_max: list[float] = Field(
        description="E[max of n cells] for n = 1..N (Dodge et al. 2019, Tang et al. 2020)."
    )
    expected_max_band: Annotated[list[list[float]], Field(min_length=2, max_length=2)] = Field(
        description="[low, high]: 2.5 and 97.5 percentiles of expected_max over 1,000 "
        "bootstrap resamples of the cells."
    )


class InitSummary(GroupSummary):
    """An arm x init: its group numbers, where its lr curve peaks and whether the lr range
    holds its good region."""

    best_lr: float | None = Field(
        description="The lr of the curve's maximum (ties: the lower lr); null when the curve "
        "never reaches the learned threshold h (the arm never learned with this init)."
    )
    range_cut: list[End] = Field(
        description='The ends of the lr range where the curve is still >= h: "low" when it '
        'is at the lowest lr tried, "high" at the highest. The good region goes on past that '
        "end, so the range, not the optimizer, decides what the AUC and window see there."
    )


class Importance(_Model):
    """Hyperparameter importances over the arm's cells (normalized to sum to 1)."""

    ped_anova: dict[str, float] | None = Field(description="Optuna's PED-ANOVA.")
    fanova: dict[str, float] | None = Field(description="Optuna's fANOVA (fixed seed).")


class ArmSummary(GroupSummary):
    """An arm: the group numbers over all its cells, plus init robustness and importances."""

    init_regret: float | None = Field(
        description="Mean over inits of A* minus the init's best cell (lower is more robust)."
    )
    init_spread: float | None = Field(
        description="Best init's best cell minus worst init's best cell; null with < 2 inits."
    )
    importance: Importance
    by_init: dict[str, InitSummary] = Field(description="The same numbers per init.")


class RangeCut(_Model):
    """An arm x init whose lr curve is still >= h at an end of the lr range."""

    arm: str = Field(description="The arm.")
    init: str = Field(description="The init.")
    end: End = Field(description="Which end: the lowest lr tried (low) or the highest (high).")


class Comparison(_Model):
    """An arm B against the baseline A, over the points both have (B - A throughout)."""

    arm: str = Field(description="B.")
    baseline: str = Field(description="A (the spec's first arm).")
    paired: bool = Field(description="Both arms have exactly the same points.")
    n_seeds: int = Field(
        description="Distinct seeds that both arms' rows have: the replicates of the _diff keys."
    )
    n_points: int = Field(description="Points both arms have, with at least one common seed.")
    mean_diff: float | None = Field(description="Mean over points of d = mean acc B - A.")
    ci: Pair | None = Field(description="95% bootstrap CI of mean_diff, resampling points.")
    wilcoxon_p: float | None = Field(description="Two-sided Wilcoxon signed-rank p of d.")
    n_nonzero: int = Field(description="Points with d != 0.")
    win_rate: Fraction | None = Field(description="Fraction of points with d > 0 (ties 1/2).")
    n_live: int = Field(description="Points where at least one arm reached h.")
    mean_diff_live: float | None = Field(description="mean_diff over the live points.")
    ci_live: Pair | None = Field(description="ci over the live points.")
    auc_diff: float | None = Field(
        description="mean over shared seeds of D_s = auc_B(s) - auc_A(s), each seed's AUCs from "
        "its rows alone against the all-seeds reference (equals auc B - A when every cell has "
        "every seed)."
    )
    auc_diff_ci: Pair | None = Field(
        description="95% replicate interval of auc_diff: mean(D) +- t(0.975, n-1) sd(D)/sqrt(n) "
        "over the n shared seeds (Student t); null with one seed."
    )
    auc_diff_se: float | None = Field(
        None,
        ge=0.0,
        description="Replicate standard error of auc_diff: sd(D)/sqrt(n) over the n shared seeds "
        "(sd with n-1); the weight a suite gives this study is 1/(se^2 + tau^2). Null with one "
        "seed (and in summaries stored before the field existed).",
    )
    auc_p: float | None = Field(
        description="Two-sided one-sample t-test p of the per-seed AUC differences D; null with "
        "one seed or when every D is 0."
    )
    window_diff: float | None = Field(
        description="mean over shared seeds of the per-seed lr_window_decades difference B - A."
    )
    window_diff_ci: Pair | None = Field(description="95% replicate interval of window_diff.")
    good_fraction_diff: float | None = Field(
        description="mean over shared seeds of the per-seed good_fraction difference B - A."
    )
    good_fraction_diff_ci: Pair | None = Field(
        description="95% replicate interval of good_fraction_diff."
    )
    init_regret_diff: float | None = Field(
        description="mean over shared seeds of the per-seed init_regret difference B - A "
        "(negative favours B)."
    )
    init_regret_diff_ci: Pair | None = Field(
        description="95% replicate interval of init_regret_diff."
    )
    lr_shift_decades: float | None = Field(
        description="Median over the inits where both arms have a best_lr of "
        "log10(best_lr_B / best_lr_A): where B's optimum sits relative to A's (descriptive); "
        "null when there is no such init."
    )
    range_cut: list[RangeCut] = Field(
        description="Every arm x init of A or B whose curve is cut by an end of the lr range "
        "(baseline first, then B; inits by name; low before high)."
    )
    verdict: Verdict = Field(
        description="In this order: pending (the study has not ended); not_enough_data (< 3 "
        "shared seeds or < 6 points); range_limited (range_cut is not empty); more_robust "
        "(auc_diff_ci above 0 and window_diff_ci not below 0); less_robust (the mirror image); "
        "mixed (the two intervals exclude 0 on opposite sides); else no_clear_difference."
    )


class SummarySettings(_Model):
    """What the summary was computed from and with."""

    num_classes: int
    tolerance: float
    baseline: str | None
    arms: list[str] = Field(description="Arm order (spec order, then others by name).")
    n_rows: int = Field(description="Rows given.")
    n_used: int = Field(description="Finished rows used.")
    excluded: dict[str, int] = Field(description="Rows left out, by status.")
    nonfinite_as_diverged: int = Field(
        description="Finished rows with a missing or non-finite accuracy or loss, counted as "
        "diverged."
    )
    n_seeds: int = Field(description="Distinct seeds over the used rows.")
    n_bootstrap: int = Field(description="Point-bootstrap resamples (comparisons).")
    n_band_bootstrap: int = Field(description="Cell-bootstrap resamples (expected_max_band).")


class Summary(_Model):
    """The robustness summary of a study (version 3; docs/summary.md)."""

    version: Literal[3] = SUMMARY_VERSION
    partial: bool = Field(
        False,
        description="Computed from the trials finished so far: the study has not finished "
        "(while it runs every verdict is pending).",
    )
    reference: Reference
    arms: dict[str, ArmSummary] = Field(description="Per arm, in arm order (baseline first).")
    comparisons: list[Comparison] = Field(description="Each other arm against the baseline.")
    settings: SummarySettings
    warnings: list[str] = Field(
        description="Plain sentences: what cannot be computed or trusted from this design."
    )
