"""Fixtures shared by the integration tests: a real store for API-server parts run in-process,
and a real server with an admin client for the components that talk to one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from k3py.client.rest import RestClient
from k3py.storage import CompactionOptions, SQLiteOptions, open_store
from k3py.storage.model import Backend
from tests.e2e.cluster import Cluster
from tests.integration.api_support import admin_api, server


@pytest.fixture
async def backend(tmp_path: Path) -> AsyncIterator[Backend]:
    """A real SQLite store in the test's directory (compaction off: tests control history)."""
    store = await open_store(
        SQLiteOptions(path=tmp_path / "state.db", compaction=CompactionOptions(enabled=False))
    )
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A ``k3py server`` without its agent, controller manager and scheduler: the test runs the
    components it is about in its own loop (a module overrides this to keep more running)."""
    with server(tmp_path, "--disable-controller-manager", "--disable-scheduler") as started:
        yield started


@pytest.fixture
async def api(cluster: Cluster) -> AsyncIterator[RestClient]:
    """The cluster's admin client, once the default namespace is ready."""
    async with admin_api(cluster) as client:
        yield client
