"""Ray Jobs: one job per study, its entrypoint the study driver (``python -m study.driver``).

``study.driver`` is a stable module path (:data:`DRIVER_MODULE`): it stays put whatever moves
inside ``study/``, because jobs, images and operators name it.

:class:`StudyJobs` wraps :class:`ray.job_submission.JobSubmissionClient`. The first job of a
study has the study id as its submission id; a job resubmitted to resume a study whose job was
lost gets ``<study_id>-r<n>``. Every job carries ``hprobust.study_id`` in its metadata, so the
service finds a study's latest job again after its own restart. The scheduler numbers each
submission after the latest job the cluster holds for the study (a cancelled or failed study
that is resumed gets the next number), so a submission id is never asked for twice; if Ray
still says the id exists, the job there is adopted when it is the study's own (another API
replica submitted it), and refused otherwise.

A warm driver (:meth:`StudyJobs.submit` with ``standby_s``) is a study's first job submitted
before the study exists: the scheduler reserves a fresh study id, submits its driver with
``--standby-s`` and ``hprobust.standby`` in its metadata, and the next study created takes
that id (:mod:`service.scheduler`). To everything else it is that study's job like any other.

Two ways Ray can fail a call, told apart here and nowhere else (:meth:`StudyJobs._call`):
:class:`RayUnavailableError` (no answer, or our token refused: every call fails alike, and
``/readyz`` says so) and :class:`RayRefusedError` (Ray answered this one request with an
error, e.g. ``submission_id ... already exists``: it concerns one study, not the cluster).

Ray token authentication: the client sends ``Authorization: Bearer <token>`` with the token
from ``HPROBUST_RAY_AUTH_TOKEN``, else Ray's own ``RAY_AUTH_TOKEN`` / ``RAY_AUTH_TOKEN_PATH`` /
``~/.ray/auth_token``. A cluster without token authentication ignores the header.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from study.errors import HprobustError
from study.vocab import Tag

META_STUDY = Tag.STUDY_ID
META_ATTEMPT = Tag.ATTEMPT
META_FAILURES = Tag.FAILURES
META_STANDBY = Tag.STANDBY
NODES_TTL_S = 5.0  # how long a read list of the cluster's nodes is reused


class RayUnavailableError(HprobustError, ConnectionError):
    """The Ray cluster's Jobs API cannot be reached (or refused our token)."""


class RayRefusedError(HprobustError, RuntimeError):
    """Ray's Jobs API answered one request with an error (``status``: its HTTP status, or
    None for a request the client refused to send); the cluster itself answers."""

    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


_ANSWER = re.compile(r"Request failed with status code (\d{3}): (.*)", re.S)


def ray_refusal(exc: BaseException) -> RayRefusedError | None:
    """The refusal that ``exc`` (raised by Ray's job client) is when Ray's Jobs API answered
    with an error: its HTTP status and Ray's own last line (``ValueError: Job with
    submission_id ... already exists. ...``, not the traceback around it); None when Ray did
    not answer. Ray 2.60's client raises ``RuntimeError("Request failed with status code
    <n>: <body>")`` for an answer, and a connection error (or AuthenticationError, for a
    token refused) for none."""
    from study.faults import classify

    match = _ANSWER.match(str(exc)) if isinstance(exc, RuntimeError) else None
    if match is None:
        invalid = isinstance(exc, TypeError | ValueError) and not isinstance(exc, OSError)
        if invalid and classify(exc) is None:  # not a URL or connection error
            return RayRefusedError(f"the job client refused the request: {exc}")
        return None
    status, body = int(match.group(1)), match.group(2)
    lines = [line.strip() for line in body.splitlines() if line.strip().strip(".")]
    last = lines[-1] if lines else body.strip()
    return RayRefusedError(f"Ray answered {status}: {last}"[:1000], status)


@dataclass(frozen=True)
class JobRef:
    """One Ray job of a study."""

    submission_id: str
    study_id: str
    attempt: int
    status: str  # a ray.job_submission.JobStatus: PENDING | RUNNING | STOPPED | SUCCEEDED | FAILED
    message: str | None = None
    failures: int = 0  # lost jobs of the study before this one that count toward max_attempts
    start_time: float | None = None  # Unix seconds, as the cluster recorded them
    end_time: float | None = None
    adopted: bool = False  # submit found the study's own job under this id and took it
    standby: bool = False  # a warm driver: submitted before its study was recorded

    @property
    def terminal(self) -> bool:
        """Whether the job has ended (Ray's own rule: ``JobStatus.is_terminal``)."""
        from ray.job_submission import JobStatus

        return JobStatus(self.status).is_terminal()


#: The module a study's job runs (``python -m study.driver``): a stable path, kept whatever
#: moves inside ``study/``.
DRIVER_MODULE = "study.driver"


def submission_id_of(study_id: str, attempt: int) -> str:
    """The Ray submission id of a study's job: the study id for attempt 0, else
    ``<study_id>-r<attempt>``."""
    return study_id if attempt == 0 else f"{study_id}-r{attempt}"


