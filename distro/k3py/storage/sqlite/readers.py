"""Read paths against the database: values by revision, ranges, and log history for watches.

Reads never take SQLite's write lock (WAL readers see the last commit), and they ask the
in-memory index which revision holds each value. Values are looked up among the rows waiting
for insertion (``PendingRows``) first, then in the database. A row missing from both
although the index named it means compaction removed it meanwhile: the read reports
``Compacted``.
"""

from __future__ import annotations

import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from k3py.storage.errors import Compacted, FutureRevision
from k3py.storage.model import Event, EventType, KeyValue, RangeResult
from k3py.storage.sqlite.index import IndexRange, KeyIndex
from k3py.storage.sqlite.pending import PendingRows
from k3py.storage.sqlite.schema import connect

_IN_CHUNK = 500


def resolve_revision(index: KeyIndex, rev: int) -> int:
    """The revision to read at (0 = latest); caller holds ``index.lock``."""
    if rev == 0:
        return index.revision
    if rev > index.revision:
        raise FutureRevision(rev, index.revision)
    if rev < index.compacted:
        raise Compacted(rev, index.compacted)
    return rev


def value_at(conn: sqlite3.Connection, pending: PendingRows, rev: int) -> bytes | None:
    """The value written at ``rev``, or None if no row holds it (compacted)."""
    value = pending.value(rev)  # first: a row leaves it only once the database has it
    if value is None:
        row = conn.execute("SELECT value FROM log WHERE rev = ?", (rev,)).fetchone()
        if row is not None:
            value = row[0]
    return value


def values_by_revision(conn: sqlite3.Connection, pending: PendingRows, revs: list[int]) -> dict[int, bytes]:
    out = pending.values(revs)  # first: a row leaves it only once the database has it
    if out:
        revs = [rev for rev in revs if rev not in out]
    for i in range(0, len(revs), _IN_CHUNK):
        chunk = revs[i : i + _IN_CHUNK]
        marks = ",".join("?" * len(chunk))
        out.update(conn.execute(f"SELECT rev, value FROM log WHERE rev IN ({marks})", chunk))
    return out


def read_range(
    conn: sqlite3.Connection,
    index: KeyIndex,
    pending: PendingRows,
    start: bytes,
    end: bytes,
    rev: int,
    limit: int,
) -> RangeResult:
    return fill_range(conn, index, pending, *index_range(index, start, end, rev, limit))


def index_range(index: KeyIndex, start: bytes, end: bytes, rev: int, limit: int) -> tuple[int, IndexRange]:
    """The revision read at and the live keys of [start, end) there, from the index alone."""
    with index.lock:
        rev = resolve_revision(index, rev)
        return rev, index.range(start, end, rev, limit)


def fill_range(
    conn: sqlite3.Connection, index: KeyIndex, pending: PendingRows, rev: int, found: IndexRange
) -> RangeResult:
    """The values of the keys :func:`index_range` found."""
    values = values_by_revision(conn, pending, [e[0] for _, e in found.items])
    kvs: list[KeyValue] = []
    for key, (mod, create, version) in found.items:
        value = values.get(mod)
        if value is None:
            raise Compacted(rev, index.compacted)
        kvs.append(KeyValue(key, value, create, mod, version))
    return RangeResult(kvs, rev, found.more, found.next_key)


def read_history(
    conn: sqlite3.Connection,
    index: KeyIndex,
    pending: PendingRows,
    start: bytes,
    end: bytes,
    after: int,
    upto: int,
) -> list[Event]:
    """Every event on keys in [start, end) with after < revision <= upto, in order."""
    if after < index.compacted:
        raise Compacted(after, index.compacted)
    # The waiting rows first: every revision from ``first`` on was waiting then, so the
    # database's rows below it and the waiting ones together are the whole history.
    first, waiting = pending.between(after, upto, start, end)
    sql = "SELECT rev, key, create_rev, prev_rev, version, value FROM log WHERE rev > ? AND rev <= ?"
    args: list[object] = [after, upto]
    if start:
        sql += " AND key >= ?"
        args.append(start)
    if end:
        sql += " AND key < ?"
        args.append(end)
    rows: list[tuple[int, bytes, int, int, int, bytes]] = conn.execute(sql + " ORDER BY rev", args).fetchall()
    if first:
        rows = [row for row in rows if row[0] < first] + waiting
    prev_values = values_by_revision(conn, pending, [r[3] for r in rows if r[3]])
    if after < index.compacted:  # compaction ran while we read: the rows may be incomplete
        raise Compacted(after, index.compacted)
    events: list[Event] = []
    with index.lock:
        for rev, key, create, prev_rev, version, value in rows:
            if not prev_rev:
                kv = KeyValue(key, value, create, rev, version)
                events.append(Event(EventType.CREATE, kv, None))
                continue
            prev_value = prev_values.get(prev_rev)
            if prev_value is None:
                raise Compacted(after, index.compacted)
            prev_version = version - 1 if version else _version_at(index, key, prev_rev)
            prev = KeyValue(key, prev_value, create, prev_rev, prev_version)
            if version:
                kv = KeyValue(key, value, create, rev, version)
                events.append(Event(EventType.UPDATE, kv, prev))
            else:
                kv = KeyValue(key, b"", create, rev, 0)
                events.append(Event(EventType.DELETE, kv, prev))
    return events


def _version_at(index: KeyIndex, key: bytes, rev: int) -> int:
    entry = index.get(key, rev)
    return entry[2] if entry is not None else 0


class ReaderPool:
    """Worker threads, each with its own read-only connection, for reads too big for the loop."""

    def __init__(self, path: Path, workers: int = 2) -> None:
        self._path = path
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="k3py-store-read")

    def conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self._path, writer=False)
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        return conn

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        with self._lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()
