"""StudyStore on a real MLflow SQLite store: the study record, statuses, trial rows and
progress read from runs in the documented layout, summaries and artifacts."""

from __future__ import annotations

import json
import time

import pytest

from study.errors import ConfigError, StudyNotFoundError
from study.records.formats import trials_csv
from study.records.ids import STUDY_ID_RE, new_study_id
from study.records.store import StudyStore
from study.records.upgrade import upgrade_presentation
from study.spec.study_spec import parse_spec
from study.vocab import LIVE
from tests.study.counting_client import CountingClient

SPEC = {
    "name": "records",
    "dataset": "digits",
    "model": {"name": "mlp", "hidden": [8]},
    "arms": [{"name": "sgd", "optimizer": "sgd"}, {"name": "insgd", "optimizer": "insgd"}],
    "search": {"lr": {"low": 1e-2, "high": 1.0}, "init": ["normal"]},
    "trials_per_arm": 2,
    "seeds": 2,
}


@pytest.fixture
def store(mlflow_sqlite_uri):
    return StudyStore(mlflow_sqlite_uri)


def trial_run(store, study_id, *, arm, point, seed, status, diverged=False, acc=0.5):
    """A trial run in the layout study.tune.tracking writes (docs/design.md#what-mlflow-shows)."""
    from mlflow.entities import Metric, Param

    key = f"{arm}/{point}/{seed}"
    run = store.client.create_run(
        store.experiment_id(study_id),
        tags={
            "hprobust.kind": "trial",
            "hprobust.study_id": study_id,
            "hprobust.arm": arm,
            "hprobust.trial_key": key,
            "hprobust.status": status if status != "running" else "running",
            "diverged": str(diverged).lower(),
        },
    )
    params = {"arm": arm, "lr": 0.1 * (point + 1), "init": "normal", "init_scale": 1.0}
    params["seed"] = seed
    now = int(time.time() * 1000)
    store.client.log_batch(
        run.info.run_id,
        params=[Param(k, str(v)) for k, v in params.items()],
        metrics=[Metric("val_acc", acc, now, 1), Metric("val_loss", 1.0, now, 1)],
    )
    if status in ("finished", "early_stopped"):
        store.client.set_terminated(run.info.run_id, "FINISHED")
    elif status == "failed":
        store.client.set_terminated(run.info.run_id, "FAILED")
    return run.info.run_id


def test_study_ids():
    ids = {new_study_id() for _ in range(50)}
    assert len(ids) == 50 and all(STUDY_ID_RE.match(i) for i in ids)


def test_create_get_list(store):
    spec = parse_spec(SPEC)
    first = store.create_study(spec)
    second = store.create_study(spec, study_id="s20990101-000000-abcdef")
    assert first.status == "queued" and first.total_trials == 8 and first.num_classes == 10
    assert first.spec == spec.model_dump(mode="json")
    experiment = store.client.get_experiment(first.experiment_id)
    assert experiment.name == f"{spec.name} · {first.id}"  # the study's name, then its id
    assert experiment.tags["hprobust.status"] == "queued"
    assert experiment.tags["hprobust.total_trials"] == "8"
    # The study run holds the spec as an artifact.
    run_id = store.study_run_id(first.id)
    assert store.client.get_run(run_id).data.tags["hprobust.kind"] == "study"
    import yaml

    text = store.client.download_artifacts(run_id, "spec.yaml", str(store.artifact_root))
    with open(text) as f:
        assert yaml.safe_load(f) == spec.model_dump(mode="json")
    assert {r.id for r in store.states()} == {first.id, second.id}
    assert store.get(second.id).id == second.id


