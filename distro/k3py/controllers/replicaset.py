"""ReplicaSets and ReplicationControllers: keep ``spec.replicas`` pods from the template running.

One implementation serves both resources, as upstream's ReplicationManager is the ReplicaSet
controller run over ReplicationControllers (:class:`Workload` says which resource and how its
selector reads). A sync, for one owner:

1. *claims* the active pods of its namespace (not terminating, not finished): pods it controls
   and still selects are kept, pods it controls but no longer selects are released (the
   controller reference is patched away), orphans it selects are adopted (the reference is
   patched in, after a fresh read proves the owner is not being deleted);
2. if the creations and deletions of earlier syncs have all been seen by the pod informer
   (upstream's *expectations*), creates the missing pods in slow-start batches (1, 2, 4, ...:
   an error stops the rest) or deletes the surplus, preferring unscheduled, pending, not-ready,
   doubled-up, recently-ready, often-restarted and newer pods, as ``ActivePodsWithRanks`` does;
3. writes the status (replicas, fullyLabeledReplicas, readyReplicas, availableReplicas after
   ``minReadySeconds``, observedGeneration, and a ``ReplicaFailure`` condition while creating or
   deleting fails) and records ``SuccessfulCreate``/``SuccessfulDelete``/``FailedCreate`` events.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import ClassVar

from k3py.api import objects
from k3py.api.selectors import (
    LabelSelector,
    SelectorError,
    from_label_selector_object,
    label_selector_from_set,
)
from k3py.client.events import EventRecorder
from k3py.client.informer import SharedInformers
from k3py.client.rest import ApiStatusError, RestClient
from k3py.controllers.base import Controller, Key, Obj
from k3py.controllers.claims import PodClaims, index_by_controller, owners_selecting, pods_of
from k3py.controllers.objects import (
    controller_ref,
    deleting,
    labels_of,
    meta_of,
    owner_reference,
    parse_time,
    pod_active,
    pod_available,
    pod_ready,
    pod_ready_time,
    uid_of,
)

log = logging.getLogger(__name__)

BURST_REPLICAS = 500
"""At most this many pods are created or deleted by one sync (upstream's ``burstReplicas``)."""
SLOW_START_INITIAL_BATCH = 1
EXPECTATIONS_TIMEOUT = 300.0
"""Expectations not met within five minutes are dropped (a watch event was lost)."""
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
_PHASE_ORDINAL = {"Pending": 0, "Unknown": 1, "Running": 2}


# -- objects ------------------------------------------------------------------------------------


def pod_from_template(owner: Obj, api_version: str, kind: str, template: Obj) -> Obj:
    """The pod a controller creates from its template (``GetPodFromTemplate``)."""
    template_meta = template.get("metadata") or {}
    pod_meta: Obj = {
        "generateName": f"{meta_of(owner)['name']}-",
        "namespace": meta_of(owner).get("namespace") or "default",
        "ownerReferences": [owner_reference(owner, api_version, kind)],
    }
    for name in ("labels", "annotations", "finalizers"):
        if template_meta.get(name):
            pod_meta[name] = copy.deepcopy(template_meta[name])
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": pod_meta,
        "spec": copy.deepcopy(template.get("spec") or {}),
    }


def slow_start_batches(count: int, initial: int = SLOW_START_INITIAL_BATCH) -> list[int]:
    """The batch sizes ``slowStartBatch`` uses for ``count`` calls: 1, 2, 4, ... up to the rest."""
    batches: list[int] = []
    size = min(count, initial)
    remaining = count
    while size > 0:
        batches.append(size)
        remaining -= size
        size = min(2 * size, remaining)
    return batches


# -- which pods go first ------------------------------------------------------------------------


@dataclass(frozen=True)
class RankedPod:
    pod: Obj
    rank: int
    """How many related pods share its node: doubled-up pods go first."""


def _deletion_cost(pod: Obj) -> int:
    try:
        return int((meta_of(pod).get("annotations") or {}).get(DELETION_COST, 0))
    except ValueError:
        return 0


