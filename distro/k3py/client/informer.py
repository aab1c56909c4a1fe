"""A list+watch cache of one resource, as client-go's informers keep it.

``run`` lists the collection, then watches from the list's resourceVersion; a watch that ends
is resumed from the last version seen (bookmarks included), and one that is too old (410
Gone) starts over with a fresh list, whose differences from the cache are delivered as
changes. Handlers are called on the event loop after the cache has changed, with the old
and the new object (``None`` for a creation or a deletion); they must not block. Objects are
kept without ``metadata.managedFields``, as kube-scheduler's and kube-controller-manager's
informers keep them: no controller reads them, an update that leaves them out keeps the
stored ones, and they are a large part of every object. Besides the namespace index, components
may add named indexes (:meth:`Informer.add_index`, client-go's ``Indexers``).

:class:`SharedInformers` hands out one informer per collection and selectors to every
component that asks (client-go's SharedInformerFactory): one list, one watch and one cache for
all of them. Its objects are shared, so no one may change them: copy before modifying. Each
component runs its informers as before; the first :meth:`Informer.run` starts the shared loop
and the last one cancelled stops it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from k3py.client.rest import ApiStatusError, Obj, RestClient

log = logging.getLogger(__name__)

Handler = Callable[[Obj | None, Obj | None], None]
IndexFunc = Callable[[Obj], Iterable[str]]
"""The values an object is found under in one index (client-go's ``IndexFunc``)."""
Index = dict[str, dict[tuple[str, str], Obj]]
"""Per value, the objects found under it, by key."""
RETRY_MAX = 30.0
"""Longest pause between attempts when the server cannot be reached."""


def key_of(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


class Informer:
    """``Informer(api, "/api/v1/pods", field_selector="spec.nodeName=n1")``; then ``run()``."""

    def __init__(
        self,
        api: RestClient,
        path: str,
        *,
        field_selector: str | None = None,
        label_selector: str | None = None,
    ) -> None:
        self.api = api
        self.path = path
        self.field_selector = field_selector
        self.label_selector = label_selector
        self._objects: dict[tuple[str, str], Obj] = {}
        self._namespaces: dict[str, dict[str, Obj]] = {}
        """The same objects by namespace, then name (client-go's namespace index)."""
        self._index_funcs: dict[str, IndexFunc] = {}
        self._indexes: dict[str, Index] = {}
        self._handlers: list[Handler] = []
        self._synced = asyncio.Event()
        self.resource_version = ""
        self._loop: asyncio.Task[None] | None = None
        self._runners = 0

    def add_handler(self, handler: Handler) -> None:
        """Call ``handler`` on every change from now on. Added to an informer that has listed
        already, it is first told of every cached object as a creation (client-go's
        ``AddEventHandler``), so a component that joins a running shared informer starts from
        the same picture as one that was there from the start."""
        self._handlers.append(handler)
        if self._synced.is_set():
            for obj in list(self._objects.values()):
                _call(handler, self.path, None, obj)

    def remove_handler(self, handler: Handler) -> None:
        """Stop calling ``handler`` (a component that stops following a shared informer)."""
        self._handlers = [h for h in self._handlers if h != handler]  # bound methods are equal, not identical

    async def synced(self) -> None:
        """Wait for the first complete list."""
        await self._synced.wait()

    @property
    def has_synced(self) -> bool:
        return self._synced.is_set()

    def get(self, namespace: str, name: str) -> Obj | None:
        return self._objects.get((namespace, name))

    def items(self) -> list[Obj]:
        return list(self._objects.values())

    def in_namespace(self, namespace: str) -> list[Obj]:
        """The objects of one namespace (``""``: the cluster-scoped ones)."""
        return list(self._namespaces.get(namespace, {}).values())

    def add_index(self, name: str, values: IndexFunc) -> None:
        """Keep the objects findable by ``values(obj)`` under ``name`` (see :meth:`by_index`).
        Components sharing the informer may add the same index; the first one's function stays."""
        if name in self._index_funcs:
            return
        self._index_funcs[name] = values
        self._reindex(name)

    def _reindex(self, name: str) -> None:
        values = self._index_funcs[name]
        index: Index = {}
        for key, obj in self._objects.items():
            for value in values(obj):
                index.setdefault(value, {})[key] = obj
        self._indexes[name] = index

    def by_index(self, name: str, value: str) -> list[Obj]:
        """The objects whose index function for ``name`` gave ``value``."""
        return list(self._indexes[name].get(value, {}).values())

    def _put(self, key: tuple[str, str], obj: Obj) -> None:
        before = self._objects.get(key)
        self._objects[key] = obj
        self._namespaces.setdefault(key[0], {})[key[1]] = obj
        for name, values in self._index_funcs.items():
            index = self._indexes[name]
            if before is not None:
                _unindex(index, key, values(before))
            for value in values(obj):
                index.setdefault(value, {})[key] = obj

    def _drop(self, key: tuple[str, str]) -> None:
        before = self._objects.pop(key, None)
        names = self._namespaces.get(key[0])
        if names is not None:
            names.pop(key[1], None)
            if not names:
                del self._namespaces[key[0]]
        if before is not None:
            for name, values in self._index_funcs.items():
                _unindex(self._indexes[name], key, values(before))

    async def run(self) -> None:
        """Keep the cache current until cancelled; several may run one informer at once."""
        if self._loop is None or self._loop.done():
            self._loop = asyncio.get_running_loop().create_task(self._follow(), name=f"informer {self.path}")
        loop = self._loop
        self._runners += 1
        try:
            await asyncio.shield(loop)
        finally:
            self._runners -= 1
            if self._runners == 0:
                loop.cancel()

    async def _follow(self) -> None:
        delay = 0.5
        while True:
            try:
                if not self.resource_version:
                    await self._relist()
                await self._watch()
                delay = 0.5
            except ApiStatusError as exc:
                if exc.code == 410:
                    log.debug("%s: watch expired (%s), listing again", self.path, exc)
                    self.resource_version = ""
                    continue
                log.warning("%s: %s (retrying in %.1fs)", self.path, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
            except Exception:
                # Whatever goes wrong, the cache must keep following: callers depend on it.
                log.exception("%s: the informer failed (retrying in %.1fs)", self.path, delay)
                self.resource_version = ""
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)

    async def _relist(self) -> None:
        listed = await self.api.list(
            self.path, field_selector=self.field_selector, label_selector=self.label_selector
        )
        fresh = {key_of(item): _trimmed(item) for item in listed.get("items") or []}
        old = self._objects
        self._objects = fresh
        self._namespaces = {}
        for (namespace, name), item in fresh.items():
            self._namespaces.setdefault(namespace, {})[name] = item
        for index_name in self._index_funcs:
            self._reindex(index_name)
        self.resource_version = str((listed.get("metadata") or {}).get("resourceVersion") or "")
        for key, obj in fresh.items():
            before = old.get(key)
            if before is None or _version(before) != _version(obj):
                self._notify(before, obj)
        for key, obj in old.items():
            if key not in fresh:
                self._notify(obj, None)
        self._synced.set()

    async def _watch(self) -> None:
        async for kind, obj in self.api.watch(
            self.path,
            self.resource_version,
            field_selector=self.field_selector,
            label_selector=self.label_selector,
            timeout_seconds=300,
        ):
            version = _version(obj)
            if version:
                self.resource_version = version
            if kind == "BOOKMARK":
                continue
            key = key_of(_trimmed(obj))
            before = self._objects.get(key)
            if kind == "DELETED":
                self._drop(key)
                self._notify(before, None)
            else:
                self._put(key, obj)
                self._notify(before, obj)

    def _notify(self, old: Obj | None, new: Obj | None) -> None:
        for handler in self._handlers:
            _call(handler, self.path, old, new)


def _call(handler: Handler, path: str, old: Obj | None, new: Obj | None) -> None:
    try:
        handler(old, new)
    except Exception:
        log.exception("%s: a change handler failed", path)


def _unindex(index: Index, key: tuple[str, str], values: Iterable[str]) -> None:
    for value in values:
        found = index.get(value)
        if found is not None:
            found.pop(key, None)
            if not found:
                del index[value]


def _trimmed(obj: Obj) -> Obj:
    """``obj`` without its managedFields (changed in place: it is the client's own copy)."""
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
    return obj


def _version(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


class SharedInformers:
    """One :class:`Informer` per (collection, selectors) for every component that asks; see the
    module docstring. ``api`` lists and watches for all of them, so it must be allowed to."""

    def __init__(self, api: RestClient) -> None:
        self.api = api
        self._informers: dict[tuple[str, str | None, str | None], Informer] = {}

    def informer(
        self, path: str, *, field_selector: str | None = None, label_selector: str | None = None
    ) -> Informer:
        key = (path, field_selector, label_selector)
        found = self._informers.get(key)
        if found is None:
            found = self._informers[key] = Informer(
                self.api, path, field_selector=field_selector, label_selector=label_selector
            )
        return found
