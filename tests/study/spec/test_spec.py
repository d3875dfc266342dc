"""The study spec: defaults, derived values, every example, and clear errors for bad input."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from study.errors import ConfigError, SpecError
from study.spec.study_spec import StudySpec, load_spec, parse_spec

EXAMPLES = sorted(
    p
    for p in (Path(__file__).parents[3] / "examples").glob("*.yaml")
    if not p.name.startswith("suite-")  # suites: tests/study/spec/test_suite_spec.py
)

GOOD = {
    "name": "t",
    "dataset": "digits",
    "model": {"name": "mlp", "hidden": [16]},
    "arms": [
        {"name": "sgd", "optimizer": "sgd", "momentum": 0.9},
        {"name": "insgd", "optimizer": "insgd", "momentum": 0.9},
    ],
    "search": {"lr": {"low": 1e-3, "high": 1.0}, "init": ["kaiming_normal", "xavier_normal"]},
    "trials_per_arm": 4,
    "seeds": 2,
}


def _with(path: str, value, base: dict | None = None) -> dict:
    data = copy.deepcopy(base or GOOD)
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node[int(key)] if key.isdigit() else node.setdefault(key, {})
    if value is _DROP:
        del node[last]
    elif last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return data


_DROP = object()


def test_good_spec_defaults_and_derived_values():
    spec = parse_spec(GOOD)
    assert spec.sampler == "grid"
    assert spec.analysis.tolerance == 0.02
    assert spec.early_stopping == "none"
    assert spec.resources.max_concurrent_trials == 2
    assert spec.total_trials == 2 * 4 * 2
    assert spec.num_classes == 10
    assert spec.arms[0].hparams == {"momentum": 0.9}
    assert spec.paired


def test_trial_config_is_what_train_trial_takes():
    spec = parse_spec(GOOD)
    config = spec.trial_config("insgd", lr=0.1, init="xavier_normal", seed=3, num_threads=1)
    assert (config.optimizer_name, config.optimizer_hparams) == ("insgd", {"momentum": 0.9})
    assert config.lr == 0.1 and config.seed == 3 and config.num_threads == 1
    assert config.model == {"name": "mlp", "hidden": [16]}
    assert (config.dataset, config.schedule, config.epochs) == (
        spec.dataset,
        spec.schedule,
        spec.epochs,
    )
    from study.spec.trial_config import TrialConfig

    # made without validating again, yet exactly what the spec's rules give for its JSON form
    assert TrialConfig.from_mapping(config.model_dump(mode="json")) == config


def test_grid_counts_points_and_stops_at_the_grid():
    data = _with("search.lr", {"low": 1e-3, "high": 1.0, "points": 3}, _with("sampler", "grid"))
    data["trials_per_arm"] = 100
    spec = parse_spec(data)
    assert spec.grid_size == 3 * 2
    assert spec.points_per_arm == 6
    assert spec.total_trials == 2 * 6 * 2
    assert spec.search.lr.grid() == pytest.approx([1e-3, 10**-1.5, 1.0])


def test_the_default_grid_is_four_lrs_per_decade_crossed_with_every_init():
    data = copy.deepcopy(GOOD)
    del data["trials_per_arm"]
    spec = parse_spec(data)
    lrs = spec.search.lr.grid()
    assert len(lrs) == 13  # 1e-3 to 1: 3 decades x 4 + 1, both ends included
    assert (lrs[0], lrs[-1]) == (1e-3, 1.0)  # the ends are exact
    assert lrs[4] == pytest.approx(1e-2) and lrs[8] == pytest.approx(0.1)
    assert spec.grid_size == spec.points_per_arm == 13 * 2  # trials_per_arm: the whole grid
    assert spec.total_trials == 2 * 26 * 2
    assert spec.paired


@pytest.mark.parametrize(
    ("lr", "n"),
    [
        ({"low": 1e-4, "high": 10.0, "points_per_decade": 2}, 11),
        ({"low": 1e-3, "high": 1e-3 * 10**1.3, "points_per_decade": 4}, 6),  # 5.2 -> 5 steps
        ({"low": 0.1, "high": 0.1}, 1),
        ({"low": 0.1, "high": 0.100001, "points_per_decade": 4}, 2),  # both ends, always
        ({"low": 1e-3, "high": 1.0, "points": 5}, 5),
    ],
)
def test_grid_density(lr, n):
    spec = parse_spec(_with("search.lr", lr))
    grid = spec.search.lr.grid()
    assert len(grid) == spec.search.lr.n_points == n
    assert grid[0] == lr["low"] and grid[-1] == lr["high"]
    steps = np.diff(np.log10(grid))
    assert np.allclose(steps, steps[0]) if n > 1 else grid == [0.1]


def test_init_scale_grid_and_trials_per_arm():
    data = _with("search.init_scale", {"low": 0.5, "high": 2.0, "points": 3})
    spec = parse_spec(data)
    assert spec.search.init_scale.grid() == pytest.approx([0.5, 1.0, 2.0])
    assert spec.grid_size == 13 * 2 * 3 and spec.points_per_arm == 4  # trials_per_arm: 4
    data = _with("sampler", "qmc", _with("trials_per_arm", _DROP))
    assert parse_spec(data).points_per_arm == 16  # other samplers: 16 by default


def test_points_and_points_per_decade_together_are_refused():
    with pytest.raises(SpecError) as info:
        parse_spec(
            _with("search.lr", {"low": 1e-3, "high": 1.0, "points": 4, "points_per_decade": 2})
        )
    (problem,) = info.value.problems
    assert problem["field"] == "search.lr.points_per_decade"
    assert problem["rule"] == "must not be given together with points (4); give one of them"
    assert problem["value"] == 2


def test_design_warnings():
    assert parse_spec(_with("seeds", 5, _with("trials_per_arm", _DROP))).design_warnings() == []
    (three,) = parse_spec(_with("seeds", 3, _with("trials_per_arm", _DROP))).design_warnings()
    assert three == (
        "intervals from 3 seeds use Student t with 2 degrees of freedom: wide (run 5 or more "
        "seeds for tighter ones)"
    )
    warnings = parse_spec(GOOD).design_warnings()  # 2 seeds, 4 of 26 grid points
    assert any(w.startswith("trials_per_arm 4 is less than the grid's 26 points") for w in warnings)
    assert any(w.startswith("4 points per arm (fewer than 6)") for w in warnings)
    assert any(
        w.startswith("fewer than 3 seeds (2): every verdict is not_enough_data") for w in warnings
    )
    one_lr = _with("search.lr", {"low": 0.1, "high": 0.1}, _with("seeds", 3))
    del one_lr["trials_per_arm"]
    assert parse_spec(one_lr).design_warnings()[0].startswith("search.lr gives 1 learning rate")
    tpe = parse_spec(_with("sampler", "tpe", _with("trials_per_arm", 3))).design_warnings()
    assert any(
        w.startswith("3 points per arm over 2 inits: fewer than 2 lrs per init") for w in tpe
    )
    assert any(w.startswith("sampler tpe is adaptive") for w in tpe)
    assert any(w.startswith("sampler tpe draws lr and init together") for w in tpe)
    asha = parse_spec(_with("early_stopping", "asha")).design_warnings()
    assert any(w.startswith("early_stopping asha") for w in asha)


def test_an_lr_range_that_cannot_hold_the_good_regions_is_warned_before_the_study_runs():
    """A one-decade range: every optimizer still learns over more than that, so an end will
    cut an arm's good region and its verdict be range_limited; the spec says so up front.
    Three decades (GOOD's 1e-3..1) pass; one arm alone compares nothing and is not warned."""
    base = _with("seeds", 5, _with("trials_per_arm", _DROP))
    assert parse_spec(base).design_warnings() == []
    narrow = _with("search.lr", {"low": 1e-2, "high": 1e-1}, base)
    (warning,) = parse_spec(narrow).design_warnings()
    assert warning.startswith("search.lr spans 1 decade (0.01 to 0.1): an optimizer usually ")
    assert "range_limited; span at least 3 decades" in warning
    alone = _with("arms", [{"name": "sgd", "optimizer": "sgd"}], narrow)
    assert parse_spec(alone).design_warnings() == []


def test_seeds_default_to_three_enough_for_a_verdict():
    spec = _with("seeds", _DROP, _with("trials_per_arm", _DROP))
    assert parse_spec(spec).seeds == 3


def test_yaml_round_trip():
    spec = parse_spec(GOOD)
    import yaml

    assert StudySpec.model_validate(yaml.safe_load(spec.to_yaml())) == spec


def test_asha_shorthand():
    spec = parse_spec(_with("early_stopping", "asha"))
    assert spec.early_stopping.name == "asha" and spec.early_stopping.grace_period == 1


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_is_valid(path):
    spec = load_spec(path)
    assert spec.total_trials >= 2 * spec.points_per_arm


def test_paper_settings():
    r20 = load_spec(Path(__file__).parents[3] / "examples" / "resnet20-cifar10.yaml")
    assert (r20.epochs, r20.batch_size) == (200, 128)
    schedule = {"name": "multistep", "milestones": [80, 120, 160], "gamma": 0.2}
    assert r20.schedule.model_dump() == schedule
    for arm in r20.arms:
        assert arm.hparams == {"momentum": 0.9, "weight_decay": 5e-4}
    nobn = load_spec(Path(__file__).parents[3] / "examples" / "nobn-toycnn-cifar10.yaml")
    assert nobn.model["batchnorm"] is False


BAD = [
    ("search.lr.low", -1, "search.lr.low must be > 0, got -1"),
    ("search.lr.high", 1e-4, "search.lr.high must be >= low (0.001), got 0.0001"),
    ("search.lr.low", float("nan"), "search.lr.low must be a finite number"),
    ("search.init", [], "search.init must have at least 1 item(s), got []"),
    ("search.init", ["kaiming_normal", "bogus"], "search.init.1 must be one of"),
    ("search.init", ["normal", "normal"], "search.init.1 must not repeat an earlier init"),
    ("search.init_scale", {"low": 0, "high": 2}, "search.init_scale.low must be > 0, got 0"),
    ("sampler", "cmaes", "sampler must be one of 'qmc', 'tpe', 'random' or 'grid', got 'cmaes'"),
    ("trials_per_arm", 0, "trials_per_arm must be >= 1, got 0"),
    ("search.lr.points_per_decade", 0, "search.lr.points_per_decade must be > 0, got 0"),
    ("analysis.tolerance", 1.0, "analysis.tolerance must be < 1, got 1"),
    ("analysis.tolerance", -0.01, "analysis.tolerance must be >= 0, got -0.01"),
    ("analysis.delta", 0.01, "analysis.delta is not a known key, got 0.01"),
    ("seeds", 0, "seeds must be >= 1, got 0"),
    ("epochs", "ten", "epochs must be a valid integer"),
    ("batch_size", -5, "batch_size must be >= 1, got -5"),
    ("schedule", "poly", "schedule must be one of constant, cosine, multistep, got 'poly'"),
    ("precision", "fp8", "precision must be one of 'fp32' or 'bf16', got 'fp8'"),
    ("early_stopping", {"name": "asha", "grace_period": 0}, "early_stopping.grace_period must"),
    ("resources.gpus_per_trial", 1.5, "resources.gpus_per_trial must be a fraction <= 1"),
    ("resources.cpus_per_trial", 0, "resources.cpus_per_trial must be > 0, got 0"),
    ("resources.cpus_per_trial", 0.01, "resources.cpus_per_trial must be >= 0.25 (each trial"),
    ("resources.max_concurrent_trials", 0, "resources.max_concurrent_trials must be >= 1"),
    ("dataset", "imagenet9", "dataset must be one of"),
    ("model.name", "lenet", "model.name must be one of"),
    ("model.depth", 3, "model.depth is not an option of model mlp"),
    # Values are checked too (the model is built on the meta device, the optimizer's rules
    # applied), so a spec that every trial would crash on is refused before it is recorded.
    ("model.hidden", [16, 0], "model.hidden must be a list of integers >= 1, got [16, 0]"),
    ("model", {"name": "resnet20", "depth": 21}, "model.depth must be 6n+2 with n >= 1"),
    ("model", {"name": "toy_cnn", "width": 0}, "model.width must be an integer >= 1, got 0"),
    ("model", {"name": "vit_tiny", "dim": 10}, "model.dim must be a multiple of 'heads' (3)"),
    ("arms.0.momentum", -0.5, "arms.sgd.momentum must be >= 0, got -0.5"),
    ("arms.0.dampening", 2, "arms.sgd.dampening must be in [0, 1], got 2"),
    ("arms.1.power_momentum", 1.0, "arms.insgd.power_momentum must be in [0, 1), got 1.0"),
    ("arms.1.norm", "l3", "arms.insgd.norm must be one of ['l1', 'l2'], got 'l3'"),
    ("arms.1.nesterov", "yes", "arms.insgd.nesterov must be a bool, got 'yes'"),
    ("arms", [], "arms must have at least 1 item(s)"),
    ("arms.1.name", "sgd", "arms.1.name must be unique among arms, got 'sgd'"),
    ("arms.1.name", "a/b", "arms.1.name must be 1-64 letters, digits, '_', '.' or '-'"),
    ("arms.0.optimizer", "lamb", "arms.sgd.optimizer must be one of"),
    ("arms.0.lr", 0.1, "arms.sgd.lr is not allowed in an arm (lr is searched), got 0.1"),
    ("arms.0.betas", [0.9], "arms.sgd.betas is not a hyperparameter of sgd"),
    ("colour", "red", "colour is not a known key, got 'red'"),
    ("search.lr.step", 2, "search.lr.step is not a known key, got 2"),
    ("name", _DROP, "name is required"),
    ("search", _DROP, "search is required"),
]


@pytest.mark.parametrize(("path", "value", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_field_is_named_with_rule_and_value(path, value, message):
    with pytest.raises(SpecError) as info:
        parse_spec(_with(path, value))
    assert message in str(info.value)
    assert isinstance(info.value, ConfigError) and isinstance(info.value, ValueError)
    fields = [p["field"] for p in info.value.problems]
    assert any(message.startswith(f) for f in fields), fields


def test_model_must_build_for_the_dataset_shape():
    data = _with("dataset", {"name": "synthetic", "shape": [1, 2, 2]})
    data["model"] = {"name": "toy_cnn"}
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    (problem,) = info.value.problems
    assert problem["field"] == "model.name" and problem["value"] == "toy_cnn"
    assert "must build for synthetic inputs of shape (1, 2, 2)" in problem["rule"]
    data["dataset"]["shape"] = [1, 4, 4]
    assert parse_spec(data).model["name"] == "toy_cnn"


def test_several_problems_are_all_reported():
    data = _with("epochs", 0, _with("search.lr.low", -1))
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    assert {p["field"] for p in info.value.problems} == {"epochs", "search.lr.low"}


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\narms: [\n  {name: sgd\n")
    with pytest.raises(SpecError, match=r"must be valid YAML .* at .*bad\.yaml:\d+:\d+"):
        load_spec(path)


def test_not_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(SpecError, match="spec must be a mapping of keys"):
        load_spec(path)


def test_missing_file_is_a_spec_error(tmp_path):
    with pytest.raises(SpecError, match="must be a readable file"):
        load_spec(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("sampeler", "grid", "sampeler is not a known key (did you mean 'sampler'?), got 'grid'"),
        ("search.lr.point", 3, "search.lr.point is not a known key (did you mean 'points'?)"),
        (
            "resources.max_concurent_trials",
            3,
            "resources.max_concurent_trials is not a known key "
            "(did you mean 'max_concurrent_trials'?)",
        ),
        ("arms.0.optimizer", "adma", "one of adagrad, adam, adamw, insgd, nadam, rmsprop, sgd "),
        ("arms.0.optimizer", "adma", "(did you mean 'adam'?), got 'adma'"),
        ("arms.0.momentun", 0.9, "arms.sgd.momentun is not a hyperparameter of sgd (did you mean"),
        ("model.hiden", [8], "model.hiden is not an option of model mlp (did you mean 'hidden'?)"),
        ("dataset", "digit", "(did you mean 'digits'?), got 'digit'"),
        ("search.init.0", "xavier", "(did you mean 'xavier_normal'?), got 'xavier'"),
        ("schedule", "cosin", "(did you mean 'cosine'?), got 'cosin'"),
    ],
)
def test_a_mistyped_key_or_name_gets_a_suggestion(path, value, message):
    with pytest.raises(SpecError) as info:
        parse_spec(_with(path, value))
    assert message in str(info.value)


def test_no_suggestion_for_a_name_nothing_resembles():
    with pytest.raises(SpecError) as info:
        parse_spec(_with("colour", "red"))
    assert "did you mean" not in str(info.value)


PAPER_ARMS = [
    {"name": "sgd", "optimizer": "sgd", "momentum": 0.9, "weight_decay": 5e-4},
    {"name": "insgd", "optimizer": "insgd", "momentum": 0.9, "variant": "reference"},
    {"name": "adam", "optimizer": "adam", "betas": [0.9, 0.99], "eps": 1e-7, "amsgrad": True},
    {"name": "adamw", "optimizer": "adamw", "weight_decay": 0.05},
    {"name": "adagrad", "optimizer": "adagrad", "lr_decay": 1e-4, "initial_accumulator_value": 0.1},
    {"name": "rmsprop", "optimizer": "rmsprop", "alpha": 0.9, "centered": True, "momentum": 0.5},
    {
        "name": "nadam",
        "optimizer": "nadam",
        "momentum_decay": 0.002,
        "decoupled_weight_decay": True,
    },
]


def test_every_optimizer_is_an_arm_with_its_hyperparameters():
    spec = parse_spec({**GOOD, "arms": PAPER_ARMS})
    assert [a.optimizer for a in spec.arms] == [a["optimizer"] for a in PAPER_ARMS]
    config = spec.trial_config("adam", lr=0.01, init="xavier_normal", seed=0)
    assert config.model_dump(mode="json")["optimizer"] == {
        "optimizer": "adam",
        "betas": [0.9, 0.99],
        "eps": 1e-7,
        "amsgrad": True,
    }


@pytest.mark.parametrize(
    ("arm", "message"),
    [
        ({"optimizer": "adam", "betas": [0.9, 1.0]}, "arms.x.betas must be two numbers in [0, 1)"),
        ({"optimizer": "adam", "amsgrad": "yes"}, "arms.x.amsgrad must be a bool, got 'yes'"),
        ({"optimizer": "adagrad", "lr_decay": -1}, "arms.x.lr_decay must be >= 0, got -1"),
        ({"optimizer": "rmsprop", "alpha": 2}, "arms.x.alpha must be in [0, 1], got 2"),
        ({"optimizer": "nadam", "momentum_decay": -1}, "arms.x.momentum_decay must be >= 0"),
        ({"optimizer": "adamw", "eps": -1e-8}, "arms.x.eps must be >= 0, got -1e-08"),
        ({"optimizer": "adagrad", "momentum": 0.9}, "arms.x.momentum is not a hyperparameter"),
    ],
)
def test_baseline_hyperparameters_are_checked_at_submission(arm, message):
    """Each problem names its arm by name (issue 23: ``arms.x.betas``, not ``arms.0.betas``)."""
    with pytest.raises(SpecError) as info:
        parse_spec({**GOOD, "arms": [{"name": "x", **arm}]})
    assert message in str(info.value)


def test_arms_are_named_by_name_unless_the_name_cannot_name_them():
    """The index stays where a name would mislead: the name's own problem, a name two arms
    share, an arm whose name is not valid (then its own problem is all that is said)."""
    bad = {"optimizer": "sgd", "momentum": -1}

    def fields(arms):
        with pytest.raises(SpecError) as info:
            parse_spec({**GOOD, "arms": arms})
        return sorted(p["field"] for p in info.value.problems)

    assert fields([{"name": "a", **bad}, {"name": "b", **bad}]) == [
        "arms.a.momentum",
        "arms.b.momentum",
    ]
    assert "arms.1.momentum" in fields([{"name": "a", **bad}, {"name": "a", **bad}])
    assert fields([{"name": "a b", "optimizer": "sgd"}]) == ["arms.0.name"]
