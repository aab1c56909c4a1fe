"""The scheduler's loop: watch nodes and pods, place pending pods, bind them, say why not.

Informers keep nodes and all pods in memory (shared with the controllers when the server passes
its ``SharedInformers``: one watch and one cache of each for both). Pending pods that are ours
(``spec.schedulerName``), unbound and not terminating go into the :class:`SchedulingQueue`;
node changes and pod deletions that may free room retry the unschedulable ones, and a pod
placed or relabelled retries those that wait for other pods (pod affinity, topology spread).
One pod at a time is taken from the queue and scheduled against the node cache (``cache``),
which the informer handlers keep current:

Pods with ``spec.schedulingGates`` wait outside the queue until their gates are removed (upstream's
SchedulingGates pre-enqueue check; their ``SchedulingGated`` condition is not written).

1. every node is filtered (``cycle``: ``plugins.FILTERS``, PodTopologySpread, InterPodAffinity);
   no feasible node means a ``FailedScheduling`` Warning event whose message is upstream's
   (``0/N nodes are available: ...``), the pod's ``PodScheduled`` condition set to
   False/Unschedulable, and the pod parked as unschedulable;
2. feasible nodes are scored and the best wins (ties broken at random, as upstream);
3. the pod is *assumed* on the node (the cache counts it there, so the next pods do not
   count its room as free) and handed to one of ``BINDERS`` binding tasks, which binds it
   through ``POST .../pods/{name}/binding`` and records a ``Scheduled`` Normal event saying
   where, while the loop goes on with the next pod (upstream's asynchronous binding cycle).
   The assumption holds until the pod informer shows the binding; a binding that fails
   drops it, and the pod is retried after its backoff (or forgotten if it is gone).

When no node fits, preemption (``preemption``) may find a node where evicting pods of lower
priority makes room: the pod's ``status.nominatedNodeName`` is set to it (with the
``PodScheduled`` condition), each victim gets a ``DisruptionTarget`` condition (reason
``PreemptionByScheduler``) and is deleted gracefully, and a ``Preempted`` event names the
preemptor. The pod stays queued; the victims' deletion retries it, and while it waits its
nominated node's room is kept for it against pods of lower priority.

Namespaces, Services, workload controllers and PodDisruptionBudgets are watched too: pod
affinity, topology spreading's default constraints and preemption read them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from k3py.aio.supervisor import Supervisor
from k3py.api import objects
from k3py.client.informer import SharedInformers
from k3py.client.rest import ApiStatusError, RestClient
from k3py.scheduler import plugins, resources
from k3py.scheduler.cache import NodeCache
from k3py.scheduler.cluster import Cluster, ControllerKey
from k3py.scheduler.cycle import Unschedulable, find_node
from k3py.scheduler.preemption import PREEMPTION_REASON, Candidate, nominated_node
from k3py.scheduler.queue import Key, QueuedPod, SchedulingQueue
from k3py.scheduler.resources import NodeInfo

log = logging.getLogger(__name__)

Obj = dict[str, Any]
DEFAULT_SCHEDULER = "default-scheduler"
TERMINAL_PHASES = ("Succeeded", "Failed")
CONTROLLERS = {
    "ReplicationController": "/api/v1/replicationcontrollers",
    "ReplicaSet": "/apis/apps/v1/replicasets",
    "StatefulSet": "/apis/apps/v1/statefulsets",
}
"""Workload controllers whose selectors make PodTopologySpread's default selector."""
BINDERS = 8
"""Bindings (with their events) in flight at once."""


@dataclass(frozen=True)
class _Binding:
    queued: QueuedPod
    pod: Obj
    node: str


@dataclass
class _LastEvent:
    name: str
    reason: str
    message: str
    count: int


