"""Batched optimizer steps for packed trials: the members of one group (one optimizer, the same
hyperparameters but the learning rate) step together with ``torch._foreach_*`` over their rows
of the stacked parameters, each with its own learning rate (:mod:`study.train.pack` drives
them; docs/design.md#packing says why, docs/packing.md what the batched steps cost).

- :class:`SgdFamily`: ``sgd`` and ``insgd`` (both variants and norms); INSGD's input powers
  come from the batched forward (:class:`HookedLayer`, :func:`hooked_layers`).
- :class:`TorchFamily`: ``adam``, ``adamw``, ``adagrad``, ``rmsprop`` and ``nadam``.
- :class:`PerMember`: any other optimizer, one real ``torch.optim`` instance per member.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["HookedLayer", "PerMember", "SgdFamily", "TorchFamily", "as_column", "hooked_layers"]


class HookedLayer:
    """A Linear/Conv layer whose weight INSGD normalizes: its parameter and D's layout."""

    __slots__ = ("d_shape", "gather", "label", "linear", "param_index", "spatial_dims")

    def __init__(self, label: str, module: Any, param_index: int) -> None:
        from torch import nn

        from study.optim.insgd import power_layout

        self.label = label
        self.linear = isinstance(module, nn.Linear)
        self.spatial_dims = 0 if self.linear else module.weight.dim() - 2
        self.param_index = param_index
        self.d_shape, self.gather = power_layout(module)


def hooked_layers(skeleton: Any, names: list[str]) -> dict[Any, HookedLayer]:
    """module -> :class:`HookedLayer` for every Linear/Conv{1,2,3}d, in module order."""
    from torch import nn

    layers = {}
    for name, module in skeleton.named_modules():
        if isinstance(module, nn.Linear | nn.Conv1d | nn.Conv2d | nn.Conv3d):
            param = f"{name}.weight" if name else "weight"
            if param in names:
                label = name or type(module).__name__
                layers[module] = HookedLayer(label, module, names.index(param))
    return layers


# --------------------------------------------------------------------------- optimizers


def as_column(values: Any, ndim: int) -> Any:
    """``(K,)`` -> ``(K, 1, ..., 1)`` with ``ndim`` dims."""
    return values.view(values.shape[0], *([1] * (ndim - 1)))


