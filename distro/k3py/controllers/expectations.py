"""What a controller wrote that its own cache has not shown yet.

A controller that creates objects with generated names (EndpointSlices) would create
duplicates if it synced again before its informer had seen its last writes. It records each
write here (the resourceVersion the cache must reach, or a deletion) under the key it syncs,
drops the record when the cache shows the write, and postpones a key whose cache is
:meth:`Expectations.behind`. A write the cache never shows (someone else changed the object
first) is forgotten after ``timeout`` seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from k3py.controllers.base import Key
from k3py.controllers.objects import meta_of

Obj = dict[str, Any]
DELETED = -1
DEFAULT_TIMEOUT = 30.0


def version_of(obj: Obj) -> int:
    """The object's resourceVersion as a number (0 when absent or not a number)."""
    try:
        return int(meta_of(obj).get("resourceVersion") or 0)
    except ValueError:
        return 0


class Expectations:
    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout
        self._pending: dict[Key, dict[str, tuple[int, float]]] = {}
        """Per key, the objects written: the version the cache must reach (DELETED), and when."""

    def wrote(self, key: Key, obj: Obj) -> None:
        """``obj`` as the API server answered a create or update of it."""
        self._pending.setdefault(key, {})[str(meta_of(obj).get("name"))] = (version_of(obj), time.monotonic())

    def deleted(self, key: Key, name: str) -> None:
        self._pending.setdefault(key, {})[name] = (DELETED, time.monotonic())

    def observed(self, key: Key, old: Obj | None, new: Obj | None) -> None:
        """An informer event about an object of ``key``: a write it shows is no longer pending."""
        obj = new or old
        if obj is None:
            return
        pending = self._pending.get(key, {})
        name = str(meta_of(obj).get("name"))
        if name in pending and (new is None or version_of(new) >= pending[name][0] >= 0):
            del pending[name]

    def behind(self, key: Key, cached: Callable[[str], Obj | None]) -> bool:
        """Whether the cache (``cached(name)``) still lacks some of the writes for ``key``."""
        pending = self._pending.get(key)
        if not pending:
            return False
        now = time.monotonic()
        for name, (version, written) in list(pending.items()):
            found = cached(name)
            if version == DELETED:
                caught_up = found is None
            else:
                caught_up = found is not None and version_of(found) >= version
            if caught_up or now - written > self.timeout:
                del pending[name]
        return bool(pending)
