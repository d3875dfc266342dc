"""The embedded stack of ``hprobust serve``: a local Ray head and the MLflow UI as child processes.

Each child runs in its own process group (session) so that stopping it reaches every process
it started, and nothing here ever stops a Ray cluster it did not start (``ray stop`` would kill
other people's clusters). The head gets free ports for everything it binds, its own temp dir
and token authentication with a fresh token (never written to ``~/.ray``).

The running stack is recorded in ``<data_dir>/stack.json``. If ``hprobust serve`` is killed
(``kill -9``) its children live on; the next ``hprobust serve`` on the same data dir adopts
the Ray head and MLflow UI it finds alive there (so running study jobs are followed again)
and stops them when it exits.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from study.errors import HprobustError

RAY_PORT_OPTIONS = (
    "port",
    "dashboard-port",
    "ray-client-server-port",
    "dashboard-agent-listen-port",
    "dashboard-agent-grpc-port",
    "runtime-env-agent-port",
    "metrics-export-port",
    "node-manager-port",
    "object-manager-port",
)


class StackError(HprobustError, RuntimeError):
    """A process of the embedded stack did not start."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could bind ``port`` now (SO_REUSEADDR, as servers bind)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _bin(name: str) -> str:
    """An executable of this virtual environment (``ray``, ``mlflow``)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is not alive
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def group_alive(pgid: int) -> bool:
    """True while any non-zombie process of process group ``pgid`` exists."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


def stop_group(pgid: int, *, grace_s: float = 20.0) -> None:
    """SIGTERM process group ``pgid``, wait up to ``grace_s``, then SIGKILL what is left."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not group_alive(pgid):
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def http_ok(url: str, *, headers: dict[str, str] | None = None, timeout: float = 2.0) -> bool:
    """True if GET ``url`` answers 2xx."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return 200 <= response.status < 300
    except Exception:
        return False


@dataclass
class Child:
    """A started (or adopted) child process group."""

    name: str
    pid: int
    url: str
    log: str
    extra: dict[str, str] = field(default_factory=dict)

    def alive(self) -> bool:
        return group_alive(self.pid)

    def stop(self, grace_s: float = 20.0) -> None:
        stop_group(self.pid, grace_s=grace_s)


