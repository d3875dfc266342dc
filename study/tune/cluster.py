"""Whether a study's trials fit the Ray cluster: every trial (or pack) runs on one node; and
how many of them the cluster can really run at once.

The service asks this at submission (the nodes read from the Ray dashboard's state API, no
Ray driver needed) and refuses a spec whose ``resources`` no node can give (422); the study
driver words its "waited too long for resources" error with it. :func:`concurrency_cap`
bounds ``max_concurrent_trials`` by the CPUs, GPUs and memory of the nodes (the runner
applies it; the service and the runner say so in a warning). Imports nothing heavy.

    >>> nodes = [{"CPU": 2.0, "memory": 4e9}, {"CPU": 8.0, "GPU": 1.0}]
    >>> unschedulable(4, 0, nodes)
    []
    >>> [p["field"] for p in unschedulable(16, 2, nodes)]
    ['resources.cpus_per_trial', 'resources.gpus_per_trial']
    >>> describe_nodes(nodes)
    '2 nodes; the most on one node: 8 CPUs, 1 GPU'
    >>> trials_that_fit(0.01, 0, 1e9, [{"CPU": 2.0, "memory": 16e9}])  # CPU trials: 1 CPU each
    2
    >>> trials_that_fit(0.5, 0.25, 1e9, nodes)  # the GPU node: 4 by its GPU
    4
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from study.spec.study_spec import StudySpec


def _capacity(node: Mapping[str, Any]) -> tuple[float, float]:
    return float(node.get("CPU", 0) or 0), float(node.get("GPU", 0) or 0)


def counted_cpus(cpus_per_trial: float, gpus_per_trial: float) -> float:
    """The CPUs a trial really takes: a trial on CPUs only runs at least one thread (its
    ``num_threads`` is ``max(1, int(cpus_per_trial))``), so it counts as at least 1 CPU; a
    GPU trial counts as it asks (it mostly waits on its GPU)."""
    return max(1.0, cpus_per_trial) if gpus_per_trial == 0 else cpus_per_trial


def trials_that_fit(
    cpus_per_trial: float,
    gpus_per_trial: float,
    trial_bytes: float,
    nodes: Iterable[Mapping[str, Any]],
) -> int | None:
    """How many trials the nodes can run at once, each on one node: per node the least of
    its CPUs / :func:`counted_cpus`, its GPUs / ``gpus_per_trial`` (GPU trials) and its
    ``memory`` / ``trial_bytes`` (where the node says its memory); summed. None if
    ``nodes`` is empty (nothing known)."""
    nodes = list(nodes)
    if not nodes:
        return None
    cpus = counted_cpus(cpus_per_trial, gpus_per_trial)
    total = 0
    for node in nodes:
        node_cpus, node_gpus = _capacity(node)
        fits = [math.floor(node_cpus / cpus + 1e-9)]
        if gpus_per_trial > 0:
            fits.append(math.floor(node_gpus / gpus_per_trial + 1e-9))
        memory = float(node.get("memory", 0) or 0)
        if memory > 0 and trial_bytes > 0:
            fits.append(math.floor(memory / trial_bytes))
        total += max(0, min(fits))
    return total


def concurrency_cap(
    max_concurrent: int,
    cpus_per_trial: float,
    gpus_per_trial: float,
    trial_bytes: float,
    nodes: Iterable[Mapping[str, Any]],
) -> tuple[int, str | None]:
    """``(trials at once, warning)``: ``max_concurrent`` bounded by :func:`trials_that_fit`
    (at least 1), and a sentence saying so when it was lowered (None when it was not, or when
    the nodes are not known)."""
    nodes = list(nodes)
    fit = trials_that_fit(cpus_per_trial, gpus_per_trial, trial_bytes, nodes)
    if fit is None or fit >= max_concurrent:
        return max_concurrent, None
    cap = max(1, fit)
    cpus = counted_cpus(cpus_per_trial, gpus_per_trial)
    asks = f"{_count(cpus_per_trial, 'CPU')}"
    if cpus != cpus_per_trial:
        asks += " (counted as 1: a trial on CPUs runs at least one thread)"
    if gpus_per_trial:
        asks += f", {_count(gpus_per_trial, 'GPU')}"
    asks += f" and about {trial_bytes / 1e9:.2g} GB of memory"
    memory = sum(float(n.get("memory", 0) or 0) for n in nodes)
    has = describe_nodes(nodes) + (f", {memory / 1e9:.3g} GB of memory in all" if memory else "")
    return cap, (
        f"resources.max_concurrent_trials {max_concurrent} is more than the Ray cluster can run "
        f"at once: a trial asks for {asks}; the cluster has {has}; so at most {cap} "
        f"trial{'s' if cap != 1 else ''} run at a time"
    )


def _count(n: float, what: str) -> str:
    return f"{n:g} {what}" + ("" if n == 1 else "s")


def describe_nodes(nodes: Iterable[Mapping[str, Any]]) -> str:
    """What the cluster offers one trial: ``"1 node with C CPUs and G GPUs"``, or for several
    nodes ``"N nodes; the most on one node: C CPUs, G GPUs"``."""
    caps = [_capacity(n) for n in nodes]
    if not caps:
        return "no node"
    cpus, gpus = max(c for c, _ in caps), max(g for _, g in caps)
    if len(caps) == 1:
        return f"1 node with {_count(cpus, 'CPU')} and {_count(gpus, 'GPU')}"
    return f"{len(caps)} nodes; the most on one node: {_count(cpus, 'CPU')}, {_count(gpus, 'GPU')}"


def unschedulable(
    cpus_per_trial: float, gpus_per_trial: float, nodes: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Problems (``field``, ``rule``, ``value``) if no node has ``cpus_per_trial`` CPUs and
    ``gpus_per_trial`` GPUs; ``[]`` if one has, or if ``nodes`` is empty (nothing known)."""
    nodes = list(nodes)
    caps = [_capacity(n) for n in nodes]
    if not caps or any(c >= cpus_per_trial and g >= gpus_per_trial for c, g in caps):
        return []
    most_cpus = max(c for c, _ in caps)
    most_gpus = max(g for _, g in caps)
    where = describe_nodes(nodes)
    problems = []
    if cpus_per_trial > most_cpus:
        problems.append(
            {
                "field": "resources.cpus_per_trial",
                "rule": f"must be <= {most_cpus:g}, the CPUs of the largest node of the Ray "
                f"cluster (a trial runs on one node; the cluster has {where})",
                "value": cpus_per_trial,
            }
        )
    if gpus_per_trial > most_gpus:
        rule = (
            f"must be <= {most_gpus:g}, the GPUs of the node with the most"
            if most_gpus
            else "must be 0: the Ray cluster has no GPU"
        )
        problems.append(
            {
                "field": "resources.gpus_per_trial",
                "rule": f"{rule} (a trial runs on one node; the cluster has {where})",
                "value": gpus_per_trial,
            }
        )
    if not problems:  # each fits some node, but no node has both
        problems.append(
            {
                "field": "resources",
                "rule": f"must fit on one node: no node of the Ray cluster has "
                f"{_count(cpus_per_trial, 'CPU')} and {_count(gpus_per_trial, 'GPU')} "
                f"(the cluster has {where})",
                "value": {"cpus_per_trial": cpus_per_trial, "gpus_per_trial": gpus_per_trial},
            }
        )
    return problems


