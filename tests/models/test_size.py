"""A model's size from its options (models/size.py): every formula equals what the model
built on the meta device has (parameters, modules, leaf outputs of one forward pass), and a
model of any size is judged without being built (issue 21, probes B5 and Q1)."""

from __future__ import annotations

import doctest

import pytest

import models.size
from models import MODELS, ModelOptionError
from models.size import ESTIMATES, estimate_size, measure_size

CASES = [
    ("mlp", (1, 8, 8), 10, {}),
    ("mlp", (3, 5, 7), 4, {"hidden": [3, 5, 7], "batchnorm": True, "activation": "tanh"}),
    ("mlp", (1, 8, 8), 10, {"hidden": []}),
    ("toy_cnn", (1, 8, 8), 10, {}),
    ("toy_cnn", (3, 33, 17), 7, {"width": 5, "batchnorm": False}),
    ("toy_cnn", (2, 4, 5), 3, {"width": 3}),
    ("resnet20", (3, 32, 32), 10, {}),
    ("resnet20", (1, 8, 8), 10, {"depth": 8, "batchnorm": False}),
    ("resnet20", (2, 7, 9), 5, {"depth": 32}),
    ("wrn", (3, 32, 32), 10, {}),
    ("wrn", (1, 9, 7), 3, {"depth": 10, "widen": 1, "batchnorm": False}),
    ("wrn", (3, 8, 8), 10, {"depth": 22, "widen": 2, "dropout": 0.3}),
    ("vit_tiny", (3, 32, 32), 10, {}),
    (
        "vit_tiny",
        (1, 8, 9),
        10,
        {"depth": 2, "dim": 12, "heads": 3, "patch_size": 3, "mlp_ratio": 1.5, "norm": False},
    ),
    ("mobilenetv3_small", (3, 32, 32), 10, {"batchnorm": False}),
    ("resnet50", (1, 28, 28), 10, {"stem": "cifar"}),
]


def test_doctests():
    assert doctest.testmod(models.size).failed == 0


def test_every_model_has_an_estimate():
    assert set(ESTIMATES) == set(MODELS)


@pytest.mark.parametrize(("name", "shape", "classes", "options"), CASES)
def test_the_estimate_is_what_the_built_model_has(name, shape, classes, options):
    got = estimate_size(name, in_shape=shape, num_classes=classes, **options)
    built = measure_size(name, in_shape=shape, num_classes=classes, **options)
    assert (got.params, got.activations, got.modules) == (
        built.params,
        built.activations,
        built.modules,
    )


def test_parameters_are_what_torch_counts():
    """measure_size itself, against a hand count: mlp 64 -> 16 -> 10 has 64*16+16 + 16*10+10
    parameters and keeps 16 (Linear) + 16 (ReLU) + 10 (Linear) floats per sample."""
    size = measure_size("mlp", in_shape=(1, 8, 8), num_classes=10, hidden=[16])
    assert (size.params, size.activations) == (64 * 16 + 16 + 16 * 10 + 10, 16 + 16 + 10)
    assert size.activation_bytes == 4 * 42


def test_huge_models_are_sized_without_being_built():
    """B5 (toy_cnn width 10**9: a 500, the meta build overflowed) and Q1 (resnet20 depth
    60002: 25 s to build on the meta device) are sized in closed form."""
    cnn = estimate_size("toy_cnn", in_shape=(1, 8, 8), num_classes=10, width=10**9)
    w = 10**9
    assert cnn.params == 9 * w + 2 * w + 18 * w * w + 4 * w + 36 * w * w + 4 * w + 2 * w * 10 + 10
    deep = estimate_size("resnet20", in_shape=(1, 8, 8), num_classes=10, depth=60002)
    assert deep.modules == 6 + 18 * 10_000 and deep.params > 9 * 10**8
    assert deep.drivers == ("depth",) and cnn.drivers == ("width",)


@pytest.mark.parametrize(
    ("name", "options", "option"),
    [
        ("toy_cnn", {"width": 0}, "width"),
        ("resnet20", {"depth": 21}, "depth"),
        ("wrn", {"widen": True}, "widen"),
        ("vit_tiny", {"dim": 10}, "dim"),
        ("mlp", {"hidden": [4, 0]}, "hidden"),
        ("resnet50", {"stem": "x"}, "stem"),
    ],
)
def test_bad_options_are_refused_as_the_builder_refuses_them(name, options, option):
    with pytest.raises(ModelOptionError) as info:
        estimate_size(name, in_shape=(3, 32, 32), num_classes=10, **options)
    assert info.value.option == option


def test_unknown_names_and_options():
    with pytest.raises(ValueError, match="unknown model"):
        estimate_size("lenet", in_shape=(1, 8, 8), num_classes=10)
    with pytest.raises(ValueError, match="unknown option"):
        estimate_size("mlp", in_shape=(1, 8, 8), num_classes=10, depth=3)
