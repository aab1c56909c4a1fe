"""WebSocket from the client, SPDY/3.1 towards the kubelet: exec, attach and port-forward.

kubectl 1.37 opens exec and attach as a WebSocket with the ``v5.channel.k8s.io``
subprotocol. Container runtimes' streaming servers (containerd 1.6 among them) speak SPDY
and older WebSocket protocols only, so, as kube-apiserver's ``StreamTranslatorHandler``
does since 1.30, the API server accepts the WebSocket itself and talks SPDY to the kubelet
(which splices it to the runtime):

- the kubelet is asked for ``Upgrade: SPDY/3.1`` with ``X-Stream-Protocol-Version:
  v4.channel.k8s.io``; a refusal is relayed as is (the WebSocket handshake then fails and
  kubectl retries with SPDY, reaching the same refusal);
- SPDY streams are created as client-go creates them: ``error``, then ``stdin``, ``stdout``,
  ``stderr`` and (with a terminal) ``resize``, each named by its ``streamType`` header;
- WebSocket messages are a channel byte then data: 0 stdin, 1 stdout, 2 stderr, 3 error (a
  ``Status``, as the v4 error stream carries it), 4 resize; v5 adds 255 + channel, "this
  channel is closed", which half-closes the SPDY stdin stream;
- when stdout, stderr and the error stream have ended, the WebSocket is closed.

Only what this needs of SPDY/3.1 is here: SYN_STREAM (header block zlib-compressed without
the SPDY dictionary, which its readers accept), DATA, answering PING, ending on GOAWAY and
RST_STREAM. The streaming server does no SPDY flow control, so WINDOW_UPDATE is ignored.

Port-forward (``tunnel``) is simpler: kubectl speaks SPDY itself, inside WebSocket binary
messages (subprotocol ``SPDY/3.1+portforward.k8s.io``), so the bytes are only unwrapped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import WSMsgType, web

from k3py.apiserver.kubelet_proxy.upgrade import Target, open_backend, relay_refusal, request_head

log = logging.getLogger(__name__)

V5 = "v5.channel.k8s.io"
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
_CHANNELS = {"stdout": STDOUT, "stderr": STDERR, "error": ERROR}
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FIN = 0x01
CHUNK = 32 * 1024


def wants_translation(request: web.Request) -> bool:
    """A WebSocket upgrade offering ``v5.channel.k8s.io`` (kubectl 1.30+)."""
    if request.headers.get("Upgrade", "").lower() != "websocket":
        return False
    offered = {p.strip() for v in request.headers.getall("Sec-WebSocket-Protocol", []) for p in v.split(",")}
    return V5 in offered


@dataclass(frozen=True)
class Streams:
    """Which streams the command has (``PodExecOptions``: stdin, stdout, stderr, tty)."""

    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> Streams:
        def flag(name: str) -> bool:
            return query.get(name, "").lower() in ("1", "true")

        tty = flag("tty")
        return cls(flag("stdin"), flag("stdout"), flag("stderr") and not tty, tty)

    def types(self) -> list[str]:
        """The stream types in client-go's creation order."""
        wanted = [
            ("stdin", self.stdin),
            ("stdout", self.stdout),
            ("stderr", self.stderr),
            ("resize", self.tty),
        ]
        return ["error", *(name for name, on in wanted if on)]


