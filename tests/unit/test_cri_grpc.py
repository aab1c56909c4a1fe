"""The gRPC client against a small in-process HTTP/2 server that can misbehave on purpose.

The server (on ``h2``, over a unix socket in the test's directory) answers by method: echo,
server streaming, trailers-only errors, Go's trailers + RST_STREAM(NO_ERROR) before the client
half-closed, silence (for deadlines and cancellation), a GOAWAY that refuses a stream, a
dropped connection, a bare HTTP error and replies larger than every flow-control window.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import h2.config
import h2.connection
import h2.errors
import h2.events
import pytest

from k3py.agent.cri.grpc import (
    ALREADY_EXISTS,
    CANCELLED,
    DEADLINE_EXCEEDED,
    INTERNAL,
    NOT_FOUND,
    RESOURCE_EXHAUSTED,
    UNAVAILABLE,
    UNIMPLEMENTED,
    Channel,
    CriError,
)

BIG = 20 << 20  # larger than the client's 16 MiB windows and h2's 64 KiB default


def frame(message: bytes) -> bytes:
    return struct.pack(">BI", 0, len(message)) + message


@dataclass
class Request:
    path: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    buffer: bytearray = field(default_factory=bytearray)
    messages: list[bytes] = field(default_factory=list)
    refused: bool = False


class Server:
    """One behaviour per method; records what clients sent and which streams they reset."""

    def __init__(self, socket: Path) -> None:
        self.socket = socket
        self.requests: list[Request] = []
        self.resets: list[tuple[str, int]] = []
        self.connections = 0
        self.goaway_pending = True
        self._server: asyncio.Server | None = None
        self._windows: dict[int, asyncio.Event] = {}
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.socket))

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:  # as a server process that exits: its connections go too
            writer.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        streams: dict[int, Request] = {}
        tasks: set[asyncio.Task[None]] = set()
        try:
            while data := await reader.read(1 << 16):
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        headers = {str(k): str(v) for k, v in event.headers or []}  # str: header_encoding
                        request = Request(path=headers[":path"], headers=headers)
                        streams[event.stream_id] = request
                        self.requests.append(request)
                        if request.path == "/t.S/GoAway" and self.goaway_pending:
                            self.goaway_pending = False
                            request.refused = True
                            conn.close_connection(last_stream_id=max(0, event.stream_id - 2))
                    elif isinstance(event, h2.events.DataReceived):
                        conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                        request = streams[event.stream_id]
                        request.buffer += event.data
                        while len(request.buffer) >= 5:
                            (length,) = struct.unpack_from(">I", request.buffer, 1)
                            if len(request.buffer) < 5 + length:
                                break
                            request.messages.append(bytes(request.buffer[5 : 5 + length]))
                            del request.buffer[: 5 + length]
                            if request.path == "/t.S/EarlyFail" and len(request.messages) == 1:
                                self._trailers(conn, event.stream_id, "6", "blob exists")
                                conn.reset_stream(event.stream_id, h2.errors.ErrorCodes.NO_ERROR)
                    elif isinstance(event, h2.events.StreamEnded):
                        request = streams[event.stream_id]
                        if request.path == "/t.S/Drop":
                            writer.close()
                            return
                        if request.refused:
                            continue
                        task = asyncio.create_task(self._answer(conn, writer, event.stream_id, request))
                        tasks.add(task)
                        task.add_done_callback(tasks.discard)
                    elif isinstance(event, h2.events.StreamReset):
                        self.resets.append((streams[event.stream_id].path, event.error_code))
                    elif isinstance(event, h2.events.WindowUpdated):
                        for window in self._windows.values():
                            window.set()
                writer.write(conn.data_to_send())
        except (ConnectionError, h2.exceptions.ProtocolError):
            pass
        finally:
            for task in tasks:
                task.cancel()
            writer.close()

    def _trailers(
        self, conn: h2.connection.H2Connection, stream_id: int, status: str, message: str = ""
    ) -> None:
        conn.send_headers(stream_id, [(":status", "200"), ("content-type", "application/grpc")])
        conn.send_headers(stream_id, [("grpc-status", status), ("grpc-message", message)], end_stream=True)

    async def _answer(
        self, conn: h2.connection.H2Connection, writer: asyncio.StreamWriter, stream_id: int, request: Request
    ) -> None:
        path = request.path
        if path == "/t.S/Hang":
            return
        if path == "/t.S/Drain":  # GOAWAY naming this very call, then its answer
            conn.close_connection(last_stream_id=stream_id)
            conn.state_machine.state = h2.connection.ConnectionState.SERVER_OPEN  # see grpc._goaway
            writer.write(conn.data_to_send())
            await asyncio.sleep(0.05)
            path = "/t.S/Echo"
        if path == "/t.S/Fail":  # trailers-only
            headers = [(":status", "200"), ("content-type", "application/grpc")]
            conn.send_headers(
                stream_id,
                [*headers, ("grpc-status", "5"), ("grpc-message", "no%20such%20thing")],
                end_stream=True,
            )
        elif path == "/t.S/Http404":
            conn.send_headers(stream_id, [(":status", "404")], end_stream=True)
        else:
            conn.send_headers(stream_id, [(":status", "200"), ("content-type", "application/grpc")])
            if path in ("/t.S/Echo", "/t.S/GoAway"):
                replies = [b"".join(request.messages)]
            elif path == "/t.S/Stream":
                replies = [b"one", b"two", b""]
            elif path == "/t.S/Big":
                replies = [bytes(range(256)) * (BIG // 256)]
            else:
                replies = []
            for reply in replies:
                await self._send(conn, writer, stream_id, frame(reply))
            conn.send_headers(stream_id, [("grpc-status", "0")], end_stream=True)
        writer.write(conn.data_to_send())

    async def _send(
        self, conn: h2.connection.H2Connection, writer: asyncio.StreamWriter, stream_id: int, data: bytes
    ) -> None:
        view = memoryview(data)
        window = self._windows.setdefault(stream_id, asyncio.Event())
        while view:
            size = min(conn.local_flow_control_window(stream_id), conn.max_outbound_frame_size, len(view))
            if size <= 0:
                window.clear()
                writer.write(conn.data_to_send())
                await window.wait()
                continue
            conn.send_data(stream_id, bytes(view[:size]))
            view = view[size:]
            writer.write(conn.data_to_send())
            await writer.drain()


async def _eventually(condition: Callable[[], bool]) -> bool:
    """Whether ``condition`` holds within a few seconds (the server runs on the same loop)."""
    for _ in range(500):
        if condition():
            return True
        await asyncio.sleep(0.01)
    return condition()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    started = Server(tmp_path / "grpc.sock")
    await started.start()
    yield started
    await started.stop()


@pytest.fixture
async def channel(server: Server) -> AsyncIterator[Channel]:
    async with Channel(server.socket, metadata=[("containerd-namespace", "k8s.io")]) as opened:
        yield opened


async def test_unary_round_trip_with_metadata_and_deadline(server: Server, channel: Channel) -> None:
    assert await channel.unary("/t.S/Echo", b"hello", timeout=5) == b"hello"
    assert await channel.unary("/t.S/Echo", b"", metadata=[("x-extra", "1")]) == b""
    first, second = server.requests
    assert first.headers["containerd-namespace"] == "k8s.io"
    assert first.headers["content-type"] == "application/grpc" and first.headers["te"] == "trailers"
    assert first.headers["grpc-timeout"].endswith("m") and int(first.headers["grpc-timeout"][:-1]) <= 5000
    assert "grpc-timeout" not in second.headers and second.headers["x-extra"] == "1"
    assert server.connections == 1  # calls share the connection


async def test_error_statuses(channel: Channel) -> None:
    with pytest.raises(CriError) as caught:
        await channel.unary("/t.S/Fail", b"x")
    assert (caught.value.code, caught.value.message, caught.value.method) == (
        NOT_FOUND,
        "no such thing",
        "/t.S/Fail",
    )
    assert "NOT_FOUND: no such thing" in str(caught.value)
    with pytest.raises(CriError) as caught:
        await channel.unary("/t.S/Http404", b"x")
    assert caught.value.code == UNIMPLEMENTED
    with pytest.raises(CriError) as caught:
        await channel.unary("/t.S/Nothing", b"x")  # status OK without a reply message
    assert caught.value.code == INTERNAL


async def test_status_then_reset_before_the_client_finished(server: Server, channel: Channel) -> None:
    async with await channel.open("/t.S/EarlyFail", timeout=5) as call:
        await call.send(b"first")
        with pytest.raises(CriError) as caught:
            await call.receive()
        assert (caught.value.code, caught.value.message) == (ALREADY_EXISTS, "blob exists")
        with pytest.raises(CriError) as again:
            await call.send(b"second", end=True)
        assert again.value.code == ALREADY_EXISTS
    assert await channel.unary("/t.S/Echo", b"after") == b"after"


async def test_server_streaming(channel: Channel) -> None:
    async with await channel.open("/t.S/Stream") as call:
        await call.end()
        received = [await call.receive() for _ in range(4)]
    assert received == [b"one", b"two", b"", None]


async def test_deadline_resets_the_stream(server: Server, channel: Channel) -> None:
    started = asyncio.get_running_loop().time()
    with pytest.raises(CriError) as caught:
        await channel.unary("/t.S/Hang", b"x", timeout=0.2)
    assert caught.value.code == DEADLINE_EXCEEDED
    assert asyncio.get_running_loop().time() - started < 2
    assert await _eventually(lambda: server.resets == [("/t.S/Hang", h2.errors.ErrorCodes.CANCEL)])


async def test_cancellation_resets_the_stream(server: Server, channel: Channel) -> None:
    task = asyncio.create_task(channel.unary("/t.S/Hang", b"x"))
    assert await _eventually(lambda: len(server.requests) == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _eventually(lambda: server.resets == [("/t.S/Hang", h2.errors.ErrorCodes.CANCEL)])
    async with await channel.open("/t.S/Hang") as call:
        call.cancel()
        with pytest.raises(CriError) as caught:
            await call.receive()
        assert caught.value.code == CANCELLED


async def test_messages_larger_than_every_window(server: Server, channel: Channel) -> None:
    big_request = bytes(10 << 20)
    assert await channel.unary("/t.S/Echo", big_request, timeout=30) == big_request
    reply = await channel.unary("/t.S/Big", b"", timeout=30)
    assert len(reply) == BIG and reply[:3] == b"\x00\x01\x02"
    with pytest.raises(CriError) as caught:
        await channel.unary("/t.S/Echo", bytes(17 << 20))
    assert caught.value.code == RESOURCE_EXHAUSTED


async def test_goaway_refused_call_is_retried_on_a_new_connection(server: Server, channel: Channel) -> None:
    assert await channel.unary("/t.S/GoAway", b"retried", timeout=5) == b"retried"
    assert server.connections == 2
    assert [r.path for r in server.requests] == ["/t.S/GoAway", "/t.S/GoAway"]


async def test_goaway_lets_accepted_calls_finish(server: Server, channel: Channel) -> None:
    assert await channel.unary("/t.S/Drain", b"finished", timeout=5) == b"finished"
    assert await channel.unary("/t.S/Echo", b"next", timeout=5) == b"next"
    assert server.connections == 2  # the draining connection took no new call


async def test_connection_loss_is_unavailable_and_the_next_call_reconnects(
    server: Server, channel: Channel
) -> None:
    with pytest.raises(CriError) as caught:
        await channel.unary("/t.S/Drop", b"x", timeout=5)
    assert caught.value.code == UNAVAILABLE
    assert await channel.unary("/t.S/Echo", b"back", timeout=5) == b"back"
    assert server.connections == 2


async def test_no_server_is_unavailable(tmp_path: Path) -> None:
    async with Channel(tmp_path / "absent.sock") as channel:
        with pytest.raises(CriError) as caught:
            await channel.unary("/t.S/Echo", b"x", timeout=1)
    assert caught.value.code == UNAVAILABLE and "absent.sock" in caught.value.message


async def test_server_restart_on_the_same_socket(tmp_path: Path) -> None:
    socket = tmp_path / "restart.sock"
    first = Server(socket)
    await first.start()
    async with Channel(socket) as channel:
        assert await channel.unary("/t.S/Echo", b"1", timeout=5) == b"1"
        await first.stop()
        socket.unlink(missing_ok=True)
        with pytest.raises(CriError) as caught:
            await channel.unary("/t.S/Echo", b"2", timeout=5)
        assert caught.value.code == UNAVAILABLE
        second = Server(socket)
        await second.start()
        try:
            assert await channel.unary("/t.S/Echo", b"3", timeout=5) == b"3"
        finally:
            await second.stop()
