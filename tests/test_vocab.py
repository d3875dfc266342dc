"""The project's words are defined once, in ``study/vocab.py``: no copy elsewhere.

An AST scan of every module of ``models/``, ``study/``, ``service/`` and ``hprobust/`` (not
``study/vocab.py``; docstrings and logger names aside) finds

- a string constant starting with ``"hprobust."`` (a tag name spelled out instead of ``Tag``);
- a tuple, list or set literal (``Literal[...]`` included) whose strings are two or more
  study/trial status words, or two or more plot names (``(None, "running")`` is one word;
  ``("running", "diverged", "failed")`` names progress counts, not statuses);
- a dict literal whose keys are all status words, or all plot names (a table keyed by them).

``KNOWN_COPIES`` lists the files not converted yet, each with the work package that converts
it; it may only shrink (a listed file without a copy fails too).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from study.vocab import PlotName, StudyStatus, SuitePlotName, TrialStatus

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("models", "study", "service", "hprobust")
VOCAB = Path("study/vocab.py")
STATUS_WORDS = {str(s) for s in StudyStatus} | {str(s) for s in TrialStatus}
PLOT_WORDS = {str(p) for p in PlotName} | {str(p) for p in SuitePlotName}
TAG_PREFIX = "hprobust."

#: Files that still hold a copy -> the work package (docs/changes/issue-14.md) that removes it.
KNOWN_COPIES: dict[str, str] = {}


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are bare expression statements (docstrings)."""
    return {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    }


def _logger_names(tree: ast.AST) -> set[int]:
    """ids of the string constants passed to ``getLogger`` (logger names may be dotted)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name == "getLogger" and isinstance(node.args[0], ast.Constant):
                out.add(id(node.args[0]))
    return out


def _words(nodes: list[ast.expr | None]) -> list[str]:
    return [n.value for n in nodes if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def find_copies(source: str, filename: str = "<source>") -> list[str]:
    """Every copy of a vocabulary word in ``source``: ``"<file>:<line>: <what>"``."""
    tree = ast.parse(source, filename)
    skip = _docstrings(tree) | _logger_names(tree)
    found = []
    for node in ast.walk(tree):
        where = f"{filename}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            if node.value.startswith(TAG_PREFIX):
                found.append(f"{where}: tag name {node.value!r} spelled out (use study.vocab.Tag)")
        elif isinstance(node, ast.Tuple | ast.List | ast.Set):
            words = set(_words(node.elts))
            if len(words) >= 2 and words <= STATUS_WORDS:
                found.append(f"{where}: statuses {sorted(words)} listed (use study.vocab)")
            if len(words) >= 2 and words <= PLOT_WORDS:
                found.append(f"{where}: plot names {sorted(words)} listed (use study.vocab)")
        elif isinstance(node, ast.Dict) and len(node.keys) >= 2:
            keys = _words(node.keys)
            if len(keys) == len(node.keys):
                for vocab, what in ((STATUS_WORDS, "statuses"), (PLOT_WORDS, "plot names")):
                    if set(keys) <= vocab:
                        found.append(f"{where}: a table keyed by {what} {sorted(keys)}")
    return found


def _modules() -> list[Path]:
    return sorted(
        path.relative_to(ROOT)
        for package in PACKAGES
        if (ROOT / package).is_dir()
        for path in (ROOT / package).rglob("*.py")
        if path.relative_to(ROOT) != VOCAB
    )


def _copies_by_file() -> dict[str, list[str]]:
    out = {}
    for path in _modules():
        found = find_copies((ROOT / path).read_text(), str(path))
        if found:
            out[path.as_posix()] = found
    return out


def test_no_copy_of_the_vocabulary_outside_study_vocab():
    copies = _copies_by_file()
    new = {path: found for path, found in copies.items() if path not in KNOWN_COPIES}
    assert not new, "copies of study/vocab.py's words:\n" + "\n".join(
        line for found in new.values() for line in found
    )


def test_every_known_copy_is_still_there():
    """The allowlist only shrinks: a converted file must leave it."""
    copies = _copies_by_file()
    stale = sorted(path for path in KNOWN_COPIES if path not in copies)
    assert not stale, f"no copy left in {stale}: remove them from KNOWN_COPIES"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('T = "hprobust."', ["tag name 'hprobust.'"]),
        ('tags = {"hprobust.status": "queued"}', ["tag name 'hprobust.status'"]),
        ('key = f"hprobust.{name}"', ["tag name 'hprobust.'"]),
        ('ACTIVE = ("queued", "running")', ["statuses ['queued', 'running']"]),
        ('x = s in ["finished", "early_stopped"]', ["statuses ['early_stopped', 'finished']"]),
        (
            'S = Literal["queued", "running", "finished"]',
            ["statuses ['finished', 'queued', 'running']"],
        ),
        ('RANK = {"finished": 4, "failed": 2}', ["a table keyed by statuses"]),
        ('P = {"heatmap", "profile"}', ["plot names ['heatmap', 'profile']"]),
        ('C = {"heatmap": "a", "lr_curves": "b"}', ["a table keyed by plot names"]),
        ('S = ("forest", "suite_profile")', ["plot names ['forest', 'suite_profile']"]),
        # not copies: one word, counts keyed by more than statuses, docstrings, logger names
        ('if status == "queued": pass', []),
        ('counts = {"finished": 0, "diverged": 0, "total": 0}', []),
        ('shown = ("running", "diverged", "failed")', []),
        ('if status in (None, "running"): pass', []),
        ('def f():\n    """statuses ("queued", "running"); tag hprobust.status"""', []),
        ('log = logging.getLogger("hprobust.service")', []),
        ('RUN = ("FINISHED", "FAILED")', []),
    ],
)
def test_the_scan_finds_copies(source, expected):
    found = find_copies(source)
    assert len(found) == len(expected), found
    for line, what in zip(found, expected, strict=True):
        assert what in line, (line, what)


def test_vocabulary_values():
    """The stored words themselves (MLflow records of older studies hold them)."""
    assert list(StudyStatus) == [
        "queued", "running", "finished", "failed", "cancelled", "creating",
    ]  # fmt: skip
    assert list(TrialStatus) == [
        "finished", "early_stopped", "failed", "running", "pending", "stopped",
    ]  # fmt: skip
    assert list(PlotName) == ["lr_curves", "heatmap", "profile", "expected_max"]
    from study import vocab

    assert set(vocab.SETTABLE) == vocab.LIVE | vocab.ENDED
    assert not vocab.LIVE & vocab.ENDED
    assert set(vocab.RUN_STATUS_AT_END) == vocab.ENDED
    assert set(vocab.TRIAL_RANK) == set(TrialStatus)
    assert set(vocab.PLOT_CAPTIONS) == set(PlotName)
    assert list(SuitePlotName) == ["forest", "suite_profile"]
    assert set(vocab.SUITE_PLOT_CAPTIONS) == set(SuitePlotName)
    assert not set(PlotName) & set(SuitePlotName)
    assert vocab.TRIAL_EXCLUDED == ("early_stopped", "failed", "running", "pending", "stopped")
    tags = [str(t) for t in vocab.Tag]
    assert len(tags) == len(set(tags))
    assert all(t.startswith(("hprobust.", "mlflow.")) or t == "diverged" for t in tags)
