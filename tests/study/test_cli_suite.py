"""``hprobust run SUITE.yaml`` refusals and ``hprobust summary SUITE_ID`` (real MLflow SQLite;
no Ray: nothing here trains)."""

from __future__ import annotations

import json

import yaml
from typer.testing import CliRunner

from study.cli import app
from study.records.store import StudyStore, sqlite_uri
from study.records.suites import SuiteStore
from study.spec.suite import parse_suite

SUITE = {
    "name": "cli-suite",
    "dataset": "digits",
    "arms": [
        {"name": "sgd", "optimizer": "sgd", "momentum": 0.9},
        {"name": "insgd", "optimizer": "insgd", "momentum": 0.9},
    ],
    "search": {"lr": {"low": 0.01, "high": 1.0, "points": 2}, "init": ["kaiming_normal"]},
    "seeds": 2,
    "epochs": 1,
    "workloads": [
        {"name": "mlp8", "model": {"name": "mlp", "hidden": [8]}},
        {"name": "mlp16", "model": {"name": "mlp", "hidden": [16]}},
    ],
}


def test_a_bad_workload_exits_2_names_it_and_records_nothing(tmp_path) -> None:
    bad = {**SUITE, "workloads": [*SUITE["workloads"], {"name": "w", "model": {"name": "nope"}}]}
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(bad))
    data_dir = tmp_path / "store"
    result = CliRunner().invoke(app, ["run", str(path), "--data-dir", str(data_dir)])
    assert result.exit_code == 2, result.output
    assert "workloads.w.model" in result.output
    assert not data_dir.exists()


def test_summary_takes_a_suite_id(tmp_path) -> None:
    store = StudyStore(sqlite_uri(tmp_path), secret=b"k" * 32)
    record, replayed = SuiteStore(store).create_suite(parse_suite(SUITE))
    assert not replayed
    states = {s.id: s for s in store.states()}
    assert {states[i].suite_id for _, i in record.studies} == {record.id}
    assert [states[i].workload for _, i in record.studies] == ["mlp8", "mlp16"]
    result = CliRunner().invoke(app, ["summary", record.id, "--data-dir", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["suite_id"] == record.id and summary["partial"] is True
    assert [w["name"] for w in summary["workloads"]] == ["mlp8", "mlp16"]
    assert summary["comparisons"][0]["verdict"] == "pending"
    text = CliRunner().invoke(app, ["summary", record.id, "--data-dir", str(tmp_path)])
    assert text.exit_code == 0 and "insgd vs sgd" in text.output
    missing = CliRunner().invoke(
        app, ["summary", "u20000101-000000-abcdef", "--data-dir", str(tmp_path)]
    )
    assert missing.exit_code == 2 and "no suite" in missing.output
