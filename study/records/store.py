"""The study store: study state in MLflow, the system of record (:mod:`study.records.layout`
says how it is laid out). Create, look up and list studies, set their status, read their
trials, progress and summaries, store their results, check their signatures. Every status is
sealed when it is set (:mod:`study.records.signing`); a study's status is read back from its
seal, and :meth:`StudyStore.check_status` is what the scheduler and the driver act on.

``StudyStore`` talks to MLflow through its own ``MlflowClient`` (no global MLflow state). For
a ``sqlite:///DIR/mlflow.db`` store, artifacts go under ``DIR/mlartifacts`` unless
``artifact_root`` says otherwise; a tracking server chooses its own.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from study.analysis import PLOT_STEMS, SUMMARY_VERSION
from study.analysis.rows import to_int
from study.bounded import preview
from study.errors import (
    ConfigError,
    IdempotencyKeyReusedError,
    StoreUnavailableError,
    StudyNotFoundError,
)
from study.faults import classify, store_error
from study.numbers import finite
from study.records.formats import experiment_note, study_note, summary_dict, trials_csv
from study.records.ids import (
    STUDY_ID_RE,
    check_idempotency_key,
    check_study_id,
    new_study_id,
    utc_now_iso,
)
from study.records.layout import (
    EXPERIMENT_KIND,
    HEADLINE,
    SPEC_TAG_MAX,
    VIEW_TAG,
    StudyRecord,
    StudyState,
    canonical,
    experiment_name,
    names_study,
    trial_row,
    view_state,
)
from study.records.locks import creation_lock
from study.records.signing import (
    LEGACY_VERSION,
    REFUSED,
    SEAL_GRACE_S,
    Seal,
    SignatureError,
    holds,
    open_seal,
    seal,
    seal_prefix,
    sign,
    signature_version,
)
from study.vocab import (
    ENDED,
    RUN_STATUS_AT_END,
    SETTABLE,
    TRIAL_DONE,
    TRIAL_RANK,
    PlotName,
    RunKind,
    StudyStatus,
    Tag,
    TrialStatus,
)

if TYPE_CHECKING:
    from mlflow.entities import Run

    from study.spec.study_spec import StudySpec

log = logging.getLogger("hprobust.records")

#: The MLflow filter of every study's experiment (also those named ``hprobust-<id>``, from
#: before issue 23): tagged with a study id. Which one is a study's: ``layout.canonical``.
_STUDIES = f"tags.`{Tag.STUDY_ID}` LIKE 's%'"


@dataclass(frozen=True)
class StatusCheck:
    """A study's status as its seal says (:mod:`study.records.signing`), and what, if anything,
    was changed behind the service's back.

    ``sealed``: the status is the one the service sealed, at the newest generation this store
    has seen: the scheduler and the driver act on it (and on nothing else). A record from
    before status seals (a ``v1`` signature, no seal) is not sealed and has no ``problem``:
    its status tag is all there is.
    """

    status: str
    sealed: bool
    problem: str | None = None
    generation: int = 0


def default_artifact_root(tracking_uri: str) -> str | None:
    """``DIR/mlartifacts`` for ``sqlite:///DIR/mlflow.db``; None (the server's choice) else."""
    if tracking_uri.startswith("sqlite:///"):
        db = Path(tracking_uri.removeprefix("sqlite:///"))
        return str((db.parent / "mlartifacts").resolve())
    return None


def sqlite_uri(data_dir: str | Path) -> str:
    """The embedded store ``sqlite:///DIR/mlflow.db`` (DIR made absolute and created)."""
    path = Path(data_dir).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path / 'mlflow.db'}"


