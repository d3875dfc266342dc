"""How big a model is, from its name and options alone: parameters, activations kept per
sample and modules, without building it (closed form, microseconds whatever the size).

``estimate_size(name, in_shape=..., num_classes=..., **options)`` checks the options by the
model's own rules (:mod:`models.options`, the same ``ModelOptionError`` as ``create_model``)
and returns a :class:`ModelSize`. The models whose size their options scale (``mlp``,
``toy_cnn``, ``resnet20``, ``wrn``, ``vit_tiny``) have a formula each; the two fixed
architectures (``mobilenetv3_small``, ``resnet50``) are measured once on the meta device (no
memory) and remembered. ``measure_size`` measures any model that way; the tests hold every
formula to it.

What is counted:

- ``params``: every parameter (``sum(p.numel() for p in model.parameters())``);
- ``activations``: per sample, the elements of every leaf module's output in one forward
  pass (``nn.Identity`` and ``nn.Flatten`` left out: they return views), what autograd
  keeps for the backward pass give or take the functional ops (a float32 each);
- ``modules``: ``len(list(model.modules()))``, what building one costs (about 0.2 ms each
  on the meta device).

    >>> estimate_size("resnet20", in_shape=(3, 32, 32), num_classes=10).params
    269722
    >>> estimate_size("toy_cnn", in_shape=(1, 8, 8), num_classes=10, width=10**9).params > 10**19
    True
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from models.options import ModelOptionError, check_bool, check_float, check_int, check_widths


@dataclass(frozen=True)
class ModelSize:
    """A model's size (see the module doc); ``drivers``: the options that scale it, in the
    order a message should name them."""

    params: int
    activations: int
    modules: int
    drivers: tuple[str, ...] = ()

    @property
    def activation_bytes(self) -> int:
        """Bytes of the activations of one sample, as float32."""
        return 4 * self.activations


def _out(size: int, stride: int) -> int:
    """Side of a 3x3/pad-1 (or 1x1/pad-0) convolution's output with this stride."""
    return (size - 1) // stride + 1


# ---- formulas ---------------------------------------------------------------------------------


def _mlp(shape, k, *, hidden=(256, 256), batchnorm=False, activation="relu") -> ModelSize:
    from models.mlp import ACTIVATIONS
    from models.options import check_choice

    hidden = check_widths("mlp", "hidden", hidden)
    bn = check_bool("mlp", "batchnorm", batchnorm)
    check_choice("mlp", "activation", activation, tuple(ACTIVATIONS))
    width, params, acts = math.prod(shape), 0, 0
    for h in hidden:
        params += width * h + h + (2 * h if bn else 0)
        acts += h * (3 if bn else 2)
        width = h
    params += width * k + k
    modules = 4 + len(hidden) * (3 if bn else 2)
    return ModelSize(params, acts + k, modules, ("hidden",))


