"""The arm-interleaving searcher, driven directly (no Ray trials): turns, pairing, grids,
replicates, concurrency and save/restore."""

from __future__ import annotations

import random

import pytest

from study.spec.study_spec import parse_spec
from study.tune.searcher import ArmInterleaver, study_searcher, trial_key

pytest.importorskip("ray.tune")


def _spec(**overrides):
    data = {
        "name": "t",
        "dataset": "digits",
        "model": {"name": "mlp"},
        "arms": [
            {"name": "sgd", "optimizer": "sgd"},
            {"name": "insgd", "optimizer": "insgd"},
            {"name": "sgd_nesterov", "optimizer": "sgd", "momentum": 0.9, "nesterov": True},
        ],
        "search": {
            "lr": {"low": 1e-3, "high": 10.0, "points": 4},
            "init": ["kaiming_normal", "xavier_normal", "orthogonal"],
            "init_scale": {"low": 0.5, "high": 2.0, "points": 2},
        },
        "trials_per_arm": 10,
        "seeds": 1,  # one replicate unless a test asks for more
    }
    data.update(overrides)
    return parse_spec(data)


def _drive(searcher, *, concurrency: int, rng: random.Random, fail=lambda c: False):
    """Suggest/complete like Tune does, completing live trials in random order."""
    order, live, finished, n = [], [], [], 0
    while True:
        n += 1
        config = searcher.suggest(f"t{n}")
        if config == "FINISHED":
            break
        if config is None:  # concurrency limit: complete one, then ask again
            assert live, "None with nothing running"
        else:
            live.append((f"t{n}", config))
            order.append(config)
        if config is None or len(live) >= concurrency or rng.random() < 0.3:
            tid, done = live.pop(rng.randrange(len(live)))
            error = fail(done)
            searcher.on_trial_complete(
                tid,
                result=None if error else {"val_acc": rng.random(), "epoch": 3},
                error=error,
            )
            finished.append(done)
    for tid, done in live:
        searcher.on_trial_complete(tid, result={"val_acc": 0.5, "epoch": 3})
        finished.append(done)
    return order, finished


def _points(order, arm):
    return [
        (c["__point"], round(c["lr"], 12), c["init"], round(c["init_scale"], 12))
        for c in order
        if c["__arm"] == arm
    ]


@pytest.mark.parametrize("sampler", ["qmc", "random", "grid"])
def test_non_adaptive_samplers_give_every_arm_the_same_points(sampler):
    spec = _spec(sampler=sampler)
    rng = random.Random(0)
    # One arm's trials fail, the others' do not: the points must still match.
    order, _ = _drive(
        ArmInterleaver(spec),
        concurrency=3,
        rng=rng,
        fail=lambda c: c["__arm"] == "insgd" and c["__point"] % 3 == 0,
    )
    first = _points(order, "sgd")
    assert len(first) == spec.points_per_arm
    assert len(set(first)) == len(first), "a point was repeated within an arm"
    for arm in ("insgd", "sgd_nesterov"):
        assert _points(order, arm) == first


@pytest.mark.parametrize("sampler", ["qmc", "random"])
def test_points_do_not_depend_on_completion_order(sampler):
    spec = _spec(sampler=sampler)
    a, _ = _drive(ArmInterleaver(spec), concurrency=1, rng=random.Random(1))
    b, _ = _drive(ArmInterleaver(spec), concurrency=4, rng=random.Random(2))
    assert _points(a, "sgd") == _points(b, "sgd")


def test_qmc_points_are_in_range_and_spread():
    spec = _spec(sampler="qmc", trials_per_arm=16)
    order, _ = _drive(ArmInterleaver(spec), concurrency=2, rng=random.Random(3))
    lrs = [c["lr"] for c in order if c["__arm"] == "sgd"]
    assert all(1e-3 <= lr <= 10.0 for lr in lrs)
    import math

    decades = sorted(math.log10(lr) for lr in lrs)
    assert decades[0] < -2 and decades[-1] > 0  # low-discrepancy: covers the range


def test_grid_is_the_full_product_and_stops_when_used_up():
    spec = _spec(sampler="grid", trials_per_arm=1000)
    assert spec.points_per_arm == 4 * 3 * 2
    order, _ = _drive(ArmInterleaver(spec), concurrency=2, rng=random.Random(4))
    points = {
        (round(c["lr"], 12), c["init"], c["init_scale"]) for c in order if c["__arm"] == "sgd"
    }
    expected = {
        (round(lr, 12), init, scale)
        for lr in spec.search.lr.grid()
        for init in spec.search.init
        for scale in spec.search.init_scale.grid()
    }
    assert points == expected
    assert len(order) == 3 * 24


