"""The body of ``POST /studies`` (and ``POST /suites``) as one dependency: the
Idempotency-Key header, the content type, the bounded JSON or YAML, and the spec (or suite)
validated from it.

Every refusal is a :class:`~study.errors.SpecError` naming the field (``body``, the header, or
a spec field), the rule and the value: a 422 (service/errors.py). The body's size is bounded
before this reads it (service/api/limits.py: 413).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from service.api.origin import YAML_TYPES
from study.bounded import BoundedInputError, load_json, load_yaml
from study.errors import SpecError
from study.records.ids import IDEMPOTENCY_KEY_RE, IDEMPOTENCY_KEY_RULE
from study.spec.study_spec import StudySpec, parse_spec
from study.spec.suite import SuiteSpec, parse_suite

IDEMPOTENCY_HEADER = "Idempotency-Key"


@dataclass(frozen=True)
class SpecBody:
    """A valid spec, and the Idempotency-Key it was sent with (if any)."""

    spec: StudySpec
    idempotency_key: str | None


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is not None and not IDEMPOTENCY_KEY_RE.fullmatch(key):
        field = f"{IDEMPOTENCY_HEADER} (header)"
        raise SpecError([{"field": field, "rule": IDEMPOTENCY_KEY_RULE, "value": key}])
    return key


async def _document(request: Request, what: str) -> Any:
    """The request's document: YAML with a YAML ``Content-Type``, else JSON, read bounded (no
    YAML aliases/anchors, limited nesting, valid Unicode: :mod:`study.bounded`)."""
    raw = await request.body()
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip()
    is_yaml = content_type.lower() in YAML_TYPES
    try:
        data = (load_yaml(raw) if is_yaml else load_json(raw)) if raw.strip() else None
    except BoundedInputError as exc:
        rule = str(exc) if exc.field is None else str(exc).removeprefix(f"{exc.field} ")
        raise SpecError([{"field": exc.field or "body", "rule": rule, "value": None}]) from exc
    if data is None:
        raise SpecError([{"field": "body", "rule": f"is required ({what})", "value": None}])
    return data


async def spec_body(request: Request) -> SpecBody:
    """The spec of the request (:func:`_document`), validated off the event loop (a large
    spec takes a while)."""
    key = _idempotency_key(request)
    data = await _document(request, "a study spec")
    spec = await run_in_threadpool(parse_spec, data)
    return SpecBody(spec=spec, idempotency_key=key)


@dataclass(frozen=True)
class SuiteBody:
    """A valid suite, and the Idempotency-Key it was sent with (if any)."""

    suite: SuiteSpec
    idempotency_key: str | None


async def suite_body(request: Request) -> SuiteBody:
    """The suite of the request (:func:`_document`), each workload validated as a study."""
    key = _idempotency_key(request)
    data = await _document(request, "a suite")
    suite = await run_in_threadpool(parse_suite, data)
    return SuiteBody(suite=suite, idempotency_key=key)


SpecBodyDep = Annotated[SpecBody, Depends(spec_body)]
SuiteBodyDep = Annotated[SuiteBody, Depends(suite_body)]
