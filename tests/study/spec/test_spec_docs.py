"""docs/spec.md is generated from the code (``make docs``) and must be current."""

from __future__ import annotations

import pytest

from study.optim.hparams import RULES
from study.optim.registry import OPTIMIZERS, optimizer_hparams
from study.spec.docs import DOC_PATH, main, render
from study.spec.study_spec import StudySpec


def test_docs_spec_md_is_current():
    """Fails whenever the spec, an optimizer, a model or a dataset changed without
    ``make docs`` (python -m study.spec.docs) being run: commit the regenerated file."""
    assert DOC_PATH.exists(), "docs/spec.md is missing: run `make docs`"
    if DOC_PATH.read_text() != render():
        pytest.fail("docs/spec.md is stale: run `make docs` and commit docs/spec.md")


def test_every_key_optimizer_hyperparameter_and_model_is_documented():
    import models

    text = render()
    schema = StudySpec.model_json_schema()
    for key in schema["properties"]:
        assert f"| `{key}` |" in text, key
    for name, node in schema["$defs"].items():
        assert f"### {name}\n" in text, name
        for key in node.get("properties", {}):
            assert f"| `{key}` |" in text, (name, key)
    for name in OPTIMIZERS:
        section = text.split(f"### `{name}`\n", 1)[1].split("\n### ", 1)[0]
        for key in optimizer_hparams(name):
            assert f"| `{key}` |" in section, (name, key)
            assert RULES[key][1] in section or key == "eps", (name, key)
    for name in models.MODELS:
        row = text.split(f"| `{name}` |", 1)[1].split("\n", 1)[0]
        for option in models.model_options(name):
            assert f"`{option}`:" in row, (name, option)


def test_check_mode_reports_a_stale_file(tmp_path, capsys):
    stale = tmp_path / "spec.md"
    stale.write_text("old\n")
    assert main(["--check", "-o", str(stale)]) == 1
    assert "is stale: run `make docs`" in capsys.readouterr().err
    assert main(["-o", str(stale)]) == 0
    assert main(["--check", "-o", str(stale)]) == 0
