"""The one renderer of a robustness summary for the terminal (rich tables).

``hprobust run``, ``hprobust summary`` and ``hprobust submit --wait`` all print through
:func:`render`; the columns, formats, legend and verdict sentences come from
:mod:`study.analysis.present`, which the report page uses too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from study.cli.options import plain, styled, warn


def as_summary(summary: Any) -> Any:
    """A :class:`~study.analysis.schema.Summary` from one or from its JSON dict."""
    from study.analysis.schema import Summary

    return summary if isinstance(summary, Summary) else Summary.model_validate(summary)


def render(summary: Mapping[str, Any] | Any, console: Any, *, header: Any = "") -> None:
    """Print the verdicts, the per-arm (and per-init) table, the comparisons, the importances,
    the reference and the warnings. ``header``: a line above them (plain text or a rich
    ``Text``). Names and sentences are printed as text, never read as rich markup
    (:func:`study.cli.options.plain`)."""
    from rich import box
    from rich.table import Table

    from study.analysis import present

    s = as_summary(summary)
    pending = any(c.verdict == "pending" for c in s.comparisons)
    parts = [header] if header else []
    if s.partial:
        parts += [
            ("  PARTIAL", "bold yellow"),
            f" (provisional: the {s.settings.n_used} trials finished so "
            + ("far; no verdict until the study ends)" if pending else "far)"),
        ]
    if parts:
        console.print(styled(*parts), highlight=False)
    for c in s.comparisons:
        sentence = present.verdict_sentence(c, s)
        console.print(plain(sentence, "" if pending else "bold"), highlight=False)

    for title, columns, best in (
        ("Accuracy per arm and init (final val; diverged = chance)", present.ACCURACY_COLUMNS, 0),
        (
            "Robustness per arm and init (↑ higher is better, ↓ lower is better; "
            "g = A* − τ, h = halfway from chance to A*)",
            present.ROBUSTNESS_COLUMNS,
            1,
        ),
    ):
        table = Table(
            box=box.SIMPLE_HEAD,
            pad_edge=False,
            padding=(0, 1, 0, 0),
        )
        table.add_column("arm / init", no_wrap=True)
        for m in columns:
            arrow = {"higher": "↑", "lower": "↓"}.get(m.better, "")
            table.add_column(m.label + arrow, justify="right", no_wrap=True)
        if best:
            table.add_column("best at lr")
        by_name = dict(s.arms)
        current = None
        for level, label, cells in present.arm_rows(s, columns):
            if level == "arm":
                if current is not None:
                    table.add_section()
                current = by_name[label]
                group = current
            else:
                group = current.by_init[label]
            extra = [present.best_cell_text(group, short=True)] if best else []
            name = plain(label, "bold") if level == "arm" else plain(f"  {label}")
            style = None if level == "arm" else "dim"
            table.add_row(name, *map(plain, cells), *map(plain, extra), style=style)
        _print_table(console, title, table)

    if s.comparisons:
        headers, rows = present.comparison_table(s)
        comp = Table(
            box=box.SIMPLE_HEAD,
            pad_edge=False,
        )
        for k, name in enumerate(headers):
            comp.add_column(plain(name), no_wrap=k < 2)
        for row in rows:
            comp.add_row(*map(plain, row))
        _print_table(console, "Each arm against the baseline (B − A, 95% CIs)", comp)
    elif len(s.arms) < 2:
        console.print("No comparison (fewer than two arms).")

    imp = Table(
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for name in ("arm", "PED-ANOVA", "fANOVA"):
        imp.add_column(name)
    for name, arm in s.arms.items():
        imp.add_row(
            plain(name),
            plain(present.importance_text(arm.importance.ped_anova)),
            plain(present.importance_text(arm.importance.fanova)),
        )
    _print_table(console, "Importance over cells (normalized)", imp)

    console.print(plain(present.reference_text(s)), highlight=False)
    console.print(
        plain(
            f"{s.settings.n_used} finished trials used; left out: {present.left_out_text(s)}. "
            f"C = {s.settings.num_classes}, {s.settings.n_seeds} seeds."
        ),
        highlight=False,
    )
    for warning in s.warnings:
        warn(console, warning)


def _print_table(console: Any, title: str, table: Any) -> None:
    """``title`` on a line of its own (never wrapped to the table's width), then ``table``."""
    console.print(plain(title, "italic"), highlight=False)
    console.print(table)
