"""kubectl logs, exec and port-forward through a real ``k3py server`` to a real kubelet API.

The API server runs as a process; the kubelet API (``k3py.agent.kubelet_api``) runs in the
test on 127.0.0.2 with the server CA's serving certificate, and authorizes callers through
the API server (TokenReview/SubjectAccessReview). Below the kubelet API the test puts a
backend standing in for the kubelet core (a pod, its CRI log file) and a streaming server
standing in for containerd's: it refuses WebSocket handshakes with 403, as containerd 1.6's
does for protocols it lacks (kubectl then falls back to SPDY), and speaks just enough
SPDY/3.1 to run ``echo``, ``cat`` and a port-forward echo.
"""

from __future__ import annotations

import asyncio
import base64
import io
import ipaddress
import json
import os
import re
import signal
import ssl
import struct
import subprocess
import sys
import sysconfig
import tarfile
import time
import zlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509

from k3py.agent import airgap
from k3py.agent.cri import Runtime
from k3py.agent.kubelet_api import ContainerLocation, KubeletApi, KubeletBackend, api_authorizer
from k3py.client.rest import Credentials, Kubeconfig, RestClient
from k3py.pki import kubeconfig, write_kubeconfig
from k3py.pki.certs import (
    CLIENT_AUTH,
    SERVER_AUTH,
    LeafSpec,
    PrivateKey,
    certs_to_pem,
    issue,
    key_to_pem,
    new_ca,
    new_key,
    parse_key,
)
from tests.integration.containerd_support import (
    busybox_image,
    container_config,
    running_containerd,
    sandbox_config,
)
from tests.integration.tls_support import serving, serving_tls

pytestmark = pytest.mark.slow

KUBECTL = Path(sysconfig.get_path("scripts")) / "kubectl"
KUBELET_IP = "127.0.0.2"
NODE = "node-a"
START_TIMEOUT = 40.0


# -- the streaming server's stand-in -----------------------------------------------------------

SYN_STREAM, SYN_REPLY = 1, 2
FIN = 0x01


@dataclass
class StreamRequest:
    kind: str  # exec, portforward
    command: list[str] = field(default_factory=list)
    stdin: bool = False
    stdout: bool = False
    stderr: bool = False
    tty: bool = False
    stream_types: list[str] = field(default_factory=list)  # as read from SYN_STREAM headers


class SpdyStandIn:
    """A CRI streaming server: 403 to WebSocket, a minimal SPDY/3.1 exec and port-forward."""

    def __init__(self) -> None:
        self.sessions: dict[str, StreamRequest] = {}
        self.requests: list[tuple[str, list[tuple[str, str]]]] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    def url(self, request: StreamRequest) -> str:
        token = f"token{len(self.sessions) + 1}"
        self.sessions[token] = request
        return f"http://127.0.0.1:{self.port}/{request.kind}/{token}"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            headers = [
                (k.strip().lower(), v.strip()) for k, _, v in (h.partition(":") for h in lines[1:] if h)
            ]
            self.requests.append((lines[0], headers))
            if dict(headers).get("upgrade", "").lower() == "websocket":
                writer.write(b"HTTP/1.1 403 Forbidden\r\n\r\n")
                return
            offered = [
                v.strip()
                for k, value in headers
                if k == "x-stream-protocol-version"
                for v in value.split(",")
            ]
            chosen = "v4.channel.k8s.io" if "v4.channel.k8s.io" in offered else offered[0]
            writer.write(
                b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
                + f"X-Stream-Protocol-Version: {chosen}\r\n\r\n".encode()
            )
            request = self.sessions[lines[0].split()[1].rsplit("/", 1)[1]]
            await SpdySession(reader, writer, request).run()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


CP_PAYLOAD = bytes(range(256)) * 600  # binary, and longer than a frame


def run(command: list[str]) -> bytes:
    """What the stand-in "container" prints: ``echo``, and ``tar cf - <file>`` for kubectl cp."""
    if command[0] == "echo":
        return (" ".join(command[1:]) + "\n").encode()
    if command[:3] == ["tar", "cf", "-"]:
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w") as tar:
            info = tarfile.TarInfo(command[-1].lstrip("/"))
            info.size = len(CP_PAYLOAD)
            tar.addfile(info, io.BytesIO(CP_PAYLOAD))
        return archive.getvalue()
    return b""