class SgdFamily:
    """SGD and INSGD (docs/design.md#insgd, both variants) for a group of members that share the
    optimizer and every hyperparameter but the learning rate, as one batched update.

    The same operations as ``torch.optim.SGD`` / :func:`study.optim.insgd.insgd`, on the group's
    rows of the stacked parameters, with a per-member learning rate column. INSGD's ``s``
    comes from the batched forward (``stats``), one tensor per hooked layer and kind.
    """

    def __init__(
        self,
        rows: tuple[int, int],
        cfg: Any,
        layers: Mapping[Any, HookedLayer],
        kind: int | None,
        device: Any,
    ) -> None:
        from study.optim.registry import optimizer_hparams

        hp = {**optimizer_hparams(cfg.optimizer_name), **cfg.optimizer_hparams}
        self.rows = rows
        self.momentum = float(hp["momentum"])
        self.dampening = float(hp["dampening"])
        self.weight_decay = float(hp["weight_decay"])
        self.nesterov = bool(hp["nesterov"])
        self.insgd = cfg.optimizer_name == "insgd"
        self.variant = hp.get("variant", "paper")
        self.power_momentum = float(hp.get("power_momentum", 0.9))
        from study.optim.insgd import step_constants

        self.floor, self.scale = step_constants(
            self.variant, momentum=self.momentum, eps=float(hp.get("eps", 0.01))
        )
        # param index -> (position of its layer among the hooked layers, layer)
        self.hooked = (
            {layer.param_index: (pos, layer) for pos, layer in enumerate(layers.values())}
            if self.insgd
            else {}
        )
        self.kind = kind
        self.stride = 0  # kinds of statistics per layer in the forward's output (set later)
        self.buffers: dict[int, Any] | None = None
        self.powers: dict[int, Any] = {}
        # Grouped-conv channel indices on the device up front (no copy inside a graph).
        self._gathers = {
            j: layer.gather.to(device)
            for j, (_, layer) in self.hooked.items()
            if layer.gather is not None
        }

    batched = True

    def coefficients(self, lr: float, t: int) -> tuple[float, ...]:
        return (lr,)

    def step(self, leaves, grads, stats, coef) -> None:
        import torch

        a, b = self.rows
        index = [j for j, g in enumerate(grads) if g is not None]
        params = [leaves[j][a:b] for j in index]
        gs = [grads[j][a:b] for j in index]
        if self.weight_decay != 0:
            gs = torch._foreach_add(gs, params, alpha=self.weight_decay)
        if self.momentum != 0:
            if self.buffers is None:
                self.buffers = {j: g.clone() for j, g in zip(index, gs, strict=True)}
            else:
                bufs = [self.buffers[j] for j in index]
                torch._foreach_mul_(bufs, self.momentum)
                torch._foreach_add_(bufs, gs, alpha=1 - self.dampening)
            bufs = [self.buffers[j] for j in index]
            gs = torch._foreach_add(gs, bufs, alpha=self.momentum) if self.nesterov else bufs
        lr = coef[a:b, 0]
        factors = []
        for j, g in zip(index, gs, strict=True):
            column = as_column(lr, g.dim())
            hooked = self.hooked.get(j)
            if hooked is None:
                factors.append(column)
                continue
            position, layer = hooked
            s = stats[position * self.stride + self.kind][a:b]
            power = self.powers.get(j)  # P, updated in place after its first step
            if power is None:
                power = self.powers[j] = s.clone()
            elif self.variant == "reference":
                power.copy_(s)
            else:
                power.lerp_(s, 1 - self.power_momentum)
            d = torch.log(power).clamp_min(self.floor)
            if layer.gather is not None:
                d = d.index_select(1, self._gathers[j])
            d = d.view(d.shape[0], *layer.d_shape) if layer.d_shape else as_column(d, g.dim())
            factors.append((column * self.scale) / d)
        torch._foreach_sub_(params, torch._foreach_mul(gs, factors))

    def keep(self, local: list[int], rows: tuple[int, int], leaves) -> None:
        import torch

        self.rows = rows
        index = None

        def select(t):
            nonlocal index
            if index is None or index.device != t.device:
                index = torch.tensor(local, dtype=torch.long, device=t.device)
            return t.index_select(0, index)

        if self.buffers is not None:
            self.buffers = {j: select(t) for j, t in self.buffers.items()}
        self.powers = {j: select(t) for j, t in self.powers.items()}


