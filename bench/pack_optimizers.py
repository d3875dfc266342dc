"""Benchmark: a pack's Adam-family step, batched (``study.optim.batched.TorchFamily``) against K
torch optimizers, one per member, over views of the stacked parameters.

K members of one arm (the same optimizer and hyperparameters, their own learning rates) hold
their parameters stacked, as a pack does: one ``(K, ...)`` tensor per parameter of the model.
Three ways to step them, side by side in one process:

- ``batched``: ``TorchFamily`` (torch's formulas with ``torch._foreach_*`` over all K members'
  rows at once; per-member numbers from a table made on the host once per epoch);
- ``foreach``: K ``torch.optim`` instances with ``foreach=True``, each over views of its
  member's rows (what ``PerMember`` would be with torch's foreach kernels);
- ``default``: the same K instances with torch's default implementation (what
  ``study.optim.batched.PerMember`` does today: on CPU the for-loop kernels).

Each timed block runs ``--block-steps`` optimizer steps (the gradients fixed and random; a
step's cost does not depend on their values); blocks alternate between the three in a
rotating order so that drift in the machine's load hits all alike. Printed per optimizer and
K: the median time of one step of each (wall clock, and CPU time of this process: less
disturbed by other jobs; with ``--threads 1`` the work done), the ratios batched/foreach and
batched/default of the medians, and the median [25th, 75th percentile] of the ratios of
adjacent blocks (the noise). Before timing, every way is checked to give the same parameters
after a few steps from the same start.

    .venv/bin/python bench/pack_optimizers.py [--model resnet20] [--k 4 16] [--threads 1]
        [--blocks 12] [--block-steps 3] [--optimizers adam adamw adagrad rmsprop nadam]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from types import SimpleNamespace
from typing import Any

import torch
from torch import nn

import models
from study.optim.batched import TorchFamily
from study.optim.registry import optimizer_hparams

WAYS = ("batched", "foreach", "default")
CLOCKS = ("wall", "cpu")
TORCH_CLASS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "adagrad": torch.optim.Adagrad,
    "rmsprop": torch.optim.RMSprop,
    "nadam": torch.optim.NAdam,
}


def stacked(model: str, k: int) -> list[torch.Tensor]:
    """K models' parameters stacked: one ``(K, ...)`` tensor per parameter."""
    members = []
    for seed in range(k):
        torch.manual_seed(seed)
        members.append(models.create_model(model, in_shape=(3, 32, 32), num_classes=10))
    names = [n for n, _ in members[0].named_parameters()]
    return [torch.stack([dict(m.named_parameters())[n].detach() for m in members]) for n in names]


class Batched:
    """TorchFamily over all K rows, its per-step numbers from a table made on the host."""

    def __init__(self, name: str, leaves: list[torch.Tensor], lrs: list[float]) -> None:
        self.leaves = leaves
        self.lrs = lrs
        self.family = TorchFamily((0, len(lrs)), SimpleNamespace(optimizer_name=name,
                                                                 optimizer_hparams={}))  # fmt: skip
        self.t = 0

    def step(self, grads: list[torch.Tensor]) -> None:
        self.t += 1
        rows = [self.family.coefficients(lr, self.t) for lr in self.lrs]
        coef = torch.tensor(rows, dtype=torch.float64).to(self.leaves[0].dtype)
        self.family.step(self.leaves, grads, None, coef)


class PerMember:
    """One torch optimizer per member over views of its rows (``foreach`` as given)."""

    def __init__(
        self, name: str, leaves: list[torch.Tensor], lrs: list[float], foreach: bool | None
    ) -> None:
        hparams = optimizer_hparams(name)
        if "betas" in hparams:
            hparams["betas"] = tuple(hparams["betas"])
        self.views = [[nn.Parameter(leaf[r]) for leaf in leaves] for r in range(len(lrs))]
        self.optimizers = [
            TORCH_CLASS[name](views, lr=lr, foreach=foreach, **hparams)
            for views, lr in zip(self.views, lrs, strict=True)
        ]

    def step(self, grads: list[torch.Tensor]) -> None:
        for r, (views, optimizer) in enumerate(zip(self.views, self.optimizers, strict=True)):
            for view, grad in zip(views, grads, strict=True):
                view.grad = grad[r]
            optimizer.step()


def build(way: str, name: str, start: list[torch.Tensor], lrs: list[float]) -> Any:
    leaves = [t.clone() for t in start]
    if way == "batched":
        return Batched(name, leaves, lrs)
    return PerMember(name, leaves, lrs, foreach=True if way == "foreach" else None)


