"""The suite spec: workloads deep-merged over the shared keys into ordinary studies, problems
named by workload, refusals of per-workload arms/seeds, names, counts and size limits."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from study.errors import SpecError
from study.spec.bounds import SizeLimits
from study.spec.study_spec import parse_spec
from study.spec.suite import (
    MAX_WORKLOADS,
    deep_merge,
    is_suite,
    load_suite,
    parse_suite,
    suite_size_problems,
)

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def suite(**changes: Any) -> dict[str, Any]:
    doc = {
        "name": "s",
        "dataset": "digits",
        "arms": [
            {"name": "sgd", "optimizer": "sgd", "momentum": 0.9},
            {"name": "insgd", "optimizer": "insgd", "momentum": 0.9},
        ],
        "search": {
            "lr": {"low": 0.001, "high": 1.0, "points_per_decade": 1},
            "init": ["kaiming_normal"],
        },
        "seeds": 3,
        "epochs": 2,
        "model": {"name": "toy_cnn", "width": 4, "batchnorm": False},
        "workloads": [
            {"name": "cnn"},
            {"name": "cnn-bn", "model": {"batchnorm": True}},
            {"name": "mlp", "model": {"name": "mlp", "hidden": [8]}, "epochs": 1},
        ],
    }
    doc.update(changes)
    return doc


def problems(doc: Any) -> list[dict[str, Any]]:
    with pytest.raises(SpecError) as info:
        parse_suite(doc)
    return info.value.problems


def test_workloads_are_shared_keys_deep_merged_into_studies() -> None:
    s = parse_suite(suite())
    assert [w.name for w in s.workloads] == ["cnn", "cnn-bn", "mlp"]
    cnn, bn, mlp = (w.spec for w in s.workloads)
    assert cnn.name == "s/cnn" and bn.name == "s/cnn-bn"
    # a mapping merges key by key: cnn-bn keeps the shared width, changes batchnorm only
    assert bn.model == {**cnn.model, "batchnorm": True} and bn.model["width"] == 4
    assert cnn.model["batchnorm"] is False
    # another model kind replaces the shared model whole (no toy_cnn option carried over)
    assert mlp.model["name"] == "mlp" and "width" not in mlp.model and "batchnorm" not in mlp.model
    assert mlp.epochs == 1 and cnn.epochs == 2
    assert {w.spec.arm_names[0] for w in s.workloads} == {"sgd"}
    assert {w.spec.seeds for w in s.workloads} == {3}
    assert s.total_trials == sum(w.spec.total_trials for w in s.workloads)
    # each workload is exactly the study its merged document gives
    merged = deep_merge({k: v for k, v in suite().items() if k not in ("name", "workloads")},
                        {"model": {"batchnorm": True}})  # fmt: skip
    assert bn == parse_spec({**merged, "name": "s/cnn-bn"})
    assert is_suite(suite()) and not is_suite({"name": "x"})


def test_deep_merge_merges_mappings_and_replaces_the_rest() -> None:
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    over = {"a": {"c": [3]}, "e": {"f": 1}}
    assert deep_merge(base, over) == {"a": {"b": 1, "c": [3]}, "d": 1, "e": {"f": 1}}
    named = {"m": {"name": "x", "k": 1}}
    assert deep_merge(named, {"m": {"name": "x", "j": 2}}) == {"m": {"name": "x", "k": 1, "j": 2}}
    assert deep_merge(named, {"m": {"name": "y"}}) == {"m": {"name": "y"}}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1}  # unchanged


def test_a_workloads_problem_is_named_by_its_path() -> None:
    doc = suite()
    doc["workloads"][1]["model"] = {"batchnorm": True, "width": 0}
    found = problems(doc)
    assert [p["field"] for p in found] == ["workloads.cnn-bn.model.width"]
    assert found[0]["value"] == 0 and "must" in found[0]["rule"]


def test_a_shared_problem_is_named_once_by_its_shared_key() -> None:
    found = problems(suite(epochs=0))
    epochs = [p for p in found if p["field"] == "epochs"]
    assert len(epochs) == 1 and epochs[0]["value"] == 0
    # the mlp workload overrides epochs: its own value is fine, nothing named for it
    assert not any(p["field"].startswith("workloads.mlp") for p in found)


@pytest.mark.parametrize("key,value", [("arms", []), ("seeds", 5), ("seed", 1)])
def test_arms_and_seeds_cannot_differ_per_workload(key: str, value: Any) -> None:
    doc = suite()
    doc["workloads"][2][key] = value
    (p,) = problems(doc)
    assert p["field"] == f"workloads.mlp.{key}"
    assert "every workload runs the suite's arms, baseline and seeds" in p["rule"]
    assert p["value"] == value


def test_workload_names_unique_and_valid() -> None:
    doc = suite()
    doc["workloads"][1]["name"] = "cnn"
    assert [p["field"] for p in problems(doc)] == ["workloads.cnn.name"]
    doc = suite()
    doc["workloads"][0]["name"] = "a b"
    (p,) = problems(doc)
    assert p["field"] == "workloads.0.name" and p["value"] == "a b"
    doc = suite()
    doc["workloads"][0] = "cnn"
    assert problems(doc)[0]["field"] == "workloads.0"


def test_workload_counts_and_shape() -> None:
    one = suite()
    one["workloads"] = one["workloads"][:1]
    (p,) = problems(one)
    assert p["field"] == "workloads" and p["value"] == 1 and "at least 2" in p["rule"]
    many = suite()
    many["workloads"] = [{"name": f"w{i}"} for i in range(MAX_WORKLOADS + 1)]
    assert problems(many)[0]["rule"] == f"must have at most {MAX_WORKLOADS} workloads"
    assert problems(suite(workloads="cnn"))[0]["field"] == "workloads"
    assert problems([1])[0]["field"] == "suite"
    assert problems(suite(name=""))[0]["field"] == "name"
    missing = suite()
    del missing["dataset"]
    fields = {p["field"] for p in problems(missing)}
    assert fields == {"workloads.cnn.dataset", "workloads.cnn-bn.dataset", "workloads.mlp.dataset"}


def test_size_limits_per_workload_and_in_total() -> None:
    s = parse_suite(suite())
    assert suite_size_problems(s, SizeLimits()) == []
    per_arm = [w.spec.points_per_arm for w in s.workloads]  # 4 lrs x 1 init each
    # each workload keeps a limit of 4 points, the three together (12) do not
    (p,) = suite_size_problems(s, SizeLimits(max_design_points=max(per_arm)))
    assert p["field"] == "workloads" and p["value"] == sum(per_arm)
    small = SizeLimits(max_model_params=100)
    fields = {p["field"] for p in suite_size_problems(s, small)}
    assert {f.split(".")[1] for f in fields} == {"cnn", "cnn-bn", "mlp"}
    assert all(f.split(".")[2] == "model" for f in fields)


def test_the_document_is_what_is_signed_and_compared() -> None:
    a, b = parse_suite(suite()), parse_suite(copy.deepcopy(suite()))
    assert a.document() == b.document()
    assert a.document()["workloads"][1]["spec"]["model"]["batchnorm"] is True
    changed = suite()
    changed["workloads"][2]["epochs"] = 2
    assert parse_suite(changed).document() != a.document()


@pytest.mark.parametrize("name", ["suite-digits.yaml", "suite-paper-cifar10.yaml"])
def test_examples_are_valid_suites(name: str) -> None:
    s = load_suite(EXAMPLES / name)
    assert len(s.workloads) >= 3
    assert {tuple(w.spec.arm_names) for w in s.workloads} == {tuple(s.arm_names)}
