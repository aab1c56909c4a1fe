"""One scheduling cycle over a snapshot: filter every node, score the feasible ones, pick.

Pure: the pod, the nodes (with their pods) and the rest of the cluster go in, a
:class:`Placement` or an :class:`Unschedulable` with upstream's ``FailedScheduling`` message
(and, when preemption found room, the node to nominate and the pods to evict) comes out.

Filters run in upstream's order: the per-node ones of :mod:`plugins`, then PodTopologySpread
and InterPodAffinity, whose PreFilter state is computed over the whole node list. Pods nominated
to a node (by an earlier preemption) with at least this pod's priority are counted there, as
upstream's ``RunFilterPluginsWithNominatedPods``: a node must fit with them and without them.
A pod that is itself nominated goes to its nominated node when that node fits.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from k3py.scheduler import affinity, plugins, preemption, spread
from k3py.scheduler.cluster import Cluster
from k3py.scheduler.resources import NodeInfo

Obj = dict[str, Any]

WEIGHTS = {**plugins.WEIGHTS, "InterPodAffinity": 2, "PodTopologySpread": 2}
"""Upstream's default score weights."""


@dataclass(frozen=True)
class Placement:
    node: str
    scores: dict[str, int]
    """The feasible nodes' total scores."""


@dataclass(frozen=True)
class Unschedulable:
    message: str
    statuses: dict[str, plugins.Status]
    """Why each node was refused."""
    preemption: preemption.Outcome | None = field(default=None, compare=False)
    """What preemption found (None when there were no nodes)."""


def _key(pod: Obj) -> tuple[str, str]:
    return affinity.namespace_of(pod), str((pod.get("metadata") or {}).get("name") or "")


@dataclass(frozen=True)
class _PreFiltered:
    spread: spread.FilterState | None
    affinity: affinity.FilterState | None

    filters: plugins.PodFilters

    @classmethod
    def of(cls, pod: Obj, nodes: Sequence[NodeInfo], cluster: Cluster) -> _PreFiltered:
        return cls(
            spread.prefilter(pod, nodes),
            affinity.prefilter(pod, nodes, cluster.namespaces),
            plugins.PodFilters(pod),
        )

    def check(self, pod: Obj, info: NodeInfo) -> plugins.Status | None:
        return (
            self.filters.check(info)
            or spread.filter(self.spread, pod, info)
            or affinity.filter(self.affinity, pod, info)
        )


class Filtering:
    """Every filter for one pod, over whatever node list it is given (preemption tries lists
    with some pods removed)."""

    def __init__(self, pod: Obj, cluster: Cluster) -> None:
        self.pod = pod
        self.cluster = cluster
        self.nominated: dict[str, list[Obj]] = {}
        mine, key = plugins.priority(pod), _key(pod)
        for other in cluster.nominated:
            node = preemption.nominated_node(other)
            if node and _key(other) != key and plugins.priority(other) >= mine:
                self.nominated.setdefault(node, []).append(other)

    def _with_nominated(self, nodes: Sequence[NodeInfo]) -> list[NodeInfo]:
        return [
            NodeInfo.of(i.node, [*i.pods, *self.nominated[i.name]]) if i.name in self.nominated else i
            for i in nodes
        ]

    def statuses(self, nodes: Sequence[NodeInfo]) -> dict[str, plugins.Status | None]:
        plain = _PreFiltered.of(self.pod, nodes, self.cluster)
        if not any(i.name in self.nominated for i in nodes):
            return {info.name: plain.check(self.pod, info) for info in nodes}
        crowded = self._with_nominated(nodes)
        with_them = _PreFiltered.of(self.pod, crowded, self.cluster)
        return {
            info.name: (with_them.check(self.pod, crowded[index]) if info.name in self.nominated else None)
            or plain.check(self.pod, info)
            for index, info in enumerate(nodes)
        }

    def check(self, nodes: Sequence[NodeInfo], index: int) -> plugins.Status | None:
        info = nodes[index]
        if info.name in self.nominated:
            crowded = self._with_nominated(nodes)
            status = _PreFiltered.of(self.pod, crowded, self.cluster).check(self.pod, crowded[index])
            if status is not None:
                return status
        return _PreFiltered.of(self.pod, nodes, self.cluster).check(self.pod, info)


def total_scores(
    pod: Obj, feasible: Sequence[NodeInfo], all_nodes: Sequence[NodeInfo], cluster: Cluster
) -> dict[str, int]:
    per_plugin = plugins.plugin_scores(pod, feasible, all_nodes)
    per_plugin["InterPodAffinity"] = affinity.scores(pod, feasible, all_nodes, cluster.namespaces)
    per_plugin["PodTopologySpread"] = spread.scores(pod, feasible, all_nodes, cluster)
    totals = dict.fromkeys((info.name for info in feasible), 0)
    for plugin, scores in per_plugin.items():
        weight = WEIGHTS[plugin]
        if not weight or not any(scores.values()):
            continue  # adds nothing anywhere
        for name, score in scores.items():
            if name in totals:
                totals[name] += weight * score
    return totals


def find_node(
    pod: Obj, nodes: Sequence[NodeInfo], rng: random.Random, cluster: Cluster | None = None
) -> Placement | Unschedulable:
    if not nodes:
        return Unschedulable(plugins.NO_NODES, {})
    cluster = cluster if cluster is not None else Cluster()
    filtering = Filtering(pod, cluster)
    results = filtering.statuses(nodes)
    feasible = [info for info, status in zip(nodes, results.values(), strict=True) if status is None]
    nominated = preemption.nominated_node(pod)
    if nominated and any(info.name == nominated for info in feasible):
        feasible = [info for info in feasible if info.name == nominated]
    statuses = {name: status for name, status in results.items() if status is not None}
    if not feasible:
        outcome = preemption.preempt(pod, nodes, statuses, filtering, cluster.pdbs)
        message = plugins.fit_error_message(len(nodes), statuses, outcome.message)
        return Unschedulable(message, statuses, outcome)
    scores = total_scores(pod, feasible, nodes, cluster)
    best = max(scores.values())
    return Placement(rng.choice(sorted(name for name, score in scores.items() if score == best)), scores)
