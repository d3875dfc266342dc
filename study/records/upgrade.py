"""Studies recorded by earlier versions brought up to the present layout
(:mod:`study.records.layout`); ``hprobust ui`` runs it before it opens MLflow's UI."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from study.errors import StudyNotFoundError
from study.records.formats import trial_run_name
from study.records.layout import EXPERIMENT_KIND, TRIAL_FILTER, VIEW_TAG, trial_row, view_state
from study.vocab import Tag

if TYPE_CHECKING:
    from study.records.store import StudyStore


def upgrade_presentation(store: StudyStore) -> int:
    """Give studies recorded before the present layout their presentation in MLflow's UI: the
    experiment kind and runs-table view (the trial runs, flat, with their columns), trial runs
    nested under the study run and named ``<arm> <lr> <init> s<seed>``. Returns how many
    studies were changed."""
    from mlflow.entities import RunTag

    changed = 0
    for record in store.states():
        experiment = store.client.get_experiment(record.experiment_id)
        if TRIAL_FILTER in _view_filter(experiment.tags.get(VIEW_TAG)) and all(
            experiment.tags.get(k) == v for k, v in EXPERIMENT_KIND.items()
        ):
            continue
        for key, value in EXPERIMENT_KIND.items():
            store.client.set_experiment_tag(record.experiment_id, key, value)
        try:
            parent = store.study_run_id(record.id)
        except StudyNotFoundError:
            changed += 1
            continue
        spec = store.get(record.id).spec  # only a study being upgraded needs it
        scaled = (spec.get("search") or {}).get("init_scale") is not None
        store.client.set_experiment_tag(
            record.experiment_id, VIEW_TAG, view_state(init_scale=scaled)
        )
        for run in store.trial_runs(record.id):
            tags = []
            if Tag.PARENT_RUN not in run.data.tags:
                tags.append(RunTag(Tag.PARENT_RUN, parent))
            row = trial_row(run)
            if None not in (row["arm"], row["lr"], row["init"], row["seed"]):
                name = trial_run_name(
                    row["arm"], row["lr"], row["init"], row["seed"],
                    row["init_scale"] if scaled else None,
                )  # fmt: skip
                if run.info.run_name != name:
                    tags.append(RunTag(Tag.RUN_NAME, name))
            if tags:
                store.client.log_batch(run.info.run_id, tags=tags)
        changed += 1
    return changed


def _view_filter(view: str | None) -> str:
    """The search filter of a stored runs-table view ("" if it has none or is unreadable)."""
    try:
        found = json.loads(view or "{}")
    except ValueError:
        return ""
    return str(found.get("searchFilter") or "") if isinstance(found, dict) else ""
