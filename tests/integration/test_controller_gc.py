"""The garbage collector, the namespace controller and the pod garbage collector against a real
``k3py server`` (no agent), driven by the real kubectl.

The test plays the kubelet: pods are bound to Node objects it creates, and a pod the controllers
delete gracefully is finished by the test (deleted with grace period 0). The controllers run in
the test's loop; kubectl runs in a thread so that they keep working while it waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator
from typing import Any

import pytest

from k3py.client.rest import ApiStatusError, RestClient
from k3py.controllers.base import Controller
from k3py.controllers.garbagecollector import ApiResource, GarbageCollector
from k3py.controllers.namespace import NamespaceController
from k3py.controllers.podgc import PodGarbageCollector
from tests.e2e.cluster import Cluster
from tests.integration.api_support import admin_api, exists, running, until

pytestmark = pytest.mark.slow

Obj = dict[str, Any]
PODS = "/api/v1/namespaces/default/pods"
REPLICASETS = "/apis/apps/v1/namespaces/default/replicasets"
NODE = "node-a"


@pytest.fixture
async def api(cluster: Cluster) -> AsyncIterator[RestClient]:
    async with admin_api(cluster) as client:
        await client.create("/api/v1/nodes", {"metadata": {"name": NODE}})
        yield client


@pytest.fixture
async def gc(api: RestClient) -> AsyncIterator[Controller]:
    controller = GarbageCollector(api)
    async with running(controller):
        yield controller


async def kubectl(cluster: Cluster, *args: str) -> str:
    done = await asyncio.to_thread(cluster.kubectl, *args)
    return done.stdout


async def replica_set(api: RestClient, name: str, pods: int) -> tuple[Obj, list[str]]:
    """A ReplicaSet (no replicas of its own) and ``pods`` pods it owns, bound to the node.

    The pods' labels do not match its selector and its references to them are not controller
    references, so that a ReplicaSet controller would neither adopt nor release them.
    """
    body = {
        "metadata": {"name": name},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    }
    rs = await api.create(REPLICASETS, body)
    ref = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "name": name,
        "uid": rs["metadata"]["uid"],
        "controller": False,
        "blockOwnerDeletion": True,
    }
    names = [f"{name}-{i}" for i in range(pods)]
    for pod in names:
        await api.create(
            PODS,
            {
                "metadata": {"name": pod, "labels": {"owned-by": name}, "ownerReferences": [ref]},
                "spec": {"nodeName": NODE, "containers": [{"name": "c", "image": "busybox"}]},
            },
        )
    return rs, names


async def get(api: RestClient, path: str) -> Obj | None:
    try:
        return await api.get(path)
    except ApiStatusError as exc:
        if exc.code == 404:
            return None
        raise


async def terminating(api: RestClient, path: str) -> bool:
    found = await get(api, path)
    return found is not None and bool(found["metadata"].get("deletionTimestamp"))


async def finish(api: RestClient, path: str) -> None:
    """What the kubelet does once a pod's containers stopped: delete it for good."""
    with contextlib.suppress(ApiStatusError):
        await api.delete(path, {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0})


async def gone(api: RestClient, path: str) -> bool:
    return not await exists(api, path)


async def test_background_cascade_deletes_the_pods_after_their_owner(
    cluster: Cluster, api: RestClient, gc: Controller
) -> None:
    _, pods = await replica_set(api, "web", 2)
    await kubectl(cluster, "delete", "replicaset", "web", "--cascade=background")
    assert await gone(api, f"{REPLICASETS}/web")  # the owner goes at once
    for pod in pods:
        await until(functools.partial(terminating, api, f"{PODS}/{pod}"))  # graceful: the kubelet finishes
        await finish(api, f"{PODS}/{pod}")
    for pod in pods:
        await until(functools.partial(gone, api, f"{PODS}/{pod}"))


