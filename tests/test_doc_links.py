"""Every pointer into the docs resolves: a ``docs/<page>.md`` or ``docs/<page>.md#section``
named in code, tests or docs, and every relative Markdown link of the docs and the READMEs,
names a page that exists and a section heading it has. Nothing points outside the repository
(the design is docs/design.md)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEXT = (".py", ".md", ".yaml", ".yml", ".html", ".toml", ".txt")
POINTER = re.compile(r"\bdocs/([\w-]+\.md)(?:#([\w-]+))?")
LINK = re.compile(r"\]\(([^)\s]+?\.md)(?:#([\w-]+))?\)")
#: The name of the design document the code once cited from outside the repository (spelled so
#: that this file does not cite it).
OUTSIDE = "DESIGN" + ".md"


def slug(heading: str) -> str:
    """A Markdown heading as GitHub anchors it: lowercase, punctuation dropped, spaces as -."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {slug(m) for m in re.findall(r"^#{1,6} +(.+?) *$", page.read_text(), re.MULTILINE)}


def tracked_text() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return [ROOT / f for f in listed if f.endswith(TEXT) or f == "Makefile"]


def broken(files: list[Path], root: Path = ROOT) -> list[str]:
    """``file: target`` for every pointer or link of ``files`` that does not resolve."""
    out = []
    for path in files:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        found = [(root / "docs" / page, anchor) for page, anchor in POINTER.findall(text)]
        if path.suffix == ".md":
            for target, anchor in LINK.findall(text):
                if "://" not in target:
                    found.append(((path.parent / target).resolve(), anchor))
        for page, anchor in found:
            where = f"{path.relative_to(root)}: {page.name}" + (f"#{anchor}" if anchor else "")
            if not page.is_file() or (anchor and anchor not in anchors(page)):
                out.append(where)
    return sorted(set(out))


def test_every_pointer_into_the_docs_resolves() -> None:
    files = [f for f in tracked_text() if f != Path(__file__)]  # its examples are broken
    assert len(files) > 200
    pointers = sum(len(POINTER.findall(f.read_text(errors="replace"))) for f in files)
    assert pointers > 40  # the pattern still finds them
    assert broken(files) == []


def test_nothing_cites_a_design_document_outside_the_repository() -> None:
    named = [
        str(path.relative_to(ROOT))
        for path in tracked_text()
        if OUTSIDE in path.read_text(errors="replace") and path.name != Path(__file__).name
    ]
    assert named == []


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Reliability rules", "reliability-rules"),
        ("What MLflow shows", "what-mlflow-shows"),
        ("Per arm, and per arm × init (`by_init`)", "per-arm-and-per-arm--init-by_init"),
        ("INSGD", "insgd"),
    ],
)
def test_slug_is_githubs(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor


def test_a_broken_pointer_is_found(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "design.md").write_text("# Design\n\n## Packing\n")
    code = tmp_path / "a.py"
    code.write_text(
        '"""See docs/design.md#packing and docs/design.md#nowhere and docs/gone.md."""\n'
    )
    page = tmp_path / "docs" / "index.md"
    page.write_text("[ok](design.md#packing) [bad](design.md#missing) [web](https://x/y.md)\n")
    assert broken([code, page], tmp_path) == [
        "a.py: design.md#nowhere",
        "a.py: gone.md",
        "docs/index.md: design.md#missing",
    ]
