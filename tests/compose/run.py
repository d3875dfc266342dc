"""``make compose-test``: the GPU-host deployment built and run for real under Docker, with the
CPU override (this machine has no GPU), end to end. ``make test`` does not run it.

Cost: 10 GB of disk (base images, three images sharing their torch layers; kept for the next
run, with the package cache) and, measured on a fresh 2-core machine of this kind (Docker
not installed), 11 minutes when it is quiet and up to 30 when other jobs load it; about 7
minutes with the images of an earlier run.

1. Docker: installs docker.io, docker-compose (1.29) and debootstrap with apt if missing and
   starts dockerd. Docker Hub is not reachable here: docker/offline/make-base-images.sh makes
   the Python and PostgreSQL base images from Debian's mirror.
2. Builds docker/ray.Dockerfile, api.Dockerfile and mlflow.Dockerfile with `compose build`
   from the repository as it is. Only build arguments differ from a lab's build: the Python
   base image, and a package index on the Docker bridge (tests/compose/local_index.py) that
   serves this machine's local wheels (torch) and relays PyPI.
3. `up` with docker-compose.yml + docker/compose.cpu.yml (project hprobust-ct, its own ports,
   random secrets, RAY_HEAD_CPUS=0 so that every trial runs on a worker), then through the
   published ports only: the start order follows the healthchecks; POST /studies is 401
   without the token and 202 with it; the study is followed to `finished` while the Ray worker
   container is killed (`docker kill`) mid-study and compose starts it again; every trial is
   recorded exactly once and none is left RUNNING; trials, summary, report page and plots are
   served; the MLflow UI on 127.0.0.1 shows the runs (Chromium); PostgreSQL holds them; the
   artifacts went through MLflow's proxy into its volume; only the API and the MLflow UI
   ports are published; a crashed worker is restarted by its restart policy; the README's
   offline CIFAR-10 step (with a stand-in archive) fills the workers' dataset folder.
4. `down` (volumes kept) and `up`: the finished study, its runs and artifacts are served again.
5. Multi-host: the head moves to host networking (docker/compose.multihost.yml) on the
   address of a Docker network that plays the private network between two hosts; a second
   worker "host" (docker/compose.worker.yml, its own compose project) joins from that network,
   which reaches only the head; a second study's trials run on it (Ray node ids).
6. Tears everything down (containers, networks, volumes) and prints one closing line.

Options: --keep (leave the stack up after a failure or success, for a look).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import ipaddress
import json
import os
import secrets
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.compose import engine
from tests.compose.engine import Failed, run

ROOT = engine.ROOT
PROJECT = "hprobust-ct"
WORKER_PROJECT = "hprobust-ct-worker"
LINK_NETWORK = "hprobust-ct-link"
CACHE = Path("/var/cache/hprobust-compose-test")
INDEX_PORT = 18491  # fixed: the index URL is a build argument, part of the layer cache key
PYTHON_BASE = "hprobust-offline/python:3.11-bookworm"
POSTGRES_BASE = "hprobust-offline/postgres:15-bookworm"
IMAGES = ("hprobust-ray:0.1.0", "hprobust-api:0.1.0", "hprobust-mlflow:0.1.0")
MAIN = ["-f", "docker-compose.yml", "-f", "docker/compose.cpu.yml"]
MULTIHOST = [*MAIN, "-f", "docker/compose.multihost.yml"]
WORKER = ["-f", "docker/compose.worker.yml"]
SERVICES = ["postgres", "mlflow", "ray-head", "ray-cpu-worker", "api"]
#: (dependency, dependent): the dependent starts only once the dependency is healthy.
START_ORDER = [
    ("postgres", "mlflow"),
    ("ray-head", "ray-cpu-worker"),
    ("mlflow", "api"),
    ("ray-head", "api"),
]
T0 = time.monotonic()


def log(message: str) -> None:
    print(f"[compose-test {time.monotonic() - T0:5.0f}s] {message}", flush=True)


def check(condition: object, message: str) -> None:
    if not condition:
        raise Failed(message)


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def free_port(low: int = 0, high: int = 0) -> int:
    """A TCP port free on every address of this host (in [low, high] when given)."""
    for port in range(low, high + 1) if low else [0]:
        with socket.socket() as sock:
            try:
                sock.bind(("0.0.0.0", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise Failed(f"no free port in {low}-{high}")


class Stack:
    """The test's compose projects, their settings and the calls that drive them."""

    def __init__(self, compose: list[str], workdir: Path) -> None:
        self.compose = compose
        self.api_port = free_port()
        self.mlflow_port = free_port()
        self.token = secrets.token_urlsafe(24)
        self.reader = ("reader", secrets.token_urlsafe(18))  # the MLflow UI's read-only account
        self.env_file = workdir / "compose-test.env"
        settings = {
            "COMPOSE_PROJECT_NAME": PROJECT,
            "HPROBUST_API_TOKEN": self.token,
            "RAY_AUTH_TOKEN": secrets.token_urlsafe(24),
            "POSTGRES_PASSWORD": secrets.token_urlsafe(16),
            "HPROBUST_SECRET": secrets.token_urlsafe(32),
            "MLFLOW_WRITER_PASSWORD": secrets.token_urlsafe(18),
            "MLFLOW_FLASK_SECRET_KEY": secrets.token_urlsafe(32),
            "HPROBUST_MLFLOW_READER_PASSWORD": self.reader[1],
            "POSTGRES_IMAGE": POSTGRES_BASE,
            "HPROBUST_API_PORT": str(self.api_port),
            "MLFLOW_UI_PORT": str(self.mlflow_port),
            "MLFLOW_ALLOWED_HOSTS": f"mlflow:5000,localhost:{self.mlflow_port},"
            f"127.0.0.1:{self.mlflow_port}",
            "HPROBUST_MLFLOW_UI_URL": f"http://127.0.0.1:{self.mlflow_port}",
            # The head trains nothing: every trial runs on a worker (the one killed, the
            # second host's), so the checks below know where each trial ran.
            "RAY_HEAD_CPUS": "0",
        }
        self.env_file.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
        self.env_file.chmod(0o600)
        self.multihost: dict[str, str] = {}  # HEAD_IP, RAY_GCS_PORT once in multi-host mode
        self.api = httpx.Client(base_url=f"http://127.0.0.1:{self.api_port}", timeout=60)
        mlflow_url = f"http://127.0.0.1:{self.mlflow_port}"
        self.mlflow = httpx.Client(base_url=mlflow_url, timeout=60, auth=self.reader)
        self.anonymous_mlflow = httpx.Client(base_url=mlflow_url, timeout=60)

    # -- compose -------------------------------------------------------------------------
    def files(self) -> list[str]:
        return MULTIHOST if self.multihost else MAIN

    def project(self, *args: str, files: list[str] | None = None, timeout: float = 900) -> str:
        cmd = [*self.compose, "-p", PROJECT, *(files or self.files())]
        cmd += ["--env-file", str(self.env_file), *args]
        return run(cmd, env=engine.clean_env(**self.multihost), timeout=timeout)

    def worker_project(self, *args: str, network: str = "", timeout: float = 600) -> str:
        env = engine.clean_env(
            RAY_HEAD_IP=self.multihost.get("HEAD_IP", "0.0.0.0"),
            RAY_GCS_PORT=self.multihost.get("RAY_GCS_PORT", "6379"),
            WORKER_NETWORK_MODE=network or LINK_NETWORK,
        )
        cmd = [*self.compose, "-p", WORKER_PROJECT, *WORKER, "--env-file", str(self.env_file)]
        return run([*cmd, "--profile", "cpu", *args], env=env, timeout=timeout)

    def up(self, services: list[str], *args: str) -> tuple[float, engine.HealthWatch]:
        """`up -d`, then wait for ``services`` to be healthy; (seconds, what the watch saw)."""
        start = time.monotonic()
        watch = engine.HealthWatch(PROJECT)
        watch.start()
        try:
            try:
                self.project("up", "-d", *args)
            except Failed as exc:
                # A dependency that was not healthy yet when compose checked it (a busy host:
                # MLflow or the Ray head slow to start) makes `up -d` give up, while the
                # dependency restarts on its own (restart: unless-stopped). What a lab does
                # then: wait, and run `up -d` once more. A second failure is the test's.
                first = str(exc).splitlines()[0][:300]
                log(f"`up -d` gave up ({first}); waiting for the started services, once more")
                started = {
                    engine.service_of(info)
                    for info in engine.containers(PROJECT)
                    if info["State"].get("Status") != "created"  # never started: left to up
                }
                engine.wait_healthy(PROJECT, [s for s in services if s in started], 300)
                self.project("up", "-d", *args)
            engine.wait_healthy(PROJECT, services, timeout_s=300)
        finally:
            watch.stop()
        return time.monotonic() - start, watch

    def exec(self, service: str, *cmd: str, project: str = PROJECT) -> str:
        return run(["docker", "exec", engine.container(project, service)["Id"], *cmd])

    def psql(self, sql: str) -> list[list[str]]:
        out = self.exec("postgres", "psql", "-U", "hprobust", "-d", "mlflow", "-tA", "-c", sql)
        return [line.split("|") for line in out.splitlines() if line]

    def ray_nodes(self) -> list[dict[str, Any]]:
        """The cluster's live nodes, from a driver started in the head container."""
        code = (
            "import json, ray; ray.init(address='auto', logging_level='ERROR', "
            "log_to_driver=False); print(json.dumps([{'id': n['NodeID'], 'ip': "
            "n['NodeManagerAddress'], 'cpus': n['Resources'].get('CPU', 0)} for n in "
            "ray.nodes() if n['Alive']]))"
        )
        return json.loads(self.exec("ray-head", "python", "-c", code).splitlines()[-1])

    # -- the API ---------------------------------------------------------------------------
    def post_study(self, body: str, content_type: str) -> str:
        headers = {"Content-Type": content_type, "Authorization": f"Bearer {self.token}"}
        created = self.api.post("/studies", content=body, headers=headers)
        check(created.status_code == 202, f"POST /studies: {created.status_code} {created.text}")
        return created.json()["id"]

    def study(self, study_id: str) -> dict[str, Any]:
        got = self.api.get(f"/studies/{study_id}")
        check(got.status_code == 200, f"GET /studies/{study_id}: {got.status_code} {got.text}")
        return got.json()

    def trials(self, study_id: str) -> list[dict[str, Any]]:
        got = self.api.get(f"/studies/{study_id}/trials")
        check(got.status_code == 200, f"GET trials: {got.status_code} {got.text}")
        return got.json()["data"]

    def follow(self, study_id: str, timeout_s: float, on_progress: Any = None) -> dict:
        """Poll the study until it ends; ``on_progress(record)`` after every poll."""
        deadline, last = time.monotonic() + timeout_s, None
        while True:
            record = self.study(study_id)
            seen = (record["status"], json.dumps(record["progress"], sort_keys=True))
            if seen != last:
                p = record["progress"]
                log(
                    f"  {study_id}: {record['status']}, {p['finished']}/{p['total']} finished,"
                    f" {p['running']} running, {p['failed']} failed"
                )
                last = seen
            if record["status"] in ("finished", "failed", "cancelled"):
                check(
                    record["status"] == "finished",
                    f"study {study_id} ended {record['status']}: {record.get('error')}",
                )
                return record
            if on_progress is not None:
                on_progress(record)
            check(time.monotonic() < deadline, f"study {study_id} not finished in {timeout_s}s")
            time.sleep(1.0)


