"""The namespace controller: empties a namespace that is being deleted, then finalizes it.

As kube-controller-manager's ``namespace`` controller: a namespace with a
``deletionTimestamp`` is ``Terminating``; the controller finds every namespaced resource through
discovery (custom resources included), deletes what the namespace still holds (in the
background propagation, pods with their grace period: their kubelets finish them; pods first,
everything else once they are gone), and reports
how it goes in the namespace's conditions (``NamespaceDeletionDiscoveryFailure``,
``NamespaceDeletionGroupVersionParsingFailure``, ``NamespaceDeletionContentFailure``,
``NamespaceContentRemaining``, ``NamespaceFinalizersRemaining``). While content remains it looks
again every ``recheck`` seconds; once none does it removes the ``kubernetes`` finalizer through
``namespaces/{name}/finalize`` and deletes the namespace, which then goes away.

A server that does not serve ``finalize`` deletes the namespace itself once its metadata
finalizers are gone; the controller then only empties it.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from k3py.api import objects
from k3py.client.informer import SharedInformers
from k3py.client.rest import ApiStatusError, RestClient
from k3py.controllers.base import Controller, Key
from k3py.controllers.garbagecollector import ApiResource, Discovery, discover

log = logging.getLogger(__name__)

Obj = dict[str, Any]
FINALIZER = "kubernetes"
RECHECK = 2.0
DISCOVERY_TTL = 10.0
"""How long one discovery serves the namespaces being deleted (a new resource waits as long)."""
DELETE_OPTIONS = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}


@dataclass
class Content:
    """What a pass over a namespace found: what remains, its finalizers, what could not be deleted."""

    remaining: Counter[str] = field(default_factory=Counter)
    finalizers: Counter[str] = field(default_factory=Counter)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.remaining and not self.failed


def conditions(found: Discovery, content: Content) -> list[Obj]:
    """The five deletion conditions, worded as upstream's namespace controller words them."""

    def cond(kind: str, true: bool, reason: str, message: str) -> Obj:
        return {"type": kind, "status": "True" if true else "False", "reason": reason, "message": message}

    failed_groups = sorted(f"{gv}: {why}" for gv, why in found.failed.items())
    failed_kinds = sorted(content.failed)
    remaining = ", ".join(f"{r} has {n} resource instances" for r, n in sorted(content.remaining.items()))
    finalizers = ", ".join(f"{f} in {n} resource instances" for f, n in sorted(content.finalizers.items()))
    return [
        cond(
            "NamespaceDeletionDiscoveryFailure",
            bool(failed_groups),
            "DiscoveryFailed" if failed_groups else "ResourcesDiscovered",
            f"Discovery failed for some groups, {len(failed_groups)} failing: {', '.join(failed_groups)}"
            if failed_groups
            else "All resources successfully discovered",
        ),
        cond(
            "NamespaceDeletionGroupVersionParsingFailure",
            False,
            "ParsedGroupVersions",
            "All legacy kube types successfully parsed",
        ),
        cond(
            "NamespaceDeletionContentFailure",
            bool(failed_kinds),
            "ContentDeletionFailed" if failed_kinds else "ContentDeleted",
            f"Failed to delete all resource types, {len(failed_kinds)} remaining: "
            + ", ".join(f"{k}: {content.failed[k]}" for k in failed_kinds)
            if failed_kinds
            else "All content successfully deleted, may be waiting on finalization",
        ),
        cond(
            "NamespaceContentRemaining",
            bool(remaining),
            "SomeResourcesRemain" if remaining else "ContentRemoved",
            f"Some resources are remaining: {remaining}" if remaining else "All content successfully removed",
        ),
        cond(
            "NamespaceFinalizersRemaining",
            bool(finalizers),
            "SomeFinalizersRemain" if finalizers else "ContentHasNoFinalizers",
            f"Some content in the namespace has finalizers remaining: {finalizers}"
            if finalizers
            else "All content-preserving finalizers finished",
        ),
    ]


def merge_conditions(old: list[Obj], new: list[Obj], now: str) -> list[Obj]:
    """``new`` with each condition's ``lastTransitionTime`` kept when its status did not change."""
    before = {c.get("type"): c for c in old}
    kept = [c for c in old if c.get("type") not in {n["type"] for n in new}]
    out = []
    for cond in new:
        prev = before.get(cond["type"])
        same = prev is not None and prev.get("status") == cond["status"]
        stamp = prev.get("lastTransitionTime") if same and prev is not None else now
        out.append({**cond, "lastTransitionTime": stamp or now})
    return kept + out


