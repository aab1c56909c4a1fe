"""A minimal asyncio gRPC client over HTTP/2 on a unix socket, on top of the ``h2`` state machine.

containerd serves the CRI and its own services as gRPC on a local unix socket. What that needs
from a client is small, so k3py owns it instead of shipping grpcio (8 MB in the binary):

- **Transport.** One HTTP/2 connection (prior knowledge, no TLS) per :class:`Channel`; every
  call is a stream on it. Request headers: ``:path /pkg.Service/Method``, ``content-type:
  application/grpc``, ``te: trailers``, ``grpc-timeout`` and metadata such as
  ``containerd-namespace``. Messages are length-prefixed (flag byte 0, 4-byte big-endian
  length) inside DATA frames; the status is in the trailers, or in the only HEADERS frame of a
  "trailers-only" reply. Message bytes are the caller's (:mod:`k3py.agent.cri.wire`).
- **Calls.** :meth:`Channel.unary` for request/response; :meth:`Channel.open` gives a
  :class:`Call` for client, server and bidirectional streaming (``send``/``receive``/``end``).
- **Deadlines and cancellation.** A timeout is sent as ``grpc-timeout`` and enforced here
  too; when it expires, or the awaiting task is cancelled, the stream is reset with CANCEL and
  the call fails with ``DEADLINE_EXCEEDED`` (or the task sees its ``CancelledError``).
- **Flow control.** Senders wait for window updates; received data is acknowledged as the
  caller consumes it (and while a message larger than the window is being assembled), so a
  slow reader holds the server back instead of filling memory.
- **Failures.** Every error is a :class:`CriError` carrying a gRPC status code. A socket that
  cannot be reached, or a connection that breaks, is ``UNAVAILABLE``; the next call connects
  again, so the channel outlives containerd restarts. A GOAWAY lets the calls the server
  accepted finish, fails the ones above its ``last_stream_id`` as ``UNAVAILABLE`` and sends new
  calls to a new connection; a unary call refused that way (or by ``REFUSED_STREAM``) never
  reached the server and is retried once. (``h2`` itself treats every GOAWAY as the end of the
  connection; see ``_Connection._goaway`` for how the accepted calls still finish.)
- **Go's quirk.** A Go server that ends a call before the client half-closed sends trailers
  and then ``RST_STREAM(NO_ERROR)``; a reset after a known status is the end of the call, not
  an error (containerd's ``content.Write`` does this).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import struct
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Final, Self

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from k3py.aio import Supervisor

log = logging.getLogger(__name__)

OK: Final = 0
CANCELLED: Final = 1
UNKNOWN: Final = 2
INVALID_ARGUMENT: Final = 3
DEADLINE_EXCEEDED: Final = 4
NOT_FOUND: Final = 5
ALREADY_EXISTS: Final = 6
PERMISSION_DENIED: Final = 7
RESOURCE_EXHAUSTED: Final = 8
FAILED_PRECONDITION: Final = 9
ABORTED: Final = 10
OUT_OF_RANGE: Final = 11
UNIMPLEMENTED: Final = 12
INTERNAL: Final = 13
UNAVAILABLE: Final = 14
DATA_LOSS: Final = 15
UNAUTHENTICATED: Final = 16
STATUS_NAMES: Final = {
    code: name
    for name, code in globals().items()
    if name.isupper() and isinstance(code, int) and name != "Final" and 0 <= code <= 16
}

WINDOW: Final = 16 << 20
"""Receive window per stream and for the connection."""
MAX_FRAME: Final = 1 << 20
MAX_SEND_MESSAGE: Final = 16 << 20
"""containerd refuses larger requests (its default grpc MaxRecvMsgSize)."""
MAX_RECEIVE_MESSAGE: Final = 64 << 20
CONNECT_TIMEOUT: Final = 5.0
READ_SIZE: Final = 1 << 18
_PREFIX: Final = struct.Struct(">BI")
# HTTP statuses that carry no grpc-status, as gRPC maps them
_HTTP_TO_GRPC: Final = {400: INTERNAL, 401: UNAUTHENTICATED, 403: PERMISSION_DENIED, 404: UNIMPLEMENTED,
                        429: UNAVAILABLE, 502: UNAVAILABLE, 503: UNAVAILABLE, 504: UNAVAILABLE}  # fmt: skip

Metadata = Sequence[tuple[str, str]]


class CriError(Exception):
    """A call ended with a non-OK gRPC status (from the server, or from the client's side)."""

    def __init__(self, code: int, message: str, method: str = "") -> None:
        self.code = code
        self.message = message
        self.method = method
        where = f"{method}: " if method else ""
        super().__init__(f"{where}{status_name(code)}: {message}")


class _Refused(CriError):
    """The server never processed the call (above a GOAWAY's last stream, or REFUSED_STREAM)."""


def status_name(code: int) -> str:
    return STATUS_NAMES.get(code, str(code))


def _grpc_timeout(seconds: float) -> str:
    milliseconds = max(1, int(seconds * 1000))
    if milliseconds < 100_000_000:
        return f"{milliseconds}m"
    return f"{min(int(seconds), 99_999_999)}S"


class Call:
    """One gRPC call: a stream on a connection. Use it as an async context manager.

    ``send`` a message (``end=True`` with the last), ``end`` to half-close without one,
    ``receive`` the next reply (``None`` at the end of a successful call; a non-OK status
    raises :class:`CriError`). Leaving the ``async with`` block before the call ended cancels it.
    """

    def __init__(self, connection: _Connection, stream_id: int, method: str, deadline: float | None) -> None:
        self.method = method
        self.stream_id = stream_id
        self._connection = connection
        self._deadline = deadline
        self._buffer = bytearray()
        self._unacked = 0
        self._headers: dict[str, str] = {}
        self._trailers: dict[str, str] = {}
        self._error: CriError | None = None
        self._ended = False
        self._half_closed = False
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cancel()

    @property
    def done(self) -> bool:
        """The server's side has ended (status known, reset, or connection lost)."""
        return self._ended

    @property
    def trailers(self) -> dict[str, str]:
        return dict(self._trailers)

    # -- sending ------------------------------------------------------------------------------

    async def send(self, message: bytes, *, end: bool = False) -> None:
        """Send one message; ``end`` half-closes the call with it.

        If the server already ended the call, a failed call raises its status and a
        successful one drops the message (the reply tells what the server did).
        """
        if len(message) > MAX_SEND_MESSAGE:
            raise CriError(
                RESOURCE_EXHAUSTED,
                f"message of {len(message)} bytes is larger than {MAX_SEND_MESSAGE}",
                self.method,
            )
        await self._send(_PREFIX.pack(0, len(message)) + message, end)

    async def end(self) -> None:
        """Half-close: the server sees the end of the request stream."""
        if not self._half_closed:
            await self._send(b"", True)

    async def _send(self, data: bytes, end: bool) -> None:
        if self._half_closed:
            raise CriError(INTERNAL, "send after the request stream was closed", self.method)
        try:
            async with asyncio.timeout_at(self._deadline):
                await self._connection.send_data(self, data, end)
        except TimeoutError:
            raise self._expired() from None
        except asyncio.CancelledError:
            self.cancel()
            raise
        if end:
            self._half_closed = True

    # -- receiving ----------------------------------------------------------------------------

    async def receive(self) -> bytes | None:
        """The next message, or ``None`` once the call ended with status OK."""
        try:
            async with asyncio.timeout_at(self._deadline):
                return await self._receive()
        except TimeoutError:
            raise self._expired() from None
        except asyncio.CancelledError:
            self.cancel()
            raise

    async def _receive(self) -> bytes | None:
        while True:
            self._acknowledge()
            if len(self._buffer) >= _PREFIX.size:
                compressed, length = _PREFIX.unpack_from(self._buffer)
                if compressed:
                    self._abort(CriError(INTERNAL, "compressed messages are not supported", self.method))
                elif length > MAX_RECEIVE_MESSAGE:
                    self._abort(
                        CriError(RESOURCE_EXHAUSTED, f"reply of {length} bytes is too large", self.method)
                    )
                elif len(self._buffer) >= _PREFIX.size + length:
                    message = bytes(self._buffer[_PREFIX.size : _PREFIX.size + length])
                    del self._buffer[: _PREFIX.size + length]
                    return message
            if self._ended:
                self._raise_status()
                if self._buffer:
                    raise CriError(INTERNAL, "the call ended inside a message", self.method)
                return None
            self._readable.clear()
            await self._readable.wait()

    def _raise_status(self) -> None:
        if self._error is not None:
            raise self._error
        headers = self._trailers or self._headers
        status = headers.get("grpc-status")
        if status is None:
            http = self._headers.get(":status", "")
            code = _HTTP_TO_GRPC.get(int(http), UNKNOWN) if http.isdigit() else INTERNAL
            raise CriError(code, f"the reply has no grpc-status (HTTP status {http or 'none'})", self.method)
        if status != "0":
            message = urllib.parse.unquote(headers.get("grpc-message", ""))
            code = int(status) if status.isdigit() else UNKNOWN
            raise CriError(code, message, self.method)

    def _acknowledge(self) -> None:
        if self._unacked:
            self._connection.acknowledge(self.stream_id, self._unacked)
            self._unacked = 0

    # -- ending -------------------------------------------------------------------------------

    def cancel(self) -> None:
        """Reset the stream unless the call already ended; later receives raise CANCELLED.

        A call the server ended while the client had not half-closed is reset too (as gRPC's
        own clients do), so the stream does not linger half-open on the connection.
        """
        if not self._ended:
            self._abort(CriError(CANCELLED, "the call was cancelled", self.method))
        elif not self._half_closed:
            self._half_closed = True
            self._connection.reset(self)

    def _expired(self) -> CriError:
        error = CriError(DEADLINE_EXCEEDED, "deadline exceeded", self.method)
        self._abort(error)
        return error

    def _abort(self, error: CriError) -> None:
        """End the call from this side: RST_STREAM(CANCEL), then ``error`` for every waiter."""
        if not self._ended:
            self._connection.reset(self)
        self._finish(error)

    def _finish(self, error: CriError | None = None) -> None:
        """The server's side is over: by END_STREAM (``error`` None), a reset or a failure."""
        if self._ended:
            return
        self._error = error
        self._ended = True
        self._connection.forget(self)
        self._readable.set()
        self._writable.set()

    def _status_known(self) -> bool:
        return "grpc-status" in self._trailers or "grpc-status" in self._headers


class _Connection:
    """One HTTP/2 connection and its calls; a reader task feeds h2 and dispatches its events."""

    _numbers = itertools.count(1)

    def __init__(
        self,
        channel: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        tasks: Supervisor,
        authority: str,
    ) -> None:
        self.name = f"{channel}#{next(self._numbers)}"
        self.error: CriError | None = None
        self.last_stream_id: int | None = None
        self.calls: dict[int, Call] = {}
        self._authority = authority
        self._writer = writer
        self._h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        )
        self._h2.initiate_connection()
        self._h2.update_settings(
            {
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: WINDOW,
                h2.settings.SettingCodes.MAX_FRAME_SIZE: MAX_FRAME,
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
            }
        )
        self._h2.increment_flow_control_window(WINDOW - 65_535)  # the connection window starts at 64 KiB
        self._flush()
        self._reader = tasks.spawn(f"read {self.name}", self._read(reader), critical=False)

    @property
    def usable(self) -> bool:
        """New calls may start here: not broken and no GOAWAY received."""
        return self.error is None and self.last_stream_id is None

    def open(self, method: str, headers: list[tuple[str, str]], deadline: float | None) -> Call:
        stream_id = self._h2.get_next_available_stream_id()
        call = Call(self, stream_id, method, deadline)
        request = [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", method),
            (":authority", self._authority),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("user-agent", "k3py-grpc"),
            *headers,
        ]
        try:
            self._h2.send_headers(stream_id, request)
        except h2.exceptions.ProtocolError as exc:
            raise CriError(UNAVAILABLE, f"cannot start a call on {self.name}: {exc}", method) from None
        self.calls[stream_id] = call
        return call

    # -- writing ------------------------------------------------------------------------------

    def _flush(self) -> None:
        data = self._h2.data_to_send()
        if data and self.error is None:
            self._writer.write(data)

    async def send_data(self, call: Call, data: bytes, end: bool) -> None:
        view = memoryview(data)
        while True:
            if call.done:
                call._raise_status()  # a failed call raises its status; a finished one drops the rest
                return
            if self.error is not None:
                raise CriError(self.error.code, self.error.message, call.method)
            if not view:
                if end:
                    self._end_stream(call)
                return
            window = min(self._h2.local_flow_control_window(call.stream_id), self._h2.max_outbound_frame_size)
            if window <= 0:
                call._writable.clear()
                await call._writable.wait()
                continue
            chunk, view = view[:window], view[window:]
            self._h2.send_data(call.stream_id, bytes(chunk), end_stream=end and not view)
            self._flush()
            if end and not view:
                return
            if self._writer.transport.get_write_buffer_size() > MAX_FRAME:
                await self._drain()

    def _end_stream(self, call: Call) -> None:
        try:
            self._h2.end_stream(call.stream_id)
        except h2.exceptions.StreamClosedError:
            return
        self._flush()

    async def _drain(self) -> None:
        try:
            await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            self._fail(CriError(UNAVAILABLE, f"connection lost while sending: {exc}"))

    def acknowledge(self, stream_id: int, size: int) -> None:
        if self.error is None:
            self._h2.acknowledge_received_data(size, stream_id)
            self._flush()

    def reset(self, call: Call) -> None:
        if self.error is None:
            with contextlib.suppress(h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                self._h2.reset_stream(call.stream_id, h2.errors.ErrorCodes.CANCEL)
            self._flush()

    def forget(self, call: Call) -> None:
        self.calls.pop(call.stream_id, None)
        if call._unacked and self.error is None:  # hand the connection window back
            self.acknowledge(call.stream_id, call._unacked)
            call._unacked = 0
        if self.last_stream_id is not None and not self.calls:
            self.close()

    # -- reading ------------------------------------------------------------------------------

    async def _read(self, reader: asyncio.StreamReader) -> None:
        error = CriError(UNAVAILABLE, "the server closed the connection")
        try:
            while data := await reader.read(READ_SIZE):
                for event in self._h2.receive_data(data):
                    self._handle(event)
                self._flush()
        except h2.exceptions.ProtocolError as exc:
            self._flush()  # h2 prepared a GOAWAY
            error = CriError(INTERNAL, f"HTTP/2 protocol error: {exc}")
        except (ConnectionError, OSError) as exc:
            error = CriError(UNAVAILABLE, f"connection lost: {exc}")
        self._fail(error)

    def _handle(self, event: h2.events.Event) -> None:
        stream_id = getattr(event, "stream_id", None) or 0
        call = self.calls.get(stream_id)
        if isinstance(event, h2.events.DataReceived):
            if call is None:
                self._h2.acknowledge_received_data(event.flow_controlled_length, stream_id)
                return
            call._buffer += event.data
            call._unacked += event.flow_controlled_length
            call._readable.set()
        elif isinstance(event, h2.events.ResponseReceived) and call is not None:
            call._headers = dict(event.headers)  # type: ignore[arg-type]
        elif isinstance(event, h2.events.TrailersReceived) and call is not None:
            call._trailers = dict(event.headers)  # type: ignore[arg-type]
        elif isinstance(event, h2.events.StreamEnded) and call is not None:
            call._finish()
        elif isinstance(event, h2.events.StreamReset) and call is not None:
            self._reset_by_server(call, event)
        elif isinstance(event, h2.events.WindowUpdated):
            targets = self.calls.values() if stream_id == 0 else [call] if call is not None else []
            for target in targets:
                target._writable.set()
        elif isinstance(event, h2.events.ConnectionTerminated):
            self._goaway(event)

    def _reset_by_server(self, call: Call, event: h2.events.StreamReset) -> None:
        if call._status_known():
            call._finish()  # Go: trailers, then RST_STREAM(NO_ERROR)
            return
        code = event.error_code
        if code == h2.errors.ErrorCodes.REFUSED_STREAM:
            call._finish(_Refused(UNAVAILABLE, "the server refused the stream", call.method))
        elif code == h2.errors.ErrorCodes.CANCEL:
            call._finish(CriError(CANCELLED, "the server cancelled the call", call.method))
        else:
            call._finish(
                CriError(INTERNAL, f"the server reset the stream (HTTP/2 error {code})", call.method)
            )

    def _goaway(self, event: h2.events.ConnectionTerminated) -> None:
        last = event.last_stream_id or 0
        self.last_stream_id = last if self.last_stream_id is None else min(last, self.last_stream_id)
        log.debug("%s: GOAWAY (error %s, last stream %d)", self.name, event.error_code, last)
        for call in [c for c in self.calls.values() if c.stream_id > last]:
            call._finish(_Refused(UNAVAILABLE, "the server is shutting the connection down", call.method))
        if not self.calls:
            self.close()
            return
        # h2 closes its state machine on any GOAWAY (python-hyper/h2#1181), which would fail the
        # calls the server still means to finish; RFC 9113 section 6.8 lets them complete. Reopen
        # it: this connection starts no new stream (``usable`` is now False) and closes once
        # its last call ends.
        self._h2.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN

    def _fail(self, error: CriError) -> None:
        """The connection is gone: every call on it ends with ``error``."""
        if self.error is None:
            self.error = error
        for call in list(self.calls.values()):
            call._finish(CriError(error.code, error.message, call.method))
        self.calls.clear()
        self._writer.close()

    def close(self) -> None:
        if self.error is None:
            try:
                self._h2.close_connection()
                self._flush()
            except h2.exceptions.ProtocolError:
                pass
            self._fail(CriError(UNAVAILABLE, "the channel was closed"))
        self._reader.cancel()


class Channel:
    """Calls to one gRPC server over a connection made on first use.

    The server is a unix socket path, or ``tcp://HOST:PORT`` (plain-text HTTP/2, as the
    kubelet's gRPC probes use).
    """

    def __init__(
        self,
        path: Path | str,
        *,
        metadata: Metadata = (),
        authority: str = "localhost",
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        self.path = Path(path)
        self._tcp: tuple[str, int] | None = None
        if isinstance(path, str) and path.startswith("tcp://"):
            host, _, port = path.removeprefix("tcp://").rpartition(":")
            self._tcp = (host.strip("[]"), int(port))
        self.metadata = tuple(metadata)
        self._authority = authority
        self._connect_timeout = connect_timeout
        self._connection: _Connection | None = None
        self._draining: list[_Connection] = []
        self._lock = asyncio.Lock()
        self._tasks = Supervisor(f"grpc {self.path}", grace=1.0)
        self._closed = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def open(
        self,
        method: str,
        *,
        metadata: Metadata = (),
        timeout: float | None = None,  # noqa: ASYNC109 (a gRPC deadline: it travels to the server)
    ) -> Call:
        """Start a call to ``method`` (``/package.Service/Method``); see :class:`Call`."""
        deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
        return await self._open(method, metadata, timeout, deadline)

    async def _open(
        self,
        method: str,
        metadata: Metadata,
        timeout: float | None,  # noqa: ASYNC109 (sent as grpc-timeout)
        deadline: float | None,
    ) -> Call:
        connection = await self._connected(method)
        headers = [*self.metadata, *metadata]
        if deadline is not None and timeout is not None:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise CriError(DEADLINE_EXCEEDED, "deadline exceeded before the call started", method)
            headers.append(("grpc-timeout", _grpc_timeout(remaining)))
        return connection.open(method, headers, deadline)

    async def unary(
        self,
        method: str,
        request: bytes,
        *,
        metadata: Metadata = (),
        timeout: float | None = None,  # noqa: ASYNC109 (a gRPC deadline: it travels to the server)
    ) -> bytes:
        """Send ``request``, return the one reply; a refused call is retried once."""
        deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
        for attempt in (1, 2):
            async with await self._open(method, metadata, timeout, deadline) as call:
                try:
                    await call.send(request, end=True)
                    reply = await call.receive()
                    if reply is None:
                        raise CriError(INTERNAL, "the server sent no reply message", method)
                    if await call.receive() is not None:
                        raise CriError(INTERNAL, "the server sent more than one reply message", method)
                    return reply
                except _Refused:
                    if attempt == 2:
                        raise
                    log.debug("%s was refused by a closing connection; retrying", method)
        raise AssertionError("unreachable")

    async def _connected(self, method: str) -> _Connection:
        if self._closed:
            raise CriError(UNAVAILABLE, f"the channel to {self.path} is closed", method)
        current = self._connection
        if current is not None and current.usable:
            return current
        async with self._lock:
            current = self._connection
            if current is not None and current.usable:
                return current
            if current is not None and current.error is None:
                self._draining.append(current)  # GOAWAY: its calls finish there
            self._draining = [c for c in self._draining if c.error is None]
            target = str(self.path)
            try:
                if self._tcp is not None:
                    opened = asyncio.open_connection(*self._tcp)
                else:
                    opened = asyncio.open_unix_connection(target)
                reader, writer = await asyncio.wait_for(opened, self._connect_timeout)
            except TimeoutError:
                raise CriError(
                    UNAVAILABLE, f"connecting to {self.path} timed out after {self._connect_timeout}s", method
                ) from None
            except OSError as exc:
                reason = exc.strerror or str(exc)
                raise CriError(UNAVAILABLE, f"cannot connect to {self.path}: {reason}", method) from None
            self._connection = _Connection(str(self.path), reader, writer, self._tasks, self._authority)
            return self._connection

    async def close(self) -> None:
        """Close every connection; calls still running end with UNAVAILABLE."""
        self._closed = True
        for connection in [*self._draining, *([self._connection] if self._connection else [])]:
            connection.close()
        self._connection = None
        self._draining = []
        await self._tasks.shutdown()
