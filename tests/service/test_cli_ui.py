"""``hprobust ui`` (:mod:`service.cli.ui`): the MLflow UI over the embedded store, a real
``mlflow server`` child on a free port."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from typer.testing import CliRunner

from service.cli import app

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: Straight to the local UI: ``urlopen``'s process-wide opener keeps the proxies it first saw,
#: and offline tests (tests/study/test_cli_run.py, test_preflight) set a refusing proxy.
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def test_ui_serves_mlflow_on_the_store(tmp_path):
    port = _free_port()
    command = ["ui", "--data-dir", str(tmp_path), "--port", str(port)]
    process = subprocess.Popen(
        [sys.executable, "-c", "from service.cli import app; app()", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, process.stdout.read().decode()[-2000:]
            try:
                url = f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search?max_results=5"
                with DIRECT.open(url, timeout=2) as response:
                    body = json.loads(response.read())
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("the MLflow UI did not come up")
                time.sleep(0.5)
        assert "experiments" in body
        assert (tmp_path / "mlflow.db").is_file()
    finally:
        import os
        import signal

        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def test_ui_refuses_a_taken_port_naming_it(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["ui", "--data-dir", str(tmp_path), "--port", str(port)])
    assert result.exit_code == 1
    assert f"port {port} on 127.0.0.1 is taken" in " ".join(result.output.split())
    assert not (tmp_path / "mlflow.db").exists()  # refused before the store was opened


def test_ui_stops_quietly_on_ctrl_c(tmp_path):
    """SIGINT (Ctrl-C) to ``hprobust ui``: the server stops, the port is free again, exit 0,
    two lines of output and no traceback."""
    import os
    import signal

    from service.stack import port_is_free

    port = _free_port()
    hprobust = str(__import__("pathlib").Path(sys.executable).parent / "hprobust")
    process = subprocess.Popen(
        [hprobust, "ui", "--data-dir", str(tmp_path), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        first = process.stdout.readline()  # printed once the UI answers
        assert first.startswith(f"MLflow UI on http://127.0.0.1:{port}"), first
        os.kill(process.pid, signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
    assert process.returncode == 0, err
    assert out.strip() == "MLflow UI stopped"
    assert err.strip() == f"its log: {tmp_path / 'mlflow-ui.log'}"
    assert port_is_free(port)
