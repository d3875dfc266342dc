"""A trial row for hand-built summary tables (the shape ``study.analysis.summarize`` reads)."""

from __future__ import annotations

from typing import Any


def row(arm, lr, init, seed, acc, loss=0.5, diverged=False, **extra) -> dict[str, Any]:
    return {
        "arm": arm,
        "lr": lr,
        "init": init,
        "init_scale": 1.0,
        "seed": seed,
        "val_acc": acc,
        "val_loss": loss,
        "diverged": diverged,
        **extra,
    }
