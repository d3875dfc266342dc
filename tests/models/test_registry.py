"""create_model / model_options: the registry, its error messages and option defaults."""

from __future__ import annotations

import pytest
import torch

from models import MODELS, create_model, model_options

SMALL = (1, 8, 8)


def test_registry_holds_the_issue_models() -> None:
    assert set(MODELS) == {
        "mlp",
        "toy_cnn",
        "resnet20",
        "mobilenetv3_small",
        "wrn",
        "vit_tiny",
        "resnet50",
    }


def test_unknown_model_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError) as info:
        create_model("resnet18", in_shape=SMALL, num_classes=10)
    message = str(info.value)
    assert "unknown model 'resnet18'" in message
    for name in MODELS:
        assert name in message
    with pytest.raises(ValueError, match="valid models"):
        model_options("nope")


@pytest.mark.parametrize("name", list(MODELS))
def test_unknown_option_names_it_and_lists_the_valid_ones(name: str) -> None:
    with pytest.raises(ValueError) as info:
        create_model(name, in_shape=SMALL, num_classes=10, colour="blue")
    message = str(info.value)
    assert "'colour'" in message and repr(name) in message
    for option in model_options(name):
        assert option in message


@pytest.mark.parametrize("name", list(MODELS))
def test_model_options_are_exactly_the_accepted_options(name: str) -> None:
    options = model_options(name)
    assert options, f"{name} has no options"
    # Passing every option explicitly, at its default, is accepted and gives the same model.
    torch.manual_seed(0)
    explicit = create_model(name, in_shape=SMALL, num_classes=3, **options)
    torch.manual_seed(0)
    implicit = create_model(name, in_shape=SMALL, num_classes=3)
    a, b = explicit.state_dict(), implicit.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_model_options_defaults() -> None:
    assert model_options("mlp") == {"hidden": [256, 256], "batchnorm": False, "activation": "relu"}
    assert model_options("toy_cnn") == {"width": 32, "batchnorm": True}
    assert model_options("resnet20") == {"depth": 20, "batchnorm": True}
    assert model_options("wrn") == {"depth": 16, "widen": 4, "dropout": 0.0, "batchnorm": True}
    assert model_options("vit_tiny") == {
        "patch_size": 4,
        "depth": 12,
        "dim": 192,
        "heads": 3,
        "mlp_ratio": 4.0,
        "norm": True,
    }
    assert model_options("mobilenetv3_small") == {"batchnorm": True, "dropout": 0.2}
    assert model_options("resnet50") == {"batchnorm": True, "stem": "imagenet"}


def test_model_options_returns_a_fresh_copy() -> None:
    options = model_options("mlp")
    options["hidden"].append(7)
    options["batchnorm"] = True
    assert model_options("mlp") == {"hidden": [256, 256], "batchnorm": False, "activation": "relu"}


@pytest.mark.parametrize(
    ("name", "options", "fragments"),
    [
        ("resnet20", {"depth": 21}, ["'depth'", "6n+2", "21"]),
        ("resnet20", {"depth": 2}, ["'depth'", ">= 8", "2"]),
        ("resnet20", {"batchnorm": "no"}, ["'batchnorm'", "bool", "'no'"]),
        ("wrn", {"widen": 0}, ["'widen'", ">= 1", "0"]),
        ("wrn", {"widen": 2.5}, ["'widen'", "integer", "2.5"]),
        ("wrn", {"depth": 15}, ["'depth'", "6n+4", "15"]),
        ("wrn", {"dropout": 1.0}, ["'dropout'", "[0.0, 1.0)", "1.0"]),
        ("vit_tiny", {"dim": 100, "heads": 3}, ["'dim'", "multiple of 'heads'", "100"]),
        ("vit_tiny", {"patch_size": 0}, ["'patch_size'", ">= 1", "0"]),
        ("vit_tiny", {"norm": 1}, ["'norm'", "bool", "1"]),
        ("vit_tiny", {"mlp_ratio": float("nan")}, ["'mlp_ratio'", "nan"]),
        ("mlp", {"hidden": [64, 0]}, ["'hidden'", "integers >= 1", "[64, 0]"]),
        ("mlp", {"hidden": "256"}, ["'hidden'", "list", "'256'"]),
        ("mlp", {"activation": "swish"}, ["'activation'", "'relu'", "'swish'"]),
        ("toy_cnn", {"width": -4}, ["'width'", ">= 1", "-4"]),
        ("mobilenetv3_small", {"dropout": -0.1}, ["'dropout'", "-0.1"]),
        ("resnet50", {"stem": "tiny"}, ["'stem'", "'imagenet'", "'cifar'", "'tiny'"]),
    ],
)
def test_bad_option_value_names_option_rule_and_value(
    name: str, options: dict, fragments: list[str]
) -> None:
    with pytest.raises(ValueError) as info:
        create_model(name, in_shape=SMALL, num_classes=10, **options)
    message = str(info.value)
    assert message.startswith(f"{name}: option")
    for fragment in fragments:
        assert fragment in message, (fragment, message)


@pytest.mark.parametrize("in_shape", [(3, 32), (0, 8, 8), (1, 8.0, 8), "3x32x32", (1, True, 8)])
def test_bad_in_shape(in_shape: object) -> None:
    with pytest.raises(ValueError, match=r"in_shape must be three integers >= 1.*got"):
        create_model("mlp", in_shape=in_shape, num_classes=10)  # type: ignore[arg-type]


@pytest.mark.parametrize("num_classes", [0, -1, 2.0, True])
def test_bad_num_classes(num_classes: object) -> None:
    with pytest.raises(ValueError, match=r"num_classes must be an integer >= 1; got"):
        create_model("mlp", in_shape=SMALL, num_classes=num_classes)  # type: ignore[arg-type]


def test_in_shape_may_be_a_list() -> None:
    net = create_model("toy_cnn", in_shape=[1, 8, 8], num_classes=4)  # type: ignore[arg-type]
    assert net(torch.randn(2, 1, 8, 8)).shape == (2, 4)


def test_toy_cnn_rejects_images_below_4x4() -> None:
    with pytest.raises(ValueError, match=r"toy_cnn: in_shape height and width must be >= 4"):
        create_model("toy_cnn", in_shape=(1, 3, 8), num_classes=2)
    assert create_model("toy_cnn", in_shape=(1, 4, 4), num_classes=2)(
        torch.randn(2, 1, 4, 4)
    ).shape == (2, 2)


@pytest.mark.parametrize("name", list(MODELS))
def test_meta_device_builds_validate_options_without_allocating(name: str) -> None:
    # A spec validator can check a model's options cheaply by building it on the meta device.
    with torch.device("meta"):
        model = create_model(name, in_shape=(3, 32, 32), num_classes=10)
        with pytest.raises(ValueError, match="unknown option"):
            create_model(name, in_shape=(3, 32, 32), num_classes=10, bogus=1)
    assert all(p.is_meta for p in model.parameters())
