"""How a suite's numbers are shown: the one sentence per comparison (report, CLI, MLflow) and
the per-workload table, with the formatters of the study summary (:mod:`study.analysis.present`)
so a number reads the same in a study's report and in its suite's."""

from __future__ import annotations

from study.analysis.present import MISSING, fmt, fmt_interval, verdict_words
from study.analysis.suite_schema import SuiteComparison, SuiteSummary, WorkloadComparison

#: The order and the words of the per-workload verdict counts in the sentence.
_COUNT_WORDS = (
    ("more_robust", "more robust"),
    ("less_robust", "less"),
    ("mixed", "mixed"),
    ("no_clear_difference", "no clear difference"),
    ("range_limited", "range-limited"),
    ("not_enough_data", "not enough data"),
    ("pending", "pending"),
)


def _workloads(n: int) -> str:
    return f"{n} workload{'' if n == 1 else 's'}"


def weight_text(c: WorkloadComparison) -> str:
    """A workload's share of the pooled weight (``29%``), or why it is not pooled: ``no data``,
    ``not pooled: 1 seed`` (no interval), ``not pooled: se 0`` (every seed agrees)."""
    if c.pooled:
        return fmt(c.weight, "pct")
    if c.auc_diff is None:
        return "no data"
    if c.auc_diff_ci is None or c.n_seeds < 2:
        return f"not pooled: {c.n_seeds} seed{'' if c.n_seeds == 1 else 's'}"
    return "not pooled: se 0"


def counts_text(c: SuiteComparison) -> str:
    """``more robust on 1, less on 2, range-limited on 1``: the non-zero study verdict counts,
    in a fixed order."""
    parts = [
        f"{words} on {c.verdict_counts[v]}" for v, words in _COUNT_WORDS if c.verdict_counts[v]
    ]
    return ", ".join(parts) or "no workloads"


def suite_verdict_words(c: SuiteComparison) -> str:
    """The suite verdict in words, with what it rests on when that is not obvious."""
    words = verdict_words(c.verdict)
    if c.verdict == "pending":
        words += " (a study is still running; the numbers are provisional)"
    elif c.verdict == "not_enough_data":
        words += f" ({_workloads(c.k)} with an AUC interval; pooling needs 2)"
    elif c.verdict == "mixed":
        words += f" (higher AUC on {', '.join(c.above_zero)}; lower on {', '.join(c.below_zero)})"
    return words


def pooled_text(c: SuiteComparison) -> str:
    """``AUC +0.021 [−0.010, +0.052], I² 64%`` (or why there is no pooled value)."""
    if c.pooled_auc_diff is None:
        return f"no pooled AUC ({c.k} of {_workloads(c.n_workloads)} with an interval)"
    i2 = MISSING if c.i2 is None else f"{c.i2:.0%}"
    return f"AUC {fmt(c.pooled_auc_diff, 'diff')} {fmt_interval(c.pooled_ci)}, I² {i2}"


def suite_sentence(c: SuiteComparison) -> str:
    """The one sentence that states a comparison's suite verdict: the pair and the workloads,
    the pooled AUC difference with its interval and I², the study verdicts counted, and the
    suite verdict in words last. For example ``insgd vs sgd over 4 workloads: AUC +0.021
    [−0.010, +0.052], I² 64%; more robust on 1, less on 2, range-limited on 1: no clear
    difference``. When some workloads are not pooled it says ``over 3 of 4 workloads``."""
    over = (
        _workloads(c.n_workloads)
        if c.k == c.n_workloads or c.k < 2
        else f"{c.k} of {_workloads(c.n_workloads)}"
    )
    return (
        f"{c.arm} vs {c.baseline} over {over}: {pooled_text(c)}; {counts_text(c)}: "
        f"{suite_verdict_words(c)}"
    )


def suite_lines(summary: SuiteSummary) -> list[str]:
    """The sentence of each comparison of ``summary``."""
    return [suite_sentence(c) for c in summary.comparisons]


def workload_rows(summary: SuiteSummary) -> tuple[list[str], list[list[str]]]:
    """``(headers, rows)`` of the per-workload table: one row per workload x comparison, with
    the study's status, verdict, AUC difference and interval, window difference, range cut and
    the share of the pooled weight (or why it is not pooled)."""
    headers = ["workload", "study", "status", "B vs A", "verdict", "AUC diff [95% CI]",
               "seeds", "window diff [95% CI]", "range cut", "weight"]  # fmt: skip
    rows = []
    for w in summary.workloads:
        for c in w.comparisons:
            cut = ", ".join(f"{x.arm} {x.init} {x.end}" for x in c.range_cut) or "none"
            rows.append(
                [
                    w.name,
                    w.study_id,
                    str(w.status),
                    f"{c.arm} vs {c.baseline}",
                    verdict_words(c.verdict),
                    f"{fmt(c.auc_diff, 'diff')} {fmt_interval(c.auc_diff_ci)}",
                    str(c.n_seeds),
                    f"{fmt(c.window_diff, 'decades_diff')} "
                    f"{fmt_interval(c.window_diff_ci, 'decades_diff')}",
                    cut,
                    weight_text(c),
                ]
            )
    return headers, rows
