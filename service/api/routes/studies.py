"""``/studies``: submit, list, inspect, cancel; trials, summary, plots and the report page."""

from __future__ import annotations

import csv
import io
from functools import partial
from typing import Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from service.api.deps import (
    ReaderDep,
    ReadTokenDep,
    SchedulerDep,
    SettingsDep,
    StoreDep,
    TokenDep,
)
from service.core.config import Settings
from service.errors import problems_response
from service.jobs import RayUnavailableError
from service.reads import StudyReader
from service.report import render_report
from service.scheduler import iso
from service.schemas import (
    Links,
    Message,
    Problems,
    Progress,
    StudiesPublic,
    StudyCreated,
    StudyDetail,
    StudyPublic,
    StudyStatusWord,
    SummaryPublic,
    TrialsPublic,
)
from study.bounded import BoundedInputError, load_json, load_yaml
from study.cluster import unschedulable
from study.errors import SpecError, StudyNotFoundError, StudyStateError
from study.eta import study_eta
from study.ids import IDEMPOTENCY_KEY_RE, IDEMPOTENCY_KEY_RULE, new_study_id
from study.spec import parse_spec
from study.vocab import ENDED, PlotName, StudyStatus

router = APIRouter(prefix="/studies", tags=["studies"])

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
NOT_FOUND = {404: {"model": Message, "description": "No study with this id."}}
UNAUTHORIZED = {401: {"model": Message, "description": "Missing or wrong bearer token."}}
UNAVAILABLE = {503: {"model": Message, "description": "Ray or MLflow cannot be reached."}}
STORE_FULL = {
    507: {
        "model": Message,
        "description": "The study store (MLflow) has no space left; nothing was recorded.",
    }
}
IDEMPOTENCY_HEADER = "Idempotency-Key"
TRIAL_COLUMNS = ("arm", "lr", "init", "init_scale", "seed", "val_acc", "val_loss", "diverged")


def links(study_id: str, settings: Settings, experiment_id: str | None) -> Links:
    base = f"/studies/{study_id}"
    return Links(
        self=base,
        trials=f"{base}/trials",
        summary=f"{base}/summary",
        report=f"{base}/report",
        cancel=f"{base}/cancel",
        resume=f"{base}/resume",
        plots={stem: f"{base}/plots/{stem}.png" for stem in PlotName},
        mlflow=settings.experiment_url(experiment_id),
    )


def eta_seconds(record: Any, progress: dict[str, int]) -> float | None:
    """Seconds left in a running study from the trials ended since its driver (re)started
    (:func:`study.eta.study_eta`); None until one has."""
    return study_eta(
        status=record.status,
        started_at=getattr(record, "segment_started_at", None) or record.started_at,
        done_at_start=getattr(record, "segment_done", None),
        progress=progress,
    )


def study_public(
    record: Any, reader: StudyReader, settings: Settings, scheduler: Any, *, detail: bool = False
) -> StudyPublic:
    progress = reader.progress(record.id)
    job = scheduler.job_of(record.id) if scheduler is not None else None
    retry = scheduler.retry_of(record.id) if scheduler is not None else None
    live = record.status not in ENDED
    fields = dict(
        id=record.id,
        name=record.name,
        status=record.status,
        created_at=record.created_at,
        started_at=record.started_at,
        finished_at=record.finished_at,
        progress=Progress(**{k: int(progress.get(k, 0)) for k in Progress.model_fields}),
        total_trials=int(record.total_trials or progress.get("total", 0)),
        num_classes=record.num_classes,
        experiment_id=record.experiment_id,
        eta_s=eta_seconds(record, progress),
        job=job.submission_id if job is not None else None,
        error=record.error,
        retry_at=iso(retry.at) if retry is not None else (record.retry_at if live else None),
        paused=scheduler.paused() if live and scheduler is not None else None,
        last_error=retry.error if retry is not None else record.last_error,
        links=links(record.id, settings, record.experiment_id),
    )
    if detail:
        return StudyDetail(**fields, spec=dict(record.spec or {}))
    return StudyPublic(**fields)


