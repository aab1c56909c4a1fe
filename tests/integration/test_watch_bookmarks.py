"""Bookmarks on a quiet, selective watch: the API server in-process over a real SQLite store.

A watch whose selector matches nothing that changes must keep running past its bookmarks,
and each bookmark must carry the revision the watch has got to (everything it selects up to
there was sent), not the last object it sent: a client that resumes from a bookmark (client-go's
RetryWatcher, reflectors) must neither miss events nor be handed a revision that compaction
has long removed.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from k3py.api.resources import Registry, Resource, from_manifest, selection
from k3py.apiserver import handlers
from k3py.apiserver.generic import ObjectStore, WriteOptions
from k3py.storage.model import Backend
from tests.integration.api_support import create_namespaces, served

Obj = dict[str, Any]
NS = "default"
CONFIGMAPS = f"/api/v1/namespaces/{NS}/configmaps"


@pytest.fixture
async def store(backend: Backend) -> ObjectStore:
    objects = ObjectStore(backend, Registry(from_manifest(selection())), ipaddress.ip_network("10.43.0.0/16"))
    await create_namespaces(objects, NS)
    return objects


@pytest.fixture
async def url(store: ObjectStore, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    monkeypatch.setattr(handlers, "BOOKMARK_INTERVAL", 0.3)
    async with served(store) as served_url:
        yield served_url


def configmaps(store: ObjectStore) -> Resource:
    found = store.registry.lookup("", "v1", "configmaps")
    assert found is not None
    return found


async def test_a_quiet_watch_keeps_going_and_its_bookmarks_advance(store: ObjectStore, url: str) -> None:
    res = configmaps(store)
    watched = await store.create(res, NS, {"metadata": {"name": "watched"}}, WriteOptions())
    start = int(watched["metadata"]["resourceVersion"])
    query = f"?watch=1&allowWatchBookmarks=true&fieldSelector=metadata.name%3Dwatched&resourceVersion={start}"
    events: list[Obj] = []
    noise_revisions: list[int] = []
    async with aiohttp.ClientSession() as session, session.get(url + CONFIGMAPS + query) as response:
        assert response.status == 200

        async def next_event() -> Obj:
            line = await asyncio.wait_for(response.content.readline(), 10)
            assert line, "the watch ended"
            event: Obj = orjson.loads(line)
            events.append(event)
            return event

        for round_ in range(3):  # writes the watch does not select, then a quiet spell
            for i in range(5):
                body = {"metadata": {"name": f"noise-{round_}-{i}"}}
                noise = await store.create(res, NS, body, WriteOptions())
                noise_revisions.append(int(noise["metadata"]["resourceVersion"]))
            event = await next_event()
            assert event["type"] == "BOOKMARK", event
            assert int(event["object"]["metadata"]["resourceVersion"]) >= noise_revisions[-1], events

        watched["data"] = {"changed": "yes"}
        changed = await store.update(res, NS, "watched", watched, WriteOptions())
        event = await next_event()
        while event["type"] == "BOOKMARK":
            event = await next_event()
        assert (event["type"], event["object"]["metadata"]["resourceVersion"]) == (
            "MODIFIED",
            changed["metadata"]["resourceVersion"],
        )
    bookmarks = [int(e["object"]["metadata"]["resourceVersion"]) for e in events if e["type"] == "BOOKMARK"]
    assert bookmarks == sorted(bookmarks) and bookmarks[0] > start, bookmarks
