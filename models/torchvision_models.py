"""torchvision's MobileNetV3-Small and ResNet-50, adapted to the input channels, the number of
classes and (MobileNet, or ResNet-50 with ``stem="cifar"``) small images.

These keep torchvision's constructor initialization when created; ``apply_init(..., "default")``
resets them to PyTorch's per-module defaults instead.
"""

from __future__ import annotations

from torch import nn

from models.options import check_bool, check_choice, check_float


def remove_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``BatchNorm2d`` below ``module`` by ``nn.Identity`` (in place)."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(module, name, nn.Identity())
        else:
            remove_batchnorm(child)
    return module


def build_mobilenetv3_small(
    in_shape: tuple[int, int, int],
    num_classes: int,
    *,
    batchnorm: bool = True,
    dropout: float = 0.2,
) -> nn.Module:
    """``mobilenetv3_small``: torchvision's ``mobilenet_v3_small(num_classes=...)`` with its
    first conv replaced by a stride-1 3×3 conv from ``in_shape[0]`` channels (total stride 16
    instead of 32; 8×8 inputs reach 1×1). ``dropout`` (default 0.2, torchvision's) is the
    classifier dropout. ``batchnorm: false`` replaces every BatchNorm2d by ``nn.Identity``
    (the convs stay bias-free, as torchvision builds them).

    Training mode with BatchNorm needs batches of 2 or more on small images (1×1 maps).
    """
    from torchvision.models import mobilenet_v3_small

    batchnorm = check_bool("mobilenetv3_small", "batchnorm", batchnorm)
    dropout = check_float(
        "mobilenetv3_small", "dropout", dropout, low=0.0, high=1.0, high_open=True
    )
    model = mobilenet_v3_small(num_classes=num_classes, dropout=dropout)
    first = model.features[0][0]
    model.features[0][0] = nn.Conv2d(
        in_shape[0], first.out_channels, 3, stride=1, padding=1, bias=False
    )
    nn.init.kaiming_normal_(model.features[0][0].weight, mode="fan_out")  # as torchvision does
    return model if batchnorm else remove_batchnorm(model)


def build_resnet50(
    in_shape: tuple[int, int, int],
    num_classes: int,
    *,
    batchnorm: bool = True,
    stem: str = "imagenet",
) -> nn.Module:
    """``resnet50``: torchvision's ``resnet50(num_classes=...)``; the first conv takes
    ``in_shape[0]`` channels. ``stem`` ``imagenet`` (default) keeps torchvision's 7×7/2 conv
    and 3×3/2 max pool; ``cifar`` uses a 3×3/1 conv and no max pool (the usual choice for
    32×32 images; 16× the compute of the imagenet stem at the same input size).
    ``batchnorm: false`` replaces every BatchNorm2d by ``nn.Identity`` (convs stay bias-free).
    """
    from torchvision.models import resnet50

    batchnorm = check_bool("resnet50", "batchnorm", batchnorm)
    stem = check_choice("resnet50", "stem", stem, ("imagenet", "cifar"))
    model = resnet50(num_classes=num_classes)
    if stem == "cifar":
        model.conv1 = nn.Conv2d(in_shape[0], 64, 3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    elif in_shape[0] != 3:
        model.conv1 = nn.Conv2d(in_shape[0], 64, 7, stride=2, padding=3, bias=False)
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    return model if batchnorm else remove_batchnorm(model)
