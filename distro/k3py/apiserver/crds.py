"""CustomResourceDefinitions, served: the registry follows the stored CRDs and a controller keeps
their status, as apiextensions-apiserver's controllers do.

- :func:`install_custom_resources` runs at start, before the server listens: every stored CRD
  that is ``Established`` is served again from the first request (routing, discovery, OpenAPI
  all read the registry).
- :func:`run_crd_controller` runs for the life of the server (a supervised task). It follows
  CRDs through :class:`~k3py.apiserver.cache.ObjectCache` and, after every change:

  1. *naming* and *establishing*: works out each CRD's ``acceptedNames`` among the CRDs of its
     group and writes ``NamesAccepted`` and ``Established`` through ``/status``
     (:mod:`k3py.api.crd.naming`);
  2. serves the established CRDs: :meth:`~k3py.api.resources.Registry.set_custom` with one
     resource per served version (a CRD being deleted stays served, without create);
  3. *finalizing*: a deleted CRD holds the ``customresourcecleanup.apiextensions.k8s.io``
     finalizer (taken by its strategy on delete) while its objects are deleted, with the
     ``Terminating`` condition telling how far it got; then the finalizer goes and the CRD with it;
  4. *registration*: one local APIService per served group-version (``v1.stable.example.com``,
     labelled ``kube-aggregator.kubernetes.io/automanaged: "true"``, group priority 1000 and
     version priority 100, as kube-apiserver's crdregistration controller writes them); a
     group-version built-ins are served in keeps its own (``onstart``) APIService.

A CRD whose group and plural are a built-in's is never served and, deleted, deletes no objects
(``Terminating`` False, ``OverlappingBuiltInResource``): they are the built-in's. Every CRD's work
is apart from the others': one that cannot be read (a wrongly-typed field an older k3py stored)
or whose work fails is logged and skipped, and never stops the server starting nor the other
CRDs being served.

Writes go through the generic store, as the server's own (field manager ``kube-apiserver``).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, Final

from k3py.api import objects
from k3py.api.apiregistration import GROUP as APIREGISTRATION
from k3py.api.apiregistration import MANAGED_LABEL
from k3py.api.crd import CLEANUP_FINALIZER, GROUP, PLURAL, VERSION, decoding, naming
from k3py.api.crd.model import (
    ESTABLISHED,
    NAMES_ACCEPTED,
    TERMINATING,
    condition,
    is_true,
    resources_of,
    same_condition,
    set_condition,
    storage_resource,
    version_order,
)
from k3py.api.resources import Registry, Resource
from k3py.apiserver import errors
from k3py.apiserver.cache import ObjectCache
from k3py.apiserver.generic import DeleteOptions, ListOptions, ObjectStore, WriteOptions
from k3py.storage import StorageError

log = logging.getLogger(__name__)

Obj = dict[str, Any]

MANAGER: Final = "kube-apiserver"
RETRY_DELAY: Final = 1.0
"""Seconds before a pass runs again when something is still pending (a failed write, objects
of a deleted CRD still finalizing)."""
CLEANUP_TIMEOUT: Final = 60.0
"""Seconds a deleted CRD's objects get before ``Terminating`` reports ``InstanceDeletionCheck``."""
AUTOMANAGED: Final = "true"


def crd_resource(registry: Registry) -> Resource | None:
    return registry.lookup(GROUP, VERSION, PLURAL)


def served(crds: Iterable[Obj]) -> list[Resource]:
    """The resources of the established CRDs, in discovery order (group, then version priority).

    ``crds`` are as :func:`readable` returns them. One that overlaps a built-in is left out, and
    so is one whose resources cannot be made (logged): the others are served all the same.
    """
    out: list[Resource] = []
    for crd in crds:
        try:
            if crd.get("spec") and is_true(crd, ESTABLISHED) and not naming.overlaps_builtin(crd):
                out += resources_of(crd)
        except Exception as exc:  # one unreadable CRD must not stop serving the rest
            log.error("Cannot serve CustomResourceDefinition %s: %r", _name(crd), exc)
    return sorted(out, key=lambda r: (r.group, version_order(r.version), r.plural))


