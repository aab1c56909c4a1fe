"""The commit log (redo.py): what it replays on open, what it ignores, what it refuses.

SQLite runs without fsync on commit; a write is durable through its commit log record. These
tests put records into a real log file as a crash would leave them (SQLite lacking the newest
writes) and check what opening the store makes of them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from k3py.storage import EventType, StoreUnavailable, open_store
from k3py.storage.sqlite.redo import BLOCK, MIN_SIZE, RedoLog, Row, redo_path, size_for
from tests.integration.storage_support import options


async def make_store(path: Path, keys: int = 5) -> int:
    """A closed store with ``keys`` keys; returns its revision."""
    store = await open_store(options(path))
    try:
        for i in range(keys):
            await store.create(b"/k/%d" % i, b"v%d" % i)
        return store.current_revision
    finally:
        await store.close()


def lost_rows(head: int) -> list[Row]:
    """Writes SQLite never got: an update of /k/0 (created at revision 2) and a new key."""
    return [
        (head + 1, b"/k/0", 2, 2, 2, b"updated"),
        (head + 2, b"/lost", head + 2, 0, 1, b"new"),
    ]


def inject(path: Path, records: list[list[Row]], *, epoch_offset: int = 0) -> None:
    log = RedoLog.open(redo_path(path), 0)
    log.epoch += epoch_offset  # records of another epoch, as an earlier life of the log left them
    try:
        for rows in records:
            assert log.append(rows)
    finally:
        log.close()


async def test_records_missing_from_sqlite_are_applied_on_open(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    head = await make_store(path)
    rows = lost_rows(head)
    inject(path, [rows[:1], rows[1:]])
    store = await open_store(options(path))
    try:
        assert store.current_revision == head + 2
        kv = await store.get(b"/k/0")
        assert kv is not None and (kv.value, kv.mod_revision, kv.version) == (b"updated", head + 1, 2)
        assert (await store.get(b"/k/0", rev=head)).value == b"v0"  # type: ignore[union-attr]
        new = await store.get(b"/lost")
        assert new is not None and (new.value, new.create_revision) == (b"new", head + 2)
        async with store.watch(b"/", after=head) as w:  # the log table has them, with history
            batch = await anext(aiter(w))
        assert [(e.type, e.kv.key) for e in batch] == [
            (EventType.UPDATE, b"/k/0"),
            (EventType.CREATE, b"/lost"),
        ]
        assert batch[0].prev is not None and batch[0].prev.value == b"v0"
        kv = await store.update(b"/lost", b"after", expected_mod=head + 2)
        assert kv.mod_revision == head + 3
    finally:
        await store.close()
    store = await open_store(options(path))  # applied once: nothing is replayed twice
    try:
        assert store.current_revision == head + 3
    finally:
        await store.close()


async def test_records_sqlite_already_has_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    head = await make_store(path)
    inject(path, [[(head, b"/k/4", head, 0, 1, b"v4")], lost_rows(head)[:1]])
    store = await open_store(options(path))
    try:
        assert store.current_revision == head + 1
        assert (await store.get(b"/k/4")).value == b"v4"  # type: ignore[union-attr]
    finally:
        await store.close()


async def test_stale_epoch_and_damaged_records_end_the_log(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    head = await make_store(path)
    inject(path, [lost_rows(head)], epoch_offset=-1)  # written before the last restart
    store = await open_store(options(path))
    try:
        assert store.current_revision == head
    finally:
        await store.close()

    rows = lost_rows(head)
    inject(path, [rows[:1], rows[1:]])
    with redo_path(path).open("r+b") as f:  # a torn second record: one payload byte flipped
        f.seek(2 * BLOCK + 60)
        byte = f.read(1)
        f.seek(2 * BLOCK + 60)
        f.write(bytes([byte[0] ^ 0xFF]))
    store = await open_store(options(path))
    try:
        assert store.current_revision == head + 1
        assert await store.get(b"/lost") is None
    finally:
        await store.close()


async def test_a_log_that_skips_revisions_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    head = await make_store(path)
    inject(path, [[(head + 2, b"/gap", head + 2, 0, 1, b"x")]])
    before = redo_path(path).read_bytes()
    with pytest.raises(StoreUnavailable, match="skips from revision"):
        await open_store(options(path))
    assert redo_path(path).read_bytes() == before  # kept for whoever investigates


async def test_a_foreign_commit_log_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    await make_store(path)
    redo_path(path).write_bytes(os.urandom(MIN_SIZE))
    with pytest.raises(StoreUnavailable, match="not a k3py commit log"):
        await open_store(options(path))


async def test_groups_too_big_for_the_log_commit_through_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    await make_store(path, keys=0)
    size = redo_path(path).stat().st_size
    store = await open_store(options(path))
    try:
        big = os.urandom(size)  # larger than the whole log
        kv = await store.create(b"/big", big)
        for i in range(3):  # and the log goes on after it
            await store.update(b"/big", b"small %d" % i)
    finally:
        await store.close()
    store = await open_store(options(path))
    try:
        assert (await store.get(b"/big", rev=kv.mod_revision)).value == big  # type: ignore[union-attr]
        assert (await store.get(b"/big")).value == b"small 2"  # type: ignore[union-attr]
    finally:
        await store.close()


def test_log_size_follows_free_space(tmp_path: Path) -> None:
    assert size_for(tmp_path, 1 << 20) <= 1 << 20
    assert size_for(tmp_path) % BLOCK == 0
    assert size_for(tmp_path / "missing") > 0


def test_records_read_back_as_written(tmp_path: Path) -> None:
    """Records of one row (each write of a sequential writer) and of many, some longer than a
    block, some with empty values, come back from the file in order and intact."""
    path = tmp_path / "log"
    written: list[list[Row]] = [
        [(10, b"/a", 10, 0, 1, b"x")],
        [(11, b"/a", 10, 10, 2, b"")],  # an empty value
        [(12, b"/b" * 100, 12, 0, 1, os.urandom(3 * BLOCK))],  # spans four blocks
        [(13, b"/c", 13, 0, 1, b"c"), (14, b"/a", 10, 11, 0, b""), (15, b"/d", 15, 0, 1, os.urandom(BLOCK))],
        [(16, b"/e", 16, 0, 1, os.urandom(BLOCK - 100))],  # ends a few bytes before a block does
    ]
    log = RedoLog.open(path, MIN_SIZE)
    try:
        for rows in written:
            assert log.append(rows)
    finally:
        log.close()
    log = RedoLog.open(path, MIN_SIZE)
    try:
        assert list(log.records()) == written
    finally:
        log.close()
