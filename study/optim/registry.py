"""The optimizer registry: ``OPTIMIZERS`` maps a name to a factory ``(model, *, lr, **hparams)``.

``sgd`` and ``insgd`` (the INSGD paper's subject), the paper's own baselines ``adam`` and
``adagrad``, and ``adamw``, ``rmsprop`` and ``nadam``. Each torch optimizer takes the
hyperparameters torch gives it (minus the implementation switches ``foreach``, ``fused``,
``capturable``, ``differentiable`` and ``maximize``) with torch's defaults, and every value is
checked by :func:`study.optim.hparams.check_hparams` before anything is built.

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
from study.optim.hparams import check_hparams
from study.suggest import did_you_mean

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn
    from torch.optim import SGD, Adagrad, Adam, AdamW, NAdam, Optimizer, RMSprop

    from study.optim.insgd import INSGD

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
    """:class:`study.optim.insgd.INSGD` hooked on ``model``, optimizing ``model.parameters()``."""
    from study.optim.insgd import INSGD

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


def _torch(cls_name: str, owner: str, model: nn.Module, hparams: dict[str, Any]) -> Optimizer:
    """``torch.optim.<cls_name>`` over ``model.parameters()`` after :func:`check_hparams`."""
    import torch

    check_hparams(hparams, owner=owner)
    if "betas" in hparams:  # YAML/JSON give a list; torch documents a tuple
        hparams = {**hparams, "betas": tuple(float(b) for b in hparams["betas"])}
    return getattr(torch.optim, cls_name)(model.parameters(), **hparams)


def _adam(
    model: nn.Module,
    *,
    lr: float,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    amsgrad: bool = False,
    decoupled_weight_decay: bool = False,
) -> Adam:
    """``torch.optim.Adam`` (Kingma & Ba 2015), a baseline of the INSGD paper."""
    return _torch("Adam", "adam", model, {k: v for k, v in locals().items() if k != "model"})


def _adamw(
    model: nn.Module,
    *,
    lr: float,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.01,
    amsgrad: bool = False,
) -> AdamW:
    """``torch.optim.AdamW`` (decoupled weight decay, Loshchilov & Hutter 2019)."""
    return _torch("AdamW", "adamw", model, {k: v for k, v in locals().items() if k != "model"})


def _adagrad(
    model: nn.Module,
    *,
    lr: float,
    lr_decay: float = 0.0,
    weight_decay: float = 0.0,
    initial_accumulator_value: float = 0.0,
    eps: float = 1e-10,
) -> Adagrad:
    """``torch.optim.Adagrad`` (Duchi et al. 2011), a baseline of the INSGD paper."""
    return _torch("Adagrad", "adagrad", model, {k: v for k, v in locals().items() if k != "model"})


def _rmsprop(
    model: nn.Module,
    *,
    lr: float,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    centered: bool = False,
) -> RMSprop:
    """``torch.optim.RMSprop``."""
    return _torch("RMSprop", "rmsprop", model, {k: v for k, v in locals().items() if k != "model"})


def _nadam(
    model: nn.Module,
    *,
    lr: float,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum_decay: float = 0.004,
    decoupled_weight_decay: bool = False,
) -> NAdam:
    """``torch.optim.NAdam`` (Dozat 2016)."""
    return _torch("NAdam", "nadam", model, {k: v for k, v in locals().items() if k != "model"})


OPTIMIZERS: dict[str, Callable[..., Optimizer]] = {
    "sgd": _sgd,
    "insgd": _insgd,
    "adam": _adam,
    "adamw": _adamw,
    "adagrad": _adagrad,
    "rmsprop": _rmsprop,
    "nadam": _nadam,
}


def _factory(name: str) -> Callable[..., Optimizer]:
    try:
        return OPTIMIZERS[name]
    except (KeyError, TypeError):
        raise ConfigError(
            f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {name!r}"
            + did_you_mean(name, OPTIMIZERS)
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
        name: a key of :data:`OPTIMIZERS`; :func:`optimizer_hparams` lists the
            hyperparameters of each (``sgd``: momentum, dampening, weight_decay, nesterov;
            ``insgd`` additionally norm, variant, power_momentum, eps; ``adam``: betas, eps,
            weight_decay, amsgrad, decoupled_weight_decay; ...).
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
                f"unknown hyperparameter {key!r} (= {value!r}) for optimizer {name!r}"
                f"{did_you_mean(key, valid)}; valid: {', '.join(valid)}"
            )
    try:
        return factory(model, lr=lr, **hparams)
    except ConfigError:
        raise
    except ValueError as error:
        raise ConfigError(str(error)) from error
