"""A study with ``resources.pack_size: 4`` forced on CPU, on a real local Ray and a real MLflow
SQLite store: it records exactly the trial keys of the unpacked study, one run each, with the
same results (to float32 tolerance), the same per-epoch histories and the same divergences.

The unpacked reference is what the unpacked study runs, without Ray's overhead: the same
searcher (``ArmInterleaver``) driven directly gives every trial key and config (the paired
``qmc`` sampler never looks at results), and ``train_trial`` trains each config as the
unpacked trainable would (``tests/study/tune/test_runner.py`` runs the unpacked study itself)."""

from __future__ import annotations

import math
from collections import defaultdict

import pytest

from study.driver import drive
from study.records.store import StudyStore, sqlite_uri
from study.spec.study_spec import parse_spec

pytestmark = pytest.mark.slow

EPOCHS = 2
SPEC = {
    "name": "packed",
    "dataset": "digits",
    "model": {"name": "mlp", "hidden": [16]},
    "arms": [
        {"name": "sgd", "optimizer": "sgd", "momentum": 0.9},
        {"name": "insgd", "optimizer": "insgd", "momentum": 0.9, "weight_decay": 1e-4},
    ],
    # Up to 1e4: SGD without BatchNorm diverges at the top of the range (a frozen member).
    "search": {"lr": {"low": 1e-2, "high": 1e4}, "init": ["kaiming_normal", "xavier_normal"]},
    "sampler": "qmc",
    "trials_per_arm": 3,
    "seeds": 2,
    "epochs": EPOCHS,
    "batch_size": 128,
    "resources": {"cpus_per_trial": 1, "max_concurrent_trials": 2, "pack_size": 4},
}


def unpacked_reference(spec) -> dict[str, tuple[dict, list[dict]]]:
    """key -> (train_trial result, reports) for every trial the unpacked study runs."""
    from study.train.trial import train_trial
    from study.tune.searcher import ARM_KEY, INDEX_KEY, ArmInterleaver, trial_key

    searcher = ArmInterleaver(spec)
    expected = {}
    n = 0
    while True:
        n += 1
        config = searcher.suggest(f"t{n}")
        if config == "FINISHED":
            break
        searcher.on_trial_complete(f"t{n}", result={"val_acc": 0.5, "epoch": EPOCHS})
        trial = spec.trial_config(
            config[ARM_KEY],
            lr=config["lr"],
            init=config["init"],
            init_scale=config["init_scale"],
            seed=spec.seed + int(config.get(INDEX_KEY, 0)),
            num_threads=1,
        )
        reports: list[dict] = []
        expected[trial_key(config, spec.seed)] = (
            train_trial(trial, report=reports.append),
            reports,
        )
    return expected


@pytest.fixture(scope="module")
def packed_study(ray_local, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("packed")
    store = StudyStore(sqlite_uri(tmp))
    spec = parse_spec(SPEC)
    assert spec.pack_size == 4
    record = store.create_study(spec)
    summary = drive(
        record.id,
        tracking_uri=store.tracking_uri,
        storage=str(tmp / "ray_results"),
        data_dir=str(tmp / "datasets"),
    )
    return store, record.id, summary, unpacked_reference(parse_spec(SPEC))


def test_same_keys_one_finished_run_each(packed_study):
    store, sid, _, expected = packed_study
    record = store.get(sid)
    assert record.status == "finished"
    runs = store.trial_runs(sid)
    keys = [r.data.tags["hprobust.trial_key"] for r in runs]
    assert len(keys) == len(set(keys)) == record.total_trials == 12
    assert set(keys) == set(expected)
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert store.progress(sid)["finished"] == 12 and store.progress(sid)["pending"] == 0
    import ray

    # Every member is tagged with the Ray node of its pack (here the one local node).
    (node,) = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
    assert {row["node_id"] for row in store.trials(sid)} == {node}


def test_same_results_histories_and_divergences_as_unpacked(packed_study):
    store, sid, _, expected = packed_study
    rows = {row["key"]: row for row in store.trials(sid)}
    assert any(row["diverged"] for row in rows.values()), "lr 1e4 must diverge somewhere"
    assert any(not row["diverged"] for row in rows.values())
    for run in store.trial_runs(sid):
        key = run.data.tags["hprobust.trial_key"]
        want, reports = expected[key]
        row = rows[key]
        assert row["diverged"] == want["diverged"], key
        assert row["epochs_completed"] == want["epochs_completed"], key
        assert row["status"] == "finished"
        assert math.isclose(row["val_acc"], want["val_acc"], abs_tol=1e-9), key
        for name in ("val_loss", "train_loss"):
            if want[name] is None:
                assert row[name] is None, (key, name)
            else:
                assert math.isclose(row[name], want[name], rel_tol=1e-4), (key, name)
        for name in ("val_acc", "train_loss"):
            history = store.client.get_metric_history(run.info.run_id, name)
            got = sorted((m.step, m.value) for m in history)
            want_history = [(r["epoch"], r[name]) for r in reports if r[name] is not None]
            assert [s for s, _ in got] == [s for s, _ in want_history], (key, name)
            for (_, a), (_, b) in zip(got, want_history, strict=True):
                assert math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-9), (key, name)


def test_a_pack_is_one_points_arms_and_seeds(packed_study):
    store, sid, _, _ = packed_study
    packs = defaultdict(list)
    for run in store.trial_runs(sid):
        assert run.data.tags["hprobust.pack_size"] == "4"
        packs[run.data.tags["hprobust.tune_trial_id"]].append(run)
    assert len(packs) == 3
    for runs in packs.values():
        assert {(r.data.params["lr"], r.data.params["init"]) for r in runs} == {
            (runs[0].data.params["lr"], runs[0].data.params["init"])
        }
        assert sorted((r.data.params["arm"], r.data.params["seed"]) for r in runs) == [
            ("insgd", "0"),
            ("insgd", "1"),
            ("sgd", "0"),
            ("sgd", "1"),
        ]


def _assert_close(a, b, path="summary"):
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), path
        for k in a:
            _assert_close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-3, abs_tol=1e-6), (path, a, b)
    else:
        assert a == b, (path, a, b)


def test_summary_is_the_unpacked_one(packed_study):
    """The stored summary equals the summary of the same rows carrying the unpacked results."""
    from study.analysis import summarize, summary_args

    store, sid, summary, expected = packed_study
    rows = []
    for row in store.trials(sid):
        want, _ = expected[row["key"]]
        names = ("val_acc", "val_loss", "train_loss", "diverged", "epochs_completed")
        rows.append({**row, **{name: want[name] for name in names}})
    args = summary_args(store.get(sid).spec)  # arm order, tolerance and lr range of the spec
    reference = summarize(rows, num_classes=10, **args).model_dump(mode="json")
    _assert_close(summary, reference)
