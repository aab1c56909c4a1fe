"""The revisioned key-value store: an etcd-like MVCC log with one global revision.

``open_store(options)`` returns a started backend; see ``model.Backend`` for the contract.
"""

from k3py.storage.errors import (
    Compacted,
    Conflict,
    FutureRevision,
    KeyExists,
    KeyNotFound,
    StorageError,
    StoreUnavailable,
)
from k3py.storage.model import Backend, Event, EventType, KeyValue, RangeResult, Watch, prefix_end
from k3py.storage.options import CompactionOptions, SQLiteOptions
from k3py.storage.sqlite import SQLiteStore, open_store

__all__ = [
    "Backend",
    "Compacted",
    "CompactionOptions",
    "Conflict",
    "Event",
    "EventType",
    "FutureRevision",
    "KeyExists",
    "KeyNotFound",
    "KeyValue",
    "RangeResult",
    "SQLiteOptions",
    "SQLiteStore",
    "StorageError",
    "StoreUnavailable",
    "Watch",
    "open_store",
    "prefix_end",
]
