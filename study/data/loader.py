"""Datasets as whole tensors resident on the trial's device.

Every dataset is loaded once into ``x_train, y_train, x_val, y_val`` tensors (inputs ``float32``
and normalized, labels ``int64``) on the trial's device; training indexes them directly: no
DataLoader, no workers, no per-sample Python transforms. CIFAR's training augmentation
(4-pixel reflect pad + random 32x32 crop + horizontal flip) runs on the device over a whole
batch at once (:meth:`Dataset.augment`).

Registry (:data:`DATASETS`):

- ``digits``: scikit-learn's bundled 8x8 handwritten digits (real data, no network), pixel
  values / 16, shape ``(1, 8, 8)``, fixed stratified 80/20 split (``random_state=0``),
  normalized by the train split's mean/std.
- ``synthetic``: Gaussian classes, deterministic from its own data ``seed`` (independent of the
  trial seed). Options ``num_classes`` (10), ``shape`` ([1, 8, 8]), ``n_train`` (1000),
  ``n_val`` (200), ``noise`` (1.0), ``separation`` (1.0), ``seed`` (0) and ``augment`` (false;
  true applies CIFAR's crop + flip, e.g. to exercise augmentation without CIFAR).
- ``cifar10``, ``cifar100`` (option ``augment``, default true), ``mnist``, ``fashion_mnist``:
  through torchvision into ``data_dir``, normalized with the standard constants. A missing
  dataset is downloaded; if that fails, :class:`~study.errors.DatasetNotFoundError` names the
  directory, the files expected and how to provide them.

Loaded datasets are kept in a small LRU (:data:`CACHE_SIZE` entries) keyed by
``(name, options, device, data_dir)``: the many trials a worker process runs load a dataset
once. The cache never changes results (tensors are never modified in place); :func:`clear_cache`
empties it.

Example::

    >>> from study.data.loader import dataset_info, load_dataset
    >>> dataset_info("digits")
    DatasetInfo(name='digits', num_classes=10, in_shape=(1, 8, 8))
    >>> ds = load_dataset("digits", device="cpu")
    >>> ds.x_train.shape, ds.x_val.shape
    (torch.Size([1437, 1, 8, 8]), torch.Size([360, 1, 8, 8]))
"""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import field_validator

from study.errors import DatasetNotFoundError, SpecError
from study.spec.options import DatasetSpec, StrictModel, dataset_before

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "CACHE_SIZE",
    "DATASETS",
    "Dataset",
    "DatasetInfo",
    "clear_cache",
    "dataset_info",
    "default_data_dir",
    "load_dataset",
]

#: How many loaded datasets (per name, options, device, data_dir) a process keeps.
CACHE_SIZE = 4

