"""Issue 23, item 3: MLflow that reads at a glance, in a real browser (headless Chromium) on a
real ``mlflow server`` (MLflow 3.17) over a real SQLite store holding a study of more than 100
trials, written by the study's own MLflow writer (:class:`study.tune.tracking.MlflowRecorder`,
driven through its Tune callbacks without Ray: fast). Screenshots go to the test's tmp dir."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import types

import pytest

from study.records.layout import runs_url, ui_home_url
from study.records.store import StudyStore, sqlite_uri
from study.spec.study_spec import parse_spec
from tests.study.records.test_note_in_browser import _free_port, _mlflow_server

pytestmark = pytest.mark.slow

RUN_NAME = "attributes.`Run Name`"  # the runs table's column of run names
ACC = "params.`acc`"  # the column of the final accuracy, rounded
ML = "workflowType=machine_learning"

#: 2 arms x 6 lrs x 2 inits x 5 seeds = 120 trials: more than MLflow's page of 100 runs.
SPEC = {
    "name": "ui-glance",
    "dataset": "digits",
    "model": {"name": "mlp"},
    "arms": [{"name": "sgd", "optimizer": "sgd"}, {"name": "insgd", "optimizer": "insgd"}],
    "search": {
        "lr": {"low": 1e-3, "high": 100.0, "points_per_decade": 1},
        "init": ["kaiming_normal", "xavier_normal"],
    },
    "sampler": "grid",
    "seeds": 5,
    "epochs": 1,
}


def _record_trials(store: StudyStore, study_id: str, spec) -> int:
    """Every trial of the study through the recorder's Tune callbacks: start, one epoch's
    result, complete (an accuracy with many digits, as training gives)."""
    from study.tune.searcher import ARM_KEY, INDEX_KEY, POINT_KEY
    from study.tune.tracking import MlflowRecorder

    recorder = MlflowRecorder(study_id, store.tracking_uri, spec.model_dump(mode="json"))
    recorder._store = store  # the test's store (a driver's link gives the driver's)
    lrs = [10.0**k for k in range(-3, 3)]
    n = 0
    for arm in spec.arm_names:
        for point, (lr, init) in enumerate((lr, i) for lr in lrs for i in spec.search.init):
            for seed in range(spec.seeds):
                config = {ARM_KEY: arm, POINT_KEY: point, INDEX_KEY: seed, "lr": lr, "init": init}
                trial = types.SimpleNamespace(trial_id=f"t{n:04d}", config=config)
                recorder.on_trial_start(0, [], trial)
                acc = 0.5 + 0.4 * ((n * 37) % 101) / 101 + 1e-9 * n  # 10+ digits
                result = {"epoch": 1, "val_acc": acc, "val_loss": 1.0 / acc, "train_loss": 0.5}
                recorder.on_trial_result(0, [], trial, result)
                recorder.on_trial_complete(0, [], trial)
                n += 1
    return n


def test_mlflow_opens_on_the_studys_trial_runs_with_readable_names_and_columns(tmp_path):
    store = StudyStore(sqlite_uri(tmp_path))
    spec = parse_spec(SPEC)
    record = store.create_study(spec)
    total = _record_trials(store, record.id, spec)
    assert total == spec.total_trials == 120
    study_run = store.study_run_id(record.id)
    port = _free_port()
    server = _mlflow_server(tmp_path, port)
    ui = f"http://127.0.0.1:{port}"
    shots = tmp_path / "shots"
    shots.mkdir()
    try:
        from playwright import sync_api as playwright

        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=["--headless", "--no-sandbox", "--disable-gpu"],
            )
            try:
                page = browser.new_context(viewport={"width": 1600, "height": 1000}).new_page()

                # The root link `hprobust serve` prints: the experiment list, model training.
                page.goto(ui_home_url(ui))
                experiment = f"{spec.name} · {record.id}"  # named by the study's name and id
                page.get_by_text(experiment, exact=True).first.wait_for(timeout=90_000)
                page.screenshot(path=shots / "1-home.png")
                body = page.inner_text("body")
                assert "Welcome to MLflow" not in body and "Model registry" in body, body[:600]

                # The study link: its trial runs, flat, the best first, with their columns.
                page.goto(runs_url(ui, record.experiment_id))
                page.get_by_text("100 matching runs").wait_for(timeout=90_000)
                name_links = page.locator(f"[role=gridcell][col-id='{RUN_NAME}'] a")
                name_links.first.wait_for(timeout=60_000)
                page.screenshot(path=shots / "2-study-link.png")
                headers = {
                    h.strip()
                    for h in page.locator("[role=columnheader][col-id]").all_inner_texts()
                    if h.strip()
                }
                assert {"arm", "lr", "init", "seed", "acc", "loss"} <= headers, headers
                assert "init_scale" not in headers  # not searched by this study
                names = [n.strip() for n in name_links.all_inner_texts()]
                assert f"study {spec.name}" not in names  # the trial runs only
                short = re.compile(r"^(sgd|insgd) (1e-3|1e-2|0\.1|1|10|1e2) (kaiming|xavier) s\d$")
                assert names and all(short.fullmatch(n) for n in names), names[:5]
                # the names show whole in MLflow's default Run Name column (none cut short)
                cut = name_links.evaluate_all(
                    "links => links.filter(a => a.scrollWidth > a.clientWidth + 1)"
                    ".map(a => a.innerText)"
                )
                assert cut == [], cut
                # the final accuracy, rounded for display, and the best first
                accs = [
                    t.strip()
                    for t in page.locator(
                        "[role=gridcell][col-id='params.`acc`']"
                    ).all_inner_texts()
                ]
                assert accs and all(re.fullmatch(r"0\.\d{3}", a) for a in accs), accs[:5]
                assert accs[0] == max(accs), accs[:5]
                # every trial: past the first 100 with "Load more", none of the study run's
                # children left behind a collapsed row
                page.get_by_role("button", name="Load more").click()
                page.get_by_text(f"{total} matching runs").wait_for(timeout=60_000)
                page.screenshot(path=shots / "3-every-trial.png")

                # The study run, by the link in the experiment's description (asserted in
                # tests/study/records/test_records.py): its summary, and the sidebar stays in
                # model training (no "Evaluations").
                page.goto(f"{ui}/#/experiments/{record.experiment_id}/runs/{study_run}?{ML}")
                page.get_by_text(f"hprobust study {spec.name}").first.wait_for(timeout=60_000)
                page.screenshot(path=shots / "4-study-run.png")
                body = page.inner_text("body")
                assert "Evaluations" not in body and "Model registry" in body, body[:600]
            finally:
                browser.close()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
