"""One trial: the issue's done-when cases, reporting, divergence, determinism, bad configs."""

from __future__ import annotations

import itertools
import json
import math

import pytest
import torch

from study.errors import ConfigError, SpecError
from study.spec.trial_config import TrialConfig
from study.train.trial import CONFIG_KEYS, RESULT_KEYS, train_trial

REPORT_KEYS = {"epoch", "train_loss", "val_loss", "val_acc", "lr", "epoch_time_s", "diverged"}
TIMING_KEYS = {"wall_time_s", "epoch_time_s"}


def digits_config(optimizer: str, **overrides) -> dict:
    """The issue's done-when config: digits / toy_cnn, 15 epochs, lr 0.05, batch 64, cosine,
    kaiming_normal, momentum 0.9, weight decay 5e-4."""
    config = {
        "dataset": "digits",
        "model": {"name": "toy_cnn"},
        "optimizer": {"optimizer": optimizer, "momentum": 0.9, "weight_decay": 5e-4},
        "lr": 0.05,
        "init": "kaiming_normal",
        "init_scale": 1.0,
        "seed": 0,
        "epochs": 15,
        "batch_size": 64,
        "schedule": "cosine",
        "precision": "fp32",
        "device": "cpu",
        "num_threads": 1,
    }
    config.update(overrides)
    return config


def run(config: dict) -> tuple[dict, list[dict]]:
    reports: list[dict] = []
    return train_trial(config, report=reports.append), reports


def without_timings(d: dict) -> dict:
    return {k: v for k, v in d.items() if k not in TIMING_KEYS}


@pytest.fixture(scope="module")
def digits_runs() -> dict[str, tuple[dict, list[dict]]]:
    return {name: run(digits_config(name)) for name in ("sgd", "insgd")}


@pytest.mark.parametrize("optimizer", ["sgd", "insgd"])
def test_digits_toy_cnn_reaches_95_percent(digits_runs, optimizer):
    result, reports = digits_runs[optimizer]
    assert set(RESULT_KEYS) <= set(result)
    assert result["val_acc"] >= 0.95, result
    assert result["best_val_acc"] >= result["val_acc"]
    assert result["best_val_acc"] == max(r["val_acc"] for r in reports)
    assert result["diverged"] is False
    assert result["epochs_completed"] == 15
    assert result["precision_used"] == "fp32" and result["device"] == "cpu"
    assert 0 < result["train_loss"] < 0.5 and 0 < result["val_loss"] < 0.5
    assert result["wall_time_s"] > 0


@pytest.mark.parametrize("optimizer", ["sgd", "insgd"])
def test_report_after_every_epoch_with_the_keys(digits_runs, optimizer):
    result, reports = digits_runs[optimizer]
    assert [r["epoch"] for r in reports] == list(range(1, 16))
    for r in reports:
        assert set(r) >= REPORT_KEYS
        assert 0.0 <= r["val_acc"] <= 1.0
        assert r["epoch_time_s"] > 0 and r["diverged"] is False
    # Cosine per step: the reported lr (of each epoch's last step) decreases towards 0.
    lrs = [r["lr"] for r in reports]
    assert all(a > b for a, b in itertools.pairwise(lrs))
    assert lrs[0] < 0.05 and lrs[-1] < 1e-3
    # The result is the last report.
    last = reports[-1]
    assert (result["val_acc"], result["val_loss"], result["train_loss"]) == (
        last["val_acc"],
        last["val_loss"],
        last["train_loss"],
    )
    # Training helps: the last epoch's train loss is far below the first's.
    assert reports[-1]["train_loss"] < reports[0]["train_loss"] / 5


@pytest.mark.parametrize("optimizer", ["sgd", "insgd"])
def test_same_seed_gives_identical_results(digits_runs, optimizer):
    first_result, first_reports = digits_runs[optimizer]
    again_result, again_reports = run(digits_config(optimizer))
    assert without_timings(again_result) == without_timings(first_result)
    assert [without_timings(r) for r in again_reports] == [
        without_timings(r) for r in first_reports
    ]


def test_sgd_and_insgd_differ_and_seed_matters(digits_runs):
    assert digits_runs["sgd"][1][0]["train_loss"] != digits_runs["insgd"][1][0]["train_loss"]
    other_seed, _ = run(digits_config("sgd", seed=1, epochs=1))
    same_seed, _ = run(digits_config("sgd", epochs=1))
    assert other_seed["train_loss"] != same_seed["train_loss"]


