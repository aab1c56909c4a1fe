"""What a pod asks for and what a node has left: the scheduler's view of a node.

A pod's requests follow upstream's ``resourcehelper.PodRequests``: the sum of its containers,
restartable init containers (sidecars) added to it, and the largest one-shot init container
(plus the sidecars started before it) if that is larger, then the pod overhead; pod-level
``spec.resources.requests`` replace the containers' sum for the resources they name.
Quantities are integers: CPU in millicores, everything else in whole units (rounded up),
as Go's ``MilliValue`` and ``Value``.

A :class:`NodeInfo` is one node plus the pods assigned to it: their summed requests, the
host ports they hold and their number, against the node's allocatable resources.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from k3py.api.defaults import quantity_value

Obj = dict[str, Any]
Resources = dict[str, int]

CPU, MEMORY, EPHEMERAL_STORAGE, PODS = "cpu", "memory", "ephemeral-storage", "pods"
DEFAULT_MILLI_CPU_REQUEST = 100
"""What scoring counts for a container that requests no CPU (upstream's 0.1 core)."""
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024
"""What scoring counts for a container that requests no memory (200 MB)."""


def amount(name: str, value: object) -> int:
    """A quantity as the scheduler counts it; 0 for what does not parse."""
    number = quantity_value(value)
    if number is None:
        return 0
    scaled = number * 1000 if name == CPU else number
    return math.ceil(scaled)


def resource_list(values: object) -> Resources:
    if not isinstance(values, Mapping):
        return {}
    return {str(name): amount(str(name), value) for name, value in values.items()}


def _add(total: Resources, more: Mapping[str, int]) -> None:
    for name, value in more.items():
        total[name] = total.get(name, 0) + value


def _max(total: Resources, other: Mapping[str, int]) -> None:
    for name, value in other.items():
        total[name] = max(total.get(name, 0), value)


def _containers(spec: Obj, key: str) -> list[Obj]:
    return [c for c in spec.get(key) or [] if isinstance(c, dict)]


def _requests(container: Obj) -> Resources:
    return resource_list((container.get("resources") or {}).get("requests"))


def _sidecar(container: Obj) -> bool:
    return container.get("restartPolicy") == "Always"


def pod_requests(pod: Obj, *, non_zero: bool = False) -> Resources:
    """What the pod needs on a node; with ``non_zero``, containers without a CPU or memory
    request count upstream's defaults (scoring spreads such pods instead of stacking them)."""
    spec = pod.get("spec") or {}

    def container_requests(container: Obj) -> Resources:
        found = _requests(container)
        if non_zero:
            found.setdefault(CPU, DEFAULT_MILLI_CPU_REQUEST)
            found.setdefault(MEMORY, DEFAULT_MEMORY_REQUEST)
        return found

    total: Resources = {}
    for container in _containers(spec, "containers"):
        _add(total, container_requests(container))
    sidecars: Resources = {}
    init_peak: Resources = {}
    for container in _containers(spec, "initContainers"):
        wanted = container_requests(container)
        if _sidecar(container):
            _add(total, wanted)
            _add(sidecars, wanted)
            step = dict(sidecars)
        else:
            step = dict(wanted)
            _add(step, sidecars)
        _max(init_peak, step)
    _max(total, init_peak)
    pod_level = resource_list((spec.get("resources") or {}).get("requests"))
    for name in (CPU, MEMORY):
        if name in pod_level:
            total[name] = pod_level[name]
    _add(total, resource_list(spec.get("overhead")))
    return total


@dataclass(frozen=True)
class HostPort:
    ip: str
    protocol: str
    port: int

    def conflicts(self, other: HostPort) -> bool:
        if self.port != other.port or self.protocol != other.protocol:
            return False
        wildcard = ("", "0.0.0.0", "::")
        return self.ip in wildcard or other.ip in wildcard or self.ip == other.ip


def host_ports(pod: Obj) -> list[HostPort]:
    spec = pod.get("spec") or {}
    found = []
    for key in ("initContainers", "containers"):
        for container in _containers(spec, key):
            for port in container.get("ports") or []:
                number = port.get("hostPort") if isinstance(port, dict) else None
                if isinstance(number, int) and number > 0:
                    protocol = str(port.get("protocol") or "TCP")
                    found.append(HostPort(str(port.get("hostIP") or "0.0.0.0"), protocol, number))
    return found


@dataclass
class NodeInfo:
    """A node and what the pods assigned to it already take."""

    node: Obj
    pods: list[Obj] = field(default_factory=list)
    requested: Resources = field(default_factory=dict)
    non_zero_requested: Resources = field(default_factory=dict)
    ports: list[HostPort] = field(default_factory=list)

    @classmethod
    def of(cls, node: Obj, pods: Iterable[Obj] = ()) -> NodeInfo:
        info = cls(node)
        for pod in pods:
            info.add(pod)
        return info

    @property
    def name(self) -> str:
        return str((self.node.get("metadata") or {}).get("name") or "")

    @property
    def allocatable(self) -> Resources:
        status = self.node.get("status") or {}
        return resource_list(status.get("allocatable") or status.get("capacity"))

    def add(self, pod: Obj) -> None:
        self.pods.append(pod)
        _add(self.requested, pod_requests(pod))
        _add(self.non_zero_requested, pod_requests(pod, non_zero=True))
        self.ports.extend(host_ports(pod))

    def without(self, drop: Iterable[Obj]) -> NodeInfo:
        """The same node with some of its pods gone (what preemption would free)."""
        gone = {id(pod) for pod in drop}
        return NodeInfo.of(self.node, [pod for pod in self.pods if id(pod) not in gone])