def test_studies_named_before_issue_23_are_still_found(store):
    """Issue 23: a study's experiment is named ``<name> · <id>`` and found by its id tag, not
    by name. A study recorded before, named ``hprobust-<id>``, is still found by every
    lookup (cold and warm, listing, status, trials), and an experiment tagged with a study's
    id later (by anyone with write access to MLflow) neither takes its place nor lists twice;
    an id already recorded under either name cannot be recorded again."""
    spec = parse_spec(SPEC)
    old = store.create_study(spec)
    store.client.rename_experiment(old.experiment_id, f"hprobust-{old.id}")  # as recorded then
    new = store.create_study(spec)
    trial_run(store, old.id, arm="sgd", point=0, seed=0, status="finished", acc=0.8)
    forged = store.client.create_experiment(
        f"{spec.name} · {old.id}-copy · {old.id}",
        tags={"hprobust.study_id": old.id, "hprobust.name": "forged", "hprobust.status": "running"},
    )
    cold = StudyStore(store.tracking_uri)
    cold.client = counting = CountingClient(cold.client)
    assert cold.get(old.id).experiment_id == old.experiment_id
    assert (
        counting.calls["get_experiment_by_name"] == 0 and counting.calls["search_experiments"] == 1
    )
    assert cold.state(old.id).name == spec.name and cold.experiment_id(old.id) != forged
    assert [r["arm"] for r in cold.trials(old.id)] == ["sgd"]
    listed = cold.states()
    assert sorted((s.id, s.experiment_id) for s in listed) == sorted(
        [(old.id, old.experiment_id), (new.id, new.experiment_id)]
    )
    assert {s.id for s in cold.states(["running"])} == set()  # the forged tag is not the study's
    cold.set_status(old.id, "running")
    assert cold.get(old.id).status == "running" and cold.get(new.id).status == "queued"
    for study_id in (old.id, new.id):
        with pytest.raises(ConfigError, match="study_id must be new"):
            store.create_study(spec, study_id=study_id)


def test_list_is_newest_first(store):
    spec = parse_spec(SPEC)
    a = store.create_study(spec)
    time.sleep(1.1)
    b = store.create_study(spec)
    assert [r.id for r in store.states()] == [b.id, a.id]


def test_unknown_and_duplicate_ids(store):
    with pytest.raises(StudyNotFoundError, match="s20990101-000000-000000"):
        store.get("s20990101-000000-000000")
    with pytest.raises(StudyNotFoundError):
        store.trials("s20990101-000000-000000")
    spec = parse_spec(SPEC)
    record = store.create_study(spec)
    with pytest.raises(ConfigError, match="already recorded"):
        store.create_study(spec, study_id=record.id)
    with pytest.raises(ConfigError, match="study_id must match"):
        store.create_study(spec, study_id="not-an-id")
    assert len(store.states()) == 1


def test_status_and_timestamps(store):
    record = store.create_study(parse_spec(SPEC))
    assert record.started_at is None and record.finished_at is None

    def study_run_status() -> str:
        return store.client.get_run(store.study_run_id(record.id)).info.status

    assert study_run_status() == "SCHEDULED"
    store.set_status(record.id, "running")
    running = store.get(record.id)
    assert running.status == "running" and running.started_at and running.finished_at is None
    assert study_run_status() == "RUNNING"
    store.set_status(record.id, "cancelled")
    assert store.get(record.id).finished_at is not None
    assert study_run_status() == "KILLED"
    store.set_status(record.id, "running")  # resumed
    assert study_run_status() == "RUNNING"
    store.set_status(record.id, "finished")
    assert study_run_status() == "FINISHED"


def test_failed_study_says_why(store):
    record = store.create_study(parse_spec(SPEC))
    store.set_error(record.id, "RuntimeError: Ray cluster lost")
    store.set_status(record.id, "failed")
    assert store.get(record.id).error == "RuntimeError: Ray cluster lost"
    store.set_status(record.id, "running")  # resumed: the old error is no longer the state
    assert store.get(record.id).error is None
    with pytest.raises(ConfigError, match=r"status must be one of .*got 'paused'"):
        store.set_status(record.id, "paused")


def test_a_resumed_run_keeps_started_at_and_marks_its_segment(store):
    """started_at is the first start; each run of the driver records when it began and how
    many trials had ended by then (the ETA counts only trials ended since)."""
    record = store.create_study(parse_spec(SPEC))
    sid = record.id
    store.set_status(sid, "running")
    first = store.get(sid)
    assert first.segment_done == 0 and first.segment_started_at == first.started_at
    trial_run(store, sid, arm="sgd", point=0, seed=0, status="finished")
    trial_run(store, sid, arm="sgd", point=0, seed=1, status="failed")
    trial_run(store, sid, arm="sgd", point=1, seed=0, status="running")
    store.set_status(sid, "failed")
    time.sleep(1.1)  # timestamps have 1 s resolution: the second segment starts later
    store.set_status(sid, "running")  # resumed
    second = store.get(sid)
    assert second.started_at == first.started_at
    assert second.segment_started_at > first.segment_started_at
    assert second.segment_done == 2  # the finished and the failed trial; not the stopped one


