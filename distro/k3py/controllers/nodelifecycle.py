"""The node lifecycle controller: node health from heartbeats, condition taints, taint-based eviction.

Health. Every ``node_monitor_period`` (5 s) each Node is looked at. A node shows it is alive
by renewing its Lease in ``kube-node-lease`` or by posting a new Ready heartbeat; the moment
the controller *observes* either (its own clock, as upstream, so clock skew does not matter)
is the node's last probe. A node not heard from for ``node_monitor_grace_period`` (50 s;
``node_startup_grace_period``, 60 s, while it never posted Ready) gets its Ready,
MemoryPressure, DiskPressure and PIDPressure conditions set to Unknown ("Kubelet stopped
posting node status."); when that turns a Ready node not ready, a ``NodeNotReady`` event is
recorded and its pods' Ready conditions are set to False (upstream's MarkPodsNotReady).

Taints follow the conditions: Ready=False gives ``node.kubernetes.io/not-ready`` and
Ready=Unknown ``node.kubernetes.io/unreachable``, each with NoSchedule and NoExecute; pressure
conditions, NetworkUnavailable and ``spec.unschedulable`` give their NoSchedule taints. They
are removed when the condition clears. (Upstream rate-limits the NoExecute taints per zone;
here they are applied at once.)

Eviction (upstream's taint eviction controller, run here under the same identity). A pod on
a node with NoExecute taints it does not tolerate is deleted at once, after a
``DisruptionTarget`` condition is added to its status; one that tolerates them all for a
limited ``tolerationSeconds`` is deleted when the shortest of those has passed since the
controller noticed, unless the taints go away first. The API server's DefaultTolerationSeconds
admission gives every pod 300 s for not-ready and unreachable.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from k3py.api.taints import tolerates
from k3py.client.informer import SharedInformers
from k3py.client.rest import ApiStatusError, RestClient
from k3py.controllers.base import Controller, Key
from k3py.controllers.objects import rfc3339

log = logging.getLogger(__name__)

Obj = dict[str, Any]

NODE_MONITOR_PERIOD = 5.0
NODE_MONITOR_GRACE_PERIOD = 50.0
NODE_STARTUP_GRACE_PERIOD = 60.0
LEASE_NAMESPACE = "kube-node-lease"
LEASES = f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases"

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
CONDITION_TAINTS = {
    ("Ready", "False"): NOT_READY,
    ("Ready", "Unknown"): UNREACHABLE,
    ("MemoryPressure", "True"): "node.kubernetes.io/memory-pressure",
    ("DiskPressure", "True"): "node.kubernetes.io/disk-pressure",
    ("NetworkUnavailable", "True"): "node.kubernetes.io/network-unavailable",
    ("PIDPressure", "True"): "node.kubernetes.io/pid-pressure",
}
"""The NoSchedule taint each (condition, status) brings."""
NO_SCHEDULE_KEYS = frozenset(CONDITION_TAINTS.values()) | {UNSCHEDULABLE}
NO_EXECUTE_KEYS = frozenset({NOT_READY, UNREACHABLE})
UNKNOWN_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
"""The conditions set to Unknown when a node stops posting its status."""


def condition(node: Obj, kind: str) -> Obj | None:
    for found in (node.get("status") or {}).get("conditions") or []:
        if found.get("type") == kind:
            return dict(found)
    return None


def ready_status(node: Obj | None) -> str:
    """The node's Ready status (``""`` when it never posted one)."""
    found = condition(node, "Ready") if node is not None else None
    return str(found.get("status") or "Unknown") if found is not None else ""


def mark_unknown(node: Obj, now: float) -> bool:
    """Set the node's conditions to Unknown in place, as upstream; whether anything changed."""
    status = node.setdefault("status", {})
    conditions = status.setdefault("conditions", [])
    stamp = rfc3339(now)
    changed = False
    for kind in UNKNOWN_CONDITIONS:
        found = next((c for c in conditions if c.get("type") == kind), None)
        if found is None:
            created = (node.get("metadata") or {}).get("creationTimestamp") or stamp
            conditions.append(
                {
                    "type": kind,
                    "status": "Unknown",
                    "reason": "NodeStatusNeverUpdated",
                    "message": "Kubelet never posted node status.",
                    "lastHeartbeatTime": created,
                    "lastTransitionTime": stamp,
                }
            )
            changed = True
        elif found.get("status") != "Unknown":
            found.update(
                status="Unknown",
                reason="NodeStatusUnknown",
                message="Kubelet stopped posting node status.",
                lastTransitionTime=stamp,
            )
            changed = True
    return changed


