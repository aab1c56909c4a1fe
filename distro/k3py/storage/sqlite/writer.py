"""The single writer: validates writes, group-commits them, then publishes them.

Every mutation of the store goes through one ``Writer`` that owns the writing connection,
so SQLite never sees two writers and never answers "database is locked". Writes submitted
during one turn of the event loop are committed together by a callback queued behind them:
one commit log record and one synchronous write for the whole group (up to ``max_batch``).
A write that nothing could join (no other callback left in the turn) is committed at once
instead, by the coroutine that submits it (``submit``).
Within a group each write is checked against the index plus the group's earlier writes, so
compare-and-swap stays exact. Only after the record is durable does the index change
(readers see the write) and the callers' futures resolve, in revision order, with the watch
events.

SQLite takes the rows later, many groups in one transaction (``DEFER_ROWS`` rows, or after
``DEFER_SECONDS``); until then readers find them in ``PendingRows``. An insert that fails
(a full disk) loses nothing: the rows stay durable in the commit log and readable from
memory, the writer tries again, and writes are accepted for as long as the commit log has
room. When it has none, everything waiting goes into SQLite with ``synchronous = FULL``
before the log starts over, and a group that cannot be stored that way fails as a whole.

The commit runs on the loop thread. A hand-off to a writer thread costs two thread wake-ups
per write (about 80 µs in CPython), more than half an fsync; the loop instead pauses for
one commit per turn (or ``INLINE_COMMITS`` in a row), which bounds what any other request
waits for (see docs/adr).
"""

from __future__ import annotations

import asyncio
import enum
import errno
import logging
import os
import sqlite3
import sys
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence, Sized
from itertools import chain
from pathlib import Path

from k3py.storage.errors import (
    Conflict,
    FutureRevision,
    KeyExists,
    KeyNotFound,
    StorageError,
    StoreUnavailable,
)
from k3py.storage.model import Event, EventType, KeyValue
from k3py.storage.options import CompactionOptions
from k3py.storage.sqlite.index import Entry, KeyIndex
from k3py.storage.sqlite.pending import PendingRows
from k3py.storage.sqlite.readers import value_at
from k3py.storage.sqlite.redo import RedoLog, Row
from k3py.storage.sqlite.schema import describe, on_read_only_filesystem, sync_files

log = logging.getLogger(__name__)

INSERT_ROWS = 64
"""Rows per INSERT statement: one statement binds them all, instead of one step per row
(384 parameters, within every SQLite build's limit of 999)."""


def _insert_statement(rows: int) -> str:
    values = ",".join(["(?,?,?,?,?,?)"] * rows)
    return f"INSERT INTO log(rev, key, create_rev, prev_rev, version, value) VALUES {values}"


_INSERT_FULL = _insert_statement(INSERT_ROWS)
_DELETE_CHUNK = 500
_AGE_SAMPLE_SECONDS = 0.1
VALUE_CACHE_BYTES = 4 << 20
"""Recently written values kept in memory, so an update or delete finds the previous value
(which its watch event carries) without reading the log."""
DEFER_ROWS = 256
"""Rows waiting for SQLite that make the writer insert them at once."""
DEFER_BYTES = 1 << 20
"""Bytes of keys and values waiting that make the writer insert them at once."""
DEFER_SECONDS = 0.1
"""How long a row waits for SQLite at most while the store is quiet."""
INLINE_COMMITS = 8
"""Writes committed in a row by ``Writer.submit`` itself before one waits for a turn of the
loop (which polls the sockets): the longest the loop goes without polling is this many
commits."""
RETRY_SECONDS = 1.0
"""After SQLite refused the waiting rows, how long before the writer asks again."""

_tuple = tuple.__new__
"""Builds a ``KeyValue`` or an ``Event`` from a tuple of its fields, as their constructors do
after a Python-level call of their own (a named tuple's ``__new__``) that the writer saves."""


class Op(enum.Enum):
    CREATE = 1
    UPDATE = 2
    DELETE = 3
    COMPACT = 4


