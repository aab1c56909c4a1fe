"""Forwarding of names outside the cluster to the host's nameservers (``/etc/resolv.conf``).

As K3s's Corefile says ``forward . /etc/resolv.conf``: a query is sent as the client sent it
(its EDNS0 size included, so the upstream answer fits the client) under a fresh random ID, to
each nameserver in turn until one answers within its share of the time; a truncated UDP answer
is asked again over TCP. Answers are relayed, never cached, so no answer outlives its TTL here.
Nameservers that are this server itself (one of its own addresses, or a loopback address when
it listens on loopback or every address) are skipped: asking them would loop.
The file is read again whenever it changes.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
import struct
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from k3py.dns.wire import decode_header

log = logging.getLogger(__name__)

RESOLV_CONF = Path("/etc/resolv.conf")
DNS_PORT = 53
TIMEOUT = 5.0
"""Seconds a forwarded question may take over all nameservers before the client gets SERVFAIL."""
MAX_NAMESERVERS = 3
"""The resolver reads at most three, as glibc does."""


class ForwardError(Exception):
    """No upstream nameserver answered."""


@dataclass(frozen=True)
class Upstream:
    address: str
    port: int = DNS_PORT


class Forwarder:
    """``await Forwarder(own={"10.0.0.5"}).forward(query_bytes)`` → the upstream answer bytes."""

    def __init__(
        self,
        *,
        own: Collection[str] = (),
        own_port: int = DNS_PORT,
        resolv_conf: Path = RESOLV_CONF,
        upstreams: list[Upstream] | None = None,
        timeout: float = TIMEOUT,
    ) -> None:
        self.own = {ipaddress.ip_address(a) for a in own}
        self.own_port = own_port
        self.resolv_conf = resolv_conf
        self.timeout = timeout
        self._fixed = upstreams
        self._read: tuple[float, list[Upstream]] | None = None

    def upstreams(self) -> list[Upstream]:
        """The nameservers to ask, from the resolv.conf as it is now."""
        if self._fixed is not None:
            return self._fixed
        try:
            stamp = self.resolv_conf.stat().st_mtime
        except OSError:
            return []
        if self._read is None or self._read[0] != stamp:
            try:
                text = self.resolv_conf.read_text(errors="replace")
            except OSError as exc:
                log.warning("Cannot read %s: %s", self.resolv_conf, exc)
                return []
            found = [Upstream(a) for a in nameservers(text) if not self._is_self(a)]
            if not found:
                log.warning("No usable nameserver in %s: names outside the cluster fail", self.resolv_conf)
            self._read = (stamp, found[:MAX_NAMESERVERS])
        return self._read[1]

    def _is_self(self, address: str) -> bool:
        ip = ipaddress.ip_address(address)
        if self.own_port != DNS_PORT:
            return False
        if ip in self.own:
            return True
        return ip.is_loopback and any(a.is_loopback or a.is_unspecified for a in self.own)

    async def forward(self, query: bytes) -> bytes:
        """Ask the upstream nameservers; raise :class:`ForwardError` if none answers in time."""
        servers = self.upstreams()
        if not servers:
            raise ForwardError("no upstream nameserver")
        ident, _ = decode_header(query)
        share = self.timeout / len(servers)
        for server in servers:
            fresh = secrets.randbelow(0x10000)
            asked = struct.pack("!H", fresh) + query[2:]
            try:
                async with asyncio.timeout(share):
                    answer = await _udp(server, asked, fresh)
                    if answer[2] & 0x02:  # TC: ask again where it fits
                        answer = await _tcp(server, asked, fresh)
            except (TimeoutError, OSError, ValueError) as exc:
                log.debug("Nameserver %s did not answer: %r", server.address, exc)
                continue
            return struct.pack("!H", ident) + answer[2:]
        raise ForwardError(f"no answer from {', '.join(s.address for s in servers)}")


class _Reply(asyncio.DatagramProtocol):
    def __init__(self, ident: int, question: bytes) -> None:
        self.ident = ident
        self.question = question
        self.done: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        # Only the answer to this query, for this question (RFC 5452 3): others are spoofs or stale.
        ours = len(data) >= 12 and data[:2] == struct.pack("!H", self.ident) and bool(data[2] & 0x80)
        if ours and data[12 : 12 + len(self.question)].lower() == self.question and not self.done.done():
            self.done.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.done.done():
            self.done.set_exception(exc)


async def _udp(server: Upstream, query: bytes, ident: int) -> bytes:
    loop = asyncio.get_running_loop()
    question = _question_bytes(query)
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: _Reply(ident, question), remote_addr=(server.address, server.port)
    )
    try:
        transport.sendto(query)
        return await protocol.done
    finally:
        transport.close()


async def _tcp(server: Upstream, query: bytes, ident: int) -> bytes:
    reader, writer = await asyncio.open_connection(server.address, server.port)
    try:
        writer.write(struct.pack("!H", len(query)) + query)
        await writer.drain()
        size = struct.unpack("!H", await reader.readexactly(2))[0]
        answer = await reader.readexactly(size)
        if len(answer) < 12 or answer[:2] != query[:2]:
            raise ValueError("an answer to another query")
        return answer
    finally:
        writer.close()


def _question_bytes(query: bytes) -> bytes:
    """The first question's name, type and class as sent (lower-cased), to match the answer."""
    offset = 12
    while offset < len(query) and query[offset] != 0:
        offset += 1 + query[offset]
    return query[12 : offset + 5].lower()


def nameservers(text: str) -> list[str]:
    """The ``nameserver`` addresses of a resolv.conf, in order."""
    found = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            try:
                ipaddress.ip_address(fields[1])
            except ValueError:
                continue
            found.append(fields[1])
    return found
