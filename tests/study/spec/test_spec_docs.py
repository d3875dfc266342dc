"""docs/spec.md is generated from the code (``make docs``) and must be current."""

from __future__ import annotations

import pytest

from study.optim.hparams import RULES
from study.optim.registry import OPTIMIZERS, optimizer_hparams
from study.spec.docs import DOC_PATH, README_PATH, main, readme_blocks, render, render_readme
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


def test_the_readmes_tables_are_current():
    """The README's optimizer, model and dataset tables are the registries' (``make docs``)."""
    text = README_PATH.read_text()
    if render_readme(text) != text:
        pytest.fail("README.md's generated tables are stale: run `make docs` and commit it")


def test_the_readmes_tables_hold_every_registry_entry():
    import models
    from study.data.registry import DATASETS

    blocks = readme_blocks()
    for block, names in (("optimizers", OPTIMIZERS), ("models", models.MODELS),
                         ("datasets", DATASETS)):  # fmt: skip
        rows = [line.split(" | ")[0].removeprefix("| ") for line in blocks[block][2:]]
        assert rows == [f"`{name}`" for name in names], block
    row = next(line for line in blocks["optimizers"] if line.startswith("| `adamw` |"))
    assert "`weight_decay` (`0.01`)" in row  # the registry's default, not torch's Adam's
    row = next(line for line in blocks["datasets"] if line.startswith("| `cifar100` |"))
    assert row.startswith("| `cifar100` | 100 | 3×32×32 | `augment` (`true`)")


def test_render_readme_replaces_only_the_blocks_and_needs_their_markers():
    from study.spec.docs import BEGIN, END

    text = "intro\n"
    for name in readme_blocks():
        text += f"{BEGIN.format(name=name)}\nold rows\n{END.format(name=name)}\nprose {name}\n"
    new = render_readme(text)
    assert "old rows" not in new and new.startswith("intro\n")
    assert all(f"prose {name}" in new for name in readme_blocks())
    assert render_readme(new) == new
    with pytest.raises(ValueError, match=r"README\.md lacks the lines"):
        render_readme("no markers\n")


def test_check_mode_reports_a_stale_file(tmp_path, capsys):
    stale = tmp_path / "spec.md"
    stale.write_text("old\n")
    readme = tmp_path / "README.md"
    readme.write_text(README_PATH.read_text())
    args = ["-o", str(stale), "--readme", str(readme)]
    assert main(["--check", *args]) == 1
    assert "spec.md is stale: run `make docs`" in capsys.readouterr().err
    assert main(args) == 0
    assert main(["--check", *args]) == 0
    readme.write_text(readme.read_text().replace("| `sgd` |", "| `sgd` | stale |", 1))
    assert main(["--check", *args]) == 1
    assert "README.md is stale" in capsys.readouterr().err