class SpdySession:
    """Streams are told apart by the order the client creates them, as client-go does it."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: StreamRequest
    ) -> None:
        self.reader, self.writer, self.request = reader, writer, request
        self.compressor = zlib.compressobj()
        self.decompressor: Any = None  # header blocks are only read when sent without the SPDY dictionary
        self.roles: dict[int, str] = {}
        if request.kind == "exec":
            self.expected = ["error"]
            self.expected += ["stdin"] * request.stdin + ["stdout"] * request.stdout
            self.expected += ["stderr"] * (request.stderr and not request.tty) + ["resize"] * request.tty
        else:
            self.expected = []

    def stream(self, role: str) -> int:
        return next(s for s, r in self.roles.items() if r == role)

    def send_control(self, kind: int, payload: bytes) -> None:
        self.writer.write(struct.pack(">HHI", 0x8003, kind, len(payload)) + payload)

    def send_data(self, stream: int, data: bytes, *, fin: bool = False) -> None:
        self.writer.write(struct.pack(">II", stream, (FIN << 24 if fin else 0) | len(data)) + data)

    async def run(self) -> None:
        while True:
            head = await self.reader.readexactly(8)
            length = int.from_bytes(head[5:8], "big")
            payload = await self.reader.readexactly(length)
            if head[0] & 0x80:
                kind = struct.unpack(">H", head[2:4])[0]
                if kind == SYN_STREAM:
                    self.request.stream_types += self.header(payload[10:]).get("streamtype", "").split()
                    await self.new_stream(int.from_bytes(payload[:4], "big") & 0x7FFFFFFF)
                continue
            stream, fin = int.from_bytes(head[:4], "big") & 0x7FFFFFFF, bool(head[4] & FIN)
            await self.data(stream, payload, fin)

    def header(self, block: bytes) -> dict[str, str]:
        if self.decompressor is None:
            if block[1] & 0x20:  # FDICT: compressed with the SPDY dictionary (kubectl)
                self.decompressor = False
                return {}
            self.decompressor = zlib.decompressobj()
        if self.decompressor is False:
            return {}
        raw = self.decompressor.decompress(block)
        count, at, found = struct.unpack(">I", raw[:4])[0], 4, {}
        for _ in range(count):
            size = struct.unpack(">I", raw[at : at + 4])[0]
            name = raw[at + 4 : at + 4 + size].decode()
            at += 4 + size
            size = struct.unpack(">I", raw[at : at + 4])[0]
            found[name] = raw[at + 4 : at + 4 + size].decode()
            at += 4 + size
        return found

    async def new_stream(self, stream: int) -> None:
        header_block = self.compressor.compress(b"\x00\x00\x00\x00") + self.compressor.flush(
            zlib.Z_SYNC_FLUSH
        )
        self.send_control(SYN_REPLY, stream.to_bytes(4, "big") + header_block)
        if self.request.kind == "portforward":
            self.roles[stream] = "error" if len(self.roles) % 2 == 0 else "data"
            return
        self.roles[stream] = self.expected[len(self.roles)]
        if len(self.roles) == len(self.expected) and not self.request.stdin:
            self.finish_exec(run(self.request.command))

    def finish_exec(self, output: bytes) -> None:
        if output:
            self.send_data(self.stream("stdout"), output)
        if self.request.command[:1] == ["false"]:  # the v4 error stream's Status for exit code 1
            status = {
                "metadata": {},
                "status": "Failure",
                "message": "command terminated with non-zero exit code: exit status 1",
                "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": "1"}]},
            }
            self.send_data(self.stream("error"), json.dumps(status).encode())
        for role in ("stdout", "stderr", "error"):
            if role in self.roles.values():
                self.send_data(self.stream(role), b"", fin=True)  # an empty error stream: exit code 0

    async def data(self, stream: int, payload: bytes, fin: bool) -> None:
        role = self.roles.get(stream)
        if role == "stdin":  # ``cat``: stdin comes back on stdout
            if payload:
                self.send_data(self.stream("stdout"), payload)
            if fin:
                self.finish_exec(b"")
        elif role == "data":  # port-forward: the "server" in the pod echoes
            if payload:
                self.send_data(stream, b"echo:" + payload)
            if fin:
                self.send_data(stream, b"", fin=True)
                self.send_data(stream - 2, b"", fin=True)
        await self.writer.drain()


# -- the kubelet core's stand-in ---------------------------------------------------------------


@dataclass
class StandInRuntime:
    streaming: SpdyStandIn
    calls: list[StreamRequest] = field(default_factory=list)

    async def exec(
        self, container_id: str, cmd: list[str], *, tty: bool, stdin: bool, stdout: bool, stderr: bool
    ) -> str:
        self.calls.append(StreamRequest("exec", cmd, stdin, stdout, stderr, tty))
        return self.streaming.url(self.calls[-1])

    async def attach(self, container_id: str, *, tty: bool, stdin: bool, stdout: bool, stderr: bool) -> str:
        self.calls.append(StreamRequest("exec", ["echo", "attached"], stdin, stdout, stderr, tty))
        return self.streaming.url(self.calls[-1])

    async def port_forward(self, sandbox_id: str, ports: list[int]) -> str:
        self.calls.append(StreamRequest("portforward"))
        return self.streaming.url(self.calls[-1])


@dataclass
class StandInBackend:
    runtime: StandInRuntime
    log_path: Path
    running: bool = True
    node_name: str = NODE

    def pods(self) -> list[dict[str, Any]]:
        return []

    def locate(self, namespace: str, pod: str, container: str | None) -> ContainerLocation:
        if (namespace, pod, container or "app") != ("default", "web", "app"):
            raise LookupError(f'pod "{pod}" does not exist')
        return ContainerLocation("uid-web", "sandbox-web", "ctr-app", self.log_path, None, self.running)

    async def stats_summary(self) -> dict[str, Any]:
        return {"node": {"nodeName": NODE}, "pods": []}


# -- the cluster -------------------------------------------------------------------------------


@dataclass
class Cluster:
    url: str
    tls: Path
    kubeconfig: Path
    backend: StandInBackend
    streaming: SpdyStandIn
    kubelet_port: int
    admin: RestClient

    def pem(self, name: str) -> bytes:
        return (self.tls / name).read_bytes()

    def user_kubeconfig(self, path: Path, name: str, *, foreign_ca: bool = False) -> Path:
        cert, key = issue_client(self, name, foreign_ca=foreign_ca)
        write_kubeconfig(path, kubeconfig(self.url, self.pem("server-ca.crt"), cert, key), 0o600)
        return path


def issue_client(cluster: Cluster, name: str, *, foreign_ca: bool = False) -> tuple[bytes, bytes]:
    now = datetime.now(UTC)
    ca_key: PrivateKey
    if foreign_ca:
        ca_key = new_key()
        ca_cert = new_ca("a-stranger", ca_key, now)
    else:
        ca_cert = x509.load_pem_x509_certificate(cluster.pem("client-ca.crt"))
        ca_key = parse_key(cluster.tls / "client-ca.key", cluster.pem("client-ca.key"))
    key = new_key()
    cert = issue(LeafSpec(common_name=name, usage=CLIENT_AUTH), key, ca_cert, ca_key, now)
    return certs_to_pem(cert, ca_cert), key_to_pem(key)


@pytest.fixture
def server(tmp_path: Path, free_port: int) -> Iterator[tuple[str, Path]]:
    data_dir = tmp_path / "data"
    command = [
        sys.executable, "-m", "k3py.cli", "server", "--config", os.devnull, "--data-dir", str(data_dir),
        "--bind-address", "127.0.0.1", "--https-listen-port", str(free_port),
        "--write-kubeconfig", str(data_dir / "k3py.yaml"), "--disable-agent",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not (data_dir / "k3py.yaml").exists():
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"k3py server did not start: {process.communicate()[1][-3000:]}")
            time.sleep(0.1)
        yield f"https://127.0.0.1:{free_port}", data_dir
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


@asynccontextmanager
async def kubelet_serving(
    url: str, tls: Path, backend: KubeletBackend
) -> AsyncIterator[tuple[RestClient, int]]:
    """The kubelet API for ``backend`` on 127.0.0.2 with a server-CA certificate, node and pods registered."""
    now = datetime.now(UTC)
    server_ca = x509.load_pem_x509_certificate((tls / "server-ca.crt").read_bytes())
    server_ca_key = parse_key(tls / "server-ca.key", (tls / "server-ca.key").read_bytes())
    serving_key = new_key()
    serving = issue(
        LeafSpec(common_name=NODE, usage=SERVER_AUTH, ip_addresses=(ipaddress.IPv4Address(KUBELET_IP),)),
        serving_key,
        server_ca,
        server_ca_key,
        now,
    )
    credentials = Credentials(
        (tls / "server-ca.crt").read_bytes(),
        (tls / "client-admin.crt").read_bytes(),
        (tls / "client-admin.key").read_bytes(),
    )
    async with RestClient(url, credentials) as admin:
        # The kubelet reviews its callers with the admin's credentials here; a node's own
        # credentials need a role allowing tokenreviews and subjectaccessreviews.
        kubelet = KubeletApi(
            backend,
            bind=KUBELET_IP,
            port=0,
            serving_cert_pem=certs_to_pem(serving, server_ca),
            serving_key_pem=key_to_pem(serving_key),
            client_ca_pem=(tls / "client-ca.crt").read_bytes(),
            authorizer=api_authorizer(admin),
        )
        await kubelet.start()
        try:
            await register(admin, kubelet.bound_port)
            yield admin, kubelet.bound_port
        finally:
            await kubelet.stop()


@pytest.fixture
async def cluster(server: tuple[str, Path], tmp_path: Path) -> AsyncIterator[Cluster]:
    url, data_dir = server
    tls = data_dir / "server" / "tls"
    log_path = tmp_path / "logs" / "app" / "0.log"
    log_path.parent.mkdir(parents=True)
    log_path.write_bytes(
        b"2026-11-27T12:00:01.000000001Z stdout F hello\n"
        b"2026-11-27T12:00:02Z stderr P wor\n"
        b"2026-11-27T12:00:02.1Z stderr F ld\n"
    )
    streaming = SpdyStandIn()
    await streaming.start()
    backend = StandInBackend(StandInRuntime(streaming), log_path)
    try:
        async with kubelet_serving(url, tls, backend) as (admin, port):
            yield Cluster(url, tls, data_dir / "k3py.yaml", backend, streaming, port, admin)
    finally:
        await streaming.stop()


async def register(admin: RestClient, kubelet_port: int) -> None:
    await admin.create(
        "/api/v1/nodes",
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": NODE},
            "status": {
                "addresses": [
                    {"type": "Hostname", "address": NODE},
                    {"type": "InternalIP", "address": KUBELET_IP},
                ],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
            },
        },
    )
    for name, node, containers in (
        ("web", NODE, ["app"]),
        ("pending", "", ["app"]),
        ("two", NODE, ["a", "b"]),
    ):
        spec: dict[str, Any] = {"containers": [{"name": c, "image": "busybox"} for c in containers]}
        if node:
            spec["nodeName"] = node
        pod = await admin.create(
            "/api/v1/namespaces/default/pods",
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec},
        )
        if node:  # kubectl port-forward and attach want a running pod
            pod["status"] = {"phase": "Running", "podIP": "127.0.0.1"}
            await admin.request("PUT", f"/api/v1/namespaces/default/pods/{name}/status", pod)


async def kubectl(
    cluster: Cluster | Path,
    *args: str,
    config: Path | None = None,
    timeout: float = 30,  # noqa: ASYNC109 (the whole command's deadline)
) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        str(KUBECTL),
        "--kubeconfig",
        str(config or (cluster if isinstance(cluster, Path) else cluster.kubeconfig)),
        *args,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


# -- tests -------------------------------------------------------------------------------------


async def test_kubectl_logs(cluster: Cluster) -> None:
    assert await kubectl(cluster, "logs", "web") == (0, "hello\nworld\n", "")
    # tailLines counts the file's lines, a partial one too, as upstream's kubelet does.
    assert (await kubectl(cluster, "logs", "web", "--tail=2"))[1] == "world\n"
    code, out, _ = await kubectl(cluster, "logs", "pod/web", "-c", "app", "--timestamps")
    assert (code, out) == (0, "2026-11-27T12:00:01.000000001Z hello\n2026-11-27T12:00:02.000000000Z world\n")


async def test_kubectl_logs_errors(cluster: Cluster) -> None:
    code, _, err = await kubectl(cluster, "logs", "web", "-c", "nope")
    assert code == 1 and "container nope is not valid for pod web" in err
    code, _, err = await kubectl(cluster, "logs", "pending")
    assert code == 1 and "pod pending does not have a host assigned" in err
    code, _, err = await kubectl(cluster, "logs", "missing")
    assert code == 1 and 'pods "missing" not found' in err
    code, _, err = await kubectl(cluster, "logs", "web", "--previous")
    assert code == 1 and 'previous terminated container "app" in pod "web" not found' in err
    code, _, err = await kubectl(cluster, "get", "--raw", "/api/v1/namespaces/default/pods/two/log")
    assert code == 1 and "a container name must be specified for pod two, choose one of: [a b]" in err


async def test_kubectl_logs_follow_until_the_container_stops(cluster: Cluster) -> None:
    follow = asyncio.ensure_future(kubectl(cluster, "logs", "-f", "web", timeout=60))
    await asyncio.sleep(2)
    assert not follow.done()
    with cluster.backend.log_path.open("ab") as out:
        out.write(b"2026-11-27T12:00:03Z stdout F more\n")
    await asyncio.sleep(1)
    cluster.backend.running = False
    assert await asyncio.wait_for(follow, 30) == (0, "hello\nworld\nmore\n", "")


@pytest.mark.parametrize(
    ("protocol", "decode"),
    [("binary.k8s.io", lambda m: m.data), ("base64.binary.k8s.io", lambda m: base64.b64decode(m.data))],
)
async def test_a_log_read_over_websocket(cluster: Cluster, protocol: str, decode: Any) -> None:
    """Upstream's ``wsstream``: the log in messages of the asked subprotocol, then a close."""
    config = Kubeconfig.load(cluster.kubeconfig)
    url = f"{cluster.url}/api/v1/namespaces/default/pods/web/log?container=app"
    connector = aiohttp.TCPConnector(ssl=config.credentials.ssl_context())
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.ws_connect(url, protocols=(protocol,)) as ws,
    ):
        assert ws.protocol == protocol
        received = b"".join([decode(message) async for message in ws])
    assert received == b"hello\nworld\n"
    assert ws.close_code == aiohttp.WSCloseCode.OK


