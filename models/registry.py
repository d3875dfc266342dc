"""The model registry: ``MODELS`` (name -> builder), ``create_model`` and ``model_options``.

A builder is ``build(in_shape, num_classes, *, option=default, ...)``: its keyword-only
parameters are the model's options, and their defaults are the option defaults.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from models.mlp import build_mlp
from models.resnet_cifar import build_resnet20
from models.torchvision_models import build_mobilenetv3_small, build_resnet50
from models.toy_cnn import build_toy_cnn
from models.vit import build_vit_tiny
from models.wrn import build_wrn

ModelBuilder = Callable[..., nn.Module]

MODELS: dict[str, ModelBuilder] = {
    "mlp": build_mlp,
    "toy_cnn": build_toy_cnn,
    "resnet20": build_resnet20,
    "mobilenetv3_small": build_mobilenetv3_small,
    "wrn": build_wrn,
    "vit_tiny": build_vit_tiny,
    "resnet50": build_resnet50,
}
"""Model name -> builder. Options and defaults: ``model_options(name)``."""


def _builder(name: str) -> ModelBuilder:
    if not isinstance(name, str) or name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid models: {', '.join(MODELS)}")
    return MODELS[name]


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else copy.deepcopy(value)


def model_options(name: str) -> dict[str, Any]:
    """Valid options of model ``name`` with their defaults (tuples given as lists).

    Raises:
        ValueError: unknown model name (the message lists the valid ones).
    """
    params = inspect.signature(_builder(name)).parameters.values()
    return {
        p.name: _jsonable(p.default) for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


def _check_in_shape(in_shape: Any) -> tuple[int, int, int]:
    ok = (
        isinstance(in_shape, Sequence)
        and not isinstance(in_shape, str | bytes)
        and len(in_shape) == 3
        and all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in in_shape)
    )
    if not ok:
        raise ValueError(
            f"in_shape must be three integers >= 1 (channels, height, width); got {in_shape!r}"
        )
    return (in_shape[0], in_shape[1], in_shape[2])


def create_model(
    name: str, *, in_shape: tuple[int, int, int], num_classes: int, **options: Any
) -> nn.Module:
    """Build model ``name`` for images of shape ``in_shape`` = (C, H, W) and ``num_classes``
    outputs (logits of shape ``(N, num_classes)``).

    Options not given take the defaults listed by ``model_options(name)``. The returned model
    has its constructor's initialization; use ``apply_init`` to choose one.

    Raises:
        ValueError: unknown model, unknown option (the message lists the valid ones), or a bad
            ``in_shape``, ``num_classes`` or option value (the message names the rule and value).

    Example:
        >>> net = create_model("resnet20", in_shape=(3, 32, 32), num_classes=10, batchnorm=False)
    """
    builder = _builder(name)
    valid = model_options(name)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(map(repr, unknown))} for model {name!r}; "
            f"valid options: {', '.join(valid) or '(none)'}"
        )
    shape = _check_in_shape(in_shape)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be an integer >= 1; got {num_classes!r}")
    return builder(shape, num_classes, **options)
