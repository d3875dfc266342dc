"""Benchmark: training throughput of ResNet-20 trials on CIFAR-10-shaped data, batch 128.

How many trials a machine trains, measured through the code a study runs (``train_trial``,
``train_pack``, Ray), on the ``synthetic`` dataset with CIFAR-10's shape (3x32x32, 10
classes), ``n_train`` training and ``n_train / 5`` validation images (CIFAR-10's 50,000 /
10,000 ratio), SGD and INSGD (momentum 0.9, weight decay 5e-4, lr 0.05, cosine):

- ``eager``: one trial, the plain loop (``train_trial(fast=False)``);
- ``fast``: one trial on the fast path (CUDA graphs + channels-last on CUDA; on CPU the fast
  path's fixed-buffer step without a capture, which is not faster there);
- ``ray xN``: N trials at once in N Ray tasks (``num_gpus = 1/N`` each on CUDA: Ray's
  fractional GPUs, which time-slice one GPU);
- ``pack K``: K trials as one pack (``train_pack``, fast path on CUDA), K = 4, 16, 64.

Per row, from the per-epoch reports of every epoch after the first (warm-up, CUDA graph
capture): the median epoch wall time (its evaluation included), ``img/s`` = trials x
``n_train`` / epoch time, ``trial-epochs/h`` scaled to CIFAR-10's 50,000 training images,
the projected wall time of the INSGD paper's ResNet-20 study (2 arms x 32 points x 200
epochs = 12,800 trial-epochs) at that rate, and ``x eager``: the trial-epoch rate over the
eager single trial's, measured in the same run. The issue's goal: under one hour on one H100,
about 178k training images per second.

``--fusion`` also times one training forward+backward of K ResNet-20s stacked under
``torch.func.vmap(functional_call)`` (what ``train_pack`` runs) against a hand-fused ResNet-20
(grouped convs, BatchNorm over K x C channels, batched matmul head, as HFTA fuses by hand),
same shapes, blocks alternating; their ratio says what vmap leaves on the table.

    .venv/bin/python bench/gpu_throughput.py [--device cpu|cuda] [--packs 4,16,64]
        [--ray-trials 4] [--n-train 5120] [--epochs 3] [--precision fp32|bf16] [--fusion]
        [--json out.json]

On CPU use small sizes (``--n-train 256 --packs 4 --depth 8``): CPU runs stay unpacked in
studies (packing does not pay there).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

STUDY_TRIAL_EPOCHS = 12_800  # 2 arms x 32 points x 200 epochs (the INSGD paper's ResNet-20)
CIFAR_TRAIN = 50_000
TARGET_IMAGES_PER_S = 178_000
OPTIMIZERS = {
    "sgd": {"optimizer": "sgd", "momentum": 0.9, "weight_decay": 5e-4},
    "insgd": {"optimizer": "insgd", "momentum": 0.9, "weight_decay": 5e-4},
}


def trial_config(args: argparse.Namespace, optimizer: str, seed: int) -> dict[str, Any]:
    return {
        "dataset": {
            "name": "synthetic",
            "num_classes": 10,
            "shape": [3, 32, 32],
            "n_train": args.n_train,
            "n_val": max(1, args.n_train // 5),
            "augment": True,
        },
        "model": {"name": "resnet20", "depth": args.depth},
        "optimizer": dict(OPTIMIZERS[optimizer]),
        "lr": 0.05,
        "init": "kaiming_normal",
        "seed": seed,
        "epochs": args.epochs,
        "batch_size": args.batch,
        "schedule": "cosine",
        "precision": args.precision,
        "device": args.device,
        "num_threads": args.threads,
    }


def _row(
    args: argparse.Namespace,
    name: str,
    optimizer: str,
    trials: int,
    epoch_times: list[float],
    fast_path: str,
) -> dict[str, Any]:
    steady = epoch_times[1:] or epoch_times  # the first epoch warms up (and captures)
    epoch_s = statistics.median(steady)
    images_per_s = trials * args.n_train / epoch_s
    trial_epochs_per_h = 3600 * trials / (epoch_s * CIFAR_TRAIN / args.n_train)
    return {
        "row": name,
        "optimizer": optimizer,
        "trials": trials,
        "precision": args.precision,
        "epoch_s": epoch_s,
        "images_per_s": images_per_s,
        "trial_epochs_per_h": trial_epochs_per_h,
        "study_hours": STUDY_TRIAL_EPOCHS / trial_epochs_per_h,
        "fast_path": fast_path,
    }


def measure_trial(args: argparse.Namespace, optimizer: str, fast: bool) -> dict[str, Any]:
    from study.train.trial import train_trial

    reports: list[dict] = []
    result = train_trial(trial_config(args, optimizer, 0), report=reports.append, fast=fast)
    times = [r["epoch_time_s"] for r in reports]
    return _row(args, "fast" if fast else "eager", optimizer, 1, times, result["fast_path"])


def measure_pack(args: argparse.Namespace, optimizer: str, size: int) -> dict[str, Any]:
    from study.train.pack import train_pack

    times: list[float] = []
    configs = [trial_config(args, optimizer, seed) for seed in range(size)]
    results = train_pack(
        configs, report=lambda r: times.append(next(iter(r.values()))["epoch_time_s"])
    )
    return _row(args, f"pack {size}", optimizer, size, times, results[0]["fast_path"])


def measure_ray(args: argparse.Namespace, optimizer: str, n: int) -> dict[str, Any]:
    """N trials at once, one Ray task each (1/N GPU each on CUDA). Their steady epochs overlap:
    the aggregate rate is the sum of the tasks' rates."""
    import ray

    started = False
    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
        started = True
    try:
        resources = {"num_gpus": 1 / n} if args.device == "cuda" else {"num_cpus": 1}

        @ray.remote(**resources)
        def one(config: dict[str, Any]) -> tuple[list[float], str]:
            from study.train.trial import train_trial

            reports: list[dict] = []
            result = train_trial(config, report=reports.append)
            return [r["epoch_time_s"] for r in reports], result["fast_path"]

        outs = ray.get([one.remote(trial_config(args, optimizer, seed)) for seed in range(n)])
    finally:
        if started:
            ray.shutdown()
    # Aggregate: n trials, each at its own steady epoch time -> the harmonic combination.
    per_task = [statistics.median(times[1:] or times) for times, _ in outs]
    epoch_s = n / sum(1 / t for t in per_task)  # the epoch time that gives the summed rate
    return _row(args, f"ray x{n}", optimizer, n, [epoch_s], outs[0][1])