async def test_foreground_cascade_keeps_the_owner_until_its_pods_are_gone(
    cluster: Cluster, api: RestClient, gc: Controller
) -> None:
    _, pods = await replica_set(api, "fg", 2)
    waiting = asyncio.create_task(kubectl(cluster, "delete", "replicaset", "fg", "--cascade=foreground"))
    for pod in pods:
        await until(functools.partial(terminating, api, f"{PODS}/{pod}"))
    owner = await api.get(f"{REPLICASETS}/fg")
    assert owner["metadata"]["deletionTimestamp"]
    assert owner["metadata"]["finalizers"] == ["foregroundDeletion"]
    await finish(api, f"{PODS}/{pods[0]}")
    await asyncio.sleep(1.0)
    assert await exists(api, f"{REPLICASETS}/fg"), "the owner went while a dependent remained"
    assert not waiting.done()  # kubectl waits for the owner to go
    await finish(api, f"{PODS}/{pods[1]}")
    await until(lambda: gone(api, f"{REPLICASETS}/fg"))
    await asyncio.wait_for(waiting, 30)


async def test_a_dependent_with_another_valid_owner_outlives_a_foreground_deletion(
    api: RestClient, gc: Controller
) -> None:
    doomed, pods = await replica_set(api, "doomed", 4)
    stays, _ = await replica_set(api, "stays", 0)
    shared, alone = pods[:2], pods[2:]
    ref = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "stays", "uid": stays["metadata"]["uid"]}
    for pod in shared:  # as upstream's test does: the patch merges by uid, so both owners stay
        await api.patch(f"{PODS}/{pod}", {"metadata": {"ownerReferences": [ref]}}, "strategic")
    options = {
        "kind": "DeleteOptions",
        "apiVersion": "v1",
        "propagationPolicy": "Foreground",
        "preconditions": {"uid": doomed["metadata"]["uid"]},
    }
    await api.delete(f"{REPLICASETS}/doomed", options)
    for pod in alone:
        await until(functools.partial(terminating, api, f"{PODS}/{pod}"))
        await finish(api, f"{PODS}/{pod}")
    await until(functools.partial(gone, api, f"{REPLICASETS}/doomed"))
    for pod in shared:
        found = await api.get(f"{PODS}/{pod}")
        assert not found["metadata"].get("deletionTimestamp")
        assert [r["uid"] for r in found["metadata"]["ownerReferences"]] == [stays["metadata"]["uid"]]


async def test_a_reference_added_after_the_graph_last_saw_the_dependent_keeps_it(api: RestClient) -> None:
    """The collector judges a dependent as it is now: its graph still shows the pod owned only by
    an owner waiting for its dependents, but a second, valid owner was added meanwhile."""
    doomed, pods = await replica_set(api, "waits", 1)
    stays, _ = await replica_set(api, "valid", 0)
    stale = await api.get(f"{PODS}/{pods[0]}")
    ref = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "valid", "uid": stays["metadata"]["uid"]}
    await api.patch(f"{PODS}/{pods[0]}", {"metadata": {"ownerReferences": [ref]}}, "strategic")
    options = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Foreground"}
    await api.delete(f"{REPLICASETS}/waits", options)  # no collector runs: it stays, waiting
    replicasets = ApiResource("apps", "v1", "replicasets", "ReplicaSet", True, frozenset({"get", "delete"}))
    pods_resource = ApiResource("", "v1", "pods", "Pod", True, frozenset({"get", "delete"}))
    gc = GarbageCollector(api)
    gc.observe(replicasets, None, await api.get(f"{REPLICASETS}/waits"))
    gc.observe(replicasets, None, stays)
    gc.observe(pods_resource, None, stale)
    await gc.sync(("", stale["metadata"]["uid"]))
    found = await api.get(f"{PODS}/{pods[0]}")
    assert not found["metadata"].get("deletionTimestamp")
    assert [r["uid"] for r in found["metadata"]["ownerReferences"]] == [stays["metadata"]["uid"]]
    assert doomed["metadata"]["uid"] not in {r["uid"] for r in found["metadata"]["ownerReferences"]}