# -- phases ------------------------------------------------------------------------------------
def build(stack: Stack) -> tuple[float, float]:
    """Base images and the three images; returns (seconds, GB of the images)."""
    from tests.compose import local_index

    start = time.monotonic()
    log("base images: docker/offline/make-base-images.sh (kept between runs)")
    run(["bash", "docker/offline/make-base-images.sh", "python"], timeout=1200)
    bridge = json.loads(run(["docker", "network", "inspect", "bridge"]))[0]
    ipam = bridge["IPAM"]["Config"][0]  # Docker 20.10 names the subnet only
    gateway = ipam.get("Gateway") or str(next(ipaddress.ip_network(ipam["Subnet"]).hosts()))
    try:
        port = free_port(INDEX_PORT, INDEX_PORT)
    except Failed:  # taken: another port (the pip layers are then built again)
        port = free_port()
    server, index_url = local_index.serve(gateway, port, CACHE / "pypi")
    before = {image: _image_id(image) for image in IMAGES}
    log(f"building the images with `compose build` (package index {index_url})")
    args = ["build", "--force-rm"]
    for arg in (
        f"PYTHON_IMAGE={PYTHON_BASE}",
        f"PIP_INDEX_URL={index_url}",
        f"PIP_TRUSTED_HOST={gateway}",
        f"TORCH_INDEX_URL={index_url}",
        "TORCH_VARIANT=",  # this machine's mirror has torch's default (CUDA) build only
    ):
        args += ["--build-arg", arg]
    try:
        # The Ray and MLflow images and the PostgreSQL base side by side (downloads overlap
        # the others' CPU work), then every service: the API's and the other Ray services'
        # images from the Ray image's layers.
        with ThreadPoolExecutor(max_workers=3) as pool:
            jobs = [
                pool.submit(stack.project, *args, service, timeout=2400)
                for service in ("ray-head", "mlflow")
            ]
            base = ["bash", "docker/offline/make-base-images.sh", "postgres"]
            jobs.append(pool.submit(run, base, timeout=1200))
            for job in jobs:
                job.result()
        stack.project(*args, timeout=2400)
    finally:
        server.shutdown()
    for image, old in before.items():  # the previous build's image, now untagged
        if old and old != _image_id(image):
            run(["docker", "rmi", old], check=False)
    sizes = json.loads(run(["docker", "image", "inspect", *IMAGES]))
    check(
        all(s["Config"]["User"] not in ("", "root", "0") for s in sizes),
        "an image runs as root",
    )
    total = run(["docker", "system", "df", "--format", "{{.Type}} {{.Size}}"]).splitlines()
    log(f"built in {minutes(time.monotonic() - start)}; docker disk use: {total[0]}")
    return time.monotonic() - start, max(s["Size"] for s in sizes) / 1e9


