"""INSGD against a plain float64 per-parameter re-implementation of docs/design.md#insgd."""

from __future__ import annotations

import copy
import gc
import io
import math
import re
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

from study import INSGD

HOOKED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --------------------------------------------------------------------------------------
# The reference: docs/design.md#insgd's equations, literally, one parameter and one entry at a time.
# --------------------------------------------------------------------------------------


def _standardized(v: Tensor) -> Tensor:
    """The authors' per-sample standardization of one row/channel (1-D tensor)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # std of a single value warns and is NaN
        std = v.std().item()  # unbiased (torch.std default)
    if math.isnan(std):
        std = 0.001
    std = max(std, 0.01)
    return (v - v.mean()) / std


def _ln(v: float) -> float:
    return math.log(v) if v > 0 else -math.inf


def _energy(v: Tensor, norm: str) -> float:
    return float((v**2).sum()) if norm == "l2" else float(v.abs().sum())


def reference_statistic(module: nn.Module, x: Tensor, norm: str, variant: str) -> Tensor:
    """`s` of one forward: a 0-dim tensor for Linear, one entry per input channel for Conv."""
    x = x.double()
    if isinstance(module, nn.Linear):
        rows = x.reshape(-1, module.in_features)
        energies = []
        for row in rows:
            if variant == "reference":
                row = _standardized(row)
            energies.append(_energy(row, norm))
        s = sum(energies) / len(energies)
        if variant == "reference":
            s += 0.1
        return torch.tensor(s, dtype=torch.float64)
    if x.dim() == module.weight.dim() - 1:  # unbatched conv input
        x = x.unsqueeze(0)
    n_samples, channels = x.shape[0], x.shape[1]
    s = torch.zeros(channels, dtype=torch.float64)
    for c in range(channels):
        total = 0.0
        for n in range(n_samples):
            v = x[n, c].reshape(-1)
            if variant == "reference":
                v = _standardized(v)
            total += _energy(v, norm)
        s[c] = total / n_samples
    return s


def weight_denominator(module: nn.Module, d: Tensor) -> Tensor:
    """D laid out like the weight: entry [o, i] uses channel (o // (C_out/g)) * (C_in/g) + i."""
    weight = module.weight
    if isinstance(module, nn.Linear):
        return d.expand_as(weight)
    c_out, c_in_per_group = weight.shape[0], weight.shape[1]
    out_per_group = c_out // module.groups
    layout = torch.empty_like(weight)
    for o in range(c_out):
        for i in range(c_in_per_group):
            layout[o, i] = d[(o // out_per_group) * c_in_per_group + i]
    return layout


class ReferenceINSGD:
    """Per-parameter INSGD as docs/design.md#insgd states it; `groups` is a list of (params,
    hparams)."""

    def __init__(self, model: nn.Module, groups: list[tuple[list[Tensor], dict]]) -> None:
        self.model = model
        self.groups = groups
        self.inputs: dict[nn.Module, list[Tensor]] = {}
        self.layer_of: dict[Tensor, nn.Module] = {}
        for module in model.modules():
            if isinstance(module, HOOKED):
                self.inputs[module] = []
                self.layer_of[module.weight] = module
                module.register_forward_hook(self._record)
        self.buffers: dict[Tensor, Tensor] = {}
        self.powers: dict[Tensor, Tensor] = {}

    def _record(self, module: nn.Module, args: tuple, output: Tensor) -> None:
        if module.training and torch.is_grad_enabled():
            self.inputs[module].append(args[0].detach().clone())

    @torch.no_grad()
    def step(self) -> None:
        stats: dict[nn.Module, Tensor] = {}
        for params, hp in self.groups:
            for p in params:
                module = self.layer_of.get(p)
                if module is not None and self.inputs[module] and module not in stats:
                    per_forward = [
                        reference_statistic(module, x, hp["norm"], hp["variant"])
                        for x in self.inputs[module]
                    ]
                    stats[module] = sum(per_forward) / len(per_forward)
        for module in self.inputs:
            self.inputs[module] = []

        for params, hp in self.groups:
            lr, m, damp = hp["lr"], hp["momentum"], hp["dampening"]
            for p in params:
                if p.grad is None:
                    continue
                g = p.grad + hp["weight_decay"] * p
                if m != 0:
                    if p not in self.buffers:
                        self.buffers[p] = g.clone()
                    else:
                        self.buffers[p] = m * self.buffers[p] + (1 - damp) * g
                    g = g + m * self.buffers[p] if hp["nesterov"] else self.buffers[p]
                module = self.layer_of.get(p)
                if module is None:
                    p.sub_(lr * g)
                    continue
                s = stats.get(module)
                if hp["variant"] == "paper":
                    if s is not None:
                        beta = hp["power_momentum"]
                        old = self.powers.get(p)
                        self.powers[p] = s if old is None else beta * old + (1 - beta) * s
                    power = self.powers[p].reshape(-1)
                    d = torch.tensor(
                        [max(_ln(v), hp["eps"]) for v in power.tolist()], dtype=p.dtype
                    )
                    p.sub_(lr * g / weight_denominator(module, d.reshape(self.powers[p].shape)))
                else:
                    if s is not None:
                        self.powers[p] = s
                    power = self.powers[p].reshape(-1)
                    d = torch.tensor([max(_ln(v), 0.01) for v in power.tolist()], dtype=p.dtype)
                    d_w = weight_denominator(module, d.reshape(self.powers[p].shape))
                    p.sub_(lr * math.sqrt(1 + 1e-6) * g / (d_w * (math.sqrt(1 - m) + 1e-6)))


# --------------------------------------------------------------------------------------
# Layer kinds: (model, make_input(generator, batch)).
# --------------------------------------------------------------------------------------


def _randn(*shape: int, gen: torch.Generator) -> Tensor:
    return torch.randn(*shape, generator=gen, dtype=torch.float64)


LAYER_KINDS: dict[str, Callable[[], tuple[nn.Module, Callable[[torch.Generator, int], Tensor]]]]
LAYER_KINDS = {
    "linear": lambda: (
        nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3)),
        lambda gen, b: _randn(b, 5, gen=gen),
    ),
    "linear_3d_input": lambda: (
        nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 3)),
        lambda gen, b: _randn(b, 3, 5, gen=gen),
    ),
    "linear_one_feature": lambda: (
        nn.Sequential(nn.Linear(1, 4), nn.Tanh(), nn.Linear(4, 3)),
        lambda gen, b: _randn(b, 1, gen=gen),
    ),
    "conv1d": lambda: (
        nn.Sequential(nn.Conv1d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6, 3)),
        lambda gen, b: _randn(b, 3, 8, gen=gen),
    ),
    "conv2d": lambda: (
        nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Tanh(), nn.Conv2d(4, 2, 1)),
        lambda gen, b: _randn(b, 3, 5, 5, gen=gen),
    ),
    "conv2d_channels_last": lambda: (
        nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Tanh(), nn.Conv2d(4, 2, 1)),
        lambda gen, b: _randn(b, 3, 5, 5, gen=gen).contiguous(memory_format=torch.channels_last),
    ),
    "conv2d_unbatched": lambda: (
        nn.Sequential(nn.Conv2d(3, 4, 3), nn.Tanh(), nn.Conv2d(4, 2, 2)),
        lambda gen, b: _randn(3, 4 + b, 5, gen=gen),
    ),
    "conv2d_1x1_spatial": lambda: (
        nn.Sequential(nn.Conv2d(3, 4, 1), nn.Tanh(), nn.Flatten(), nn.Linear(4, 2)),
        lambda gen, b: _randn(b, 3, 1, 1, gen=gen),
    ),
    "conv2d_grouped": lambda: (
        nn.Sequential(nn.Conv2d(4, 6, 3, groups=2), nn.Tanh(), nn.Flatten(), nn.Linear(54, 3)),
        lambda gen, b: _randn(b, 4, 5, 5, gen=gen),
    ),
    "conv2d_depthwise": lambda: (
        nn.Sequential(nn.Conv2d(4, 8, 3, groups=4, padding=1), nn.Tanh(), nn.Conv2d(8, 3, 1)),
        lambda gen, b: 3 * _randn(b, 4, 4, 4, gen=gen),
    ),
    "conv3d": lambda: (
        nn.Sequential(nn.Conv3d(2, 3, 2), nn.Tanh(), nn.Flatten(), nn.Linear(24, 3)),
        lambda gen, b: _randn(b, 2, 3, 3, 3, gen=gen),
    ),
    "batchnorm": lambda: (
        nn.Sequential(
            nn.Conv2d(3, 4, 3, bias=False),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(4, 3),
        ),
        lambda gen, b: _randn(b + 1, 3, 6, 6, gen=gen),
    ),
}

