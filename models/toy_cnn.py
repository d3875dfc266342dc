"""The toy CNN of the INSGD paper's small experiments: three 3×3 convolutions and a linear head."""

from __future__ import annotations

from torch import Tensor, nn

from models.options import check_bool, check_int


def _conv_block(c_in: int, c_out: int, batchnorm: bool, pool: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=not batchnorm)]
    if batchnorm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.ReLU())
    if pool:
        layers.append(nn.MaxPool2d(2))
    return layers


class ToyCNN(nn.Module):
    """conv3×3(w) -> pool -> conv3×3(2w) -> pool -> conv3×3(2w) -> global avg pool -> Linear.

    Each conv is followed by ``BatchNorm2d`` (if ``batchnorm``) and ReLU; the first two by a
    2×2 max pool. Global average pooling before the head makes any input of at least 4×4 work
    (8×8 inputs reach the last conv at 2×2). Convs have a bias only when there is no
    BatchNorm (a bias before BatchNorm is redundant).

    Args:
        in_channels: input channels.
        num_classes: number of outputs.
        width: channels of the first conv; the second and third have ``2·width``.
        batchnorm: BatchNorm2d after every conv.
    """

    def __init__(
        self, in_channels: int, num_classes: int, width: int = 32, batchnorm: bool = True
    ) -> None:
        super().__init__()
        self.features = nn.Sequential(
            *_conv_block(in_channels, width, batchnorm, pool=True),
            *_conv_block(width, 2 * width, batchnorm, pool=True),
            *_conv_block(2 * width, 2 * width, batchnorm, pool=False),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(2 * width, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def build_toy_cnn(
    in_shape: tuple[int, int, int],
    num_classes: int,
    *,
    width: int = 32,
    batchnorm: bool = True,
) -> ToyCNN:
    """``toy_cnn``: 32/64/64 channels by default (``width`` = 32), ``batchnorm`` default true
    (``batchnorm: false`` is the paper's no-BatchNorm variant). Needs images of at least 4×4."""
    if min(in_shape[1:]) < 4:
        raise ValueError(
            f"toy_cnn: in_shape height and width must be >= 4 (two 2×2 max pools); "
            f"got {tuple(in_shape)!r}"
        )
    return ToyCNN(
        in_shape[0],
        num_classes,
        width=check_int("toy_cnn", "width", width),
        batchnorm=check_bool("toy_cnn", "batchnorm", batchnorm),
    )