def readable(crd: Obj) -> Obj:
    """A stored CRD as the server reads it: a copy, its nulls decoded as Go decodes them
    (:func:`~k3py.api.crd.decoding.decode`). ValueError names the field of the wrong type that
    an older k3py let through, when there is one."""
    copied = copy.deepcopy(crd)
    if error := decoding.decode(copied):
        raise ValueError(error)
    return copied


def _readable(crds: Iterable[Obj]) -> list[Obj]:
    """The CRDs that :func:`readable` can read, the others logged."""
    out: list[Obj] = []
    for crd in crds:
        try:
            out.append(readable(crd))
        except Exception as exc:  # as unreadable as a wrongly-typed field
            log.error("Cannot serve CustomResourceDefinition %s: %s", _name(crd), exc)
    return out


def _name(crd: Obj) -> str:
    meta = crd.get("metadata")
    return str(meta.get("name")) if isinstance(meta, dict) else "(unnamed)"


def _serving_key(crds: Iterable[Obj]) -> tuple[Any, ...]:
    """What serving depends on: a CRD's spec (its generation), accepted names and deletion."""
    return tuple(
        sorted(
            (
                str(crd["metadata"]["name"]),
                str(crd["metadata"].get("uid")),
                int(crd["metadata"].get("generation") or 0),
                repr((crd.get("status") or {}).get("acceptedNames")),
                bool(crd["metadata"].get("deletionTimestamp")),
            )
            for crd in crds
            if crd.get("spec") and is_true(crd, ESTABLISHED)
        )
    )


async def install_custom_resources(store: ObjectStore) -> None:
    """Serve the stored, established CRDs (at start, before the server listens)."""
    resource = crd_resource(store.registry)
    if resource is None:
        log.info("%s/%s is not served: no custom resources", GROUP, VERSION)
        return
    try:
        listed = await store.list(resource, "", ListOptions())
    except Exception:  # the server starts all the same: the controller serves them when it can
        log.exception("Cannot list CustomResourceDefinitions: no custom resources served yet")
        return
    store.registry.set_custom(served(_readable(listed["items"])))
    if count := len(store.registry.custom()):
        log.info("Serving %d custom resource versions from %d CRDs", count, len(listed["items"]))


async def run_crd_controller(store: ObjectStore) -> None:
    """Keep CRDs' status, serving and cleanup current, until cancelled (a supervised task)."""
    resource = crd_resource(store.registry)
    if resource is None:
        return
    await _Controller(store, resource).run()


