"""Datasets as whole tensors resident on the trial's device.

:func:`load_dataset` loads a dataset of the registry (:mod:`study.data.registry`) once into
``x_train, y_train, x_val, y_val`` tensors (inputs ``float32`` and normalized, labels
``int64``) on the trial's device; training indexes them directly: no DataLoader, no workers, no
per-sample Python transforms. Augmentation (4-pixel reflect pad, random crop, horizontal flip)
runs on the device over a whole batch at once (:meth:`Dataset.augment`). Loaded datasets are
kept in a small LRU (:data:`CACHE_SIZE` entries, keyed by name, options, device and data
directory); tensors are never modified in place, so the cache never changes results.

Example::

    >>> from study.data.loader import load_dataset
    >>> ds = load_dataset("digits", device="cpu")
    >>> ds.x_train.shape, ds.x_val.shape
    (torch.Size([1437, 1, 8, 8]), torch.Size([360, 1, 8, 8]))
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from study.data.registry import DATASETS, dataset_options, dataset_spec

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from pydantic import BaseModel

__all__ = [
    "CACHE_SIZE",
    "Dataset",
    "clear_cache",
    "crop_flip",
    "default_data_dir",
    "ensure_dataset",
    "load_dataset",
]

#: How many loaded datasets (per name, options, device, data_dir) a process keeps.
CACHE_SIZE = 4

CROP_PADDING = 4


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


# --------------------------------------------------------------------------- public API


def default_data_dir() -> Path:
    """``$HPROBUST_DATA_DIR`` if set, else ``./hprobust-data/datasets``."""
    env = os.environ.get("HPROBUST_DATA_DIR")
    return Path(env) if env else Path("hprobust-data") / "datasets"


def ensure_dataset(
    name: str | BaseModel,
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
    kind = DATASETS[dataset_spec(name, **options).name]
    if kind.fetch is None:
        return None
    root = (Path(data_dir) if data_dir is not None else default_data_dir()).expanduser().resolve()
    kind.fetch(root, download)
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
    name: str | BaseModel,
    *,
    device: Any = "cpu",
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    **options: Any,
) -> Dataset:
    """Load ``name`` into tensors on ``device`` (cached per name, options, device, data_dir).

    Args:
        name: a key of :data:`DATASETS` (with ``options``), or a typed dataset (a
            :data:`study.data.registry.DatasetSpec`, e.g. a trial config's ``dataset``).
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

    spec = dataset_spec(name, **options)
    kind, opts = DATASETS[spec.name], dataset_options(spec)
    num_classes, in_shape = kind.shape(opts)
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    root = root.expanduser().resolve()
    key = (spec.name, _freeze(opts), str(dev), str(root) if kind.fetch is not None else None)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    xtr, ytr, xva, yva = kind.load(opts, root, download)
    dataset = Dataset(
        name=spec.name,
        x_train=xtr.to(dev),
        y_train=ytr.to(dev),
        x_val=xva.to(dev),
        y_val=yva.to(dev),
        num_classes=num_classes,
        in_shape=tuple(in_shape),
        augmentation=kind.augmentation(opts),
    )
    with _cache_lock:
        _cache[key] = dataset
        _cache.move_to_end(key)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return dataset