class Scheduler:
    def __init__(
        self,
        api: RestClient,
        *,
        name: str = DEFAULT_SCHEDULER,
        queue: SchedulingQueue | None = None,
        rng: random.Random | None = None,
        informers: SharedInformers | None = None,
    ) -> None:
        """``informers``: shared ones to read the cluster through (their objects are not to be
        changed); by default the scheduler's own, listing and watching as ``api``."""
        self.api = api
        self.name = name
        self.queue = queue if queue is not None else SchedulingQueue()
        shared = informers if informers is not None else SharedInformers(api)
        self.nodes = shared.informer("/api/v1/nodes")
        self.pods = shared.informer("/api/v1/pods")
        self.namespaces = shared.informer("/api/v1/namespaces")
        self.services = shared.informer("/api/v1/services")
        self.pdbs = shared.informer("/apis/policy/v1/poddisruptionbudgets")
        self.controllers = {kind: shared.informer(path) for kind, path in CONTROLLERS.items()}
        self._rng = rng if rng is not None else random.Random()
        self.cache = NodeCache()
        self._assumed: dict[Key, str] = {}
        self._nominated: dict[Key, Obj] = {}
        """Unbound pods with ``status.nominatedNodeName``."""
        self._events: dict[Key, _LastEvent] = {}
        self._bindings: asyncio.Queue[_Binding] = asyncio.Queue(maxsize=BINDERS)

    async def run(self) -> None:
        """Schedule until cancelled; a crash of the loop or an informer ends it."""
        self.nodes.add_handler(self.on_node_change)
        self.pods.add_handler(self.on_pod_change)
        try:
            async with Supervisor(f"scheduler-{self.name}") as tasks:
                tasks.spawn("nodes", self.nodes.run())
                tasks.spawn("pods", self.pods.run())
                tasks.spawn("namespaces", self.namespaces.run())
                tasks.spawn("services", self.services.run())
                tasks.spawn("pdbs", self.pdbs.run())
                for kind, informer in self.controllers.items():
                    tasks.spawn(kind, informer.run())
                for index in range(BINDERS):
                    tasks.spawn(f"binder-{index}", self._binder())
                tasks.spawn("loop", self._loop())
                raise await tasks.wait_failed()
        finally:
            self.nodes.remove_handler(self.on_node_change)
            self.pods.remove_handler(self.on_pod_change)

    async def _loop(self) -> None:
        await self.nodes.synced()
        await self.pods.synced()
        log.info("scheduler %s: caches synced, scheduling", self.name)
        while True:
            queued = await self.queue.pop()
            try:
                await self.schedule_one(queued)
            except ApiStatusError as exc:
                log.warning("scheduling %s/%s: %s", *queued.key, exc)
                self.queue.failed(queued)
            except Exception:
                # One malformed object must not stop scheduling for everyone: back it off.
                log.exception("scheduling %s/%s failed", *queued.key)
                self.queue.failed(queued)

    # -- informer events --------------------------------------------------------------------

    def wants(self, pod: Obj) -> bool:
        """Ours, unbound, not gated, not terminating, not finished."""
        spec = pod.get("spec") or {}
        return (
            (spec.get("schedulerName") or DEFAULT_SCHEDULER) == self.name
            and not spec.get("nodeName")
            and not spec.get("schedulingGates")
            and not (pod.get("metadata") or {}).get("deletionTimestamp")
            and (pod.get("status") or {}).get("phase") not in TERMINAL_PHASES
        )

    def on_pod_change(self, old: Obj | None, new: Obj | None) -> None:
        """Queue what became pending, forget what got bound or went away, and retry the
        unschedulable when a pod's room is freed. The scheduler's own status writes do not
        requeue a pod."""
        if new is None:
            assert old is not None
            key = _key(old)
            self.queue.delete(key)
            self._assumed.pop(key, None)
            self._nominated.pop(key, None)
            self.cache.forget(key)
            self._events.pop(key, None)
            if _assigned(old):
                self.queue.move_all()  # its room is free
            return
        key = _key(new)
        self._track(key, new)
        if self.wants(new):
            if old is None or _spec_changed(old, new):
                self.queue.add(key, plugins.priority(new))
            return
        self.queue.delete(key)
        if _assigned(new):
            self._assumed.pop(key, None)
            if old is not None and _phase(new) in TERMINAL_PHASES and _phase(old) not in TERMINAL_PHASES:
                self.queue.move_all()
            elif old is None or not _assigned(old) or _labels(old) != _labels(new):
                self._retry_pod_dependent()

    def _track(self, key: Key, pod: Obj) -> None:
        """Count the pod on its node (bound or assumed) while it is not finished; note its
        nomination while it is unbound."""
        node = (pod.get("spec") or {}).get("nodeName") or self._assumed.get(key)
        if node and _phase(pod) not in TERMINAL_PHASES:
            self.cache.place(key, str(node), pod)
        else:
            self.cache.forget(key)
        if nominated_node(pod) and not _assigned(pod):
            self._nominated[key] = pod
        else:
            self._nominated.pop(key, None)

    def _retry_pod_dependent(self) -> None:
        """A pod was placed or relabelled: retry the pods whose fit depends on other pods
        (required pod affinity, topology spread constraints), not those waiting for room."""
        waiting = []
        for key in self.queue.unschedulable_keys():
            pod = self.pods.get(*key)
            spec = (pod or {}).get("spec") or {}
            if spec.get("topologySpreadConstraints") or (spec.get("affinity") or {}).get("podAffinity"):
                waiting.append(key)
        if waiting:
            self.queue.move(waiting)

    def on_node_change(self, old: Obj | None, new: Obj | None) -> None:
        """A new node, or a change of what scheduling reads (not a heartbeat), retries the
        unschedulable."""
        if new is None:
            if old is not None:
                self.cache.remove_node(_name(old))
            return
        self.cache.set_node(new)
        if old is None or _node_changed(old, new):
            self.queue.move_all()

    # -- one pod ----------------------------------------------------------------------------

    def snapshot(self) -> list[NodeInfo]:
        """Every node with the pods assigned (or assumed) to it, from the cache."""
        return self.cache.snapshot()

    def cluster(self) -> Cluster:
        """What the cycle reads besides nodes and their pods."""
        controllers: dict[ControllerKey, Obj] = {}
        for kind, informer in self.controllers.items():
            for obj in informer.items():
                meta = obj.get("metadata") or {}
                controllers[(kind, str(meta.get("namespace") or ""), str(meta.get("name") or ""))] = obj
        nominated = [
            pod
            for key, pod in self._nominated.items()
            if key not in self._assumed and not (pod.get("metadata") or {}).get("deletionTimestamp")
        ]
        return Cluster(
            namespaces={
                _name(ns): (ns.get("metadata") or {}).get("labels") or {} for ns in self.namespaces.items()
            },
            services=self.services.items(),
            controllers=controllers,
            pdbs=self.pdbs.items(),
            nominated=nominated,
        )

    async def schedule_one(self, queued: QueuedPod) -> None:
        pod = self.pods.get(*queued.key)
        if pod is None or not self.wants(pod) or queued.key in self._assumed:
            self.queue.done(queued)
            return
        with resources.memoized():
            result = find_node(pod, self.snapshot(), self._rng, self.cluster())
        if isinstance(result, Unschedulable):
            log.info("pod %s/%s is unschedulable: %s", *queued.key, result.message)
            nominate: str | None = None
            outcome = result.preemption
            if outcome is not None and outcome.candidate is not None:
                await self._preempt(pod, outcome.candidate)
                nominate = outcome.candidate.node
            elif outcome is not None and outcome.clear_nomination and nominated_node(pod):
                nominate = ""
            await self._unschedulable(pod, result.message, nominate)
            self.queue.unschedulable(queued)
            return
        self._assumed[queued.key] = result.node
        self.cache.place(queued.key, result.node, pod)
        await self._bindings.put(_Binding(queued, pod, result.node))

    async def _binder(self) -> None:
        """Bind the pods the loop has assumed, one at a time (``BINDERS`` of these run)."""
        while True:
            binding = await self._bindings.get()
            try:
                await self.bind(binding.queued, binding.pod, binding.node)
            except Exception:
                log.exception("binding %s/%s failed", *binding.queued.key)
                self._unassume(binding.queued.key)
                self.queue.failed(binding.queued)

    async def bind(self, queued: QueuedPod, pod: Obj, node: str) -> None:
        """The binding cycle of a pod assumed on ``node``."""
        try:
            await self._bind(pod, node)
        except ApiStatusError as exc:
            self._unassume(queued.key)
            message = f'running Bind plugin "DefaultBinder": {exc}'
            log.warning("pod %s/%s: %s", *queued.key, message)
            await self._event(pod, "Warning", "FailedScheduling", message, "Scheduling")
            if exc.code == 404:
                self.queue.done(queued)  # the pod is gone
            else:
                self.queue.failed(queued)  # retried after backoff, unless the informer shows it bound
            return
        if _assigned(self.pods.get(*queued.key) or {}):
            self._assumed.pop(queued.key, None)  # the informer has shown the binding already
        self.queue.done(queued)
        namespace, name = queued.key
        log.info("pod %s/%s scheduled to %s", namespace, name, node)
        await self._event(
            pod, "Normal", "Scheduled", f"Successfully assigned {namespace}/{name} to {node}", "Binding"
        )

    def _unassume(self, key: Key) -> None:
        """The binding did not happen: count the pod as the informer shows it."""
        if self._assumed.pop(key, None) is None:
            return
        current = self.pods.get(*key)
        if current is None:
            self.cache.forget(key)
        else:
            self._track(key, current)

    async def _bind(self, pod: Obj, node: str) -> None:
        meta = pod["metadata"]
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta.get("uid")},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }
        await self.api.create(f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/binding", binding)

    async def _preempt(self, pod: Obj, candidate: Candidate) -> None:
        """``prepareCandidate``: mark, delete and report each victim, then drop the nominations
        of lower-priority pods to the node (they may no longer fit there)."""
        scheduler = (pod.get("spec") or {}).get("schedulerName") or DEFAULT_SCHEDULER
        uid = (pod.get("metadata") or {}).get("uid", "")
        condition = {
            "type": "DisruptionTarget",
            "status": "True",
            "reason": PREEMPTION_REASON,
            "message": f"{scheduler}: preempting to accommodate a higher priority pod",
            "lastTransitionTime": objects.now(),
        }
        for victim in candidate.victims:
            meta = victim["metadata"]
            path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}"
            log.info(
                "preempting %s/%s on %s for %s/%s",
                meta["namespace"],
                meta["name"],
                candidate.node,
                *_key(pod),
            )
            try:
                if not _has_condition(victim, condition):
                    await self.api.patch(
                        f"{path}/status", {"status": {"conditions": [condition]}}, patch_type="strategic"
                    )
                await self.api.delete(path)
            except ApiStatusError as exc:
                if exc.code != 404:
                    raise
                continue  # already gone
            await self._event(
                victim,
                "Normal",
                "Preempted",
                f"Preempted by pod {uid} on node {candidate.node}",
                "Preempting",
                related=pod,
            )
        mine = plugins.priority(pod)
        for other in self.cluster().nominated:
            if nominated_node(other) == candidate.node and plugins.priority(other) < mine:
                meta = other["metadata"]
                with contextlib.suppress(ApiStatusError):
                    await self.api.patch(
                        f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status",
                        {"status": {"nominatedNodeName": None}},
                    )

    async def _unschedulable(self, pod: Obj, message: str, nominate: str | None = None) -> None:
        """Report the failure; ``nominate`` sets (or, "", clears) ``status.nominatedNodeName``."""
        await self._event(pod, "Warning", "FailedScheduling", message, "Scheduling")
        conditions = (pod.get("status") or {}).get("conditions") or []
        current: Obj = next((c for c in conditions if c.get("type") == "PodScheduled"), {})
        if (current.get("status"), current.get("reason"), current.get("message")) == (
            "False",
            "Unschedulable",
            message,
        ) and (nominate is None or nominate == nominated_node(pod)):
            return
        meta = pod["metadata"]
        condition = {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": message,
            "lastProbeTime": None,
            "lastTransitionTime": current.get("lastTransitionTime")
            if current.get("status") == "False"
            else objects.now(),
        }
        status: Obj = {"conditions": [condition]}
        if nominate is not None:
            status["nominatedNodeName"] = nominate or None
        try:
            await self.api.patch(
                f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status",
                {"status": status},
                patch_type="strategic",
            )
        except ApiStatusError as exc:
            log.warning(
                "pod %s/%s: cannot record PodScheduled=False: %s", meta["namespace"], meta["name"], exc
            )

    async def _event(
        self, pod: Obj, kind: str, reason: str, message: str, action: str, *, related: Obj | None = None
    ) -> None:
        """A core/v1 Event about the pod; a repeat of the last one counts up instead."""
        meta = pod["metadata"]
        namespace, key, now = meta["namespace"], _key(pod), objects.now()
        last = self._events.get(key)
        if last is not None and (last.reason, last.message) == (reason, message):
            try:
                await self.api.patch(
                    f"/api/v1/namespaces/{namespace}/events/{last.name}",
                    {"count": last.count + 1, "lastTimestamp": now},
                )
                last.count += 1
                return
            except ApiStatusError as exc:
                if exc.code != 404:
                    log.warning("cannot update event %s/%s: %s", namespace, last.name, exc)
                    return
        name = f"{meta['name']}.{time.time_ns():x}"
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "namespace": namespace,
                "name": meta["name"],
                "uid": meta.get("uid", ""),
                "resourceVersion": meta.get("resourceVersion", ""),
            },
            "reason": reason,
            "message": message,
            "type": kind,
            "source": {"component": self.name},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "action": action,
            "reportingComponent": self.name,
            "reportingInstance": self.name,
        }
        if related is not None:
            rmeta = related.get("metadata") or {}
            event["related"] = {
                "apiVersion": "v1",
                "kind": "Pod",
                "namespace": rmeta.get("namespace", ""),
                "name": rmeta.get("name", ""),
                "uid": rmeta.get("uid", ""),
            }
        try:
            await self.api.create(f"/api/v1/namespaces/{namespace}/events", event)
        except ApiStatusError as exc:
            log.warning("cannot record event %s for %s/%s: %s", reason, namespace, meta["name"], exc)
            return
        self._events[key] = _LastEvent(name, reason, message, 1)


