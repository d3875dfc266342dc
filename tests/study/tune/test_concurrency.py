"""The runner runs no more trials at once than the Ray cluster can (issue 21, probe Q2), on a
real local Ray (2 CPUs) and a real MLflow SQLite store."""

from __future__ import annotations

import pytest

from study.driver import drive
from study.records.store import StudyStore, sqlite_uri
from study.spec.study_spec import parse_spec

pytestmark = pytest.mark.slow

SPEC = {
    "name": "q2",
    "dataset": "digits",
    "model": {"name": "mlp", "hidden": [8]},
    "arms": [{"name": "sgd", "optimizer": "sgd"}, {"name": "insgd", "optimizer": "insgd"}],
    "search": {"lr": {"low": 1e-2, "high": 1.0}, "init": ["normal"]},
    "sampler": "qmc",
    "trials_per_arm": 3,
    "seeds": 1,
    "epochs": 1,
    "batch_size": 256,
    "resources": {"cpus_per_trial": 0.25, "max_concurrent_trials": 12},
}


def most_at_once(intervals: list[tuple[int, int]]) -> int:
    """The most intervals ``[start, end]`` that hold one instant."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    live = most = 0
    for _, step in events:
        live += step
        most = max(most, live)
    return most


def test_most_at_once():
    assert most_at_once([(0, 10), (5, 15), (12, 20)]) == 2
    assert most_at_once([(0, 1), (1, 2)]) == 1  # an end before a start at the same instant


def test_q2_trials_at_once_are_capped_by_the_cluster(ray_local, tmp_path, capfd):
    """Probe Q2: 12 trials at once asked, a quarter of a CPU each, on a 2-CPU Ray: Ray alone
    would start 6 (all of them) here. The runner caps it at 2 (a CPU trial runs at least one
    thread) and says so on stderr; the trial runs recorded in MLflow never overlap by more."""
    store = StudyStore(sqlite_uri(tmp_path))
    record = store.create_study(parse_spec(SPEC))
    drive(
        record.id,
        tracking_uri=store.tracking_uri,
        storage=str(tmp_path / "ray_results"),
        data_dir=str(tmp_path / "datasets"),
    )
    assert store.get(record.id).status == "finished"
    err = capfd.readouterr().err
    assert "warning: resources.max_concurrent_trials 12 is more than the Ray cluster can run" in err
    assert "so at most 2 trials run at a time" in err
    runs = store.trial_runs(record.id)
    assert len(runs) == 6
    assert most_at_once([(r.info.start_time, r.info.end_time) for r in runs]) <= 2
