"""The service layer: what the API does with studies, knowing nothing of HTTP.

:class:`StudyService` creates, cancels and resumes studies and presents what is read of them.
It takes the store, the cached reader, the scheduler and the settings, and returns the API's
models (or rendered pages); it raises study and service errors (``StudyNotFoundError``,
``StudyStateError``, ``SpecError``, ...) that :mod:`service.errors` maps to status codes. The
routes in :mod:`service.api.routes.studies` only translate HTTP to these calls and back.

Each request reads the study's record once (:meth:`StudyReader.get`) and hands it down.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from service.core.config import Settings
from service.jobs import RayUnavailableError
from service.present import links, study_public
from service.reads import StudyReader, ended
from service.report import render_report
from service.schemas import StudyCreated, StudyPublic, SummaryPublic
from study.errors import SpecError, StudyStateError
from study.records.formats import trials_csv
from study.records.ids import new_study_id
from study.spec.bounds import size_problems
from study.spec.study_spec import StudySpec
from study.tune.cluster import study_concurrency, unschedulable
from study.vocab import StudyStatus


def limit_problems(
    spec: StudySpec, settings: Settings, nodes: list[dict[str, float]] | None = None
) -> list[dict[str, Any]]:
    """The service's limits a valid spec may still break; ``nodes``: the Ray cluster's alive
    nodes' resources (None or empty: unknown, not checked; a study that then cannot get its
    resources fails after HPROBUST_RESOURCE_WAIT_S instead). The study's size (design, model,
    dataset) is judged in closed form first (:func:`study.spec.bounds.size_problems`)."""
    problems = size_problems(spec, settings.size_limits())
    problems += unschedulable(
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


def limit_warnings(spec: StudySpec, nodes: list[dict[str, float]] | None) -> list[str]:
    """What the service accepts but bounds: ``max_concurrent_trials`` beyond what the Ray
    cluster's CPUs, GPUs and memory can run at once (the driver runs fewer at a time:
    :func:`study.tune.cluster.study_concurrency`); ``[]`` when the nodes are not known."""
    _, warning = study_concurrency(spec, nodes or [])
    return [] if warning is None else [warning]


def _json_safe(row: dict[str, Any]) -> dict[str, Any]:
    """A trial row with NaN as None (JSON has no NaN)."""
    return {k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}


@dataclass(frozen=True)
class Created:
    """What :meth:`StudyService.create` did: the study, and whether it existed already (the
    Idempotency-Key created it before, with the same spec: nothing new was recorded)."""

    study: StudyCreated
    replayed: bool


@dataclass(frozen=True)
class Plot:
    """A plot's PNG, and whether it is final (its study has ended: it never changes)."""

    png: bytes
    final: bool