def desired_taints(node: Obj) -> set[tuple[str, str]]:
    """The (key, effect) taints this controller wants on the node, from its conditions."""
    wanted = set()
    for found in (node.get("status") or {}).get("conditions") or []:
        key = CONDITION_TAINTS.get((str(found.get("type")), str(found.get("status"))))
        if key is not None:
            wanted.add((key, "NoSchedule"))
            if key in NO_EXECUTE_KEYS:
                wanted.add((key, "NoExecute"))
    if (node.get("spec") or {}).get("unschedulable"):
        wanted.add((UNSCHEDULABLE, "NoSchedule"))
    return wanted


def managed_taint(taint: Obj) -> bool:
    key, effect = taint.get("key"), taint.get("effect")
    return (effect == "NoSchedule" and key in NO_SCHEDULE_KEYS) or (
        effect == "NoExecute" and key in NO_EXECUTE_KEYS
    )


def reconcile_taints(node: Obj, now: float) -> list[Obj] | None:
    """The node's taints with this controller's set as its conditions say, or ``None`` if right."""
    taints = list((node.get("spec") or {}).get("taints") or [])
    wanted = desired_taints(node)
    kept = [t for t in taints if not managed_taint(t) or (t.get("key"), t.get("effect")) in wanted]
    have = {(t.get("key"), t.get("effect")) for t in kept}
    added = []
    for key, effect in sorted(wanted - have):
        taint: Obj = {"key": key, "effect": effect}
        if effect == "NoExecute":
            taint["timeAdded"] = rfc3339(now)
        added.append(taint)
    if not added and len(kept) == len(taints):
        return None
    return kept + added


def no_execute_taints(node: Obj | None) -> list[Obj]:
    if node is None:
        return []
    return [t for t in (node.get("spec") or {}).get("taints") or [] if t.get("effect") == "NoExecute"]


def eviction_delay(pod: Obj, taints: list[Obj]) -> float | None:
    """Seconds the pod may stay on a node with these NoExecute taints; ``None``: for ever.

    Each taint is matched by the first toleration that tolerates it; an untolerated taint means
    0; the delay is the smallest ``tolerationSeconds`` of the matching tolerations (one
    without it tolerates for ever).
    """
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    used = []
    for taint in taints:
        match = next((t for t in tolerations if tolerates(t, taint)), None)
        if match is None:
            return 0.0
        used.append(match)
    limits = [float(t["tolerationSeconds"]) for t in used if t.get("tolerationSeconds") is not None]
    if not limits:
        return None
    return max(0.0, min(limits))


@dataclass
class NodeHealth:
    heartbeat: str
    """The Ready condition's lastHeartbeatTime last seen."""
    renew: str
    """The Lease's renewTime last seen."""
    probe: float
    """When (monotonic) the node last showed a sign of life."""


@dataclass
class Eviction:
    noticed: float
    at: float


