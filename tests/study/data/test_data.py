"""Datasets: registry, digits split, synthetic options, on-device augmentation, missing data."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from study.data.loader import clear_cache, crop_flip, load_dataset
from study.data.registry import DATASETS, dataset_info
from study.errors import ConfigError, DatasetNotFoundError, SpecError

EXPECTED_INFO = {
    "digits": (10, (1, 8, 8)),
    "synthetic": (10, (1, 8, 8)),
    "cifar10": (10, (3, 32, 32)),
    "cifar100": (100, (3, 32, 32)),
    "mnist": (10, (1, 28, 28)),
    "fashion_mnist": (10, (1, 28, 28)),
}


def test_registry_is_what_the_tests_cover():
    assert set(DATASETS) == set(EXPECTED_INFO)


@pytest.mark.parametrize("name", list(DATASETS))
def test_dataset_info_is_right_without_data(name, tmp_path, monkeypatch):
    monkeypatch.setenv("HPROBUST_DATA_DIR", str(tmp_path))  # empty: info must not need data
    info = dataset_info(name)
    assert (info.num_classes, info.in_shape) == EXPECTED_INFO[name]
    assert list(tmp_path.iterdir()) == []  # nothing downloaded


@pytest.mark.parametrize("name", list(DATASETS))
def test_unknown_option_is_rejected_naming_it(name):
    with pytest.raises(ConfigError, match=r"^dataset\.colour is not a known key, got 'red'$"):
        dataset_info(name, colour="red")
    with pytest.raises(ConfigError, match=r"^dataset\.colour is not a known key, got 'red'$"):
        load_dataset(name, device="cpu", colour="red")


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(ConfigError) as err:
        load_dataset("imagenet", device="cpu")
    assert "'imagenet'" in str(err.value)
    for name in DATASETS:
        assert name in str(err.value)


def test_digits_split_sizes_stratification_and_normalization():
    ds = load_dataset("digits", device="cpu")
    assert ds.x_train.shape == (1437, 1, 8, 8) and ds.x_val.shape == (360, 1, 8, 8)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert ds.num_classes == 10 and ds.in_shape == (1, 8, 8)
    # Stratified 80/20: every class's share of the val split matches its share overall.
    train_counts = torch.bincount(ds.y_train, minlength=10)
    val_counts = torch.bincount(ds.y_val, minlength=10)
    total = train_counts + val_counts
    assert total.sum() == 1797
    assert torch.all((val_counts - 0.2 * total).abs() <= 1)
    # Normalized by the train split's own statistics.
    assert abs(ds.x_train.mean().item()) < 1e-5
    assert abs(ds.x_train.std().item() - 1.0) < 1e-4
    # Fixed split: a fresh load (cache emptied) gives the very same tensors.
    clear_cache()
    again = load_dataset("digits", device="cpu")
    assert again is not ds
    assert torch.equal(again.x_val, ds.x_val) and torch.equal(again.y_train, ds.y_train)
    # Digits has no augmentation: identity.
    batch = ds.x_train[:4]
    assert ds.augmentation is None
    assert ds.augment(batch, torch.Generator().manual_seed(0)) is batch


def test_cache_returns_the_same_object_for_the_same_key():
    a = load_dataset("synthetic", device="cpu", n_train=50, n_val=10)
    b = load_dataset("synthetic", device="cpu", n_train=50, n_val=10)
    c = load_dataset("synthetic", device="cpu", n_train=50, n_val=11)
    assert a is b
    assert c is not a and c.x_val.shape[0] == 11


def test_synthetic_shape_and_class_options():
    ds = load_dataset(
        "synthetic", device="cpu", num_classes=3, shape=[3, 4, 5], n_train=90, n_val=30
    )
    assert ds.x_train.shape == (90, 3, 4, 5) and ds.x_val.shape == (30, 3, 4, 5)
    assert ds.num_classes == 3 and ds.in_shape == (3, 4, 5)
    assert torch.bincount(ds.y_train).tolist() == [30, 30, 30]
    assert set(ds.y_val.tolist()) == {0, 1, 2}
    info = dataset_info("synthetic", num_classes=3, shape=[3, 4, 5])
    assert (info.num_classes, info.in_shape) == (3, (3, 4, 5))


def test_synthetic_is_deterministic_by_its_own_seed_and_learnable():
    kw = {"n_train": 200, "n_val": 100, "noise": 0.5}
    a = load_dataset("synthetic", device="cpu", seed=1, **kw)
    clear_cache()
    b = load_dataset("synthetic", device="cpu", seed=1, **kw)
    c = load_dataset("synthetic", device="cpu", seed=2, **kw)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_val, b.y_val)
    assert not torch.equal(a.x_train, c.x_train)
    # Classes are Gaussian clusters: nearest class mean (from train) classifies val well.
    flat_tr, flat_va = a.x_train.flatten(1), a.x_val.flatten(1)
    means = torch.stack([flat_tr[a.y_train == k].mean(0) for k in range(10)])
    pred = torch.cdist(flat_va, means).argmin(1)
    assert (pred == a.y_val).float().mean() > 0.9


@pytest.mark.parametrize(
    ("options", "key", "value"),
    [
        ({"num_classes": 1}, "dataset.num_classes", 1),
        ({"num_classes": 2.5}, "dataset.num_classes", 2.5),
        ({"shape": [8, 8]}, "dataset.shape.2", None),  # "is required": three numbers
        ({"shape": [1, 0, 8]}, "dataset.shape.1", 0),
        ({"n_train": 0}, "dataset.n_train", 0),
        ({"noise": -1.0}, "dataset.noise", -1.0),
        ({"separation": 0}, "dataset.separation", 0),
        ({"seed": True}, "dataset.seed", True),
    ],
)
def test_synthetic_bad_options_name_the_option_and_value(options, key, value):
    """The data module applies the spec's rules (study.data.registry.SyntheticData)."""
    with pytest.raises(SpecError) as err:
        dataset_info("synthetic", **options)
    (problem,) = err.value.problems
    assert problem["field"] == key
    if value is not None:
        assert problem["value"] == value and type(problem["value"]) is type(value)
    assert f"{key} {problem['rule']}, got {problem['value']!r}" == str(err.value)


