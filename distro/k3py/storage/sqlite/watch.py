"""A watch on the SQLite backend: history from the log, then live events from the broadcaster.

The subscription is made first and remembers the broadcaster's revision ``H``; the log is
read for ``(after, H]`` while newer events queue in the subscriber, so nothing falls in
between and nothing comes twice. A subscriber that overflowed its buffer goes through the
same catch-up from its last delivered revision; only if that history was compacted does the
watch end with ``Compacted`` (the API answers 410 Gone and the client re-lists).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence

from k3py.storage.broadcaster import Broadcaster, Subscriber
from k3py.storage.errors import StoreUnavailable
from k3py.storage.model import Event, prefix_end

HISTORY_CHUNK = 1000


class SQLiteWatch:
    def __init__(
        self,
        broadcaster: Broadcaster,
        read_history: Callable[[bytes, bytes, int, int], asyncio.Future[list[Event]]],
        prefix: bytes,
        after: int,
        buffer_limit: int,
    ) -> None:
        self._broadcaster = broadcaster
        self._read_history = read_history
        self._prefix = prefix
        self._end = prefix_end(prefix)
        self._last = after
        self._sub: Subscriber = broadcaster.subscribe(prefix, buffer_limit)
        self._needs_history = True

    def close(self) -> None:
        self._broadcaster.unsubscribe(self._sub)

    def progress(self) -> int:
        """The revision up to which every event under the prefix has been handed out: the
        newest published one when nothing waits in this watch's buffer, else the last given."""
        sub = self._sub
        if self._needs_history or sub.lagging or sub.buffer:
            return self._last
        return max(self._last, self._broadcaster.revision)

    def __aiter__(self) -> AsyncIterator[Sequence[Event]]:
        return self._stream()

    async def _stream(self) -> AsyncIterator[Sequence[Event]]:
        sub = self._sub
        while True:
            if self._needs_history or sub.lagging:
                upto = self._broadcaster.revision
                sub.lagging = False
                sub.take()
                self._needs_history = False
                if upto > self._last:
                    history = await self._read_history(self._prefix, self._end, self._last, upto)
                    for i in range(0, len(history), HISTORY_CHUNK):
                        yield history[i : i + HISTORY_CHUNK]
                    self._last = upto
                continue
            await sub.wake.wait()
            if sub.closed:
                raise StoreUnavailable("the store was closed")
            events = sub.take()  # empty if the subscriber overflowed: the loop then catches up
            if events and events[0].revision <= self._last:
                last = self._last
                events = [e for e in events if e.revision > last]
            if events:
                self._last = events[-1].revision
                yield events
