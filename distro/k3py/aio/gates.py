"""Readiness gates: explicit signals passed between components, never discovered by polling.

A :class:`Gate` is a named ``asyncio.Event`` (K3s passes ``APIServerReady`` and friends the
same way): the component that reaches a state opens the gate, the ones that depend on it
``await gate.wait()``. A :class:`Gates` set groups the gates of one process so a health
endpoint can report each of them by name.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

log = logging.getLogger(__name__)


class Gate:
    """One readiness signal. Opening is idempotent; closing re-arms it (e.g. on shutdown)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._event = asyncio.Event()

    def __repr__(self) -> str:
        state = "open" if self.is_open else "closed"
        return f"Gate({self.name!r}, {state})"

    @property
    def is_open(self) -> bool:
        return self._event.is_set()

    def open(self) -> None:
        if not self._event.is_set():
            log.debug("Gate %s opened", self.name)
            self._event.set()

    def close(self) -> None:
        if self._event.is_set():
            log.debug("Gate %s closed", self.name)
            self._event.clear()

    async def wait(self) -> None:
        """Return once the gate is open (bound it with ``asyncio.timeout`` where needed)."""
        await self._event.wait()


class Gates:
    """The named gates of one process, in the order they were declared."""

    def __init__(self, *names: str) -> None:
        self._gates: dict[str, Gate] = {}
        for name in names:
            self.add(name)

    def add(self, name: str) -> Gate:
        if name in self._gates:
            raise ValueError(f"gate {name!r} declared twice")
        gate = self._gates[name] = Gate(name)
        return gate

    def __getitem__(self, name: str) -> Gate:
        return self._gates[name]

    def __iter__(self) -> Iterator[Gate]:
        return iter(self._gates.values())

    def __len__(self) -> int:
        return len(self._gates)

    @property
    def all_open(self) -> bool:
        return all(gate.is_open for gate in self._gates.values())
