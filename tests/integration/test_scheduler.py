"""The scheduler against a real ``k3py server`` process (no agent), through the real client.

The test plays the nodes' part: it creates Node objects and reports them Ready with their
allocatable resources; no kubelet runs. The scheduler under test runs in the test's loop
under its own name, so that a scheduler the server may run itself never takes these pods.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from k3py.client.rest import ApiStatusError, Kubeconfig, RestClient
from k3py.scheduler import Scheduler
from tests.e2e.cluster import Cluster, start, stop

pytestmark = pytest.mark.slow

Obj = dict[str, Any]
NAME = "k3py-test-scheduler"
PODS = "/api/v1/namespaces/default/pods"
WITHIN = 20.0


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    started = start(tmp_path)
    try:
        yield started
    finally:
        stop(started)


@pytest.fixture
async def api(cluster: Cluster) -> AsyncIterator[RestClient]:
    config = Kubeconfig.load(cluster.kubeconfig)
    async with RestClient(config.server, config.credentials) as client:
        await until(lambda: exists(client, "/api/v1/namespaces/default/serviceaccounts/default"))
        yield client
    # TLS connections finish closing on the loop after the session is closed: let them, before
    # the test's loop ends (else their sockets are reported unclosed).
    await asyncio.sleep(0.25)


@pytest.fixture
async def scheduler(api: RestClient) -> AsyncIterator[Scheduler]:
    running = Scheduler(api, name=NAME)
    task = asyncio.create_task(running.run(), name="test-scheduler")
    try:
        yield running
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(check: Callable[[], Awaitable[bool]], within: float = WITHIN) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {within}s")
        await asyncio.sleep(0.1)


async def exists(api: RestClient, path: str) -> bool:
    try:
        await api.get(path)
    except ApiStatusError as exc:
        if exc.code == 404:
            return False
        raise
    return True


async def add_node(api: RestClient, name: str, cpu: str, **spec: Any) -> None:
    labels = spec.pop("labels", {})
    await api.create("/api/v1/nodes", {"metadata": {"name": name, "labels": labels}, "spec": spec})
    status = {
        "capacity": {"cpu": cpu, "memory": "8Gi", "pods": "110"},
        "allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"},
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "ready"}],
    }
    await api.patch(f"/api/v1/nodes/{name}/status", {"status": status})


async def add_pod(api: RestClient, name: str, cpu: str = "100m", **spec: Any) -> None:
    body = {
        "metadata": {"name": name},
        "spec": {
            "schedulerName": NAME,
            "containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": cpu}}}],
            **spec,
        },
    }
    await api.create(PODS, body)


async def node_of(api: RestClient, pod: str) -> str:
    return str((await api.get(f"{PODS}/{pod}"))["spec"].get("nodeName") or "")


async def events_of(api: RestClient, pod: str) -> list[Obj]:
    listed = await api.list("/api/v1/namespaces/default/events", field_selector=f"involvedObject.name={pod}")
    return list(listed["items"])


async def test_pods_are_bound_to_the_nodes_that_fit_them(api: RestClient, scheduler: Scheduler) -> None:
    await add_node(api, "small", "1", labels={"disk": "ssd"})
    await add_node(api, "big", "4")
    await add_node(api, "gpu", "8", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}])
    await add_pod(api, "needs-two-cores", cpu="2")
    await add_pod(api, "wants-ssd", nodeSelector={"disk": "ssd"})
    gpu_only = {"key": "metadata.name", "operator": "In", "values": ["gpu"]}
    await add_pod(
        api,
        "tolerates-gpu",
        tolerations=[{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}],
        affinity={
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchFields": [gpu_only]}]
                }
            }
        },
    )
    await add_pod(api, "not-ours", schedulerName="someone-else")
    await add_pod(api, "gated", schedulingGates=[{"name": "example.com/later"}])

    async def all_bound() -> bool:
        return all([await node_of(api, p) for p in ("needs-two-cores", "wants-ssd", "tolerates-gpu")])

    await until(all_bound)
    assert await node_of(api, "needs-two-cores") == "big"
    assert await node_of(api, "wants-ssd") == "small"
    assert await node_of(api, "tolerates-gpu") == "gpu"
    bound = await api.get(f"{PODS}/needs-two-cores")
    assert {"type": "PodScheduled", "status": "True"}.items() <= bound["status"]["conditions"][0].items()
    [scheduled] = await events_of(api, "needs-two-cores")
    assert (scheduled["type"], scheduled["reason"]) == ("Normal", "Scheduled")
    assert scheduled["message"] == "Successfully assigned default/needs-two-cores to big"
    assert scheduled["involvedObject"]["uid"] == bound["metadata"]["uid"]
    await asyncio.sleep(0.5)
    assert await node_of(api, "not-ours") == ""
    assert await node_of(api, "gated") == ""
    assert await events_of(api, "gated") == []
    await api.patch(f"{PODS}/gated", {"spec": {"schedulingGates": None}})

    async def ungated_bound() -> bool:
        return bool(await node_of(api, "gated"))

    await until(ungated_bound)


async def test_room_taken_by_bound_pods_is_not_given_twice(api: RestClient, scheduler: Scheduler) -> None:
    await add_node(api, "a", "1")
    await add_node(api, "b", "1")
    for i in range(3):
        await add_pod(api, f"p{i}", cpu="600m")

    async def two_bound() -> bool:
        return sum([bool(await node_of(api, f"p{i}")) for i in range(3)]) == 2

    await until(two_bound)
    await asyncio.sleep(1.0)  # the third must stay pending, not squeeze onto a full node
    nodes = sorted([await node_of(api, f"p{i}") for i in range(3)])
    assert nodes == ["", "a", "b"]


async def test_an_unschedulable_pod_is_told_why_and_placed_once_a_node_fits(
    api: RestClient, scheduler: Scheduler
) -> None:
    await add_node(api, "small", "1")
    await add_node(
        api, "tainted", "64", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]
    )
    await add_pod(api, "huge", cpu="16")

    async def failed() -> bool:
        return any(e["reason"] == "FailedScheduling" for e in await events_of(api, "huge"))

    await until(failed)
    [event] = [e for e in await events_of(api, "huge") if e["reason"] == "FailedScheduling"]
    assert event["type"] == "Warning"
    assert event["message"] == (
        "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {dedicated: gpu}. "
        "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
    )
    assert event["source"] == {"component": NAME}
    assert await node_of(api, "huge") == ""

    async def condition_says_why() -> bool:
        pod = await api.get(f"{PODS}/huge")
        conditions = (pod.get("status") or {}).get("conditions") or []
        return any(c["type"] == "PodScheduled" and c.get("reason") == "Unschedulable" for c in conditions)

    await until(condition_says_why)

    # Retried for a change of the pod itself, with the same outcome: the event counts up.
    await api.patch(f"{PODS}/huge", {"metadata": {"labels": {"retry": "1"}}})

    async def counted_twice() -> bool:
        failures = [e for e in await events_of(api, "huge") if e["reason"] == "FailedScheduling"]
        assert len(failures) == 1
        return bool(failures[0]["count"] == 2)

    await until(counted_twice)

    await add_node(api, "large", "32")

    async def placed() -> bool:
        return await node_of(api, "huge") == "large"

    await until(placed)
