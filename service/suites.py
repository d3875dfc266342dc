"""The service layer of suites, knowing nothing of HTTP (the routes are
:mod:`service.api.routes.suites`).

:class:`SuiteService` creates a suite (every study or none: :class:`study.records.suites.
SuiteStore`), lists and shows suites with their studies' progress, computes the suite summary
from its studies' own summaries (:func:`study.analysis.suite.summarize_suite`), draws its
figures, renders its report, and cancels or resumes all its studies. Each study of a suite is
an ordinary study: the scheduler runs it, and :class:`service.studies.StudyService` shows it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.core.config import Settings
from service.jobs import RayUnavailableError
from service.present import links, study_public
from service.reads import StudyReader, ended
from service.schemas import (
    Progress,
    SuiteCreated,
    SuiteLinks,
    SuitePublic,
    SuiteStudyPublic,
)
from service.studies import limit_problems, limit_warnings
from study.analysis.suite import WorkloadResult, summarize_suite
from study.analysis.suite_schema import SuiteSummary
from study.errors import SpecError, StudyStateError
from study.records.suites import SuiteRecord, SuiteStore, suite_status
from study.spec.suite import SuiteSpec, suite_size_problems
from study.vocab import StudyStatus, SuitePlotName

PROGRESS_KEYS = ("finished", "running", "pending", "diverged", "failed", "total")


def suite_links(suite_id: str, settings: Settings, experiment_id: str | None) -> SuiteLinks:
    base = f"/suites/{suite_id}"
    return SuiteLinks(
        self=base,
        summary=f"{base}/summary",
        report=f"{base}/report",
        forest=f"{base}/forest.png",
        profile=f"{base}/profile.png",
        cancel=f"{base}/cancel",
        resume=f"{base}/resume",
        mlflow=settings.experiment_url(experiment_id),
    )


def suite_limit_problems(
    suite: SuiteSpec, settings: Settings, nodes: list[dict[str, float]] | None
) -> list[dict[str, Any]]:
    """The service's limits on each workload's study (fields named by workload) and on the
    suite in total (design points, :func:`study.spec.suite.suite_size_problems`)."""
    out = suite_size_problems(suite, settings.size_limits())
    for w in suite.workloads:
        for p in limit_problems(w.spec, settings, nodes):
            named = {**p, "field": f"workloads.{w.name}.{p['field']}"}
            if named not in out:
                out.append(named)
    return out


@dataclass(frozen=True)
class SuiteService:
    """Suites as the API sees them (see the module doc)."""

    settings: Settings
    store: Any
    reader: StudyReader
    scheduler: Any

    @property
    def suites(self) -> SuiteStore:
        return SuiteStore(self.store)

    # -- changes ----------------------------------------------------------------------------
    def create(
        self,
        suite: SuiteSpec,
        *,
        study_report_url: Callable[[str], str],
        suite_report_url: Callable[[str], str],
        idempotency_key: str | None = None,
    ) -> tuple[SuiteCreated, bool]:
        """Record the suite and all its studies (or nothing) and wake the scheduler. SpecError
        (nothing recorded) when a workload breaks a limit of this service. Returns the suite
        and whether the Idempotency-Key created it before (nothing new then)."""
        try:
            nodes = self.scheduler.jobs.node_resources()
        except RayUnavailableError:  # Ray cannot be asked now: the driver bounds the wait
            nodes = None
        problems = suite_limit_problems(suite, self.settings, nodes)
        if problems:
            raise SpecError(problems)
        record, replayed = self.reader.call(
            lambda: self.suites.create_suite(
                suite,
                study_report_url=study_report_url,
                suite_report_url=suite_report_url,
                wait_s=self.settings.create_wait_s,
                idempotency_key=idempotency_key,
            )
        )
        self.reader.invalidate()
        self.scheduler.wake()
        warnings = list(suite.design_warnings())
        for w in suite.workloads:
            warnings += [f"workload {w.name}: {x}" for x in limit_warnings(w.spec, nodes)]
        public = self.present(record)
        return SuiteCreated(**public.model_dump(), warnings=warnings), replayed

    def cancel(self, suite_id: str) -> SuitePublic:
        """Cancel every live study of the suite (StudyStateError when none is live)."""
        record = self.get(suite_id)
        live = [s for s in self._studies(record) if not ended(s)]
        if not live:
            raise StudyStateError(
                f"suite {suite_id} has no queued or running study: nothing to cancel"
            )
        for study in live:
            self.reader.call(self.scheduler.cancel, study.id)
            self.reader.invalidate(study.id)
        return self.present(record)

    def resume(self, suite_id: str) -> SuitePublic:
        """Resume every failed or cancelled study of the suite (StudyStateError when none)."""
        record = self.get(suite_id)
        stopped = [
            s for s in self._studies(record) if ended(s) and s.status != StudyStatus.FINISHED
        ]
        if not stopped:
            raise StudyStateError(
                f"suite {suite_id} has no failed or cancelled study: nothing to resume"
            )
        for study in stopped:
            self.reader.call(self.scheduler.resume, study.id)
            self.reader.invalidate(study.id)
        return self.present(record)

    # -- reads ------------------------------------------------------------------------------
    def get(self, suite_id: str) -> SuiteRecord:
        return self.reader.call(self.suites.get_suite, suite_id)

    def _studies(self, record: SuiteRecord) -> list[Any]:
        self.reader.invalidate()  # the studies as they are now
        return [self.reader.get(study_id) for _, study_id in record.studies]

    def present(self, record: SuiteRecord) -> SuitePublic:
        studies = []
        totals = dict.fromkeys(PROGRESS_KEYS, 0)
        for (workload, study_id), study in zip(
            record.studies, [self.reader.get(s) for _, s in record.studies], strict=True
        ):
            public = study_public(study, self.reader, self.settings, self.scheduler)
            for key in PROGRESS_KEYS:
                totals[key] += int(getattr(public.progress, key))
            studies.append(
                SuiteStudyPublic(
                    workload=workload,
                    study_id=study_id,
                    status=public.status,
                    progress=public.progress,
                    links=links(study_id, self.settings, study.experiment_id),
                )
            )
        return SuitePublic(
            id=record.id,
            name=record.name,
            status=suite_status([s.status for s in studies]),
            created_at=record.created_at,
            arms=record.arms,
            progress=Progress(**totals),
            studies=studies,
            tampered=record.tampered,
            links=suite_links(record.id, self.settings, record.experiment_id),
        )

    def listed(self, *, limit: int | None = None) -> tuple[list[SuitePublic], int]:
        records = self.reader.call(self.suites.suites)
        return [self.present(r) for r in records[:limit]], len(records)

    def summary(self, suite_id: str) -> SuiteSummary:
        """The suite summary from its studies' own summaries (partial while one runs)."""
        record = self.get(suite_id)
        return self.summary_of(record)

    def summary_of(self, record: SuiteRecord) -> SuiteSummary:
        workloads = []
        for workload, study_id in record.studies:
            study = self.reader.get(study_id)
            summary = self.reader.summary(study)
            workloads.append(WorkloadResult(workload, study_id, study.status, summary))
        return summarize_suite(workloads, arms=record.arms, suite_id=record.id, name=record.name)

    def plot(self, suite_id: str, name: str) -> tuple[bytes, bool]:
        """A suite figure's PNG (``forest``, ``suite_profile``), and whether it is final."""
        from study.analysis.suite_figures import SUITE_FIGURES

        summary = self.summary(suite_id)
        with tempfile.TemporaryDirectory(prefix="hprobust-suite-") as tmp:
            path = SUITE_FIGURES[SuitePlotName(name)](summary, Path(tmp) / f"{name}.png")
            return path.read_bytes(), not summary.partial

    def report(self, suite_id: str) -> str:
        """The suite's report page (HTML)."""
        from service.suite_report import render_suite_report

        record = self.get(suite_id)
        public = self.present(record)
        return render_suite_report(public, self.summary_of(record))
