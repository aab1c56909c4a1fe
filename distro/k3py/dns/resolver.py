"""One query in, one answer out: the checks of RFC 1035 and 6891, then the cluster zone or upstream.

``Resolver.answer(data, limit)`` never raises for what a client sends. A datagram too short to
carry a header, or one that is itself a response, gets no answer (answering could feed a
reflection loop); a malformed query gets FORMERR, an opcode other than QUERY NOTIMP, an EDNS
version above 0 BADVERS. Names in the cluster domain (and the reverse names of cluster
addresses) are answered from :class:`~k3py.dns.zone.ClusterZone`, authoritatively; until the
zone has its first data it answers SERVFAIL, which clients retry. Everything else is forwarded.
A CNAME from the zone to a name outside it is followed upstream, since stub resolvers do not
chase CNAMEs themselves. ``limit`` is the UDP payload the client can take (TCP: None); a larger
answer is sent truncated (TC) with its question only.
Over TCP the limit is the 65,535 bytes its framing can carry.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from k3py.dns.forward import Forwarder, ForwardError
from k3py.dns.wire import (
    ANY,
    BADVERS,
    CNAME,
    FORMERR,
    IN,
    NOERROR,
    NOTIMP,
    QUERY,
    SERVFAIL,
    UDP_LIMIT,
    Edns,
    Message,
    Question,
    Record,
    Target,
    WireError,
    decode,
    decode_header,
    encode_within,
)
from k3py.dns.zone import ClusterZone

log = logging.getLogger(__name__)

SERVER_UDP_SIZE = 1232
"""The EDNS0 payload size this server offers (the 2020 DNS flag day's value)."""
MAX_CHASE = 8
TCP_LIMIT = 65535
"""The most a TCP message can hold (its two-byte length)."""


class Resolver:
    def __init__(self, zone: ClusterZone, forwarder: Forwarder) -> None:
        self.zone = zone
        self.forwarder = forwarder
        self.ready = False
        """Whether the zone holds the cluster's data yet."""

    async def answer(self, data: bytes, udp: bool) -> bytes | None:
        """The bytes to send back for ``data``, or None to send nothing."""
        try:
            ident, flags = decode_header(data)
        except WireError:
            return None
        if flags & 0x8000:
            return None
        try:
            query = decode(data)
        except WireError as exc:
            log.debug("Malformed query %d: %s", ident, exc)
            return encode_within(Message(id=ident, qr=True, opcode=(flags >> 11) & 0xF, rcode=FORMERR), None)
        limit = _limit(query) if udp else TCP_LIMIT
        try:
            return await self._answer(query, data, limit)
        except Exception:
            log.exception("Cannot answer query %d for %s", ident, query.questions)
            return encode_within(_reply(query, SERVFAIL), limit)

    async def _answer(self, query: Message, data: bytes, limit: int | None) -> bytes:
        if query.opcode != QUERY:
            return encode_within(_reply(query, NOTIMP), limit)
        if query.edns is not None and query.edns.version > 0:
            return encode_within(_reply(query, BADVERS), limit)
        if len(query.questions) != 1 or query.answers or query.authority:
            return encode_within(_reply(query, FORMERR), limit)
        question = query.questions[0]
        if question.qclass not in (IN, ANY):
            return encode_within(_reply(query, NOTIMP), limit)
        cluster = self.zone.owns(question.name)
        found = self.zone.lookup(question.name, question.qtype) if self.ready or not cluster else None
        if cluster and not self.ready:
            return encode_within(_reply(query, SERVFAIL), limit)
        if found is None:
            return await self._forward(query, data, limit)
        answers = list(found.answers)
        if answers and answers[-1].rtype == CNAME and question.qtype not in (CNAME, ANY):
            answers += await self._chase(answers[-1], question)
        reply = replace(
            _reply(query, found.rcode),
            aa=True,
            answers=tuple(answers),
            authority=found.authority,
            additional=found.additional,
        )
        return encode_within(reply, limit)

    async def _chase(self, cname: Record, question: Question) -> list[Record]:
        """The records that resolve a CNAME's target (zone or upstream); none if that fails."""
        found: list[Record] = []
        for _ in range(MAX_CHASE):
            assert isinstance(cname.data, Target)
            target = cname.data.name
            if self.zone.owns(target):
                inside = self.zone.lookup(target, question.qtype)
                records = list(inside.answers) if inside else []
            else:
                records = await self._upstream_records(Question(target, question.qtype, question.qclass))
            found += records
            if not records or records[-1].rtype != CNAME:
                break
            cname = records[-1]
        return found

    async def _upstream_records(self, question: Question) -> list[Record]:
        ask = Message(rd=True, questions=(question,), edns=Edns(udp_size=SERVER_UDP_SIZE))
        try:
            answer = decode(await self.forwarder.forward(encode_within(ask, None)))
        except (ForwardError, WireError) as exc:
            log.debug("Cannot follow a CNAME to %s: %s", question.name, exc)
            return []
        return list(answer.answers) if answer.rcode == NOERROR else []

    async def _forward(self, query: Message, data: bytes, limit: int | None) -> bytes:
        try:
            answer = await self.forwarder.forward(data)
        except ForwardError as exc:
            log.debug("Cannot forward %s: %s", query.questions[0].name, exc)
            return encode_within(_reply(query, SERVFAIL), limit)
        if limit is not None and len(answer) > limit:
            try:
                upstream = decode(answer)
            except WireError:
                return encode_within(_reply(query, SERVFAIL), limit)
            return encode_within(replace(upstream, tc=True, answers=(), authority=(), additional=()), None)
        return answer


def _limit(query: Message) -> int:
    if query.edns is None:
        return UDP_LIMIT
    return max(UDP_LIMIT, min(query.edns.udp_size, 65535))


def _reply(query: Message, rcode: int) -> Message:
    """The response skeleton: the query's ID, opcode, RD and question; an OPT if it had one."""
    return Message(
        id=query.id,
        qr=True,
        opcode=query.opcode,
        rd=query.rd,
        ra=True,
        rcode=rcode,
        questions=query.questions[:1] if rcode != FORMERR else (),
        edns=Edns(udp_size=SERVER_UDP_SIZE) if query.edns is not None else None,
    )
