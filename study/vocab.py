"""The project's words, defined once: study and trial statuses, MLflow tag names, plot names.

Every module that writes, reads or compares one of these uses this module's names;
``tests/test_vocab.py`` fails when a copy (a status tuple, a plot-name list, a spelled-out
``"hprobust.<tag>"``) appears anywhere else in ``models/``, ``study/`` or ``service/``.

The members are :class:`~enum.StrEnum` s: each *is* its string (``StudyStatus.QUEUED ==
"queued"``, ``f"{Tag.STATUS}" == "hprobust.status"``), so they go into MLflow tags, JSON and
f-strings as they are, and pydantic shows them as enums in the OpenAPI schema.

Importing this module imports only the standard library.
"""

from __future__ import annotations

from enum import StrEnum


class Words(StrEnum):
    """A closed set of words (Python 3.11's ``"x" in SomeEnum`` raises for a plain string)."""

    @classmethod
    def has(cls, value: object) -> bool:
        """Whether ``value`` is one of the words (a member or its string)."""
        return isinstance(value, str) and value in cls._value2member_map_


# ---- studies -----------------------------------------------------------------------------


class StudyStatus(Words):
    """A study's status (experiment tag ``hprobust.status``; docs/design.md#study-lifecycle)."""

    QUEUED = "queued"  # recorded, waiting for a driver
    RUNNING = "running"  # a driver is running it
    FINISHED = "finished"  # every trial ended; summary, trials and plots stored
    FAILED = "failed"  # the driver failed (the error is recorded)
    CANCELLED = "cancelled"  # stopped on request
    CREATING = "creating"  # being recorded, not committed yet: never listed or run


#: Statuses of a study that is not over yet: the scheduler drives them, pages refresh them.
LIVE = frozenset({StudyStatus.QUEUED, StudyStatus.RUNNING})
#: Statuses of a study that has ended: nothing about it changes any more.
ENDED = frozenset({StudyStatus.FINISHED, StudyStatus.FAILED, StudyStatus.CANCELLED})
#: The statuses a study can be set to (every one but the transient ``creating``), in order.
SETTABLE = tuple(s for s in StudyStatus if s is not StudyStatus.CREATING)
#: An ended study's status -> the MLflow run status of its study run.
RUN_STATUS_AT_END = {
    StudyStatus.FINISHED: "FINISHED",
    StudyStatus.FAILED: "FAILED",
    StudyStatus.CANCELLED: "KILLED",
}


# ---- trials ------------------------------------------------------------------------------


class TrialStatus(Words):
    """A trial's status (trial run tag ``hprobust.status``; the ``status`` of a trial row)."""

    FINISHED = "finished"  # trained every epoch, or diverged
    EARLY_STOPPED = "early_stopped"  # stopped by the early-stopping scheduler (ASHA)
    FAILED = "failed"  # crashed after its retry
    RUNNING = "running"
    PENDING = "pending"  # not started (the tag of a run closed with its study: see STOPPED)
    # a trial in flight when its study was cancelled or its driver lost (MLflow: KILLED, tag
    # pending): it trains again when the study is resumed
    STOPPED = "stopped"


#: Trials that are over and have a result: a resumed study does not train them again.
TRIAL_DONE = frozenset({TrialStatus.FINISHED, TrialStatus.EARLY_STOPPED})
#: Statuses left out of the robustness summary (counted in ``settings.excluded``), in order.
TRIAL_EXCLUDED = tuple(s for s in TrialStatus if s is not TrialStatus.FINISHED)
#: Which of several runs of one trial key counts: the higher rank.
TRIAL_RANK = {
    TrialStatus.FINISHED: 4,
    TrialStatus.EARLY_STOPPED: 3,
    TrialStatus.FAILED: 2,
    TrialStatus.RUNNING: 1,
    TrialStatus.PENDING: 0,
    TrialStatus.STOPPED: 0,
}


class RunKind(Words):
    """What an MLflow run of a study is (run tag ``hprobust.kind``)."""

    STUDY = "study"  # one per study: spec.yaml, summary.json, trials.csv, plots
    TRIAL = "trial"  # one per trial, nested under the study run
    SUITE = "suite"  # one per suite: describes it, links each study's experiment and report


# ---- MLflow tags and Ray job metadata -----------------------------------------------------


