"""Suites in MLflow: one experiment per suite, its studies ordinary studies tagged with it.

A suite's experiment (``hprobust suite <id>``) holds the suite document (tag and
``suite.json``), its signature (HMAC of its id and document, as a study's), the
``[[workload, study id], ...]`` list and one run (kind ``suite``) whose description links each
study's experiment and report. Each study of the suite is recorded as any study is
(:meth:`StudyStore.record_study`), with the tags ``hprobust.suite_id``, ``hprobust.workload``
and ``hprobust.suite_index``.

Creating a suite is all or nothing, in the store's creation turn (the lock every creation
takes): the suite experiment is written ``creating``, then every study ``creating``, then the
suite run, then every study ``queued`` and the suite ``queued``; any failure deletes what was
written. A suite's own status is its studies' (:func:`suite_status`): the tag says only that
its creation completed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from study.errors import ConfigError, IdempotencyKeyReusedError, StudyNotFoundError
from study.faults import store_error
from study.records.ids import (
    check_idempotency_key,
    check_suite_id,
    new_study_id,
    new_suite_id,
    utc_now_iso,
)
from study.records.layout import EXPERIMENT_KIND, SPEC_TAG_MAX
from study.records.signing import holds, sign
from study.text import markdown_code
from study.vocab import ENDED, RunKind, StudyStatus, Tag

if TYPE_CHECKING:  # pragma: no cover
    from study.records.store import StudyStore
    from study.spec.suite import SuiteSpec

log = logging.getLogger("hprobust.records")

SUITE_EXPERIMENT_PREFIX = "hprobust suite "


class SuiteNotFoundError(StudyNotFoundError):
    """No suite with this id is recorded."""


def suite_experiment_name(suite_id: str) -> str:
    return SUITE_EXPERIMENT_PREFIX + suite_id


@dataclass(frozen=True)
class SuiteRecord:
    """A suite as MLflow holds it: its document, its studies in workload order, and whether
    its signature holds (``tampered`` says what does not)."""

    id: str
    name: str
    created_at: str | None
    experiment_id: str
    studies: list[tuple[str, str]]
    document: dict[str, Any] = field(repr=False)
    tampered: str | None = None

    @property
    def arms(self) -> list[str]:
        return [a["name"] for a in self.document["workloads"][0]["spec"]["arms"]]


def suite_status(statuses: list[str]) -> str:
    """A suite's status from its studies': ``running`` while any runs, ``queued`` while all
    wait, else (all ended) ``finished`` when all finished, ``cancelled`` when any was cancelled,
    else ``failed``; a mix of waiting and ended studies is ``running``."""
    if any(s == StudyStatus.RUNNING for s in statuses):
        return StudyStatus.RUNNING
    if all(s == StudyStatus.QUEUED for s in statuses):
        return StudyStatus.QUEUED
    if not all(s in ENDED for s in statuses):
        return StudyStatus.RUNNING
    if all(s == StudyStatus.FINISHED for s in statuses):
        return StudyStatus.FINISHED
    if any(s == StudyStatus.CANCELLED for s in statuses):
        return StudyStatus.CANCELLED
    return StudyStatus.FAILED


def suite_note(
    record: SuiteRecord, study_links: list[tuple[str, str, str | None, str | None]]
) -> str:
    """The suite run's description (Markdown): per workload its study, its experiment and
    report. ``study_links``: ``(workload, study id, experiment id, report url)``."""
    lines = [
        f"**hprobust suite {markdown_code(record.name)}** ({markdown_code(record.id)}): "
        f"arms {', '.join(markdown_code(a) for a in record.arms)} on "
        f"{len(record.studies)} workloads",
        "",
        "| workload | study | experiment | report |",
        "|---|---|---|---|",
    ]
    for workload, study_id, experiment_id, report in study_links:
        experiment = f"[{experiment_id}](#/experiments/{experiment_id})" if experiment_id else ""
        link = f"[report]({report})" if report and report.startswith("http") else ""
        lines.append(
            f"| {markdown_code(workload, in_table=True)} "
            f"| {markdown_code(study_id, in_table=True)} | {experiment} | {link} |"
        )
    return "\n".join(lines)


class SuiteStore:
    """Suites over a :class:`StudyStore` (its client, secret and creation turn)."""

    def __init__(self, store: StudyStore) -> None:
        self.store = store
        self.client = store.client

    # ---- creation -------------------------------------------------------------------------
    def create_suite(
        self,
        suite: SuiteSpec,
        suite_id: str | None = None,
        *,
        study_report_url: Callable[[str], str] | None = None,
        suite_report_url: Callable[[str], str] | None = None,
        wait_s: float | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[SuiteRecord, bool]:
        """Record the suite and every study of it, or nothing (module doc). Returns the suite
        and whether it existed already (an ``idempotency_key`` that created this same suite
        before: nothing is written; with another suite, IdempotencyKeyReusedError)."""
        suite_id = check_suite_id(suite_id) if suite_id else new_suite_id()
        if idempotency_key is not None:
            check_idempotency_key(idempotency_key)
        document = suite.document()
        with self.store.creation_turn(wait_s):
            if idempotency_key is not None:
                existing = self._by_idempotency_key(idempotency_key)
                if existing is not None:
                    if existing.document != document:
                        raise IdempotencyKeyReusedError(idempotency_key, existing.id)
                    return existing, True
            return self._create(
                suite, suite_id, document, study_report_url, suite_report_url, idempotency_key
            ), False

    def _create(
        self,
        suite: SuiteSpec,
        suite_id: str,
        document: dict[str, Any],
        study_report_url: Callable[[str], str] | None,
        suite_report_url: Callable[[str], str] | None,
        idempotency_key: str | None,
    ) -> SuiteRecord:
        name = suite_experiment_name(suite_id)
        if self.client.get_experiment_by_name(name) is not None:
            raise ConfigError(f"suite_id must be new, got {suite_id!r} (already recorded)")
        created_at = utc_now_iso()
        doc_json = json.dumps(document, sort_keys=True)
        tags = {
            Tag.SUITE_ID: suite_id,
            Tag.NAME: suite.name,
            Tag.STATUS: StudyStatus.CREATING,
            Tag.CREATED_AT: created_at,
            **EXPERIMENT_KIND,
        }
        if len(doc_json) <= SPEC_TAG_MAX:
            tags[Tag.SPEC] = doc_json
        if idempotency_key is not None:
            tags[Tag.IDEMPOTENCY] = idempotency_key
        if self.store.secret is not None:
            tags[Tag.SIGNATURE] = sign(self.store.secret, suite_id, document)
        location = f"{self.store.artifact_root}/{suite_id}" if self.store.artifact_root else None
        try:
            experiment_id = self.client.create_experiment(
                name, artifact_location=location, tags=tags
            )
        except Exception as exc:
            cause = store_error(exc)
            if cause is not None:
                raise cause from exc
            raise
        made: list[str] = []
        try:
            studies: list[tuple[str, str]] = []
            links: list[tuple[str, str, str | None, str | None]] = []
            for i, w in enumerate(suite.workloads):
                study_id = new_study_id()
                report = study_report_url(study_id) if study_report_url else None
                record = self.store.record_study(
                    w.spec,
                    study_id,
                    report_url=report,
                    tags={Tag.SUITE_ID: suite_id, Tag.WORKLOAD: w.name, Tag.SUITE_INDEX: str(i)},
                    queue=False,
                )
                made.append(study_id)
                studies.append((w.name, study_id))
                links.append((w.name, study_id, record.experiment_id, report))
            self.client.set_experiment_tag(
                experiment_id, str(Tag.SUITE_STUDIES), json.dumps(studies)
            )
            suite_record = SuiteRecord(
                id=suite_id,
                name=suite.name,
                created_at=created_at,
                experiment_id=experiment_id,
                studies=studies,
                document=document,
            )
            run_tags = {
                Tag.KIND: RunKind.SUITE,
                Tag.SUITE_ID: suite_id,
                Tag.NOTE: suite_note(suite_record, links),
            }
            if suite_report_url is not None:
                run_tags[Tag.REPORT_URL] = suite_report_url(suite_id)
            run = self.client.create_run(
                experiment_id, tags=run_tags, run_name=f"suite {suite.name}"[:250]
            )
            self.client.log_text(run.info.run_id, doc_json, "suite.json")
            self.client.update_run(run.info.run_id, status="FINISHED")
            for study_id in made:
                self.store.queue_created(study_id)
            self.client.set_experiment_tag(experiment_id, str(Tag.STATUS), StudyStatus.QUEUED)
        except BaseException as exc:
            for study_id in made:
                self.store.discard(study_id)
            try:
                self.client.delete_experiment(experiment_id)
            except Exception as cleanup:
                log.warning("could not delete the half-created suite %s: %s", suite_id, cleanup)
            cause = store_error(exc) if isinstance(exc, Exception) else None
            if cause is not None:
                raise cause from exc
            raise
        return suite_record

    # ---- reads ----------------------------------------------------------------------------
    def _record(self, experiment) -> SuiteRecord:
        tags = experiment.tags
        suite_id = tags[Tag.SUITE_ID]
        doc_json = tags.get(Tag.SPEC)
        if doc_json is None:
            runs = self.client.search_runs(
                [experiment.experiment_id],
                filter_string=f"tags.`{Tag.KIND}` = '{RunKind.SUITE}'",
                max_results=1,
            )
            path = self.client.download_artifacts(runs[0].info.run_id, "suite.json")
            with open(path) as f:
                doc_json = f.read()
        document = json.loads(doc_json)
        tampered = None
        if self.store.secret is not None and not holds(
            self.store.secret, suite_id, [document], tags.get(Tag.SIGNATURE)
        ):
            tampered = "the suite's signature does not hold (changed behind the service's back)"
        return SuiteRecord(
            id=suite_id,
            name=tags.get(Tag.NAME, ""),
            created_at=tags.get(Tag.CREATED_AT),
            experiment_id=experiment.experiment_id,
            studies=[tuple(x) for x in json.loads(tags.get(Tag.SUITE_STUDIES, "[]"))],
            document=document,
            tampered=tampered,
        )

    def get_suite(self, suite_id: str) -> SuiteRecord:
        """The suite with this id (SuiteNotFoundError, also for one still being created)."""
        try:
            check_suite_id(suite_id)
        except ConfigError:
            raise SuiteNotFoundError(f"no suite with id {suite_id!r}") from None
        experiment = self.client.get_experiment_by_name(suite_experiment_name(suite_id))
        if (
            experiment is None
            or experiment.lifecycle_stage != "active"
            or experiment.tags.get(Tag.STATUS) != StudyStatus.QUEUED
            or experiment.tags.get(Tag.SUITE_ID) != suite_id
        ):
            raise SuiteNotFoundError(f"no suite with id {suite_id!r}")
        return self._record(experiment)

    def suites(self) -> list[SuiteRecord]:
        """Every suite whose creation completed, newest first."""
        found = []
        token = None
        while True:
            page = self.client.search_experiments(
                filter_string=f"name LIKE '{SUITE_EXPERIMENT_PREFIX}%' AND "
                f"tags.`{Tag.STATUS}` = '{StudyStatus.QUEUED}'",
                max_results=1000,
                page_token=token,
            )
            found.extend(
                e for e in page if e.name == suite_experiment_name(e.tags.get(Tag.SUITE_ID, ""))
            )
            token = page.token
            if not token:
                break
        records = [self._record(e) for e in found]
        return sorted(records, key=lambda r: (r.created_at or "", r.id), reverse=True)

    def _by_idempotency_key(self, key: str) -> SuiteRecord | None:
        found = self.client.search_experiments(
            filter_string=f"name LIKE '{SUITE_EXPERIMENT_PREFIX}%' AND "
            f"tags.`{Tag.IDEMPOTENCY}` = '{key}'",
            max_results=10,
        )
        for experiment in found:
            if experiment.tags.get(Tag.STATUS) == StudyStatus.QUEUED:
                return self._record(experiment)
        return None
