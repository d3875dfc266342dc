"""A spec's model checked: its name and options known, its size within what any spec may ask
for (estimated from its options, nothing built), its option values accepted by the model's
own rules, and whether its trials can be packed. The last two build the model on the meta
device (no memory, about a millisecond).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from study.data.registry import dataset_info
from study.spec.base import one_of, problem
from study.suggest import did_you_mean

if TYPE_CHECKING:  # pragma: no cover
    from models.size import ModelSize

_DROPOUT_NAMES = ("Dropout", "AlphaDropout", "FeatureAlphaDropout")
#: The most modules a spec's model may have: checking a spec builds its model on the meta
#: device, about 0.2 ms a module (ResNet-1202 has 3,606; resnet20 depth 60002, 180,006: 25 s).
MAX_MODEL_MODULES = 5_000
#: The most parameters a spec's model may have (400 GB of float32 weights); far above the
#: service's own limit (HPROBUST_MAX_MODEL_PARAMS), and far below where building one on the
#: meta device overflows.
MAX_MODEL_PARAMS = 10**11


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
    option value is checked by the model's own rules (:mod:`models.options`). First its size
    is estimated from its options (closed form, :func:`models.size.estimate_size`) and a
    model beyond :data:`MAX_MODEL_MODULES` modules or :data:`MAX_MODEL_PARAMS` parameters is
    refused without being built (building it would take minutes, or overflow)."""
    import torch

    from models import ModelOptionError, create_model

    info = dataset_info(dataset)
    options = {k: v for k, v in model.items() if k != "name"}
    check_model_ceilings(model, dataset)
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


def count_text(value: float) -> str:
    """A count as people read it: ``600001``, ``2.9e12``."""
    if isinstance(value, int) and value < 10**7:
        return f"{value:d}"
    return f"{value:.2g}".replace("e+", "e")


def model_size(model: Mapping[str, Any], dataset: Any) -> ModelSize:
    """The model's size for the dataset's inputs (:func:`models.size.estimate_size`)."""
    from models.size import estimate_size

    info = dataset_info(dataset)
    options = {k: v for k, v in model.items() if k != "name"}
    return estimate_size(
        model["name"], in_shape=tuple(info.in_shape), num_classes=info.num_classes, **options
    )


def model_field(model: Mapping[str, Any], size: ModelSize) -> tuple[str, Any]:
    """The field a size problem names: the first option that scales the model the spec sets
    (``model.width``), else ``model.name``; and its value."""
    for option in size.drivers:
        if option in model:
            return f"model.{option}", model[option]
    return "model.name", model["name"]


def check_model_ceilings(model: dict[str, Any], dataset: Any) -> None:
    """Refuse a model whose estimated size is beyond what any spec may ask for (the service's
    own, smaller limits are settings: :mod:`study.spec.bounds`). A bad option value is refused
    as the build would refuse it; one the estimate cannot judge is left to the build."""
    from models import ModelOptionError

    try:
        size = model_size(model, dataset)
    except ModelOptionError as exc:
        raise problem(f"model.{exc.option}", f"must be {exc.rule}", exc.value) from None
    except ValueError:
        return  # e.g. inputs too small for the model: the build says so
    field, value = model_field(model, size)
    name = model["name"]
    if size.modules > MAX_MODEL_MODULES:
        rule = (
            f"must keep the model at most {MAX_MODEL_MODULES} modules; {name} with these "
            f"options has {size.modules} (estimated from its options; nothing was built)"
        )
        raise problem(field, rule, value)
    if size.params > MAX_MODEL_PARAMS:
        rule = (
            f"must keep the model at most {count_text(MAX_MODEL_PARAMS)} parameters; {name} with "
            f"these options has {count_text(size.params)} (estimated from its options; nothing "
            "was built)"
        )
        raise problem(field, rule, value)


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