def mlp_config(**overrides) -> dict:
    config = {
        "dataset": "digits",
        "model": {"name": "mlp", "batchnorm": False},
        "optimizer": {"optimizer": "sgd"},
        "lr": 1e4,
        "init": "kaiming_normal",
        "seed": 0,
        "epochs": 5,
        "batch_size": 64,
        "schedule": "constant",
        "device": "cpu",
        "num_threads": 1,
    }
    config.update(overrides)
    return config


def test_sgd_at_lr_1e4_diverges_and_stops_early():
    result, reports = run(mlp_config())
    assert result["diverged"] is True
    assert result["epochs_completed"] < 5
    assert len(reports) == result["epochs_completed"]
    assert reports[-1]["diverged"] is True
    assert all(r["diverged"] is False for r in reports[:-1])
    # No NaN/inf leaves the trial: the result and reports are strict JSON.
    json.dumps(result, allow_nan=False)
    json.dumps(reports, allow_nan=False)
    assert result["train_loss"] is None or result["train_loss"] > 3 * math.log(10)


def test_mean_train_loss_above_3_ln_c_counts_as_diverged():
    """Finite but huge loss: weights scaled x100 and an lr too small to repair them."""
    result, reports = run(mlp_config(lr=1e-9, init_scale=100.0))
    assert result["diverged"] is True
    assert result["epochs_completed"] == 1
    assert math.isfinite(result["train_loss"]) and result["train_loss"] > 3 * math.log(10)
    assert reports[0]["train_loss"] == result["train_loss"]


def test_a_healthy_mlp_does_not_diverge():
    result, reports = run(mlp_config(lr=0.05, epochs=2))
    assert result["diverged"] is False and result["epochs_completed"] == 2
    assert [r["lr"] for r in reports] == [0.05, 0.05]  # constant schedule


def test_multistep_schedule_mapping_and_bf16_falls_back_on_cpu():
    result, reports = run(
        mlp_config(
            lr=0.1,
            epochs=3,
            schedule={"name": "multistep", "milestones": [1, 2], "gamma": 0.5},
            precision="bf16",
        )
    )
    assert [r["lr"] for r in reports] == pytest.approx([0.1, 0.05, 0.025])
    assert result["precision_used"] == "fp32"


def test_synthetic_dataset_with_options_trains():
    result, _ = run(
        mlp_config(
            dataset={"name": "synthetic", "num_classes": 4, "shape": [2, 3, 3], "noise": 0.3},
            lr=0.05,
            epochs=3,
        )
    )
    assert result["diverged"] is False
    assert result["val_acc"] > 0.9  # well separated Gaussian classes


def test_trial_leaves_global_rng_and_threads_as_they_were():
    threads = torch.get_num_threads()
    torch.manual_seed(1234)
    state = torch.get_rng_state()
    train_trial(mlp_config(lr=0.05, epochs=1, num_threads=1))
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.get_num_threads() == threads


def test_device_cuda_when_unavailable_or_available():
    config = mlp_config(lr=0.05, epochs=1, device="cuda", precision="bf16")
    if torch.cuda.is_available():
        result = train_trial(config)
        assert result["device"].startswith("cuda") and result["precision_used"] == "bf16"
    else:
        with pytest.raises(ConfigError, match=r"device 'cuda' is not available"):
            train_trial(config)


# --------------------------------------------------------------------------- bad configs


def _without(key: str) -> dict:
    config = mlp_config()
    del config[key]
    return config


