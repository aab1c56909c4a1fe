"""``ssl_server_context`` over real TLS on loopback: who gets in, and who they are."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from k3py.pki import CertKey, Pki, client_identity, ensure_pki, ssl_server_context


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return ensure_pki(
        tmp_path / "tls", dns_names=["node-1"], ip_addresses=[ipaddress.IPv4Address("10.43.0.1")]
    )


@dataclass
class IdentityServer:
    """Answers each connection with one JSON line: the client's identity (or null)."""

    port: int = 0
    seen: list[object] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        identity = client_identity(writer.get_extra_info("peercert"))
        self.seen.append(identity)
        writer.write(json.dumps(identity).encode() + b"\n")
        await writer.drain()
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()


@pytest.fixture
async def server(pki: Pki) -> AsyncIterator[IdentityServer]:
    identity_server = IdentityServer()
    tcp = await asyncio.start_server(identity_server.handle, "127.0.0.1", 0, ssl=ssl_server_context(pki))
    identity_server.port = tcp.sockets[0].getsockname()[1]
    try:
        yield identity_server
    finally:
        tcp.close()
        await tcp.wait_closed()


def client_context(pki: Pki, cert: CertKey | None, version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=pki.server_ca.cert_pem.decode())
    if cert is not None:
        context.load_cert_chain(cert.cert_path, cert.key_path)
    if version is not None:
        context.minimum_version = context.maximum_version = version
    return context


async def ask(port: int, context: ssl.SSLContext, host: str = "127.0.0.1") -> bytes:
    reader, writer = await asyncio.open_connection(host, port, ssl=context, server_hostname=host)
    try:
        return await asyncio.wait_for(reader.readline(), 5)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()


async def test_admin_certificate_is_system_admin_in_system_masters(pki: Pki, server: IdentityServer) -> None:
    answer = await ask(server.port, client_context(pki, pki.admin))
    assert json.loads(answer) == ["system:admin", ["system:masters"]]


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
async def test_server_certificate_verifies_for_loopback_names(
    pki: Pki, server: IdentityServer, host: str
) -> None:
    assert json.loads(await ask(server.port, client_context(pki, pki.admin), host=host))[0] == "system:admin"


async def test_client_without_certificate_completes_the_handshake(pki: Pki, server: IdentityServer) -> None:
    assert json.loads(await ask(server.port, client_context(pki, None))) is None
    assert server.seen == [None]


async def attempt(port: int, context: ssl.SSLContext) -> str:
    """How far a connection gets: its answer, or where it failed."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    except (ssl.SSLError, ConnectionError):
        return "handshake failed"
    try:
        answer = await asyncio.wait_for(reader.readline(), 5)
    except (ssl.SSLError, ConnectionError):
        answer = b""
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()
    return answer.decode() or "closed without an answer"


@pytest.mark.parametrize(
    ("version", "outcomes"),
    [
        (ssl.TLSVersion.TLSv1_2, {"handshake failed"}),
        # In TLS 1.3 the client's handshake ends when it has sent its certificate; it learns
        # of the refusal when the server drops the connection.
        (ssl.TLSVersion.TLSv1_3, {"handshake failed", "closed without an answer"}),
    ],
    ids=["tls1.2", "tls1.3"],
)
async def test_certificate_from_another_ca_is_rejected_at_handshake(
    tmp_path: Path, pki: Pki, server: IdentityServer, version: ssl.TLSVersion, outcomes: set[str]
) -> None:
    stranger = ensure_pki(tmp_path / "other", dns_names=[], ip_addresses=[])
    assert await attempt(server.port, client_context(pki, stranger.admin, version)) in outcomes
    assert server.seen == []  # the application never saw the connection
    # the same client with the cluster's admin certificate gets through
    assert await attempt(server.port, client_context(pki, pki.admin, version)) == (
        '["system:admin", ["system:masters"]]\n'
    )


def test_context_settings(pki: Pki) -> None:
    context = ssl_server_context(pki)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_OPTIONAL


async def test_server_only_speaks_http_1_1_over_alpn(pki: Pki, server: IdentityServer) -> None:
    context = client_context(pki, pki.admin)
    context.set_alpn_protocols(["h2", "http/1.1"])
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port, ssl=context)
    try:
        assert writer.get_extra_info("ssl_object").selected_alpn_protocol() == "http/1.1"
        await reader.readline()
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()