def _image_id(image: str) -> str | None:
    out = run(["docker", "image", "inspect", "--format", "{{.Id}}", image], check=False)
    return out.strip() or None


def bring_up(stack: Stack) -> float:
    log(f"up: docker-compose.yml + docker/compose.cpu.yml, project {PROJECT}")
    seconds, watch = stack.up(SERVICES)
    for dependency, dependent in START_ORDER:
        healthy, started = watch.healthy_at(dependency), watch.started.get(dependent)
        check(
            healthy is not None and started is not None and healthy <= started,
            f"start order: {dependent} started at {started}, {dependency} healthy at {healthy}",
        )
    log(
        f"healthy in {seconds:.0f} s, in the documented order: "
        + ", ".join(f"{a} -> {b}" for a, b in START_ORDER)
    )
    for path in ("/healthz", "/readyz"):
        got = stack.api.get(path)
        check(got.status_code == 200, f"GET {path}: {got.status_code} {got.text}")
    return seconds


def check_ports(stack: Stack) -> None:
    expected = {
        ("api", "8000/tcp", str(stack.api_port)),
        ("mlflow", "5000/tcp", str(stack.mlflow_port)),
    }
    found = engine.published(PROJECT)
    check(
        {(s, p, port) for s, p, _host, port in found} == expected,
        f"published ports: {sorted(found)}, expected only {sorted(expected)}",
    )
    mlflow_hosts = {host for s, _p, host, _port in found if s == "mlflow"}
    check(mlflow_hosts == {"127.0.0.1"}, f"MLflow UI published on {mlflow_hosts}")
    log(
        "published: the API (token required) and the MLflow UI on 127.0.0.1 only; Ray's "
        "ports and PostgreSQL are not"
    )


