"""The CUDA paths: the fast single-trial path (CUDA graphs, channels-last) and packs on a GPU
agree with the eager loop, make no host sync per step, and run in bf16.

These tests need a CUDA device and are skipped (saying so) where torch sees none; the same
code runs on CPU in tests/study/train/test_pack.py through the fast path's fixed-buffer step
(``fast=True`` on CPU), everything but the capture itself. ``bench/gpu_check.sh`` runs them
on a GPU machine."""

from __future__ import annotations

import math

import pytest
import torch

from study.train.pack import train_pack
from study.train.trial import train_trial

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device (torch.cuda.is_available() is false)"
)

TIMING = {"wall_time_s", "epoch_time_s", "fast_path", "device", "pack_size"}
SGD = {"optimizer": "sgd", "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4}
INSGD = {"optimizer": "insgd", "momentum": 0.9, "weight_decay": 5e-4}
INSGD_REF = {"optimizer": "insgd", "variant": "reference", "norm": "l1", "momentum": 0.5}
ADAM = {"optimizer": "adam", "weight_decay": 1e-4}


def config(optimizer: dict, lr: float, seed: int, **overrides) -> dict:
    base = {
        "dataset": {
            "name": "synthetic",
            "num_classes": 10,
            "shape": [3, 32, 32],
            "n_train": 512,
            "n_val": 256,
            "augment": True,
        },
        "model": {"name": "resnet20"},
        "optimizer": optimizer,
        "lr": lr,
        "init": "kaiming_normal",
        "seed": seed,
        "epochs": 2,
        "batch_size": 64,
        "precision": "fp64",
        "device": "cuda",
        "num_threads": 1,
    }
    base.update(overrides)
    return base


def assert_close(a: dict, b: dict, rtol: float) -> None:
    for key in set(a) - TIMING:
        x, y = a[key], b[key]
        if isinstance(x, float) and isinstance(y, float):
            assert math.isclose(x, y, rel_tol=rtol, abs_tol=1e-9), (key, x, y)
        else:
            assert x == y, (key, x, y)


@pytest.mark.parametrize("optimizer", [SGD, INSGD, INSGD_REF, ADAM])
def test_fast_path_on_cuda_is_a_cuda_graph_and_matches_eager(optimizer):
    cfg = config(optimizer, 0.05, 0)
    fast_reports: list[dict] = []
    fast = train_trial(cfg, report=fast_reports.append)  # fast by default on CUDA
    eager_reports: list[dict] = []
    eager = train_trial(cfg, report=eager_reports.append, fast=False)
    assert fast["fast_path"] == "cuda_graph", fast["fast_path"]
    assert eager["fast_path"] == "eager"
    assert_close(eager, fast, 1e-6)  # fp64; cuDNN may pick other algorithms
    for want, got in zip(eager_reports, fast_reports, strict=True):
        assert_close(want, got, 1e-6)


def test_a_pack_on_cuda_matches_unpacked_trials_and_freezes_a_diverging_member():
    dataset = {"name": "synthetic", "num_classes": 4, "shape": [3, 8, 8], "n_train": 800}
    common = {"model": {"name": "toy_cnn", "batchnorm": False}, "dataset": dataset}
    configs = [
        config(SGD, 0.05, 0, **common, batch_size=8),
        config(INSGD, 0.1, 1, **common, batch_size=8),
        config({"optimizer": "sgd"}, 1e5, 2, **common, batch_size=8, schedule="constant"),
        config(ADAM, 0.01, 3, **common, batch_size=8),
        config(INSGD_REF, 0.1, 4, **common, batch_size=8, init="xavier_normal"),
    ]
    packed = train_pack(configs)
    assert {r["fast_path"] for r in packed} == {"cuda_graph"}, packed[0]["fast_path"]
    assert packed[2]["diverged"] is True
    for cfg, got in zip(configs, packed, strict=True):
        assert_close(train_trial(cfg, fast=False), got, 1e-6)


@pytest.mark.parametrize("mode", ["eager", "graph"])
@pytest.mark.parametrize("members", [1, 4])
def test_training_steps_make_no_host_sync(mode, members):
    """After the warm-up (and the capture), steps run under sync debug mode "error"."""
    from study.train.pack import GRAPH_WARMUP, Pack, validate_pack

    cfgs = validate_pack(
        [config(INSGD if k % 2 else SGD, 0.05, k, precision="fp32") for k in range(members)]
    )
    device = torch.device("cuda")
    pack = Pack(cfgs, device, mode=mode, channels_last=True)
    pack.loss_sum = torch.zeros(members, device=device)
    data = pack.data
    gens = [m.generator for m in pack.members]
    coef = torch.full((members, 1), 0.05, device=device)  # each member's lr (SGD, INSGD)
    lr_host = [[0.05] * 100 for _ in range(members)]
    perm = torch.stack([torch.randperm(512, generator=g, device=device) for g in gens])

    def step(i: int) -> None:
        idx = perm[:, i * 64 : (i + 1) * 64]
        x = data.augment_pack(pack.x_train[idx], gens)
        pack.train_step(x, data.y_train[idx], coef, lr_host, i)

    for i in range(GRAPH_WARMUP + 1):
        step(i)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for i in range(GRAPH_WARMUP + 1, GRAPH_WARMUP + 4):
            step(i)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert pack.fast_path == ("cuda_graph" if mode == "graph" else "eager")
    assert torch.isfinite(pack.loss_sum).all()


def test_bf16_fast_path_and_pack_run():
    single = train_trial(config(INSGD, 0.05, 0, precision="bf16"))
    assert single["precision_used"] == "bf16" and single["fast_path"] == "cuda_graph"
    assert single["diverged"] is False and single["val_loss"] is not None
    packed = train_pack([config(SGD, 0.05, k, precision="bf16") for k in range(4)])
    assert {r["precision_used"] for r in packed} == {"bf16"}
    assert all(r["val_loss"] is not None for r in packed)
