"""``hprobust serve``: the embedded stack and the API in one process, stopped as one.

Start-up: the Ray head (unless ``HPROBUST_RAY_ADDRESS`` names a cluster), the MLflow UI over
the SQLite store (unless ``HPROBUST_MLFLOW_URI`` names a tracking server, or it is turned
off), then the API under uvicorn. While it runs, a :class:`~service.stack.Supervisor` restarts
the MLflow UI (on the same port) if it dies or stops answering, and the Ray head it started
if its processes are gone (``kill -9`` of its raylet takes the whole head down): on the same
dashboard port, with the same token, after a log line, with backoff if the start fails.
``/readyz`` reports them down meanwhile (``mlflow_ui``, ``ray``), and the studies say
``paused: ray unreachable``; once the head answers again, the scheduler resubmits each study
whose job the old head took with it, once, with ``--resume`` (``Tuner.restore``: trials
already recorded are not run or recorded again). A Ray head or MLflow UI left running by a previous
``hprobust serve`` on the same data dir that was killed (``kill -9``) is adopted, so its
running study jobs are followed again.

Shut-down (Ctrl-C or SIGTERM): the API stops; the jobs still running on the embedded head are
stopped and their studies put back to ``queued`` (the next ``hprobust serve`` resumes them
from their Ray Tune checkpoints; trials already recorded are not recorded again); then the
Ray head and the MLflow UI are stopped (their whole process groups) and ``stack.json`` is
removed.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import signal
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from service import endpoint
from service.core.config import Settings
from service.mlflow_auth import (
    Accounts,
    ensure_reader,
    load_or_create_accounts,
    requires_login,
    server_env,
)
from service.stack import (
    Child,
    Supervisor,
    adopt,
    clear_state,
    free_port,
    load_state,
    port_is_free,
    save_state,
    start_mlflow_ui,
    start_ray_head,
)
from study.vocab import LIVE, StudyStatus

log = logging.getLogger("hprobust.serve")


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def requeue_running(settings: Settings, *, wait_s: float = 30.0) -> list[str]:
    """Stop the jobs of queued/running studies and record those studies as ``queued`` again."""
    from service.main import make_jobs, make_store

    store, jobs = make_store(settings), make_jobs(settings)
    requeued = []
    for record in store.states(LIVE):  # the live studies only: no spec is read
        ref = jobs.find(record.id)
        if ref is None or ref.terminal:
            continue
        jobs.stop(ref)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            with contextlib.suppress(LookupError):
                if jobs.status(ref).terminal:
                    break
            time.sleep(0.3)
        store.set_status(record.id, StudyStatus.QUEUED)
        requeued.append(record.id)
    return requeued


def restart_ray_head(old: Child, *, num_cpus: int | None, log_dir: Path) -> Child:
    """Start the embedded Ray head again in place of ``old`` (whose processes are gone): what
    is left of its process group is stopped, the new head listens on the old dashboard port
    with the old token (the API's Jobs client and the links keep working), and the old
    head's temp dir is removed."""
    old.stop(grace_s=10)
    new = start_ray_head(
        num_cpus=num_cpus,
        dashboard_port=int(old.url.rsplit(":", 1)[1]),
        log_dir=log_dir,
        token=old.extra.get("token"),
        same_port=True,
    )
    temp_dir = old.extra.get("temp_dir")
    if temp_dir:
        shutil.rmtree(temp_dir, ignore_errors=True)
    return new


def mlflow_accounts(settings: Settings) -> Accounts:
    """The embedded MLflow UI's accounts, in the data dir (:mod:`service.mlflow_auth`)."""
    password = settings.mlflow_reader_password
    return load_or_create_accounts(
        settings.data_dir.expanduser().resolve(),
        reader=settings.mlflow_reader_username,
        reader_password=password.get_secret_value() if password is not None else None,
    )


def ensure_remote_reader(settings: Settings) -> str | None:
    """With an MLflow server behind basic auth (docker-compose.yml): create or update the
    reader account (``HPROBUST_MLFLOW_READER_PASSWORD``) as the writer the environment names
    (``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``, which MLflow's client sends
    with every request). Returns the banner's sign-in line, or None when either is missing."""
    import os

    writer, writer_password = (
        os.environ.get("MLFLOW_TRACKING_USERNAME"),
        os.environ.get("MLFLOW_TRACKING_PASSWORD"),
    )
    password = settings.mlflow_reader_password
    if not (writer and writer_password and password is not None and settings.mlflow_uri):
        return None
    ensure_reader(
        settings.mlflow_uri,
        writer=writer,
        writer_password=writer_password,
        reader=settings.mlflow_reader_username,
        reader_password=password.get_secret_value(),
    )
    return (
        f"sign in as {settings.mlflow_reader_username} (read-only; its password is "
        "HPROBUST_MLFLOW_READER_PASSWORD)"
    )


def hprobust_command() -> str:
    """``hprobust`` if that name runs this installation, else the path of its script (a
    ``.venv`` that is not activated), relative to the working directory when inside it."""
    import shutil
    import sys

    script = Path(sys.executable).parent / "hprobust"
    found = shutil.which("hprobust")
    if found and Path(found).resolve() == script.resolve():
        return "hprobust"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def mlflow_home(mlflow_url: str | None) -> str | None:
    """Where the banner's MLflow link lands: the experiment list in the UI's model-training
    mode (the UI's root opens its GenAI welcome page); a URL that is no UI's, as it is."""
    if not mlflow_url or not mlflow_url.startswith(("http://", "https://")):
        return mlflow_url
    from study.records.layout import ui_home_url

    return ui_home_url(mlflow_url)


def banner(
    settings: Settings,
    api_url: str,
    ray_url: str,
    mlflow_url: str | None,
    mlflow_login: str | None = None,
) -> str:
    auth = " -H 'Authorization: Bearer $HPROBUST_API_TOKEN'" if settings.api_token else ""
    example = Path("examples/digits-quick.yaml")
    lines = [
        "",
        "hprobust is up",
        f"  API:            {api_url}   (studies: {api_url}/ · docs: {api_url}/docs)",
        f"  Ray dashboard:  {ray_url}",
        f"  MLflow UI:      {mlflow_home(mlflow_url) or '(not started)'}",
        *([f"                  {mlflow_login}"] if mlflow_login else []),
        f"  data dir:       {settings.data_dir}",
        "",
        "Submit the quick example study:",
        f"  {hprobust_command()} submit {example} --url {api_url} --wait",
        f"  curl -sS -X POST {api_url}/studies{auth} -H 'Content-Type: application/yaml' "
        f"--data-binary @{example}",
        "",
        "Ctrl-C stops everything (running studies resume at the next start).",
        "",
    ]
    return "\n".join(lines)


def serve(
    settings: Settings,
    *,
    mlflow_port: int = 5000,
    ray_dashboard_port: int = 8265,
    mlflow_ui: bool = True,
    echo: Callable[[str], None] = print,
) -> int:
    """Run the stack and the API until Ctrl-C/SIGTERM; returns the exit code."""
    import uvicorn

    from service.main import configure_api_process, create_app

    data_dir = settings.data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    if settings.protect_reads:  # the store itself: readable by this user only (issue 21, Q5)
        data_dir.chmod(0o700)
    settings = settings.model_copy(update={"data_dir": data_dir})
    log_dir = data_dir / "logs"
    owned: list[Child] = []
    old_int = signal.signal(signal.SIGINT, _interrupt)
    old_term = signal.signal(signal.SIGTERM, _interrupt)
    embedded_ray = settings.ray_address is None
    previous = load_state(data_dir)
    supervisor: Supervisor | None = None
    restarts: dict[str, Callable[[Child], Child]] = {}
    try:
        # -- Ray ---------------------------------------------------------------------------
        if embedded_ray:
            ray = adopt(previous, "ray")
            if ray is not None:
                echo(f"adopted the Ray head of a previous run (pid {ray.pid}) at {ray.url}")
            else:
                echo("starting a local Ray head ...")
                ray = start_ray_head(
                    num_cpus=settings.cpus, dashboard_port=ray_dashboard_port, log_dir=log_dir
                )
            owned.append(ray)
            save_state(data_dir, owned)
            settings = settings.model_copy(
                update={"ray_address": ray.url, "ray_auth_token": SecretStr(ray.extra["token"])}
            )
            ray_url = ray.url
            restarts["ray"] = partial(restart_ray_head, num_cpus=settings.cpus, log_dir=log_dir)
        else:
            ray_url = str(settings.ray_address)

        # -- MLflow UI (behind MLflow's basic-auth app: service/mlflow_auth.py) --------------
        mlflow_url = settings.mlflow_ui_url
        mlflow_login = None
        if settings.mlflow_uri is None and mlflow_ui:
            accounts = mlflow_accounts(settings)
            auth_env = server_env(data_dir, accounts)
            ui = adopt(previous, "mlflow")
            if ui is not None and not requires_login(ui.url):  # left by an earlier version
                echo(f"stopping the MLflow UI of a previous run (pid {ui.pid}): it had no login")
                ui.stop(grace_s=10)
                ui = None
            if ui is None:
                port = mlflow_port if port_is_free(mlflow_port) else free_port()
                if port != mlflow_port:
                    echo(f"port {mlflow_port} is taken; the MLflow UI uses {port}")
                echo("starting the MLflow UI ...")
                ui = start_mlflow_ui(
                    backend_store_uri=settings.tracking_uri,
                    artifact_root=settings.artifact_root,
                    port=port,
                    log_dir=log_dir,
                    auth_env=auth_env,
                )
            owned.append(ui)
            save_state(data_dir, owned)
            ensure_reader(
                ui.url,
                writer=accounts.writer,
                writer_password=accounts.writer_password,
                reader=accounts.reader,
                reader_password=accounts.reader_password,
            )
            mlflow_login = accounts.login()
            mlflow_url = mlflow_url or ui.url
            tracking_uri, artifact_root = settings.tracking_uri, settings.artifact_root

            def restart_ui(old: Child) -> Child:  # on the same port, so its links keep working
                return start_mlflow_ui(
                    backend_store_uri=tracking_uri,
                    artifact_root=artifact_root,
                    port=int(old.url.rsplit(":", 1)[1]),
                    log_dir=log_dir,
                    auth_env=auth_env,
                )

            restarts["mlflow"] = restart_ui
        elif settings.mlflow_uri and settings.mlflow_uri.startswith("http"):
            mlflow_url = mlflow_url or settings.mlflow_uri
            mlflow_login = ensure_remote_reader(settings)
        settings = settings.model_copy(update={"mlflow_ui_url": mlflow_url})
        if restarts:
            supervisor = Supervisor(owned, restarts, on_change=lambda: save_state(data_dir, owned))

        # leftovers of a previous run that were not adopted
        for child in previous:
            if child not in owned and child.alive():
                echo(f"stopping the {child.name} left by a previous run (pid {child.pid})")
                child.stop(grace_s=10)

        # -- the API -------------------------------------------------------------------------
        from service.api.http import bounded_protocol

        # this process is the API's from here on: its MLflow client fails fast (the Ray head
        # and MLflow UI started above, and the study drivers they run, keep MLflow's defaults)
        configure_api_process()
        app = create_app(settings, stack=supervisor)
        if supervisor is not None:
            supervisor.start()
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_level="info",
            timeout_graceful_shutdown=5,
            proxy_headers=False,
            http=bounded_protocol(settings.max_header_bytes),  # 431 above the limit
        )
        server = uvicorn.Server(config)
        host = f"[{settings.host}]" if ":" in settings.host else settings.host
        echo(banner(settings, f"http://{host}:{settings.port}", ray_url, mlflow_url, mlflow_login))
        sys.stdout.flush()
        # where `hprobust studies`, `status`, ... find this API (service/endpoint.py)
        endpoint.record(endpoint.client_url(settings.host, settings.port), data_dir=data_dir)
        server.run()  # returns on SIGINT/SIGTERM (uvicorn re-raises them after, see _interrupt)
        return 0 if server.started else 1
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        endpoint.forget()
        if supervisor is not None:
            supervisor.stop()  # nothing restarted while the stack stops
        try:
            _shutdown(settings, owned, embedded_ray=embedded_ray, echo=echo)
        finally:
            signal.signal(signal.SIGINT, old_int)
            signal.signal(signal.SIGTERM, old_term)


def _shutdown(
    settings: Settings, owned: list[Child], *, embedded_ray: bool, echo: Callable[[str], None]
) -> None:
    ray = next((c for c in owned if c.name == "ray"), None)
    if embedded_ray and ray is not None and ray.alive():
        try:
            requeued = requeue_running(settings)
            if requeued:
                echo(f"stopped and re-queued {len(requeued)} study(ies): {', '.join(requeued)}")
        except Exception as exc:  # stopping the stack matters more
            echo(f"could not re-queue running studies: {exc}")
    for child in reversed(owned):
        echo(f"stopping {child.name} (process group {child.pid}) ...")
        child.stop(grace_s=20)
        temp_dir = child.extra.get("temp_dir")
        if temp_dir:
            shutil.rmtree(temp_dir, ignore_errors=True)
    clear_state(settings.data_dir)
    echo("stopped")
