"""The optimizer registry: each entry builds, trains, takes its hyperparameters, rejects bad."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import torch
from torch import nn

from study.errors import ConfigError, HprobustError
from study.insgd import INSGD
from study.optimizers import OPTIMIZERS, create_optimizer, optimizer_hparams

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


def test_registry_holds_sgd_and_insgd():
    assert {"sgd", "insgd"} <= set(OPTIMIZERS)
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
    optimizer = create_optimizer(name, model, lr=0.05, momentum=0.9)
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
    with pytest.raises(ConfigError, match="optimizer must be one of sgd, insgd, got 'adam'"):
        create_optimizer("adam", _model(), lr=0.1)
    with pytest.raises(ConfigError, match="got 'adam'"):
        optimizer_hparams("adam")


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_unknown_hyperparameter_is_named_with_the_valid_ones(name: str):
    with pytest.raises(ConfigError) as raised:
        create_optimizer(name, _model(), lr=0.1, betas=(0.9, 0.99))
    message = str(raised.value)
    assert f"unknown hyperparameter 'betas' (= (0.9, 0.99)) for optimizer '{name}'" in message
    assert message.endswith("valid: " + ", ".join(optimizer_hparams(name)))


@pytest.mark.parametrize("name", list(OPTIMIZERS))
@pytest.mark.parametrize(
    ("hparams", "message"),
    [
        ({"lr": -1.0}, "lr must be >= 0, got -1.0"),
        ({"momentum": -0.1}, "momentum must be >= 0, got -0.1"),
        ({"dampening": 2}, "dampening must be in [0, 1], got 2"),
        ({"weight_decay": -1e-4}, "weight_decay must be >= 0, got -0.0001"),
        ({"nesterov": True}, "nesterov must be False unless momentum > 0 and dampening == 0"),
        ({"momentum": "0.9"}, "momentum must be a real number, got '0.9'"),
    ],
)
def test_bad_values_raise_config_error_naming_rule_and_value(
    name: str, hparams: dict, message: str
):
    model = _model()
    hparams = dict(hparams)
    lr = hparams.pop("lr", 0.1)
    with pytest.raises(ConfigError, match=re.escape(message)) as raised:
        create_optimizer(name, model, lr=lr, **hparams)
    assert isinstance(raised.value, ValueError) and isinstance(raised.value, HprobustError)


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
        "import sys, study.optimizers as o; o.optimizer_hparams('insgd'); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
