"""What a design needs for the summary's verdicts, and the warnings when it falls short.

The thresholds of docs/summary.md ("Reading a verdict", "Designs that support the claims") and
the sentences that say what a design cannot support. The spec uses them before a study runs
(:meth:`study.spec.study_spec.StudySpec.design_warnings`), the summary after it ran
(:func:`study.analysis.summarize`'s ``warnings``). Standard library only: the spec imports it.
"""

from __future__ import annotations

import math

#: A verdict needs at least this many seeds both arms have, and this many shared points.
MIN_SEEDS = 3
MIN_POINTS = 6
#: With fewer seeds the replicate intervals (Student t, n - 1 degrees of freedom) are wide.
WIDE_BELOW_SEEDS = 5
#: An lr range narrower than this (decades) will likely cut an arm's good region: on digits
#: every optimizer still learns (accuracy >= h) over 2 to 3 decades, and INSGD and Adam move
#: the optimum by up to a decade.
MIN_RANGE_DECADES = 3.0


def seeds_warning(n_seeds: int) -> str | None:
    """What ``n_seeds`` replicates cannot support (None from :data:`WIDE_BELOW_SEEDS` on)."""
    if n_seeds < 2:
        return (
            f"only {n_seeds} seed: no replicate intervals, and every verdict is "
            f"not_enough_data (run at least {MIN_SEEDS} seeds, {WIDE_BELOW_SEEDS} for tight "
            "intervals)"
        )
    if n_seeds < MIN_SEEDS:
        return (
            f"fewer than {MIN_SEEDS} seeds ({n_seeds}): every verdict is not_enough_data; "
            f"intervals from {n_seeds} seeds use Student t with {n_seeds - 1} degree of "
            "freedom: very wide"
        )
    if n_seeds < WIDE_BELOW_SEEDS:
        return (
            f"intervals from {n_seeds} seeds use Student t with {n_seeds - 1} degrees of "
            f"freedom: wide (run {WIDE_BELOW_SEEDS} or more seeds for tighter ones)"
        )
    return None


def range_warning(low: float, high: float) -> str | None:
    """A warning when the lr range ``[low, high]`` spans fewer than :data:`MIN_RANGE_DECADES`
    decades: an arm will likely still learn at one of its ends (a range cut)."""
    decades = math.log10(high / low)
    if decades >= MIN_RANGE_DECADES - 1e-9:
        return None
    unit = "decade" if f"{decades:.2g}" == "1" else "decades"
    return (
        f"search.lr spans {decades:.2g} {unit} ({low:g} to {high:g}): an optimizer usually "
        f"still learns over a wider range, so an end will likely cut an arm's good region and "
        f"its verdicts be range_limited; span at least {MIN_RANGE_DECADES:g} decades, more "
        "where the arms' optima differ (INSGD and Adam move it by up to a decade)"
    )
