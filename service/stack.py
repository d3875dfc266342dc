"""The embedded stack of ``hprobust serve``: a local Ray head and the MLflow UI as child processes.

Each child runs in its own process group (session) so that stopping it reaches every process
it started, and nothing here ever stops a Ray cluster it did not start (``ray stop`` would kill
other people's clusters). The head gets free ports for everything it binds, its own temp dir
and token authentication with a fresh token (never written to ``~/.ray``).

The running stack is recorded in ``<data_dir>/stack.json``. If ``hprobust serve`` is killed
(``kill -9``) its children live on; the next ``hprobust serve`` on the same data dir adopts
the Ray head and MLflow UI it finds alive there (so running study jobs are followed again)
and stops them when it exits.

While ``hprobust serve`` runs, a :class:`Supervisor` starts again a child that died: the MLflow
UI (also when it stops answering) and the Ray head (when its processes are gone: ``kill -9`` of
its raylet takes the whole head down). Each comes back on its old port, the head with its old
token, so the API's clients and links keep working; the scheduler then resumes the studies
whose jobs the head took with it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from service.mlflow_auth import APP_ARGS
from study.errors import HprobustError
from study.runtime import ENVIRONMENT
from study.vocab import Dependency

log = logging.getLogger("hprobust.serve")

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
    return free_ports(1, host)[0]


def free_ports(count: int, host: str = "127.0.0.1", *, besides: Iterable[int] = ()) -> list[int]:
    """``count`` distinct TCP ports free on ``host`` right now, none of them in ``besides``.

    All are held open until every one is picked: ports picked one at a time (bind to port 0,
    close, again) can repeat, since a port is free again once closed, and a server given the
    same port twice refuses to start (``ray start``: "trying to use a port number ... that is
    used by other components", seen on this machine)."""
    skip = set(besides)
    held: list[socket.socket] = []  # all open until the end: the kernel repeats none of them
    ports: list[int] = []
    try:
        while len(ports) < count:
            sock = socket.socket()
            held.append(sock)
            sock.bind((host, 0))
            if (port := int(sock.getsockname()[1])) not in skip:
                ports.append(port)
        return ports
    finally:
        for sock in held:
            sock.close()


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


def group_alive(pgid: int) -> bool:
    """True while any non-zombie process of process group ``pgid`` exists.

    ``os.killpg(pgid, 0)`` says whether the group has members at all (the quick answer once it
    is gone); a member that exited but was not reaped yet (a zombie: a child this process never
    waited for, or one whose parent does not reap it) still counts for the kernel and not
    here, so the members are then looked at with psutil (Linux and macOS alike).
    """
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's group: it exists; look at its members below
    import psutil

    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, PermissionError):
            continue  # gone meanwhile, or not ours to ask
    return False


def stop_group(pgid: int, *, grace_s: float = 20.0, leader_first: bool = False) -> None:
    """SIGTERM process group ``pgid``, wait up to ``grace_s``, then SIGKILL what is left.

    ``leader_first``: SIGTERM the group's leader alone first, and the rest of the group only
    if it has not ended within half of ``grace_s``. For a Ray head (``ray start --block``,
    which stops its GCS, raylet, dashboard and workers in turn): it ended in 2-5 s here, where
    the whole group signalled at once was still up after 15 s (its GCS and the ``ray start``
    process waiting on members that had already gone) and was killed.
    """
    deadline = time.monotonic() + grace_s
    if leader_first:
        try:
            os.kill(pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass  # no leader left (killed -9): its group, below
        else:
            if _wait_group_gone(pgid, time.monotonic() + grace_s / 2):
                return
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if not _wait_group_gone(pgid, deadline):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)


def _wait_group_gone(pgid: int, deadline: float) -> bool:
    """Whether group ``pgid`` has no live member by ``deadline`` (monotonic)."""
    while time.monotonic() < deadline:
        if not group_alive(pgid):
            return True
        time.sleep(0.2)
    return not group_alive(pgid)


