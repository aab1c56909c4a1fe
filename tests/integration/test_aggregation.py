"""The aggregation layer, end to end: a real ``k3py server`` and a small aggregated API server.

The aggregated server is an aiohttp HTTPS site on 127.0.0.1 with a certificate for
``wardle.default.svc`` from a CA of the test's own (the APIService's ``caBundle``). Like the
sample-apiserver, it trusts the ``X-Remote-*`` headers only from a client whose certificate
chains to the request-header CA of the ``extension-apiserver-authentication`` ConfigMap and
whose CN is one of its allowed names; it echoes the identity it was given. A selector-less
Service's EndpointSlice, written by hand, points at it. Requests go through the server with the
real kubectl and with the admin client.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from k3py.client.rest import ApiStatusError, RestClient
from tests.e2e.cluster import Cluster
from tests.integration.api_support import until
from tests.integration.tls_support import LOOPBACK, serving_tls

Obj = dict[str, Any]

GROUP, VERSION = "wardle.example.com", "v1alpha1"
APISERVICE = f"{VERSION}.{GROUP}"
APISERVICES = "/apis/apiregistration.k8s.io/v1/apiservices"
FLUNDERS = f"/apis/{GROUP}/{VERSION}/namespaces/default/flunders"
CONFIGMAP = "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication"

RESOURCE_LIST = {
    "kind": "APIResourceList",
    "apiVersion": "v1",
    "groupVersion": f"{GROUP}/{VERSION}",
    "resources": [
        {
            "name": "flunders",
            "singularName": "flunder",
            "namespaced": True,
            "kind": "Flunder",
            "verbs": ["create", "delete", "get", "list", "watch"],
        },
        {
            "name": "flunders/status",
            "singularName": "",
            "namespaced": True,
            "kind": "Flunder",
            "verbs": ["get"],
        },
    ],
}


@dataclass
class WardleServer:
    """What the aggregated API server saw: one entry per request it accepted."""

    allowed_names: list[str]
    seen: list[Obj] = field(default_factory=list)
    refused: int = 0
    release_second_event: asyncio.Event = field(default_factory=asyncio.Event)

    def identity(self, request: web.Request) -> Obj | None:
        transport = request.transport
        peer = transport.get_extra_info("peercert") if transport is not None else None
        names = [
            value for rdn in (peer or {}).get("subject", ()) for key, value in rdn if key == "commonName"
        ]
        if not names or names[-1] not in self.allowed_names:
            return None
        return {
            "user": request.headers.get("X-Remote-User"),
            "uid": request.headers.get("X-Remote-Uid"),
            "groups": request.headers.getall("X-Remote-Group", []),
            "extra": {k: v for k, v in request.headers.items() if k.lower().startswith("x-remote-extra-")},
            "authorization": request.headers.get("Authorization"),
            "path": request.path_qs,
            "method": request.method,
            "content_type": request.headers.get("Content-Type"),
        }

    async def handle(self, request: web.Request) -> web.StreamResponse:
        who = self.identity(request)
        if who is None:
            self.refused += 1
            return web.json_response({"kind": "Status", "code": 401}, status=401)
        self.seen.append(who)
        if request.path.endswith("/exec"):
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            async for message in ws:
                await ws.send_str(f"{who['user']}: {message.data}")
            return ws
        if request.path == f"/apis/{GROUP}/{VERSION}":
            return web.json_response(RESOURCE_LIST)
        if request.query.get("watch"):
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            await response.prepare(request)
            await response.write(orjson.dumps({"type": "ADDED", "object": {"n": 1}}) + b"\n")
            await self.release_second_event.wait()
            await response.write(orjson.dumps({"type": "ADDED", "object": {"n": 2}}) + b"\n")
            await response.write_eof()
            return response
        body = await request.read()
        return web.json_response(
            {
                "kind": "FlunderList",
                "apiVersion": f"{GROUP}/{VERSION}",
                "items": [],
                "seen": who,
                "body": body.decode(),
            },
            status=201 if request.method == "POST" else 200,
        )


async def configmap(api: RestClient) -> dict[str, str]:
    await until(lambda: _exists(api, CONFIGMAP))
    data: dict[str, str] = (await api.get(CONFIGMAP))["data"]
    return data


async def _exists(api: RestClient, path: str) -> bool:
    try:
        await api.get(path)
    except ApiStatusError as exc:
        if exc.code == 404:
            return False
        raise
    return True


@dataclass
class Backend:
    server: WardleServer
    runner: web.AppRunner
    ca_pem: bytes
    stopped: bool = False

    @property
    def port(self) -> int:
        port: int = self.runner.addresses[0][1]
        return port

    async def stop(self) -> None:
        """Close the listening port and every open connection."""
        if not self.stopped:
            self.stopped = True
            self.server.release_second_event.set()
            await self.runner.cleanup()


@pytest.fixture
async def wardle(tmp_path: Path, api: RestClient) -> AsyncIterator[Backend]:
    """The aggregated server on 127.0.0.1, trusting what the ConfigMap says."""
    data = await configmap(api)
    tls = serving_tls(tmp_path, "wardle-test-ca", "wardle.default.svc")
    tls.context.verify_mode = ssl.CERT_OPTIONAL
    tls.context.load_verify_locations(cadata=data["requestheader-client-ca-file"])
    server = WardleServer(json.loads(data["requestheader-allowed-names"]))
    app = web.Application()
    app.router.add_route("*", "/{path:.*}", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    backend = Backend(server, runner, tls.ca_pem)
    try:
        await web.TCPSite(runner, LOOPBACK, 0, ssl_context=tls.context).start()
        yield backend
    finally:
        await backend.stop()


async def expose(api: RestClient, port: int) -> None:
    """Service ``wardle`` (port 7443 named https) whose EndpointSlice names 127.0.0.1:``port``."""
    service = {
        "metadata": {"name": "wardle"},
        "spec": {"ports": [{"name": "https", "port": 7443, "targetPort": 443}]},
    }
    await api.create("/api/v1/namespaces/default/services", service)
    endpoint_slice = {
        "metadata": {"name": "wardle-1", "labels": {"kubernetes.io/service-name": "wardle"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    }
    await api.create("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices", endpoint_slice)


async def register(api: RestClient, ca_pem: bytes) -> None:
    await api.create(
        APISERVICES,
        {
            "metadata": {"name": APISERVICE},
            "spec": {
                "group": GROUP,
                "version": VERSION,
                "service": {"namespace": "default", "name": "wardle", "port": 7443},
                "caBundle": base64.b64encode(ca_pem).decode(),
                "groupPriorityMinimum": 2000,
                "versionPriority": 200,
            },
        },
    )


async def available(api: RestClient) -> Obj:
    obj = await api.get(f"{APISERVICES}/{APISERVICE}")
    [condition] = [c for c in obj.get("status", {}).get("conditions", []) if c["type"] == "Available"]
    return dict(condition)


async def kubectl(cluster: Cluster, tmp_path: Path, *args: str, check: bool = True) -> Any:
    """The real kubectl, with a discovery cache of the test's own."""
    return await asyncio.to_thread(
        cluster.kubectl, "--cache-dir", str(tmp_path / "kube-cache"), *args, check=check
    )


