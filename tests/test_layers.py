"""The import graph of the project's four packages: layers point one way
(``models <- study <- service <- hprobust``, the CLI's root command at the top), no module takes
part in an import cycle, no module imports another's private name, and no import hides its
target.

An AST scan of every module finds each import, at module level or inside a function (a lazy
import is a dependency too; so is one under ``TYPE_CHECKING`` and an
``importlib.import_module("...")``/``__import__("...")`` of a constant name, or of a name
looked up in a module-level table of constant names), resolves relative imports against the
module's package, and resolves ``from package import name`` to the submodule ``package.name``
when there is one. Third-party and standard-library imports are not layers and pass.
An edge goes to the module named, not to the packages above it: importing ``a.b.c`` runs
``a/__init__.py`` too, which is why the packages' ``__init__`` files import only what lies
below them (the rooms of ``study/`` import nothing at all).
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


def _constant_tables(tree: ast.Module) -> dict[str, list[str]]:
    """Module-level ``NAME = {key: "module", ...}`` tables whose values are all constant text."""
    tables = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict):
            values = node.value.values
            if values and all(
                isinstance(v, ast.Constant) and isinstance(v.value, str) for v in values
            ):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        tables[target.id] = [v.value for v in values]  # type: ignore[union-attr]
    return tables


def import_statements(
    source: str, module: str, *, is_package: bool
) -> Iterator[tuple[int, str, tuple[str, ...]]]:
    """``(line, absolute module name, names imported from it)`` for every import of
    ``source``, the module ``module`` (names: those of ``from m import a, b``, else empty).

    ``from . import x`` resolves to the module's package (``from .a import b`` to
    ``package.a``). A dynamic import of a computed name yields the name ``"?"`` (it hides its
    target), unless it looks its name up in a module-level table of constant names: then it
    yields every name of the table.
    """
    package = module if is_package else module.rpartition(".")[0]
    tree = ast.parse(source)
    tables = _constant_tables(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, ()
        elif isinstance(node, ast.ImportFrom):
            names = tuple(alias.name for alias in node.names)
            if node.level == 0:
                yield node.lineno, node.module or "", names
                continue
            base = package.split(".")
            if node.level > 1:
                base = base[: -(node.level - 1)]
            yield node.lineno, ".".join([*base, *([node.module] if node.module else [])]), names
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name not in DYNAMIC:
                continue
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                yield node.lineno, first.value, ()
            elif (
                isinstance(first, ast.Subscript)
                and isinstance(first.value, ast.Name)
                and first.value.id in tables
            ):
                for target in tables[first.value.id]:
                    yield node.lineno, target, ()
            else:
                yield node.lineno, "?", ()


def imported_names(source: str, module: str, *, is_package: bool) -> Iterator[tuple[int, str]]:
    """``(line, absolute module name)`` for every import of ``source``, the module ``module``;
    ``from x import y`` yields ``x`` (enough to know ``y``'s layer)."""
    for line, name, _ in import_statements(source, module, is_package=is_package):
        yield line, name


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


# ---- the import graph: no cycles, no private names across modules, nothing hidden ----------


def project_modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the four packages: dotted name -> file."""
    return {
        module_name(path, root): path
        for package in LAYERS
        for path in sorted((root / package).rglob("*.py"))
    }


def dependencies(
    source: str, module: str, modules: set[str], *, is_package: bool = False
) -> set[str]:
    """The project modules ``module`` imports (at any level; itself left out).

    ``from p import a`` depends on ``p.a`` when that is a module, else on ``p``; ``import
    p.q.r`` on ``p.q.r``. A name outside ``modules`` (third party, the standard library) is
    no dependency.
    """
    found = set()
    for _, name, names in import_statements(source, module, is_package=is_package):
        targets = [f"{name}.{n}" for n in names if f"{name}.{n}" in modules]
        if len(targets) < len(names) or not names:
            targets.append(name)
        found.update(t for t in targets if t in modules and t != module)
    return found


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """module -> the project modules it imports, for every module under ``root``."""
    modules = project_modules(root)
    names = set(modules)
    return {
        module: dependencies(path.read_text(), module, names, is_package=path.name == "__init__.py")
        for module, path in modules.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles of ``graph``: every strongly connected set of two or more modules
    (Tarjan's algorithm, iterative), each sorted, the list sorted. A module importing itself
    is no cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return sorted(found)


def private_imports(source: str, module: str, *, is_package: bool = False) -> list[str]:
    """``"line N: module imports other._name"`` for each private name (one leading
    underscore) ``module`` takes from another project module."""
    return [
        f"line {line}: {module} imports {name}.{item}"
        for line, name, names in import_statements(source, module, is_package=is_package)
        for item in names
        if layer_of(name) is not None
        and name != module
        and item.startswith("_")
        and not item.startswith("__")
    ]


def hidden_imports(source: str, module: str, *, is_package: bool = False) -> list[str]:
    """``"line N: module"`` for each dynamic import whose target the scan cannot read."""
    return [
        f"line {line}: {module}"
        for line, name, _ in import_statements(source, module, is_package=is_package)
        if name == "?"
    ]


def test_no_import_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 100 and sum(map(len, graph.values())) > 250  # the scan sees the code
    assert cycles(graph) == []


def test_no_private_name_crosses_modules() -> None:
    found = []
    for module, path in project_modules().items():
        found += private_imports(path.read_text(), module, is_package=path.name == "__init__.py")
    assert found == []


def test_no_import_hides_its_target() -> None:
    found = []
    for module, path in project_modules().items():
        found += hidden_imports(path.read_text(), module, is_package=path.name == "__init__.py")
    assert found == []


# The cycle finder itself, on small made-up graphs and modules.


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, [["a", "b", "c"]]),
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b", "c"}, "b": {"d"}, "c": {"d"}, "d": set()}, []),  # a diamond
        ({"a": {"a"}}, []),  # itself
        (  # two separate cycles, and a module that leads into one without being in it
            {"x": {"a"}, "a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"e"}, "e": {"c"}},
            [["a", "b"], ["c", "d", "e"]],
        ),
        (  # a cycle reached late in the walk, through a long chain
            {"m0": {"m1"}, "m1": {"m2"}, "m2": {"m3"}, "m3": {"m4"}, "m4": {"m2"}},
            [["m2", "m3", "m4"]],
        ),
        (  # two cycles sharing a module are one strongly connected set
            {"a": {"b", "c"}, "b": {"a"}, "c": {"a"}},
            [["a", "b", "c"]],
        ),
        ({"a": {"b"}, "b": {"c"}, "c": {"b"}, "d": {"c"}}, [["b", "c"]]),
    ],
)
def test_the_cycle_finder_finds_exactly_the_cycles(
    graph: dict[str, set[str]], expected: list[list[str]]
) -> None:
    assert cycles(graph) == expected


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for package in LAYERS:
        (tmp_path / package).mkdir(exist_ok=True)
        (tmp_path / package / "__init__.py").touch()
    return tmp_path


def test_a_lazy_import_closes_a_cycle(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "study/spec.py": "from study.data import info\n",
            "study/data.py": "def info():\n    from study.spec import Spec\n",
        },
    )
    assert cycles(import_graph(root)) == [["study.data", "study.spec"]]


def test_imports_under_type_checking_and_of_constant_names_count(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "study/a.py": "import typing\nif typing.TYPE_CHECKING:\n    import study.b\n",
            "study/b.py": "import importlib\n\ndef f():\n    importlib.import_module('study.c')\n",
            "study/c.py": "_LAZY = {'X': 'study.a'}\n\ndef g(n):\n"
            "    import importlib\n    return importlib.import_module(_LAZY[n])\n",
        },
    )
    assert cycles(import_graph(root)) == [["study.a", "study.b", "study.c"]]


def test_from_package_import_module_depends_on_the_submodule(tmp_path: Path) -> None:
    """``from study.spec import base`` depends on study.spec.base, not on the package: a
    package whose submodule is imported is no cycle; ``from study.spec import X`` (a name of
    its __init__) is a dependency on the package."""
    root = _tree(
        tmp_path,
        {
            "study/spec/__init__.py": "X = 1\n",
            "study/spec/base.py": "",
            "study/spec/model.py": "from study.data import rows\nfrom study.spec import base\n",
            "study/data/__init__.py": "",
            "study/data/rows.py": "from study.spec import base\nfrom ..spec import X\n",
        },
    )
    graph = import_graph(root)
    assert graph["study.spec.model"] == {"study.data.rows", "study.spec.base"}
    assert graph["study.data.rows"] == {"study.spec.base", "study.spec"}
    assert cycles(graph) == []


def test_private_names_across_modules_are_found() -> None:
    source = (
        "from study.train import _resolve_device, build_model\n"
        "from study.insgd import __doc__, _REF_EPS\n"
        "from ._x import _y\n"
        "from collections import _private_is_not_ours\n"
    )
    assert private_imports(source, "study.pack") == [
        "line 1: study.pack imports study.train._resolve_device",
        "line 2: study.pack imports study.insgd._REF_EPS",
        "line 3: study.pack imports study._x._y",
    ]
    assert private_imports("from study.a import public\n", "study.b") == []


def test_a_computed_import_is_reported_as_hidden() -> None:
    source = (
        "import importlib\n"
        "def attr(module, name):\n"
        "    return getattr(importlib.import_module(module), name)\n"
        "TABLE = {'a': 'study.a'}\n"
        "def ok(n):\n"
        "    return importlib.import_module(TABLE[n])\n"
    )
    assert hidden_imports(source, "study.spec") == ["line 3: study.spec"]


def test_the_rooms_of_study_import_nothing() -> None:
    """``import study.spec.base`` runs ``study/spec/__init__.py`` first: a room's package file
    that imported its modules would put every module of the room on that path (and could
    close a cycle the graph does not show). Each room's ``__init__`` is its map, in words."""
    rooms = [p for p in sorted((ROOT / "study").iterdir()) if (p / "__init__.py").is_file()]
    assert {p.name for p in rooms} >= {"spec", "optim", "data", "train", "tune", "records"}
    for room in rooms:
        if room.name in ("analysis", "cli"):  # their package files export a light API
            continue
        source = (room / "__init__.py").read_text()
        assert list(imported_names(source, f"study.{room.name}", is_package=True)) == [], room
