"""PodTopologySpread: keep matching pods evenly spread over topology domains.

A constraint counts the pods its ``labelSelector`` (narrowed by ``matchLabelKeys``) selects in
the incoming pod's namespace per value of ``topologyKey``, over the nodes its inclusion
policies admit (``nodeAffinityPolicy`` Honor by default: only nodes the pod's node
selector/affinity allows; ``nodeTaintsPolicy`` Ignore by default). Terminating pods are not
counted.

- ``DoNotSchedule`` constraints filter: placing the pod in a domain must not make it exceed
  the least-populated domain by more than ``maxSkew`` (the minimum is 0 while there are fewer
  than ``minDomains`` domains). A node without the topology label is refused for good.
- ``ScheduleAnyway`` constraints score: fewer matching pods in the node's domains is better,
  each constraint weighted by the log of its number of domains, as upstream.

A pod without constraints gets the system defaults (hostname maxSkew 3, zone maxSkew 5, both
ScheduleAnyway) with upstream's default selector: the selectors of the Services that select
the pod and of its controlling ReplicationController, ReplicaSet or StatefulSet.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from k3py.api.selectors import LabelSelector, Operator, Requirement
from k3py.scheduler import plugins
from k3py.scheduler.affinity import labels_of, namespace_of, selector_of, with_label_keys
from k3py.scheduler.cluster import Cluster
from k3py.scheduler.plugins import MAX_NODE_SCORE, Status
from k3py.scheduler.resources import NodeInfo

Obj = dict[str, Any]

HOSTNAME = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"
ERR_CONSTRAINTS = "node(s) didn't match pod topology spread constraints"
ERR_MISSING_LABEL = ERR_CONSTRAINTS + " (missing required label)"
MAX_INT32 = 2**31 - 1
SYSTEM_DEFAULTS: tuple[Obj, ...] = (
    {"topologyKey": HOSTNAME, "maxSkew": 3, "whenUnsatisfiable": "ScheduleAnyway"},
    {"topologyKey": ZONE, "maxSkew": 5, "whenUnsatisfiable": "ScheduleAnyway"},
)


@dataclass(frozen=True)
class Constraint:
    max_skew: int
    topology_key: str
    selector: LabelSelector
    min_domains: int = 1
    honor_node_affinity: bool = True
    honor_taints: bool = False

    def admits(self, pod: Obj, node: Obj) -> bool:
        """``matchNodeInclusionPolicies``: is the node counted at all?"""
        if self.honor_node_affinity and not plugins.required_node_affinity_matches(pod, node):
            return False
        if self.honor_taints:
            taints = (node.get("spec") or {}).get("taints") or []
            tolerations = (pod.get("spec") or {}).get("tolerations") or []
            if plugins.untolerated(taints, tolerations, ("NoSchedule", "NoExecute")) is not None:
                return False
        return True


def _constraint(raw: Obj, pod: Obj, selector: LabelSelector | None = None) -> Constraint:
    if selector is None:
        keys = [str(k) for k in raw.get("matchLabelKeys") or []]
        selector = with_label_keys(selector_of(raw.get("labelSelector")), labels_of(pod), keys)
    min_domains = raw.get("minDomains")
    return Constraint(
        max_skew=int(raw.get("maxSkew") or 1),
        topology_key=str(raw.get("topologyKey") or ""),
        selector=selector,
        min_domains=min_domains if isinstance(min_domains, int) else 1,
        honor_node_affinity=(raw.get("nodeAffinityPolicy") or "Honor") == "Honor",
        honor_taints=(raw.get("nodeTaintsPolicy") or "Ignore") == "Honor",
    )


def pod_constraints(pod: Obj, action: str) -> list[Constraint]:
    """The pod's own constraints with ``whenUnsatisfiable == action``."""
    raw = (pod.get("spec") or {}).get("topologySpreadConstraints") or []
    return [
        _constraint(c, pod)
        for c in raw
        if isinstance(c, dict) and (c.get("whenUnsatisfiable") or "DoNotSchedule") == action
    ]


def default_selector(pod: Obj, cluster: Cluster) -> LabelSelector:
    """``helper.DefaultSelector``: what the pod's Services and controller select."""
    labels = labels_of(pod)
    namespace = namespace_of(pod)
    merged: dict[str, str] = {}
    for service in cluster.services:
        chosen = (service.get("spec") or {}).get("selector")
        if namespace_of(service) != namespace or chosen is None:
            continue  # a nil selector selects nothing
        if all(labels.get(k) == v for k, v in chosen.items()):
            merged.update(chosen)
    extra: list[Requirement] = []
    owner = next(
        (r for r in (pod.get("metadata") or {}).get("ownerReferences") or [] if r.get("controller")), None
    )
    if owner is not None:
        kind = str(owner.get("kind") or "")
        controller = cluster.controllers.get((kind, namespace, str(owner.get("name") or "")))
        chosen = (controller or {}).get("spec", {}).get("selector")
        if kind == "ReplicationController" and isinstance(chosen, dict):
            merged.update(chosen)
        elif kind in ("ReplicaSet", "StatefulSet") and isinstance(chosen, dict):
            extra = list(selector_of(chosen).requirements)
    requirements = [Requirement(k, Operator.EQUALS, (v,)) for k, v in merged.items()] + extra
    return LabelSelector(tuple(sorted(requirements, key=lambda r: r.key)))


def default_constraints(pod: Obj, cluster: Cluster) -> list[Constraint]:
    selector = default_selector(pod, cluster)
    if selector.empty:
        return []
    return [_constraint(c, pod, selector) for c in SYSTEM_DEFAULTS]