class Tag(Words):
    """Every MLflow tag (and Ray job metadata key) the project writes or reads."""

    # experiment tags (one experiment per study)
    STUDY_ID = "hprobust.study_id"  # also on both run kinds and in Ray job metadata
    NAME = "hprobust.name"
    STATUS = "hprobust.status"  # StudyStatus on the experiment, TrialStatus on a trial run
    CREATED_AT = "hprobust.created_at"
    STARTED_AT = "hprobust.started_at"
    FINISHED_AT = "hprobust.finished_at"
    NUM_CLASSES = "hprobust.num_classes"
    TOTAL_TRIALS = "hprobust.total_trials"
    SPEC = "hprobust.spec"  # the spec as JSON (short specs; spec.yaml always)
    ERROR = "hprobust.error"  # why a study (experiment) or a trial (run) failed
    LAST_ERROR = "hprobust.last_error"  # the error a live study recovers from (lost job, resume)
    RETRY_AT = "hprobust.retry_at"  # when a study whose driver died is resubmitted (ISO time)
    SIGNATURE = "hprobust.signature"  # HMAC of the stored spec
    IDEMPOTENCY = "hprobust.idempotency"  # the Idempotency-Key a study was created with
    SEGMENT_STARTED_AT = "hprobust.segment_started_at"  # this run of the driver began
    SEGMENT_DONE = "hprobust.segment_done"  # trials done when it began
    REFUSED = "hprobust.refused"  # why a driver refused to run the study
    STUDY_RUN_ID = "hprobust.study_run_id"  # the study run's id
    STATUS_SEAL = "hprobust.status_seal"  # the signed status (study.records.signing.seal)
    TAMPERED = "hprobust.tampered"  # what the service found changed behind its back
    # run tags
    SUITE_ID = "hprobust.suite_id"  # on a suite's experiment, and on each of its studies
    WORKLOAD = "hprobust.workload"  # a suite study's workload name (on its experiment)
    SUITE_INDEX = "hprobust.suite_index"  # a suite study's position among the workloads
    SUITE_STUDIES = "hprobust.suite_studies"  # a suite's [[workload, study id], ...] as JSON
    KIND = "hprobust.kind"  # RunKind
    REPORT_URL = "hprobust.report_url"  # on the study run
    TRIAL_KEY = "hprobust.trial_key"  # <arm>/<point>/<seed>
    ARM = "hprobust.arm"
    INIT = "hprobust.init"
    SEED = "hprobust.seed"
    TUNE_TRIAL_ID = "hprobust.tune_trial_id"
    PACK_SIZE = "hprobust.pack_size"
    RETRIES = "hprobust.retries"
    FIRST_ERROR = "hprobust.first_error"
    STOPPED = "hprobust.stopped"  # why a running trial was stopped (set back to pending)
    NODE_ID = "hprobust.node_id"  # the Ray node that trained the trial
    NODE_IP = "hprobust.node_ip"
    DIVERGED = "diverged"  # "true"/"false" on a trial run
    # Ray job metadata of a study's driver job
    ATTEMPT = "hprobust.attempt"  # 0 for the first job of a study, n for its n-th resubmission
    FAILURES = "hprobust.failures"  # lost jobs before this one that count toward max_attempts
    STANDBY = "hprobust.standby"  # "1": a warm driver, submitted before its study was recorded
    # MLflow's own tags
    PARENT_RUN = "mlflow.parentRunId"
    RUN_NAME = "mlflow.runName"
    NOTE = "mlflow.note.content"  # a run's "Description" in the MLflow UI
    EXPERIMENT_KIND = "mlflow.experimentKind"


#: Prefix of MLflow's "shared view" tags: ``mlflow.sharedViewState.<key>``.
SHARED_VIEW_PREFIX = "mlflow.sharedViewState."


# ---- faults that heal ---------------------------------------------------------------------


class Dependency(Words):
    """What a study needs that can be down for a while (``/readyz`` keys; why a study waits).

    While one is down, live studies pause: none is submitted, resubmitted or marked failed;
    they resume, with backoff, when it answers again (docs/design.md#reliability-rules).
    """

    DISK = "disk"  # free space of the data dir (HPROBUST_MIN_FREE_MB)
    MLFLOW = "mlflow"  # the tracking store
    RAY = "ray"  # the Ray cluster's Jobs API
    MLFLOW_UI = "mlflow_ui"  # the MLflow UI that `hprobust serve` runs (restarted when it dies)


# ---- plots --------------------------------------------------------------------------------


class PlotName(Words):
    """The figures of a study (``plots/<name>.png``), in the order the report shows them."""

    LR_CURVES = "lr_curves"
    HEATMAP = "heatmap"
    PROFILE = "profile"
    EXPECTED_MAX = "expected_max"


#: What each figure shows (the report page's captions).
PLOT_CAPTIONS = {
    PlotName.LR_CURVES: "Accuracy vs learning rate, one panel per init, arms overlaid (band: "
    "lowest to highest seed; star: the best lr; hatched: an end of the lr range where an arm "
    "still learns, marked by a triangle; dashed: g; dotted: chance).",
    PlotName.HEATMAP: "Mean accuracy per lr × init for each arm, and the difference to the "
    "baseline (blue: the arm is better).",
    PlotName.PROFILE: "Robustness profile: the share of each arm's cells at or above an "
    "accuracy (higher is more robust).",
    PlotName.EXPECTED_MAX: "Expected best accuracy after n random cells, with a 95% bootstrap "
    "band.",
}


class SuitePlotName(Words):
    """The figures of a suite (``<name>.png``), in the order the suite's report shows them."""

    FOREST = "forest"
    SUITE_PROFILE = "suite_profile"


#: What each suite figure shows (the suite report's captions).
SUITE_PLOT_CAPTIONS = {
    SuitePlotName.FOREST: "Forest plot, one row group per comparison: each workload's AUC "
    "difference (B − A) with its 95% replicate interval (hollow: range-limited; grey: not "
    "pooled), and the pooled random-effects estimate as a diamond spanning its Hartung–Knapp "
    "interval. Right of the line at 0: B is better.",
    SuitePlotName.SUITE_PROFILE: "Performance profile (Dolan–Moré): for each arm the share of "
    "workloads where its AUC is within t of the best arm's there, as t runs from 0 to 0.5 "
    "(higher and further left is better).",
}