class NodeLifecycleController(Controller):
    """Marks silent nodes Unknown, taints nodes by condition, evicts pods from NoExecute nodes."""

    name = "nodelifecycle"
    identity = "node-controller"

    def __init__(
        self,
        api: RestClient,
        informers: SharedInformers | None = None,
        *,
        node_monitor_period: float = NODE_MONITOR_PERIOD,
        node_monitor_grace_period: float = NODE_MONITOR_GRACE_PERIOD,
        node_startup_grace_period: float = NODE_STARTUP_GRACE_PERIOD,
    ) -> None:
        super().__init__(api, informers)
        self.monitor_period = node_monitor_period
        self.grace_period = node_monitor_grace_period
        self.startup_grace_period = node_startup_grace_period
        self.nodes = self.informer("/api/v1/nodes")
        self.leases = self.informer(LEASES)
        self.pods = self.informer("/api/v1/pods")
        self.health: dict[str, NodeHealth] = {}
        self.evictions: dict[Key, Eviction] = {}
        self._pods_to_mark: set[str] = set()
        self._evicted: dict[Key, str] = {}
        """Pods deleted by eviction (their uid) that the cache still shows alive."""
        self.on(self.nodes, self._node_changed)
        self.on(self.leases, lambda old, new: self._lease_changed(new or old))
        self.on(self.pods, lambda old, new: self.enqueue(new or old))

    # -- informer handlers -----------------------------------------------------------------------

    def _node_changed(self, old: Obj | None, new: Obj | None) -> None:
        node = new or old
        if node is None:
            return
        name = str(node["metadata"]["name"])
        self.queue.add(("", name))
        if (
            new is None
            or no_execute_taints(old) != no_execute_taints(new)
            or ready_status(old) != ready_status(new)
        ):
            for pod in self._pods_on(name):
                self.enqueue(pod)

    def _lease_changed(self, lease: Obj | None) -> None:
        if lease is not None:
            self.queue.add(("", str(lease["metadata"]["name"])))

    def _pods_on(self, node: str) -> list[Obj]:
        return [p for p in self.pods.items() if (p.get("spec") or {}).get("nodeName") == node]

    async def sync(self, key: Key) -> None:
        if key[0] == "":
            await self._sync_node(key[1])
        else:
            await self._sync_pod(key)

    # -- nodes -----------------------------------------------------------------------------------

    async def _sync_node(self, name: str) -> None:
        node = self.nodes.get("", name)
        if node is None:
            self.health.pop(name, None)
            self._pods_to_mark.discard(name)
            return
        now = time.monotonic()
        before = ready_status(node)
        if name not in self.health:
            await self._node_event(node, "Normal", "RegisteredNode", f"Registered Node {name} in Controller")
        if self._silent(node, now):
            node = await self._mark_unknown(node)
            if before == "True" and ready_status(node) != "True":
                await self._node_event(
                    node, "Normal", "NodeNotReady", f"Node {name} status is now: NodeNotReady"
                )
                self._pods_to_mark.add(name)
        if name in self._pods_to_mark:
            for pod in self._pods_on(name):
                await self._mark_pod_not_ready(pod)
            self._pods_to_mark.discard(name)
        taints = reconcile_taints(node, time.time())
        if taints is not None:
            await self.api.patch(
                f"/api/v1/nodes/{name}",
                {
                    "metadata": {"resourceVersion": node["metadata"].get("resourceVersion")},
                    "spec": {"taints": taints},
                },
            )
        self.queue.add_after(("", name), self.monitor_period)

    def _silent(self, node: Obj, now: float) -> bool:
        """Record the node's signs of life; whether it has been silent past its grace period."""
        name = str(node["metadata"]["name"])
        ready = condition(node, "Ready")
        heartbeat = str((ready or {}).get("lastHeartbeatTime") or "")
        lease = self.leases.get(LEASE_NAMESPACE, name)
        renew = str(((lease or {}).get("spec") or {}).get("renewTime") or "")
        health = self.health.get(name)
        if health is None:
            self.health[name] = NodeHealth(heartbeat, renew, now)
            return False
        if heartbeat != health.heartbeat:
            health.heartbeat, health.probe = heartbeat, now
        if renew and renew != health.renew:
            health.renew, health.probe = renew, now
        grace = self.startup_grace_period if ready is None else self.grace_period
        return now > health.probe + grace

    async def _mark_unknown(self, node: Obj) -> Obj:
        updated = {**node, "status": {**(node.get("status") or {})}}
        updated["status"]["conditions"] = [dict(c) for c in updated["status"].get("conditions") or []]
        if not mark_unknown(updated, time.time()):
            return node
        name = node["metadata"]["name"]
        log.info("node %s stopped posting its status: its conditions are now Unknown", name)
        return await self.api.update(f"/api/v1/nodes/{name}/status", updated)

    async def _mark_pod_not_ready(self, pod: Obj) -> None:
        """Upstream's MarkPodsNotReady for one pod: its Ready condition becomes False."""
        ready = next(
            (c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), None
        )
        if ready is None or ready.get("status") == "False":
            return
        meta = pod["metadata"]
        patch = {
            "status": {"conditions": [dict(ready, status="False", lastTransitionTime=rfc3339(time.time()))]}
        }
        try:
            await self.api.patch(
                f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status", patch, "strategic"
            )
        except ApiStatusError as exc:
            if exc.code == 404:
                return
            raise
        await self._pod_event(pod, "Warning", "NodeNotReady", "Node is not ready")

    # -- pods ------------------------------------------------------------------------------------

    async def _sync_pod(self, key: Key) -> None:
        pod = self.pods.get(*key)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            self.evictions.pop(key, None)
            self._evicted.pop(key, None)
            return
        if self._evicted.get(key) == pod["metadata"].get("uid"):
            return  # deleted already; the cache has not seen it yet
        node_name = str((pod.get("spec") or {}).get("nodeName") or "")
        node = self.nodes.get("", node_name) if node_name else None
        if node is None:
            await self._cancel(pod, key)
            return
        if node_name in self.health and ready_status(node) not in ("", "True"):
            await self._mark_pod_not_ready(pod)
        taints = no_execute_taints(node)
        if not taints:
            await self._cancel(pod, key)
            return
        delay = eviction_delay(pod, taints)
        if delay is None:
            await self._cancel(pod, key)
            return
        now = time.monotonic()
        scheduled = self.evictions.get(key)
        noticed = scheduled.noticed if scheduled is not None else now
        self.evictions[key] = Eviction(noticed, noticed + delay)
        if now < noticed + delay:
            self.queue.add_after(key, noticed + delay - now)
            return
        await self._evict(pod, key)

    async def _cancel(self, pod: Obj, key: Key) -> None:
        if self.evictions.pop(key, None) is not None:
            name = f"{key[0]}/{key[1]}"
            await self._pod_event(pod, "Normal", "TaintManagerEviction", f"Cancelling deletion of Pod {name}")

    async def _evict(self, pod: Obj, key: Key) -> None:
        namespace, name = key
        path = f"/api/v1/namespaces/{namespace}/pods/{name}"
        await self._pod_event(
            pod, "Normal", "TaintManagerEviction", f"Marking for deletion Pod {namespace}/{name}"
        )
        target = {
            "type": "DisruptionTarget",
            "status": "True",
            "reason": "DeletionByTaintManager",
            "message": "Taint manager: deleting due to NoExecute taint",
            "lastTransitionTime": rfc3339(time.time()),
        }
        try:
            await self.api.patch(f"{path}/status", {"status": {"conditions": [target]}}, "strategic")
            await self.api.delete(path)
        except ApiStatusError as exc:
            if exc.code != 404:
                raise
        log.info("evicted pod %s/%s from its NoExecute-tainted node", namespace, name)
        self.evictions.pop(key, None)
        self._evicted[key] = str(pod["metadata"].get("uid"))

    # -- events ----------------------------------------------------------------------------------

    async def _node_event(self, node: Obj, kind: str, reason: str, message: str) -> None:
        name = node["metadata"]["name"]
        ref = {"kind": "Node", "apiVersion": "v1", "name": name, "uid": node["metadata"].get("uid") or name}
        await self._event(ref, kind, reason, message, "node-controller")

    async def _pod_event(self, pod: Obj, kind: str, reason: str, message: str) -> None:
        meta = pod["metadata"]
        ref = {
            "kind": "Pod",
            "apiVersion": "v1",
            "namespace": meta.get("namespace"),
            "name": meta.get("name"),
            "uid": meta.get("uid"),
        }
        component = "taint-eviction-controller" if reason == "TaintManagerEviction" else "node-controller"
        await self._event(ref, kind, reason, message, component)

    async def _event(self, ref: Obj, kind: str, reason: str, message: str, component: str) -> None:
        """Record an event; one that cannot be written is logged, never fails the caller."""
        namespace = ref.get("namespace") or "default"
        stamp = rfc3339(time.time())
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{ref['name']}.{uuid.uuid4().hex[:16]}", "namespace": namespace},
            "involvedObject": ref,
            "reason": reason,
            "message": message,
            "type": kind,
            "source": {"component": component},
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "reportingComponent": component,
            "reportingInstance": "",
        }
        try:
            await self.api.create(f"/api/v1/namespaces/{namespace}/events", body)
        except ApiStatusError as exc:
            log.info("cannot record event %s %s: %s", reason, message, exc)
