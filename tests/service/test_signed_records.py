"""Only studies the API created run (issue 10, defect 4; docs/design.md#reliability-rules), on the
real service (``hprobust serve``, real uvicorn, Ray head, SQLite MLflow).

Before: a study written straight into MLflow (experiment + study run with the service's tags,
no API token, no Ray token) was picked up by the scheduler within 8 s and run as a Ray job.
Now the API signs what it creates (``<data_dir>/secret`` here, whose path the drivers get),
the scheduler refuses a record whose signature does not hold, and it never becomes a job."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from study.records.ids import new_study_id
from study.records.signing import REFUSED
from tests.service.conftest import ServeProcess, tiny_spec, wait_for

pytestmark = pytest.mark.slow


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def forge(api: ServeProcess, **changes: Any) -> str:
    """A queued study written into the service's MLflow store the way the service lays it out
    (docs/design.md#reliability-rules), with mlflow's client and no API: what anyone with MLflow
    access can do."""
    import yaml
    from mlflow.tracking import MlflowClient

    from study.spec.study_spec import parse_spec

    client = MlflowClient(tracking_uri=f"sqlite:///{api.data_dir / 'mlflow.db'}")
    spec = parse_spec(tiny_spec(**changes))
    spec_dict = spec.model_dump(mode="json")
    study_id = new_study_id()
    experiment_id = client.create_experiment(
        f"hprobust-{study_id}",
        artifact_location=str(api.data_dir / "mlartifacts" / study_id),
        tags={
            "hprobust.study_id": study_id,
            "hprobust.name": spec.name,
            "hprobust.status": "queued",
            "hprobust.created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "hprobust.num_classes": str(spec.num_classes),
            "hprobust.total_trials": str(spec.total_trials),
            "hprobust.spec": json.dumps(spec_dict, sort_keys=True),
            "hprobust.signature": "v1:" + "0" * 64,  # a guess does not help either
        },
    )
    run = client.create_run(
        experiment_id, tags={"hprobust.kind": "study", "hprobust.study_id": study_id}
    )
    client.log_text(run.info.run_id, yaml.safe_dump(spec_dict), "spec.yaml")
    client.update_run(run.info.run_id, status="SCHEDULED")
    return study_id


def jobs_of(ray_head: Any, study_id: str) -> list[str]:
    from ray.job_submission import JobSubmissionClient

    headers = {"Authorization": f"Bearer {ray_head.extra['token']}"}
    client = JobSubmissionClient(ray_head.url, headers=headers)
    return [
        job.submission_id
        for job in client.list_jobs()
        if (job.metadata or {}).get("hprobust.study_id") == study_id
    ]


def status(api: ServeProcess, study_id: str) -> dict[str, Any]:
    r = httpx.get(f"{api.url}/studies/{study_id}", timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def test_a_study_forged_in_mlflow_never_runs(api: ServeProcess, ray_head: Any) -> None:
    study_id = forge(api, name="forged")
    state = wait_for(
        lambda: (s := status(api, study_id))["status"] != "queued" and s,
        timeout_s=180,
        what="the scheduler to look at the forged study",
    )
    assert state["status"] == "failed", state
    assert state["error"].startswith(REFUSED), state["error"]
    # the scheduler never submitted it, and nothing was recorded for it
    assert jobs_of(ray_head, study_id) == []
    assert state["progress"]["running"] == 0 and state["progress"]["finished"] == 0
    assert state["job"] is None


def test_a_study_the_api_created_passes_the_drivers_check(
    api: ServeProcess, api_token: str, ray_head: Any
) -> None:
    """The driver (a Ray job on the head) checks the signature with the secret file the API
    names in its environment, and runs the study."""
    r = httpx.post(
        f"{api.url}/studies", json=tiny_spec(name="genuine"), headers=auth(api_token), timeout=60
    )
    assert r.status_code == 202, r.text
    study_id = r.json()["id"]
    try:
        state = wait_for(
            lambda: (s := status(api, study_id))["status"] not in ("queued",) and s,
            timeout_s=300,
            what="the driver to start the study",
        )
        assert state["status"] in ("running", "finished"), (state, api.output()[-2000:])
        assert jobs_of(ray_head, study_id) == [study_id]
    finally:
        httpx.post(f"{api.url}/studies/{study_id}/cancel", headers=auth(api_token), timeout=120)


def test_the_service_secret_setting(tmp_path, monkeypatch) -> None:
    """HPROBUST_SECRET (32+ characters) or a file generated once into the data dir, whose path
    (never the secret) is what the drivers are handed."""
    import stat

    from pydantic import ValidationError

    from service.core.config import Settings

    monkeypatch.delenv("HPROBUST_SECRET", raising=False)
    with pytest.raises(ValidationError, match="secret must be at least 32 characters"):
        Settings(secret="too-short")
    settings = Settings(data_dir=tmp_path)
    secret = settings.signing_secret()
    path = tmp_path.resolve() / "secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Settings(data_dir=tmp_path).signing_secret() == secret  # reused
    assert settings.driver_env() == {"HPROBUST_SECRET_FILE": str(path)}
    given = Settings(data_dir=tmp_path / "other", secret="g" * 40)
    assert given.signing_secret() == b"g" * 40 and given.driver_env() == {}
    assert not (tmp_path / "other" / "secret").exists()