DEFAULTS = {
    "momentum": 0.0,
    "dampening": 0.0,
    "weight_decay": 0.0,
    "nesterov": False,
    "power_momentum": 0.9,
    "eps": 0.01,
}

COMBOS: dict[str, tuple[dict, int]] = {  # name: (hyperparameters, forwards per step)
    "plain": ({}, 1),
    "momentum": ({"momentum": 0.9}, 1),
    "nesterov": ({"momentum": 0.9, "nesterov": True}, 1),
    "dampening_weight_decay": (
        {"momentum": 0.8, "dampening": 0.3, "weight_decay": 0.05, "power_momentum": 0.5},
        1,
    ),
    # eps=2 makes the floor of D bind on some layers; two forwards of different batch sizes.
    "two_forwards_eps": ({"momentum": 0.5, "eps": 2.0, "power_momentum": 0.0}, 2),
}


def _loss(out: Tensor, gen: torch.Generator) -> Tensor:
    target = torch.randn(out.shape, generator=gen, dtype=out.dtype)
    return (out - target).square().mean()


def _train_side_by_side(
    model: nn.Module,
    make_input: Callable[[torch.Generator, int], Tensor],
    optimizer: torch.optim.Optimizer,
    twin: nn.Module,
    reference: ReferenceINSGD,
    *,
    steps: int,
    forwards: int,
    on_step: Callable[[], None] = lambda: None,
) -> None:
    gen = torch.Generator().manual_seed(1)
    for _ in range(steps):
        optimizer.zero_grad()
        twin.zero_grad()
        for f in range(forwards):
            x = make_input(gen, 2 + 2 * f)
            state = gen.get_state()
            _loss(model(x), gen).backward()
            gen.set_state(state)
            _loss(twin(x), gen).backward()
        optimizer.step()
        reference.step()
        on_step()
        for (name, p), q in zip(model.named_parameters(), twin.parameters(), strict=True):
            torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12, msg=f"parameter {name}")


