"""The optimizer registry: each entry builds, trains, takes its hyperparameters, rejects bad."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import torch
from torch import nn

from study.errors import ConfigError, HprobustError
from study.optim.insgd import INSGD
from study.optim.registry import OPTIMIZERS, create_optimizer, optimizer_hparams

# A valid non-default value for every hyperparameter any registered optimizer has. A new
# optimizer with a new hyperparameter makes test_every_hyperparameter_reaches_the_groups fail
# until it is listed here.
NON_DEFAULT = {
    "momentum": 0.5,
    "dampening": 0.0,
    "weight_decay": 1e-3,
    "nesterov": True,
    "norm": "l1",
    "variant": "reference",
    "power_momentum": 0.5,
    "eps": 0.1,
    "betas": (0.8, 0.99),
    "amsgrad": True,
    "decoupled_weight_decay": True,
    "lr_decay": 0.01,
    "initial_accumulator_value": 0.1,
    "alpha": 0.9,
    "centered": True,
    "momentum_decay": 0.01,
}

# Values every rule refuses, with the rule the error must state. A new hyperparameter makes
# test_every_hyperparameter_has_bad_values fail until it is listed here.
BAD = {
    "momentum": [(-0.1, "must be >= 0"), ("0.9", "must be a real number")],
    "dampening": [(2, "must be in [0, 1]")],
    "weight_decay": [(-1e-4, "must be >= 0"), (float("nan"), "must be finite")],
    "nesterov": [("yes", "must be a bool")],
    "norm": [("l3", "must be one of ['l1', 'l2']")],
    "variant": [("v2", "must be one of ['paper', 'reference']")],
    "power_momentum": [(1.0, "must be in [0, 1)")],
    "eps": [(-0.01, "must be > 0"), (-0.01, "must be >= 0"), (True, "must be a real number")],
    "betas": [
        ((0.9, 1.0), "must be two numbers in [0, 1)"),
        ([0.9], "must be two numbers in [0, 1)"),
        (0.9, "must be two numbers in [0, 1)"),
    ],
    "amsgrad": [(1, "must be a bool")],
    "decoupled_weight_decay": [("true", "must be a bool")],
    "lr_decay": [(-0.5, "must be >= 0")],
    "initial_accumulator_value": [(-1, "must be >= 0")],
    "alpha": [(1.5, "must be in [0, 1]"), (-0.1, "must be in [0, 1]")],
    "centered": [(None, "must be a bool")],
    "momentum_decay": [(-0.004, "must be >= 0"), (float("inf"), "must be finite")],
}

# (lr, hparams) with which each optimizer halves the loss of _model in 30 full-batch steps
# (an optimizer not listed is tried at lr 0.01 with its defaults).
TRAINS = {
    "sgd": (0.05, {"momentum": 0.9}),
    "insgd": (0.05, {"momentum": 0.9}),
    "adam": (0.01, {}),
    "adamw": (0.01, {}),
    "adagrad": (0.1, {}),
    "rmsprop": (0.01, {}),
    "nadam": (0.01, {}),
}

# The torch.optim class each torch-backed optimizer of today's registry builds (checked by hand;
# a torch-backed optimizer added to the registry is tested with the class it builds).
TORCH_CLASS = {
    "sgd": "SGD",
    "adam": "Adam",
    "adamw": "AdamW",
    "adagrad": "Adagrad",
    "rmsprop": "RMSprop",
    "nadam": "NAdam",
}


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 4 * 4, 3),
    )


def _torch_backed() -> list[str]:
    """The optimizers of the registry that build a torch.optim class (all but INSGD today)."""
    built = {name: type(create_optimizer(name, _model(), lr=0.01)) for name in OPTIMIZERS}
    return [name for name, cls in built.items() if getattr(torch.optim, cls.__name__, None) is cls]


TORCH_BACKED = _torch_backed()


def test_registry_holds_the_paper_optimizers_and_its_baselines():
    assert set(OPTIMIZERS) >= {"sgd", "insgd", "adam", "adamw", "adagrad", "rmsprop", "nadam"}
    assert set(TORCH_CLASS) <= set(TORCH_BACKED) and "insgd" not in TORCH_BACKED
    assert set(optimizer_hparams("insgd")) == {
        "momentum",
        "dampening",
        "weight_decay",
        "nesterov",
        "norm",
        "variant",
        "power_momentum",
        "eps",
    }
    assert set(optimizer_hparams("sgd")) == {"momentum", "dampening", "weight_decay", "nesterov"}
    assert set(optimizer_hparams("adagrad")) == {
        "lr_decay",
        "weight_decay",
        "initial_accumulator_value",
        "eps",
    }


@pytest.mark.parametrize("name", TORCH_BACKED)
def test_torch_optimizers_take_torchs_hyperparameters_and_defaults(name: str):
    """Every hyperparameter the spec accepts is one torch's class takes, with its default;
    the ones left out are implementation switches (and maximize, which no study wants)."""
    import inspect

    cls = type(create_optimizer(name, _model(), lr=0.01))
    if name in TORCH_CLASS:
        assert cls.__name__ == TORCH_CLASS[name]
    params = inspect.signature(cls.__init__).parameters
    ours = optimizer_hparams(name)
    for key, default in ours.items():
        assert key in params, key
        assert params[key].default == default, key
    switches = {"self", "params", "lr", "foreach", "fused", "capturable", "differentiable"}
    assert set(params) - set(ours) - switches == {"maximize"}
    assert type(create_optimizer(name, _model(), lr=0.01)) is cls


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_every_hyperparameter_has_bad_values(name: str):
    assert set(optimizer_hparams(name)) <= set(BAD)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_builds_over_every_parameter_with_defaults(name: str):
    model = _model()
    optimizer = create_optimizer(name, model, lr=0.03)
    assert isinstance(optimizer, torch.optim.Optimizer)
    grouped = [p for group in optimizer.param_groups for p in group["params"]]
    assert len(grouped) == len(list(model.parameters()))
    assert {id(p) for p in grouped} == {id(p) for p in model.parameters()}
    group = optimizer.param_groups[0]
    assert group["lr"] == 0.03
    for key, default in optimizer_hparams(name).items():
        assert group[key] == default, key


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_every_hyperparameter_reaches_the_groups(name: str):
    hparams = {key: NON_DEFAULT[key] for key in optimizer_hparams(name)}
    optimizer = create_optimizer(name, _model(), lr=0.1, **hparams)
    for key, value in hparams.items():
        assert optimizer.param_groups[0][key] == value, key


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_trains_a_small_model(name: str):
    model = _model()
    lr, hparams = TRAINS.get(name, (0.01, {}))
    optimizer = create_optimizer(name, model, lr=lr, **hparams)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(32, 1, 4, 4, generator=gen)
    y = (x.sum(dim=(1, 2, 3)) > 0).long() + (x[:, 0, 0, 0] > 1).long()
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


def test_sgd_is_torch_sgd_and_insgd_is_insgd():
    model = _model()
    sgd = create_optimizer("sgd", model, lr=0.1, momentum=0.9, nesterov=True)
    assert type(sgd) is torch.optim.SGD and sgd.param_groups[0]["nesterov"] is True
    insgd = create_optimizer("insgd", model, lr=0.1, variant="reference")
    assert isinstance(insgd, INSGD)
    assert insgd.hooked_layers == ["0", "4"]
    assert insgd.param_groups[0]["variant"] == "reference"


def test_unknown_optimizer_lists_the_valid_names():
    names = ", ".join(OPTIMIZERS)
    with pytest.raises(ConfigError, match=f"optimizer must be one of {names}, got 'lamb'$"):
        create_optimizer("lamb", _model(), lr=0.1)
    with pytest.raises(ConfigError, match="got 'adma' \\(did you mean 'adam'\\?\\)"):
        optimizer_hparams("adma")


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_unknown_hyperparameter_is_named_with_the_valid_ones(name: str):
    with pytest.raises(ConfigError) as raised:
        create_optimizer(name, _model(), lr=0.1, gamma=(0.9, 0.99))
    message = str(raised.value)
    assert f"unknown hyperparameter 'gamma' (= (0.9, 0.99)) for optimizer '{name}'" in message
    assert message.endswith("valid: " + ", ".join(optimizer_hparams(name)))


BAD_CASES = [
    (name, key, value, rule)
    for name in OPTIMIZERS
    for key in optimizer_hparams(name)
    for value, rule in BAD[key]
    # INSGD divides by max(ln P, eps): its eps must be > 0; torch's optimizers allow 0.
    if not (key == "eps" and rule == ("must be > 0" if name != "insgd" else "must be >= 0"))
]


@pytest.mark.parametrize(("name", "key", "value", "rule"), BAD_CASES)
def test_bad_values_raise_config_error_naming_rule_and_value(
    name: str, key: str, value: object, rule: str
):
    with pytest.raises(ConfigError, match=re.escape(f"{key} {rule}, got {value!r}")) as raised:
        create_optimizer(name, _model(), lr=0.1, **{key: value})
    assert isinstance(raised.value, ValueError) and isinstance(raised.value, HprobustError)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_negative_lr_is_refused(name: str):
    with pytest.raises(ConfigError, match=re.escape("lr must be >= 0, got -1.0")):
        create_optimizer(name, _model(), lr=-1.0)


@pytest.mark.parametrize("name", [n for n in OPTIMIZERS if "nesterov" in optimizer_hparams(n)])
def test_nesterov_needs_momentum(name: str):
    message = "nesterov must be False unless momentum > 0 and dampening == 0"
    with pytest.raises(ConfigError, match=re.escape(message)):
        create_optimizer(name, _model(), lr=0.1, nesterov=True)


@pytest.mark.parametrize("name", TORCH_BACKED)
def test_eps_zero_is_allowed_where_torch_allows_it(name: str):
    if "eps" in optimizer_hparams(name):
        assert create_optimizer(name, _model(), lr=0.1, eps=0.0).param_groups[0]["eps"] == 0.0


@pytest.mark.parametrize(
    ("hparams", "message"),
    [
        ({"norm": "l3"}, "INSGD: norm must be one of ['l1', 'l2'], got 'l3'"),
        ({"variant": "v2"}, "INSGD: variant must be one of ['paper', 'reference'], got 'v2'"),
        ({"power_momentum": 1.0}, "INSGD: power_momentum must be in [0, 1), got 1.0"),
        ({"eps": -0.01}, "INSGD: eps must be > 0, got -0.01"),
    ],
)
def test_bad_insgd_values_raise_config_error(hparams: dict, message: str):
    with pytest.raises(ConfigError, match=re.escape(message)):
        create_optimizer("insgd", _model(), lr=0.1, **hparams)


def test_optimizer_hparams_is_a_fresh_copy():
    hparams = optimizer_hparams("insgd")
    hparams["eps"] = 123.0
    assert optimizer_hparams("insgd")["eps"] == 0.01


def test_registry_lookup_does_not_import_torch():
    code = (
        "import sys, study.optim.registry as o; o.optimizer_hparams('insgd'); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