def _max_restarts(pod: Obj) -> tuple[int, int]:
    status = pod.get("status") or {}
    regular = max((int(c.get("restartCount") or 0) for c in status.get("containerStatuses") or []), default=0)
    sidecars = {
        c.get("name")
        for c in (pod.get("spec") or {}).get("initContainers") or []
        if c.get("restartPolicy") == "Always"
    }
    sidecar = max(
        (
            int(c.get("restartCount") or 0)
            for c in status.get("initContainerStatuses") or []
            if c.get("name") in sidecars
        ),
        default=0,
    )
    return regular, sidecar


def _log_rank(seconds_ago: float) -> int:
    return int(math.log2(seconds_ago * 1e9)) if seconds_ago > 0 else -1


def _newer_first(t1: float | None, t2: float | None, uid1: str, uid2: str, now: float) -> bool:
    """Upstream's logarithmic comparison: times in the same power-of-two bucket tie, broken by UID."""
    if t1 is None or t2 is None:
        return t1 is None
    diff = _log_rank(now - t1) - _log_rank(now - t2)
    if diff == 0:
        return uid1 < uid2
    return diff < 0


def _deleted_before(a: RankedPod, b: RankedPod, now: float) -> bool:
    """``ActivePodsWithRanks.Less``: whether ``a`` is a better pod to delete than ``b``."""
    pa, pb = a.pod, b.pod
    na, nb = (pa.get("spec") or {}).get("nodeName") or "", (pb.get("spec") or {}).get("nodeName") or ""
    if na != nb and (not na or not nb):
        return not na
    phase_a = _PHASE_ORDINAL.get((pa.get("status") or {}).get("phase") or "", 0)
    phase_b = _PHASE_ORDINAL.get((pb.get("status") or {}).get("phase") or "", 0)
    if phase_a != phase_b:
        return phase_a < phase_b
    if pod_ready(pa) != pod_ready(pb):
        return not pod_ready(pa)
    if _deletion_cost(pa) != _deletion_cost(pb):
        return _deletion_cost(pa) < _deletion_cost(pb)
    if a.rank != b.rank:
        return a.rank > b.rank
    if pod_ready(pa) and pod_ready(pb):
        ra, rb = pod_ready_time(pa), pod_ready_time(pb)
        if ra != rb:
            return _newer_first(ra, rb, uid_of(pa), uid_of(pb), now)
    restarts_a, restarts_b = _max_restarts(pa), _max_restarts(pb)
    if restarts_a != restarts_b:
        return restarts_a > restarts_b
    ca = parse_time(meta_of(pa).get("creationTimestamp"))
    cb = parse_time(meta_of(pb).get("creationTimestamp"))
    if ca != cb:
        return _newer_first(ca, cb, uid_of(pa), uid_of(pb), now)
    return False


def pods_to_delete(
    pods: list[Obj], related: Iterable[Obj], count: int, now: float | None = None
) -> list[Obj]:
    """The ``count`` pods to delete first (``getPodsToDelete``)."""
    if count >= len(pods):
        return list(pods)
    on_node: dict[str, int] = {}
    for pod in related:
        if pod_active(pod):
            node = (pod.get("spec") or {}).get("nodeName") or ""
            on_node[node] = on_node.get(node, 0) + 1
    ranked = [RankedPod(p, on_node.get((p.get("spec") or {}).get("nodeName") or "", 0)) for p in pods]
    moment = time.time() if now is None else now

    def compare(a: RankedPod, b: RankedPod) -> int:
        if _deleted_before(a, b, moment):
            return -1
        if _deleted_before(b, a, moment):
            return 1
        return 0

    ranked.sort(key=functools.cmp_to_key(compare))
    return [r.pod for r in ranked[:count]]


# -- status -------------------------------------------------------------------------------------


