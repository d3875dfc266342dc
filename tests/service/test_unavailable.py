"""With Ray and MLflow unreachable the service still starts, says which one is down, and
answers 503 (never 500) where it needs them."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from service.stack import free_ports
from tests.service.conftest import ServeProcess, serve_env, tiny_spec

pytestmark = pytest.mark.slow


def test_503_names_what_is_down(tmp_path: Path) -> None:
    ray_port, mlflow_port, port = free_ports(3)  # nothing listens on the first two
    env = serve_env(
        ray_address=f"http://127.0.0.1:{ray_port}",
        mlflow_uri=f"http://127.0.0.1:{mlflow_port}",
        poll_interval_s=0.5,
    )
    serve = ServeProcess(["--data-dir", str(tmp_path)], env, tmp_path / "serve.log", port)
    serve.start()
    try:
        assert httpx.get(f"{serve.url}/healthz").json() == {"status": "ok"}
        ready = httpx.get(f"{serve.url}/readyz", timeout=120)
        assert ready.status_code == 503
        body = ready.json()
        assert body["status"] == "unavailable"
        assert body["ray"].startswith(f"unreachable at http://127.0.0.1:{ray_port}")
        assert body["mlflow"].startswith("unreachable")
        for method, path in [("GET", "/studies"), ("GET", "/studies/s20261125-031500-a1b2c3")]:
            r = httpx.request(method, f"{serve.url}{path}", timeout=120)
            assert r.status_code == 503, r.text
            assert "MLflow is not reachable" in r.json()["detail"]
        r = httpx.post(f"{serve.url}/studies", json=tiny_spec(), timeout=120)
        assert r.status_code == 503, r.text
    finally:
        try:
            serve.terminate()
        finally:
            serve.cleanup()
