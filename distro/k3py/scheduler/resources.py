"""What a pod asks for and what a node has left: the scheduler's view of a node.

A pod's requests follow upstream's ``resourcehelper.PodRequests``: the sum of its containers,
restartable init containers (sidecars) added to it, and the largest one-shot init container
(plus the sidecars started before it) if that is larger, then the pod overhead; pod-level
``spec.resources.requests`` replace the containers' sum for the resources they name.
Quantities are integers: CPU in millicores, everything else in whole units (rounded up),
as Go's ``MilliValue`` and ``Value``.

A :class:`NodeInfo` is one node plus the pods assigned to it: their summed requests, the
host ports they hold, their number and which of them have pod (anti-)affinity, against the
node's allocatable resources. The scheduler's cache (``cache``) keeps one per node and adds and
removes pods as they are bound and go away, so a cycle does not recount the cluster.

Parsing quantities is the costly part, so a quantity string's value is remembered, and inside
:func:`memoized` (one scheduling cycle, during which no object changes) so is what is derived
from each pod (requests, host ports, tolerations): the filters and scores ask for the incoming
pod's once per node.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from k3py.api.defaults import quantity_value

Obj = dict[str, Any]
Resources = dict[str, int]

CPU, MEMORY, EPHEMERAL_STORAGE, PODS = "cpu", "memory", "ephemeral-storage", "pods"
DEFAULT_MILLI_CPU_REQUEST = 100
"""What scoring counts for a container that requests no CPU (upstream's 0.1 core)."""
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024
"""What scoring counts for a container that requests no memory (200 MB)."""
NODE_ANSWERS = 256
"""How many answers :meth:`NodeInfo.about_node` keeps per node before it starts over."""


def amount(name: str, value: object) -> int:
    """A quantity as the scheduler counts it; 0 for what does not parse."""
    if isinstance(value, str):
        return _text_amount(name == CPU, value)
    return _amount(name == CPU, value)


@functools.lru_cache(maxsize=4096)
def _text_amount(cpu: bool, value: str) -> int:
    return _amount(cpu, value)


def _amount(cpu: bool, value: object) -> int:
    number = quantity_value(value)
    if number is None:
        return 0
    scaled = number * 1000 if cpu else number
    return math.ceil(scaled)


def resource_list(values: object) -> Resources:
    if not isinstance(values, Mapping):
        return {}
    return {str(name): amount(str(name), value) for name, value in values.items()}


def _remember(answers: dict[Hashable, Any], key: Hashable, compute: Callable[[], T]) -> T:
    """``answers[key]``, computed now if missing (all are dropped once ``NODE_ANSWERS`` are kept)."""
    if key in answers:
        answer: T = answers[key]
        return answer
    if len(answers) >= NODE_ANSWERS:
        answers.clear()
    found = answers[key] = compute()
    return found


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


T = TypeVar("T")

_memo: dict[tuple[int, str], tuple[Obj, Any]] | None = None
"""Inside :func:`memoized`: what was derived from each object, by the object's ``id`` and
the kind of answer (the object is kept, so its id is not reused meanwhile)."""


@contextlib.contextmanager
def memoized() -> Iterator[None]:
    """Remember what :func:`remembered` computes in the block (each pod's requests, host
    ports, tolerations...), where the objects must not change: a scheduling cycle. The
    answers are shared: callers must not modify them."""
    global _memo
    if _memo is not None:
        yield  # an enclosing block already remembers
        return
    _memo = {}
    try:
        yield
    finally:
        _memo = None


def remembered(kind: str, obj: Obj, compute: Callable[[Obj], T]) -> T:
    """``compute(obj)``, remembered under ``kind`` inside :func:`memoized`."""
    if _memo is None:
        return compute(obj)
    key = (id(obj), kind)
    found = _memo.get(key)
    if found is None or found[0] is not obj:
        found = _memo[key] = (obj, compute(obj))
    answer: T = found[1]
    return answer


def pod_requests(pod: Obj, *, non_zero: bool = False) -> Resources:
    """What the pod needs on a node; with ``non_zero``, containers without a CPU or memory
    request count upstream's defaults (scoring spreads such pods instead of stacking them)."""
    if non_zero:
        return remembered("requests-non-zero", pod, _non_zero_requests)
    return remembered("requests", pod, _requests_of)


def _requests_of(pod: Obj) -> Resources:
    return _pod_requests(pod, False)


def _non_zero_requests(pod: Obj) -> Resources:
    return _pod_requests(pod, True)


def _pod_requests(pod: Obj, non_zero: bool) -> Resources:
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
    return remembered("host-ports", pod, _host_ports)


def _host_ports(pod: Obj) -> list[HostPort]:
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


def _pod_affinity(pod: Obj, kind: str) -> Obj:
    affinity = (pod.get("spec") or {}).get("affinity")
    found = affinity.get(kind) if isinstance(affinity, dict) else None
    return found if isinstance(found, dict) else {}


def has_pod_affinity(pod: Obj) -> bool:
    """Any pod affinity or anti-affinity, required or preferred (upstream's ``PodsWithAffinity``)."""
    return bool(_pod_affinity(pod, "podAffinity") or _pod_affinity(pod, "podAntiAffinity"))


def has_required_anti_affinity(pod: Obj) -> bool:
    return bool(_pod_affinity(pod, "podAntiAffinity").get("requiredDuringSchedulingIgnoredDuringExecution"))


def _subtract(total: Resources, less: Mapping[str, int]) -> None:
    for name, value in less.items():
        total[name] = total.get(name, 0) - value


@dataclass
class NodeInfo:
    """A node and what the pods assigned to it already take."""

    node: Obj
    pods: list[Obj] = field(default_factory=list)
    requested: Resources = field(default_factory=dict)
    non_zero_requested: Resources = field(default_factory=dict)
    ports: list[HostPort] = field(default_factory=list)
    with_affinity: list[Obj] = field(default_factory=list)
    """The pods with pod affinity or anti-affinity of any kind."""
    with_required_anti_affinity: list[Obj] = field(default_factory=list)
    name: str = field(init=False, default="", repr=False, compare=False)
    """The node's name, kept in step with ``node`` (read for every node in every cycle)."""
    _derived: tuple[Obj, Resources, dict[Hashable, Any]] | None = field(
        default=None, repr=False, compare=False
    )
    """The node object they were read from, its allocatable resources and the answers
    :meth:`about_node` remembers for it."""
    _pod_answers: tuple[Obj, dict[Hashable, Any]] | None = field(default=None, repr=False, compare=False)
    """The node object and the answers :meth:`about_pods` remembers for it and these pods."""

    @classmethod
    def of(cls, node: Obj, pods: Iterable[Obj] = ()) -> NodeInfo:
        info = cls(node)
        for pod in pods:
            info.add(pod)
        return info

    def __post_init__(self) -> None:
        self.node = self.node  # the field defaults ran after the node was first set

    def __setattr__(self, key: str, value: Any) -> None:
        object.__setattr__(self, key, value)
        if key == "node":
            object.__setattr__(self, "name", str((value.get("metadata") or {}).get("name") or ""))

    @property
    def allocatable(self) -> Resources:
        """Parsed once per node object (the answer is shared: do not modify it)."""
        return self._read_node()[1]

    def _read_node(self) -> tuple[Obj, Resources, dict[Hashable, Any]]:
        derived = self._derived
        if derived is None or derived[0] is not self.node:
            status = self.node.get("status") or {}
            allocatable = resource_list(status.get("allocatable") or status.get("capacity"))
            derived = self._derived = (self.node, allocatable, {})
        return derived

    def about_node(self, key: Hashable, compute: Callable[[], T]) -> T:
        """``compute()``, an answer that depends only on this node object and on what ``key``
        names, remembered until the node object changes (a new object replaces it on every
        update; at most ``NODE_ANSWERS`` kept)."""
        return _remember(self._read_node()[2], key, compute)

    def about_pods(self, key: Hashable, compute: Callable[[], T]) -> T:
        """``compute()``, an answer that depends on this node object and the pods assigned to
        it, remembered under ``key`` (which must identify ``compute``) until either changes (at
        most ``NODE_ANSWERS`` kept)."""
        memo = self._pod_answers
        if memo is None or memo[0] is not self.node:
            memo = self._pod_answers = (self.node, {})
        return _remember(memo[1], key, compute)

    def count_pods(self, key: Hashable, matches: Callable[[Obj], bool]) -> int:
        """How many of the node's pods ``matches`` accepts; remembered under ``key`` (which
        must identify ``matches``) until the node's pods change."""
        return self.about_pods(key, lambda: sum(1 for pod in self.pods if matches(pod)))

    def add(self, pod: Obj) -> None:
        self.pods.append(pod)
        self._pod_answers = None
        _add(self.requested, pod_requests(pod))
        _add(self.non_zero_requested, pod_requests(pod, non_zero=True))
        self.ports.extend(host_ports(pod))
        if has_pod_affinity(pod):
            self.with_affinity.append(pod)
            if has_required_anti_affinity(pod):
                self.with_required_anti_affinity.append(pod)

    def remove(self, pod: Obj) -> None:
        """Take back what :meth:`add` counted for this very object (the one added)."""
        index = next((i for i, p in enumerate(self.pods) if p is pod), None)
        if index is None:
            raise ValueError(f"pod {(pod.get('metadata') or {}).get('name')!r} is not on {self.name!r}")
        del self.pods[index]
        self._pod_answers = None
        _subtract(self.requested, pod_requests(pod))
        _subtract(self.non_zero_requested, pod_requests(pod, non_zero=True))
        for port in host_ports(pod):
            self.ports.remove(port)
        for group in (self.with_affinity, self.with_required_anti_affinity):
            group[:] = [p for p in group if p is not pod]

    def without(self, drop: Iterable[Obj]) -> NodeInfo:
        """The same node with some of its pods gone (what preemption would free)."""
        gone = {id(pod) for pod in drop}
        return NodeInfo.of(self.node, [pod for pod in self.pods if id(pod) not in gone])
