"""Pod admission: whether this node takes a pod bound to it, before anything of it runs.

The scheduler checks a pod against a node before binding it there, but a pod may be bound
straight to a node (``spec.nodeName`` set by its creator, as a DaemonSet or a StatefulSet with a
fixed node does), and the scheduler's view may be older than the node's. So the upstream
kubelet checks every new pod once more (``lifecycle.predicateAdmitHandler``), against its own
Node object and the pods it has already admitted and not seen terminate, and refuses one that
does not fit: the pod goes to phase ``Failed`` with the check's reason and the message
``Pod was rejected: <message>``, a Warning event says the same, and none of its containers
ever starts. Whoever owns the pod (a StatefulSet, say) replaces it; it is not retried.

The checks, in upstream's order (``canAdmitPod`` → ``generalFilter``, which calls the
scheduler's ``AdmissionCheck``); the first that fails is the pod's reason:

- the pod's ``kubernetes.io/os`` label and ``spec.os`` against the node's OS (``linux``):
  ``PodOSSelectorNodeLabelDoesNotMatch``, ``PodOSNotSupported``;
- resources: the pod's effective requests (containers, sidecars and init containers, overhead,
  pod-level requests) against the node's allocatable minus what the admitted pods request,
  the pod count included: ``OutOfcpu``, ``OutOfmemory``, ``OutOfephemeral-storage``,
  ``OutOfpods`` or ``OutOf<name>``, with ``Node didn't have enough resource: <name>,
  requested: N, used: N, capacity: N``. Requests of extended resources the node does not list
  at all are left out (upstream: they may be cluster-level resources);
- ``NodeAffinity``: the node selector and the required node affinity;
- ``NodeName``: ``spec.nodeName`` is this node;
- ``NodePorts``: no host port the pod wants is held by an admitted pod;
- ``TaintToleration``: every ``NoExecute`` taint of the node is tolerated (NoSchedule taints
  are the scheduler's business: a pod bound directly may ignore them).

The predicate failures read ``Predicate <name> failed: <the scheduler's reason>``. When the only
failure is NodeAffinity, upstream reads the Node again from the API server (its labels may have
just changed) and checks once more; :func:`only_node_affinity` tells the kubelet when to.

The checks themselves are the scheduler's (``k3py.scheduler.plugins`` and ``resources``), run
on a :class:`~k3py.scheduler.resources.NodeInfo` of the admitted pods; this module only picks
upstream's kubelet subset and words the outcome as the kubelet does. Not checked: the
SupplementalGroupsPolicy ``Strict`` support (the node reports no features) and device plugin
or DRA resources (k3py has neither).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from k3py.agent.podstatus import qos_class
from k3py.scheduler import plugins
from k3py.scheduler.resources import CPU, EPHEMERAL_STORAGE, MEMORY, PODS, NodeInfo

Obj = dict[str, Any]

NODE_OS = "linux"
OS_LABEL = "kubernetes.io/os"
REJECTED_PREFIX = "Pod was rejected: "
ERR_TAINTS = "node(s) had taints that the pod didn't tolerate"
"""Upstream's ``tainttoleration.ErrReasonNotMatch`` (the scheduler's own message names the taint)."""
OUT_OF = {
    CPU: "OutOfcpu",
    MEMORY: "OutOfmemory",
    EPHEMERAL_STORAGE: "OutOfephemeral-storage",
    PODS: "OutOfpods",
}
"""The reason for a resource the node has too little of (others: ``OutOf<name>``)."""


@dataclass(frozen=True)
class Failure:
    """One check the pod failed: the pod's status ``reason`` and the kubelet's ``message``."""

    reason: str
    message: str
    predicate: str = ""
    """The scheduler plugin that failed (empty for resources and the OS checks)."""


def wanted(pod: Obj) -> bool:
    """Whether a pod seen for the first time goes through admission: not when it has finished
    already or is being deleted (then there is nothing to run, only to clean up)."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not (pod.get("metadata") or {}).get("deletionTimestamp")


