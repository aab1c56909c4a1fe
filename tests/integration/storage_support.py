"""Helpers for the SQLite store's tests: options with compaction off, and a look into the
database file beside a store (read-only, so it changes nothing the store sees)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from k3py.storage import CompactionOptions, SQLiteOptions


def options(path: Path) -> SQLiteOptions:
    """A store at ``path`` that never compacts: the tests decide what history there is."""
    return SQLiteOptions(path=path, compaction=CompactionOptions(enabled=False))


def revisions_in_database(path: Path) -> set[int]:
    """The revisions of the rows SQLite holds in the database at ``path`` (with its WAL)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {rev for (rev,) in conn.execute("SELECT rev FROM log")}
    finally:
        conn.close()
