"""The DNS message format of RFC 1035 (with EDNS0, RFC 6891): bytes to :class:`Message` and back.

Decoding is strict and bounded: every read is checked against the message's length, a
compression pointer must point before the name that uses it (so pointer loops cannot happen),
a name is at most 255 octets, and anything out of shape raises :class:`WireError`, which the
resolver turns into FORMERR. Records of types this server does not interpret keep their data
as :class:`Raw` bytes. Encoding compresses every name it may (owner names and the names inside
CNAME, PTR, NS and SOA data; not SRV targets, RFC 2782) by pointing at earlier occurrences.

Names are text: labels joined by dots, without the trailing dot (the root is ``""``). A label
holding a dot cannot be written that way; decoding one is a :class:`WireError`. Comparison is
the caller's business (DNS names are case-insensitive, the wire keeps the case it was given).
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field, replace

# Record types and classes used here (RFC 1035, 2782, 3596, 6891).
A, NS, CNAME, SOA, PTR, TXT, AAAA, SRV, OPT, ANY = 1, 2, 5, 6, 12, 16, 28, 33, 41, 255
IN = 1
# Response codes (RFC 1035 4.1.1; BADVERS is an extended code, RFC 6891).
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED, BADVERS = 0, 1, 2, 3, 4, 5, 16
QUERY = 0
UDP_LIMIT = 512
"""The most a UDP answer may hold for a client that did not say otherwise with EDNS0."""
MAX_NAME = 255
MAX_LABEL = 63
HEADER = struct.Struct("!HHHHHH")


class WireError(ValueError):
    """The bytes are not a well-formed DNS message."""


@dataclass(frozen=True, slots=True)
class Question:
    name: str
    qtype: int
    qclass: int = IN


@dataclass(frozen=True, slots=True)
class Address:
    """A or AAAA data."""

    address: ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class Target:
    """CNAME, PTR or NS data: one name."""

    name: str


@dataclass(frozen=True, slots=True)
class Srv:
    priority: int
    weight: int
    port: int
    target: str


@dataclass(frozen=True, slots=True)
class Txt:
    strings: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Soa:
    mname: str
    rname: str
    serial: int
    refresh: int
    retry: int
    expire: int
    minimum: int


@dataclass(frozen=True, slots=True)
class Raw:
    """The data of a record type this module does not interpret."""

    data: bytes


Rdata = Address | Target | Srv | Txt | Soa | Raw


@dataclass(frozen=True, slots=True)
class Record:
    name: str
    rtype: int
    ttl: int
    data: Rdata
    rclass: int = IN


@dataclass(frozen=True, slots=True)
class Edns:
    """The OPT pseudo-record: the sender's UDP payload size, extended rcode bits, version, DO."""

    udp_size: int = 1232
    extended_rcode: int = 0
    version: int = 0
    dnssec_ok: bool = False
    options: bytes = b""


@dataclass(frozen=True, slots=True)
class Message:
    id: int = 0
    qr: bool = False
    opcode: int = QUERY
    aa: bool = False
    tc: bool = False
    rd: bool = False
    ra: bool = False
    rcode: int = NOERROR
    """The full response code; values above 15 travel partly in the OPT record."""
    questions: tuple[Question, ...] = ()
    answers: tuple[Record, ...] = ()
    authority: tuple[Record, ...] = ()
    additional: tuple[Record, ...] = ()
    edns: Edns | None = None
    flags_z: int = field(default=0, compare=False)
    """The reserved header bits (Z, AD, CD) as received; written back unchanged."""


# --- decoding ---------------------------------------------------------------------------------


def decode_header(data: bytes) -> tuple[int, int]:
    """The ID and flags word of a message of at least 12 bytes."""
    if len(data) < HEADER.size:
        raise WireError(f"a message has a 12-byte header, got {len(data)} bytes")
    ident, flags = struct.unpack_from("!HH", data)
    return ident, flags