def test_cifar_augment_option_is_validated():
    with pytest.raises(ConfigError, match=r"^dataset\.augment must be a valid boolean, got 'yes'$"):
        dataset_info("cifar10", augment="yes")


# --------------------------------------------------------------------------- augmentation


def _ramp_batch(n: int = 6, c: int = 2, h: int = 8, w: int = 8) -> torch.Tensor:
    """Every pixel distinct, so where a value lands tells where it came from."""
    return torch.arange(n * c * h * w, dtype=torch.float32).reshape(n, c, h, w)


def test_crop_flip_is_a_shifted_window_of_the_reflect_padded_image():
    x = _ramp_batch()
    out = crop_flip(x, torch.Generator().manual_seed(3), padding=2)
    assert out.shape == x.shape and out.dtype == x.dtype
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2), mode="reflect")
    for n in range(x.shape[0]):
        matches = [
            (dy, dx, flip)
            for dy in range(5)
            for dx in range(5)
            for flip in (False, True)
            if torch.equal(
                out[n],
                padded[n, :, dy : dy + 8, dx : dx + 8].flip(-1)
                if flip
                else padded[n, :, dy : dy + 8, dx : dx + 8],
            )
        ]
        assert len(matches) == 1, f"sample {n}: output is not one crop (+ flip) of its input"


def test_crop_flip_shifts_and_flips_over_a_batch_and_leaves_input_untouched():
    x = _ramp_batch(n=64, c=1)
    before = x.clone()
    out = crop_flip(x, torch.Generator().manual_seed(0), padding=4)
    assert torch.equal(x, before)
    unchanged = sum(torch.equal(out[n], x[n]) for n in range(64))
    flipped_in_place = sum(torch.equal(out[n], x[n].flip(-1)) for n in range(64))
    # (dy, dx, flip) = (4, 4, no) has probability 1/162: almost every sample changes.
    assert unchanged < 4
    assert 0 <= flipped_in_place < 4
    # Each sample's rows are consecutive rows of the padded image, in order (a crop, not noise).
    assert torch.all(out[:, :, 1:, :].sub(out[:, :, :-1, :]).abs() <= 8 * 2)


def test_pure_flip_mirrors_the_image():
    x = _ramp_batch(n=200, c=1, h=4, w=4)
    out = crop_flip(x, torch.Generator().manual_seed(0), padding=0)
    mirrored = [torch.equal(out[n], x[n].flip(-1)) for n in range(200)]
    same = [torch.equal(out[n], x[n]) for n in range(200)]
    assert all(m or s for m, s in zip(mirrored, same, strict=True))
    assert 60 < sum(mirrored) < 140  # about half


