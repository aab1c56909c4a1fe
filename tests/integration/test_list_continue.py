"""Paged lists whose revision is compacted away: the 410 carries a token for the rest, as upstream."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from k3py.api.resources import Registry, from_manifest, selection
from k3py.apiserver import errors
from k3py.apiserver.generic import ListOptions, ObjectStore, WriteOptions
from k3py.storage.model import Backend


async def test_an_expired_continue_token_gives_an_inconsistent_one_for_the_rest(backend: Backend) -> None:
    store = ObjectStore(backend, Registry(from_manifest(selection())), ipaddress.ip_network("10.43.0.0/16"))
    configmaps, namespaces = (
        store.registry.lookup("", "v1", "configmaps"),
        store.registry.lookup("", "v1", "namespaces"),
    )
    assert configmaps is not None and namespaces is not None
    await store.create(
        namespaces,
        "",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}},
        WriteOptions(),
    )
    for i in range(10):
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"c{i:02d}", "namespace": "default"},
        }
        await store.create(configmaps, "default", body, WriteOptions())
    first = await store.list(configmaps, "default", ListOptions(limit=4))
    assert [i["metadata"]["name"] for i in first["items"]] == ["c00", "c01", "c02", "c03"]
    late: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c99", "namespace": "default"},
    }
    await store.create(configmaps, "default", late, WriteOptions())
    late["metadata"]["labels"] = {"changed": "yes"}
    await store.update(configmaps, "default", "c99", late, WriteOptions())
    await backend.compact(backend.current_revision)
    assert backend.compact_revision > int(first["metadata"]["resourceVersion"])
    with pytest.raises(errors.ApiError) as expired:
        await store.list(
            configmaps, "default", ListOptions(limit=4, continue_token=first["metadata"]["continue"])
        )
    assert expired.value.code == 410
    token = expired.value.status()["metadata"]["continue"]
    names: list[str] = []
    while token:
        page = await store.list(configmaps, "default", ListOptions(limit=4, continue_token=token))
        names += [i["metadata"]["name"] for i in page["items"]]
        token = page["metadata"].get("continue", "")
        if token:  # a page at the newest revision counts what is left, as a first page does
            assert page["metadata"]["remainingItemCount"] == 7 - len(names)
    # The rest, from where the first page ended, at the newest revision (so c99 shows up).
    assert names == [f"c{i:02d}" for i in range(4, 10)] + ["c99"]
