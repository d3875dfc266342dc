"""The service's client commands: ``studies``, ``status``, ``cancel``, ``resume``, ``report``.

Each talks to the service :mod:`service.cli.remote` finds (``--url``, ``HPROBUST_URL``, the
URL a running ``hprobust serve`` recorded, else ``http://127.0.0.1:8000``) with the token of
``--token``/``HPROBUST_API_TOKEN``, from any folder. Errors exit as the local commands do (2:
unknown study, wrong state, bad token; 1: the service is unreachable or fails). Off a
terminal the output is plain and unwrapped (:mod:`study.cli.output`); ``--format json``
prints the API's answer.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from service.cli.group import app
from study.cli.options import ServiceToken, ServiceUrl, fail, plain, styled

StudyId = Annotated[str, typer.Argument(help="The study id (printed by hprobust submit).")]
Format = Annotated[str, typer.Option("--format", help="table or json.")]


def _format(value: str) -> None:
    if value not in ("table", "json"):
        fail(f"--format must be one of table, json, got {value!r}", 2)


def _done(progress: dict[str, Any]) -> str:
    return f"{progress['finished'] + progress['failed']}/{progress['total']}"


@app.command()
def studies(
    url: ServiceUrl = None,
    token: ServiceToken = None,
    status: Annotated[
        str | None, typer.Option(help="Only studies with this status (e.g. running).")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many (1-1000).")] = 100,
    format: Format = "table",
) -> None:
    """The service's studies, newest first: id, name, status, trials done, created."""
    from rich.table import Table

    from service.cli.remote import api_errors, client, service_url
    from study.cli.output import console

    _format(format)
    base = service_url(url)
    api = client(base, token)
    with api_errors(base):
        rows = api.studies(status=status, limit=limit)
    if format == "json":
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo(f"no studies at {base}" + (f" with status {status}" if status else ""))
        return
    table = Table(box=None, pad_edge=False, padding=(0, 2, 0, 0))  # plain aligned columns
    for name in ("id", "name", "status", "done", "created"):
        table.add_column(name, no_wrap=True, header_style="bold")
    for row in rows:
        state = row["status"] + (" (paused)" if row.get("paused") else "")
        cells = (row["id"], row["name"], state, _done(row["progress"]), row.get("created_at"))
        table.add_row(*(plain(c or "") for c in cells))
    console().print(table)


@app.command()
def status(
    study_id: StudyId,
    url: ServiceUrl = None,
    token: ServiceToken = None,
    format: Format = "table",
) -> None:
    """One study on one screen: status, progress, time left; its verdicts once it has ended."""
    from service.cli.remote import api_errors, client, service_url
    from study.cli.output import console
    from study.vocab import ENDED

    _format(format)
    base = service_url(url)
    api = client(base, token)
    with api_errors(base):
        state = api.study(study_id)
        summary = None
        if state["status"] in ENDED and state["progress"]["finished"]:
            summary = api.summary(study_id)
    if format == "json":
        typer.echo(json.dumps({"study": state, "summary": summary}, indent=2))
        return
    out = console()
    for line in status_lines(state, summary, base):
        out.print(line, highlight=False, soft_wrap=True)


def status_lines(state: dict[str, Any], summary: dict[str, Any] | None, base: str) -> list[Any]:
    """The lines of ``hprobust status`` (user text as plain text, never markup)."""
    from study.cli.progress import progress_text
    from study.eta import format_duration

    p = state["progress"]
    lines: list[Any] = [styled((state["id"], "bold"), f"  {state['name']}")]
    word = state["status"] + (f" (paused: {state['paused']})" if state.get("paused") else "")
    lines.append(plain(f"status:    {word}"))
    counts = progress_text(p) or "none running"
    lines.append(
        plain(
            f"progress:  {_done(p)} trials done ({p['finished']} finished, {p['diverged']} "
            f"diverged, {p['failed']} failed); {counts}, {p['pending']} pending"
        )
    )
    if state["status"] == "running":
        eta = state.get("eta_s")
        lines.append(
            plain(f"time left: {'about ' + format_duration(eta) if eta else 'not yet known'}")
        )
    for label, key in (
        ("created", "created_at"),
        ("started", "started_at"),
        ("ended", "finished_at"),
        ("error", "error"),
        ("last error", "last_error"),
        ("retry at", "retry_at"),
        ("tampered", "tampered"),
    ):
        if state.get(key):
            lines.append(plain(f"{label + ':':<10} {state[key]}"))
    if summary is not None:
        from study.analysis import present
        from study.cli.tables import as_summary

        s = as_summary(summary)
        for c in s.comparisons:
            lines.append(plain("verdict:   " + present.verdict_sentence(c, s), "bold"))
        if not s.comparisons:
            lines.append(plain("verdict:   none (fewer than two arms)"))
    links = state.get("links") or {}
    if links.get("report"):
        lines.append(plain(f"report:    {base}{links['report']}"))
    if links.get("mlflow"):
        lines.append(plain(f"MLflow:    {links['mlflow']}"))
    return lines


def _act(action: str, study_id: str, url: str | None, token: str | None) -> dict[str, Any]:
    """POST the study's ``action`` (cancel, resume) to the service; its new state."""
    from service.cli.remote import api_errors, client, service_url

    base = service_url(url)
    api = client(base, token)
    with api_errors(base):
        return getattr(api, action)(study_id)


@app.command()
def cancel(study_id: StudyId, url: ServiceUrl = None, token: ServiceToken = None) -> None:
    """Cancel a queued or running study (its finished trials stay; resume it later)."""
    state = _act("cancel", study_id, url, token)
    typer.echo(
        f"study {state['id']} {state['status']} ({_done(state['progress'])} trials done); "
        f"resume it with: hprobust resume {state['id']}"
    )


@app.command()
def resume(study_id: StudyId, url: ServiceUrl = None, token: ServiceToken = None) -> None:
    """Resume a cancelled or failed study: its recorded trials are kept, the rest run."""
    state = _act("resume", study_id, url, token)
    typer.echo(
        f"study {state['id']} {state['status']} again ({_done(state['progress'])} trials done); "
        f"follow it with: hprobust status {state['id']}"
    )


@app.command()
def report(
    study_id: StudyId,
    url: ServiceUrl = None,
    token: ServiceToken = None,
    open_it: Annotated[
        bool, typer.Option("--open", help="Open it in the default web browser too.")
    ] = False,
) -> None:
    """Print the URL of the study's report page (and open it with --open)."""
    from service.cli.remote import api_errors, client, service_url

    base = service_url(url)
    api = client(base, token)
    with api_errors(base):
        state = api.study(study_id)  # an unknown study is an error, not a link to a 404
    link = f"{base}{state['links']['report']}"
    typer.echo(link)
    if open_it:
        import webbrowser

        if not webbrowser.open(link):
            fail(f"no web browser could open {link}", 1)
