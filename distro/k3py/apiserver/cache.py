"""An in-memory copy of one resource's objects, kept current by list + watch.

The authorizer reads roles and bindings on every request; reading them from the store each
time would cost a range per request. :class:`ObjectCache` lists the resource once, then
follows the store's watch from that list's revision, re-listing when the watch falls behind
compaction (410), as an informer does. It is eventually consistent, like kube-apiserver's
RBAC cache: a binding applies within milliseconds of being written, not at the write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from k3py.api.resources import Resource
from k3py.apiserver import errors
from k3py.apiserver.generic import ListOptions, Obj, ObjectStore
from k3py.storage import StorageError

log = logging.getLogger(__name__)

RETRY_DELAY = 0.5


class ObjectCache:
    """``(namespace, name) -> object`` for one resource (the objects ``field_selector``
    selects, when given); subscribers run after each change."""

    def __init__(
        self, store: ObjectStore, resource: Resource, field_selector: str = "", *, shared: bool = False
    ) -> None:
        """With ``shared`` the watched objects are the ones the API's watches send (decoded once
        for all of them): every reader of this cache must leave them unchanged."""
        self.store = store
        self.resource = resource
        self.field_selector = field_selector
        self.shared = shared
        self._subscribers: list[Callable[[Obj | None], None]] = []
        self._objects: dict[tuple[str, str], Obj] = {}
        self._task: asyncio.Task[None] | None = None
        self.revision = 0

    def subscribe(self, callback: Callable[[Obj | None], None]) -> None:
        """Call ``callback`` after every change from now on, with the object that changed (as
        added, modified or deleted), or None after a (re)list, when anything may have. It must
        not block."""
        self._subscribers.append(callback)

    def get(self, namespace: str, name: str) -> Obj | None:
        return self._objects.get((namespace, name))

    def objects(self, namespace: str | None = None) -> list[Obj]:
        """Every object, or those of one namespace ("" for cluster-scoped objects)."""
        if namespace is None:
            return list(self._objects.values())
        return [obj for (ns, _), obj in self._objects.items() if ns == namespace]

    async def start(self) -> None:
        """List now (so the cache is complete when this returns), then follow in a task."""
        await self._list()
        self._task = asyncio.create_task(self._follow(), name=f"cache-{self.resource.plural}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _list(self) -> None:
        listed = await self.store.list(self.resource, "", ListOptions(field_selector=self.field_selector))
        self._objects = {_key(obj): obj for obj in listed["items"]}
        self.revision = int(listed["metadata"]["resourceVersion"])
        self._changed(None)

    async def _follow(self) -> None:
        while True:
            try:
                since = ListOptions(field_selector=self.field_selector, resource_version=str(self.revision))
                stream = await self.store.watch(self.resource, "", since, shared=self.shared)
                async for kind, obj in stream:
                    self._apply(kind, obj)
                raise StorageError("the watch ended")
            except errors.ApiError as exc:
                if exc.code != 410:
                    log.error("%s cache: %s; listing again", self.resource.plural, exc)
                    await asyncio.sleep(RETRY_DELAY)
                else:
                    log.debug("%s cache fell behind compaction: listing again", self.resource.plural)
            except StorageError as exc:
                log.warning("%s cache: %s; retrying", self.resource.plural, exc)
                await asyncio.sleep(RETRY_DELAY)
            except Exception:  # a cache that stops following would serve stale grants for good
                log.exception("%s cache: unexpected failure; listing again", self.resource.plural)
                await asyncio.sleep(RETRY_DELAY)
            with contextlib.suppress(StorageError, errors.ApiError):
                await self._list()

    def _apply(self, kind: str, obj: Obj) -> None:
        if kind == "DELETED":
            self._objects.pop(_key(obj), None)
        elif kind in ("ADDED", "MODIFIED"):
            self._objects[_key(obj)] = obj
        else:
            return
        with contextlib.suppress(ValueError):
            self.revision = int(obj["metadata"]["resourceVersion"])
        self._changed(obj)

    def _changed(self, obj: Obj | None) -> None:
        for callback in self._subscribers:
            callback(obj)


def _key(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


async def each_change(cache: ObjectCache, handle: Callable[[Obj], Awaitable[object]], what: str) -> None:
    """Call ``handle`` for every object of ``cache`` that changed (each one after a relist),
    until cancelled, as a controller's work loop does: changes to one object while it waits
    are handled once; one that fails with an API or storage error is tried again after
    :data:`RETRY_DELAY`; a 404 (deleted meanwhile) is dropped; any other failure is logged and
    the object waits for its next change. Starts and stops the cache."""
    pending: set[tuple[str, str]] = set()
    wake = asyncio.Event()

    def changed(obj: Obj | None) -> None:
        pending.update(_key(o) for o in ([obj] if obj is not None else cache.objects()))
        wake.set()

    cache.subscribe(changed)
    try:
        await cache.start()
        while True:
            await wake.wait()
            wake.clear()
            todo = sorted(pending)
            pending.clear()
            for key in todo:
                obj = cache.get(*key)
                if obj is None:
                    continue
                try:
                    await handle(obj)
                except errors.ApiError as exc:
                    if exc.code == 404:
                        continue
                    log.warning(
                        "%s: %s %s: %s", what, cache.resource.plural, "/".join(filter(None, key)), exc
                    )
                    pending.add(key)
                except StorageError as exc:
                    log.warning("%s: %s: %s; retrying", what, "/".join(filter(None, key)), exc)
                    pending.add(key)
                except Exception:  # one object that breaks the handler must not stop the others
                    log.exception(
                        "%s: %s: not handled; again when it changes", what, "/".join(filter(None, key))
                    )
            if pending:
                await asyncio.sleep(RETRY_DELAY)
                wake.set()
    finally:
        await cache.stop()