class _Controller:
    def __init__(self, store: ObjectStore, resource: Resource) -> None:
        self.store = store
        self.resource = resource
        self.cache = ObjectCache(store, resource)
        self.changed = asyncio.Event()
        self.serving: tuple[Any, ...] | None = None
        self.cleanup_started: dict[str, float] = {}
        self.read: dict[str, tuple[str, Obj | None]] = {}
        """Each CRD's resourceVersion and what :func:`readable` made of it (None: unreadable)."""

    async def run(self) -> None:
        self.cache.subscribe(lambda _: self.changed.set())
        await self.cache.start()
        try:
            while True:
                self.changed.clear()
                try:
                    pending = await self.sync()
                except (StorageError, errors.ApiError) as exc:
                    log.warning("CustomResourceDefinitions: %s; trying again", exc)
                    pending = True
                except Exception:  # a bug here must not leave CRDs unserved until a restart
                    log.exception("CustomResourceDefinitions: the pass failed; trying again")
                    pending = True
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.changed.wait(), RETRY_DELAY if pending else None)
        finally:
            await self.cache.stop()

    async def sync(self) -> bool:
        """One pass over every CRD; True when something is left to retry.

        Each CRD's work is apart: one that fails (or cannot be read at all) is logged and
        skipped, and the others are named, served and finalized all the same.
        """
        view = self._readable(self.cache.objects())
        pending = False
        for name in sorted(view, key=lambda n: (view[n]["metadata"].get("creationTimestamp") or "", n)):
            try:
                written = await self._names(view[name], view)
            except errors.ApiError as exc:
                log.warning("CustomResourceDefinition %s: could not update its names: %s", name, exc)
                pending = True
                continue
            except Exception:  # never stop the controller for one CRD
                log.exception("CustomResourceDefinition %s: cannot work out its names", name)
                continue
            if written is not None:
                view[name] = written
        key = _serving_key(view.values())
        if key != self.serving:
            self.store.registry.set_custom(served(view.values()))
            if await self._register(self.store.registry.custom()):
                self.serving = key
            else:
                pending = True
        for name, crd in view.items():
            if crd["metadata"].get("deletionTimestamp") and CLEANUP_FINALIZER in (
                crd["metadata"].get("finalizers") or ()
            ):
                try:
                    pending |= await self._finalize(crd)
                except errors.ApiError as exc:
                    log.warning("CustomResourceDefinition %s: cleanup failed: %s", name, exc)
                    pending = True
                except Exception:  # never stop the controller for one CRD
                    log.exception("CustomResourceDefinition %s: cleanup failed", name)
        return pending

    def _readable(self, crds: Iterable[Obj]) -> dict[str, Obj]:
        """The CRDs by name as :func:`readable` reads them, each read once per resourceVersion;
        one that cannot be read is left out and logged once."""
        view: dict[str, Obj] = {}
        read: dict[str, tuple[str, Obj | None]] = {}
        for crd in crds:
            name, version = _name(crd), str(crd["metadata"].get("resourceVersion"))
            known = self.read.get(name)
            if known is not None and known[0] == version:
                found = known[1]
            else:
                try:
                    found = readable(crd)
                except Exception as exc:  # as unreadable as a wrongly-typed field
                    found = None
                    log.error(
                        "CustomResourceDefinition %s cannot be read, so it is neither served nor "
                        "finalized: %s; correct that field with a patch",
                        name,
                        exc,
                    )
            read[name] = (version, found)
            if found is not None:
                view[name] = found
        self.read = read
        return view

    # -- naming and establishing ----------------------------------------------------------------

    async def _names(self, crd: Obj, view: dict[str, Obj]) -> Obj | None:
        """Write the CRD's accepted names and conditions if they changed; the written CRD."""

        def wanted(current: Obj) -> tuple[Obj, Obj, Obj]:
            others = [c for n, c in view.items() if n != current["metadata"]["name"]] + [current]
            return naming.names_and_conditions(current, others)

        def stale(current: Obj) -> bool:
            names, accepted, established = wanted(current)
            return not (
                (current.get("status") or {}).get("acceptedNames") == names
                and same_condition(condition(current, NAMES_ACCEPTED), accepted)
                and same_condition(condition(current, ESTABLISHED), established)
            )

        if not stale(crd):
            return None

        def change(current: Obj) -> Obj:
            names, accepted, established = wanted(current)
            current.setdefault("status", {})["acceptedNames"] = names
            now = objects.now()
            set_condition(current, accepted, now)
            set_condition(current, established, now)
            return current

        written = await self._update(crd, change, "status")
        if written is not None:
            log.info(
                "CustomResourceDefinition %s: NamesAccepted=%s, Established=%s",
                crd["metadata"]["name"],
                (condition(written, NAMES_ACCEPTED) or {}).get("status"),
                (condition(written, ESTABLISHED) or {}).get("status"),
            )
        return written

    async def _update(self, crd: Obj, change: Callable[[Obj], Obj], subresource: str = "") -> Obj | None:
        name = crd["metadata"]["name"]
        try:
            return await self.store.guaranteed_update(
                self.resource, "", name, change, WriteOptions(field_manager=MANAGER), subresource
            )
        except errors.ApiError as exc:
            if exc.code == 404:
                return None  # deleted meanwhile: the cache tells the rest
            raise

    # -- finalizing ---------------------------------------------------------------------------------

    async def _set_terminating(self, crd: Obj, status: str, reason: str, message: str) -> Obj | None:
        wanted = {"type": TERMINATING, "status": status, "reason": reason, "message": message}
        if same_condition(condition(crd, TERMINATING), wanted):
            return crd

        def change(current: Obj) -> Obj:
            set_condition(current, wanted, objects.now())
            return current

        return await self._update(crd, change, "status")

    async def _finalize(self, crd: Obj) -> bool:
        """Delete a deleted CRD's objects, then drop its finalizer; True while objects remain."""
        name = crd["metadata"]["name"]
        updated: Obj | None = crd
        if (condition(crd, TERMINATING) or {}).get("reason") in (None, "InstanceDeletionPending"):
            updated = await self._set_terminating(
                crd, "True", "InstanceDeletionInProgress", "CustomResource deletion is in progress"
            )
        if updated is None:
            return False
        if naming.overlaps_builtin(crd):  # its objects are the built-in's: they stay
            updated = await self._set_terminating(
                updated,
                "False",
                "OverlappingBuiltInResource",
                "instances overlap with built-in resources in storage",
            )
        elif is_true(crd, ESTABLISHED):
            remaining = await self._delete_objects(crd)
            if remaining:
                started = self.cleanup_started.setdefault(name, time.monotonic())
                if time.monotonic() - started > CLEANUP_TIMEOUT:
                    await self._set_terminating(
                        updated,
                        "True",
                        "InstanceDeletionCheck",
                        "could not confirm zero CustomResources remaining: "
                        "timed out waiting for the condition",
                    )
                return True
            updated = await self._set_terminating(
                updated, "False", "InstanceDeletionCompleted", "removed all instances"
            )
        else:
            updated = await self._set_terminating(
                updated, "False", "NeverEstablished", "resource was never established"
            )
        self.cleanup_started.pop(name, None)
        if updated is None:
            return False

        def release(current: Obj) -> Obj:
            meta = current["metadata"]
            meta["finalizers"] = [f for f in meta.get("finalizers") or () if f != CLEANUP_FINALIZER]
            if not meta["finalizers"]:
                del meta["finalizers"]
            return current

        await self._update(updated, release)
        log.info("CustomResourceDefinition %s: custom resources removed, finalizer released", name)
        return False

    async def _delete_objects(self, crd: Obj) -> int:
        """Ask for every object's deletion; how many are still stored."""
        resource = storage_resource(crd)
        if resource is None:
            return 0
        listed = await self.store.list(resource, "", ListOptions())
        for obj in listed["items"]:
            meta = obj["metadata"]
            if meta.get("deletionTimestamp"):
                continue  # finalizers still at work
            with contextlib.suppress(errors.ApiError):
                await self.store.delete(resource, meta.get("namespace", ""), meta["name"], DeleteOptions())
        return len((await self.store.list(resource, "", ListOptions()))["items"])

    # -- APIService registration --------------------------------------------------------------

    async def _register(self, custom: Iterable[Resource]) -> bool:
        """Create the missing automanaged APIServices of the group-versions custom resources are
        served in, delete the others; a group-version built-ins are served in is left alone (its
        APIService is registered at start, ``onstart``)."""
        resource = self.store.registry.lookup(APIREGISTRATION, "v1", "apiservices")
        if resource is None:
            return True
        builtin = {f"{r.version}.{r.group}" for r in self.store.registry.builtin()}
        wanted = {name: r for r in custom if (name := f"{r.version}.{r.group}") not in builtin}
        existing = {
            obj["metadata"]["name"]: obj
            for obj in (await self.store.list(resource, "", ListOptions()))["items"]
        }
        ok = True
        opts = WriteOptions(field_manager=MANAGER)
        for name, res in wanted.items():
            if name in existing:
                continue
            apiservice = {
                "metadata": {"name": name, "labels": {MANAGED_LABEL: AUTOMANAGED}},
                "spec": {
                    "group": res.group,
                    "version": res.version,
                    "groupPriorityMinimum": 1000,
                    "versionPriority": 100,
                },
            }
            try:
                await self.store.create(resource, "", apiservice, opts)
            except errors.ApiError as exc:
                if exc.code != 409:
                    log.warning("Could not register APIService %s: %s", name, exc)
                    ok = False
        for name, obj in existing.items():
            labels = (obj.get("metadata") or {}).get("labels") or {}
            if name in wanted or name in builtin or labels.get(MANAGED_LABEL) != AUTOMANAGED:
                continue
            try:
                await self.store.delete(resource, "", name, DeleteOptions())
            except errors.ApiError as exc:
                if exc.code != 404:
                    log.warning("Could not remove APIService %s: %s", name, exc)
                    ok = False
        return ok
