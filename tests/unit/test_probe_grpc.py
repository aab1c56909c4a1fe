"""gRPC probes speak the gRPC health checking protocol to a server on loopback TCP."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator

import h2.config
import h2.connection
import h2.events
import pytest

from k3py.agent.probes import HEALTH, run_handler

Served = dict[str, int]
"""Service name → the status the test server answers with."""


async def _serve(served: Served, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
    conn.initiate_connection()
    writer.write(conn.data_to_send())
    bodies: dict[int, bytearray] = {}
    paths: dict[int, str] = {}
    while data := await reader.read(1 << 16):
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.RequestReceived):
                headers = {str(k): str(v) for k, v in event.headers or []}  # str: header_encoding
                paths[event.stream_id] = headers[":path"]
                bodies[event.stream_id] = bytearray()
            elif isinstance(event, h2.events.DataReceived):
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                bodies[event.stream_id] += event.data
            elif isinstance(event, h2.events.StreamEnded):
                sid = event.stream_id
                assert paths[sid] == "/grpc.health.v1.Health/Check"
                service = HEALTH.decode("HealthCheckRequest", bytes(bodies[sid][5:]))["service"]
                conn.send_headers(sid, [(":status", "200"), ("content-type", "application/grpc")])
                if service in served:
                    reply = HEALTH.encode("HealthCheckResponse", {"status": served[service]})
                    conn.send_data(sid, struct.pack(">BI", 0, len(reply)) + reply)
                    conn.send_headers(sid, [("grpc-status", "0")], end_stream=True)
                else:
                    conn.send_headers(
                        sid, [("grpc-status", "5"), ("grpc-message", "unknown service")], end_stream=True
                    )
        writer.write(conn.data_to_send())
        await writer.drain()
    writer.close()


@pytest.fixture
async def port() -> AsyncIterator[int]:
    served = {"": 1, "sick": 2}
    server = await asyncio.start_server(lambda r, w: _serve(served, r, w), "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def test_serving_passes_and_anything_else_fails(port: int) -> None:
    runtime = None  # gRPC probes never reach the container runtime
    healthy = await run_handler(runtime, "", {}, {"grpc": {"port": port}}, "127.0.0.1", 2)  # type: ignore[arg-type]
    assert healthy.ok, healthy.message
    sick = await run_handler(runtime, "", {}, {"grpc": {"port": port, "service": "sick"}}, "127.0.0.1", 2)  # type: ignore[arg-type]
    assert not sick.ok and "NOT_SERVING" in sick.message
    unknown = await run_handler(runtime, "", {}, {"grpc": {"port": port, "service": "x"}}, "127.0.0.1", 2)  # type: ignore[arg-type]
    assert not unknown.ok and "unknown service" in unknown.message


async def test_nothing_listening_fails_with_the_address() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    outcome = await run_handler(None, "", {}, {"grpc": {"port": closed}}, "127.0.0.1", 2)  # type: ignore[arg-type]
    assert not outcome.ok and f"127.0.0.1:{closed}" in outcome.message
