"""The API server's in-memory caches (ObjectCache): list, then follow the store's watch."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

from k3py.api.resources import Registry, from_manifest, selection
from k3py.apiserver.cache import ObjectCache
from k3py.apiserver.generic import ListOptions, ObjectStore, WriteOptions
from k3py.storage.model import Backend

Obj = dict[str, Any]


def pod(name: str) -> Obj:
    return {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


def holding(cache: ObjectCache, namespace: str, name: str) -> asyncio.Event:
    """Set once ``cache`` holds the object."""
    held = asyncio.Event()
    cache.subscribe(lambda _: held.set() if cache.get(namespace, name) is not None else None)
    return held


async def test_a_shared_cache_holds_the_very_objects_the_shared_watches_send(backend: Backend) -> None:
    store = ObjectStore(backend, Registry(from_manifest(selection())), ipaddress.ip_network("10.43.0.0/16"))
    pods = store.registry.lookup("", "v1", "pods")
    namespaces = store.registry.lookup("", "v1", "namespaces")
    assert pods is not None and namespaces is not None
    await store.create(namespaces, "", {"metadata": {"name": "default"}}, WriteOptions())
    shared, own = ObjectCache(store, pods, shared=True), ObjectCache(store, pods)
    in_shared, in_own = holding(shared, "default", "a"), holding(own, "default", "a")
    await shared.start()
    await own.start()
    try:
        since = ListOptions(resource_version=str(backend.current_revision))
        watch = await store.watch(pods, "", since, shared=True)
        await store.create(pods, "default", pod("a"), WriteOptions())
        kind, sent = await anext(watch)
        assert kind == "ADDED"
        async with asyncio.timeout(5):
            await in_shared.wait()
            await in_own.wait()
        assert shared.get("default", "a") is sent  # decoded once for both
        assert own.get("default", "a") == sent
        assert own.get("default", "a") is not sent  # a private copy its readers may change
        await watch.aclose()
    finally:
        await shared.stop()
        await own.stop()
