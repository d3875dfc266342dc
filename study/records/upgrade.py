"""Studies recorded by earlier versions brought up to the present layout
(:mod:`study.records.layout`); ``hprobust ui`` runs it before it opens MLflow's UI."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from study.errors import StudyNotFoundError
from study.records.formats import trial_run_name
from study.records.layout import EXPERIMENT_KIND, VIEW_COLUMNS, VIEW_TAG, trial_row
from study.vocab import Tag

if TYPE_CHECKING:
    from study.records.store import StudyStore


def upgrade_presentation(store: StudyStore) -> int:
    """Give studies recorded before the present layout their presentation in MLflow's UI: the
    experiment kind and runs-table view, trial runs nested under the study run and named
    ``<arm> lr=<lr> <init> s<seed>``. Returns how many studies were changed."""
    from mlflow.entities import RunTag

    changed = 0
    for record in store.states():
        experiment = store.client.get_experiment(record.experiment_id)
        if experiment.tags.get(VIEW_TAG) and all(
            experiment.tags.get(k) == v for k, v in EXPERIMENT_KIND.items()
        ):
            continue
        for key, value in EXPERIMENT_KIND.items():
            store.client.set_experiment_tag(record.experiment_id, key, value)
        store.client.set_experiment_tag(
            record.experiment_id, VIEW_TAG, json.dumps({"selectedColumns": list(VIEW_COLUMNS)})
        )
        try:
            parent = store.study_run_id(record.id)
        except StudyNotFoundError:
            changed += 1
            continue
        spec = store.get(record.id).spec  # only a study being upgraded needs it
        scaled = (spec.get("search") or {}).get("init_scale") is not None
        for run in store.trial_runs(record.id):
            tags = []
            if Tag.PARENT_RUN not in run.data.tags:
                tags.append(RunTag(Tag.PARENT_RUN, parent))
            row = trial_row(run)
            if " lr=" not in (run.info.run_name or "") and None not in (
                row["arm"],
                row["lr"],
                row["init"],
                row["seed"],
            ):
                name = trial_run_name(
                    row["arm"], row["lr"], row["init"], row["seed"],
                    row["init_scale"] if scaled else None,
                )  # fmt: skip
                tags.append(RunTag(Tag.RUN_NAME, name))
            if tags:
                store.client.log_batch(run.info.run_id, tags=tags)
        changed += 1
    return changed
