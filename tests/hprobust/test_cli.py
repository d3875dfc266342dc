"""The ``hprobust`` root command (:mod:`hprobust.cli`): it composes the study layer's commands
and the service's, each layer keeps its own, ``--help`` stays light, and ``python -m hprobust``
and the console script both reach it."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import typer
from typer.main import get_command

ROOT = Path(__file__).resolve().parents[2]
STUDY_COMMANDS = {"demo", "run", "trials", "summary"}
SERVICE_COMMANDS = {
    "serve", "submit", "studies", "status", "cancel", "resume", "report", "doctor", "ui",
}  # fmt: skip
HEAVY = ("torch", "ray", "mlflow", "fastapi", "uvicorn", "optuna")


def _names(app: typer.Typer) -> set[str]:
    return set(get_command(app).commands)  # type: ignore[attr-defined]


def test_the_root_composes_every_command_of_both_layers() -> None:
    from hprobust.cli import app

    assert _names(app) == STUDY_COMMANDS | SERVICE_COMMANDS


def test_each_layer_holds_only_its_own_commands() -> None:
    from service.cli import app as service_app
    from study.cli import app as study_app

    assert _names(study_app) == STUDY_COMMANDS
    assert _names(service_app) == SERVICE_COMMANDS


def test_help_of_every_command_imports_nothing_heavy() -> None:
    """``hprobust --help`` and each command's ``--help`` stay instant: torch, Ray, MLflow,
    FastAPI are imported inside the commands only."""
    commands = sorted(STUDY_COMMANDS | SERVICE_COMMANDS)
    code = (
        "import sys\n"
        "from hprobust.cli import app\n"
        f"for argv in [['--help'], *[[c, '--help'] for c in {commands!r}]]:\n"
        "    try:\n"
        "        app(argv, prog_name='hprobust')\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code == 0, (argv, exc.code)\n"
        f"print('heavy:', ','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "Usage: hprobust ui" in result.stdout  # the loop reached the last command's help
    assert result.stdout.strip().splitlines()[-1] == "heavy:"


def test_python_m_hprobust_runs_the_root_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hprobust", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={"COLUMNS": "120", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert "Usage: hprobust" in result.stdout
    for name in STUDY_COMMANDS | SERVICE_COMMANDS:
        assert f" {name} " in result.stdout, name
    unknown = subprocess.run(
        [sys.executable, "-m", "hprobust", "nosuch"], capture_output=True, text=True, cwd=ROOT
    )
    assert unknown.returncode == 2
    assert "No such command 'nosuch'" in unknown.stderr


def test_the_console_script_is_the_root_command() -> None:
    """pyproject declares the script on the top layer and packages the top package (a fresh
    ``make install`` gets both); the installed script lists the service's commands too."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"] == {"hprobust": "hprobust.cli:app"}
    assert "hprobust*" in project["tool"]["setuptools"]["packages"]["find"]["include"]
    script = Path(sys.executable).parent / "hprobust"
    result = subprocess.run(
        [str(script), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"COLUMNS": "120", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert " serve " in result.stdout and " run " in result.stdout