def test_crop_flip_is_deterministic_for_a_generator_seed():
    x = _ramp_batch()
    a = crop_flip(x, torch.Generator().manual_seed(7))
    b = crop_flip(x, torch.Generator().manual_seed(7))
    c = crop_flip(x, torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


# --------------------------------------------------------------------------- missing data


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("cifar10", ["cifar-10-batches-py", "cifar-10-python.tar.gz", "https://"]),
        ("cifar100", ["cifar-100-python", "cifar-100-python.tar.gz", "https://"]),
        ("mnist", ["MNIST", "train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]),
        ("fashion_mnist", ["FashionMNIST", "train-images-idx3-ubyte.gz", "http"]),
    ],
)
def test_missing_dataset_names_directory_files_and_how_to_provide(name, expected, tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset(name, device="cpu", data_dir=tmp_path, download=False)
    message = str(err.value)
    assert str(tmp_path) in message
    for part in expected:
        assert part in message
    assert "copy" in message
    assert isinstance(err.value, FileNotFoundError)


def test_failed_download_becomes_dataset_not_found(tmp_path):
    """A real download attempt that fails (through a proxy that refuses connections, so the
    test never depends on the network) raises DatasetNotFoundError with the instructions."""
    code = textwrap.dedent(
        f"""
        from study.data.loader import load_dataset
        from study.errors import DatasetNotFoundError
        try:
            load_dataset("cifar10", device="cpu", data_dir={str(tmp_path)!r})
        except DatasetNotFoundError as exc:
            print("RAISED", exc)
        """
    )
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("no_proxy",)}
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        env[var] = "http://127.0.0.1:9"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert "RAISED" in proc.stdout, proc.stderr
    assert "could not be downloaded" in proc.stdout
    assert "cifar-10-python.tar.gz" in proc.stdout and str(tmp_path) in proc.stdout


# --------------------------------------------------------------------------- torchvision path


def _write_idx(path: Path, array, magic: int) -> None:
    import numpy as np

    header = np.array([magic, *array.shape], dtype=">i4").tobytes()
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def test_mnist_files_in_data_dir_load_as_normalized_tensors(tmp_path):
    """Small files in MNIST's own format, read by torchvision, become one tensor per split."""
    import numpy as np

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images = {
        "train": rng.integers(0, 256, (20, 28, 28)),
        "t10k": rng.integers(0, 256, (8, 28, 28)),
    }
    labels = {"train": np.arange(20) % 10, "t10k": np.arange(8) % 10}
    for split in ("train", "t10k"):
        _write_idx(raw / f"{split}-images-idx3-ubyte", images[split], 2051)
        _write_idx(raw / f"{split}-labels-idx1-ubyte", labels[split], 2049)

    ds = load_dataset("mnist", device="cpu", data_dir=tmp_path, download=False)
    assert ds.x_train.shape == (20, 1, 28, 28) and ds.x_val.shape == (8, 1, 28, 28)
    assert ds.x_train.dtype == torch.float32 and ds.y_val.dtype == torch.int64
    expected = (torch.as_tensor(images["train"], dtype=torch.float32) / 255 - 0.1307) / 0.3081
    assert torch.allclose(ds.x_train[:, 0], expected, atol=1e-5)
    assert ds.y_train.tolist() == labels["train"].tolist()
    assert ds.augmentation is None and ds.num_classes == 10


def test_synthetic_augment_option_turns_on_crop_flip():
    plain = load_dataset("synthetic", device="cpu", shape=[3, 8, 8], n_train=16, n_val=4)
    aug = load_dataset(
        "synthetic", device="cpu", shape=[3, 8, 8], n_train=16, n_val=4, augment=True
    )
    assert plain.augmentation is None and aug.augmentation == "crop_flip"
    assert torch.equal(plain.x_train, aug.x_train)
    out = aug.augment(aug.x_train, torch.Generator().manual_seed(0))
    assert out.shape == aug.x_train.shape and not torch.equal(out, aug.x_train)
    with pytest.raises(ConfigError, match=r"dataset\.augment needs height and width > 4"):
        dataset_info("synthetic", shape=[1, 4, 4], augment=True)
