"""``/studies``: submit, list, inspect, cancel, resume; trials, summary, plots and the report.

The routes only translate HTTP: path, query and headers in, status codes, headers and media
types out. What is done with a study is :class:`service.studies.StudyService`'s; the body of a
POST is :mod:`service.api.body`'s; errors become status codes in :mod:`service.errors`.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from service.api.body import SpecBodyDep
from service.api.deps import ReadTokenDep, ServiceDep, TokenDep
from service.report import render_not_found
from service.schemas import (
    Message,
    Problems,
    StudiesPublic,
    StudyCreated,
    StudyDetail,
    StudyPublic,
    StudyStatusWord,
    SummaryPublic,
    TrialsPublic,
)
from study.errors import StudyNotFoundError
from study.vocab import PlotName

router = APIRouter(prefix="/studies", tags=["studies"])

NOT_FOUND = {404: {"model": Message, "description": "No study with this id."}}
UNAUTHORIZED = {401: {"model": Message, "description": "Missing or wrong bearer token."}}
UNAVAILABLE = {503: {"model": Message, "description": "Ray or MLflow cannot be reached."}}
STORE_FULL = {
    507: {
        "model": Message,
        "description": "The study store (MLflow) has no space left; nothing was recorded.",
    }
}


def _spec_body_schema() -> dict[str, Any]:
    ref = {"$ref": "#/components/schemas/StudySpec"}
    return {
        "requestBody": {
            "required": True,
            "description": "The study spec (see examples/*.yaml), as JSON or as YAML "
            "(Content-Type: application/yaml).",
            "content": {"application/json": {"schema": ref}, "application/yaml": {"schema": ref}},
        }
    }


@router.post(
    "",
    status_code=202,
    response_model=StudyCreated,
    openapi_extra=_spec_body_schema(),
    responses={
        **UNAUTHORIZED,
        413: {"model": Message, "description": "Body larger than HPROBUST_MAX_BODY_BYTES."},
        200: {
            "model": StudyCreated,
            "description": "A retry: the Idempotency-Key created this study before, with the "
            "same spec (header Idempotent-Replayed: true); nothing new was created.",
        },
        422: {
            "model": Problems,
            "description": "The spec breaks a rule or a service limit, or the Idempotency-Key "
            "is malformed or was used before with a different spec.",
        },
        503: {
            "model": Message,
            "description": "MLflow cannot be reached or written now (or stayed busy longer "
            "than HPROBUST_CREATE_WAIT_S); nothing was recorded: send it again.",
        },
        **STORE_FULL,
    },
    summary="Submit a study",
)
async def create_study(
    request: Request, response: Response, _: TokenDep, body: SpecBodyDep, service: ServiceDep
) -> StudyCreated:
    """Validate the spec, record the study in MLflow (``queued``) and queue its Ray job.

    Returns 202 with the study id and a ``Location`` header. Creation is all or nothing:
    any answer but 202 leaves nothing recorded (422 when the spec breaks a rule, naming the
    field, the rule and the value; 503 when MLflow cannot be reached or written now; 507
    when it has no space left).

    **Idempotency-Key** (optional header, 1-128 characters of letters, digits and
    ``- _ . : ~ + / =``, e.g. a UUID): a client that may send a POST twice (a retry after a
    timeout or a 5xx) sends the same key each time. The first request creates the study
    (202); a later one with the same key and the same spec creates nothing and answers 200
    with the same study (header ``Idempotent-Replayed: true``); the same key with a different
    spec is a 422 naming the header. Concurrent requests with one key create one study.
    """
    created = await run_in_threadpool(
        service.create,
        body.spec,
        report_url=lambda study_id: str(request.url_for("get_report", study_id=study_id)),
        idempotency_key=body.idempotency_key,
    )
    if created.replayed:  # the study this Idempotency-Key created before
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = str(request.url_for("get_study", study_id=created.study.id))
    return created.study


@router.get(
    "",
    response_model=StudiesPublic,
    responses={**UNAUTHORIZED, **UNAVAILABLE},
    summary="List studies, newest first",
)
def list_studies(
    _: ReadTokenDep,
    service: ServiceDep,
    status: StudyStatusWord | None = None,
    limit: int = Query(100, ge=1, le=1000),
) -> StudiesPublic:
    data, _total = service.listed(status=status, limit=limit)
    return StudiesPublic(data=data, count=len(data))


@router.get(
    "/{study_id}",
    response_model=StudyDetail,
    responses={**NOT_FOUND, **UNAUTHORIZED, **UNAVAILABLE},
    summary="One study: status, progress, times, ETA, links",
)
async def get_study(study_id: str, _: ReadTokenDep, service: ServiceDep) -> Response:
    body = service.cached_json("study", study_id)
    if body is None:  # not cached: read MLflow off the event loop
        body = await run_in_threadpool(service.study_json, study_id)
    return Response(body, media_type="application/json")


@router.get(
    "/{study_id}/trials",
    response_model=TrialsPublic,
    responses={
        **NOT_FOUND,
        **UNAUTHORIZED,
        **UNAVAILABLE,
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
    },
    summary="The study's trials (JSON rows, or CSV with ?format=csv)",
)
def get_trials(
    study_id: str,
    _: ReadTokenDep,
    service: ServiceDep,
    format: Literal["json", "csv"] = "json",
) -> Any:
    if format == "csv":
        return Response(
            service.trials_csv(study_id),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{study_id}-trials.csv"'},
        )
    rows = service.trials(study_id)
    return TrialsPublic(data=rows, count=len(rows))


@router.get(
    "/{study_id}/summary",
    response_model=SummaryPublic,
    responses={**NOT_FOUND, **UNAUTHORIZED, **UNAVAILABLE},
    summary="The robustness summary (partial, flagged, until the study finishes)",
)
async def get_summary(study_id: str, _: ReadTokenDep, service: ServiceDep) -> Response:
    body = service.cached_json("summary", study_id)
    if body is None:
        body = await run_in_threadpool(service.summary_json, study_id)
    return Response(body, media_type="application/json")


@router.get(
    "/{study_id}/plots/{name}.png",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}, "description": "The plot."},
        **NOT_FOUND,
        **UNAUTHORIZED,
        **UNAVAILABLE,
    },
    summary="A plot of a finished study: " + ", ".join(PlotName),
)
def get_plot(study_id: str, name: str, _: ReadTokenDep, service: ServiceDep) -> Response:
    plot = service.plot(study_id, name)
    cache = "public, max-age=86400" if plot.final else "no-cache"
    return Response(plot.png, media_type="image/png", headers={"Cache-Control": cache})


@router.get(
    "/{study_id}/report",
    response_class=HTMLResponse,
    responses={
        200: {"content": {"text/html": {}}, "description": "The report page."},
        404: {"content": {"text/html": {}}, "description": "No study with this id (a page)."},
        **UNAUTHORIZED,
        **UNAVAILABLE,
    },
    summary="An HTML report: verdicts, warnings, per-arm table, comparisons, spec, plots",
)
def get_report(study_id: str, _: ReadTokenDep, service: ServiceDep) -> HTMLResponse:
    try:
        return HTMLResponse(service.report(study_id))
    except StudyNotFoundError as exc:  # a page, like the 200: a browser opened this link
        return HTMLResponse(render_not_found(str(exc)), status_code=404)


@router.post(
    "/{study_id}/cancel",
    response_model=StudyPublic,
    responses={
        **NOT_FOUND,
        **UNAUTHORIZED,
        409: {"model": Message, "description": "The study already ended."},
        **UNAVAILABLE,
    },
    summary="Cancel a study (its finished trials stay recorded)",
)
def cancel_study(study_id: str, _: TokenDep, service: ServiceDep) -> StudyPublic:
    """Stop the study's Ray job and record it as ``cancelled``; its finished trials stay.

    409 if the study has already ended (finished, failed or cancelled).
    """
    return service.cancel(study_id)


@router.post(
    "/{study_id}/resume",
    status_code=202,
    response_model=StudyPublic,
    responses={
        **NOT_FOUND,
        **UNAUTHORIZED,
        409: {"model": Message, "description": "The study is queued, running or finished."},
        **UNAVAILABLE,
    },
    summary="Resume a failed or cancelled study (its recorded trials are kept, not rerun)",
)
def resume_study(study_id: str, _: TokenDep, service: ServiceDep) -> StudyPublic:
    """Re-queue a failed or cancelled study; its Ray job restarts it with ``--resume``
    (``Tuner.restore``): trials already recorded are not run or recorded again. Its error
    becomes ``last_error``.

    409 if the study is queued or running (it is live) or finished (nothing to resume).
    """
    return service.resume(study_id)
