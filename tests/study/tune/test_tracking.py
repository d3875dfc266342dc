"""The recorder's link to its driver process (``study.tune.tracking.DriverLink``): handed to the
recorder the driver builds, never pickled with it, and found by the copy ``Tuner.restore``
unpickles from ``tuner.pkl`` through the one process registry while the driver runs the
study. Real MLflow store (SQLite); the recorder's Tune loop is not needed for this."""

from __future__ import annotations

import pickle

from study.records.store import StudyStore
from study.spec.study_spec import parse_spec
from study.tune.tracking import DriverLink, MlflowRecorder, linked
from tests.study.records.test_records import SPEC


def test_the_link_is_handed_over_and_a_restored_recorder_finds_it(mlflow_sqlite_uri):
    store = StudyStore(mlflow_sqlite_uri)
    study_id = store.create_study(parse_spec(SPEC)).id
    seen: list[dict] = []
    link = DriverLink(store, progress=seen.append)
    built = MlflowRecorder(study_id, store.tracking_uri, SPEC, link=link)
    assert built.link is link and built.store is store

    data = pickle.dumps(built)  # what Tune writes to tuner.pkl
    assert b"DriverLink" not in data and b"StudyStore" not in data
    restored = pickle.loads(data)  # what Tuner.restore builds from it
    assert restored.link is None  # nothing registered: no driver process to reach
    with linked(study_id, link) as same:
        assert same is link and restored.link is link and restored.store is store
        restored.setup()  # as Tune sets it up: the driver now reaches this copy
        assert link.recorder is restored and restored._writer is not None
        assert seen == [restored.progress()]  # its events reach the driver's hook
        link.flush()
    assert restored._writer is None  # closed with the study's run
    assert restored.link is None  # and the registry forgot it