CROP_PADDING = 4


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a dataset, without loading it."""

    name: str
    num_classes: int
    in_shape: tuple[int, int, int]


@dataclass(frozen=True, eq=False)
class Dataset:
    """A dataset resident on one device.

    ``x_*`` are normalized ``float32`` tensors of shape ``(N, *in_shape)``, ``y_*`` are ``int64``
    class indices. ``augmentation`` is ``"crop_flip"`` (CIFAR) or ``None`` (identity).
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    num_classes: int
    in_shape: tuple[int, int, int]
    augmentation: str | None = None

    @property
    def device(self) -> torch.device:
        return self.x_train.device

    def augment(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Return an augmented copy of the batch ``x`` (``(N, C, H, W)``); ``x`` is untouched.

        ``crop_flip``: pad by 4 pixels (reflect), crop a random ``H x W`` window per sample and
        flip each sample horizontally with probability 1/2. Random draws come from ``generator``
        (on any device), so a seeded generator gives the same batch every time. Without
        augmentation this returns ``x`` itself.
        """
        if self.augmentation is None:
            return x
        return crop_flip(x, generator, padding=CROP_PADDING)

    def augment_pack(self, x: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
        """:meth:`augment` for the batches of a pack of trials: ``x`` is ``(K, N, C, H, W)``,
        batch ``k`` augmented with ``generators[k]`` exactly as ``augment(x[k],
        generators[k])`` would (the same draws in the same order), in one gather."""
        if self.augmentation is None:
            return x
        import torch

        k, n = x.shape[:2]
        draws = [crop_flip_draws(n, g, padding=CROP_PADDING, device=x.device) for g in generators]
        shifts = torch.cat([s for s, _ in draws], dim=1)
        flips = torch.cat([f for _, f in draws])
        out = crop_flip_apply(x.flatten(0, 1), shifts, flips, padding=CROP_PADDING)
        return out.view(k, n, *out.shape[1:])


def crop_flip(x: torch.Tensor, generator: torch.Generator, *, padding: int = 4) -> torch.Tensor:
    """Batched random crop (reflect padding ``padding``) + horizontal flip, on ``x``'s device.

    Sample ``n`` of the result is ``pad(x)[n, :, dy:dy+H, dx:dx+W]`` with ``dy, dx`` uniform in
    ``[0, 2*padding]``, mirrored along the width when its coin says so. One gather for the
    whole batch.
    """
    shifts, flips = crop_flip_draws(x.shape[0], generator, padding=padding, device=x.device)
    return crop_flip_apply(x, shifts, flips, padding=padding)


def crop_flip_draws(
    n: int, generator: torch.Generator, *, padding: int = 4, device: Any = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The random draws of :func:`crop_flip` for ``n`` samples: ``shifts`` ``(2, n)`` (rows,
    columns) and ``flips`` ``(n,)`` (bool), drawn from ``generator`` in that order and moved
    to ``device``. Packed trials draw each member's from its own generator and apply them all
    with one :func:`crop_flip_apply`."""
    import torch

    gen_device = generator.device
    shifts = torch.randint(0, 2 * padding + 1, (2, n), generator=generator, device=gen_device)
    flips = torch.rand(n, generator=generator, device=gen_device) < 0.5
    if device is not None:
        shifts, flips = shifts.to(device), flips.to(device)
    return shifts, flips


def crop_flip_apply(
    x: torch.Tensor, shifts: torch.Tensor, flips: torch.Tensor, *, padding: int = 4
) -> torch.Tensor:
    """Crop and flip the batch ``x`` ``(N, C, H, W)`` as ``shifts``/``flips`` say (one gather)."""
    import torch
    import torch.nn.functional as F

    n, c, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding), mode="reflect")
    rows = shifts[0][:, None] + torch.arange(h, device=x.device)  # (n, h)
    cols = shifts[1][:, None] + torch.arange(w, device=x.device)  # (n, w)
    # Flip = read the crop's columns right to left.
    cols = torch.where(flips[:, None], cols.flip(1), cols)
    idx_n = torch.arange(n, device=x.device)[:, None, None, None]
    idx_c = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[idx_n, idx_c, rows[:, None, :, None], cols[:, None, None, :]]


# --------------------------------------------------------------------------- options


def dataset_spec(name: str | DatasetSpec, **options: Any) -> DatasetSpec:
    """``name`` with ``options`` as the spec's typed dataset (a
    :data:`study.spec.options.DatasetSpec`: every option checked by the spec's own rules,
    defaults filled in). A typed dataset given as ``name`` (with no options) is returned as it
    is: it was checked when it was made.

    Raises:
        SpecError: (a ``ConfigError``) unknown dataset or option, or a bad value, each as
            ``dataset.<option> <rule>, got <value>``.
    """
    from pydantic import BaseModel, ValidationError

    from study.spec.study_spec import spec_problems

    if isinstance(name, BaseModel) and not options:
        return name
    value = {"name": name, **options} if options else name
    try:
        return _OneDataset.model_validate({"dataset": value}).dataset
    except ValidationError as exc:
        raise SpecError(spec_problems(exc, root=_OneDataset)) from None