@pytest.mark.parametrize("combo", list(COMBOS))
@pytest.mark.parametrize("norm", ["l2", "l1"])
@pytest.mark.parametrize("variant", ["paper", "reference"])
@pytest.mark.parametrize("kind", list(LAYER_KINDS))
def test_matches_reference_implementation(kind: str, variant: str, norm: str, combo: str):
    torch.manual_seed(0)
    model, make_input = LAYER_KINDS[kind]()
    model = model.double()
    twin = copy.deepcopy(model)
    hparams, forwards = COMBOS[combo]
    hp = {**DEFAULTS, **hparams, "lr": 0.1, "norm": norm, "variant": variant}
    optimizer = INSGD(model, **hp)
    reference = ReferenceINSGD(twin, [(list(twin.parameters()), hp)])
    _train_side_by_side(model, make_input, optimizer, twin, reference, steps=3, forwards=forwards)


def test_weights_are_normalized_and_the_rest_is_plain_sgd():
    torch.manual_seed(0)
    model, make_input = LAYER_KINDS["batchnorm"]()
    twin = copy.deepcopy(model)
    insgd = INSGD(model, lr=0.1, momentum=0.9)
    sgd = torch.optim.SGD(twin.parameters(), lr=0.1, momentum=0.9)
    x = make_input(torch.Generator().manual_seed(0), 4).float()
    for m, opt in ((model, insgd), (twin, sgd)):
        m(x).square().mean().backward()
        opt.step()
    assert insgd.hooked_layers == ["0", "5"]
    hooked = {id(model[0].weight), id(model[5].weight)}
    for p, q in zip(model.parameters(), twin.parameters(), strict=True):
        if id(p) in hooked:
            assert not torch.allclose(p, q), "a hooked weight took a plain SGD step"
        else:
            torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_from_study_is_a_torch_optimizer():
    import study.optim.insgd

    assert INSGD is study.optim.insgd.INSGD
    assert issubclass(INSGD, torch.optim.Optimizer)
    assert "\\ln" in INSGD.__doc__ and "Args:" in INSGD.__doc__


# --------------------------------------------------------------------------------------
# Recording rules.
# --------------------------------------------------------------------------------------