def resolve_ray_token(explicit: str | None = None) -> str | None:
    """The Ray auth token to send: ``explicit``, else Ray's env vars, else ``~/.ray/auth_token``."""
    if explicit:
        return explicit.strip()
    if os.environ.get("RAY_AUTH_TOKEN"):
        return os.environ["RAY_AUTH_TOKEN"].strip()
    for path in (os.environ.get("RAY_AUTH_TOKEN_PATH"), Path.home() / ".ray" / "auth_token"):
        if path and Path(path).is_file():
            token = Path(path).read_text().strip()
            if token:
                return token
    return None


def driver_entrypoint(
    study_id: str,
    *,
    tracking_uri: str,
    storage: Path | str,
    data_dir: Path | str,
    resume: bool = False,
    python: str | None = None,
    resource_wait_s: float | None = None,
    standby_s: float | None = None,
) -> str:
    """The shell command a study's Ray job runs (``standby_s``: a warm driver's wait for
    its study, :func:`study.driver.stand_by`)."""
    args = [
        python or sys.executable,
        "-m",
        DRIVER_MODULE,
        "--study-id",
        study_id,
        "--tracking-uri",
        tracking_uri,
        "--storage",
        str(storage),
        "--data-dir",
        str(data_dir),
    ]
    if resume:
        args.append("--resume")
    if resource_wait_s is not None:
        args += ["--resource-wait-s", f"{float(resource_wait_s):g}"]
    if standby_s is not None:
        args += ["--standby-s", f"{float(standby_s):g}"]
    return shlex.join(args)