def local_ray_cpus(spec: StudySpec, cores: int | None = None) -> int:
    """The CPUs of the local Ray that ``hprobust run`` starts for ``spec`` when it is not told
    (``--num-cpus``): what the study's trials take at once, ``max_concurrent_trials`` times
    :func:`counted_cpus`, at most the machine's ``cores`` (default: the CPUs this process may
    run on), at least 1. Ray starts a worker process per CPU as the driver connects, each
    importing torch as it starts (:func:`study.runtime.configure_local_ray`, about 300 MB of
    its own memory); CPUs the study cannot use would only hold idle workers.

        >>> from study.spec.study_spec import parse_spec
        >>> base = {"name": "n", "dataset": "digits", "model": {"name": "mlp"},
        ...         "arms": [{"name": "sgd", "optimizer": "sgd"}], "trials_per_arm": 2,
        ...         "search": {"lr": {"low": 0.01, "high": 1.0}, "init": ["xavier_normal"]}}
        >>> local_ray_cpus(parse_spec(base), cores=16)  # 2 trials at once, 1 CPU each
        2
        >>> big = {**base, "resources": {"cpus_per_trial": 3, "max_concurrent_trials": 4}}
        >>> local_ray_cpus(parse_spec(big), cores=16), local_ray_cpus(parse_spec(big), cores=8)
        (12, 8)
    """
    if cores is None:
        import os

        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        cores = cores or os.cpu_count() or 1
    resources = spec.resources
    per_trial = counted_cpus(resources.cpus_per_trial, resources.gpus_per_trial)
    needed = math.ceil(resources.max_concurrent_trials * per_trial - 1e-9)
    return max(1, min(int(cores), needed))


def study_concurrency(
    spec: StudySpec, nodes: Iterable[Mapping[str, Any]]
) -> tuple[int, str | None]:
    """How many of the study's (Tune) trials run at once on ``nodes`` and the warning when
    that is less than ``max_concurrent_trials``: :func:`concurrency_cap` with each trial's
    memory estimated from the spec (:func:`study.spec.bounds.trial_memory_bytes`). The runner
    applies it; the service gives the warning with the 202."""
    from study.spec.bounds import trial_memory_bytes

    resources = spec.resources
    return concurrency_cap(
        resources.max_concurrent_trials,
        resources.cpus_per_trial,
        resources.gpus_per_trial,
        trial_memory_bytes(spec),
        nodes,
    )
