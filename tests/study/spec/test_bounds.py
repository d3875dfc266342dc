"""A study's size judged from its spec (issue 21, item 1): the design's points, the model's
parameters and activations, the dataset; refused above fixed ceilings by the spec itself and
above the service's limits (settings) by ``service.studies.limit_problems`` and ``hprobust
run``, with the same words. Probes B1, B5, Q1 and Q7; their POSTs to a real service are in
tests/service/test_design_bounds.py."""

from __future__ import annotations

import copy
import doctest
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import study.spec.bounds
from models import INIT_SCHEMES
from study.errors import ConfigError, SpecError
from study.spec.bounds import (
    SizeLimits,
    design_points,
    model_size,
    size_problems,
    trial_memory_bytes,
)
from study.spec.model_check import MAX_MODEL_MODULES, MAX_MODEL_PARAMS
from study.spec.study_spec import parse_spec

HPROBUST = str(Path(sys.executable).parent / "hprobust")

GOOD = {
    "name": "bounds",
    "dataset": "digits",
    "model": {"name": "mlp", "hidden": [8]},
    "arms": [{"name": "sgd", "optimizer": "sgd"}, {"name": "insgd", "optimizer": "insgd"}],
    "search": {"lr": {"low": 1e-2, "high": 1.0}, "init": ["normal"]},
    "trials_per_arm": 2,
}
HUGE = {"low": 1e-300, "high": 1e300, "points_per_decade": 1000}
#: Probe B1 as it was sent.
B1 = {
    **GOOD,
    "search": {"lr": HUGE, "init_scale": HUGE, "init": list(INIT_SCHEMES)},
    "trials_per_arm": 1,
    "seeds": 1,  # the probe asked 2 trials: 2 arms x 1 point x 1 seed
}
#: Probe Q7: 10**6 samples of 64x512x512.
Q7 = {
    **GOOD,
    "dataset": {"name": "synthetic", "n_train": 10**6, "n_val": 10**6, "shape": [64, 512, 512]},
    "model": {"name": "toy_cnn", "width": 4},
}


def test_doctests():
    assert doctest.testmod(study.spec.bounds).failed == 0


def test_the_spec_docs_give_the_limits_the_code_has():
    """docs/spec.md (from study_spec's docstring) quotes the ceilings and the defaults."""
    import study.spec.study_spec

    doc = " ".join(study.spec.study_spec.__doc__.split())
    limits = SizeLimits()
    for text in (
        f"{MAX_MODEL_MODULES:,} modules",
        f"HPROBUST_MAX_DESIGN_POINTS`` (default {limits.max_design_points:,})",
        f"HPROBUST_MAX_MODEL_PARAMS`` ({limits.max_model_params:,})",
        f"HPROBUST_MAX_ACTIVATION_MB`` ({limits.max_activation_mb:g} MB per sample)",
        f"HPROBUST_MAX_DATASET_MB`` ({limits.max_dataset_mb:,g} MB)",
    ):
        assert text in doc, text
    assert MAX_MODEL_PARAMS == 10**11 and "10^11 parameters" in doc


def test_the_b1_design_is_refused_by_its_size():
    """Probe B1: 2 trials asked of a 2.9e12-point grid were a 202, and the driver was killed
    for memory four times. Its size is computed from the spec (closed form) and refused,
    naming the keys and the size."""
    spec = parse_spec(B1)
    assert spec.grid_size == 600_001 * 600_001 * 8 and spec.total_trials == 2
    assert design_points(spec) == (
        600_001 * 600_001 * 8,
        "lr 600001 points x init_scale 600001 points x 8 inits",
    )
    (problem,) = size_problems(spec, SizeLimits())
    assert problem["field"] == "search" and problem["value"] == 2_880_009_600_008
    assert problem["rule"].startswith(
        "must give at most 1000000 points per arm (HPROBUST_MAX_DESIGN_POINTS); the design has "
        "2.9e12: lr 600001 points x init_scale 600001 points x 8 inits"
    )
    assert size_problems(parse_spec(GOOD), SizeLimits()) == []