async def test_a_user_without_pods_log_gets_403(cluster: Cluster, tmp_path: Path) -> None:
    bob = cluster.user_kubeconfig(tmp_path / "bob.yaml", "bob")
    rbac = "/apis/rbac.authorization.k8s.io/v1/namespaces/default"
    await cluster.admin.create(
        f"{rbac}/roles",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "pod-reader"},
            "rules": [{"apiGroups": [""], "resources": ["pods", "pods/exec"], "verbs": ["get", "list"]}],
        },
    )
    await cluster.admin.create(
        f"{rbac}/rolebindings",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "bob-reads-pods"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "bob"}],
        },
    )
    assert (await kubectl(cluster, "get", "pod", "web", config=bob))[0] == 0
    code, _, err = await kubectl(cluster, "logs", "web", config=bob)
    assert code == 1
    assert (
        'pods "web" is forbidden: User "bob" cannot get resource "pods/log" in API group "" '
        'in the namespace "default"' in err
    )
    # ``get pods/exec`` lets bob open the WebSocket (a GET) past the middleware, but a stream
    # into the container needs ``create`` too.
    cert, key = issue_client(cluster, "bob")
    context = Credentials(cluster.pem("server-ca.crt"), cert, key).ssl_context()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(
                f"{cluster.url}/api/v1/namespaces/default/pods/web/exec?command=true&stdout=true",
                protocols=["v5.channel.k8s.io"],
            )
    assert refused.value.status == 403
    assert cluster.backend.runtime.calls == []


