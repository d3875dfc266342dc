"""What one trial and a pack of trials share: the device, the seeded model, its optimizer, the
data on the device, the precision and the divergence rule. Both loops (:mod:`study.train.trial`
and :mod:`study.train.pack`) build on these, so a packed member is built exactly as its trial."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from study.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from study.data.loader import Dataset
    from study.spec.trial_config import TrialConfig

#: Check the running training loss for NaN/inf every this many steps (one host sync each).
NONFINITE_CHECK_EVERY = 50


def resolve_device(device: str) -> torch.device:
    """``auto`` (CUDA if there is one, else CPU), ``cpu``, ``cuda`` or ``cuda:<index>``.

    Raises:
        ConfigError: a CUDA device asked for where there is none.
    """
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} is not available: torch.cuda.is_available() is false")
    return torch.device(device)


def build_model(cfg: TrialConfig, device: torch.device) -> torch.nn.Module:
    """The trial's model, seeded with ``cfg.seed`` and initialized, on ``device`` (float64 for
    ``precision: fp64``). Draws from torch's global generator: call inside ``fork_rng``."""
    import torch

    import models

    torch.manual_seed(cfg.seed)
    try:
        model = models.create_model(
            cfg.model_name, in_shape=cfg.in_shape, num_classes=cfg.num_classes, **cfg.model_options
        )
        models.apply_init(model, cfg.init, cfg.init_scale)
    except ConfigError:
        raise
    except ValueError as exc:
        raise ConfigError(f"model: {exc}") from exc
    model = model.to(device)
    return model.double() if cfg.precision == "fp64" else model


def build_optimizer(cfg: TrialConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    """The trial's optimizer over ``model`` (errors read ``optimizer: ...``)."""
    from study.optim.registry import create_optimizer

    try:
        return create_optimizer(cfg.optimizer_name, model, lr=cfg.lr, **cfg.optimizer_hparams)
    except ValueError as exc:  # ConfigError included
        raise ConfigError(f"optimizer: {exc}") from exc


def load_data(cfg: TrialConfig, device: torch.device) -> tuple[Dataset, Any, Any]:
    """``(dataset, x_train, x_val)``: the trial's dataset on ``device``; the inputs in float64
    for ``precision: fp64`` (the dataset itself is float32 and cached)."""
    import torch

    from study.data.loader import load_dataset

    data = load_dataset(cfg.dataset, device=device, data_dir=cfg.data_dir)
    if cfg.precision == "fp64":
        return data, data.x_train.to(torch.float64), data.x_val.to(torch.float64)
    return data, data.x_train, data.x_val


def precision_used(cfg: TrialConfig, device: torch.device) -> str:
    """``bf16`` only on CUDA (fp32 elsewhere); ``fp32`` and ``fp64`` as asked."""
    if cfg.precision == "bf16":
        return "bf16" if device.type == "cuda" else "fp32"
    return cfg.precision


def accumulator_dtype(cfg: TrialConfig) -> torch.dtype:
    """Losses are summed in float32, in float64 for ``precision: fp64``."""
    import torch

    return torch.float64 if cfg.precision == "fp64" else torch.float32


def divergence_threshold(num_classes: int) -> float:
    """An epoch whose mean training loss is above ``3 ln C`` has diverged (chance is ``ln C``)."""
    return 3.0 * math.log(num_classes)