def _limit_problems(
    spec: Any, settings: Settings, nodes: list[dict[str, float]] | None = None
) -> list[dict[str, Any]]:
    """The service's limits a valid spec may still break; ``nodes``: the Ray cluster's alive
    nodes' resources (None or empty: unknown, not checked; a study that then cannot get its
    resources fails after HPROBUST_RESOURCE_WAIT_S instead)."""
    problems = unschedulable(
        spec.resources.cpus_per_trial, spec.resources.gpus_per_trial, nodes or []
    )
    if spec.total_trials > settings.max_trials_per_study:
        problems.append(
            {
                "field": "trials_per_arm",
                "rule": "must keep arms x points per arm x seeds <= "
                f"{settings.max_trials_per_study} (HPROBUST_MAX_TRIALS_PER_STUDY; this spec asks "
                f"for {spec.total_trials} trials: {len(spec.arms)} arms x "
                f"{spec.points_per_arm} points x {spec.seeds} seeds)",
                "value": spec.trials_per_arm,
            }
        )
    if spec.epochs > settings.max_epochs:
        problems.append(
            {
                "field": "epochs",
                "rule": f"must be <= {settings.max_epochs} (HPROBUST_MAX_EPOCHS)",
                "value": spec.epochs,
            }
        )
    return problems


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
    request: Request,
    response: Response,
    _: TokenDep,
    settings: SettingsDep,
    store: StoreDep,
    reader: ReaderDep,
    scheduler: SchedulerDep,
) -> Any:
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
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is not None and not IDEMPOTENCY_KEY_RE.fullmatch(key):
        field = f"{IDEMPOTENCY_HEADER} (header)"
        raise SpecError([{"field": field, "rule": IDEMPOTENCY_KEY_RULE, "value": key}])
    raw = await request.body()
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip()
    is_yaml = content_type.lower() in YAML_TYPES
    try:  # bounded: no YAML aliases/anchors, limited nesting, valid Unicode (study.bounded)
        data = (load_yaml(raw) if is_yaml else load_json(raw)) if raw.strip() else None
    except BoundedInputError as exc:
        rule = str(exc) if exc.field is None else str(exc).removeprefix(f"{exc.field} ")
        return problems_response([{"field": exc.field or "body", "rule": rule, "value": None}])
    if data is None:
        return problems_response(
            [{"field": "body", "rule": "is required (a study spec)", "value": None}]
        )
    spec = await run_in_threadpool(parse_spec, data)
    nodes = await run_in_threadpool(_cluster_nodes, scheduler)
    problems = _limit_problems(spec, settings, nodes)
    if problems:
        raise SpecError(problems)
    study_id = new_study_id()
    report_url = str(request.url_for("get_report", study_id=study_id))
    record = await run_in_threadpool(
        reader.call,
        partial(
            store.create_study,
            spec,
            study_id,
            report_url=report_url,
            wait_s=settings.create_wait_s,
            idempotency_key=key,
        ),
    )
    if record.id != study_id:  # the study this Idempotency-Key created before
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    reader.invalidate(record.id)
    scheduler.wake()
    response.headers["Location"] = str(request.url_for("get_study", study_id=record.id))
    return StudyCreated(
        id=record.id,
        status=record.status,
        links=links(record.id, settings, record.experiment_id),
        warnings=spec.design_warnings(),
    )


def _cluster_nodes(scheduler: Any) -> list[dict[str, float]] | None:
    """The Ray cluster's nodes' resources, or None when the cluster cannot be asked now (the
    study is accepted; its wait for resources is bounded by the driver)."""
    try:
        return scheduler.jobs.node_resources()
    except RayUnavailableError:
        return None


@router.get(
    "",
    response_model=StudiesPublic,
    responses={**UNAUTHORIZED, **UNAVAILABLE},
    summary="List studies, newest first",
)
def list_studies(
    _: ReadTokenDep,
    settings: SettingsDep,
    reader: ReaderDep,
    scheduler: SchedulerDep,
    status: StudyStatusWord | None = None,
    limit: int = Query(100, ge=1, le=1000),
) -> StudiesPublic:
    records = [r for r in reader.list() if status is None or r.status == status][:limit]
    data = [study_public(r, reader, settings, scheduler) for r in records]
    return StudiesPublic(data=data, count=len(data))


@router.get(
    "/{study_id}",
    response_model=StudyDetail,
    responses={**NOT_FOUND, **UNAUTHORIZED, **UNAVAILABLE},
    summary="One study: status, progress, times, ETA, links",
)
async def get_study(
    study_id: str,
    _: ReadTokenDep,
    settings: SettingsDep,
    reader: ReaderDep,
    scheduler: SchedulerDep,
) -> Response:
    key = ("study.json", study_id)
    body = reader.peek(key)
    if body is None:  # cache miss: read MLflow off the event loop
        body = await run_in_threadpool(_study_json, study_id, reader, settings, scheduler, key)
    return Response(body, media_type="application/json")