def _named_mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        OrderedDict(fc1=nn.Linear(3, 4), act=nn.Tanh(), head=nn.Linear(4, 2))
    ).double()


def test_step_before_any_forward_names_the_layer_and_changes_nothing():
    model = _named_mlp()
    optimizer = INSGD(model, lr=0.1, momentum=0.9)
    before = [p.clone() for p in model.parameters()]
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    with pytest.raises(RuntimeError, match="layer 'fc1'"):
        optimizer.step()
    for p, q in zip(model.parameters(), before, strict=True):
        assert torch.equal(p, q)
    assert len(optimizer.state) == 0


@pytest.mark.parametrize("mode", ["eval", "no_grad", "inference_mode"])
def test_forwards_outside_training_are_not_recorded(mode: str):
    model = _named_mlp()
    optimizer = INSGD(model, lr=0.1)
    x = torch.randn(5, 3, dtype=torch.float64)
    if mode == "eval":
        model.eval()
        model(x).sum().backward()
        model.train()
    else:
        context = torch.no_grad() if mode == "no_grad" else torch.inference_mode()
        with context:
            model(100 * x)
        for p in model.parameters():
            p.grad = torch.ones_like(p)
    with pytest.raises(RuntimeError, match="layer 'fc1'"):
        optimizer.step()

    # Only the training forward counts, however large the other inputs are.
    model.zero_grad()
    model(x).sum().backward()
    with torch.no_grad():
        model(1000 * x)
    model.eval()
    model(1000 * x)
    optimizer.step()
    expected = x.square().sum() / 5
    torch.testing.assert_close(optimizer.state[model.fc1.weight]["input_power"], expected)


def test_several_forwards_average_their_statistics():
    model = _named_mlp()
    optimizer = INSGD(model, lr=0.1)
    x1, x2 = torch.randn(2, 3, dtype=torch.float64), torch.randn(6, 3, dtype=torch.float64)
    (model(x1).sum() + model(x2).sum()).backward()
    optimizer.step()
    expected = (x1.square().sum() / 2 + x2.square().sum() / 6) / 2  # mean of the two means
    torch.testing.assert_close(optimizer.state[model.fc1.weight]["input_power"], expected)


@pytest.mark.parametrize("variant", ["paper", "reference"])
def test_step_without_new_forward_reuses_last_power(variant: str):
    model = _named_mlp()
    optimizer = INSGD(model, lr=0.1, variant=variant, power_momentum=0.5)
    x = torch.randn(4, 3, dtype=torch.float64)
    model(x).sum().backward()
    optimizer.step()
    power = optimizer.state[model.fc1.weight]["input_power"].clone()

    optimizer.zero_grad()
    model.eval()  # not recorded: the next step has no new forward
    model(3 * x).square().sum().backward()
    weight, grad = model.fc1.weight.detach().clone(), model.fc1.weight.grad.clone()
    optimizer.step()
    state = optimizer.state[model.fc1.weight]
    assert torch.equal(state["input_power"], power)
    assert state["step"] == 2
    if variant == "paper":
        d = max(math.log(power.item()), 0.01)
        expected = weight - 0.1 * grad / d
    else:
        d = max(math.log(power.item()), 0.01)
        expected = weight - 0.1 * math.sqrt(1 + 1e-6) * grad / (d * (1 + 1e-6))
    torch.testing.assert_close(model.fc1.weight.detach(), expected)


def test_bf16_autocast_forward_is_recorded_in_float32():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3), nn.Conv1d(4, 2, 1))
    seen: dict[str, Tensor] = {}

    def keep(key: str) -> Callable[[nn.Module, tuple, Tensor], None]:
        def hook(module: nn.Module, args: tuple, output: Tensor) -> None:
            seen[key] = args[0].detach()

        return hook

    model[2].register_forward_hook(keep("linear"))
    model[3].register_forward_hook(keep("conv"))
    optimizer = INSGD(model, lr=0.1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.randn(5, 4, 6))
    out.float().square().mean().backward()
    optimizer.step()
    assert seen["linear"].dtype == torch.bfloat16 and seen["conv"].dtype == torch.bfloat16
    p_linear = optimizer.state[model[2].weight]["input_power"]
    p_conv = optimizer.state[model[3].weight]["input_power"]
    assert p_linear.dtype == torch.float32 and p_conv.dtype == torch.float32
    x = seen["linear"].float()
    torch.testing.assert_close(p_linear, x.square().sum() / 20, rtol=1e-5, atol=0)
    c = seen["conv"].float()
    torch.testing.assert_close(p_conv, c.square().sum(dim=(0, 2)) / 5, rtol=1e-5, atol=0)


