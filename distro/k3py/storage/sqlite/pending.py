"""Rows that are durable in the commit log but not yet inserted into SQLite.

The writer acknowledges a write once its commit log record is on the disk and inserts the
rows into SQLite later, many at a time (see ``Writer``). Until then readers take them from
here. A row enters before the index names its revision and leaves only after the
transaction that inserted it has committed, so a reader that asks here first and then asks
SQLite always finds a revision the index gave it (or learns that compaction removed it).

Only the writer (on the event loop) adds and clears rows; readers on pool threads hold the
lock while they look.
"""

from __future__ import annotations

import threading

from k3py.storage.sqlite.redo import Row


class PendingRows:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[int, Row] = {}  # by revision, in revision order
        self.size = 0
        """Bytes of keys and values waiting (read and written by the writer only)."""

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, rows: list[Row]) -> None:
        size = 0
        with self._lock:
            for row in rows:
                self._rows[row[0]] = row
                size += len(row[1]) + len(row[5])
        self.size += size

    def add_row(self, row: Row) -> None:
        with self._lock:
            self._rows[row[0]] = row
        self.size += len(row[1]) + len(row[5])

    def first(self) -> int:
        """The lowest revision waiting (0 if none)."""
        with self._lock:
            return next(iter(self._rows), 0)

    def rows(self) -> list[Row]:
        with self._lock:
            return list(self._rows.values())

    def clear(self) -> None:
        """Forget every row: call only once SQLite has committed all of them."""
        with self._lock:
            self._rows = {}
        self.size = 0

    def value(self, rev: int) -> bytes | None:
        with self._lock:
            row = self._rows.get(rev)
        return None if row is None else row[5]

    def values(self, revs: list[int]) -> dict[int, bytes]:
        with self._lock:
            if not self._rows:
                return {}
            rows = self._rows
            return {rev: rows[rev][5] for rev in revs if rev in rows}

    def between(self, after: int, upto: int, start: bytes, end: bytes) -> tuple[int, list[Row]]:
        """The lowest revision waiting (0 if none) and the waiting rows of keys in
        [start, end) with after < revision <= upto, in revision order."""
        with self._lock:
            if not self._rows:
                return 0, []
            first = next(iter(self._rows))
            found = [
                row
                for rev, row in self._rows.items()
                if after < rev <= upto and row[1] >= start and (not end or row[1] < end)
            ]
        return first, found
