"""The kubelet's HTTPS API (``k3py.agent.kubelet_api``) in-process on loopback.

Below it: a backend object standing in for the kubelet core, and a small HTTP server
standing in for the container runtime's streaming server (it refuses WebSocket as
containerd's does for protocols it lacks, and echoes after accepting SPDY). The kubelet API
itself, its TLS, authentication, authorization and splicing are real.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from k3py.agent.kubelet_api import (
    ContainerLocation,
    KubeletApi,
    KubeletAttributes,
    KubeletUser,
    request_attributes,
)
from k3py.agent.kubelet_api.server import streaming_target
from k3py.apiserver.kubelet_proxy.upgrade import parse_response_head
from k3py.pki import Pki, ensure_pki
from k3py.pki.certs import (
    CLIENT_AUTH,
    SERVER_AUTH,
    LeafSpec,
    certs_to_pem,
    issue,
    key_to_pem,
    new_ca,
    new_key,
)

NODE = "node-a"


@dataclass
class Issued:
    cert_pem: bytes
    key_pem: bytes


def issue_leaf(pki: Pki, spec: LeafSpec, *, server: bool) -> Issued:
    from cryptography import x509

    from k3py.pki.certs import parse_key

    ca = pki.server_ca if server else pki.client_ca
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key = parse_key(ca.key_path, ca.key_pem)
    key = new_key()
    cert = issue(spec, key, ca_cert, ca_key, datetime.now(UTC))
    return Issued(certs_to_pem(cert, ca_cert), key_to_pem(key))


def client_context(pki: Pki, who: Issued | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=pki.server_ca.cert_pem.decode())
    if who is not None:
        from k3py.pki.tls import load_pem_pair

        load_pem_pair(context, who.cert_pem, who.key_pem)
    return context


@dataclass
class StreamingStandIn:
    """A runtime streaming server: 403 to WebSocket, 101 then echo to anything else."""

    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    server: asyncio.Server | None = None
    port: int = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:] if h)}
            self.requests.append((head[0], headers))
            if headers.get("upgrade", "").lower() == "websocket":
                writer.write(b"HTTP/1.1 403 Forbidden\r\n\r\n")  # x/net/websocket refusing a protocol
                return
            writer.write(
                b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\r\n"
            )
            while data := await reader.read(4096):
                writer.write(b"echo:" + data)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@dataclass
class StandInRuntime:
    streaming: StreamingStandIn
    calls: list[tuple[Any, ...]] = field(default_factory=list)

    async def exec(
        self, container_id: str, cmd: list[str], *, tty: bool, stdin: bool, stdout: bool, stderr: bool
    ) -> str:
        self.calls.append(("exec", container_id, cmd, tty, stdin, stdout, stderr))
        return f"http://127.0.0.1:{self.streaming.port}/exec/token{len(self.calls)}"

    async def attach(self, container_id: str, *, tty: bool, stdin: bool, stdout: bool, stderr: bool) -> str:
        self.calls.append(("attach", container_id, tty, stdin, stdout, stderr))
        return f"http://127.0.0.1:{self.streaming.port}/attach/token{len(self.calls)}"

    async def port_forward(self, sandbox_id: str, ports: list[int]) -> str:
        self.calls.append(("portforward", sandbox_id, ports))
        return f"http://127.0.0.1:{self.streaming.port}/portforward/token{len(self.calls)}"


@dataclass
class StandInBackend:
    runtime: StandInRuntime
    log_dir: Path
    node_name: str = NODE

    def pods(self) -> list[dict[str, Any]]:
        return [{"metadata": {"namespace": "default", "name": "web", "uid": "uid-1"}}]

    def locate(self, namespace: str, pod: str, container: str | None) -> ContainerLocation:
        if (namespace, pod) != ("default", "web"):
            raise LookupError(f'pod "{pod}" does not exist')
        if container not in (None, "app"):
            raise LookupError(f'container "{container}" not found in pod "{pod}"')
        return ContainerLocation("uid-1", "sandbox-1", "ctr-1", self.log_dir / "app" / "1.log", None)

    async def stats_summary(self) -> dict[str, Any]:
        return {"node": {"nodeName": self.node_name}, "pods": []}


@dataclass
class Kubelet:
    url: str
    port: int
    pki: Pki
    admin: Issued
    backend: StandInBackend
    streaming: StreamingStandIn
    decisions: list[tuple[str, KubeletAttributes]]


@pytest.fixture
async def kubelet(tmp_path: Path) -> AsyncIterator[Kubelet]:
    pki = ensure_pki(tmp_path / "tls", dns_names=[], ip_addresses=[])
    serving = issue_leaf(
        pki,
        LeafSpec(common_name=NODE, usage=SERVER_AUTH, ip_addresses=(ipaddress.IPv4Address("127.0.0.1"),)),
        server=True,
    )
    admin = Issued(pki.kubelet_client.cert_pem, pki.kubelet_client.key_pem)
    (tmp_path / "logs" / "app").mkdir(parents=True)
    (tmp_path / "logs" / "app" / "1.log").write_bytes(b"2026-11-27T12:00:00Z stdout F hello\n")
    streaming = StreamingStandIn()
    await streaming.start()
    backend = StandInBackend(StandInRuntime(streaming), tmp_path / "logs")
    decisions: list[tuple[str, KubeletAttributes]] = []

    async def authorize(user: KubeletUser, attrs: KubeletAttributes) -> bool:
        decisions.append((user.name, attrs))
        return "system:masters" in user.groups or (
            user.name == "stats-reader" and attrs.subresource == "stats"
        )

    api = KubeletApi(
        backend,
        bind="127.0.0.1",
        port=0,
        serving_cert_pem=serving.cert_pem,
        serving_key_pem=serving.key_pem,
        client_ca_pem=pki.client_ca.cert_pem,
        authorizer=authorize,
    )
    await api.start()
    try:
        yield Kubelet(
            f"https://127.0.0.1:{api.bound_port}", api.bound_port, pki, admin, backend, streaming, decisions
        )
    finally:
        await api.stop()
        await streaming.stop()


async def get(
    kubelet: Kubelet, path: str, who: Issued | None, headers: dict[str, str] | None = None
) -> tuple[int, str]:
    connector = aiohttp.TCPConnector(ssl=client_context(kubelet.pki, who))
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get(kubelet.url + path, headers=headers) as answer,
    ):
        return answer.status, await answer.text()


def test_request_attributes_follow_upstream_paths() -> None:
    def subresources(method: str, path: str) -> list[tuple[str, str]]:
        return [(a.verb, a.subresource) for a in request_attributes(method, path, NODE)]

    assert subresources("GET", "/stats/summary") == [("get", "stats")]
    assert subresources("GET", "/metrics/cadvisor") == [("get", "metrics")]
    assert subresources("GET", "/logs/") == [("get", "log")]
    assert subresources("GET", "/containerLogs/default/web/app") == [("get", "proxy")]
    assert subresources("POST", "/exec/default/web/app") == [("create", "proxy")]
    assert subresources("GET", "/pods") == [("get", "pods"), ("get", "proxy")]
    assert subresources("GET", "/healthz") == [("get", "healthz"), ("get", "proxy")]
    assert subresources("GET", "/statsx") == [("get", "proxy")]
    assert {a.name for a in request_attributes("GET", "/pods", NODE)} == {NODE}


def test_streaming_target_from_the_runtime_url() -> None:
    target = streaming_target("http://127.0.0.1:34567/exec/AbC?x=1")
    assert (target.host, target.port, target.path_qs, target.ssl) == (
        "127.0.0.1",
        34567,
        "/exec/AbC?x=1",
        None,
    )
    with pytest.raises(ValueError, match="unusable streaming URL"):
        streaming_target("unix:///run/x.sock")


async def test_authenticated_callers_reach_the_routes(kubelet: Kubelet) -> None:
    assert await get(kubelet, "/healthz", kubelet.admin) == (200, "ok")
    status, body = await get(kubelet, "/pods", kubelet.admin)
    assert status == 200 and '"kind":"PodList"' in body and '"uid-1"' in body
    status, body = await get(kubelet, "/stats/summary", kubelet.admin)
    assert status == 200 and NODE in body
    assert ("system:apiserver", KubeletAttributes("get", "healthz", NODE, "/healthz")) in kubelet.decisions


async def test_no_credentials_is_401_and_an_unknown_ca_fails_the_handshake(
    kubelet: Kubelet, tmp_path: Path
) -> None:
    assert await get(kubelet, "/healthz", None) == (401, "Unauthorized")
    assert await get(kubelet, "/healthz", None, {"Authorization": "Bearer x"}) == (401, "Unauthorized")
    stranger_key = new_key()
    stranger_ca = new_ca("another-ca", stranger_key, datetime.now(UTC))
    key = new_key()
    cert = issue(
        LeafSpec(common_name="system:admin", organizations=("system:masters",), usage=CLIENT_AUTH),
        key,
        stranger_ca,
        stranger_key,
        datetime.now(UTC),
    )
    stranger = Issued(certs_to_pem(cert, stranger_ca), key_to_pem(key))
    with pytest.raises(aiohttp.ClientError):
        await get(kubelet, "/healthz", stranger)


async def test_an_unauthorized_user_gets_403(kubelet: Kubelet) -> None:
    reader = issue_leaf(kubelet.pki, LeafSpec(common_name="stats-reader", usage=CLIENT_AUTH), server=False)
    assert (await get(kubelet, "/stats/summary", reader))[0] == 200
    assert await get(kubelet, "/containerLogs/default/web/app", reader) == (
        403,
        "Forbidden (user=stats-reader, verb=get, resource=nodes, subresource=proxy)",
    )


async def test_container_logs(kubelet: Kubelet) -> None:
    assert await get(kubelet, "/containerLogs/default/web/app", kubelet.admin) == (200, "hello\n")
    assert await get(kubelet, "/containerLogs/default/web/app?timestamps=true", kubelet.admin) == (
        200,
        "2026-11-27T12:00:00.000000000Z hello\n",
    )
    assert await get(kubelet, "/containerLogs/default/nope/app", kubelet.admin) == (
        404,
        'pod "nope" does not exist',
    )
    assert await get(kubelet, "/containerLogs/default/web/app?previous=true", kubelet.admin) == (
        400,
        'previous terminated container "app" in pod "web" not found',
    )
    status, body = await get(kubelet, "/containerLogs/default/web/app?tailLines=-2", kubelet.admin)
    assert (status, body) == (400, "tailLines: must be greater than or equal to 0, got -2")


async def upgrade(kubelet: Kubelet, request: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", kubelet.port, ssl=client_context(kubelet.pki, kubelet.admin), server_hostname="127.0.0.1"
    )
    writer.write(request.encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    return reader, writer, head


async def test_exec_splices_an_spdy_upgrade_to_the_runtime(kubelet: Kubelet) -> None:
    reader, writer, head = await upgrade(
        kubelet,
        "POST /exec/default/web/app?command=sh&command=-c&command=echo+hi&input=1&output=1&tty=1 HTTP/1.1\r\n"
        "Host: node\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
        "X-Stream-Protocol-Version: v4.channel.k8s.io\r\nContent-Length: 0\r\n\r\n",
    )
    response = parse_response_head(head)
    assert response.status == 101 and response.header("Upgrade") == "SPDY/3.1"
    writer.write(b"\x80\x03\x00\x01frame")
    assert await asyncio.wait_for(reader.readexactly(14), 5) == b"echo:\x80\x03\x00\x01frame"
    writer.close()
    assert kubelet.backend.runtime.calls == [
        ("exec", "ctr-1", ["sh", "-c", "echo hi"], True, True, True, False)
    ]
    line, headers = kubelet.streaming.requests[0]
    assert line == "POST /exec/token1 HTTP/1.1"
    assert headers["x-stream-protocol-version"] == "v4.channel.k8s.io"
    assert headers["host"] == f"127.0.0.1:{kubelet.streaming.port}"


async def test_a_refused_websocket_upgrade_reaches_the_client(kubelet: Kubelet) -> None:
    _, writer, head = await upgrade(
        kubelet,
        "GET /attach/default/web/uid-1/app?output=1&error=1 HTTP/1.1\r\nHost: node\r\n"
        "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n",
    )
    assert parse_response_head(head).status == 403
    writer.close()
    assert kubelet.backend.runtime.calls == [("attach", "ctr-1", False, False, True, True)]
    assert kubelet.streaming.requests[0][1]["sec-websocket-protocol"] == "v5.channel.k8s.io"


async def test_port_forward_and_bad_stream_requests(kubelet: Kubelet) -> None:
    _, writer, head = await upgrade(
        kubelet,
        "POST /portForward/default/web?port=8080 HTTP/1.1\r\nHost: node\r\nConnection: Upgrade\r\n"
        "Upgrade: SPDY/3.1\r\nContent-Length: 0\r\n\r\n",
    )
    assert parse_response_head(head).status == 101
    writer.close()
    assert kubelet.backend.runtime.calls == [("portforward", "sandbox-1", [8080])]
    assert await get(kubelet, "/exec/default/web/app?command=ls&output=1", kubelet.admin) == (
        400,
        "Upgrade request required",
    )
    assert await get(kubelet, "/exec/default/web/app?command=ls", kubelet.admin) == (
        400,
        "you must specify at least 1 of stdin, stdout, stderr",
    )
    assert await get(kubelet, "/exec/default/web/other-uid/app?command=ls&output=1", kubelet.admin) == (
        404,
        "pod not found (default/web has another uid than other-uid)",
    )
    assert await get(kubelet, "/exec/default/web/nope?command=ls&output=1", kubelet.admin) == (
        404,
        'container "nope" not found in pod "web"',
    )


def test_the_pki_has_the_api_servers_kubelet_client_certificate(tmp_path: Path) -> None:
    from cryptography import x509

    pki = ensure_pki(tmp_path / "tls", dns_names=[], ip_addresses=[])
    leaf, issuer = x509.load_pem_x509_certificates(pki.kubelet_client.cert_pem)
    assert leaf.subject.rfc4514_string() == "CN=system:apiserver,O=system:masters"
    assert issuer == x509.load_pem_x509_certificate(pki.client_ca.cert_pem)
    usage = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [CLIENT_AUTH]
    assert pki.kubelet_client.cert_path.name == "client-kube-apiserver.crt"
    again = ensure_pki(tmp_path / "tls", dns_names=[], ip_addresses=[])
    assert again.written == () and again.kubelet_client == pki.kubelet_client


def test_stream_types_follow_client_go_order() -> None:
    from k3py.apiserver.kubelet_proxy.translate import Streams

    query = {"stdin": "true", "stdout": "true", "stderr": "true", "tty": "false", "command": "sh"}
    assert Streams.from_query(query).types() == ["error", "stdin", "stdout", "stderr"]
    tty = Streams.from_query({**query, "tty": "true"})
    assert tty.types() == ["error", "stdin", "stdout", "resize"]  # a terminal has no stderr
    assert Streams.from_query({"stdout": "1"}).types() == ["error", "stdout"]


def test_kubelet_queries_from_the_api_options() -> None:
    from multidict import MultiDict

    from k3py.apiserver.kubelet_proxy.routes import split_proxy_name, stream_query

    query = MultiDict(
        [("command", "sh"), ("command", "-c"), ("stdin", "true"), ("stdout", "true"), ("tty", "false")]
    )
    assert stream_query(query, "exec") == "input=1&output=1&command=sh&command=-c"
    assert stream_query(MultiDict([("ports", "80"), ("ports", "443")]), "portforward") == "port=80&port=443"
    assert split_proxy_name("web") == ("", "web", 0)
    assert split_proxy_name("web:8080") == ("", "web", 8080)
    assert split_proxy_name("https:web:8443") == ("https", "web", 8443)
