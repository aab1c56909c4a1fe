"""ReplicaSet, ReplicationController and Deployment controllers against a real ``k3py server``.

No node runs: the test is the kubelet. A small loop reports every pod Running and Ready
(through ``pods/{name}/status``) and finishes the deletion of terminating pods. The
controllers under test run in the test's loop with the admin's client; kubectl 1.37 drives
the Deployment as a user would (create, scale, set image, rollout status/history/undo/pause/resume).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from k3py.api import objects
from k3py.client.rest import ApiStatusError, RestClient
from k3py.controllers.deployment import HASH_LABEL, REVISION, DeploymentController
from k3py.controllers.replicaset import ReplicaSetController, ReplicationManager
from tests.e2e.cluster import Cluster
from tests.integration.api_support import admin_api, until

pytestmark = pytest.mark.slow

Obj = dict[str, Any]
NS = "default"
PODS = f"/api/v1/namespaces/{NS}/pods"
RSS = f"/apis/apps/v1/namespaces/{NS}/replicasets"


@pytest.fixture
async def api(cluster: Cluster) -> AsyncIterator[RestClient]:
    async with admin_api(cluster, NS) as client:
        yield client


async def fake_kubelet(api: RestClient) -> None:
    """Report pods Running and Ready (except those labelled ``stuck``); finish deleting terminating ones."""
    while True:
        for pod in (await api.list(PODS))["items"]:
            name = pod["metadata"]["name"]
            try:
                if pod["metadata"].get("deletionTimestamp"):
                    await api.delete(f"{PODS}/{name}", {"gracePeriodSeconds": 0})
                elif pod["metadata"].get("labels", {}).get("stuck"):
                    continue  # a pod that never starts
                elif pod.get("status", {}).get("phase") != "Running":
                    now = objects.now()
                    ready = {"type": "Ready", "status": "True", "lastTransitionTime": now}
                    status = {"phase": "Running", "conditions": [ready], "startTime": now}
                    await api.patch(f"{PODS}/{name}/status", {"status": status})
            except ApiStatusError as exc:
                if exc.code not in (404, 409):
                    raise
        await asyncio.sleep(0.2)


@pytest.fixture
async def controllers(api: RestClient) -> AsyncIterator[None]:
    running = [ReplicaSetController(api), ReplicationManager(api), DeploymentController(api)]
    tasks = [asyncio.create_task(c.run(), name=c.name) for c in running]
    tasks.append(asyncio.create_task(fake_kubelet(api), name="fake-kubelet"))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def live_pods(api: RestClient, selector: str) -> list[Obj]:
    items = (await api.list(PODS, label_selector=selector))["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


async def reasons(api: RestClient, name: str) -> list[str]:
    listed = await api.list(f"/api/v1/namespaces/{NS}/events", field_selector=f"involvedObject.name={name}")
    return [f"{e['reason']}: {e['message']}" for e in listed["items"]]


def template(app: str, image: str = "busybox:1") -> Obj:
    return {
        "metadata": {"labels": {"app": app}},
        "spec": {"containers": [{"name": "c", "image": image, "command": ["sleep", "3600"]}]},
    }


async def test_replica_set_creates_adopts_releases_and_scales(api: RestClient, controllers: None) -> None:
    body = {
        "metadata": {"name": "web"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": template("web")},
    }
    rs = await api.create(RSS, body)

    async def ready(count: int) -> bool:
        status = (await api.get(f"{RSS}/web"))["status"]
        pods = await live_pods(api, "app=web")
        return len(pods) == count and status.get("readyReplicas") == count and status.get("replicas") == count

    await until(lambda: ready(3))
    pods = await live_pods(api, "app=web")
    for pod in pods:
        assert pod["metadata"]["generateName"] == "web-"
        (ref,) = pod["metadata"]["ownerReferences"]
        assert ref == {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": "web",
            "uid": rs["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    status = (await api.get(f"{RSS}/web"))["status"]
    assert status["availableReplicas"] == 3 and status["fullyLabeledReplicas"] == 3
    assert status["observedGeneration"] == 1
    assert sum(r.startswith("SuccessfulCreate: Created pod: web-") for r in await reasons(api, "web")) == 3

    # An orphan that matches is adopted, and the surplus pod deleted.
    stray = {"metadata": {"name": "stray", "labels": {"app": "web"}}, "spec": template("web")["spec"]}
    await api.create(PODS, stray)

    async def adopted() -> bool:
        try:
            pod = await api.get(f"{PODS}/stray")
        except ApiStatusError as exc:
            return exc.code == 404  # adopted, then deleted as the surplus (the pending pod goes first)
        return bool(pod["metadata"].get("ownerReferences"))

    await until(adopted)
    await until(lambda: ready(3))
    assert any(r.startswith("SuccessfulDelete: Deleted pod: ") for r in await reasons(api, "web"))

    # A pod relabelled out of the selector is released and replaced.
    victim = (await live_pods(api, "app=web"))[0]["metadata"]["name"]
    await api.patch(f"{PODS}/{victim}", {"metadata": {"labels": {"app": "elsewhere"}}})

    async def released() -> bool:
        pod = await api.get(f"{PODS}/{victim}")
        return not pod["metadata"].get("ownerReferences")

    await until(released)
    await until(lambda: ready(3))

    await api.patch(f"{RSS}/web", {"spec": {"replicas": 1}})
    await until(lambda: ready(1))
    assert (await api.get(f"{RSS}/web"))["status"]["observedGeneration"] == 2


async def test_create_failure_is_a_condition(api: RestClient, controllers: None) -> None:
    # Admission refuses pods of a service account that does not exist: creation fails.
    failing_template = template("big")
    failing_template["spec"]["serviceAccountName"] = "later"
    body = {
        "metadata": {"name": "big"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "big"}}, "template": failing_template},
    }
    await api.create(RSS, body)

    async def failing() -> bool:
        conditions = (await api.get(f"{RSS}/big"))["status"].get("conditions") or []
        return any(c["type"] == "ReplicaFailure" and c["reason"] == "FailedCreate" for c in conditions)

    await until(failing)
    assert any(r.startswith("FailedCreate: Error creating: ") for r in await reasons(api, "big"))
    await api.create(f"/api/v1/namespaces/{NS}/serviceaccounts", {"metadata": {"name": "later"}})

    async def recovered() -> bool:
        status = (await api.get(f"{RSS}/big"))["status"]
        return not status.get("conditions") and status.get("readyReplicas") == 2

    await until(recovered)


async def test_replication_controller(api: RestClient, controllers: None) -> None:
    body = {"metadata": {"name": "legacy"}, "spec": {"replicas": 2, "template": template("legacy")}}
    await api.create(f"/api/v1/namespaces/{NS}/replicationcontrollers", body)

    async def ready() -> bool:
        rc = await api.get(f"/api/v1/namespaces/{NS}/replicationcontrollers/legacy")
        return rc["status"].get("readyReplicas") == 2 and len(await live_pods(api, "app=legacy")) == 2

    await until(ready)
    (pod, _) = await live_pods(api, "app=legacy")
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "ReplicationController"
    assert pod["metadata"]["ownerReferences"][0]["apiVersion"] == "v1"


async def kubectl(cluster: Cluster, *args: str) -> str:
    done = await asyncio.to_thread(cluster.kubectl, *args)
    return done.stdout


async def test_deployment_with_kubectl(cluster: Cluster, api: RestClient, controllers: None) -> None:
    deploys = f"/apis/apps/v1/namespaces/{NS}/deployments"
    await kubectl(cluster, "create", "deployment", "app", "--image=busybox:1", "--replicas=3")
    out = await kubectl(cluster, "rollout", "status", "deployment/app", "--timeout=60s")
    assert 'deployment "app" successfully rolled out' in out

    (first,) = (await api.list(RSS, label_selector="app=app"))["items"]
    pod_hash = first["metadata"]["labels"][HASH_LABEL]
    assert first["metadata"]["name"] == f"app-{pod_hash}"
    assert first["spec"]["selector"]["matchLabels"] == {"app": "app", HASH_LABEL: pod_hash}
    assert first["metadata"]["annotations"][REVISION] == "1"
    assert first["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "3"
    assert first["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"] == "4"
    deployment = await api.get(f"{deploys}/app")
    conditions = {c["type"]: c["reason"] for c in deployment["status"]["conditions"]}
    assert conditions == {"Available": "MinimumReplicasAvailable", "Progressing": "NewReplicaSetAvailable"}
    assert f"ScalingReplicaSet: Scaled up replica set app-{pod_hash} from 0 to 3" in await reasons(api, "app")

    await kubectl(cluster, "set", "image", "deployment/app", "busybox=busybox:2")
    out = await kubectl(cluster, "rollout", "status", "deployment/app", "--timeout=60s")
    assert "successfully rolled out" in out
    sets = {rs["metadata"]["annotations"][REVISION]: rs for rs in (await api.list(RSS))["items"]}
    assert sorted(sets) == ["1", "2"]
    assert sets["1"]["spec"]["replicas"] == 0 and sets["2"]["spec"]["replicas"] == 3
    assert sets["2"]["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:2"
    status = (await api.get(f"{deploys}/app"))["status"]
    assert (status["replicas"], status["updatedReplicas"], status["availableReplicas"]) == (3, 3, 3)
    history = await kubectl(cluster, "rollout", "history", "deployment/app")
    assert "REVISION" in history and "\n1 " in history and "\n2 " in history
    assert "busybox:2" in await kubectl(cluster, "rollout", "history", "deployment/app", "--revision=2")
    described = await kubectl(cluster, "describe", "deployment", "app")
    assert f"NewReplicaSet:   {sets['2']['metadata']['name']} (3/3 replicas created)" in described
    assert "ScalingReplicaSet" in described

    await kubectl(cluster, "rollout", "undo", "deployment/app")
    out = await kubectl(cluster, "rollout", "status", "deployment/app", "--timeout=60s")
    assert "successfully rolled out" in out
    deployment = await api.get(f"{deploys}/app")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1"
    restored = await api.get(f"{RSS}/{first['metadata']['name']}")
    assert restored["metadata"]["annotations"][REVISION] == "3"
    assert restored["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
    assert restored["spec"]["replicas"] == 3
    assert await kubectl(cluster, "rollout", "undo", "deployment/app", "--to-revision=2", "--dry-run=server")

    await kubectl(cluster, "scale", "deployment/app", "--replicas=5")
    await kubectl(cluster, "rollout", "status", "deployment/app", "--timeout=60s")
    assert len(await live_pods(api, "app=app")) == 5

    await kubectl(cluster, "rollout", "pause", "deployment/app")
    await kubectl(cluster, "set", "image", "deployment/app", "busybox=busybox:3")

    async def paused_seen() -> bool:
        d = await api.get(f"{deploys}/app")
        reasons_now = [c["reason"] for c in d["status"].get("conditions") or []]
        return (
            "DeploymentPaused" in reasons_now
            and d["status"]["observedGeneration"] == d["metadata"]["generation"]
        )

    await until(paused_seen)
    assert len((await api.list(RSS))["items"]) == 2  # no rollout while paused
    await kubectl(cluster, "rollout", "resume", "deployment/app")
    out = await kubectl(cluster, "rollout", "status", "deployment/app", "--timeout=60s")
    assert "successfully rolled out" in out
    images = {p["spec"]["containers"][0]["image"] for p in await live_pods(api, "app=app")}
    assert images == {"busybox:3"}
    assert len((await api.list(RSS))["items"]) == 3


async def test_recreate_and_progress_deadline(api: RestClient, controllers: None) -> None:
    deploys = f"/apis/apps/v1/namespaces/{NS}/deployments"
    body = {
        "metadata": {"name": "batch"},
        "spec": {
            "replicas": 2,
            "strategy": {"type": "Recreate"},
            "progressDeadlineSeconds": 2,
            "selector": {"matchLabels": {"app": "batch"}},
            "template": template("batch"),
        },
    }
    await api.create(deploys, body)

    async def progressing_reason(reason: str) -> bool:
        d = await api.get(f"{deploys}/batch")
        found = [c["reason"] for c in d["status"].get("conditions") or [] if c["type"] == "Progressing"]
        return found == [reason] and d["status"].get("availableReplicas") == 2

    await until(lambda: progressing_reason("NewReplicaSetAvailable"))
    stuck = template("batch", "busybox:2")
    stuck["metadata"]["labels"]["stuck"] = "yes"
    await api.patch(f"{deploys}/batch", {"spec": {"template": stuck}})

    async def timed_out() -> bool:
        d = await api.get(f"{deploys}/batch")
        found = [c for c in d["status"].get("conditions") or [] if c["type"] == "Progressing"]
        return (
            bool(found) and found[0]["reason"] == "ProgressDeadlineExceeded" and found[0]["status"] == "False"
        )

    await until(timed_out)
    sets = (await api.list(RSS, label_selector="app=batch"))["items"]
    sizes = sorted((rs["metadata"]["annotations"][REVISION], rs["spec"]["replicas"]) for rs in sets)
    assert sizes == [("1", 0), ("2", 2)]  # Recreate: the old one went to zero before the new one grew
    pods = await live_pods(api, "app=batch")
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {"busybox:2"}


async def test_scaling_during_a_rollout_is_proportional(api: RestClient, controllers: None) -> None:
    deploys = f"/apis/apps/v1/namespaces/{NS}/deployments"
    body = {
        "metadata": {"name": "wide"},
        "spec": {
            "replicas": 10,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}},
            "selector": {"matchLabels": {"app": "wide"}},
            "template": template("wide"),
        },
    }
    await api.create(deploys, body)

    async def sizes(wanted: list[tuple[str, int]]) -> bool:
        sets = (await api.list(RSS, label_selector="app=wide"))["items"]
        found = sorted(
            (rs["metadata"]["annotations"].get(REVISION, ""), rs["spec"]["replicas"]) for rs in sets
        )
        return found == wanted

    async def available(count: int) -> bool:
        status: Obj = (await api.get(f"{deploys}/wide"))["status"]
        return bool(status.get("availableReplicas") == count)

    await until(lambda: available(10))
    stuck = template("wide", "busybox:2")
    stuck["metadata"]["labels"]["stuck"] = "yes"
    await api.patch(f"{deploys}/wide", {"spec": {"template": stuck}})
    # The new ReplicaSet surges to 3, the old one loses 2 (8 must stay available), which lets
    # the new one grow to 5 (13 pods at most); its pods never become ready: the rollout stalls.
    await until(lambda: sizes([("1", 8), ("2", 5)]))
    await api.patch(f"{deploys}/wide/scale", {"spec": {"replicas": 20}})
    # 23 allowed, 10 to add, shared by the max-replicas annotation (13): the old one takes
    # round(8*23/13)-8 = 6, the new one round(5*23/13)-5 = 4.
    await until(lambda: sizes([("1", 14), ("2", 9)]))
    events = await reasons(api, "wide")
    assert any(
        e.startswith("ScalingReplicaSet: Scaled up replica set wide-") and e.endswith("from 8 to 14")
        for e in events
    )
