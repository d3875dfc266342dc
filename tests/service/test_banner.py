"""What ``hprobust serve`` (and so ``make up``) prints: commands that run as printed."""

from __future__ import annotations

import sys
from pathlib import Path

from service.core.config import Settings
from service.launcher import banner, hprobust_command


def test_the_submit_command_names_the_venv_script_when_hprobust_is_not_on_path(
    monkeypatch, tmp_path
):
    script = Path(sys.executable).parent / "hprobust"
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # a shell where .venv is not activated
    monkeypatch.chdir(tmp_path)
    assert hprobust_command() == str(script)
    text = banner(Settings(data_dir=tmp_path), "http://127.0.0.1:8000", "http://r", None)
    assert f"{script} submit examples/digits-quick.yaml --url http://127.0.0.1:8000" in text
    assert "studies: http://127.0.0.1:8000/" in text and "docs: http://127.0.0.1:8000/docs" in text


def test_plain_hprobust_when_it_is_the_one_on_path(monkeypatch):
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:/usr/bin:/bin")
    assert hprobust_command() == "hprobust"


def test_relative_to_the_working_directory_inside_it(monkeypatch):
    venv_parent = Path(sys.executable).parent.parent.parent
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.chdir(venv_parent)
    expected = Path(sys.executable).parent.relative_to(venv_parent) / "hprobust"
    assert hprobust_command() == str(expected)
