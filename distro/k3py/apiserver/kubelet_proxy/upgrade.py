"""Splicing an upgraded connection (SPDY/3.1 or WebSocket) from an aiohttp request to a backend.

Upstream's ``UpgradeAwareHandler`` dials the backend, replays the client's request line and
headers there and, once the backend answers ``101 Switching Protocols``, copies bytes both
ways until either side closes. This module does the same for an aiohttp server: the request
is written to a raw stream (TLS or not), the backend's head is read, and

- any other status (a WebSocket handshake refused with 400/403, a ``Status`` error...) is
  relayed as an ordinary response, so the client sees exactly what the backend said (this is
  what makes kubectl fall back from WebSocket to SPDY when the backend only speaks SPDY);
- a 101 is sent to the client with the backend's headers, then the client's incoming bytes
  are taken from aiohttp's protocol (``set_parser``: aiohttp only knows WebSocket upgrades,
  so without it the SPDY frames would be parsed as HTTP) and written to the backend, while
  the backend's bytes are written to the client's transport.

The framing inside is never looked at: WebSocket and SPDY pass through unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Iterable
from dataclasses import dataclass

from aiohttp import hdrs, web

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0
HEAD_LIMIT = 64 * 1024
ERROR_BODY_LIMIT = 64 * 1024
CHUNK = 64 * 1024

# Headers never replayed to the backend: the client's credentials are for this server (the
# backend authenticates the proxy by its own client certificate), and Host is the backend's.
_DROPPED_REQUEST_HEADERS = frozenset(
    h.lower() for h in ("Host", "Authorization", "Content-Length", "Transfer-Encoding", "Proxy-Authorization")
)
_DROPPED_RESPONSE_HEADERS = frozenset(
    h.lower() for h in ("Date", "Server", "Content-Length", "Transfer-Encoding", "Keep-Alive")
)


HOP_BY_HOP = frozenset(
    h.lower()
    for h in (
        "Connection",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
        "Host",
        "Content-Length",
    )
)
"""Headers a proxy never relays as they came: they describe one connection, not the request."""

NOT_ADDED = ("Content-Type", "User-Agent", "Accept")
"""Headers the HTTP client would add to a proxied request that lacks them (``skip_auto_headers``):
a proxy relays the request as it came, and a body without a type is JSON to an API server, not
``application/octet-stream``."""


class BackendError(Exception):
    """The backend could not be reached, or did not answer with an HTTP response."""


@dataclass(frozen=True)
class Target:
    """Where to send the request: host, port, TLS (None: plain TCP), the path with its query."""

    host: str
    port: int
    path_qs: str
    ssl: ssl.SSLContext | None = None
    server_hostname: str | None = None

    @property
    def authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def is_upgrade(request: web.Request) -> bool:
    """Does the request ask to switch protocols (``Connection: Upgrade`` plus ``Upgrade``)?"""
    tokens = {t.strip().lower() for t in request.headers.get(hdrs.CONNECTION, "").split(",")}
    return "upgrade" in tokens and bool(request.headers.get(hdrs.UPGRADE))


def request_head(
    method: str, target: Target, headers: Iterable[tuple[str, str]], *, drop: Iterable[str] = ()
) -> bytes:
    """The request line and headers replayed to the backend."""
    dropped = _DROPPED_REQUEST_HEADERS | {h.lower() for h in drop}
    lines = [f"{method} {target.path_qs} HTTP/1.1", f"Host: {target.authority}"]
    lines += [f"{name}: {value}" for name, value in headers if name.lower() not in dropped]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@dataclass(frozen=True)
class ResponseHead:
    status: int
    reason: str
    headers: list[tuple[str, str]]

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


def parse_response_head(raw: bytes) -> ResponseHead:
    lines = raw.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/") or not code.isdigit():
        raise BackendError(f"malformed response from the backend: {lines[0][:80]!r}")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if sep:
            headers.append((name.strip(), value.strip()))
    return ResponseHead(int(code), reason, headers)


async def open_backend(
    target: Target, head: bytes
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, ResponseHead]:
    """Connect, send ``head``, read the response head; :class:`BackendError` on any failure."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                target.host,
                target.port,
                ssl=target.ssl,
                server_hostname=target.server_hostname if target.ssl is not None else None,
                limit=HEAD_LIMIT,
            ),
            CONNECT_TIMEOUT,
        )
    except (OSError, TimeoutError, ssl.SSLError) as exc:
        raise BackendError(f"dial tcp {target.authority}: {_describe(exc)}") from exc
    try:
        writer.write(head)
        await writer.drain()
        raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), CONNECT_TIMEOUT)
        return reader, writer, parse_response_head(raw)
    except (
        OSError,
        TimeoutError,
        ssl.SSLError,
        asyncio.IncompleteReadError,
        asyncio.LimitOverrunError,
    ) as exc:
        writer.close()
        raise BackendError(f"error reading the response from {target.authority}: {_describe(exc)}") from exc
    except BackendError:
        writer.close()
        raise


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "i/o timeout"
    if isinstance(exc, asyncio.IncompleteReadError):
        return "connection closed before a response"
    if isinstance(exc, ConnectionRefusedError):
        return "connect: connection refused"
    return str(exc) or type(exc).__name__