def test_step_reads_no_tensor_values_on_the_host():
    """On the meta device a tensor has no values: .item(), float(t), `if t:` all raise.

    A whole forward/backward/step cycle running there shows INSGD's hooks and step never
    read a value on the host, i.e. make no host-device synchronization on an accelerator.
    """
    with pytest.raises(RuntimeError):
        torch.ones(1, device="meta").item()
    for variant in ("paper", "reference"):
        for norm in ("l2", "l1"):
            torch.manual_seed(0)
            model, _ = LAYER_KINDS["batchnorm"]()
            model = model.to("meta")
            optimizer = INSGD(
                model, lr=0.1, momentum=0.9, weight_decay=1e-4, variant=variant, norm=norm
            )
            for _ in range(3):
                optimizer.zero_grad()
                model(torch.randn(4, 3, 6, 6, device="meta")).square().mean().backward()
                optimizer.step()
            assert optimizer.state[model[0].weight]["input_power"].device.type == "meta"


# --------------------------------------------------------------------------------------
# Validation.
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr": -0.1}, "INSGD: lr must be >= 0, got -0.1"),
        ({"lr": "0.1"}, "INSGD: lr must be a real number, got '0.1'"),
        ({"lr": math.nan}, "INSGD: lr must be finite, got nan"),
        ({"momentum": -0.5}, "INSGD: momentum must be >= 0, got -0.5"),
        ({"dampening": 1.5}, "INSGD: dampening must be in [0, 1], got 1.5"),
        ({"weight_decay": -1}, "INSGD: weight_decay must be >= 0, got -1"),
        ({"power_momentum": 1.5}, "INSGD: power_momentum must be in [0, 1), got 1.5"),
        ({"power_momentum": 1.0}, "INSGD: power_momentum must be in [0, 1), got 1.0"),
        ({"eps": 0}, "INSGD: eps must be > 0, got 0"),
        ({"norm": "l3"}, "INSGD: norm must be one of ['l1', 'l2'], got 'l3'"),
        ({"variant": "adam"}, "INSGD: variant must be one of ['paper', 'reference'], got 'adam'"),
        ({"nesterov": "yes"}, "INSGD: nesterov must be a bool, got 'yes'"),
        ({"nesterov": True}, "INSGD: nesterov must be False unless momentum > 0 and dampening"),
        (
            {"nesterov": True, "momentum": 0.9, "dampening": 0.1},
            "unless momentum > 0 and dampening == 0 (momentum=0.9, dampening=0.1), got True",
        ),
    ],
)
def test_bad_hyperparameters_name_argument_rule_and_value(kwargs: dict, message: str):
    model = _named_mlp()
    with pytest.raises(ValueError, match=re.escape(message)):
        INSGD(model, **{"lr": 0.1, **kwargs})


def test_bad_group_hyperparameters_are_rejected():
    model = _named_mlp()
    with pytest.raises(ValueError, match=re.escape("momentum must be >= 0, got -1")):
        INSGD(model, lr=0.1, params=[{"params": model.parameters(), "momentum": -1}])
    with pytest.raises(ValueError, match="norm must be the same for every param group"):
        INSGD(model, lr=0.1, params=[{"params": model.parameters(), "norm": "l1"}])
    with pytest.raises(TypeError, match=r"model must be a torch.nn.Module"):
        INSGD(list(model.parameters()), lr=0.1)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
# torch integration: groups, schedulers, state_dict, hooks.
# --------------------------------------------------------------------------------------


def test_param_groups_carry_their_own_hyperparameters():
    torch.manual_seed(0)
    model, make_input = LAYER_KINDS["conv2d_grouped"]()
    model = model.double()
    twin = copy.deepcopy(model)
    base = {**DEFAULTS, "lr": 0.1, "norm": "l2", "variant": "paper"}
    first = {"lr": 0.05, "momentum": 0.9, "power_momentum": 0.3}
    optimizer = INSGD(
        model,
        lr=0.1,
        params=[{"params": model[0].parameters(), **first}, {"params": model[3].parameters()}],
    )
    reference = ReferenceINSGD(
        twin, [(list(twin[0].parameters()), {**base, **first}), (list(twin[3].parameters()), base)]
    )
    _train_side_by_side(model, make_input, optimizer, twin, reference, steps=3, forwards=1)