def _runs_by_key(store, study_id):
    return {r.data.tags["hprobust.trial_key"]: r for r in store.trial_runs(study_id)}


@pytest.mark.parametrize("end", ["cancelled", "failed", "finished"])
def test_the_end_of_a_study_closes_its_open_trial_runs(store, end):
    """Issue 10: a cancelled study kept its in-flight trial runs RUNNING for good and the API
    reported running = 2. Whatever ends a study, its open trial runs end KILLED, counted
    pending (a resume trains them again), never running; ended ones stay as they were."""
    record = store.create_study(parse_spec(SPEC))
    sid = record.id
    store.set_status(sid, "running")
    trial_run(store, sid, arm="sgd", point=0, seed=0, status="finished", acc=0.8)
    trial_run(store, sid, arm="sgd", point=0, seed=1, status="failed")
    trial_run(store, sid, arm="sgd", point=1, seed=0, status="running")
    trial_run(store, sid, arm="insgd", point=0, seed=0, status="running")
    assert store.progress(sid)["running"] == 2
    store.set_status(sid, end)
    runs = _runs_by_key(store, sid)
    assert {k: r.info.status for k, r in runs.items()} == {
        "sgd/0/0": "FINISHED",
        "sgd/0/1": "FAILED",
        "sgd/1/0": "KILLED",
        "insgd/0/0": "KILLED",
    }
    assert runs["sgd/1/0"].data.tags["hprobust.stopped"] == f"study {end}"
    assert store.progress(sid) == {
        "finished": 1, "running": 0, "pending": 6, "diverged": 0, "failed": 1, "total": 8,
    }  # fmt: skip
    rows = {r["key"]: r for r in store.trials(sid)}
    # shown as stopped (MLflow: KILLED), not as a trial that never started; it trains again
    assert rows["insgd/0/0"]["status"] == "stopped"
    assert rows["insgd/0/0"]["stopped"] == f"study {end}"
    assert store.get(sid).status == end
    assert store.close_open_trials(sid, reason="again") == 0  # nothing left open


def test_a_404_changes_nothing(store):
    """Issue 10: cancelling a half-created study (an experiment without its study run)
    answered 404 yet flipped it to cancelled. set_status on a record without its study run
    raises StudyNotFoundError before writing anything."""
    record = store.create_study(parse_spec(SPEC))
    store.client.delete_run(store.study_run_id(record.id))
    for status in ("cancelled", "running", "failed"):
        with pytest.raises(StudyNotFoundError):
            store.set_status(record.id, status)
    tags = store.client.get_experiment(record.experiment_id).tags
    assert tags["hprobust.status"] == "queued"
    assert not {"hprobust.finished_at", "hprobust.started_at"} & set(tags)
    with pytest.raises(StudyNotFoundError):
        store.set_status("s20990101-000000-000000", "cancelled")


def test_trial_rows_progress_and_duplicates(store):
    record = store.create_study(parse_spec(SPEC))
    sid = record.id
    trial_run(store, sid, arm="sgd", point=0, seed=0, status="finished", acc=0.8)
    trial_run(store, sid, arm="sgd", point=0, seed=1, status="finished", diverged=True)
    trial_run(store, sid, arm="insgd", point=0, seed=0, status="early_stopped")
    trial_run(store, sid, arm="insgd", point=0, seed=1, status="failed")
    trial_run(store, sid, arm="sgd", point=1, seed=0, status="running")
    # A stale RUNNING run next to the finished run of the same key: the finished one counts.
    trial_run(store, sid, arm="insgd", point=1, seed=0, status="running")
    trial_run(store, sid, arm="insgd", point=1, seed=0, status="finished", acc=0.9)

    rows = store.trials(sid)
    assert [(r["arm"], r["key"]) for r in rows] == [
        ("sgd", "sgd/0/0"),
        ("sgd", "sgd/0/1"),
        ("sgd", "sgd/1/0"),
        ("insgd", "insgd/0/0"),
        ("insgd", "insgd/0/1"),
        ("insgd", "insgd/1/0"),
    ]
    by_key = {r["key"]: r for r in rows}
    assert by_key["sgd/0/0"]["val_acc"] == 0.8 and by_key["sgd/0/0"]["status"] == "finished"
    assert by_key["sgd/0/1"]["diverged"] is True
    assert by_key["insgd/0/0"]["status"] == "early_stopped"
    assert by_key["insgd/0/1"]["status"] == "failed"
    assert by_key["sgd/1/0"]["status"] == "running"
    assert by_key["insgd/1/0"]["status"] == "finished" and by_key["insgd/1/0"]["val_acc"] == 0.9
    assert store.progress(sid) == {
        "finished": 4,
        "running": 1,
        "pending": 2,
        "diverged": 1,
        "failed": 1,
        "total": 8,
    }
    csv_text = trials_csv(rows)
    assert csv_text.splitlines()[0].startswith(
        "arm,lr,init,init_scale,seed,val_acc,val_loss,diverged,status,"
    )
    assert len(csv_text.splitlines()) == 7


