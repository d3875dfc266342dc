"""Packed trials: :func:`train_pack` trains K trials of one study as one batched computation
(the members stacked under ``torch.func.vmap``), each keeping its own init, learning rate and
schedule, optimizer, seed, data order, BatchNorm statistics and divergence. Results equal K
:func:`study.train.trial.train_trial` calls to floating-point tolerance. How, and what it
costs: docs/design.md#packing; the batched optimizer steps: :mod:`study.optim.batched`.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from study.errors import ConfigError
from study.numbers import finite
from study.optim.batched import PerMember, SgdFamily, TorchFamily, hooked_layers
from study.spec.model_check import pack_refusal
from study.train.parts import (
    NONFINITE_CHECK_EVERY,
    accumulator_dtype,
    build_model,
    build_optimizer,
    divergence_threshold,
    load_data,
    precision_used,
    resolve_device,
)

__all__ = ["PACKED_OPTIMIZERS", "SHARED_FIELDS", "Pack", "train_pack", "validate_pack"]

#: TrialConfig fields every member of a pack must share (what fixes the batch shapes and loop).
SHARED_FIELDS = (
    "dataset",
    "model",
    "epochs",
    "batch_size",
    "precision",
    "device",
    "data_dir",
    "num_threads",
)

#: Optimizers stepped as one batched update per group (the formulas of torch.optim / INSGD over
#: all the group's members at once); any other optimizer of the registry runs as one torch
#: optimizer per member (still exact, K small steps, outside a CUDA graph).
PACKED_OPTIMIZERS = ("sgd", "insgd", "adam", "adamw", "adagrad", "rmsprop", "nadam")

#: Eager steps before a CUDA graph is captured (lazy initializations, first-step branches).
GRAPH_WARMUP = 3

# --------------------------------------------------------------------------- validation


def validate_pack(configs: Sequence[Any]) -> list[Any]:
    """Check K trial configs as a pack; returns them as
    :class:`study.spec.trial_config.TrialConfig` (a mapping is checked by
    :meth:`~study.spec.trial_config.TrialConfig.from_mapping`, a TrialConfig is trusted as it
    is).

    Raises:
        ConfigError: an empty pack, a bad config (``configs[i]: ...``), a field the members do
            not share (naming it and both values), or a model that cannot be packed.
    """
    from study.spec.trial_config import TrialConfig

    if isinstance(configs, Mapping) or not isinstance(configs, Sequence) or not configs:
        raise ConfigError(f"configs must be a non-empty list of trial configs, got {configs!r}")
    cfgs = []
    for i, config in enumerate(configs):
        try:
            cfgs.append(TrialConfig.from_mapping(config))
        except ConfigError as exc:
            raise ConfigError(f"configs[{i}]: {exc}") from exc
    first = cfgs[0]
    for i, cfg in enumerate(cfgs[1:], start=1):
        for name in SHARED_FIELDS:
            a, b = getattr(first, name), getattr(cfg, name)
            if a != b:
                raise ConfigError(
                    f"configs[{i}].{name} must equal configs[0].{name} (members of a pack share "
                    f"{', '.join(SHARED_FIELDS)}), got {b!r} != {a!r}"
                )
    reason = pack_refusal(first.model_name, first.model_options, first.in_shape, first.num_classes)
    if reason is not None and len(cfgs) > 1:
        raise ConfigError(f"model cannot be packed: {reason}")
    return cfgs


# --------------------------------------------------------------------------- the pack


def step_mode(fast: bool | None, device: Any) -> str:
    """The training step's mode: ``graph`` (CUDA graphs: the fast path on CUDA), ``static``
    (the fast path's fixed buffers without a capture: ``fast=True`` on CPU, to test it) or
    ``eager``. ``fast=None`` means the fast path on CUDA unless the environment variable
    ``HPROBUST_FAST_PATH`` is ``0``, eager elsewhere."""
    import os

    if fast is None:
        off = os.environ.get("HPROBUST_FAST_PATH", "").strip().lower() in ("0", "off", "false")
        fast = device.type == "cuda" and not off
    if not fast:
        return "eager"
    return "graph" if device.type == "cuda" else "static"


def run_members(
    cfgs: list[Any],
    device: Any,
    report: Callable[[dict[int, dict[str, Any]]], None] | None,
    start: float,
    fast: bool | None,
    *,
    channels_last: bool | None = None,
) -> list[dict[str, Any]]:
    """Train validated configs with the pack engine (threads and RNG as ``train_trial``).
    ``channels_last`` (one member's conv weights and inputs): default on CUDA."""
    import torch

    mode = step_mode(fast, device)
    threads = cfgs[0].num_threads
    prev_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    if mode == "graph":
        torch.backends.cudnn.benchmark = True  # static shapes: let cuDNN pick once
    fork_devices = [device.index or 0] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=fork_devices):
            if channels_last is None:
                channels_last = device.type == "cuda"
            pack = Pack(cfgs, device, mode=mode, channels_last=channels_last)
            return pack.run(report, start)
    finally:
        if threads is not None:
            torch.set_num_threads(prev_threads)


def train_pack(
    configs: Sequence[Any],
    report: Callable[[dict[int, dict[str, Any]]], None] | None = None,
    *,
    fast: bool | None = None,
) -> list[dict[str, Any]]:
    """Train K trials as one batched computation; returns K results in the order given.

    Args:
        configs: ``train_trial`` configs (:class:`~study.spec.trial_config.TrialConfig` or
            mappings) that share :data:`SHARED_FIELDS`; they may differ in optimizer (and its
            hyperparameters), ``lr``, ``init``, ``init_scale``, ``seed`` and ``schedule``.
        report: called once per epoch with ``{index: metrics}`` for every member that ran
            that epoch (``index`` into ``configs``; ``metrics`` as ``train_trial`` reports
            them). A member that diverged is in the epoch it diverged in and in no later one.

        fast: the fast path (:func:`step_mode`): on CUDA by default, CUDA graphs of the whole
            step after a few eager ones (and channels-last for one member).

    Returns:
        one dict per config, with ``train_trial``'s keys (``wall_time_s`` is the whole pack's)
        plus ``pack_size`` and ``fast_path`` (the step mode used, and why not a graph if one
        could not be captured).

    Raises:
        ConfigError: see :func:`validate_pack` (and ``train_trial``'s model/optimizer errors).
    """
    start = time.perf_counter()
    cfgs = validate_pack(configs)
    return run_members(cfgs, resolve_device(cfgs[0].device), report, start, fast)


class Member:
    """One trial of the pack: its config, generator and bookkeeping."""

    __slots__ = ("best_val_acc", "cfg", "generator", "index", "last", "loss")

    def __init__(self, index: int, cfg: Any, generator: Any) -> None:
        self.index = index
        self.cfg = cfg
        self.generator = generator
        self.best_val_acc = 0.0
        self.last: dict[str, Any] | None = None
        self.loss = None


def _group_key(cfg: Any) -> tuple[str, str]:
    import json

    return cfg.optimizer_name, json.dumps(cfg.optimizer_hparams, sort_keys=True, default=str)


class Pack:
    """The stacked members, their groups and the training loop."""

    def __init__(
        self, cfgs: list[Any], device: Any, *, mode: str = "eager", channels_last: bool = False
    ) -> None:
        import torch
        from torch.func import stack_module_state

        self.device = device
        self.cfg = cfgs[0]
        self.size = len(cfgs)
        # Members sorted so that each optimizer group is a contiguous block of rows.
        keys = [_group_key(c) for c in cfgs]
        order = sorted(range(len(cfgs)), key=lambda i: (keys.index(keys[i]), i))
        modules = []
        self.members: list[Member] = []
        for i in order:
            cfg = cfgs[i]
            model = build_model(cfg, device)
            checked = build_optimizer(cfg, model)  # the same checks (and errors) as train_trial
            if hasattr(checked, "remove_hooks"):
                checked.remove_hooks()
            modules.append(model)
            generator = torch.Generator(device=device).manual_seed(cfg.seed)
            self.members.append(Member(i, cfg, generator))
        self.num_params = sum(p.numel() for p in modules[0].parameters())
        params, buffers = stack_module_state(modules)
        self.names = list(params)
        self.channels_last = channels_last and len(cfgs) == 1
        if self.channels_last:  # one member: its 4-d conv weights in channels-last layout
            params = {
                n: p[0].contiguous(memory_format=torch.channels_last).unsqueeze(0)
                if p.dim() == 5
                else p
                for n, p in params.items()
            }
        self.leaves = [params[n].detach().requires_grad_() for n in self.names]
        self.buffers = dict(buffers)
        self.skeleton = modules[0].to("meta")
        del modules
        self.precision = precision_used(self.cfg, device)
        self.data, self.x_train, self.x_val = load_data(self.cfg, device)
        self._layers = hooked_layers(self.skeleton, self.names)
        self.groups: list[Any] = []
        kinds: list[tuple[str, str]] = []
        row = 0
        for key in dict.fromkeys(keys[i] for i in order):
            count = sum(1 for i in order if keys[i] == key)
            cfg = next(cfgs[i] for i in order if keys[i] == key)
            rows = (row, row + count)
            if cfg.optimizer_name == "insgd" and "insgd" in PACKED_OPTIMIZERS:
                hp = {"norm": "l2", "variant": "paper", **cfg.optimizer_hparams}
                kind = (hp["variant"], hp["norm"])
                if kind not in kinds:
                    kinds.append(kind)
                group = SgdFamily(rows, cfg, self._layers, kinds.index(kind), device)
            elif cfg.optimizer_name == "sgd" and "sgd" in PACKED_OPTIMIZERS:
                group = SgdFamily(rows, cfg, {}, None, device)
            elif cfg.optimizer_name in set(PACKED_OPTIMIZERS) & set(TorchFamily.NAMES):
                group = TorchFamily(rows, cfg)
            else:
                group = PerMember(rows, cfg, self.leaves)
            self.groups.append(group)
            row += count
        for group in self.groups:
            if isinstance(group, SgdFamily):
                group.stride = len(kinds)
        self.kinds = kinds
        self._recording = False
        self._records: dict[int, list[list[Any]]] = {}
        if kinds:
            self._install_hooks()
        # The step's modes: "eager"; "static" (inputs copied into fixed buffers, every state
        # updated in place: what a CUDA graph needs, runnable anywhere); "graph" (CUDA: after
        # GRAPH_WARMUP eager steps the static step is captured once and replayed).
        self.mode = mode
        self.fast_path = {"graph": "cuda_graph"}.get(mode, mode)
        self.loss_sum: Any = None
        self._static: tuple[Any, ...] | None = None
        self._graph: Any = None
        self._graph_grads: Any = None
        self._warm = 0

    # ---- the batched forward ---------------------------------------------------------------

    def _install_hooks(self) -> None:
        from study.optim.insgd import input_statistic

        for position, (module, layer) in enumerate(self._layers.items()):

            def hook(mod, args, output, position=position, layer=layer):
                if not self._recording or not args:
                    return
                x = args[0]
                self._records.setdefault(position, []).append(
                    [
                        input_statistic(
                            x,
                            linear=layer.linear,
                            spatial_dims=layer.spatial_dims,
                            norm=norm,
                            variant=variant,
                        )
                        for variant, norm in self.kinds
                    ]
                )

            module.register_forward_hook(hook)

    def _functional(self, params: dict, buffers: dict, x: Any) -> tuple[Any, tuple]:
        """One member's forward (run under vmap): logits and, while recording, the input
        statistic of every hooked layer for every INSGD kind of the pack."""
        import torch
        from torch.func import functional_call

        self._records = {}
        out = functional_call(self.skeleton, (params, buffers), (x,))
        if not self._recording or not self.kinds:
            return out, ()
        stats = []
        for position, layer in enumerate(self._layers.values()):
            records = self._records.get(position)
            if not records:
                raise RuntimeError(
                    f"INSGD: no training forward of layer '{layer.label}' was recorded "
                    "before the first step"
                )
            for k in range(len(self.kinds)):
                values = [r[k] for r in records]
                stats.append(values[0] if len(values) == 1 else torch.stack(values).mean(0))
        return out, tuple(stats)

    def forward(self, x: Any, *, train: bool) -> tuple[Any, tuple]:
        """Logits ``(K, N, C)`` (and stats) of every member; ``x`` is ``(K, N, ...)`` in
        training, ``(N, ...)`` shared by all members in evaluation."""
        import torch
        from torch.func import vmap

        params = dict(zip(self.names, self.leaves, strict=True))
        in_x = 0 if train else None
        self._recording = train
        try:
            if len(self.members) == 1:  # no vmap for one member (the single-trial path)
                one = {n: p[0] for n, p in params.items()}
                bufs = {n: b[0] for n, b in self.buffers.items()}
                x = x[0] if train else x
                if self.channels_last and x.dim() == 4:
                    x = x.contiguous(memory_format=torch.channels_last)
                out, stats = self._functional(one, bufs, x)
                return out.unsqueeze(0), tuple(s.unsqueeze(0) for s in stats)
            return vmap(self._functional, in_dims=(0, 0, in_x))(params, self.buffers, x)
        finally:
            self._recording = False

    def autocast(self) -> Any:
        import torch

        if self.precision == "bf16":  # no weight-cast cache: a CUDA graph may capture it
            return torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False)
        return contextlib.nullcontext()

    # ---- one training step -----------------------------------------------------------------

    def _coefficients(self, lr_host: list[list[float]], step: int, dtype: Any) -> Any:
        """``(steps, K, C)`` on the device: each member's per-step numbers from its group
        (the learning rate, and bias corrections and the like that move with the step count),
        computed on the host in float64 as torch.optim computes them; padded with zeros."""
        import torch

        group_of = [g for g in self.groups for _ in range(*g.rows)]
        rows = [
            [group_of[k].coefficients(lr, step + i + 1) for i, lr in enumerate(lrs)]
            for k, lrs in enumerate(lr_host)
        ]
        width = max((len(c) for member in rows for c in member), default=1)
        padded = [[list(c) + [0.0] * (width - len(c)) for c in member] for member in rows]
        table = torch.tensor(padded, dtype=torch.float64).to(dtype)
        return table.permute(1, 0, 2).contiguous().to(self.device)

    def _core(self, x: Any, y: Any, coef: Any) -> Any:
        """Forward, per-member losses, gradients, the batched groups' steps and the running
        loss sums; returns the gradients (for the per-member groups). Reads and writes only
        tensors that persist between steps (or are made inside), so it can be captured."""
        import torch
        import torch.nn.functional as F

        with self.autocast():
            logits, stats = self.forward(x, train=True)
            k = logits.shape[0]
            losses = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none")
            losses = losses.view(k, -1).mean(1)
        grads = torch.autograd.grad(losses.sum(), self.leaves, allow_unused=True)
        with torch.no_grad():
            for group in self.groups:
                if group.batched:
                    group.step(self.leaves, grads, stats, coef)
            self.loss_sum += losses.detach().to(self.loss_sum.dtype)
        return grads

    def train_step(self, x: Any, y: Any, coef: Any, lr_host: list[list[float]], i: int) -> None:
        """One step of every member: ``x`` ``(K, N, ...)``, ``y`` ``(K, N)``, ``coef``
        ``(K, C)`` (the groups' per-step numbers, :meth:`_coefficients`); ``lr_host[k][i]``
        the learning rates as Python floats (for the per-member optimizers)."""
        import torch

        run = self._core if self.mode == "eager" else self._static_step
        grads = run(x, y, coef)
        with torch.no_grad():
            for group in self.groups:
                if not group.batched:
                    group.step(self.leaves, grads, lr_host, i)

    def _static_step(self, x: Any, y: Any, coef: Any) -> Any:
        import torch

        if self._static is None:
            self._static = (x.clone(), y.clone(), coef.clone())
        else:
            for buffer, value in zip(self._static, (x, y, coef), strict=True):
                buffer.copy_(value)
        if self.mode == "static":
            return self._core(*self._static)
        if self._graph is not None:
            self._graph.replay()
            return self._graph_grads
        if self._warm < GRAPH_WARMUP:  # eager steps on a side stream before the capture
            self._warm += 1
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                grads = self._core(*self._static)
            torch.cuda.current_stream(self.device).wait_stream(side)
            return grads
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph, capture_error_mode="thread_local"):
                grads = self._core(*self._static)
        except Exception as exc:  # run on without graphs, and say why
            self.mode = "static"
            self.fast_path = f"static (CUDA graph capture failed: {type(exc).__name__}: {exc})"
            return self._core(*self._static)
        self._graph, self._graph_grads = graph, grads
        graph.replay()  # the capture recorded the step without running it
        return grads

    def _drop_graph(self) -> None:
        """Shapes change (members left): the static buffers and the graph start over."""
        self._static = self._graph = self._graph_grads = None
        self._warm = 0

    # ---- the loop --------------------------------------------------------------------------

    def run(self, report: Callable | None, start: float) -> list[dict[str, Any]]:
        import torch

        from study.train.schedule import lr_at

        data, device = self.data, self.device
        epochs = self.cfg.epochs
        n_train = self.x_train.shape[0]
        bs = min(self.cfg.batch_size, n_train)
        steps_per_epoch = n_train // bs
        diverge_above = divergence_threshold(data.num_classes)
        dtype = self.leaves[0].dtype
        results: dict[int, dict[str, Any]] = {}
        self.loss_sum = torch.zeros(
            len(self.members), device=device, dtype=accumulator_dtype(self.cfg)
        )
        step = 0
        for epoch in range(epochs):
            if not self.members:
                break
            epoch_start = time.perf_counter()
            self.skeleton.train()
            perms = torch.stack(
                [
                    torch.randperm(n_train, generator=m.generator, device=device)
                    for m in self.members
                ]
            )
            lr_host = [
                [
                    lr_at(m.cfg.schedule, m.cfg.lr, (step + i) / steps_per_epoch, epochs)
                    for i in range(steps_per_epoch)
                ]
                for m in self.members
            ]
            coef_table = self._coefficients(lr_host, step, dtype)
            self.loss_sum.zero_()
            steps_done = 0
            epoch_reports: dict[int, dict[str, Any]] = {}
            for i in range(steps_per_epoch):
                idx = perms[:, i * bs : (i + 1) * bs]
                x = data.augment_pack(self.x_train[idx], [m.generator for m in self.members])
                self.train_step(x, data.y_train[idx], coef_table[i], lr_host, i)
                step += 1
                steps_done += 1
                if steps_done % NONFINITE_CHECK_EVERY == 0:
                    finite = torch.isfinite(self.loss_sum).tolist()
                    if not all(finite):
                        stopped = [j for j, ok in enumerate(finite) if not ok]
                        sums = self.loss_sum.tolist()
                        self._finish_epoch(
                            stopped, sums, steps_done, lr_host, i, epoch, epoch_start, bs,
                            diverge_above, epoch_reports,
                        )  # fmt: skip
                        keep = [j for j, ok in enumerate(finite) if ok]
                        lr_host = [lr_host[j] for j in keep]
                        coef_table = coef_table[:, keep]
                        perms = perms[keep]
                        self._keep(keep, results)
                        if not self.members:
                            break
            if self.members:
                everyone = list(range(len(self.members)))
                self._finish_epoch(
                    everyone, self.loss_sum.tolist(), steps_done, lr_host, steps_per_epoch - 1,
                    epoch, epoch_start, bs, diverge_above, epoch_reports,
                )  # fmt: skip
                keep = [j for j, m in enumerate(self.members) if not m.last["diverged"]]
                if epoch == epochs - 1:
                    keep = []
                if len(keep) < len(self.members):
                    self._keep(keep, results)
            if report is not None and epoch_reports:
                report({i: dict(epoch_reports[i]) for i in sorted(epoch_reports)})
        wall = time.perf_counter() - start
        out = []
        for index in range(self.size):
            result = results[index]
            result.update(
                wall_time_s=wall,
                precision_used=self.precision,
                device=str(device),
                num_params=self.num_params,
                steps_per_epoch=steps_per_epoch,
                pack_size=self.size,
                fast_path=self.fast_path,
            )
            out.append(result)
        return out

    def _finish_epoch(
        self,
        rows: list[int],
        loss_sums: list[float],
        steps_done: int,
        lr_host: list[list[float]],
        last_step: int,
        epoch: int,
        epoch_start: float,
        bs: int,
        diverge_above: float,
        epoch_reports: dict[int, dict[str, Any]],
    ) -> None:
        """Evaluate the members at ``rows`` and record their epoch's metrics."""
        evaluated = self._evaluate(rows, 2 * bs)
        for row, (val_loss, val_acc) in zip(rows, evaluated, strict=True):
            member = self.members[row]
            train_loss = loss_sums[row] / steps_done
            diverged = not math.isfinite(train_loss) or train_loss > diverge_above
            member.best_val_acc = max(member.best_val_acc, val_acc)
            metrics = {
                "epoch": epoch + 1,
                "train_loss": finite(train_loss),
                "val_loss": finite(val_loss),
                "val_acc": val_acc,
                "lr": lr_host[row][last_step],
                "epoch_time_s": time.perf_counter() - epoch_start,
                "diverged": diverged,
            }
            member.last = metrics
            epoch_reports[member.index] = metrics

    def _evaluate(self, rows: list[int], batch_size: int) -> list[tuple[float, float]]:
        """Mean cross-entropy and accuracy of the members at ``rows`` (one host sync)."""
        import torch
        import torch.nn.functional as F

        if not rows:
            return []
        everyone = rows == list(range(len(self.members)))
        saved = None
        if not everyone:  # evaluate a sub-pack: swap the stacks for the rows' slices
            index = torch.tensor(rows, device=self.device)
            saved = (self.leaves, self.buffers, self.members)
            self.leaves = [leaf.detach().index_select(0, index) for leaf in self.leaves]
            self.buffers = {n: b.index_select(0, index) for n, b in self.buffers.items()}
            self.members = [self.members[r] for r in rows]
        try:
            self.skeleton.eval()
            x, y = self.x_val, self.data.y_val
            dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
            totals = torch.zeros(len(rows), 2, device=self.device, dtype=dtype)
            with torch.no_grad():
                for i in range(0, x.shape[0], batch_size):
                    xb, yb = x[i : i + batch_size], y[i : i + batch_size]
                    with self.autocast():
                        logits, _ = self.forward(xb, train=False)
                    k, n = logits.shape[:2]
                    losses = F.cross_entropy(
                        logits.to(dtype).flatten(0, 1), yb.repeat(k), reduction="none"
                    )
                    totals[:, 0] += losses.view(k, n).sum(1)
                    totals[:, 1] += (logits.argmax(dim=-1) == yb).sum(1)
            self.skeleton.train()
        finally:
            if saved is not None:
                self.leaves, self.buffers, self.members = saved
        n = x.shape[0]
        return [(loss / n, correct / n) for loss, correct in totals.tolist()]

    def _keep(self, keep: list[int], results: dict[int, dict[str, Any]]) -> None:
        """Drop every member not in ``keep`` (rows) from the batched computation; record the
        results of those that leave."""
        import torch

        for row, member in enumerate(self.members):
            if row not in keep:
                results[member.index] = _result(member)
        if len(keep) == len(self.members):
            return
        index = torch.tensor(keep, dtype=torch.long, device=self.device)
        self._drop_graph()
        self.loss_sum = self.loss_sum.index_select(0, index)
        self.leaves = [
            leaf.detach().index_select(0, index).requires_grad_() for leaf in self.leaves
        ]
        self.buffers = {n: b.index_select(0, index) for n, b in self.buffers.items()}
        self.members = [self.members[r] for r in keep]
        groups = []
        row = 0
        for group in self.groups:
            a, b = group.rows
            local = [r - a for r in keep if a <= r < b]
            if local:
                group.keep(local, (row, row + len(local)), self.leaves)
                groups.append(group)
                row += len(local)
        self.groups = groups


def _result(member: Member) -> dict[str, Any]:
    last = member.last or {}
    return {
        "val_acc": last.get("val_acc"),
        "val_loss": last.get("val_loss"),
        "train_loss": last.get("train_loss"),
        "best_val_acc": member.best_val_acc,
        "diverged": bool(last.get("diverged")),
        "epochs_completed": last.get("epoch", 0),
    }