# -- the ConfigMap and the certificates ---------------------------------------------------------


async def test_the_authentication_configmap_is_written_and_kept(cluster: Cluster, api: RestClient) -> None:
    tls = cluster.data_dir / "server" / "tls"
    data = await configmap(api)
    assert data["client-ca-file"] == (tls / "client-ca.crt").read_text()
    assert data["requestheader-client-ca-file"] == (tls / "request-header-ca.crt").read_text()
    assert json.loads(data["requestheader-allowed-names"]) == ["system:auth-proxy"]
    assert json.loads(data["requestheader-username-headers"]) == ["X-Remote-User"]
    assert json.loads(data["requestheader-uid-headers"]) == ["X-Remote-Uid"]
    assert json.loads(data["requestheader-group-headers"]) == ["X-Remote-Group"]
    assert json.loads(data["requestheader-extra-headers-prefix"]) == ["X-Remote-Extra-"]
    proxy_cert = (tls / "client-auth-proxy.crt").read_text()
    assert "BEGIN CERTIFICATE" in proxy_cert and (tls / "client-auth-proxy.key").exists()

    await api.patch(CONFIGMAP, {"data": {"requestheader-allowed-names": '["someone-else"]'}})
    await until(lambda: _names_are(api, ["someone-else", "system:auth-proxy"]))
    await api.delete(CONFIGMAP)
    await until(lambda: _names_are(api, ["system:auth-proxy"]))


async def _names_are(api: RestClient, names: list[str]) -> bool:
    try:
        data = (await api.get(CONFIGMAP))["data"]
    except ApiStatusError:
        return False
    return bool(json.loads(data["requestheader-allowed-names"]) == names)


# -- proxying ------------------------------------------------------------------------------------


