"""Writes the store acknowledged before SQLite took them, on real files.

The writer acknowledges a write once its commit log record is durable and inserts the rows
into SQLite later, in batches (``DEFER_ROWS`` rows, or after ``DEFER_SECONDS``). These tests
look into the database file beside the open store to see which rows are where, and check
that every read (get, ranges on the loop and on the reader threads, counts, watch history
with previous values) sees the waiting rows exactly once, that closing the store inserts
them, and that reads racing the batched inserts never miss a row.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from k3py.storage import (
    Compacted,
    Event,
    EventType,
    KeyValue,
    SQLiteStore,
    open_store,
    prefix_end,
)
from k3py.storage.sqlite import writer
from k3py.storage.sqlite.writer import DEFER_ROWS
from tests.integration.storage_support import options, revisions_in_database

PREFIX = b"/p/"
KEYS = 600  # more than a range answers on the loop, so listing them all uses a reader thread


async def contents(store: SQLiteStore) -> dict[bytes, KeyValue]:
    result = await store.range(PREFIX, prefix_end(PREFIX))
    assert not result.more
    return {kv.key: kv for kv in result.kvs}


async def history(store: SQLiteStore, after: int, upto: int) -> list[Event]:
    events: list[Event] = []
    async with asyncio.timeout(30), store.watch(PREFIX, after=after) as watch:
        async for batch in watch:
            events += batch
            if events[-1].revision >= upto:
                return events
    raise AssertionError("the watch ended")


async def test_every_read_sees_rows_waiting_for_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer, "DEFER_SECONDS", 3600.0)  # a store this quiet inserts only full batches
    path = tmp_path / "state.db"
    store = await open_store(options(path))
    try:
        base = store.current_revision
        created = {}
        for i in range(KEYS):
            key = PREFIX + b"%04d" % i
            created[key] = await store.create(key, b"created %d" % i)
        keys = list(created)
        updated = await store.update(keys[-1], b"updated", expected_mod=created[keys[-1]].mod_revision)
        assert await store.delete(keys[-2]) == created[keys[-2]]
        head = store.current_revision  # the deletion's revision
        inserted = KEYS // DEFER_ROWS * DEFER_ROWS
        assert revisions_in_database(path) == set(range(base + 1, base + 1 + inserted))

        latest = dict(created) | {keys[-1]: updated}
        del latest[keys[-2]]
        assert await contents(store) == latest  # read on a reader thread
        assert await store.count(PREFIX, prefix_end(PREFIX)) == KEYS - 1
        assert await store.get(keys[-1]) == updated
        assert await store.get(keys[-1], rev=updated.mod_revision - 1) == created[keys[-1]]
        assert await store.get(keys[-2]) is None
        assert await store.get(keys[-2], rev=head - 1) == created[keys[-2]]
        around = await store.range(keys[inserted - 2], prefix_end(PREFIX), limit=4)  # read on the loop
        assert around.kvs == [created[k] for k in keys[inserted - 2 : inserted + 2]]

        events = await history(store, base, head)
        gone = KeyValue(keys[-2], b"", created[keys[-2]].create_revision, head, 0)
        assert [(e.type, e.kv, e.prev) for e in events] == [
            *((EventType.CREATE, kv, None) for kv in created.values()),
            (EventType.UPDATE, updated, created[keys[-1]]),
            (EventType.DELETE, gone, created[keys[-2]]),
        ]
    finally:
        await store.close()
    assert revisions_in_database(path) == set(range(base + 1, head + 1))  # closing inserted the rest

    store = await open_store(options(path))
    try:
        assert store.current_revision == head
        assert await contents(store) == latest
    finally:
        await store.close()


async def test_a_quiet_store_inserts_waiting_rows_soon(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = await open_store(options(path))
    try:
        kv = await store.create(PREFIX + b"one", b"alone")
        assert kv.mod_revision not in revisions_in_database(path)
        deadline = time.monotonic() + 10 * writer.DEFER_SECONDS + 5
        while kv.mod_revision not in revisions_in_database(path):
            assert time.monotonic() < deadline, "the row never reached SQLite"
            await asyncio.sleep(writer.DEFER_SECONDS / 4)
        assert await store.get(kv.key) == kv
    finally:
        await store.close()


async def test_compaction_removes_history_still_waiting_for_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Compaction deletes from the database; a waiting row it removes must not reach SQLite
    afterwards, while newer waiting rows stay waiting (compaction does not force them in)."""
    monkeypatch.setattr(writer, "DEFER_SECONDS", 3600.0)
    path = tmp_path / "state.db"
    store = await open_store(options(path))
    try:
        old = await store.create(PREFIX + b"a", b"1")
        middle = await store.update(PREFIX + b"a", b"2")
        other = await store.create(PREFIX + b"b", b"1")
        assert old.mod_revision not in revisions_in_database(path)
        await store.compact(middle.mod_revision)  # drops ``old``, which only memory held
        newest = await store.update(PREFIX + b"a", b"3")
        await store.compact(other.mod_revision)  # drops nothing waiting: nothing is forced in
        assert newest.mod_revision not in revisions_in_database(path)
        with pytest.raises(Compacted):
            await store.get(old.key, rev=old.mod_revision)
    finally:
        await store.close()  # inserts what still waits
    stored = revisions_in_database(path)
    assert old.mod_revision not in stored
    assert {middle.mod_revision, newest.mod_revision} <= stored


async def test_reads_racing_the_batched_inserts_miss_nothing(tmp_path: Path) -> None:
    """Rows leave memory as SQLite takes them, while reader threads list and read history."""
    store = await open_store(options(tmp_path / "state.db"))
    try:
        keys = [PREFIX + b"%04d" % i for i in range(KEYS)]
        for key in keys:
            await store.create(key, key + b"=1")
        stop = time.monotonic() + 3.0
        checks = {"lists": 0, "histories": 0}

        async def write() -> None:
            n = 0
            while time.monotonic() < stop:
                key = keys[n % KEYS]
                n += 1
                kv = await store.get(key)
                assert kv is not None
                await store.update(key, key + b"=%d" % (kv.version + 1), expected_mod=kv.mod_revision)

        async def list_all() -> None:
            while time.monotonic() < stop:
                found = await contents(store)
                assert len(found) == KEYS
                for kv in found.values():
                    assert kv.value == kv.key + b"=%d" % kv.version
                checks["lists"] += 1

        async def read_history() -> None:
            while time.monotonic() < stop:
                head = store.current_revision
                after = max(head - 3 * DEFER_ROWS, 1)
                events = await history(store, after, head)
                assert [e.revision for e in events[: head - after]] == list(range(after + 1, head + 1))
                for e in events:
                    assert e.kv.value == e.kv.key + b"=%d" % e.kv.version
                    assert e.prev is None or e.prev.value == e.kv.key + b"=%d" % e.prev.version
                checks["histories"] += 1

        await asyncio.gather(write(), list_all(), list_all(), read_history(), read_history())
        assert checks["lists"] > 10 and checks["histories"] > 10, checks
    finally:
        await store.close()
