"""Wide ResNets (Zagoruyko & Komodakis 2016), WRN-depth-widen with pre-activation blocks."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from models.options import ModelOptionError, check_bool, check_float, check_int


def _norm(channels: int, batchnorm: bool) -> nn.Module:
    return nn.BatchNorm2d(channels) if batchnorm else nn.Identity()


class WideBlock(nn.Module):
    """BN -> ReLU -> conv3×3 -> BN -> ReLU -> dropout -> conv3×3, plus the shortcut (a 1×1 conv
    on the pre-activated input when the shape changes, as in the authors' code)."""

    def __init__(self, c_in: int, c_out: int, stride: int, dropout: float, batchnorm: bool) -> None:
        super().__init__()
        bias = not batchnorm
        self.bn1 = _norm(c_in, batchnorm)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=bias)
        self.bn2 = _norm(c_out, batchnorm)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=bias)
        self.shortcut: nn.Module | None = None
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Conv2d(c_in, c_out, 1, stride=stride, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        pre = F.relu(self.bn1(x))
        out = self.conv1(pre)
        out = self.conv2(self.dropout(F.relu(self.bn2(out))))
        return out + (x if self.shortcut is None else self.shortcut(pre))


class WideResNet(nn.Module):
    """WRN-``depth``-``widen``: conv3×3(16), three groups of ``(depth-4)/6`` wide blocks with
    16·widen, 32·widen, 64·widen channels (strides 1, 2, 2), BN -> ReLU, global average
    pooling, Linear. WRN-16-4 for 10 classes has 2,748,890 parameters; WRN-28-10 36.5M.

    Without BatchNorm the BN layers are ``nn.Identity`` and every conv gets a bias.

    Args:
        in_channels: input channels.
        num_classes: number of outputs.
        depth: ``6n+4`` (10, 16, 22, 28, 40, ...).
        widen: width multiplier k.
        dropout: dropout probability between the two convs of a block.
        batchnorm: BatchNorm2d layers on or off.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        depth: int = 16,
        widen: int = 4,
        dropout: float = 0.0,
        batchnorm: bool = True,
    ) -> None:
        super().__init__()
        n = (depth - 4) // 6
        self.conv1 = nn.Conv2d(in_channels, 16, 3, padding=1, bias=not batchnorm)
        blocks: list[nn.Module] = []
        c_in = 16
        for base, stride in ((16, 1), (32, 2), (64, 2)):
            c_out = base * widen
            for i in range(n):
                blocks.append(WideBlock(c_in, c_out, stride if i == 0 else 1, dropout, batchnorm))
                c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.bn = _norm(c_in, batchnorm)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.blocks(self.conv1(x))
        x = self.pool(F.relu(self.bn(x))).flatten(1)
        return self.fc(x)


def build_wrn(
    in_shape: tuple[int, int, int],
    num_classes: int,
    *,
    depth: int = 16,
    widen: int = 4,
    dropout: float = 0.0,
    batchnorm: bool = True,
) -> WideResNet:
    """``wrn``: WRN-16-4 by default (``depth`` any ``6n+4``, ``widen`` >= 1), ``dropout``
    default 0, ``batchnorm`` default true."""
    depth = check_int("wrn", "depth", depth, minimum=10)
    if (depth - 4) % 6 != 0:
        raise ModelOptionError("wrn", "depth", "6n+4 with n >= 1 (10, 16, 22, 28, 40, ...)", depth)
    return WideResNet(
        in_shape[0],
        num_classes,
        depth=depth,
        widen=check_int("wrn", "widen", widen),
        dropout=check_float("wrn", "dropout", dropout, low=0.0, high=1.0, high_open=True),
        batchnorm=check_bool("wrn", "batchnorm", batchnorm),
    )
