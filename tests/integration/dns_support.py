"""A tiny DNS client for tests: one question over UDP or TCP, the decoded answer back."""

from __future__ import annotations

import asyncio
import secrets
import struct

from k3py.dns.wire import Edns, Message, Question, decode, encode


class _Once(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: object) -> None:
        if not self.answer.done():
            self.answer.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc)  # e.g. ICMP port unreachable: nobody listens


async def query_udp(
    host: str, port: int, name: str, qtype: int, *, edns: Edns | None = None, raw: bytes | None = None
) -> Message:
    data = raw if raw is not None else _query(name, qtype, edns)
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(_Once, remote_addr=(host, port))
    try:
        transport.sendto(data)
        async with asyncio.timeout(5):
            return decode(await protocol.answer)
    finally:
        transport.close()


async def query_tcp(host: str, port: int, questions: list[tuple[str, int]]) -> list[Message]:
    """Several questions on one connection, answered in order."""
    reader, writer = await asyncio.open_connection(host, port)
    answers = []
    try:
        for name, qtype in questions:
            data = _query(name, qtype, None)
            writer.write(struct.pack("!H", len(data)) + data)
            await writer.drain()
            async with asyncio.timeout(10):
                size = struct.unpack("!H", await reader.readexactly(2))[0]
                answers.append(decode(await reader.readexactly(size)))
    finally:
        writer.close()
    return answers


def _query(name: str, qtype: int, edns: Edns | None) -> bytes:
    return encode(
        Message(id=secrets.randbelow(0x10000), rd=True, questions=(Question(name, qtype),), edns=edns)
    )
