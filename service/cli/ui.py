"""``hprobust ui``: the MLflow UI over the embedded store, in the foreground.

A service command (it starts and stops a server process with :mod:`service.stack`'s process
tools), on the same ``--data-dir`` as the study commands (:mod:`study.cli.options`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from service.cli.group import app
from study.cli.options import DEFAULT_DIR, DataDir, fail, store_uri


@app.command()
def ui(
    data_dir: DataDir = DEFAULT_DIR,
    port: Annotated[int, typer.Option(help="Port of the MLflow UI.")] = 5000,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
) -> None:
    """Serve the MLflow UI on the embedded store (Ctrl-C stops it).

    Behind MLflow's basic-auth app, with the accounts of the data dir (those of ``hprobust
    serve``): it prints the read-only account to sign in with; nobody without an account
    reads or changes anything through it.

    Exits 1 naming the port if it is taken (so you never land on another store's UI).
    Studies recorded by older versions are shown like new ones: model-training experiments
    with their trials nested under the study run, and a finished study's older summary
    recomputed from its trials (summary.json, plots, the study run's verdicts).
    """
    import signal
    import subprocess
    import sys
    import time

    from service.mlflow_auth import (
        APP_ARGS,
        MlflowAuthError,
        ensure_reader,
        load_or_create_accounts,
        server_env,
    )
    from service.stack import http_ok, port_is_free, stop_group
    from study.records.layout import ui_home_url

    if not port_is_free(port, host):
        fail(f"port {port} on {host} is taken (another MLflow UI?): choose one with --port")
    uri = store_uri(data_dir)
    from service.upgrades import upgrade_summaries
    from study.records.store import StudyStore
    from study.records.upgrade import upgrade_presentation

    store = StudyStore(uri)
    upgrade_presentation(store)
    upgraded = upgrade_summaries(
        store,
        on_study=lambda sid: typer.echo(f"study {sid}: its older summary recomputed", err=True),
    )
    if upgraded:
        typer.echo(f"{len(upgraded)} older summaries recomputed from their trials", err=True)
    artifacts = (Path(data_dir) / "mlartifacts").resolve()
    accounts = load_or_create_accounts(data_dir)
    command = [
        sys.executable, "-m", "mlflow", "server", *APP_ARGS,
        "--backend-store-uri", uri,
        "--default-artifact-root", str(artifacts),
        "--host", host, "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    env = dict(
        os.environ,
        MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
        **server_env(data_dir, accounts),
    )
    # Its own session: Ctrl-C reaches this process only, which stops the server quietly. Its
    # output (access log, shutdown) goes to a file.
    log = Path(data_dir) / "mlflow-ui.log"
    with open(log, "ab") as out:
        child = subprocess.Popen(
            command,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def _interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _interrupt)
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    try:
        while not http_ok(f"{url}/health"):
            if child.poll() is not None:
                fail(
                    f"the MLflow UI could not start on {host}:{port} (exit code "
                    f"{child.returncode}; see {log})"
                )
            time.sleep(0.3)
        try:
            ensure_reader(
                url,
                writer=accounts.writer,
                writer_password=accounts.writer_password,
                reader=accounts.reader,
                reader_password=accounts.reader_password,
            )
        except MlflowAuthError as exc:
            fail(str(exc))
        # The log's line first: the UI line says it is up, and a Ctrl-C may follow it at once.
        typer.echo(f"its log: {log}", err=True)
        typer.echo(
            f"MLflow UI on {ui_home_url(f'http://{host}:{port}')} (store {uri}); "
            f"{accounts.login()}; Ctrl-C stops it"
        )
        code = child.wait()
    except KeyboardInterrupt:
        stop_group(child.pid, grace_s=10)
        typer.echo("MLflow UI stopped")
        raise typer.Exit(0) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
        if child.poll() is None:
            stop_group(child.pid, grace_s=10)
    if code != 0:
        fail(f"the MLflow UI on {host}:{port} exited with code {code} (see {log})")