class NamespaceController(Controller):
    name = "namespace-controller"
    identity = "namespace-controller"
    workers = 2

    def __init__(
        self, api: RestClient, informers: SharedInformers | None = None, *, recheck: float = RECHECK
    ) -> None:
        super().__init__(api, informers)
        self.recheck = recheck
        self._discovered: tuple[float, Discovery] | None = None
        self.namespaces = self.informer("/api/v1/namespaces")
        self.on(self.namespaces, self._changed)

    def _changed(self, old: Obj | None, new: Obj | None) -> None:
        if new is not None and (new.get("metadata") or {}).get("deletionTimestamp"):
            self.enqueue(new)

    async def sync(self, key: Key) -> None:
        path = f"/api/v1/namespaces/{quote(key[1])}"
        try:
            ns = await self.api.get(path)
        except ApiStatusError as exc:
            if exc.code == 404:
                return
            raise
        if not (ns.get("metadata") or {}).get("deletionTimestamp"):
            return
        found = await self._discover()
        content = await self._delete_content(key[1], found.resources)
        ns = await self._report(ns, found, content)
        if not content.empty or found.failed:
            self.queue.add_after(key, self.recheck)
            return
        await self._finalize(ns)

    async def _discover(self) -> Discovery:
        """Discovery, reused for :data:`DISCOVERY_TTL` seconds while it fully succeeds."""
        now = time.monotonic()
        if self._discovered is not None and now - self._discovered[0] < DISCOVERY_TTL:
            return self._discovered[1]
        found = await discover(self.api)
        self._discovered = (now, found) if not found.failed else None
        return found

    async def _delete_content(self, namespace: str, resources: list[ApiResource]) -> Content:
        """Delete what the namespace holds, pods first: nothing else goes while a pod remains
        (upstream's OrderedNamespaceDeletion), so a pod never outlives what it uses."""
        content = Content()
        pods = [r for r in resources if (r.group, r.plural) == ("", "pods")]
        for r in [*pods, *(r for r in resources if r not in pods)]:
            if not r.namespaced or not r.allows("list", "delete"):
                continue
            if r not in pods and content.remaining.get("pods.", 0):
                break  # the rest waits for the pods to be gone
            try:
                listed = await self.api.list(r.collection(namespace))
                for item in listed.get("items") or []:
                    meta = item.get("metadata") or {}
                    if not meta.get("deletionTimestamp"):
                        await self._delete(r, namespace, str(meta.get("name") or ""))
                left = (await self.api.list(r.collection(namespace))).get("items") or []
            except ApiStatusError as exc:
                content.failed[r.group_resource] = str(exc)
                continue
            if left:
                content.remaining[f"{r.plural}.{r.group}"] += len(left)
            for item in left:
                for finalizer in (item.get("metadata") or {}).get("finalizers") or ():
                    content.finalizers[str(finalizer)] += 1
        return content

    async def _delete(self, r: ApiResource, namespace: str, name: str) -> None:
        try:
            await self.api.delete(r.path(namespace, name), DELETE_OPTIONS)
        except ApiStatusError as exc:
            if exc.code not in (404, 409):
                raise

    async def _report(self, ns: Obj, found: Discovery, content: Content) -> Obj:
        status = dict(ns.get("status") or {})
        old = list(status.get("conditions") or [])
        wanted = merge_conditions(old, conditions(found, content), objects.now())
        if status.get("phase") == "Terminating" and _without_times(old) == _without_times(wanted):
            return ns
        status["phase"] = "Terminating"
        status["conditions"] = wanted
        name = quote(str(ns["metadata"]["name"]))
        try:
            return await self.api.update(f"/api/v1/namespaces/{name}/status", {**ns, "status": status})
        except ApiStatusError as exc:
            if exc.code == 404:
                return ns
            raise

    async def _finalize(self, ns: Obj) -> None:
        name = quote(str(ns["metadata"]["name"]))
        spec = dict(ns.get("spec") or {})
        finalizers = [f for f in spec.get("finalizers") or () if f != FINALIZER]
        if len(finalizers) != len(spec.get("finalizers") or ()):
            spec["finalizers"] = finalizers
            try:
                ns = await self.api.update(f"/api/v1/namespaces/{name}/finalize", {**ns, "spec": spec})
            except ApiStatusError as exc:
                if exc.code in (404, 405):  # not served: the server deletes the emptied namespace itself
                    log.debug("%s: %s emptied; finalize is not served", self.name, name)
                    return
                raise
        if (ns.get("spec") or {}).get("finalizers") or (ns.get("metadata") or {}).get("finalizers"):
            return  # another finalizer still holds it
        try:
            await self.api.delete(f"/api/v1/namespaces/{name}")
        except ApiStatusError as exc:
            if exc.code != 404:
                raise
        log.info("%s: namespace %s emptied and finalized", self.name, name)


def _without_times(conds: list[Obj]) -> list[Obj]:
    return [{k: v for k, v in c.items() if k != "lastTransitionTime"} for c in conds]