class _ToBackend:
    """aiohttp's payload parser slot: every byte the client sends goes to the backend."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.closed = asyncio.Event()

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        if not self.writer.is_closing():
            self.writer.write(data)
        return False, b""

    def feed_eof(self) -> None:
        if not self.writer.is_closing():
            with contextlib.suppress(OSError, RuntimeError):
                if self.writer.can_write_eof():
                    self.writer.write_eof()
                else:
                    self.writer.close()
        self.closed.set()


async def splice(
    request: web.Request, target: Target, *, drop_headers: Iterable[str] = ()
) -> web.StreamResponse:
    """Forward ``request`` (an upgrade) to ``target`` and splice once switched; see the module doc.

    Raises :class:`BackendError` when the backend cannot be reached (nothing was sent to the
    client yet, so the caller can still answer with an error of its own).
    """
    headers = list(request.headers.items())
    peer = request.remote
    if peer:
        headers.append(("X-Forwarded-For", peer))
    head = request_head(request.method, target, headers, drop=drop_headers)
    reader, writer, response = await open_backend(target, head)
    if response.status != 101:
        return await relay_refusal(reader, writer, response)
    return await _switch(request, reader, writer, response)


async def relay_refusal(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, response: ResponseHead
) -> web.Response:
    """A non-101 answer, body included (bounded), as an ordinary response."""
    try:
        length = response.header("Content-Length")
        if length is not None and length.isdigit():
            body = await asyncio.wait_for(
                reader.readexactly(min(int(length), ERROR_BODY_LIMIT)), CONNECT_TIMEOUT
            )
        else:
            body = await asyncio.wait_for(reader.read(ERROR_BODY_LIMIT), CONNECT_TIMEOUT)
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        body = b""
    finally:
        writer.close()
    relayed = web.Response(status=response.status, reason=response.reason or None, body=body)
    for name, value in response.headers:
        if name.lower() not in _DROPPED_RESPONSE_HEADERS and name.lower() != "connection":
            relayed.headers.add(name, value)
    relayed.force_close()
    return relayed


async def _switch(
    request: web.Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, response: ResponseHead
) -> web.StreamResponse:
    switched = web.StreamResponse(status=101, reason=response.reason or "Switching Protocols")
    for name, value in response.headers:
        if name.lower() not in _DROPPED_RESPONSE_HEADERS:
            switched.headers.add(name, value)
    transport = request.transport
    protocol = request.protocol
    if transport is None or transport.is_closing():
        writer.close()
        return switched
    to_backend = _ToBackend(writer)
    protocol.set_parser(to_backend)  # type: ignore[arg-type]  # aiohttp types the slot as its WebSocket reader
    await switched.prepare(request)
    try:
        while data := await reader.read(CHUNK):
            if transport.is_closing():
                break
            await switched.write(data)
    except (OSError, ssl.SSLError) as exc:  # the client's reset too (an OSError)
        log.debug("upgraded connection ended: %s", exc)
    finally:
        writer.close()
        protocol.force_close()
        if not transport.is_closing():
            transport.close()
    return switched