def calculate_status(
    owner: Obj, pods: list[Obj], error: Exception | None, diff: int, now: float, now_text: str
) -> Obj:
    """The owner's new status from the pods it controls (``calculateStatus``)."""
    spec = owner.get("spec") or {}
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    min_ready = int(spec.get("minReadySeconds") or 0)
    fully = sum(1 for p in pods if all(labels_of(p).get(k) == v for k, v in template_labels.items()))
    ready = sum(1 for p in pods if pod_ready(p))
    available = sum(1 for p in pods if pod_available(p, min_ready, now))
    conditions = [dict(c) for c in (owner.get("status") or {}).get("conditions") or []]
    failure = next((c for c in conditions if c.get("type") == "ReplicaFailure"), None)
    if error is not None and failure is None:
        conditions.append(
            {
                "type": "ReplicaFailure",
                "status": "True",
                "lastTransitionTime": now_text,
                "reason": "FailedCreate" if diff < 0 else "FailedDelete",
                "message": str(error),
            }
        )
    elif error is None and failure is not None:
        conditions.remove(failure)
    status: Obj = {
        "replicas": len(pods),
        "fullyLabeledReplicas": fully,
        "readyReplicas": ready,
        "availableReplicas": available,
        "observedGeneration": int(meta_of(owner).get("generation") or 0),
        "conditions": conditions,
    }
    return status


def status_differs(current: Obj, wanted: Obj) -> bool:
    """Whether writing ``wanted`` would change ``current`` (absent numbers count as zero)."""
    for name, value in wanted.items():
        if name == "conditions":
            if (current.get("conditions") or []) != value:
                return True
        elif int(current.get(name) or 0) != value:
            return True
    return False


def status_patch(wanted: Obj) -> Obj:
    """A merge patch writing ``wanted``; zero and empty fields are removed, as Go's omitempty."""
    patch: Obj = {name: (value or None) for name, value in wanted.items()}
    patch["replicas"] = wanted["replicas"]
    return {"status": patch}


# -- expectations -------------------------------------------------------------------------------


@dataclass
class _Expected:
    adds: set[str] = field(default_factory=set)
    deletes: set[str] = field(default_factory=set)
    since: float = field(default_factory=time.monotonic)


class Expectations:
    """Pods an owner created or deleted that the pod cache has not shown yet (by name).

    An owner whose expectations are pending does not manage its replicas: its view of its pods
    is stale and it would create or delete twice.
    """

    def __init__(self) -> None:
        self._pending: dict[Key, _Expected] = {}

    def expect(self, key: Key, adds: Iterable[str] = (), deletes: Iterable[str] = ()) -> None:
        found = self._pending.setdefault(key, _Expected())
        found.adds.update(adds)
        found.deletes.update(deletes)
        found.since = time.monotonic()

    def observed(self, key: Key, pod: Obj, gone: bool) -> None:
        found = self._pending.get(key)
        if found is None:
            return
        name = str(meta_of(pod).get("name") or "")
        found.adds.discard(name)
        if gone or deleting(pod):
            found.deletes.discard(name)

    def satisfied(self, key: Key, cached: Callable[[str], Obj | None]) -> bool:
        found = self._pending.get(key)
        if found is None:
            return True
        found.adds = {n for n in found.adds if cached(n) is None}
        found.deletes = {n for n in found.deletes if (p := cached(n)) is not None and not deleting(p)}
        if not found.adds and not found.deletes:
            del self._pending[key]
            return True
        if time.monotonic() - found.since > EXPECTATIONS_TIMEOUT:
            log.info("expectations for %s/%s expired, syncing anyway", *key)
            del self._pending[key]
            return True
        return False

    def forget(self, key: Key) -> None:
        self._pending.pop(key, None)


# -- events -------------------------------------------------------------------------------------


# -- the controller -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """The resource a :class:`ReplicaSetController` manages."""

    api_version: str
    kind: str
    prefix: str
    """``/apis/apps/v1`` or ``/api/v1``."""
    plural: str
    selector_is_map: bool
    """ReplicationControllers select with a plain label map, ReplicaSets with a LabelSelector."""

    def path(self, namespace: str, name: str = "") -> str:
        base = f"{self.prefix}/namespaces/{namespace}/{self.plural}"
        return f"{base}/{name}" if name else base

    def selector(self, owner: Obj) -> LabelSelector:
        raw = (owner.get("spec") or {}).get("selector")
        if self.selector_is_map:
            return label_selector_from_set(raw) if raw else LabelSelector(nothing=True)
        return from_label_selector_object(raw)