class TorchFamily:
    """``adam``, ``adamw``, ``adagrad``, ``rmsprop`` and ``nadam`` for a group of members that
    share every hyperparameter but the learning rate, as one batched update: the operations of
    torch.optim's implementation (``_single_tensor_*``), with ``torch._foreach_*`` over the
    group's rows. Whatever moves with the step count (bias corrections, NAdam's momentum
    products, Adagrad's decayed rate, decoupled weight decay) is a per-member number computed
    on the host as torch computes it (:meth:`coefficients`) and read from a device table, so
    the step can be captured as a CUDA graph."""

    NAMES = ("adam", "adamw", "adagrad", "rmsprop", "nadam")
    batched = True

    def __init__(self, rows: tuple[int, int], cfg: Any) -> None:
        from study.optim.registry import optimizer_hparams

        self.rows = rows
        self.name = cfg.optimizer_name
        hp = {**optimizer_hparams(cfg.optimizer_name), **cfg.optimizer_hparams}
        self.hp = hp
        self.weight_decay = float(hp.get("weight_decay", 0.0))
        # torch's AdamW is Adam with decoupled weight decay.
        self.decoupled = self.name == "adamw" or bool(hp.get("decoupled_weight_decay", False))
        if "betas" in hp:
            self.beta1, self.beta2 = (float(b) for b in hp["betas"])
        self.eps = float(hp.get("eps", 0.0))
        self.state: dict[str, dict[int, Any]] | None = None
        self._mu_products = [1.0]  # NAdam: torch keeps the product in a float32 tensor

    def _mu(self, t: int) -> float:
        return self.beta1 * (1.0 - 0.5 * (0.96 ** (t * float(self.hp["momentum_decay"]))))

    def _mu_product(self, t: int) -> float:
        import numpy as np

        while len(self._mu_products) <= t:
            n = len(self._mu_products)
            product = np.float32(self._mu_products[-1]) * np.float32(self._mu(n))
            self._mu_products.append(float(np.float32(product)))
        return self._mu_products[t]

    def coefficients(self, lr: float, t: int) -> tuple[float, ...]:
        """The per-member numbers of step ``t`` (1-based) at learning rate ``lr``."""
        decay = 1 - lr * self.weight_decay
        if self.name in ("adam", "adamw"):
            return (lr / (1 - self.beta1**t), (1 - self.beta2**t) ** 0.5, decay)
        if self.name == "adagrad":
            return (lr / (1 + (t - 1) * float(self.hp["lr_decay"])),)
        if self.name == "rmsprop":
            return (lr,)
        mu, mu_next = self._mu(t), self._mu(t + 1)
        product = self._mu_product(t)
        product_next = product * mu_next
        return (
            -lr * (1.0 - mu) / (1.0 - product),
            (-lr * mu_next) / (1.0 - product_next),
            1 - self.beta2**t,
            decay,
        )

    def _init_state(self, params: list[Any]) -> dict[str, dict[int, Any]]:
        import torch

        def zeros() -> list[Any]:
            return [torch.zeros_like(p, memory_format=torch.preserve_format) for p in params]

        hp = self.hp
        if self.name == "adagrad":
            value = float(hp["initial_accumulator_value"])
            return {"sum": [torch.full_like(p, value) for p in params]}
        if self.name == "rmsprop":
            state = {"square_avg": zeros()}
            if hp["momentum"] > 0:
                state["momentum_buffer"] = zeros()
            if hp["centered"]:
                state["grad_avg"] = zeros()
            return state
        state = {"exp_avg": zeros(), "exp_avg_sq": zeros()}
        if self.name in ("adam", "adamw") and hp.get("amsgrad"):
            state["max_exp_avg_sq"] = zeros()
        return state

    def step(self, leaves, grads, stats, coef) -> None:
        import torch

        a, b = self.rows
        index = [j for j, g in enumerate(grads) if g is not None]
        params = [leaves[j][a:b] for j in index]
        gs = [grads[j][a:b] for j in index]
        if self.state is None:
            self.state = self._init_state(params)
        state = self.state
        c = coef[a:b]

        def col(k: int) -> list[Any]:
            return [as_column(c[:, k], p.dim()) for p in params]

        decoupled_column = 2 if self.name in ("adam", "adamw") else 3
        if self.weight_decay != 0:
            if self.decoupled:
                torch._foreach_mul_(params, col(decoupled_column))
            else:
                gs = torch._foreach_add(gs, params, alpha=self.weight_decay)
        if self.name == "adagrad":
            torch._foreach_addcmul_(state["sum"], gs, gs, value=1)
            std = torch._foreach_sqrt(state["sum"])
            torch._foreach_add_(std, self.eps)
            update = torch._foreach_div(gs, std)
            torch._foreach_mul_(update, col(0))
            torch._foreach_sub_(params, update)
            return
        if self.name == "rmsprop":
            alpha, momentum = float(self.hp["alpha"]), float(self.hp["momentum"])
            square = state["square_avg"]
            torch._foreach_mul_(square, alpha)
            torch._foreach_addcmul_(square, gs, gs, value=1 - alpha)
            if self.hp["centered"]:
                torch._foreach_lerp_(state["grad_avg"], gs, 1 - alpha)
                avg = torch._foreach_addcmul(square, state["grad_avg"], state["grad_avg"], value=-1)
                torch._foreach_sqrt_(avg)
            else:
                avg = torch._foreach_sqrt(square)
            torch._foreach_add_(avg, self.eps)
            if momentum > 0:
                buf = state["momentum_buffer"]
                torch._foreach_mul_(buf, momentum)
                torch._foreach_addcdiv_(buf, gs, avg)
                update = torch._foreach_mul(buf, col(0))
            else:
                update = torch._foreach_div(gs, avg)
                torch._foreach_mul_(update, col(0))
            torch._foreach_sub_(params, update)
            return
        torch._foreach_lerp_(state["exp_avg"], gs, 1 - self.beta1)
        torch._foreach_mul_(state["exp_avg_sq"], self.beta2)
        torch._foreach_addcmul_(state["exp_avg_sq"], gs, gs, value=1 - self.beta2)
        if self.name == "nadam":
            denom = torch._foreach_div(state["exp_avg_sq"], col(2))
            torch._foreach_sqrt_(denom)
            torch._foreach_add_(denom, self.eps)
            update = torch._foreach_div(gs, denom)
            torch._foreach_mul_(update, col(0))
            torch._foreach_add_(params, update)
            update = torch._foreach_div(state["exp_avg"], denom)
            torch._foreach_mul_(update, col(1))
            torch._foreach_add_(params, update)
            return
        second = state["exp_avg_sq"]
        if "max_exp_avg_sq" in state:
            torch._foreach_maximum_(state["max_exp_avg_sq"], second)
            second = state["max_exp_avg_sq"]
        denom = torch._foreach_sqrt(second)
        torch._foreach_div_(denom, col(1))
        torch._foreach_add_(denom, self.eps)
        update = torch._foreach_div(state["exp_avg"], denom)
        torch._foreach_mul_(update, col(0))
        torch._foreach_sub_(params, update)

    def keep(self, local: list[int], rows: tuple[int, int], leaves) -> None:
        import torch

        self.rows = rows
        if self.state is None:
            return
        index = None
        for name, tensors in self.state.items():
            if index is None:
                index = torch.tensor(local, dtype=torch.long, device=tensors[0].device)
            self.state[name] = [t.index_select(0, index) for t in tensors]


