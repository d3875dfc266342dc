"""``hprobust ui`` (:mod:`service.cli.ui`): the MLflow UI over the embedded store, a real
``mlflow server`` child on a free port."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
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


def _get(url: str, auth: tuple[str, str] | None = None, data: bytes | None = None):
    """(status, JSON body or None) of a request to the UI, with basic auth when given."""
    import base64
    import urllib.error

    request = urllib.request.Request(url, data=data)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if auth is not None:
        token = base64.b64encode(":".join(auth).encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with DIRECT.open(request, timeout=5) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, None


def test_ui_serves_mlflow_on_the_store_to_its_reader_only(tmp_path):
    """The UI over the store of ``hprobust run``, behind MLflow's basic-auth app (issue 21,
    Q4/Q5): nothing without an account, reads with the read-only one (printed), no change
    with it."""
    import stat

    port = _free_port()
    command = ["ui", "--data-dir", str(tmp_path), "--port", str(port)]
    process = subprocess.Popen(
        [sys.executable, "-c", "from service.cli import app; app()", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        lines = []  # MLflow logs to the same pipe; the UI line comes once the UI answers
        while not (lines and lines[-1].startswith("MLflow UI on")) and len(lines) < 50:
            assert process.poll() is None, "".join(lines)
            lines.append(process.stdout.readline().decode())
        first = lines[-1]
        assert first.startswith(f"MLflow UI on http://127.0.0.1:{port}"), lines
        accounts = json.loads((tmp_path / "mlflow-accounts.json").read_text())
        assert stat.S_IMODE((tmp_path / "mlflow-accounts.json").stat().st_mode) == 0o600
        reader = (accounts["reader"], accounts["reader_password"])
        assert f"sign in as reader / {reader[1]} (read-only)" in first
        assert accounts["writer_password"] not in first
        url = f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search?max_results=5"
        assert _get(url)[0] == 401
        status, body = _get(url, reader)
        assert status == 200 and "experiments" in body
        assert (tmp_path / "mlflow.db").is_file()
        delete = f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/delete"
        change = json.dumps({"experiment_id": "0"}).encode()
        assert _get(delete, None, change)[0] == 401
        assert _get(delete, reader, change)[0] == 403
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