REPLICA_SETS = Workload("apps/v1", "ReplicaSet", "/apis/apps/v1", "replicasets", selector_is_map=False)
REPLICATION_CONTROLLERS = Workload("v1", "ReplicationController", "/api/v1", "replicationcontrollers", True)


class ReplicaSetController(Controller):
    name = "replicaset-controller"
    identity = "replicaset-controller"
    workload: ClassVar[Workload] = REPLICA_SETS
    workers = 2

    def __init__(self, api: RestClient, informers: SharedInformers | None = None) -> None:
        super().__init__(api, informers)
        self.owners = self.informer(self.workload.prefix + "/" + self.workload.plural)
        self.pods = index_by_controller(self.informer("/api/v1/pods"))
        self.expectations = Expectations()
        self.events = EventRecorder(
            api, self.name, kind=self.workload.kind, api_version=self.workload.api_version
        )
        self.claims = PodClaims(api, self.workload.api_version, self.workload.kind, self.workload.path)
        self.on(self.owners, self._on_owner)
        self.on(self.pods, self._on_pod)

    # -- change handlers ----------------------------------------------------------------------

    def _on_owner(self, old: Obj | None, new: Obj | None) -> None:
        if new is None and old is not None:
            self.expectations.forget((str(meta_of(old).get("namespace") or ""), str(meta_of(old)["name"])))
        self.enqueue(new or old)

    def _owner_key(self, pod: Obj, ref: Obj) -> Key | None:
        if (
            ref.get("kind") != self.workload.kind
            or str(ref.get("apiVersion", "")) != self.workload.api_version
        ):
            return None
        return str(meta_of(pod).get("namespace") or ""), str(ref.get("name") or "")

    def _on_pod(self, old: Obj | None, new: Obj | None) -> None:
        for pod, gone in ((old, new is None), (new, False)):
            if pod is None:
                continue
            ref = controller_ref(pod)
            if ref is not None:
                key = self._owner_key(pod, ref)
                if key is not None:
                    self.expectations.observed(key, pod, gone)
                    self.queue.add(key)
            elif not gone and not deleting(pod):
                # An orphan: every owner that selects it may adopt it.
                for owner in owners_selecting(pod, self.owners.items(), self.workload.selector):
                    self.enqueue(owner)

    # -- sync ---------------------------------------------------------------------------------

    async def sync(self, key: Key) -> None:
        namespace, name = key
        owner = self.owners.get(namespace, name)
        if owner is None:
            self.expectations.forget(key)
            return
        try:
            selector = self.workload.selector(owner)
        except SelectorError as exc:
            log.warning("%s %s/%s has an invalid selector: %s", self.workload.kind, namespace, name, exc)
            return
        active = [p for p in pods_of(self.pods, owner, selector) if pod_active(p)]
        pods = await self.claims.claim(owner, selector, active)
        error: Exception | None = None
        diff = len(pods) - int((owner.get("spec") or {}).get("replicas", 1) or 0)
        if not deleting(owner) and self.expectations.satisfied(key, lambda n: self.pods.get(namespace, n)):
            error = await self._manage(key, owner, pods, diff)
        await self._write_status(key, owner, pods, error, diff)
        if error is not None:
            raise error

    async def _manage(self, key: Key, owner: Obj, pods: list[Obj], diff: int) -> Exception | None:
        if diff < 0:
            return await self._create_pods(key, owner, min(-diff, BURST_REPLICAS))
        if diff > 0:
            victims = pods_to_delete(pods, self._related_pods(owner), min(diff, BURST_REPLICAS))
            return await self._delete_pods(key, owner, victims)
        return None

    async def _create_pods(self, key: Key, owner: Obj, count: int) -> Exception | None:
        template = (owner.get("spec") or {}).get("template") or {}
        body = pod_from_template(owner, self.workload.api_version, self.workload.kind, template)
        path = f"/api/v1/namespaces/{key[0]}/pods"

        async def create_one() -> None:
            try:
                created = await self.api.create(path, body)
            except ApiStatusError as exc:
                await self.events.record(owner, "Warning", "FailedCreate", f"Error creating: {exc}")
                raise
            created_name = str(meta_of(created).get("name") or "")
            self.expectations.expect(key, adds=[created_name])
            self.events.post(owner, "Normal", "SuccessfulCreate", f"Created pod: {created_name}")

        return await _slow_start(count, create_one)

    async def _delete_pods(self, key: Key, owner: Obj, victims: list[Obj]) -> Exception | None:
        self.expectations.expect(key, deletes=[str(meta_of(p)["name"]) for p in victims])

        async def delete_one(pod: Obj) -> None:
            pod_name = meta_of(pod)["name"]
            try:
                await self.api.delete(f"/api/v1/namespaces/{key[0]}/pods/{pod_name}")
            except ApiStatusError as exc:
                if exc.code == 404:
                    return
                await self.events.record(owner, "Warning", "FailedDelete", f"Error deleting: {exc}")
                raise
            self.events.post(owner, "Normal", "SuccessfulDelete", f"Deleted pod: {pod_name}")

        results = await asyncio.gather(*(delete_one(p) for p in victims), return_exceptions=True)
        errors = [r for r in results if isinstance(r, Exception)]
        return errors[0] if errors else None

    def _related_pods(self, owner: Obj) -> list[Obj]:
        """Pods of the owners sharing this owner's controller (a Deployment's ReplicaSets)."""
        parent = controller_ref(owner)
        namespace = meta_of(owner).get("namespace")
        siblings = [owner]
        if parent is not None:
            for other in self.owners.in_namespace(str(namespace or "")):
                other_ref = controller_ref(other)
                if other_ref and other_ref.get("uid") == parent.get("uid") and uid_of(other) != uid_of(owner):
                    siblings.append(other)
        return [pod for sibling in siblings for pod in pods_of(self.pods, sibling)]

    async def _write_status(
        self, key: Key, owner: Obj, pods: list[Obj], error: Exception | None, diff: int
    ) -> None:
        now = time.time()
        wanted = calculate_status(owner, pods, error, diff, now, objects.now())
        if status_differs(owner.get("status") or {}, wanted):
            try:
                fields = {k: v for k, v in status_patch(wanted)["status"].items() if v is not None}
                await self.api.update(
                    self.workload.path(key[0], key[1]) + "/status", {**owner, "status": fields}
                )
            except ApiStatusError as exc:
                if exc.code != 404:
                    raise
                return
        self._requeue_for_availability(key, owner, pods, now)

    def _requeue_for_availability(self, key: Key, owner: Obj, pods: list[Obj], now: float) -> None:
        """Ready pods become available after ``minReadySeconds``: look again then."""
        min_ready = int((owner.get("spec") or {}).get("minReadySeconds") or 0)
        if min_ready <= 0:
            return
        waits = [
            since + min_ready - now
            for p in pods
            if (since := pod_ready_time(p)) is not None and not pod_available(p, min_ready, now)
        ]
        if waits:
            self.queue.add_after(key, max(min(waits), 0.0) + 0.05)


async def _slow_start(count: int, call: Callable[[], Awaitable[None]]) -> Exception | None:
    """Run ``call`` ``count`` times in growing batches; the first failing batch stops the rest."""
    for size in slow_start_batches(count):
        results = await asyncio.gather(*(call() for _ in range(size)), return_exceptions=True)
        errors = [r for r in results if isinstance(r, Exception)]
        if errors:
            return errors[0]
    return None


class ReplicationManager(ReplicaSetController):
    """ReplicationControllers, managed by the same logic as ReplicaSets."""

    name = "replication-controller"
    identity = "replication-controller"
    workload: ClassVar[Workload] = REPLICATION_CONTROLLERS
