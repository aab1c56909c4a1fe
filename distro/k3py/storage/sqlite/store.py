"""``SQLiteStore``: the default backend, one SQLite file in WAL mode.

Data flow: writes → ``Writer`` (group commit once per loop turn, or at once for a write
nothing could join: a commit log record, the rows kept in ``PendingRows`` until SQLite
takes them in batches) → index update → futures resolved and watch events published by
``Writer._deliver`` → ``Broadcaster``. Point reads run inline on the loop (one primary-key lookup);
ranges that may be large and watch history run on the ``ReaderPool`` threads. A periodic
task asks the writer to compact.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TypeVar

from k3py.aio.supervisor import Supervisor
from k3py.storage.broadcaster import Broadcaster
from k3py.storage.errors import Compacted, StorageError, StoreUnavailable
from k3py.storage.model import Event, KeyValue, RangeResult
from k3py.storage.options import SQLiteOptions
from k3py.storage.sqlite.index import KeyIndex
from k3py.storage.sqlite.pending import PendingRows
from k3py.storage.sqlite.readers import (
    ReaderPool,
    fill_range,
    index_range,
    read_history,
    read_range,
    resolve_revision,
    value_at,
)
from k3py.storage.sqlite.redo import RedoLog, Row, redo_path, size_for
from k3py.storage.sqlite.schema import connect, describe, open_database, sync_files
from k3py.storage.sqlite.watch import SQLiteWatch
from k3py.storage.sqlite.writer import Op, Request, Writer

log = logging.getLogger(__name__)

T = TypeVar("T")
_INLINE_RANGE_LIMIT = 500


def _load(conn: sqlite3.Connection, index: KeyIndex) -> None:
    index.load(conn.execute("SELECT rev, key, create_rev, version FROM log ORDER BY rev"))
    meta = dict(conn.execute("SELECT name, value FROM meta"))
    head = conn.execute("SELECT max(rev) FROM log").fetchone()[0] or 0
    index.compacted = int(meta.get("compact_rev", 0))
    index.revision = max(int(meta.get("base_rev", 1)), head, index.compacted + 1)


def _recover(path: Path, index: KeyIndex) -> tuple[RedoLog, list[Row]]:
    """Open the commit log and index the rows of its records that SQLite lacks.

    Runs after the index was loaded, which has read the whole log table: a damaged
    database is refused before anything is written to it. The writer then inserts the rows
    returned (``Writer.recover``).
    """
    redo = RedoLog.open(redo_path(path), size_for(path.parent))
    try:
        head = index.revision
        missing: list[Row] = []
        for rows in redo.records():
            for row in rows:
                if row[0] <= head:
                    continue
                if row[0] != head + 1:
                    raise StoreUnavailable(
                        f"commit log {redo.path} skips from revision {head} to {row[0]}; "
                        "the database and its log do not belong together"
                    )
                missing.append(row)
                head = row[0]
        with index.lock:
            for rev, key, create, _, version, _ in missing:
                index.apply(key, (rev, create, version))
            index.revision = head
    except BaseException:
        redo.close()
        raise
    return redo, missing


async def open_store(options: SQLiteOptions) -> SQLiteStore:
    """Open or create the store at ``options.path`` and start its writer and compactor."""
    return await SQLiteStore.open(options)


class SQLiteStore:
    def __init__(
        self, options: SQLiteOptions, conn: sqlite3.Connection, index: KeyIndex, redo: RedoLog
    ) -> None:
        self._options = options
        self._loop = asyncio.get_running_loop()
        self._index = index
        self._waiting = PendingRows()
        self._reader = connect(options.path, writer=False)
        self._pool = ReaderPool(options.path)
        self._broadcaster = Broadcaster(index.revision)
        self._writer = Writer(
            conn,
            options.path,
            redo,
            index,
            self._waiting,
            self._loop,
            self._broadcaster.publish,
            max_batch=options.max_batch,
            compaction=options.compaction,
        )
        self._closed = False
        self._conn = conn
        self._redo = redo
        self._tasks = Supervisor("store", grace=5.0)

    @classmethod
    async def open(cls, options: SQLiteOptions) -> SQLiteStore:
        conn = await asyncio.to_thread(open_database, options.path)
        index = KeyIndex()
        try:
            await asyncio.to_thread(_load, conn, index)
        except sqlite3.Error as exc:
            conn.close()
            raise StoreUnavailable(
                f"cannot read database {options.path}: {describe(exc)} (corrupt file?)"
            ) from exc
        try:
            redo, missing = await asyncio.to_thread(_recover, options.path, index)
        except (sqlite3.Error, OSError) as exc:
            conn.close()
            raise StoreUnavailable(f"cannot recover database {options.path}: {describe(exc)}") from exc
        except BaseException:
            conn.close()
            raise
        store = cls(options, conn, index, redo)
        try:
            store._writer.recover(missing)
        except OSError as exc:
            await store.close()
            raise StoreUnavailable(f"cannot recover database {options.path}: {describe(exc)}") from exc
        if options.compaction.enabled and options.compaction.interval > 0:
            store._tasks.spawn("compactor", store._compact_periodically(), critical=False)
        log.info(
            "store %s opened at revision %d (%d keys, compacted to %d)",
            options.path,
            index.revision,
            len(index),
            index.compacted,
        )
        return store

    # -- state ---------------------------------------------------------------------------------

    @property
    def current_revision(self) -> int:
        return self._index.revision

    @property
    def compact_revision(self) -> int:
        return self._index.compacted

    @property
    def watcher_count(self) -> int:
        return len(self._broadcaster)

    # -- reads ---------------------------------------------------------------------------------

    async def get(self, key: bytes, *, rev: int = 0) -> KeyValue | None:
        self._check_open()
        index = self._index
        with index.lock:
            rev = resolve_revision(index, rev)
            entry = index.get(key, rev)
        if entry is None:
            return None
        value = value_at(self._reader, self._waiting, entry[0])
        if value is None:
            raise Compacted(rev, index.compacted)
        return KeyValue(key, value, entry[1], entry[0], entry[2])

    async def range(self, start: bytes, end: bytes, *, rev: int = 0, limit: int = 0) -> RangeResult:
        # Every range lets the loop run once, even one answered here without waiting: a caller
        # that lists in a loop must not starve the writes it is listing.
        await asyncio.sleep(0)
        self._check_open()
        if 0 < limit <= _INLINE_RANGE_LIMIT:
            return read_range(self._reader, self._index, self._waiting, start, end, rev, limit)
        # A range without a small limit is read on a pool thread unless the index shows at
        # once that it is small: most such ranges (a namespace's quotas, limit ranges) are.
        at, found = index_range(self._index, start, end, rev, _INLINE_RANGE_LIMIT)
        if not found.more:
            return fill_range(self._reader, self._index, self._waiting, at, found)
        return await self._in_pool(
            lambda: read_range(self._pool.conn(), self._index, self._waiting, start, end, rev, limit)
        )

    async def count(self, start: bytes, end: bytes) -> int:
        self._check_open()
        with self._index.lock:
            return self._index.count(start, end)

    # -- writes --------------------------------------------------------------------------------

    async def create(self, key: bytes, value: bytes) -> KeyValue:
        return await self._submit(Op.CREATE, key, value, 0)  # type: ignore[return-value]

    async def update(self, key: bytes, value: bytes, *, expected_mod: int = 0) -> KeyValue:
        return await self._submit(Op.UPDATE, key, value, expected_mod)  # type: ignore[return-value]

    async def delete(self, key: bytes, *, expected_mod: int = 0) -> KeyValue:
        return await self._submit(Op.DELETE, key, b"", expected_mod)  # type: ignore[return-value]

    async def compact(self, rev: int) -> int:
        """Compact history up to ``rev`` (0: to what the retention options allow)."""
        return await self._submit(Op.COMPACT, b"", b"", rev)  # type: ignore[return-value]

    def _submit(self, op: Op, key: bytes, value: bytes, expected: int) -> asyncio.Future[object]:
        """Hand a write to the writer; the future resolves once it is durable (or failed)."""
        if self._closed:
            raise StoreUnavailable("the store is closed")
        fut: asyncio.Future[object] = self._loop.create_future()
        self._writer.submit(Request(op, key, value, expected, fut))
        return fut

    # -- watch ---------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def watch(self, prefix: bytes, *, after: int) -> AsyncIterator[SQLiteWatch]:
        """Events on keys under ``prefix`` with revision > ``after``, in order."""
        self._check_open()
        with self._index.lock:
            if after < self._index.compacted:
                raise Compacted(after, self._index.compacted)
        watch = SQLiteWatch(self._broadcaster, self._history, prefix, after, self._options.watch_buffer)
        try:
            yield watch
        finally:
            watch.close()

    def _history(self, start: bytes, end: bytes, after: int, upto: int) -> asyncio.Future[list[Event]]:
        return self._loop.run_in_executor(
            self._pool.executor,
            lambda: read_history(self._pool.conn(), self._index, self._waiting, start, end, after, upto),
        )

    # -- lifecycle -----------------------------------------------------------------------------

    async def _compact_periodically(self) -> None:
        interval = self._options.compaction.interval
        while True:
            await asyncio.sleep(interval)
            try:
                await self.compact(0)
            except StorageError as exc:
                log.warning("periodic compaction failed: %s", exc)

    async def _in_pool(self, fn: Callable[[], T]) -> T:
        return await self._loop.run_in_executor(self._pool.executor, fn)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreUnavailable("the store is closed")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._tasks.shutdown()
        self._writer.flush()
        inserted = self._writer.close()
        self._broadcaster.close()
        await asyncio.to_thread(self._pool.close)
        self._reader.close()
        self._conn.close()
        if not inserted:  # the log keeps them; the next open applies them
            log.warning(
                "store %s closed with %d writes only in its commit log",
                self._options.path,
                len(self._waiting),
            )
        else:
            try:  # everything is in SQLite's files: the next open has nothing to replay
                await asyncio.to_thread(sync_files, self._options.path)
                self._redo.reset()
            except OSError as exc:
                log.warning("store %s closed without a final sync: %s", self._options.path, describe(exc))
        self._redo.close()
