"""PodDisruptionBudgets end to end: the disruption controller and the ``pods/eviction`` subresource.

The controller runs in the test's loop with admin credentials: first against a real
``k3py server`` process (no agent, no controller manager), then against an API server built
in-process (the generic store and ``build_app`` with the eviction route in front, as the
server wires it) that kubectl 1.37 drains a node through. The test plays the kubelet (pods'
status, the final deletion of terminating pods) and the workload controllers (the objects
that own the pods, the replacement pods); nothing else acts on the pods.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from k3py.api import objects, resources
from k3py.api.resources import Registry, from_manifest, selection
from k3py.apiserver import discovery
from k3py.apiserver.app import build_app
from k3py.apiserver.eviction import eviction_routes
from k3py.apiserver.generic import ObjectStore, WriteOptions
from k3py.client.rest import ApiStatusError, Credentials, Kubeconfig, RestClient
from k3py.controllers import disruption
from k3py.controllers.disruption import DisruptionController
from k3py.storage.model import Backend
from tests.e2e.cluster import Cluster, kubectl_binary
from tests.integration.api_support import running, server, until

pytestmark = pytest.mark.slow

Obj = dict[str, Any]
NS = "default"
PODS = f"/api/v1/namespaces/{NS}/pods"
PDBS = f"/apis/policy/v1/namespaces/{NS}/poddisruptionbudgets"


# -- objects ----------------------------------------------------------------------------------------


def owner(kind: str, name: str, uid: str, api_version: str = "apps/v1") -> Obj:
    return {"apiVersion": api_version, "kind": kind, "name": name, "uid": uid, "controller": True}


def pod(name: str, labels: dict[str, str], *, node: str = "", owned_by: Obj | None = None) -> Obj:
    meta: Obj = {"name": name, "labels": labels}
    if owned_by is not None:
        meta["ownerReferences"] = [owned_by]
    spec: Obj = {"containers": [{"name": "c", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def pdb(name: str, labels: dict[str, str], **spec: Any) -> Obj:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": labels}, **spec},
    }


def template(labels: dict[str, str]) -> Obj:
    return {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


async def report(api: RestClient, name: str, *, ready: bool, phase: str = "Running") -> None:
    """What the kubelet would say of the pod."""
    condition = {"type": "Ready", "status": "True" if ready else "False"}
    body = {"status": {"phase": phase, "conditions": [condition]}}
    await api.patch(f"{PODS}/{name}/status", body)


async def create_pods(
    api: RestClient, names: list[str], labels: dict[str, str], *, node: str = "", owned_by: Obj | None = None
) -> None:
    for name in names:
        await api.create(PODS, pod(name, labels, node=node, owned_by=owned_by))
        await report(api, name, ready=True)


def status_is(api: RestClient, name: str, **expected: Any) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        status = (await api.get(f"{PDBS}/{name}")).get("status") or {}
        return all(status.get(k, 0 if k != "disruptedPods" else None) == v for k, v in expected.items())

    return check


def allowed_condition(budget: Obj) -> Obj:
    found: list[Obj] = [c for c in budget["status"]["conditions"] if c["type"] == "DisruptionAllowed"]
    assert len(found) == 1, found
    return found[0]


# -- the controller against a k3py server -----------------------------------------------------------


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with server(tmp_path, "--disable-controller-manager") as started:
        yield started


@pytest.fixture
async def server_api(cluster: Cluster) -> AsyncIterator[RestClient]:
    config = Kubeconfig.load(cluster.kubeconfig)
    async with RestClient(config.server, config.credentials) as client:
        yield client


async def test_controller_computes_budgets_from_pods_and_their_controllers(server_api: RestClient) -> None:
    api = server_api
    labels = {"app": "web"}
    deployment = await api.create(
        f"/apis/apps/v1/namespaces/{NS}/deployments",
        {
            "metadata": {"name": "web"},
            "spec": {"replicas": 4, "selector": {"matchLabels": labels}, "template": template(labels)},
        },
    )
    rs_owner = owner("Deployment", "web", deployment["metadata"]["uid"])
    replicaset = await api.create(
        f"/apis/apps/v1/namespaces/{NS}/replicasets",
        {
            "metadata": {"name": "web-1", "ownerReferences": [rs_owner]},
            "spec": {"replicas": 3, "selector": {"matchLabels": labels}, "template": template(labels)},
        },
    )
    by_rs = owner("ReplicaSet", "web-1", replicaset["metadata"]["uid"])
    await create_pods(api, ["web-a", "web-b", "web-c"], labels, owned_by=by_rs)

    async with running(DisruptionController(api)):
        # maxUnavailable scales with the Deployment (4), not the ReplicaSet (3) or the pods.
        await api.create(PDBS, pdb("by-max", labels, maxUnavailable="25%"))
        await until(
            status_is(api, "by-max", expectedPods=4, desiredHealthy=3, currentHealthy=3, disruptionsAllowed=0)
        )
        budget = await api.get(f"{PDBS}/by-max")
        assert budget["status"]["observedGeneration"] == budget["metadata"]["generation"]
        condition = allowed_condition(budget)
        assert (condition["status"], condition["reason"]) == ("False", "InsufficientPods")

        # An integer minAvailable counts the pods themselves.
        await api.create(PDBS, pdb("by-min", labels, minAvailable=2))
        await until(
            status_is(api, "by-min", expectedPods=3, desiredHealthy=2, currentHealthy=3, disruptionsAllowed=1)
        )
        condition = allowed_condition(await api.get(f"{PDBS}/by-min"))
        assert (condition["status"], condition["reason"]) == ("True", "SufficientPods")

        # A pod that is no longer Ready is no longer healthy.
        await report(api, "web-c", ready=False)
        await until(status_is(api, "by-min", currentHealthy=2, disruptionsAllowed=0))
        condition = allowed_condition(await api.get(f"{PDBS}/by-min"))
        assert (condition["status"], condition["reason"]) == ("False", "InsufficientPods")

        # A spec change is observed (observedGeneration follows the generation).
        changed = await api.patch(f"{PDBS}/by-min", {"spec": {"minAvailable": "50%"}})
        generation = changed["metadata"]["generation"]
        await until(status_is(api, "by-min", observedGeneration=generation, expectedPods=4, desiredHealthy=2))

        # A percentage over pods of no known controller cannot be computed: SyncFailed.
        config_map = await api.create(f"/api/v1/namespaces/{NS}/configmaps", {"metadata": {"name": "odd"}})
        odd_owner = owner("ConfigMap", "odd", config_map["metadata"]["uid"], api_version="v1")
        await create_pods(api, ["odd-a"], {"app": "odd"}, owned_by=odd_owner)
        await api.create(PDBS, pdb("odd", {"app": "odd"}, minAvailable="50%"))

        async def sync_failed() -> bool:
            status = (await api.get(f"{PDBS}/odd")).get("status") or {}
            reasons = [c.get("reason") for c in status.get("conditions") or []]
            return reasons == ["SyncFailed"] and status.get("disruptionsAllowed") == 0

        await until(sync_failed)
        condition = allowed_condition(await api.get(f"{PDBS}/odd"))
        assert condition["message"] == "configmaps does not implement the scale subresource"


# -- evictions against the API server in-process ----------------------------------------------------


@pytest.fixture
async def served(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    """An API server with the eviction route and ``pods/eviction`` in discovery; its URL."""
    monkeypatch.setattr(resources, "SERVED_SUBRESOURCES", (*resources.SERVED_SUBRESOURCES, "eviction"))
    monkeypatch.setitem(
        discovery.SUBRESOURCES, "eviction", discovery.Subresource(("create",), "policy", "v1", "Eviction")
    )
    store = ObjectStore(backend, Registry(from_manifest(selection())), ipaddress.ip_network("10.43.0.0/16"))
    namespaces = store.registry.lookup("", "v1", "namespaces")
    assert namespaces is not None
    await store.create(namespaces, "", {"metadata": {"name": NS}}, WriteOptions())
    server = TestServer(build_app(store, eviction_routes(store)), host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


@pytest.fixture
async def api(served: str) -> AsyncIterator[RestClient]:
    async with RestClient(served, Credentials()) as client:
        yield client


async def evict(api: RestClient, name: str, query: str = "", **delete_options: Any) -> tuple[int, Obj]:
    body: Obj = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": NS}}
    if delete_options:
        body["deleteOptions"] = delete_options
    try:
        return 201, await api.create(f"{PODS}/{name}/eviction{query}", body)
    except ApiStatusError as exc:
        return exc.code, {"reason": exc.reason, "message": str(exc)}


async def set_budget_status(api: RestClient, name: str, **status: Any) -> Obj:
    """What the disruption controller would have written."""
    budget = await api.get(f"{PDBS}/{name}")
    budget["status"] = {"observedGeneration": budget["metadata"]["generation"], **status}
    return await api.update(f"{PDBS}/{name}/status", budget)


async def gone(api: RestClient, name: str) -> bool:
    try:
        await api.get(f"{PODS}/{name}")
    except ApiStatusError as exc:
        if exc.code == 404:
            return True
        raise
    return False


async def test_eviction_spends_the_budget_and_marks_the_pod(api: RestClient) -> None:
    labels = {"app": "db"}
    await create_pods(api, ["db-a", "db-b", "db-c"], labels, node="node-a")
    await api.create(PDBS, pdb("db", labels, minAvailable=2))
    await set_budget_status(
        api, "db", currentHealthy=3, desiredHealthy=2, expectedPods=3, disruptionsAllowed=1
    )

    # A dry run changes nothing.
    code, _ = await evict(api, "db-a", "?dryRun=All")
    assert code == 201
    assert (await api.get(f"{PDBS}/db"))["status"]["disruptionsAllowed"] == 1
    assert "deletionTimestamp" not in (await api.get(f"{PODS}/db-a"))["metadata"]

    code, answer = await evict(api, "db-a")
    assert code == 201, answer
    assert answer["status"] == "Success"
    status = (await api.get(f"{PDBS}/db"))["status"]
    assert status["disruptionsAllowed"] == 0
    assert list(status["disruptedPods"]) == ["db-a"]
    condition = allowed_condition(await api.get(f"{PDBS}/db"))
    assert (condition["status"], condition["reason"]) == ("False", "InsufficientPods")
    evicted = await api.get(f"{PODS}/db-a")
    assert evicted["metadata"]["deletionTimestamp"]
    assert evicted["metadata"]["deletionGracePeriodSeconds"] == 30
    [target] = [c for c in evicted["status"]["conditions"] if c["type"] == "DisruptionTarget"]
    assert (target["status"], target["reason"], target["message"]) == (
        "True",
        "EvictionByEvictionAPI",
        "Eviction API: evicting",
    )

    # No disruption left: 429 with upstream's words and cause.
    response = await api._session.post(  # type: ignore[union-attr]
        f"{api.server}{PODS}/db-b/eviction",
        json={"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "db-b"}},
    )
    body = await response.json()
    assert response.status == 429
    assert body["reason"] == "TooManyRequests"
    assert body["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    assert body["details"]["causes"] == [
        {
            "reason": "DisruptionBudget",
            "message": "The disruption budget db needs 2 healthy pods and has 3 currently",
        }
    ]
    assert "deletionTimestamp" not in (await api.get(f"{PODS}/db-b"))["metadata"]


async def test_eviction_rules_without_spending(api: RestClient) -> None:
    labels = {"app": "q"}
    await create_pods(api, ["q-a", "q-b", "q-c"], labels, node="node-a")
    await api.create(PDBS, pdb("q", labels, minAvailable=2))
    await set_budget_status(
        api, "q", currentHealthy=2, desiredHealthy=2, expectedPods=3, disruptionsAllowed=0
    )

    # A Pending pod goes without looking at the budget; gracePeriodSeconds=0 deletes at once.
    await report(api, "q-a", ready=False, phase="Pending")
    code, answer = await evict(api, "q-a", gracePeriodSeconds=0)
    assert code == 201, answer
    assert await gone(api, "q-a")

    # An unready pod goes when the budget is met, without spending it.
    await report(api, "q-b", ready=False)
    code, answer = await evict(api, "q-b")
    assert code == 201, answer
    assert (await api.get(f"{PDBS}/q"))["status"].get("disruptedPods") is None

    # ... but not when the budget is not met, unless the policy is AlwaysAllow.
    await set_budget_status(
        api, "q", currentHealthy=1, desiredHealthy=2, expectedPods=3, disruptionsAllowed=0
    )
    await report(api, "q-c", ready=False)
    code, answer = await evict(api, "q-c")
    assert (code, answer["reason"]) == (429, "TooManyRequests")
    await api.patch(f"{PDBS}/q", {"spec": {"unhealthyPodEvictionPolicy": "AlwaysAllow"}})
    await set_budget_status(
        api, "q", currentHealthy=1, desiredHealthy=2, expectedPods=3, disruptionsAllowed=0
    )
    code, answer = await evict(api, "q-c")
    assert code == 201, answer

    # A budget the controller has not seen yet answers 429 and asks to retry after 10s.
    await create_pods(api, ["q-d"], labels, node="node-a")
    await api.patch(f"{PDBS}/q", {"spec": {"minAvailable": 1}})
    response = await api._session.post(  # type: ignore[union-attr]
        f"{api.server}{PODS}/q-d/eviction",
        json={"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "q-d"}},
    )
    body = await response.json()
    assert response.status == 429
    assert response.headers["Retry-After"] == "10"
    assert (
        body["details"]["causes"][0]["message"]
        == "The disruption budget q is still being processed by the server."
    )


async def test_eviction_errors(api: RestClient) -> None:
    await create_pods(api, ["e-a"], {"app": "e", "tier": "x"}, node="node-a")
    created = await api.get(f"{PODS}/e-a")

    code, answer = await evict(api, "e-a", preconditions={"uid": "not-the-uid"})
    assert code == 409, answer
    assert "does not match the UID in record" in answer["message"]

    body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "other"}}
    with pytest.raises(ApiStatusError) as mismatch:
        await api.create(f"{PODS}/e-a/eviction", body)
    assert mismatch.value.code == 400
    assert str(mismatch.value) == "name in URL does not match name in Eviction object"

    code, answer = await evict(api, "missing")
    assert code == 404

    await api.create(PDBS, pdb("e1", {"app": "e"}, minAvailable=0))
    await api.create(PDBS, pdb("e2", {"tier": "x"}, minAvailable=0))
    code, answer = await evict(api, "e-a")
    assert code == 500
    assert (
        answer["message"]
        == "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
    )
    assert (await api.get(f"{PODS}/e-a"))["metadata"]["resourceVersion"] == created["metadata"][
        "resourceVersion"
    ]


async def test_concurrent_evictions_spend_one_disruption_once(api: RestClient) -> None:
    labels = {"app": "c"}
    await create_pods(api, ["c-a", "c-b"], labels, node="node-a")
    await api.create(PDBS, pdb("c", labels, maxUnavailable=1))
    await set_budget_status(
        api, "c", currentHealthy=2, desiredHealthy=1, expectedPods=2, disruptionsAllowed=1
    )

    results = await asyncio.gather(evict(api, "c-a"), evict(api, "c-b"))

    assert sorted(code for code, _ in results) == [201, 429]
    status = (await api.get(f"{PDBS}/c"))["status"]
    assert status["disruptionsAllowed"] == 0
    assert len(status["disruptedPods"]) == 1


async def test_controller_forgets_evictions_that_deleted_nothing(
    api: RestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(disruption, "DELETION_TIMEOUT", 3.0)
    monkeypatch.setattr(disruption, "STALE_POD_DISRUPTION_TIMEOUT", 3.0)
    labels = {"app": "s"}
    await create_pods(api, ["s-a", "s-b"], labels, node="node-a")
    await api.create(PDBS, pdb("s", labels, minAvailable=1))
    # An eviction was granted for s-a, but the pod was never deleted.
    stamp = objects.now()
    await set_budget_status(
        api, "s", currentHealthy=1, desiredHealthy=1, expectedPods=2, disruptedPods={"s-a": stamp}
    )
    target = {
        "type": "DisruptionTarget",
        "status": "True",
        "reason": "EvictionByEvictionAPI",
        "lastTransitionTime": stamp,
    }
    ready = {"type": "Ready", "status": "True"}
    await api.patch(f"{PODS}/s-a/status", {"status": {"conditions": [ready, target]}}, patch_type="strategic")

    async with running(DisruptionController(api)):
        # Still expected to go: s-a does not count as healthy yet.
        await until(status_is(api, "s", currentHealthy=1, disruptionsAllowed=0, disruptedPods={"s-a": stamp}))
        # Past the deletion timeout it is forgotten and counts again.
        await until(status_is(api, "s", currentHealthy=2, disruptionsAllowed=1, disruptedPods=None))

        async def condition_reset() -> bool:
            conditions = (await api.get(f"{PODS}/s-a"))["status"]["conditions"]
            return any(c["type"] == "DisruptionTarget" and c["status"] == "False" for c in conditions)

        await until(condition_reset)


# -- kubectl drain --------------------------------------------------------------------------------


async def kubelet(api: RestClient) -> None:
    """Finishes terminating pods at once, as a kubelet whose containers stop immediately."""
    while True:
        for item in (await api.list(PODS))["items"]:
            if item["metadata"].get("deletionTimestamp"):
                with contextlib.suppress(ApiStatusError):
                    await api.delete(f"{PODS}/{item['metadata']['name']}", {"gracePeriodSeconds": 0})
        await asyncio.sleep(0.1)


async def kubectl(kubeconfig: Path, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        kubectl_binary(),
        "--kubeconfig",
        str(kubeconfig),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_kubectl_drain_evicts_within_the_budget(api: RestClient, served: str, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: local\n"
        f"clusters:\n- name: local\n  cluster:\n    server: {served}\n"
        "users:\n- name: admin\n  user: {}\n"
        "contexts:\n- name: local\n  context:\n    cluster: local\n    user: admin\n"
    )
    await api.create("/api/v1/nodes", {"metadata": {"name": "node-a"}})
    labels = {"app": "web"}
    replicaset = await api.create(
        f"/apis/apps/v1/namespaces/{NS}/replicasets",
        {
            "metadata": {"name": "web"},
            "spec": {"replicas": 2, "selector": {"matchLabels": labels}, "template": template(labels)},
        },
    )
    by_rs = owner("ReplicaSet", "web", replicaset["metadata"]["uid"])
    await create_pods(api, ["web-a", "web-b"], labels, node="node-a", owned_by=by_rs)
    await api.create(PDBS, pdb("web", labels, minAvailable=2))

    kubelet_task = asyncio.create_task(kubelet(api), name="test-kubelet")
    try:
        async with running(DisruptionController(api)):
            await until(status_is(api, "web", currentHealthy=2, desiredHealthy=2, disruptionsAllowed=0))

            code, output = await kubectl(kubeconfig, "drain", "node-a", "--timeout=7s")
            assert code != 0, output
            assert "Cannot evict pod as it would violate the pod's disruption budget." in output
            assert not await gone(api, "web-a") and not await gone(api, "web-b")

            # The workload grows elsewhere: the budget now lets node-a's pods go.
            await api.patch(f"/apis/apps/v1/namespaces/{NS}/replicasets/web", {"spec": {"replicas": 4}})
            await create_pods(api, ["web-c", "web-d"], labels, node="node-b", owned_by=by_rs)
            await until(status_is(api, "web", currentHealthy=4, disruptionsAllowed=2))

            code, output = await kubectl(kubeconfig, "drain", "node-a", "--timeout=30s")
            assert code == 0, output
            assert "evicting pod default/web-a" in output and "pod/web-a evicted" in output
            assert await gone(api, "web-a") and await gone(api, "web-b")
            node = await api.get("/api/v1/nodes/node-a")
            assert node["spec"]["unschedulable"] is True

            # Once the evicted pods are gone, the controller drops them from disruptedPods.
            await until(status_is(api, "web", currentHealthy=2, disruptionsAllowed=0, disruptedPods=None))
    finally:
        kubelet_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await kubelet_task