#: The processes this module checks are its own children, reached directly: never through
#: an ``http_proxy`` of the environment (a lab's proxy would answer, or refuse, for them), and
#: not through ``urlopen``'s process-wide opener, which keeps the proxies it first saw.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_ok(url: str, *, headers: dict[str, str] | None = None, timeout: float = 2.0) -> bool:
    """True if GET ``url`` answers 2xx (directly, whatever proxy the environment names)."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with _DIRECT.open(request, timeout=timeout) as response:
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
        """Stop the group: a Ray head through its ``ray start`` process (:func:`stop_group`)."""
        stop_group(self.pid, grace_s=grace_s, leader_first=self.name == "ray")


def reap(pid: int) -> None:
    """Collect the exit status of ``pid`` if it is an exited child of this process (a
    zombie otherwise stays until this process exits); nothing for any other pid."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def answers(child: Child, *, timeout: float = 3.0) -> bool:
    """Whether ``child`` answers: a Ray head's Jobs API (with its token), else ``/health``."""
    if child.name == "ray":
        headers = {"Authorization": f"Bearer {child.extra.get('token', '')}"}
        return http_ok(f"{child.url}/api/jobs/", headers=headers, timeout=timeout)
    return http_ok(f"{child.url}/health", timeout=timeout)


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
    log_says: str | None = None,
) -> Child:
    """Start ``cmd`` in its own process group (output appended to ``log``) and wait until GET
    ``ready_url`` answers 2xx (and, with ``log_says``, that text appears in what it logs); a child
    that exits or never gets ready is stopped and raises :class:`StackError` with the tail of
    its log."""
    log.parent.mkdir(parents=True, exist_ok=True)
    offset = log.stat().st_size if log.exists() else 0  # the log is appended to

    def said() -> bool:
        if log_says is None:
            return True
        with open(log, "rb") as text:
            text.seek(offset)
            return log_says.encode() in text.read()

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
            lambda: said() and http_ok(ready_url, headers=headers),
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
    token: str | None = None,
    same_port: bool = False,
) -> Child:
    """Start ``ray start --head --block`` with token auth on free ports; wait for its Jobs API.

    Every port of the head listens on 127.0.0.1 only (GCS, raylet, object manager, workers,
    dashboard and its agents, metrics): ``ray start`` turns ``--node-ip-address 127.0.0.1``
    into the machine's outside address unless Ray is told this is a single-machine cluster
    (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, which Ray's servers then bind to loopback for).

    ``dashboard_port`` is used if it is free (else any free port; with ``same_port``, a
    StackError: a head started again must keep its URL). ``token``: the head's auth token
    (default: a fresh one; a head started again keeps its old one).

    Returns the child; ``child.url`` is the dashboard (Jobs API) URL and ``child.extra`` holds
    ``token`` (its auth token), ``gcs_address`` and ``temp_dir``.
    """
    if dashboard_port and not port_is_free(dashboard_port):
        if same_port:
            raise StackError(f"the Ray head cannot listen on port {dashboard_port}: it is taken")
        dashboard_port = None
    temp_dir = tempfile.mkdtemp(prefix="hpr-ray-", dir="/tmp")  # short: Ray's socket paths
    token = token or secrets.token_hex(32)
    env = dict(
        os.environ,
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN=token,
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",  # node IP 127.0.0.1: servers bind loopback only
        PYTHONUNBUFFERED="1",  # its "Ray runtime started" reaches the log at once
    )
    env.pop("RAY_AUTH_TOKEN_PATH", None)
    env.pop("RAY_ADDRESS", None)
    for name, value in ENVIRONMENT.items():  # as `hprobust` sets up its own process: among
        env.setdefault(name, value)  # others, trial actors may leave the head's session
    for attempt in (1, 2):
        # distinct ports, picked again for the second attempt (one may have been taken since)
        picked = free_ports(len(RAY_PORT_OPTIONS), besides=[dashboard_port or 0])
        ports = dict(zip(RAY_PORT_OPTIONS, picked, strict=True))
        if dashboard_port:
            ports["dashboard-port"] = dashboard_port
        cmd = _ray_head_command(temp_dir, ports, num_cpus)
        url = f"http://127.0.0.1:{ports['dashboard-port']}"
        try:  # ready once its raylet has registered: the Jobs API alone answers before that
            return spawn(
                "ray",
                cmd,
                env=env,
                log=log_dir / "ray-head.log",
                url=url,
                ready_url=f"{url}/api/jobs/",
                headers={"Authorization": f"Bearer {token}"},
                extra={
                    "token": token,
                    "gcs_address": f"127.0.0.1:{ports['port']}",
                    "temp_dir": temp_dir,
                },
                timeout_s=timeout_s,
                log_says="Ray runtime started",
            )
        except StackError as exc:
            # `ray start` gives its raylet 30 s to register: on a machine under heavy load it
            # can run out and exit; once more, then give up
            if attempt == 2:
                raise
            log.warning("the Ray head did not start (%s); trying once more", str(exc)[-300:])
    raise AssertionError("unreachable")


def _ray_head_command(temp_dir: str, ports: dict[str, int], num_cpus: int | None) -> list[str]:
    """``ray start --head --block`` on loopback, its ports ``ports`` (RAY_PORT_OPTIONS)."""
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
    return cmd


