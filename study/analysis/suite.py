"""``summarize_suite``: one answer from the same comparison run on several workloads
(docs/suites.md defines every number and works an example by hand).

A suite is the same arms, baseline and seeds run as one study per workload. Each study has its
own summary (:func:`study.analysis.summarize`); the suite summary lists, per workload, each
comparison's verdict and AUC difference with its replicate interval, pools the AUC differences
over the workloads in a random-effects meta-analysis (:func:`study.analysis.pooling.
random_effects`: DerSimonian-Laird tau², modified Hartung-Knapp interval with k - 1 df), states a
suite verdict per comparison, and ranks the arms in a Dolan-Moré performance profile of their
AUCs. The service, the CLI and the report build on :func:`summarize_suite`,
:func:`suite_sentence` and :func:`study.analysis.suite_figures.suite_plots`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from study.analysis.pooling import random_effects
from study.analysis.schema import VERDICTS, Comparison, Summary
from study.analysis.suite_present import suite_sentence
from study.analysis.suite_schema import SuiteSummary
from study.errors import ConfigError
from study.vocab import ENDED, StudyStatus

__all__ = [
    "PROFILE_T",
    "WorkloadResult",
    "performance_profile",
    "suite_sentence",
    "suite_verdict",
    "summarize_suite",
]

#: The confidence level of the pooled intervals (the study intervals are 95% too).
LEVEL = 0.95
#: The gaps at which the performance profile is given: 0, 0.01, ..., 0.5 (51 values).
PROFILE_T: tuple[float, ...] = tuple(round(i / 100, 2) for i in range(51))
#: A gap counts as <= t when it is within this of t (AUC differences carry rounding).
PROFILE_SLACK = 1e-12


@dataclass(frozen=True)
class WorkloadResult:
    """One workload of a suite as the suite summary needs it.

    Attributes:
        name: the workload's name in the suite spec.
        study_id: the study that runs it.
        status: the study's status (a :class:`~study.vocab.StudyStatus` value).
        summary: its robustness summary (a :class:`~study.analysis.schema.Summary` or its JSON
            dict: final, or partial while it runs); None when no trial has finished.
    """

    name: str
    study_id: str
    status: str
    summary: Summary | Mapping[str, Any] | None


def _checked(workloads: Sequence[WorkloadResult], arms: Sequence[str]) -> list[Summary | None]:
    """Each workload's summary as a Summary; ConfigError naming the workload when one breaks
    a rule (unknown status, a repeated name, a summary of other arms)."""
    if len(arms) < 1:
        raise ConfigError(f"arms must name at least one arm, got {list(arms)!r}")
    if len(set(arms)) != len(arms):
        raise ConfigError(f"arms must be distinct, got {list(arms)!r}")
    seen: set[str] = set()
    out: list[Summary | None] = []
    for i, w in enumerate(workloads):
        where = f"workloads[{i}] ({w.name!r})"
        if not isinstance(w.name, str) or not w.name:
            raise ConfigError(f"workloads[{i}].name must be a non-empty string, got {w.name!r}")
        if w.name in seen:
            raise ConfigError(f"{where}.name must be unique in the suite, got {w.name!r} twice")
        seen.add(w.name)
        if not StudyStatus.has(w.status):
            valid = ", ".join(StudyStatus)
            raise ConfigError(f"{where}.status must be one of {valid}, got {w.status!r}")
        summary = w.summary
        if summary is not None and not isinstance(summary, Summary):
            from pydantic import ValidationError

            try:
                summary = Summary.model_validate(summary)
            except ValidationError as e:
                raise ConfigError(
                    f"{where}.summary must be a version 3 study summary: {e.errors()[0]['msg']}"
                ) from None
        if summary is not None:
            baseline = summary.settings.baseline
            if summary.comparisons and baseline != arms[0]:
                raise ConfigError(
                    f"{where}.summary must have the suite's baseline {arms[0]!r}, got {baseline!r}"
                )
        out.append(summary)
    return out


def _comparison_of(summary: Summary | None, arm: str) -> Comparison | None:
    if summary is None:
        return None
    return next((c for c in summary.comparisons if c.arm == arm), None)


def _se(c: Comparison) -> float | None:
    """The replicate standard error of ``c.auc_diff``: the field, or (a summary stored before
    it existed) recovered from the interval: ``(high - low) / (2 t(0.975, n - 1))``."""
    if c.auc_diff_se is not None or c.auc_diff_ci is None or c.n_seeds < 2:
        return c.auc_diff_se
    from scipy.stats import t

    low, high = c.auc_diff_ci
    return (high - low) / (2.0 * float(t.ppf(0.975, c.n_seeds - 1)))


def _workload_comparison(
    c: Comparison | None, arm: str, baseline: str, status: str
) -> dict[str, Any]:
    if c is None:
        verdict = "not_enough_data" if status in ENDED else "pending"
        return {
            "arm": arm,
            "baseline": baseline,
            "verdict": verdict,
            "auc_diff": None,
            "auc_diff_ci": None,
            "auc_diff_se": None,
            "n_seeds": 0,
            "window_diff": None,
            "window_diff_ci": None,
            "range_cut": [],
            "range_limited": False,
            "pooled": False,
            "weight": None,
        }
    se = _se(c)
    return {
        "arm": arm,
        "baseline": baseline,
        "verdict": c.verdict,
        "auc_diff": c.auc_diff,
        "auc_diff_ci": c.auc_diff_ci,
        "auc_diff_se": se,
        "n_seeds": c.n_seeds,
        "window_diff": c.window_diff,
        "window_diff_ci": c.window_diff_ci,
        "range_cut": [cut.model_dump() for cut in c.range_cut],
        "range_limited": c.verdict == "range_limited",
        "pooled": (
            c.auc_diff is not None
            and c.auc_diff_ci is not None
            and c.n_seeds >= 2
            and se is not None
            and se > 0.0
        ),
        "weight": None,
    }


def suite_verdict(
    *, complete: bool, k: int, pooled_ci: Sequence[float] | None, above: int, below: int
) -> str:
    """The suite verdict of one comparison, the first rule that holds (docs/suites.md):
    ``pending`` (a study has not ended); ``not_enough_data`` (k < 2 workloads pooled); ``mixed``
    (``above`` workloads have an AUC interval above 0 and ``below`` workloads one below 0, both
    at least 1); ``more_robust`` (the pooled interval lies above 0 and no workload's interval
    lies below 0); ``less_robust`` (the mirror image); else ``no_clear_difference``."""
    if not complete:
        return "pending"
    if k < 2 or pooled_ci is None:
        return "not_enough_data"
    if above and below:
        return "mixed"
    if pooled_ci[0] > 0 and not below:
        return "more_robust"
    if pooled_ci[1] < 0 and not above:
        return "less_robust"
    return "no_clear_difference"


def performance_profile(
    aucs: Mapping[str, Mapping[str, float | None]], arms: Sequence[str]
) -> dict[str, Any]:
    """The Dolan-Moré performance profile of ``arms`` from each workload's arm AUCs
    (``aucs[workload][arm]``, None when the arm has none there): per workload each arm's gap to
    the best arm there, ``rho_arm(t)`` = the share of the profiled workloads (those where some
    arm has an AUC) with gap <= t, at each t of :data:`PROFILE_T`."""
    profiled = [w for w, by_arm in aucs.items() if any(v is not None for v in by_arm.values())]
    gaps: dict[str, dict[str, float | None]] = {arm: {} for arm in arms}
    for w, by_arm in aucs.items():
        known = [v for v in by_arm.values() if v is not None]
        best = max(known) if known else None
        for arm in arms:
            value = by_arm.get(arm)
            gaps[arm][w] = None if value is None or best is None else best - value
    t = np.asarray(PROFILE_T)
    out: dict[str, Any] = {"t": list(PROFILE_T), "workloads": profiled, "arms": {}}
    for arm in arms:
        g = np.array([gaps[arm][w] for w in profiled if gaps[arm][w] is not None], dtype=float)
        if profiled:
            counts = (g[None, :] <= t[:, None] + PROFILE_SLACK).sum(axis=1)
            rho = [float(c) / len(profiled) for c in counts]
        else:
            rho = [0.0] * len(PROFILE_T)
        out["arms"][arm] = {"gaps": gaps[arm], "rho": rho}
    return out


def _warnings(
    rows: list[dict[str, Any]], comparisons: list[dict[str, Any]], complete: bool
) -> list[str]:
    out: list[str] = []
    for w in rows:
        if not w["has_summary"]:
            if w["status"] in ENDED:
                out.append(
                    f"workload {w['name']}: study {w['study_id']} ended {w['status']} with no "
                    "finished trial; it has no numbers"
                )
        elif w["status"] in ENDED and w["status"] != StudyStatus.FINISHED:
            out.append(
                f"workload {w['name']}: study {w['study_id']} ended {w['status']}; its numbers "
                "come from the trials that finished"
            )
    for c in comparisons:
        pair = f"{c['arm']} vs {c['baseline']}"
        for w in rows:
            wc = next(x for x in w["comparisons"] if x["arm"] == c["arm"])
            if wc["auc_diff_se"] == 0.0 and wc["auc_diff_ci"] is not None:
                out.append(
                    f"{pair}, workload {w['name']}: every seed gives the same AUC difference "
                    f"({wc['auc_diff']:+.3f}; standard error 0), so it is left out of the pool: "
                    "its inverse-variance weight would be infinite and it alone would set the "
                    "pooled value and interval. Its own verdict still counts"
                )
        if c["range_limited"]:
            names = ", ".join(c["range_limited"])
            out.append(
                f"{pair}: the lr range cuts {names} (range_limited); pooled as measured over "
                "the stated range. Widen it there (each study's report gives the bound to try)"
            )
        if complete and c["k"] < 2:
            out.append(
                f"{pair}: {c['k']} workload{'' if c['k'] == 1 else 's'} with an AUC interval "
                "(pooling needs 2, each with 2 or more seeds); its verdict is not_enough_data"
            )
        elif c["k"] in (2, 3):
            out.append(
                f"{pair}: the pooled interval over {c['k']} workloads uses Student t with "
                f"{c['k'] - 1} degree{'' if c['k'] == 2 else 's'} of freedom: wide"
            )
    return out


def summarize_suite(
    workloads: Sequence[WorkloadResult], *, arms: Sequence[str], suite_id: str, name: str
) -> SuiteSummary:
    """The summary of a suite (version 1; docs/suites.md explains every number).

    Args:
        workloads: one :class:`WorkloadResult` per workload, in the suite's order.
        arms: the suite's arms in spec order; the first is the baseline.
        suite_id: the suite's id.
        name: the suite's name.

    Returns:
        A :class:`~study.analysis.suite_schema.SuiteSummary`. While a study has not ended
        (its status is not in :data:`study.vocab.ENDED`) it is ``partial`` and every suite
        verdict is ``pending``; the pooled numbers are computed all the same, as provisional.
        The result depends only on its arguments.

    Raises:
        ConfigError: a workload breaks a rule (unknown status, repeated name, a summary that
            is not a study summary or has another baseline); the message names it.
    """
    summaries = _checked(workloads, arms)
    baseline = arms[0]
    compared = list(arms[1:])
    complete = all(w.status in ENDED for w in workloads)
    rows: list[dict[str, Any]] = []
    for w, summary in zip(workloads, summaries, strict=True):
        rows.append(
            {
                "name": w.name,
                "study_id": w.study_id,
                "status": w.status,
                "has_summary": summary is not None,
                "partial": bool(summary is not None and summary.partial),
                "comparisons": [
                    _workload_comparison(_comparison_of(summary, arm), arm, baseline, w.status)
                    for arm in compared
                ],
            }
        )
    comparisons: list[dict[str, Any]] = []
    for j, arm in enumerate(compared):
        per = [(w["name"], w["comparisons"][j]) for w in rows]
        pool = [(n, wc) for n, wc in per if wc["pooled"]]
        pooled = random_effects(
            [wc["auc_diff"] for _, wc in pool], [wc["auc_diff_se"] for _, wc in pool], level=LEVEL
        )
        if pooled.weights is not None:
            for (_, wc), weight in zip(pool, pooled.weights, strict=True):
                wc["weight"] = min(1.0, max(0.0, weight))
        measured = [(n, wc) for n, wc in per if wc["auc_diff_ci"] is not None]
        above = [n for n, wc in measured if wc["auc_diff_ci"][0] > 0]
        below = [n for n, wc in measured if wc["auc_diff_ci"][1] < 0]
        counts = dict.fromkeys(VERDICTS, 0)
        for _, wc in per:
            counts[wc["verdict"]] += 1
        comparisons.append(
            {
                "arm": arm,
                "baseline": baseline,
                "n_workloads": len(rows),
                "k": pooled.k,
                "pooled_workloads": [n for n, _ in pool],
                "pooled_auc_diff": pooled.estimate,
                "pooled_ci": pooled.ci,
                "pooled_se": pooled.se,
                "tau2": pooled.tau2,
                "i2": pooled.i2,
                "verdict_counts": counts,
                "range_limited": [n for n, wc in per if wc["range_limited"]],
                "above_zero": above,
                "below_zero": below,
                "verdict": suite_verdict(
                    complete=complete,
                    k=pooled.k,
                    pooled_ci=pooled.ci,
                    above=len(above),
                    below=len(below),
                ),
            }
        )
    aucs = {
        w.name: {
            arm: (s.arms[arm].auc if s is not None and arm in s.arms else None) for arm in arms
        }
        for w, s in zip(workloads, summaries, strict=True)
    }
    status_counts: dict[str, int] = {}
    for status in StudyStatus:
        n = sum(w.status == status for w in workloads)
        if n:
            status_counts[status] = n
    return SuiteSummary.model_validate(
        {
            "suite_id": suite_id,
            "name": name,
            "partial": not complete,
            "workloads": rows,
            "comparisons": comparisons,
            "profile": performance_profile(aucs, arms),
            "settings": {
                "baseline": baseline,
                "arms": list(arms),
                "level": LEVEL,
                "n_workloads": len(rows),
                "n_ended": sum(w.status in ENDED for w in workloads),
                "status_counts": status_counts,
            },
            "warnings": _warnings(rows, comparisons, complete),
        }
    )
