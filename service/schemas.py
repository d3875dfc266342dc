"""Request and response models of the HTTP API (every route declares one)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from study.analysis.schema import Summary
from study.analysis.suite_schema import SuiteSummary
from study.vocab import SETTABLE, TrialStatus

#: The statuses the API shows (``study.vocab.SETTABLE``: never the transient ``creating``), as a
#: ``Literal`` of plain strings, so the OpenAPI schema and 422 messages list the words inline.
StudyStatusWord = Literal[tuple(s.value for s in SETTABLE)]  # type: ignore[valid-type]
#: A trial row's status (every ``study.vocab.TrialStatus``), likewise.
TrialStatusWord = Literal[tuple(s.value for s in TrialStatus)]  # type: ignore[valid-type]


class Links(BaseModel):
    """Where to find the parts of a study."""

    self: str
    trials: str
    summary: str
    report: str
    cancel: str
    resume: str
    plots: dict[str, str]
    mlflow: str | None = Field(None, description="The study's experiment in the MLflow UI.")


class Progress(BaseModel):
    """Trial counts. ``diverged`` trials are also counted in ``finished``."""

    finished: int
    running: int
    pending: int
    diverged: int
    failed: int
    total: int


class StudyCreated(BaseModel):
    id: str
    status: StudyStatusWord
    links: Links
    warnings: list[str] = Field(
        default_factory=list,
        description="What this design cannot support in the summary (the study is accepted "
        "anyway): e.g. one lr per init, fewer than 3 seeds, tpe with comparisons.",
    )


class StudyPublic(BaseModel):
    id: str
    name: str
    status: StudyStatusWord
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    progress: Progress
    total_trials: int
    num_classes: int | None
    experiment_id: str | None
    eta_s: float | None = Field(
        None,
        description="Seconds left while running. One study (GET /studies/{id}): arm by arm, "
        "each arm's trials not yet ended at the mean duration of its finished ones (an arm "
        "with none finished yet at the mean of all), as many at a time as run now. A listing: "
        "time since the driver started per trial ended since, times the trials left. None "
        "before a trial has ended, and once the study is not running.",
    )
    job: str | None = Field(None, description="Submission id of the study's current Ray job.")
    error: str | None = Field(None, description="Why the study failed (status failed only).")
    retry_at: str | None = Field(
        None,
        description="While a queued or running study waits to be resubmitted after its driver "
        "died: when (ISO time; the backoff doubles each time, HPROBUST_RETRY_BASE_S up to "
        "HPROBUST_RETRY_MAX_S).",
    )
    paused: str | None = Field(
        None,
        description="Why a queued or running study waits: a dependency is down (disk full, "
        "MLflow or Ray unreachable). Nothing is submitted or failed meanwhile; it resumes "
        "when the fault clears.",
    )
    last_error: str | None = Field(
        None,
        description="The error the study last recovered from: why its lost job ended, or the "
        "error of a failed study before it was resumed.",
    )
    tampered: str | None = Field(
        None,
        description="What was changed in the study's record behind the service's back (e.g. "
        "a status tag it did not sign, set through the MLflow UI), and when it was found: "
        "the service ignored it and shows the status it sealed.",
    )
    links: Links


class StudyDetail(StudyPublic):
    spec: dict[str, Any]


class StudiesPublic(BaseModel):
    data: list[StudyPublic]
    count: int


class TrialPublic(BaseModel):
    """One trial row, as ``hprobust trials`` prints it (extra columns pass through)."""

    model_config = ConfigDict(extra="allow")

    arm: str
    lr: float | None = None
    init: str | None = None
    init_scale: float | None = None
    seed: int | None = None
    val_acc: float | None = None
    val_loss: float | None = None
    diverged: bool | None = None
    status: TrialStatusWord


class TrialsPublic(BaseModel):
    data: list[TrialPublic]
    count: int


#: The robustness summary (version 3, docs/summary.md): the typed model ``summarize`` returns,
#: so the OpenAPI schema documents every field. ``partial`` while the study has not finished.
SummaryPublic = Summary


class Message(BaseModel):
    detail: str


class Problem(BaseModel):
    field: str = Field(description="Dotted path of the offending field, e.g. search.lr.low.")
    rule: str = Field(description="The rule it breaks.")
    value: Any = Field(None, description="The value it had.")


class Problems(BaseModel):
    """A 422: every broken rule, each naming the field, the rule and the value."""

    detail: str
    problems: list[Problem]


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    """``ok``, or what is wrong, per dependency (``study.vocab.Dependency``)."""

    status: Literal["ready", "unavailable"]
    ray: str
    mlflow: str
    disk: str = Field(
        description="Free space of the data dir: `ok`, or `full: ...` below HPROBUST_MIN_FREE_MB."
    )
    mlflow_ui: str | None = Field(
        None,
        description="The MLflow UI that `hprobust serve` runs (absent otherwise): `ok`, or "
        "`down: ...` until it is restarted.",
    )


# ---- suites ---------------------------------------------------------------------------------


class SuiteCreate(BaseModel):
    """A suite (docs/suites.md): ``name``, the shared study keys (``arms``, ``search``,
    ``seeds``, ``epochs``, ...) and ``workloads``, each ``{name, dataset, model, ...}``
    deep-merged over the shared keys into one study. JSON or YAML."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(description="The suite's name; its studies are named <suite>/<workload>.")
    workloads: list[dict[str, Any]] = Field(
        description="2-16 workloads, each with a unique name; arms, seeds and seed are shared."
    )


class SuiteLinks(BaseModel):
    """Where to find the parts of a suite."""

    self: str
    summary: str
    report: str
    forest: str
    profile: str
    cancel: str
    resume: str
    mlflow: str | None = Field(None, description="The suite's experiment in the MLflow UI.")


class SuiteStudyPublic(BaseModel):
    """One workload of a suite: its study, status and progress."""

    workload: str
    study_id: str
    status: StudyStatusWord
    progress: Progress
    links: Links


class SuitePublic(BaseModel):
    id: str
    name: str
    status: StudyStatusWord = Field(
        description="From its studies: running while any runs (or some wait while others "
        "ended), queued while all wait; once all ended: finished, cancelled (any cancelled) "
        "or failed."
    )
    created_at: str | None
    arms: list[str]
    progress: Progress = Field(description="Trial counts summed over the suite's studies.")
    studies: list[SuiteStudyPublic]
    tampered: str | None = Field(
        None, description="What does not hold of the suite's signed record, if anything."
    )
    links: SuiteLinks


class SuiteCreated(SuitePublic):
    warnings: list[str] = Field(
        default_factory=list,
        description="What the workloads' designs cannot support (the suite is accepted anyway).",
    )


class SuitesPublic(BaseModel):
    data: list[SuitePublic]
    count: int


#: The suite summary (docs/suites.md): the typed model ``summarize_suite`` returns.
SuiteSummaryPublic = SuiteSummary
