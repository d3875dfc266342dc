"""Studies recorded by older versions, shown like new ones.

``hprobust ui`` runs these before it serves the MLflow UI: the experiment's presentation
(:func:`study.records.upgrade.upgrade_presentation`), and here the summary. A finished study
whose stored ``summary.json`` is of an older version (summary v2's seed-bootstrap intervals and
verdict rules) gets its summary recomputed from its trials and stored again: ``summary.json``,
``trials.csv``, the plots and the study run's description, which states the verdicts. Reads
never wait for this: :meth:`~study.records.store.StudyStore.summary` recomputes an older stored
summary itself; this makes what MLflow shows agree with it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from study.analysis import SUMMARY_VERSION
from study.vocab import StudyStatus


def upgrade_summaries(store: Any, *, on_study: Callable[[str], None] | None = None) -> list[str]:
    """Recompute and store the summary of every finished study whose stored ``summary.json``
    is of another version than :data:`~study.analysis.SUMMARY_VERSION` (or missing). Returns
    their ids; ``on_study(id)`` is called before each (progress)."""
    from study.tune.runner import finalize

    done = []
    for state in store.states([StudyStatus.FINISHED]):
        stored = store.stored_summary(state.id)
        if stored is not None and stored.get("version") == SUMMARY_VERSION:
            continue
        if on_study is not None:
            on_study(state.id)
        finalize(store, state.id)
        done.append(state.id)
    return done
