"""One training trial: :func:`train_trial` (a config in, its final metrics out).

The whole dataset lives on the device, every step sets the learning rate from the schedule,
and a trial stops at once when it diverges (the rule: docs/design.md#a-study). Everything
random comes from the config's ``seed``, so on CPU the same config gives bitwise identical
results; docs/design.md#one-trial describes the loop, precision and determinism. On CUDA the
trial runs as a pack of one (:mod:`study.train.pack`), on CPU in the eager loop here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from study.numbers import finite
from study.spec.trial_config import TrialConfig
from study.train.parts import (
    NONFINITE_CHECK_EVERY,
    accumulator_dtype,
    build_model,
    build_optimizer,
    divergence_threshold,
    load_data,
    precision_used,
    resolve_device,
)

__all__ = [
    "CONFIG_KEYS",
    "RESULT_KEYS",
    "train_trial",
]

#: Every key a trial config has (:class:`study.spec.trial_config.TrialConfig`).
CONFIG_KEYS: tuple[str, ...] = tuple(TrialConfig.model_fields)

#: Keys of the dict ``train_trial`` returns (it may add more).
RESULT_KEYS: tuple[str, ...] = (
    "val_acc",
    "val_loss",
    "train_loss",
    "best_val_acc",
    "diverged",
    "epochs_completed",
    "wall_time_s",
)


# --------------------------------------------------------------------------- the trial


def train_trial(
    config: TrialConfig | Mapping[str, Any],
    report: Callable[[dict[str, Any]], None] | None = None,
    *,
    fast: bool | None = None,
) -> dict[str, Any]:
    """Train one model on one dataset with one optimizer configuration; return final metrics.

    Args:
        config: a :class:`~study.spec.trial_config.TrialConfig` (trusted as it is: a study makes
            them with ``StudySpec.trial_config``), or a mapping that
            :meth:`TrialConfig.from_mapping` checks first. Required: ``dataset`` (name or ``{name,
            **options}``), ``model`` (``{name, **options}``), ``optimizer`` (``{optimizer:
            sgd|insgd, **hyperparameters}``), ``lr``, ``init``, ``epochs``, ``batch_size``.
            Optional: ``init_scale`` (1.0), ``seed`` (0), ``schedule`` (``cosine`` | ``multistep`` |
            ``constant`` or ``{name, **options}``; default cosine), ``precision`` (``fp32`` |
            ``bf16`` | ``fp64``), ``device`` (``auto`` | ``cpu`` | ``cuda``), ``data_dir``,
            ``num_threads`` (``torch.set_num_threads`` for the trial; restored afterwards).
        report: called after every epoch with ``epoch`` (1-based), ``train_loss``,
            ``val_loss``, ``val_acc``, ``lr`` (of the epoch's last step), ``epoch_time_s``,
            ``diverged``.
        fast: the fast single-trial path (default: on CUDA only; the environment variable
            ``HPROBUST_FAST_PATH=0`` turns the default off). The trial runs as a pack of one
            (:mod:`study.train.pack`): the whole step (forward, backward, SGD/INSGD step) is
            captured as a CUDA graph after a few eager steps and replayed, with fixed input
            buffers, the learning rate as a device tensor and every state updated in place
            (no host sync per step); conv weights and inputs channels-last. ``fast=True`` on
            CPU runs the same fixed-buffer step without a capture (to test it).

    Returns:
        ``val_acc``, ``val_loss``, ``train_loss`` (of the last epoch run), ``best_val_acc``,
        ``diverged``, ``epochs_completed`` (epochs run, a diverged one included),
        ``wall_time_s`` (whole call, data loading included), plus ``precision_used``,
        ``device``, ``num_params``, ``steps_per_epoch``, ``fast_path`` (``eager``,
        ``cuda_graph``, ``static``, or why a graph could not be captured). Losses that are not
        finite are ``None``.

    Raises:
        ConfigError: a bad config (a ``SpecError`` naming field, rule and value of every
            problem), or ``device`` not available.
        DatasetNotFoundError: a torchvision dataset is missing and cannot be downloaded.

    Example:
        >>> result = train_trial({
        ...     "dataset": "digits", "model": {"name": "toy_cnn"},
        ...     "optimizer": {"optimizer": "insgd", "momentum": 0.9, "weight_decay": 5e-4},
        ...     "lr": 0.05, "init": "kaiming_normal", "seed": 0, "epochs": 15,
        ...     "batch_size": 64, "schedule": "cosine", "num_threads": 1,
        ... })
        >>> result["val_acc"] >= 0.95
        True
    """
    import torch

    from study.train.pack import run_members, step_mode

    start = time.perf_counter()
    cfg = TrialConfig.from_mapping(config)
    device = resolve_device(cfg.device)
    if step_mode(fast, device) != "eager":
        forward = None if report is None else (lambda by_member: report(by_member[0]))
        (result,) = run_members([cfg], device, forward, start, fast)
        result.pop("pack_size", None)
        return result
    prev_threads = torch.get_num_threads()
    if cfg.num_threads is not None:
        torch.set_num_threads(cfg.num_threads)
    fork_devices = [device.index or 0] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=fork_devices):
            return _run(cfg, device, report, start)
    finally:
        if cfg.num_threads is not None:
            torch.set_num_threads(prev_threads)


def _run(cfg: TrialConfig, device, report, start: float) -> dict[str, Any]:
    import contextlib

    import torch
    import torch.nn.functional as F

    from study.train.schedule import lr_at

    model = build_model(cfg, device)
    optimizer = build_optimizer(cfg, model)
    data, x_train, x_val = load_data(cfg, device)
    use_bf16 = precision_used(cfg, device) == "bf16"

    def autocast():
        if use_bf16:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    n_train = x_train.shape[0]
    bs = min(cfg.batch_size, n_train)
    steps_per_epoch = n_train // bs
    diverge_above = divergence_threshold(data.num_classes)

    history: dict[str, Any] = {"best_val_acc": 0.0}
    result: dict[str, Any] = {}
    step = 0
    for epoch in range(cfg.epochs):
        epoch_start = time.perf_counter()
        model.train()
        perm = torch.randperm(n_train, generator=generator, device=device)
        loss_sum = torch.zeros((), device=device, dtype=accumulator_dtype(cfg))
        steps_done = 0
        lr = cfg.lr
        for i in range(steps_per_epoch):
            lr = lr_at(cfg.schedule, cfg.lr, step / steps_per_epoch, cfg.epochs)
            for group in optimizer.param_groups:
                group["lr"] = lr
            idx = perm[i * bs : (i + 1) * bs]
            x = data.augment(x_train[idx], generator)
            with autocast():
                loss = F.cross_entropy(model(x), data.y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach().to(loss_sum.dtype)
            step += 1
            steps_done += 1
            if steps_done % NONFINITE_CHECK_EVERY == 0 and not torch.isfinite(loss_sum).item():
                break
        train_loss = loss_sum.item() / steps_done
        diverged = not math.isfinite(train_loss) or train_loss > diverge_above
        val_loss, val_acc = _evaluate(model, x_val, data.y_val, 2 * bs, autocast)
        history["best_val_acc"] = max(history["best_val_acc"], val_acc)
        metrics = {
            "epoch": epoch + 1,
            "train_loss": finite(train_loss),
            "val_loss": finite(val_loss),
            "val_acc": val_acc,
            "lr": lr,
            "epoch_time_s": time.perf_counter() - epoch_start,
            "diverged": diverged,
        }
        if report is not None:
            report(dict(metrics))
        result = metrics
        if diverged:
            break

    return {
        "val_acc": result["val_acc"],
        "val_loss": result["val_loss"],
        "train_loss": result["train_loss"],
        "best_val_acc": history["best_val_acc"],
        "diverged": result["diverged"],
        "epochs_completed": result["epoch"],
        "wall_time_s": time.perf_counter() - start,
        "precision_used": precision_used(cfg, device),
        "device": str(device),
        "num_params": sum(p.numel() for p in model.parameters()),
        "steps_per_epoch": steps_per_epoch,
        "fast_path": "eager",
    }


def _evaluate(model, x, y, batch_size: int, autocast) -> tuple[float, float]:
    """Mean cross-entropy and accuracy (fraction) of ``model`` on ``(x, y)``; one host sync."""
    import torch
    import torch.nn.functional as F

    model.eval()
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    totals = torch.zeros(2, device=x.device, dtype=dtype)  # loss sum, correct
    with torch.no_grad():
        for i in range(0, x.shape[0], batch_size):
            xb, yb = x[i : i + batch_size], y[i : i + batch_size]
            with autocast():
                logits = model(xb)
            totals[0] += F.cross_entropy(logits.to(dtype), yb, reduction="sum")
            totals[1] += (logits.argmax(dim=1) == yb).sum()
    loss_sum, correct = totals.tolist()
    n = x.shape[0]
    return loss_sum / n, correct / n
