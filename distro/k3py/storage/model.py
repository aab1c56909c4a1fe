"""Value objects exchanged with any storage backend, and the backend protocol itself.

Keys and values are bytes: the store knows nothing of Kubernetes kinds. Every write gets
the next global revision; each key carries the revision that created it, the revision that
last modified it and how many times it was written since creation (etcd's meaning).
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import NamedTuple, Protocol


class KeyValue(NamedTuple):
    """One key's state at one revision. A named tuple, not a dataclass: the writer builds
    one or two per write, and a tuple is built in half the time of a frozen dataclass."""

    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int
    version: int


class EventType(enum.Enum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


class Event(NamedTuple):
    """One change. ``kv`` is the new state (for DELETE: the key with an empty value at the
    deleting revision); ``prev`` is the state just before, for UPDATE and DELETE."""

    type: EventType
    kv: KeyValue
    prev: KeyValue | None

    @property
    def revision(self) -> int:
        return self.kv.mod_revision


@dataclass(frozen=True, slots=True)
class RangeResult:
    kvs: list[KeyValue]
    revision: int
    """The revision the range was read at; pass it back to read the next page consistently."""
    more: bool
    """True if keys remain after the last one returned (use ``next_key`` to continue)."""
    next_key: bytes | None
    """Start key for the next page, or None when the range is exhausted."""


def prefix_end(prefix: bytes) -> bytes:
    """The smallest key greater than every key starting with ``prefix`` (b"" means no end)."""
    end = bytearray(prefix)
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return bytes(end)
        end.pop()
    return b""


class Watch(Protocol):
    """An ordered stream of event batches; ends with an error if it cannot keep up."""

    def __aiter__(self) -> AsyncIterator[Sequence[Event]]: ...

    def progress(self) -> int:
        """The revision up to which every event of this watch has been handed out (what a
        bookmark may promise once those batches are consumed)."""
        ...


class Backend(Protocol):
    """What every storage backend provides. All revisions are > 0; ``rev=0`` means latest."""

    @property
    def current_revision(self) -> int: ...

    @property
    def compact_revision(self) -> int: ...

    async def get(self, key: bytes, *, rev: int = 0) -> KeyValue | None: ...

    async def range(self, start: bytes, end: bytes, *, rev: int = 0, limit: int = 0) -> RangeResult: ...

    async def count(self, start: bytes, end: bytes) -> int: ...

    async def create(self, key: bytes, value: bytes) -> KeyValue: ...

    async def update(self, key: bytes, value: bytes, *, expected_mod: int = 0) -> KeyValue: ...

    async def delete(self, key: bytes, *, expected_mod: int = 0) -> KeyValue: ...

    def watch(self, prefix: bytes, *, after: int) -> AbstractAsyncContextManager[Watch]: ...

    async def compact(self, rev: int) -> int: ...

    async def close(self) -> None: ...
