"""docs/architecture.md names only what exists: every file or folder it names, every name it
gives in parentheses after a file (``study/records/store.py`` (``StudyStore.create_study``)), and
every dotted ``study.x.y`` name. A move or a rename that forgets the doc fails here."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
PACKAGES = ("models", "study", "service", "hprobust")
IDENT = re.compile(r"^[A-Za-z_][\w.]*$")
PACKAGE = "(?:" + "|".join(PACKAGES) + ")"


def _words(path: Path) -> set[str]:
    return set(re.findall(r"\w+", path.read_text()))


def _missing_names(path: Path, names: list[str]) -> list[str]:
    words = _words(path)
    return [
        f"{path.relative_to(ROOT)}: {name}"
        for name in names
        if IDENT.match(name) and not set(name.split(".")) <= words
    ]


def test_every_path_the_doc_names_exists() -> None:
    text = DOC.read_text()
    paths = set(re.findall(rf"`({PACKAGE}/[\w/]*(?:\.py)?)`", text))
    assert len(paths) > 20, paths  # the pattern still finds the doc's paths
    assert sorted(p for p in paths if not (ROOT / p).exists()) == []


def test_every_name_given_after_a_file_is_in_that_file() -> None:
    text = DOC.read_text()
    found = re.findall(r"`([\w/]+\.py)` \(([^)]*)\)", text)
    assert len(found) > 10, found
    missing = []
    for path, inside in found:
        missing += _missing_names(ROOT / path, re.findall(r"`([^`]+)`", inside))
    assert missing == []


def test_every_dotted_module_name_resolves() -> None:
    text = DOC.read_text()
    names = set(re.findall(rf"`({PACKAGE}\.[\w.]+)`", text))
    assert names, "no dotted names found"
    missing = []
    for name in sorted(names):
        parts = name.split(".")
        for cut in range(len(parts), 0, -1):
            base = ROOT.joinpath(*parts[:cut])
            module = base.with_suffix(".py") if base.with_suffix(".py").exists() else base
            if module.is_dir():
                module = module / "__init__.py"
            if module.exists():
                missing += _missing_names(
                    module, [".".join(parts[cut:])] if cut < len(parts) else []
                )
                break
        else:
            missing.append(name)
    assert missing == []
