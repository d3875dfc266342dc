"""``hprobust serve`` (the embedded stack and the API) and ``hprobust submit`` (post a spec).

``hprobust serve`` starts a local Ray head, the MLflow UI over ``<data-dir>/mlflow.db`` and the
API, prints their URLs, and stops all of them on Ctrl-C/SIGTERM (see
:mod:`service.launcher`). Every option is also an ``HPROBUST_*`` environment variable
(:class:`service.core.config.Settings`); ``HPROBUST_RAY_ADDRESS`` and ``HPROBUST_MLFLOW_URI``
make it use an existing Ray cluster and MLflow server instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from service.cli.group import app
from study.cli.options import ServiceToken, ServiceUrl, plain, styled, warn
from study.text import shown


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to bind (env HPROBUST_HOST; default 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="API port (env HPROBUST_PORT; default 8000).")
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="MLflow store, artifacts, Ray Tune results and datasets "
            "(env HPROBUST_DATA_DIR; default ./hprobust-data)."
        ),
    ] = None,
    mlflow_port: Annotated[int, typer.Option(help="Port of the MLflow UI.")] = 5000,
    mlflow_ui: Annotated[
        bool, typer.Option("--mlflow-ui/--no-mlflow-ui", help="Start the MLflow UI.")
    ] = True,
    ray_dashboard_port: Annotated[
        int, typer.Option(help="Port of the local Ray head's dashboard (a free one if taken).")
    ] = 8265,
    cpus: Annotated[
        int | None, typer.Option(help="CPUs of the local Ray head (default: all).")
    ] = None,
) -> None:
    """Run hprobust on this machine: a local Ray head, the MLflow UI and the HTTP API."""
    import logging

    from pydantic import ValidationError

    from service.core.config import Settings
    from service.launcher import serve as run

    overrides: dict[str, Any] = {
        k: v
        for k, v in {"host": host, "port": port, "data_dir": data_dir, "cpus": cpus}.items()
        if v is not None
    }
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            where = ".".join(str(p) for p in err["loc"]) or "settings"
            message = err["msg"].removeprefix("Value error, ")
            typer.echo(shown(f"error: {where}: {message}"), err=True)
        raise typer.Exit(2) from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    code = run(
        settings,
        mlflow_port=mlflow_port,
        ray_dashboard_port=ray_dashboard_port,
        mlflow_ui=mlflow_ui,
        echo=lambda text: typer.echo(text),
    )
    raise typer.Exit(code)


@app.command()
def submit(
    spec: Annotated[Path, typer.Argument(help="The study or suite spec (YAML).", exists=True)],
    url: ServiceUrl = None,
    token: ServiceToken = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the study with a progress bar to its end.")
    ] = False,
    poll: Annotated[float, typer.Option(help="Seconds between polls with --wait.")] = 2.0,
) -> None:
    """Submit a study (or a suite, to /suites) to a running service; with --wait, follow it
    and print its summary.

    The service: --url, else HPROBUST_URL, else the URL a running hprobust serve recorded,
    else http://127.0.0.1:8000."""
    import httpx

    from service.cli.remote import service_url
    from service.client import ApiError, Client
    from study.cli.output import console as make_console

    # What the server sends back (ids, statuses, errors quoting the spec) is printed as text,
    # never read as rich markup: study.cli.options.plain/styled. Off a terminal nothing is
    # wrapped (study.cli.output): the links stay whole in a pipe or a log.
    console = make_console()
    url = service_url(url)
    client = Client(url, token=token)
    from study.cli.suite import is_suite_file

    try:
        if is_suite_file(spec):
            _submit_suite(client, spec, url, wait, poll, console)
            return
        created = client.submit(spec)
        study_id = created["id"]
        console.print(styled("study ", (study_id, "bold"), f" {created['status']}"))
        for warning in created.get("warnings") or []:
            warn(console, warning)
        console.print(plain(f"  {url}{created['links']['self']}"), soft_wrap=True)
        console.print(plain(f"  report: {url}{created['links']['report']}"), soft_wrap=True)
        if created["links"].get("mlflow"):
            console.print(plain(f"  MLflow: {created['links']['mlflow']}"), soft_wrap=True)
        if not wait:
            return
        state = _follow(client, study_id, poll, console)
        if state["status"] != "finished":
            why = f": {state['error']}" if state.get("error") else ""
            console.print(styled(f"study {study_id} ended ", (state["status"], "bold red"), why))
            raise typer.Exit(1)
        if state["progress"]["failed"] and not state["progress"]["finished"]:
            console.print(styled(f"study {study_id}: ", ("every trial failed", "bold red")))
            raise typer.Exit(1)
        from study.cli.tables import render

        render(client.summary(study_id), console)
    except ApiError as exc:
        console.print(styled(("error", "red"), f": {exc}"))
        raise typer.Exit(1) from None
    except httpx.HTTPError as exc:
        console.print(styled(("error", "red"), f": cannot reach {url}: {exc}"))
        raise typer.Exit(1) from None
    finally:
        client.close()