class PerMember:
    """Any other optimizer of the registry: one real ``torch.optim`` instance per member, over
    parameters that are views of the member's rows of the stacked parameters (its own code,
    so its own results; K small steps per step)."""

    def __init__(self, rows: tuple[int, int], cfg: Any, leaves) -> None:
        from torch import nn

        from study.optim.registry import create_optimizer

        self.rows = rows
        self.cfg = cfg
        self.params: list[list[Any]] = []
        self.optimizers = []
        for r in range(*rows):
            views = [nn.Parameter(leaf.detach()[r]) for leaf in leaves]
            self.params.append(views)
            holder = nn.ParameterList(views)
            self.optimizers.append(
                create_optimizer(cfg.optimizer_name, holder, lr=cfg.lr, **cfg.optimizer_hparams)
            )

    batched = False

    def coefficients(self, lr: float, t: int) -> tuple[float, ...]:
        return (lr,)  # unused: the torch optimizers take lr_host

    def step(self, leaves, grads, lr_host, i) -> None:
        a, _ = self.rows
        for offset, (views, optimizer) in enumerate(zip(self.params, self.optimizers, strict=True)):
            row = a + offset
            for view, grad in zip(views, grads, strict=True):
                view.grad = None if grad is None else grad[row]
            for group in optimizer.param_groups:
                group["lr"] = lr_host[row][i]
            optimizer.step()
            for view in views:
                view.grad = None

    def keep(self, local: list[int], rows: tuple[int, int], leaves) -> None:
        self.params = [self.params[r] for r in local]
        self.optimizers = [self.optimizers[r] for r in local]
        self.rows = rows
        for offset, views in enumerate(self.params):
            for view, leaf in zip(views, leaves, strict=True):
                view.data = leaf.detach()[rows[0] + offset]
