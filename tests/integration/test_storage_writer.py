"""When the SQLite store's writer commits, on real files.

A write that nothing could join (the loop has no other callback to run in this turn) is
committed by the submitting coroutine itself, without waiting for a turn of the loop; a
caller writing in a loop still lets the loop turn every ``INLINE_COMMITS`` writes; writes
submitted together are still committed as one group, one commit log record each. A writer
that fails unexpectedly answers its callers instead of leaving them waiting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from k3py.storage import KeyValue, SQLiteStore, StoreUnavailable, open_store
from k3py.storage.sqlite.redo import RedoLog, Row
from k3py.storage.sqlite.writer import INLINE_COMMITS, Writer
from tests.integration.storage_support import options


async def quiet_store(path: Path) -> SQLiteStore:
    store = await open_store(options(path))
    for _ in range(3):  # let the tasks the store started run up to their first wait
        await asyncio.sleep(0)
    return store


async def test_a_write_nothing_could_join_commits_before_the_caller_waits(tmp_path: Path) -> None:
    store = await quiet_store(tmp_path / "state.db")
    try:
        created = await store.create(b"/a", b"1")
        update = store.update(b"/a", b"2", expected_mod=created.mod_revision)
        with pytest.raises(StopIteration) as finished:  # the coroutine never suspends
            update.send(None)
        kv = finished.value.value
        assert isinstance(kv, KeyValue)
        assert (kv.value, kv.mod_revision, kv.version) == (b"2", created.mod_revision + 1, 2)
        assert await store.get(b"/a") == kv
    finally:
        await store.close()


async def test_a_caller_writing_in_a_loop_lets_the_loop_turn(tmp_path: Path) -> None:
    store = await quiet_store(tmp_path / "state.db")
    try:
        await store.create(b"/a", b"0")
        written = 0
        seen_at: list[int] = []
        asyncio.get_running_loop().call_later(0, lambda: seen_at.append(written))
        for i in range(3 * INLINE_COMMITS):
            await store.update(b"/a", b"%d" % i)
            written += 1
        assert seen_at, "the loop never turned while the caller wrote"
        assert 0 < seen_at[0] <= INLINE_COMMITS + 1, seen_at
    finally:
        await store.close()


async def test_writes_submitted_together_still_commit_as_one_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    groups: list[int] = []
    append = RedoLog.append

    def counting_append(self: RedoLog, rows: Sequence[Row]) -> bool:
        groups.append(len(rows))
        return append(self, rows)

    monkeypatch.setattr(RedoLog, "append", counting_append)
    store = await quiet_store(tmp_path / "state.db")
    try:
        writers, rounds = 32, 10

        async def writer(j: int) -> None:
            for i in range(rounds):
                await store.create(b"/w/%02d/%02d" % (j, i), b"x")

        await asyncio.gather(*(writer(j) for j in range(writers)))
        assert sum(groups) == writers * rounds
        assert len(groups) <= 2 * rounds, groups  # one record a round, not one a write
    finally:
        await store.close()


async def test_a_writer_failure_answers_every_caller(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = await quiet_store(tmp_path / "state.db")
    try:
        await store.create(b"/a", b"0")

        def broken(*args: object) -> None:
            raise RuntimeError("a bug in the writer")

        with monkeypatch.context() as m:
            m.setattr(Writer, "_decide", broken)
            with pytest.raises(StoreUnavailable, match="a bug in the writer"):  # committed inline
                await store.update(b"/a", b"1")
            together = await asyncio.wait_for(  # committed as one group
                asyncio.gather(*(store.update(b"/a", b"%d" % i) for i in range(3)), return_exceptions=True),
                5,
            )
            assert all(isinstance(e, StoreUnavailable) for e in together), together
        kv = await store.update(b"/a", b"2")  # nothing was written, and the writer goes on
        assert (kv.value, kv.version) == (b"2", 2)
    finally:
        await store.close()