class Request:
    __slots__ = ("expected", "fut", "key", "op", "value")

    def __init__(self, op: Op, key: bytes, value: bytes, expected: int, fut: asyncio.Future[object]) -> None:
        self.op = op
        self.key = key
        self.value = value
        self.expected = expected
        self.fut = fut


Outcome = tuple["asyncio.Future[object]", object]
Publish = Callable[[Sequence[Event]], None]


class _ValueCache:
    """Values by revision, newest kept, bounded by their total size."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._size = 0
        self._values: OrderedDict[int, bytes] = OrderedDict()

    def get(self, rev: int) -> bytes | None:
        return self._values.get(rev)

    def put(self, rev: int, value: bytes) -> None:
        if len(value) > self._limit:
            return
        self._values[rev] = value
        self._size += len(value)
        while self._size > self._limit:
            _, old = self._values.popitem(last=False)
            self._size -= len(old)


class Writer:
    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        redo: RedoLog,
        index: KeyIndex,
        pending: PendingRows,
        loop: asyncio.AbstractEventLoop,
        publish: Publish,
        *,
        max_batch: int,
        compaction: CompactionOptions,
    ) -> None:
        self._conn = conn
        self._path = path
        self._redo = redo
        self._index = index
        self._waiting = pending
        self._loop = loop
        self._publish = publish
        self._max_batch = max_batch
        self._compaction = compaction
        self._queue: list[Request] = []
        self._compactions: list[Request] = []
        self._flush_scheduled = False
        self._ready: Sized | None = getattr(loop, "_ready", None)
        """asyncio's callbacks left to run in this turn (None for a loop that hides them)."""
        self._inline = 0
        """Writes committed by ``submit`` since the last flush."""
        self._insert_timer: asyncio.TimerHandle | None = None
        self._insert_error = ""
        """Why SQLite last refused the waiting rows ("" once it took them)."""
        self._retry_at = 0.0
        self._compact_due = self._next_compact_check()
        self._ages: deque[tuple[int, float]] = deque([(index.revision, time.monotonic())])
        self._values = _ValueCache(VALUE_CACHE_BYTES)

    def submit(self, request: Request) -> None:
        """Commit ``request`` at once if nothing else could join its group, else queue it
        for the flush at the end of this turn of the loop.

        Nothing can join when the loop has no other callback left to run in this turn: a
        write submitted then would be committed alone by the flush anyway, one turn later.
        Committing it here spares the caller that turn (a loop iteration and a task switch,
        several microseconds per write). A caller that writes in a loop would then never let
        the loop poll its sockets, so after ``INLINE_COMMITS`` such commits one write waits
        for the flush again.
        """
        if request.op is Op.COMPACT:
            self._compactions.append(request)
        elif (
            not self._flush_scheduled
            and self._inline < INLINE_COMMITS
            and self._ready is not None
            and not self._ready
        ):
            self._inline += 1
            try:
                self._commit_one(request)
            except Exception as exc:
                self._failed([request], exc)
            self._after_commits()
            return
        else:
            self._queue.append(request)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        """Commit everything submitted so far, in groups of at most ``max_batch``, then run
        the compactions asked for."""
        self._flush_scheduled = False
        self._inline = 0
        if not self._queue and not self._compactions:
            return
        writes, self._queue = self._queue, []
        for i in range(0, len(writes), self._max_batch):
            self._commit_group(writes[i : i + self._max_batch])
        if self._compactions:
            requests, self._compactions = self._compactions, []
            for r in requests:
                self._deliver([(r.fut, self._compact_request(r.expected))], [])
        self._after_commits()

    def _after_commits(self) -> None:
        """Compact if the writes reached the trigger; insert the waiting rows if due, else
        make sure a timer will."""
        if self._index.revision >= self._compact_due:
            try:
                self.compact_auto()
            except StorageError as exc:  # the writes are done; the next trigger tries again
                log.warning("compaction failed: %s", exc)
        waiting = self._waiting
        if (waiting.size >= DEFER_BYTES or len(waiting) >= DEFER_ROWS) and time.monotonic() >= self._retry_at:
            self.insert_waiting()
        elif self._insert_timer is None and waiting:
            self._insert_timer = self._loop.call_later(
                max(DEFER_SECONDS, self._retry_at - time.monotonic()), self._on_insert_timer
            )

    def _commit_group(self, writes: list[Request]) -> None:
        try:
            if len(writes) == 1:
                self._commit_one(writes[0])
            else:
                self._commit(writes)
        except Exception as exc:
            self._failed(writes, exc)

    def _failed(self, writes: list[Request], exc: Exception) -> None:
        """Answer the callers of a group the writer failed on, which would wait forever."""
        log.exception("store writer failed")
        failure = StoreUnavailable(f"store writer failed: {exc}")
        self._deliver([(r.fut, failure) for r in writes], [])

    def _decide(
        self, r: Request, latest: Entry | None, latest_value: bytes | None, rev: int
    ) -> tuple[Row, object, Event]:
        """Write ``r`` as revision ``rev``, its key's newest entry being ``latest`` (with its
        value if the group wrote it, else None): the row to store, the caller's result and
        the watch event. Raises the ``StorageError`` the write fails with."""
        key = r.key
        if r.op is Op.CREATE:
            if latest is not None and latest[2]:
                raise KeyExists(key)
            value = r.value
            kv = _tuple(KeyValue, (key, value, rev, rev, 1))
            return (rev, key, rev, 0, 1, value), kv, _tuple(Event, (EventType.CREATE, kv, None))
        if latest is None or not latest[2]:
            raise KeyNotFound(key)
        mod, create, version = latest
        if r.expected and mod != r.expected:
            raise Conflict(key, r.expected, mod)
        if latest_value is None:
            latest_value = self._value_of(mod)
        prev = _tuple(KeyValue, (key, latest_value, create, mod, version))
        if r.op is Op.UPDATE:
            value, version = r.value, version + 1
            kv = _tuple(KeyValue, (key, value, create, rev, version))
            return (rev, key, create, mod, version, value), kv, _tuple(Event, (EventType.UPDATE, kv, prev))
        gone = _tuple(KeyValue, (key, b"", create, rev, 0))
        return (rev, key, create, mod, 0, b""), prev, _tuple(Event, (EventType.DELETE, gone, prev))

    def _commit_one(self, r: Request) -> None:
        """``_commit`` for a group of one write, the path of every write of a sequential
        writer: the same checks and results without the group's bookkeeping."""
        index = self._index
        rev = index.revision + 1
        try:
            row, result, event = self._decide(r, index.latest(r.key), None, rev)
            if self._redo.append_row(row):
                self._waiting.add_row(row)  # before the index names it
            else:
                self._store_rows([row])
        except StorageError as exc:
            self._deliver([(r.fut, exc)], [])
            return
        except (sqlite3.Error, OSError) as exc:
            failure = StoreUnavailable(f"write failed, nothing was stored: {self._reason(exc)}")
            self._deliver([(r.fut, failure)], [])
            return
        with index.lock:
            index.apply(row[1], (rev, row[2], row[4]))
            index.revision = rev
        self._values.put(rev, row[5])
        self._sample_age(rev)
        if not r.fut.done():
            r.fut.set_result(result)
        self._publish((event,))

    def _commit(self, writes: list[Request]) -> None:
        index = self._index
        rev = index.revision
        group: dict[bytes, tuple[Entry, bytes]] = {}  # each key's newest entry and value in the group
        rows: list[Row] = []
        outcomes: list[Outcome] = []
        events: list[Event] = []
        try:
            for r in writes:
                written = group.get(r.key)
                try:
                    if written is None:
                        row, result, event = self._decide(r, index.latest(r.key), None, rev + 1)
                    else:
                        row, result, event = self._decide(r, written[0], written[1], rev + 1)
                except StorageError as exc:
                    outcomes.append((r.fut, exc))
                    continue
                rev += 1
                group[r.key] = ((rev, row[2], row[4]), row[5])
                rows.append(row)
                outcomes.append((r.fut, result))
                events.append(event)
            if rows:
                self._store_rows(rows)
        except (sqlite3.Error, OSError) as exc:
            failure = StoreUnavailable(f"write failed, nothing was stored: {self._reason(exc)}")
            rejected: list[Outcome] = [
                (fut, result if isinstance(result, StorageError) else failure) for fut, result in outcomes
            ]
            self._deliver(rejected, [])
            return
        if rows:
            with index.lock:
                for row in rows:
                    index.apply(row[1], (row[0], row[2], row[4]))
                index.revision = rev
            for row in rows:
                self._values.put(row[0], row[5])
            self._sample_age(rev)
        self._deliver(outcomes, events)

    def _deliver(self, outcomes: list[Outcome], events: list[Event]) -> None:
        """Resolve the callers' futures (those still waiting), then publish the events."""
        for fut, result in outcomes:
            if fut.done():
                continue
            if isinstance(result, BaseException):
                fut.set_exception(result)
            else:
                fut.set_result(result)
        self._publish(events)

    def _sample_age(self, rev: int) -> None:
        """Remember when revision ``rev`` was written, at most every ``_AGE_SAMPLE_SECONDS``
        (compaction by age finds its target here)."""
        now = time.monotonic()
        if now - self._ages[-1][1] >= _AGE_SAMPLE_SECONDS:
            self._ages.append((rev, now))

    def _store_rows(self, rows: list[Row]) -> None:
        """Make ``rows`` durable: one commit log record, their insert into SQLite deferred.

        When the record does not fit in the log, the rows waiting and these go into SQLite
        in one transaction with ``synchronous = FULL``, after which the log starts over; if
        SQLite refuses that transaction, the group fails and the waiting rows keep waiting.
        """
        redo, waiting = self._redo, self._waiting
        if redo.append(rows):
            waiting.add(rows)  # before the index names them
            return
        self._insert(waiting.rows() + rows, full=True)
        self._inserted()
        try:
            redo.reset()
        except OSError as exc:  # the log still holds only committed rows: harmless
            log.warning("cannot restart commit log %s: %s", redo.path, describe(exc))

    def _on_insert_timer(self) -> None:
        self._insert_timer = None
        self.insert_waiting()

    def insert_waiting(self) -> bool:
        """Insert the rows waiting for SQLite; False (and a retry planned) if SQLite refused."""
        rows = self._waiting.rows()
        if not rows:
            return True
        try:
            self._insert(rows)
        except (sqlite3.Error, OSError) as exc:
            reason = self._reason(exc)
            if reason != self._insert_error:
                log.warning(
                    "%d acknowledged writes wait in the commit log %s: SQLite cannot take them: %s",
                    len(rows),
                    self._redo.path,
                    reason,
                )
            self._insert_error = reason
            self._retry_at = time.monotonic() + RETRY_SECONDS
            if self._insert_timer is None:
                self._insert_timer = self._loop.call_later(RETRY_SECONDS, self._on_insert_timer)
            return False
        self._inserted()
        return True

    def _inserted(self) -> None:
        """Every waiting row is in SQLite now."""
        self._waiting.clear()
        self._stop_insert_timer()
        if self._insert_error:
            log.info("SQLite takes writes again (it refused them: %s)", self._insert_error)
            self._insert_error = ""
        self._retry_at = 0.0

    def recover(self, rows: list[Row]) -> None:
        """At open: insert the rows the commit log held and SQLite lacked (already indexed),
        sync SQLite's files and start the log afresh. If SQLite refuses them (a full disk),
        they wait in memory and in the log, which goes on after them."""
        self._waiting.add(rows)
        if not self.insert_waiting():
            self._redo.keep()
            return
        sync_files(self._path)
        self._redo.reset()
        if rows:
            log.info("applied %d writes from the commit log (up to revision %d)", len(rows), rows[-1][0])

    def close(self) -> bool:
        """Try a last time to insert the waiting rows; no retry is planned after this."""
        inserted = self.insert_waiting()
        self._stop_insert_timer()
        return inserted

    def _stop_insert_timer(self) -> None:
        if self._insert_timer is not None:
            self._insert_timer.cancel()
            self._insert_timer = None

    def _insert(self, rows: list[Row], *, full: bool = False) -> None:
        """Insert ``rows`` in one transaction (made durable by SQLite itself if ``full``)."""
        conn = self._conn
        if full:
            conn.execute("PRAGMA synchronous = FULL")
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for i in range(0, len(rows), INSERT_ROWS):
                    chunk = rows[i : i + INSERT_ROWS]
                    sql = _INSERT_FULL if len(chunk) == INSERT_ROWS else _insert_statement(len(chunk))
                    conn.execute(sql, list(chain.from_iterable(chunk)))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        finally:
            if full:
                conn.execute("PRAGMA synchronous = NORMAL")

    def _reason(self, exc: sqlite3.Error | OSError) -> str:
        """Why a write failed. SQLite reports a file system that went read-only under it as a
        plain I/O error; opening the file for writing names the cause (ext4's emergency
        read-only state does not show in the mount flags)."""
        reason = describe(exc)
        if isinstance(exc, OSError) and exc.errno == errno.EROFS:
            return "read-only file system"
        if "I/O" not in reason:
            return reason
        if on_read_only_filesystem(self._path.parent):
            return "read-only file system"
        try:
            os.close(os.open(self._path, os.O_WRONLY))
        except OSError as probe:
            return f"{reason} ({describe(probe)})" if probe.errno != errno.EROFS else "read-only file system"
        return reason

    def _value_of(self, rev: int) -> bytes:
        value = self._values.get(rev)
        if value is None:
            value = value_at(self._conn, self._waiting, rev)
        if value is None:
            raise StoreUnavailable(f"index names revision {rev} but the log has no such row")
        return value

    # -- compaction ---------------------------------------------------------------------------

    def _next_compact_check(self) -> int:
        """The revision at which the writer next compacts on its own."""
        c = self._compaction
        return self._index.revision + c.trigger_revisions if c.enabled else sys.maxsize

    def compaction_target(self) -> int:
        c = self._compaction
        target = self._index.revision - c.retain_revisions
        if c.retain_seconds > 0:
            cutoff = time.monotonic() - c.retain_seconds
            ages = self._ages
            while len(ages) > 1 and ages[1][1] <= cutoff:
                ages.popleft()
            old_enough = ages[0][0] if ages[0][1] <= cutoff else 0
            target = min(target, old_enough)
        return target

    def compact_auto(self) -> int:
        self._compact_due = self._next_compact_check()
        target = self.compaction_target()
        if target <= self._index.compacted:
            return self._index.compacted
        return self._compact(target)

    def _compact_request(self, target: int) -> object:
        """The answer to a compaction asked for: the compacted revision, or the error."""
        if target > self._index.revision:
            return FutureRevision(target, self._index.revision)
        try:
            if target == 0:
                return self.compact_auto()
            if target <= self._index.compacted:
                return self._index.compacted
            return self._compact(target)
        except StorageError as exc:
            return exc

    def _compact(self, target: int) -> int:
        index, conn = self._index, self._conn
        target = min(target, index.revision - 1)  # the head row is never removed
        if target <= index.compacted:
            return index.compacted
        # Compaction deletes from the database alone: a row it removes must be there first.
        # Waiting rows are the newest, so usually none is that old.
        if 0 < self._waiting.first() <= target and not self.insert_waiting():
            raise StoreUnavailable(f"compaction failed: {self._insert_error}")
        with index.lock:
            before = index.compacted
            index.compacted = target  # new reads below the target fail from now on
            plan = index.compaction_plan(target)
        doomed = plan.revisions
        started = time.monotonic()
        try:
            conn.execute("BEGIN IMMEDIATE")
            for i in range(0, len(doomed), _DELETE_CHUNK):
                chunk = doomed[i : i + _DELETE_CHUNK]
                conn.execute(f"DELETE FROM log WHERE rev IN ({','.join('?' * len(chunk))})", chunk)
            conn.execute("UPDATE meta SET value = ? WHERE name = 'compact_rev'", (target,))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            with index.lock:
                index.compacted = before
            raise StoreUnavailable(f"compaction failed: {self._reason(exc)}") from exc
        with index.lock:
            index.compact(plan)
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as exc:  # a checkpoint is an optimisation; the next one retries
            log.warning("WAL checkpoint after compaction failed: %s", describe(exc))
        log.debug(
            "compacted to revision %d: %d rows removed in %.1f ms",
            target,
            len(doomed),
            (time.monotonic() - started) * 1e3,
        )
        return target