async def test_a_cycle_of_owners_deleted_in_the_foreground_does_not_wait_on_itself(
    api: RestClient, gc: Controller
) -> None:
    pods = {}
    for name in ("p1", "p2", "p3"):
        body = {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
        pods[name] = await api.create(PODS, body)
    for dependent, owner in (("p1", "p3"), ("p2", "p1"), ("p3", "p2")):
        ref = {
            "apiVersion": "v1",
            "kind": "Pod",
            "name": owner,
            "uid": pods[owner]["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
        await api.patch(f"{PODS}/{dependent}", {"metadata": {"ownerReferences": [ref]}}, "strategic")
    options = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Foreground"}
    await api.delete(f"{PODS}/p1", options)

    async def all_gone() -> bool:
        return not (await api.list(PODS))["items"]

    await until(all_gone, within=60)


async def test_orphan_cascade_leaves_the_pods_without_their_owner(
    cluster: Cluster, api: RestClient, gc: Controller
) -> None:
    _, pods = await replica_set(api, "lone", 2)
    await kubectl(cluster, "delete", "replicaset", "lone", "--cascade=orphan")
    assert await gone(api, f"{REPLICASETS}/lone")
    for pod in pods:
        found = await api.get(f"{PODS}/{pod}")
        assert "ownerReferences" not in found["metadata"]
        assert not found["metadata"].get("deletionTimestamp")
    await asyncio.sleep(1.0)  # and they stay
    for pod in pods:
        assert not await terminating(api, f"{PODS}/{pod}")


async def test_a_dependent_whose_owner_never_existed_is_deleted(api: RestClient, gc: Controller) -> None:
    cm = {"metadata": {"name": "kept"}, "data": {"a": "b"}}
    owner = await api.create("/api/v1/namespaces/default/configmaps", cm)
    refs = [
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "ghost", "uid": "0000-ghost"},
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "kept", "uid": owner["metadata"]["uid"]},
    ]
    pod = {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    await api.create(PODS, {**pod, "metadata": {"name": "dangling", "ownerReferences": refs[:1]}})
    await api.create(PODS, {**pod, "metadata": {"name": "half", "ownerReferences": refs}})
    await until(lambda: gone(api, f"{PODS}/dangling"))

    async def unlinked() -> bool:
        found = await api.get(f"{PODS}/half")
        return [r["name"] for r in found["metadata"].get("ownerReferences") or []] == ["kept"]

    await until(unlinked)  # a live owner remains: only the dangling reference goes


CRD = {
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                },
            }
        ],
    },
}
WIDGETS = "/apis/example.com/v1/namespaces/{}/widgets"


async def fill(api: RestClient, namespace: str) -> None:
    """A config map, a custom resource and a pod bound to the node (so deleted gracefully)."""
    await api.create(f"/api/v1/namespaces/{namespace}/configmaps", {"metadata": {"name": "c"}, "data": {}})
    await api.create(
        WIDGETS.format(namespace),
        {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}},
    )
    pod = {"metadata": {"name": "p"}, "spec": {"nodeName": NODE, "containers": [{"name": "c", "image": "x"}]}}
    await api.create(f"/api/v1/namespaces/{namespace}/pods", pod)


async def widgets_served(api: RestClient) -> bool:
    await api.create("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", CRD)

    async def served() -> bool:
        return await exists(api, WIDGETS.format("default"))

    await until(served)
    return True


