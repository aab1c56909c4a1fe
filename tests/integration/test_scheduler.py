"""The scheduler against a real ``k3py server`` process (no agent), through the real client.

The test plays the nodes' part: it creates Node objects and reports them Ready with their
allocatable resources; no kubelet runs, so the test also finishes the termination of the pods
it sees deleted. The server runs neither its scheduler nor its controllers; the scheduler
under test runs in the test's loop, under its own name all the same.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from k3py.client.rest import RestClient
from k3py.scheduler import Scheduler
from tests.integration.api_support import running, until

pytestmark = pytest.mark.slow

Obj = dict[str, Any]
NAME = "k3py-test-scheduler"
PODS = "/api/v1/namespaces/default/pods"


@pytest.fixture
async def scheduler(api: RestClient) -> AsyncIterator[Scheduler]:
    scheduler = Scheduler(api, name=NAME)
    async with running(scheduler):
        yield scheduler


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


async def add_priority_class(api: RestClient, name: str, value: int) -> None:
    await api.create(
        "/apis/scheduling.k8s.io/v1/priorityclasses", {"metadata": {"name": name}, "value": value}
    )


async def test_a_higher_priority_pod_preempts_a_lower_priority_one(
    api: RestClient, scheduler: Scheduler
) -> None:
    await add_priority_class(api, "low", 10)
    await add_priority_class(api, "high", 1000)
    await add_node(api, "only", "1")
    # The priority is given with its class, as the Priority admission plugin would resolve it.
    await add_pod(api, "low", cpu="800m", priorityClassName="low", priority=10)

    async def low_bound() -> bool:
        return await node_of(api, "low") == "only"

    await until(low_bound)
    await add_pod(api, "high", cpu="800m", priorityClassName="high", priority=1000)
    high_uid = (await api.get(f"{PODS}/high"))["metadata"]["uid"]

    async def low_terminating() -> bool:
        return bool((await api.get(f"{PODS}/low"))["metadata"].get("deletionTimestamp"))

    await until(low_terminating)
    low = await api.get(f"{PODS}/low")
    [target] = [c for c in low["status"]["conditions"] if c["type"] == "DisruptionTarget"]
    assert (target["status"], target["reason"]) == ("True", "PreemptionByScheduler")
    assert target["message"] == f"{NAME}: preempting to accommodate a higher priority pod"
    [preempted] = [e for e in await events_of(api, "low") if e["reason"] == "Preempted"]
    assert preempted["message"] == f"Preempted by pod {high_uid} on node only"
    high = await api.get(f"{PODS}/high")
    assert high["status"]["nominatedNodeName"] == "only"
    assert not high["spec"].get("nodeName")  # the victim still holds its room
    [failed] = [e for e in await events_of(api, "high") if e["reason"] == "FailedScheduling"]
    assert failed["message"] == "0/1 nodes are available: 1 Insufficient cpu."

    # No kubelet runs: the test finishes the victim's termination itself.
    await api.delete(f"{PODS}/low", {"gracePeriodSeconds": 0})

    async def high_bound() -> bool:
        return await node_of(api, "high") == "only"

    await until(high_bound)

    # A pod that may not preempt is told so, and evicts nothing.
    await add_pod(
        api, "polite", cpu="800m", priorityClassName="high", priority=1000, preemptionPolicy="Never"
    )

    async def polite_refused() -> bool:
        return any(e["reason"] == "FailedScheduling" for e in await events_of(api, "polite"))

    await until(polite_refused)
    [refused] = [e for e in await events_of(api, "polite") if e["reason"] == "FailedScheduling"]
    assert refused["message"] == (
        "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never."
    )
    assert not (await api.get(f"{PODS}/high"))["metadata"].get("deletionTimestamp")


async def test_a_pod_waiting_for_its_affinity_follows_the_pod_it_wants(
    api: RestClient, scheduler: Scheduler
) -> None:
    await add_node(api, "a", "4", labels={"kubernetes.io/hostname": "a"})
    await add_node(api, "b", "4", labels={"kubernetes.io/hostname": "b"})
    near_db = {
        "labelSelector": {"matchLabels": {"app": "db"}},
        "topologyKey": "kubernetes.io/hostname",
    }
    await add_pod(
        api, "web", affinity={"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [near_db]}}
    )

    async def web_refused() -> bool:
        return any(e["reason"] == "FailedScheduling" for e in await events_of(api, "web"))

    await until(web_refused)
    [refused] = [e for e in await events_of(api, "web") if e["reason"] == "FailedScheduling"]
    assert refused["message"] == (
        "0/2 nodes are available: 2 node(s) didn't match pod affinity rules. "
        "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
    )
    await api.create(
        PODS,
        {
            "metadata": {"name": "db", "labels": {"app": "db"}},
            "spec": {"schedulerName": NAME, "containers": [{"name": "c", "image": "busybox"}]},
        },
    )

    async def together() -> bool:
        db, web = await node_of(api, "db"), await node_of(api, "web")
        return bool(db) and web == db

    await until(together, within=5.0)  # retried when db is placed, not after the 5-minute sweep