def auth(stack: Stack, spec: str) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}):
        got = stack.api.post(
            "/studies", content=spec, headers={"Content-Type": "application/yaml", **headers}
        )
        check(got.status_code == 401, f"POST without a valid token: {got.status_code}")
    check(stack.api.get("/studies").json()["count"] == 0, "a refused POST left a study behind")
    log("POST /studies: 401 without the token and with a wrong one, nothing created")


def study_with_a_killed_worker(stack: Stack, spec: str) -> tuple[str, float, dict]:
    """POST, kill the Ray worker mid-study, let compose start it again, follow to the end."""
    start = time.monotonic()
    study_id = stack.post_study(spec, "application/yaml")
    log(f"POST /studies with the token: 202, study {study_id}")
    event: dict[str, Any] = {}

    def kill_mid_study(record: dict[str, Any]) -> None:
        p = record["progress"]
        if event or p["finished"] < 3 or p["running"] < 1:
            return
        worker = engine.container(PROJECT, "ray-cpu-worker")
        running = [t for t in stack.trials(study_id) if t["status"] == "running"]
        event["before"] = {t.get("node_id") for t in stack.trials(study_id)} - {None}
        run(["docker", "kill", worker["Id"]])
        event["at"] = f"{p['finished']}/{p['total']} finished, {len(running)} running"
        log(f"  docker kill the ray-cpu-worker container at {event['at']}")
        time.sleep(5)
        state = engine.container(PROJECT, "ray-cpu-worker")["State"]
        check(not state["Running"], "the killed worker is running again by itself")
        # `docker kill` counts as a manual stop: the restart policy leaves it; compose
        # brings the service back to its declared state.
        restarted = time.monotonic()
        stack.project("up", "-d", "--no-recreate")
        engine.wait_healthy(PROJECT, SERVICES, timeout_s=180)
        event["back_s"] = time.monotonic() - restarted
        log(f"  compose up -d: ray-cpu-worker healthy again after {event['back_s']:.0f} s")

    record = stack.follow(study_id, timeout_s=1200, on_progress=kill_mid_study)
    check(event, "the study finished before the worker could be killed mid-study")
    seconds = time.monotonic() - start
    rows = stack.trials(study_id)
    check(
        len(rows) == record["total_trials"], f"{len(rows)} trial rows for {record['total_trials']}"
    )
    points = Counter((r["arm"], r["lr"], r["init"], r["init_scale"], r["seed"]) for r in rows)
    check(max(points.values()) == 1, f"a trial recorded twice: {points.most_common(1)}")
    statuses = Counter(r["status"] for r in rows)
    # A trial whose node died is retried once (the spec's FailureConfig(max_failures=1)); a
    # retry that hits the dying node again is recorded failed, with the error: never left
    # RUNNING, never recorded twice.
    check(set(statuses) <= {"finished", "failed"}, f"trial statuses {dict(statuses)}")
    check(statuses["finished"] >= len(rows) - 2, f"trial statuses {dict(statuses)}")
    failed = [r for r in rows if r["status"] == "failed"]
    for row in failed:
        check(row.get("error"), f"a failed trial without its error: {row}")
        log(f"  trial {row['key']} failed twice (its node was killed): {row['error'][-160:]!r}")
    nodes = Counter(r.get("node_id") for r in rows if r["status"] == "finished")
    check(None not in nodes, "a finished trial row without its Ray node id")
    after = set(nodes) - event["before"]
    check(after, f"no trial ran on the restarted worker (nodes {dict(nodes)})")
    event["nodes"] = nodes
    log(
        f"finished in {seconds:.0f} s: {len(rows)} trials, each once, none running, "
        f"{len(failed)} failed; "
        f"Ray nodes {[f'{n[:8]}:{c}' for n, c in nodes.items()]} (the restarted worker is a "
        f"new node)"
    )
    return study_id, seconds, record


def study_outputs(stack: Stack, study_id: str, total: int) -> None:
    summary = stack.api.get(f"/studies/{study_id}/summary")
    check(summary.status_code == 200, f"summary: {summary.status_code} {summary.text[:300]}")
    body = summary.json()
    check(body["partial"] is False and set(body["arms"]) == {"sgd", "insgd"}, "summary arms")
    check(body["settings"]["n_rows"] == total, f"summary rows {body['settings']['n_rows']}")
    report = stack.api.get(f"/studies/{study_id}/report")
    check(
        report.status_code == 200 and study_id in report.text and "<html" in report.text.lower(),
        f"report page: {report.status_code}",
    )
    plots = stack.study(study_id)["links"]["plots"]
    check(len(plots) >= 3, f"plot links: {plots}")
    for stem, url in plots.items():
        plot = stack.api.get(url)
        check(
            plot.status_code == 200
            and plot.content.startswith(b"\x89PNG")
            and len(plot.content) > 5000,
            f"plot {stem}: {plot.status_code}, {len(plot.content)} bytes",
        )