async def test_kubectl_delete_namespace_waits_until_it_is_emptied_and_gone(
    cluster: Cluster, api: RestClient
) -> None:
    await widgets_served(api)
    await kubectl(cluster, "create", "namespace", "team")
    await fill(api, "team")
    async with running(NamespaceController(api, recheck=0.2)):
        deleting = asyncio.create_task(kubectl(cluster, "delete", "namespace", "team"))
        await until(lambda: terminating(api, "/api/v1/namespaces/team/pods/p"))  # given its grace period
        await asyncio.sleep(1.0)
        # pods go first: the rest stays while the pod terminates
        assert await exists(api, "/api/v1/namespaces/team/configmaps/c")
        assert await exists(api, WIDGETS.format("team") + "/w")
        ns = await api.get("/api/v1/namespaces/team")
        assert ns["status"]["phase"] == "Terminating"
        assert not deleting.done()  # kubectl waits for the namespace to go
        await finish(api, "/api/v1/namespaces/team/pods/p")
        await until(lambda: gone(api, "/api/v1/namespaces/team/configmaps/c"))
        await until(lambda: gone(api, WIDGETS.format("team") + "/w"))
        await asyncio.wait_for(deleting, 30)
        assert await gone(api, "/api/v1/namespaces/team")
    await kubectl(cluster, "create", "namespace", "team")
    left = await kubectl(cluster, "get", "configmaps,pods,widgets", "-n", "team", "-o", "name")
    # nothing from before; the new namespace's own root CA config map may already be there
    assert set(left.split()) <= {"configmap/kube-root-ca.crt"}


async def test_a_namespace_reports_its_progress_and_waits_for_other_finalizers(
    cluster: Cluster, api: RestClient
) -> None:
    hold = "example.com/hold"
    await api.create("/api/v1/namespaces", {"metadata": {"name": "held", "finalizers": [hold]}})
    await api.create("/api/v1/namespaces/held/configmaps", {"metadata": {"name": "c"}, "data": {}})
    pod = {"metadata": {"name": "p"}, "spec": {"nodeName": NODE, "containers": [{"name": "c", "image": "x"}]}}
    await api.create("/api/v1/namespaces/held/pods", pod)
    async with running(NamespaceController(api, recheck=0.2)):
        await kubectl(cluster, "delete", "namespace", "held", "--wait=false")

        async def reported(reason: str) -> bool:
            ns = await api.get("/api/v1/namespaces/held")
            found = {c["type"]: c for c in ns["status"].get("conditions") or []}
            remaining = found.get("NamespaceContentRemaining") or {}
            return ns["status"]["phase"] == "Terminating" and remaining.get("reason") == reason

        await until(lambda: reported("SomeResourcesRemain"))
        ns = await api.get("/api/v1/namespaces/held")
        conditions = {c["type"]: c for c in ns["status"]["conditions"]}
        assert conditions["NamespaceContentRemaining"]["message"] == (
            "Some resources are remaining: pods. has 1 resource instances"
        )
        assert conditions["NamespaceDeletionDiscoveryFailure"]["reason"] == "ResourcesDiscovered"
        assert conditions["NamespaceDeletionContentFailure"]["reason"] == "ContentDeleted"
        assert conditions["NamespaceFinalizersRemaining"]["status"] == "False"
        assert await exists(api, "/api/v1/namespaces/held/configmaps/c")  # pods go first
        assert await terminating(api, "/api/v1/namespaces/held/pods/p")
        assert ns["spec"]["finalizers"] == ["kubernetes"]  # not finalized while content remains
        await finish(api, "/api/v1/namespaces/held/pods/p")
        await until(lambda: reported("ContentRemoved"))
        assert await gone(api, "/api/v1/namespaces/held/configmaps/c")

        async def finalized() -> bool:
            return not (await api.get("/api/v1/namespaces/held")).get("spec", {}).get("finalizers")

        await until(finalized)
        await asyncio.sleep(0.5)
        assert await exists(api, "/api/v1/namespaces/held")  # its own finalizer still holds it
        held = await api.get("/api/v1/namespaces/held")
        held["metadata"]["finalizers"] = []
        await api.update("/api/v1/namespaces/held", held)
        await until(lambda: gone(api, "/api/v1/namespaces/held"))


