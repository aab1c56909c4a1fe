"""The StatefulSet and DaemonSet controllers against a real ``k3py server`` (no agent).

The test plays the nodes' part: it creates Node objects, and a fake kubelet marks pods
Running and Ready (binding a DaemonSet's pods to the node their affinity names first, since no
scheduler runs here) and finishes the deletion of pods that are terminating. The controllers
under test run in the test's loop with an admin client.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from k3py.client.rest import ApiStatusError, RestClient
from k3py.controllers.daemonset import DaemonSetController, target_node
from k3py.controllers.statefulset import StatefulSetController
from tests.e2e.cluster import Cluster
from tests.integration.api_support import admin_api, exists, running, until

pytestmark = pytest.mark.slow

Obj = dict[str, Any]
NS = "default"
PODS = f"/api/v1/namespaces/{NS}/pods"


@pytest.fixture
async def api(cluster: Cluster) -> AsyncIterator[RestClient]:
    async with admin_api(cluster, NS) as client:
        yield client


class FakeKubelet:
    """Binds pods pinned to a node, reports them Running and Ready, finishes terminating ones."""

    def __init__(self, api: RestClient) -> None:
        self.api = api
        self.running = asyncio.Event()

    async def run(self) -> None:
        while True:
            await self.running.wait()
            for pod in (await self.api.list(PODS))["items"]:
                with contextlib.suppress(ApiStatusError):
                    await self._tend(pod)
            await asyncio.sleep(0.1)

    async def _tend(self, pod: Obj) -> None:
        name = pod["metadata"]["name"]
        if pod["metadata"].get("deletionTimestamp"):
            await self.api.delete(f"{PODS}/{name}", {"gracePeriodSeconds": 0})
            return
        if pod.get("status", {}).get("phase") in ("Failed", "Succeeded"):
            return
        node = target_node(pod)
        if not pod["spec"].get("nodeName") and node:
            binding = {"metadata": {"name": name}, "target": {"kind": "Node", "name": node}}
            await self.api.create(f"{PODS}/{name}/binding", binding)
        if pod.get("status", {}).get("phase") != "Running":
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            ready = {"type": "Ready", "status": "True", "lastTransitionTime": now}
            status = {"phase": "Running", "conditions": [ready], "startTime": now}
            await self.api.patch(f"{PODS}/{name}/status", {"status": status})


@pytest.fixture
async def kubelet(api: RestClient) -> AsyncIterator[FakeKubelet]:
    fake = FakeKubelet(api)
    task = asyncio.create_task(fake.run(), name="fake-kubelet")
    try:
        yield fake
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def pods(api: RestClient, selector: str) -> list[Obj]:
    return list((await api.list(PODS, label_selector=selector))["items"])


async def events(api: RestClient, name: str) -> list[tuple[str, str]]:
    listed = await api.list(f"/api/v1/namespaces/{NS}/events", field_selector=f"involvedObject.name={name}")
    ordered = sorted(listed["items"], key=lambda e: int(e["metadata"]["resourceVersion"]))
    return [(e["reason"], e["message"]) for e in ordered]


async def add_node(api: RestClient, name: str, **spec: Any) -> None:
    await api.create("/api/v1/nodes", {"metadata": {"name": name, "labels": {"zone": "a"}}, "spec": spec})
    status = {
        "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
        "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "ready"}],
    }
    await api.patch(f"/api/v1/nodes/{name}/status", {"status": status})


def template(app: str, image: str) -> Obj:
    return {
        "metadata": {"labels": {"app": app}},
        "spec": {"containers": [{"name": "c", "image": image, "volumeMounts": []}]},
    }


STATEFULSET = {
    "metadata": {"name": "web"},
    "spec": {
        "replicas": 2,
        "serviceName": "web",
        "selector": {"matchLabels": {"app": "web"}},
        "template": template("web", "busybox:1"),
        "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Retain"},
        "volumeClaimTemplates": [
            {
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
            }
        ],
    },
}


async def test_statefulset_creates_pods_in_order_with_their_claims(
    cluster: Cluster, api: RestClient, kubelet: FakeKubelet
) -> None:
    sets = f"/apis/apps/v1/namespaces/{NS}/statefulsets"
    sts = await api.create(sets, STATEFULSET)
    async with running(StatefulSetController(api)):
        await until(lambda: exists(api, f"{PODS}/web-0"))
        await asyncio.sleep(1.0)
        assert [p["metadata"]["name"] for p in await pods(api, "app=web")] == ["web-0"], (
            "web-1 before web-0 is Ready"
        )

        kubelet.running.set()
        await until(lambda: exists(api, f"{PODS}/web-1"))
        web1 = await api.get(f"{PODS}/web-1")
        labels = web1["metadata"]["labels"]
        assert labels["statefulset.kubernetes.io/pod-name"] == "web-1"
        assert labels["apps.kubernetes.io/pod-index"] == "1"
        assert labels["controller-revision-hash"].startswith("web-")
        assert (web1["spec"]["hostname"], web1["spec"]["subdomain"]) == ("web-1", "web")
        assert {"name": "data", "persistentVolumeClaim": {"claimName": "data-web-1"}} in web1["spec"][
            "volumes"
        ]
        [owner] = web1["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
            "StatefulSet",
            "web",
            sts["metadata"]["uid"],
            True,
        )
        for ordinal in (0, 1):
            claim = await api.get(f"/api/v1/namespaces/{NS}/persistentvolumeclaims/data-web-{ordinal}")
            assert claim["metadata"]["labels"] == {"app": "web"}
            assert claim["metadata"]["ownerReferences"][0]["uid"] == sts["metadata"]["uid"]
            assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"

        async def settled() -> bool:
            status = (await api.get(f"{sets}/web")).get("status") or {}
            return status.get("readyReplicas") == 2 and status.get("availableReplicas") == 2

        await until(settled)
        status = (await api.get(f"{sets}/web"))["status"]
        assert status["replicas"] == status["currentReplicas"] == status["updatedReplicas"] == 2
        assert status["currentRevision"] == status["updateRevision"] == labels["controller-revision-hash"]
        assert status["observedGeneration"] == 1
        revisions = (await api.list(f"/apis/apps/v1/namespaces/{NS}/controllerrevisions"))["items"]
        assert [(r["metadata"]["name"], r["revision"]) for r in revisions] == [(status["updateRevision"], 1)]
        assert ("SuccessfulCreate", "create Pod web-0 in StatefulSet web successful") in await events(
            api, "web"
        )
        assert (
            "SuccessfulCreate",
            "create Claim data-web-0 Pod web-0 in StatefulSet web success",
        ) in await events(api, "web")

        # A new template rolls out from the highest ordinal down, one pod at a time.
        await api.patch(f"{sets}/web", {"spec": {"template": template("web", "busybox:2")}})

        async def rolled() -> bool:
            status = (await api.get(f"{sets}/web")).get("status") or {}
            return (
                status.get("observedGeneration") == 2
                and status.get("currentRevision") == status.get("updateRevision")
                and status.get("updatedReplicas") == 2
                and status.get("readyReplicas") == 2
            )

        await until(rolled)
        status = (await api.get(f"{sets}/web"))["status"]
        images = {
            p["metadata"]["name"]: p["spec"]["containers"][0]["image"] for p in await pods(api, "app=web")
        }
        assert images == {"web-0": "busybox:2", "web-1": "busybox:2"}
        revisions = (await api.list(f"/apis/apps/v1/namespaces/{NS}/controllerrevisions"))["items"]
        assert sorted(r["revision"] for r in revisions) == [1, 2]
        deleted = [m for r, m in await events(api, "web") if r == "SuccessfulDelete"]
        assert deleted[:2] == [
            "delete Pod web-1 in StatefulSet web successful",
            "delete Pod web-0 in StatefulSet web successful",
        ]

        # kubectl reads the history: undo restores revision 1's template, renumbered as 3.
        first = next(r for r in revisions if r["revision"] == 1)["metadata"]["name"]
        await asyncio.to_thread(cluster.kubectl, "rollout", "undo", "statefulset/web")

        async def undone() -> bool:
            status = (await api.get(f"{sets}/web")).get("status") or {}
            found = await pods(api, "app=web")
            return (
                status.get("currentRevision") == status.get("updateRevision") == first
                and status.get("updatedReplicas") == 2
                and all(p["spec"]["containers"][0]["image"] == "busybox:1" for p in found)
            )

        await until(undone)
        renumbered = await api.get(f"/apis/apps/v1/namespaces/{NS}/controllerrevisions/{first}")
        assert renumbered["revision"] == 3
        history = await asyncio.to_thread(cluster.kubectl, "rollout", "history", "statefulset/web")
        assert [line.split()[0] for line in history.stdout.splitlines()[2:] if line.strip()] == ["2", "3"]

        # Scaling down removes the highest ordinal; its claim stays (whenScaled: Retain).
        await api.patch(f"{sets}/web", {"spec": {"replicas": 1}})

        async def one_left() -> bool:
            return [p["metadata"]["name"] for p in await pods(api, "app=web")] == ["web-0"]

        await until(one_left)
        assert await exists(api, f"/api/v1/namespaces/{NS}/persistentvolumeclaims/data-web-1")


async def test_daemonset_runs_one_pod_per_eligible_node(api: RestClient, kubelet: FakeKubelet) -> None:
    await add_node(api, "n1")
    await add_node(api, "n2", unschedulable=True)
    await add_node(api, "gpu", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}])
    sets = f"/apis/apps/v1/namespaces/{NS}/daemonsets"
    body = {
        "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": template("agent", "busybox:1")},
    }
    ds = await api.create(sets, body)
    kubelet.running.set()
    async with running(DaemonSetController(api)):

        async def placed_on(*nodes: str) -> bool:
            found = await pods(api, "app=agent")
            bound = sorted(p["spec"].get("nodeName") or "" for p in found)
            return bound == sorted(nodes) and all(
                p.get("status", {}).get("phase") == "Running" for p in found
            )

        await until(lambda: placed_on("n1", "n2"))
        await asyncio.sleep(0.5)
        found = await pods(api, "app=agent")
        assert len(found) == 2, "one pod per eligible node, none on the tainted one"
        pod = next(p for p in found if p["spec"]["nodeName"] == "n1")
        assert pod["metadata"]["labels"]["pod-template-generation"] == "1"
        hash_ = pod["metadata"]["labels"]["controller-revision-hash"]
        terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert terms["nodeSelectorTerms"] == [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}
        ]
        tolerated = {(t["key"], t["effect"]) for t in pod["spec"]["tolerations"]}
        assert ("node.kubernetes.io/unschedulable", "NoSchedule") in tolerated
        assert ("node.kubernetes.io/not-ready", "NoExecute") in tolerated
        assert pod["metadata"]["ownerReferences"][0]["uid"] == ds["metadata"]["uid"]
        [revision] = (await api.list(f"/apis/apps/v1/namespaces/{NS}/controllerrevisions"))["items"]
        assert revision["metadata"]["name"] == f"agent-{hash_}"

        async def status_is(**wanted: int) -> bool:
            status = (await api.get(f"{sets}/agent")).get("status") or {}
            return all(status.get(k, 0) == v for k, v in wanted.items())

        await until(
            lambda: status_is(
                desiredNumberScheduled=2,
                currentNumberScheduled=2,
                numberReady=2,
                numberAvailable=2,
                updatedNumberScheduled=2,
                numberMisscheduled=0,
                numberUnavailable=0,
                observedGeneration=1,
            )
        )
        assert ("SuccessfulCreate", f"Created pod: {pod['metadata']['name']}") in await events(api, "agent")

        # A failed pod is deleted and replaced.
        failed = pod["metadata"]["name"]
        await api.patch(f"{PODS}/{failed}/status", {"status": {"phase": "Failed"}})

        async def replaced() -> bool:
            names = {p["metadata"]["name"] for p in await pods(api, "app=agent")}
            return failed not in names and await placed_on("n1", "n2")

        await until(replaced)
        message = f"Found failed daemon pod {NS}/{failed} on node n1, will try to kill it"
        assert ("FailedDaemonPod", message) in await events(api, "agent")

        # A new node gets its pod; a new template replaces every pod.
        await add_node(api, "n3")
        await until(lambda: placed_on("n1", "n2", "n3"))
        await api.patch(f"{sets}/agent", {"spec": {"template": template("agent", "busybox:2")}})

        async def updated() -> bool:
            found = await pods(api, "app=agent")
            return (
                len(found) == 3
                and all(p["spec"]["containers"][0]["image"] == "busybox:2" for p in found)
                and await status_is(updatedNumberScheduled=3, numberAvailable=3, observedGeneration=2)
            )

        await until(updated)
        found = await pods(api, "app=agent")
        assert {p["metadata"]["labels"]["pod-template-generation"] for p in found} == {"2"}
        assert sorted(p["spec"]["nodeName"] for p in found) == ["n1", "n2", "n3"]
        assert any(r == "SuccessfulDelete" for r, _ in await events(api, "agent"))


async def test_daemonset_revisions_through_a_controllerrevision_lifecycle(
    api: RestClient, kubelet: FakeKubelet
) -> None:
    """Upstream's ControllerRevision lifecycle: revisions written by hand next to the controller's."""
    await add_node(api, "n1")
    sets = f"/apis/apps/v1/namespaces/{NS}/daemonsets"
    revisions = f"/apis/apps/v1/namespaces/{NS}/controllerrevisions"
    body = {
        "metadata": {"name": "life", "labels": {"daemonset-name": "life"}},
        "spec": {"selector": {"matchLabels": {"app": "life"}}, "template": template("life", "busybox:1")},
    }
    ds = await api.create(sets, body)
    kubelet.running.set()

    async def count_is(n: int) -> bool:
        listed = await api.list(revisions, label_selector="app=life")
        return len(listed["items"]) == n

    async def settled() -> bool:
        status = (await api.get(f"{sets}/life")).get("status") or {}
        return status.get("numberReady") == 1 and status.get("observedGeneration") == 1

    async with running(DaemonSetController(api)):
        await until(lambda: count_is(1))
        await until(settled)  # as upstream's test checks the set's status first
        await asyncio.sleep(1)
        [initial] = (await api.list(revisions))["items"]
        handmade = {
            "metadata": {
                "name": "life-5f8c7d9b6",
                "labels": {"app": "life", "controller-revision-hash": "5f8c7d9b6"},
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "DaemonSet",
                        "name": "life",
                        "uid": ds["metadata"]["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "data": initial["data"],
            "revision": initial["revision"] + 1,
        }
        await api.create(revisions, handmade)
        await until(lambda: count_is(2))
        await api.delete(f"{revisions}/{initial['metadata']['name']}")
        await until(lambda: count_is(1))
        await asyncio.sleep(1)
        [kept] = (await api.list(revisions))["items"]
        assert kept["metadata"]["name"] == "life-5f8c7d9b6", "a handmade revision of the template is current"
        updated = {"metadata": {"labels": {"life-5f8c7d9b6": "updated"}}}
        await api.patch(f"{revisions}/life-5f8c7d9b6", updated)
        patch = {"spec": {"template": {"spec": {"terminationGracePeriodSeconds": 1}}}}
        await api.patch(f"{sets}/life", patch, "strategic")
        await until(lambda: count_is(2))
        await api.delete(f"{revisions}?labelSelector=life-5f8c7d9b6%3Dupdated")
        await until(lambda: count_is(1))
        await asyncio.sleep(1)
        [last] = (await api.list(revisions))["items"]
        assert last["revision"] == 3
        assert last["data"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 1