def client_commands(stack: Stack, study_id: str, workdir: Path) -> None:
    """The ``hprobust`` client (this checkout's) against the compose API's URL, from a folder
    with no store, output a pipe: the study listed, its status and summary whole, the trials
    CSV the API's."""
    hprobust = str(Path(sys.executable).parent / "hprobust")
    url = f"http://127.0.0.1:{stack.api_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPROBUST_")}
    env.update(HPROBUST_URL=url, HPROBUST_API_TOKEN=stack.token, COLUMNS="60")
    folder = workdir / "client"
    folder.mkdir(exist_ok=True)

    def run(*args: str) -> str:
        done = subprocess.run(
            [hprobust, *args], cwd=folder, env=env, capture_output=True, text=True, timeout=120
        )
        check(done.returncode == 0, f"hprobust {' '.join(args)}: {done.returncode} {done.stderr}")
        return done.stdout

    listed = [line for line in run("studies").splitlines() if study_id in line]
    check(len(listed) == 1 and "finished" in listed[0], f"hprobust studies: {listed}")
    status = run("status", study_id).splitlines()
    check("status:    finished" in status, f"hprobust status: {status}")
    verdict = [line for line in status if line.startswith("verdict:   ")]
    check(verdict and "insgd vs sgd" in verdict[0], f"hprobust status verdict: {verdict}")
    summary = run("summary", study_id)
    check(verdict[0].removeprefix("verdict:   ") in summary.splitlines(), "hprobust summary")
    csv_cli = run("trials", study_id, "--format", "csv")
    csv_api = stack.api.get(f"/studies/{study_id}/trials", params={"format": "csv"}).text
    check(sorted(csv_cli.splitlines()) == sorted(csv_api.splitlines()), "trials CSV differs")


def mlflow_records(stack: Stack, study_id: str, record: dict[str, Any]) -> dict[str, Any]:
    """The study's runs as the MLflow UI's server, PostgreSQL and the artifact volume hold
    them; returns the study run."""
    ui = stack.mlflow.get("/")
    check(ui.status_code == 200 and "mlflow" in ui.text.lower(), f"MLflow UI: {ui.status_code}")
    # Behind MLflow's basic-auth app (issue 21, Q4/Q5): nothing without an account, no change
    # with the reader's; the API and the drivers wrote all of this as the writer.
    anonymous = stack.anonymous_mlflow.get("/api/2.0/mlflow/experiments/search?max_results=5")
    check(anonymous.status_code == 401, f"MLflow without an account: {anonymous.status_code}")
    got = stack.mlflow.get(
        "/api/2.0/mlflow/experiments/get",
        params={"experiment_id": record["experiment_id"]},
    )
    check(got.status_code == 200, f"MLflow experiment: {got.status_code} {got.text[:300]}")
    experiment_id = got.json()["experiment"]["experiment_id"]
    check(experiment_id == record["experiment_id"], "the API's experiment is not MLflow's")
    for client, want in ((stack.anonymous_mlflow, 401), (stack.mlflow, 403)):
        deleted = client.post(
            "/api/2.0/mlflow/experiments/delete", json={"experiment_id": experiment_id}
        )
        check(deleted.status_code == want, f"MLflow delete answered {deleted.status_code}")
    runs = stack.mlflow.post(
        "/api/2.0/mlflow/runs/search", json={"experiment_ids": [experiment_id], "max_results": 500}
    ).json()["runs"]
    kinds = Counter(
        next(t["value"] for t in r["data"]["tags"] if t["key"] == "hprobust.kind") for r in runs
    )
    check(kinds == {"trial": record["total_trials"], "study": 1}, f"MLflow runs: {dict(kinds)}")
    failed = sum(t["status"] == "failed" for t in stack.trials(study_id))
    want = {"FINISHED": record["total_trials"] + 1 - failed, "FAILED": failed}
    by_status = Counter(r["info"]["status"] for r in runs)
    check(by_status == Counter(want) + Counter(), f"MLflow run statuses {dict(by_status)}")
    check(
        all(r["info"]["artifact_uri"].startswith("mlflow-artifacts:/") for r in runs),
        "a run's artifacts do not go through the tracking server's proxy",
    )
    study_run = next(
        r for r in runs if {"key": "hprobust.kind", "value": "study"} in r["data"]["tags"]
    )
    # PostgreSQL holds the same runs.
    rows = stack.psql(
        "select r.status, count(*), count(distinct t.value) from runs r "
        "join experiment_tags e on e.experiment_id = r.experiment_id "
        "and e.key = 'hprobust.study_id' "
        "left join tags t on t.run_uuid = r.run_uuid and t.key = 'hprobust.trial_key' "
        f"where e.value = '{study_id}' and r.lifecycle_stage = 'active' "
        "group by r.status order by r.status"
    )
    check(
        {status: int(n) for status, n, _keys in rows} == Counter(want) + Counter()
        and sum(int(keys) for _s, _n, keys in rows) == record["total_trials"],
        f"PostgreSQL runs of the study: {rows}",
    )
    # The artifacts are files in the MLflow server's volume, owned by its non-root user.
    run_dir = f"/mlartifacts/{experiment_id}/{study_run['info']['run_id']}/artifacts"
    files = stack.exec("mlflow", "find", run_dir, "-type", "f", "-printf", "%u %P\n").split("\n")
    names = {line.split(" ", 1)[1] for line in files if line}
    owners = {line.split(" ", 1)[0] for line in files if line}
    expected = {"summary.json", "trials.csv", "spec.yaml"}
    expected |= {f"plots/{stem}.png" for stem in record["links"]["plots"]}
    check(expected <= names and owners == {"mlflow"}, f"artifact volume: {sorted(files)}")
    log(
        f"MLflow: experiment {experiment_id} with {kinds['study']} study run and "
        f"{kinds['trial']} trial runs ({dict(by_status)}), in PostgreSQL; artifacts in the "
        f"mlflow-artifacts volume through the proxy"
    )
    return study_run


