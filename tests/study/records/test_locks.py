"""The creation lock across processes (issue 21, item 7, "the creation lock is per API
process"): several processes creating a study on one store at the same moment, on SQLite and
on PostgreSQL, each a real ``StudyStore`` in a process of its own, released together."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from study.records.ids import new_study_id

pytestmark = pytest.mark.slow

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "test"}
SPEC = {
    "name": "locked",
    "dataset": "digits",
    "model": {"name": "mlp", "hidden": [8]},
    "arms": [{"name": "sgd", "optimizer": "sgd"}],
    "search": {"lr": {"low": 1e-2, "high": 1.0}, "init": ["normal"]},
    "trials_per_arm": 2,
}

#: One creator: opens its store, says it is ready, waits for the go file, creates the study
#: and writes what happened (the study id, or the error) as JSON.
CREATOR = """
import json, sys, time
from pathlib import Path
from study.records.store import StudyStore
from study.spec.study_spec import parse_spec
uri, artifacts, spec, key, study_id, go, out = sys.argv[1:8]
store = StudyStore(uri, artifact_root=artifacts)
store.ping()
spec = parse_spec(json.loads(spec))
Path(out + ".ready").touch()
while not Path(go).exists():
    time.sleep(0.001)
try:
    record = store.create_study(spec, study_id or None, idempotency_key=key or None, wait_s=120)
    result = {"id": record.id}
except Exception as exc:
    result = {"error": type(exc).__name__, "message": str(exc)}
Path(out).write_text(json.dumps(result))
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def store_uri(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh store: a SQLite file, or a new database on the machine's PostgreSQL (dropped
    at the end); its schema made before any creator starts."""
    from study.records.store import StudyStore, sqlite_uri

    if request.param == "sqlite":
        uri = sqlite_uri(tmp_path)
        StudyStore(uri).ping()
        yield uri
        return
    import psycopg2

    name = f"hprobust_lock_{secrets.token_hex(4)}"
    conn = psycopg2.connect(**PG)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        uri = f"postgresql+psycopg2://{PG['user']}@{PG['host']}:{PG['port']}/{name}"
        StudyStore(uri, artifact_root=str(tmp_path / "mlartifacts")).ping()
        yield uri
    finally:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


def create_at_once(
    uri: str, tmp_path: Path, n: int, *, key: str = "", study_id: str = ""
) -> list[dict[str, Any]]:
    """Start ``n`` creator processes, release them together once all are ready, and return
    what each did."""
    go = tmp_path / "go"
    outs = [tmp_path / f"creator-{i}.json" for i in range(n)]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                CREATOR,
                uri,
                str(tmp_path / "mlartifacts"),
                json.dumps(SPEC),
                key,
                study_id,
                str(go),
                str(out),
            ],
            env=dict(os.environ),
            start_new_session=True,
        )
        for out in outs
    ]
    try:
        deadline = time.monotonic() + 180
        while not all(Path(f"{out}.ready").exists() for out in outs):
            assert all(p.poll() is None for p in procs), "a creator exited before it was ready"
            assert time.monotonic() < deadline, "the creators did not get ready in 180 s"
            time.sleep(0.05)
        go.touch()
        for proc in procs:
            assert proc.wait(180) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    return [json.loads(out.read_text()) for out in outs]


def experiments(uri: str, where: str) -> list[Any]:
    """Every experiment (deleted ones too) matching the MLflow filter ``where``."""
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri).search_experiments(
        view_type=ViewType.ALL, filter_string=where, max_results=1000
    )


def test_concurrent_creations_with_one_idempotency_key_make_one_study(
    store_uri: str, tmp_path: Path
) -> None:
    """Issue 21, item 7 (the creation lock across API replicas): the lock that makes the key's
    lookup and the creation one step was a lock per process, so creators in two processes
    both found the key unused and each recorded a study. Now the lock is the store's (a file
    lock beside the SQLite database, an advisory lock in PostgreSQL): one study, and every
    creator answers with its id."""
    results = create_at_once(store_uri, tmp_path, 3, key="one-key-for-all")
    ids = {r.get("id") for r in results}
    assert len(ids) == 1 and None not in ids, results
    found = experiments(store_uri, "tags.`hprobust.idempotency` = 'one-key-for-all'")
    assert [e.tags["hprobust.study_id"] for e in found] == list(ids)
    assert found[0].tags["hprobust.status"] == "queued"
    assert found[0].lifecycle_stage == "active"


def test_concurrent_creations_of_one_study_id_make_one_study(
    store_uri: str, tmp_path: Path
) -> None:
    """Issue 21, item 7: two processes creating the same study id at once. One records it;
    the other is told the id is taken (a ConfigError naming it), not a store's raw error."""
    study_id = new_study_id()
    results = create_at_once(store_uri, tmp_path, 2, study_id=study_id)
    assert sorted(r.get("id", r.get("error")) for r in results) == sorted(
        [study_id, "ConfigError"]
    ), results
    (refused,) = [r for r in results if "error" in r]
    assert f"study_id must be new, got {study_id!r}" in refused["message"]
    found = experiments(store_uri, f"tags.`hprobust.study_id` = '{study_id}'")
    assert len(found) == 1 and found[0].tags["hprobust.status"] == "queued"