class SpdyClient:
    """The client end of an SPDY/3.1 session over an upgraded connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.compressor = zlib.compressobj()
        self.next_id = 1

    def open_stream(self, headers: Mapping[str, str]) -> int:
        stream = self.next_id
        self.next_id += 2
        block = struct.pack(">I", len(headers))
        for name, value in headers.items():
            raw_name, raw_value = name.lower().encode(), value.encode()
            block += (
                struct.pack(">I", len(raw_name)) + raw_name + struct.pack(">I", len(raw_value)) + raw_value
            )
        compressed = self.compressor.compress(block) + self.compressor.flush(zlib.Z_SYNC_FLUSH)
        self._control(SYN_STREAM, 0, struct.pack(">IIBB", stream, 0, 0, 0) + compressed)
        return stream

    def send(self, stream: int, data: bytes, *, fin: bool = False) -> None:
        for start in range(0, max(len(data), 1), CHUNK):
            piece = data[start : start + CHUNK]
            last = start + CHUNK >= len(data)
            flags = FIN if fin and last else 0
            self.writer.write(struct.pack(">II", stream & 0x7FFFFFFF, (flags << 24) | len(piece)) + piece)

    def _control(self, kind: int, flags: int, payload: bytes) -> None:
        self.writer.write(struct.pack(">HHI", 0x8003, kind, (flags << 24) | len(payload)) + payload)

    async def frame(self) -> tuple[bool, int, int, bytes]:
        """(control, type or stream id, flags, payload); IncompleteReadError at the end."""
        head = await self.reader.readexactly(8)
        flags, length = head[4], int.from_bytes(head[5:8], "big")
        payload = await self.reader.readexactly(length)
        if head[0] & 0x80:
            kind = struct.unpack(">H", head[2:4])[0]
            if kind == PING:
                self._control(PING, 0, payload)
            return True, kind, flags, payload
        return False, int.from_bytes(head[:4], "big") & 0x7FFFFFFF, flags, payload

    def close(self) -> None:
        self.writer.close()


async def translate(request: web.Request, target: Target, streams: Streams) -> web.StreamResponse:
    """Serve the WebSocket ``request`` through an SPDY session with ``target`` (see module doc)."""
    headers = [
        ("Connection", "Upgrade"),
        ("Upgrade", "SPDY/3.1"),
        ("X-Stream-Protocol-Version", "v4.channel.k8s.io"),
        ("User-Agent", request.headers.get("User-Agent", "k3py")),
    ]
    if peer := request.remote:
        headers.append(("X-Forwarded-For", peer))
    reader, writer, response = await open_backend(target, request_head("POST", target, headers))
    if response.status != 101:
        return await relay_refusal(reader, writer, response)
    spdy = SpdyClient(reader, writer)
    ws = web.WebSocketResponse(protocols=[V5], compress=False, autoping=True)
    await ws.prepare(request)
    ids = {kind: spdy.open_stream({"streamType": kind}) for kind in streams.types()}
    await writer.drain()
    try:
        async with asyncio.TaskGroup() as group:
            inbound = group.create_task(_client_to_kubelet(ws, spdy, ids))
            await _kubelet_to_client(spdy, ws, {v: k for k, v in ids.items()})
            inbound.cancel()
    except* (ConnectionError, asyncio.IncompleteReadError) as exc:
        log.debug("exec stream ended: %s", exc.exceptions[0])
    finally:
        spdy.close()
        if not ws.closed:
            with contextlib.suppress(ConnectionError):
                await ws.close()
    return ws


async def _client_to_kubelet(ws: web.WebSocketResponse, spdy: SpdyClient, ids: Mapping[str, int]) -> None:
    channels = {STDIN: ids.get("stdin"), RESIZE: ids.get("resize")}
    async for message in ws:
        if message.type != WSMsgType.BINARY or not message.data:
            continue
        data: bytes = message.data
        channel, payload = data[0], data[1:]
        if channel == CLOSE and payload:
            stream = channels.pop(payload[0], None)
            if stream is not None:
                spdy.send(stream, b"", fin=True)
        elif (stream := channels.get(channel)) is not None:
            spdy.send(stream, payload)
        await spdy.writer.drain()
    # The client went away: end the session (the kubelet ends the command's streams).
    spdy.close()


async def _kubelet_to_client(spdy: SpdyClient, ws: web.WebSocketResponse, kinds: Mapping[int, str]) -> None:
    open_outputs = {stream for stream, kind in kinds.items() if kind in _CHANNELS}
    while open_outputs:
        try:
            control, kind_or_stream, flags, payload = await spdy.frame()
        except asyncio.IncompleteReadError:
            return
        if control:
            if kind_or_stream == GOAWAY:
                return
            if kind_or_stream == RST_STREAM:
                open_outputs.discard(int.from_bytes(payload[:4], "big") & 0x7FFFFFFF)
            continue
        stream = kind_or_stream
        channel = _CHANNELS.get(kinds.get(stream, ""))
        if channel is not None and payload:
            await ws.send_bytes(bytes([channel]) + payload)
        if flags & FIN:
            open_outputs.discard(stream)


# -- port-forward: SPDY tunnelled in WebSocket ----------------------------------------------------

TUNNEL_PREFIX = "SPDY/3.1+"


def tunneled_protocols(request: web.Request) -> list[str]:
    """The SPDY protocols a WebSocket offers as ``SPDY/3.1+<protocol>.k8s.io`` (kubectl 1.31+)."""
    if request.headers.get("Upgrade", "").lower() != "websocket":
        return []
    offered = [p.strip() for v in request.headers.getall("Sec-WebSocket-Protocol", []) for p in v.split(",")]
    return [
        p.removeprefix(TUNNEL_PREFIX)
        for p in offered
        if p.startswith(TUNNEL_PREFIX) and p.endswith(".k8s.io")
    ]


async def tunnel(request: web.Request, target: Target, protocols: list[str]) -> web.StreamResponse:
    """SPDY from the client inside WebSocket binary messages, plain SPDY to the kubelet.

    As upstream's ``TunnelingHandler``: the kubelet is asked for an SPDY upgrade offering the
    tunnelled protocols; its 101 becomes the WebSocket handshake (subprotocol ``SPDY/3.1+``
    and the protocol it chose), and from then on every binary message's payload is SPDY
    bytes one way and every byte from the kubelet a binary message the other way. A refusal
    is relayed as is.
    """
    headers = [("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1")]
    headers += [("X-Stream-Protocol-Version", protocol) for protocol in protocols]
    headers.append(("User-Agent", request.headers.get("User-Agent", "k3py")))
    if peer := request.remote:
        headers.append(("X-Forwarded-For", peer))
    reader, writer, response = await open_backend(target, request_head("POST", target, headers))
    if response.status != 101:
        return await relay_refusal(reader, writer, response)
    chosen = (response.header("X-Stream-Protocol-Version") or "").strip()
    ws = web.WebSocketResponse(protocols=[TUNNEL_PREFIX + chosen] if chosen else [], compress=False)
    await ws.prepare(request)

    async def upstream() -> None:
        async for message in ws:
            if message.type == WSMsgType.BINARY:
                writer.write(message.data)
                await writer.drain()
        writer.close()

    try:
        async with asyncio.TaskGroup() as group:
            inbound = group.create_task(upstream())
            while data := await reader.read(CHUNK):
                await ws.send_bytes(data)
            inbound.cancel()
    except* (ConnectionError, asyncio.IncompleteReadError) as exc:
        log.debug("port-forward tunnel ended: %s", exc.exceptions[0])
    finally:
        writer.close()
        if not ws.closed:
            with contextlib.suppress(ConnectionError):
                await ws.close()
    return ws