def _study_json(
    study_id: str, reader: StudyReader, settings: Settings, scheduler: Any, key: tuple
) -> bytes:
    study = study_public(reader.get(study_id), reader, settings, scheduler, detail=True)
    body = study.model_dump_json().encode()
    if study.status in ENDED:  # a live study's ETA and job change: not cached
        reader.remember(key, body, study_id=study_id)
    return body


def _trial_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}


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
    reader: ReaderDep,
    format: Literal["json", "csv"] = "json",
) -> Any:
    rows = [_trial_row(r) for r in reader.trials(study_id)]
    if format == "csv":
        columns = [*TRIAL_COLUMNS, "status"]
        columns += sorted({k for r in rows for k in r} - set(columns))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        return Response(
            buffer.getvalue(),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{study_id}-trials.csv"'},
        )
    return TrialsPublic(data=rows, count=len(rows))


@router.get(
    "/{study_id}/summary",
    response_model=SummaryPublic,
    responses={**NOT_FOUND, **UNAUTHORIZED, **UNAVAILABLE},
    summary="The robustness summary (partial, flagged, until the study finishes)",
)
async def get_summary(study_id: str, _: ReadTokenDep, reader: ReaderDep) -> Response:
    key = ("summary.json", study_id)
    body = reader.peek(key)
    if body is None:
        body = await run_in_threadpool(_summary_json, study_id, reader, key)
    return Response(body, media_type="application/json")


def _summary_json(study_id: str, reader: StudyReader, key: tuple) -> bytes:
    summary = SummaryPublic.model_validate(reader.summary(study_id))
    body = summary.model_dump_json().encode()
    if not summary.partial:
        reader.remember(key, body, study_id=study_id)
    return body


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
def get_plot(study_id: str, name: str, _: ReadTokenDep, reader: ReaderDep) -> Response:
    ended = reader.get(study_id).status in ENDED
    cache = "public, max-age=86400" if ended else "no-cache"
    return Response(
        reader.plot(study_id, name), media_type="image/png", headers={"Cache-Control": cache}
    )


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
def get_report(
    study_id: str,
    _: ReadTokenDep,
    settings: SettingsDep,
    reader: ReaderDep,
    scheduler: SchedulerDep,
) -> HTMLResponse:
    try:
        record = reader.get(study_id)
    except StudyNotFoundError as exc:  # a page, like the 200: a browser opened this link
        return HTMLResponse(_not_found_page(str(exc)), status_code=404)
    study = study_public(record, reader, settings, scheduler)
    summary = reader.summary(study_id)
    plots = []
    if study.status == StudyStatus.FINISHED:
        for stem in PlotName:
            try:
                reader.plot(study_id, stem)
            except LookupError:
                continue
            plots.append(stem)
    return HTMLResponse(render_report(study, summary, plots, spec=record.spec))


def _not_found_page(message: str) -> str:
    from html import escape

    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        "<title>hprobust: no such study</title></head><body><h1>No such study</h1>"
        f'<p>{escape(message)}</p><p><a href="/studies">All studies (JSON)</a></p></body></html>'
    )


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
def cancel_study(
    study_id: str,
    _: TokenDep,
    settings: SettingsDep,
    reader: ReaderDep,
    scheduler: SchedulerDep,
) -> StudyPublic:
    """Stop the study's Ray job and record it as ``cancelled``; its finished trials stay.

    409 if the study has already ended (finished, failed or cancelled).
    """
    reader.invalidate(study_id)
    record = reader.get(study_id)
    if record.status in ENDED:
        raise StudyStateError(
            f"study {study_id} is {record.status}: only a queued or running study can be cancelled"
        )
    reader.call(scheduler.cancel, study_id)
    return study_public(reader.get(study_id), reader, settings, scheduler)


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
def resume_study(
    study_id: str,
    _: TokenDep,
    settings: SettingsDep,
    reader: ReaderDep,
    scheduler: SchedulerDep,
) -> StudyPublic:
    """Re-queue a failed or cancelled study; its Ray job restarts it with ``--resume``
    (``Tuner.restore``): trials already recorded are not run or recorded again. Its error
    becomes ``last_error``.

    409 if the study is queued or running (it is live) or finished (nothing to resume).
    """
    reader.call(scheduler.resume, study_id)
    reader.invalidate(study_id)
    return study_public(reader.get(study_id), reader, settings, scheduler)
