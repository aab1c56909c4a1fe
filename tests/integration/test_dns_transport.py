"""The DNS server on loopback: UDP and TCP framing, truncation, forwarding to an upstream nameserver.

The upstream is a small nameserver the test runs on loopback (below the unit under test); the
zone is loaded from plain dicts.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import struct
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import cast

import pytest

from k3py.dns.forward import Forwarder, Upstream, nameservers
from k3py.dns.resolver import Resolver
from k3py.dns.transport import DnsServer
from k3py.dns.wire import (
    CNAME,
    FORMERR,
    NOERROR,
    NXDOMAIN,
    SERVFAIL,
    A,
    Address,
    Edns,
    Message,
    Record,
    decode,
    encode,
    encode_within,
)
from k3py.dns.zone import ClusterZone
from tests.integration.dns_support import query_tcp, query_udp

LOOPBACK = "127.0.0.1"


def _upstream_answer(query: Message, udp: bool) -> bytes | None:
    question = query.questions[0]
    name = question.name.lower()
    reply = Message(id=query.id, qr=True, rd=query.rd, ra=True, questions=query.questions, edns=query.edns)
    if name == "slow.example":
        return None
    if name in ("example.com", "target.example"):
        ip = "192.0.2.1" if name == "target.example" else "192.0.2.80"
        record = Record(question.name, A, 300, Address(ipaddress.IPv4Address(ip)))
        return encode(replace(reply, answers=(record,)))
    if name == "big.example":
        many = tuple(
            Record(question.name, A, 300, Address(ipaddress.IPv4Address(f"192.0.2.{i}")))
            for i in range(1, 80)
        )
        limit = (query.edns.udp_size if query.edns else 512) if udp else None
        return encode_within(replace(reply, answers=many), limit)
    return encode(replace(reply, rcode=NXDOMAIN))


class _UpstreamUdp(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        answer = _upstream_answer(decode(data), udp=True)
        if answer is not None:
            self.transport.sendto(answer, addr)


async def _upstream_tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    size = struct.unpack("!H", await reader.readexactly(2))[0]
    answer = _upstream_answer(decode(await reader.readexactly(size)), udp=False)
    if answer is not None:
        writer.write(struct.pack("!H", len(answer)) + answer)
        await writer.drain()
    writer.close()


@pytest.fixture
async def upstream() -> AsyncIterator[int]:
    tcp = await asyncio.start_server(_upstream_tcp, LOOPBACK, 0)
    port = tcp.sockets[0].getsockname()[1]
    loop = asyncio.get_running_loop()
    udp, _ = await loop.create_datagram_endpoint(_UpstreamUdp, local_addr=(LOOPBACK, port))
    yield port
    udp.close()
    tcp.close()
    await tcp.wait_closed()


@pytest.fixture
async def server(upstream: int) -> AsyncIterator[DnsServer]:
    zone = ClusterZone()
    zone.load(
        [
            {
                "metadata": {"name": "web", "namespace": "ns"},
                "spec": {"clusterIP": "10.43.0.20", "ports": []},
            },
            {
                "metadata": {"name": "ext", "namespace": "ns"},
                "spec": {"type": "ExternalName", "externalName": "target.example"},
            },
        ],
        [],
    )
    resolver = Resolver(zone, Forwarder(upstreams=[Upstream(LOOPBACK, upstream)], timeout=1.0))
    resolver.ready = True
    dns = DnsServer(resolver, LOOPBACK, 0)
    await dns.start()
    yield dns
    await dns.close()


async def test_udp_and_tcp_answer_cluster_names(server: DnsServer) -> None:
    answer = await query_udp(LOOPBACK, server.port, "web.ns.svc.cluster.local", A)
    assert answer.rcode == NOERROR and answer.aa and answer.ra
    assert [str(r.data.address) for r in answer.answers if isinstance(r.data, Address)] == ["10.43.0.20"]
    first, second, third = await query_tcp(
        LOOPBACK,
        server.port,
        [("web.ns.svc.cluster.local", A), ("nope.ns.svc.cluster.local", A), ("example.com", A)],
    )
    assert first.answers and second.rcode == NXDOMAIN and third.answers[0].ttl == 300


async def test_names_outside_the_cluster_go_upstream(server: DnsServer) -> None:
    answer = await query_udp(LOOPBACK, server.port, "Example.COM", A)
    assert answer.rcode == NOERROR and not answer.aa
    assert [str(r.data.address) for r in answer.answers if isinstance(r.data, Address)] == ["192.0.2.80"]
    assert (await query_udp(LOOPBACK, server.port, "missing.example", A)).rcode == NXDOMAIN


async def test_an_external_name_is_followed_upstream(server: DnsServer) -> None:
    answer = await query_udp(LOOPBACK, server.port, "ext.ns.svc.cluster.local", A)
    assert [r.rtype for r in answer.answers] == [CNAME, A]
    assert str(answer.answers[1].data.address) == "192.0.2.1"  # type: ignore[union-attr]


async def test_an_answer_too_big_for_udp_is_truncated_and_whole_over_tcp(server: DnsServer) -> None:
    small = await query_udp(LOOPBACK, server.port, "big.example", A)
    assert small.tc and not small.answers
    roomy = await query_udp(LOOPBACK, server.port, "big.example", A, edns=Edns(udp_size=4096))
    assert not roomy.tc and len(roomy.answers) == 79 and roomy.edns is not None
    (whole,) = await query_tcp(LOOPBACK, server.port, [("big.example", A)])
    assert not whole.tc and len(whole.answers) == 79


async def test_an_upstream_that_does_not_answer_gives_servfail(server: DnsServer) -> None:
    answer = await query_udp(LOOPBACK, server.port, "slow.example", A)
    assert answer.rcode == SERVFAIL


async def test_garbage_gets_formerr_and_the_server_keeps_answering(server: DnsServer) -> None:
    garbage = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01"
    answer = await query_udp(LOOPBACK, server.port, "", A, raw=garbage)
    assert answer.id == 0x1234 and answer.rcode == FORMERR
    reader, writer = await asyncio.open_connection(LOOPBACK, server.port)
    writer.write(b"\x00\x05hello")  # a frame too short for a header: the connection is closed
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    assert (await query_udp(LOOPBACK, server.port, "web.ns.svc.cluster.local", A)).answers


async def test_the_zone_answers_servfail_until_it_has_data(upstream: int) -> None:
    resolver = Resolver(ClusterZone(), Forwarder(upstreams=[Upstream(LOOPBACK, upstream)], timeout=1.0))
    dns = DnsServer(resolver, LOOPBACK, 0)
    await dns.start()
    try:
        assert (await query_udp(LOOPBACK, dns.port, "web.ns.svc.cluster.local", A)).rcode == SERVFAIL
        assert (await query_udp(LOOPBACK, dns.port, "example.com", A)).answers
    finally:
        await dns.close()


def test_resolv_conf_nameservers_skip_this_server(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("# comment\nsearch lan\nnameserver 127.0.0.53\nnameserver 10.0.0.1\nnameserver bogus\n")
    assert nameservers(conf.read_text()) == ["127.0.0.53", "10.0.0.1"]
    on_loopback = Forwarder(own={"127.0.0.1"}, resolv_conf=conf)
    assert [u.address for u in on_loopback.upstreams()] == ["10.0.0.1"]
    on_node = Forwarder(own={"10.0.0.5", "10.43.0.10"}, resolv_conf=conf)
    assert [u.address for u in on_node.upstreams()] == ["127.0.0.53", "10.0.0.1"]
    itself = Forwarder(own={"10.0.0.1"}, resolv_conf=conf)
    assert [u.address for u in itself.upstreams()] == ["127.0.0.53"]
    conf.write_text("nameserver 10.0.0.9\n")
    os.utime(conf, (1, 1))  # a different mtime: the file is read again
    assert [u.address for u in on_node.upstreams()] == ["10.0.0.9"]
    assert Forwarder(resolv_conf=tmp_path / "absent").upstreams() == []
