"""The command line prints user text as text (issue 21, item 5): rich markup in a spec's key,
a name or an error is shown as typed, never interpreted; characters that change how a
terminal shows text are written as escapes; an unexpected error is one line and exit code 2.
Probes B6 and Q9 (printing). The real ``hprobust`` console script runs in a subprocess."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from study.cli.group import one_line
from study.cli.options import plain, styled
from study.cli.tables import render

HPROBUST = str(Path(sys.executable).parent / "hprobust")

SPEC = {
    "name": "text",
    "dataset": "digits",
    "model": {"name": "mlp", "hidden": [8]},
    "arms": [{"name": "sgd", "optimizer": "sgd"}],
    "search": {"lr": {"low": 1e-2, "high": 1.0}, "init": ["normal"]},
    "trials_per_arm": 2,
}
LINK_KEY = "[link=https://evil.example]click[/link]"


def hprobust(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([HPROBUST, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_markup_in_an_unknown_key_is_printed_as_typed(tmp_path):
    """Probe B6: an unknown key ``"[/x]"`` crashed ``hprobust run`` with rich's MarkupError
    traceback (exit 1, not 2), and ``[link=...]`` markup in a key was interpreted. Now: exit 2,
    one error naming both keys exactly as typed, nothing created."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({**SPEC, "[/x]": 1, LINK_KEY: 2}))
    result = hprobust("run", str(spec), "--data-dir", str(tmp_path / "store"), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    err = " ".join(result.stderr.split())  # rich wraps long lines
    assert "Traceback" not in result.stderr and "MarkupError" not in result.stderr
    assert err.startswith("error: ")
    assert "[/x] is not a known key, got 1" in err
    assert f"{LINK_KEY} is not a known key, got 2" in err
    assert "\x1b]8;" not in result.stderr  # no terminal hyperlink
    assert not (tmp_path / "store").exists()


def test_an_unexpected_error_is_one_line_and_exit_2(tmp_path):
    """Item 5: an error no branch of a command expects (here a store file that is not a
    database) was a Python traceback with exit code 1. Now: one line ``error: <Type>: ...``
    on stderr and exit code 2."""
    store = tmp_path / "store"
    store.mkdir()
    (store / "mlflow.db").write_text("not a database\n")
    result = hprobust("trials", "s20250101-000000-abcdef", "--data-dir", str(store), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: DatabaseError: "), lines[0]
    assert "Traceback" not in result.stderr


def test_known_errors_keep_their_exit_codes(tmp_path):
    """The guard changes no known exit: a usage error stays 2 (click), a missing store 2, a
    bad --format 2, --help 0."""
    assert hprobust("run", "--help", cwd=tmp_path).returncode == 0
    assert hprobust("run", "--no-such-option", cwd=tmp_path).returncode == 2
    missing = hprobust("trials", "s20250101-000000-abcdef", "--data-dir", "x", cwd=tmp_path)
    assert missing.returncode == 2 and "no study store in x" in missing.stderr


def _printed(*renderables) -> str:
    out = io.StringIO()
    console = Console(file=out, width=200, force_terminal=True, color_system="truecolor")
    for item in renderables:
        console.print(item)
    return out.getvalue()


def test_plain_text_is_never_markup_and_unsafe_characters_are_escaped():
    """Probe Q9, printing: a name with U+202E, zero-width or C1 characters was printed raw. Now
    written as escapes; markup in it is shown as typed."""
    text = "a\u202eb\u200bc\x85d [/x] [link=https://evil.example]e[/link] [bold]f"
    out = _printed(plain(text), styled(("error:", "red"), " ", text))
    assert "\u202e" not in out and "\u200b" not in out and "\x85" not in out
    assert "a\\u202eb\\u200bc\\x85d" in out
    assert "[/x] [link=https://evil.example]e[/link] [bold]f" in out
    assert "\x1b]8;" not in out


def test_a_summary_with_markup_in_its_names_renders_as_typed():
    """The summary tables (``hprobust run``, ``summary``, ``submit --wait``) print arm names
    as text: a study recorded before names were checked cannot break or style them."""
    from study.analysis import summarize

    arms = ["[/x]", LINK_KEY]
    rows = [
        {
            "arm": arm,
            "lr": lr,
            "init": "normal",
            "init_scale": 1.0,
            "seed": 0,
            "val_acc": 0.5 + 0.1 * k,
            "val_loss": 1.0,
            "diverged": False,
            "status": "finished",
        }
        for arm in arms
        for k, lr in enumerate((0.01, 0.1, 1.0))
    ]
    summary = summarize(rows, num_classes=10, arms=arms)
    out = io.StringIO()
    console = Console(file=out, width=250, force_terminal=True)
    render(summary, console, header="study [/x] \u202e")
    text = out.getvalue()
    assert "[/x]" in text and LINK_KEY in text and "\\u202e" in text
    assert "\u202e" not in text and "\x1b]8;" not in text


@pytest.mark.parametrize(
    ("exc", "line"),
    [
        (ValueError("bad"), "ValueError: bad"),
        (RuntimeError("first\nsecond"), "RuntimeError: first (...)"),
        (KeyError(), "KeyError"),
    ],
)
def test_one_line(exc, line):
    assert one_line(exc) == line