def test_arms_take_turns():
    spec = _spec(sampler="random", trials_per_arm=5)
    order, finished = _drive(ArmInterleaver(spec), concurrency=2, rng=random.Random(5))
    assert [c["__arm"] for c in order[:6]] == ["sgd", "insgd", "sgd_nesterov"] * 2
    counts = dict.fromkeys(spec.arm_names, 0)
    for config in finished:  # finished counts differ by at most the concurrency (+1 turn)
        counts[config["__arm"]] += 1
        assert max(counts.values()) - min(counts.values()) <= 2 + 1


def test_replicates_and_concurrency_limit():
    spec = _spec(sampler="qmc", trials_per_arm=3, seeds=2, seed=7)
    spec = spec.model_copy(
        update={"resources": spec.resources.model_copy(update={"max_concurrent_trials": 2})}
    )
    searcher = study_searcher(spec)
    first = searcher.suggest("a")
    second = searcher.suggest("b")
    assert searcher.suggest("c") is None  # at most 2 live trials
    # Arms take turns trial by trial: seed 0 of point 0 for each arm, then seed 1.
    assert [(c["__arm"], c["__point"], c["__trial_index__"]) for c in (first, second)] == [
        ("sgd", 0, 0),
        ("insgd", 0, 0),
    ]
    assert trial_key(first, spec.seed) == "sgd/0/7"
    searcher.on_trial_complete("a", result={"val_acc": 0.5, "epoch": 3})
    third = searcher.suggest("c")
    assert (third["__arm"], third["__point"], third["__trial_index__"]) == ("sgd_nesterov", 0, 0)
    searcher.on_trial_complete("b", result={"val_acc": 0.5, "epoch": 3})
    fourth = searcher.suggest("d")
    assert (fourth["__arm"], fourth["__point"], fourth["__trial_index__"]) == ("sgd", 0, 1)
    # A replicate repeats its point's hyperparameters exactly.
    assert {k: fourth[k] for k in ("lr", "init", "init_scale")} == {
        k: first[k] for k in ("lr", "init", "init_scale")
    }
    searcher.on_trial_complete("c", result={"val_acc": 0.5, "epoch": 3})
    searcher.on_trial_complete("d", result={"val_acc": 0.5, "epoch": 3})
    order, _ = _drive(searcher, concurrency=2, rng=random.Random(6))
    configs = [first, second, third, fourth, *order]
    keys = [trial_key(c, 7) for c in configs]
    assert len(keys) == len(set(keys)) == spec.total_trials
    for arm in spec.arm_names:  # every arm: 3 points x seeds 7 and 8
        assert sorted(k for k in keys if k.startswith(arm + "/")) == sorted(
            f"{arm}/{p}/{s}" for p in range(3) for s in (7, 8)
        )


@pytest.mark.parametrize(("seeds", "concurrency"), [(1, 1), (3, 1), (3, 2), (2, 4)])
def test_finished_counts_differ_by_at_most_the_concurrency(seeds, concurrency):
    spec = _spec(sampler="random", trials_per_arm=4, seeds=seeds)
    for run in range(5):
        _, finished = _drive(ArmInterleaver(spec), concurrency=concurrency, rng=random.Random(run))
        assert len(finished) == spec.total_trials
        counts = dict.fromkeys(spec.arm_names, 0)
        for config in finished:
            counts[config["__arm"]] += 1
            assert max(counts.values()) - min(counts.values()) <= concurrency, counts


@pytest.mark.parametrize("sampler", ["qmc", "grid"])
def test_save_and_restore_continue_the_same_sequence(tmp_path, sampler):
    spec = _spec(sampler=sampler)
    reference, _ = _drive(ArmInterleaver(spec), concurrency=1, rng=random.Random(0))

    searcher = ArmInterleaver(spec)
    got = []
    for i in range(7):
        config = searcher.suggest(f"x{i}")
        got.append(config)
        searcher.on_trial_complete(f"x{i}", result={"val_acc": 0.1, "epoch": 3})
    path = tmp_path / "searcher.pkl"
    searcher.save(str(path))
    restored = ArmInterleaver(spec)
    restored.restore(str(path))
    rest, _ = _drive(restored, concurrency=1, rng=random.Random(0))
    assert [(c["__arm"], c["__point"], c["lr"]) for c in got + rest] == [
        (c["__arm"], c["__point"], c["lr"]) for c in reference
    ]


def test_tpe_is_told_early_stopped_trials_as_pruned():
    import optuna

    spec = _spec(sampler="tpe", search={"lr": {"low": 1e-3, "high": 1.0}, "init": ["normal"]})
    searcher = ArmInterleaver(spec, epochs=5)
    assert not spec.paired
    searcher.suggest("a")  # sgd
    searcher.suggest("b")  # insgd
    searcher.suggest("c")  # sgd_nesterov
    searcher.on_trial_complete("a", result={"val_acc": 0.4, "epoch": 2})  # stopped early
    searcher.on_trial_complete("b", result={"val_acc": 0.9, "epoch": 5})
    searcher.on_trial_complete("c", result=None, error=True)
    states = {
        arm: [t.state for t in search._ot_study.get_trials()]
        for arm, search in searcher.searches.items()
    }
    assert states["sgd"] == [optuna.trial.TrialState.PRUNED]
    assert states["insgd"] == [optuna.trial.TrialState.COMPLETE]
    assert states["sgd_nesterov"] == [optuna.trial.TrialState.FAIL]


