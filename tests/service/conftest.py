"""Fixtures of the service tests: a real Ray head, real ``hprobust serve`` processes, real
MLflow (SQLite) and real HTTP. Every process a fixture starts runs in its own process group
and is stopped by that fixture; nothing here ever runs ``ray stop``."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.stack import Child, free_port, group_alive, stop_group

HPROBUST = str(Path(sys.executable).parent / "hprobust")

#: A study small enough for CI: 2 arms x 2 points x 1 seed, 2 epochs of an MLP on digits.
TINY_SPEC: dict[str, Any] = {
    "name": "tiny",
    "dataset": "digits",
    "model": {"name": "mlp"},
    "arms": [
        {"name": "sgd", "optimizer": "sgd", "momentum": 0.9},
        {"name": "insgd", "optimizer": "insgd", "momentum": 0.9},
    ],
    "search": {"lr": {"low": 0.01, "high": 1.0}, "init": ["kaiming_normal"]},
    "sampler": "qmc",
    "trials_per_arm": 2,
    "seeds": 1,
    "epochs": 2,
    "batch_size": 64,
    "resources": {"cpus_per_trial": 1, "max_concurrent_trials": 2},
}


def tiny_spec(**changes: Any) -> dict[str, Any]:
    return {**TINY_SPEC, **changes}


class ServeProcess:
    """``hprobust serve`` as a child process (own process group), its output in a log file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path, port: int) -> None:
        self.args, self.env, self.log, self.port = args, env, log, port
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout_s: float = 180.0) -> ServeProcess:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [HPROBUST, "serve", "--port", str(self.port), *self.args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                raise AssertionError(f"hprobust serve exited {code}:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"hprobust serve did not answer in {timeout_s} s:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout_s: float = 120.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            stop_group(self.proc.pid, grace_s=1)
            raise

    def cleanup(self) -> None:
        if self.proc is not None and group_alive(self.proc.pid):
            stop_group(self.proc.pid, grace_s=10)


def serve_env(**settings: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HPROBUST_", "RAY_"))}
    env.update({f"HPROBUST_{k.upper()}": str(v) for k, v in settings.items()})
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture(scope="module")
def api_token() -> str:
    return secrets.token_urlsafe(24)


@pytest.fixture(scope="module")
def api(
    ray_head: Child, api_token: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServeProcess]:
    """``hprobust serve`` on the module's Ray head (no MLflow UI), token auth on, small limits."""
    data_dir = tmp_path_factory.mktemp("api-data")
    env = serve_env(
        ray_address=ray_head.url,
        ray_auth_token=ray_head.extra["token"],
        api_token=api_token,
        poll_interval_s=0.5,
        max_trials_per_study=40,
        max_epochs=50,
        max_body_bytes=8192,
        mlflow_ui_url="http://127.0.0.1:5999",
    )
    proc = ServeProcess(
        ["--data-dir", str(data_dir), "--no-mlflow-ui"], env, data_dir / "serve.log", free_port()
    )
    proc.data_dir = data_dir  # type: ignore[attr-defined]
    proc.start()
    try:
        yield proc
    finally:
        try:
            proc.terminate()
        finally:
            proc.cleanup()


def wait_for(predicate, *, timeout_s: float, what: str, poll_s: float = 1.0) -> Any:
    """Poll ``predicate()`` until it returns something truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(poll_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what} (last: {last!r})")
