"""The garbage collector: deletes objects whose owners are gone, and carries out cascading deletion.

As kube-controller-manager's ``garbagecollector``: discovery names every resource that can be
listed, watched and deleted (built-in and custom, events aside); an informer per resource feeds a
graph of owners and dependents keyed by uid. Each queued uid is looked at in turn:

* an owner being deleted with the ``orphan`` finalizer has the ownerReference to it removed
  from its dependents, then loses the finalizer (``propagationPolicy: Orphan``);
* an owner being deleted with the ``foregroundDeletion`` finalizer has its dependents that
  block it (``blockOwnerDeletion``) deleted in the foreground, and loses the finalizer once
  they are all gone (``propagationPolicy: Foreground``); a dependent that has such a dependent
  itself stops blocking its owners first, so a cycle of owners cannot wait on itself;
* a dependent whose owners are all gone (or whose uid no longer matches) is deleted
  (``propagationPolicy: Background``, the default); one whose owners are all waiting for their
  dependents is deleted in the foreground; one that still has a live owner only loses its
  references to the gone and the waiting owners.

An owner missing from the graph (its informer lags, or its kind is not watched) is looked up
live before anything is decided: a dependent is never deleted because a cache was late.
Discovery runs again every :data:`REDISCOVERY_PERIOD` seconds so that new custom resources are
followed too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from k3py.client.informer import Handler, Informer, SharedInformers
from k3py.client.rest import ApiStatusError, RestClient
from k3py.controllers.base import Controller, Key

log = logging.getLogger(__name__)

Obj = dict[str, Any]
ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"
REDISCOVERY_PERIOD = 30.0
SYNC_TIMEOUT = 30.0
IGNORED = frozenset({("", "events"), ("events.k8s.io", "events")})
"""Resources the collector never follows (upstream's default ignored resources)."""
UPDATE_RETRIES = 5


# -- discovery ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiResource:
    """One resource as discovery names it, in its group's preferred version."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    verbs: frozenset[str]

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def collection(self, namespace: str = "") -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if namespace and self.namespaced:
            return f"{base}/namespaces/{quote(namespace)}/{self.plural}"
        return f"{base}/{self.plural}"

    def path(self, namespace: str, name: str) -> str:
        return f"{self.collection(namespace)}/{quote(name)}"

    def allows(self, *verbs: str) -> bool:
        return set(verbs) <= self.verbs


@dataclass
class Discovery:
    """The served resources, and the group versions whose discovery failed (with why)."""

    resources: list[ApiResource] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


async def discover(api: RestClient) -> Discovery:
    """Every top-level resource of every group's preferred version (subresources left out)."""
    found = Discovery()
    versions = ["v1"]
    try:
        core = await api.get("/api")
        versions = [str(v) for v in core.get("versions") or ["v1"]][:1]
    except ApiStatusError as exc:
        found.failed["v1"] = str(exc)
        versions = []
    group_versions: list[tuple[str, str]] = [("", v) for v in versions]
    groups = await api.get("/apis")
    for group in groups.get("groups") or []:
        preferred = (group.get("preferredVersion") or {}).get("version")
        if not preferred:
            listed = group.get("versions") or []
            preferred = listed[0].get("version") if listed else None
        if preferred:
            group_versions.append((str(group.get("name") or ""), str(preferred)))
    for group_name, version in group_versions:
        path = f"/apis/{group_name}/{version}" if group_name else f"/api/{version}"
        gv = f"{group_name}/{version}" if group_name else version
        try:
            listed = await api.get(path)
        except ApiStatusError as exc:
            found.failed[gv] = str(exc)
            continue
        found.resources.extend(parse_resource_list(group_name, version, listed))
    return found


def parse_resource_list(group: str, version: str, listed: Obj) -> list[ApiResource]:
    """The top-level resources of an ``APIResourceList``."""
    out = []
    for entry in listed.get("resources") or []:
        name = str(entry.get("name") or "")
        if not name or "/" in name:
            continue
        out.append(
            ApiResource(
                group=group,
                version=version,
                plural=name,
                kind=str(entry.get("kind") or ""),
                namespaced=bool(entry.get("namespaced")),
                verbs=frozenset(str(v) for v in entry.get("verbs") or ()),
            )
        )
    return out


def group_of(api_version: str) -> str:
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


# -- the graph ----------------------------------------------------------------------------------


@dataclass
class Followed:
    """One followed resource: its informer (from the shared ones), this collector's handler on
    it, and this collector's run of it."""

    resource: ApiResource
    informer: Informer
    handler: Handler
    task: asyncio.Task[None] | None = None

    @property
    def has_synced(self) -> bool:
        return self.informer.has_synced


@dataclass
class Node:
    """What the collector knows of one object."""

    uid: str
    resource: ApiResource
    namespace: str
    name: str
    owners: list[Obj]
    deleting: bool
    finalizers: tuple[str, ...]

    @classmethod
    def of(cls, resource: ApiResource, obj: Obj) -> Node:
        meta = obj.get("metadata") or {}
        return cls(
            uid=str(meta.get("uid") or ""),
            resource=resource,
            namespace=str(meta.get("namespace") or ""),
            name=str(meta.get("name") or ""),
            owners=[r for r in meta.get("ownerReferences") or () if isinstance(r, dict) and r.get("uid")],
            deleting=bool(meta.get("deletionTimestamp")),
            finalizers=tuple(str(f) for f in meta.get("finalizers") or ()),
        )

    def owner_uids(self) -> set[str]:
        return {str(r["uid"]) for r in self.owners}

    def blocks(self, owner_uid: str) -> bool:
        """Whether this dependent holds up its owner's foreground deletion."""
        return any(r.get("uid") == owner_uid and r.get("blockOwnerDeletion") for r in self.owners)

    @property
    def waiting_for_dependents(self) -> bool:
        return self.deleting and FOREGROUND in self.finalizers


@dataclass(frozen=True)
class Verdict:
    """How a dependent's owners stand: ``solid`` exist, ``dangling`` are gone (or another object
    now has the name), ``waiting`` are being deleted in the foreground."""

    solid: tuple[str, ...] = ()
    dangling: tuple[str, ...] = ()
    waiting: tuple[str, ...] = ()


def decide(node: Node, verdict: Verdict) -> tuple[str, str | tuple[str, ...]]:
    """What to do with a dependent: ``("keep", ())``, ``("unlink", uids)`` or ``("delete", policy)``."""
    if verdict.solid:
        gone = verdict.dangling + verdict.waiting
        return ("unlink", gone) if gone else ("keep", ())
    if verdict.waiting:
        return "delete", "Foreground"
    if verdict.dangling:
        return "delete", own_policy(node.finalizers)
    return "keep", ()


def own_policy(finalizers: tuple[str, ...]) -> str:
    """The propagation an object asked for itself (its finalizers), when the collector deletes it."""
    if ORPHAN in finalizers:
        return "Orphan"
    if FOREGROUND in finalizers:
        return "Foreground"
    return "Background"


class GarbageCollector(Controller):
    name = "garbage-collector"
    identity = "generic-garbage-collector"
    workers = 4

    def __init__(
        self,
        api: RestClient,
        informers: SharedInformers | None = None,
        *,
        rediscovery_period: float = REDISCOVERY_PERIOD,
        sync_timeout: float = SYNC_TIMEOUT,
    ) -> None:
        super().__init__(api, informers)
        self.rediscovery_period = rediscovery_period
        self.sync_timeout = sync_timeout
        self.nodes: dict[str, Node] = {}
        self.dependents: dict[str, set[str]] = {}
        self.kinds: dict[tuple[str, str], ApiResource] = {}
        self.followed: dict[str, Followed] = {}
        """The informers, by ``plural.group`` (this controller starts its own: discovery names them)."""

    # -- following resources --------------------------------------------------------------------

    async def run(self) -> None:
        """Follow what discovery names, wait (a while) for the graph, then work until cancelled.

        An informer that cannot list (a broken aggregated API, say) must not stop collection
        everywhere else: after :data:`SYNC_TIMEOUT` the workers start anyway, and owners missing
        from the graph are looked up live.
        """
        refresher: asyncio.Task[None] | None = None
        try:
            self._follow(await self._discover_until_it_works())
            waits = [asyncio.ensure_future(i.informer.synced()) for i in self.followed.values()]
            _, pending = await asyncio.wait(waits, timeout=self.sync_timeout) if waits else (set(), set())
            for waiting in pending:
                waiting.cancel()
            if pending:
                late = sorted(i.informer.path for i in self.followed.values() if not i.has_synced)
                log.warning("%s: starting before these caches synced: %s", self.name, ", ".join(late))
            refresher = asyncio.create_task(self._rediscover(), name=f"{self.name}:discovery")
            await super().run()
        finally:
            for followed in self.followed.values():
                followed.informer.remove_handler(followed.handler)
            tasks = [i.task for i in self.followed.values() if i.task is not None]
            tasks += [refresher] if refresher is not None else []
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _discover_until_it_works(self) -> Discovery:
        delay = 0.5
        while True:
            try:
                return await discover(self.api)
            except ApiStatusError as exc:
                log.warning("%s: discovery failed (%s), retrying in %.1fs", self.name, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def _rediscover(self) -> None:
        while True:
            await asyncio.sleep(self.rediscovery_period)
            try:
                self._follow(await discover(self.api))
            except ApiStatusError as exc:
                log.warning("%s: discovery failed: %s", self.name, exc)

    def _follow(self, found: Discovery) -> None:
        """Follow the resources ``found`` names; stop following those it no longer names (a
        deleted custom resource), unless their group's discovery failed this time."""
        failed_groups = {group_of(gv) for gv in found.failed}
        kinds = {k: r for k, r in self.kinds.items() if r.group in failed_groups}
        wanted: dict[str, ApiResource] = {}
        for r in found.resources:
            kinds.setdefault((r.group, r.kind), r)
            if r.allows("list", "watch", "delete") and (r.group, r.plural) not in IGNORED:
                wanted.setdefault(r.group_resource, r)
        self.kinds = kinds
        for name in list(self.followed):
            if name not in wanted and self.followed[name].resource.group not in failed_groups:
                self._unfollow(name)
        for name, r in wanted.items():
            if name in self.followed:
                continue
            informer = self.shared.informer(r.collection())
            handler = self._handler(r)
            informer.add_handler(handler)
            task = asyncio.create_task(informer.run(), name=f"{self.name}:{informer.path}")
            self.followed[name] = Followed(r, informer, handler, task)

    def _unfollow(self, name: str) -> None:
        followed = self.followed.pop(name)
        followed.informer.remove_handler(followed.handler)
        if followed.task is not None:
            followed.task.cancel()
        log.info("%s: no longer following %s", self.name, name)
        for obj in followed.informer.items():  # as if deleted: their dependents are judged again
            self.observe(followed.resource, obj, None)

    def _handler(self, resource: ApiResource) -> Callable[[Obj | None, Obj | None], None]:
        return lambda old, new: self.observe(resource, old, new)

    # -- the graph ------------------------------------------------------------------------------

    def observe(self, resource: ApiResource, old: Obj | None, new: Obj | None) -> None:
        """Fold one change into the graph and queue the uids it concerns."""
        if new is None:
            if old is not None:
                self._forget(Node.of(resource, old).uid)
            return
        node = Node.of(resource, new)
        if not node.uid:
            return
        before = self.nodes.get(node.uid)
        self.nodes[node.uid] = node
        previous = before.owner_uids() if before is not None else set()
        current = node.owner_uids()
        for gone in previous - current:
            self._unindex(gone, node.uid)
            self._touch(gone)  # an owner waiting for this dependent may be done
        if before is not None:
            for owner in current:
                if before.blocks(owner) and not node.blocks(owner):
                    self._touch(owner)  # nor does it block that owner any more
        for owner in current:
            self.dependents.setdefault(owner, set()).add(node.uid)
        if node.owners or (node.deleting and {ORPHAN, FOREGROUND} & set(node.finalizers)):
            self._touch(node.uid)
        if before is None or before.deleting != node.deleting or before.finalizers != node.finalizers:
            for dep in self.dependents.get(node.uid, ()):  # their owner's state changed
                self._touch(dep)

    def _forget(self, uid: str) -> None:
        node = self.nodes.pop(uid, None)
        if node is None:
            return
        for owner in node.owner_uids():
            self._unindex(owner, uid)
            self._touch(owner)
        for dep in self.dependents.get(uid, ()):  # their owner is gone
            self._touch(dep)

    def _unindex(self, owner: str, dependent: str) -> None:
        deps = self.dependents.get(owner)
        if deps is not None:
            deps.discard(dependent)
            if not deps and owner not in self.nodes:
                del self.dependents[owner]

    def _touch(self, uid: str) -> None:
        if uid in self.nodes:
            self.queue.add(("", uid))

    # -- deciding -------------------------------------------------------------------------------

    async def sync(self, key: Key) -> None:
        node = self.nodes.get(key[1])
        if node is None:
            return
        if node.deleting:
            if ORPHAN in node.finalizers:
                await self._orphan_dependents(node)
            elif FOREGROUND in node.finalizers:
                await self._delete_blocking_dependents(node)
            return  # being deleted: nothing more to decide about it
        if node.owners:
            await self._judge(node)

    async def _orphan_dependents(self, owner: Node) -> None:
        for uid in sorted(self.dependents.get(owner.uid, ())):
            dep = self.nodes.get(uid)
            if dep is not None:
                await self._unlink(dep, {owner.uid})
        await self._drop_finalizer(owner, ORPHAN)
        log.info("%s: orphaned the dependents of %s", self.name, _describe(owner))

    async def _delete_blocking_dependents(self, owner: Node) -> None:
        blocking = [
            dep
            for uid in sorted(self.dependents.get(owner.uid, ()))
            if (dep := self.nodes.get(uid)) is not None and dep.blocks(owner.uid)
        ]
        if not blocking:
            await self._drop_finalizer(owner, FOREGROUND)
            log.info("%s: the dependents of %s are gone", self.name, _describe(owner))
            return
        for dep in blocking:
            if not dep.deleting:
                self.queue.add(("", dep.uid))  # judged as a dependent of a waiting owner

    async def _judge(self, node: Node) -> None:
        """Decide on the dependent as it is now, not as the graph last saw it: a reference added
        a moment ago (another, valid owner) must keep it. The delete then names the version
        judged, so a change made meanwhile fails it and the change's event judges again."""
        live = await self._live(node)
        if live is None:
            return
        node = Node.of(node.resource, live)
        if not node.owners or node.deleting:
            return
        verdict = await self._verdict(node)
        action, arg = decide(node, verdict)
        if action == "unlink":
            assert isinstance(arg, tuple)
            await self._unlink(node, set(arg))
        elif action == "delete":
            assert isinstance(arg, str)
            version = str((live.get("metadata") or {}).get("resourceVersion") or "")
            if verdict.waiting and self._cycle_risk(node):
                await self._unblock(node)
                version = ""  # changed by this collector, for this very deletion
            await self._delete(node, arg, version)

    async def _live(self, node: Node) -> Obj | None:
        """The object ``node`` stands for, read afresh; None once it is gone or replaced."""
        try:
            obj = await self.api.get(node.resource.path(node.namespace, node.name))
        except ApiStatusError as exc:
            if exc.code == 404:
                return None
            raise
        return obj if (obj.get("metadata") or {}).get("uid") == node.uid else None

    def _cycle_risk(self, node: Node) -> bool:
        """A dependent of ``node`` waits for its own dependents too: the owners may form a
        cycle (upstream's detection, false positives included)."""
        return any(
            (dep := self.nodes.get(uid)) is not None and dep.waiting_for_dependents
            for uid in self.dependents.get(node.uid, ())
        )

    async def _unblock(self, node: Node) -> None:
        """Make ``node``'s owner references non-blocking, so that a cycle of owners deleted in
        the foreground cannot wait on itself forever."""

        def change(meta: Obj) -> bool:
            refs = meta.get("ownerReferences") or []
            if not any(r.get("blockOwnerDeletion") for r in refs):
                return False
            meta["ownerReferences"] = [{**r, "blockOwnerDeletion": False} for r in refs]
            return True

        await self._update_meta(node, change)
        log.info("%s: %s no longer blocks its owners (a possible cycle)", self.name, _describe(node))

    async def _verdict(self, node: Node) -> Verdict:
        solid: list[str] = []
        dangling: list[str] = []
        waiting: list[str] = []
        for ref in node.owners:
            uid = str(ref["uid"])
            state = await self._owner_state(node, ref)
            {"solid": solid, "dangling": dangling, "waiting": waiting}[state].append(uid)
        return Verdict(tuple(solid), tuple(dangling), tuple(waiting))

    async def _owner_state(self, node: Node, ref: Obj) -> str:
        uid = str(ref["uid"])
        owner = self.nodes.get(uid)
        if owner is not None:
            return "waiting" if owner.waiting_for_dependents else "solid"
        resource = self.kinds.get((group_of(str(ref.get("apiVersion") or "")), str(ref.get("kind") or "")))
        if resource is None:
            raise LookupError(
                f"cannot resolve the owner {ref.get('apiVersion')}/{ref.get('kind')} {ref.get('name')} "
                f"of {_describe(node)}: no such kind is served"
            )
        if resource.namespaced and not node.namespace:
            return "dangling"  # a cluster-scoped object cannot be owned by a namespaced one
        try:
            live = await self.api.get(resource.path(node.namespace, str(ref.get("name") or "")))
        except ApiStatusError as exc:
            if exc.code == 404:
                return "dangling"
            raise
        meta = live.get("metadata") or {}
        if meta.get("uid") != uid:
            return "dangling"
        if meta.get("deletionTimestamp") and FOREGROUND in (meta.get("finalizers") or ()):
            return "waiting"
        return "solid"

    # -- acting ---------------------------------------------------------------------------------

    async def _delete(self, node: Node, policy: str, version: str = "") -> None:
        """Delete ``node`` (only at ``version``, when given)."""
        preconditions = {"uid": node.uid, **({"resourceVersion": version} if version else {})}
        body = {
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "propagationPolicy": policy,
            "preconditions": preconditions,
        }
        try:
            await self.api.delete(node.resource.path(node.namespace, node.name), body)
        except ApiStatusError as exc:
            if exc.code not in (404, 409):  # gone already, replaced, or changed since it was judged
                raise
            return
        log.info("%s: deleted %s (%s)", self.name, _describe(node), policy)

    async def _unlink(self, node: Node, owners: set[str]) -> None:
        def change(meta: Obj) -> bool:
            refs = meta.get("ownerReferences") or []
            kept = [r for r in refs if r.get("uid") not in owners]
            if len(kept) == len(refs):
                return False
            if kept:
                meta["ownerReferences"] = kept
            else:
                meta.pop("ownerReferences", None)
            return True

        await self._update_meta(node, change)

    async def _drop_finalizer(self, node: Node, finalizer: str) -> None:
        def change(meta: Obj) -> bool:
            finalizers = list(meta.get("finalizers") or [])
            if finalizer not in finalizers:
                return False
            meta["finalizers"] = [f for f in finalizers if f != finalizer]
            return True

        await self._update_meta(node, change)

    async def _update_meta(self, node: Node, change: Callable[[Obj], bool]) -> None:
        """Read, change the metadata, write with the read's resourceVersion; again on a conflict."""
        path = node.resource.path(node.namespace, node.name)
        for _ in range(UPDATE_RETRIES):
            try:
                obj = await self.api.get(path)
            except ApiStatusError as exc:
                if exc.code == 404:
                    return
                raise
            meta = obj.setdefault("metadata", {})
            if meta.get("uid") != node.uid or not change(meta):
                return
            try:
                await self.api.update(path, obj)
            except ApiStatusError as exc:
                if exc.code == 404:
                    return
                if exc.code == 409:
                    continue
                raise
            return
        raise RuntimeError(f"{_describe(node)} kept changing while being updated")


def _describe(node: Node) -> str:
    where = f"{node.namespace}/" if node.namespace else ""
    return f"{node.resource.kind} {where}{node.name} ({node.uid})"