def test_add_param_group_hooks_new_layers():
    model = _named_mlp()
    optimizer = INSGD(model, lr=0.1, params=model.fc1.parameters())
    assert optimizer.hooked_layers == ["fc1"]
    optimizer.add_param_group({"params": model.head.parameters(), "lr": 0.01})
    assert optimizer.hooked_layers == ["fc1", "head"]
    model(torch.randn(3, 3, dtype=torch.float64)).sum().backward()
    optimizer.step()
    assert optimizer.state[model.head.weight]["step"] == 1


@pytest.mark.parametrize("scheduler", ["step", "cosine"])
def test_lr_schedulers_drive_the_step(scheduler: str):
    torch.manual_seed(0)
    model, make_input = LAYER_KINDS["conv1d"]()
    model = model.double()
    twin = copy.deepcopy(model)
    hp = {**DEFAULTS, "lr": 0.2, "momentum": 0.9, "norm": "l2", "variant": "paper"}
    optimizer = INSGD(model, **hp)
    if scheduler == "step":
        sched = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
        lrs = [0.2 * 0.5**t for t in range(1, 5)]
    else:
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=4, eta_min=0.01)
        lrs = [0.01 + (0.2 - 0.01) * (1 + math.cos(math.pi * t / 4)) / 2 for t in range(1, 5)]
    reference = ReferenceINSGD(twin, [(list(twin.parameters()), hp)])
    seen = iter(lrs)

    def after_step() -> None:
        sched.step()
        lr = next(seen)
        assert optimizer.param_groups[0]["lr"] == pytest.approx(lr)
        hp["lr"] = lr  # the reference follows the same schedule

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "lr_scheduler.step() before optimizer.step()"
        _train_side_by_side(
            model, make_input, optimizer, twin, reference, steps=4, forwards=1, on_step=after_step
        )


@pytest.mark.parametrize("variant", ["paper", "reference"])
def test_state_dict_round_trip_continues_identically(variant: str):
    torch.manual_seed(0)
    build = LAYER_KINDS["batchnorm"]
    model, make_input = build()
    hp = {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-3, "variant": variant}
    optimizer = INSGD(model, **hp)
    gen = torch.Generator().manual_seed(0)
    batches = [make_input(gen, 4).float() for _ in range(6)]

    def train(m: nn.Module, opt: torch.optim.Optimizer, xs: list[Tensor]) -> None:
        for x in xs:
            opt.zero_grad()
            m(x).square().mean().backward()
            opt.step()

    train(model, optimizer, batches[:3])
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, buffer)
    train(model, optimizer, batches[3:])

    buffer.seek(0)
    saved = torch.load(buffer)
    assert all("input_power" in saved["optimizer"]["state"][i] for i in (0, 3))
    resumed, _ = build()
    resumed.load_state_dict(saved["model"])
    resumed_optimizer = INSGD(resumed, lr=0.5)  # hyperparameters come from the state dict
    resumed_optimizer.load_state_dict(saved["optimizer"])
    assert resumed_optimizer.param_groups[0]["momentum"] == 0.9
    train(resumed, resumed_optimizer, batches[3:])
    for p, q in zip(model.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(p, q)


def test_remove_hooks_stops_recording():
    model = _named_mlp()
    optimizer = INSGD(model, lr=0.1)
    x = torch.randn(4, 3, dtype=torch.float64)
    model(x).sum().backward()
    optimizer.step()
    power = optimizer.state[model.fc1.weight]["input_power"].clone()
    optimizer.remove_hooks()
    optimizer.zero_grad()
    model(50 * x).sum().backward()
    optimizer.step()  # the forward after remove_hooks() is not seen: P is reused
    assert torch.equal(optimizer.state[model.fc1.weight]["input_power"], power)


def test_hooks_do_not_keep_the_optimizer_alive():
    model = _named_mlp()
    optimizer = INSGD(model, lr=0.1)
    assert len(model.fc1._forward_hooks) == 1
    alive = weakref.ref(optimizer)
    del optimizer
    gc.collect()
    assert alive() is None
    assert len(model.fc1._forward_hooks) == 0 and len(model.head._forward_hooks) == 0
