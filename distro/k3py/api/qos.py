"""A pod's quality-of-service class, as kube-apiserver computes it (``pkg/apis/core/helper/qos``).

The API server writes ``status.qosClass`` when a pod is created and keeps it for the pod's life:
a status update that leaves it out keeps the stored one, and a resize may not change it. Only
cpu and memory count. Pod-level resources (``spec.resources``), when they name a resource pods
may set at that level, decide alone; otherwise each init and app container's requirements do:
all Guaranteed (requests equal to non-zero limits) makes the pod Guaranteed, all BestEffort (no
cpu or memory at all) BestEffort, anything else Burstable.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from k3py.api.defaults import quantity_value

Obj = dict[str, Any]

GUARANTEED = "Guaranteed"
BURSTABLE = "Burstable"
BEST_EFFORT = "BestEffort"
_COMPUTE = ("cpu", "memory")
_POD_LEVEL = ("cpu", "memory")
_HUGEPAGES = "hugepages-"


def pod_qos(pod: Obj) -> str:
    """``GetPodQOS``: the class the pod's status records, else the computed one."""
    status = pod.get("status")
    recorded = status.get("qosClass") if isinstance(status, dict) else None
    return str(recorded) if recorded else compute_qos(pod)


def compute_qos(pod: Obj) -> str:
    """``ComputePodQOS``: the class the pod's spec asks for, whatever its status says."""
    spec = _map(pod.get("spec"))
    pod_resources = spec.get("resources")
    if isinstance(pod_resources, dict) and pod_level_resources_set(pod_resources):
        return _requirements_qos(pod_resources)
    found = ""
    for container in _containers(spec):
        qos = _requirements_qos(_map(container.get("resources")))
        if qos == BURSTABLE:
            return BURSTABLE
        if not found:
            found = qos
        elif found != qos:
            return BURSTABLE  # one Guaranteed and one BestEffort container
    return found or BEST_EFFORT


def pod_level_resources_set(resources: Obj) -> bool:
    """``IsPodLevelResourcesSet``: requests or limits name cpu, memory or huge pages."""
    names = [*_map(resources.get("requests")), *_map(resources.get("limits"))]
    return any(name in _POD_LEVEL or name.startswith(_HUGEPAGES) for name in names)


def _containers(spec: Obj) -> Iterator[Obj]:
    for key in ("initContainers", "containers"):
        value = spec.get(key)
        if isinstance(value, list):
            yield from (c for c in value if isinstance(c, dict))


def _requirements_qos(resources: Obj) -> str:
    requests, limits = _map(resources.get("requests")), _map(resources.get("limits"))
    if not requests and not limits:
        return BEST_EFFORT
    found = ""
    for name in _COMPUTE:
        qos = _resource_qos(requests.get(name), limits.get(name))
        if qos == BURSTABLE:
            return BURSTABLE
        if not found:
            found = qos
        elif found != qos:
            return BURSTABLE  # cpu set and memory not, or the other way round
    return found


def _resource_qos(request: object, limit: object) -> str:
    wanted, capped = _amount(request), _amount(limit)
    if wanted != capped:
        return BURSTABLE
    return BEST_EFFORT if wanted == 0 else GUARANTEED


def _amount(value: object) -> object:
    """A quantity's exact value; 0 when absent (a Go map's zero Quantity)."""
    if value is None:
        return 0
    parsed = quantity_value(value)
    return parsed if parsed is not None else value


def _map(value: object) -> Obj:
    return value if isinstance(value, dict) else {}