def matching_pods(info: NodeInfo, selector: LabelSelector, namespace: str) -> int:
    """``countPodsMatchSelector`` on the node: terminating pods and other namespaces do not
    count. Remembered by the node until its pods change (a cycle asks for every node, and
    the next cycle asks again for the same selector)."""

    def matches(pod: Obj) -> bool:
        return (
            not (pod.get("metadata") or {}).get("deletionTimestamp")
            and namespace_of(pod) == namespace
            and selector.matches(labels_of(pod))
        )

    return info.count_pods(("spread", selector, namespace), matches)


def _has_keys(node: Obj, constraints: Sequence[Constraint]) -> bool:
    labels = labels_of(node)
    return all(c.topology_key in labels for c in constraints)


# -- filter ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FilterState:
    constraints: list[Constraint]
    counts: list[dict[str, int]]
    """Per constraint: matching pods per topology value, over the admitted nodes."""

    def minimum(self, index: int) -> int:
        counts = self.counts[index]
        if len(counts) < self.constraints[index].min_domains:
            return 0
        return min(counts.values(), default=MAX_INT32)


def prefilter(pod: Obj, nodes: Sequence[NodeInfo]) -> FilterState | None:
    constraints = pod_constraints(pod, "DoNotSchedule")
    if not constraints:
        return None
    namespace = namespace_of(pod)
    counts: list[dict[str, int]] = [{} for _ in constraints]
    for info in nodes:
        if not _has_keys(info.node, constraints):
            continue
        labels = labels_of(info.node)
        for index, constraint in enumerate(constraints):
            if not constraint.admits(pod, info.node):
                continue
            value = labels[constraint.topology_key]
            found = matching_pods(info, constraint.selector, namespace)
            counts[index][value] = counts[index].get(value, 0) + found
    return FilterState(constraints, counts)


def filter(state: FilterState | None, pod: Obj, info: NodeInfo) -> Status | None:
    """``matching pods in the node's domain + (1 if the pod matches) - minimum <= maxSkew``."""
    if state is None:
        return None
    labels = labels_of(info.node)
    own = labels_of(pod)
    for index, constraint in enumerate(state.constraints):
        value = labels.get(constraint.topology_key)
        if value is None:
            return Status("PodTopologySpread", (ERR_MISSING_LABEL,))
        itself = 1 if constraint.selector.matches(own) else 0
        skew = state.counts[index].get(value, 0) + itself - state.minimum(index)
        if skew > constraint.max_skew:
            return Status("PodTopologySpread", (ERR_CONSTRAINTS,), resolvable=True)
    return None


# -- score ----------------------------------------------------------------------------------------


def scores(
    pod: Obj, feasible: Sequence[NodeInfo], all_nodes: Sequence[NodeInfo], cluster: Cluster
) -> dict[str, int]:
    """0..100 for each feasible node: fewer matching pods around it scores higher."""
    if (pod.get("spec") or {}).get("topologySpreadConstraints"):
        constraints = pod_constraints(pod, "ScheduleAnyway")
        require_all_keys = True
    else:
        constraints = default_constraints(pod, cluster)
        require_all_keys = False
    if not constraints or not feasible:
        return {info.name: 0 for info in feasible}
    ignored = {info.name for info in feasible if require_all_keys and not _has_keys(info.node, constraints)}
    domains: dict[tuple[str, str], int] = {}
    sizes = [0] * len(constraints)
    for info in feasible:
        if info.name in ignored:
            continue
        for index, constraint in enumerate(constraints):
            if constraint.topology_key == HOSTNAME:
                continue  # counted per node below
            pair = (constraint.topology_key, labels_of(info.node).get(constraint.topology_key, ""))
            if pair not in domains:
                domains[pair] = 0
                sizes[index] += 1
    weights = [
        math.log((len(feasible) - len(ignored) if c.topology_key == HOSTNAME else sizes[i]) + 2)
        for i, c in enumerate(constraints)
    ]
    namespace = namespace_of(pod)
    for info in all_nodes:
        if not _has_keys(info.node, constraints):
            continue
        for constraint in constraints:
            if not constraint.admits(pod, info.node):
                continue
            pair = (constraint.topology_key, labels_of(info.node)[constraint.topology_key])
            if pair in domains:
                domains[pair] += matching_pods(info, constraint.selector, namespace)
    raw: dict[str, int] = {}
    for info in feasible:
        if info.name in ignored:
            continue
        labels = labels_of(info.node)
        total = 0.0
        for index, constraint in enumerate(constraints):
            value = labels.get(constraint.topology_key)
            if value is None:
                continue
            if constraint.topology_key == HOSTNAME:
                count = matching_pods(info, constraint.selector, namespace)
            else:
                count = domains[(constraint.topology_key, value)]
            total += count * weights[index] + (constraint.max_skew - 1)
        raw[info.name] = math.floor(total + 0.5)  # Go's math.Round
    return _normalize(raw, [info.name for info in feasible])


def _normalize(raw: dict[str, int], names: Sequence[str]) -> dict[str, int]:
    """Upstream's NormalizeScore: ``100 * (max + min - score) / max``; ignored nodes get 0."""
    highest = max(raw.values(), default=0)
    lowest = min(raw.values(), default=0)
    out = {}
    for name in names:
        if name not in raw:
            out[name] = 0
        elif highest == 0:
            out[name] = MAX_NODE_SCORE
        else:
            out[name] = MAX_NODE_SCORE * (highest + lowest - raw[name]) // highest
    return out
