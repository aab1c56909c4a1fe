"""The SQLite backend: one revision-ordered log table plus an in-memory key index."""

from k3py.storage.sqlite.store import SQLiteStore, open_store

__all__ = ["SQLiteStore", "open_store"]
