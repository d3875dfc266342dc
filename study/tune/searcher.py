"""Equal, interleaved arms: one Optuna search per arm behind a Searcher that takes turns.

``ArmInterleaver`` holds one Ray Tune ``OptunaSearch`` per arm, every one with the same
sampler seed, each behind Ray Tune's ``Repeater`` for replicates (seed = base seed +
``__trial_index__``), and hands out trials round-robin across the arms that still have
some, so the arms' finished counts differ by at most the concurrency. Each suggestion
carries its identity in the trial config (``__arm``, ``__point``, ``__trial_index__``), so a
restored Tuner maps a trial to the same ``<arm>/<point>/<seed>`` key. ``study_searcher``
limits the concurrency (``ConcurrencyLimiter``).

Pairing: with ``qmc``, ``random`` and ``grid`` the samplers never look at trial values, only
at which trials exist, so every completion is told to Optuna as COMPLETE with a finite value;
then every arm's Optuna study has the same history and draws the same points. ``tpe`` is told
the real outcome (diverged: chance accuracy; failed: FAIL; stopped early by ASHA: PRUNED, so
a partial value never counts as final) and is therefore not paired.

On experiment checkpoints Ray Tune keeps the wrappers' bookkeeping with ``get_state`` and
the base searcher's with ``save(path)``: ``ArmInterleaver`` pickles its whole state (the
per-arm Optuna studies included), so ``Tuner.restore`` continues the same sequences.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ray.tune.search import ConcurrencyLimiter, Repeater, Searcher

from study.spec.samplers import SAMPLERS

if TYPE_CHECKING:
    from study.spec.study_spec import StudySpec

METRIC = "val_acc"
MODE = "max"
ARM_KEY = "__arm"
POINT_KEY = "__point"
INDEX_KEY = "__trial_index__"  # set by Ray Tune's Repeater
PACK_KEY = "__pack"  # a packed Tune trial's config: {"__pack": [member config, ...]}


def trial_seed(config: dict[str, Any], base_seed: int = 0) -> int:
    """A trial's seed from its Tune config: the study's seed + the replicate index."""
    return base_seed + int(config.get(INDEX_KEY, 0))


def trial_key(config: dict[str, Any], base_seed: int = 0) -> str:
    """The identity ``<arm>/<point>/<seed>`` of a trial from its Tune config."""
    return f"{config[ARM_KEY]}/{int(config[POINT_KEY])}/{trial_seed(config, base_seed)}"


def trial_members(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The trial configs a Tune trial trains: its pack's members, or itself."""
    return list(config[PACK_KEY]) if PACK_KEY in config else [config]


class _PickledState:
    """save/restore the whole object (Ray Tune calls these on experiment checkpoints)."""

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.__dict__, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.__dict__.update(pickle.load(f))


def make_sampler(spec: StudySpec) -> Any:
    """The Optuna sampler the spec names (:data:`study.spec.samplers.SAMPLERS`), seeded with
    ``spec.seed``."""
    return SAMPLERS[spec.sampler].build(spec)


@contextmanager
def optuna_quiet() -> Iterator[None]:
    """Optuna's INFO lines (``A new study created in memory with name: optuna``, one per arm,
    to stderr) silenced for the calls inside only. Optuna's verbosity is process-wide, so it is
    put back after: the caller's own Optuna keeps its setting."""
    import optuna

    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(max(previous, optuna.logging.WARNING))
    try:
        yield
    finally:
        optuna.logging.set_verbosity(previous)


#: The one parameter a grid study searches: the index of a point of the crossing.
GRID_KEY = "grid_point"


def search_space(spec: StudySpec) -> dict[str, Any]:
    """The Ray Tune search space of one arm: for a grid, the index of a point of the crossing
    (:data:`GRID_KEY`, decoded by :meth:`StudySpec.grid_point`); else lr and init_scale
    log-uniform, init a choice."""
    from ray import tune

    if SAMPLERS[spec.sampler].grid:
        return {GRID_KEY: tune.randint(0, spec.grid_size or 1)}
    space: dict[str, Any] = {
        "lr": tune.loguniform(spec.search.lr.low, spec.search.lr.high),
        "init": tune.choice(list(spec.search.init)),
    }
    scale = spec.search.init_scale
    if scale is not None:
        space["init_scale"] = (
            tune.loguniform(scale.low, scale.high) if scale.high > scale.low else scale.low
        )
    return space


