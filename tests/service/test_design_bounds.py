"""Bounded designs and names on the real service (``hprobust serve``: real uvicorn, a Ray head,
SQLite MLflow): the probes B1, B4, B5, B6, Q1, Q2, Q7, Q8 and Q9 of issue 21, each sent as
the adversarial pass sent it. A refusal is a 422 naming the field, the rule and the value, and
creates nothing; how long a refusal takes is measured by bench/design_bounds.py."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml

from models import INIT_SCHEMES
from tests.service.conftest import HPROBUST, ServeProcess, tiny_spec
from tests.service.test_input_bounds import auth, experiments

pytestmark = pytest.mark.slow

HUGE = {"low": 1e-300, "high": 1e300, "points_per_decade": 1000}


def post(api: ServeProcess, token: str, spec: dict) -> httpx.Response:
    return httpx.post(f"{api.url}/studies", json=spec, headers=auth(token), timeout=60)


def refused(api: ServeProcess, token: str, spec: dict, field: str) -> dict:
    """POST ``spec``: a 422 whose problem ``field`` is returned; nothing is created."""
    before, listed = experiments(api), httpx.get(f"{api.url}/studies").json()
    r = post(api, token, spec)
    assert r.status_code == 422, r.text[:1000]
    body = r.json()
    problem = next((p for p in body["problems"] if p["field"] == field), None)
    assert problem is not None, body
    assert field in body["detail"]
    assert experiments(api) == before
    assert httpx.get(f"{api.url}/studies").json() == listed
    return problem


def test_b1_a_design_of_2_9e12_grid_points_is_422(api: ServeProcess, api_token: str) -> None:
    """Probe B1: lr and init_scale each {1e-300, 1e300, 1000 per decade}, all 8 inits,
    trials_per_arm 1: a 202 (2 trials asked of 2.9e12 grid points); the driver was killed for
    memory four times, then the study failed. Now a 422 naming the keys and the size."""
    spec = tiny_spec(
        search={"lr": HUGE, "init_scale": HUGE, "init": list(INIT_SCHEMES)},
        sampler="grid",
        trials_per_arm=1,
    )
    problem = refused(api, api_token, spec, "search")
    assert problem["value"] == 600_001 * 600_001 * 8
    assert (
        "(HPROBUST_MAX_DESIGN_POINTS); the design has 2.9e12: lr 600001 points x "
        in (problem["rule"])
    )
    assert "init_scale 600001 points x 8 inits" in problem["rule"]


@pytest.mark.parametrize(
    ("probe", "model", "field", "words"),
    [
        ("B5", {"name": "toy_cnn", "width": 10**9}, "model.width", "has 5.4e19"),
        ("Q1", {"name": "resnet20", "depth": 60002}, "model.depth", "has 180006"),
    ],
)
def test_b5_q1_models_too_large_to_build_are_422(
    api: ServeProcess, api_token: str, probe: str, model: dict, field: str, words: str
) -> None:
    """Probe B5: ``toy_cnn`` width 1e9 was a 500. Probe Q1: ``resnet20`` depth 60002 held the
    POST 25 s. Both are now a 422 from the model's estimated size (nothing is built), naming
    the option, the estimate and the limit."""
    problem = refused(api, api_token, tiny_spec(model=model), field)
    assert problem["value"] == model[field.split(".")[1]]
    assert words in problem["rule"] and "estimated from its options" in problem["rule"]
    assert httpx.get(f"{api.url}/healthz", timeout=30).status_code == 200


def test_q7_a_67_tb_dataset_is_422(api: ServeProcess, api_token: str) -> None:
    """Probe Q7: a synthetic dataset of 10^6 x 64x512x512 passed the pre-run check; 8 trials
    failed allocating 67 TB. Now a 422 naming the dataset, its size and the limit."""
    dataset = {"name": "synthetic", "n_train": 10**6, "n_val": 1, "shape": [64, 512, 512]}
    spec = tiny_spec(dataset=dataset, model={"name": "toy_cnn", "width": 4})
    problem = refused(api, api_token, spec, "dataset")
    assert (
        "(HPROBUST_MAX_DATASET_MB); synthetic has 1000001 samples of shape (64, 512, 512)"
        in (problem["rule"])
    )
    assert "67.1 TB as float32" in problem["rule"]


def test_b4_an_arm_named_with_a_trailing_newline_is_422(api: ServeProcess, api_token: str) -> None:
    """Probe B4: arm ``"sgd\\n"`` beside ``sgd`` was a 202; every trial ran, then the study
    failed at the end on an invalid MLflow metric name."""
    arms = [*tiny_spec()["arms"], {"name": "sgd\n", "optimizer": "sgd"}]
    problem = refused(api, api_token, tiny_spec(arms=arms), "arms.2.name")
    assert problem["value"] == "sgd\\n" and "U+000A" in problem["rule"]


@pytest.mark.parametrize("char", ["\u202e", "\u200b", "\x85", "\u2066"])
def test_q9_names_with_bidi_zero_width_or_c1_characters_are_422(
    api: ServeProcess, api_token: str, char: str
) -> None:
    """Probe Q9: names with U+202E, zero-width and C1 control characters were accepted. Now a
    422 that names the character and never echoes it raw."""
    before = experiments(api)
    r = post(api, api_token, tiny_spec(name=f"lab{char}report"))
    assert r.status_code == 422, r.text
    (problem,) = r.json()["problems"]
    assert problem["field"] == "name" and f"U+{ord(char):04X}" in problem["rule"]
    assert char not in r.text
    assert experiments(api) == before


def _submit(api: ServeProcess, token: str, spec: dict, tmp_path: Path):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return subprocess.run(
        [HPROBUST, "submit", str(path), "--url", api.url, "--token", token],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "500"},
    )


def test_b6_hprobust_submit_prints_markup_in_a_key_as_typed(
    api: ServeProcess, api_token: str, tmp_path: Path
) -> None:
    """Probe B6 through the service: an unknown key ``"[/x]"`` crashed ``hprobust submit``
    with rich's MarkupError traceback, and ``[link=...]`` markup in a key was interpreted. Now
    the service's 422 is printed as text: both keys as typed, no traceback, exit 1 (the code
    of an API error), nothing created."""
    before = experiments(api)
    link = "[link=https://evil.example]click[/link]"
    result = _submit(api, api_token, {**tiny_spec(), "[/x]": 1, link: 2}, tmp_path)
    out = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 1, out
    assert "Traceback" not in out and "MarkupError" not in out
    assert "error: HTTP 422: the spec breaks these rules:" in out
    assert "[/x]: is not a known key" in out and f"{link}: is not a known key" in out
    assert experiments(api) == before


def test_q2_q8_an_accepted_study_is_capped_and_its_name_is_text_in_mlflow(
    api: ServeProcess, api_token: str
) -> None:
    """Probe Q2: 12 trials at once on a 2-CPU Ray head, a quarter of a CPU each: the 202 warns
    that at most 2 run at a time. Probe Q8: a study name with Markdown put a working external
    link and a remote image into the MLflow run description; the recorded description now
    renders with neither. (The study is cancelled at once.)"""
    from markdown_it import MarkdownIt

    from study.records.store import StudyStore

    name = "[click](https://evil.example/x) ![pixel](https://evil.example/p.png)"
    spec = tiny_spec(name=name, resources={"cpus_per_trial": 0.25, "max_concurrent_trials": 12})
    r = post(api, api_token, spec)
    assert r.status_code == 202, r.text
    created = r.json()
    try:
        warnings = created["warnings"]
        assert any(
            w.startswith("resources.max_concurrent_trials 12 is more than the Ray cluster")
            and w.endswith("so at most 2 trials run at a time")
            for w in warnings
        ), warnings
        store = StudyStore(f"sqlite:///{api.data_dir / 'mlflow.db'}")
        run = store.client.get_run(store.study_run_id(created["id"]))
        html = MarkdownIt("commonmark").enable("table").render(run.data.tags["mlflow.note.content"])
        assert "<img" not in html and not re.search(r"<a [^>]*evil", html)
        assert "[click](https://evil.example/x)" in html
        assert httpx.get(f"{api.url}/studies/{created['id']}").json()["name"] == name
    finally:
        httpx.post(f"{api.url}/studies/{created['id']}/cancel", headers=auth(api_token), timeout=60)
