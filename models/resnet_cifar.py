"""He et al. (2016) CIFAR ResNets (ResNet-20/32/44/56/110): 3 stages of n basic blocks with
16/32/64 channels and parameter-free option-A shortcuts."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from models.options import ModelOptionError, check_bool, check_int


def _norm(channels: int, batchnorm: bool) -> nn.Module:
    return nn.BatchNorm2d(channels) if batchnorm else nn.Identity()


class ShortcutA(nn.Module):
    """Option A shortcut: subsample by ``stride`` and zero-pad the new channels (no parameters)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.pad = c_out - c_in

    def forward(self, x: Tensor) -> Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))


class BasicBlock(nn.Module):
    """conv3×3 -> BN -> ReLU -> conv3×3 -> BN, plus the shortcut, then ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int, batchnorm: bool) -> None:
        super().__init__()
        bias = not batchnorm
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=bias)
        self.bn1 = _norm(c_out, batchnorm)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=bias)
        self.bn2 = _norm(c_out, batchnorm)
        self.shortcut: nn.Module = (
            ShortcutA(c_in, c_out, stride) if stride != 1 or c_in != c_out else nn.Identity()
        )

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """CIFAR ResNet of depth ``6n+2``: conv3×3(16), 3 stages × n blocks (16, 32, 64 channels,
    strides 1, 2, 2), global average pooling, Linear.

    With ``depth=20`` and 10 classes it has 269,722 parameters with BatchNorm (He et al.
    report 0.27M). Without BatchNorm every conv gets a bias instead (so each layer keeps an
    affine shift) and the BN layers are ``nn.Identity``.

    Args:
        in_channels: input channels.
        num_classes: number of outputs.
        depth: ``6n+2`` (20, 32, 44, 56, 110, ...).
        batchnorm: BatchNorm2d after every conv.
    """

    def __init__(
        self, in_channels: int, num_classes: int, depth: int = 20, batchnorm: bool = True
    ) -> None:
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, 16, 3, padding=1, bias=not batchnorm)
        self.bn1 = _norm(16, batchnorm)
        blocks: list[nn.Module] = []
        c_in = 16
        for c_out, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(n):
                blocks.append(BasicBlock(c_in, c_out, stride if i == 0 else 1, batchnorm))
                c_in = c_out
        self.layers = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.pool(self.layers(x)).flatten(1)
        return self.fc(x)


def build_resnet20(
    in_shape: tuple[int, int, int],
    num_classes: int,
    *,
    depth: int = 20,
    batchnorm: bool = True,
) -> CifarResNet:
    """``resnet20``: He et al.'s CIFAR ResNet, ``depth`` default 20 (any ``6n+2``),
    ``batchnorm`` default true."""
    depth = check_int("resnet20", "depth", depth, minimum=8)
    if (depth - 2) % 6 != 0:
        raise ModelOptionError(
            "resnet20", "depth", "6n+2 with n >= 1 (8, 14, 20, 32, 44, 56, 110, ...)", depth
        )
    return CifarResNet(
        in_shape[0],
        num_classes,
        depth=depth,
        batchnorm=check_bool("resnet20", "batchnorm", batchnorm),
    )
