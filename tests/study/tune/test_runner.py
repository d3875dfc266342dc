"""End-to-end studies on a real local Ray and a real MLflow SQLite store (no mocks):
runs, params, per-epoch metrics, tags, pairing, divergence, artifacts; a crashing trial
retried once then recorded failed; ASHA's early stops marked."""

from __future__ import annotations

import io
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from study.driver import drive
from study.errors import StudyFailedError
from study.records.formats import short_number
from study.records.store import StudyStore, sqlite_uri
from study.spec.study_spec import parse_spec
from study.tune.runner import ResourceWait, all_failed

pytestmark = pytest.mark.slow

EPOCHS = 2
DIGITS = {
    "name": "e2e",
    "dataset": "digits",
    "model": {"name": "mlp", "hidden": [16]},
    "arms": [
        {"name": "sgd", "optimizer": "sgd", "momentum": 0.9},
        {"name": "insgd", "optimizer": "insgd", "momentum": 0.9, "weight_decay": 1e-4},
    ],
    # Up to 1e4: SGD without BatchNorm diverges at the top of the range.
    "search": {"lr": {"low": 1e-2, "high": 1e4}, "init": ["kaiming_normal", "xavier_normal"]},
    "sampler": "qmc",
    "trials_per_arm": 3,
    "seeds": 2,
    "epochs": EPOCHS,
    "batch_size": 128,
    "resources": {"cpus_per_trial": 1, "max_concurrent_trials": 2},
}


def _run(tmp, spec_dict):
    store = StudyStore(sqlite_uri(tmp))
    record = store.create_study(parse_spec(spec_dict))
    summary = drive(
        record.id,
        tracking_uri=store.tracking_uri,
        storage=str(tmp / "ray_results"),
        data_dir=str(tmp / "datasets"),
    )
    return store, record.id, summary


