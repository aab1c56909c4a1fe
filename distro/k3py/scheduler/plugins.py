"""Filter and score plugins: kube-scheduler's default profile, as pure functions over dicts.

A filter says why a pod cannot go to a node (a :class:`Status` with upstream's reason text,
which ends up verbatim in ``FailedScheduling`` events), or None when it can. Filters run in
upstream's order and a node's first failure is its reason. ``resolvable`` tells whether
removing pods from the node could help (``Unschedulable``: too little room left, host ports
taken) or not (``UnschedulableAndUnresolvable``: taints, affinity, a request larger than the
whole node), which tells preemption (``preemption``) where evicting could help.

Readiness is upstream's taint-based rule without the node lifecycle controller: a node whose
``Ready`` condition is not ``True`` is treated as tainted ``node.kubernetes.io/not-ready``
(``.../unreachable`` when Unknown) with NoSchedule, unless it already carries the taint, so
a pod that tolerates the taint (a DaemonSet's) may still go there.

Scores are 0..100 per plugin, normalized like upstream's, then summed with upstream's default
weights: NodeResourcesFit (LeastAllocated) 1, BalancedAllocation 1, ImageLocality 1,
NodeAffinity 2, TaintToleration 3 (``cycle`` adds InterPodAffinity and PodTopologySpread, which
need the whole cluster: ``affinity``, ``spread``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import orjson

from k3py.api.taints import tolerates
from k3py.scheduler.resources import (
    CPU,
    EPHEMERAL_STORAGE,
    MEMORY,
    PODS,
    NodeInfo,
    host_ports,
    pod_requests,
    remembered,
)

Obj = dict[str, Any]

MAX_NODE_SCORE = 100
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"
NO_NODES = "no nodes available to schedule pods"
ERR_NODE_NAME = "node(s) didn't match the requested node name"
ERR_UNSCHEDULABLE = "node(s) were unschedulable"
ERR_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
ERR_PORTS = "node(s) didn't have free ports for the requested pod ports"
NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"
MB = 1024 * 1024
IMAGE_MIN_THRESHOLD = 23 * MB
IMAGE_MAX_CONTAINER_THRESHOLD = 1000 * MB


@dataclass(frozen=True)
class Status:
    """Why a node cannot take the pod, as one plugin says it."""

    plugin: str
    reasons: tuple[str, ...]
    resolvable: bool = False
    """Removing pods from the node could make it fit (upstream's ``Unschedulable``)."""


def _spec(obj: Obj) -> Obj:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _labels(node: Obj) -> Mapping[str, str]:
    return (node.get("metadata") or {}).get("labels") or {}


def _name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


# -- taints ---------------------------------------------------------------------------------------


def untolerated(taints: Sequence[Obj], tolerations: Sequence[Obj], effects: Sequence[str]) -> Obj | None:
    """The first taint with one of ``effects`` that no toleration tolerates."""
    for taint in taints:
        if taint.get("effect") in effects and not any(tolerates(t, taint) for t in tolerations):
            return taint
    return None


def _taints(node: Obj) -> list[Obj]:
    return [t for t in _spec(node).get("taints") or [] if isinstance(t, dict)]


def _tolerations(pod: Obj) -> list[Obj]:
    return remembered("tolerations", pod, _read_tolerations)


def _read_tolerations(pod: Obj) -> list[Obj]:
    return [t for t in _spec(pod).get("tolerations") or [] if isinstance(t, dict)]


def _taint_reason(taint: Obj) -> str:
    return f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value') or ''}}}"


def readiness_taints(node: Obj) -> list[Obj]:
    """The NoSchedule taint the node lifecycle controller would give this node, if it lacks it."""
    conditions = (node.get("status") or {}).get("conditions") or []
    ready = next(
        (c.get("status") for c in conditions if isinstance(c, dict) and c.get("type") == "Ready"), None
    )
    if ready == "True":
        return []
    key = UNREACHABLE_TAINT if ready == "Unknown" else NOT_READY_TAINT
    if any(t.get("key") == key and t.get("effect") == "NoSchedule" for t in _taints(node)):
        return []
    return [{"key": key, "effect": "NoSchedule"}]


# -- filters --------------------------------------------------------------------------------------


def node_unschedulable(pod: Obj, info: NodeInfo) -> Status | None:
    if not _spec(info.node).get("unschedulable"):
        return None
    cordon = {"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule"}
    if any(tolerates(t, cordon) for t in _tolerations(pod)):
        return None
    return Status("NodeUnschedulable", (ERR_UNSCHEDULABLE,))


def node_name(pod: Obj, info: NodeInfo) -> Status | None:
    wanted = _spec(pod).get("nodeName")
    if not wanted or wanted == info.name:
        return None
    return Status("NodeName", (ERR_NODE_NAME,))


def taint_toleration(pod: Obj, info: NodeInfo) -> Status | None:
    taint = untolerated(_taints(info.node), _tolerations(pod), ("NoSchedule", "NoExecute"))
    return Status("TaintToleration", (_taint_reason(taint),)) if taint is not None else None


def node_ready(pod: Obj, info: NodeInfo) -> Status | None:
    taint = untolerated(readiness_taints(info.node), _tolerations(pod), ("NoSchedule",))
    return Status("NodeReady", (_taint_reason(taint),)) if taint is not None else None


def node_affinity(pod: Obj, info: NodeInfo) -> Status | None:
    return None if required_node_affinity_matches(pod, info.node) else Status("NodeAffinity", (ERR_AFFINITY,))


def node_ports(pod: Obj, info: NodeInfo) -> Status | None:
    wanted = host_ports(pod)
    if wanted and any(want.conflicts(used) for want in wanted for used in info.ports):
        return Status("NodePorts", (ERR_PORTS,), resolvable=True)
    return None


def node_resources_fit(pod: Obj, info: NodeInfo) -> Status | None:
    found = insufficient_resources(pod, info)
    if not found:
        return None
    resolvable = not any(short.unresolvable for short in found)
    return Status("NodeResourcesFit", tuple(short.reason for short in found), resolvable=resolvable)


@dataclass(frozen=True)
class Insufficient:
    """``InsufficientResource``: what the pod asks of one resource, what the node's pods use of
    it and what the node has (millicores for CPU)."""

    reason: str
    unresolvable: bool = False
    """The pod asks for more than the whole node has: evicting pods cannot help."""
    resource: str = PODS
    requested: int = 0
    used: int = 0
    capacity: int = 0


def insufficient_resources(pod: Obj, info: NodeInfo) -> list[Insufficient]:
    """``fitsRequest``: the pod count, then CPU, memory, ephemeral storage, extended resources."""
    allocatable = info.allocatable
    found = []
    if len(info.pods) + 1 > (pods := allocatable.get(PODS, 0)):
        found.append(
            Insufficient("Too many pods", resource=PODS, requested=1, used=len(info.pods), capacity=pods)
        )
    for name, need in remembered("checked-requests", pod, _checked_requests):
        total = allocatable.get(name, 0)
        used = info.requested.get(name, 0)
        if need > total - used:
            found.append(
                Insufficient(
                    f"Insufficient {name}",
                    unresolvable=need > total,
                    resource=name,
                    requested=need,
                    used=used,
                    capacity=total,
                )
            )
    return found


def _checked_requests(pod: Obj) -> list[tuple[str, int]]:
    """The pod's positive requests that ``fitsRequest`` checks, in its order (none at all when
    it requests nothing but the pod count)."""
    wanted = {name: value for name, value in pod_requests(pod).items() if name != PODS}
    if not any(wanted.values()):
        return []
    checked = [CPU, MEMORY, EPHEMERAL_STORAGE]
    checked += sorted(name for name in wanted if name not in checked and _scalar(name))
    return [(name, wanted[name]) for name in checked if wanted.get(name, 0) > 0]


def _scalar(name: str) -> bool:
    """Extended resources (``vendor/name``), huge pages and attachable volumes are counted."""
    return ("/" in name and not name.startswith("kubernetes.io/")) or name.startswith(
        ("hugepages-", "attachable-volumes-")
    )


Filter = Callable[[Obj, NodeInfo], Status | None]
NODE_FILTERS: tuple[Filter, ...] = (
    node_unschedulable,
    node_name,
    taint_toleration,
    node_ready,
    node_affinity,
)
"""The filters that read only the node object and the pod's node-facing fields (its node
name, tolerations, node selector and required node affinity): their verdict on a node is
remembered for every pod with the same such fields, the replicas of a workload alike."""
ROOM_FILTERS: tuple[Filter, ...] = (node_ports, node_resources_fit)
"""The filters that also count the pods already on the node."""
FILTERS = NODE_FILTERS + ROOM_FILTERS
"""Upstream's default filter order (NodeReady stands where its taint would be checked)."""


def run_filters(pod: Obj, info: NodeInfo) -> Status | None:
    return PodFilters(pod).check(info)


class PodFilters:
    """:data:`FILTERS` for one pod, with what they read of the pod worked out once."""

    __slots__ = ("_fit", "_node_facing", "_ports", "pod")

    def __init__(self, pod: Obj) -> None:
        self.pod = pod
        self._node_facing = remembered("node-facing", pod, _node_facing)
        self._ports = host_ports(pod)
        self._fit = ("resources-fit", tuple(remembered("checked-requests", pod, _checked_requests)))
        """What NodeResourcesFit reads of the pod, besides that it is one more pod."""

    def check(self, info: NodeInfo) -> Status | None:
        status = info.about_node(self._node_facing, lambda: _first_failure(NODE_FILTERS, self.pod, info))
        if status is not None:
            return status
        if self._ports and (status := node_ports(self.pod, info)) is not None:
            return status
        return info.about_pods(self._fit, lambda: node_resources_fit(self.pod, info))


def _first_failure(filters: Sequence[Filter], pod: Obj, info: NodeInfo) -> Status | None:
    for check in filters:
        if (status := check(pod, info)) is not None:
            return status
    return None


def _node_facing(pod: Obj) -> Hashable:
    """What :data:`NODE_FILTERS` read of the pod, as a key (pods that serialize differently
    only miss the remembered verdicts)."""
    spec = _spec(pod)
    node_affinity = (spec.get("affinity") or {}).get("nodeAffinity") or {}
    fields = (
        spec.get("nodeName"),
        spec.get("tolerations"),
        spec.get("nodeSelector"),
        node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution"),
    )
    try:
        return ("node-filters", orjson.dumps(fields))
    except orjson.JSONEncodeError:
        return ("node-filters", object())  # matches nothing else


# -- node affinity --------------------------------------------------------------------------------


def required_node_affinity_matches(pod: Obj, node: Obj) -> bool:
    """``nodeSelector`` (every label) and the required node affinity (any of its terms)."""
    spec = _spec(pod)
    labels = _labels(node)
    selector = spec.get("nodeSelector") or {}
    if any(labels.get(key) != value for key, value in selector.items()):
        return False
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or None
    if required is None:
        return True
    return any(term_matches(term, node) for term in required.get("nodeSelectorTerms") or [])


def term_matches(term: Obj, node: Obj) -> bool:
    """A NodeSelectorTerm: all its label expressions and field expressions; an empty term
    matches no node."""
    expressions = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not expressions and not fields:
        return False
    labels = _labels(node)
    node_fields = {"metadata.name": _name(node)}
    return all(requirement_matches(e, labels) for e in expressions) and all(
        requirement_matches(f, node_fields) for f in fields
    )


def requirement_matches(requirement: Obj, values: Mapping[str, str]) -> bool:
    key, operator = requirement.get("key", ""), requirement.get("operator", "")
    wanted = [str(v) for v in requirement.get("values") or []]
    present = key in values
    value = values.get(key, "")
    if operator == "In":
        return present and value in wanted
    if operator == "NotIn":
        return not present or value not in wanted
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    if operator in ("Gt", "Lt"):
        if not present or len(wanted) != 1:
            return False
        try:
            have, bound = int(value), int(wanted[0])
        except ValueError:
            return False
        return have > bound if operator == "Gt" else have < bound
    return False


def preferred_node_affinity(pod: Obj, node: Obj) -> int:
    """The summed weights of the preferred terms the node matches."""
    preferred = ((_spec(pod).get("affinity") or {}).get("nodeAffinity") or {}).get(
        "preferredDuringSchedulingIgnoredDuringExecution"
    ) or []
    return sum(
        int(p.get("weight") or 0)
        for p in preferred
        if isinstance(p, dict) and term_matches(p.get("preference") or {}, node)
    )


# -- scores ---------------------------------------------------------------------------------------


def least_allocated(pod: Obj, info: NodeInfo) -> int:
    """Free share of CPU and memory after placing the pod, 0..100 (equal weights)."""
    return _allocation_scores(_cpu_memory(pod), info)[0]


def balanced_allocation(pod: Obj, info: NodeInfo) -> int:
    """How evenly CPU and memory would be used: 100 minus the spread of their fractions."""
    return _allocation_scores(_cpu_memory(pod), info)[1]


def _cpu_memory(pod: Obj) -> tuple[int, int]:
    wanted = pod_requests(pod, non_zero=True)
    return wanted.get(CPU, 0), wanted.get(MEMORY, 0)


def _allocation_scores(wanted: tuple[int, int], info: NodeInfo) -> tuple[int, int]:
    """LeastAllocated and BalancedAllocation of the node with the pod's (non-zero) CPU and
    memory requests added."""
    allocatable = info.allocatable
    requested = info.non_zero_requested
    free, fractions = 0, []
    for name, need in zip((CPU, MEMORY), wanted, strict=True):
        capacity = allocatable.get(name, 0)
        if capacity == 0:
            continue
        used = requested.get(name, 0) + need
        free += 0 if used > capacity else (capacity - used) * MAX_NODE_SCORE // capacity
        fractions.append(min(1.0, used / capacity))
    if len(fractions) < 2:
        return (free // len(fractions) if fractions else 0), 0
    # the standard deviation of two fractions is half their difference
    spread = abs(fractions[0] - fractions[1]) / 2
    return free // 2, int((1 - spread) * MAX_NODE_SCORE)


def _prefers_no_schedule(node: Obj) -> bool:
    return any(taint.get("effect") == "PreferNoSchedule" for taint in _taints(node))


def intolerable_prefer_no_schedule(pod: Obj, info: NodeInfo) -> int:
    tolerations = [
        t for t in _tolerations(pod) if (t.get("effect") or "PreferNoSchedule") == "PreferNoSchedule"
    ]
    return sum(
        1
        for taint in _taints(info.node)
        if taint.get("effect") == "PreferNoSchedule" and not any(tolerates(t, taint) for t in tolerations)
    )


def normalized_image_name(image: str) -> str:
    return image if image.rfind(":") > image.rfind("/") or "@" in image else image + ":latest"


def image_locality(pod: Obj, info: NodeInfo, spread: Mapping[str, int], total_nodes: int) -> int:
    """Bytes of the pod's images the node already has, weighted by how many nodes have them.

    ``spread``: on how many nodes each (normalized) image name is present.
    """
    spec = _spec(pod)
    containers = [c for key in ("initContainers", "containers") for c in spec.get(key) or []]
    if not containers or total_nodes == 0:
        return 0
    sizes = node_images(info.node)
    score = 0
    for container in containers:
        name = normalized_image_name(str(container.get("image") or ""))
        if name in sizes:
            score += int(sizes[name] * spread.get(name, 0) / total_nodes)
    ceiling = IMAGE_MAX_CONTAINER_THRESHOLD * len(containers)
    score = min(max(score, IMAGE_MIN_THRESHOLD), ceiling)
    return MAX_NODE_SCORE * (score - IMAGE_MIN_THRESHOLD) // (ceiling - IMAGE_MIN_THRESHOLD)


def node_images(node: Obj) -> dict[str, int]:
    found: dict[str, int] = {}
    for image in (node.get("status") or {}).get("images") or []:
        if isinstance(image, dict):
            for name in image.get("names") or []:
                found[str(name)] = int(image.get("sizeBytes") or 0)
    return found


def normalize(scores: Mapping[str, int], *, reverse: bool = False) -> dict[str, int]:
    """``DefaultNormalizeScore``: scale to 0..100 by the highest; reversed, high becomes low."""
    highest = max(scores.values(), default=0)
    if highest == 0:
        return {name: MAX_NODE_SCORE if reverse else 0 for name in scores}
    out = {}
    for name, score in scores.items():
        scaled = MAX_NODE_SCORE * score // highest
        out[name] = MAX_NODE_SCORE - scaled if reverse else scaled
    return out


WEIGHTS = {
    "NodeResourcesFit": 1,
    "NodeResourcesBalancedAllocation": 1,
    "ImageLocality": 1,
    "NodeAffinity": 2,
    "TaintToleration": 3,
}


def plugin_scores(
    pod: Obj, feasible: Sequence[NodeInfo], all_nodes: Sequence[NodeInfo]
) -> dict[str, dict[str, int]]:
    """Each score plugin's normalized score of each feasible node.

    A plugin with nothing to weigh (no node lists images, the pod prefers no node labels, no
    node has a PreferNoSchedule taint) gives every node what its function would: 0, 0, 100.
    """
    spread: Counter[str] = Counter()
    for info in all_nodes:
        if images := info.about_node("images", partial(node_images, info.node)):
            spread.update(images.keys())
    names = [i.name for i in feasible]
    wanted = _cpu_memory(pod)
    least, balanced = {}, {}
    for name, info in zip(names, feasible, strict=True):
        least[name], balanced[name] = info.about_pods(
            ("allocation", wanted), partial(_allocation_scores, wanted, info)
        )
    affinity = (_spec(pod).get("affinity") or {}).get("nodeAffinity") or {}
    prefer_no_schedule = any(
        i.about_node("prefer-no-schedule", partial(_prefers_no_schedule, i.node)) for i in feasible
    )
    return {
        "NodeResourcesFit": least,
        "NodeResourcesBalancedAllocation": balanced,
        "ImageLocality": {i.name: image_locality(pod, i, spread, len(all_nodes)) for i in feasible}
        if spread
        else dict.fromkeys(names, 0),
        "NodeAffinity": normalize({i.name: preferred_node_affinity(pod, i.node) for i in feasible})
        if affinity.get("preferredDuringSchedulingIgnoredDuringExecution")
        else dict.fromkeys(names, 0),
        "TaintToleration": normalize(
            {i.name: intolerable_prefer_no_schedule(pod, i) for i in feasible}, reverse=True
        )
        if prefer_no_schedule
        else dict.fromkeys(names, MAX_NODE_SCORE),
    }


def total_scores(pod: Obj, feasible: Sequence[NodeInfo], all_nodes: Sequence[NodeInfo]) -> dict[str, int]:
    per_plugin = plugin_scores(pod, feasible, all_nodes)
    return {
        info.name: sum(WEIGHTS[plugin] * scores[info.name] for plugin, scores in per_plugin.items())
        for info in feasible
    }


# -- why it failed --------------------------------------------------------------------------------


def fit_error_message(num_nodes: int, statuses: Mapping[str, Status], post_filter: str = "") -> str:
    """``FitError.Error()``: ``0/N nodes are available: <count reason, ...>. <post filter>``."""
    counts = Counter(reason for status in statuses.values() for reason in status.reasons)
    message = f"0/{num_nodes} nodes are available:"
    histogram = sorted(f"{count} {reason}" for reason, count in counts.items())
    if histogram:
        message += f" {', '.join(histogram)}."
    if post_filter:
        message += f" {post_filter}"
    return message


def priority(pod: Obj) -> int:
    value = _spec(pod).get("priority")
    return value if isinstance(value, int) else 0
