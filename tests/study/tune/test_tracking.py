"""The recorder's link to its driver process (``study.tune.tracking.DriverLink``): handed to the
recorder the driver builds, never pickled with it, and found by the copy ``Tuner.restore``
unpickles from ``tuner.pkl`` through the one process registry while the driver runs the
study. Real MLflow store (SQLite); the recorder's Tune loop is not needed for this."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace

from study.records.store import StudyStore
from study.spec.study_spec import parse_spec
from study.tune.batching import EpochBatches
from study.tune.tracking import DriverLink, MlflowRecorder, linked
from tests.study.records.test_records import SPEC


@contextmanager
def batched_trial(store: StudyStore, config: dict) -> Iterator[tuple[str, EpochBatches, list]]:
    """A new 5-epoch study whose recorder runs the Tune trial ``t0`` of ``config`` (a trial or
    a pack): yields the study id, the trial's batched report (it sends after epochs 3 and 5,
    each result naming node ``n1``) and the results it sent; then the trial completes and
    every queued write is flushed."""
    spec = {**SPEC, "epochs": 5}
    study_id = store.create_study(parse_spec(spec)).id
    recorder = MlflowRecorder(study_id, store.tracking_uri, spec, link=DriverLink(store))
    trial = SimpleNamespace(trial_id="t0", config=config, last_result={})
    with linked(study_id, recorder.link):
        recorder.setup()
        recorder.on_trial_start(0, [trial], trial)
        clock = iter([0.0, 0.1, 0.2, 1.5, 1.6, 1.7]).__next__  # sends after epochs 3 and 5
        sent: list[dict] = []

        def send(result: dict) -> None:
            sent.append(result)
            recorder.on_trial_result(0, [trial], trial, {**result, "node_id": "n1"})

        yield study_id, EpochBatches(send, every_s=1.0, last_epoch=5, clock=clock), sent
        recorder.on_trial_complete(0, [trial], trial)
        recorder.link.flush()


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


def test_a_batch_of_epochs_is_recorded_epoch_for_epoch(mlflow_sqlite_uri):
    """A trial that reports its epochs in batches (study.tune.batching: the latest epoch, the
    earlier ones under EPOCHS_KEY) is recorded exactly as one that reported every epoch: each
    epoch's metrics at its own step, the node tag, the final metrics of the last epoch."""
    from study.tune.searcher import ARM_KEY, INDEX_KEY, POINT_KEY

    store = StudyStore(mlflow_sqlite_uri)
    config = {ARM_KEY: "sgd", POINT_KEY: 0, INDEX_KEY: 0, "lr": 0.1, "init": "normal"}
    with batched_trial(store, config) as (study_id, report, sent):
        for epoch in range(1, 6):
            report({"epoch": epoch, "val_acc": epoch / 10, "train_loss": 1.0 / epoch})
        assert [r["epoch"] for r in sent] == [3, 5]  # two reports for five epochs
    (row,) = store.trials(study_id)
    assert row["status"] == "finished" and row["epochs_completed"] == 5
    assert row["val_acc"] == 0.5
    run_id = store.trial_runs(study_id)[0].info.run_id
    history = store.client.get_metric_history(run_id, "val_acc")
    assert sorted((m.step, m.value) for m in history) == [(e, e / 10) for e in range(1, 6)]
    assert len(store.client.get_metric_history(run_id, "train_loss")) == 5
    assert store.trial_runs(study_id)[0].data.tags["hprobust.node_id"] == "n1"


def test_a_packs_batched_epochs_are_recorded_member_by_member_epoch_for_epoch(
    mlflow_sqlite_uri,
):
    """A pack reports its steps in batches too (each step the pack's result, the earlier
    steps under EPOCHS_KEY): every member's run gets each of its epochs at its own step, a
    member that diverged stops at its epoch (nothing logged for it after), the other
    finishes; the runs are created and closed by the writer thread, all done at the flush."""
    from study.tune.runner import pack_result
    from study.tune.searcher import ARM_KEY, INDEX_KEY, PACK_KEY, POINT_KEY

    store = StudyStore(mlflow_sqlite_uri)
    members = [
        {ARM_KEY: "sgd", POINT_KEY: p, INDEX_KEY: 0, "lr": 0.1 * (p + 1), "init": "normal"}
        for p in (0, 1)
    ]
    with batched_trial(store, {PACK_KEY: members}) as (study_id, batches, sent):
        latest: list[dict | None] = [None, None]
        for epoch in range(1, 6):
            if epoch <= 2:  # member 0 diverges at its 2nd epoch and trains no more
                latest[0] = {"epoch": epoch, "val_acc": 0.1, "diverged": epoch == 2}
            latest[1] = {"epoch": epoch, "val_acc": epoch / 10, "train_loss": 1.0 / epoch}
            batches(pack_result(latest))
        assert [r["epoch"] for r in sent] == [3, 5]  # two reports for five steps
        assert [len(r.get("__epochs", [])) for r in sent] == [2, 1]
    rows = sorted(store.trials(study_id), key=lambda r: r["lr"])
    assert [(r["status"], r["diverged"], r["epochs_completed"]) for r in rows] == [
        ("finished", True, 2),
        ("finished", False, 5),
    ]
    runs = {float(r.data.params["lr"]): r for r in store.trial_runs(study_id)}
    assert all(r.info.status == "FINISHED" for r in runs.values())
    first, second = (runs[lr].info.run_id for lr in sorted(runs))
    assert [m.step for m in store.client.get_metric_history(first, "val_acc")] == [1, 2]
    second_acc = store.client.get_metric_history(second, "val_acc")
    assert sorted((m.step, m.value) for m in second_acc) == [(e, e / 10) for e in range(1, 6)]
    assert runs[0.1].data.tags["hprobust.node_id"] == "n1"


def test_the_write_queue_is_bounded_so_records_never_fall_far_behind(mlflow_sqlite_uri):
    """Writes go through the recorder's one writer thread, in order; when more than
    MAX_QUEUED_WRITES wait, the event that queues one more waits for the oldest (a slow
    tracking server slows the study instead of leaving its records ever further behind)."""
    import threading
    import time

    from study.tune.tracking import MAX_QUEUED_WRITES

    store = StudyStore(mlflow_sqlite_uri)
    study_id = store.create_study(parse_spec(SPEC)).id
    recorder = MlflowRecorder(study_id, store.tracking_uri, SPEC, link=DriverLink(store))
    done: list[int] = []
    writer: set[str] = set()

    def slow_write(i: int) -> None:  # a write that takes 20 ms, as a remote store's would
        time.sleep(0.02)
        writer.add(threading.current_thread().name)
        done.append(i)

    with linked(study_id, recorder.link):
        recorder.setup()
        for i in range(40):
            recorder._submit(slow_write, i)
            assert len(recorder._pending) <= MAX_QUEUED_WRITES
            assert len(done) >= i + 1 - MAX_QUEUED_WRITES  # at most that many still queued
        recorder.link.flush()
    assert done == list(range(40))  # every write, in order, on the one writer thread
    assert len(writer) == 1 and threading.current_thread().name not in writer