async def test_without_the_controller_a_deleted_namespace_stays_terminating(
    cluster: Cluster, api: RestClient
) -> None:
    await api.create("/api/v1/namespaces", {"metadata": {"name": "stays"}})
    await api.create("/api/v1/namespaces/stays/configmaps", {"metadata": {"name": "c"}, "data": {}})
    await kubectl(cluster, "delete", "namespace", "stays", "--wait=false")
    ns = await api.get("/api/v1/namespaces/stays")
    assert (ns["status"]["phase"], ns["spec"]["finalizers"]) == ("Terminating", ["kubernetes"])
    assert await exists(api, "/api/v1/namespaces/stays/configmaps/c")
    with pytest.raises(ApiStatusError) as refused:
        await api.create("/api/v1/namespaces/stays/configmaps", {"metadata": {"name": "d"}, "data": {}})
    assert refused.value.code == 403


async def test_pod_gc_removes_excess_terminated_orphaned_and_stuck_pods(api: RestClient) -> None:
    container = {"containers": [{"name": "c", "image": "busybox"}]}
    for name in ("done-1", "done-2", "done-3", "running"):
        await api.create(PODS, {"metadata": {"name": name}, "spec": {"nodeName": NODE, **container}})
        phase = "Running" if name == "running" else "Succeeded"
        await api.patch(f"{PODS}/{name}/status", {"status": {"phase": phase}})
        await asyncio.sleep(1.1)  # creation timestamps are whole seconds: order them
    await api.create(PODS, {"metadata": {"name": "orphan"}, "spec": {"nodeName": "vanished", **container}})
    taint = {"key": "node.kubernetes.io/out-of-service", "value": "nodeshutdown", "effect": "NoExecute"}
    await api.create("/api/v1/nodes", {"metadata": {"name": "down"}, "spec": {"taints": [taint]}})
    ready = [{"type": "Ready", "status": "False", "reason": "KubeletNotReady", "message": "down"}]
    await api.patch("/api/v1/nodes/down/status", {"status": {"conditions": ready}})
    await api.create(PODS, {"metadata": {"name": "stuck"}, "spec": {"nodeName": "down", **container}})
    await api.create(PODS, {"metadata": {"name": "alive"}, "spec": {"nodeName": NODE, **container}})
    await api.delete(f"{PODS}/stuck")
    await api.delete(f"{PODS}/alive")  # terminating on a healthy node: the kubelet's business
    assert await terminating(api, f"{PODS}/stuck")

    collector = PodGarbageCollector(api, terminated_threshold=2, period=0.2, quarantine=1.0)
    async with running(collector):
        await until(lambda: gone(api, f"{PODS}/done-1"))
        await until(lambda: gone(api, f"{PODS}/stuck"))
        await until(lambda: gone(api, f"{PODS}/orphan"))
        await asyncio.sleep(0.5)
    for kept in ("done-2", "done-3", "running", "alive"):
        assert await exists(api, f"{PODS}/{kept}"), kept


async def test_owners_of_kinds_defined_later_are_followed(api: RestClient) -> None:
    collector = GarbageCollector(api, rediscovery_period=0.5)
    async with running(collector):
        assert isinstance(collector, GarbageCollector)
        await widgets_served(api)
        await until(lambda: followed(collector, "widgets.example.com"))
        widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
        owner = await api.create(WIDGETS.format("default"), widget)
        ref = {"apiVersion": "example.com/v1", "kind": "Widget", "name": "w", "uid": owner["metadata"]["uid"]}
        config = {"metadata": {"name": "of-w", "ownerReferences": [ref]}, "data": {}}
        await api.create("/api/v1/namespaces/default/configmaps", config)
        await asyncio.sleep(1.0)
        assert await exists(api, "/api/v1/namespaces/default/configmaps/of-w")  # its owner lives
        await api.delete(WIDGETS.format("default") + "/w")
        await until(lambda: gone(api, "/api/v1/namespaces/default/configmaps/of-w"))
        await api.delete("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com")
        await until(lambda: not_followed(collector, "widgets.example.com"), within=30)


async def followed(collector: GarbageCollector, name: str) -> bool:
    informer = collector.followed.get(name)
    return informer is not None and informer.has_synced


async def not_followed(collector: GarbageCollector, name: str) -> bool:
    return name not in collector.followed
