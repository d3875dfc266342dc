r"""INSGD: Input Normalized Stochastic Gradient Descent (Atici, Pan & Cetin, TMLR 2024).

INSGD divides the (momentum) SGD step of every ``nn.Linear`` and ``nn.Conv{1,2,3}d`` weight by
the logarithm of the power of that layer's input, measured by forward hooks. Every other
parameter (biases, norm layers, embeddings) gets plain SGD with the same hyperparameters.
docs/design.md#insgd states the equations (both variants) this file implements.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim import Optimizer

from study.optim.hparams import check_hparams

__all__ = ["INSGD", "input_statistic", "insgd", "power_layout", "step_constants"]

_HOOKED_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_LOW_PRECISION = (torch.float16, torch.bfloat16)

# Constants of the authors' published code (variant="reference").
_REF_NAN_STD = 1e-3
_REF_MIN_STD = 1e-2
_REF_LINEAR_OFFSET = 0.1
_REF_MIN_D = 1e-2
_REF_ADAM_EPS = 1e-6


class _InputRecorder:
    """Forward hook of one layer: one small reduction of the input per training forward.

    Per forward since the last step it keeps ``raws`` (``variant="paper"``: the l2 norm or the
    l1 sum of the input over samples and spatial positions, per input channel for a conv;
    ``variant="reference"``: ``s`` itself) and ``sizes`` (the number of samples, 1 for
    ``reference``), never the input itself, so ``s = raw**2 / size`` (l2) or ``raw / size``.
    The step turns them into ``s`` for all layers at once. It holds no reference to the
    optimizer.
    """

    __slots__ = (
        "d_shape",
        "gather",
        "is_linear",
        "name",
        "norm",
        "param",
        "raws",
        "sizes",
        "variant",
    )

    def __init__(self, name: str, module: nn.Module, norm: str, variant: str) -> None:
        self.name = name
        self.param: Tensor = module.weight
        self.norm = norm
        self.variant = variant
        self.raws: list[Tensor] = []
        self.sizes: list[int] = []
        self.is_linear = isinstance(module, nn.Linear)
        self.d_shape, self.gather = power_layout(module)

    def __call__(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        if not (module.training and torch.is_grad_enabled()) or not args:
            return
        x = args[0]
        if not isinstance(x, Tensor) or x.numel() == 0:
            return
        x = x.detach()
        if self.variant == "paper":
            raw, size = self._reduce(x)
        else:
            raw, size = self._reference_statistic(x), 1
        self.raws.append(raw)
        self.sizes.append(size)

    def _reduce(self, x: Tensor) -> tuple[Tensor, int]:
        """(raw, samples) of ``variant="paper"``: one read of ``x``, float32 (or float64)."""
        dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        order = 2 if self.norm == "l2" else 1
        if self.is_linear:  # rows of in_features, every leading dim is a sample
            return torch.linalg.vector_norm(x, order, dtype=dtype), x.numel() // x.shape[-1]
        if x.dim() < len(self.d_shape):  # unbatched conv input: one sample
            x = x.unsqueeze(0)
        n = x.shape[0]
        if x.device.type == "cpu" and x.is_contiguous():
            # CPU kernels reduce fast only over the contiguous (spatial) dim.
            v = x.view(n, x.shape[1], -1)
            if order == 2:
                norms = torch.linalg.vector_norm(v, dim=2, dtype=dtype)
                return torch.linalg.vector_norm(norms, dim=0), n
            return v.abs().sum((0, 2), dtype=dtype), n
        # One kernel on an accelerator (or for channels_last inputs).
        return torch.linalg.vector_norm(x, order, dim=(0, *range(2, x.dim())), dtype=dtype), n

    def _reference_statistic(self, x: Tensor) -> Tensor:
        """``s`` of ``variant="reference"``: each sample standardized first."""
        if x.dtype in _LOW_PRECISION:
            x = x.float()
        if self.is_linear:
            e = _standardized_energy(x.reshape(-1, x.shape[-1]), self.norm)
            return e.mean().add_(_REF_LINEAR_OFFSET)
        if x.dim() < len(self.d_shape):
            x = x.unsqueeze(0)
        return _standardized_energy(x.reshape(x.shape[0], x.shape[1], -1), self.norm).mean(0)

    def gather_on(self, device: torch.device) -> Tensor | None:
        """The grouped-conv channel index on ``device`` (moved once, then cached)."""
        if self.gather is not None and self.gather.device != device:
            self.gather = self.gather.to(device)
        return self.gather

    def clear(self) -> None:
        self.raws, self.sizes = [], []


def power_layout(module: nn.Module) -> tuple[tuple[int, ...], Tensor | None]:
    """How a hooked layer's ``D`` maps onto its weight: ``(d_shape, gather)``.

    Linear: ``((), None)`` (one number per layer). Conv with ``groups == 1``: ``D`` (one number
    per input channel) is viewed as ``(1, C_in, 1, ...)`` and broadcast. Grouped conv: weight
    entry ``[o, i]`` uses channel ``(o // (C_out/g)) * (C_in/g) + i``; ``gather`` holds that
    channel for every ``(o, i)`` and ``d_shape`` is ``(C_out, C_in/g, 1, ...)``.
    """
    weight = module.weight
    if isinstance(module, nn.Linear):
        return (), None
    c_out, c_in_per_group = weight.shape[0], weight.shape[1]
    groups = module.groups
    kernel_ones = (1,) * (weight.dim() - 2)
    if groups == 1:
        return (1, c_in_per_group, *kernel_ones), None
    o = torch.arange(c_out).unsqueeze(1)
    i = torch.arange(c_in_per_group).unsqueeze(0)
    gather = ((o // (c_out // groups)) * c_in_per_group + i).reshape(-1)
    return (c_out, c_in_per_group, *kernel_ones), gather


def input_statistic(
    x: Tensor, *, linear: bool, spatial_dims: int, norm: str, variant: str
) -> Tensor:
    """``s`` of one training forward's input ``x`` to a hooked layer (docs/design.md#insgd).

    The same number(s) :class:`INSGD`'s hooks derive, computed directly and out of place, so
    that it runs inside ``torch.func.vmap`` (packed trials compute every member's input
    power inside their batched forward). ``spatial_dims``: 1, 2 or 3 for a conv (ignored for
    Linear). Float32 (float64 for float64 inputs).
    """
    x = x.detach()
    if variant == "paper":
        dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        order = 2 if norm == "l2" else 1
        if linear:
            rows = x.numel() // x.shape[-1]
            raw = torch.linalg.vector_norm(x, order, dtype=dtype)
        else:
            if x.dim() == spatial_dims + 1:  # unbatched conv input: one sample
                x = x.unsqueeze(0)
            rows = x.shape[0]
            raw = torch.linalg.vector_norm(x, order, dim=(0, *range(2, x.dim())), dtype=dtype)
        return raw * raw / rows if order == 2 else raw / rows
    if x.dtype in _LOW_PRECISION:
        x = x.float()
    if linear:
        return _standardized_energy(x.reshape(-1, x.shape[-1]), norm).mean() + _REF_LINEAR_OFFSET
    if x.dim() == spatial_dims + 1:
        x = x.unsqueeze(0)
    return _standardized_energy(x.reshape(x.shape[0], x.shape[1], -1), norm).mean(0)


def _statistics(recorders: dict[int, _InputRecorder], squared: bool) -> dict[int, Tensor]:
    """``s`` (mean over forwards) of every layer that recorded forwards, by ``id`` of its weight.

    Resets the records.

    All layers are processed together with ``torch._foreach_*`` ops (two kernels on CUDA).
    """
    owners: list[tuple[int, int]] = []
    raws: list[Tensor] = []
    sizes: list[int] = []
    for key, recorder in recorders.items():
        if recorder.raws:
            owners.append((key, len(recorder.raws)))
            raws += recorder.raws
            sizes += recorder.sizes
            recorder.clear()
    if not raws:
        return {}
    if squared:
        values = torch._foreach_mul(raws, raws)
        torch._foreach_div_(values, sizes)
    elif any(size != 1 for size in sizes):
        values = torch._foreach_div(raws, sizes)
    else:
        values = raws
    statistics = {}
    k = 0
    for key, count in owners:
        statistics[key] = values[k] if count == 1 else torch.stack(values[k : k + count]).mean(0)
        k += count
    return statistics


def _standardized_energy(v: Tensor, norm: str) -> Tensor:
    """``sum_j z_j**2`` (l2) or ``sum_j |z_j|`` (l1) of ``z``, ``v`` standardized over its last dim.

    Standardization as the authors' code does it (``variant="reference"``): ``z = (v - mean) /
    std`` with the unbiased std, a NaN std replaced by 0.001 and the std clamped to >= 0.01.
    Computed as ``sum_j (v_j - mean)**2 / std**2`` (or ``sum_j |v_j - mean| / std``). Out of
    place, so that it also runs under ``torch.func.vmap`` (packed trials).
    """
    length = v.shape[-1]
    if length == 1:  # the std of one value is NaN -> 0.001 -> 0.01, and v - mean is 0
        return v.new_zeros(v.shape[:-1])
    # Two passes (mean, then centered values): torch.var's CPU kernel is ~50x slower here.
    centered = v - v.mean(-1, keepdim=True)
    squares = torch.linalg.vector_norm(centered, dim=-1).square()
    std = _reference_std((squares / (length - 1)).sqrt())
    if norm == "l2":
        return squares / std.square()
    return centered.abs().sum(-1) / std


def _reference_std(std: Tensor) -> Tensor:
    std = std.nan_to_num(nan=_REF_NAN_STD, posinf=math.inf, neginf=-math.inf)
    return std.clamp_min(_REF_MIN_STD)


def _remove_handles(handles: list[torch.utils.hooks.RemovableHandle]) -> None:
    for handle in handles:
        handle.remove()
    handles.clear()


class INSGD(Optimizer):
    def __init__(
        self,
        model: nn.Module,
        lr: float,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        norm: str = "l2",
        variant: str = "paper",
        power_momentum: float = 0.9,
        eps: float = 0.01,
        *,
        params: Iterable[Tensor] | Iterable[dict[str, Any]] | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(
                f"INSGD: model must be a torch.nn.Module (INSGD hooks its layers' inputs), "
                f"got {type(model).__name__}"
            )
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            "norm": norm,
            "variant": variant,
            "power_momentum": power_momentum,
            "eps": eps,
        }
        check_hparams(defaults)
        self._model_ref = weakref.ref(model)
        self._recorders: dict[int, _InputRecorder] = {}  # by id() of the hooked weight
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._hooked_modules: weakref.WeakSet[nn.Module] = weakref.WeakSet()
        self._hooks_removed = False
        super().__init__(model.parameters() if params is None else params, defaults)
        self._install_hooks()
        # Remove the hooks when the optimizer is collected: the model must not keep feeding it.
        self._finalizer = weakref.finalize(self, _remove_handles, self._handles)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        for key in ("norm", "variant"):
            if key in param_group and param_group[key] != self.defaults[key]:
                raise ValueError(
                    f"INSGD: {key} must be the same for every param group "
                    f"({self.defaults[key]!r}), got {param_group[key]!r}"
                )
        merged = {**self.defaults, **{k: v for k, v in param_group.items() if k != "params"}}
        check_hparams(merged)
        super().add_param_group(param_group)
        if hasattr(self, "_finalizer"):  # a group added after construction
            self._install_hooks()

    def _install_hooks(self) -> None:
        model = self._model_ref()
        if model is None or self._hooks_removed:
            return
        optimized = {p for group in self.param_groups for p in group["params"]}
        for name, module in model.named_modules():
            if not isinstance(module, _HOOKED_TYPES):
                continue
            weight = module.weight
            if weight not in optimized or module in self._hooked_modules:
                continue
            recorder = self._recorders.get(id(weight))
            if recorder is None:
                label = name or type(module).__name__
                recorder = _InputRecorder(
                    label, module, self.defaults["norm"], self.defaults["variant"]
                )
                self._recorders[id(weight)] = recorder
            self._handles.append(module.register_forward_hook(recorder))
            self._hooked_modules.add(module)

    def remove_hooks(self) -> None:
        """Remove the forward hooks from the model. Later steps reuse the last input power."""
        self._hooks_removed = True
        _remove_handles(self._handles)

    @property
    def hooked_layers(self) -> list[str]:
        """Names of the layers whose weights INSGD normalizes (the others get plain SGD)."""
        return [recorder.name for recorder in self._recorders.values()]

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # torch casts floating state to the parameter's dtype; the input power keeps its own
        # (float32 for bf16/fp16 parameters, so the statistic does not lose precision).
        saved = [
            (index, value["input_power"])
            for index, value in state_dict["state"].items()
            if isinstance(value, dict) and "input_power" in value
        ]
        super().load_state_dict(state_dict)
        index_to_param = {
            index: param
            for saved_group, group in zip(
                state_dict["param_groups"], self.param_groups, strict=True
            )
            for index, param in zip(saved_group["params"], group["params"], strict=True)
        }
        for index, power in saved:
            param = index_to_param[index]
            self.state[param]["input_power"] = power.to(device=param.device, copy=True)
        # The loaded groups decide what the hooks measure from now on.
        for key in ("norm", "variant"):
            values = {group[key] for group in self.param_groups}
            if len(values) != 1:
                raise ValueError(
                    f"INSGD: {key} must be the same for every param group, got {sorted(values)}"
                )
            self.defaults[key] = values.pop()
        for recorder in self._recorders.values():
            recorder.norm, recorder.variant = self.defaults["norm"], self.defaults["variant"]
            recorder.clear()  # statistics measured the old way are dropped

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform a single optimization step.

        Args:
            closure (Callable, optional): A closure that reevaluates the model and returns the
                loss. Its forward (training mode, grad enabled) is recorded like any other.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()

        # Check every layer before changing anything: a failing step leaves no trace.
        for recorder in self._recorders.values():
            p = recorder.param
            if (
                not recorder.raws
                and p.grad is not None
                and "input_power" not in self.state.get(p, ())
            ):
                raise RuntimeError(
                    f"INSGD: no training forward of layer '{recorder.name}' was recorded "
                    "before the first step; run the model in train mode with grad "
                    "enabled (not under torch.no_grad() or model.eval()) before step()"
                )
        fresh = _statistics(
            self._recorders,
            squared=self.defaults["norm"] == "l2" and self.defaults["variant"] == "paper",
        )

        for group in self.param_groups:
            params: list[Tensor] = []
            grads: list[Tensor] = []
            states: list[dict[str, Any]] = []
            momentum_buffers: list[Tensor | None] = []
            input_powers: list[Tensor | None] = []
            input_stats: list[Tensor | None] = []
            d_shapes: list[tuple[int, ...] | None] = []
            gathers: list[Tensor | None] = []
            for p in group["params"]:
                grad = p.grad
                if grad is None:
                    continue
                state = self.state[p]
                params.append(p)
                grads.append(grad)
                states.append(state)
                momentum_buffers.append(state.get("momentum_buffer"))
                recorder = self._recorders.get(id(p))
                if recorder is None:
                    d_shapes.append(None)
                    gathers.append(None)
                    input_powers.append(None)
                    input_stats.append(None)
                else:
                    d_shapes.append(recorder.d_shape)
                    gathers.append(recorder.gather_on(p.device))
                    input_powers.append(state.get("input_power"))
                    input_stats.append(fresh.get(id(p)))
            if not params:
                continue

            insgd(
                params,
                grads,
                momentum_buffers,
                input_powers,
                input_stats,
                d_shapes,
                gathers,
                lr=group["lr"],
                momentum=group["momentum"],
                dampening=group["dampening"],
                weight_decay=group["weight_decay"],
                nesterov=group["nesterov"],
                variant=group["variant"],
                power_momentum=group["power_momentum"],
                eps=group["eps"],
            )

            for state, buf, power, shape in zip(
                states, momentum_buffers, input_powers, d_shapes, strict=True
            ):
                if buf is not None:
                    state["momentum_buffer"] = buf
                if shape is not None:
                    state["input_power"] = power
                    state["step"] = state.get("step", 0) + 1
        return loss


INSGD.__doc__ = r"""Implements Input Normalized SGD (INSGD, Atici, Pan & Cetin, TMLR 2024).

    INSGD needs the model, not only its parameters: it registers forward hooks on every
    ``nn.Linear`` and ``nn.Conv{1,2,3}d`` whose weight it optimizes. In training mode with grad
    enabled, a hook keeps a small statistic ``s`` of the layer's input :math:`X` (never
    :math:`X` itself), in float32 (float64 for float64 inputs) even under bf16 autocast:

    * Linear: :math:`X` as rows of ``in_features`` (all leading dims are samples),
      :math:`s = \operatorname{mean}_r \sum_j x_{rj}^2` (``l2``) or
      :math:`\operatorname{mean}_r \sum_j |x_{rj}|` (``l1``): one number per layer.
    * Conv with weight :math:`(C_{out}, C_{in}/g, k\ldots)`:
      :math:`s_c = \operatorname{mean}_n \sum_{\text{spatial}} x_{nc}^2` (or :math:`|x_{nc}|`),
      one number per input channel; weight entry :math:`[o, i]` uses channel
      :math:`\lfloor o / (C_{out}/g) \rfloor \cdot C_{in}/g + i` (grouped, depthwise convs).
    * Several training forwards before one step: :math:`s` is their mean.

    With ``variant="paper"``, per hooked weight :math:`W`:

    .. math::
       \begin{aligned}
            &g_t \leftarrow \nabla_W f_t(W_{t-1}) + \lambda W_{t-1}                          \\
            &\textbf{if} \: \mu \neq 0: \: b_t \leftarrow g_t \text{ if } t = 1
                \text{ else } \mu b_{t-1} + (1-\tau) g_t; \quad
                g_t \leftarrow g_t + \mu b_t \text{ if nesterov else } b_t                    \\
            &P_t \leftarrow s_t \text{ if } t = 1 \text{ else } \beta P_{t-1} + (1-\beta) s_t  \\
            &D_t \leftarrow \max(\ln P_t, \varepsilon)                                       \\
            &W_t \leftarrow W_{t-1} - \gamma \, g_t / D_t
       \end{aligned}

    With ``variant="reference"`` (what the authors' published code computes): each sample's
    input is standardized first (Linear: over features; Conv: over each channel's spatial
    positions; unbiased std, NaN std :math:`\to 0.001`, std clamped to :math:`\geq 0.01`),
    :math:`s` is computed from it as above, Linear adds 0.1, :math:`D = \max(\ln s, 0.01)`
    (no power momentum, ``eps`` unused) and the step is
    :math:`W \leftarrow W - \gamma \sqrt{1 + 10^{-6}}\, g / (D (\sqrt{1 - \mu} + 10^{-6}))`.

    Every other parameter gets plain SGD (as ``torch.optim.SGD``) with the group's
    hyperparameters. A step with no new recorded forward reuses the last :math:`P`; a step
    before any recorded forward raises ``RuntimeError`` naming the layer. The step reads no
    tensor value on the host (no ``.item()``), so it makes no host-device synchronization.
    Per hooked weight the state holds ``momentum_buffer``, ``input_power`` (:math:`P`) and
    ``step``; statistics of forwards not yet consumed by a step are not part of ``state_dict()``.
    Gradients must be dense. Activation checkpointing recomputes a forward with the same
    input, which leaves the mean ``s`` unchanged.

    Args:
        model (nn.Module): the model; its Linear/Conv layers are hooked. By default INSGD
            optimizes ``model.parameters()``.
        lr (float): learning rate :math:`\gamma` (>= 0)
        momentum (float, optional): momentum factor :math:`\mu` (default: 0)
        dampening (float, optional): dampening :math:`\tau` for momentum, in [0, 1] (default: 0)
        weight_decay (float, optional): weight decay :math:`\lambda` (L2 penalty) (default: 0)
        nesterov (bool, optional): Nesterov momentum; needs momentum > 0 and dampening 0
            (default: False)
        norm (str, optional): ``"l2"`` (sum of squares) or ``"l1"`` (sum of absolute values)
            (default: ``"l2"``)
        variant (str, optional): ``"paper"`` or ``"reference"`` (default: ``"paper"``)
        power_momentum (float, optional): :math:`\beta` of the input-power average, in [0, 1)
            (default: 0.9)
        eps (float, optional): floor :math:`\varepsilon` of :math:`D` (> 0) (default: 0.01)
        params (iterable, optional): keyword-only; parameters or param-group dicts to optimize
            instead of ``model.parameters()`` (``norm`` and ``variant`` are the same for every
            group; the other hyperparameters may differ per group).

    Example:
        >>> # xdoctest: +SKIP
        >>> optimizer = INSGD(model, lr=0.1, momentum=0.9)
        >>> optimizer.zero_grad()
        >>> loss_fn(model(input), target).backward()
        >>> optimizer.step()
        >>> optimizer.remove_hooks()  # when done with it
    """


def step_constants(variant: str, *, momentum: float, eps: float) -> tuple[float, float]:
    """``(floor, scale)`` of INSGD's step for ``variant``: ``D = max(log P, floor)`` and the
    step is ``-lr * scale * g / D``. ``paper``: ``(eps, 1)``; ``reference`` (the authors'
    code): a fixed floor and the scale of their Adam-like terms, which restart every step."""
    if variant == "paper":
        return eps, 1.0
    return _REF_MIN_D, math.sqrt(1 + _REF_ADAM_EPS) / (math.sqrt(1 - momentum) + _REF_ADAM_EPS)


def insgd(
    params: list[Tensor],
    grads: list[Tensor],
    momentum_buffers: list[Tensor | None],
    input_powers: list[Tensor | None],
    input_stats: list[Tensor | None],
    d_shapes: list[tuple[int, ...] | None],
    gathers: list[Tensor | None],
    *,
    lr: float,
    momentum: float,
    dampening: float,
    weight_decay: float,
    nesterov: bool,
    variant: str,
    power_momentum: float,
    eps: float,
) -> None:
    r"""Functional core of :class:`INSGD` over tensor lists (updates lists in place).

    ``d_shapes[i] is None`` marks a parameter that gets plain SGD. For a hooked weight,
    ``input_powers[i]`` is its stored :math:`P` (None before its first step; replaced in the
    list by the new :math:`P`), ``input_stats[i]`` the mean ``s`` of the new forwards (None:
    reuse :math:`P`), ``d_shapes[i]`` the shape :math:`D` is viewed as, and ``gathers[i]`` the
    channel index of each weight entry for grouped convs (else None).
    """
    if weight_decay != 0:
        grads = torch._foreach_add(grads, params, alpha=weight_decay)

    if momentum != 0:
        fresh = [i for i, buf in enumerate(momentum_buffers) if buf is None]
        old = [i for i, buf in enumerate(momentum_buffers) if buf is not None]
        if old:
            bufs = [momentum_buffers[i] for i in old]
            torch._foreach_mul_(bufs, momentum)
            torch._foreach_add_(bufs, [grads[i] for i in old], alpha=1 - dampening)
        for i in fresh:
            momentum_buffers[i] = torch.clone(grads[i]).detach()
        bufs = momentum_buffers  # type: ignore[assignment]
        grads = torch._foreach_add(grads, bufs, alpha=momentum) if nesterov else list(bufs)

    plain = [i for i, shape in enumerate(d_shapes) if shape is None]
    if plain:
        torch._foreach_add_([params[i] for i in plain], [grads[i] for i in plain], alpha=-lr)

    hooked = [i for i, shape in enumerate(d_shapes) if shape is not None]
    if not hooked:
        return

    if variant == "paper":
        first = [i for i in hooked if input_powers[i] is None]
        update = [i for i in hooked if input_powers[i] is not None and input_stats[i] is not None]
        for i in first:
            input_powers[i] = input_stats[i]
        if update:
            torch._foreach_lerp_(
                [input_powers[i] for i in update],
                [input_stats[i] for i in update],
                1 - power_momentum,
            )
        floor, scale = step_constants(variant, momentum=momentum, eps=eps)
    else:  # reference: D from this step's s (no average); Adam-like terms restart every step
        for i in hooked:
            if input_stats[i] is not None:
                input_powers[i] = input_stats[i]
        floor, scale = step_constants(variant, momentum=momentum, eps=eps)

    denominators = torch._foreach_log([input_powers[i] for i in hooked])
    torch._foreach_clamp_min_(denominators, floor)
    views = []
    for i, d in zip(hooked, denominators, strict=True):
        gather = gathers[i]
        if gather is not None:
            d = d.index_select(0, gather)
        views.append(d.view(d_shapes[i]))
    torch._foreach_addcdiv_(
        [params[i] for i in hooked], [grads[i] for i in hooked], views, value=-lr * scale
    )