def mlflow_ui_in_chromium(
    stack: Stack, record: dict[str, Any], study_run: dict[str, Any], shots: Path
) -> None:
    """The link the API hands out opens the study's runs table in Chromium: its trial runs,
    flat, all counted, with the column of their rounded final accuracy (``acc``)."""
    from playwright import sync_api as playwright

    link = record["links"]["mlflow"]
    check(link and link.startswith(f"http://127.0.0.1:{stack.mlflow_port}/"), f"link {link}")
    name = "acc"  # a column of the study's view
    count = f"{record['total_trials']} matching runs"
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--headless", "--no-sandbox", "--disable-gpu"],
        )
        try:
            page = browser.new_page(
                viewport={"width": 1400, "height": 900},
                http_credentials={"username": stack.reader[0], "password": stack.reader[1]},
            )
            page.goto(link, wait_until="load")
            try:
                page.get_by_text(name, exact=True).first.wait_for(timeout=90_000)
                page.get_by_text(count).first.wait_for(timeout=30_000)
            except playwright.Error as exc:
                text = " ".join(page.inner_text("body").split())[:600]
                raise Failed(f"MLflow UI at {page.url}: no {name!r} / {count!r}: {text}") from exc
            finally:
                page.screenshot(path=str(shots / "mlflow-ui.png"))
        finally:
            browser.close()
    log(f"MLflow UI in Chromium ({link.split('?')[0]}): run {name!r}, {count}")


def crash_restart(stack: Stack) -> None:
    """A worker that dies by itself (not `docker stop`/`kill`) comes back by its restart
    policy: its init process is killed from the host, as the kernel's OOM killer would."""
    worker = engine.container(PROJECT, "ray-cpu-worker")
    run(["kill", "-9", str(worker["State"]["Pid"])])
    deadline = time.monotonic() + 60
    while engine.container(PROJECT, "ray-cpu-worker")["RestartCount"] <= worker["RestartCount"]:
        check(time.monotonic() < deadline, "a crashed worker was not restarted (restart policy)")
        time.sleep(1)
    engine.wait_healthy(PROJECT, SERVICES, timeout_s=180)
    log("a crashed ray-cpu-worker (SIGKILL from the host) was restarted by restart: unless-stopped")


def offline_dataset_copy(stack: Stack, workdir: Path) -> None:
    """The README's step for CIFAR-10 on an offline host, word for word, with a stand-in
    archive (CIFAR-10 itself cannot be downloaded here): it lands in the shared volume's
    dataset folder, owned by the images' user."""
    archive = workdir / "cifar-10-python.tar.gz"
    content = b"stand-in for the CIFAR-10 archive\n"
    with tarfile.open(archive, "w:gz") as tar:
        member = tarfile.TarInfo("cifar-10-batches-py/readme.html")
        member.size = len(content)
        tar.addfile(member, io.BytesIO(content))
    archive.chmod(0o644)
    stack.project(
        "run", "--rm", "-T", "--no-deps", "-v", f"{archive}:/tmp/cifar.tgz:ro",
        "--entrypoint", "sh", "ray-head", "-c",
        "mkdir -p /data/datasets && tar -xzf /tmp/cifar.tgz -C /data/datasets",
    )  # fmt: skip
    path = "/data/datasets/cifar-10-batches-py/readme.html"
    owner = stack.exec("ray-cpu-worker", "stat", "-c", "%u", path).strip()
    check(owner == "1000", f"{path} is owned by uid {owner}, not the images' user 1000")
    stack.exec("ray-cpu-worker", "rm", "-r", "/data/datasets/cifar-10-batches-py")
    log(
        "the README's offline CIFAR-10 step puts the archive's files into the workers' "
        "/data/datasets, owned by uid 1000"
    )


def restart_keeps_everything(stack: Stack, study_id: str, study_run: dict) -> float:
    start = time.monotonic()
    stack.project("down")
    left = engine.containers(PROJECT)
    check(not left, f"containers left after down: {[c['Name'] for c in left]}")
    volumes = run(
        ["docker", "volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}"]
    ).split()
    check(len(volumes) == 4, f"volumes after down (without -v): {volumes}")
    # Up again, and at once as the main host of a multi-host cluster (one restart, not two).
    enter_multihost(stack)
    stack.up(["postgres", "mlflow", "ray-head", "api"], "--scale", "ray-cpu-worker=0")
    record = stack.study(study_id)
    check(record["status"] == "finished", f"after the restart the study is {record['status']}")
    study_outputs(stack, study_id, record["total_trials"])
    run_id, experiment_id = study_run["info"]["run_id"], record["experiment_id"]
    artifact = stack.mlflow.get(
        f"/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts/summary.json"
    )
    check(artifact.status_code == 200, f"artifact through the proxy: {artifact.status_code}")
    served = stack.api.get(f"/studies/{study_id}/summary").json()
    check(artifact.json()["arms"].keys() == served["arms"].keys(), "summary.json differs from API")
    seconds = time.monotonic() - start
    log(
        f"down (volumes kept) and up in {seconds:.0f} s: the study, its runs, summary, plots "
        "and artifacts are served again (the head now on host networking)"
    )
    return seconds


