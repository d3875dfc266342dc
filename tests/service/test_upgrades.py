"""Studies recorded by older versions (what ``hprobust ui`` does first): a finished study whose
stored summary.json is summary v2 gets it recomputed from its trials as the current version,
with its plots and the study run's description (which states the verdicts); reads do not
wait for it. A real SQLite MLflow store, trial runs in the tracking layout."""

from __future__ import annotations

import pytest

from service.upgrades import upgrade_summaries
from study.analysis import SUMMARY_VERSION, summarize
from study.records.store import StudyStore
from study.spec.study_spec import parse_spec
from tests.study.records.test_records import SPEC, trial_run


@pytest.fixture
def store(mlflow_sqlite_uri):
    return StudyStore(mlflow_sqlite_uri)


def _v2(summary: dict) -> dict:
    """``summary`` as version 2 stored it: no replicate keys, a seed-bootstrap setting."""
    old = {**summary, "version": 2, "settings": {**summary["settings"], "n_seed_bootstrap": 2000}}
    old["comparisons"] = [
        {k: v for k, v in c.items() if k not in ("auc_p", "lr_shift_decades", "range_cut")}
        | {"verdict": "more_robust"}
        for c in summary["comparisons"]
    ]
    return old


def test_an_older_finished_summary_is_recomputed_and_stored_once(store):
    record = store.create_study(parse_spec(SPEC))
    sid = record.id
    for arm, acc in (("sgd", 0.6), ("insgd", 0.8)):
        for point in (0, 1):
            for seed in (0, 1):
                trial_run(store, sid, arm=arm, point=point, seed=seed, status="finished", acc=acc)
    rows = store.trials(sid)
    current = summarize(rows, num_classes=10, arms=["sgd", "insgd"]).model_dump(mode="json")
    store.store_results(sid, _v2(current), rows)
    store.set_status(sid, "finished")
    live = store.create_study(parse_spec(SPEC)).id  # queued: not touched

    assert store.stored_summary(sid)["version"] == 2
    # a read gives the current version already, recomputed from the trials
    read = store.summary(sid)
    assert read["version"] == SUMMARY_VERSION and "n_seed_bootstrap" not in read["settings"]
    assert read["comparisons"][0]["verdict"] == "not_enough_data"  # 2 seeds, 2 points

    seen: list[str] = []
    assert upgrade_summaries(store, on_study=seen.append) == [sid] == seen
    stored = store.stored_summary(sid)
    assert stored["version"] == SUMMARY_VERSION and stored["comparisons"] == read["comparisons"]
    assert store.stored_summary(live) is None
    assert store.plot(sid, "lr_curves")[:8] == b"\x89PNG\r\n\x1a\n"
    note = store.client.get_run(store.study_run_id(sid)).data.tags["mlflow.note.content"]
    assert "- insgd vs sgd: not enough data for a verdict (2 seeds, 2 points" in note
    assert upgrade_summaries(store) == []  # a second pass changes nothing
