"""apply_init: every scheme's statistics against its formula, biases, norm layers, scale,
PyTorch's default, determinism and errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from models import INIT_SCHEMES, NORM_LAYERS, WEIGHT_LAYERS, apply_init, create_model


def _std(scheme: str, fan_in: int, fan_out: int) -> float:
    """The weight std each scheme promises (orthogonal: for rows <= cols)."""
    return {
        "default": 1 / math.sqrt(3 * fan_in),  # U(±1/sqrt(fan_in))
        "kaiming_normal": math.sqrt(2 / fan_in),
        "kaiming_uniform": math.sqrt(2 / fan_in),
        "xavier_normal": math.sqrt(2 / (fan_in + fan_out)),
        "xavier_uniform": math.sqrt(2 / (fan_in + fan_out)),
        "orthogonal": 1 / math.sqrt(fan_in),  # rows are orthonormal
        "lecun_normal": 1 / math.sqrt(fan_in),
        "normal": 0.01,
    }[scheme]


UNIFORM = {"default", "kaiming_uniform", "xavier_uniform"}
NORMAL = {"kaiming_normal", "xavier_normal", "lecun_normal", "normal"}

# (layer, fan_in, fan_out); fan_in != fan_out so a mode mix-up shows.
LAYERS = [
    (lambda: nn.Linear(512, 256), 512, 256),
    (lambda: nn.Conv2d(64, 32, 3), 64 * 9, 32 * 9),
]


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def test_registry_names() -> None:
    assert set(INIT_SCHEMES) == {
        "default",
        "kaiming_normal",
        "kaiming_uniform",
        "xavier_normal",
        "xavier_uniform",
        "orthogonal",
        "lecun_normal",
        "normal",
    }
    assert UNIFORM | NORMAL | {"orthogonal"} == set(INIT_SCHEMES)


@pytest.mark.parametrize("scheme", list(INIT_SCHEMES))
@pytest.mark.parametrize(("make", "fan_in", "fan_out"), LAYERS, ids=["linear", "conv"])
def test_weight_statistics_match_the_formula(scheme: str, make, fan_in: int, fan_out: int) -> None:
    layer = make()
    apply_init(layer, scheme)
    w = layer.weight.detach().double().flatten()
    expected = _std(scheme, fan_in, fan_out)
    assert w.std().item() == pytest.approx(expected, rel=0.03)
    assert abs(w.mean().item()) < 5 * expected / math.sqrt(w.numel())
    kurtosis = (((w - w.mean()) / w.std()) ** 4).mean().item()
    if scheme in UNIFORM:
        bound = math.sqrt(3) * expected
        assert w.abs().max().item() <= bound * (1 + 1e-6)
        assert w.abs().max().item() >= 0.99 * bound
        assert kurtosis == pytest.approx(1.8, abs=0.1)
    elif scheme in NORMAL:
        assert kurtosis == pytest.approx(3.0, abs=0.2)  # a plain (untruncated) normal


@pytest.mark.parametrize("scheme", list(INIT_SCHEMES))
def test_biases_are_zero_except_for_default(scheme: str) -> None:
    layer = nn.Linear(64, 32)
    apply_init(layer, scheme)
    if scheme == "default":  # PyTorch's: U(±1/sqrt(fan_in))
        assert layer.bias.abs().max().item() <= 1 / 8
        assert layer.bias.abs().max().item() > 0
    else:
        assert torch.count_nonzero(layer.bias) == 0


@pytest.mark.parametrize("make", [lambda: nn.Linear(256, 512), lambda: nn.Conv2d(16, 64, 3)])
def test_orthogonal_rows_are_orthonormal(make) -> None:
    layer = make()
    apply_init(layer, "orthogonal")
    w = layer.weight.detach().flatten(1).double()
    rows, cols = w.shape
    if rows <= cols:
        torch.testing.assert_close(w @ w.T, torch.eye(rows, dtype=torch.float64), atol=1e-5, rtol=0)
    else:  # more rows than columns: the columns are orthonormal
        torch.testing.assert_close(w.T @ w, torch.eye(cols, dtype=torch.float64), atol=1e-5, rtol=0)
    square = nn.Linear(128, 128)
    apply_init(square, "orthogonal", scale=2.0)
    w = square.weight.detach().double()
    torch.testing.assert_close(w @ w.T, 4 * torch.eye(128, dtype=torch.float64), atol=1e-4, rtol=0)


def _toy(batchnorm: bool = True) -> nn.Module:
    return create_model("toy_cnn", in_shape=(3, 32, 32), num_classes=10, batchnorm=batchnorm)


def _small_vit() -> nn.Module:
    return create_model("vit_tiny", in_shape=(3, 8, 8), num_classes=10, depth=2, dim=32, heads=4)


@pytest.mark.parametrize("scheme", [s for s in INIT_SCHEMES if s != "default"])
@pytest.mark.parametrize("make", [_toy, _small_vit], ids=["toy_cnn", "vit"])
def test_norm_layers_one_zero_and_all_biases_zero(scheme: str, make) -> None:
    model = make()
    with torch.no_grad():  # disturb everything first
        for p in model.parameters():
            p.uniform_(-3, 3)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.fill_(5.0)
                m.running_var.fill_(7.0)
    pos_before = getattr(model, "pos_embed", torch.zeros(1)).detach().clone()
    apply_init(model, scheme)
    norms = [m for m in model.modules() if isinstance(m, NORM_LAYERS)]
    assert norms
    for m in norms:
        assert torch.all(m.weight == 1) and torch.all(m.bias == 0)
        if isinstance(m, nn.BatchNorm2d):
            assert torch.all(m.running_mean == 0) and torch.all(m.running_var == 1)
    for m in model.modules():
        if isinstance(m, WEIGHT_LAYERS) and m.bias is not None:
            assert torch.count_nonzero(m.bias) == 0
    if hasattr(model, "pos_embed"):  # left as created (documented)
        assert torch.equal(model.pos_embed, pos_before)


@pytest.mark.parametrize("name", ["mlp", "resnet20", "wrn", "mobilenetv3_small"])
def test_every_model_kaiming_normal(name: str) -> None:
    model = create_model(name, in_shape=(1, 8, 8), num_classes=10, batchnorm=True)
    apply_init(model, "kaiming_normal")
    for m in model.modules():
        if isinstance(m, WEIGHT_LAYERS):
            fan_in = m.weight[0].numel()
            if m.weight.numel() >= 4096:  # enough samples for a 10% check
                assert m.weight.std().item() == pytest.approx(math.sqrt(2 / fan_in), rel=0.1)
            if m.bias is not None:
                assert torch.count_nonzero(m.bias) == 0
        elif isinstance(m, NORM_LAYERS):
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0)


def test_default_reproduces_pytorchs_construction_init() -> None:
    torch.manual_seed(3)
    fresh = create_model("mlp", in_shape=(1, 8, 8), num_classes=10, batchnorm=True)
    torch.manual_seed(4)
    other = create_model("mlp", in_shape=(1, 8, 8), num_classes=10, batchnorm=True)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(1.0)
        for m in other.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.running_mean.fill_(2.0)
    torch.manual_seed(3)
    apply_init(other, "default")
    a, b = fresh.state_dict(), other.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a), "default differs from PyTorch's own init"


@pytest.mark.parametrize("scheme", list(INIT_SCHEMES))
def test_scale_multiplies_weights_not_biases(scheme: str) -> None:
    runs = {}
    for scale in (1.0, 0.25):
        torch.manual_seed(11)
        model = _toy(batchnorm=False)
        torch.manual_seed(12)
        runs[scale] = apply_init(model, scheme, scale=scale)
    for m1, m2 in zip(runs[1.0].modules(), runs[0.25].modules(), strict=True):
        if isinstance(m1, WEIGHT_LAYERS):
            torch.testing.assert_close(m2.weight, 0.25 * m1.weight, rtol=0, atol=0)
            assert m2.weight.std().item() == pytest.approx(0.25 * m1.weight.std().item())
            torch.testing.assert_close(m2.bias, m1.bias, rtol=0, atol=0)


def test_scale_leaves_norm_layers_alone() -> None:
    model = apply_init(_toy(), "xavier_normal", scale=5.0)
    for m in model.modules():
        if isinstance(m, NORM_LAYERS):
            assert torch.all(m.weight == 1)


@pytest.mark.parametrize("scheme", list(INIT_SCHEMES))
def test_deterministic_under_manual_seed(scheme: str) -> None:
    def state(seed: int) -> dict[str, torch.Tensor]:
        model = _toy()
        torch.manual_seed(seed)
        return apply_init(model, scheme, scale=1.5).state_dict()

    a, b, c = state(1), state(1), state(2)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_apply_init_returns_the_same_model() -> None:
    model = _toy()
    assert apply_init(model, "normal") is model


def test_unknown_scheme_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError) as info:
        apply_init(_toy(), "he")
    message = str(info.value)
    assert "unknown init scheme 'he'" in message
    for name in INIT_SCHEMES:
        assert name in message


@pytest.mark.parametrize("scale", [0, -1.0, float("nan"), float("inf"), True, "2"])
def test_bad_scale(scale: object) -> None:
    model = nn.Linear(4, 4)
    before = model.weight.detach().clone()
    with pytest.raises(ValueError, match=r"init scale must be a finite number > 0; got"):
        apply_init(model, "normal", scale=scale)  # type: ignore[arg-type]
    assert torch.equal(model.weight, before)  # nothing changed


def test_integer_scale_is_accepted() -> None:
    torch.manual_seed(0)
    a = apply_init(nn.Linear(64, 64), "normal", scale=2)
    assert a.weight.std().item() == pytest.approx(0.02, rel=0.05)
