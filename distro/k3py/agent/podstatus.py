"""A pod's status as the upstream kubelet reports it: phase, conditions, container states.

Pure functions over what the pod worker knows of each container (:class:`ContainerView`), so
the rules (``getPhase``, readiness, QoS) are testable without a runtime.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from k3py.api.defaults import quantity_value

Obj = dict[str, Any]


def rfc3339(seconds: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if seconds is None else seconds))


@dataclass
class ContainerView:
    """One container of the pod: its current instance (if any) and the last one that ended."""

    name: str
    image: str
    restart_count: int = 0
    state: Obj = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: Obj = field(default_factory=dict)
    container_id: str = ""
    image_id: str = ""
    ready: bool = False
    started: bool | None = None
    restartable: bool = False
    """A sidecar: an init container with ``restartPolicy: Always``."""
    resources: Obj | None = None
    """The requests and limits the running instance has (None: no instance)."""
    allocated: Obj | None = None
    """The requests the node granted (``allocatedResources``)."""

    def as_status(self) -> Obj:
        out: Obj = {
            "name": self.name,
            "image": self.image,
            "imageID": self.image_id,
            "ready": self.ready,
            "restartCount": self.restart_count,
            "state": self.state,
            "lastState": self.last_state,
        }
        if self.container_id:
            out["containerID"] = self.container_id
        if self.started is not None:
            out["started"] = self.started
        if self.allocated is not None:
            out["allocatedResources"] = self.allocated
        if self.resources is not None:
            out["resources"] = self.resources
        return out

    @property
    def running(self) -> bool:
        return "running" in self.state

    @property
    def terminated(self) -> Obj | None:
        return self.state.get("terminated")

    @property
    def succeeded(self) -> bool:
        done = self.terminated
        return done is not None and done.get("exitCode") == 0

    @property
    def initialized(self) -> bool:
        """An init container is done with: a sidecar once started, any other once it succeeded."""
        return bool(self.running and self.started) if self.restartable else self.succeeded

    @property
    def has_run(self) -> bool:
        """Running, or ran (upstream's ``HasAnyRegularContainerStarted`` asks this)."""
        return self.running or self.terminated is not None


def is_sidecar(container: Obj) -> bool:
    """An init container that runs beside the app containers (``restartPolicy: Always``)."""
    return container.get("restartPolicy") == "Always"


def phase(
    restart_policy: str,
    init: list[ContainerView],
    containers: list[ContainerView],
    *,
    init_failed: bool,
    initialized: bool = False,
) -> str:
    """Upstream's ``getPhase`` for a pod whose sandbox exists.

    Sidecars count as running containers; one that has not started keeps the pod ``Pending``
    unless the pod has initialized before (``initialized``: an app container has run), and one
    that has stopped does not count at all.
    """
    if init_failed and restart_policy == "Never":
        return "Failed"
    if any(not c.succeeded for c in init if not c.restartable):
        return "Pending"
    running = waiting = stopped = succeeded = 0
    for c in init:
        if not c.restartable:
            continue
        if c.running:
            running += 1
            if not c.started and not initialized:
                return "Pending"
        elif c.terminated is None and "terminated" not in c.last_state:
            return "Pending"  # waiting for its first start
    for c in containers:
        if c.running:
            running += 1
        elif (done := c.terminated) is not None:
            stopped += 1
            succeeded += done.get("exitCode") == 0
        elif "waiting" in c.state:
            previous = c.last_state.get("terminated")
            if previous is not None:
                stopped += 1
                succeeded += previous.get("exitCode") == 0
            else:
                waiting += 1
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if stopped:
        if restart_policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if restart_policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


def qos_class(pod: Obj) -> str:
    spec = pod.get("spec") or {}
    containers = (spec.get("containers") or []) + (spec.get("initContainers") or [])
    requested = limited = False
    guaranteed = True
    for c in containers:
        resources = c.get("resources") or {}
        requests = {k: quantity_value(v) for k, v in (resources.get("requests") or {}).items()}
        limits = {k: quantity_value(v) for k, v in (resources.get("limits") or {}).items()}
        if any(v for k, v in requests.items() if k in ("cpu", "memory")):
            requested = True
        if any(v for k, v in limits.items() if k in ("cpu", "memory")):
            limited = True
        for name in ("cpu", "memory"):
            limit = limits.get(name)
            request = requests.get(name, limit)
            if limit is None or request != limit or limit == Fraction(0):
                guaranteed = False
    if not requested and not limited:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def condition(kind: str, ok: bool, previous: list[Obj], reason: str = "", message: str = "") -> Obj:
    """A pod condition; its transition time moves only when its status changes."""
    status = "True" if ok else "False"
    before = next((c for c in previous if c.get("type") == kind), None)
    changed = before is None or before.get("status") != status
    out: Obj = {
        "type": kind,
        "status": status,
        "lastProbeTime": None,
        "lastTransitionTime": rfc3339() if changed else before.get("lastTransitionTime") if before else None,
    }
    if not ok and reason:
        out["reason"] = reason
    if not ok and message:
        out["message"] = message
    return out


KUBELET_CONDITIONS = frozenset(
    {"PodScheduled", "PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready"}
)
"""The pod conditions the kubelet writes (``PodConditionsByKubelet``); it keeps all others."""


def conditions(
    pod: Obj,
    init: list[ContainerView],
    containers: list[ContainerView],
    *,
    sandbox_ready: bool,
    pod_phase: str,
) -> list[Obj]:
    previous = (pod.get("status") or {}).get("conditions") or []
    scheduled = [c for c in previous if c.get("type") == "PodScheduled"]
    incomplete = [c.name for c in init if not c.initialized]
    unready = [c.name for c in init if c.restartable and not c.ready] + [
        c.name for c in containers if not c.ready
    ]
    completed = pod_phase in ("Succeeded", "Failed")
    out = [condition("PodReadyToStartContainers", sandbox_ready, previous)]
    out.append(
        condition(
            "Initialized",
            # once an app container has run, the pod stays initialized while sidecars restart
            not incomplete or pod_phase == "Succeeded" or any(c.has_run for c in containers),
            previous,
            "ContainersNotInitialized",
            f"containers with incomplete status: [{' '.join(incomplete)}]",
        )
    )
    ready_reason = "PodCompleted" if completed else "ContainersNotReady"
    ready_message = "" if completed else f"containers with unready status: [{' '.join(unready)}]"
    ready = not unready and not completed
    gates = [g.get("conditionType") for g in (pod.get("spec") or {}).get("readinessGates") or []]
    missing_gates = [
        g for g in gates if not any(c.get("type") == g and c.get("status") == "True" for c in previous)
    ]
    out.append(condition("ContainersReady", ready, previous, ready_reason, ready_message))
    if ready and missing_gates:
        out.append(
            condition(
                "Ready",
                False,
                previous,
                "ReadinessGatesNotReady",
                f'corresponding condition of pod readiness gate "{missing_gates[0]}" does not exist.',
            )
        )
    else:
        out.append(condition("Ready", ready, previous, ready_reason, ready_message))
    out += scheduled
    # conditions others own (readiness gates, an eviction's DisruptionTarget) are kept as they are
    out += [c for c in previous if c.get("type") not in KUBELET_CONDITIONS]
    return out
