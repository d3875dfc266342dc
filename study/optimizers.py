"""The optimizer registry: ``OPTIMIZERS`` maps a name to a factory ``(model, *, lr, **hparams)``.

Importing this module does not import torch (the spec validation uses ``optimizer_hparams``);
the factories import it when they build an optimizer.

    >>> optimizer_hparams("sgd")
    {'momentum': 0.0, 'dampening': 0.0, 'weight_decay': 0.0, 'nesterov': False}
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from study.errors import ConfigError
from study.hparams import check_hparams

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn
    from torch.optim import SGD, Optimizer

    from study.insgd import INSGD

__all__ = ["OPTIMIZERS", "create_optimizer", "optimizer_hparams"]


def _sgd(
    model: nn.Module,
    *,
    lr: float,
    momentum: float = 0.0,
    dampening: float = 0.0,
    weight_decay: float = 0.0,
    nesterov: bool = False,
) -> SGD:
    """``torch.optim.SGD`` over ``model.parameters()``."""
    import torch

    hparams = {
        "lr": lr,
        "momentum": momentum,
        "dampening": dampening,
        "weight_decay": weight_decay,
        "nesterov": nesterov,
    }
    check_hparams(hparams, owner="SGD")
    return torch.optim.SGD(model.parameters(), **hparams)


def _insgd(
    model: nn.Module,
    *,
    lr: float,
    momentum: float = 0.0,
    dampening: float = 0.0,
    weight_decay: float = 0.0,
    nesterov: bool = False,
    norm: str = "l2",
    variant: str = "paper",
    power_momentum: float = 0.9,
    eps: float = 0.01,
) -> INSGD:
    """:class:`study.insgd.INSGD` hooked on ``model``, optimizing ``model.parameters()``."""
    from study.insgd import INSGD

    return INSGD(
        model,
        lr,
        momentum=momentum,
        dampening=dampening,
        weight_decay=weight_decay,
        nesterov=nesterov,
        norm=norm,
        variant=variant,
        power_momentum=power_momentum,
        eps=eps,
    )


OPTIMIZERS: dict[str, Callable[..., Optimizer]] = {
    "sgd": _sgd,
    "insgd": _insgd,
}


def _factory(name: str) -> Callable[..., Optimizer]:
    try:
        return OPTIMIZERS[name]
    except (KeyError, TypeError):
        raise ConfigError(
            f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {name!r}"
        ) from None


def optimizer_hparams(name: str) -> dict[str, Any]:
    """The hyperparameters of optimizer ``name`` (all but ``lr``) and their defaults.

    Raises:
        ConfigError: ``name`` is not in :data:`OPTIMIZERS`.
    """
    signature = inspect.signature(_factory(name))
    return {
        p.name: p.default
        for p in signature.parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name != "lr"
    }


def create_optimizer(name: str, model: nn.Module, *, lr: float, **hparams: Any) -> Optimizer:
    """Build optimizer ``name`` for ``model`` with learning rate ``lr``.

    Args:
        name: a key of :data:`OPTIMIZERS` (``sgd``: momentum, dampening, weight_decay,
            nesterov; ``insgd`` additionally norm, variant, power_momentum, eps).
        model: the model (INSGD hooks its layers); every parameter is optimized.
        lr: the learning rate.
        **hparams: the optimizer's other hyperparameters; omitted ones take their defaults.

    Raises:
        ConfigError: unknown name or hyperparameter (listing the valid ones), or a value
            that breaks a rule (naming the hyperparameter, the rule and the value).
    """
    factory = _factory(name)
    valid = optimizer_hparams(name)
    for key, value in hparams.items():
        if key not in valid:
            raise ConfigError(
                f"unknown hyperparameter {key!r} (= {value!r}) for optimizer {name!r}; "
                f"valid: {', '.join(valid)}"
            )
    try:
        return factory(model, lr=lr, **hparams)
    except ConfigError:
        raise
    except ValueError as error:
        raise ConfigError(str(error)) from error
