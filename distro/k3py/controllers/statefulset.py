"""The StatefulSet controller: pods with stable names and storage, created and replaced in order.

A set named ``web`` owns pods ``web-<ordinal>`` for ordinals ``start .. start+replicas-1``
(``spec.ordinals.start``, default 0). Each pod is labelled with its name, its index and its
revision, has ``hostname`` = its name and ``subdomain`` = the set's service, and mounts claims
``<claim>-web-<ordinal>`` made from ``volumeClaimTemplates`` (created before the pod, never
deleted by this controller; their owner references follow
``persistentVolumeClaimRetentionPolicy`` so the garbage collector removes them).

One ``sync`` is upstream's ``updateStatefulSet``:

1. the revisions: the set's template now is the *update* revision (an existing equal one is
   reused); the revision named by ``status.currentRevision`` is the *current* one;
2. pods that failed are deleted (they come back next time); missing pods are created, from the
   current revision below the partition and the update revision above it; with
   ``OrderedReady`` one at a time, each waiting for the previous to be Running and Ready;
3. pods past the replica count are deleted from the highest ordinal down (in order: one at a
   time, only while all others are healthy);
4. with ``RollingUpdate``, the highest-ordinal pod not at the update revision (and at or past
   the partition) is deleted once all higher ones are healthy; it is re-created next time;
5. the status is written, and revisions past ``revisionHistoryLimit`` no pod uses are deleted.
"""

from __future__ import annotations

import copy
import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from k3py.client.events import EventRecorder
from k3py.client.informer import SharedInformers
from k3py.client.rest import ApiStatusError, RestClient
from k3py.controllers.base import Controller, Key
from k3py.controllers.history import (
    POD_REVISION_LABEL,
    apply_revision,
    equal_revision,
    find_equal_revisions,
    new_revision,
    next_revision_number,
    sort_revisions,
)
from k3py.controllers.objects import (
    controller_of,
    controller_uid,
    deleting,
    meta_of,
    owner_reference,
    pod_available,
    pod_failed,
    pod_succeeded,
    running_and_ready,
    spec_of,
)

log = logging.getLogger(__name__)

Obj = dict[str, Any]

KIND = "StatefulSet"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
PODS = "/api/v1/namespaces/{}/pods"
CLAIMS = "/api/v1/namespaces/{}/persistentvolumeclaims"
REVISIONS = "/apis/apps/v1/namespaces/{}/controllerrevisions"
SETS = "/apis/apps/v1/namespaces/{}/statefulsets"


def start_ordinal(sts: Obj) -> int:
    start = (spec_of(sts).get("ordinals") or {}).get("start")
    return start if isinstance(start, int) else 0


def replicas_of(sts: Obj) -> int:
    value = spec_of(sts).get("replicas")
    return value if isinstance(value, int) else 1


def pod_name(sts: Obj, ordinal: int) -> str:
    return f"{meta_of(sts).get('name')}-{ordinal}"


def ordinal_of(sts: Obj, pod: Obj) -> int | None:
    """The ordinal in the pod's name when it is one of this set's names, else None."""
    match = re.fullmatch(re.escape(str(meta_of(sts).get("name"))) + r"-(\d+)", str(meta_of(pod).get("name")))
    return int(match.group(1)) if match else None


def claim_name(template: Obj, sts: Obj, ordinal: int) -> str:
    return f"{meta_of(template).get('name')}-{pod_name(sts, ordinal)}"


def partition_of(sts: Obj) -> int:
    strategy = spec_of(sts).get("updateStrategy") or {}
    value = (strategy.get("rollingUpdate") or {}).get("partition")
    return value if isinstance(value, int) else 0


def ordered(sts: Obj) -> bool:
    return bool(spec_of(sts).get("podManagementPolicy", "OrderedReady") != "Parallel")