def _has_condition(pod: Obj, wanted: Obj) -> bool:
    return any(
        all(c.get(k) == wanted[k] for k in ("type", "status", "reason"))
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def _labels(obj: Obj) -> Obj:
    return dict((obj.get("metadata") or {}).get("labels") or {})


def _name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def _key(pod: Obj) -> Key:
    meta = pod.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _assigned(pod: Obj) -> bool:
    return bool((pod.get("spec") or {}).get("nodeName"))


def _phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


_IGNORED_META = ("resourceVersion", "generation", "managedFields")


def _spec_changed(old: Obj, new: Obj) -> bool:
    """``isPodUpdated``: a change beyond status and bookkeeping (the scheduler's own status
    writes must not requeue the pod)."""

    def strip(pod: Obj) -> Obj:
        meta = {k: v for k, v in (pod.get("metadata") or {}).items() if k not in _IGNORED_META}
        return {**{k: v for k, v in pod.items() if k != "status"}, "metadata": meta}

    return strip(old) != strip(new)


def _node_changed(old: Obj, new: Obj) -> bool:
    """What scheduling reads from a node: not its heartbeats."""

    def view(node: Obj) -> tuple[Any, ...]:
        status: Mapping[str, Any] = node.get("status") or {}
        ready = [c.get("status") for c in status.get("conditions") or [] if c.get("type") == "Ready"]
        return (
            (node.get("metadata") or {}).get("labels"),
            node.get("spec"),
            status.get("allocatable") or status.get("capacity"),
            ready,
            status.get("images"),
        )

    return view(old) != view(new)
