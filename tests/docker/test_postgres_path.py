"""The GPU-host path, run natively: ``mlflow server`` on PostgreSQL started with the compose
file's own command, a token-authenticated Ray head, and the API started with the compose
file's own command and environment, pointed at both. A digits study goes from POST to
summary; its runs land in PostgreSQL and its artifacts go through MLflow's artifact proxy.

Only what cannot be the same outside Docker is rewritten, and the test asserts that: service
host names become 127.0.0.1, container ports free ports, container paths temp folders. MLflow
runs its basic-auth app with the configuration docker/mlflow.Dockerfile bakes in (its user
store in a temp folder); the API and the study drivers write as the writer account (issue 21,
Q4/Q5), so the drivers get their own Ray head with that account in its environment, as
compose's ray-head has it."""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg2
import pytest

from service.stack import Child, free_port, spawn
from tests.docker import compose
from tests.service.conftest import TINY_SPEC, wait_for

pytestmark = pytest.mark.slow

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "test"}
BIN = Path(sys.executable).parent
#: .env's MLflow accounts (compose requires them).
ACCOUNTS = {
    "MLFLOW_WRITER_PASSWORD": secrets.token_urlsafe(18),
    "MLFLOW_FLASK_SECRET_KEY": secrets.token_urlsafe(32),
    "HPROBUST_MLFLOW_READER_PASSWORD": secrets.token_urlsafe(18),
}

#: The other secrets compose requires of ray-head (values that do not matter here).
FULL_SECRETS = {"RAY_AUTH_TOKEN": "unused", "HPROBUST_SECRET": "s" * 32}


def baked_auth_config(auth_dir: Path) -> Path:
    """docker/mlflow.Dockerfile's basic_auth.ini (the lines its printf writes), its user store
    moved from /mlauth to ``auth_dir``."""
    import re

    text = (compose.ROOT / "docker" / "mlflow.Dockerfile").read_text().replace("\\\n", " ")
    printf = re.search(r"printf '%s\\n' (.+?) > /etc/mlflow/basic_auth.ini", text, re.S)
    assert printf, "docker/mlflow.Dockerfile writes no basic_auth.ini"
    lines = re.findall(r"'([^']*)'", printf.group(1))
    path = auth_dir / "basic_auth.ini"
    path.write_text("\n".join(lines).replace("/mlauth", str(auth_dir)) + "\n")
    return path


def _rewrite(argv: list[str], table: dict[str, str]) -> list[str]:
    out = []
    for arg in argv:
        for old, new in table.items():
            arg = arg.replace(old, new)
        out.append(arg)
    return out


def _differences(a: list[str], b: list[str]) -> list[tuple[str, str]]:
    assert len(a) == len(b), (a, b)
    return [(x, y) for x, y in zip(a, b, strict=True) if x != y]


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    """A fresh database on the machine's PostgreSQL (dropped at the end)."""
    name = f"hprobust_{secrets.token_hex(4)}"
    conn = psycopg2.connect(**PG)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


