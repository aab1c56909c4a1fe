"""The DNS message format: round trips, compression, and hostile bytes that must not get through."""

from __future__ import annotations

import asyncio
import ipaddress
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from k3py.dns import wire
from k3py.dns.forward import Forwarder
from k3py.dns.resolver import Resolver
from k3py.dns.wire import (
    AAAA,
    CNAME,
    FORMERR,
    NOTIMP,
    PTR,
    SOA,
    SRV,
    TXT,
    A,
    Address,
    Edns,
    Message,
    Question,
    Raw,
    Record,
    Soa,
    Srv,
    Target,
    Txt,
    WireError,
    decode,
    encode,
    encode_within,
)
from k3py.dns.zone import ClusterZone

labels = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCXYZ0123456789-_", min_size=1, max_size=20)
names = st.lists(labels, min_size=0, max_size=6).map(".".join)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
rdatas = st.one_of(
    st.builds(Address, st.ip_addresses(v=4)).map(lambda a: (A, a)),
    st.builds(Address, st.ip_addresses(v=6)).map(lambda a: (AAAA, a)),
    st.builds(Target, names).map(lambda t: (CNAME, t)),
    st.builds(Target, names).map(lambda t: (PTR, t)),
    st.builds(Srv, u16, u16, u16, names).map(lambda s: (SRV, s)),
    st.builds(Txt, st.lists(st.binary(max_size=255), max_size=4).map(tuple)).map(lambda t: (TXT, t)),
    st.builds(Soa, names, names, u32, u32, u32, u32, u32).map(lambda s: (SOA, s)),
    st.builds(Raw, st.binary(max_size=40)).map(lambda r: (99, r)),
)
records = st.builds(
    lambda name, typed, ttl: Record(name, typed[0], ttl, typed[1]), names, rdatas, st.integers(0, 2**31 - 1)
)
messages = st.builds(
    Message,
    id=u16,
    qr=st.booleans(),
    opcode=st.integers(0, 15),
    aa=st.booleans(),
    tc=st.booleans(),
    rd=st.booleans(),
    ra=st.booleans(),
    rcode=st.integers(0, 15),
    questions=st.lists(st.builds(Question, names, u16, u16), max_size=3).map(tuple),
    answers=st.lists(records, max_size=5).map(tuple),
    authority=st.lists(records, max_size=3).map(tuple),
    additional=st.lists(records, max_size=3).map(tuple),
    edns=st.none()
    | st.builds(Edns, u16, st.just(0), st.integers(0, 255), st.booleans(), st.binary(max_size=8)),
)


@given(messages)
@settings(max_examples=300)
def test_messages_survive_a_round_trip(message: Message) -> None:
    assert decode(encode(message)) == message


def test_names_are_compressed_and_srv_targets_are_not() -> None:
    name = "web.default.svc.cluster.local"
    message = Message(
        qr=True,
        questions=(Question(name, A),),
        answers=(
            Record(name, A, 5, Address(ipaddress.IPv4Address("10.43.0.7"))),
            Record(name, CNAME, 5, Target("x.default.svc.cluster.local")),
            Record("_http._tcp." + name, SRV, 5, Srv(0, 100, 80, name)),
        ),
    )
    data = encode(message)
    assert data.count(b"\x03web") == 2  # the question, and the SRV target written out in full
    assert data.count(b"\x07cluster") == 2
    assert decode(data) == message


def test_a_pointer_loop_is_an_error() -> None:
    header = struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0)
    for name in (b"\xc0\x0c", b"\x01a\xc0\x0c", b"\x01a\xc0\x0e"):
        with pytest.raises(WireError):
            decode(header + name + b"\x00\x01\x00\x01")


def test_a_forward_pointer_is_refused_even_without_a_loop() -> None:
    header = struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0)
    with pytest.raises(WireError, match="backwards"):
        decode(header + b"\xc0\x12\x00\x01\x00\x01\x00\x00")


def test_a_name_longer_than_255_octets_is_an_error() -> None:
    header = struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0)
    long_name = b"".join(b"\x3f" + b"a" * 63 for _ in range(4)) + b"\x00"
    with pytest.raises(WireError, match="longer"):
        decode(header + long_name + b"\x00\x01\x00\x01")


def test_an_oversized_answer_is_truncated_to_its_question() -> None:
    many = tuple(
        Record("big.example", A, 5, Address(ipaddress.IPv4Address(f"10.0.{i // 250}.{i % 250}")))
        for i in range(60)
    )
    message = Message(qr=True, questions=(Question("big.example", A),), answers=many)
    assert len(encode(message)) > 512
    short = decode(encode_within(message, 512))
    assert short.tc and not short.answers and short.questions == message.questions
    assert not decode(encode_within(message, 4096)).tc


async def _answer(data: bytes) -> bytes | None:
    resolver = Resolver(ClusterZone(), Forwarder(upstreams=[]))
    resolver.ready = True
    return await resolver.answer(data, udp=True)


@given(st.binary(max_size=120))
@settings(max_examples=400, deadline=None)
def test_random_bytes_get_formerr_or_nothing(data: bytes) -> None:
    answer = asyncio.run(_answer(data))
    if answer is None:
        return
    reply = decode(answer)
    assert reply.qr and reply.id == struct.unpack("!H", data[:2])[0]


@given(messages.filter(lambda m: m.questions), st.integers(0, 200), st.binary(min_size=1, max_size=4))
@settings(max_examples=200, deadline=None)
def test_damaged_queries_never_raise(message: Message, at: int, junk: bytes) -> None:
    data = bytearray(encode(Message(id=message.id, questions=message.questions[:1], answers=message.answers)))
    at %= len(data)
    data[at : at + len(junk)] = junk
    answer = asyncio.run(_answer(bytes(data)))
    assert answer is None or decode(answer).qr


def test_malformed_queries_get_formerr_and_other_opcodes_notimp() -> None:
    truncated = encode(Message(id=7, questions=(Question("a.example", A),)))[:-2]
    assert decode(asyncio.run(_answer(truncated)) or b"").rcode == FORMERR
    two = encode(Message(id=8, questions=(Question("a.example", A), Question("b.example", A))))
    assert decode(asyncio.run(_answer(two)) or b"").rcode == FORMERR
    status = encode(Message(id=9, opcode=2, questions=(Question("a.example", A),)))
    assert decode(asyncio.run(_answer(status)) or b"").rcode == NOTIMP
    response = encode(Message(id=10, qr=True, questions=(Question("a.example", A),)))
    assert asyncio.run(_answer(response)) is None
    assert asyncio.run(_answer(b"\x00\x01")) is None


def test_edns_version_above_zero_gets_badvers() -> None:
    query = encode(Message(id=3, questions=(Question("a.example", A),), edns=Edns(version=1)))
    reply = decode(asyncio.run(_answer(query)) or b"")
    assert reply.rcode == wire.BADVERS and reply.edns is not None
