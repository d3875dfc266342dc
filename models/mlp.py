"""Multilayer perceptron: flatten, then Linear -> [BatchNorm1d] -> activation per hidden layer."""

from __future__ import annotations

import math

from torch import Tensor, nn

from models.options import check_bool, check_choice, check_widths

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


class MLP(nn.Module):
    """Fully connected classifier on flattened inputs.

    Args:
        in_features: number of input features (C·H·W of the image).
        num_classes: number of outputs.
        hidden: widths of the hidden layers, in order (empty: a linear classifier).
        batchnorm: put ``BatchNorm1d`` after every hidden Linear (before the activation).
        activation: ``relu``, ``gelu`` or ``tanh``.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        hidden: tuple[int, ...] = (256, 256),
        batchnorm: bool = False,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for h in hidden:
            layers.append(nn.Linear(width, h))
            if batchnorm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(ACTIVATIONS[activation]())
            width = h
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def build_mlp(
    in_shape: tuple[int, int, int],
    num_classes: int,
    *,
    hidden: tuple[int, ...] = (256, 256),
    batchnorm: bool = False,
    activation: str = "relu",
) -> MLP:
    """``mlp``: hidden widths ``hidden`` (default [256, 256]), ``batchnorm`` default **false**
    (a plain MLP, as usually meant), ``activation`` default ``relu`` (also ``gelu``, ``tanh``)."""
    return MLP(
        math.prod(in_shape),
        num_classes,
        hidden=check_widths("mlp", "hidden", hidden),
        batchnorm=check_bool("mlp", "batchnorm", batchnorm),
        activation=check_choice("mlp", "activation", activation, tuple(ACTIVATIONS)),
    )
