"""Whether a study's trials fit the Ray cluster: every trial (or pack) runs on one node.

The service asks this at submission (the nodes read from the Ray dashboard's state API, no
Ray driver needed) and refuses a spec whose ``resources`` no node can give (422); the study
driver words its "waited too long for resources" error with it. Imports nothing heavy.

    >>> nodes = [{"CPU": 2.0, "memory": 4e9}, {"CPU": 8.0, "GPU": 1.0}]
    >>> unschedulable(4, 0, nodes)
    []
    >>> [p["field"] for p in unschedulable(16, 2, nodes)]
    ['resources.cpus_per_trial', 'resources.gpus_per_trial']
    >>> describe_nodes(nodes)
    '2 nodes; the most on one node: 8 CPUs, 1 GPU'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def _capacity(node: Mapping[str, Any]) -> tuple[float, float]:
    return float(node.get("CPU", 0) or 0), float(node.get("GPU", 0) or 0)


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
