"""A spec's model checked: its name and options known, its option values accepted by the
model's own rules, and whether its trials can be packed. The last two build the model on the
meta device (no memory, about a millisecond).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from study.data.registry import dataset_info
from study.spec.base import one_of, problem
from study.suggest import did_you_mean

_DROPOUT_NAMES = ("Dropout", "AlphaDropout", "FeatureAlphaDropout")


def check_model(value: dict[str, Any]) -> dict[str, Any]:
    """``{name, **options}``: name is one of the models and every other key one of its options
    (the option values are checked by building the model: :func:`check_model_builds`)."""
    name = value.get("name")
    if not isinstance(name, str):
        raise problem("name", "is required (a model name)", name)
    from models import MODELS, model_options

    if name not in MODELS:
        raise problem("name", one_of(tuple(MODELS), name), name)
    valid = set(model_options(name))
    for key, option in value.items():
        if key != "name" and key not in valid:
            rule = (
                f"is not an option of model {name}{did_you_mean(key, valid)}; valid: "
                + ", ".join(sorted(valid))
            )
            raise problem(key, rule, option)
    return value


def check_model_builds(model: dict[str, Any], dataset: Any) -> None:
    """Build ``model`` on the meta device (no memory, ~ms) for ``dataset``'s inputs: every
    option value is checked by the model's own rules (:mod:`models.options`)."""
    import torch

    from models import ModelOptionError, create_model

    info = dataset_info(dataset)
    options = {k: v for k, v in model.items() if k != "name"}
    try:
        with torch.device("meta"):
            create_model(
                model["name"],
                in_shape=tuple(info.in_shape),
                num_classes=info.num_classes,
                **options,
            )
    except ModelOptionError as exc:
        raise problem(f"model.{exc.option}", f"must be {exc.rule}", exc.value) from None
    except ValueError as exc:
        rule = f"must build for {dataset.name} inputs of shape {tuple(info.in_shape)} ({exc})"
        raise problem("model.name", rule, model["name"]) from None


def pack_refusal(model: str, model_options: Mapping[str, Any], in_shape, num_classes: int):
    """Why this model cannot be packed exactly, or ``None`` when it can.

    A model that draws random numbers in its forward (dropout with ``p > 0``) cannot: each
    trial draws its masks from its own seeded generator, and a batched forward cannot reproduce
    K separate streams. Builds the model on the meta device (no memory).
    """
    import torch

    import models

    with torch.device("meta"):
        net = models.create_model(
            model, in_shape=tuple(in_shape), num_classes=num_classes, **dict(model_options)
        )
    for name, module in net.named_modules():
        cls = type(module).__name__
        if any(cls.endswith(d) for d in _DROPOUT_NAMES) and getattr(module, "p", 0) > 0:
            return (
                f"model {model!r} has dropout (layer {name!r}, p={module.p}): its masks come "
                "from each trial's own generator, which a batched forward cannot reproduce"
            )
    return None
