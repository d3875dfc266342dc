"""Sealed statuses (issue 21, item 3: only the service changes state; probe Q3), on a real
MLflow SQLite store: the service seals every status it sets (study id, status, generation),
reads the sealed one back, and reports a status tag anyone else wrote instead of obeying it.

Q3 (before): with no credential, setting the MLflow tag ``hprobust.status=queued`` on a
cancelled study (through the MLflow UI or its REST API) made it queued again, and the
scheduler ran it: signatures covered the id and the spec, not the state. The scheduler's side
(a real ``hprobust serve`` and Ray head: nothing submitted, the tag set back, ``tampered``
shown) is tests/service/test_mlflow_login.py."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from study.driver import drive
from study.records.signing import (
    SEAL_GRACE_S,
    Seal,
    StatusSealError,
    open_seal,
    seal,
    seal_prefix,
    sign,
)
from study.records.store import StudyStore
from study.spec.study_spec import parse_spec
from study.vocab import LIVE

SPEC = {
    "name": "sealed",
    "dataset": "digits",
    "model": {"name": "mlp", "hidden": [8]},
    "arms": [{"name": "sgd", "optimizer": "sgd"}],
    "search": {"lr": {"low": 1e-2, "high": 1.0}, "init": ["normal"]},
    "trials_per_arm": 2,
    "epochs": 1,
}
SECRET = b"k" * 40
ID = "s20990101-000000-abcdef"


def tags(store: StudyStore, study_id: str) -> dict[str, str]:
    return store.client.get_experiment(store.experiment_id(study_id)).tags


def outsider(store: StudyStore):
    """What anyone with MLflow access has: a plain MLflow client on the same store, no secret
    (the MLflow UI writes through the same REST calls)."""
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=store.tracking_uri)


@pytest.fixture
def store(mlflow_sqlite_uri: str) -> StudyStore:
    return StudyStore(mlflow_sqlite_uri, secret=SECRET)


def test_a_seal_covers_the_id_the_status_and_the_generation() -> None:
    sealed = Seal("queued", 3, "cancelled", 1_900_000_000)
    text = seal(SECRET, ID, sealed)
    assert text.startswith(seal_prefix("queued")) and text.count(":") == 5
    assert open_seal(SECRET, ID, text) == sealed
    assert open_seal(b"z" * 40, ID, text) is None  # another secret
    assert open_seal(SECRET, "s20990101-000000-abcdee", text) is None  # another study
    parts = text.split(":")
    for index, value in ((1, "running"), (2, "4"), (3, "-"), (4, "1900000001")):
        forged = ":".join([*parts[:index], value, *parts[index + 1 :]])
        assert open_seal(SECRET, ID, forged) is None, forged
    assert open_seal(SECRET, ID, None) is None
    assert open_seal(SECRET, ID, "s1:queued") is None
    assert open_seal(SECRET, ID, "s1:queued:x:-:1:ab") is None
    with pytest.raises(ValueError, match="generation >= 1"):
        seal(SECRET, ID, Seal("queued", 0, None, 1))


def test_every_transition_is_sealed_one_generation_up(store: StudyStore) -> None:
    study_id = store.create_study(parse_spec(SPEC)).id
    first = open_seal(SECRET, study_id, tags(store, study_id)["hprobust.status_seal"])
    assert first == Seal("queued", 1, None, first.at)
    seen = [first]
    for status in ("running", "cancelled", "queued", "running", "finished"):
        store.set_status(study_id, status)
        now = open_seal(SECRET, study_id, tags(store, study_id)["hprobust.status_seal"])
        assert now is not None and now.status == status
        assert now.generation == seen[-1].generation + 1 and now.previous == seen[-1].status
        seen.append(now)
        assert tags(store, study_id)["hprobust.status"] == status
        state = store.state(study_id)
        assert state.status == status and state.tampered is None
    assert [s.generation for s in seen] == [1, 2, 3, 4, 5, 6]
    assert tags(store, study_id)["hprobust.signature"].startswith("v2:")


def test_q3_a_status_tag_set_from_outside_is_ignored_reported_and_set_back(
    store: StudyStore,
) -> None:
    """Q3: ``hprobust.status=queued`` set on a cancelled study through MLflow. The study stays
    cancelled (API, scheduler's query, driver), the tag is reported (``tampered``: a log line
    and ``hprobust.tampered``) and set back to the sealed status."""
    study_id = store.create_study(parse_spec(SPEC)).id
    store.set_status(study_id, "running")
    store.set_status(study_id, "cancelled")
    outsider(store).set_experiment_tag(store.experiment_id(study_id), "hprobust.status", "queued")

    fresh = StudyStore(store.tracking_uri, secret=SECRET)  # a restarted service, too
    for reader in (store, fresh):
        state = reader.state(study_id)
        assert state.status == "cancelled"
        assert state.tampered is not None
        assert state.tampered.startswith("status tag 'queued' not signed")
    # the scheduler's query still finds it (by its tag), showing the sealed status
    listed = [s for s in fresh.states(LIVE) if s.id == study_id]
    assert [(s.status, s.tampered is not None) for s in listed] == [("cancelled", True)]

    check = fresh.check_status(study_id)
    assert check.sealed and check.status == "cancelled" and check.problem
    after = tags(store, study_id)
    assert after["hprobust.status"] == "cancelled"  # set back
    assert "status tag 'queued' not signed" in after["hprobust.tampered"]
    assert [s.id for s in fresh.states(LIVE)] == []
    assert "status tag 'queued'" in fresh.state(study_id).tampered  # still shown: it happened


def test_a_seal_from_outside_does_not_hold(store: StudyStore, tmp_path: Path) -> None:
    """A seal made without the secret (or copied from another study) holds nothing: the study
    is reported and nothing acts on it; the driver refuses to run it and writes no status."""
    study_id = store.create_study(parse_spec(SPEC)).id
    store.set_status(study_id, "cancelled")
    other = store.create_study(parse_spec(SPEC)).id  # a genuine queued seal, of another study
    client = outsider(store)
    experiment_id = store.experiment_id(study_id)
    client.set_experiment_tag(
        experiment_id, "hprobust.status_seal", tags(store, other)["hprobust.status_seal"]
    )
    client.set_experiment_tag(experiment_id, "hprobust.status", "queued")
    fresh = StudyStore(store.tracking_uri, secret=SECRET)
    check = fresh.check_status(study_id)
    assert not check.sealed and "its seal does not hold" in check.problem
    with pytest.raises(StatusSealError, match="its seal does not hold"):
        drive(
            study_id,
            tracking_uri=store.tracking_uri,
            storage=str(tmp_path / "ray_results"),
            data_dir=str(tmp_path / "datasets"),
            secret=SECRET,
        )
    assert tags(store, study_id)["hprobust.status"] == "queued"  # the driver wrote no status
    assert store.trial_runs(study_id) == []


def test_a_deleted_seal_does_not_make_a_study_look_old(store: StudyStore, tmp_path: Path) -> None:
    """A study signed ``v2`` promises a seal: deleting it (and setting the tag) does not turn
    it into a record from before seals, whose tag would be trusted."""
    study_id = store.create_study(parse_spec(SPEC)).id
    store.set_status(study_id, "cancelled")
    client = outsider(store)
    client.delete_experiment_tag(store.experiment_id(study_id), "hprobust.status_seal")
    client.set_experiment_tag(store.experiment_id(study_id), "hprobust.status", "queued")
    fresh = StudyStore(store.tracking_uri, secret=SECRET)
    check = fresh.check_status(study_id)
    assert not check.sealed and "its seal is missing" in check.problem
    assert "its seal is missing" in fresh.state(study_id).tampered
    with pytest.raises(StatusSealError, match="its seal is missing"):
        drive(
            study_id,
            tracking_uri=store.tracking_uri,
            storage=str(tmp_path / "ray_results"),
            data_dir=str(tmp_path / "datasets"),
            secret=SECRET,
        )


def test_an_older_seal_is_a_replay(store: StudyStore) -> None:
    """A seal the service wrote before (generation 1, queued), put back after the study was
    cancelled (generation 3): a store that has seen generation 3 does not go back; it reports
    the replay and restores the newest seal."""
    study_id = store.create_study(parse_spec(SPEC)).id
    old = tags(store, study_id)["hprobust.status_seal"]
    store.set_status(study_id, "running")
    store.set_status(study_id, "cancelled")
    client = outsider(store)
    client.set_experiment_tag(store.experiment_id(study_id), "hprobust.status_seal", old)
    client.set_experiment_tag(store.experiment_id(study_id), "hprobust.status", "queued")
    state = store.state(study_id)
    assert state.status == "cancelled"
    assert state.tampered.startswith("status seal replayed: generation 1 (queued)")
    check = store.check_status(study_id)
    assert not check.sealed
    restored = open_seal(SECRET, study_id, tags(store, study_id)["hprobust.status_seal"])
    assert (restored.status, restored.generation) == ("cancelled", 3)
    assert tags(store, study_id)["hprobust.status"] == "cancelled"
    assert store.check_status(study_id).sealed


def test_a_transition_under_way_is_not_reported(store: StudyStore) -> None:
    """The seal is written first, the tag just after: a reader in between sees the new seal
    and the tag of the status before; that is a transition, not tampering (for
    SEAL_GRACE_S), and the status is the new one already."""
    study_id = store.create_study(parse_spec(SPEC)).id
    experiment_id = store.experiment_id(study_id)
    now = int(time.time())
    halfway = seal(SECRET, study_id, Seal("running", 2, "queued", now))
    store.client.set_experiment_tag(experiment_id, "hprobust.status_seal", halfway)
    state = StudyStore(store.tracking_uri, secret=SECRET).state(study_id)
    assert (state.status, state.tampered) == ("running", None)
    stale = seal(SECRET, study_id, Seal("running", 2, "queued", now - int(SEAL_GRACE_S) - 5))
    store.client.set_experiment_tag(experiment_id, "hprobust.status_seal", stale)
    state = StudyStore(store.tracking_uri, secret=SECRET).state(study_id)
    assert state.status == "running" and state.tampered.startswith("status tag 'queued'")


def test_a_study_recorded_before_seals_is_read_and_sealed_once(store: StudyStore) -> None:
    """A record of an earlier version (``v1`` signature of id and spec, no seal) reads as
    before; the scheduler's check seals its status and upgrades its signature to ``v2``, after
    which its seal is required like any other's."""
    record = store.create_study(parse_spec(SPEC))
    experiment_id = record.experiment_id
    store.client.delete_experiment_tag(experiment_id, "hprobust.status_seal")
    store.client.set_experiment_tag(
        experiment_id, "hprobust.signature", sign(SECRET, record.id, record.spec, version="v1")
    )
    old = StudyStore(store.tracking_uri, secret=SECRET)
    state = old.state(record.id)
    assert (state.status, state.tampered) == ("queued", None)
    assert old.signature_problem(record.id) is None
    check = old.check_status(record.id)
    assert check.sealed and check.status == "queued" and check.problem is None
    now = tags(store, record.id)
    assert now["hprobust.signature"].startswith("v2:")
    assert open_seal(SECRET, record.id, now["hprobust.status_seal"]).status == "queued"
    store.client.delete_experiment_tag(experiment_id, "hprobust.status_seal")
    assert not StudyStore(store.tracking_uri, secret=SECRET).check_status(record.id).sealed


def test_an_ended_study_from_before_seals_stays_readable_and_can_be_resumed(
    store: StudyStore,
) -> None:
    record = store.create_study(parse_spec(SPEC))
    store.set_status(record.id, "cancelled")
    store.client.delete_experiment_tag(record.experiment_id, "hprobust.status_seal")
    store.client.set_experiment_tag(
        record.experiment_id,
        "hprobust.signature",
        sign(SECRET, record.id, record.spec, version="v1"),
    )
    old = StudyStore(store.tracking_uri, secret=SECRET)
    assert (old.get(record.id).status, old.get(record.id).tampered) == ("cancelled", None)
    old.set_status(record.id, "queued")  # a resume: the service's own transition
    assert tags(store, record.id)["hprobust.signature"].startswith("v2:")
    assert old.check_status(record.id).sealed
