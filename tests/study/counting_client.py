"""A real ``MlflowClient`` that counts what is asked of it: the round-trip tests put it in a
``StudyStore`` (``store.client = CountingClient(store.client)``) and assert on the calls."""

from __future__ import annotations

from collections import Counter
from typing import Any

#: Calls that read one experiment (its tags).
EXPERIMENT_READS = ("get_experiment", "get_experiment_by_name")
#: How a search for one study's experiment (by its id tag: StudyStore._tagged) begins.
STUDY_LOOKUP = "tags.`hprobust.study_id` = "


class CountingClient:
    """Forwards every call to ``client``; ``calls`` counts them by method name and
    ``experiments`` names every experiment a call gave back (by name)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: Counter[str] = Counter()
        self.experiments: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.client, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            if name == "search_experiments" and str(kwargs.get("filter_string")).startswith(
                STUDY_LOOKUP
            ):
                self.calls["lookup"] += 1  # one study's experiment, found by its id tag
            out = attr(*args, **kwargs)
            if name == "search_experiments":
                self.experiments += [e.name for e in out]
            elif name in EXPERIMENT_READS and out is not None:
                self.experiments.append(out.name)
            return out

        return call

    def experiment_reads(self) -> int:
        """How many times one experiment was read (by id, by name or by its study id tag)."""
        return sum(self.calls[name] for name in EXPERIMENT_READS) + self.calls["lookup"]

    def reset(self) -> None:
        self.calls.clear()
        self.experiments.clear()