def _wait_until(check, *, timeout_s: float, proc: subprocess.Popen | None, what: str, log: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        if proc is not None and proc.poll() is not None:
            tail = Path(log).read_text(errors="replace")[-2000:] if Path(log).exists() else ""
            raise StackError(f"{what} exited with code {proc.returncode} while starting:\n{tail}")
        time.sleep(0.5)
    raise StackError(f"{what} did not become ready within {timeout_s:.0f} s (log: {log})")


def spawn(
    name: str,
    cmd: list[str],
    *,
    env: dict[str, str],
    log: Path,
    url: str,
    ready_url: str,
    headers: dict[str, str] | None = None,
    extra: dict[str, str] | None = None,
    timeout_s: float = 120.0,
) -> Child:
    """Start ``cmd`` in its own process group (output appended to ``log``) and wait until GET
    ``ready_url`` answers 2xx; a child that exits or never answers is stopped and raises
    :class:`StackError` with the tail of its log."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    child = Child(name, proc.pid, url, str(log), dict(extra or {}))
    try:
        _wait_until(
            lambda: http_ok(ready_url, headers=headers),
            timeout_s=timeout_s,
            proc=proc,
            what=f"the {name} process",
            log=str(log),
        )
    except BaseException:
        child.stop(grace_s=10)
        raise
    return child


def start_ray_head(
    *,
    num_cpus: int | None = None,
    dashboard_port: int | None = None,
    log_dir: Path,
    timeout_s: float = 120.0,
) -> Child:
    """Start ``ray start --head --block`` with token auth on free ports; wait for its Jobs API.

    Every port of the head listens on 127.0.0.1 only (GCS, raylet, object manager, workers,
    dashboard and its agents, metrics): ``ray start`` turns ``--node-ip-address 127.0.0.1``
    into the machine's outside address unless Ray is told this is a single-machine cluster
    (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, which Ray's servers then bind to loopback for).

    Returns the child; ``child.url`` is the dashboard (Jobs API) URL and ``child.extra`` holds
    ``token`` (its auth token), ``gcs_address`` and ``temp_dir``.
    """
    ports = {name: free_port() for name in RAY_PORT_OPTIONS}
    if dashboard_port and port_is_free(dashboard_port):
        ports["dashboard-port"] = dashboard_port
    temp_dir = tempfile.mkdtemp(prefix="hpr-ray-", dir="/tmp")  # short: Ray's socket paths
    token = secrets.token_hex(32)
    cmd = [
        _bin("ray"),
        "start",
        "--head",
        "--block",
        "--dashboard-host",
        "127.0.0.1",
        "--include-dashboard",
        "true",
        "--temp-dir",
        temp_dir,
        "--disable-usage-stats",
        "--node-ip-address",
        "127.0.0.1",
    ]
    for name, port in ports.items():
        cmd += [f"--{name}", str(port)]
    if num_cpus:
        cmd += ["--num-cpus", str(num_cpus)]
    env = dict(
        os.environ,
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN=token,
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",  # node IP 127.0.0.1: servers bind loopback only
    )
    env.pop("RAY_AUTH_TOKEN_PATH", None)
    env.pop("RAY_ADDRESS", None)
    url = f"http://127.0.0.1:{ports['dashboard-port']}"
    return spawn(
        "ray",
        cmd,
        env=env,
        log=log_dir / "ray-head.log",
        url=url,
        ready_url=f"{url}/api/jobs/",
        headers={"Authorization": f"Bearer {token}"},
        extra={"token": token, "gcs_address": f"127.0.0.1:{ports['port']}", "temp_dir": temp_dir},
        timeout_s=timeout_s,
    )


def start_mlflow_ui(
    *,
    backend_store_uri: str,
    artifact_root: Path,
    port: int,
    log_dir: Path,
    timeout_s: float = 120.0,
) -> Child:
    """Start ``mlflow server`` on 127.0.0.1:``port`` over the given store; wait for /health."""
    cmd = [
        _bin("mlflow"),
        "server",
        "--backend-store-uri",
        backend_store_uri,
        "--default-artifact-root",
        str(artifact_root),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    # no background job runner: the UI only shows what the studies record
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    url = f"http://127.0.0.1:{port}"
    return spawn(
        "mlflow",
        cmd,
        env=env,
        log=log_dir / "mlflow-ui.log",
        url=url,
        ready_url=f"{url}/health",
        timeout_s=timeout_s,
    )


# -- the state file ---------------------------------------------------------------------------
def state_path(data_dir: Path) -> Path:
    return Path(data_dir) / "stack.json"


def save_state(data_dir: Path, children: list[Child]) -> None:
    path = state_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps([asdict(c) for c in children], indent=2))
    tmp.chmod(0o600)  # holds the Ray token
    tmp.replace(path)


def load_state(data_dir: Path) -> list[Child]:
    path = state_path(data_dir)
    if not path.exists():
        return []
    try:
        return [Child(**item) for item in json.loads(path.read_text())]
    except (ValueError, TypeError):
        return []


def clear_state(data_dir: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        state_path(data_dir).unlink()


def adopt(previous: list[Child], name: str) -> Child | None:
    """The child ``name`` of a previous ``hprobust serve`` (from ``load_state``) if it still runs
    and answers; one that runs but does not answer is stopped."""
    for child in previous:
        if child.name != name or not child.alive():
            continue
        if name == "ray":
            headers = {"Authorization": f"Bearer {child.extra.get('token', '')}"}
            ok = any(
                http_ok(f"{child.url}/api/jobs/", headers=headers, timeout=10) for _ in range(3)
            )
        else:
            ok = any(http_ok(f"{child.url}/health", timeout=10) for _ in range(3))
        if ok:
            return child
        child.stop(grace_s=10)  # alive but not answering: do not leave it behind
    return None
