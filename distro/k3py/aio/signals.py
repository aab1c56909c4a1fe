"""Stop signals turned into an ``asyncio.Event`` for a process's main coroutine.

``stop_on_signals`` installs loop signal handlers (SIGINT and SIGTERM by default) for the
duration of a ``with`` block; the first signal sets the event and is recorded, so the flow
can log which signal stopped it. Further signals while stopping are only logged: shutdown
is already bounded by the supervisor's grace period.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

DEFAULT_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass(slots=True)
class StopRequest:
    """Set once a stop signal arrives; ``signum`` tells which one (None if set by code)."""

    event: asyncio.Event = field(default_factory=asyncio.Event)
    signum: signal.Signals | None = None

    def set(self, signum: signal.Signals | None = None) -> None:
        if not self.event.is_set():
            self.signum = signum
            self.event.set()

    async def wait(self) -> None:
        await self.event.wait()

    @property
    def is_set(self) -> bool:
        return self.event.is_set()


@contextmanager
def stop_on_signals(
    request: StopRequest, signals: Sequence[signal.Signals] = DEFAULT_SIGNALS
) -> Iterator[StopRequest]:
    """Route ``signals`` to ``request`` while the block runs (must be called on the loop)."""
    loop = asyncio.get_running_loop()
    for signum in signals:
        loop.add_signal_handler(signum, _received, request, signum)
    try:
        yield request
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)


def _received(request: StopRequest, signum: signal.Signals) -> None:
    if request.is_set:
        log.info("Received %s again while stopping", signum.name)
        return
    log.info("Received %s, shutting down", signum.name)
    request.set(signum)
