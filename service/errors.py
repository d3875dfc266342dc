"""Exception -> HTTP status, in one place.

=============================================  ======
StudyNotFoundError, a missing plot (LookupError) 404
StudyStateError (e.g. cancel a finished study)   409
SpecError / ConfigError / a broken service limit 422  (``problems``: field, rule, value)
IdempotencyKeyReusedError (key, other spec)      422  (the field is the header)
RayRefusedError (Ray answered with an error)     502
RayUnavailableError, MLflow unreachable          503
StoreUnavailableError (store busy/unreachable)   503
StoreFullError (the store has no space left)     507
=============================================  ======

A body above HPROBUST_MAX_BODY_BYTES is answered 413 by the middleware that counts it
(service/api/limits.py), before any route or handler here sees it.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from service.jobs import RayRefusedError, RayUnavailableError
from study.bounded import preview
from study.errors import (
    ConfigError,
    HprobustError,
    IdempotencyKeyReusedError,
    SpecError,
    StoreFullError,
    StoreUnavailableError,
    StudyNotFoundError,
    StudyStateError,
)

log = logging.getLogger("hprobust.service")


class TrackingUnavailableError(HprobustError, ConnectionError):
    """The MLflow tracking store cannot be reached."""


class PlotNotFoundError(HprobustError, LookupError):
    """The study has no such plot (yet)."""


def problems_response(problems: list[dict[str, Any]], status: int = 422) -> JSONResponse:
    """A 422 listing ``problems``. Each value is quoted by :func:`study.bounded.preview`: at
    most a short prefix, non-finite numbers as text, so the answer is always valid JSON."""
    safe = [
        {
            "field": str(preview(str(p.get("field", "spec")), limit=200)),
            "rule": str(preview(str(p.get("rule", "is invalid")), limit=500)),
            "value": preview(p.get("value")),
        }
        for p in problems[:50]
    ]
    lines = [
        f"{p['field']} {p['rule']}, got {json.dumps(p['value'], ensure_ascii=False)}" for p in safe
    ]
    body = {"detail": "; ".join(lines), "problems": safe}
    return JSONResponse(jsonable_encoder(body), status_code=status)


def _message(status: int, exc: BaseException) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    """Register the mapping above on ``app``."""

    @app.exception_handler(SpecError)
    async def _spec(request: Request, exc: SpecError) -> JSONResponse:
        return problems_response(exc.problems)

    @app.exception_handler(ConfigError)
    async def _config(request: Request, exc: ConfigError) -> JSONResponse:
        return problems_response([{"field": "spec", "rule": str(exc), "value": None}])

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {
                "field": ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "request",
                "rule": str(err.get("msg", "is invalid")),
                "value": err.get("input"),
            }
            for err in exc.errors()
        ]
        return problems_response(problems)

    @app.exception_handler(StudyNotFoundError)
    async def _not_found(request: Request, exc: StudyNotFoundError) -> JSONResponse:
        return _message(404, exc)

    @app.exception_handler(PlotNotFoundError)
    async def _plot_not_found(request: Request, exc: PlotNotFoundError) -> JSONResponse:
        return _message(404, exc)

    @app.exception_handler(StudyStateError)
    async def _state(request: Request, exc: StudyStateError) -> JSONResponse:
        return _message(409, exc)

    @app.exception_handler(RayUnavailableError)
    async def _ray(request: Request, exc: RayUnavailableError) -> JSONResponse:
        log.warning("Ray unavailable: %s", exc)
        return _message(503, exc)

    @app.exception_handler(RayRefusedError)
    async def _ray_refused(request: Request, exc: RayRefusedError) -> JSONResponse:
        log.warning("Ray refused a request: %s", exc)
        return _message(502, exc)

    @app.exception_handler(TrackingUnavailableError)
    async def _mlflow(request: Request, exc: TrackingUnavailableError) -> JSONResponse:
        log.warning("MLflow unavailable: %s", exc)
        return _message(503, exc)

    @app.exception_handler(StoreUnavailableError)
    async def _store_unavailable(request: Request, exc: StoreUnavailableError) -> JSONResponse:
        log.warning("study store unavailable: %s", exc)
        return _message(503, exc)

    @app.exception_handler(StoreFullError)
    async def _store_full(request: Request, exc: StoreFullError) -> JSONResponse:
        log.error("study store full: %s", exc)
        return _message(507, exc)

    @app.exception_handler(IdempotencyKeyReusedError)
    async def _key_reused(request: Request, exc: IdempotencyKeyReusedError) -> JSONResponse:
        rule = str(exc).removeprefix("Idempotency-Key ")
        return problems_response(
            [{"field": "Idempotency-Key (header)", "rule": rule, "value": exc.key}]
        )