# Every problem names its field, the rule and the value (the spec's rules: TrialConfig).
BAD_CONFIGS = [
    (mlp_config(learning_rate=0.1), ["learning_rate is not a known key, got 0.1"]),
    (_without("lr"), ["lr is required"]),
    (_without("model"), ["model is required"]),
    (mlp_config(epochs=0), ["epochs must be >= 1, got 0"]),
    (mlp_config(epochs=2.5), ["epochs must be a valid integer, got 2.5"]),
    (mlp_config(batch_size=0), ["batch_size", ">= 1", "0"]),
    (mlp_config(lr=-0.1), ["lr must be > 0, got -0.1"]),
    (mlp_config(lr=float("nan")), ["lr must be a finite number, got nan"]),
    (mlp_config(lr="0.1"), ["lr", "'0.1'"]),
    (mlp_config(init_scale=0), ["init_scale", "> 0", "0"]),
    (mlp_config(seed=-1), ["seed", ">= 0", "-1"]),
    (mlp_config(seed=True), ["seed", "True"]),
    (mlp_config(num_threads=0), ["num_threads", ">= 1", "0"]),
    (mlp_config(precision="fp16"), ["precision must be one of", "'fp64'", "got 'fp16'"]),
    (mlp_config(device="tpu"), ["device must be one of", "'tpu'"]),
    (mlp_config(init="glorot"), ["init must be one of", "kaiming_normal", "'glorot'"]),
    (mlp_config(schedule="linear"), ["schedule must be one of", "'linear'"]),
    (
        mlp_config(schedule={"name": "multistep", "milestones": [5]}),
        ["schedule.milestones.0 must be < epochs (5)", "got 5"],
    ),
    (mlp_config(dataset="imagenet"), ["dataset must be one of", "digits", "'imagenet'"]),
    (mlp_config(dataset={"name": "synthetic", "colour": 1}), ["dataset.colour is not a known"]),
    (mlp_config(model={"name": "transformer"}), ["model.name must be one of", "'transformer'"]),
    (mlp_config(model={"name": "mlp", "colour": 1}), ["model.colour", "valid: "]),
    (mlp_config(model={"name": "mlp", "batchnorm": "no"}), ["model.batchnorm", "'no'"]),
    (mlp_config(model={"batchnorm": False}), ["model.name is required"]),
    (mlp_config(optimizer={"optimizer": "lamb"}), ["optimizer.optimizer must be one of", "sgd"]),
    (mlp_config(optimizer={"optimizer": "sgd", "betas": 1}), ["optimizer.betas", "valid"]),
    (
        mlp_config(optimizer={"optimizer": "sgd", "momentum": -1}),
        ["optimizer.momentum must be >= 0, got -1"],
    ),
    (mlp_config(optimizer={"optimizer": "sgd", "lr": 1}), ["optimizer.lr is not allowed"]),
    (mlp_config(data_dir=3), ["data_dir", "3"]),
]


@pytest.mark.parametrize(("config", "parts"), BAD_CONFIGS)
def test_bad_config_raises_config_error_naming_the_key(config, parts):
    calls: list[dict] = []
    with pytest.raises(ConfigError) as err:
        train_trial(config, report=calls.append)
    message = str(err.value)
    for part in parts:
        assert part in message, message
    assert isinstance(err.value, ValueError)
    assert calls == []  # nothing trained
    # the same problem, as data, from the one constructor
    with pytest.raises(SpecError) as again:
        TrialConfig.from_mapping(config)
    assert str(again.value) == message and again.value.problems


def test_config_keys_are_the_contract():
    assert set(CONFIG_KEYS) == {
        "dataset",
        "model",
        "optimizer",
        "lr",
        "init",
        "init_scale",
        "seed",
        "epochs",
        "batch_size",
        "schedule",
        "precision",
        "device",
        "data_dir",
        "num_threads",
    }


def test_from_mapping_fills_defaults_without_training():
    cfg = TrialConfig.from_mapping(
        {
            "dataset": {"name": "synthetic", "num_classes": 3},
            "model": {"name": "mlp", "batchnorm": False},
            "optimizer": {"optimizer": "insgd", "momentum": 0.9},
            "lr": 0.1,
            "init": "default",
            "epochs": 2,
            "batch_size": 8,
        }
    )
    assert (cfg.dataset_name, cfg.num_classes, cfg.in_shape) == ("synthetic", 3, (1, 8, 8))
    assert cfg.dataset_options == {  # every option, defaults filled in
        "num_classes": 3,
        "shape": [1, 8, 8],
        "n_train": 1000,
        "n_val": 200,
        "noise": 1.0,
        "separation": 1.0,
        "seed": 0,
        "augment": False,
    }
    assert (cfg.model_name, cfg.model_options) == ("mlp", {"batchnorm": False})
    assert (cfg.optimizer_name, cfg.optimizer_hparams) == ("insgd", {"momentum": 0.9})
    assert (cfg.seed, cfg.init_scale, cfg.precision, cfg.device) == (0, 1.0, "fp32", "auto")
    assert cfg.schedule.name == "cosine"
    with pytest.raises(ValueError, match="frozen"):
        cfg.lr = 1.0  # type: ignore[misc]
    # a TrialConfig is taken as it is; its JSON form validates back to the same config
    assert TrialConfig.from_mapping(cfg) is cfg
    assert TrialConfig.from_mapping(cfg.model_dump(mode="json")) == cfg


def test_augmentation_in_the_loop_is_seeded_and_used():
    dataset = {"name": "synthetic", "shape": [1, 8, 8], "n_train": 256, "n_val": 64}
    augmented = mlp_config(dataset={**dataset, "augment": True}, lr=0.05, epochs=2)
    first, _ = run(augmented)
    again, _ = run(augmented)
    plain, _ = run(mlp_config(dataset=dataset, lr=0.05, epochs=2))
    assert without_timings(first) == without_timings(again)
    assert first["train_loss"] != plain["train_loss"]