@pytest.fixture(scope="module")
def digits_study(ray_local, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    return _run(tmp, DIGITS)


def test_study_finishes_with_every_trial_recorded_once(digits_study):
    store, sid, _ = digits_study
    record = store.get(sid)
    assert record.status == "finished" and record.started_at and record.finished_at
    runs = store.trial_runs(sid)
    keys = [r.data.tags["hprobust.trial_key"] for r in runs]
    assert len(keys) == len(set(keys)) == record.total_trials == 2 * 3 * 2
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert store.progress(sid)["finished"] == 12 and store.progress(sid)["pending"] == 0


def test_runs_have_params_tags_and_per_epoch_metrics(digits_study):
    store, sid, _ = digits_study
    for run in store.trial_runs(sid):
        params, tags = run.data.params, run.data.tags
        arm = params["arm"]
        assert params["optimizer"] == arm
        assert params["momentum"] == "0.9"
        assert (arm == "insgd") == ("weight_decay" in params)
        assert set(params) >= {"arm", "optimizer", "lr", "init", "init_scale", "seed"}
        assert params["init"] in ("kaiming_normal", "xavier_normal")
        assert float(params["init_scale"]) == 1.0
        assert tags["hprobust.study_id"] == sid and tags["hprobust.arm"] == arm
        assert tags["hprobust.kind"] == "trial"
        assert tags["diverged"] in ("true", "false")
        assert tags["hprobust.trial_key"] == f"{arm}/{params['point']}/{params['seed']}"
        history = store.client.get_metric_history(run.info.run_id, "val_acc")
        steps = sorted(m.step for m in history)
        if tags["diverged"] == "false":
            assert tags["hprobust.status"] == "finished"
            assert steps == list(range(1, EPOCHS + 1))
            for name in ("train_loss", "val_loss"):
                got = store.client.get_metric_history(run.info.run_id, name)
                assert sorted(m.step for m in got) == steps
        else:
            assert steps == sorted(set(steps)) and steps[0] == 1  # one history, stopped early


def test_trial_rows_name_the_ray_node_that_trained_them(digits_study):
    import ray

    store, sid, _ = digits_study
    (node,) = [n for n in ray.nodes() if n["Alive"]]  # the one local node of the session
    rows = store.trials(sid)
    assert rows and {row["node_id"] for row in rows} == {node["NodeID"]}
    assert {row["node_ip"] for row in rows} == {node["NodeManagerAddress"]}


def test_arms_are_paired_and_seeds_replicate(digits_study):
    store, sid, _ = digits_study
    points = defaultdict(set)
    seeds = defaultdict(Counter)
    for row in store.trials(sid):
        points[row["arm"]].add((row["key"].split("/")[1], row["lr"], row["init"], row["seed"]))
        seeds[row["arm"]][(row["lr"], row["init"])] += 1
    assert points["sgd"] == points["insgd"]
    assert len(points["sgd"]) == 6
    assert set(seeds["sgd"].values()) == {2}  # every point twice: seeds 0 and 1
    assert {row["seed"] for row in store.trials(sid)} == {0, 1}


def test_arms_are_interleaved(digits_study):
    store, sid, _ = digits_study
    concurrency = DIGITS["resources"]["max_concurrent_trials"]
    runs = sorted(store.trial_runs(sid), key=lambda r: r.info.end_time)
    counts = Counter()
    for run in runs:  # in the order they finished, seeds (2) or not
        counts[run.data.tags["hprobust.arm"]] += 1
        assert abs(counts["sgd"] - counts["insgd"]) <= concurrency, counts


def test_a_diverging_arm_is_recorded_and_the_study_goes_on(digits_study):
    store, sid, summary = digits_study
    rows = store.trials(sid)
    diverged = [r for r in rows if r["diverged"]]
    assert diverged, "lr up to 1e4 must diverge somewhere"
    assert all(r["status"] == "finished" for r in diverged)
    assert any(not r["diverged"] and r["val_acc"] > 0.5 for r in rows)
    sgd = [r for r in rows if r["arm"] == "sgd"]
    rate = sum(r["diverged"] for r in sgd) / len(sgd)
    assert summary["arms"]["sgd"]["divergence_rate"] == pytest.approx(rate)


def test_summary_trials_and_plots_are_stored(digits_study):
    from PIL import Image

    store, sid, summary = digits_study
    assert store.summary(sid) == summary
    assert summary["partial"] is False and summary["version"] == 3
    # the study has ended: a verdict (2 seeds: not_enough_data), not pending
    assert summary["comparisons"][0]["verdict"] == "not_enough_data"
    assert list(summary["arms"]) == ["sgd", "insgd"]  # the spec's order
    assert summary["reference"]["lr_range"] == [1e-2, 1e4]  # the spec's lr range
    assert summary["reference"]["tolerance"] == 0.02  # the spec's analysis.tolerance
    assert summary["comparisons"][0]["n_points"] > 0  # paired rows matched
    run_id = store.study_run_id(sid)
    names = {a.path for a in store.client.list_artifacts(run_id)}
    assert {"spec.yaml", "summary.json", "trials.csv", "plots"} <= names
    csv_path = store.client.download_artifacts(run_id, "trials.csv", str(store.artifact_root))
    with open(csv_path) as f:
        assert len(f.read().strip().splitlines()) == 1 + 12
    for stem in ("lr_curves", "heatmap", "profile", "expected_max"):
        image = Image.open(io.BytesIO(store.plot(sid, stem)))
        image.load()
        assert image.format == "PNG" and image.size[0] > 100


def test_mlflow_shows_the_study_as_runs_nested_under_the_study_run(digits_study):
    """docs/design.md#what-mlflow-shows, read back through MlflowClient: a model-training
    experiment, every trial a child of the study run named after its design point, final
    metrics on every trial, the schedule's lr apart from the lr param, the headline summary
    as metrics of the study run and a description with the links."""
    store, sid, summary = digits_study
    client = store.client
    experiment = client.get_experiment(store.experiment_id(sid))
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    study_run = client.get_run(store.study_run_id(sid))
    assert study_run.info.run_name == "study e2e"
    note = study_run.data.tags["mlflow.note.content"]
    assert f"hprobust summary {sid}" in note and "| arm |" in note and "| `insgd` |" in note
    # the verdict sentence the report and the CLI print, on the real study's numbers
    assert "- insgd vs sgd: not enough data for a verdict (2 seeds, " in note
    runs = store.trial_runs(sid)
    assert len(runs) == 12
    names = set()
    for run in runs:
        tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
        assert tags["mlflow.parentRunId"] == study_run.info.run_id
        lr = float(params["lr"])
        init = {"kaiming_normal": "kaiming", "xavier_normal": "xavier"}[params["init"]]
        assert run.info.run_name == f"{params['arm']} {short_number(lr)} {init} s{params['seed']}"
        names.add(run.info.run_name)
        assert metrics["diverged"] == (1.0 if tags["diverged"] == "true" else 0.0)
        assert "lr" not in metrics and "scheduled_lr" in metrics
        history = client.get_metric_history(run.info.run_id, "scheduled_lr")
        assert max(m.value for m in history) <= lr * (1 + 1e-9)
        if tags["diverged"] == "false":
            assert metrics["final_val_acc"] == metrics["val_acc"]
            assert metrics["final_val_loss"] == metrics["val_loss"]
            # rounded for the MLflow UI's columns (the metrics keep every digit)
            assert params["acc"] == f"{metrics['final_val_acc']:.3f}"
            assert params["loss"] == f"{metrics['final_val_loss']:.3f}"
    assert len(names) == 12  # one name per trial
    # Nested: the children of the study run are exactly the trial runs.
    children = client.search_runs(
        [experiment.experiment_id], f"tags.`mlflow.parentRunId` = '{study_run.info.run_id}'"
    )
    assert {r.info.run_id for r in children} == {r.info.run_id for r in runs}
    metrics = study_run.data.metrics
    for arm in ("sgd", "insgd"):
        for key in ("best", "divergence_rate", "lr_window_decades", "auc", "good_fraction"):
            value = summary["arms"][arm].get(key)
            if value is not None:
                assert metrics[f"{arm}.{key}"] == pytest.approx(value), (arm, key)
        assert metrics[f"{arm}.best"] == pytest.approx(summary["arms"][arm]["best"])
    assert metrics["trials_finished"] == 12


def test_crashing_trial_is_retried_once_then_recorded_failed(ray_local, tmp_path):
    """Trials that crash are retried once, then recorded failed; a study whose every trial
    failed ends ``failed`` with the first trial's error (issue 10: it ended ``finished`` with an
    all-null summary), its trials, summary and plots still stored."""
    # A spec that validates (and passes the preflight forward pass in eval mode) but whose
    # trials crash for real: BatchNorm cannot train on a batch of one sample whose feature
    # maps shrink to 1x1 (mobilenetv3_small on 8x8).
    spec = {
        **DIGITS,
        "name": "crash",
        "dataset": {"name": "synthetic", "shape": [1, 8, 8], "n_train": 8, "n_val": 4},
        "model": {"name": "mobilenetv3_small"},
        "batch_size": 1,
        "trials_per_arm": 1,
        "seeds": 1,
    }
    with pytest.raises(StudyFailedError, match="every trial failed") as raised:
        _run(tmp_path, spec)
    store = StudyStore(sqlite_uri(tmp_path))
    (record,) = store.states()
    sid = record.id
    assert record.status == "failed"
    assert record.error.startswith("StudyFailedError: every trial failed (2 of 2); first error")
    assert "Expected more than 1 value per channel" in record.error
    assert str(raised.value) in record.error
    runs = store.trial_runs(sid)
    assert len(runs) == 2  # one live run per key: the first attempt's run was replaced
    for run in runs:
        tags = run.data.tags
        assert run.info.status == "FAILED"
        assert tags["hprobust.status"] == "failed"
        assert tags["hprobust.retries"] == "1"
        assert "Expected more than 1 value per channel" in tags["hprobust.error"]
        assert "Expected more than 1 value per channel" in tags["hprobust.first_error"]
    assert store.progress(sid)["failed"] == 2
    assert store.summary(sid)["settings"]["excluded"]["failed"] == 2
    study_run = store.client.get_run(store.study_run_id(sid))
    assert study_run.info.status == "FAILED"
    assert study_run.data.metrics["trials_failed"] == 2  # results stored before failing


def test_all_failed_decides_failed_only_without_any_result():
    """The end-state rule on hand-built rows: every trial failed -> the error names how many
    and the first failed trial's last error line; one trial with a result (finished,
    diverged or early stopped) -> the study finishes, its failures counted in the summary."""
    failed = [
        {"key": "sgd/0/0", "status": "failed", "error": "Traceback (most recent call last):\n"
         "  File x\nValueError: Expected more than 1 value per channel\n\n"},
        {"key": "sgd/1/0", "status": "failed", "error": None},
    ]  # fmt: skip
    assert all_failed(failed) == (
        "every trial failed (2 of 2); first error (sgd/0/0): "
        "ValueError: Expected more than 1 value per channel"
    )
    assert all_failed(failed[1:]) == (
        "every trial failed (1 of 1); first error (sgd/1/0): no error text recorded"
    )
    for status in ("finished", "early_stopped"):
        assert all_failed([*failed, {"key": "insgd/0/0", "status": status}]) is None
    assert all_failed([]) is None
    assert all_failed([{"key": "sgd/0/0", "status": "finished", "diverged": True}]) is None


class _Trial:
    def __init__(self, status: str) -> None:
        self.status = status


def test_resource_wait_fails_only_after_the_wait_with_nothing_running():
    """ResourceWait on a hand-driven clock: pending trials with none running for more than
    wait_s -> StudyFailedError; a running trial (or none pending) resets the wait."""
    now = [0.0]
    wait = ResourceWait(parse_spec(DIGITS), 60, clock=lambda: now[0])
    pending, running = [_Trial("PENDING")], [_Trial("RUNNING"), _Trial("PENDING")]
    wait(pending)
    now[0] = 60.0
    wait(pending)  # exactly the wait: not yet
    now[0] = 59.0 + 60.0
    wait(running)  # a trial runs: the wait starts over
    now[0] = 120.0
    wait(pending)
    now[0] = 170.0
    wait(pending)
    wait([_Trial("TERMINATED")])  # nothing pending: no wait
    wait(pending)
    now[0] = 230.5
    with pytest.raises(StudyFailedError, match=r"no trial could start for 60 s"):
        wait(pending)


def test_a_study_that_cannot_get_its_resources_fails_saying_why(ray_local, tmp_path):
    """Issue 10: 4 CPUs per trial on a 2-CPU cluster hung in ``running`` with 0 trials. The
    driver (run directly: the API refuses such a spec when it can read the cluster) fails the
    study after its resource wait, naming what a trial asks for and what the nodes have."""
    spec = {
        **DIGITS,
        "name": "too-big",
        "trials_per_arm": 1,
        "seeds": 1,
        "resources": {"cpus_per_trial": 4, "max_concurrent_trials": 1},
    }
    store = StudyStore(sqlite_uri(tmp_path))
    record = store.create_study(parse_spec(spec))
    with pytest.raises(StudyFailedError, match="no trial could start"):
        drive(
            record.id,
            tracking_uri=store.tracking_uri,
            storage=str(tmp_path / "ray_results"),
            data_dir=str(tmp_path / "datasets"),
            resource_wait_s=2,
        )
    failed = store.get(record.id)
    assert failed.status == "failed"
    assert "each trial asks for 4 CPUs and 0 GPUs on one node" in failed.error
    assert "no node has that: the Ray cluster has 1 node with 2 CPUs" in failed.error
    assert store.trial_runs(record.id) == []
    assert store.progress(record.id) == {
        "finished": 0, "running": 0, "pending": 2, "diverged": 0, "failed": 0, "total": 2,
    }  # fmt: skip


def test_asha_stops_are_marked_early_stopped(ray_local, tmp_path):
    spec = {
        **DIGITS,
        "name": "asha",
        "arms": [{"name": "sgd", "optimizer": "sgd", "momentum": 0.9}],
        "search": {"lr": {"low": 1e-5, "high": 1.0}, "init": ["kaiming_normal"]},
        "trials_per_arm": 6,
        "seeds": 1,
        "epochs": 4,
        "early_stopping": {"name": "asha", "grace_period": 1, "reduction_factor": 2},
        "resources": {"cpus_per_trial": 1, "max_concurrent_trials": 1},
    }
    store, sid, summary = _run(tmp_path, spec)
    rows = store.trials(sid)
    stopped = [r for r in rows if r["status"] == "early_stopped"]
    assert stopped, "ASHA stopped no trial"
    for row in stopped:
        assert row["epochs_completed"] < 4 and not row["diverged"]
    full = [r for r in rows if r["status"] == "finished" and not r["diverged"]]
    assert all(r["epochs_completed"] == 4 for r in full)
    assert summary["settings"]["excluded"]["early_stopped"] == len(stopped)
    assert summary["arms"]["sgd"]["n_trials"] == len(rows) - len(stopped)


def test_the_spec_crosses_to_trials_once_through_the_object_store(ray_local):
    """make_trainable ships the validated spec through Ray's object store
    (``tune.with_parameters``): the trainable Tune pickles holds no copy of it, Tune's config
    is only the point, a point recorded before a restore is reported without training (no
    data loaded), and another trains from the shipped spec (``tune.report`` outside Tune is a
    no-op)."""
    import cloudpickle

    from study.data import loader as data
    from study.tune.runner import make_trainable
    from study.tune.searcher import ARM_KEY, INDEX_KEY, POINT_KEY, trial_key

    spec = parse_spec({**DIGITS, "name": "crosses-once-7f3a", "epochs": 1})
    recorded = {ARM_KEY: "sgd", POINT_KEY: 0, INDEX_KEY: 0, "lr": 0.1, "init": "kaiming_normal"}
    done = {trial_key(recorded, spec.seed): {"val_acc": 0.5, "epoch": 1, "diverged": False}}
    trainable = make_trainable(spec, data_dir=None, done=done)
    assert trainable.__name__ == "hprobust_trial"
    blob = cloudpickle.dumps(trainable)
    assert b"crosses-once-7f3a" not in blob and b"kaiming_normal" not in blob

    data.clear_cache()
    assert trainable(dict(recorded)) is None
    assert len(data._cache) == 0  # reported from the record: nothing loaded, nothing trained
    trainable({**recorded, POINT_KEY: 1, ARM_KEY: "insgd"})
    assert [key[0] for key in data._cache] == ["digits"]  # trained from the shipped spec


def test_a_trial_actor_yields_the_cpu_and_the_driver_does_not(ray_local):
    """A worker comes with the trial's code imported. The trainable lowers the priority of
    the Ray actor it runs in (every thread, to the niceness the driver hands it), never the
    process that calls it outside an actor (the driver, this test)."""
    import os

    import ray

    from study.tune.runner import _yield_cpu

    def niceness() -> list[int]:
        tasks = os.listdir("/proc/self/task")
        return sorted({os.getpriority(os.PRIO_PROCESS, int(t)) for t in tasks})

    def autogroup() -> str:
        return Path("/proc/self/autogroup").read_text().strip()

    @ray.remote(num_cpus=0)
    class Probe:
        def yield_cpu(self, nice: int) -> tuple[list[int], str, bool]:
            _yield_cpu(nice)
            return niceness(), autogroup(), os.getsid(0) == os.getpid()

        def preloaded(self) -> tuple[bool, bool]:
            """Whether Ray started this worker told to import torch and the trial's code
            before any work, and whether it has."""
            import sys

            told = "--worker-preload-modules=torch,study.train.trial" in sys.argv
            return told, {"torch", "study.train.trial"} <= set(sys.modules)

    before, group = niceness(), autogroup()
    probe = Probe.remote()
    try:
        # a worker of the Ray that study.runtime sets up has the trial's code (torch) loaded
        assert ray.get(probe.preloaded.remote()) == (True, True)
        # every thread at 6 or lower priority (Ray runs a thread of its own at 15)
        threads, actors_group, leads = ray.get(probe.yield_cpu.remote(6))
        assert min(threads) == 6
        # ... and, the Ray having been started as study.runtime sets up a process, in a
        # session and an autogroup of its own at niceness 6: below this process's session
        assert leads and actors_group != group and actors_group.endswith("nice 6")
        threads, again, _ = ray.get(probe.yield_cpu.remote(0))  # a reused actor stays there
        assert min(threads) == 6 and again == actors_group
    finally:
        ray.kill(probe)
    _yield_cpu(6)
    assert niceness() == before and autogroup() == group