def pick_link_subnet() -> ipaddress.IPv4Network:
    used = [
        ipaddress.ip_network(cfg["Subnet"])
        for net in json.loads(
            run(["docker", "network", "inspect", *run(["docker", "network", "ls", "-q"]).split()])
        )
        for cfg in (net.get("IPAM") or {}).get("Config") or []
        if ":" not in cfg.get("Subnet", ":")
    ]
    routes = run(["ip", "-4", "route"], check=False).split()
    used += [ipaddress.ip_network(w, strict=False) for w in routes if "/" in w]
    for third in range(250, 200, -1):
        candidate = ipaddress.ip_network(f"172.31.{third}.0/24")
        if not any(candidate.overlaps(u) for u in used):
            return candidate
    raise Failed("no free /24 in 172.31.201-250 for the link network")


def enter_multihost(stack: Stack) -> None:
    """The next `up` runs the main host of a multi-host cluster (docker/compose.multihost.yml):
    the head on host networking at the gateway address of an internal Docker network that
    plays the private network between the hosts."""
    subnet = pick_link_subnet()
    gateway = str(next(subnet.hosts()))
    run(
        [
            "docker",
            "network",
            "create",
            "--internal",
            "--subnet",
            str(subnet),
            "--gateway",
            gateway,
            "--label",
            "hprobust-compose-test=1",
            LINK_NETWORK,
        ]
    )
    # The GCS port: free here, and outside Ray's worker port range (10002-19999).
    stack.multihost = {"HEAD_IP": gateway, "RAY_GCS_PORT": str(free_port(26379, 26479))}
    log(
        f"multi-host: head on host networking at {gateway} (network {LINK_NETWORK}, "
        f"{subnet}, internal), GCS port {stack.multihost['RAY_GCS_PORT']}"
    )


def multihost(stack: Stack, spec: dict[str, Any]) -> float:
    """A second host joins from the private network; a study's trials run on it."""
    gateway = stack.multihost["HEAD_IP"]
    stack.worker_project("up", "-d", "ray-cpu-worker")
    engine.wait_healthy(WORKER_PROJECT, ["ray-cpu-worker"], timeout_s=180)
    worker = engine.container(WORKER_PROJECT, "ray-cpu-worker")
    worker_ip = engine.ip_on(worker).get(LINK_NETWORK)
    check(worker_ip, f"the second host's worker is not on {LINK_NETWORK}")
    # What the second host reaches: the head, and nothing of the main stack's network.
    targets = [("head GCS", gateway, int(stack.multihost["RAY_GCS_PORT"]))]
    for service, port in (("mlflow", 5000), ("postgres", 5432), ("api", 8000)):
        for ip in engine.ip_on(engine.container(PROJECT, service)).values():
            targets.append((service, ip, port))
    code = (
        "import json, socket, sys\nout = {}\nfor name, host, port in json.loads(sys.argv[1]):\n"
        "    s = socket.socket(); s.settimeout(3)\n"
        "    try:\n        s.connect((host, port)); out[f'{name} {host}:{port}'] = True\n"
        "    except OSError:\n        out[f'{name} {host}:{port}'] = False\n"
        "    finally:\n        s.close()\nprint(json.dumps(out))\n"
    )
    reach = json.loads(
        run(["docker", "exec", worker["Id"], "python", "-c", code, json.dumps(targets)])
    )
    check(
        [ok for ok in reach.values()] == [True] + [False] * (len(reach) - 1),
        f"the second host should reach the head only: {reach}",
    )
    nodes = stack.ray_nodes()
    remote = [n for n in nodes if n["ip"] == worker_ip]
    check(len(remote) == 1 and len(nodes) == 2, f"Ray nodes: {nodes}")
    log(
        f"second host {WORKER_PROJECT} joined from {worker_ip}: it reaches the head only "
        f"({', '.join(k for k, v in reach.items() if not v)} closed); node {remote[0]['id'][:8]}"
    )
    start = time.monotonic()
    study_id = stack.post_study(json.dumps(spec), "application/json")
    log(f"POST a second study {study_id} ({stack.study(study_id)['total_trials']} trials)")
    stack.follow(study_id, timeout_s=900)
    seconds = time.monotonic() - start
    rows = stack.trials(study_id)
    where = Counter((r.get("node_id"), r.get("node_ip")) for r in rows)
    check(
        set(where) == {(remote[0]["id"], worker_ip)},
        f"trials ran on {dict(where)}, expected the second host's node {remote[0]}",
    )
    log(
        f"its {len(rows)} trials ran on the second host (node id {remote[0]['id'][:8]}, "
        f"{worker_ip}) in {seconds:.0f} s"
    )
    return seconds