# ---- vmap vs a hand-fused ResNet-20 (HFTA-style) ---------------------------------------------


def _fused_resnet(k: int, depth: int, num_classes: int = 10):
    """K CIFAR ResNets (option-A shortcuts, BatchNorm) as one module on ``(N, K*3, H, W)``."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Block(nn.Module):
        def __init__(self, c_in: int, c_out: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(k * c_in, k * c_out, 3, stride, 1, groups=k, bias=False)
            self.bn1 = nn.BatchNorm2d(k * c_out)
            self.conv2 = nn.Conv2d(k * c_out, k * c_out, 3, 1, 1, groups=k, bias=False)
            self.bn2 = nn.BatchNorm2d(k * c_out)
            self.stride, self.pad, self.c_in = stride, c_out - c_in, c_in

        def forward(self, x):
            out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
            short = x
            if self.stride != 1 or self.pad:
                short = x[:, :, :: self.stride, :: self.stride]
                n, _, h, w = short.shape
                short = F.pad(short.view(n, k, self.c_in, h, w), (0, 0, 0, 0, self.pad // 2,
                              self.pad - self.pad // 2)).view(n, -1, h, w)  # fmt: skip
            return F.relu(out + short)

    class Fused(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            n = (depth - 2) // 6
            self.conv1 = nn.Conv2d(k * 3, k * 16, 3, 1, 1, groups=k, bias=False)
            self.bn1 = nn.BatchNorm2d(k * 16)
            blocks, c_in = [], 16
            for c_out, stride in ((16, 1), (32, 2), (64, 2)):
                for i in range(n):
                    blocks.append(Block(c_in, c_out, stride if i == 0 else 1))
                    c_in = c_out
            self.layers = nn.Sequential(*blocks)
            self.fc_w = nn.Parameter(torch.randn(k, 64, num_classes) * 0.1)
            self.fc_b = nn.Parameter(torch.zeros(k, 1, num_classes))

        def forward(self, x):
            x = self.layers(F.relu(self.bn1(self.conv1(x)))).mean((2, 3))  # (N, K*64)
            x = x.view(x.shape[0], k, 64).transpose(0, 1)
            return torch.baddbmm(self.fc_b, x, self.fc_w)  # (K, N, classes)

    return Fused()


def measure_fusion(args: argparse.Namespace, k: int) -> dict[str, Any]:
    import copy

    import torch
    import torch.nn.functional as F
    from torch.func import functional_call, stack_module_state, vmap

    import models

    device = torch.device(args.device)
    dtype = torch.float32
    nets = [
        models.create_model("resnet20", in_shape=(3, 32, 32), num_classes=10, depth=args.depth)
        for _ in range(k)
    ]
    params, buffers = stack_module_state(nets)
    params = {n: p.detach().to(device).requires_grad_() for n, p in params.items()}
    buffers = {n: b.to(device) for n, b in buffers.items()}
    skeleton = copy.deepcopy(nets[0]).to("meta")
    fused = _fused_resnet(k, args.depth).to(device, dtype)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(k, args.batch, 3, 32, 32, generator=gen).to(device)
    y = torch.randint(0, 10, (k, args.batch), generator=gen).to(device)
    x_fused = x.transpose(0, 1).reshape(args.batch, k * 3, 32, 32).contiguous()
    leaves = list(params.values())
    autocast = (
        (lambda: torch.autocast(device.type, dtype=torch.bfloat16))
        if args.precision == "bf16" and device.type == "cuda"
        else __import__("contextlib").nullcontext
    )

    def loss_of(logits):
        return F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").sum()

    def vmapped() -> None:
        with autocast():
            logits = vmap(lambda p, b, xx: functional_call(skeleton, (p, b), (xx,)))(
                params, buffers, x
            )
            loss = loss_of(logits)
        torch.autograd.grad(loss, leaves)

    def hand_fused() -> None:
        with autocast():
            loss = loss_of(fused(x_fused))
        torch.autograd.grad(loss, list(fused.parameters()))

    def timed(fn) -> float:
        sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        sync()
        t = time.perf_counter()
        for _ in range(args.fusion_steps):
            fn()
        sync()
        return (time.perf_counter() - t) / args.fusion_steps

    for fn in (vmapped, hand_fused):
        fn()  # warm-up
    times: dict[str, list[float]] = {"vmap": [], "fused": []}
    for block in range(args.fusion_blocks):
        for name in ("vmap", "fused") if block % 2 == 0 else ("fused", "vmap"):
            times[name].append(timed(vmapped if name == "vmap" else hand_fused))
    vmap_ms = 1e3 * statistics.median(times["vmap"])
    fused_ms = 1e3 * statistics.median(times["fused"])
    return {"k": k, "vmap_ms": vmap_ms, "fused_ms": fused_ms, "vmap_over_fused": vmap_ms / fused_ms}


# ---- main ---------------------------------------------------------------------------------


def _ints(text: str) -> list[int]:
    return [int(t) for t in text.split(",") if t.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default=None)
    parser.add_argument("--optimizers", default="sgd,insgd")
    parser.add_argument("--rows", default="eager,fast,ray,pack", help="which rows to run")
    parser.add_argument("--packs", default="4,16,64", help="pack sizes K")
    parser.add_argument("--ray-trials", type=int, default=4, help="N for the ray row (0: skip)")
    parser.add_argument("--n-train", type=int, default=5120)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--depth", type=int, default=20, help="ResNet depth (6n+2)")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per trial")
    parser.add_argument("--fusion", default="", help="K values for vmap vs hand-fused, e.g. 16")
    parser.add_argument("--fusion-steps", type=int, default=3)
    parser.add_argument("--fusion-blocks", type=int, default=6)
    parser.add_argument("--json", default=None, help="write the rows here as JSON")
    args = parser.parse_args(argv)
    if args.device is None:
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import torch

    args = parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available")
    if args.threads:
        torch.set_num_threads(args.threads)
    name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    rows_wanted = set(args.rows.split(","))
    print(
        f"ResNet-{args.depth}, CIFAR-10-shaped synthetic data ({args.n_train} train / "
        f"{args.n_train // 5} val images), batch {args.batch}, {args.epochs} epochs per row, "
        f"{args.precision}, device {args.device} ({name}), torch {torch.__version__}",
        flush=True,
    )
    header = (
        f"{'row':<10}{'opt':<7}{'trials':>7}{'epoch s':>10}{'img/s':>11}"
        f"{'trial-ep/h':>12}{'12.8k study h':>15}{'x eager':>9}  path"
    )
    print(header)
    print("-" * len(header), flush=True)
    rows: list[dict[str, Any]] = []

    def show(row: dict[str, Any]) -> None:
        rows.append(row)
        eager = [r for r in rows if r["row"] == "eager" and r["optimizer"] == row["optimizer"]]
        row["x_eager"] = (
            row["trial_epochs_per_h"] / eager[0]["trial_epochs_per_h"] if eager else None
        )
        ratio = f"{row['x_eager']:>9.2f}" if row["x_eager"] is not None else f"{'':>9}"
        print(
            f"{row['row']:<10}{row['optimizer']:<7}{row['trials']:>7}{row['epoch_s']:>10.3f}"
            f"{row['images_per_s']:>11.0f}{row['trial_epochs_per_h']:>12.1f}"
            f"{row['study_hours']:>15.2f}{ratio}  {row['fast_path']}",
            flush=True,
        )

    for optimizer in args.optimizers.split(","):
        if "eager" in rows_wanted:
            show(measure_trial(args, optimizer, fast=False))
        if "fast" in rows_wanted:
            show(measure_trial(args, optimizer, fast=True))
        if "ray" in rows_wanted and args.ray_trials > 0:
            if importlib.util.find_spec("ray") is None:
                print(f"ray x{args.ray_trials}  {optimizer}: skipped (ray is not installed here)")
            else:
                show(measure_ray(args, optimizer, args.ray_trials))
        if "pack" in rows_wanted:
            for size in _ints(args.packs):
                show(measure_pack(args, optimizer, size))
    fusion = []
    for k in _ints(args.fusion):
        result = measure_fusion(args, k)
        fusion.append(result)
        print(
            f"fwd+bwd of K={k}: vmap(functional_call) {result['vmap_ms']:.2f} ms, hand-fused "
            f"{result['fused_ms']:.2f} ms, vmap/fused {result['vmap_over_fused']:.2f}",
            flush=True,
        )
    best = max(rows, key=lambda r: r["trial_epochs_per_h"]) if rows else None
    if best is not None:
        print(
            f"best: {best['row']} ({best['optimizer']}): {best['images_per_s']:.0f} img/s, "
            f"the 12,800 trial-epoch study in {best['study_hours']:.2f} h on this machine "
            f"(goal: < 1 h, ~{TARGET_IMAGES_PER_S:,} img/s)"
        )
    out = {"device": args.device, "device_name": name, "args": vars(args), "rows": rows,
           "fusion": fusion}  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