def test_other_samplers_count_trials_per_arm():
    spec = parse_spec({**GOOD, "sampler": "qmc", "trials_per_arm": 500})
    assert design_points(spec)[0] == 500
    (problem,) = size_problems(spec, SizeLimits(max_design_points=100))
    assert problem["field"] == "trials_per_arm" and problem["value"] == 500


def test_b5_a_model_too_large_to_build_is_a_spec_error():
    """Probe B5: ``model: {name: toy_cnn, width: 1000000000}`` was a 500 (building it on the
    meta device overflowed). Now the spec refuses it from its estimate, naming the option,
    the estimate and the ceiling; nothing is built."""
    with pytest.raises(SpecError) as info:
        parse_spec({**GOOD, "model": {"name": "toy_cnn", "width": 10**9}})
    (problem,) = info.value.problems
    assert problem["field"] == "model.width" and problem["value"] == 10**9
    assert "at most 1e11 parameters" in problem["rule"] and "has 5.4e19" in problem["rule"]


def test_q1_a_model_too_deep_to_build_is_a_spec_error():
    """Probe Q1: ``resnet20`` with ``depth: 60002`` held the POST 25 s (180,006 modules built
    on the meta device). Now refused from its estimate before anything is built."""
    with pytest.raises(SpecError) as info:
        parse_spec({**GOOD, "model": {"name": "resnet20", "depth": 60002}})
    (problem,) = info.value.problems
    assert problem["field"] == "model.depth" and problem["value"] == 60002
    assert f"at most {MAX_MODEL_MODULES} modules" in problem["rule"] and "180006" in problem["rule"]
    # the deepest CIFAR ResNet of the paper (1202 layers, 3,606 modules) is still a spec
    assert parse_spec({**GOOD, "model": {"name": "resnet20", "depth": 1202}})
    assert MAX_MODEL_PARAMS == 10**11


def test_model_limits_are_settings_below_the_ceilings():
    """The service's own limits: parameters and activations per sample, naming the option the
    spec set, the estimate and the variable."""
    spec = parse_spec({**GOOD, "model": {"name": "resnet20", "depth": 110}})
    size = model_size(spec.model, spec.dataset)
    assert size_problems(spec, SizeLimits()) == []
    problems = size_problems(
        spec, SizeLimits(max_model_params=size.params - 1, max_activation_mb=0.5)
    )
    assert [p["field"] for p in problems] == ["model.depth", "model.depth"]
    assert (
        "(HPROBUST_MAX_MODEL_PARAMS); resnet20 with depth 110 on digits inputs (1, 8, 8)"
        in (problems[0]["rule"])
    )
    assert "(HPROBUST_MAX_ACTIVATION_MB)" in problems[1]["rule"]
    assert "per batch of 128" in problems[1]["rule"]
    # a model sized by the dataset alone names model.name
    wide = parse_spec(
        {**GOOD, "dataset": {"name": "synthetic", "shape": [3, 64, 64]}, "model": {"name": "mlp"}}
    )
    (problem,) = size_problems(wide, SizeLimits(max_model_params=1000))
    assert problem["field"] == "model.name" and problem["value"] == "mlp"


def test_q7_a_dataset_too_large_to_load_is_refused():
    """Probe Q7: a synthetic dataset of 10**6 x 64x512x512 passed the pre-run check, then 8
    trials failed allocating 67 TB each. Its size is known from the spec."""
    spec = parse_spec(Q7)
    (problem,) = size_problems(spec, SizeLimits())
    assert problem["field"] == "dataset"
    assert problem["rule"] == (
        "must be at most 4096 MB in memory (HPROBUST_MAX_DATASET_MB); synthetic has 2000000 "
        "samples of shape (64, 512, 512): 134 TB as float32, loaded by every trial"
    )