def teardown(stack: Stack | None, compose: list[str]) -> None:
    if stack is not None:
        with contextlib.suppress(Failed):
            stack.worker_project("down", "-v", "--remove-orphans", network="host")
        with contextlib.suppress(Failed):
            stack.project("down", "-v", "--remove-orphans")
        if stack.multihost:  # also the files of the single-host phase, in case
            saved, stack.multihost = stack.multihost, {}
            with contextlib.suppress(Failed):
                stack.project("down", "-v", "--remove-orphans")
            stack.multihost = saved
    run(["docker", "network", "rm", LINK_NETWORK], check=False)
    for label in (
        f"com.docker.compose.project={PROJECT}",
        f"com.docker.compose.project={WORKER_PROJECT}",
    ):
        for kind in ("volume", "network"):
            for name in run(["docker", kind, "ls", "-q", "--filter", f"label={label}"]).split():
                run(["docker", kind, "rm", name], check=False)
    left = [c["Name"] for p in (PROJECT, WORKER_PROJECT) for c in engine.containers(p)]
    if left:
        raise Failed(f"teardown left containers: {left}")


def diagnose(stack: Stack | None) -> None:
    if stack is None:
        return
    for project in (PROJECT, WORKER_PROJECT):
        for info in engine.containers(project):
            name = info["Name"].lstrip("/")
            logs = subprocess.run(
                ["docker", "logs", "--tail", "40", info["Id"]], capture_output=True, text=True
            )
            out = logs.stdout + logs.stderr
            state = info["State"]
            probes = (state.get("Health") or {}).get("Log") or []
            if probes:
                last = probes[-1]
                out += f"\n(last health probe: exit {last['ExitCode']}: {last['Output'][-500:]})"
            print(
                f"---- {name}: {state['Status']} health="
                f"{(state.get('Health') or {}).get('Status')} ----\n{out}",
                file=sys.stderr,
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="leave the stack up at the end")
    args = parser.parse_args(argv)
    log(
        "the GPU-host deployment under Docker (CPU override), end to end. Cost: 10 GB of disk "
        "and 11-30 min on a fresh 2-core machine (quiet to busy), about 7 min with the images "
        f"of an earlier run (kept, with the base images and the package cache in {CACHE})"
    )
    compose = engine.ensure_engine(log)
    version = run([*compose, "version", "--short"], check=False).strip()
    log(f"compose: {' '.join(compose)} ({version})")
    workdir = Path(tempfile.mkdtemp(prefix="hprobust-compose-test-"))
    shots = Path(tempfile.gettempdir()) / "hprobust-compose-test"
    shots.mkdir(exist_ok=True)
    stack: Stack | None = None
    failed = True
    figures: dict[str, str] = {}
    try:
        teardown(Stack(compose, workdir), compose)  # leftovers of an interrupted run
        stack = Stack(compose, workdir)
        build_s, image_gb = build(stack)
        figures["build"] = f"{minutes(build_s)} (largest image {image_gb:.1f} GB)"
        figures["healthy"] = f"{bring_up(stack):.0f}s"
        check_ports(stack)
        # The CI-sized example with one seed (20 trials), posted as YAML like a lab's file.
        spec = yaml.safe_load((ROOT / "examples" / "digits-quick.yaml").read_text())
        spec_text = yaml.safe_dump({**spec, "seeds": 1}, sort_keys=False)
        auth(stack, spec_text)
        study_id, study_s, record = study_with_a_killed_worker(stack, spec_text)
        figures["study"] = f"{study_s:.0f}s ({record['total_trials']} trials, worker killed)"
        study_outputs(stack, study_id, record["total_trials"])
        log("trials, summary, report page and three plots served by the API")
        client_commands(stack, study_id, workdir)
        log("hprobust studies/status/summary/trials against the compose API, in a pipe")
        study_run = mlflow_records(stack, study_id, record)
        mlflow_ui_in_chromium(stack, stack.study(study_id), study_run, shots)
        crash_restart(stack)
        offline_dataset_copy(stack, workdir)
        figures["restart"] = f"{restart_keeps_everything(stack, study_id, study_run):.0f}s"
        # A second, smaller one as JSON: 3 lrs x 1 init x 2 arms.
        spec.update(name="digits-second-host", seeds=1)
        spec["search"] = {
            **spec["search"],
            "lr": {"low": 0.01, "high": 1.0, "points_per_decade": 1},
            "init": ["kaiming_normal"],
        }
        figures["multi-host study"] = f"{multihost(stack, spec):.0f}s"
        again = stack.study(study_id)
        check(again["status"] == "finished", "the first study is not served in multi-host mode")
        failed = False
    except Exception as exc:
        if not isinstance(exc, Failed):
            traceback.print_exc()
        print(f"\ncompose-test FAILED: {exc}\n", file=sys.stderr)
        diagnose(stack)
    finally:
        if args.keep:
            log(f"--keep: the stack stays up (env file {stack.env_file if stack else '-'})")
        else:
            log("teardown: containers, networks and volumes of both projects")
            teardown(stack, compose)
    total = minutes(time.monotonic() - T0)
    line = ", ".join(f"{k} {v}" for k, v in figures.items())
    print(f"compose-test {'FAILED' if failed else 'PASSED'} in {total}: {line}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
