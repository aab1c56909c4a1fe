"""The EndpointSlice mirroring controller against a real ``k3py server``.

The tests run the controller in the test's loop (the server's controller manager is off), with
admin credentials or as its own ``kube-system/endpointslicemirroring-controller`` service
account; the last one runs it in the server's own controller manager.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import pytest

from k3py.client.rest import ApiStatusError, Credentials, Kubeconfig, RestClient
from k3py.controllers.endpointslicemirroring import (
    MANAGED_BY,
    SKIP_MIRROR_LABEL,
    EndpointSliceMirroringController,
)
from k3py.controllers.manager import CONTROLLERS
from tests.e2e.cluster import Cluster
from tests.integration.api_support import admin_api, running, server, until

pytestmark = pytest.mark.slow

Obj = dict[str, Any]
SERVICES = "/api/v1/namespaces/default/services"
ENDPOINTS = "/api/v1/namespaces/default/endpoints"
SLICES = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
NAME = "example-custom-endpoints"


async def add_service(api: RestClient, name: str, selector: dict[str, str] | None = None) -> Obj:
    spec: Obj = {"ports": [{"name": "example", "port": 80, "protocol": "TCP"}]}
    if selector:
        spec["selector"] = selector
    return await api.create(SERVICES, {"metadata": {"name": name}, "spec": spec})


def endpoints_body(name: str, ip: str, **meta: Any) -> Obj:
    return {
        "metadata": {"name": name, **meta},
        "subsets": [{"ports": [{"port": 80}], "addresses": [{"ip": ip}]}],
    }


async def slices_of(api: RestClient, service: str) -> list[Obj]:
    """Every slice of ``service``, as the e2e test lists them (whoever manages them)."""
    listed = await api.list(SLICES, label_selector=f"{SERVICE_NAME_LABEL}={service}")
    return list(listed["items"])


async def mirrored(api: RestClient, service: str) -> list[Obj]:
    return [
        s
        for s in await slices_of(api, service)
        if s["metadata"]["labels"].get(MANAGED_BY_LABEL) == MANAGED_BY
    ]


def addresses(slices: list[Obj]) -> list[str]:
    return sorted(a for s in slices for e in s.get("endpoints") or [] for a in e["addresses"])


async def mirrors(api: RestClient, service: str, expected: list[str]) -> bool:
    found = await mirrored(api, service)
    return len(found) == (1 if expected else 0) and addresses(found) == expected


async def test_a_custom_endpoints_is_mirrored_through_create_update_and_delete(api: RestClient) -> None:
    await add_service(api, NAME)
    # Another manager's slice of the same Service: never touched.
    foreign = await api.create(
        SLICES,
        {
            "metadata": {
                "name": f"{NAME}-by-hand",
                "labels": {SERVICE_NAME_LABEL: NAME, MANAGED_BY_LABEL: "someone-else"},
            },
            "addressType": "IPv4",
            "ports": [{"name": "", "port": 80, "protocol": "TCP"}],
            "endpoints": [{"addresses": ["10.9.9.9"], "conditions": {"ready": True}}],
        },
    )
    annotations = {"note": "kept", "kubectl.kubernetes.io/last-applied-configuration": "{}"}
    endpoints = await api.create(
        ENDPOINTS, endpoints_body(NAME, "10.1.2.3", labels={"team": "a"}, annotations=annotations)
    )

    async with running(EndpointSliceMirroringController(api)):
        # Mirroring a new custom Endpoints.
        await until(lambda: mirrors(api, NAME, ["10.1.2.3"]))
        [slice_] = await mirrored(api, NAME)
        meta = slice_["metadata"]
        assert meta["name"].startswith(f"{NAME}-")
        assert meta["labels"] == {"team": "a", SERVICE_NAME_LABEL: NAME, MANAGED_BY_LABEL: MANAGED_BY}
        assert meta["annotations"] == {"note": "kept"}
        [owner] = meta["ownerReferences"]
        assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
            "Endpoints",
            NAME,
            endpoints["metadata"]["uid"],
            True,
        )
        assert slice_["addressType"] == "IPv4"
        assert slice_["ports"] == [{"name": "", "port": 80, "protocol": "TCP"}]
        assert slice_["endpoints"] == [{"addresses": ["10.1.2.3"], "conditions": {"ready": True}}]
        await asyncio.sleep(1.0)  # settled: no rewrites of what is already right
        [settled] = await mirrored(api, NAME)
        assert settled["metadata"]["resourceVersion"] == meta["resourceVersion"]

        # Mirroring an update, in place; a not-ready address is mirrored not ready.
        current = await api.get(f"{ENDPOINTS}/{NAME}")
        current["subsets"][0]["addresses"] = [{"ip": "10.2.3.4", "hostname": "h1", "nodeName": "n1"}]
        current["subsets"][0]["notReadyAddresses"] = [{"ip": "10.2.3.5"}, {"ip": "bogus"}]
        await api.update(f"{ENDPOINTS}/{NAME}", current)
        await until(lambda: mirrors(api, NAME, ["10.2.3.4", "10.2.3.5"]))
        [updated] = await mirrored(api, NAME)
        assert updated["metadata"]["name"] == meta["name"]
        assert updated["endpoints"] == [
            {"addresses": ["10.2.3.4"], "conditions": {"ready": True}, "hostname": "h1", "nodeName": "n1"},
            {"addresses": ["10.2.3.5"], "conditions": {"ready": False}},
        ]

        async def invalid_reported() -> bool:
            events = await api.list("/api/v1/namespaces/default/events")
            return any(e.get("reason") == "InvalidIPAddress" for e in events["items"])

        await until(invalid_reported)

        # Mirroring the deletion.
        await api.delete(f"{ENDPOINTS}/{NAME}")
        await until(lambda: mirrors(api, NAME, []))
        [left] = await slices_of(api, NAME)
        assert left["metadata"]["name"] == foreign["metadata"]["name"]
        assert left["metadata"]["resourceVersion"] == foreign["metadata"]["resourceVersion"]


async def test_only_selectorless_services_are_mirrored(api: RestClient) -> None:
    await add_service(api, "manual")
    await add_service(api, "selecting", {"app": "web"})
    await api.create(ENDPOINTS, endpoints_body("manual", "10.0.0.1"))
    await api.create(ENDPOINTS, endpoints_body("selecting", "10.0.0.2"))
    await api.create(ENDPOINTS, endpoints_body("orphan", "10.0.0.3"))  # no Service at all

    async with running(EndpointSliceMirroringController(api)):
        await until(lambda: mirrors(api, "manual", ["10.0.0.1"]))
        await asyncio.sleep(1.0)  # the other two were queued as long
        assert await slices_of(api, "selecting") == []
        assert await slices_of(api, "orphan") == []

        # The Service gains a selector: its mirror goes; loses it: the mirror is back.
        service = await api.get(f"{SERVICES}/manual")
        service["spec"]["selector"] = {"app": "web"}
        await api.update(f"{SERVICES}/manual", service)
        await until(lambda: mirrors(api, "manual", []))
        await api.patch(f"{SERVICES}/manual", {"spec": {"selector": None}})
        await until(lambda: mirrors(api, "manual", ["10.0.0.1"]))

        # The Service goes: so does the mirror, though the Endpoints stays.
        await api.delete(f"{SERVICES}/manual")
        await until(lambda: mirrors(api, "manual", []))

        # A Service for the orphan appears: it is mirrored.
        await add_service(api, "orphan")
        await until(lambda: mirrors(api, "orphan", ["10.0.0.3"]))


async def test_the_skip_label_removes_and_withholds_mirrors(api: RestClient) -> None:
    await add_service(api, "skipped")
    await api.create(ENDPOINTS, endpoints_body("skipped", "10.0.0.1"))

    async with running(EndpointSliceMirroringController(api)):
        await until(lambda: mirrors(api, "skipped", ["10.0.0.1"]))
        await api.patch(f"{ENDPOINTS}/skipped", {"metadata": {"labels": {SKIP_MIRROR_LABEL: "true"}}})
        await until(lambda: mirrors(api, "skipped", []))
        await api.patch(f"{ENDPOINTS}/skipped", {"metadata": {"labels": {SKIP_MIRROR_LABEL: None}}})
        await until(lambda: mirrors(api, "skipped", ["10.0.0.1"]))


async def as_service_account(api: RestClient, cluster: Cluster, name: str) -> RestClient:
    """A client acting as ``kube-system/<name>``, through a token of that service account."""
    accounts = "/api/v1/namespaces/kube-system/serviceaccounts"
    with contextlib.suppress(ApiStatusError):
        await api.create(accounts, {"metadata": {"name": name}})
    review = await api.create(f"{accounts}/{name}/token", {"spec": {"expirationSeconds": 3600}})
    config = Kubeconfig.load(cluster.kubeconfig)
    ca = config.credentials.ca_pem
    return RestClient(config.server, Credentials(ca, token=review["status"]["token"]))


async def test_the_controllers_own_role_is_enough(api: RestClient, cluster: Cluster) -> None:
    await add_service(api, NAME)
    await api.create(ENDPOINTS, endpoints_body(NAME, "10.1.2.3"))
    own = await as_service_account(api, cluster, EndpointSliceMirroringController.identity)
    async with own, running(EndpointSliceMirroringController(own)):
        await until(lambda: mirrors(api, NAME, ["10.1.2.3"]))
        current = await api.get(f"{ENDPOINTS}/{NAME}")
        current["subsets"][0]["addresses"] = [{"ip": "10.2.3.4"}, {"ip": "bogus"}]
        await api.update(f"{ENDPOINTS}/{NAME}", current)
        await until(lambda: mirrors(api, NAME, ["10.2.3.4"]))

        async def invalid_reported() -> bool:
            events = await api.list("/api/v1/namespaces/default/events")
            return any(e.get("reason") == "InvalidIPAddress" for e in events["items"])

        await until(invalid_reported)
        await api.delete(f"{ENDPOINTS}/{NAME}")
        await until(lambda: mirrors(api, NAME, []))
    await asyncio.sleep(0.25)  # let its TLS connections finish closing on this loop


async def test_the_api_servers_own_endpoints_are_not_mirrored(api: RestClient) -> None:
    async with running(EndpointSliceMirroringController(api)):
        # A mirror of a custom Endpoints shows that the controller has synced.
        await add_service(api, NAME)
        await api.create(ENDPOINTS, endpoints_body(NAME, "10.1.2.3"))
        await until(lambda: mirrors(api, NAME, ["10.1.2.3"]))
        await asyncio.sleep(1.0)
        kubernetes = await api.get(f"{ENDPOINTS}/kubernetes")
        assert (kubernetes["metadata"].get("labels") or {}).get(SKIP_MIRROR_LABEL) == "true"
        assert await mirrored(api, "kubernetes") == []


async def test_the_servers_controller_manager_runs_it(tmp_path: Path) -> None:
    assert EndpointSliceMirroringController in CONTROLLERS
    with server(tmp_path, "--disable-scheduler") as cluster:
        async with admin_api(cluster) as api:
            await add_service(api, NAME)
            await api.create(ENDPOINTS, endpoints_body(NAME, "10.1.2.3"))
            await until(lambda: mirrors(api, NAME, ["10.1.2.3"]), within=60.0)
