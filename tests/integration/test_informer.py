"""The client's informer against the API server in-process over a real SQLite store: its cache
and namespace index follow creations and deletions made after its list, and a deletion seen by
the watch leaves no trace in the index."""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from k3py.api.resources import Registry, from_manifest, selection
from k3py.apiserver.generic import ObjectStore
from k3py.client.informer import Informer, SharedInformers
from k3py.client.rest import RestClient
from k3py.controllers.base import Controller, Key
from k3py.storage.model import Backend
from tests.integration.api_support import create_namespaces, served_client


@pytest.fixture
async def api(backend: Backend) -> AsyncIterator[RestClient]:
    store = ObjectStore(backend, Registry(from_manifest(selection())), ipaddress.ip_network("10.43.0.0/16"))
    await create_namespaces(store, "a", "b")
    async with served_client(store) as client:
        yield client


async def until(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not check():
        assert time.monotonic() < deadline, "not within 10 s"
        await asyncio.sleep(0.02)


def names(objects: list[dict[str, object]]) -> set[str]:
    return {str(o["metadata"]["name"]) for o in objects}  # type: ignore[index]


async def test_the_namespace_index_follows_the_watch(api: RestClient) -> None:
    for namespace, name in (("a", "one"), ("a", "two"), ("b", "three")):
        await api.create(f"/api/v1/namespaces/{namespace}/configmaps", {"metadata": {"name": name}})
    informer = Informer(api, "/api/v1/configmaps")
    task = asyncio.create_task(informer.run())
    try:
        await informer.synced()
        assert (names(informer.in_namespace("a")), names(informer.in_namespace("b"))) == (
            {"one", "two"},
            {"three"},
        )
        await api.create("/api/v1/namespaces/b/configmaps", {"metadata": {"name": "four"}})
        await api.delete("/api/v1/namespaces/a/configmaps/one")
        await until(lambda: names(informer.in_namespace("b")) == {"three", "four"})
        await until(lambda: names(informer.in_namespace("a")) == {"two"})
        await api.delete("/api/v1/namespaces/a/configmaps/two")
        await until(lambda: informer.in_namespace("a") == [])
        assert names(informer.items()) == {"three", "four"}
        assert informer.in_namespace("nowhere") == []
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_shared_informers_list_and_watch_once_for_all(api: RestClient) -> None:
    shared = SharedInformers(api)
    first = shared.informer("/api/v1/configmaps")
    assert shared.informer("/api/v1/configmaps") is first
    assert shared.informer("/api/v1/configmaps", label_selector="a=b") is not first
    seen: list[str] = []
    first.add_handler(lambda old, new: seen.append(str((new or old or {})["metadata"]["name"])))
    runners = [asyncio.create_task(first.run()) for _ in range(2)]
    try:
        await first.synced()
        await api.create("/api/v1/namespaces/a/configmaps", {"metadata": {"name": "shared"}})
        await until(lambda: "shared" in seen)
        assert seen.count("shared") == 1, seen  # one watch, not one per runner
        runners[0].cancel()  # one component stops: the others still follow
        await api.create("/api/v1/namespaces/a/configmaps", {"metadata": {"name": "after"}})
        await until(lambda: "after" in seen)
        runners[1].cancel()  # the last one stops the watch
        await asyncio.gather(*runners, return_exceptions=True)
        await asyncio.sleep(0.1)
        await api.create("/api/v1/namespaces/a/configmaps", {"metadata": {"name": "unseen"}})
        await asyncio.sleep(0.3)
        assert "unseen" not in seen
    finally:
        for runner in runners:
            runner.cancel()


async def test_cached_objects_leave_out_managed_fields_and_updates_keep_the_stored_ones(
    api: RestClient,
) -> None:
    path = "/api/v1/namespaces/a/configmaps"
    await api.create(path, {"metadata": {"name": "listed"}, "data": {"k": "v"}})
    informer = Informer(api, "/api/v1/configmaps")
    seen: list[dict[str, object]] = []
    informer.add_handler(lambda old, new: seen.extend(o for o in (old, new) if o is not None))
    task = asyncio.create_task(informer.run())
    try:
        await informer.synced()
        await api.create(path, {"metadata": {"name": "watched"}, "data": {"k": "v"}})
        await until(lambda: names(informer.items()) == {"listed", "watched"})
        cached = informer.get("a", "listed")
        assert cached is not None
        changed = {**cached, "data": {"k": "changed"}}
        await api.update(f"{path}/listed", changed)  # written back as a controller does
        await until(lambda: (informer.get("a", "listed") or {}).get("data") == {"k": "changed"})
        assert seen and all("managedFields" not in o["metadata"] for o in seen)  # type: ignore[operator]
        stored = await api.get(f"{path}/listed")
        assert stored["metadata"]["managedFields"], "the update kept the stored managedFields"
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def by_team(obj: dict[str, Any]) -> list[str]:
    labels = obj["metadata"].get("labels") or {}
    return [labels["team"]] if "team" in labels else []


async def test_named_indexes_follow_updates_deletions_and_the_list(api: RestClient) -> None:
    path = "/api/v1/namespaces/a/configmaps"
    await api.create(path, {"metadata": {"name": "red-1", "labels": {"team": "red"}}})
    await api.create(path, {"metadata": {"name": "plain"}})
    informer = Informer(api, "/api/v1/configmaps")
    informer.add_index("team", by_team)
    task = asyncio.create_task(informer.run())
    try:
        await informer.synced()
        assert names(informer.by_index("team", "red")) == {"red-1"}  # from the list
        await api.create(path, {"metadata": {"name": "blue-1", "labels": {"team": "blue"}}})
        moved = {"metadata": {"name": "plain", "labels": {"team": "red"}}}
        await api.update(f"{path}/plain", moved)
        await until(lambda: names(informer.by_index("team", "red")) == {"red-1", "plain"})
        assert names(informer.by_index("team", "blue")) == {"blue-1"}
        await api.update(f"{path}/red-1", {"metadata": {"name": "red-1", "labels": {"team": "blue"}}})
        await until(lambda: names(informer.by_index("team", "blue")) == {"blue-1", "red-1"})
        assert names(informer.by_index("team", "red")) == {"plain"}  # left its old value
        await api.delete(f"{path}/plain")
        await until(lambda: informer.by_index("team", "red") == [])
        assert informer.by_index("team", "green") == []
        # An index added to a running informer starts with what the cache holds.
        informer.add_index("name", lambda o: [str(o["metadata"]["name"])])
        assert names(informer.by_index("name", "blue-1")) == {"blue-1"}
        informer.add_index("team", lambda o: ["ignored"])  # the first function stays
        assert names(informer.by_index("team", "blue")) == {"blue-1", "red-1"}
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # Changes made while nobody watched arrive with a fresh list, which rebuilds the indexes.
        await api.delete(f"{path}/blue-1")
        await api.create(path, {"metadata": {"name": "red-2", "labels": {"team": "red"}}})
        informer.resource_version = ""
        task = asyncio.create_task(informer.run())
        await until(lambda: names(informer.by_index("team", "red")) == {"red-2"})
        assert names(informer.by_index("team", "blue")) == {"red-1"}
        assert informer.by_index("name", "blue-1") == []
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_component_joining_a_running_shared_informer_starts_from_its_cache_and_leaves_cleanly(
    api: RestClient,
) -> None:
    class Recording(Controller):
        def __init__(self, api: RestClient, shared: SharedInformers) -> None:
            super().__init__(api, shared)
            self.seen: list[str] = []
            configmaps = self.informer("/api/v1/configmaps")
            self.on(
                configmaps, lambda old, new: self.seen.append(str((new or old or {})["metadata"]["name"]))
            )

        async def sync(self, key: Key) -> None:
            pass

    path = "/api/v1/namespaces/a/configmaps"
    await api.create(path, {"metadata": {"name": "early"}})
    shared = SharedInformers(api)
    informer = shared.informer("/api/v1/configmaps")
    keeper = asyncio.create_task(informer.run())  # another component, running on
    try:
        await informer.synced()
        component = Recording(api, shared)
        assert component.seen == ["early"]  # told of what the cache held when it joined
        running = asyncio.create_task(component.run())
        await api.create(path, {"metadata": {"name": "during"}})
        await until(lambda: "during" in component.seen)
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await api.create(path, {"metadata": {"name": "after"}})
        await until(lambda: informer.get("a", "after") is not None)
        assert component.seen == ["early", "during"]  # its handler went with its run
    finally:
        keeper.cancel()
        await asyncio.gather(keeper, return_exceptions=True)