def _toy_cnn(shape, k, *, width=32, batchnorm=True) -> ModelSize:
    w = check_int("toy_cnn", "width", width)
    bn = check_bool("toy_cnn", "batchnorm", batchnorm)
    c, h, wd = shape
    if min(h, wd) < 4:
        raise ValueError(f"toy_cnn: in_shape height and width must be >= 4; got {tuple(shape)!r}")
    bias = 0 if bn else 1
    norm = 2 if bn else 0
    params = (
        (9 * c * w + bias * w + norm * w)
        + (9 * w * 2 * w + bias * 2 * w + norm * 2 * w)
        + (9 * 2 * w * 2 * w + bias * 2 * w + norm * 2 * w)
        + (2 * w * k + k)
    )
    a0, a1, a2 = h * wd, (h // 2) * (wd // 2), (h // 4) * (wd // 4)
    per = 3 if bn else 2  # conv, [bn], relu
    acts = w * a0 * per + w * a1 + 2 * w * a1 * per + 2 * w * a2 + 2 * w * a2 * per + 2 * w + k
    modules = 13 + (3 if bn else 0)
    return ModelSize(params, acts, modules, ("width",))


def _resnet20(shape, k, *, depth=20, batchnorm=True) -> ModelSize:
    depth = check_int("resnet20", "depth", depth, minimum=8)
    if (depth - 2) % 6 != 0:
        raise ModelOptionError(
            "resnet20", "depth", "6n+2 with n >= 1 (8, 14, 20, 32, 44, 56, 110, ...)", depth
        )
    bn = check_bool("resnet20", "batchnorm", batchnorm)
    n = (depth - 2) // 6
    c, h, w = shape
    bias, norm = (0, 2) if bn else (1, 0)
    params = 9 * c * 16 + bias * 16 + norm * 16
    acts = 16 * h * w * (2 if bn else 1)
    c_in = 16
    for c_out, stride in ((16, 1), (32, 2), (64, 2)):
        h, w = _out(h, stride), _out(w, stride)
        area = h * w
        # the first block of a stage (may stride, may pad channels), then n - 1 equal ones
        first = 9 * c_in * c_out + 9 * c_out * c_out + 2 * (bias + norm) * c_out
        rest = 18 * c_out * c_out + 2 * (bias + norm) * c_out
        params += first + (n - 1) * rest
        per_block = c_out * area * (4 if bn else 2)
        shortcut = c_out * area if (stride != 1 or c_in != c_out) else 0
        acts += n * per_block + shortcut
        c_in = c_out
    params += 64 * k + k
    acts += 64 + k
    return ModelSize(params, acts, 6 + 18 * n, ("depth",))


def _wrn(shape, k, *, depth=16, widen=4, dropout=0.0, batchnorm=True) -> ModelSize:
    depth = check_int("wrn", "depth", depth, minimum=10)
    if (depth - 4) % 6 != 0:
        raise ModelOptionError("wrn", "depth", "6n+4 with n >= 1 (10, 16, 22, 28, 40, ...)", depth)
    widen = check_int("wrn", "widen", widen)
    check_float("wrn", "dropout", dropout, low=0.0, high=1.0, high_open=True)
    bn = check_bool("wrn", "batchnorm", batchnorm)
    n = (depth - 4) // 6
    c, h, w = shape
    bias, norm = (0, 2) if bn else (1, 0)
    params = 9 * c * 16 + bias * 16
    acts = 16 * h * w
    modules = 6
    c_in = 16
    for base, stride in ((16, 1), (32, 2), (64, 2)):
        c_out = base * widen
        for i in range(min(n, 2)):  # blocks after the second repeat the second
            s = stride if i == 0 else 1
            ho, wo = _out(h, s), _out(w, s)
            shortcut = s != 1 or c_in != c_out
            p = norm * c_in + 9 * c_in * c_out + bias * c_out + norm * c_out
            p += 9 * c_out * c_out + bias * c_out
            a = (c_in * h * w if bn else 0) + c_out * ho * wo * (4 if bn else 3)
            if shortcut:
                p += c_in * c_out + bias * c_out
                a += c_out * ho * wo
            times = 1 if i == 0 else n - 1
            params += times * p
            acts += times * a
            modules += times * (7 if shortcut else 6)
            h, w, c_in = ho, wo, c_out
    params += norm * c_in + c_in * k + k
    acts += (c_in * h * w if bn else 0) + c_in + k
    return ModelSize(params, acts, modules, ("depth", "widen"))


def _vit_tiny(
    shape, k, *, patch_size=4, depth=12, dim=192, heads=3, mlp_ratio=4.0, norm=True
) -> ModelSize:
    dim = check_int("vit_tiny", "dim", dim)
    heads = check_int("vit_tiny", "heads", heads)
    if dim % heads != 0:
        raise ModelOptionError("vit_tiny", "dim", f"a multiple of 'heads' ({heads})", dim)
    p = check_int("vit_tiny", "patch_size", patch_size)
    depth = check_int("vit_tiny", "depth", depth)
    ratio = check_float("vit_tiny", "mlp_ratio", mlp_ratio, low=1e-3, high=64.0)
    ln = check_bool("vit_tiny", "norm", norm)
    c, h, w = shape
    patches = -(-h // p) * -(-w // p)
    tokens = patches + 1
    hidden = max(1, round(dim * ratio))
    ln_params = 2 * dim if ln else 0
    block_params = 2 * ln_params + (3 * dim * dim + 3 * dim) + (dim * dim + dim)
    block_params += dim * hidden + hidden + hidden * dim + dim
    params = c * dim * p * p + dim + dim + tokens * dim + depth * block_params
    params += ln_params + dim * k + k
    block_acts = tokens * ((2 * dim if ln else 0) + 3 * dim + dim + 2 * hidden + dim)
    acts = dim * patches + depth * block_acts + (tokens * dim if ln else 0) + k
    return ModelSize(params, acts, 5 + 10 * depth, ("depth", "dim", "patch_size", "mlp_ratio"))


# ---- measured ---------------------------------------------------------------------------------


def measure_size(
    name: str, *, in_shape: tuple[int, int, int], num_classes: int, **options: Any
) -> ModelSize:
    """Build the model on the meta device and run one forward pass there (no memory): its
    parameters, the leaf modules' output elements per sample, its modules. Costs what a build
    does (about 0.2 ms a module): for models whose options cannot make them large."""
    import torch
    from torch import nn

    from models.registry import create_model

    with torch.device("meta"):
        net = create_model(name, in_shape=in_shape, num_classes=num_classes, **options)
    total = [0]

    def count(module: nn.Module, inputs: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor):
            total[0] += output[0].numel() if output.dim() else 1

    hooks = [
        m.register_forward_hook(count)
        for m in net.modules()
        if not list(m.children()) and not isinstance(m, nn.Identity | nn.Flatten)
    ]
    try:
        net.eval()  # batch statistics need 2+ samples; the outputs are the same size
        with torch.no_grad():
            net(torch.zeros(1, *in_shape, device="meta"))
    finally:
        for hook in hooks:
            hook.remove()
    params = sum(p.numel() for p in net.parameters())
    return ModelSize(params, total[0], len(list(net.modules())))


@functools.lru_cache(maxsize=64)
def _measured(name: str, in_shape: tuple[int, ...], k: int, options: tuple) -> ModelSize:
    return measure_size(name, in_shape=in_shape, num_classes=k, **dict(options))


def _fixed(name: str, check: Callable[..., None]) -> Callable[..., ModelSize]:
    def estimate(shape: tuple[int, int, int], k: int, **options: Any) -> ModelSize:
        check(**options)
        return _measured(name, tuple(shape), k, tuple(sorted(options.items())))

    return estimate


def _check_mobilenet(*, batchnorm: Any = True, dropout: Any = 0.2) -> None:
    check_bool("mobilenetv3_small", "batchnorm", batchnorm)
    check_float("mobilenetv3_small", "dropout", dropout, low=0.0, high=1.0, high_open=True)


def _check_resnet50(*, batchnorm: Any = True, stem: Any = "imagenet") -> None:
    from models.options import check_choice

    check_bool("resnet50", "batchnorm", batchnorm)
    check_choice("resnet50", "stem", stem, ("imagenet", "cifar"))


#: Model name -> its size from ``(in_shape, num_classes, **options)``.
ESTIMATES: dict[str, Callable[..., ModelSize]] = {
    "mlp": _mlp,
    "toy_cnn": _toy_cnn,
    "resnet20": _resnet20,
    "mobilenetv3_small": _fixed("mobilenetv3_small", _check_mobilenet),
    "wrn": _wrn,
    "vit_tiny": _vit_tiny,
    "resnet50": _fixed("resnet50", _check_resnet50),
}


def estimate_size(
    name: str, *, in_shape: tuple[int, int, int], num_classes: int, **options: Any
) -> ModelSize:
    """The size of model ``name`` with ``options`` for inputs of ``in_shape`` and
    ``num_classes`` outputs, without building it (see the module doc).

    Raises:
        ValueError: unknown model (listing the valid ones) or option; ``ModelOptionError``
            for an option value its rules refuse.
    """
    from models.registry import model_options

    if name not in ESTIMATES:
        raise ValueError(f"unknown model {name!r}; valid models: {', '.join(ESTIMATES)}")
    unknown = sorted(set(options) - set(model_options(name)))
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(map(repr, unknown))} for model {name!r}")
    return ESTIMATES[name](tuple(in_shape), num_classes, **options)