def test_the_searcher_leaves_process_wide_settings_as_they_were():
    """Building and driving the searcher changes neither Optuna's verbosity nor the warnings
    filters (the caller's process keeps its own), and still keeps Optuna's per-arm "A new study
    created" INFO lines and QMCSampler's ExperimentalWarning out of the driver's output."""
    import logging
    import warnings

    import optuna

    # its first use imports modules (scipy, Ray) that add filters of their own, once
    _drive(study_searcher(_spec(sampler="qmc")), concurrency=2, rng=random.Random(0))
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("optuna")
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.INFO)
    logger.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            filters = list(warnings.filters)
            searcher = study_searcher(_spec(sampler="qmc"))
            _drive(searcher, concurrency=2, rng=random.Random(0))
            assert warnings.filters == filters
        assert optuna.logging.get_verbosity() == optuna.logging.INFO
        experimental = optuna.exceptions.ExperimentalWarning
        assert [w.message for w in caught if issubclass(w.category, experimental)] == []
        assert [r.getMessage() for r in records if r.levelno < logging.WARNING] == []
    finally:
        logger.removeHandler(handler)
        optuna.logging.set_verbosity(previous)


def test_a_huge_grid_is_never_listed():
    """Probe B1: ``search.lr`` and ``search.init_scale`` each ``{low: 1e-300, high: 1e300,
    points_per_decade: 1000}`` with all 8 inits and ``trials_per_arm: 1`` (2.9e12 grid
    points) was accepted; Optuna's GridSampler listed the whole crossing and the driver was
    killed for memory (a 4-million-point grid alone took 280 MB). Now the sampler draws the
    points it will run and each is decoded from its index: the searcher of the 2.9e12-point
    grid and of a 4-million-point one hold a few hundred KB (tracemalloc), and run the
    points they were asked for. (The service and ``hprobust run`` refuse the first by
    HPROBUST_MAX_DESIGN_POINTS: tests/study/spec/test_bounds.py.)"""
    import tracemalloc

    from models import INIT_SCHEMES

    huge = {"low": 1e-300, "high": 1e300, "points_per_decade": 1000}
    four_million = {"low": 1e-3, "high": 10.0, "points": 10_000}
    for search, points in (
        ({"lr": huge, "init_scale": huge, "init": list(INIT_SCHEMES)}, 600_001**2 * 8),
        (
            {
                "lr": four_million,
                "init": list(INIT_SCHEMES),
                "init_scale": {**four_million, "points": 50},
            },
            4_000_000,
        ),
    ):
        spec = _spec(search=search, sampler="grid", trials_per_arm=3)
        assert spec.grid_size == points  # closed form
        tracemalloc.start()
        try:
            order, _ = _drive(ArmInterleaver(spec), concurrency=2, rng=random.Random(0))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 2_000_000, f"{peak} bytes for a grid of {points} points"
        assert len(order) == 3 * 3  # 3 arms x 3 points
        sgd = _points(order, "sgd")
        assert len(set(sgd)) == 3 and all(_points(order, arm) == sgd for arm in spec.arm_names)
        for config in order:
            assert spec.search.lr.low <= config["lr"] <= spec.search.lr.high
            assert config["init"] in search["init"] and config["init_scale"] > 0


def test_grid_points_decode_the_whole_crossing_in_order():
    """``StudySpec.grid_point(i)``: init_scale fastest, then init, then lr; every point of
    the crossing exactly once; the ends exact."""
    spec = _spec(sampler="grid")
    lrs, inits, scales = spec.search.lr.grid(), spec.search.init, spec.search.init_scale.grid()
    points = [spec.grid_point(i) for i in range(spec.grid_size)]
    assert points == [
        {"lr": lr, "init": init, "init_scale": scale}
        for lr in lrs
        for init in inits
        for scale in scales
    ]
    assert points[0]["lr"] == 1e-3 and points[-1]["lr"] == 10.0
    with pytest.raises(IndexError):
        spec.grid_point(spec.grid_size)


def test_grid_order_draws_distinct_points_fixed_by_the_seed():
    from study.tune.grid import GridOrder

    a = GridOrder(10**12, 50, seed=3)
    assert len(set(a.order)) == 50 and all(0 <= i < 10**12 for i in a.order)
    assert GridOrder(10**12, 50, seed=3).order == a.order != GridOrder(10**12, 50, seed=4).order
    assert sorted(GridOrder(24, 24, seed=0).order) == list(range(24))  # a whole grid: each once
    with pytest.raises(ValueError):
        GridOrder(5, 6, seed=0)
