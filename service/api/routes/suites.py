"""``/suites``: submit, list, inspect, cancel and resume suites; their summary, figures and
report. What is done with a suite is :class:`service.suites.SuiteService`'s; the body of a
POST is :mod:`service.api.body`'s; errors become status codes in :mod:`service.errors`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from service.api.body import SuiteBodyDep
from service.api.deps import ReadTokenDep, SuiteServiceDep, TokenDep
from service.report import render_not_found
from service.schemas import (
    Message,
    Problems,
    SuiteCreated,
    SuitePublic,
    SuitesPublic,
    SuiteSummaryPublic,
)
from study.errors import StudyNotFoundError
from study.vocab import SuitePlotName

router = APIRouter(prefix="/suites", tags=["suites"])

NOT_FOUND = {404: {"model": Message, "description": "No suite with this id."}}
UNAUTHORIZED = {401: {"model": Message, "description": "Missing or wrong bearer token."}}
UNAVAILABLE = {503: {"model": Message, "description": "Ray or MLflow cannot be reached."}}
PNG = {200: {"content": {"image/png": {}}, "description": "The figure."}}


def _suite_body_schema() -> dict[str, Any]:
    ref = {"$ref": "#/components/schemas/SuiteCreate"}
    return {
        "requestBody": {
            "required": True,
            "description": "The suite (examples/suite-*.yaml), as JSON or YAML "
            "(Content-Type: application/yaml).",
            "content": {"application/json": {"schema": ref}, "application/yaml": {"schema": ref}},
        }
    }


@router.post(
    "",
    status_code=202,
    response_model=SuiteCreated,
    openapi_extra=_suite_body_schema(),
    responses={
        **UNAUTHORIZED,
        413: {"model": Message, "description": "Body larger than HPROBUST_MAX_BODY_BYTES."},
        200: {
            "model": SuiteCreated,
            "description": "A retry: the Idempotency-Key created this suite before, with the "
            "same document (header Idempotent-Replayed: true); nothing new was created.",
        },
        422: {
            "model": Problems,
            "description": "A workload breaks a rule or a service limit (the field names it: "
            "workloads.<name>.<key>), the workloads cannot be compared, or the "
            "Idempotency-Key is malformed or was used before with another suite.",
        },
        503: {
            "model": Message,
            "description": "MLflow cannot be written now; nothing was recorded: send it again.",
        },
    },
    summary="Submit a suite: one study per workload, all or none",
)
async def create_suite(
    request: Request,
    response: Response,
    _: TokenDep,
    body: SuiteBodyDep,
    service: SuiteServiceDep,
) -> SuiteCreated:
    """Validate every workload as a study, record the suite and all its studies (``queued``)
    or nothing, and let the scheduler run them as ordinary studies.

    Returns 202 with the suite, its studies and a ``Location`` header. Any other answer leaves
    nothing recorded (no suite, no study). **Idempotency-Key** works as for ``POST /studies``.
    """
    created, replayed = await run_in_threadpool(
        lambda: service.create(
            body.suite,
            study_report_url=lambda i: str(request.url_for("get_report", study_id=i)),
            suite_report_url=lambda i: str(request.url_for("get_suite_report", suite_id=i)),
            idempotency_key=body.idempotency_key,
        )
    )
    if replayed:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = str(request.url_for("get_suite", suite_id=created.id))
    return created


@router.get(
    "",
    response_model=SuitesPublic,
    responses={**UNAUTHORIZED, **UNAVAILABLE},
    summary="List suites, newest first",
)
def list_suites(
    _: ReadTokenDep, service: SuiteServiceDep, limit: int = Query(100, ge=1, le=1000)
) -> SuitesPublic:
    data, _total = service.listed(limit=limit)
    return SuitesPublic(data=data, count=len(data))


@router.get(
    "/{suite_id}",
    response_model=SuitePublic,
    responses={**NOT_FOUND, **UNAUTHORIZED, **UNAVAILABLE},
    summary="One suite: status, its studies and their progress, links",
)
def get_suite(suite_id: str, _: ReadTokenDep, service: SuiteServiceDep) -> SuitePublic:
    return service.present(service.get(suite_id))


@router.get(
    "/{suite_id}/summary",
    response_model=SuiteSummaryPublic,
    responses={**NOT_FOUND, **UNAUTHORIZED, **UNAVAILABLE},
    summary="The suite summary: per workload, pooled per comparison, performance profile",
)
def get_suite_summary(suite_id: str, _: ReadTokenDep, service: SuiteServiceDep) -> Response:
    body = service.summary(suite_id).model_dump_json().encode()
    return Response(body, media_type="application/json")


def _png(service: Any, suite_id: str, name: str) -> Response:
    png, final = service.plot(suite_id, name)
    cache = "public, max-age=86400" if final else "no-cache"
    return Response(png, media_type="image/png", headers={"Cache-Control": cache})


@router.get(
    "/{suite_id}/forest.png",
    response_class=Response,
    responses={**PNG, **NOT_FOUND, **UNAUTHORIZED, **UNAVAILABLE},
    summary="Forest plot: each workload's AUC difference and the pooled estimate",
)
def get_forest(suite_id: str, _: ReadTokenDep, service: SuiteServiceDep) -> Response:
    return _png(service, suite_id, SuitePlotName.FOREST)


@router.get(
    "/{suite_id}/profile.png",
    response_class=Response,
    responses={**PNG, **NOT_FOUND, **UNAUTHORIZED, **UNAVAILABLE},
    summary="Performance profile of every arm over the workloads",
)
def get_profile(suite_id: str, _: ReadTokenDep, service: SuiteServiceDep) -> Response:
    return _png(service, suite_id, SuitePlotName.SUITE_PROFILE)


@router.get(
    "/{suite_id}/report",
    response_class=HTMLResponse,
    responses={
        200: {"content": {"text/html": {}}, "description": "The report page."},
        404: {"content": {"text/html": {}}, "description": "No suite with this id (a page)."},
        **UNAUTHORIZED,
        **UNAVAILABLE,
    },
    summary="An HTML report: one verdict per comparison, forest plot, profile, workloads",
)
def get_suite_report(suite_id: str, _: ReadTokenDep, service: SuiteServiceDep) -> HTMLResponse:
    try:
        return HTMLResponse(service.report(suite_id))
    except StudyNotFoundError as exc:
        return HTMLResponse(render_not_found(str(exc)), status_code=404)


@router.post(
    "/{suite_id}/cancel",
    response_model=SuitePublic,
    responses={
        **NOT_FOUND,
        **UNAUTHORIZED,
        409: {"model": Message, "description": "No study of the suite is queued or running."},
        **UNAVAILABLE,
    },
    summary="Cancel every live study of the suite (finished trials stay recorded)",
)
def cancel_suite(suite_id: str, _: TokenDep, service: SuiteServiceDep) -> SuitePublic:
    return service.cancel(suite_id)


@router.post(
    "/{suite_id}/resume",
    status_code=202,
    response_model=SuitePublic,
    responses={
        **NOT_FOUND,
        **UNAUTHORIZED,
        409: {"model": Message, "description": "No study of the suite failed or was cancelled."},
        **UNAVAILABLE,
    },
    summary="Resume every failed or cancelled study of the suite",
)
def resume_suite(suite_id: str, _: TokenDep, service: SuiteServiceDep) -> SuitePublic:
    return service.resume(suite_id)
