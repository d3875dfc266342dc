"""``hprobust run / trials`` on the embedded default (real Ray, real MLflow SQLite)."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
import yaml
from typer.testing import CliRunner

from study.cli import app

pytestmark = pytest.mark.slow

SPEC = {
    "name": "cli",
    "dataset": "digits",
    "model": {"name": "mlp", "hidden": [16]},
    "arms": [
        {"name": "sgd", "optimizer": "sgd", "momentum": 0.9},
        {"name": "insgd", "optimizer": "insgd", "momentum": 0.9},
    ],
    "search": {"lr": {"low": 1e-2, "high": 1.0}, "init": ["kaiming_normal"]},
    "trials_per_arm": 2,
    "seeds": 1,
    "epochs": 2,
    "resources": {"cpus_per_trial": 1, "max_concurrent_trials": 2},
}


def _spec_file(tmp_path, data) -> str:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_bad_spec_exits_2_names_the_field_and_creates_nothing(tmp_path):
    bad = {**SPEC, "search": {"lr": {"low": -1, "high": 1.0}, "init": ["kaiming_normal"]}}
    data_dir = tmp_path / "store"
    result = CliRunner().invoke(
        app, ["run", _spec_file(tmp_path, bad), "--data-dir", str(data_dir)]
    )
    assert result.exit_code == 2
    assert "search.lr.low must be > 0, got -1" in result.output
    assert not data_dir.exists()


def test_a_bad_trial_niceness_exits_2_naming_it_and_creates_nothing(tmp_path):
    data_dir = tmp_path / "store"
    result = CliRunner().invoke(
        app,
        ["run", _spec_file(tmp_path, SPEC), "--data-dir", str(data_dir)],
        env={"HPROBUST_TRIAL_NICE": "-5"},
    )
    assert result.exit_code == 2
    assert "HPROBUST_TRIAL_NICE: must be an integer from 0" in result.output
    assert "got '-5'" in result.output
    assert not data_dir.exists()


def test_run_needs_a_spec_or_resume(tmp_path):
    result = CliRunner().invoke(app, ["run", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2 and "--resume" in result.output


def test_run_then_trials_then_resume_refused(ray_local, tmp_path):
    data_dir = tmp_path / "store"
    runner = CliRunner()
    result = runner.invoke(app, ["run", _spec_file(tmp_path, SPEC), "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    match = re.fullmatch(r"study (s\d{8}-\d{6}-[0-9a-f]{6})", first)
    assert match, first
    sid = match.group(1)
    # the design's warnings right after the id (a grid cut to 2 points, 1 seed), the summary's
    # tables at the end: trials, cells, best of each arm
    assert "warning: trials_per_arm 2 is less than the grid's 9 points" in result.output
    assert "warning: only 1 seed: no replicate intervals" in result.output
    assert "Robustness per arm and init" in result.output
    assert re.search(r"\n sgd +2 +2 +0\.\d{3} ", result.output)
    assert re.search(r"\n insgd +2 +2 +0\.\d{3} ", result.output)
    assert "insgd vs sgd: not enough data for a verdict (1 seed, 2 points" in result.output
    assert "4/4 finished" in result.output
    assert "Ray" not in result.output  # no Ray notices between the lines
    assert (data_dir / "mlflow.db").is_file() and (data_dir / "mlartifacts").is_dir()

    as_csv = runner.invoke(app, ["trials", sid, "--data-dir", str(data_dir), "--format", "csv"])
    assert as_csv.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(as_csv.output)))
    assert len(rows) == 4
    assert list(rows[0])[:9] == [
        "arm", "lr", "init", "init_scale", "seed", "val_acc", "val_loss", "diverged", "status",
    ]  # fmt: skip
    assert "duration_s" in rows[0] and "run_id" in rows[0]  # then every other key, by name
    assert {r["status"] for r in rows} == {"finished"}

    as_json = runner.invoke(app, ["trials", sid, "--data-dir", str(data_dir), "--format", "json"])
    parsed = json.loads(as_json.output)
    assert [r["arm"] for r in parsed] == ["sgd", "sgd", "insgd", "insgd"]
    assert all(0 <= r["val_acc"] <= 1 for r in parsed)

    table = runner.invoke(app, ["trials", sid, "--data-dir", str(data_dir)], env={"COLUMNS": "160"})
    assert table.exit_code == 0 and "kaiming_normal" in table.output

    again = runner.invoke(app, ["run", "--resume", sid, "--data-dir", str(data_dir)])
    assert again.exit_code == 2 and "already finished" in again.output

    unknown = runner.invoke(app, ["trials", "s20990101-000000-abcdef", "--data-dir", str(data_dir)])
    assert unknown.exit_code == 2 and "no study" in unknown.output
    bad_format = runner.invoke(app, ["trials", sid, "--data-dir", str(data_dir), "--format", "x"])
    assert bad_format.exit_code == 2 and "--format must be one of" in bad_format.output


# A proxy on a closed local port: any download fails at once, whatever network there is.
OFFLINE = {"https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9"}


def test_missing_dataset_is_refused_before_anything_is_recorded(ray_local, tmp_path):
    """CIFAR-10 not on disk and not downloadable: exit 2 with the dataset's own message (where
    it looked, what to download, where to put it), no study recorded, no trial, no traceback."""
    spec = {**SPEC, "dataset": {"name": "cifar10", "augment": False}, "model": {"name": "mlp"}}
    data_dir = tmp_path / "store"
    result = CliRunner(env=OFFLINE).invoke(
        app, ["run", _spec_file(tmp_path, spec), "--data-dir", str(data_dir)]
    )
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "the study cannot run, nothing was recorded" in text
    assert f"dataset 'cifar10' is not in {data_dir / 'datasets'}" in text
    assert "could not be downloaded" in text
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in text
    assert "Traceback" not in result.output and len(result.output.splitlines()) < 15
    assert not (data_dir / "mlflow.db").exists()


def test_a_study_whose_every_trial_failed_exits_1(ray_local, tmp_path):
    """Trials that crash for real (BatchNorm on a batch of one 1x1 feature map): the study
    records them failed and ``hprobust run`` says so and exits 1."""
    spec = {
        **SPEC,
        "name": "crash",
        "dataset": {"name": "synthetic", "shape": [1, 8, 8], "n_train": 8, "n_val": 4},
        "model": {"name": "mobilenetv3_small"},
        "batch_size": 1,
        "trials_per_arm": 1,
        "epochs": 1,
    }
    result = CliRunner().invoke(
        app, ["run", _spec_file(tmp_path, spec), "--data-dir", str(tmp_path / "store")]
    )
    assert result.exit_code == 1, result.output
    text = " ".join(result.output.split())
    assert "every trial failed" in text
    assert "Expected more than 1 value per channel" in text
