"""The DaemonSet controller: one pod on each node the set's pods fit, kept at the set's template.

A node is eligible as upstream's ``NodeShouldRunDaemonPod`` decides: the pod the set would
put there (its template, plus the DaemonSet default tolerations and a required node affinity
on the node's name) must match the node's labels and affinity and tolerate its NoSchedule and
NoExecute taints. A node whose NoExecute taints are tolerated but NoSchedule ones are not keeps
a pod it has, but gets no new one. Pods are created without ``nodeName``: their affinity pins
them to the node and the scheduler binds them, as upstream since 1.12.

One ``sync``:

1. the revision of the set's template (created when new; see ``history``) gives the hash in
   the pods' ``controller-revision-hash`` label;
2. per node: a missing pod is created, failed pods and pods on nodes that no longer fit are
   deleted, extra pods beyond one (or one old and one new, while surging) are deleted;
3. a ``RollingUpdate`` replaces pods of old revisions: without surge, deleting up to
   ``maxUnavailable`` available ones at a time (unavailable ones at once); with ``maxSurge``,
   creating the new pod first and deleting the old one once the new one is available;
4. the status is written and revisions past ``revisionHistoryLimit`` no pod uses are deleted.

Pods created or deleted but not yet seen by the pod informer are remembered for a while, so
that a sync that runs before the informer catches up does not do the same work twice.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from k3py.api.taints import tolerates
from k3py.client.events import EventRecorder
from k3py.client.informer import SharedInformers
from k3py.client.rest import ApiStatusError, RestClient
from k3py.controllers.base import Controller, Key
from k3py.controllers.history import (
    POD_REVISION_LABEL,
    REVISION_HASH_LABEL,
    equal_data,
    new_revision,
    next_revision_number,
    revision_number,
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
    pod_ready,
    spec_of,
)

log = logging.getLogger(__name__)

Obj = dict[str, Any]

KIND = "DaemonSet"
TEMPLATE_GENERATION_LABEL = "pod-template-generation"
PODS = "/api/v1/namespaces/{}/pods"
REVISIONS = "/apis/apps/v1/namespaces/{}/controllerrevisions"
SETS = "/apis/apps/v1/namespaces/{}/daemonsets"
FAILED_BACKOFF_BASE = 1.0
FAILED_BACKOFF_MAX = 900.0
"""Upstream's failed-pod back-off: from one second, doubling, to fifteen minutes."""
EXPECTATION_TIMEOUT = 30.0
"""How long a created or deleted pod the informer has not reported yet is trusted to come."""
DEFAULT_TOLERATIONS = (
    ("node.kubernetes.io/not-ready", "NoExecute"),
    ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"),
    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"),
    ("node.kubernetes.io/unschedulable", "NoSchedule"),
)
"""``AddOrUpdateDaemonPodTolerations``; host-network pods also tolerate network-unavailable."""
NETWORK_UNAVAILABLE = ("node.kubernetes.io/network-unavailable", "NoSchedule")


# -- node eligibility -----------------------------------------------------------------------------


def untolerated(node: Obj, pod: Obj, effects: Iterable[str]) -> Obj | None:
    """The node's first taint with one of ``effects`` that the pod does not tolerate."""
    wanted = set(effects)
    tolerations = [t for t in spec_of(pod).get("tolerations") or [] if isinstance(t, dict)]
    for taint in spec_of(node).get("taints") or []:
        if taint.get("effect") in wanted and not any(tolerates(t, taint) for t in tolerations):
            return dict(taint)
    return None


def requirement_matches(requirement: Obj, values: dict[str, str]) -> bool:
    key, operator = requirement.get("key", ""), requirement.get("operator", "")
    wanted = [str(v) for v in requirement.get("values") or []]
    present, value = key in values, values.get(key, "")
    if operator == "In":
        return present and value in wanted
    if operator == "NotIn":
        return not present or value not in wanted
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    if operator in ("Gt", "Lt") and present and len(wanted) == 1:
        try:
            have, bound = int(value), int(wanted[0])
        except ValueError:
            return False
        return have > bound if operator == "Gt" else have < bound
    return False