def decode(data: bytes) -> Message:
    """Parse a whole message; raise :class:`WireError` if it is malformed."""
    ident, flags, qd, an, ns, ar = _unpack(HEADER, data, 0)
    offset = HEADER.size
    questions = []
    for _ in range(qd):
        name, offset = read_name(data, offset)
        qtype, qclass = _unpack(_HH, data, offset)
        offset += 4
        questions.append(Question(name, qtype, qclass))
    sections: list[list[Record]] = [[], [], []]
    edns: Edns | None = None
    for index, count in enumerate((an, ns, ar)):
        for _ in range(count):
            record, opt, offset = _read_record(data, offset)
            if opt is not None:
                if index != 2 or edns is not None:
                    raise WireError("an OPT record belongs once in the additional section")
                edns = opt
            elif record is not None:
                sections[index].append(record)
    if offset != len(data):
        raise WireError(f"{len(data) - offset} bytes after the last record")
    rcode = flags & 0xF
    if edns is not None:
        rcode |= edns.extended_rcode << 4
    return Message(
        id=ident,
        qr=bool(flags & 0x8000),
        opcode=(flags >> 11) & 0xF,
        aa=bool(flags & 0x0400),
        tc=bool(flags & 0x0200),
        rd=bool(flags & 0x0100),
        ra=bool(flags & 0x0080),
        rcode=rcode,
        questions=tuple(questions),
        answers=tuple(sections[0]),
        authority=tuple(sections[1]),
        additional=tuple(sections[2]),
        edns=edns,
        flags_z=flags & 0x0070,
    )


_HH = struct.Struct("!HH")
_RR = struct.Struct("!HHIH")
_SRV = struct.Struct("!HHH")
_SOA = struct.Struct("!IIIII")


def _unpack(layout: struct.Struct, data: bytes, offset: int) -> tuple[int, ...]:
    if offset + layout.size > len(data):
        raise WireError(f"message ends at byte {len(data)}, inside a field at {offset}")
    return layout.unpack_from(data, offset)


def read_name(data: bytes, offset: int) -> tuple[str, int]:
    """The name at ``offset`` and the offset after it (after the first pointer, if any).

    A pointer must point strictly before the label sequence that holds it, so every jump goes
    backwards and the walk ends.
    """
    labels: list[str] = []
    length = 0
    end: int | None = None
    start = offset
    while True:
        if offset >= len(data):
            raise WireError("a name runs past the end of the message")
        size = data[offset]
        if size & 0xC0 == 0xC0:
            if offset + 1 >= len(data):
                raise WireError("a compression pointer runs past the end of the message")
            target = ((size & 0x3F) << 8) | data[offset + 1]
            if target >= start:
                raise WireError(f"a compression pointer at {offset} does not point backwards")
            if end is None:
                end = offset + 2
            offset = start = target
            continue
        if size & 0xC0:
            raise WireError(f"unknown label type 0x{size & 0xC0:02x} at {offset}")
        offset += 1
        if size == 0:
            break
        if offset + size > len(data):
            raise WireError("a label runs past the end of the message")
        label = data[offset : offset + size]
        if b"." in label:
            raise WireError(f"a label holds a dot: {label!r}")
        length += size + 1
        if length + 1 > MAX_NAME:
            raise WireError(f"a name is longer than {MAX_NAME} octets")
        labels.append(label.decode("latin-1"))
        offset += size
    return ".".join(labels), offset if end is None else end


def _read_record(data: bytes, offset: int) -> tuple[Record | None, Edns | None, int]:
    name, offset = read_name(data, offset)
    rtype, rclass, ttl, size = _unpack(_RR, data, offset)
    offset += _RR.size
    end = offset + size
    if end > len(data):
        raise WireError("record data runs past the end of the message")
    if rtype == OPT:
        if name:
            raise WireError("an OPT record is owned by the root name")
        edns = Edns(
            udp_size=rclass,
            extended_rcode=ttl >> 24,
            version=(ttl >> 16) & 0xFF,
            dnssec_ok=bool(ttl & 0x8000),
            options=data[offset:end],
        )
        return None, edns, end
    return Record(name, rtype, ttl, _read_rdata(data, offset, end, rtype), rclass), None, end