class ArmSearch(Searcher):
    """One arm's OptunaSearch, told each point's outcome the way the sampler needs it.

    Non-adaptive samplers (``paired``) are told every completion as COMPLETE with a finite
    value, so every arm's Optuna study has the same history and draws the same points. TPE is
    told the real outcome: a diverged trial scores ``chance_value``, a crashed one FAIL, one
    stopped early (``epoch`` < ``epochs``, not diverged) PRUNED.
    """

    def __init__(self, search: Any, *, paired: bool, epochs: int) -> None:
        super().__init__(metric=METRIC, mode=MODE)
        self.search = search
        self.paired = paired
        self.epochs = epochs
        self.chance_value = 0.0

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec):
        return True  # the space comes from the study spec

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        return self.search.suggest(trial_id)

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        value = (result or {}).get(METRIC)
        finite = isinstance(value, int | float) and value == value and abs(value) != float("inf")
        if self.paired:
            self.search.on_trial_complete(
                trial_id, result={METRIC: float(value) if finite else 0.0}
            )
            return
        epoch = (result or {}).get("epoch")
        if error or not result:
            self.search.on_trial_complete(trial_id, result=None, error=True)
        elif bool(result.get("diverged")) or not finite:
            self.search.on_trial_complete(trial_id, result={METRIC: self.chance_value})
        elif isinstance(epoch, int) and epoch < self.epochs:  # stopped early by ASHA
            self.search.on_trial_complete(trial_id, result=None, error=False)
        else:
            self.search.on_trial_complete(trial_id, result={METRIC: float(value)})


class StudyRepeater(Repeater):
    """Ray Tune's Repeater (replicates with ``__trial_index__``) that passes the last result's
    ``diverged``/``epoch`` on with the mean metric and ignores trials it never saw."""

    def on_trial_complete(self, trial_id: str, result: dict | None = None, **kwargs) -> None:
        if trial_id not in self._trial_id_to_group:  # e.g. a trial from a lost checkpoint
            return
        group = self._trial_id_to_group[trial_id]
        group.report(trial_id, (result or {}).get(self.searcher.metric, float("nan")))
        if group.finished_reporting():
            import numpy as np

            scores = [s for s in group.scores() if s == s]
            merged = dict(result or {})
            merged[self.searcher.metric] = float(np.mean(scores)) if scores else float("nan")
            self.searcher.on_trial_complete(group.primary_trial_id, result=merged, **kwargs)


class ArmInterleaver(_PickledState, Searcher):
    """Round-robin suggestions across arms, trial by trial: ``points_per_arm`` points per arm,
    each replicated ``seeds`` times by the arm's own Ray Tune ``Repeater`` (``__trial_index__``)
    over the arm's ``OptunaSearch``.

    Taking turns per trial (not per point) keeps the arms' started counts within one of each
    other, so their finished counts differ by at most the concurrency, seeds or not.

    Args:
        spec: the study spec (arms, search space, sampler, budget, seeds).
        epochs: epochs of a full trial (a completion before it, not diverged, was stopped
            early); default ``spec.epochs``.

    Suggestions look like ``{"__arm": "sgd", "__point": 3, "__trial_index__": 1, "lr": 0.1,
    "init": "kaiming_normal", "init_scale": 1.0}``; ``Searcher.FINISHED`` once every arm used
    its points (a grid may hold fewer than ``trials_per_arm``).
    """

    def __init__(self, spec: StudySpec, *, epochs: int | None = None) -> None:
        from ray.tune.search.optuna import OptunaSearch

        super().__init__(metric=METRIC, mode=MODE)
        self.spec = spec
        self.arms = spec.arm_names
        self.seeds = spec.seeds
        self.trials_per_arm = spec.points_per_arm * spec.seeds
        space = OptunaSearch.convert_search_space(search_space(spec))
        with optuna_quiet():  # each OptunaSearch creates an Optuna study
            self.searches = {
                arm: OptunaSearch(space=space, metric=METRIC, mode=MODE, sampler=make_sampler(spec))
                for arm in self.arms
            }
        epochs = epochs or spec.epochs
        self.repeaters = {
            arm: StudyRepeater(
                ArmSearch(search, paired=spec.paired, epochs=epochs),
                repeat=spec.seeds,
                set_index=True,
            )
            for arm, search in self.searches.items()
        }
        self.suggested = dict.fromkeys(self.arms, 0)  # trials handed out per arm
        self.turn = 0
        self.live: dict[str, str] = {}  # trial id -> arm

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec):
        return True  # the space comes from the study spec

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        for offset in range(len(self.arms)):
            arm = self.arms[(self.turn + offset) % len(self.arms)]
            if self.suggested[arm] >= self.trials_per_arm:
                continue
            params = self.repeaters[arm].suggest(trial_id)
            if params is None:
                return None
            if params == Searcher.FINISHED:  # a sampler ran out early (a used-up grid)
                self.suggested[arm] = self.trials_per_arm
                continue
            point = self.suggested[arm] // self.seeds  # the Repeater groups seeds in a row
            self.suggested[arm] += 1
            self.turn = (self.turn + offset + 1) % len(self.arms)
            self.live[trial_id] = arm
            config = {ARM_KEY: arm, POINT_KEY: point, "init_scale": 1.0}
            if GRID_KEY in params:  # a grid point: its lr, init and init_scale
                params = dict(params)
                params.update(self.spec.grid_point(int(params.pop(GRID_KEY))))
            config.update(params)
            return config
        return Searcher.FINISHED

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        arm = self.live.pop(trial_id, None)
        if arm is not None:
            self.repeaters[arm].on_trial_complete(trial_id, result=result, error=error)