def term_matches(term: Obj, node: Obj) -> bool:
    """A NodeSelectorTerm: all its expressions on labels and fields; an empty term matches none."""
    expressions, fields = term.get("matchExpressions") or [], term.get("matchFields") or []
    if not expressions and not fields:
        return False
    labels = {str(k): str(v) for k, v in (meta_of(node).get("labels") or {}).items()}
    node_fields = {"metadata.name": str(meta_of(node).get("name") or "")}
    return all(requirement_matches(e, labels) for e in expressions) and all(
        requirement_matches(f, node_fields) for f in fields
    )


def affinity_matches(pod: Obj, node: Obj) -> bool:
    """``GetRequiredNodeAffinity(pod).Match(node)``: the node selector and the required terms."""
    labels = meta_of(node).get("labels") or {}
    if any(labels.get(k) != v for k, v in (spec_of(pod).get("nodeSelector") or {}).items()):
        return False
    required = ((spec_of(pod).get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    )
    if not required:
        return True
    return any(term_matches(term, node) for term in required.get("nodeSelectorTerms") or [])


@dataclass(frozen=True)
class Placement:
    should_run: bool
    """A daemon pod should be created on the node."""
    should_continue: bool
    """A daemon pod already there may stay."""


def placement(ds: Obj, node: Obj) -> Placement:
    """``NodeShouldRunDaemonPod``: the pod the set would put on the node, against the node."""
    pod = {"spec": pod_spec(ds, str(meta_of(node).get("name") or ""))}
    wanted = spec_of(pod).get("nodeName")
    fits = (not wanted or wanted == meta_of(node).get("name")) and affinity_matches(pod, node)
    if not fits:
        return Placement(False, False)
    if untolerated(node, pod, ("NoExecute",)) is not None:
        return Placement(False, False)
    return Placement(untolerated(node, pod, ("NoSchedule",)) is None, True)


def placement_view(node: Obj) -> tuple[Any, ...]:
    """What of a node placement depends on (a change elsewhere cannot move daemon pods)."""
    return (meta_of(node).get("labels"), spec_of(node).get("taints"), spec_of(node).get("unschedulable"))


# -- the pods -------------------------------------------------------------------------------------


def default_tolerations(spec: Obj) -> list[Obj]:
    """The pod's tolerations plus the DaemonSet defaults it lacks."""
    tolerations = [t for t in spec.get("tolerations") or [] if isinstance(t, dict)]
    defaults = list(DEFAULT_TOLERATIONS)
    if spec.get("hostNetwork"):
        defaults.append(NETWORK_UNAVAILABLE)
    for key, effect in defaults:
        tolerations = [t for t in tolerations if not (t.get("key") == key and t.get("effect") == effect)]
        tolerations.append({"key": key, "operator": "Exists", "effect": effect})
    return tolerations


def node_affinity(affinity: Obj | None, node_name: str) -> Obj:
    """``ReplaceDaemonSetPodNodeNameNodeAffinity``: every required term pinned to the node."""
    affinity = copy.deepcopy(affinity or {})
    node_affinity_ = affinity.setdefault("nodeAffinity", {})
    required = node_affinity_.setdefault("requiredDuringSchedulingIgnoredDuringExecution", {})
    pin = [{"key": "metadata.name", "operator": "In", "values": [node_name]}]
    terms = required.get("nodeSelectorTerms") or []
    if not terms:
        required["nodeSelectorTerms"] = [{"matchFields": pin}]
    else:
        for term in terms:
            term["matchFields"] = copy.deepcopy(pin)
    return dict(affinity)


def pod_spec(ds: Obj, node_name: str) -> Obj:
    spec = copy.deepcopy(spec_of(spec_of(ds).get("template") or {}))
    spec["tolerations"] = default_tolerations(spec)
    spec["affinity"] = node_affinity(spec.get("affinity"), node_name)
    return spec


def new_pod(ds: Obj, node_name: str, hash_: str) -> Obj:
    template = spec_of(ds).get("template") or {}
    meta = meta_of(template)
    labels = {
        **(meta.get("labels") or {}),
        POD_REVISION_LABEL: hash_,
        TEMPLATE_GENERATION_LABEL: str(meta_of(ds).get("generation") or 0),
    }
    pod_meta: Obj = {
        "generateName": f"{meta_of(ds).get('name')}-",
        "namespace": meta_of(ds).get("namespace", ""),
        "labels": labels,
        "ownerReferences": [owner_reference(ds, "apps/v1", KIND)],
    }
    if meta.get("annotations"):
        pod_meta["annotations"] = dict(meta["annotations"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": pod_spec(ds, node_name)}


def target_node(pod: Obj) -> str:
    """``GetTargetNodeName``: the node the pod is bound to, or the one its affinity pins."""
    bound = spec_of(pod).get("nodeName")
    if bound:
        return str(bound)
    required = ((spec_of(pod).get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    for term in required.get("nodeSelectorTerms") or []:
        for requirement in term.get("matchFields") or []:
            values = requirement.get("values") or []
            if (
                requirement.get("key") == "metadata.name"
                and requirement.get("operator") == "In"
                and len(values) == 1
            ):
                return str(values[0])
    return ""


def pod_updated(pod: Obj, hash_: str, generation: int) -> bool:
    """``IsPodUpdated``: the pod carries the set's hash or (older pods) its template generation."""
    labels = meta_of(pod).get("labels") or {}
    return bool(
        labels.get(POD_REVISION_LABEL) == hash_ or labels.get(TEMPLATE_GENERATION_LABEL) == str(generation)
    )


def scaled(value: Any, total: int, *, round_up: bool) -> int:
    """``GetScaledValueFromIntOrPercent``."""
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.endswith("%"):
        share = int(value[:-1]) * total / 100
        return math.ceil(share) if round_up else math.floor(share)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return 0


def surge_and_unavailable(ds: Obj, desired: int) -> tuple[int, int]:
    """``maxSurge`` and ``maxUnavailable`` for ``desired`` nodes (one unavailable when both are 0)."""
    rolling = (spec_of(ds).get("updateStrategy") or {}).get("rollingUpdate") or {}
    surge = scaled(rolling.get("maxSurge", 0), desired, round_up=True)
    unavailable = scaled(rolling.get("maxUnavailable", 1), desired, round_up=True)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def _created(pod: Obj) -> tuple[str, str]:
    return str(meta_of(pod).get("creationTimestamp") or ""), str(meta_of(pod).get("name") or "")


@dataclass
class Actions:
    create: list[str] = field(default_factory=list)
    """Node names to create a pod on."""
    delete: list[Obj] = field(default_factory=list)
    failed: list[Obj] = field(default_factory=list)
    """Failed pods to delete (they are reported as such)."""


def plan_nodes(ds: Obj, nodes: Iterable[Obj], pods_by_node: dict[str, list[Obj]], hash_: str) -> Actions:
    """``podsShouldBeOnNode`` over all nodes, then the rolling update's replacements."""
    actions = Actions()
    known = set()
    eligible: list[tuple[str, list[Obj]]] = []
    for node in nodes:
        name = str(meta_of(node).get("name") or "")
        known.add(name)
        where = placement(ds, node)
        pods = sorted(pods_by_node.get(name, []), key=_created)
        if not where.should_continue:
            actions.delete.extend(p for p in pods if not deleting(p))
            continue
        if not pods and where.should_run:
            actions.create.append(name)
            continue
        failed = [p for p in pods if pod_failed(p) and not deleting(p)]
        actions.failed.extend(failed)
        pods = [p for p in pods if p not in failed]
        if pods:
            eligible.append((name, pods))
    for name, pods in pods_by_node.items():
        if name not in known:
            # ``getUnscheduledPodsWithoutNode``: bound pods of a removed node are the pod GC's.
            actions.delete.extend(p for p in pods if not deleting(p) and not spec_of(p).get("nodeName"))
    desired = sum(1 for node in nodes if placement(ds, node).should_run)
    surge, max_unavailable = surge_and_unavailable(ds, desired)
    surging = surge > 0
    min_ready = spec_of(ds).get("minReadySeconds")
    min_ready = min_ready if isinstance(min_ready, int) else 0
    now = time.time()
    rolling = (spec_of(ds).get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"
    generation = int(meta_of(ds).get("generation") or 0)
    unavailable = len(actions.create)
    candidates: list[Obj] = []
    for _node, pods in eligible:
        new = [p for p in pods if pod_updated(p, hash_, generation)]
        old = [p for p in pods if p not in new]
        keep = new[:1] + (old[:1] if surging or not new else [])
        actions.delete.extend(p for p in pods if p not in keep and not deleting(p))
        if not any(pod_available(p, min_ready, now) and not deleting(p) for p in keep):
            unavailable += 1
        if not rolling or not old or old[0] not in keep:
            continue
        current = old[0]
        if new:
            if pod_available(new[0], min_ready, now):
                actions.delete.append(current)
            else:
                surge -= 1  # a replacement still coming up counts against maxSurge
            continue
        if deleting(current):
            continue
        if surging:
            candidates.append(current)
        elif not pod_available(current, min_ready, now):
            actions.delete.append(current)
        else:
            candidates.append(current)
    if surging:
        for current in candidates:
            if pod_available(current, min_ready, now):
                if surge <= 0:
                    continue
                surge -= 1
            actions.create.append(target_node(current))
    else:
        actions.delete.extend(candidates[: max(0, max_unavailable - unavailable)])
    return actions


@dataclass
class Counts:
    desired: int = 0
    current: int = 0
    misscheduled: int = 0
    ready: int = 0
    available: int = 0
    updated: int = 0


def count(ds: Obj, nodes: Iterable[Obj], pods_by_node: dict[str, list[Obj]], hash_: str) -> Counts:
    """``updateDaemonSetStatus``'s counts, from the oldest pod on each node."""
    counts = Counts()
    min_ready = spec_of(ds).get("minReadySeconds")
    min_ready = min_ready if isinstance(min_ready, int) else 0
    generation, now = int(meta_of(ds).get("generation") or 0), time.time()
    for node in nodes:
        where = placement(ds, node)
        pods = sorted(pods_by_node.get(str(meta_of(node).get("name") or ""), []), key=_created)
        scheduled = bool(pods)
        if where.should_run:
            counts.desired += 1
            if scheduled:
                counts.current += 1
                pod = pods[0]
                if pod_ready(pod):
                    counts.ready += 1
                    if pod_available(pod, min_ready, now):
                        counts.available += 1
                if pod_updated(pod, hash_, generation):
                    counts.updated += 1
        elif scheduled:
            counts.misscheduled += 1
    return counts


class DaemonSetController(Controller):
    name = "daemonset"
    identity = "daemon-set-controller"

    def __init__(self, api: RestClient, informers: SharedInformers | None = None) -> None:
        super().__init__(api, informers)
        self.events = EventRecorder(api, "daemonset-controller", kind=KIND, api_version="apps/v1")
        self.sets = self.informer("/apis/apps/v1/daemonsets")
        self.pods = self.informer("/api/v1/pods")
        self.nodes = self.informer("/api/v1/nodes")
        self.revisions = self.informer("/apis/apps/v1/controllerrevisions")
        self.on(self.sets, lambda old, new: self.enqueue(new or old))
        self.on(self.pods, lambda old, new: self._owner_changed(new or old))
        # as upstream, a revision's creation or change does not sync its set (its deletion does)
        self.on(self.revisions, lambda old, new: self._owner_changed(old) if new is None else None)
        self.on(self.nodes, self._node_changed)
        self._creating: dict[Key, dict[str, tuple[str, float]]] = defaultdict(dict)
        """Per set: nodes a pod was created for (with its hash), until the informer shows a pod
        with that hash there (or time runs out)."""
        self._backoff: dict[tuple[Key, str], tuple[float, float]] = {}
        """Per set and node: the delay before a failed pod there is deleted again, and when."""
        self._deleting: dict[str, float] = {}
        """Uids of pods deleted, until the informer drops them (or time runs out)."""

    def _owner_changed(self, obj: Obj | None) -> None:
        if obj is None:
            return
        owner = controller_of(obj, KIND)
        if owner:
            self.queue.add((str(meta_of(obj).get("namespace") or ""), owner))

    def _node_changed(self, old: Obj | None, new: Obj | None) -> None:
        """Every set looks again at a node added, removed, or changed in what placement reads
        (not at its status heartbeats: ``shouldIgnoreNodeUpdate``)."""
        if old is not None and new is not None and placement_view(old) == placement_view(new):
            return
        for ds in self.sets.items():
            self.enqueue(ds)

    def _owned(self, items: Iterable[Obj], ds: Obj) -> list[Obj]:
        namespace, uid = meta_of(ds).get("namespace"), meta_of(ds).get("uid")
        return [o for o in items if meta_of(o).get("namespace") == namespace and controller_uid(o) == uid]

    def _pods_by_node(self, key: Key, ds: Obj) -> dict[str, list[Obj]]:
        now = time.time()
        self._deleting = {uid: t for uid, t in self._deleting.items() if t > now}
        by_node: dict[str, list[Obj]] = defaultdict(list)
        for pod in self._owned(self.pods.items(), ds):
            if meta_of(pod).get("uid") in self._deleting:
                pod = {**pod, "metadata": {**meta_of(pod), "deletionTimestamp": "pending"}}
            by_node[target_node(pod)].append(pod)
        pending = self._creating[key]
        for node, (hash_, deadline) in list(pending.items()):
            hashes = {(meta_of(p).get("labels") or {}).get(POD_REVISION_LABEL) for p in by_node.get(node, [])}
            if hash_ in hashes or deadline < now:
                del pending[node]
        return by_node

    async def sync(self, key: Key) -> None:
        namespace, name = key
        ds = self.sets.get(namespace, name)
        if ds is None:
            self._creating.pop(key, None)
            self._backoff = {k: v for k, v in self._backoff.items() if k[0] != key}
            return
        if meta_of(ds).get("deletionTimestamp"):
            return
        revisions = sort_revisions(self._owned(self.revisions.items(), ds))
        current, collisions = await self._revision(ds, revisions)
        hash_ = str((meta_of(current).get("labels") or {}).get(POD_REVISION_LABEL) or "")
        nodes = self.nodes.items()
        by_node = self._pods_by_node(key, ds)
        actions = plan_nodes(ds, nodes, by_node, hash_)
        pending = self._creating[key]
        for node in actions.create:
            if node in pending:
                continue
            await self._create(ds, node, hash_)
            pending[node] = (hash_, time.time() + EXPECTATION_TIMEOUT)
        for pod in actions.failed:
            wait = self._failed_backoff(key, target_node(pod))
            if wait > 0:
                self.queue.add_after(key, wait)
                continue
            message = (
                f"Found failed daemon pod {namespace}/{meta_of(pod).get('name')} on node "
                f"{target_node(pod)}, will try to kill it"
            )
            await self.events.record(ds, "Warning", "FailedDaemonPod", message)
            await self._delete(ds, pod)
        seen = set()
        for pod in actions.delete:
            if meta_of(pod).get("uid") not in seen:
                seen.add(meta_of(pod).get("uid"))
                await self._delete(ds, pod)
        await self._write_status(ds, nodes, self._pods_by_node(key, ds), hash_, collisions)
        used = {str(meta_of(current).get("name"))}
        used |= {
            str((meta_of(p).get("labels") or {}).get(POD_REVISION_LABEL))
            for p in self._owned(self.pods.items(), ds)
        }
        await self._truncate_history(ds, revisions, used)
        if pending:
            self.queue.add_after(key, EXPECTATION_TIMEOUT)

    def _failed_backoff(self, key: Key, node: str) -> float:
        """Seconds to wait before deleting a failed pod on ``node`` (0: now, and the next wait
        doubles), so that a node that keeps failing the pod is not fought in a hot loop."""
        now = time.time()
        delay, until = self._backoff.get((key, node), (0.0, 0.0))
        if until > now:
            return until - now
        if now - until > 2 * FAILED_BACKOFF_MAX:
            delay = 0.0
        delay = min(max(FAILED_BACKOFF_BASE, delay * 2), FAILED_BACKOFF_MAX)
        self._backoff[(key, node)] = (delay, now + delay)
        return 0.0

    # -- revisions --------------------------------------------------------------------------------

    async def _revision(self, ds: Obj, revisions: list[Obj]) -> tuple[Obj, int]:
        """``constructHistory``: the revision of the current template, created when new.

        Revisions whose data puts back the current template are current (whatever their name or
        labels: one written by hand counts too); the one with the highest number is kept, the
        others are deleted, and it is renumbered past every other revision when it is not already.
        """
        collisions = int((ds.get("status") or {}).get("collisionCount") or 0)
        namespace = meta_of(ds).get("namespace")
        wanted = self._new_revision(ds, 0, collisions)
        current: list[Obj] = []
        old: list[Obj] = []
        for revision in revisions:
            revision = await self._with_unique_label(revision)
            (current if equal_data(revision, wanted) else old).append(revision)
        number = next_revision_number(old)
        if not current:
            return await self._snapshot(ds, number, collisions), collisions
        keep = await self._dedup(ds, current)
        if revision_number(keep) < number:
            path = f"{REVISIONS.format(namespace)}/{meta_of(keep)['name']}"
            keep = await self.api.patch(path, {"revision": number})
        return keep, collisions

    async def _with_unique_label(self, revision: Obj) -> Obj:
        """A revision without the pods' hash label gets its name there (upstream's way of
        labelling one it did not write)."""
        if POD_REVISION_LABEL in (meta_of(revision).get("labels") or {}):
            return revision
        path = f"{REVISIONS.format(meta_of(revision).get('namespace'))}/{meta_of(revision)['name']}"
        patch = {"metadata": {"labels": {POD_REVISION_LABEL: meta_of(revision)["name"]}}}
        return await self.api.patch(path, patch)

    async def _snapshot(self, ds: Obj, number: int, collisions: int) -> Obj:
        """A new revision of the current template; a name taken by other data is a hash
        collision, counted (the status write records it) and hashed again."""
        namespace = meta_of(ds).get("namespace")
        while True:
            wanted = self._new_revision(ds, number, collisions)
            try:
                return await self.api.create(REVISIONS.format(namespace), wanted)
            except ApiStatusError as exc:
                if exc.code != 409:
                    raise
            found = await self.api.get(f"{REVISIONS.format(namespace)}/{meta_of(wanted)['name']}")
            if equal_data(found, wanted):
                return found
            collisions += 1

    async def _dedup(self, ds: Obj, current: list[Obj]) -> Obj:
        """``dedupCurHistories``: the current revision with the highest number; the others'
        pods are relabelled to it and the others deleted."""
        keep = max(current, key=revision_number)
        hash_ = (meta_of(keep).get("labels") or {}).get(POD_REVISION_LABEL)
        for duplicate in current:
            if duplicate is keep:
                continue
            stale = (meta_of(duplicate).get("labels") or {}).get(POD_REVISION_LABEL)
            for pod in self._owned(self.pods.items(), ds):
                if (meta_of(pod).get("labels") or {}).get(POD_REVISION_LABEL) == stale:
                    path = f"{PODS.format(meta_of(pod).get('namespace'))}/{meta_of(pod)['name']}"
                    with contextlib.suppress(ApiStatusError):
                        await self.api.patch(path, {"metadata": {"labels": {POD_REVISION_LABEL: hash_}}})
            await self._delete_revision(duplicate)
        return keep

    @staticmethod
    def _new_revision(ds: Obj, number: int, collisions: int) -> Obj:
        revision = new_revision(ds, KIND, number, collisions)
        labels = revision["metadata"]["labels"]
        labels[POD_REVISION_LABEL] = labels[REVISION_HASH_LABEL]
        if meta_of(ds).get("annotations"):
            revision["metadata"]["annotations"] = dict(meta_of(ds)["annotations"])
        return revision

    async def _truncate_history(self, ds: Obj, revisions: list[Obj], used: set[str]) -> None:
        limit = spec_of(ds).get("revisionHistoryLimit")
        limit = limit if isinstance(limit, int) else 10
        history = [
            r
            for r in revisions
            if meta_of(r).get("name") not in used
            and (meta_of(r).get("labels") or {}).get(POD_REVISION_LABEL) not in used
        ]
        for revision in history[: max(0, len(history) - limit)]:
            await self._delete_revision(revision)

    async def _delete_revision(self, revision: Obj) -> None:
        path = f"{REVISIONS.format(meta_of(revision).get('namespace'))}/{meta_of(revision)['name']}"
        try:
            await self.api.delete(path)
        except ApiStatusError as exc:
            if exc.code != 404:
                raise

    # -- pods -------------------------------------------------------------------------------------

    async def _create(self, ds: Obj, node: str, hash_: str) -> None:
        namespace = meta_of(ds).get("namespace")
        try:
            created = await self.api.create(PODS.format(namespace), new_pod(ds, node, hash_))
        except ApiStatusError as exc:
            message = f"Error creating: {exc}"
            await self.events.record(ds, "Warning", "FailedCreate", message)
            if exc.code == 422:
                await self.events.record(
                    ds, "Warning", "FailedPlacement", f"failed to place pod on {node!r}: {exc}"
                )
            raise
        message = f"Created pod: {meta_of(created).get('name')}"
        await self.events.record(ds, "Normal", "SuccessfulCreate", message)

    async def _delete(self, ds: Obj, pod: Obj) -> None:
        name = meta_of(pod).get("name")
        try:
            await self.api.delete(f"{PODS.format(meta_of(pod).get('namespace'))}/{name}")
        except ApiStatusError as exc:
            if exc.code == 404:
                return
            await self.events.record(ds, "Warning", "FailedDelete", f"Error deleting: {exc}")
            raise
        self._deleting[str(meta_of(pod).get("uid"))] = time.time() + EXPECTATION_TIMEOUT
        await self.events.record(ds, "Normal", "SuccessfulDelete", f"Deleted pod: {name}")

    # -- status -----------------------------------------------------------------------------------

    async def _write_status(
        self, ds: Obj, nodes: list[Obj], by_node: dict[str, list[Obj]], hash_: str, collisions: int
    ) -> None:
        counts = count(ds, nodes, by_node, hash_)
        status: Obj = {
            "observedGeneration": meta_of(ds).get("generation", 0),
            "desiredNumberScheduled": counts.desired,
            "currentNumberScheduled": counts.current,
            "numberMisscheduled": counts.misscheduled,
            "numberReady": counts.ready,
            "numberAvailable": counts.available,
            "updatedNumberScheduled": counts.updated,
            "numberUnavailable": counts.desired - counts.available,
            "collisionCount": collisions,
        }
        old = ds.get("status") or {}
        if all(old.get(k, 0) == v for k, v in status.items()):
            return
        path = f"{SETS.format(meta_of(ds).get('namespace'))}/{meta_of(ds)['name']}/status"
        try:
            # An update, as upstream's UpdateStatus: the controller's role may not patch.
            await self.api.update(path, {**ds, "status": {**old, **status}})
        except ApiStatusError as exc:
            if exc.code != 404:
                raise
        min_ready = spec_of(ds).get("minReadySeconds")
        if isinstance(min_ready, int) and min_ready > 0 and counts.available < counts.ready:
            self.queue.add_after((str(meta_of(ds).get("namespace")), str(meta_of(ds)["name"])), min_ready)