@pytest.mark.slow
async def test_requests_reach_the_aggregated_server_as_the_user(
    cluster: Cluster, api: RestClient, wardle: Backend, tmp_path: Path
) -> None:
    await expose(api, wardle.port)
    await register(api, wardle.ca_pem)
    await until(lambda: _condition_is(api, "True"))
    condition = await available(api)
    assert (condition["reason"], condition["message"]) == ("Passed", "all checks passed")
    checker = wardle.server.seen[0]
    assert (checker["user"], checker["groups"], checker["path"]) == (
        "system:kube-aggregator",
        ["system:masters"],
        f"/apis/{GROUP}/{VERSION}",
    )

    raw = await kubectl(cluster, tmp_path, "get", "--raw", f"{FLUNDERS}?limit=5")
    seen = json.loads(raw.stdout)["seen"]
    assert seen["user"] == "system:admin"
    assert seen["groups"] == ["system:masters", "system:authenticated"]
    assert seen["authorization"] is None and seen["path"] == f"{FLUNDERS}?limit=5"
    assert wardle.server.refused == 0

    created = await api.create(FLUNDERS, {"kind": "Flunder", "metadata": {"name": "one"}})
    assert created["seen"]["method"] == "POST" and json.loads(created["body"])["metadata"]["name"] == "one"
    assert created["seen"]["content_type"] == "application/json"
    # kubectl create --raw sends its body without a type (client-go's raw bytes): relayed so, it is
    # JSON to the backend, where a type added on the way (application/octet-stream) would be 415
    flunder = tmp_path / "flunder.json"
    flunder.write_text(json.dumps({"kind": "Flunder", "metadata": {"name": "two"}}))
    raw = await kubectl(cluster, tmp_path, "create", "--raw", FLUNDERS, "-f", str(flunder))
    assert json.loads(raw.stdout)["seen"]["content_type"] is None

    resources = await kubectl(cluster, tmp_path, "api-resources", f"--api-group={GROUP}", "-o", "name")
    assert resources.stdout.split() == [f"flunders.{GROUP}"]
    groups = await api.get("/apis")
    [wardle_group] = [g for g in groups["groups"] if g["name"] == GROUP]
    assert wardle_group["preferredVersion"] == {"groupVersion": f"{GROUP}/{VERSION}", "version": VERSION}
    assert (await api.get(f"/apis/{GROUP}"))["versions"] == [
        {"groupVersion": f"{GROUP}/{VERSION}", "version": VERSION}
    ]
    assert (await api.get(f"/apis/{GROUP}/{VERSION}"))["resources"][0]["name"] == "flunders"

    await _watch_streams(cluster, wardle)
    await _upgrade_is_spliced(cluster)

    await wardle.stop()
    with pytest.raises(ApiStatusError) as refused:
        await api.get(FLUNDERS)
    assert refused.value.code == 503
    await until(lambda: _condition_is(api, "False"))
    condition = await available(api)
    assert condition["reason"] == "FailedDiscoveryCheck"
    assert "connection refused" in condition["message"], condition
    failed = await kubectl(cluster, tmp_path, "get", "--raw", FLUNDERS, check=False)
    assert failed.returncode != 0 and "ServiceUnavailable" in failed.stderr, failed.stderr
    listed = await api.get("/apis")
    assert GROUP in [g["name"] for g in listed["groups"]]  # still listed while unavailable


async def _condition_is(api: RestClient, status: str) -> bool:
    try:
        return bool((await available(api))["status"] == status)
    except (ApiStatusError, ValueError):
        return False


async def _watch_streams(cluster: Cluster, wardle: Backend) -> None:
    """The first event arrives while the backend still holds the second back."""
    connector = aiohttp.TCPConnector(ssl=cluster.ssl_context())
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get(f"{cluster.url}{FLUNDERS}?watch=1") as answer,
    ):
        assert answer.status == 200
        first = await asyncio.wait_for(answer.content.readline(), 10)
        assert orjson.loads(first)["object"] == {"n": 1}
        wardle.server.release_second_event.set()
        second = await asyncio.wait_for(answer.content.readline(), 10)
        assert orjson.loads(second)["object"] == {"n": 2}
    await asyncio.sleep(0.25)


async def _upgrade_is_spliced(cluster: Cluster) -> None:
    """A WebSocket upgrade reaches the backend with the user's identity, then carries messages."""
    connector = aiohttp.TCPConnector(ssl=cluster.ssl_context())
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.ws_connect(f"{cluster.url}{FLUNDERS}/one/exec") as ws,
    ):
        await ws.send_str("hello")
        answer = await asyncio.wait_for(ws.receive_str(), 10)
        assert answer == "system:admin: hello"
    await asyncio.sleep(0.25)


async def test_an_apiservice_without_endpoints_is_unavailable(api: RestClient) -> None:
    await register(api, b"")
    await until(lambda: _reason_is(api, "ServiceNotFound"))
    service = {
        "metadata": {"name": "wardle"},
        "spec": {"ports": [{"name": "https", "port": 7443, "targetPort": 443}]},
    }
    await api.create("/api/v1/namespaces/default/services", service)
    await until(lambda: _reason_is(api, "EndpointsNotFound"))
    with pytest.raises(ApiStatusError) as refused:
        await api.get(FLUNDERS)
    assert refused.value.code == 503


async def _reason_is(api: RestClient, reason: str) -> bool:
    try:
        return bool((await available(api))["reason"] == reason)
    except (ApiStatusError, ValueError):
        return False
