"""Node IPAM over a real SQLite store: blocks are handed out once, survive a restart, come
free when a node is deleted, and a node that finds none left waits with a Warning Event."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import AsyncIterator
from typing import Any

import pytest

from k3py.api.resources import Registry, Resource, from_manifest, selection
from k3py.apiserver.generic import DeleteOptions, ListOptions, ObjectStore, WriteOptions
from k3py.apiserver.nodeipam import CIDR_NOT_AVAILABLE, NodeIpam
from k3py.storage.model import Backend

Obj = dict[str, Any]
TIMEOUT = 10.0


@pytest.fixture
def store(backend: Backend) -> ObjectStore:
    return ObjectStore(backend, Registry(from_manifest(selection())), ipaddress.ip_network("10.43.0.0/16"))


def nodes(store: ObjectStore) -> Resource:
    found = store.registry.lookup("", "v1", "nodes")
    assert found is not None
    return found


async def add_node(store: ObjectStore, name: str, pod_cidr: str = "") -> Obj:
    body: Obj = {"metadata": {"name": name}}
    if pod_cidr:
        body["spec"] = {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]}
    return await store.create(nodes(store), "", body, WriteOptions())


async def delete_node(store: ObjectStore, name: str) -> None:
    await store.delete(nodes(store), "", name, DeleteOptions())


async def cidr_of(store: ObjectStore, name: str) -> str:
    """The node's podCIDR once it has one."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            node = await store.get(nodes(store), "", name)
            spec = node.get("spec") or {}
            if spec.get("podCIDR"):
                assert spec["podCIDRs"] == [spec["podCIDR"]]
                return str(spec["podCIDR"])
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running(ipam: NodeIpam) -> AsyncIterator[None]:
    task = asyncio.create_task(ipam.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_nodes_get_distinct_blocks_and_keep_them(store: ObjectStore) -> None:
    ipam = NodeIpam(store, ipaddress.ip_network("10.42.0.0/16"))
    async with running(ipam):
        for name in ("a", "b", "c"):
            await add_node(store, name)
        got = {name: await cidr_of(store, name) for name in ("a", "b", "c")}
    assert sorted(got.values()) == ["10.42.0.0/24", "10.42.1.0/24", "10.42.2.0/24"]
    listed = await store.list(nodes(store), "", ListOptions())
    assert {n["metadata"]["name"]: n["spec"]["podCIDR"] for n in listed["items"]} == got


async def test_a_restarted_allocator_reads_what_is_taken(store: ObjectStore) -> None:
    await add_node(store, "old1", "10.42.0.0/24")
    await add_node(store, "old2", "10.42.1.0/24")
    await add_node(store, "elsewhere", "192.168.7.0/24")  # not ours: left alone, not counted
    async with running(NodeIpam(store, ipaddress.ip_network("10.42.0.0/16"))):
        await add_node(store, "new")
        assert await cidr_of(store, "new") == "10.42.2.0/24"
    assert await cidr_of(store, "elsewhere") == "192.168.7.0/24"
    assert await cidr_of(store, "old1") == "10.42.0.0/24"


async def test_exhaustion_waits_with_an_event_until_a_node_goes(store: ObjectStore) -> None:
    events = store.registry.lookup("", "v1", "events")
    namespaces = store.registry.lookup("", "v1", "namespaces")
    assert events is not None and namespaces is not None
    await store.create(namespaces, "", {"metadata": {"name": "default"}}, WriteOptions())
    ipam = NodeIpam(store, ipaddress.ip_network("10.42.0.0/23"), mask=24)
    async with running(ipam):
        await add_node(store, "one")
        await add_node(store, "two")
        assert {await cidr_of(store, "one"), await cidr_of(store, "two")} == {"10.42.0.0/24", "10.42.1.0/24"}
        starved = await add_node(store, "three")
        async with asyncio.timeout(TIMEOUT):
            while True:
                listed = (await store.list(events, "default", ListOptions()))["items"]
                if listed:
                    break
                await asyncio.sleep(0.02)
        [event] = listed
        assert event["reason"] == CIDR_NOT_AVAILABLE
        assert event["type"] == "Warning"
        assert event["involvedObject"]["name"] == "three"
        assert event["involvedObject"]["uid"] == starved["metadata"]["uid"]
        freed = await cidr_of(store, "one")
        await delete_node(store, "one")
        assert await cidr_of(store, "three") == freed
        # further changes to the waiting node did not repeat the Event
        assert len((await store.list(events, "default", ListOptions()))["items"]) == 1


async def test_sync_never_hands_one_block_out_twice(store: ObjectStore) -> None:
    """The node list lags behind the allocator's own writes: what it wrote still counts."""
    ipam = NodeIpam(store, ipaddress.ip_network("10.42.0.0/16"))
    first = await add_node(store, "first")
    assert await ipam.sync([first])
    second = await add_node(store, "second")
    assert await ipam.sync([first, second])  # "first" without its block, as a stale list shows it
    assert {await cidr_of(store, "first"), await cidr_of(store, "second")} == {"10.42.0.0/24", "10.42.1.0/24"}


async def test_a_block_set_by_someone_else_is_kept(store: ObjectStore) -> None:
    ipam = NodeIpam(store, ipaddress.ip_network("10.42.0.0/16"))
    stale = await add_node(store, "n")
    res = nodes(store)

    def set_it(current: Obj) -> Obj:
        current["spec"] = {"podCIDR": "10.42.9.0/24", "podCIDRs": ["10.42.9.0/24"]}
        return current

    await store.guaranteed_update(res, "", "n", set_it, WriteOptions())
    assert await ipam.sync([stale])
    assert await cidr_of(store, "n") == "10.42.9.0/24"
    assert len(ipam.cidrs) == 0  # the block it picked went back
