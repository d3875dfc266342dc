"""Benchmark: INSGD / SGD time ratio of a whole training step on resnet20, batch 128.

A training step is ``zero_grad``, forward, cross-entropy, backward and ``optimizer.step()``.
Two identical resnet20 models (same seed) are trained side by side in one process, one with
``torch.optim.SGD`` and one with ``study.INSGD`` (same lr, momentum, weight decay); blocks of
``--block-steps`` steps alternate SGD, INSGD, INSGD, SGD, ... so that drift in the machine's
load hits both alike. Each block is timed as a whole (CUDA: synchronized at its ends) and
divided by its steps, on two clocks: wall time, and the CPU time of this process (less
sensitive to other processes on a shared machine; with ``--threads 1`` it is the work done).
Printed per device and clock: the median step time of each optimizer, their ratio, and the
median [25th, 75th percentile] of the ratios of adjacent SGD/INSGD block pairs (the noise).
Target (issue #2): ratio <= 1.05 on CPU and on CUDA.

On CUDA it also checks that ``INSGD.step()`` makes no host-device synchronization
(``torch.cuda.set_sync_debug_mode("error")``), and ``--bf16`` runs the forward under bf16
autocast. ``--batch 2`` on CPU shows the per-step overhead (Python, dispatch) that dominates
when the device is fast.

    .venv/bin/python bench/step_overhead.py [--device cpu|cuda|all] [--blocks 20]
        [--block-steps 2] [--variant paper|reference] [--bf16] [--threads N] [--batch 128]

On a loaded machine: ``--threads 1`` and read the ``cpu`` clock row.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

import models
from study.optim.insgd import INSGD

LR, MOMENTUM, WEIGHT_DECAY = 0.01, 0.9, 5e-4
CLOCKS = ("wall", "cpu")


def _make_step(
    model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, bf16: bool
) -> Callable[[], None]:
    device_type = x.device.type
    autocast = (
        (lambda: torch.autocast(device_type, dtype=torch.bfloat16))
        if bf16
        else contextlib.nullcontext
    )

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast():
            loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()

    return step


def _build(device: torch.device, variant: str) -> tuple[nn.Module, nn.Module, INSGD, object]:
    def resnet20() -> nn.Module:
        torch.manual_seed(0)
        return models.create_model("resnet20", in_shape=(3, 32, 32), num_classes=10).to(device)

    sgd_model, insgd_model = resnet20(), resnet20()
    sgd = torch.optim.SGD(
        sgd_model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY
    )
    insgd = INSGD(insgd_model, lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY, variant=variant)
    return sgd_model, insgd_model, insgd, sgd


def _timed_block(step: Callable[[], None], steps: int, device: torch.device) -> tuple[float, float]:
    """Seconds per step of ``steps`` steps: wall clock, and CPU time of this process."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    sync()
    return (time.perf_counter() - wall) / steps, (time.process_time() - cpu) / steps


def _check_no_sync(model: nn.Module, optimizer: INSGD, x: torch.Tensor, y: torch.Tensor) -> str:
    optimizer.zero_grad(set_to_none=True)
    nn.functional.cross_entropy(model(x), y).backward()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        optimizer.step()
    except RuntimeError as error:
        return f"FAILED: {error}"
    finally:
        torch.cuda.set_sync_debug_mode(0)
    return "ok (no host-device sync in INSGD.step())"


def run_device(device: torch.device, args: argparse.Namespace) -> dict[str, object]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, 3, 32, 32, generator=gen).to(device)
    y = torch.randint(0, 10, (args.batch,), generator=gen).to(device)
    sgd_model, insgd_model, insgd, sgd = _build(device, args.variant)
    steps = {
        "sgd": _make_step(sgd_model, sgd, x, y, args.bf16),
        "insgd": _make_step(insgd_model, insgd, x, y, args.bf16),
    }
    for _ in range(args.warmup):
        steps["sgd"]()
        steps["insgd"]()

    times: dict[tuple[str, str], list[float]] = {
        (clock, name): [] for clock in CLOCKS for name in ("sgd", "insgd")
    }
    for block in range(args.blocks):
        order = ("sgd", "insgd") if block % 2 == 0 else ("insgd", "sgd")
        for name in order:
            wall, cpu = _timed_block(steps[name], args.block_steps, device)
            times["wall", name].append(wall)
            times["cpu", name].append(cpu)

    result: dict[str, object] = {}
    for clock in CLOCKS:
        sgd_times, insgd_times = times[clock, "sgd"], times[clock, "insgd"]
        pairs = [i / s for i, s in zip(insgd_times, sgd_times, strict=True)]
        q1, _, q3 = statistics.quantiles(pairs, n=4) if len(pairs) > 1 else (pairs[0],) * 3
        sgd_ms, insgd_ms = 1e3 * statistics.median(sgd_times), 1e3 * statistics.median(insgd_times)
        result[clock] = {
            "sgd_ms": sgd_ms,
            "insgd_ms": insgd_ms,
            "ratio": insgd_ms / sgd_ms,
            "pair_median": statistics.median(pairs),
            "pair_q1": q1,
            "pair_q3": q3,
        }
    if device.type == "cuda":
        result["sync_check"] = _check_no_sync(insgd_model, insgd, x, y)
    insgd.remove_hooks()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--blocks", type=int, default=20, help="timed blocks per optimizer")
    parser.add_argument("--block-steps", type=int, default=2, help="steps per timed block")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per optimizer")
    parser.add_argument("--variant", choices=["paper", "reference"], default="paper")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast forward")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    devices = [torch.device("cpu")] if args.device in ("cpu", "all") else []
    if args.device in ("cuda", "all"):
        if torch.cuda.is_available():
            devices.append(torch.device("cuda"))
        elif args.device == "cuda":
            parser.error("--device cuda: no CUDA device is available")

    print(
        f"resnet20, batch {args.batch}, lr {LR}, momentum {MOMENTUM}, weight decay "
        f"{WEIGHT_DECAY}, INSGD variant {args.variant}, bf16 autocast {args.bf16}, "
        f"{args.blocks} blocks x {args.block_steps} steps per optimizer, "
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
    )
    header = (
        f"{'device':<8}{'clock':<7}{'SGD ms/step':>13}{'INSGD ms/step':>15}{'ratio':>8}"
        f"{'paired ratio median [q1, q3]':>32}"
    )
    print(header)
    print("-" * len(header))
    notes = []
    for device in devices:
        result = run_device(device, args)
        for clock in CLOCKS:
            r = result[clock]
            paired = f"{r['pair_median']:.3f} [{r['pair_q1']:.3f}, {r['pair_q3']:.3f}]"
            print(
                f"{device.type:<8}{clock:<7}{r['sgd_ms']:>13.2f}{r['insgd_ms']:>15.2f}"
                f"{r['ratio']:>8.3f}{paired:>32}"
            )
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        notes.append(f"{device.type}: {name}")
        if "sync_check" in result:
            notes.append(f"{device.type} sync check: {result['sync_check']}")
    print("target: ratio <= 1.05")
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()
