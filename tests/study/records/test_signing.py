"""Signed study records (study.records.signing; issue 10, defect 4): the secret, the signature,
and a study driver that refuses an unsigned or altered record before it starts anything (real
MLflow SQLite store; no Ray is needed: a refused study never gets that far)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import yaml

from study.driver import drive
from study.errors import ConfigError
from study.records.signing import (
    REFUSED,
    SECRET_ENV,
    SECRET_FILE_ENV,
    SignatureError,
    canonical_spec,
    driver_secret,
    holds,
    load_or_create_secret,
    service_secret,
    sign,
)
from study.records.store import StudyStore
from study.spec.study_spec import parse_spec

SPEC = {
    "name": "signed",
    "dataset": "digits",
    "model": {"name": "mlp", "hidden": [8]},
    "arms": [{"name": "sgd", "optimizer": "sgd"}],
    "search": {"lr": {"low": 1e-2, "high": 1.0}, "init": ["normal"]},
    "trials_per_arm": 2,
    "epochs": 1,
}
SECRET = b"k" * 40


def test_signature_covers_the_id_and_every_value_of_the_spec() -> None:
    spec = parse_spec(SPEC).model_dump(mode="json")
    signature = sign(SECRET, "s20990101-000000-abcdef", spec)
    assert signature.startswith("v2:") and len(signature) == 3 + 64
    legacy = sign(SECRET, "s20990101-000000-abcdef", spec, version="v1")  # before status seals
    assert legacy.startswith("v1:") and legacy[3:] != signature[3:]
    assert holds(SECRET, "s20990101-000000-abcdef", [spec], legacy)
    assert not holds(SECRET, "s20990101-000000-abcdef", [spec], "v2:" + legacy[3:])
    assert not holds(SECRET, "s20990101-000000-abcdef", [spec], "v9:" + signature[3:])
    assert holds(SECRET, "s20990101-000000-abcdef", [spec, dict(reversed(spec.items()))], signature)
    assert canonical_spec({"b": 1, "a": [1.5, None]}) == '{"a":[1.5,null],"b":1}'
    changed = {**spec, "epochs": 2}
    assert not holds(SECRET, "s20990101-000000-abcdef", [changed], signature)
    assert not holds(SECRET, "s20990101-000000-abcdef", [spec, changed], signature)
    assert not holds(SECRET, "s20990101-000000-abcdee", [spec], signature)
    assert not holds(b"x" * 40, "s20990101-000000-abcdef", [spec], signature)
    assert not holds(SECRET, "s20990101-000000-abcdef", [spec], None)
    assert not holds(SECRET, "s20990101-000000-abcdef", [], signature)
    assert not holds(SECRET, "s20990101-000000-abcdef", [{"x": float("nan")}], signature)


def test_the_generated_secret_is_private_made_once_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "data" / "secret"
    first = load_or_create_secret(path)
    assert len(first) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_secret(path) == first
    assert service_secret(None, tmp_path / "data") == first
    assert service_secret("e" * 32, tmp_path / "data") == b"e" * 32
    path.write_text("short\n")
    with pytest.raises(ConfigError, match="at least 32 characters"):
        load_or_create_secret(path)


def test_a_driver_reads_the_file_it_is_given_before_the_environment(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("f" * 40)
    assert driver_secret({SECRET_FILE_ENV: str(secret_file), SECRET_ENV: "e" * 40}) == b"f" * 40
    assert driver_secret({SECRET_ENV: "e" * 40}) == b"e" * 40
    with pytest.raises(SignatureError, match="no signing secret: set HPROBUST_SECRET"):
        driver_secret({})
    with pytest.raises(SignatureError, match="cannot read the signing secret"):
        driver_secret({SECRET_FILE_ENV: str(tmp_path / "missing")})
    with pytest.raises(ConfigError, match="at least 32"):
        driver_secret({SECRET_ENV: "short"})


@pytest.fixture
def signed(mlflow_sqlite_uri: str) -> tuple[StudyStore, str]:
    store = StudyStore(mlflow_sqlite_uri, secret=SECRET)
    record = store.create_study(parse_spec(SPEC))
    assert store.signature_problem(record.id) is None
    return store, record.id


def _drive(store: StudyStore, study_id: str, tmp_path: Path, secret: bytes = SECRET) -> None:
    drive(
        study_id,
        tracking_uri=store.tracking_uri,
        storage=str(tmp_path / "ray_results"),
        data_dir=str(tmp_path / "datasets"),
        secret=secret,
    )


def _assert_refused(store: StudyStore, study_id: str, why: str) -> None:
    record = store.get(study_id)
    assert record.status == "failed"
    assert record.error is not None and record.error.startswith(REFUSED) and why in record.error
    assert store.trial_runs(study_id) == []  # nothing ran
    run = store.client.get_run(store.study_run_id(study_id))
    assert run.info.status == "FAILED"


def test_a_driver_refuses_a_spec_tag_changed_after_signing(signed, tmp_path: Path) -> None:
    store, study_id = signed
    experiment_id = store.experiment_id(study_id)
    spec = json.loads(store.client.get_experiment(experiment_id).tags["hprobust.spec"])
    spec["epochs"] = 500
    store.client.set_experiment_tag(experiment_id, "hprobust.spec", json.dumps(spec))
    with pytest.raises(SignatureError, match="its id or spec was changed"):
        _drive(store, study_id, tmp_path)
    _assert_refused(store, study_id, "changed")


def test_a_driver_refuses_a_spec_yaml_changed_after_signing(signed, tmp_path: Path) -> None:
    store, study_id = signed
    spec = yaml.safe_load(store._read_artifact(study_id, "spec.yaml"))
    spec["trials_per_arm"] = 2000
    store.client.log_text(store.study_run_id(study_id), yaml.safe_dump(spec), "spec.yaml")
    with pytest.raises(SignatureError):
        _drive(store, study_id, tmp_path)
    _assert_refused(store, study_id, "changed")


def test_a_driver_refuses_a_study_another_secret_signed(signed, tmp_path: Path) -> None:
    store, study_id = signed
    with pytest.raises(SignatureError):
        _drive(store, study_id, tmp_path, secret=b"z" * 40)
    _assert_refused(store, study_id, "another secret")


def test_a_driver_refuses_an_unsigned_record(mlflow_sqlite_uri: str, tmp_path: Path) -> None:
    """A record written without the service's secret (as before signing, or by hand)."""
    unsigned = StudyStore(mlflow_sqlite_uri, secret=None)
    unsigned.secret = None  # the environment's (tests/conftest.py) is not this writer's
    study_id = unsigned.create_study(parse_spec(SPEC)).id
    tags = unsigned.client.get_experiment(unsigned.experiment_id(study_id)).tags
    assert "hprobust.signature" not in tags
    store = StudyStore(mlflow_sqlite_uri, secret=SECRET)
    with pytest.raises(SignatureError, match="no signature"):
        _drive(store, study_id, tmp_path)
    _assert_refused(store, study_id, "no signature")


def test_a_driver_without_a_secret_runs_nothing(signed, tmp_path: Path, monkeypatch) -> None:
    store, study_id = signed
    monkeypatch.delenv(SECRET_ENV, raising=False)
    monkeypatch.delenv(SECRET_FILE_ENV, raising=False)
    with pytest.raises(SignatureError, match="no signing secret"):
        drive(
            study_id,
            tracking_uri=store.tracking_uri,
            storage=str(tmp_path / "ray_results"),
            data_dir=str(tmp_path / "datasets"),
        )
    # it cannot seal the status it sets (issue 21, Q3): the service keeps the sealed one and
    # reports the tag (its scheduler retries the study, then fails it naming the driver's error)
    record = store.get(study_id)
    assert record.status == "queued"
    assert record.tampered is not None and record.tampered.startswith("status tag 'failed'")
    tags = store.client.get_experiment(store.experiment_id(study_id)).tags
    assert "HPROBUST_SECRET" in tags["hprobust.error"]
    assert store.trial_runs(study_id) == []
    assert os.environ.get(SECRET_ENV) is None
