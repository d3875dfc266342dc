"""How study records read as text: trial run names, the study run's Markdown description and
the trials as CSV (``trials.csv``, ``hprobust trials``, the API's CSV)."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from study.analysis.rows import TRIAL_FIELDS
from study.numbers import finite
from study.records.layout import HEADLINE
from study.text import markdown_code


def trial_run_name(
    arm: str, lr: float, init: str, seed: int, init_scale: float | None = None
) -> str:
    """A trial run's name in the MLflow UI: ``<arm> lr=<lr> <init> s<seed>``, with
    ``scale=<init_scale>`` before the seed when the study searches init scales."""
    scale = "" if init_scale is None else f" scale={float(init_scale):.3g}"
    return f"{arm} lr={float(lr):.3g} {init}{scale} s{int(seed)}"


def study_note(
    study_id: str,
    name: str,
    report_url: str | None = None,
    *,
    summary: dict[str, Any] | None = None,
) -> str:
    """The study run's description (Markdown): what the runs are, where the report is, and,
    once there is a summary, its headline per arm.

    User text goes in as code spans (:func:`study.text.markdown_code`): a name with Markdown
    in it shows as typed, never as a link, an image or HTML. The report links are links only
    when ``report_url`` is a plain http(s) URL (:func:`plain_url`); else they are code too.
    """
    lines = [f"**hprobust study {markdown_code(name)}** ({markdown_code(study_id)})", ""]
    if report_url and plain_url(report_url):
        base = report_url.removesuffix("/report")
        lines.append(
            f"Report: [{report_url}]({report_url}) · [summary.json]({base}/summary) · "
            f"[trials.csv]({base}/trials?format=csv)"
        )
    elif report_url:
        lines.append(f"Report: {markdown_code(report_url)}")
    else:
        lines.append(
            f"Summary: `hprobust summary {study_id}`; report page: "
            f"`/studies/{study_id}/report` under `hprobust serve` on the same data dir."
        )
    lines += [
        "",
        "Each trial is a child run of this one, named `<arm> lr=<lr> <init> s<seed>`, with "
        "`final_val_acc`, `final_val_loss` and `diverged` as metrics.",
    ]
    from study.analysis.present import verdict_lines

    verdicts = verdict_lines(summary)
    if verdicts:
        lines += ["", *(f"- {line}" for line in verdicts)]
    arms = summary_dict(summary).get("arms") or {}
    keys = [k for k in HEADLINE if any(k in (v or {}) for v in arms.values())]
    if arms and keys:
        lines += ["", "| arm | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
        for arm, values in arms.items():
            cells = [_cell((values or {}).get(key)) for key in keys]
            lines.append(f"| {markdown_code(arm, in_table=True)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)[:4900]


#: What a URL may hold to be written as a Markdown link: http(s), then only characters that
#: cannot end or break the link (no space, quote, bracket, parenthesis, backtick or angle).
_PLAIN_URL = re.compile(r"https?://[A-Za-z0-9._~:/?#@!$&*+,;=%-]+")


def plain_url(url: str) -> bool:
    """Whether ``url`` can be a Markdown link target as it is (see :data:`_PLAIN_URL`)."""
    return bool(_PLAIN_URL.fullmatch(url))


def summary_dict(summary: Any) -> dict[str, Any]:
    """A summary as a dict (a pydantic summary model is dumped)."""
    if summary is None:
        return {}
    return summary.model_dump() if hasattr(summary, "model_dump") else dict(summary)


def _cell(value: Any) -> str:
    number = finite(value)
    return "–" if number is None else f"{number:.4g}"


def trials_csv(rows: list[dict[str, Any]]) -> str:
    """Trial rows as CSV: the trial-row columns (``TRIAL_FIELDS``) first, in that order, then
    every other key of the rows by name. The one CSV of trials: the stored ``trials.csv``,
    ``hprobust trials --format csv`` (from the store or the service) and the API's
    ``?format=csv`` all have these columns."""
    columns = list(TRIAL_FIELDS)
    columns += sorted({k for row in rows for k in row} - set(columns))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    return out.getvalue()
