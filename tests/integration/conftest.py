"""Fixtures shared by the integration tests that run API-server parts in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from k3py.storage import CompactionOptions, SQLiteOptions, open_store
from k3py.storage.model import Backend


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
