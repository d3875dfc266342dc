"""How a study is shown: its record, progress, job and ETA as the API's :class:`StudyPublic`.

The JSON answers, the index page and the report page all show a study through
:func:`study_public`, so they agree on every field.
"""

from __future__ import annotations

from typing import Any

from service.core.config import Settings
from service.reads import StudyReader, ended
from service.scheduler import iso
from service.schemas import Links, Progress, StudyDetail, StudyPublic
from study.eta import arm_eta, study_eta
from study.vocab import PlotName, StudyStatus


def links(study_id: str, settings: Settings, experiment_id: str | None) -> Links:
    """Where the parts of the study are: API paths, and its experiment in the MLflow UI."""
    base = f"/studies/{study_id}"
    return Links(
        self=base,
        trials=f"{base}/trials",
        summary=f"{base}/summary",
        report=f"{base}/report",
        cancel=f"{base}/cancel",
        resume=f"{base}/resume",
        plots={name: f"{base}/plots/{name}.png" for name in PlotName},
        mlflow=settings.experiment_url(experiment_id),
    )


def eta_seconds(
    record: Any, progress: dict[str, int], rows: list[dict[str, Any]] | None = None
) -> float | None:
    """Seconds left in a running study. With its spec and trial rows: arm by arm, each arm's
    trials not yet ended at the pace of its finished ones (:func:`study.eta.arm_eta`), as many
    at a time as run now. Else (a listing: no spec) from the trials ended since its driver
    (re)started (:func:`study.eta.study_eta`). None until a trial has ended."""
    spec = getattr(record, "spec", None) or {}
    arms = [arm.get("name") for arm in spec.get("arms") or [] if isinstance(arm, dict)]
    total = int(record.total_trials or progress.get("total", 0))
    if record.status == StudyStatus.RUNNING and rows is not None and arms and total:
        slots = int(progress.get("running", 0)) or int(
            (spec.get("resources") or {}).get("max_concurrent_trials") or 1
        )
        planned = {arm: total // len(arms) + (i < total % len(arms)) for i, arm in enumerate(arms)}
        left = arm_eta(rows, planned, slots=slots)
        if left is not None:
            return left
    return study_eta(
        status=record.status,
        started_at=getattr(record, "segment_started_at", None) or record.started_at,
        done_at_start=getattr(record, "segment_done", None),
        progress=progress,
    )


def study_public(
    record: Any, reader: StudyReader, settings: Settings, scheduler: Any, *, detail: bool = False
) -> StudyPublic:
    """The study of ``record`` as the API shows it (with its spec when ``detail``).

    A live study also shows what the scheduler knows and MLflow does not: its current job,
    when a lost job is resubmitted, and why it waits (a dependency down).
    """
    progress = reader.progress(record)
    job = scheduler.job_of(record.id) if scheduler is not None else None
    retry = scheduler.retry_of(record.id) if scheduler is not None else None
    live = not ended(record)
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
        eta_s=eta_seconds(record, progress, reader.trials(record) if detail and live else None),
        job=job.submission_id if job is not None else None,
        error=record.error,
        retry_at=iso(retry.at) if retry is not None else (record.retry_at if live else None),
        paused=scheduler.paused() if live and scheduler is not None else None,
        last_error=retry.error if retry is not None else record.last_error,
        tampered=getattr(record, "tampered", None),
        links=links(record.id, settings, record.experiment_id),
    )
    if detail:
        return StudyDetail(**fields, spec=dict(record.spec or {}))
    return StudyPublic(**fields)