async def test_the_kubelet_api_refuses_strangers_and_unauthorized_users(cluster: Cluster) -> None:
    async def kubelet_get(cert: bytes, key: bytes) -> int:
        credentials = Credentials(cluster.pem("server-ca.crt"), cert, key)
        async with RestClient(f"https://{KUBELET_IP}:{cluster.kubelet_port}", credentials) as client:
            try:
                await client.raw("GET", "/containerLogs/default/web/app")
            except Exception as exc:
                return int(getattr(exc, "code", -1))
            return 200

    assert await kubelet_get(*issue_client(cluster, "bob")) == 403  # the API server's RBAC said no
    assert await kubelet_get(*issue_client(cluster, "system:admin", foreign_ca=True)) == 0  # no TLS handshake
    apiserver = (cluster.pem("client-kube-apiserver.crt"), cluster.pem("client-kube-apiserver.key"))
    assert await kubelet_get(*apiserver) == 200


async def test_kubectl_exec_over_websocket_is_translated_to_spdy(cluster: Cluster) -> None:
    assert await kubectl(cluster, "exec", "web", "--", "echo", "hello", "there") == (0, "hello there\n", "")
    # kubectl's WebSocket (v5.channel.k8s.io) ended at the API server, which spoke SPDY onwards.
    ((line, headers),) = cluster.streaming.requests
    assert line.startswith("POST /exec/token1 ")
    assert ("upgrade", "SPDY/3.1") in headers
    assert ("x-stream-protocol-version", "v4.channel.k8s.io") in headers
    (call,) = cluster.backend.runtime.calls
    assert (call.command, call.stdin, call.stdout, call.stderr, call.tty) == (
        ["echo", "hello", "there"],
        False,
        True,
        True,
        False,
    )
    assert call.stream_types == ["error", "stdout", "stderr"]
    code, _, err = await kubectl(cluster, "exec", "web", "--", "false")
    assert code == 1 and "command terminated with exit code 1" in err


