"""The study run's description as the MLflow UI shows it, in a real browser (headless
Chromium) on a real ``mlflow server`` over a real SQLite store: issue 21, probe Q8."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from study.records.ids import new_study_id
from study.records.store import StudyStore, sqlite_uri
from study.spec.study_spec import parse_spec
from study.vocab import Tag

pytestmark = pytest.mark.slow

NAME = "[click](https://evil.example/x) ![pixel](https://evil.example/p.png) www.evil.example"
SPEC = {
    "name": NAME,
    "dataset": "digits",
    "model": {"name": "mlp"},
    "arms": [{"name": "sgd", "optimizer": "sgd"}],
    "search": {"lr": {"low": 0.01, "high": 1.0}, "init": ["normal"]},
}
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _mlflow_server(data_dir: Path, port: int) -> subprocess.Popen:
    mlflow = str(Path(sys.executable).parent / "mlflow")
    log = open(data_dir / "mlflow.log", "wb")  # noqa: SIM115 (the child's)
    process = subprocess.Popen(
        [
            mlflow,
            "server",
            "--backend-store-uri",
            sqlite_uri(data_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while True:
        assert process.poll() is None, (data_dir / "mlflow.log").read_text()[-2000:]
        try:
            with DIRECT.open(f"http://127.0.0.1:{port}/health", timeout=2):
                return process
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail("mlflow server did not come up")
            time.sleep(0.5)


def test_q8_a_name_with_markdown_is_no_link_or_image_in_the_mlflow_ui(tmp_path):
    """Probe Q8: a study name with Markdown put a working external link and a remote image
    into the MLflow run description. In the MLflow UI the description now shows the name as
    code: no link to it and no image. As a control, a second run carries the name raw (the
    description written before this change): there the same page has both."""
    store = StudyStore(sqlite_uri(tmp_path))
    sid = new_study_id()
    record = store.create_study(
        parse_spec(SPEC), study_id=sid, report_url=f"http://127.0.0.1:8000/studies/{sid}/report"
    )
    run_id = store.study_run_id(sid)
    control = store.client.create_run(record.experiment_id, tags={Tag.NOTE: f"**{NAME}**"})
    port = _free_port()
    server = _mlflow_server(tmp_path, port)
    try:
        from playwright import sync_api as playwright

        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            try:
                page = browser.new_page()
                base = f"http://127.0.0.1:{port}/#/experiments/{record.experiment_id}/runs"

                def description(run: str):
                    page.goto(f"{base}/{run}")
                    note = page.locator('[data-testid="note-editor-preview-content"]')
                    note.wait_for(timeout=60_000)
                    return note

                note = description(run_id)
                assert "[click](https://evil.example/x)" in note.inner_text()
                assert note.locator('a[href*="evil"]').count() == 0
                assert note.locator('img[src*="evil"]').count() == 0
                assert note.locator("code").first.inner_text() == NAME
                assert note.locator('a[href*="/report"]').count() == 1  # the service's link
                raw = description(control.info.run_id)
                assert raw.locator('a[href*="evil.example/x"]').count() == 1
                assert raw.locator('img[src*="evil.example/p.png"]').count() == 1
            finally:
                browser.close()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