@pytest.mark.parametrize(
    ("dataset", "samples"),
    [("digits", 1797), ({"name": "synthetic", "n_train": 30, "n_val": 7, "shape": [2, 5, 6]}, 37)],
)
def test_dataset_samples_are_what_is_loaded(dataset, samples):
    from study.data.loader import load_dataset
    from study.data.registry import dataset_info

    info = dataset_info(dataset) if isinstance(dataset, str) else dataset_info(**dataset)
    assert info.samples == samples
    name, options = (dataset, {}) if isinstance(dataset, str) else (dataset["name"], dataset)
    options = {k: v for k, v in options.items() if k != "name"}
    loaded = load_dataset(name, device="cpu", **options)
    assert len(loaded.x_train) + len(loaded.x_val) == samples
    assert info.input_bytes == 4 * (loaded.x_train.numel() + loaded.x_val.numel())


def test_limits_from_the_environment():
    assert SizeLimits.from_env({}) == SizeLimits()
    got = SizeLimits.from_env(
        {"HPROBUST_MAX_DESIGN_POINTS": "10", "HPROBUST_MAX_DATASET_MB": "1.5"}
    )
    assert (got.max_design_points, got.max_dataset_mb) == (10, 1.5)
    for bad in ("x", "0", "-3", "nan", "2.5"):
        with pytest.raises(ConfigError, match="HPROBUST_MAX_DESIGN_POINTS must be a number > 0"):
            SizeLimits.from_env({"HPROBUST_MAX_DESIGN_POINTS": bad})


def test_the_service_reads_the_same_variables(monkeypatch):
    """Settings' defaults are SizeLimits', and the same HPROBUST_* variables set both."""
    from service.core.config import Settings
    from service.studies import limit_problems

    assert Settings().size_limits() == SizeLimits()
    monkeypatch.setenv("HPROBUST_MAX_DESIGN_POINTS", "7")
    monkeypatch.setenv("HPROBUST_MAX_MODEL_PARAMS", "500")  # the mlp has 610
    settings = Settings()
    assert settings.size_limits() == SizeLimits.from_env()
    problems = limit_problems(parse_spec(B1), settings)
    assert [p["field"] for p in problems] == ["search", "model.hidden"]
    assert problems == size_problems(parse_spec(B1), SizeLimits.from_env())


def test_trial_memory_counts_process_data_model_and_batch():
    spec = parse_spec(GOOD)
    size = model_size(spec.model, spec.dataset)
    data = 4 * 1797 * 64
    assert trial_memory_bytes(spec) == (
        study.spec.bounds.TRIAL_PROCESS_BYTES
        + 2 * data
        + 16 * size.params
        + 2 * size.activation_bytes * spec.batch_size
    )


def _run(tmp_path: Path, data: dict, **env: str) -> subprocess.CompletedProcess:
    import os

    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(json.loads(json.dumps(data))))  # no shared nodes: no anchors
    environ = {k: v for k, v in os.environ.items() if not k.startswith("HPROBUST_")}
    return subprocess.run(
        [HPROBUST, "run", str(spec), "--data-dir", str(tmp_path / "store")],
        capture_output=True,
        text=True,
        env={**environ, **env, "COLUMNS": "500"},
        timeout=300,
    )


@pytest.mark.parametrize(("probe", "data"), [("B1", B1), ("Q7", Q7)])
def test_hprobust_run_refuses_with_the_services_words(tmp_path, probe, data):
    """B1 and Q7 without a service: ``hprobust run`` exits 2 with the same problems the API
    gives (the same HPROBUST_* limits), before Ray starts or anything is recorded."""
    result = _run(tmp_path, data)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    for problem in size_problems(parse_spec(data), SizeLimits()):
        assert f"{problem['field']} {problem['rule']}" in " ".join(result.stderr.split())
    assert not (tmp_path / "store").exists()


def test_hprobust_run_reads_the_limits_from_the_environment(tmp_path):
    small = copy.deepcopy(GOOD)
    result = _run(tmp_path, small, HPROBUST_MAX_DESIGN_POINTS="1")
    assert result.returncode == 2 and "(HPROBUST_MAX_DESIGN_POINTS)" in result.stderr
    result = _run(tmp_path, small, HPROBUST_MAX_DATASET_MB="lots")
    assert result.returncode == 2
    assert "HPROBUST_MAX_DATASET_MB must be a number > 0, got 'lots'" in result.stderr
    assert not (tmp_path / "store").exists()
