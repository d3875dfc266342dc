"""Layers point one way: ``models <- study <- service <- hprobust`` (the CLI's root command).

An AST scan of every module of the four packages finds each import, at module level or inside
a function (a lazy import is a dependency too; so is one under ``TYPE_CHECKING`` and an
``importlib.import_module("...")``/``__import__("...")`` of a constant name), resolves relative
imports against the module's package, and fails on one that names a higher layer. Third-party
and standard-library imports are not layers and pass.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Lower number = lower layer; a module may import its own layer and the ones below.
LAYERS = {"models": 0, "study": 1, "service": 2, "hprobust": 3}
DYNAMIC = {"import_module", "__import__"}


def module_name(path: Path, root: Path = ROOT) -> str:
    """``study/cli/run.py`` -> ``study.cli.run``; ``study/cli/__init__.py`` -> ``study.cli``."""
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(source: str, module: str, *, is_package: bool) -> Iterator[tuple[int, str]]:
    """``(line, absolute module name)`` for every import of ``source``, the module ``module``.

    ``from . import x`` resolves to the module's package (``from .a import b`` to
    ``package.a``); ``from x import y`` yields ``x`` (enough to know ``y``'s layer).
    """
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                yield node.lineno, node.module or ""
                continue
            base = package.split(".")
            if node.level > 1:
                base = base[: -(node.level - 1)]
            yield node.lineno, ".".join([*base, *([node.module] if node.module else [])])
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            first = node.args[0]
            if name in DYNAMIC and isinstance(first, ast.Constant) and isinstance(first.value, str):
                yield node.lineno, first.value


def layer_of(name: str) -> int | None:
    """The layer of a module name, or None for one outside the project's packages."""
    return LAYERS.get(name.split(".")[0])


def upward_imports(source: str, module: str, *, is_package: bool = False) -> list[str]:
    """``"line N: module imports name"`` for each import of a higher layer than ``module``'s."""
    own = layer_of(module)
    assert own is not None, module
    return [
        f"line {line}: {module} imports {name}"
        for line, name in imported_names(source, module, is_package=is_package)
        if (layer := layer_of(name)) is not None and layer > own
    ]


def scan(root: Path = ROOT) -> list[str]:
    """Every upward import in the project's packages under ``root``."""
    found = []
    for package in LAYERS:
        for path in sorted((root / package).rglob("*.py")):
            module = module_name(path, root)
            for hit in upward_imports(
                path.read_text(), module, is_package=path.name == "__init__.py"
            ):
                found.append(f"{path.relative_to(root)} {hit}")
    return found


def test_no_module_imports_a_higher_layer() -> None:
    assert scan() == []


def test_every_layer_is_scanned() -> None:
    """A package renamed or moved would otherwise pass by scanning nothing."""
    for package in LAYERS:
        assert (ROOT / package / "__init__.py").is_file(), package
        assert len(list((ROOT / package).rglob("*.py"))) >= 2, package


# The scanner itself, on small snippets.


@pytest.mark.parametrize(
    ("source", "module", "expected"),
    [
        (
            "import service.stack\n",
            "study.cli.run",
            ["line 1: study.cli.run imports service.stack"],
        ),
        ("from service import stack\n", "study.x", ["line 1: study.x imports service"]),
        (
            "from hprobust.cli import app\n",
            "service.cli",
            ["line 1: service.cli imports hprobust.cli"],
        ),
        ("import study.spec\n", "models.options", ["line 1: models.options imports study.spec"]),
        (  # a lazy import inside a function
            "def ui():\n    x = 1\n    from service.stack import http_ok\n",
            "study.cli.run",
            ["line 3: study.cli.run imports service.stack"],
        ),
        (  # under TYPE_CHECKING
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import service.jobs\n",
            "study.records",
            ["line 3: study.records imports service.jobs"],
        ),
        (  # a dynamic import of a constant name
            "import importlib\ndef f():\n    return importlib.import_module('service.main')\n",
            "study.driver",
            ["line 3: study.driver imports service.main"],
        ),
        ("__import__('hprobust')\n", "study.x", ["line 1: study.x imports hprobust"]),
    ],
)
def test_the_scanner_finds_an_upward_import(source: str, module: str, expected: list[str]) -> None:
    assert upward_imports(source, module) == expected


@pytest.mark.parametrize(
    ("source", "module"),
    [
        ("import torch\nimport typer\nfrom pathlib import Path\n", "models.toy"),  # third party
        ("import study.spec\nfrom models import build\n", "service.main"),  # downward
        ("from study.cli import app\n", "study.cli.run"),  # own layer
        ("from service.cli import app\nimport study, models\n", "hprobust.cli"),  # the top
        ("import services\nimport studying\n", "models.x"),  # names that only start alike
    ],
)
def test_the_scanner_passes_imports_of_the_same_or_a_lower_layer(source: str, module: str) -> None:
    assert upward_imports(source, module) == []


def test_relative_imports_are_resolved_against_the_package() -> None:
    names = lambda src, mod, pkg=False: [  # noqa: E731
        n for _, n in imported_names(src, mod, is_package=pkg)
    ]
    assert names("from . import stack\n", "service.cli.ui") == ["service.cli"]
    assert names("from . import serve\n", "service.cli", pkg=True) == ["service.cli"]
    assert names("from .tables import render\n", "study.cli.run") == ["study.cli.tables"]
    assert names("from ..records import X\n", "study.cli.run") == ["study.records"]
    assert names("from ...service import x\n", "study.cli.run") == ["service"]
    # resolved names get their layer: a relative import that climbs out of study is caught
    assert upward_imports("from ...service import x\n", "study.cli.run") == [
        "line 1: study.cli.run imports service"
    ]


def test_the_scan_reads_files_and_names_them(tmp_path: Path) -> None:
    for package in LAYERS:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "study" / "cli").mkdir()
    (tmp_path / "study" / "cli" / "__init__.py").write_text("from . import serve\n")
    (tmp_path / "study" / "cli" / "serve.py").write_text(
        "import typer\n\ndef serve():\n    from service.launcher import serve as run\n"
    )
    (tmp_path / "models" / "net.py").write_text("from ..study import spec\n")
    assert scan(tmp_path) == [
        "models/net.py line 1: models.net imports study",
        "study/cli/serve.py line 4: study.cli.serve imports service.launcher",
    ]