def _submit_suite(client: Any, spec: Path, url: str, wait: bool, poll: float, console: Any) -> None:
    """POST the suite to /suites; with ``wait``, follow its trials to the end and print one
    sentence per comparison."""
    import time

    from study.analysis.suite_present import suite_lines
    from study.analysis.suite_schema import SuiteSummary
    from study.cli.output import ProgressView
    from study.vocab import ENDED

    created = client.submit_suite(spec)
    suite_id = created["id"]
    console.print(styled("suite ", (suite_id, "bold"), f" {created['status']}"))
    for study in created["studies"]:
        console.print(plain(f"  {study['workload']}: study {study['study_id']}"))
    for warning in created.get("warnings") or []:
        warn(console, warning)
    console.print(plain(f"  report: {url.rstrip('/')}{created['links']['report']}"))
    if not wait:
        return
    with ProgressView(console, shown(suite_id)) as view:
        while True:
            state = client.suite(suite_id)
            p = state["progress"]
            view.update(p["finished"] + p["failed"], total=p["total"], text=state["status"])
            if state["status"] in ENDED:
                break
            time.sleep(poll)
    summary = SuiteSummary.model_validate(client.suite_summary(suite_id))
    for line in suite_lines(summary):
        console.print(plain(line))
    if state["status"] != "finished":
        console.print(styled(f"suite {suite_id} ended ", (state["status"], "bold red")))
        raise typer.Exit(1)


def _follow(client: Any, study_id: str, poll: float, console: Any) -> dict[str, Any]:
    """Poll the study to its end, showing its progress (a bar on a terminal, one line per
    change elsewhere) and, while it waits on a dependency, that it is paused and why."""
    from study.cli.output import ProgressView
    from study.cli.progress import progress_text
    from study.eta import Eta

    with ProgressView(console, study_id) as view:
        eta: list[Eta] = []  # made once the total is known

        def update(state: dict[str, Any]) -> None:
            p = state["progress"]
            done = p["finished"] + p["failed"]
            if not eta:
                window = (state.get("spec") or {}).get("resources", {}).get("max_concurrent_trials")
                eta.append(Eta(p["total"], window=max(4, 2 * int(window or 2))))
            # the service's, arm by arm (study.eta.arm_eta), else the pace seen from here
            local = eta[0].update(done) if state["status"] == "running" else None
            left = state.get("eta_s") if state.get("eta_s") is not None else local
            status, paused = state["status"], state.get("paused")
            text = progress_text(p, eta_s=left, status=status, paused=paused)
            view.update(
                done,
                total=p["total"],
                text=text,
                key=progress_text(p, status=status, paused=paused),
            )

        return client.wait(study_id, poll_s=poll, on_update=update)
