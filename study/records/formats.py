"""How study records read as text: trial run names, the study run's Markdown description and
the trials as CSV (``trials.csv``, ``hprobust trials``, the API's CSV)."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from study.analysis.rows import TRIAL_FIELDS
from study.numbers import finite
from study.records.layout import HEADLINE, SHOWN_DECIMALS, WORKFLOW
from study.text import markdown_code

#: Short names of the inits in run names: the normal variant plain, the uniform one ``-u``.
INIT_SHORT = {
    "kaiming_normal": "kaiming",
    "kaiming_uniform": "kaiming-u",
    "xavier_normal": "xavier",
    "xavier_uniform": "xavier-u",
    "lecun_normal": "lecun",
    "orthogonal": "orth",
}


def short_number(value: float) -> str:
    """A learning rate (or scale) in few characters: ``1e-2``, ``3.16e-3``, ``0.5``, ``2``."""
    value = float(value)
    if value == 0 or 0.1 <= abs(value) < 100:
        return f"{value:.3g}"
    mantissa, _, exponent = f"{value:.2e}".partition("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def trial_run_name(
    arm: str, lr: float, init: str, seed: int, init_scale: float | None = None
) -> str:
    """A trial run's name in the MLflow UI, short enough for its default column:
    ``<arm> <lr> <init> s<seed>`` (``sgd 1e-2 xavier s0``; the init abbreviated as in
    :data:`INIT_SHORT`), with ``x<init_scale>`` before the seed when the study searches init
    scales. Its parameters hold every value in full."""
    scale = "" if init_scale is None else f" x{short_number(init_scale)}"
    return f"{arm} {short_number(lr)} {INIT_SHORT.get(init, init)}{scale} s{int(seed)}"


def shown(value: Any) -> str | None:
    """A final value rounded for display (:data:`SHOWN_DECIMALS` decimals), None if it is
    not a finite number."""
    number = finite(value)
    return None if number is None else f"{number:.{SHOWN_DECIMALS}f}"


def study_note(
    study_id: str,
    name: str,
    report_url: str | None = None,
    *,
    summary: dict[str, Any] | None = None,
    counts: dict[str, int] | None = None,
) -> str:
    """The study run's description (Markdown), to read at a glance: once there is a summary,
    its verdicts and its headline per arm (rounded: :func:`_cell`) and the trial counts
    (``counts``: ``trials_finished`` / ``_diverged`` / ``_failed``); then where the report
    is and what the trial runs hold.

    User text goes in as code spans (:func:`study.text.markdown_code`): a name with Markdown
    in it shows as typed, never as a link, an image or HTML. The report links are links only
    when ``report_url`` is a plain http(s) URL (:func:`plain_url`); else they are code too.
    """
    lines = [f"**hprobust study {markdown_code(name)}** ({markdown_code(study_id)})"]
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
    if counts:
        lines += [
            "",
            f"Trials: {counts.get('trials_finished', 0)} finished "
            f"({counts.get('trials_diverged', 0)} diverged), "
            f"{counts.get('trials_failed', 0)} failed.",
        ]
    lines.append("")
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
        "Each trial is a child run of this one, named `<arm> <lr> <init> s<seed>` "
        "(`sgd 1e-2 xavier s0`), with its parameters, `acc` and `loss` (its final validation "
        "accuracy and loss, rounded), and the metrics `final_val_acc`, `final_val_loss` and "
        "`diverged` in full. Filter them with `tags.hprobust.kind = 'trial'`.",
    ]
    return "\n".join(lines)[:4900]


def experiment_note(
    study_id: str,
    name: str,
    total_trials: int,
    report_url: str | None = None,
    *,
    study_run: str | None = None,
) -> str:
    """The experiment's description (Markdown; the MLflow UI shows it above the runs
    table): what the study is, how to see its trial runs, a link to its study run in the UI's
    model-training mode (``study_run``: ``(experiment id, run id)``), and its report."""
    lines = [
        f"hprobust study {markdown_code(name)} ({markdown_code(study_id)}): {total_trials} "
        "trial runs under the study run. The study's view lists them flat, the best final "
        "accuracy first (filter `tags.hprobust.kind = 'trial'`; past 100 runs, *Load more* "
        "at the table's foot). Runs opened from the table show in MLflow's GenAI mode unless "
        "*Model training* is chosen at the top of the sidebar once (the browser keeps it)."
    ]
    links = []
    if study_run is not None:
        experiment_id, run_id = study_run
        links.append(
            f"[study run: summary and verdicts](#/experiments/{experiment_id}/runs/{run_id}"
            f"?workflowType={WORKFLOW})"
        )
    if report_url and plain_url(report_url):
        links.append(f"[report]({report_url})")
    if links:
        lines.append(" · ".join(links))
    return "\n\n".join(lines)[:4900]


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
    return "–" if number is None else f"{number:.3g}"


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
