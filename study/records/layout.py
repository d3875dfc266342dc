"""How a study is laid out in MLflow, the system of record.

One experiment ``hprobust-<study_id>`` per study with tags ``hprobust.study_id``,
``hprobust.name``, ``hprobust.status``, ``hprobust.created_at`` / ``started_at`` /
``finished_at``, ``hprobust.num_classes``, ``hprobust.total_trials``, and
``mlflow.experimentKind = custom_model_development`` (MLflow 3's UI then opens it on its runs
table); one study run (``hprobust.kind=study``) holding ``spec.yaml`` and, at the end,
``summary.json``, ``trials.csv``, ``plots/<stem>.png`` and the headline summary as metrics
(``<arm>.best``, ``<arm>.auc``, ...), with a description that links the report page; one run
per trial (``hprobust.kind=trial``, nested under the study run, written by
:mod:`study.tune.tracking`). :func:`trial_row` reads a trial run back as a row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from study.analysis.rows import DEFAULT_INIT_SCALE, to_bool, to_int, to_status
from study.numbers import finite
from study.vocab import SHARED_VIEW_PREFIX, Tag, TrialStatus

if TYPE_CHECKING:
    from mlflow.entities import Run

EXPERIMENT_PREFIX = "hprobust-"
SPEC_TAG_MAX = 5000  # MLflow experiment tag values are limited; longer specs: artifact only
#: The experiment kind MLflow 3's UI reads: model training opens on the runs table.
EXPERIMENT_KIND = {Tag.EXPERIMENT_KIND: "custom_model_development"}
#: A view of the runs table stored with the experiment (MLflow's "shared view"): the columns a
#: researcher looks at first. ``runs_url`` opens the runs table with it.
VIEW_KEY = "hprobust"
VIEW_TAG = SHARED_VIEW_PREFIX + VIEW_KEY
VIEW_COLUMNS = (
    "params.`arm`",
    "params.`lr`",
    "params.`init`",
    "params.`init_scale`",
    "params.`seed`",
    "metrics.`final_val_acc`",
    "metrics.`final_val_loss`",
    "metrics.`diverged`",
    "attributes.`Duration`",
)
#: Per-arm summary values logged as ``<arm>.<key>`` metrics of the study run (those present).
HEADLINE = ("best", "auc", "lr_window_decades", "good_fraction", "divergence_rate")


def experiment_name(study_id: str) -> str:
    return EXPERIMENT_PREFIX + study_id


def runs_url(ui_url: str, experiment_id: str) -> str:
    """The MLflow UI's runs table of an experiment, in model-training mode, with the study's
    columns (params arm, lr, init, seed; final metrics), the trials nested under the study run.
    """
    return (
        f"{ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs"
        f"?workflowType=machine_learning&viewStateShareKey={VIEW_KEY}"
    )


@dataclass(frozen=True)
class StudyState:
    """A study as its experiment's tags say: everything but its spec. One read of the
    experiment gives it (the spec may be an artifact to download): the scheduler's passes
    need no more (:meth:`StudyStore.states`, :meth:`StudyStore.state`)."""

    id: str
    name: str
    status: str
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    experiment_id: str
    num_classes: int
    total_trials: int
    error: str | None = None  # why the study failed (its driver's last error), if it did
    last_error: str | None = None  # the error a live study recovers from (a lost job, a resume)
    retry_at: str | None = None  # when its lost job is resubmitted (ISO time), while it waits
    #: When the current (or last) run of the study's driver began, and how many trials had
    #: ended by then: a resumed study's pace counts only the trials ended since.
    segment_started_at: str | None = None
    segment_done: int | None = None
    #: What was changed behind the service's back (a status tag it did not sign, a seal that
    #: does not hold or was replayed), found now or recorded when the service found it; the
    #: status above is then the sealed one (study.records.signing).
    tampered: str | None = None
    #: The suite the study belongs to (its id) and its workload's name there; None for a
    #: study submitted on its own.
    suite_id: str | None = None
    workload: str | None = None
    suite_index: int | None = None
    #: When MLflow made the study's experiment (ms since the epoch): orders studies created
    #: in the same second (``created_at`` has second precision).
    created_ms: int | None = None


@dataclass(frozen=True)
class StudyRecord(StudyState):
    """One study as MLflow holds it: its state and its spec (a JSON mapping)."""

    spec: dict[str, Any] = field(repr=False, kw_only=True)


def trial_row(run: Run) -> dict[str, Any]:
    """A trial row (docs/summary.md#words) from one trial run, plus ``key``, ``run_id`` and
    ``error``: the one mapping of MLflow's trial records to rows. Values are read with the rules
    of :mod:`study.analysis.rows`; one the run lacks (a trial still running) is None."""
    tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
    if run.info.status == "RUNNING" or run.info.status == "SCHEDULED":
        status = TrialStatus.RUNNING
    elif run.info.status == "FINISHED":  # an unknown word: it did run to its end
        status = to_status(tags.get(Tag.STATUS)) or TrialStatus.FINISHED
    elif run.info.status == "KILLED" and tags.get(Tag.STATUS) == TrialStatus.PENDING:
        status = TrialStatus.STOPPED  # closed with its study (close_open_trials): trains again
    else:  # FAILED, KILLED
        status = TrialStatus.FAILED
    return {
        "key": tags.get(Tag.TRIAL_KEY),
        "run_id": run.info.run_id,
        "arm": params.get("arm", tags.get(Tag.ARM)),
        "lr": finite(params.get("lr")),
        "init": params.get("init", tags.get(Tag.INIT)),
        "init_scale": finite(params.get("init_scale")) or DEFAULT_INIT_SCALE,
        "seed": to_int(params.get("seed", tags.get(Tag.SEED))),
        "val_acc": finite(metrics.get("val_acc")),
        "val_loss": finite(metrics.get("val_loss")),
        "train_loss": finite(metrics.get("train_loss")),
        "diverged": to_bool(tags.get(Tag.DIVERGED)) is True,
        "status": str(status),
        "epochs_completed": int(metrics["epochs_completed"])
        if "epochs_completed" in metrics
        else None,
        "error": tags.get(Tag.ERROR),
        "node_id": tags.get(Tag.NODE_ID),  # the Ray node that trained it
        "node_ip": tags.get(Tag.NODE_IP),
        "stopped": tags.get(Tag.STOPPED),  # why a pending trial's run was stopped, if it was
        "duration_s": _duration_s(run),  # of an ended run (the ETA's pace, arm by arm)
    }


def _duration_s(run: Run) -> float | None:
    """Seconds from the run's start to its end; None while it runs (or without both times)."""
    start, end = run.info.start_time, run.info.end_time
    if start is None or end is None or end < start:
        return None
    return round((end - start) / 1000.0, 3)
