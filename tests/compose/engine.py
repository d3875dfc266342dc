"""Docker and Compose for ``make compose-test``: install and start the engine if it is missing,
run Compose (v2 plugin, else docker-compose 1.29) with a clean environment, and read what the
engine says about a project's containers (services, start times, health probes, ports)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DOCKERD_LOG = Path("/var/log/hprobust-compose-test-dockerd.log")
# Variables the compose files read: the caller's shell must not leak them into the test.
_LEAKY_PREFIXES = ("HPROBUST_", "RAY_", "POSTGRES_", "MLFLOW_", "COMPOSE_", "TORCH_", "PIP_")
_LEAKY_NAMES = ("HEAD_IP", "WORKER_NETWORK_MODE", "DOCKER_HOST")


class Failed(Exception):
    """A check of the compose test did not hold (the message says which and why)."""


def run(
    cmd: list[str],
    *,
    env: dict[str, str] | None = None,
    timeout: float | None = 900,
    check: bool = True,
) -> str:
    """Run ``cmd`` in the repository root; its stdout, or :class:`Failed` with its output."""
    try:
        proc = subprocess.run(
            cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        raise Failed(f"{' '.join(cmd)} did not finish in {timeout:.0f} s") from exc
    if check and proc.returncode != 0:
        out = (proc.stdout + proc.stderr)[-4000:]
        raise Failed(f"{' '.join(cmd)} exited with {proc.returncode}:\n{out}")
    return proc.stdout


def _ok(cmd: list[str]) -> bool:
    return subprocess.run(cmd, capture_output=True).returncode == 0


def ensure_engine(log: Any) -> list[str]:
    """Install docker.io / docker-compose / debootstrap if missing (apt), start dockerd if it
    is not running; returns the Compose command (``docker compose`` or ``docker-compose``)."""
    missing = [
        pkg
        for cmd, pkg in (("dockerd", "docker.io"), ("debootstrap", "debootstrap"))
        if shutil.which(cmd) is None
    ]
    has_v2 = shutil.which("docker") is not None and _ok(["docker", "compose", "version"])
    if not has_v2 and shutil.which("docker-compose") is None:
        missing.append("docker-compose")
    if missing:
        log(f"installing {' '.join(missing)} with apt-get")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        run(["apt-get", "update", "-qq"], env=env, timeout=600)
        run(["apt-get", "install", "-y", "-qq", *missing], env=env, timeout=900)
    if not _ok(["docker", "info"]):
        log(f"starting dockerd (log: {DOCKERD_LOG})")
        with DOCKERD_LOG.open("ab") as out:
            subprocess.Popen(
                ["dockerd"],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 90
        while not _ok(["docker", "info"]):
            if time.monotonic() > deadline:
                raise Failed(f"dockerd did not answer within 90 s; see {DOCKERD_LOG}")
            time.sleep(1)
    if _ok(["docker", "compose", "version"]):
        return ["docker", "compose"]
    return ["docker-compose"]


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without anything the compose files read, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(_LEAKY_PREFIXES) and k not in _LEAKY_NAMES
    }
    # docker-compose 1.29 builds through the engine API (no BuildKit, no buildx needed).
    env.update(DOCKER_BUILDKIT="0", COMPOSE_DOCKER_CLI_BUILD="0", **extra)
    return env


_STAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?$")


def timestamp(text: str) -> dt.datetime | None:
    """Docker's RFC 3339 timestamps (nanoseconds) as aware datetimes; None for the zero time."""
    m = _STAMP.match(text or "")
    if not m or text.startswith("0001-"):
        return None
    frac = (m.group(2) or "0")[:6].ljust(6, "0")
    zone = m.group(3) or "Z"
    zone = "+00:00" if zone == "Z" else zone
    return dt.datetime.fromisoformat(f"{m.group(1)}.{frac}{zone}")


def containers(project: str) -> list[dict[str, Any]]:
    """``docker inspect`` of every container of a compose project (running or not)."""
    ids = run(["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={project}"])
    if not ids.split():
        return []
    return json.loads(run(["docker", "inspect", *ids.split()]))


def service_of(info: dict[str, Any]) -> str:
    return info["Config"]["Labels"]["com.docker.compose.service"]


def container(project: str, service: str) -> dict[str, Any]:
    """The one container of ``service`` (Failed if there is none or more than one)."""
    found = [c for c in containers(project) if service_of(c) == service]
    if len(found) != 1:
        raise Failed(f"{project}: expected one {service} container, found {len(found)}")
    return found[0]


def ip_on(info: dict[str, Any]) -> dict[str, str]:
    """network name -> the container's address on it."""
    return {
        name: net["IPAddress"]
        for name, net in info["NetworkSettings"]["Networks"].items()
        if net.get("IPAddress")
    }


def published(project: str) -> set[tuple[str, str, str, str]]:
    """(service, container port, host address, host port) of every published port."""
    out = set()
    for info in containers(project):
        for port, bindings in (info["NetworkSettings"].get("Ports") or {}).items():
            for b in bindings or []:
                out.add((service_of(info), port, b.get("HostIp", ""), b.get("HostPort", "")))
    return out


class HealthWatch(threading.Thread):
    """Polls a project's containers every two seconds and keeps every health probe it sees (the
    engine keeps only the last five) and every start time, to check the start order."""

    def __init__(self, project: str) -> None:
        super().__init__(daemon=True)
        self.project = project
        self.started: dict[str, dt.datetime] = {}  # service -> latest container start
        self.probes: dict[str, dict[str, tuple[dt.datetime, int]]] = {}  # service -> probes
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.poll()
            self._stop_event.wait(2.0)

    def poll(self) -> None:
        try:
            infos = containers(self.project)
        except Failed:
            return
        for info in infos:
            service = service_of(info)
            started = timestamp(info["State"].get("StartedAt", ""))
            if started:
                self.started[service] = started
            for probe in (info["State"].get("Health") or {}).get("Log") or []:
                end = timestamp(probe.get("End", ""))
                if end:
                    self.probes.setdefault(service, {})[probe["Start"]] = (end, probe["ExitCode"])

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)
        self.poll()

    def healthy_at(self, service: str) -> dt.datetime | None:
        """When ``service`` first passed its healthcheck after its latest start."""
        start = self.started.get(service)
        ends = sorted(
            end
            for end, code in self.probes.get(service, {}).values()
            if code == 0 and (start is None or end >= start)
        )
        return ends[0] if ends else None


def wait_healthy(project: str, services: list[str], timeout_s: float) -> None:
    """Wait until every container of ``services`` runs and is healthy."""
    deadline = time.monotonic() + timeout_s
    while True:
        state = {}
        for info in containers(project):
            if service_of(info) in services:
                health = (info["State"].get("Health") or {}).get("Status", "none")
                state[service_of(info)] = health if info["State"]["Running"] else "not running"
        if set(state) == set(services) and all(s == "healthy" for s in state.values()):
            return
        if time.monotonic() > deadline:
            raise Failed(f"{project}: not healthy after {timeout_s:.0f} s: {state}")
        time.sleep(1)
