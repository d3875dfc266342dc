"""Every model of the registry: shapes, gradients, norm removal, parameter counts, structure."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models import MODELS, NORM_LAYERS, WEIGHT_LAYERS, create_model, model_options

SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32)]
CASES = [(name, shape) for name in MODELS if name != "resnet50" for shape in SHAPES]
CASES.append(("resnet50", (3, 224, 224)))
NORM_OPTION = {"vit_tiny": "norm"}  # every other model calls it "batchnorm"


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _norm_layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, NORM_LAYERS)]


def test_every_registered_model_is_tested_on_every_shape() -> None:
    assert {name for name, _ in CASES} == set(MODELS)


@pytest.mark.parametrize(("name", "in_shape"), CASES, ids=[f"{n}-{s}" for n, s in CASES])
def test_forward_backward(name: str, in_shape: tuple[int, int, int]) -> None:
    model = create_model(name, in_shape=in_shape, num_classes=7).train()
    x = torch.randn(2, *in_shape)
    out = model(x)
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()
    nn.functional.cross_entropy(out, torch.tensor([1, 5])).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{name}: {pname} gets no gradient"
        assert torch.isfinite(p.grad).all(), f"{name}: {pname} has a non-finite gradient"
    assert any(p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize("name", list(MODELS))
def test_norm_option_removes_every_norm_layer(name: str) -> None:
    option = NORM_OPTION.get(name, "batchnorm")
    assert option in model_options(name)
    with_norm = create_model(name, in_shape=(1, 8, 8), num_classes=5, **{option: True})
    without = create_model(name, in_shape=(1, 8, 8), num_classes=5, **{option: False})
    assert _norm_layers(with_norm), f"{name} with {option}=true has no norm layer"
    assert _norm_layers(without) == []
    x = torch.randn(2, 1, 8, 8)
    out = without.train()(x)
    assert out.shape == (2, 5)
    out.sum().backward()


@pytest.mark.parametrize("name", list(MODELS))
def test_batch_of_one_in_eval_mode(name: str) -> None:
    model = create_model(name, in_shape=(1, 8, 8), num_classes=3).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 8, 8)).shape == (1, 3)


@pytest.mark.parametrize("name", list(MODELS))
def test_every_parameter_sits_in_a_linear_conv_or_norm_layer(name: str) -> None:
    # INSGD hooks Linear/Conv layers and apply_init sets exactly these layers; only the ViT's
    # positional embedding and class token are plain parameters (left as created).
    model = create_model(name, in_shape=(1, 8, 8), num_classes=3)
    loose = []
    for module in model.modules():
        if isinstance(module, WEIGHT_LAYERS + NORM_LAYERS):
            continue
        loose += [pname for pname, _ in module.named_parameters(recurse=False)]
    assert loose == (["cls_token", "pos_embed"] if name == "vit_tiny" else [])
    assert not any(isinstance(m, nn.MultiheadAttention) for m in model.modules())


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_resnet20_has_about_027m_parameters() -> None:
    model = create_model("resnet20", in_shape=(3, 32, 32), num_classes=10)
    assert abs(_count(model) - 270_000) <= 0.02 * 270_000
    assert _count(model) == 269_722  # He et al.'s option-A ResNet-20
    blocks = [m for m in model.modules() if m.__class__.__name__ == "BasicBlock"]
    assert len(blocks) == 9
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 19 and all(c.bias is None for c in convs)  # 19 convs + fc = 20 layers


def test_resnet_depth_option() -> None:
    model = create_model("resnet20", in_shape=(3, 32, 32), num_classes=10, depth=32)
    assert len([m for m in model.modules() if m.__class__.__name__ == "BasicBlock"]) == 15
    no_bn = create_model("resnet20", in_shape=(3, 32, 32), num_classes=10, batchnorm=False)
    assert all(c.bias is not None for c in no_bn.modules() if isinstance(c, nn.Conv2d))


def test_wrn_16_4_parameter_count_and_shape() -> None:
    model = create_model("wrn", in_shape=(3, 32, 32), num_classes=10)
    assert _count(model) == 2_748_890  # WRN-16-4 (Zagoruyko & Komodakis: 2.7M)
    assert model.fc.in_features == 256
    narrow = create_model("wrn", in_shape=(3, 32, 32), num_classes=10, depth=10, widen=1)
    assert narrow.fc.in_features == 64
    assert len(narrow.blocks) == 3


def test_wrn_dropout_acts_in_training_only() -> None:
    model = create_model("wrn", in_shape=(1, 8, 8), num_classes=3, depth=10, widen=1, dropout=0.5)
    x = torch.randn(2, 1, 8, 8)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))


def test_toy_cnn_structure() -> None:
    model = create_model("toy_cnn", in_shape=(3, 32, 32), num_classes=10)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 64, 64]
    assert all(c.kernel_size == (3, 3) for c in convs)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 1 and linears[0].in_features == 64
    wide = create_model("toy_cnn", in_shape=(3, 32, 32), num_classes=10, width=8)
    assert [c.out_channels for c in wide.modules() if isinstance(c, nn.Conv2d)] == [8, 16, 16]


def test_mlp_hidden_and_activation() -> None:
    model = create_model(
        "mlp", in_shape=(1, 28, 28), num_classes=10, hidden=[32, 16, 8], activation="tanh"
    )
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (784, 32),
        (32, 16),
        (16, 8),
        (8, 10),
    ]
    assert sum(isinstance(m, nn.Tanh) for m in model.modules()) == 3
    assert not _norm_layers(model)  # batchnorm defaults to false for the MLP
    linear = create_model("mlp", in_shape=(1, 8, 8), num_classes=2, hidden=[])
    assert next(m for m in linear.modules() if isinstance(m, nn.Linear)).in_features == 64


@pytest.mark.parametrize(
    ("in_shape", "patch", "tokens"), [((3, 30, 30), 4, 65), ((1, 28, 28), 7, 17)]
)
def test_vit_pads_to_the_patch_size(
    in_shape: tuple[int, int, int], patch: int, tokens: int
) -> None:
    model = create_model(
        "vit_tiny", in_shape=in_shape, num_classes=4, patch_size=patch, depth=1, dim=32, heads=4
    )
    assert model.pos_embed.shape == (1, tokens, 32)
    assert model(torch.randn(2, *in_shape)).shape == (2, 4)


def test_vit_options_shape_the_network() -> None:
    model = create_model(
        "vit_tiny", in_shape=(3, 32, 32), num_classes=10, depth=2, dim=64, heads=8, mlp_ratio=2
    )
    assert len(model.blocks) == 2
    assert model.blocks[0].attn.heads == 8
    assert model.blocks[0].mlp[0].out_features == 128
    default = create_model("vit_tiny", in_shape=(3, 32, 32), num_classes=10)
    assert 5.3e6 < _count(default) < 5.5e6  # ViT-Ti / DeiT-Tiny size


def test_vit_attention_matches_torch_multihead_attention() -> None:
    model = create_model("vit_tiny", in_shape=(1, 8, 8), num_classes=2, depth=1, dim=16, heads=4)
    attn = model.blocks[0].attn
    ref = nn.MultiheadAttention(16, 4, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(attn.qkv.weight)
        ref.in_proj_bias.copy_(attn.qkv.bias)
        ref.out_proj.weight.copy_(attn.proj.weight)
        ref.out_proj.bias.copy_(attn.proj.bias)
    x = torch.randn(2, 5, 16)
    expected, _ = ref(x, x, x, need_weights=False)
    torch.testing.assert_close(attn(x), expected, rtol=1e-5, atol=1e-5)


def test_mobilenet_is_adapted_to_small_images() -> None:
    model = create_model("mobilenetv3_small", in_shape=(1, 28, 28), num_classes=10)
    first = model.features[0][0]
    assert (first.in_channels, first.stride) == (1, (1, 1))
    reference = create_model("mobilenetv3_small", in_shape=(3, 32, 32), num_classes=1000)
    assert _count(reference) == 2_542_856  # torchvision's mobilenet_v3_small
    assert model.classifier[-1].out_features == 10


def test_resnet50_matches_torchvision_and_stems() -> None:
    model = create_model("resnet50", in_shape=(3, 224, 224), num_classes=1000)
    assert _count(model) == 25_557_032  # torchvision's resnet50
    gray = create_model("resnet50", in_shape=(1, 8, 8), num_classes=10, stem="cifar")
    assert gray.conv1.in_channels == 1
    assert gray.conv1.kernel_size == (3, 3) and gray.conv1.stride == (1, 1)
    assert isinstance(gray.maxpool, nn.Identity)
    assert gray(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    imagenet = create_model("resnet50", in_shape=(1, 8, 8), num_classes=10)
    assert imagenet.conv1.in_channels == 1 and imagenet.conv1.kernel_size == (7, 7)
