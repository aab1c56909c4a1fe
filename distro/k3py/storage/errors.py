"""The storage layer's named errors.

Backends raise only these; the API server maps them to Kubernetes ``Status`` objects in one
place (NotFound → 404, AlreadyExists → 409 AlreadyExists, Conflict → 409 Conflict,
Compacted → 410 Gone/Expired, FutureRevision → 504 Timeout/TooLargeResourceVersion).
"""

from __future__ import annotations


class StorageError(Exception):
    """Base class: something is wrong with the store or the request made of it."""


class KeyNotFound(StorageError):
    def __init__(self, key: bytes) -> None:
        super().__init__(f"key {key!r} not found")
        self.key = key


class KeyExists(StorageError):
    def __init__(self, key: bytes) -> None:
        super().__init__(f"key {key!r} already exists")
        self.key = key


class Conflict(StorageError):
    """A compare-and-swap lost: the key's mod_revision is not the one the caller expected."""

    def __init__(self, key: bytes, expected: int, actual: int) -> None:
        super().__init__(f"key {key!r} was modified: expected mod_revision {expected}, found {actual}")
        self.key = key
        self.expected = expected
        self.actual = actual


class Compacted(StorageError):
    """The requested revision is older than the compaction point; its history is gone."""

    def __init__(self, requested: int, compacted: int) -> None:
        super().__init__(f"revision {requested} has been compacted (oldest available is {compacted + 1})")
        self.requested = requested
        self.compacted = compacted


class FutureRevision(StorageError):
    """The requested revision is newer than anything committed."""

    def __init__(self, requested: int, current: int) -> None:
        super().__init__(f"revision {requested} is in the future (current is {current})")
        self.requested = requested
        self.current = current


class StoreUnavailable(StorageError):
    """The database cannot be opened or written: corrupt, foreign, read-only, disk full, closed."""
