"""CRD conversion webhooks, end to end: a real HTTPS conversion webhook on 127.0.0.1.

A real SQLite store, the generic ObjectStore with :class:`WebhookConverter` as its conversion
step, ``build_app`` (no authentication) and the CRD controller, as the server runs them. The
CRD has v1 (``hostPort: "localhost:8080"``) and v2 (``host``, ``port``), as upstream's
conformance test has; the webhook, served with a certificate from a CA the test makes and
registered by ``url``, splits and joins that field. Objects are written in one version and read
in the other through get, list (with objects stored in both versions) and watch; what is
stored is read straight from the backend.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer

from k3py.api.resources import Registry, from_manifest, selection
from k3py.apiserver.app import build_app
from k3py.apiserver.crd_conversion import WebhookConverter
from k3py.apiserver.crds import install_custom_resources, run_crd_controller
from k3py.apiserver.generic import ObjectStore, WriteOptions
from k3py.apiserver.webhook_client import WebhookClient
from k3py.storage.model import Backend
from tests.integration.tls_support import serving, serving_tls

Obj = dict[str, Any]

GROUP = "stable.example.com"
CRD_NAME = f"hostports.{GROUP}"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
NS = "default"


def path(version: str, name: str = "") -> str:
    base = f"/apis/{GROUP}/{version}/namespaces/{NS}/hostports"
    return f"{base}/{name}" if name else base


# -- the conversion webhook -----------------------------------------------------------------------


def _to_v2(obj: Obj) -> Obj:
    out = {k: v for k, v in obj.items() if k != "hostPort"}
    host, _, port = str(obj.get("hostPort", "")).partition(":")
    return {**out, "host": host, "port": port}


def _to_v1(obj: Obj) -> Obj:
    out = {k: v for k, v in obj.items() if k not in ("host", "port")}
    return {**out, "hostPort": f"{obj.get('host', '')}:{obj.get('port', '')}"}


def _convert(obj: Obj, desired: str) -> Obj:
    """What agnhost's crd-conversion-webhook does, plus a label (kept) and a generation
    (restored by the API server: a webhook may change only labels and annotations)."""
    if obj["apiVersion"] == desired:
        return obj
    out = _to_v2(obj) if desired.endswith("/v2") else _to_v1(obj)
    meta = dict(out["metadata"])
    meta["labels"] = {**(meta.get("labels") or {}), "converted-to": desired.rpartition("/")[2]}
    meta["generation"] = 1000
    return {**out, "apiVersion": desired, "metadata": meta}


def _renamed(obj: Obj, desired: str) -> Obj:
    converted = _convert(obj, desired)
    return {**converted, "metadata": {**converted["metadata"], "name": "someone-else"}}


@dataclass
class ConversionWebhook:
    """HTTPS on 127.0.0.1; records every ConversionReview request per path."""

    ca_pem: bytes
    port: int = 0
    seen: dict[str, list[Obj]] = field(default_factory=dict)

    def client_config(self, route: str) -> Obj:
        return {
            "url": f"https://127.0.0.1:{self.port}{route}",
            "caBundle": base64.b64encode(self.ca_pem).decode(),
        }

    def calls(self, route: str = "/convert") -> list[Obj]:
        return self.seen.get(route, [])

    async def handle(self, request: web.Request) -> web.Response:
        review = await request.json()
        req = review["request"]
        self.seen.setdefault(request.path, []).append(req)
        convert = _renamed if request.path == "/rename" else _convert
        converted = [convert(obj, req["desiredAPIVersion"]) for obj in req["objects"]]
        response: Obj = {"uid": req["uid"], "result": {"status": "Success"}, "convertedObjects": converted}
        if request.path == "/refuse":
            response["result"] = {"status": "Failure", "message": "cannot convert this one"}
        elif request.path == "/drop":
            response["convertedObjects"] = []
        elif request.path == "/same-version":
            response["convertedObjects"] = req["objects"]
        elif request.path == "/other-uid":
            response["uid"] = "not-the-request"
        return web.json_response(
            {"apiVersion": review["apiVersion"], "kind": "ConversionReview", "response": response}
        )


@pytest.fixture
async def webhook(tmp_path: Path) -> AsyncIterator[ConversionWebhook]:
    tls = serving_tls(tmp_path, "conversion-webhook-test-ca", f"converter.{NS}.svc")
    server = ConversionWebhook(tls.ca_pem)
    app = web.Application()
    app.router.add_post("/{route:.*}", server.handle)
    async with serving(app, tls.context) as port:
        server.port = port
        yield server


# -- the API server -------------------------------------------------------------------------------


def _version(name: str, *, storage: bool, properties: Obj) -> Obj:
    schema = {"type": "object", "properties": properties}
    return {"name": name, "served": True, "storage": storage, "schema": {"openAPIV3Schema": schema}}


def versions(storage: str) -> list[Obj]:
    return [
        _version("v1", storage=storage == "v1", properties={"hostPort": {"type": "string"}}),
        _version(
            "v2", storage=storage == "v2", properties={"host": {"type": "string"}, "port": {"type": "string"}}
        ),
    ]


def hostport_crd(client_config: Obj) -> Obj:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": "hostports", "singular": "hostport", "kind": "HostPort"},
            "versions": versions("v1"),
            "conversion": {
                "strategy": "Webhook",
                "webhook": {"clientConfig": client_config, "conversionReviewVersions": ["v1", "v1beta1"]},
            },
        },
    }


def v1_object(name: str) -> Obj:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "HostPort",
        "metadata": {"name": name},
        "hostPort": "localhost:8080",
    }


@dataclass
class Cluster:
    store: ObjectStore
    client: TestClient[Any, Any]

    async def json(self, method: str, url: str, body: Any = None, *, status: int = 200, **kwargs: Any) -> Any:
        response = await self.request(method, url, body, **kwargs)
        text = await response.text()
        assert response.status == status, text
        return json.loads(text) if text else None

    async def request(self, method: str, url: str, body: Any = None, **kwargs: Any) -> ClientResponse:
        if body is not None:
            kwargs["data"] = json.dumps(body)
            kwargs.setdefault("headers", {}).setdefault("Content-Type", "application/json")
        return await self.client.request(method, url, **kwargs)

    async def stored(self, name: str) -> Obj:
        """The object as the backend holds it."""
        resource = self.store.registry.lookup(GROUP, "v1", "hostports")
        assert resource is not None
        kv = await self.store.backend.get(resource.key(NS, name))
        assert kv is not None
        found: Obj = orjson.loads(kv.value)
        return found

    async def serve(self, crd: Obj) -> None:
        """Create ``crd`` and wait until both versions are served with its conversion."""
        await self.json("POST", CRDS, crd, status=201)
        await self.served(crd["spec"]["conversion"]["webhook"], "v1")

    async def served(self, webhook: Obj, storage: str) -> None:
        async def ready() -> bool:
            found = [r for r in self.store.registry.custom() if r.group == GROUP]
            return len(found) == 2 and all(
                r.custom is not None
                and r.custom.conversion_webhook == webhook
                and r.storage_version == f"{GROUP}/{storage}"
                for r in found
            )

        await until(ready)

    async def change_crd(self, change: Callable[[Obj], None], storage: str = "v1") -> None:
        crd: Obj = await self.json("GET", f"{CRDS}/{CRD_NAME}")
        change(crd)
        await self.json("PUT", f"{CRDS}/{CRD_NAME}", crd)
        await self.served(crd["spec"]["conversion"]["webhook"], storage)


async def until(check: Callable[[], Awaitable[bool]], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {within}s")
        await asyncio.sleep(0.02)


@pytest.fixture
async def cluster(backend: Backend) -> AsyncIterator[Cluster]:
    store = ObjectStore(backend, Registry(from_manifest(selection())), ipaddress.ip_network("10.43.0.0/16"))
    webhooks = WebhookClient(store)
    store.conversion = WebhookConverter(webhooks)
    await install_custom_resources(store)
    namespaces = store.registry.lookup("", "v1", "namespaces")
    assert namespaces is not None
    await store.create(namespaces, "", {"metadata": {"name": NS}}, WriteOptions())
    controller = asyncio.create_task(run_crd_controller(store), name="crd-controller")
    try:
        async with TestClient(TestServer(build_app(store))) as client:
            yield Cluster(store, client)
    finally:
        controller.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await controller
        await webhooks.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def assert_v2(obj: Obj, name: str) -> None:
    assert obj["apiVersion"] == f"{GROUP}/v2" and obj["kind"] == "HostPort"
    assert (obj["metadata"]["name"], obj["host"], obj["port"]) == (name, "localhost", "8080")
    assert "hostPort" not in obj


def assert_v1(obj: Obj, name: str) -> None:
    assert obj["apiVersion"] == f"{GROUP}/v1"
    assert (obj["metadata"]["name"], obj["hostPort"]) == (name, "localhost:8080")
    assert "host" not in obj and "port" not in obj


# -- the tests ------------------------------------------------------------------------------------


async def test_created_in_v1_read_in_v2_through_one_review(
    cluster: Cluster, webhook: ConversionWebhook
) -> None:
    await cluster.serve(hostport_crd(webhook.client_config("/convert")))
    created = await cluster.json("POST", path("v1"), v1_object("cr-instance-1"), status=201)
    assert_v1(created, "cr-instance-1")
    assert webhook.calls() == []  # written in the storage version: nothing to convert
    assert (await cluster.stored("cr-instance-1"))["apiVersion"] == f"{GROUP}/v1"

    got = await cluster.json("GET", path("v2", "cr-instance-1"))
    assert_v2(got, "cr-instance-1")
    assert got["metadata"]["labels"] == {"converted-to": "v2"}  # the webhook may change labels
    assert got["metadata"]["generation"] == created["metadata"]["generation"] == 1  # ...nothing else
    assert got["metadata"]["uid"] == created["metadata"]["uid"]
    assert got["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    (call,) = webhook.calls()
    assert call["desiredAPIVersion"] == f"{GROUP}/v2" and call["uid"]
    assert [o["metadata"]["name"] for o in call["objects"]] == ["cr-instance-1"]
    assert call["objects"][0]["apiVersion"] == f"{GROUP}/v1"

    assert_v1(await cluster.json("GET", path("v1", "cr-instance-1")), "cr-instance-1")
    assert len(webhook.calls()) == 1  # read in the version it is stored in: not sent


async def test_written_in_v2_is_stored_in_v1(cluster: Cluster, webhook: ConversionWebhook) -> None:
    await cluster.serve(hostport_crd(webhook.client_config("/convert")))
    body = {
        "apiVersion": f"{GROUP}/v2",
        "kind": "HostPort",
        "metadata": {"name": "written-in-v2"},
        "host": "localhost",
        "port": "8080",
    }
    created = await cluster.json("POST", path("v2"), body, status=201)
    assert_v2(created, "written-in-v2")
    stored = await cluster.stored("written-in-v2")
    assert stored["apiVersion"] == f"{GROUP}/v1" and stored["hostPort"] == "localhost:8080"
    assert "host" not in stored and stored["metadata"]["labels"] == {"converted-to": "v1"}
    (call,) = webhook.calls()
    assert call["desiredAPIVersion"] == f"{GROUP}/v1"

    # An update in v2 reads the object in v2, then stores it in v1 again.
    current = await cluster.json("GET", path("v2", "written-in-v2"))
    current["port"] = "9090"
    updated = await cluster.json("PUT", path("v2", "written-in-v2"), current)
    assert (updated["apiVersion"], updated["port"]) == (f"{GROUP}/v2", "9090")
    stored = await cluster.stored("written-in-v2")
    assert (stored["apiVersion"], stored["hostPort"]) == (f"{GROUP}/v1", "localhost:9090")
    assert [c["desiredAPIVersion"].rpartition("/")[2] for c in webhook.calls()] == ["v1", "v2", "v2", "v1"]

    await cluster.json("DELETE", path("v2", "written-in-v2"))
    await cluster.json("GET", path("v1", "written-in-v2"), status=404)


async def test_a_list_of_objects_stored_in_both_versions(
    cluster: Cluster, webhook: ConversionWebhook
) -> None:
    await cluster.serve(hostport_crd(webhook.client_config("/convert")))
    await cluster.json("POST", path("v1"), v1_object("cr-instance-1"), status=201)

    def storage_v2(crd: Obj) -> None:
        crd["spec"]["versions"] = versions("v2")

    await cluster.change_crd(storage_v2, storage="v2")
    await cluster.json("POST", path("v1"), v1_object("cr-instance-2"), status=201)
    assert (await cluster.stored("cr-instance-1"))["apiVersion"] == f"{GROUP}/v1"
    assert (await cluster.stored("cr-instance-2"))["apiVersion"] == f"{GROUP}/v2"
    before = len(webhook.calls())

    listed = await cluster.json("GET", path("v2"))
    assert listed["apiVersion"] == f"{GROUP}/v2" and listed["kind"] == "HostPortList"
    assert [o["metadata"]["name"] for o in listed["items"]] == ["cr-instance-1", "cr-instance-2"]
    for item in listed["items"]:
        assert_v2(item, item["metadata"]["name"])
    listed = await cluster.json("GET", path("v1"))
    for item in listed["items"]:
        assert_v1(item, item["metadata"]["name"])
    # One review per list, carrying only the objects stored in the other version.
    sent = [
        (c["desiredAPIVersion"], [o["metadata"]["name"] for o in c["objects"]])
        for c in webhook.calls()[before:]
    ]
    assert sent == [(f"{GROUP}/v2", ["cr-instance-1"]), (f"{GROUP}/v1", ["cr-instance-2"])]
    crd = await cluster.json("GET", f"{CRDS}/{CRD_NAME}")
    assert crd["status"]["storedVersions"] == ["v1", "v2"]


async def test_watch_events_are_converted(cluster: Cluster, webhook: ConversionWebhook) -> None:
    await cluster.serve(hostport_crd(webhook.client_config("/convert")))
    await cluster.json("POST", path("v1"), v1_object("before-watch"), status=201)
    response = await cluster.request("GET", path("v2"), params={"watch": "1", "timeoutSeconds": "10"})
    assert response.status == 200

    async def event() -> Obj:
        line = await asyncio.wait_for(response.content.readline(), 5)
        found: Obj = json.loads(line)
        return found

    first = await event()
    assert first["type"] == "ADDED"
    assert_v2(first["object"], "before-watch")
    await cluster.json("POST", path("v1"), v1_object("during-watch"), status=201)
    second = await event()
    assert second["type"] == "ADDED"
    assert_v2(second["object"], "during-watch")
    await cluster.json("DELETE", path("v1", "during-watch"))
    third = await event()
    assert third["type"] == "DELETED"
    assert_v2(third["object"], "during-watch")
    response.close()


async def test_a_webhook_that_is_down_fails_reads_and_writes_in_other_versions(
    cluster: Cluster, webhook: ConversionWebhook
) -> None:
    port = closed_port()
    down = {"url": f"https://127.0.0.1:{port}/convert", "caBundle": webhook.client_config("/")["caBundle"]}
    await cluster.serve(hostport_crd(down))
    await cluster.json("POST", path("v1"), v1_object("cr-instance-1"), status=201)
    assert_v1(await cluster.json("GET", path("v1", "cr-instance-1")), "cr-instance-1")

    status = await cluster.json("GET", path("v2", "cr-instance-1"), status=500)
    assert (status["reason"], status["code"]) == ("InternalError", 500)
    assert status["message"] == (
        f"Internal error occurred: conversion webhook for {GROUP}/v1, Kind=HostPort failed: "
        f'Post "https://127.0.0.1:{port}/convert?timeout=30s": '
        f"dial tcp 127.0.0.1:{port}: connect: connection refused"
    )
    status = await cluster.json("GET", path("v2"), status=500)
    assert "conversion webhook for" in status["message"] and "connection refused" in status["message"]
    body = {
        "apiVersion": f"{GROUP}/v2",
        "kind": "HostPort",
        "metadata": {"name": "x"},
        "host": "h",
        "port": "1",
    }
    status = await cluster.json("POST", path("v2"), body, status=500)
    assert "connection refused" in status["message"]
    await cluster.json("GET", path("v1", "x"), status=404)  # nothing was stored


async def test_a_webhook_that_renames_the_object_is_refused(
    cluster: Cluster, webhook: ConversionWebhook
) -> None:
    await cluster.serve(hostport_crd(webhook.client_config("/rename")))
    await cluster.json("POST", path("v1"), v1_object("cr-instance-1"), status=201)
    status = await cluster.json("GET", path("v2", "cr-instance-1"), status=500)
    assert status["message"] == (
        f"Internal error occurred: conversion webhook for {GROUP}/v1, Kind=HostPort returned invalid "
        "converted object at index 0: must have the same name: cr-instance-1 != someone-else"
    )
    assert len(webhook.calls("/rename")) == 1

    def fixed(crd: Obj) -> None:
        crd["spec"]["conversion"]["webhook"]["clientConfig"] = webhook.client_config("/convert")

    await cluster.change_crd(fixed)
    assert_v2(await cluster.json("GET", path("v2", "cr-instance-1")), "cr-instance-1")


@pytest.mark.parametrize(
    ("route", "problem"),
    [
        ("/refuse", "returned invalid response: cannot convert this one"),
        ("/drop", "returned 0 objects, expected 1"),
        (
            "/same-version",
            f"returned invalid converted object at index 0: invalid groupVersion "
            f"(expected {GROUP}/v2, received {GROUP}/v1)",
        ),
        ("/other-uid", 'returned invalid response: expected response.uid="'),
    ],
)
async def test_a_bad_answer_is_an_error_that_says_what_is_wrong(
    cluster: Cluster, webhook: ConversionWebhook, route: str, problem: str
) -> None:
    await cluster.serve(hostport_crd(webhook.client_config(route)))
    await cluster.json("POST", path("v1"), v1_object("cr-instance-1"), status=201)
    status = await cluster.json("GET", path("v2", "cr-instance-1"), status=500)
    prefix = f"Internal error occurred: conversion webhook for {GROUP}/v1, Kind=HostPort "
    assert status["message"].startswith(prefix + problem), status["message"]
    assert len(webhook.calls(route)) == 1


async def test_a_webhook_reached_through_its_service(cluster: Cluster, webhook: ConversionWebhook) -> None:
    """As the conformance test registers it: a Service (port 9443) whose EndpointSlice, written
    here by hand, points at the webhook on 127.0.0.1; the certificate is for converter.default.svc."""
    store = cluster.store
    services = store.registry.lookup("", "v1", "services")
    slices = store.registry.lookup("discovery.k8s.io", "v1", "endpointslices")
    assert services is not None and slices is not None
    service = {"metadata": {"name": "converter"}, "spec": {"ports": [{"port": 9443, "targetPort": 9444}]}}
    await store.create(services, NS, service, WriteOptions())
    endpoint_slice = {
        "metadata": {"name": "converter-abc", "labels": {"kubernetes.io/service-name": "converter"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}],
        "ports": [{"port": webhook.port, "protocol": "TCP"}],
    }
    await store.create(slices, NS, endpoint_slice, WriteOptions())
    by_service = {
        "service": {"namespace": NS, "name": "converter", "path": "/crdconvert", "port": 9443},
        "caBundle": webhook.client_config("/")["caBundle"],
    }
    await cluster.serve(hostport_crd(by_service))
    await cluster.json("POST", path("v1"), v1_object("cr-instance-1"), status=201)
    assert_v2(await cluster.json("GET", path("v2", "cr-instance-1")), "cr-instance-1")
    (call,) = webhook.calls("/crdconvert")
    assert call["desiredAPIVersion"] == f"{GROUP}/v2"


async def test_field_selectors_match_in_the_version_asked_for(
    cluster: Cluster, webhook: ConversionWebhook
) -> None:
    crd = hostport_crd(webhook.client_config("/convert"))
    crd["spec"]["versions"][1]["selectableFields"] = [{"jsonPath": ".host"}, {"jsonPath": ".port"}]
    await cluster.serve(crd)
    for name, host_port in (("a", "host1:80"), ("b", "host1:8080"), ("c", "host2:80")):
        await cluster.json("POST", path("v1"), {**v1_object(name), "hostPort": host_port}, status=201)
    listed = await cluster.json("GET", path("v2"), params={"fieldSelector": "host=host1"})
    assert [o["metadata"]["name"] for o in listed["items"]] == ["a", "b"]
    assert all(o["apiVersion"] == f"{GROUP}/v2" for o in listed["items"])
    listed = await cluster.json("GET", path("v2"), params={"fieldSelector": "host=host1,port=80"})
    assert [o["metadata"]["name"] for o in listed["items"]] == ["a"]


async def test_field_selected_watches_match_in_the_version_asked_for(
    cluster: Cluster, webhook: ConversionWebhook
) -> None:
    crd = hostport_crd(webhook.client_config("/convert"))
    crd["spec"]["versions"][1]["selectableFields"] = [{"jsonPath": ".host"}]
    await cluster.serve(crd)
    rv = (await cluster.json("GET", path("v2")))["metadata"]["resourceVersion"]
    params = {"watch": "1", "timeoutSeconds": "10", "fieldSelector": "host=host1", "resourceVersion": rv}
    response = await cluster.request("GET", path("v2"), params=params)
    assert response.status == 200
    for name, host_port in (("other", "host2:80"), ("mine", "host1:80")):
        await cluster.json("POST", path("v1"), {**v1_object(name), "hostPort": host_port}, status=201)
    line = await asyncio.wait_for(response.content.readline(), 5)
    event = json.loads(line)
    assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "mine")
    assert event["object"]["host"] == "host1"
    response.close()
