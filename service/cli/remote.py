"""The service as the client commands find it: its URL (``--url``, ``HPROBUST_URL``, the URL a
running ``hprobust serve`` recorded, else ``http://127.0.0.1:8000``), its errors as the
commands' exit codes, and the service as a :class:`study.cli.source.Source` for ``hprobust
trials`` and ``hprobust summary`` (installed here: :func:`find`).

Exit codes, as the local commands': 2 for what the caller can fix (an unknown study, a study
in the wrong state for the command, a missing or wrong token, a bad request: the API's 4xx),
1 for the service failing (unreachable, a 5xx). Errors are one plain line on stderr.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from study.cli.options import fail
from study.errors import HprobustError, StudyNotFoundError

DEFAULT_URL = "http://127.0.0.1:8000"


def configured_url(url: str | None) -> str | None:
    """``url`` (``--url`` or ``HPROBUST_URL``, typer reads both), else the URL a running
    ``hprobust serve`` recorded (:mod:`service.endpoint`), else None."""
    if url:
        return url.rstrip("/")
    from service.endpoint import served

    current = served()
    return current["url"].rstrip("/") if current else None


def service_url(url: str | None) -> str:
    """The service a client command talks to: :func:`configured_url`, else the default."""
    return configured_url(url) or DEFAULT_URL


def client(url: str, token: str | None) -> Any:
    from service.client import Client

    return Client(url, token=token)


def message(exc: Any) -> str:
    """An ApiError as one line: the API's ``detail`` (a 422's problems joined)."""
    body = exc.body
    if isinstance(body, dict) and body.get("problems"):
        return "; ".join(f"{p['field']}: {p['rule']}" for p in body["problems"])
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])
    return f"HTTP {exc.status}: {body}"


@contextlib.contextmanager
def api_errors(url: str) -> Iterator[None]:
    """Turn the API's errors into the commands' exits (see the module doc)."""
    import httpx

    from service.client import ApiError

    try:
        yield
    except ApiError as exc:
        text = message(exc)
        if exc.status == 404:
            fail(f"{text} at {url}", 2)
        if exc.status == 401:
            fail(f"{text} (the service wants a token: --token or HPROBUST_API_TOKEN)", 2)
        fail(text, 2 if exc.status < 500 else 1)
    except httpx.HTTPError as exc:
        fail(f"cannot reach the service at {url}: {exc}", 1)


class ServiceError(HprobustError):
    """The service could not answer (unreachable, or an error that is not a 404)."""


class RemoteSource:
    """The service at ``url`` as a :class:`study.cli.source.Source`."""

    def __init__(self, url: str, token: str | None) -> None:
        self.where = f"at {url}"
        self.url = url
        self.client = client(url, token)

    def _call(self, fn: Any, *args: Any) -> Any:
        import httpx

        from service.client import ApiError

        try:
            return fn(*args)
        except ApiError as exc:
            if exc.status == 404:
                raise StudyNotFoundError(message(exc)) from None
            raise ServiceError(message(exc)) from None
        except httpx.HTTPError as exc:
            raise ServiceError(f"cannot reach the service at {self.url}: {exc}") from None

    def study(self, study_id: str) -> dict[str, Any]:
        return self._call(self.client.study, study_id)

    def trials(self, study_id: str) -> list[dict[str, Any]]:
        return self._call(self.client.trials, study_id)

    def summary(self, study_id: str) -> dict[str, Any]:
        return self._call(self.client.summary, study_id)

    def suite_summary(self, suite_id: str) -> Any:
        from study.analysis.suite_schema import SuiteSummary

        return SuiteSummary.model_validate(self._call(self.client.suite_summary, suite_id))


def find(url: str | None, token: str | None) -> RemoteSource | None:
    """The configured service (:func:`configured_url`) as a source, or None."""
    found = configured_url(url)
    return RemoteSource(found, token) if found else None