class StudyJobs:
    """Submit, follow and stop the Ray jobs of studies on the cluster at ``address``.

    ``address`` is the Ray dashboard URL (``http://host:8265``). The client connects lazily and
    reconnects after a failure; every failure to reach Ray raises :class:`RayUnavailableError`.
    """

    def __init__(
        self,
        address: str,
        *,
        token: str | None = None,
        tracking_uri: str,
        storage: Path | str,
        data_dir: Path | str,
        python: str | None = None,
        resource_wait_s: float | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.address = address
        self.resource_wait_s = resource_wait_s
        self._nodes: tuple[float, list[dict[str, float]] | None] = (0.0, None)
        self.env = dict(env or {})  # the drivers' environment (runtime_env env_vars): no secrets
        self._token = token
        self.tracking_uri = tracking_uri
        self.storage = Path(storage)
        self.data_dir = Path(data_dir)
        self.python = python
        self._client: Any = None
        self._lock = threading.Lock()

    # -- connection -------------------------------------------------------------------------
    def _get_client(self) -> Any:
        with self._lock:
            if self._client is None:
                from ray.job_submission import JobSubmissionClient

                headers = {"Authorization": f"Bearer {self._token}"} if self._token else None
                try:
                    self._client = JobSubmissionClient(self.address, headers=headers)
                except Exception as exc:
                    raise RayUnavailableError(
                        f"Ray Jobs API at {self.address} is not reachable: {exc}"
                    ) from exc
            return self._client

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """``client.<method>(...)``; raises LookupError for a job the cluster does not know,
        RayRefusedError when Ray answered with another error (:func:`ray_refusal`), and
        RayUnavailableError when it did not answer."""
        client = self._get_client()
        try:
            return getattr(client, method)(*args, **kwargs)
        except Exception as exc:
            if isinstance(exc, RuntimeError) and "does not exist" in str(exc):
                raise LookupError(str(exc)) from exc
            refused = ray_refusal(exc)
            if refused is not None:
                raise refused from exc
            self._client = None
            raise RayUnavailableError(f"Ray Jobs API at {self.address}: {exc}") from exc

    def node_resources(self, timeout_s: float = 5.0) -> list[dict[str, float]]:
        """Total resources (``CPU``, ``GPU``, ...) of each alive node of the cluster, from the
        dashboard's state API (``GET /api/v0/nodes``, the same server and token as the Jobs
        API; the service does not become a Ray driver). A list read in the last
        ``NODES_TTL_S`` seconds is reused (a burst of submissions asks once). Raises
        RayUnavailableError if it cannot be read."""
        import time

        read_at, nodes = self._nodes
        if nodes is not None and time.monotonic() - read_at < NODES_TTL_S:
            return nodes
        nodes = self._read_nodes(timeout_s)
        self._nodes = (time.monotonic(), nodes)
        return nodes

    def _read_nodes(self, timeout_s: float) -> list[dict[str, float]]:
        client = self._get_client()
        try:
            response = client._do_request(
                "GET", "/api/v0/nodes?limit=10000&detail=false", timeout=timeout_s
            )
            response.raise_for_status()
            rows = response.json()["data"]["result"]["result"]
        except Exception as exc:
            raise RayUnavailableError(
                f"Ray state API at {self.address} gave no node list: {exc}"
            ) from exc
        return [
            {k: float(v) for k, v in (row.get("resources_total") or {}).items()}
            for row in rows
            if row.get("state") == "ALIVE"
        ]

    def ping(self) -> None:
        """Raise :class:`RayUnavailableError` unless the Jobs API answers."""
        self._call("list_jobs")

    # -- jobs -------------------------------------------------------------------------------
    def submit(
        self,
        study_id: str,
        *,
        resume: bool = False,
        attempt: int = 0,
        failures: int = 0,
        standby_s: float | None = None,
    ) -> JobRef:
        """Submit the driver of ``study_id`` (attempt 0 uses the study id as submission id);
        ``failures`` (the lost jobs before it that count) goes into the job's metadata.
        ``standby_s``: a warm driver for a study id reserved now, waiting that long for its
        study (attempt 0, ``hprobust.standby`` in its metadata).

        If Ray says the submission id exists already, the job there is the study's own
        (another replica of the API submitted it a moment ago): it is followed, not submitted
        again (``adopted``). Raises RayRefusedError if that job is not the study's, or Ray
        refused the job for another reason; RayUnavailableError if Ray did not answer.
        """
        submission_id = submission_id_of(study_id, attempt)
        entrypoint = driver_entrypoint(
            study_id,
            tracking_uri=self.tracking_uri,
            storage=self.storage,
            data_dir=self.data_dir,
            resume=resume,
            python=self.python,
            resource_wait_s=self.resource_wait_s,
            standby_s=standby_s,
        )
        metadata = {META_STUDY: study_id, META_ATTEMPT: str(attempt), META_FAILURES: str(failures)}
        if standby_s is not None:
            metadata[META_STANDBY] = "1"
        try:
            self._call(
                "submit_job",
                entrypoint=entrypoint,
                submission_id=submission_id,
                metadata=metadata,
                runtime_env={"env_vars": self.env} if self.env else None,
            )
        except RayRefusedError as exc:
            if "already exists" not in str(exc):
                raise
            info = self._call("get_job_info", submission_id)
            meta = info.metadata or {}
            if meta.get(META_STUDY) != study_id:
                raise RayRefusedError(
                    f"{exc} (the job {submission_id} there is not this study's: its metadata "
                    f"names {meta.get(META_STUDY) or 'no study'})",
                    exc.status,
                ) from exc
            ref = _ref(
                submission_id,
                study_id,
                int(meta.get(META_ATTEMPT, str(attempt))),
                info,
                failures=int(meta.get(META_FAILURES, "0")),
            )
            return dataclasses.replace(ref, adopted=True)
        standby = standby_s is not None
        return JobRef(
            submission_id, study_id, attempt, "PENDING", failures=failures, standby=standby
        )

    def status(self, ref: JobRef) -> JobRef:
        """``ref`` with its current status; raises LookupError if the cluster has no such job."""
        info = self._call("get_job_info", ref.submission_id)
        return _ref(ref.submission_id, ref.study_id, ref.attempt, info, failures=ref.failures)

    def find(self, study_id: str) -> JobRef | None:
        """The latest job of ``study_id`` on the cluster, or None."""
        latest: JobRef | None = None
        for job in self._call("list_jobs"):
            meta = job.metadata or {}
            if meta.get(META_STUDY) != study_id or not job.submission_id:
                continue
            attempt = int(meta.get(META_ATTEMPT, "0"))
            if latest is None or attempt > latest.attempt:
                failures = int(meta.get(META_FAILURES, "0"))
                latest = _ref(job.submission_id, study_id, attempt, job, failures=failures)
        return latest

    def stop(self, ref: JobRef) -> bool:
        """Ask the job to stop (SIGTERM, then SIGKILL); True if it was running."""
        try:
            return bool(self._call("stop_job", ref.submission_id))
        except LookupError:
            return False

    def standbys(self) -> list[JobRef]:
        """The warm drivers on the cluster that have not ended (whether or not a study took
        them since)."""
        refs = []
        for job in self._call("list_jobs"):
            meta = job.metadata or {}
            if meta.get(META_STANDBY) == "1" and job.submission_id and meta.get(META_STUDY):
                ref = _ref(job.submission_id, meta[META_STUDY], 0, job, failures=0)
                if not ref.terminal:
                    refs.append(ref)
        return refs

    def delete(self, ref: JobRef) -> bool:
        """Forget an ended job (its record and logs on the cluster); True if it was deleted.
        A warm driver that ended with no study is deleted, so idle hours do not fill the
        cluster's job list."""
        try:
            return bool(self._call("delete_job", ref.submission_id))
        except LookupError:
            return False


def _ref(submission_id: str, study_id: str, attempt: int, info: Any, *, failures: int) -> JobRef:
    """A JobRef from Ray's JobInfo/JobDetails (times in Unix milliseconds there)."""

    def seconds(ms: Any) -> float | None:
        return ms / 1000.0 if isinstance(ms, int | float) and ms > 0 else None

    meta = getattr(info, "metadata", None) or {}
    return JobRef(
        submission_id,
        study_id,
        attempt,
        str(info.status),
        info.message,
        failures=failures,
        start_time=seconds(getattr(info, "start_time", None)),
        end_time=seconds(getattr(info, "end_time", None)),
        standby=meta.get(META_STANDBY) == "1",
    )
