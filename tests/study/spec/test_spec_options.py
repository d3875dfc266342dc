"""Typed schedule and dataset options, strict numbers, and bounded parsing (issue 10, defects
1, 5, 6 and "epochs: true"): refused at submission naming field, rule and value; everything the
spec accepts is accepted by the code that uses it later."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from study.bounded import BoundedInputError, load_json, load_yaml, preview
from study.data.registry import DATASET_KINDS
from study.errors import SpecError
from study.spec.study_spec import parse_spec
from study.train.schedule import lr_at

BASE = {
    "name": "t",
    "dataset": "digits",
    "model": {"name": "mlp"},
    "arms": [{"name": "sgd", "optimizer": "sgd"}],
    "search": {"lr": {"low": 1e-3, "high": 1.0}, "init": ["kaiming_normal"]},
    "epochs": 2,
}


def problems(**changes) -> list[dict]:
    with pytest.raises(SpecError) as info:
        parse_spec({**BASE, **changes})
    return info.value.problems


# The schedules of defect 5: every one was accepted (202) and crashed or misled later.
BAD_SCHEDULES = [
    ({"name": "multistep", "gamma": -1}, "schedule.gamma", "must be > 0", -1),
    ({"name": "multistep", "gamma": 0}, "schedule.gamma", "must be > 0", 0),
    ({"name": "multistep", "gamma": math.nan}, "schedule.gamma", "finite", math.nan),
    ({"name": "multistep", "gamma": "x"}, "schedule.gamma", "must be a valid number", "x"),
    ({"name": "multistep", "gamma": 2}, "schedule.gamma", "must be <= 1", 2),
    ({"name": "multistep", "gamma": True}, "schedule.gamma", "must be a valid number", True),
    ({"name": "multistep", "milestones": [-1]}, "schedule.milestones.0", ">= 1", -1),
    ({"name": "multistep", "milestones": [1, 1]}, "schedule.milestones.1", "greater", 1),
    ({"name": "multistep", "milestones": [1000]}, "schedule.milestones.0", "< epochs (2)", 1000),
    ({"name": "multistep", "milestones": [1.0]}, "schedule.milestones.0", "integer", 1.0),
    ({"name": "multistep", "step": 3}, "schedule.step", "is not a known key", 3),
    ({"name": "cosine", "gamma": 0.5}, "schedule.gamma", "is not a known key", 0.5),
    ({"name": "poly"}, "schedule.name", "must be one of constant, cosine, multistep", "poly"),
    ({"milestones": [1]}, "schedule.name", "is required", None),
    ("linear", "schedule", "must be one of constant, cosine, multistep", "linear"),
    (7, "schedule", "must be a schedule name or a mapping", 7),
]


@pytest.mark.parametrize(("schedule", "field", "rule", "value"), BAD_SCHEDULES)
def test_bad_schedule_is_refused_naming_field_rule_value(schedule, field, rule, value):
    (problem,) = problems(schedule=schedule, epochs=2 if field.endswith("0") else 10)
    assert problem["field"] == field
    assert rule in problem["rule"].replace("(10)", "(2)") or rule in problem["rule"]
    if isinstance(value, float) and math.isnan(value):
        assert math.isnan(problem["value"])
    else:
        assert problem["value"] == value


BAD_DATASETS = [
    ({"name": "synthetic", "num_classes": True}, "dataset.num_classes", True),
    ({"name": "synthetic", "num_classes": 1}, "dataset.num_classes", 1),
    ({"name": "synthetic", "n_train": 10**9}, "dataset.n_train", 10**9),
    ({"name": "synthetic", "noise": math.inf}, "dataset.noise", math.inf),
    ({"name": "synthetic", "shape": [1, 8, 8, 8]}, "dataset.shape", [1, 8, 8, 8]),
    ({"name": "synthetic", "shape": [1, 100_000, 8]}, "dataset.shape.1", 100_000),
    ({"name": "synthetic", "augment": "yes"}, "dataset.augment", "yes"),
    ({"name": "synthetic", "augment": True, "shape": [1, 4, 4]}, "dataset.augment", True),
    ({"name": "cifar10", "augment": 1}, "dataset.augment", 1),
    ({"name": "mnist", "augment": True}, "dataset.augment", True),
    ({"name": "digits", "size": 3}, "dataset.size", 3),
    ("imagenet9", "dataset", "imagenet9"),
]


@pytest.mark.parametrize(("dataset", "field", "value"), BAD_DATASETS)
def test_bad_dataset_option_is_refused(dataset, field, value):
    found = problems(dataset=dataset)
    assert [p["field"] for p in found] == [field], found
    assert found[0]["value"] == value or field == "dataset.shape"


@pytest.mark.parametrize(
    ("key", "value"),
    [("epochs", True), ("seeds", 2.0), ("trials_per_arm", "4"), ("seed", False)],
)
def test_integers_are_strict(key, value):
    (problem,) = problems(**{key: value})
    assert problem["field"] == key and "integer" in problem["rule"]
    assert problem["value"] == value


def test_numbers_must_be_finite_and_booleans_strict():
    found = problems(resources={"cpus_per_trial": math.inf, "max_concurrent_trials": True})
    fields = {p["field"]: p for p in found}
    assert fields["resources.cpus_per_trial"]["rule"] == "must be a finite number"
    assert "integer" in fields["resources.max_concurrent_trials"]["rule"]
    found = problems(search={"lr": {"low": math.nan, "high": 1.0}, "init": ["kaiming_normal"]})
    assert found[0]["field"] == "search.lr.low" and "finite" in found[0]["rule"]


def test_name_must_be_printable():
    (problem,) = problems(name="   ")
    assert problem["field"] == "name" and problem["rule"] == "must not be blank"
    for name in ("a\nb", "x\x00"):
        (problem,) = problems(name=name)
        assert problem["field"] == "name" and "must not contain control" in problem["rule"]


@pytest.mark.parametrize("name", DATASET_KINDS)
def test_every_registered_dataset_is_a_spec_dataset_by_its_name(name):
    """A registry entry's options model is the one its name selects (an entry filed under the
    wrong key, or an options model without its name, fails)."""
    from study.data.registry import DATASETS

    spec = parse_spec({**BASE, "dataset": name})
    assert spec.dataset_name == name and type(spec.dataset) is DATASETS[name].options


def test_shorthands_normalize():
    spec = parse_spec({**BASE, "schedule": "constant", "dataset": "synthetic"})
    assert spec.schedule.model_dump() == {"name": "constant"}
    assert spec.dataset_name == "synthetic" and spec.dataset_options["shape"] == [1, 8, 8]
    again = parse_spec(json.loads(json.dumps(spec.model_dump(mode="json"))))
    assert again == spec  # the recorded spec validates back to the same spec


# ---- the spec's rules are the training code's rules (nothing accepted crashes later) --------

schedules = st.one_of(
    st.sampled_from(["constant", "cosine", "multistep", {"name": "multistep"}]),
    st.builds(
        lambda ms, gamma: {"name": "multistep", "milestones": sorted(set(ms)), "gamma": gamma},
        st.lists(st.integers(1, 29), min_size=1, max_size=5),
        st.floats(1e-6, 1.0),
    ),
)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(schedule=schedules, epochs=st.integers(1, 30))
def test_every_accepted_schedule_trains(schedule, epochs):
    try:
        spec = parse_spec({**BASE, "schedule": schedule, "epochs": epochs})
    except SpecError as exc:  # only milestones beyond the run are refused here
        assert all("< epochs" in p["rule"] for p in exc.problems), exc.problems
        return
    config = spec.trial_config("sgd", lr=0.5, init="kaiming_normal", seed=0)
    for step in range(epochs * 4 + 1):
        lr = lr_at(config.schedule, 0.5, step / 4, epochs)
        assert math.isfinite(lr) and 0 <= lr <= 0.5


synthetic = st.fixed_dictionaries(
    {"name": st.just("synthetic")},
    optional={
        "num_classes": st.integers(2, 1000),
        "shape": st.tuples(st.integers(1, 64), st.integers(5, 512), st.integers(5, 512)).map(list),
        "n_train": st.integers(1, 10**6),
        "noise": st.floats(0, 1e6),
        "separation": st.floats(1e-9, 1e6),
        "seed": st.integers(0, 2**31 - 1),
        "augment": st.booleans(),
    },
)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(dataset=st.one_of(st.sampled_from(sorted(DATASET_KINDS)), synthetic))
def test_every_accepted_dataset_is_accepted_by_the_data_module(dataset):
    from study.data.registry import dataset_info

    try:
        spec = parse_spec({**BASE, "dataset": dataset})
    except SpecError as exc:  # the model cannot take this input shape: named, not crashed
        assert all(p["field"].startswith("model") for p in exc.problems), exc.problems
        return
    info = dataset_info(spec.dataset_name, **spec.dataset_options)
    assert info.num_classes == spec.num_classes


# ---- bounded parsing ---------------------------------------------------------------------


def alias_bomb(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        refs = ",".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "\n".join(lines) + f"\nschedule: {{name: multistep, x: *a{levels - 1}}}\n"


def test_yaml_alias_bomb_is_refused_at_once():
    text = alias_bomb()
    assert len(text) < 1024
    with pytest.raises(BoundedInputError, match="must not use YAML anchors") as info:
        load_yaml(text)
    assert info.value.line == 1  # refused at the first anchor, before anything is expanded
    with pytest.raises(BoundedInputError, match="must not use YAML aliases"):
        load_yaml("a: *x\n")  # an alias to an undefined anchor is still an alias


def test_nesting_is_bounded_in_yaml_and_json():
    for depth in (33, 1000, 100_000):
        with pytest.raises(BoundedInputError, match="nested at most 32 levels"):
            load_json("[" * depth + "]" * depth)
        with pytest.raises(BoundedInputError, match="nested at most 32 levels"):
            load_yaml("[" * depth + "]" * depth)
        with pytest.raises(BoundedInputError, match="nested at most 32 levels"):
            load_json('{"a":' * depth + "1" + "}" * depth)
    assert load_json("[" * 32 + "]" * 32) == eval("[" * 32 + "]" * 32)
    # brackets inside strings are not nesting
    assert load_json(json.dumps({"name": "[" * 100})) == {"name": "[" * 100}


def test_lone_surrogates_are_refused():
    with pytest.raises(BoundedInputError, match=r"name must be valid Unicode text.*\\ud800"):
        load_json(b'{"name": "a\\ud800b"}')
    with pytest.raises(BoundedInputError, match=r"arms\.0\.name must be valid Unicode"):
        load_json(b'{"arms": [{"name": "\\udfff"}]}')
    with pytest.raises(BoundedInputError, match="must be UTF-8"):
        load_json(b'{"name": "\xff"}')
    assert load_json(b'{"name": "\\ud83d\\ude00"}') == {"name": "\U0001f600"}  # a real pair


def test_json_non_finite_numbers_parse_and_are_refused_by_field():
    data = load_json(b'{"epochs": 2, "search": {"lr": {"low": 1e400, "high": NaN}}}')
    assert data["search"]["lr"]["low"] == math.inf
    found = problems(search={**data["search"], "init": ["kaiming_normal"]})
    assert {p["field"] for p in found} == {"search.lr.low", "search.lr.high"}


def test_preview_is_short_and_always_serializable():
    for value in (math.nan, math.inf, -math.inf, "a\ud800", "x" * 10_000, ["y"] * 10_000):
        shown = preview(value)
        text = json.dumps(shown, allow_nan=False)
        text.encode("utf-8")
        assert len(text) < 200
    assert preview(math.nan) == "NaN" and preview(-math.inf) == "-Infinity"
    assert preview([1, 2.5, None]) == [1, 2.5, None]
    assert preview("x" * 10_000).endswith("… (10000 characters)")
    assert preview(10**5000) == "an integer of about 5001 digits"