async def test_kubectl_exec_with_spdy_is_spliced(cluster: Cluster) -> None:
    env = {**os.environ, "KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false"}  # kubectl's switch back to SPDY
    process = await asyncio.create_subprocess_exec(
        str(KUBECTL), "--kubeconfig", str(cluster.kubeconfig), "exec", "web", "--", "echo", "spdy",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert (process.returncode, out, err) == (0, b"spdy\n", b"")
    ((line, headers),) = cluster.streaming.requests
    assert line.startswith("POST /exec/token1 ") and ("upgrade", "SPDY/3.1") in headers
    assert cluster.backend.runtime.calls[0].stream_types == []  # kubectl's own header blocks
    process = await asyncio.create_subprocess_exec(
        str(KUBECTL), "--kubeconfig", str(cluster.kubeconfig), "exec", "web", "--", "false",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 1 and b"command terminated with exit code 1" in err


async def test_kubectl_cp_from_the_pod(cluster: Cluster, tmp_path: Path) -> None:
    target = tmp_path / "copied.bin"
    code, _, err = await kubectl(cluster, "cp", "web:/data/blob.bin", str(target))
    assert code == 0, err
    assert target.read_bytes() == CP_PAYLOAD
    assert cluster.backend.runtime.calls[-1].command[:3] == ["tar", "cf", "-"]


async def test_kubectl_exec_with_stdin(cluster: Cluster) -> None:
    process = await asyncio.create_subprocess_exec(
        str(KUBECTL), "--kubeconfig", str(cluster.kubeconfig), "exec", "-i", "web", "--", "cat",
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(b"line one\nline two\n"), 30)
    assert (process.returncode, out, err) == (0, b"line one\nline two\n", b"")
    assert cluster.backend.runtime.calls[-1].stream_types == ["error", "stdin", "stdout", "stderr"]


async def test_kubectl_port_forward(cluster: Cluster) -> None:
    process = await asyncio.create_subprocess_exec(
        str(KUBECTL), "--kubeconfig", str(cluster.kubeconfig), "port-forward", "pod/web", ":8080",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        match = re.match(r"Forwarding from 127\.0\.0\.1:(\d+) -> 8080", line)
        if match is None:
            assert process.stderr is not None
            pytest.fail(f"kubectl port-forward: {line!r} {(await process.stderr.read()).decode()}")
        reader, writer = await asyncio.open_connection("127.0.0.1", int(match[1]))
        writer.write(b"ping")
        assert await asyncio.wait_for(reader.readexactly(9), 10) == b"echo:ping"
        writer.close()
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()
    # kubectl's SPDY came tunnelled in WebSocket; the API server sent plain SPDY onwards.
    ((line, headers),) = cluster.streaming.requests
    assert line.startswith("POST /portforward/token1 ") and ("upgrade", "SPDY/3.1") in headers
    assert ("x-stream-protocol-version", "portforward.k8s.io") in headers
    assert [call.kind for call in cluster.backend.runtime.calls] == ["portforward"]


async def test_kubectl_attach(cluster: Cluster) -> None:
    code, out, _ = await kubectl(cluster, "attach", "web")
    assert (code, out) == (0, "attached\n")
    assert cluster.backend.runtime.calls[-1].stdout


async def test_nodes_proxy_reaches_the_kubelet(cluster: Cluster) -> None:
    code, out, _ = await kubectl(cluster, "get", "--raw", f"/api/v1/nodes/{NODE}/proxy/stats/summary")
    assert code == 0 and NODE in out
    assert (await kubectl(cluster, "get", "--raw", f"/api/v1/nodes/{NODE}/proxy/healthz"))[:2] == (0, "ok")


@pytest.mark.parametrize("scheme", ["", "https:"])
async def test_pods_proxy_reaches_the_pod(cluster: Cluster, scheme: str, tmp_path: Path) -> None:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text=f"pod says hi to {request.path_qs}")

    app = web.Application()
    app.router.add_get("/{tail:.*}", hello)
    # the pod's own certificate, from a CA nobody trusts: the proxy does not check it
    context = serving_tls(tmp_path, "a-pods-own-ca").context if scheme else None
    async with serving(app, context) as port:  # the pod's IP is 127.0.0.1 here
        path = f"/api/v1/namespaces/default/pods/{scheme}web:{port}/proxy/some/where?x=1"
        assert await kubectl(cluster, "get", "--raw", path) == (0, "pod says hi to /some/where?x=1", "")


async def test_proxied_pages_and_redirects_link_back_through_the_proxy(cluster: Cluster) -> None:
    async def page(request: web.Request) -> web.Response:
        return web.Response(text='<a href="/rewriteme">test</a>', content_type="text/html")

    async def moved(request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": "/there"})

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_get("/go", moved)
    async with serving(app) as port:
        base = f"/api/v1/namespaces/default/pods/web:{port}/proxy"
        code, out, _ = await kubectl(cluster, "get", "--raw", f"{base}/")
        assert code == 0 and out == f'<a href="{base}/rewriteme">test</a>'
        context = ssl.create_default_context(cafile=str(cluster.tls / "server-ca.crt"))
        context.load_cert_chain(cluster.tls / "client-admin.crt", cluster.tls / "client-admin.key")
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{cluster.url}{base}/go", ssl=context, allow_redirects=False) as answer,
        ):
            assert answer.status == 302 and answer.headers["Location"] == f"{base}/there"


async def test_a_proxy_root_without_its_slash_is_redirected(cluster: Cluster) -> None:
    context = ssl.create_default_context(cafile=str(cluster.tls / "server-ca.crt"))
    context.load_cert_chain(cluster.tls / "client-admin.crt", cluster.tls / "client-admin.key")
    async with aiohttp.ClientSession() as session:
        for method in ("GET", "HEAD"):
            url = f"{cluster.url}/api/v1/nodes/{NODE}/proxy?method={method}"
            async with session.request(method, url, ssl=context, allow_redirects=False) as answer:
                assert answer.status == 301
                assert answer.headers["Location"] == f"/api/v1/nodes/{NODE}/proxy/?method={method}"
        url = f"{cluster.url}/api/v1/nodes/no-such-node/proxy"
        async with session.get(url, ssl=context, allow_redirects=False) as answer:
            assert answer.status == 404  # the node is looked up first, as upstream


async def test_services_proxy_reaches_a_ready_endpoint(cluster: Cluster) -> None:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text=f"endpoint says hi to {request.path_qs}")

    app = web.Application()
    app.router.add_get("/{tail:.*}", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    ports = [{"name": "http", "port": 80, "targetPort": port}, {"name": "other", "port": 81}]
    service = {"metadata": {"name": "front"}, "spec": {"ports": ports}}  # no selector: endpoints by hand
    await cluster.admin.create("/api/v1/namespaces/default/services", service)
    base = "/api/v1/namespaces/default/services"
    try:
        code, _, err = await kubectl(cluster, "get", "--raw", f"{base}/front:http/proxy/")
        assert code != 0 and 'endpoints "front" not found' in err  # upstream's answer too
        endpoints = "/api/v1/namespaces/default/endpoints"
        ports = [{"name": "http", "port": port}, {"name": "other", "port": 1}]
        subset: dict[str, Any] = {"notReadyAddresses": [{"ip": "127.0.0.2"}], "ports": ports}
        await cluster.admin.create(endpoints, {"metadata": {"name": "front"}, "subsets": [subset]})
        code, _, err = await kubectl(cluster, "get", "--raw", f"{base}/front:http/proxy/")
        assert code != 0 and 'no endpoints available for service "front"' in err, err
        subset["addresses"] = [{"ip": "127.0.0.1"}]
        await cluster.admin.update(f"{endpoints}/front", {"metadata": {"name": "front"}, "subsets": [subset]})
        for name in ("front:http", "http:front:80", "front"):
            answer = await kubectl(cluster, "get", "--raw", f"{base}/{name}/proxy/some/where?x=1")
            assert answer == (0, "endpoint says hi to /some/where?x=1", ""), name
        code, _, err = await kubectl(cluster, "get", "--raw", f"{base}/front:nope/proxy/")
        assert code != 0 and "no service port" in err
    finally:
        await runner.cleanup()


async def test_an_unreachable_kubelet_is_a_500(cluster: Cluster) -> None:
    node = await cluster.admin.get(f"/api/v1/nodes/{NODE}")
    node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] = 1  # nothing listens there
    await cluster.admin.request("PUT", f"/api/v1/nodes/{NODE}/status", node)
    code, _, err = await kubectl(cluster, "logs", "web")
    assert code == 1
    assert (
        f'Get "https://{KUBELET_IP}:1/containerLogs/default/web/app": '
        f"dial tcp {KUBELET_IP}:1: connect: connection refused" in err
    )
    code, _, err = await kubectl(cluster, "exec", "web", "--", "true")
    assert code == 1 and "error dialing backend" in err


# -- with a real containerd below the kubelet API ----------------------------------------------


@dataclass
class ContainerdBackend:
    """The kubelet core's part, for one pod "web" whose container "app" runs in containerd."""

    runtime: Runtime
    sandbox_id: str
    container_id: str
    log_path: Path
    node_name: str = NODE

    def pods(self) -> list[dict[str, Any]]:
        return []

    def locate(self, namespace: str, pod: str, container: str | None) -> ContainerLocation:
        if (namespace, pod, container or "app") != ("default", "web", "app"):
            raise LookupError(f'pod "{pod}" does not exist')
        return ContainerLocation("uid-web", self.sandbox_id, self.container_id, self.log_path, None)

    async def stats_summary(self) -> dict[str, Any]:
        return {"node": {"nodeName": NODE}, "pods": []}


@pytest.mark.root
async def test_kubectl_against_a_real_containerd(server: tuple[str, Path], tmp_path: Path) -> None:
    """logs, exec (WebSocket translated, and SPDY) and port-forward to containerd 1.6's streaming server."""
    url, data_dir = server
    async with running_containerd(tmp_path / "containerd") as node:
        written = busybox_image(tmp_path / "busybox.tar")
        await airgap.import_archive(node.paths.socket, written.path)
        logs = tmp_path / "pod-logs"
        config = sandbox_config(logs, "web")
        sandbox = await node.runtime.run_pod_sandbox(config)
        command = ["sh", "-c", "echo hello from busybox; exec sleep 300"]
        container = await node.runtime.create_container(
            sandbox, container_config(written.reference, command, "app"), config
        )
        await node.runtime.start_container(container)
        backend = ContainerdBackend(node.runtime, sandbox, container, logs / "app" / "0.log")
        admin_config = data_dir / "k3py.yaml"
        async with kubelet_serving(url, data_dir / "server" / "tls", backend):
            for _ in range(50):
                if (await kubectl(admin_config, "logs", "web"))[1]:
                    break
                await asyncio.sleep(0.1)
            assert await kubectl(admin_config, "logs", "web") == (0, "hello from busybox\n", "")
            assert await kubectl(admin_config, "exec", "web", "--", "echo", "over", "websocket") == (
                0,
                "over websocket\n",
                "",
            )
            code, out, err = await kubectl(
                admin_config, "exec", "web", "--", "sh", "-c", "echo out; echo err >&2; exit 3"
            )
            assert (
                (code, out) == (3, "out\n")
                and "err\n" in err
                and "command terminated with exit code 3" in err
            )
            process = await asyncio.create_subprocess_exec(
                str(KUBECTL), "--kubeconfig", str(admin_config), "exec", "-i", "web", "--", "cat",
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )  # fmt: skip
            out_bytes, err_bytes = await asyncio.wait_for(process.communicate(b"typed\n"), 30)
            assert (process.returncode, out_bytes) == (0, b"typed\n"), err_bytes
            env = {**os.environ, "KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false"}
            process = await asyncio.create_subprocess_exec(
                str(KUBECTL), "--kubeconfig", str(admin_config), "exec", "web", "--", "echo", "spdy",
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
            )  # fmt: skip
            out_bytes, err_bytes = await asyncio.wait_for(process.communicate(), 30)
            assert (process.returncode, out_bytes) == (0, b"spdy\n"), err_bytes
            # The pod shares the host's network: a server the test runs is "in the pod".
            await port_forward_echo(admin_config)
        await node.runtime.stop_container(container, 0)
        await node.runtime.remove_container(container)
        await node.runtime.stop_pod_sandbox(sandbox)
        await node.runtime.remove_pod_sandbox(sandbox)


async def port_forward_echo(config: Path) -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"echo:" + await reader.read(100))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    process = await asyncio.create_subprocess_exec(
        str(KUBECTL), "--kubeconfig", str(config), "port-forward", "pod/web", f":{port}",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None and process.stderr is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        match = re.match(rf"Forwarding from 127\.0\.0\.1:(\d+) -> {port}", line)
        if match is None:
            pytest.fail(f"kubectl port-forward: {line!r} {(await process.stderr.read()).decode()}")
        reader, writer = await asyncio.open_connection("127.0.0.1", int(match[1]))
        writer.write(b"ping")
        assert await asyncio.wait_for(reader.read(100), 10) == b"echo:ping"
        writer.close()
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()
        server.close()
        await server.wait_closed()