@dataclass(frozen=True)
class StudyService:
    """Studies as the API sees them (see the module doc)."""

    settings: Settings
    store: Any
    reader: StudyReader
    scheduler: Any

    # -- changes ----------------------------------------------------------------------------
    def create(
        self,
        spec: StudySpec,
        *,
        report_url: Callable[[str], str],
        idempotency_key: str | None = None,
    ) -> Created:
        """Record ``spec`` as a new ``queued`` study and wake the scheduler to run it.

        ``report_url(study_id)``: the study's report page (stored with it, for MLflow's UI).
        SpecError if the spec breaks a limit of this service; nothing is recorded then, nor
        when the store fails (all or nothing: :meth:`StudyStore.create_study`).
        """
        nodes = self._cluster_nodes()
        problems = limit_problems(spec, self.settings, nodes)
        if problems:
            raise SpecError(problems)
        # the id the warm driver waits for, if one does: the study starts without a new job
        reserved = self.scheduler.take_standby()
        study_id = reserved or new_study_id()
        try:
            record = self.reader.call(
                partial(
                    self.store.create_study,
                    spec,
                    study_id,
                    report_url=report_url(study_id),
                    wait_s=self.settings.create_wait_s,
                    idempotency_key=idempotency_key,
                )
            )
        except BaseException:
            if reserved:
                self.scheduler.standby_unused(reserved)
            raise
        if reserved and record.id != reserved:  # a replay: the study was recorded before
            self.scheduler.standby_unused(reserved)
        self.reader.invalidate(record.id)
        self.scheduler.wake()
        created = StudyCreated(
            id=record.id,
            status=record.status,
            links=links(record.id, self.settings, record.experiment_id),
            warnings=[*spec.design_warnings(), *limit_warnings(spec, nodes)],
        )
        return Created(created, replayed=record.id != study_id)

    def _cluster_nodes(self) -> list[dict[str, float]] | None:
        """The Ray cluster's nodes' resources, or None when the cluster cannot be asked now
        (the study is accepted; its wait for resources is bounded by the driver)."""
        try:
            return self.scheduler.jobs.node_resources()
        except RayUnavailableError:
            return None

    def cancel(self, study_id: str) -> StudyPublic:
        """Stop the study's job and record it ``cancelled`` (StudyStateError if it ended)."""

        def live(record: Any) -> None:
            if ended(record):
                raise StudyStateError(
                    f"study {study_id} is {record.status}: only a queued or running study can "
                    "be cancelled"
                )

        return self._change(study_id, self.scheduler.cancel, check=live)

    def resume(self, study_id: str) -> StudyPublic:
        """Queue a failed or cancelled study again (the scheduler checks its state)."""
        return self._change(study_id, self.scheduler.resume)

    def _change(
        self,
        study_id: str,
        action: Callable[[str], Any],
        *,
        check: Callable[[Any], None] | None = None,
    ) -> StudyPublic:
        """``action(study_id)`` on the study as MLflow holds it now (not as cached), after
        ``check(record)``; the study as it is afterwards."""
        self.reader.invalidate(study_id)
        record = self.reader.get(study_id)  # StudyNotFoundError first
        if check is not None:
            check(record)
        self.reader.call(action, study_id)
        self.reader.invalidate(study_id)
        return self.present(self.reader.get(study_id))

    # -- reads ------------------------------------------------------------------------------
    def present(self, record: Any, *, detail: bool = False) -> StudyPublic:
        return study_public(record, self.reader, self.settings, self.scheduler, detail=detail)

    def listed(
        self, *, status: str | None = None, limit: int | None = None
    ) -> tuple[list[StudyPublic], int]:
        """Studies (of ``status``), newest first, at most ``limit``; and how many there are."""
        records = [r for r in self.reader.list() if status is None or r.status == status]
        return [self.present(r) for r in records[:limit]], len(records)

    def cached_json(self, kind: str, study_id: str) -> bytes | None:
        """The answer :meth:`study_json` (``kind`` "study") or :meth:`summary_json`
        ("summary") gave for ``study_id``, while it holds; never reads MLflow."""
        return self.reader.peek((f"{kind}.json", study_id))

    def study_json(self, study_id: str) -> bytes:
        """The study with its spec (:class:`StudyDetail`) as JSON; kept once it has ended (a
        live study's ETA and job change)."""
        record = self.reader.get(study_id)
        body = self.present(record, detail=True).model_dump_json().encode()
        if ended(record):
            self.reader.remember(("study.json", study_id), body, record=record)
        return body

    def summary_json(self, study_id: str) -> bytes:
        """The robustness summary as JSON; kept unless it is partial."""
        record = self.reader.get(study_id)
        summary = SummaryPublic.model_validate(self.reader.summary(record))
        body = summary.model_dump_json().encode()
        if not summary.partial:
            self.reader.remember(("summary.json", study_id), body, record=record)
        return body

    def trials(self, study_id: str) -> list[dict[str, Any]]:
        """The study's trial rows (JSON-safe)."""
        return [_json_safe(r) for r in self.reader.trials(self.reader.get(study_id))]

    def trials_csv(self, study_id: str) -> str:
        """The trial rows as CSV (:func:`study.records.formats.trials_csv`, the CLI's too)."""
        return trials_csv(self.trials(study_id))

    def plot(self, study_id: str, name: str) -> Plot:
        """A plot's PNG (PlotNotFoundError for an unknown name or one not drawn yet)."""
        record = self.reader.get(study_id)
        return Plot(self.reader.plot(record, name), final=ended(record))

    def report(self, study_id: str) -> str:
        """The report page (HTML): the study, its summary, and the plots it has stored."""
        record = self.reader.get(study_id)
        study = self.present(record)
        summary = self.reader.summary(record)
        finished = record.status == StudyStatus.FINISHED
        plots = self.reader.plot_names(record) if finished else []
        return render_report(study, summary, plots, spec=record.spec)