def _read_rdata(data: bytes, offset: int, end: int, rtype: int) -> Rdata:
    rdata: Rdata
    after = end
    if rtype == A and end - offset == 4:
        return Address(ipaddress.IPv4Address(data[offset:end]))
    if rtype == AAAA and end - offset == 16:
        return Address(ipaddress.IPv6Address(data[offset:end]))
    if rtype in (A, AAAA):
        raise WireError(f"address record of {end - offset} bytes")
    view = data[:end]  # names and fields inside the data must not run past it
    if rtype in (CNAME, PTR, NS):
        target, after = read_name(view, offset)
        rdata = Target(target)
    elif rtype == SRV:
        priority, weight, port = _unpack(_SRV, view, offset)
        target, after = read_name(view, offset + _SRV.size)
        rdata = Srv(priority, weight, port, target)
    elif rtype == SOA:
        mname, after = read_name(view, offset)
        rname, after = read_name(view, after)
        rdata = Soa(mname, rname, *_unpack(_SOA, view, after))
        after += _SOA.size
    elif rtype == TXT:
        strings = []
        while offset < end:
            size = data[offset]
            if offset + 1 + size > end:
                raise WireError("a TXT string runs past its record")
            strings.append(data[offset + 1 : offset + 1 + size])
            offset += 1 + size
        return Txt(tuple(strings))
    else:
        return Raw(data[offset:end])
    if after != end:
        raise WireError(f"record data of type {rtype} has {end - after} stray bytes")
    return rdata


# --- encoding ---------------------------------------------------------------------------------


class _Writer:
    """An output buffer that remembers where each name suffix was written, for pointers."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.names: dict[str, int] = {}

    def name(self, name: str, compress: bool = True) -> None:
        labels = name.split(".") if name else []
        for index in range(len(labels)):
            suffix = ".".join(labels[index:])
            if compress and suffix in self.names:
                self.out += struct.pack("!H", 0xC000 | self.names[suffix])
                return
            if len(self.out) < 0x4000:
                self.names.setdefault(suffix, len(self.out))
            label = labels[index].encode("latin-1")
            if not 0 < len(label) <= MAX_LABEL:
                raise ValueError(f"label {labels[index]!r} of {name!r} must be 1 to {MAX_LABEL} octets")
            self.out.append(len(label))
            self.out += label
        self.out.append(0)

    def record(self, record: Record) -> None:
        self.name(record.name)
        self.out += struct.pack("!HHI", record.rtype, record.rclass, record.ttl)
        at = len(self.out)
        self.out += b"\0\0"
        self.rdata(record.data)
        struct.pack_into("!H", self.out, at, len(self.out) - at - 2)

    def rdata(self, data: Rdata) -> None:
        match data:
            case Address(address):
                self.out += address.packed
            case Target(name):
                self.name(name)
            case Srv(priority, weight, port, target):
                self.out += _SRV.pack(priority, weight, port)
                self.name(target, compress=False)
            case Soa():
                self.name(data.mname)
                self.name(data.rname)
                self.out += _SOA.pack(data.serial, data.refresh, data.retry, data.expire, data.minimum)
            case Txt(strings):
                for text in strings:
                    if len(text) > 255:
                        raise ValueError("a TXT string holds at most 255 bytes")
                    self.out.append(len(text))
                    self.out += text
            case Raw(raw):
                self.out += raw


def encode(message: Message) -> bytes:
    """The wire form of ``message``; ``ValueError`` if a name or field cannot be written."""
    writer = _Writer()
    additional = list(message.additional)
    opt: Record | None = None
    if message.edns is not None:
        edns = message.edns
        ttl = ((message.rcode >> 4) << 24) | (edns.version << 16) | (0x8000 if edns.dnssec_ok else 0)
        opt = Record("", OPT, ttl, Raw(edns.options), rclass=edns.udp_size)
    elif message.rcode > 15:
        raise ValueError(f"rcode {message.rcode} needs an OPT record")
    flags = (
        (0x8000 if message.qr else 0)
        | (message.opcode & 0xF) << 11
        | (0x0400 if message.aa else 0)
        | (0x0200 if message.tc else 0)
        | (0x0100 if message.rd else 0)
        | (0x0080 if message.ra else 0)
        | message.flags_z
        | (message.rcode & 0xF)
    )
    counts = (
        len(message.questions),
        len(message.answers),
        len(message.authority),
        len(additional) + (opt is not None),
    )
    writer.out += HEADER.pack(message.id, flags, *counts)
    for question in message.questions:
        writer.name(question.name)
        writer.out += _HH.pack(question.qtype, question.qclass)
    for record in (*message.answers, *message.authority, *additional):
        writer.record(record)
    if opt is not None:
        writer.record(opt)
    return bytes(writer.out)


def encode_within(message: Message, limit: int | None) -> bytes:
    """Encode; over ``limit`` bytes, send the header and question alone with TC set (RFC 2181 9)."""
    data = encode(message)
    if limit is None or len(data) <= limit:
        return data
    return encode(replace(message, tc=True, answers=(), authority=(), additional=()))
