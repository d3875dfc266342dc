"""``hprobust demo``: a real short trial through the CLI, progress lines, result table, errors."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from study.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, ["demo", *args], catch_exceptions=False)


def test_the_width_help_says_the_demos_width_and_the_models_default():
    """Issue 23: the help said 16, the docs 32. Both are true: the demo's toy_cnn is narrower
    than a study's; the help says both, each from where it is defined."""
    import inspect

    from models.toy_cnn import ToyCNN
    from study.cli.demo import DEMO_WIDTH, _width

    help_text = {p.name: p for p in typer.main.get_command(app).commands["demo"].params}[
        "width"
    ].help
    model_default = inspect.signature(ToyCNN.__init__).parameters["width"].default
    assert f"toy_cnn: {DEMO_WIDTH}, for speed" in help_text
    assert f"toy_cnn's default is {model_default}" in help_text
    assert _width("toy_cnn", None) == {"width": DEMO_WIDTH} and _width("mlp", None) == {}


def test_the_demos_help_lists_what_the_registries_hold():
    """The optimizer, momentum, schedule and dataset help comes from the registries: an entry
    added there shows here (and nothing else is listed)."""
    from study.data.registry import DATASET_KINDS
    from study.optim.registry import OPTIMIZERS, optimizer_hparams
    from study.spec.options import SCHEDULE_KINDS

    params = {p.name: p for p in typer.main.get_command(app).commands["demo"].params}
    assert set(re.findall(r"\w+", params["optimizer"].help)) - {"Optimizer", "or"} == set(
        OPTIMIZERS
    )
    with_momentum = {n for n in OPTIMIZERS if "momentum" in optimizer_hparams(n)}
    assert with_momentum == {"sgd", "insgd", "rmsprop"}  # today's registry, by hand
    assert all(name in params["momentum"].help for name in with_momentum)
    assert set(re.findall(r"\w+", params["schedule"].help)) - {"or"} == set(SCHEDULE_KINDS)
    assert set(re.findall(r"\w+", params["dataset"].help)) - {"Dataset", "or"} == set(DATASET_KINDS)


@pytest.mark.parametrize("optimizer", ["sgd", "insgd", "adagrad"])
def test_demo_runs_a_trial_with_a_line_per_epoch_and_a_result_table(optimizer):
    result = invoke("--optimizer", optimizer, "--epochs", "3", "--num-threads", "1")
    assert result.exit_code == 0, result.output
    out = result.output
    for epoch in (1, 2, 3):
        assert re.search(rf"epoch {epoch}/3\s+train_loss \d+\.\d+\s+val_acc 0\.\d+\s+lr ", out)
    assert f"digits / toy_cnn / {optimizer}" in out
    match = re.search(r"│ val_acc\s+│\s+(\d\.\d+) │", out)
    assert match, out
    assert float(match.group(1)) > 0.8  # 3 epochs on digits already learn a lot
    assert re.search(r"│ epochs_completed\s+│\s+3 │", out)
    assert re.search(r"│ diverged\s+│\s+False │", out)


def test_demo_shows_divergence():
    result = invoke(
        "--optimizer", "sgd", "--model", "mlp", "--lr", "10000", "--epochs", "4",
        "--schedule", "constant", "--num-threads", "1",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "DIVERGED" in result.output
    assert re.search(r"│ diverged\s+│\s+True │", result.output)
    assert "epoch 4/4" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--optimizer", "adma"), "optimizer must be one of sgd, insgd, adam, adamw, adagrad"),
        (("--optimizer", "adma"), "got 'adma' (did you mean 'adam'?)"),
        (("--epochs", "0"), "epochs must be >= 1, got 0"),  # the spec's words (as the API)
        (("--lr", "-1"), "lr must be > 0, got -1.0"),
        (("--init", "glorot"), "init must be one of"),
        (("--dataset", "imagenet"), "dataset must be one of"),
    ],
)
def test_demo_bad_input_names_the_field_and_trains_nothing(args, message):
    result = invoke(*args)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert "epoch 1/" not in result.output


def test_hprobust_demo_entry_point_runs(tmp_path):
    """The installed ``hprobust`` script, as ``make up`` calls it."""
    script = Path(sys.executable).parent / "hprobust"
    proc = subprocess.run(
        [str(script), "demo", "--data-dir", str(tmp_path), "--epochs", "1", "--num-threads", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "epoch 1/1" in proc.stdout
    assert "val_acc" in proc.stdout
