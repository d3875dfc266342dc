"""Weight-initialization schemes: ``apply_init(model, scheme, scale)`` over the ``INIT_SCHEMES``
registry.

What each scheme does to a model:

- ``default``: PyTorch's own initialization: ``reset_parameters()`` on every module that has
  one (Linear/Conv: Kaiming-uniform with ``a = sqrt(5)``, i.e. U(±1/sqrt(fan_in)), bias
  U(±1/sqrt(fan_in)); norm layers 1/0 and fresh running statistics). For torchvision models
  this is PyTorch's per-module default, *not* the model-specific init torchvision applies in
  its constructors.
- every other scheme sets the weight of every Linear / Conv{1,2,3}d / ConvTranspose{1,2,3}d
  (fan_in = in_channels/groups · kernel size, fan_out = out_channels · kernel size):

  ==================  ==================================================================
  ``kaiming_normal``   N(0, 2/fan_in)  (He et al. 2015, fan_in mode, ReLU gain sqrt(2))
  ``kaiming_uniform``  U(±sqrt(6/fan_in))  (same variance, fan_in mode, ReLU gain)
  ``xavier_normal``    N(0, 2/(fan_in + fan_out))  (Glorot & Bengio 2010, gain 1)
  ``xavier_uniform``   U(±sqrt(6/(fan_in + fan_out)))  (gain 1)
  ``orthogonal``       (semi-)orthogonal matrix of shape (out, fan_in), gain 1 (Saxe 2014)
  ``lecun_normal``     N(0, 1/fan_in), *not* truncated (LeCun et al. 1998)
  ``normal``           N(0, 0.01²)
  ==================  ==================================================================

  and zeroes their biases; norm layers (BatchNorm*, InstanceNorm*, LayerNorm, GroupNorm,
  RMSNorm) get weight 1, bias 0 and fresh running statistics. Parameters that belong to no
  such layer (the ViT's positional embedding and class token) are left as created.

Afterwards ``scale`` multiplies every Linear/Conv weight (biases are not scaled), for
``default`` too. Random draws come from torch's global generator, so ``torch.manual_seed``
makes ``apply_init`` deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import torch
from torch import Tensor, nn

WEIGHT_LAYERS: tuple[type[nn.Module], ...] = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)
"""Layers whose ``weight`` the schemes set and ``scale`` multiplies."""

NORM_LAYERS: tuple[type[nn.Module], ...] = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.SyncBatchNorm,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.RMSNorm,
)
"""Normalization layers (set to weight 1, bias 0 by every non-default scheme)."""


def _normal_001(weight: Tensor) -> None:
    nn.init.normal_(weight, mean=0.0, std=0.01)


def _fan_in(weight: Tensor) -> int:
    # As torch.nn.init computes it: dim 1 times the receptive field.
    return weight.shape[1] * math.prod(weight.shape[2:])


def _lecun_normal(weight: Tensor) -> None:
    fan_in = _fan_in(weight)
    nn.init.normal_(weight, mean=0.0, std=1.0 / math.sqrt(fan_in))


def _reset_norm(module: nn.Module) -> None:
    weight = getattr(module, "weight", None)
    bias = getattr(module, "bias", None)
    if isinstance(weight, Tensor):
        nn.init.ones_(weight)
    if isinstance(bias, Tensor):
        nn.init.zeros_(bias)
    if getattr(module, "track_running_stats", False):
        module.reset_running_stats()


def _init_pytorch_default(model: nn.Module) -> None:
    for module in model.modules():
        reset = getattr(module, "reset_parameters", None)
        if callable(reset):
            reset()


def _init_weights(weight_init: Callable[[Tensor], object], model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, WEIGHT_LAYERS):
            weight_init(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, NORM_LAYERS):
            _reset_norm(module)


INIT_SCHEMES: dict[str, Callable[[nn.Module], None]] = {
    "default": _init_pytorch_default,
    "kaiming_normal": partial(
        _init_weights, partial(nn.init.kaiming_normal_, mode="fan_in", nonlinearity="relu")
    ),
    "kaiming_uniform": partial(
        _init_weights, partial(nn.init.kaiming_uniform_, mode="fan_in", nonlinearity="relu")
    ),
    "xavier_normal": partial(_init_weights, nn.init.xavier_normal_),
    "xavier_uniform": partial(_init_weights, nn.init.xavier_uniform_),
    "orthogonal": partial(_init_weights, partial(nn.init.orthogonal_, gain=1.0)),
    "lecun_normal": partial(_init_weights, _lecun_normal),
    "normal": partial(_init_weights, _normal_001),
}
"""Scheme name -> function that initializes a whole model in place (before ``scale``)."""


def apply_init(model: nn.Module, scheme: str, scale: float = 1.0) -> nn.Module:
    """Initialize ``model`` in place with ``scheme``, then multiply every Linear/Conv weight
    by ``scale``; returns ``model``.

    Args:
        model: any ``nn.Module``.
        scheme: a key of ``INIT_SCHEMES`` (see the module docstring for the formulas).
        scale: finite number > 0 multiplying the Linear/Conv weights afterwards.

    Raises:
        ValueError: unknown scheme (the message lists the valid ones) or a bad scale.

    Example:
        >>> torch.manual_seed(0)
        >>> net = apply_init(nn.Linear(512, 256), "kaiming_normal", scale=0.5)
        >>> round(net.weight.std().item() / (0.5 * (2 / 512) ** 0.5), 1)
        1.0
    """
    if not isinstance(scheme, str) or scheme not in INIT_SCHEMES:
        raise ValueError(
            f"unknown init scheme {scheme!r}; valid schemes: {', '.join(INIT_SCHEMES)}"
        )
    if (
        isinstance(scale, bool)
        or not isinstance(scale, int | float)
        or not math.isfinite(scale)
        or scale <= 0
    ):
        raise ValueError(f"init scale must be a finite number > 0; got {scale!r}")
    with torch.no_grad():
        INIT_SCHEMES[scheme](model)
        if scale != 1.0:
            for module in model.modules():
                if isinstance(module, WEIGHT_LAYERS):
                    module.weight.mul_(scale)
    return model