class StudyStore:
    """Read/write side of study state in MLflow.

    Args:
        tracking_uri: an MLflow tracking URI (``sqlite:///...``, ``postgresql://...``,
            ``http://...``).
        artifact_root: where new experiments keep artifacts (default: see module doc).
        secret: signs the studies this store creates and checks signatures
            (:mod:`study.records.signing`). None: the one in the environment
            (``HPROBUST_SECRET_FILE``
            or ``HPROBUST_SECRET``, as a study driver has it), if any; else studies are
            created unsigned (nothing will run them).
    """

    def __init__(
        self,
        tracking_uri: str,
        *,
        artifact_root: str | None = None,
        secret: bytes | None = None,
    ) -> None:
        from mlflow.tracking import MlflowClient

        if tracking_uri.startswith("sqlite:///"):
            Path(tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.tracking_uri = tracking_uri
        self.artifact_root = artifact_root or default_artifact_root(tracking_uri)
        self.client = MlflowClient(tracking_uri=tracking_uri)
        # creations take turns, across the processes of this store (see create_study)
        self._create_lock = creation_lock(tracking_uri)
        # study id -> experiment id: fixed when the study is created (an experiment name is
        # never reused), so it is looked up by name once per store. Every read of a study's
        # tags still reads its experiment (by id), which also notices a deleted one.
        self._experiment_ids: dict[str, str] = {}
        # study id -> the newest sealed status seen (generation, status, seal tag): an older
        # seal is a replay, and is not acted on (study.records.signing)
        self._seen: dict[str, tuple[int, str, str]] = {}
        if secret is None:
            from study.records.signing import driver_secret

            try:
                secret = driver_secret()
            except SignatureError:
                secret = None
        self.secret = secret

    # ---- studies --------------------------------------------------------------------------

    def create_study(
        self,
        spec: StudySpec,
        study_id: str | None = None,
        *,
        report_url: str | None = None,
        wait_s: float | None = None,
        idempotency_key: str | None = None,
    ) -> StudyRecord:
        """Record a new study (status ``queued``) with its spec; the spec is valid already.

        All or nothing: the experiment is written as ``creating`` (never listed, never run),
        then its study run, params and ``spec.yaml``, and only then set ``queued``. Any failure
        deletes what was written and raises (a creation that could not even do that is rolled
        back later: :meth:`roll_back_stuck`). Creations take turns, across every process of
        this store (:func:`study.records.locks.creation_lock`: a file lock for SQLite, an
        advisory lock for PostgreSQL; MLflow's SQLite store also fails concurrent writers
        with pool timeouts). ``wait_s`` bounds the wait for that turn (StoreUnavailableError
        after it; None: wait for good).
        ``report_url`` links the report page in the study run's MLflow description.

        ``idempotency_key``: if a study was created with this key (experiment tag
        ``hprobust.idempotency``) and the same spec, that study is returned and nothing is
        written (its id differs from ``study_id``); with another spec,
        IdempotencyKeyReusedError. The lookup takes the same turn as the creation, so
        concurrent requests with one key create one study, from any number of processes. A
        ``study_id`` recorded already (also by a creator that raced this one) is a
        ConfigError.
        """
        study_id = check_study_id(study_id) if study_id else new_study_id()
        if idempotency_key is not None:
            check_idempotency_key(idempotency_key)
        if not self._create_lock.acquire(wait_s):
            raise StoreUnavailableError(
                f"the study store is busy: no turn to record a study within {wait_s:g} s "
                "(nothing was recorded; try again)"
            )
        try:
            if idempotency_key is not None:
                existing = self._by_idempotency_key(idempotency_key)
                if existing is not None:
                    if existing.spec != spec.model_dump(mode="json"):
                        raise IdempotencyKeyReusedError(idempotency_key, existing.id)
                    return existing
            return self._create(spec, study_id, report_url, idempotency_key)
        finally:
            self._create_lock.release()

    @contextmanager
    def creation_turn(self, wait_s: float | None = None) -> Iterator[None]:
        """Hold this store's turn to create (the lock :meth:`create_study` takes), e.g. to
        record a suite's studies all or none; StoreUnavailableError when no turn comes within
        ``wait_s``."""
        if not self._create_lock.acquire(wait_s):
            raise StoreUnavailableError(
                f"the study store is busy: no turn to record within {wait_s:g} s "
                "(nothing was recorded; try again)"
            )
        try:
            yield
        finally:
            self._create_lock.release()

    def record_study(
        self,
        spec: StudySpec,
        study_id: str,
        *,
        report_url: str | None = None,
        tags: dict[str, str] | None = None,
        queue: bool = True,
    ) -> StudyRecord:
        """Record one study while the caller holds :meth:`creation_turn` (``tags``: more
        experiment tags, e.g. its suite). ``queue=False`` leaves it ``creating`` (never listed
        or run) until :meth:`queue_created`; a failure deletes what was written and raises."""
        return self._create(spec, check_study_id(study_id), report_url, None, tags, queue)

    def queue_created(self, study_id: str) -> None:
        """Set a study recorded with ``queue=False`` ``queued``: from now on it is listed and
        the scheduler runs it."""
        experiment = self._experiment(study_id)
        if experiment.tags.get(Tag.STATUS) != StudyStatus.CREATING:
            raise ConfigError(f"study {study_id} is not being created")
        self._write_status(experiment.experiment_id, study_id, StudyStatus.QUEUED, {})

    def discard(self, study_id: str) -> None:
        """Delete a study whose creation is being undone (best effort, like a failed
        creation's roll-back)."""
        try:
            experiment_id = self.experiment_id(study_id)
        except StudyNotFoundError:
            return
        self._roll_back(experiment_id, study_id)

    def _by_idempotency_key(self, key: str) -> StudyRecord | None:
        """The study created with ``key`` (the key is checked: safe to quote in the filter)."""
        try:
            found = self.client.search_experiments(
                filter_string=f"tags.`{Tag.IDEMPOTENCY}` = '{key}'", max_results=10
            )
        except Exception as exc:
            cause = store_error(exc)
            if cause is not None:
                raise cause from exc
            raise
        for experiment in found:
            if experiment.tags.get(Tag.STATUS) not in (None, StudyStatus.CREATING):
                return self._record(experiment)
        return None

    def _create(
        self,
        spec: StudySpec,
        study_id: str,
        report_url: str | None,
        idempotency_key: str | None,
        extra_tags: dict[str, str] | None = None,
        queue: bool = True,
    ) -> StudyRecord:
        from mlflow.entities import Param

        name = experiment_name(study_id, spec.name)
        try:  # (a read, answered as the write it precedes: nothing was recorded)
            taken = self._tagged(study_id, every=True)
        except Exception as exc:
            cause = store_error(exc)
            if cause is not None:
                raise cause from exc
            raise
        if taken:
            raise ConfigError(f"study_id must be new, got {study_id!r} (already recorded)")
        spec_dict = spec.model_dump(mode="json")
        spec_json = json.dumps(spec_dict, sort_keys=True)
        created_at = utc_now_iso()
        tags = {
            Tag.STUDY_ID: study_id,
            Tag.NAME: spec.name,
            Tag.STATUS: StudyStatus.CREATING,  # set queued once everything is written
            Tag.CREATED_AT: created_at,
            Tag.NUM_CLASSES: str(spec.num_classes),
            Tag.TOTAL_TRIALS: str(spec.total_trials),
            **EXPERIMENT_KIND,
            VIEW_TAG: view_state(init_scale=spec.search.init_scale is not None),
        }
        if len(spec_json) <= SPEC_TAG_MAX:
            tags[Tag.SPEC] = spec_json
        if idempotency_key is not None:
            tags[Tag.IDEMPOTENCY] = idempotency_key
        tags.update(extra_tags or {})
        if self.secret is not None:
            tags[Tag.SIGNATURE] = sign(self.secret, study_id, spec_dict)
        location = f"{self.artifact_root}/{study_id}" if self.artifact_root else None
        try:
            experiment_id = self.client.create_experiment(
                name, artifact_location=location, tags=tags
            )
        except Exception as exc:
            if getattr(exc, "error_code", None) == "RESOURCE_ALREADY_EXISTS":
                raise ConfigError(
                    f"study_id must be new, got {study_id!r} (recorded meanwhile)"
                ) from exc
            cause = store_error(exc)
            if cause is not None:
                raise cause from exc
            raise
        try:
            run_tags = {
                Tag.KIND: RunKind.STUDY,
                Tag.STUDY_ID: study_id,
                Tag.NOTE: study_note(study_id, spec.name, report_url),
            }
            if extra_tags and Tag.SUITE_ID in extra_tags:
                run_tags[Tag.SUITE_ID] = extra_tags[Tag.SUITE_ID]
            if report_url:
                run_tags[Tag.REPORT_URL] = report_url
            run = self.client.create_run(
                experiment_id, tags=run_tags, run_name=f"study {spec.name}"[:250]
            )
            params = {
                "name": spec.name,
                "dataset": spec.dataset_name,
                "model": spec.model["name"],
                "arms": ",".join(spec.arm_names),
                "sampler": spec.sampler,
                "trials_per_arm": spec.points_per_arm,
                "seeds": spec.seeds,
                "epochs": spec.epochs,
                "batch_size": spec.batch_size,
                "total_trials": spec.total_trials,
            }
            self.client.log_batch(
                run.info.run_id, params=[Param(k, str(v)[:6000]) for k, v in params.items()]
            )
            self.client.log_text(run.info.run_id, spec.to_yaml(), "spec.yaml")
            note = experiment_note(
                study_id,
                spec.name,
                spec.total_trials,
                report_url,
                study_run=(experiment_id, run.info.run_id),
            )
            self.client.set_experiment_tag(experiment_id, Tag.NOTE, note)
            self.client.update_run(run.info.run_id, status="SCHEDULED")  # queued
            if queue:
                self._write_status(experiment_id, study_id, StudyStatus.QUEUED, {})
            self._experiment_ids[study_id] = experiment_id
        except BaseException as exc:
            self._roll_back(experiment_id, study_id)
            cause = store_error(exc) if isinstance(exc, Exception) else None
            if cause is not None:
                raise cause from exc
            raise
        return StudyRecord(
            id=study_id,
            name=spec.name,
            status=StudyStatus.QUEUED if queue else StudyStatus.CREATING,
            created_at=created_at,
            started_at=None,
            finished_at=None,
            experiment_id=experiment_id,
            spec=spec_dict,
            num_classes=spec.num_classes,
            total_trials=spec.total_trials,
        )

    def _roll_back(self, experiment_id: str, study_id: str) -> None:
        """Delete a study whose creation failed (best effort: if the store cannot be written
        now, the experiment stays ``creating``, which nothing lists or runs)."""
        self._experiment_ids.pop(study_id, None)
        try:
            self.client.delete_experiment(experiment_id)
        except Exception as exc:
            log.warning(
                "could not delete the half-created study %s (it stays %s, never listed or run): %s",
                study_id,
                StudyStatus.CREATING,
                exc,
            )

    def roll_back_stuck(self, grace_s: float, *, now: float | None = None) -> list[tuple[str, str]]:
        """Roll back the studies left ``creating`` for more than ``grace_s`` seconds (by
        MLflow's own creation time): a creation whose process died, or whose roll-back
        failed (:meth:`create_study` answered an error for it; nothing ever ran it).

        Each is finished as its creation would have been: tagged ``failed`` with the reason
        (``hprobust.error``; its ``Idempotency-Key`` released, so a retry of the request
        creates a study), then its experiment deleted (listed nowhere; MLflow keeps it among
        the deleted experiments, with the reason). Returns ``(study id, reason)`` for each;
        one that cannot be written now is tried again at the next call."""
        import time

        now = time.time() if now is None else now
        found = self.client.search_experiments(
            filter_string=f"{_STUDIES} AND tags.`{Tag.STATUS}` = '{StudyStatus.CREATING}'",
            max_results=1000,
        )
        rolled_back = []
        for experiment in found:
            study_id = experiment.tags.get(Tag.STUDY_ID, "")
            if not names_study(experiment.name, study_id):
                continue  # not a study's experiment (a forged tag must not steer this)
            age = now - (experiment.creation_time or 0) / 1000.0
            if age < grace_s:
                continue  # a creation may still be under way
            reason = (
                f"its creation did not complete (still {StudyStatus.CREATING} after "
                f"{age:.0f} s; HPROBUST_CREATING_GRACE_S={grace_s:g}): the request was answered "
                f"with an error and nothing ran it; rolled back at {utc_now_iso()}"
            )
            try:
                for key, value in (
                    (Tag.ERROR, reason),
                    (Tag.STATUS, StudyStatus.FAILED),
                    (Tag.FINISHED_AT, utc_now_iso()),
                ):
                    self.client.set_experiment_tag(experiment.experiment_id, str(key), value)
                if Tag.IDEMPOTENCY in experiment.tags:
                    self.client.delete_experiment_tag(experiment.experiment_id, Tag.IDEMPOTENCY)
                self.client.delete_experiment(experiment.experiment_id)
            except Exception as exc:
                log.warning(
                    "could not roll back the stuck study %s (tried again later): %s", study_id, exc
                )
                continue
            self._experiment_ids.pop(study_id, None)
            rolled_back.append((study_id, reason))
        return rolled_back

    def _experiment(self, study_id: str):
        """The study's experiment, its tags as they are now: one read (by id once the id is
        known to this store, else by name)."""
        if not isinstance(study_id, str) or not study_id:
            raise StudyNotFoundError(f"no study with id {study_id!r}")
        known = self._experiment_ids.get(study_id)
        experiment = None
        if known is not None:
            from mlflow.exceptions import MlflowException

            try:
                experiment = self.client.get_experiment(known)
            except MlflowException as exc:  # deleted for good behind this store's back
                if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                    raise
            if experiment is None or experiment.lifecycle_stage != "active":
                self._experiment_ids.pop(study_id, None)
                experiment = None
        if experiment is None and STUDY_ID_RE.fullmatch(study_id):  # (safe to quote)
            experiment = canonical(self._tagged(study_id), study_id)
        if experiment is None or experiment.lifecycle_stage != "active":
            raise StudyNotFoundError(f"no study with id {study_id!r}")
        self._experiment_ids[study_id] = experiment.experiment_id
        return experiment

    def _tagged(self, study_id: str, *, every: bool = False) -> list[Any]:
        """The experiments tagged with the study's id (``every``: deleted ones too): one
        search (:func:`study.records.layout.canonical` picks the study's among them). A
        failure is raised as MLflow raised it: a failed read, not a write that recorded
        nothing (the API answers it 503 "MLflow is not reachable")."""
        from mlflow.entities import ViewType

        return list(
            self.client.search_experiments(
                view_type=ViewType.ALL if every else ViewType.ACTIVE_ONLY,
                filter_string=f"tags.`{Tag.STUDY_ID}` = '{study_id}'",
                max_results=50,
            )
        )

    def experiment_id(self, study_id: str) -> str:
        """The study's experiment id (no round trip once this store has seen the study)."""
        known = self._experiment_ids.get(study_id)
        return known if known is not None else self._experiment(study_id).experiment_id

    def _state_fields(self, experiment) -> dict[str, Any]:
        """A :class:`StudyState`'s fields from the experiment's tags (no other read)."""
        tags = experiment.tags
        study_id = tags[Tag.STUDY_ID]
        check = self._status_of(study_id, tags)
        return dict(
            id=study_id,
            name=tags.get(Tag.NAME, ""),
            status=check.status,
            created_at=tags.get(Tag.CREATED_AT),
            created_ms=experiment.creation_time,
            started_at=tags.get(Tag.STARTED_AT),
            finished_at=tags.get(Tag.FINISHED_AT),
            experiment_id=experiment.experiment_id,
            num_classes=int(tags.get(Tag.NUM_CLASSES, 0)),
            total_trials=int(tags.get(Tag.TOTAL_TRIALS, 0)),
            error=tags.get(Tag.ERROR) if check.status == StudyStatus.FAILED else None,
            last_error=tags.get(Tag.LAST_ERROR),
            retry_at=tags.get(Tag.RETRY_AT),
            segment_started_at=tags.get(Tag.SEGMENT_STARTED_AT),
            segment_done=to_int(tags.get(Tag.SEGMENT_DONE)),
            tampered=check.problem or tags.get(Tag.TAMPERED),
            suite_id=tags.get(Tag.SUITE_ID),
            workload=tags.get(Tag.WORKLOAD),
            suite_index=to_int(tags.get(Tag.SUITE_INDEX)),
        )

    def _record(self, experiment) -> StudyRecord:
        fields = self._state_fields(experiment)
        spec_json = experiment.tags.get(Tag.SPEC)
        if spec_json is not None:
            spec = json.loads(spec_json)
        else:
            from study.bounded import load_yaml  # a changed spec.yaml is not trusted

            spec = load_yaml(self._read_artifact(fields["id"], "spec.yaml"))
        return StudyRecord(**fields, spec=spec)

    def _listed(self, study_id: str):
        """The study's experiment, unless it is being created (or its creation failed)."""
        experiment = self._experiment(study_id)
        if experiment.tags.get(Tag.STATUS) == StudyStatus.CREATING:
            raise StudyNotFoundError(f"no study with id {study_id!r}")
        return experiment

    def get(self, study_id: str) -> StudyRecord:
        """The study with this id (raises StudyNotFoundError, also for one still being
        created or whose creation failed)."""
        return self._record(self._listed(study_id))

    def state(self, study_id: str) -> StudyState:
        """The study's state without its spec (one read of its experiment); raises like
        :meth:`get`."""
        return StudyState(**self._state_fields(self._listed(study_id)))

    def _search(self, where: str = "") -> list[Any]:
        """Every study experiment matching the MLflow filter ``where`` (``AND``-ed to the
        name prefix), not those being created."""
        experiments = []
        token = None
        query = _STUDIES + (f" AND {where}" if where else "")
        while True:
            page = self.client.search_experiments(
                filter_string=query,
                max_results=1000,
                page_token=token,
            )
            experiments.extend(
                e
                for e in page
                if names_study(e.name, e.tags.get(Tag.STUDY_ID, ""))
                and e.tags.get(Tag.STATUS) != StudyStatus.CREATING
            )
            token = page.token
            if not token:
                break
        by_study: dict[str, list[Any]] = {}
        for experiment in experiments:
            by_study.setdefault(experiment.tags[Tag.STUDY_ID], []).append(experiment)
        # one experiment per study: a second one tagged with its id is not the study's (a
        # filtered search may find that one alone: one this store knows to be another study's
        # experiment is left out)
        chosen = []
        for study_id, found in by_study.items():
            experiment = canonical(found, study_id)
            known = self._experiment_ids.get(study_id)
            if not where:  # every experiment tagged with the id: this one is the study's
                self._experiment_ids[study_id] = experiment.experiment_id
            elif known is not None and known != experiment.experiment_id:
                continue
            chosen.append(experiment)
        return chosen

    def states(self, statuses: Iterable[str] | None = None) -> list[StudyState]:
        """The studies whose status is one of ``statuses`` (None: every study), newest first,
        without their specs (not those being created, or whose creation failed).

        MLflow filters them on the status tag (one search per status: its experiment search
        has no ``IN`` or ``OR`` for tags, on SQLite and PostgreSQL alike), so the scheduler's
        pass every few seconds reads only the live studies' experiments, never every study
        or any spec; a listing of every study is one search and reads no spec either."""
        if statuses is None:
            found = self._search()
        else:
            wanted = sorted({str(status) for status in statuses})
            for status in wanted:
                if not StudyStatus.has(status) or status == StudyStatus.CREATING:
                    raise ConfigError(
                        f"statuses must be among {', '.join(SETTABLE)}, got {status!r}"
                    )
            # by the status tag (what MLflow shows) and by the seal (what the service signed):
            # a study whose tag was changed behind the service's back is found either way, its
            # status the sealed one, ``tampered`` saying what was changed
            unique = {}
            for status in wanted:
                for where in (
                    f"tags.`{Tag.STATUS}` = '{status}'",
                    f"tags.`{Tag.STATUS_SEAL}` LIKE '{seal_prefix(status)}%'",
                ):
                    unique.update((e.experiment_id, e) for e in self._search(where))
            found = list(unique.values())
        states = [StudyState(**self._state_fields(e)) for e in found]
        if statuses is not None:
            states = [r for r in states if r.status in wanted or r.tampered]
        return sorted(
            states, key=lambda r: (r.created_at or "", r.created_ms or 0, r.id), reverse=True
        )

    def ping(self) -> None:
        """One small read of the tracking server (raises what MLflow raises when it cannot
        be reached): the readiness check's, which must not cost a read per study."""
        self.client.search_experiments(max_results=1)

    def set_status(self, study_id: str, status: str, *, reason: str | None = None) -> None:
        """Set the study's status.

        ``running``: a run of its driver begins (started_at is stamped the first time; every
        time, the segment's start and how many trials had ended by then). An end state
        (finished, failed, cancelled) first closes every trial run still open (see
        :meth:`close_open_trials`, ``reason`` saying why, default ``study <status>``), then
        stamps finished_at, so no trial run stays RUNNING after its study ended.
        ``finished`` also drops ``last_error`` and ``retry_at``: a study that recovered (a
        resume, a lost job resubmitted) and finished shows no error it has left behind.

        Raises StudyNotFoundError, having changed nothing, for an unknown id or a record
        without its study run (not a study).
        """
        if status not in SETTABLE:
            raise ConfigError(f"status must be one of {', '.join(SETTABLE)}, got {status!r}")
        experiment = self._experiment(study_id)
        experiment_id = experiment.experiment_id
        run_id = self.study_run_id(study_id)  # before any write: a 404 changes nothing
        self._upgrade_legacy(study_id, experiment)
        now = utc_now_iso()
        if status == StudyStatus.RUNNING:
            progress = self.progress(study_id)
            done = progress["finished"] + progress["failed"]
            self.client.set_experiment_tag(experiment_id, str(Tag.SEGMENT_STARTED_AT), now)
            self.client.set_experiment_tag(experiment_id, str(Tag.SEGMENT_DONE), str(done))
            if not experiment.tags.get(Tag.STARTED_AT):
                self.client.set_experiment_tag(experiment_id, str(Tag.STARTED_AT), now)
        elif status in RUN_STATUS_AT_END:
            self.close_open_trials(study_id, reason=reason or f"study {status}")
            self.client.set_experiment_tag(experiment_id, str(Tag.FINISHED_AT), now)
        if status == StudyStatus.FINISHED:  # what it recovered from is over: no stale error
            for tag in (Tag.LAST_ERROR, Tag.RETRY_AT):
                if experiment.tags.get(tag) is not None:
                    self.client.delete_experiment_tag(experiment_id, str(tag))
        self._write_status(experiment_id, study_id, status, experiment.tags)
        # The study run shows the same state in the MLflow UI (never RUNNING once it ended).
        if status in RUN_STATUS_AT_END:
            self.client.set_terminated(run_id, RUN_STATUS_AT_END[status])
        else:
            running = status == StudyStatus.RUNNING
            self.client.update_run(run_id, status="RUNNING" if running else "SCHEDULED")

    def close_open_trials(self, study_id: str, *, reason: str) -> int:
        """End every trial run of the study that is still open (RUNNING or SCHEDULED): MLflow
        status KILLED, ``hprobust.status = pending`` (it did not end by itself: a resumed
        study trains it again, and progress counts it pending, not running) and
        ``hprobust.stopped = reason``. Returns how many were closed."""
        from mlflow.entities import RunTag

        closed = 0
        for run in self.trial_runs(study_id):
            if run.info.status not in ("RUNNING", "SCHEDULED"):
                continue
            tags = [
                RunTag(str(Tag.STATUS), str(TrialStatus.PENDING)),
                RunTag(str(Tag.STOPPED), reason[:4900]),
            ]
            self.client.log_batch(run.info.run_id, tags=tags)
            self.client.set_terminated(run.info.run_id, "KILLED")
            closed += 1
        return closed

    def set_tags(self, study_id: str, tags: dict[str, str | None]) -> None:
        """Set (or, for None, remove) experiment tags of the study."""
        experiment = self._experiment(study_id)
        for key, value in tags.items():
            if value is not None:
                self.client.set_experiment_tag(
                    experiment.experiment_id, str(key), str(value)[:4900]
                )
            elif key in experiment.tags:
                self.client.delete_experiment_tag(experiment.experiment_id, str(key))

    def set_error(self, study_id: str, message: str) -> None:
        """Record why a study failed (experiment tag ``hprobust.error``)."""
        self.client.set_experiment_tag(self.experiment_id(study_id), Tag.ERROR, message[:4900])

    # ---- signatures (study.records.signing)

    def signature_problem(self, study_id: str) -> str | None:
        """None if the study's signature holds for its id and its spec, both as the spec tag
        holds it and as ``spec.yaml`` does; else why not (starting with
        :data:`study.records.signing.REFUSED`)."""
        from study.bounded import BoundedInputError, load_yaml

        if self.secret is None:
            return (
                "the signature cannot be checked: no signing secret (set HPROBUST_SECRET, the "
                "same as the API's, in the environment of the Ray head)"
            )
        experiment = self._experiment(study_id)
        tags = experiment.tags
        signature = tags.get(Tag.SIGNATURE)
        if not signature:
            return f"{REFUSED} (the record has no signature)"
        if tags.get(Tag.STUDY_ID) != study_id:
            return f"{REFUSED} (its study id was changed)"
        specs = []
        try:
            if Tag.SPEC in tags:
                specs.append(json.loads(tags[Tag.SPEC]))
            specs.append(load_yaml(self._read_artifact(study_id, "spec.yaml")))
        except (ValueError, BoundedInputError, LookupError, StudyNotFoundError) as exc:
            if classify(exc) is not None:  # a fault that heals: check again, refuse nothing
                raise StoreUnavailableError(
                    f"cannot read study {study_id}'s spec to check its signature: {exc}"
                ) from exc
            return f"{REFUSED} (its spec cannot be read: {preview(str(exc), limit=120)})"
        if not all(isinstance(spec, dict) for spec in specs):
            return f"{REFUSED} (its spec is not a mapping)"
        if not holds(self.secret, study_id, specs, signature):
            return f"{REFUSED} (its id or spec was changed, or another secret signed it)"
        return None

    def refuse(self, study_id: str, reason: str) -> None:
        """Mark a study that must not run: ``failed`` with ``reason`` as its error (and as
        ``hprobust.refused``); its study run, if it has one, ends FAILED."""
        experiment_id = self.experiment_id(study_id)
        self.client.set_experiment_tag(experiment_id, Tag.REFUSED, reason[:4900])
        self.set_error(study_id, reason)
        try:
            self.set_status(study_id, StudyStatus.FAILED)
        except StudyNotFoundError:  # no study run (a record forged without one)
            tags = self._experiment(study_id).tags
            self._write_status(experiment_id, study_id, StudyStatus.FAILED, tags)
            self.client.set_experiment_tag(experiment_id, Tag.FINISHED_AT, utc_now_iso())

    # ---- sealed statuses (study.records.signing) ------------------------------------------

    def _status_of(self, study_id: str, tags: dict[str, str]) -> StatusCheck:
        """The study's status from its tags: the sealed one when the seal holds and is not
        older than the newest this store has seen; what was changed behind the service's
        back, if anything (no other read)."""
        tag = tags.get(Tag.STATUS, StudyStatus.QUEUED)
        text = tags.get(Tag.STATUS_SEAL)
        if self.secret is None:  # cannot check (a reader without the secret): the tag
            return StatusCheck(tag, sealed=False)
        seen = self._seen.get(study_id)
        if text is None and signature_version(tags.get(Tag.SIGNATURE)) != "v2" and seen is None:
            return StatusCheck(tag, sealed=False)  # recorded before status seals
        found = open_seal(self.secret, study_id, text)
        if found is None:  # the tag is all there is, and nothing acts on it
            why = "its seal is missing" if text is None else "its seal does not hold"
            return StatusCheck(tag, sealed=False, problem=f"status tag {tag!r} not signed: {why}")
        if seen is not None and found.generation < seen[0]:
            return StatusCheck(
                seen[1],
                sealed=False,
                generation=seen[0],
                problem=f"status seal replayed: generation {found.generation} ({found.status}) "
                f"is older than generation {seen[0]} ({seen[1]})",
            )
        if seen is None or found.generation >= seen[0]:
            self._seen[study_id] = (found.generation, found.status, text)
        problem = None
        if tag != found.status:
            # the seal is written first, the tag just after: a tag still showing the status
            # before, for a moment, is a transition under way
            under_way = tag == found.previous and time.time() - found.at < SEAL_GRACE_S
            if not under_way:
                problem = (
                    f"status tag {tag!r} not signed (the service's status is {found.status!r}, "
                    f"generation {found.generation}): ignored"
                )
        return StatusCheck(found.status, sealed=True, problem=problem, generation=found.generation)

    def _write_status(
        self, experiment_id: str, study_id: str, status: str, tags: dict[str, str]
    ) -> None:
        """Seal ``status`` (one generation after the newest seen, ``tags`` being the study's
        tags as just read), then set the status tag. With no secret, the tag only."""
        if self.secret is not None:
            current = open_seal(self.secret, study_id, tags.get(Tag.STATUS_SEAL))
            seen = self._seen.get(study_id)
            generation = max(
                current.generation if current is not None else 0, seen[0] if seen else 0
            )
            previous = current.status if current is not None else tags.get(Tag.STATUS)
            if previous == StudyStatus.CREATING:
                previous = None
            new = Seal(str(status), generation + 1, previous, int(time.time()))
            text = seal(self.secret, study_id, new)
            self.client.set_experiment_tag(experiment_id, str(Tag.STATUS_SEAL), text)
            self._seen[study_id] = (new.generation, new.status, text)
        self.client.set_experiment_tag(experiment_id, str(Tag.STATUS), str(status))

    def _upgrade_legacy(self, study_id: str, experiment) -> None:
        """A study recorded before status seals (``v1`` signature) whose signature holds: its
        signature becomes ``v2`` (its statuses are sealed from now on; a deleted seal then
        no longer passes for an old record). One that does not hold is left as it is."""
        tags = experiment.tags
        if self.secret is None or signature_version(tags.get(Tag.SIGNATURE)) != LEGACY_VERSION:
            return
        try:
            if self.signature_problem(study_id) is not None:
                return
        except StoreUnavailableError:
            return
        record = self._record(experiment)
        self.client.set_experiment_tag(
            experiment.experiment_id, str(Tag.SIGNATURE), sign(self.secret, study_id, record.spec)
        )

    def check_status(self, study_id: str) -> StatusCheck:
        """The study's status as the scheduler and the driver may act on it.

        A study recorded before status seals (no seal, a ``v1`` signature) is sealed now at
        the status its tag shows (its signature, which the caller checked, proves the service
        created it). A status tag that differs from the seal is reported (a warning in the log,
        ``hprobust.tampered`` on the study) and set back to the sealed status; a seal that
        does not hold, is missing or is older than one seen before is reported and nothing
        acts on the study (``sealed`` False) until the service changes its status itself
        (cancel, resume). Raises StudyNotFoundError like :meth:`state`.
        """
        experiment = self._experiment(study_id)
        tags = experiment.tags
        check = self._status_of(study_id, tags)
        if check.problem is not None:
            self._report_tampered(experiment, study_id, check)
        elif not check.sealed and self.secret is not None:
            log.warning(
                "study %s was recorded before status seals: sealing its status %s",
                study_id,
                check.status,
            )
            self._upgrade_legacy(study_id, experiment)
            self._write_status(experiment.experiment_id, study_id, check.status, tags)
            return StatusCheck(check.status, sealed=True, generation=1)
        return check

    def _report_tampered(self, experiment, study_id: str, check: StatusCheck) -> None:
        """Log what was changed, record it as ``hprobust.tampered`` and, where the service
        knows the status it sealed, set the status tag (and, for a replayed seal, the newest
        seal seen) back to it. A seal that does not hold is left as it is: nothing acts on the
        study until the service sets its status itself."""
        tags = experiment.tags
        note = f"{utc_now_iso()} {check.problem}"[:4900]
        if tags.get(Tag.TAMPERED, "").partition(" ")[2] != check.problem:
            log.warning("study %s: %s", study_id, check.problem)
            self.client.set_experiment_tag(experiment.experiment_id, str(Tag.TAMPERED), note)
        seen = self._seen.get(study_id)
        if check.sealed:
            self.client.set_experiment_tag(experiment.experiment_id, str(Tag.STATUS), check.status)
        elif seen is not None and check.generation == seen[0]:  # a replay: the newest back
            self.client.set_experiment_tag(experiment.experiment_id, str(Tag.STATUS_SEAL), seen[2])
            self.client.set_experiment_tag(experiment.experiment_id, str(Tag.STATUS), seen[1])

    # ---- runs -----------------------------------------------------------------------------

    def study_run_id(self, study_id: str) -> str:
        """The id of the study's study run (looked up each time: writes check it is there)."""
        runs = self.client.search_runs(
            [self.experiment_id(study_id)],
            filter_string=f"tags.`{Tag.KIND}` = '{RunKind.STUDY}'",
            max_results=1,
        )
        if not runs:
            raise StudyNotFoundError(f"study {study_id!r} has no study run")
        return runs[0].info.run_id

    def trial_runs(self, study_id: str) -> list[Run]:
        """Every live (not deleted) trial run of the study."""
        experiment_id = self.experiment_id(study_id)
        runs: list[Run] = []
        token = None
        while True:
            page = self.client.search_runs(
                [experiment_id],
                filter_string=f"tags.`{Tag.KIND}` = '{RunKind.TRIAL}'",
                max_results=5000,
                page_token=token,
            )
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    def trials(self, study_id: str) -> list[dict[str, Any]]:
        """One row per recorded trial key (the best-placed run if a key has several), sorted
        by arm order, point and seed. Trials not started yet have no row (see ``progress``)."""
        return self.trials_of(self.get(study_id))

    def trials_of(self, record: StudyRecord) -> list[dict[str, Any]]:
        """:meth:`trials` of a study already read (its spec gives the arm order)."""
        best: dict[str, dict[str, Any]] = {}
        for run in self.trial_runs(record.id):
            row = trial_row(run)
            key = row["key"] or row["run_id"]
            if key not in best or TRIAL_RANK[row["status"]] > TRIAL_RANK[best[key]["status"]]:
                best[key] = row
        arms = [arm["name"] for arm in record.spec.get("arms", [])]

        def order(row: dict[str, Any]) -> tuple:
            parts = (row["key"] or "").split("/")
            point = int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else 0
            arm_rank = arms.index(row["arm"]) if row["arm"] in arms else len(arms)
            return (arm_rank, point, row["seed"] or 0)

        return sorted(best.values(), key=order)

    def progress(self, study_id: str) -> dict[str, int]:
        """Counts: finished (early stopped included), running, pending, diverged, failed, total."""
        record = self.get(study_id)
        rows = self.trials_of(record)
        finished = sum(r["status"] in TRIAL_DONE for r in rows)
        running = sum(r["status"] == TrialStatus.RUNNING for r in rows)
        failed = sum(r["status"] == TrialStatus.FAILED for r in rows)
        diverged = sum(r["diverged"] and r["status"] == TrialStatus.FINISHED for r in rows)
        total = record.total_trials
        pending = max(0, total - finished - running - failed)
        return {
            "finished": finished,
            "running": running,
            "pending": pending,
            "diverged": diverged,
            "failed": failed,
            "total": total,
        }

    # ---- results --------------------------------------------------------------------------

    def summary(self, study_id: str) -> dict[str, Any]:
        """The stored summary of a finished study, else one computed now from the finished
        trials with ``"partial": true``."""
        record = self.get(study_id)
        if record.status == StudyStatus.FINISHED:
            stored = self.stored_summary(study_id)
            if stored is not None and stored.get("version") == SUMMARY_VERSION:
                return stored
        from study.analysis import summarize, summary_args

        # a finished study whose stored summary is missing or of an older version: recomputed
        # from its trials, and complete; a live one states no verdict yet
        summary = summarize(
            self.trials_of(record),
            num_classes=record.num_classes,
            complete=record.status in ENDED,
            **summary_args(record.spec),
        )
        summary.partial = record.status != StudyStatus.FINISHED
        return summary.model_dump(mode="json")

    def stored_summary(self, study_id: str) -> dict[str, Any] | None:
        """``summary.json`` as stored at the study's end (any version), or None."""
        try:
            stored = json.loads(self._read_artifact(study_id, "summary.json"))
        except LookupError:
            return None
        return stored if isinstance(stored, dict) else None

    def plot(self, study_id: str, stem: str) -> bytes:
        """PNG bytes of ``plots/<stem>.png`` (StudyNotFoundError / LookupError if absent)."""
        self._experiment(study_id)
        if stem not in PLOT_STEMS:
            raise LookupError(f"plot must be one of {', '.join(PLOT_STEMS)}, got {stem!r}")
        return self._read_artifact(study_id, f"plots/{stem}.png", binary=True)

    def plot_names(self, study_id: str) -> list[PlotName]:
        """The plots the study has stored, in report order: one ``list_artifacts`` call, so
        the report page learns which exist without downloading them."""
        listed = self.client.list_artifacts(self.study_run_id(study_id), "plots")
        stored = {Path(item.path).name for item in listed if not item.is_dir}
        return [name for name in PlotName if f"{name}.png" in stored]

    def store_results(
        self,
        study_id: str,
        summary: Any,
        trials: list[dict[str, Any]],
        plot_paths: list[Path] | None = None,
    ) -> None:
        """Write ``summary.json`` (a :class:`~study.analysis.schema.Summary` or its JSON dict),
        ``trials.csv`` and ``plots/*.png`` to the study run."""
        if hasattr(summary, "model_dump"):
            summary = summary.model_dump(mode="json")
        run_id = self.study_run_id(study_id)
        self._log_headline(study_id, run_id, summary, trials)
        self.client.log_text(run_id, json.dumps(summary, indent=2, default=str), "summary.json")
        self.client.log_text(run_id, trials_csv(trials), "trials.csv")
        for path in plot_paths or []:
            self.client.log_artifact(run_id, str(path), artifact_path="plots")

    def _log_headline(
        self, study_id: str, run_id: str, summary: dict[str, Any], trials: list[dict[str, Any]]
    ) -> None:
        """The headline summary as metrics of the study run, and a description that
        repeats it under the links."""
        import time

        from mlflow.entities import Metric, RunTag

        now = int(time.time() * 1000)
        arms = summary_dict(summary).get("arms") or {}
        metrics = []
        for arm, values in arms.items():
            for key in HEADLINE:
                value = finite((values or {}).get(key))
                if value is not None:
                    metrics.append(Metric(f"{arm}.{key}", value, now, 0))
        counts = {
            "trials_finished": sum(r.get("status") in TRIAL_DONE for r in trials),
            "trials_diverged": sum(bool(r.get("diverged")) for r in trials),
            "trials_failed": sum(r.get("status") == TrialStatus.FAILED for r in trials),
        }
        metrics += [Metric(name, float(n), now, 0) for name, n in counts.items()]
        run = self.client.get_run(run_id)
        report_url = run.data.tags.get(Tag.REPORT_URL)
        name = self.get(study_id).name
        note = study_note(study_id, name, report_url, summary=summary, counts=counts)
        self.client.log_batch(run_id, metrics=metrics, tags=[RunTag(Tag.NOTE, note)])

    def _read_artifact(self, study_id: str, path: str, *, binary: bool = False) -> Any:
        run_id = self.study_run_id(study_id)
        with tempfile.TemporaryDirectory(prefix="hprobust-artifact-") as tmp:
            try:
                local = self.client.download_artifacts(run_id, path, tmp)
            except Exception as exc:  # MLflow raises OSError / MlflowException by store
                raise LookupError(f"study {study_id!r} has no artifact {path!r}") from exc
            local_path = Path(local)
            if not local_path.is_file():
                raise LookupError(f"study {study_id!r} has no artifact {path!r}")
            return local_path.read_bytes() if binary else local_path.read_text()
