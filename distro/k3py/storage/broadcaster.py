"""Fan-out of committed events to watchers, on the event loop.

Subscribers are grouped by key prefix so each batch is filtered once per distinct prefix,
not once per watcher. Events go into each subscriber's buffer at once, but waking the
watchers is batched: with many subscribers a wake-up round runs at most every
``wake_delay(n)`` seconds, so 1,000 watchers cost 1,000 task switches per round rather than
per write, and the writers keep their pace. A subscriber that falls more than ``limit``
events behind is not allowed to slow anyone down: its buffer is dropped and it is flagged
to catch up from the store's log (the backend decides how), as kine drops a slow reader.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from k3py.storage.model import Event

IMMEDIATE_WAKE_SUBSCRIBERS = 100
WAKE_DELAY_PER_SUBSCRIBER = 10e-6
MAX_WAKE_DELAY = 0.02


def wake_delay(subscribers: int) -> float:
    """Seconds to gather events before waking watchers: none for a few, up to 20 ms."""
    if subscribers <= IMMEDIATE_WAKE_SUBSCRIBERS:
        return 0.0
    return min(MAX_WAKE_DELAY, subscribers * WAKE_DELAY_PER_SUBSCRIBER)


class Subscriber:
    __slots__ = ("buffer", "closed", "lagging", "limit", "prefix", "wake")

    def __init__(self, prefix: bytes, limit: int) -> None:
        self.prefix = prefix
        self.limit = limit
        self.buffer: list[Event] = []
        self.lagging = False
        self.closed = False
        self.wake = asyncio.Event()

    def push(self, events: Sequence[Event]) -> None:
        if self.lagging:
            return
        if len(self.buffer) + len(events) > self.limit:
            self.buffer = []
            self.lagging = True
        else:
            self.buffer.extend(events)

    def take(self) -> list[Event]:
        events, self.buffer = self.buffer, []
        self.wake.clear()
        return events


class Broadcaster:
    def __init__(self, revision: int) -> None:
        self.revision = revision
        """The newest revision published; every event up to it is in the subscribers' buffers."""
        self._groups: dict[bytes, set[Subscriber]] = {}
        self._count = 0
        self._to_wake: list[Subscriber] = []
        self._wake_handle: asyncio.Handle | asyncio.TimerHandle | None = None

    def subscribe(self, prefix: bytes, limit: int) -> Subscriber:
        sub = Subscriber(prefix, limit)
        self._groups.setdefault(prefix, set()).add(sub)
        self._count += 1
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        sub.closed = True
        group = self._groups.get(sub.prefix)
        if group is not None and sub in group:
            group.discard(sub)
            self._count -= 1
            if not group:
                del self._groups[sub.prefix]

    def publish(self, events: Sequence[Event]) -> None:
        if not events:
            return
        self.revision = events[-1].kv.mod_revision
        to_wake = self._to_wake
        for prefix, subs in self._groups.items():
            matched = events if not prefix else [e for e in events if e.kv.key.startswith(prefix)]
            if matched:
                for sub in subs:
                    sub.push(matched)
                    to_wake.append(sub)
        if to_wake and self._wake_handle is None:
            loop = asyncio.get_running_loop()
            delay = wake_delay(self._count)
            if delay:
                self._wake_handle = loop.call_later(delay, self._wake)
            else:
                self._wake_handle = loop.call_soon(self._wake)

    def _wake(self) -> None:
        self._wake_handle = None
        subs, self._to_wake = self._to_wake, []
        for sub in subs:
            sub.wake.set()

    def close(self) -> None:
        if self._wake_handle is not None:
            self._wake_handle.cancel()
            self._wake_handle = None
        self._to_wake = []
        for subs in self._groups.values():
            for sub in subs:
                sub.closed = True
                sub.wake.set()
        self._groups.clear()
        self._count = 0

    def __len__(self) -> int:
        return self._count
