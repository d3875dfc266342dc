"""A small HTTP client of the API (what ``hprobust submit``, ``studies``, ``status``,
``cancel``, ``resume``, ``report`` and a service's ``trials``/``summary`` use)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

from study.errors import HprobustError
from study.vocab import ENDED


class ApiError(HprobustError):
    """The API answered with an error status."""

    def __init__(self, status: int, body: Any) -> None:
        self.status, self.body = status, body
        if isinstance(body, dict) and body.get("problems"):
            lines = [
                f"  {p['field']}: {p['rule']}, got {p.get('value')!r}" for p in body["problems"]
            ]
            text = "the spec breaks these rules:\n" + "\n".join(lines)
        elif isinstance(body, dict) and "detail" in body:
            text = str(body["detail"])
        else:
            text = str(body)
        super().__init__(f"HTTP {status}: {text}")


class Client:
    def __init__(self, url: str, *, token: str | None = None, timeout: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def _json(self, response: httpx.Response) -> Any:
        try:
            body = response.json()
        except ValueError:
            body = response.text
        if response.status_code >= 400:
            raise ApiError(response.status_code, body)
        return body

    def submit(self, spec: Path | dict[str, Any]) -> dict[str, Any]:
        """POST the spec (a YAML file or a mapping); returns ``{id, status, links}``."""
        data = yaml.safe_load(Path(spec).read_text()) if isinstance(spec, Path) else spec
        return self._json(self.http.post("/studies", json=data))

    def submit_suite(self, suite: Path | dict[str, Any]) -> dict[str, Any]:
        """POST a suite (a YAML file or a mapping) to ``/suites``."""
        data = yaml.safe_load(Path(suite).read_text()) if isinstance(suite, Path) else suite
        return self._json(self.http.post("/suites", json=data))

    def suite(self, suite_id: str) -> dict[str, Any]:
        return self._json(self.http.get(f"/suites/{suite_id}"))

    def suite_summary(self, suite_id: str) -> dict[str, Any]:
        return self._json(self.http.get(f"/suites/{suite_id}/summary"))

    def study(self, study_id: str) -> dict[str, Any]:
        return self._json(self.http.get(f"/studies/{study_id}"))

    def summary(self, study_id: str) -> dict[str, Any]:
        return self._json(self.http.get(f"/studies/{study_id}/summary"))

    def studies(self, *, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The studies, newest first (the API's order)."""
        params: dict[str, Any] = {"limit": limit}
        if status:
            params["status"] = status
        return self._json(self.http.get("/studies", params=params))["data"]

    def trials(self, study_id: str) -> list[dict[str, Any]]:
        return self._json(self.http.get(f"/studies/{study_id}/trials"))["data"]

    def cancel(self, study_id: str) -> dict[str, Any]:
        return self._json(self.http.post(f"/studies/{study_id}/cancel"))

    def resume(self, study_id: str) -> dict[str, Any]:
        return self._json(self.http.post(f"/studies/{study_id}/resume"))

    def url(self, path: str) -> str:
        """The absolute URL of an API path (a link the API gave, e.g. ``/studies/ID/report``)."""
        return f"{self.http.base_url}".rstrip("/") + path

    def wait(
        self,
        study_id: str,
        *,
        poll_s: float = 2.0,
        timeout_s: float | None = None,
        on_update: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll the study until it ends; returns its last state."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            state = self.study(study_id)
            if on_update is not None:
                on_update(state)
            if state["status"] in ENDED:
                return state
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"study {study_id} still {state['status']} after {timeout_s} s")
            time.sleep(poll_s)
