"""``hprobust summary`` end to end on a real MLflow SQLite store: a study record made by
StudyStore, trial runs written in the shared MLflow layout, partial then finished."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from study.analysis import plots, summarize
from study.cli import app

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "digits-quick.yaml"
T = "hprobust."

# (arm, point, lr, init, val_acc, val_loss, diverged); digits has C = 10, seed 0 for all.
# Pairs insgd - sgd: +.05, +.10, +.80 (sgd diverged: .1), 0 -> mean .2375, wins 3.5/4
TRIALS = [
    ("sgd", 0, 0.01, "kaiming_normal", 0.90, 0.35, False),
    ("sgd", 1, 0.1, "kaiming_normal", 0.85, 0.45, False),
    ("sgd", 2, 3.0, "xavier_normal", None, None, True),
    ("sgd", 3, 0.003, "xavier_normal", 0.70, 0.90, False),
    ("insgd", 0, 0.01, "kaiming_normal", 0.95, 0.20, False),
    ("insgd", 1, 0.1, "kaiming_normal", 0.95, 0.18, False),
    ("insgd", 2, 3.0, "xavier_normal", 0.90, 0.30, False),
    ("insgd", 3, 0.003, "xavier_normal", 0.70, 0.95, False),
]


def _write_trial(client, experiment_id, study_id, arm, point, lr, init, acc, loss, diverged):
    from mlflow.entities import Metric, Param, RunTag

    key = f"{arm}/{point}/0"
    run = client.create_run(
        experiment_id,
        tags={
            T + "kind": "trial",
            T + "study_id": study_id,
            T + "arm": arm,
            T + "trial_key": key,
            T + "init": init,
            T + "seed": "0",
            T + "status": "running",
            "diverged": "false",
        },
    )
    params = {
        "arm": arm,
        "optimizer": arm,
        "lr": str(lr),
        "init": init,
        "init_scale": "1.0",
        "seed": "0",
        "point": str(point),
    }
    client.log_batch(run.info.run_id, params=[Param(k, v) for k, v in params.items()])
    if acc is None and loss is None and arm == "insgd":  # still running
        return
    metrics = [Metric("epochs_completed", 4.0, 0, 4)]
    if acc is not None:
        metrics += [Metric("val_acc", acc, 0, 4), Metric("val_loss", loss, 0, 4)]
    client.log_batch(
        run.info.run_id,
        metrics=metrics,
        tags=[RunTag("diverged", str(diverged).lower()), RunTag(T + "status", "finished")],
    )
    client.set_terminated(run.info.run_id, "FINISHED")


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    from study.records.store import StudyStore, sqlite_uri
    from study.spec.study_spec import load_spec

    data_dir = tmp_path_factory.mktemp("store")
    store = StudyStore(sqlite_uri(data_dir))
    record = store.create_study(load_spec(EXAMPLE))
    store.set_status(record.id, "running")
    for t in TRIALS:
        _write_trial(store.client, record.experiment_id, record.id, *t)
    # one more insgd trial, started and not finished
    _write_trial(
        store.client,
        record.experiment_id,
        record.id,
        "insgd",
        4,
        1.0,
        "kaiming_normal",
        None,
        None,
        False,
    )
    return store, record, data_dir


def _invoke(*args):
    result = CliRunner().invoke(app, ["summary", *args], env={"COLUMNS": "200"})
    return result


def test_partial_summary_tables(study):
    _, record, data_dir = study
    result = _invoke(record.id, "--data-dir", str(data_dir))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "PARTIAL" in out and record.id in out and "status: running" in out
    assert "no verdict until the study ends" in out
    # the verdict sentence comes first, built from the numbers: a running study states none
    first = out.index("insgd vs sgd: no verdict yet (the study is still running; the numbers")
    assert first < out.index("Robustness per arm")
    # lr range 1e-3..10 (4 decades): sgd kaiming (.9, .85 at x = -2, -1) .86875, xavier (.7 at
    # x = log10 .003, diverged .1 at log10 3) .39657; insgd .95 and .80218: AUC +0.243. g = .93:
    # only insgd kaiming holds it (1 decade of 2 inits): window +0.50. Best lrs: kaiming 0.01
    # both (insgd's tie goes to the lower lr), xavier 0.003 vs 3: shifts 0 and 3, median 1.5
    assert "AUC +0.243 – over 1 seed, LR window +0.50 – decades; its best lr sits 1.5 " in out
    for text in ("kaiming_normal", "xavier_normal", "Each arm against the baseline", "AUC↑"):
        assert text in out
    # sgd: best .900, worst .100 (diverged), divergence 25%; comparison +0.238, wins 88%
    assert "0.900" in out and "0.100" in out and "25%" in out
    assert "+0.237" in out or "+0.238" in out
    assert "88%" in out
    assert "8 finished trials used; left out: 1 running" in out
    assert "warning: only 1 seed" in out


def test_partial_summary_json_matches_summarize(study):
    _, record, data_dir = study
    result = _invoke(record.id, "--data-dir", str(data_dir), "--json")
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)  # stderr may hold MLflow's download bar
    assert got["partial"] is True and got["version"] == 3
    rows = [
        {
            "arm": a,
            "lr": lr,
            "init": i,
            "init_scale": 1.0,
            "seed": 0,
            "val_acc": acc,
            "val_loss": loss,
            "diverged": d,
        }
        for a, _, lr, i, acc, loss, d in TRIALS
    ]
    # the spec's arm order, tolerance and lr range (digits-quick: 1e-3 to 10)
    expected = summarize(
        rows, num_classes=10, arms=["sgd", "insgd"], lr_range=(1e-3, 10.0), complete=False
    ).model_dump(mode="json")
    assert got["reference"]["lr_range"] == [1e-3, 10.0]
    assert got["arms"] == expected["arms"]
    assert got["comparisons"] == expected["comparisons"]
    (c,) = got["comparisons"]
    assert c["n_points"] == 4
    assert c["mean_diff"] == pytest.approx(0.2375)
    assert c["win_rate"] == pytest.approx(0.875)
    assert got["settings"]["excluded"]["running"] == 1


def test_finished_study_shows_the_stored_summary(study, tmp_path):
    store, record, data_dir = study
    rows = store.trials(record.id)
    stored = summarize(rows, num_classes=10, arms=["sgd", "insgd"]).model_dump(mode="json")
    stored["warnings"].append("marker: read from summary.json")  # proves the CLI reads it
    paths = plots(rows, tmp_path / "plots", num_classes=10, summary=stored)
    store.store_results(record.id, stored, rows, paths)
    store.set_status(record.id, "finished")
    try:
        result = _invoke(record.id, "--data-dir", str(data_dir), "--json")
        assert result.exit_code == 0, result.output
        got = json.loads(result.stdout)  # stderr may hold MLflow's download bar
        assert got["partial"] is False and "marker: read from summary.json" in got["warnings"]
        assert store.plot(record.id, "heatmap")[:8] == b"\x89PNG\r\n\x1a\n"
        table = _invoke(record.id, "--data-dir", str(data_dir))
        assert table.exit_code == 0 and "PARTIAL" not in table.output
        assert "status: finished" in table.output
        assert "warning: marker: read from summary.json" in table.output
    finally:
        store.set_status(record.id, "running")


def test_a_stored_version_1_summary_is_recomputed(study, tmp_path):
    store, record, _data_dir = study
    rows = store.trials(record.id)
    store.store_results(record.id, {"arms": {}, "comparisons": [], "settings": {}}, rows, [])
    store.set_status(record.id, "finished")
    try:
        got = store.summary(record.id)
        assert got["version"] == 3 and got["partial"] is False
        assert got["arms"]["sgd"]["n_trials"] == 4
    finally:
        store.set_status(record.id, "running")


def test_a_stored_version_2_summary_of_a_finished_study_is_recomputed_as_version_3(study):
    """A study that finished under summary v2 keeps its summary.json (seed-bootstrap CIs, v2's
    verdict rules); reading it gives v3, recomputed from its trials, with a verdict (the
    study has ended), the new keys and no v2 key; the CLI shows it."""
    store, record, data_dir = study
    rows = store.trials(record.id)
    v2 = summarize(rows, num_classes=10, arms=["sgd", "insgd"]).model_dump(mode="json")
    v2["version"] = 2
    v2["settings"]["n_seed_bootstrap"] = 2000
    for c in v2["comparisons"]:
        for key in ("auc_p", "lr_shift_decades", "range_cut"):
            del c[key]
        c["verdict"] = "more_robust"  # what v2 might have said
    store.store_results(record.id, v2, rows, [])
    store.set_status(record.id, "finished")
    try:
        got = store.summary(record.id)
        assert got["version"] == 3 and got["partial"] is False
        assert "n_seed_bootstrap" not in got["settings"]
        (c,) = got["comparisons"]
        assert c["verdict"] == "not_enough_data"  # one seed, 4 points: no v2 verdict survives
        assert {"auc_p", "lr_shift_decades", "range_cut"} <= set(c)
        by_init = got["arms"]["insgd"]["by_init"]["kaiming_normal"]
        assert by_init["best_lr"] == 0.01 and by_init["range_cut"] == ["low", "high"]
        table = _invoke(record.id, "--data-dir", str(data_dir))
        assert table.exit_code == 0, table.output
        assert "insgd vs sgd: not enough data for a verdict (1 seed, 4 points" in table.output
    finally:
        store.set_status(record.id, "running")


def test_unknown_study_and_missing_store(study, tmp_path):
    _, _, data_dir = study
    result = _invoke("s20990101-000000-abcdef", "--data-dir", str(data_dir))
    assert result.exit_code == 2
    assert "no study" in result.output and "s20990101-000000-abcdef" in result.output
    missing = tmp_path / "nowhere"
    result = _invoke("s20990101-000000-abcdef", "--data-dir", str(missing))
    assert result.exit_code == 2 and "no study store" in result.output
    assert not missing.exists()  # nothing created for bad input


def test_summary_in_a_pipe_keeps_every_line_whole(study):
    """Issue 23: ``hprobust summary ID | cat`` cut the verdict ("no clear differen…") and split
    the comparison cells at 80 columns. The real console script, stdout a pipe, COLUMNS=40:
    the verdict sentence and each comparison row are whole lines; no redraws, no colour."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from study.analysis import present
    from study.cli.tables import as_summary

    store, record, data_dir = study
    hprobust = str(Path(sys.executable).parent / "hprobust")
    env = {k: v for k, v in os.environ.items() if k not in ("HPROBUST_URL", "COLUMNS")}
    done = subprocess.run(
        [hprobust, "summary", record.id, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "COLUMNS": "40"},
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    s = as_summary(store.summary(record.id))
    sentence = present.verdict_sentence(s.comparisons[0], s)
    assert len(sentence) > 80 and sentence in lines, done.stdout
    _, rows = present.comparison_table(s)
    for row in rows:  # each comparison row on one line, its cells in order
        assert any(all(cell in line for cell in row) for line in lines), (row, done.stdout)
    assert "\x1b" not in done.stdout and "\r" not in done.stdout
    assert max(len(line) for line in lines) > 40  # not fitted to COLUMNS