@pytest.fixture(scope="module")
def mlflow_server(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    env = {"POSTGRES_USER": PG["user"], "POSTGRES_PASSWORD": "unused", "POSTGRES_DB": database}
    svc = compose.service("mlflow", {**env, **ACCOUNTS})
    command = svc["command"]
    auth_dir = tmp_path_factory.mktemp("mlauth")
    port = free_port()
    artifacts = tmp_path_factory.mktemp("mlartifacts")
    argv = _rewrite(
        command,
        {
            "@postgres:5432/": "@127.0.0.1:5432/",
            "/mlartifacts": str(artifacts),
            "0.0.0.0": "127.0.0.1",
            "mlflow:5000": f"127.0.0.1:{port}",
        },
    )
    argv[argv.index("--port") + 1] = str(port)
    argv[0] = str(BIN / argv[0])
    url = f"http://127.0.0.1:{port}"
    log = artifacts.parent / "mlflow-server.log"
    # timeout: MLflow's two uvicorn workers each import the whole server (90 s seen at load 9
    # on 2 cores; about 15 s idle)
    server_env = {
        **os.environ,
        **compose.environment(svc),
        "MLFLOW_AUTH_CONFIG_PATH": str(baked_auth_config(auth_dir)),
    }
    server = spawn(
        "mlflow",
        argv,
        env=server_env,
        log=log,
        url=url,
        ready_url=f"{url}/health",
        timeout_s=300,
    )
    try:
        yield {
            "url": url,
            "argv": argv,
            "compose": command,
            "artifacts": artifacts,
            "writer": (
                compose.environment(svc)["MLFLOW_AUTH_ADMIN_USERNAME"],
                ACCOUNTS["MLFLOW_WRITER_PASSWORD"],
            ),
        }
    finally:
        server.stop()


@pytest.fixture(scope="module")
def ray_head(
    mlflow_server: dict, signing_secret: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Child]:
    """A Ray head whose environment names the MLflow writer, as compose's ray-head does (the
    study drivers run there and write MLflow with it); stopped at the end of the module."""
    import shutil

    from service.stack import start_ray_head

    writer = compose.environment(compose.service("ray-head", {**FULL_SECRETS, **ACCOUNTS}))
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")}
    os.environ.update({k: writer[k] for k in saved})
    try:
        head = start_ray_head(num_cpus=2, log_dir=tmp_path_factory.mktemp("ray-logs"))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    try:
        yield head
    finally:
        head.stop(grace_s=15)
        shutil.rmtree(head.extra["temp_dir"], ignore_errors=True)


@pytest.fixture(scope="module")
def api(
    mlflow_server: dict,
    ray_head: Child,
    signing_secret: str,
    tmp_path_factory: pytest.TempPathFactory,
):
    token = secrets.token_urlsafe(24)
    dotenv = {
        "HPROBUST_API_TOKEN": token,
        # compose requires it; the same secret the Ray head's drivers have (tests/conftest.py)
        "HPROBUST_SECRET": signing_secret,
        "RAY_AUTH_TOKEN": ray_head.extra["token"],
        "POSTGRES_PASSWORD": "unused",
        **ACCOUNTS,
    }
    svc = compose.service("api", dotenv)
    data_dir = tmp_path_factory.mktemp("api-data")
    port = free_port()
    rewrites = {
        "http://ray-head:8265": ray_head.url,
        "http://mlflow:5000": mlflow_server["url"],
        "/data": str(data_dir),
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HPROBUST_", "RAY_"))}
    compose_env = compose.environment(svc)
    for key, value in compose_env.items():
        env[key] = _rewrite([value], rewrites)[0]
    env["PYTHONUNBUFFERED"] = "1"
    argv = _rewrite(svc["command"], {"0.0.0.0": "127.0.0.1", **rewrites})
    argv[argv.index("--port") + 1] = str(port)
    argv[0] = str(BIN / argv[0])
    url = f"http://127.0.0.1:{port}"
    log = data_dir / "api.log"
    server = spawn(
        "api", argv, env=env, log=log, url=url, ready_url=f"{url}/healthz", timeout_s=180
    )
    try:
        yield {
            "url": url,
            "token": token,
            "argv": argv,
            "compose": svc["command"],
            "env": env,
            "compose_env": compose_env,
            "log": log,
        }
    finally:
        server.stop()


def test_mlflow_runs_the_compose_command_on_postgresql(mlflow_server: dict, database: str):
    diffs = _differences(mlflow_server["compose"], mlflow_server["argv"])
    port = mlflow_server["url"].rsplit(":", 1)[1]
    allowed = {
        ("mlflow", str(BIN / "mlflow")),
        ("/mlartifacts", str(mlflow_server["artifacts"])),
        ("0.0.0.0", "127.0.0.1"),
        ("5000", port),
    }
    for compose_arg, ran in diffs:
        if compose_arg.startswith("postgresql+psycopg2://"):
            assert ran == compose_arg.replace("@postgres:5432/", "@127.0.0.1:5432/")
            assert ran.endswith(f"/{database}")
        elif compose_arg.startswith("mlflow:5000,"):
            assert ran == compose_arg.replace("mlflow:5000", f"127.0.0.1:{port}")
        else:
            assert (compose_arg, ran) in allowed, (compose_arg, ran)
    assert "--serve-artifacts" in mlflow_server["argv"]
    # MLflow created its schema in PostgreSQL.
    with psycopg2.connect(**{**PG, "dbname": database}) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'runs'")
        assert cur.fetchone() == (1,)


def test_api_runs_the_compose_command_and_environment(api: dict, ray_head: Child):
    diffs = _differences(api["compose"], api["argv"])
    port = api["url"].rsplit(":", 1)[1]
    assert sorted(diffs) == sorted(
        [("hprobust", str(BIN / "hprobust")), ("0.0.0.0", "127.0.0.1"), ("8000", port)]
        + [("/data", d) for c, d in diffs if c == "/data"]
    )
    for key, value in api["compose_env"].items():
        ran = api["env"][key]
        if ran != value:
            assert value.startswith(("http://ray-head:8265", "http://mlflow:5000", "/data")), key
    assert api["env"]["RAY_AUTH_MODE"] == "token"
    assert api["env"]["HPROBUST_RAY_ADDRESS"] == ray_head.url


def _post(api: dict, body: dict[str, Any], token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(f"{api['url']}/studies", json=body, headers=headers, timeout=60)


def test_digits_study_on_postgresql_backed_mlflow(api: dict, mlflow_server: dict, database: str):
    assert _post(api, TINY_SPEC, None).status_code == 401  # the compose API requires its token
    response = _post(api, {**TINY_SPEC, "name": "pg-digits"}, api["token"])
    assert response.status_code == 202, response.text
    study_id = response.json()["id"]

    def finished() -> dict | None:
        body = httpx.get(f"{api['url']}/studies/{study_id}", timeout=30).json()
        assert body["status"] not in ("failed", "cancelled"), (body, api["log"].read_text())
        return body if body["status"] == "finished" else None

    study = wait_for(finished, timeout_s=420, what=f"study {study_id} to finish", poll_s=2)
    total = TINY_SPEC["trials_per_arm"] * len(TINY_SPEC["arms"]) * TINY_SPEC["seeds"]
    assert study["progress"]["finished"] == total

    summary = httpx.get(f"{api['url']}/studies/{study_id}/summary", timeout=30).json()
    assert set(summary["arms"]) == {"sgd", "insgd"}
    assert summary["arms"]["sgd"]["n_trials"] == TINY_SPEC["trials_per_arm"]
    png = httpx.get(f"{api['url']}/studies/{study_id}/plots/expected_max.png", timeout=30)
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")

    # The records are in PostgreSQL: one experiment, the study run and one run per trial.
    with psycopg2.connect(**{**PG, "dbname": database}) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT experiment_id FROM experiment_tags WHERE key = 'hprobust.study_id' "
            "AND value = %s",
            (study_id,),
        )
        (experiment_id,) = cur.fetchone()
        cur.execute(
            "SELECT t.value, count(*) FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
            "WHERE r.experiment_id = %s AND r.lifecycle_stage = 'active' "
            "AND t.key = 'hprobust.kind' GROUP BY t.value",
            (experiment_id,),
        )
        assert dict(cur.fetchall()) == {"study": 1, "trial": total}
        cur.execute(
            "SELECT count(*) FROM runs WHERE experiment_id = %s AND status = 'RUNNING'",
            (experiment_id,),
        )
        assert cur.fetchone() == (0,)
    # MLflow asks for an account: none gets 401, the reader (the API set it up) reads and
    # cannot delete; everything above was written as the writer.
    search = f"{mlflow_server['url']}/api/2.0/mlflow/experiments/search?max_results=5"
    reader = ("reader", ACCOUNTS["HPROBUST_MLFLOW_READER_PASSWORD"])
    assert httpx.get(search, timeout=30).status_code == 401
    assert httpx.get(search, auth=reader, timeout=30).status_code == 200
    delete = f"{mlflow_server['url']}/api/2.0/mlflow/experiments/delete"
    r = httpx.post(delete, json={"experiment_id": str(experiment_id)}, auth=reader, timeout=30)
    assert r.status_code == 403
    # Artifacts went through the tracking server's proxy into its artifact folder.
    stored = {p.name for p in Path(mlflow_server["artifacts"]).rglob("*") if p.is_file()}
    assert {"spec.yaml", "summary.json", "trials.csv", "expected_max.png"} <= stored
