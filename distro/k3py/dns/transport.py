"""DNS over UDP and TCP on asyncio, in front of a :class:`~k3py.dns.resolver.Resolver`.

UDP: one datagram per query, answered in its own task (a slow upstream does not hold the
others up); past ``MAX_INFLIGHT`` queries in flight new ones are dropped, as a loaded server
drops, and the client retries. TCP (RFC 7766): each message is framed by a two-byte length, a
client may send several queries on one connection and gets the answers in order; a connection
idle for ``IDLE_TIMEOUT`` seconds is closed. Every task is tracked and ends with ``close``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from typing import Any, cast

from k3py.dns.resolver import Resolver

log = logging.getLogger(__name__)

MAX_INFLIGHT = 256
IDLE_TIMEOUT = 10.0
"""Seconds a TCP connection may stay without a query (RFC 7766 suggests some seconds)."""


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, resolver: Resolver, tasks: set[asyncio.Task[None]]) -> None:
        self.resolver = resolver
        self.tasks = tasks
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if len(self.tasks) >= MAX_INFLIGHT:
            return
        task = asyncio.get_running_loop().create_task(self._reply(data, addr), name="dns-udp-query")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _reply(self, data: bytes, addr: Any) -> None:
        answer = await self.resolver.answer(data, udp=True)
        if answer is not None and self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(answer, addr)


class DnsServer:
    """``await DnsServer(resolver, "10.0.0.5", 53).start()``; ``await close()`` stops it."""

    def __init__(self, resolver: Resolver, host: str, port: int) -> None:
        self.resolver = resolver
        self.host = host
        self.port = port
        self._tasks: set[asyncio.Task[None]] = set()
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None

    async def start(self) -> None:
        """Bind both sockets (port 0: the same free port for both); raise OSError if taken."""
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self._tcp = await asyncio.start_server(self._connection, self.host, self.port, family=family)
        self.port = self._tcp.sockets[0].getsockname()[1]
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Udp(self.resolver, self._tasks), local_addr=(self.host, self.port), family=family
            )
        except OSError:
            self._tcp.close()
            raise
        self._udp = transport
        log.info("Cluster DNS listening on %s port %d (UDP and TCP)", self.host, self.port)

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        if self._tcp is not None:
            await self._tcp.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while True:
                async with asyncio.timeout(IDLE_TIMEOUT):
                    size = struct.unpack("!H", await reader.readexactly(2))[0]
                    data = await reader.readexactly(size)
                answer = await self.resolver.answer(data, udp=False)
                if answer is None:
                    break
                writer.write(struct.pack("!H", len(answer)) + answer)
                await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
