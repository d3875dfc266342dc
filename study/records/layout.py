"""How a study is laid out in MLflow, the system of record.

One experiment per study, named ``<study name> · <study_id>`` (studies recorded before issue 23:
``hprobust-<study_id>``) and found by its tag ``hprobust.study_id`` (:func:`canonical`), with tags
``hprobust.name``, ``hprobust.status``, ``hprobust.created_at`` / ``started_at`` /
``finished_at``, ``hprobust.num_classes``, ``hprobust.total_trials``, and
``mlflow.experimentKind = custom_model_development`` (MLflow 3's UI then opens it on its runs
table, in its model-training mode), a description (``mlflow.note.content``) and the runs-table
view :func:`runs_url` opens (:data:`VIEW_TAG`); one study run (``hprobust.kind=study``)
holding ``spec.yaml`` and, at the end,
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

#: The name prefix of a study's experiment before issue 23 (``hprobust-<study_id>``): such
#: studies are still found (:func:`canonical`), and never renamed.
EXPERIMENT_PREFIX = "hprobust-"
#: Between the study's name and its id in its experiment's name.
NAME_SEPARATOR = " · "
SPEC_TAG_MAX = 5000  # MLflow experiment tag values are limited; longer specs: artifact only
#: The experiment kind MLflow 3's UI reads: model training opens on the runs table.
EXPERIMENT_KIND = {Tag.EXPERIMENT_KIND: "custom_model_development"}
#: The MLflow UI's mode that shows training runs (not the GenAI pages): the ``workflowType`` URL
#: parameter of MLflow 3.17's UI (its sidebar and home page follow it).
WORKFLOW = "machine_learning"
#: The MLflow filter of a study's trial runs (every one of them, flat: the UI loads a nested
#: study run's children only 100 at a time, the trial runs themselves page with "Load more").
TRIAL_FILTER = f"tags.`{Tag.KIND}` = 'trial'"
#: A view of the runs table stored with the experiment (MLflow's saved "shared view"): the
#: trial runs only, the best first, with the columns a researcher looks at first. MLflow 3.17
#: takes a table's columns from such a view only (or from the browser's own saved state), and
#: shows a "shared view" notice above the table whenever one is applied: ``runs_url``.
VIEW_KEY = "hprobust"
VIEW_TAG = SHARED_VIEW_PREFIX + VIEW_KEY
#: The columns of the view: the parameters of a trial, then its final accuracy and loss
#: rounded for display (parameters ``acc`` and ``loss``, written when it ends; the metrics
#: ``final_val_acc`` / ``final_val_loss`` keep every digit), then whether it diverged.
VIEW_COLUMNS = (
    "params.`arm`",
    "params.`lr`",
    "params.`init`",
    "params.`init_scale`",
    "params.`seed`",
    "params.`acc`",
    "params.`loss`",
    "metrics.`diverged`",
    "attributes.`Duration`",
)
#: Digits after the point of the rounded final values (parameters ``acc`` and ``loss``).
SHOWN_DECIMALS = 3
#: Per-arm summary values logged as ``<arm>.<key>`` metrics of the study run (those present).
HEADLINE = ("best", "auc", "lr_window_decades", "good_fraction", "divergence_rate")


def experiment_name(study_id: str, name: str | None = None) -> str:
    """The experiment name of a study: ``<name> · <study_id>``; without a name, the name a
    study was given before issue 23 (``hprobust-<study_id>``)."""
    if name is None:
        return EXPERIMENT_PREFIX + study_id
    return f"{name}{NAME_SEPARATOR}{study_id}"


def names_study(experiment_name: str, study_id: str) -> bool:
    """Whether an experiment of this name can be the study's: ``… · <id>`` or
    ``hprobust-<id>``."""
    return experiment_name == EXPERIMENT_PREFIX + study_id or experiment_name.endswith(
        NAME_SEPARATOR + study_id
    )


def canonical(experiments: list[Any], study_id: str) -> Any | None:
    """The study's experiment among ``experiments`` (those tagged with its id): one whose name
    names the study (:func:`names_study`), the oldest if several (experiment names are unique
    and a study's is written first, under the creation lock: an experiment tagged with the
    same id later, by anyone with write access to MLflow, never takes its place)."""
    named = [
        e
        for e in experiments
        if e.tags.get(Tag.STUDY_ID) == study_id and names_study(e.name, study_id)
    ]
    if not named:
        return None
    return min(named, key=lambda e: (e.creation_time or 0, int(e.experiment_id)))


def view_state(*, init_scale: bool = True) -> str:
    """The runs-table view :data:`VIEW_TAG` holds (JSON): the trial runs only, the best final
    accuracy first, :data:`VIEW_COLUMNS` (``init_scale`` only for a study that searches it)."""
    import json

    columns = [c for c in VIEW_COLUMNS if init_scale or c != "params.`init_scale`"]
    return json.dumps(
        {
            "searchFilter": TRIAL_FILTER,
            "orderByKey": "metrics.`final_val_acc`",
            "orderByAsc": False,
            "selectedColumns": columns,
        }
    )


def ui_home_url(ui_url: str) -> str:
    """The MLflow UI's list of experiments in its model-training mode (its root URL opens
    the GenAI welcome page)."""
    return f"{ui_url.rstrip('/')}/#/experiments?workflowType={WORKFLOW}"


def runs_url(ui_url: str, experiment_id: str) -> str:
    """The MLflow UI's runs table of an experiment, in model-training mode, with the study's
    view (:func:`view_state`): every trial run, flat, the best first, with the columns arm,
    lr, init, seed and the rounded final accuracy and loss."""
    return (
        f"{ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs"
        f"?workflowType={WORKFLOW}&viewStateShareKey={VIEW_KEY}"
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