class PackSearcher(_PickledState, Searcher):
    """Packs of ``size`` consecutive suggestions of ``inner`` as one Tune trial each.

    A pack's config is ``{"__pack": [member, ...]}``, every member exactly the config
    ``inner`` suggested (so its key ``<arm>/<point>/<seed>`` is the unpacked trial's), in
    ``inner``'s order: with ``size = arms x seeds`` a pack is one point's every arm and seed.
    ``inner`` sees one trial per member (ids ``<n>~member``); when the pack completes each
    member is completed with its own last result (``result["__pack"][j]``). The last pack may
    be smaller.
    """

    def __init__(self, inner: Searcher, size: int) -> None:
        super().__init__(metric=METRIC, mode=MODE)
        self.inner = inner
        self.size = size
        self.drawn = 0  # member ids handed to inner
        self.pending: list[tuple[str, dict[str, Any]]] = []  # drawn, not yet in a pack
        self.packs: dict[str, list[str]] = {}  # tune trial id -> member ids
        self.exhausted = False

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec):
        return True  # the space comes from the study spec

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        while len(self.pending) < self.size and not self.exhausted:
            member_id = f"{self.drawn}~member"
            config = self.inner.suggest(member_id)
            if config is None:
                return None  # inner is not ready: keep what was drawn for the next call
            if config == Searcher.FINISHED:
                self.exhausted = True
                break
            self.drawn += 1
            self.pending.append((member_id, config))
        if not self.pending:
            return Searcher.FINISHED
        pack, self.pending = self.pending[: self.size], self.pending[self.size :]
        self.packs[trial_id] = [member_id for member_id, _ in pack]
        return {PACK_KEY: [config for _, config in pack]}

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        members = self.packs.pop(trial_id, [])
        results = list((result or {}).get(PACK_KEY) or [])
        for j, member_id in enumerate(members):
            member = results[j] if j < len(results) else None
            self.inner.on_trial_complete(member_id, result=member, error=error or member is None)


def study_searcher(spec: StudySpec, *, max_concurrent: int | None = None) -> Searcher:
    """The study's search algorithm: arms interleaved trial by trial (each arm replicating its
    points with its own Repeater), packed ``spec.pack_size`` trials per Tune trial when that
    is more than 1, concurrency-limited (``max_concurrent_trials`` counts Tune trials, i.e.
    packs when packing; ``max_concurrent``: a lower bound the cluster sets, see
    :func:`study.tune.cluster.concurrency_cap`)."""
    searcher: Searcher = ArmInterleaver(spec)
    if spec.pack_size > 1:
        searcher = PackSearcher(searcher, spec.pack_size)
    limit = spec.resources.max_concurrent_trials
    if max_concurrent is not None:
        limit = max(1, min(limit, max_concurrent))
    return ConcurrencyLimiter(searcher, max_concurrent=limit)