def start_mlflow_ui(
    *,
    backend_store_uri: str,
    artifact_root: Path,
    port: int,
    log_dir: Path,
    timeout_s: float = 120.0,
    auth_env: dict[str, str] | None = None,
) -> Child:
    """Start ``mlflow server`` on 127.0.0.1:``port`` over the given store; wait for /health.

    ``auth_env``: MLflow's basic-auth app runs, set up by this environment
    (:func:`service.mlflow_auth.server_env`: no request but ``/health`` without an account)."""
    cmd = [
        _bin("mlflow"),
        "server",
        *(APP_ARGS if auth_env else ()),
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
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false", **(auth_env or {}))
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
        if any(answers(child, timeout=10) for _ in range(3)):
            return child
        child.stop(grace_s=10)  # alive but not answering: do not leave it behind
    return None


# -- keeping the stack up ----------------------------------------------------------------------
#: What ``/readyz`` calls each restartable child.
HEALTH_KEYS = {"mlflow": Dependency.MLFLOW_UI, "ray": Dependency.RAY}


class Supervisor:
    """Keeps restartable children of the stack up (the MLflow UI and the Ray head of
    ``hprobust serve``).

    Every ``interval_s`` it looks at each child that has a restart function: one whose process
    group is gone, or (unless its name is in ``only_when_gone``) that did not answer
    (:func:`answers`) ``unresponsive_checks`` times in a row, is stopped (what is left of it)
    and started again by ``restart(old_child)`` (on the same port); ``children`` is updated
    in place and ``on_change`` (saving ``stack.json``) is called. A restart that fails is
    tried again after ``interval_s``, doubling up to ``max_backoff_s``. :meth:`health` is
    what ``/readyz`` reports for them.

    A Ray head is in ``only_when_gone``: a head that is slow to answer (a busy machine) still
    runs its studies' jobs, and starting it again would end them.
    """

    def __init__(
        self,
        children: list[Child],
        restart: dict[str, Callable[[Child], Child]],
        *,
        on_change: Callable[[], None] = lambda: None,
        interval_s: float = 5.0,
        unresponsive_checks: int = 3,
        only_when_gone: frozenset[str] = frozenset({"ray"}),
        max_backoff_s: float = 300.0,
    ) -> None:
        self.children = children
        self.restart = restart
        self.on_change = on_change
        self.interval_s = interval_s
        self.unresponsive_checks = unresponsive_checks
        self.only_when_gone = only_when_gone
        self.max_backoff_s = max_backoff_s
        self.restarts: dict[str, int] = dict.fromkeys(restart, 0)
        self.last_error: dict[str, str] = {}
        self._misses: dict[str, int] = dict.fromkeys(restart, 0)
        self._failed: dict[str, int] = dict.fromkeys(restart, 0)  # restarts failed in a row
        self._next_try: dict[str, float] = {}  # monotonic time of a failed restart's next try
        self._lock = threading.Lock()  # one check (or stop) at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def child(self, name: str) -> Child | None:
        return next((c for c in self.children if c.name == name), None)

    def health(self) -> dict[str, str]:
        """``{"mlflow_ui": "ok" | "down: ...", "ray": ...}`` for the children it keeps up,
        probed now."""
        out = {}
        for name in self.restart:
            child = self.child(name)
            key = HEALTH_KEYS.get(name, name)
            if child is not None and answers(child):
                out[key] = "ok"
                continue
            where = child.url if child is not None else "(not started)"
            why = "its process is gone" if child is None or not child.alive() else "no answer"
            note = (
                f"; last restart failed: {self.last_error[name]}" if name in self.last_error else ""
            )
            out[key] = f"down: {where} ({why}; restarted by hprobust serve){note}"[:500]
        return out

    def check_once(self) -> None:
        """Restart what is down (see the class doc)."""
        with self._lock:
            for name, restart in self.restart.items():
                if self._stop.is_set():
                    return
                child = self.child(name)
                if child is None:
                    continue
                if child.alive():
                    if name in self.only_when_gone or answers(child):
                        self._misses[name] = 0
                        continue
                    self._misses[name] += 1
                    if self._misses[name] < self.unresponsive_checks:
                        continue
                    if time.monotonic() < self._next_try.get(name, 0.0):
                        continue
                    log.warning("the %s at %s does not answer: restarting it", name, child.url)
                    child.stop(grace_s=10)
                else:
                    reap(child.pid)  # our child's exit status: no zombie left behind
                    if time.monotonic() < self._next_try.get(name, 0.0):
                        continue
                    log.warning("the %s at %s is gone: restarting it", name, child.url)
                try:
                    new = restart(child)
                except Exception as exc:  # e.g. its port was taken meanwhile: try again later
                    self._failed[name] += 1
                    wait = min(self.interval_s * 2.0 ** self._failed[name], self.max_backoff_s)
                    self._next_try[name] = time.monotonic() + wait
                    self.last_error[name] = f"{type(exc).__name__}: {exc}"[:300]
                    log.warning(
                        "could not restart the %s (tried again in %.0f s): %s",
                        name,
                        wait,
                        self.last_error[name],
                    )
                    continue
                self.children[self.children.index(child)] = new
                self.restarts[name] += 1
                self._misses[name] = 0
                self._failed[name] = 0
                self._next_try.pop(name, None)
                self.last_error.pop(name, None)
                self.on_change()
                log.warning("restarted the %s at %s (pid %d)", name, new.url, new.pid)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.check_once()
            except Exception as exc:  # keep watching
                log.warning("stack check failed: %s", exc)

    def start(self) -> Supervisor:
        self._thread = threading.Thread(target=self._run, name="hprobust-stack", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 150.0) -> None:
        """Stop watching (waits for a restart under way, so nothing is started afterwards)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