def failures(pod: Obj, node: Obj, admitted: Iterable[Obj]) -> list[Failure]:
    """Every check ``pod`` fails on ``node`` where the ``admitted`` pods already run, in
    upstream's order (empty: the pod is admitted)."""
    early = _os_failure(pod)
    if early is not None:
        return [early]
    info = NodeInfo.of(node, admitted)
    found = _resource_failures(_without_missing_extended(pod, info), info)
    if not plugins.required_node_affinity_matches(pod, node):
        found.append(_predicate("NodeAffinity", plugins.ERR_AFFINITY))
    for check in (plugins.node_name, plugins.node_ports):
        status = check(pod, info)
        if status is not None:
            found.append(_predicate(status.plugin, status.reasons[0]))
    taints = [t for t in (node.get("spec") or {}).get("taints") or [] if isinstance(t, dict)]
    tolerations = [t for t in (pod.get("spec") or {}).get("tolerations") or [] if isinstance(t, dict)]
    if plugins.untolerated(taints, tolerations, ("NoExecute",)) is not None:
        found.append(_predicate("TaintToleration", ERR_TAINTS))
    return found


def verdict(pod: Obj, node: Obj, admitted: Iterable[Obj]) -> Failure | None:
    """Why the pod is refused (upstream reports the first failure only), or None to admit it."""
    found = failures(pod, node, admitted)
    return found[0] if found else None


def only_node_affinity(found: Sequence[Failure]) -> bool:
    """The pod failed, and only on its node selector or affinity: worth reading the Node again."""
    return bool(found) and all(f.predicate == "NodeAffinity" for f in found)


def rejected_status(pod: Obj, failure: Failure, start_time: str) -> Obj:
    """The status the kubelet writes for a refused pod (``rejectPod``): Failed, the reason, the
    prefixed message, the QoS class kept and a start time (the status manager always sets one)."""
    return {
        "phase": "Failed",
        "reason": failure.reason,
        "message": REJECTED_PREFIX + failure.message,
        "qosClass": qos_class(pod),
        "startTime": (pod.get("status") or {}).get("startTime") or start_time,
    }


def _predicate(name: str, description: str) -> Failure:
    """``PredicateFailureError``: the plugin's name is the reason."""
    return Failure(name, f"Predicate {name} failed: {description}", name)


def _os_failure(pod: Obj) -> Failure | None:
    """``rejectPodAdmissionBasedOnOSSelector`` and ``...OSField``: the node's OS label is taken
    as the kubelet's own OS whatever the Node says."""
    labels = (pod.get("metadata") or {}).get("labels") or {}
    if OS_LABEL in labels and labels[OS_LABEL] != NODE_OS:
        return Failure(
            "PodOSSelectorNodeLabelDoesNotMatch",
            "Failed to admit pod as the `kubernetes.io/os` label doesn't match node label",
        )
    wanted_os = ((pod.get("spec") or {}).get("os") or {}).get("name")
    if wanted_os is not None and wanted_os != NODE_OS:
        return Failure("PodOSNotSupported", "Failed to admit pod as the OS field doesn't match node OS")
    return None


def _resource_failures(pod: Obj, info: NodeInfo) -> list[Failure]:
    """``InsufficientResourceError`` for each resource ``fitsRequest`` finds short, with the
    numbers upstream reports (millicores for CPU)."""
    return [
        Failure(
            OUT_OF.get(short.resource, f"OutOf{short.resource}"),
            f"Node didn't have enough resource: {short.resource}, requested: {short.requested}, "
            f"used: {short.used}, capacity: {short.capacity}",
        )
        for short in plugins.insufficient_resources(pod, info)
    ]


def _extended(name: str) -> bool:
    """``IsExtendedResourceName``: a domain-prefixed name outside ``kubernetes.io``."""
    return "/" in name and "kubernetes.io/" not in name and not name.startswith("requests.")


def _without_missing_extended(pod: Obj, info: NodeInfo) -> Obj:
    """The pod without its containers' requests of extended resources the node does not list
    (``removeMissingExtendedResources``); the pod itself when there are none."""
    spec = pod.get("spec") or {}
    allocatable = info.allocatable
    changed = False
    copies: Obj = {}
    for key in ("containers", "initContainers"):
        if key not in spec:
            continue
        containers = []
        for container in spec.get(key) or []:
            requests = ((container.get("resources") or {}) if isinstance(container, dict) else {}).get(
                "requests"
            ) or {}
            kept = {n: v for n, v in requests.items() if not (_extended(n) and n not in allocatable)}
            if len(kept) != len(requests):
                changed = True
                container = dict(container, resources=dict(container["resources"], requests=kept))
            containers.append(container)
        copies[key] = containers
    if not changed:
        return pod
    return dict(pod, spec=dict(spec, **copies))