class _OneDataset(StrictModel):
    dataset: DatasetSpec

    @field_validator("dataset", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return dataset_before(value)


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class _Entry:
    """One registered dataset: cheap info and loader, given its checked options (a
    :data:`study.spec.options.DatasetSpec` as a dict, defaults filled in).

    ``load(options, data_dir, download)`` returns CPU tensors
    ``(x_train, y_train, x_val, y_val)`` with ``x`` as float32 normalized.
    """

    info: Callable[[Mapping[str, Any]], tuple[int, tuple[int, int, int]]]
    load: Callable[[Mapping[str, Any], Path, bool], tuple[Any, Any, Any, Any]]
    augmentation: Callable[[Mapping[str, Any]], str | None] = field(default=lambda o: None)
    uses_data_dir: bool = False


def _standardize(x_train: torch.Tensor, x_val: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean/std of the train split applied to both splits."""
    dims = (0, 2, 3)
    mean = x_train.mean(dim=dims, keepdim=True)
    std = x_train.std(dim=dims, keepdim=True).clamp_min(1e-8)
    return (x_train - mean) / std, (x_val - mean) / std


# digits ---------------------------------------------------------------------


def _digits_load(options: Mapping[str, Any], data_dir: Path, download: bool):
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = digits.data.reshape(-1, 1, 8, 8) / 16.0
    xtr, xva, ytr, yva = train_test_split(
        x, digits.target, test_size=0.2, stratify=digits.target, random_state=0
    )
    xtr = torch.as_tensor(xtr, dtype=torch.float32)
    xva = torch.as_tensor(xva, dtype=torch.float32)
    xtr, xva = _standardize(xtr, xva)
    ytr = torch.as_tensor(ytr, dtype=torch.int64)
    yva = torch.as_tensor(yva, dtype=torch.int64)
    return xtr, ytr, xva, yva


# synthetic ------------------------------------------------------------------


def _synthetic_load(options: Mapping[str, Any], data_dir: Path, download: bool):
    """Class ``k`` is ``N(mu_k, noise^2 I)`` with ``mu_k ~ N(0, separation^2 I)``.

    Labels are balanced (``i mod C``, then shuffled); everything is drawn from one CPU
    generator seeded with the dataset's own ``seed``. Normalized per channel by the train split.
    """
    import torch

    c = options["num_classes"]
    shape = options["shape"]
    dim = math.prod(shape)
    g = torch.Generator().manual_seed(options["seed"])
    means = torch.randn(c, dim, generator=g) * options["separation"]

    def draw(n: int):
        y = torch.arange(n) % c
        y = y[torch.randperm(n, generator=g)]
        x = means[y] + options["noise"] * torch.randn(n, dim, generator=g)
        return x.reshape(n, *shape), y

    xtr, ytr = draw(options["n_train"])
    xva, yva = draw(options["n_val"])
    xtr, xva = _standardize(xtr, xva)
    return xtr, ytr, xva, yva


# torchvision ----------------------------------------------------------------


@dataclass(frozen=True)
class _Vision:
    cls_name: str
    num_classes: int
    in_shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]


_VISION: dict[str, _Vision] = {
    "cifar10": _Vision(
        "CIFAR10", 10, (3, 32, 32), (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
    ),
    "cifar100": _Vision(
        "CIFAR100", 100, (3, 32, 32), (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)
    ),
    "mnist": _Vision("MNIST", 10, (1, 28, 28), (0.1307,), (0.3081,)),
    "fashion_mnist": _Vision("FashionMNIST", 10, (1, 28, 28), (0.2860,), (0.3530,)),
}


def _expected_files(name: str, root: Path) -> str:
    """Human-readable: which files are expected under ``root`` and where to get them."""
    import torchvision.datasets as tvd

    cls = getattr(tvd, _VISION[name].cls_name)
    if hasattr(cls, "base_folder"):  # CIFAR
        return (
            f"expected {root / cls.base_folder}/ (the extracted archive) or the archive "
            f"{root / cls.filename}. To provide it, download {cls.url} and copy it into {root} "
            f"(it is extracted on first use), or extract it there yourself."
        )
    raw = root / cls.__name__ / "raw"
    files = ", ".join(fname for fname, _ in cls.resources)
    urls = " or ".join(cls.mirrors)
    return (
        f"expected the files {files} (or the same without .gz) in {raw}/. To provide them, "
        f"download each from {urls} and copy them into {raw}/."
    )


def _vision_load_raw(name: str, root: Path, train: bool, download: bool):
    import torchvision.datasets as tvd

    cls = getattr(tvd, _VISION[name].cls_name)
    try:
        return cls(root=str(root), train=train, download=False)
    except RuntimeError:
        if not download:
            raise DatasetNotFoundError(
                f"dataset {name!r} is not in {root} (download disabled): "
                f"{_expected_files(name, root)}"
            ) from None
    try:
        root.mkdir(parents=True, exist_ok=True)
        return cls(root=str(root), train=train, download=True)
    except Exception as exc:  # network, disk or archive errors all mean "not available"
        raise DatasetNotFoundError(
            f"dataset {name!r} is not in {root} and could not be downloaded "
            f"({type(exc).__name__}: {exc}): {_expected_files(name, root)}"
        ) from exc


def _vision_loader(name: str):
    spec = _VISION[name]

    def load(options: Mapping[str, Any], data_dir: Path, download: bool):
        import numpy as np
        import torch

        def split(train: bool):
            raw = _vision_load_raw(name, data_dir, train, download)
            x = torch.as_tensor(np.asarray(raw.data))  # uint8: (N,H,W,C) CIFAR, (N,H,W) MNIST
            x = x.permute(0, 3, 1, 2) if x.ndim == 4 else x.unsqueeze(1)
            x = x.to(torch.float32).div_(255.0)
            mean = torch.tensor(spec.mean).view(1, -1, 1, 1)
            std = torch.tensor(spec.std).view(1, -1, 1, 1)
            x = ((x - mean) / std).contiguous()
            y = torch.as_tensor(np.asarray(raw.targets), dtype=torch.int64)
            return x, y

        xtr, ytr = split(True)
        xva, yva = split(False)
        return xtr, ytr, xva, yva

    return load


def _vision_entry(name: str) -> _Entry:
    spec = _VISION[name]
    return _Entry(
        info=lambda o: (spec.num_classes, spec.in_shape),
        load=_vision_loader(name),
        augmentation=(lambda o: "crop_flip" if o.get("augment") else None),
        uses_data_dir=True,
    )


DATASETS: dict[str, _Entry] = {
    "digits": _Entry(
        info=lambda o: (10, (1, 8, 8)),
        load=_digits_load,
    ),
    "synthetic": _Entry(
        info=lambda o: (o["num_classes"], o["shape"]),
        load=_synthetic_load,
        augmentation=lambda o: "crop_flip" if o["augment"] else None,
    ),
    "cifar10": _vision_entry("cifar10"),
    "cifar100": _vision_entry("cifar100"),
    "mnist": _vision_entry("mnist"),
    "fashion_mnist": _vision_entry("fashion_mnist"),
}


def _checked(name: str | DatasetSpec, options: Mapping[str, Any]) -> tuple[Any, _Entry, dict]:
    """The typed dataset, its registry entry and its options (python types, defaults in)."""
    spec = dataset_spec(name, **options)
    return spec, DATASETS[spec.name], spec.model_dump(exclude={"name"})


# --------------------------------------------------------------------------- public API


def default_data_dir() -> Path:
    """``$HPROBUST_DATA_DIR`` if set, else ``./hprobust-data/datasets``."""
    env = os.environ.get("HPROBUST_DATA_DIR")
    return Path(env) if env else Path("hprobust-data") / "datasets"


def dataset_info(name: str | DatasetSpec, **options: Any) -> DatasetInfo:
    """Number of classes and input shape of ``name`` with ``options`` (or of a typed dataset);
    loads nothing.

    Raises:
        SpecError: (a ``ConfigError``) unknown dataset (listing the valid ones) or bad option.
    """
    spec, entry, opts = _checked(name, options)
    num_classes, in_shape = entry.info(opts)
    return DatasetInfo(name=spec.name, num_classes=num_classes, in_shape=tuple(in_shape))


def ensure_dataset(
    name: str | DatasetSpec,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    **options: Any,
) -> Path | None:
    """Make sure :func:`load_dataset` will find ``name``'s files: a torchvision dataset that
    is not in ``data_dir`` is downloaded now (train and validation splits checked the way
    torchvision checks them; nothing is kept in memory). Returns the directory, or None for a
    dataset that needs none (``digits``, ``synthetic``).

    Raises:
        SpecError: (a ``ConfigError``) unknown dataset or bad option.
        DatasetNotFoundError: missing and not downloadable; the message names the directory,
            the files expected and where to get them.
    """
    spec, entry, _ = _checked(name, options)
    if not entry.uses_data_dir:
        return None
    root = (Path(data_dir) if data_dir is not None else default_data_dir()).expanduser().resolve()
    for train in (True, False):
        _vision_load_raw(spec.name, root, train, download)
    return root


_cache: OrderedDict[tuple, Dataset] = OrderedDict()
_cache_lock = threading.Lock()


def clear_cache() -> None:
    """Forget every loaded dataset (frees their memory once no trial holds them)."""
    with _cache_lock:
        _cache.clear()


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


def load_dataset(
    name: str | DatasetSpec,
    *,
    device: Any = "cpu",
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    **options: Any,
) -> Dataset:
    """Load ``name`` into tensors on ``device`` (cached per name, options, device, data_dir).

    Args:
        name: a key of :data:`DATASETS` (with ``options``), or a typed dataset (a
            :data:`study.spec.options.DatasetSpec`, e.g. a trial config's ``dataset``).
        device: where the tensors live (``"cpu"``, ``"cuda"``, a ``torch.device``).
        data_dir: root for torchvision datasets (default :func:`default_data_dir`); unused by
            ``digits`` and ``synthetic``.
        download: try to download a missing torchvision dataset (default true).
        **options: dataset options (see the module docstring).

    Raises:
        SpecError: (a ``ConfigError``) unknown dataset or option, or a bad option value.
        DatasetNotFoundError: a torchvision dataset is missing and cannot be downloaded; the
            message names the directory, the files expected and how to provide them.
    """
    import torch

    spec, entry, opts = _checked(name, options)
    num_classes, in_shape = entry.info(opts)
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    root = root.expanduser().resolve()
    key = (spec.name, _freeze(opts), str(dev), str(root) if entry.uses_data_dir else None)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    xtr, ytr, xva, yva = entry.load(opts, root, download)
    dataset = Dataset(
        name=spec.name,
        x_train=xtr.to(dev),
        y_train=ytr.to(dev),
        x_val=xva.to(dev),
        y_val=yva.to(dev),
        num_classes=num_classes,
        in_shape=tuple(in_shape),
        augmentation=entry.augmentation(opts),
    )
    with _cache_lock:
        _cache[key] = dataset
        _cache.move_to_end(key)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return dataset
