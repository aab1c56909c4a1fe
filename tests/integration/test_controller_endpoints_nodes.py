"""The Endpoints, EndpointSlice and node lifecycle controllers against a real ``k3py server`` (no agent).

The test plays the kubelets' part: it creates Node objects and their Leases, renews the Leases
(or stops), and reports its pods Running and Ready (or not) with an IP. The controllers run in
the test's loop through the real client with admin credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import pytest

from k3py.client.rest import ApiStatusError, RestClient
from k3py.controllers.endpoints import EndpointsController
from k3py.controllers.endpointslice import EndpointSliceController
from k3py.controllers.nodelifecycle import NodeLifecycleController
from tests.integration.api_support import exists, running, until

pytestmark = pytest.mark.slow

Obj = dict[str, Any]
PODS = "/api/v1/namespaces/default/pods"
SERVICES = "/api/v1/namespaces/default/services"
ENDPOINTS = "/api/v1/namespaces/default/endpoints"
SLICES = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"
LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() % 1 * 1e6):06d}Z"


async def add_pod(api: RestClient, name: str, node: str = "n1", **spec: Any) -> None:
    body = {
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {
            "nodeName": node,
            "containers": [
                {"name": "c", "image": "busybox", "ports": [{"name": "http", "containerPort": 8080}]}
            ],
            **spec,
        },
    }
    await api.create(PODS, body)


async def report(api: RestClient, name: str, ip: str, ready: bool) -> None:
    """What the kubelet would post: Running, with an IP, Ready or not."""
    flag = "True" if ready else "False"
    status = {
        "phase": "Running",
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "conditions": [
            {"type": "Ready", "status": flag, "lastTransitionTime": now()[:19] + "Z"},
            {"type": "ContainersReady", "status": flag},
        ],
    }
    await api.patch(f"{PODS}/{name}/status", {"status": status})


async def endpoints_of(api: RestClient, name: str) -> Obj | None:
    try:
        return await api.get(f"{ENDPOINTS}/{name}")
    except ApiStatusError as exc:
        if exc.code == 404:
            return None
        raise


def ips(endpoints: Obj | None, field: str) -> list[str]:
    return [a["ip"] for s in (endpoints or {}).get("subsets") or [] for a in s.get(field) or []]


async def slices_of(api: RestClient, service: str) -> list[Obj]:
    listed = await api.list(SLICES, label_selector=f"kubernetes.io/service-name={service}")
    return list(listed["items"])


async def slice_endpoints(api: RestClient, service: str) -> dict[str, Obj]:
    return {
        e["addresses"][0]: e["conditions"]
        for s in await slices_of(api, service)
        for e in s.get("endpoints") or []
    }


async def test_endpoints_and_slices_follow_the_pods(api: RestClient) -> None:
    ports = [{"name": "web", "port": 80, "targetPort": "http"}]
    service = await api.create(
        SERVICES,
        {
            "metadata": {"name": "web", "labels": {"tier": "front"}},
            "spec": {"selector": {"app": "web"}, "ports": ports},
        },
    )
    await api.create(SERVICES, {"metadata": {"name": "manual"}, "spec": {"ports": [{"port": 80}]}})
    await add_pod(api, "web-1")
    await add_pod(api, "web-2")
    await add_pod(api, "pending")  # never gets an IP: listed nowhere
    await report(api, "web-1", "10.42.0.11", ready=True)
    await report(api, "web-2", "10.42.0.12", ready=False)
    # Left over from a Service deleted while no controller ran; and one a user keeps by hand.
    ours = {"endpoints.kubernetes.io/managed-by": "endpoint-controller"}
    await api.create(ENDPOINTS, {"metadata": {"name": "stale", "labels": ours}})
    await api.create(ENDPOINTS, {"metadata": {"name": "by-hand"}})

    async with running(EndpointsController(api), EndpointSliceController(api)):
        await until(lambda: gone(api, f"{ENDPOINTS}/stale"))
        assert await exists(api, f"{ENDPOINTS}/by-hand")

        async def split() -> bool:
            found = await endpoints_of(api, "web")
            return ips(found, "addresses") == ["10.42.0.11"] and ips(found, "notReadyAddresses") == [
                "10.42.0.12"
            ]

        await until(split)
        endpoints = await endpoints_of(api, "web")
        assert endpoints is not None
        await asyncio.sleep(0.5)
        settled = await endpoints_of(api, "web")
        assert settled is not None
        assert settled["metadata"]["resourceVersion"] == endpoints["metadata"]["resourceVersion"]
        [subset] = endpoints["subsets"]
        assert subset["ports"] == [{"name": "web", "port": 8080, "protocol": "TCP"}]
        assert subset["addresses"][0]["nodeName"] == "n1"
        assert subset["addresses"][0]["targetRef"]["kind"] == "Pod"
        assert subset["addresses"][0]["targetRef"]["name"] == "web-1"
        assert endpoints["metadata"]["labels"] == {
            "tier": "front",
            "endpoints.kubernetes.io/managed-by": "endpoint-controller",
        }

        async def sliced() -> bool:
            return await slice_endpoints(api, "web") == {
                "10.42.0.11": {"ready": True, "serving": True, "terminating": False},
                "10.42.0.12": {"ready": False, "serving": False, "terminating": False},
            }

        await until(sliced)
        [slice_] = await slices_of(api, "web")
        assert slice_["metadata"]["name"].startswith("web-")
        assert slice_["addressType"] == "IPv4"
        assert slice_["ports"] == [{"name": "web", "port": 8080, "protocol": "TCP"}]
        assert slice_["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == (
            "endpointslice-controller.k8s.io"
        )
        [owner] = slice_["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"], owner["uid"]) == ("Service", "web", service["metadata"]["uid"])

        # Readiness changes, then a pod terminates (no kubelet finishes it: it stays terminating).
        await report(api, "web-2", "10.42.0.12", ready=True)
        await until(lambda: has_ips(api, "web", ["10.42.0.11", "10.42.0.12"]))
        await api.delete(f"{PODS}/web-1")
        await until(lambda: has_ips(api, "web", ["10.42.0.12"]))

        async def terminating() -> bool:
            found = await slice_endpoints(api, "web")
            return found.get("10.42.0.11") == {"ready": False, "serving": True, "terminating": True}

        await until(terminating)
        await api.delete(f"{PODS}/web-1", {"gracePeriodSeconds": 0})
        await until(lambda: slice_ips_are(api, "web", {"10.42.0.12"}))

        # The Endpoints of a selector-less Service are the user's: none are made.
        assert await endpoints_of(api, "manual") is None
        assert await slices_of(api, "manual") == []

        # Someone deletes the Endpoints: they come back.
        await api.delete(f"{ENDPOINTS}/web")
        await until(lambda: has_ips(api, "web", ["10.42.0.12"]))

        # No pods at all: an empty Endpoints and one placeholder slice.
        await api.delete(f"{PODS}/web-2", {"gracePeriodSeconds": 0})
        await until(lambda: has_ips(api, "web", []))

        async def placeholder() -> bool:
            found = await slices_of(api, "web")
            return len(found) == 1 and not found[0].get("endpoints") and not found[0].get("ports")

        await until(placeholder)

        await api.delete(f"{SERVICES}/web")
        await until(lambda: gone(api, f"{ENDPOINTS}/web"))
        await until(lambda: slice_ips_are(api, "web", set(), count=0))


async def has_ips(api: RestClient, service: str, expected: list[str]) -> bool:
    found = await endpoints_of(api, service)
    return found is not None and ips(found, "addresses") == expected and not ips(found, "notReadyAddresses")


async def slice_ips_are(api: RestClient, service: str, expected: set[str], count: int | None = None) -> bool:
    slices = await slices_of(api, service)
    if count is not None and len(slices) != count:
        return False
    return {e["addresses"][0] for s in slices for e in s.get("endpoints") or []} == expected


async def gone(api: RestClient, path: str) -> bool:
    return not await exists(api, path)


async def test_slices_hold_at_most_their_limit(api: RestClient) -> None:
    ports = [{"port": 80, "targetPort": 8080}]
    await api.create(
        SERVICES, {"metadata": {"name": "many"}, "spec": {"selector": {"app": "web"}, "ports": ports}}
    )
    for i in range(5):
        await add_pod(api, f"p{i}")
        await report(api, f"p{i}", f"10.42.1.{i + 1}", ready=True)
    async with running(EndpointSliceController(api, max_endpoints_per_slice=2)):
        await until(lambda: slice_ips_are(api, "many", {f"10.42.1.{i + 1}" for i in range(5)}, count=3))
        first = {
            s["metadata"]["name"]: s["metadata"]["resourceVersion"] for s in await slices_of(api, "many")
        }
        await asyncio.sleep(1.0)  # settled: no duplicates appear later, nothing is rewritten
        later = await slices_of(api, "many")
        assert {s["metadata"]["name"]: s["metadata"]["resourceVersion"] for s in later} == first
        assert sorted(len(s["endpoints"]) for s in later) == [1, 2, 2]
        # One more pod fills the slice with room instead of making another.
        await add_pod(api, "p5")
        await report(api, "p5", "10.42.1.6", ready=True)
        await until(lambda: slice_ips_are(api, "many", {f"10.42.1.{i + 1}" for i in range(6)}, count=3))


# -- node lifecycle --------------------------------------------------------------------------------


async def add_node(api: RestClient, name: str) -> None:
    await api.create("/api/v1/nodes", {"metadata": {"name": name}})
    await post_ready(api, name)
    await api.create(
        LEASES,
        {
            "metadata": {"name": name},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": now()},
        },
    )


async def post_ready(api: RestClient, name: str) -> None:
    stamp = now()[:19] + "Z"
    ready = {"type": "Ready", "status": "True", "reason": "KubeletReady", "lastHeartbeatTime": stamp}
    await api.patch(f"/api/v1/nodes/{name}/status", {"status": {"conditions": [ready]}}, "strategic")


async def renew(api: RestClient, nodes: set[str]) -> None:
    while True:
        for name in list(nodes):
            await api.patch(f"{LEASES}/{name}", {"spec": {"renewTime": now()}})
        await asyncio.sleep(0.5)


async def taints_of(api: RestClient, node: str) -> set[tuple[str, str]]:
    found = await api.get(f"/api/v1/nodes/{node}")
    return {(t["key"], t["effect"]) for t in found["spec"].get("taints") or []}


async def deleted(api: RestClient, pod: str) -> bool:
    try:
        found = await api.get(f"{PODS}/{pod}")
    except ApiStatusError as exc:
        if exc.code == 404:
            return True
        raise
    return bool(found["metadata"].get("deletionTimestamp"))


async def pod_condition(api: RestClient, pod: str, kind: str) -> Obj:
    found = await api.get(f"{PODS}/{pod}")
    return next((c for c in found["status"].get("conditions") or [] if c["type"] == kind), {})


async def test_a_silent_node_becomes_unknown_is_tainted_and_its_pods_evicted(api: RestClient) -> None:
    alive = {"n1", "n2"}
    await add_node(api, "n1")
    await add_node(api, "n2")
    unreachable = {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}
    await add_pod(api, "short", tolerations=[dict(unreachable, tolerationSeconds=2)])
    await add_pod(api, "forever", tolerations=[unreachable])
    await add_pod(api, "defaulted")  # DefaultTolerationSeconds gives it 300 s
    await add_pod(api, "intolerant", node="n2")
    for i, pod in enumerate(("short", "forever", "defaulted", "intolerant")):
        await report(api, pod, f"10.42.2.{i + 1}", ready=True)
    defaulted = await api.get(f"{PODS}/defaulted")
    assert dict(unreachable, tolerationSeconds=300) in defaulted["spec"]["tolerations"]

    controller = NodeLifecycleController(
        api, node_monitor_period=0.5, node_monitor_grace_period=3.0, node_startup_grace_period=3.0
    )
    renewing = asyncio.create_task(renew(api, alive))
    try:
        async with running(controller):
            await asyncio.sleep(1.0)
            assert await taints_of(api, "n1") == set()
            # A user's NoExecute taint evicts the pods not tolerating it at once.
            await api.patch(
                "/api/v1/nodes/n2",
                {"spec": {"taints": [{"key": "example.com/drain", "effect": "NoExecute"}]}},
            )
            await until(lambda: deleted(api, "intolerant"))
            target = await pod_condition(api, "intolerant", "DisruptionTarget")
            assert (target.get("status"), target.get("reason")) == ("True", "DeletionByTaintManager")
            assert (await pod_condition(api, "intolerant", "Ready")).get("status") == "True"

            alive.discard("n1")  # n1's kubelet goes silent
            stopped = time.monotonic()

            async def unknown() -> bool:
                found = await api.get("/api/v1/nodes/n1")
                ready = next(c for c in found["status"]["conditions"] if c["type"] == "Ready")
                return bool(ready["status"] == "Unknown")

            await until(unknown)
            assert time.monotonic() - stopped >= 2.5
            node = await api.get("/api/v1/nodes/n1")
            ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
            assert (ready["reason"], ready["message"]) == (
                "NodeStatusUnknown",
                "Kubelet stopped posting node status.",
            )
            await until(lambda: has_taints(api, "n1", "node.kubernetes.io/unreachable"))
            await until(lambda: not_ready(api, "forever"))
            await until(lambda: not_ready(api, "defaulted"))
            assert (await pod_condition(api, "defaulted", "ContainersReady")).get("status") == "True"
            await until(lambda: deleted(api, "short"))
            await asyncio.sleep(1.0)
            assert not await deleted(api, "forever")
            assert not await deleted(api, "defaulted")
            assert await taints_of(api, "n2") == {("example.com/drain", "NoExecute")}

            events = await api.list("/api/v1/namespaces/default/events")
            reasons = {(e["involvedObject"]["name"], e["reason"], e["message"]) for e in events["items"]}
            assert ("n1", "NodeNotReady", "Node n1 status is now: NodeNotReady") in reasons
            assert ("defaulted", "NodeNotReady", "Node is not ready") in reasons
            assert ("short", "TaintManagerEviction", "Marking for deletion Pod default/short") in reasons

            # The kubelet is back: the taints go.
            alive.add("n1")
            await post_ready(api, "n1")
            await until(lambda: has_taints(api, "n1"))
    finally:
        renewing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewing


async def has_taints(api: RestClient, node: str, key: str | None = None) -> bool:
    expected = {(key, "NoSchedule"), (key, "NoExecute")} if key else set()
    return await taints_of(api, node) == expected


async def not_ready(api: RestClient, pod: str) -> bool:
    return (await pod_condition(api, pod, "Ready")).get("status") == "False"