def test_summary_partial_then_stored_and_plots(store, tmp_path):
    record = store.create_study(parse_spec(SPEC))
    sid = record.id
    trial_run(store, sid, arm="sgd", point=0, seed=0, status="finished", acc=0.8)
    trial_run(store, sid, arm="insgd", point=0, seed=0, status="finished", acc=0.9)
    trial_run(store, sid, arm="insgd", point=1, seed=0, status="running")
    partial = store.summary(sid)
    assert partial["partial"] is True
    assert partial["arms"]["sgd"]["best"] == pytest.approx(0.8)
    assert partial["settings"]["excluded"]["running"] == 1

    with pytest.raises(LookupError):
        store.plot(sid, "heatmap")
    with pytest.raises(LookupError, match="plot must be one of"):
        store.plot(sid, "../spec")
    png = tmp_path / "heatmap.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\nfake")
    stored = dict(partial, partial=False, warnings=["marker: stored"])
    store.store_results(sid, stored, store.trials(sid), [png])
    store.set_status(sid, "finished")
    assert store.summary(sid) == stored  # read back as stored, not recomputed
    assert store.plot(sid, "heatmap") == png.read_bytes()
    assert json.loads(json.dumps(store.summary(sid))) == stored


def test_mlflow_presentation_tags_note_and_headline_metrics(store):
    """A model-training experiment; the study run's description links the report page the
    API gives it, and at the end carries the headline table, which is also its metrics."""
    unlinked = store.create_study(parse_spec(SPEC)).id  # as `hprobust run` records it
    note = store.client.get_run(store.study_run_id(unlinked)).data.tags["mlflow.note.content"]
    assert f"hprobust summary {unlinked}" in note  # the CLI's way to it: no link is known
    sid = new_study_id()
    url = f"http://lab:8000/studies/{sid}/report"
    record = store.create_study(parse_spec(SPEC), study_id=sid, report_url=url)  # as the API
    experiment = store.client.get_experiment(record.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    view = json.loads(experiment.tags["mlflow.sharedViewState.hprobust"])
    assert view["selectedColumns"][:3] == ["params.`arm`", "params.`lr`", "params.`init`"]
    assert "params.`acc`" in view["selectedColumns"]  # the final accuracy, rounded
    assert "params.`init_scale`" not in view["selectedColumns"]  # not searched here
    # the trial runs, flat (not the study run's first 100 children), the best first
    assert view["searchFilter"] == "tags.`hprobust.kind` = 'trial'"
    assert (view["orderByKey"], view["orderByAsc"]) == ("metrics.`final_val_acc`", False)
    description = experiment.tags["mlflow.note.content"]  # shown above the runs table
    assert f"`{record.name}` (`{sid}`): 8 trial runs" in description and url in description
    run_link = f"(#/experiments/{record.experiment_id}/runs/{store.study_run_id(sid)}"
    assert f"{run_link}?workflowType=machine_learning)" in description  # not GenAI's pages
    run_id = store.study_run_id(sid)
    note = store.client.get_run(run_id).data.tags["mlflow.note.content"]
    assert f"[{url}]({url})" in note
    assert f"(http://lab:8000/studies/{sid}/trials?format=csv)" in note
    trial_run(store, sid, arm="sgd", point=0, seed=0, status="finished", acc=0.8)
    trial_run(store, sid, arm="sgd", point=1, seed=0, status="finished", diverged=True)
    summary = {
        "arms": {
            "sgd": {"best": 0.8, "auc": 0.45, "divergence_rate": 0.5, "good_fraction": None},
            "insgd": {"best": 0.9, "auc": float("nan"), "lr_window_decades": 1.25},
        }
    }
    store.store_results(sid, summary, store.trials(sid))
    run = store.client.get_run(run_id)
    assert run.data.metrics == {
        "sgd.best": 0.8,
        "sgd.auc": 0.45,
        "sgd.divergence_rate": 0.5,
        "insgd.best": 0.9,
        "insgd.lr_window_decades": 1.25,
        "trials_finished": 2.0,
        "trials_diverged": 1.0,
        "trials_failed": 0.0,
    }
    note = run.data.tags["mlflow.note.content"]
    assert f"[{url}]({url})" in note  # the link survives the end
    assert "| arm | best | auc | lr_window_decades | good_fraction | divergence_rate |" in note
    assert "| `sgd` | 0.8 | 0.45 | – | – | 0.5 |" in note
    assert "| `insgd` | 0.9 | – | 1.25 | – | – |" in note
    assert "Trials: 2 finished (1 diverged), 0 failed." in note


def test_studies_recorded_before_the_presentation_are_upgraded(store):
    """What ``hprobust ui`` does first: an old study (no kind, no view, flat trial runs)
    becomes a model-training experiment with its trials nested; a second pass changes
    nothing."""
    record = store.create_study(parse_spec(SPEC))
    sid = record.id
    for key in ("mlflow.experimentKind", "mlflow.sharedViewState.hprobust"):
        store.client.delete_experiment_tag(record.experiment_id, key)
    old = trial_run(store, sid, arm="sgd", point=0, seed=0, status="finished")
    assert "mlflow.parentRunId" not in store.client.get_run(old).data.tags
    assert upgrade_presentation(store) == 1
    experiment = store.client.get_experiment(record.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert "mlflow.sharedViewState.hprobust" in experiment.tags
    upgraded = store.client.get_run(old)
    assert upgraded.data.tags["mlflow.parentRunId"] == store.study_run_id(sid)
    assert upgraded.info.run_name == "sgd 0.1 normal s0"
    view = json.loads(experiment.tags["mlflow.sharedViewState.hprobust"])
    assert view["searchFilter"] == "tags.`hprobust.kind` = 'trial'"
    assert upgrade_presentation(store) == 0


# ---- round trips to MLflow (issue 14) --------------------------------------------------------

#: A spec longer than the experiment tag holds (5000 characters): it lives in spec.yaml only,
#: so reading it is a download that the counting client sees.
LONG_SPEC = {
    **SPEC,
    "name": "n" * 200,
    "arms": [
        {"name": f"arm{i:02d}-" + "x" * 58, "optimizer": "sgd", "momentum": 0.123456789123,
         "weight_decay": 0.000123456789123}
        for i in range(32)
    ],
    "trials_per_arm": 1,
    "seeds": 1,
}  # fmt: skip


def test_a_long_spec_lives_in_spec_yaml_and_reads_back(store):
    record = store.create_study(parse_spec(LONG_SPEC))
    assert "hprobust.spec" not in store.client.get_experiment(record.experiment_id).tags
    assert StudyStore(store.tracking_uri).get(record.id).spec == record.spec


def test_live_states_are_filtered_in_mlflow_without_any_spec(store):
    """The scheduler's query: two searches per live status, filtered by MLflow on the status
    tag and on the status seal (a tag changed behind the service's back does not hide a study:
    issue 21, Q3); ended studies are never read, and no spec is (a long one would be a
    download)."""
    ended = [store.create_study(parse_spec(LONG_SPEC)).id for _ in range(3)]
    for study_id, status in zip(ended, ("finished", "failed", "cancelled"), strict=True):
        store.set_status(study_id, status)
    queued = store.create_study(parse_spec(LONG_SPEC)).id
    running = store.create_study(parse_spec(LONG_SPEC)).id
    store.set_status(running, "running")
    cold = StudyStore(store.tracking_uri)
    cold.client = counting = CountingClient(cold.client)

    states = cold.states(LIVE)
    assert {(s.id, s.status) for s in states} == {(running, "running"), (queued, "queued")}
    assert not hasattr(states[0], "spec")
    assert counting.calls == {"search_experiments": 4}  # two per live status, nothing else
    assert set(counting.experiments) == {f"{'n' * 200} · {i}" for i in (queued, running)}
    assert cold.states(["finished"])[0].id == ended[0]
    settable = "queued, running, finished, failed, cancelled"
    with pytest.raises(ConfigError, match=rf"^statuses must be among {settable}, got 'creating'$"):
        cold.states(["queued", "creating"])
    counting.reset()
    assert cold.state(queued).status == "queued"  # one read of the experiment, by its id tag
    assert counting.experiment_reads() == 1 and counting.calls["search_experiments"] == 1


def test_a_study_is_looked_up_once_per_store(store):
    """A cold summary (and trials, progress) reads the study's experiment once; the
    experiment id and the study run id are remembered by the store."""
    sid = store.create_study(parse_spec(SPEC)).id
    trial_run(store, sid, arm="sgd", point=0, seed=0, status="finished", acc=0.8)
    trial_run(store, sid, arm="insgd", point=0, seed=0, status="finished", acc=0.9)

    cold = StudyStore(store.tracking_uri)
    cold.client = counting = CountingClient(cold.client)
    summary = cold.summary(sid)
    assert summary["partial"] is True and summary["arms"]["insgd"]["best"] == pytest.approx(0.9)
    assert counting.experiment_reads() == 1, counting.calls
    assert counting.calls["search_runs"] == 1  # the trial runs; the spec came with the read
    assert "download_artifacts" not in counting.calls

    counting.reset()
    assert [r["arm"] for r in cold.trials(sid)] == ["sgd", "insgd"]  # the spec's arm order
    cold.progress(sid)
    assert counting.experiment_reads() == 2 and counting.calls["get_experiment_by_name"] == 0
    assert counting.calls["search_runs"] == 2

    # a finished study: its stored summary (the study run's id, then the artifact)
    store.store_results(sid, dict(summary, partial=False), store.trials(sid))
    store.set_status(sid, "finished")
    counting.reset()
    assert cold.summary(sid)["partial"] is False
    assert counting.experiment_reads() == 1 and counting.calls["get_experiment_by_name"] == 0
    assert counting.calls["search_runs"] == 1 and counting.calls["download_artifacts"] == 1


def test_a_trial_run_with_an_unreadable_value_still_lists(store):
    """The store reads runs with the rules of study.analysis.rows: a value it cannot read is
    None (``int("x")`` used to fail the whole trial listing), and the summary then names it."""
    from mlflow.entities import Param

    sid = store.create_study(parse_spec(SPEC)).id
    run_id = trial_run(store, sid, arm="sgd", point=0, seed=0, status="finished", acc=0.8)
    bad = store.client.create_run(
        store.experiment_id(sid),
        tags={"hprobust.kind": "trial", "hprobust.trial_key": "sgd/1/0", "diverged": "TRUE"},
    ).info.run_id
    params = {"arm": "sgd", "init": "normal", "seed": "x", "lr": "inf"}
    store.client.log_batch(bad, params=[Param(k, v) for k, v in params.items()])
    store.client.set_terminated(bad, "FINISHED")
    rows = {r["run_id"]: r for r in store.trials(sid)}
    assert rows[run_id]["seed"] == 0 and rows[run_id]["diverged"] is False
    assert rows[bad]["seed"] is None and rows[bad]["lr"] is None
    assert rows[bad]["diverged"] is True and rows[bad]["status"] == "finished"
    with pytest.raises(ConfigError, match=r"^trials\[\d\]\.lr must be a number, got None$"):
        store.summary(sid)


def test_the_study_run_description_states_the_verdicts(store):
    """At the end the study run's description in MLflow opens its headline with the verdict
    sentence of each comparison, the same sentence the report and the CLI print."""
    from study.analysis import present, summarize
    from tests.study.analysis_rows import row

    record = store.create_study(parse_spec(SPEC))
    rows = [
        row(arm, lr, "normal", seed, 0.5 + 0.1 * (arm == "insgd") + 0.01 * seed)
        for arm in ("sgd", "insgd")
        for lr in (1e-3, 1e-2, 1e-1)
        for seed in range(3)
    ]
    summary = summarize(rows, num_classes=10, arms=["sgd", "insgd"])
    store.store_results(record.id, summary, [])
    note = store.client.get_run(store.study_run_id(record.id)).data.tags["mlflow.note.content"]
    (c,) = summary.comparisons
    sentence = present.verdict_sentence(c, summary)
    assert sentence.startswith("insgd vs sgd: not enough data for a verdict (3 seeds, 3 points")
    assert f"- {sentence}" in note
    assert note.index(sentence) < note.index("| arm |")