def rolling(sts: Obj) -> bool:
    return bool((spec_of(sts).get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate")


def retention(sts: Obj, when: str) -> str:
    return str((spec_of(sts).get("persistentVolumeClaimRetentionPolicy") or {}).get(when) or "Retain")


def new_claims(sts: Obj, ordinal: int) -> list[Obj]:
    """The claims of the pod at ``ordinal``, from the set's ``volumeClaimTemplates``."""
    selector_labels = (spec_of(sts).get("selector") or {}).get("matchLabels") or {}
    claims = []
    for template in spec_of(sts).get("volumeClaimTemplates") or []:
        meta = meta_of(template)
        labels = {**(meta.get("labels") or {}), **selector_labels}
        body: Obj = {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {
                "name": claim_name(template, sts, ordinal),
                "namespace": meta_of(sts).get("namespace", ""),
                "labels": labels,
            },
            "spec": copy.deepcopy(spec_of(template)),
        }
        if meta.get("annotations"):
            body["metadata"]["annotations"] = dict(meta["annotations"])
        if retention(sts, "whenDeleted") == "Delete":
            owner = owner_reference(sts, "apps/v1", KIND)
            owner["controller"] = False
            body["metadata"]["ownerReferences"] = [owner]
        claims.append(body)
    return claims


def new_pod(sts: Obj, ordinal: int, revision: str) -> Obj:
    """The pod at ``ordinal`` of ``sts`` (whose template is the revision's), labelled ``revision``."""
    template = copy.deepcopy(spec_of(sts).get("template") or {})
    meta = meta_of(template)
    name = pod_name(sts, ordinal)
    labels = {
        **(meta.get("labels") or {}),
        POD_NAME_LABEL: name,
        POD_INDEX_LABEL: str(ordinal),
        POD_REVISION_LABEL: revision,
    }
    pod_meta: Obj = {
        "name": name,
        "namespace": meta_of(sts).get("namespace", ""),
        "labels": labels,
        "ownerReferences": [owner_reference(sts, "apps/v1", KIND)],
    }
    if meta.get("annotations"):
        pod_meta["annotations"] = dict(meta["annotations"])
    spec = spec_of(template)
    spec["hostname"] = name
    service = spec_of(sts).get("serviceName")
    if service:
        spec["subdomain"] = service
    claims = {
        str(meta_of(t).get("name")): claim_name(t, sts, ordinal)
        for t in spec_of(sts).get("volumeClaimTemplates") or []
    }
    if claims:
        volumes = [v for v in spec.get("volumes") or [] if v.get("name") not in claims]
        volumes = [
            {"name": v, "persistentVolumeClaim": {"claimName": c}} for v, c in claims.items()
        ] + volumes
        spec["volumes"] = volumes
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": spec}


def revision_of(pod: Obj) -> str:
    return str((meta_of(pod).get("labels") or {}).get(POD_REVISION_LABEL) or "")


@dataclass
class Counts:
    """What the status reports, counted over the pods in the set's ordinal range."""

    replicas: int = 0
    ready: int = 0
    available: int = 0
    current: int = 0
    updated: int = 0


def count(pods: Iterable[Obj], current: str, update: str, min_ready: int, now: float) -> Counts:
    counts = Counts()
    for pod in pods:
        counts.replicas += 1
        if running_and_ready(pod):
            counts.ready += 1
            if pod_available(pod, min_ready, now):
                counts.available += 1
        if revision_of(pod) == current:
            counts.current += 1
        if revision_of(pod) == update:
            counts.updated += 1
    return counts


@dataclass
class Plan:
    """One step of a sync: what to create and delete (pods, in order), and whether to stop."""

    create: list[int] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)


def plan_scale(sts: Obj, pods: dict[int, Obj], condemned: list[Obj]) -> Plan:
    """Which ordinals to create and which pods past the end to delete, as the policy allows."""
    start, count_ = start_ordinal(sts), replicas_of(sts)
    monotonic = ordered(sts)
    plan = Plan()
    for ordinal in range(start, start + count_):
        pod = pods.get(ordinal)
        if pod is None:
            plan.create.append(ordinal)
            if monotonic:
                return plan
            continue
        if monotonic and (deleting(pod) or not running_and_ready(pod)):
            return plan
    # upstream's firstUnhealthyPod: the lowest unhealthy ordinal, kept pods before condemned ones
    condemned = sorted(condemned, key=lambda p: ordinal_of(sts, p) or 0)
    kept = [pods[o] for o in sorted(pods) if start <= o < start + count_]
    first_unhealthy = next((p for p in [*kept, *condemned] if not _healthy(p)), None)
    for pod in reversed(condemned):
        if deleting(pod):
            if monotonic:
                return plan
            continue
        if monotonic and not _healthy(pod) and pod is not first_unhealthy:
            return plan  # waits for the pod to be Running and Ready before scaling it down
        plan.delete.append(str(meta_of(pod).get("name")))
        if monotonic:
            return plan
    return plan


def _healthy(pod: Obj) -> bool:
    """``isHealthy``: running, ready and not being deleted."""
    return running_and_ready(pod) and not deleting(pod)


def plan_update(sts: Obj, pods: dict[int, Obj], update: str) -> str | None:
    """The pod a rolling update deletes next: the highest ordinal at or past the partition not
    at ``update``, once every pod above it is healthy; None when there is none (or it waits)."""
    if not rolling(sts):
        return None
    start, count_ = start_ordinal(sts), replicas_of(sts)
    lowest = start + partition_of(sts)
    for ordinal in range(start + count_ - 1, lowest - 1, -1):
        pod = pods.get(ordinal)
        if pod is None:
            return None
        if revision_of(pod) != update and not deleting(pod):
            return str(meta_of(pod).get("name"))
        if deleting(pod) or not running_and_ready(pod):
            return None
    return None


class StatefulSetController(Controller):
    name = "statefulset"
    identity = "statefulset-controller"

    def __init__(self, api: RestClient, informers: SharedInformers | None = None) -> None:
        super().__init__(api, informers)
        self.events = EventRecorder(api, "statefulset-controller", kind=KIND, api_version="apps/v1")
        self.sets = self.informer("/apis/apps/v1/statefulsets")
        self.pods = self.informer("/api/v1/pods")
        self.revisions = self.informer("/apis/apps/v1/controllerrevisions")
        self.claims = self.informer("/api/v1/persistentvolumeclaims")
        self.on(self.sets, lambda old, new: self.enqueue(new or old))
        self.on(self.pods, lambda old, new: self._owner_changed(new or old))
        self.on(self.revisions, lambda old, new: self._owner_changed(new or old))

    def _owner_changed(self, obj: Obj | None) -> None:
        if obj is None:
            return
        owner = controller_of(obj, KIND)
        if owner:
            self.queue.add((str(meta_of(obj).get("namespace") or ""), owner))

    def _owned(self, items: Iterable[Obj], sts: Obj) -> list[Obj]:
        namespace, uid = meta_of(sts).get("namespace"), meta_of(sts).get("uid")
        return [o for o in items if meta_of(o).get("namespace") == namespace and controller_uid(o) == uid]

    async def sync(self, key: Key) -> None:
        namespace, name = key
        sts = self.sets.get(namespace, name)
        if sts is None or meta_of(sts).get("deletionTimestamp"):
            return
        revisions = sort_revisions(self._owned(self.revisions.items(), sts))
        current, update, collisions = await self._revisions(sts, revisions)
        current_set, update_set = apply_revision(sts, current), apply_revision(sts, update)
        current_name, update_name = meta_of(current).get("name", ""), meta_of(update).get("name", "")
        pods: dict[int, Obj] = {}
        condemned: list[Obj] = []
        start, end = start_ordinal(sts), start_ordinal(sts) + replicas_of(sts)
        for pod in self._owned(self.pods.items(), sts):
            ordinal = ordinal_of(sts, pod)
            if ordinal is None:
                continue
            if start <= ordinal < end:
                pods[ordinal] = pod
            else:
                condemned.append(pod)
        for ordinal, pod in sorted(pods.items()):
            if (pod_failed(pod) or pod_succeeded(pod)) and not deleting(pod):
                await self._delete_pod(sts, pod)
                pods.pop(ordinal)
        for ordinal in pods:
            await self._ensure_claims(sts, ordinal)
        plan = plan_scale(sts, pods, condemned)
        for ordinal in plan.create:
            below_partition = ordinal < start + partition_of(sts)
            source, revision = (
                (current_set, current_name) if rolling(sts) and below_partition else (update_set, update_name)
            )
            await self._create_pod(sts, source, ordinal, str(revision))
        for victim in plan.delete:
            pod = next(p for p in condemned if meta_of(p).get("name") == victim)
            await self._condemn(sts, pod)
        outdated = None if plan.create or plan.delete else plan_update(sts, pods, str(update_name))
        if outdated is not None:
            pod = next(p for p in pods.values() if meta_of(p).get("name") == outdated)
            await self._delete_pod(sts, pod)
        await self._write_status(
            sts, [*pods.values(), *condemned], str(current_name), str(update_name), collisions
        )
        await self._truncate_history(sts, revisions, {str(current_name), str(update_name)})

    # -- revisions --------------------------------------------------------------------------------

    async def _revisions(self, sts: Obj, revisions: list[Obj]) -> tuple[Obj, Obj, int]:
        """The current and update revisions (the update one created when new) and the
        collision count used."""
        collisions = int((sts.get("status") or {}).get("collisionCount") or 0)
        number = next_revision_number(revisions)
        wanted = new_revision(sts, KIND, number, collisions)
        equal = find_equal_revisions(revisions, wanted)
        namespace = meta_of(sts).get("namespace")
        if equal and equal_revision(revisions[-1], wanted):
            update = revisions[-1]
        elif equal:
            update = await self.api.patch(
                f"{REVISIONS.format(namespace)}/{meta_of(equal[-1])['name']}", {"revision": number}
            )
        else:
            update, collisions = await self._create_revision(sts, number, collisions)
        current_name = (sts.get("status") or {}).get("currentRevision")
        current = next((r for r in revisions if meta_of(r).get("name") == current_name), update)
        return current, update, collisions

    async def _create_revision(self, sts: Obj, number: int, collisions: int) -> tuple[Obj, int]:
        """``CreateControllerRevision``: a name taken by other data bumps the collision count."""
        namespace = meta_of(sts).get("namespace")
        while True:
            wanted = new_revision(sts, KIND, number, collisions)
            try:
                return await self.api.create(REVISIONS.format(namespace), wanted), collisions
            except ApiStatusError as exc:
                if exc.code != 409:
                    raise
            found = await self.api.get(f"{REVISIONS.format(namespace)}/{meta_of(wanted)['name']}")
            if equal_revision(found, wanted) and controller_uid(found) == meta_of(sts).get("uid"):
                return found, collisions
            collisions += 1

    async def _truncate_history(self, sts: Obj, revisions: list[Obj], live: set[str]) -> None:
        limit = spec_of(sts).get("revisionHistoryLimit")
        limit = limit if isinstance(limit, int) else 10
        used = live | {revision_of(p) for p in self._owned(self.pods.items(), sts)}
        history = [r for r in revisions if meta_of(r).get("name") not in used]
        for revision in history[: max(0, len(history) - limit)]:
            await self._delete(
                f"{REVISIONS.format(meta_of(sts).get('namespace'))}/{meta_of(revision)['name']}"
            )

    # -- pods and claims --------------------------------------------------------------------------

    async def _ensure_claims(self, sts: Obj, ordinal: int) -> None:
        namespace = str(meta_of(sts).get("namespace"))
        for claim in new_claims(sts, ordinal):
            name = str(claim["metadata"]["name"])
            if self.claims.get(namespace, name) is not None:
                continue
            pod, set_name = pod_name(sts, ordinal), meta_of(sts)["name"]
            try:
                await self.api.create(CLAIMS.format(namespace), claim)
            except ApiStatusError as exc:
                if exc.code == 409:
                    continue
                await self._record(
                    sts,
                    "Warning",
                    "FailedCreate",
                    f"create Claim {name} for Pod {pod} in StatefulSet {set_name} failed error: {exc}",
                )
                raise
            await self._record(
                sts,
                "Normal",
                "SuccessfulCreate",
                f"create Claim {name} Pod {pod} in StatefulSet {set_name} success",
            )

    async def _create_pod(self, sts: Obj, source: Obj, ordinal: int, revision: str) -> None:
        await self._ensure_claims(sts, ordinal)
        body = new_pod(source, ordinal, revision)
        name, set_name = body["metadata"]["name"], meta_of(sts)["name"]
        try:
            await self.api.create(PODS.format(meta_of(sts).get("namespace")), body)
        except ApiStatusError as exc:
            if exc.code == 409:
                return
            await self._record(
                sts,
                "Warning",
                "FailedCreate",
                f"create Pod {name} in StatefulSet {set_name} failed error: {exc}",
            )
            raise
        await self._record(
            sts, "Normal", "SuccessfulCreate", f"create Pod {name} in StatefulSet {set_name} successful"
        )

    async def _condemn(self, sts: Obj, pod: Obj) -> None:
        """Delete a pod past the end; with ``whenScaled: Delete`` its claims go with it."""
        if retention(sts, "whenScaled") == "Delete":
            ordinal = ordinal_of(sts, pod)
            namespace = meta_of(sts).get("namespace")
            owner = {**owner_reference(pod, "v1", "Pod"), "controller": False}
            for claim in new_claims(sts, ordinal or 0):
                path = f"{CLAIMS.format(namespace)}/{claim['metadata']['name']}"
                existing = self.claims.get(str(namespace), str(claim["metadata"]["name"]))
                if existing is None:
                    continue
                refs = [
                    r for r in meta_of(existing).get("ownerReferences") or [] if r.get("uid") != owner["uid"]
                ]
                claim = {**existing, "metadata": {**meta_of(existing), "ownerReferences": [*refs, owner]}}
                await self.api.update(path, claim)  # the role may update claims, not patch them
        await self._delete_pod(sts, pod)

    async def _delete_pod(self, sts: Obj, pod: Obj) -> None:
        name, set_name = meta_of(pod)["name"], meta_of(sts)["name"]
        try:
            await self.api.delete(f"{PODS.format(meta_of(pod).get('namespace'))}/{name}")
        except ApiStatusError as exc:
            if exc.code == 404:
                return
            await self._record(
                sts,
                "Warning",
                "FailedDelete",
                f"delete Pod {name} in StatefulSet {set_name} failed error: {exc}",
            )
            raise
        await self._record(
            sts, "Normal", "SuccessfulDelete", f"delete Pod {name} in StatefulSet {set_name} successful"
        )

    async def _delete(self, path: str) -> None:
        try:
            await self.api.delete(path)
        except ApiStatusError as exc:
            if exc.code != 404:
                raise

    async def _record(self, sts: Obj, kind: str, reason: str, message: str) -> None:
        await self.events.record(sts, kind, reason, message)

    # -- status -----------------------------------------------------------------------------------

    async def _write_status(
        self, sts: Obj, pods: list[Obj], current: str, update: str, collisions: int
    ) -> None:
        """``updateStatus`` over every pod the set owns; a rolling update whose pods are all
        updated and ready is complete: the update revision becomes the current one."""
        min_ready = spec_of(sts).get("minReadySeconds")
        now = time.time()
        counts = count(pods, current, update, min_ready if isinstance(min_ready, int) else 0, now)
        if rolling(sts) and counts.updated == counts.replicas == counts.ready:
            current, counts.current = update, counts.updated
        status: Obj = {
            "observedGeneration": meta_of(sts).get("generation", 0),
            "replicas": counts.replicas,
            "readyReplicas": counts.ready,
            "currentReplicas": counts.current,
            "updatedReplicas": counts.updated,
            "availableReplicas": counts.available,
            "currentRevision": current,
            "updateRevision": update,
            "collisionCount": collisions,
        }
        old = sts.get("status") or {}
        if all(old.get(k) == v for k, v in status.items()):
            return
        path = f"{SETS.format(meta_of(sts).get('namespace'))}/{meta_of(sts)['name']}/status"
        try:
            await self.api.update(path, {**sts, "status": {**old, **status}})
        except ApiStatusError as exc:
            if exc.code != 404:
                raise
        if isinstance(min_ready, int) and min_ready > 0 and counts.available < counts.ready:
            self.queue.add_after((str(meta_of(sts).get("namespace")), str(meta_of(sts)["name"])), min_ready)
