"""In-place pod resize on the node: a running container's resources follow its spec.

A pod's container resources change through the ``resize`` subresource (the pod's generation
moves on). The pod worker notes the resources each container instance was started with; when
the spec asks for others, it either updates the running container's cgroup through the CRI's
``UpdateContainerResources`` or, when the container's ``resizePolicy`` says
``RestartContainer`` for a resource that changed, restarts the container with the new ones
(its restart count goes up, as upstream counts it). Either way the status then reports the
new values: ``allocatedResources`` (the requests the node has granted) and ``resources`` (the
requests and limits the container runs with), which is what upstream's resize tests compare
with the spec.

Limits that a resize removes are lifted: ``-1`` for the CFS quota and the memory limit (the
runtime ignores a zero, meaning "unset", in an update).
"""

from __future__ import annotations

from typing import Any

from k3py.agent.cri_config import CPU_PERIOD, linux_resources
from k3py.api.defaults import quantity_value

Obj = dict[str, Any]

RESIZABLE = ("cpu", "memory")
UNLIMITED = -1


def changed_resources(applied: Obj, wanted: Obj) -> set[str]:
    """The resizable resources whose request or limit differs between two ``resources``
    stanzas, comparing quantities by value (``1`` and ``1000m`` are the same)."""
    changed = set()
    for name in RESIZABLE:
        for kind in ("requests", "limits"):
            before = quantity_value(((applied or {}).get(kind) or {}).get(name))
            after = quantity_value(((wanted or {}).get(kind) or {}).get(name))
            if before != after:
                changed.add(name)
    return changed


def needs_restart(container: Obj, changed: set[str]) -> bool:
    """A changed resource whose ``resizePolicy`` is ``RestartContainer`` (the default is
    ``NotRequired``: the running container is updated in place)."""
    policies = {p.get("resourceName"): p.get("restartPolicy") for p in container.get("resizePolicy") or []}
    return any(policies.get(name) == "RestartContainer" for name in changed)


def update_request(container: Obj) -> Obj:
    """``LinuxContainerResources`` for ``UpdateContainerResources``: what a new container would
    get, with absent limits lifted rather than left as they were."""
    out = linux_resources(container)
    out.setdefault("cpu_period", CPU_PERIOD)
    out.setdefault("cpu_quota", UNLIMITED)
    out.setdefault("memory_limit_in_bytes", UNLIMITED)
    return out


def status_resources(applied: Obj) -> Obj:
    """A container status's ``resources``: the requests and limits its instance runs with."""
    out: Obj = {}
    for kind in ("requests", "limits"):
        values = {k: v for k, v in ((applied or {}).get(kind) or {}).items() if v is not None}
        if values:
            out[kind] = values
    return out


def allocated_resources(container: Obj) -> Obj | None:
    """A container status's ``allocatedResources``: the requests the node granted (the spec's,
    as this node admits every resize it is asked for), or None without requests."""
    requests = (container.get("resources") or {}).get("requests") or {}
    return dict(requests) or None