def params_of(stepper: Any) -> list[torch.Tensor]:
    if isinstance(stepper, Batched):
        return stepper.leaves
    return [torch.stack([views[j].detach() for views in stepper.views]) for j in range(
        len(stepper.views[0]))]  # fmt: skip


def check_equal(name: str, start: list[torch.Tensor], lrs: list[float], steps: int = 3) -> float:
    """The largest difference between the three ways after ``steps`` steps (float64)."""
    start64 = [t.double() for t in start]
    gen = torch.Generator().manual_seed(1)
    grads = [[torch.randn(t.shape, generator=gen, dtype=torch.float64) for t in start64]
             for _ in range(steps)]  # fmt: skip
    ways = {way: build(way, name, start64, lrs) for way in WAYS}
    for g in grads:
        for stepper in ways.values():
            stepper.step(g)
    base = params_of(ways["batched"])
    return max(
        (a - b).abs().max().item()
        for way in ("foreach", "default")
        for a, b in zip(base, params_of(ways[way]), strict=True)
    )


def timed(stepper: Any, grads: list[torch.Tensor], steps: int) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        stepper.step(grads)
    return (time.perf_counter() - wall) / steps, (time.process_time() - cpu) / steps


def run(name: str, k: int, start: list[torch.Tensor], args: argparse.Namespace) -> dict:
    lrs = [1e-3 * (1 + 0.1 * r) for r in range(k)]
    gen = torch.Generator().manual_seed(0)
    grads = [torch.randn(t.shape, generator=gen) * 1e-3 for t in start]
    ways = {way: build(way, name, start, lrs) for way in WAYS}
    for stepper in ways.values():  # warm-up: state made, first-step branches taken
        for _ in range(2):
            stepper.step(grads)
    times = {(clock, way): [] for clock in CLOCKS for way in WAYS}
    orders = itertools.cycle([WAYS[i:] + WAYS[:i] for i in range(len(WAYS))])
    for _ in range(args.blocks):
        for way in next(orders):
            wall, cpu = timed(ways[way], grads, args.block_steps)
            times["wall", way].append(wall)
            times["cpu", way].append(cpu)
    out = {}
    for clock in CLOCKS:
        ms = {way: 1e3 * statistics.median(times[clock, way]) for way in WAYS}
        row = {"ms": ms}
        for other in ("foreach", "default"):
            pairs = [a / b for a, b in zip(times[clock, "batched"], times[clock, other],
                                           strict=True)]  # fmt: skip
            q1, med, q3 = statistics.quantiles(pairs, n=4)
            row[other] = (ms["batched"] / ms[other], med, q1, q3)
        out[clock] = row
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--k", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--optimizers", nargs="+", default=list(TORCH_CLASS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--blocks", type=int, default=12)
    parser.add_argument("--block-steps", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"pack optimizer step, {args.model}, CPU, {args.threads} thread(s), torch "
        f"{torch.__version__}; {args.blocks} blocks x {args.block_steps} steps per way"
    )
    print("ratio: batched / per-member; [q1, q3]: of adjacent blocks' ratios (the noise)")
    for k in args.k:
        start = stacked(args.model, k)
        n_params = sum(t.numel() for t in start)
        print(f"\nK = {k} ({n_params / 1e6:.2f} M parameters in the pack)")
        header = (
            f"{'optimizer':<9} {'clock':<5} {'batched':>9} {'foreach':>9} {'default':>9}  "
            f"{'vs foreach [q1, q3]':<24} {'vs default [q1, q3]':<24} max |diff| (fp64)"
        )
        print(header)
        for name in args.optimizers:
            diff = check_equal(name, start if k <= 4 else [t[:4] for t in start], [1e-3] * min(
                k, 4))  # fmt: skip
            result = run(name, k, start, args)
            for clock in CLOCKS:
                row = result[clock]
                ms = row["ms"]
                cells = [
                    f"{row[o][0]:.2f} [{row[o][2]:.2f}, {row[o][3]:.2f}]".ljust(24)
                    for o in ("foreach", "default")
                ]
                print(
                    f"{name:<9} {clock:<5} {ms['batched']:>7.2f}ms {ms['foreach']:>7.2f}ms "
                    f"{ms['default']:>7.2f}ms  {cells[0]} {cells[1]} "
                    + (f"{diff:.1e}" if clock == "wall" else "")
                )


if __name__ == "__main__":
    main()
