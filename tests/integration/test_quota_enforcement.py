"""ResourceQuota and LimitRange enforcement over a real SQLite store, and the resourcequota
controller against a real API server.

The admission plugins run in the object store's admission chain as the server runs them:
limits are defaulted and checked, quotas refuse what would pass them and are charged with a
compare-and-swap, so racing creates never overshoot a quota. The controller recounts quotas
from the objects of their namespace as pods come, end and go.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from k3py.api.resources import Registry, Resource, from_manifest, selection
from k3py.apiserver import errors
from k3py.apiserver.generic import DeleteOptions, ListOptions, ObjectStore, WriteOptions
from k3py.apiserver.limitranger import LimitRanger
from k3py.apiserver.quota import ResourceQuotaAdmission
from k3py.client.rest import RestClient
from k3py.controllers.resourcequota import ResourceQuotaController
from k3py.storage.model import Backend
from tests.e2e.cluster import Cluster
from tests.integration.api_support import running, server, until

Obj = dict[str, Any]
NS = "team"


@pytest.fixture
async def store(backend: Backend) -> ObjectStore:
    objects = ObjectStore(backend, Registry(from_manifest(selection())), ipaddress.ip_network("10.43.0.0/16"))
    objects.admission += [LimitRanger(objects), ResourceQuotaAdmission(objects)]
    await objects.create(core(objects, "namespaces"), "", {"metadata": {"name": NS}}, WriteOptions())
    return objects


def core(store: ObjectStore, plural: str) -> Resource:
    found = store.registry.lookup("", "v1", plural)
    assert found is not None
    return found


def pod_body(name: str, resources: Obj | None = None) -> Obj:
    app: Obj = {"name": "app", "image": "busybox"}
    if resources is not None:
        app["resources"] = resources
    return {"metadata": {"name": name}, "spec": {"containers": [app]}}


async def create(store: ObjectStore, plural: str, body: Obj, *, dry_run: bool = False) -> Obj:
    return await store.create(core(store, plural), NS, body, WriteOptions(dry_run=dry_run))


async def refused(store: ObjectStore, plural: str, body: Obj) -> str:
    with pytest.raises(errors.ApiError) as caught:
        await create(store, plural, body)
    assert caught.value.code == 403, caught.value.message
    assert caught.value.reason == "Forbidden"
    return caught.value.message


async def used(store: ObjectStore, name: str = "q") -> Obj:
    found = await store.get(core(store, "resourcequotas"), NS, name)
    return dict(found["status"]["used"])


def quota_body(hard: Obj, name: str = "q", **spec: Any) -> Obj:
    return {"metadata": {"name": name}, "spec": {"hard": hard, **spec}}


# -- admission over the store --------------------------------------------------------------------


async def test_limit_ranges_default_and_bound_containers(store: ObjectStore) -> None:
    await create(
        store,
        "limitranges",
        {
            "metadata": {"name": "limits"},
            "spec": {
                "limits": [
                    {"type": "Container", "max": {"cpu": "1"}, "default": {"cpu": "500m"}},
                    {"type": "Pod", "max": {"memory": "1Gi"}},
                ]
            },
        },
    )
    message = await refused(store, "pods", pod_body("big", {"limits": {"cpu": "2", "memory": "64Mi"}}))
    assert message == 'pods "big" is forbidden: maximum cpu usage per Container is 1, but limit is 2'
    message = await refused(store, "pods", pod_body("nomem"))
    assert message == 'pods "nomem" is forbidden: maximum memory usage per Pod is 1Gi.  No limit is specified'
    made = await create(store, "pods", pod_body("fits", {"limits": {"memory": "64Mi"}}))
    resources = made["spec"]["containers"][0]["resources"]
    assert resources == {
        "limits": {"memory": "64Mi", "cpu": "500m"},
        "requests": {"memory": "64Mi", "cpu": "500m"},
    }
    assert made["metadata"]["annotations"]["kubernetes.io/limit-ranger"] == (
        "LimitRanger plugin set: cpu request for container app; cpu limit for container app"
    )


async def test_claims_are_bounded_on_create_and_resize(store: ObjectStore) -> None:
    await create(
        store,
        "limitranges",
        {
            "metadata": {"name": "storage"},
            "spec": {"limits": [{"type": "PersistentVolumeClaim", "max": {"storage": "2Gi"}}]},
        },
    )

    def claim(size: str) -> Obj:
        return {
            "metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}},
        }

    message = await refused(store, "persistentvolumeclaims", claim("5Gi"))
    assert message == (
        'persistentvolumeclaims "data" is forbidden: '
        "maximum storage usage per PersistentVolumeClaim is 2Gi, but request is 5Gi"
    )
    await create(store, "persistentvolumeclaims", claim("1Gi"))


async def test_a_quota_is_counted_when_created_and_refuses_what_passes_it(store: ObjectStore) -> None:
    await create(store, "pods", pod_body("before"))
    made = await create(store, "resourcequotas", quota_body({"pods": "2", "count/configmaps": "1"}))
    assert made["status"] == {
        "hard": {"pods": "2", "count/configmaps": "1"},
        "used": {"count/configmaps": "0", "pods": "1"},
    }
    await create(store, "pods", pod_body("second"))
    assert await used(store) == {"count/configmaps": "0", "pods": "2"}
    message = await refused(store, "pods", pod_body("third"))
    assert (
        message
        == 'pods "third" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2'
    )
    await create(store, "configmaps", {"metadata": {"name": "dry"}}, dry_run=True)
    assert (await used(store))["count/configmaps"] == "0"  # a dry run is not charged
    await create(store, "configmaps", {"metadata": {"name": "one"}})
    message = await refused(store, "configmaps", {"metadata": {"name": "two"}})
    assert message == (
        'configmaps "two" is forbidden: exceeded quota: q, requested: count/configmaps=1, '
        "used: count/configmaps=1, limited: count/configmaps=1"
    )
    await create(store, "secrets", {"metadata": {"name": "unlimited"}})  # nothing limits secrets


async def test_compute_quotas_need_requests_and_add_them_up(store: ObjectStore) -> None:
    await create(store, "resourcequotas", quota_body({"requests.cpu": "1", "limits.memory": "1Gi"}))
    message = await refused(store, "pods", pod_body("bare", {"requests": {"cpu": "100m"}}))
    assert message == 'pods "bare" is forbidden: failed quota: q: must specify limits.memory for: app'
    both = {"requests": {"cpu": "600m"}, "limits": {"memory": "512Mi"}}
    await create(store, "pods", pod_body("a", both))
    assert await used(store) == {"limits.memory": "512Mi", "requests.cpu": "600m"}
    message = await refused(store, "pods", pod_body("b", both))
    assert message == (
        'pods "b" is forbidden: exceeded quota: q, requested: requests.cpu=600m, '
        "used: requests.cpu=600m, limited: requests.cpu=1"
    )
    await create(store, "pods", pod_body("c", {"requests": {"cpu": "400m"}, "limits": {"memory": "512Mi"}}))
    assert await used(store) == {"limits.memory": "1Gi", "requests.cpu": "1"}


async def test_services_count_node_ports_and_load_balancers(store: ObjectStore) -> None:
    await create(
        store, "resourcequotas", quota_body({"services.nodeports": "2", "services.loadbalancers": "1"})
    )

    def service(name: str, kind: str, ports: int) -> Obj:
        listed = [{"name": f"p{i}", "port": 80 + i} for i in range(ports)]
        return {
            "metadata": {"name": name},
            "spec": {"type": kind, "ports": listed, "selector": {"app": name}},
        }

    await create(store, "services", service("internal", "ClusterIP", 3))
    await create(store, "services", service("lb", "LoadBalancer", 1))
    message = await refused(store, "services", service("np", "NodePort", 2))
    assert message == (
        'services "np" is forbidden: exceeded quota: q, requested: services.nodeports=2, '
        "used: services.nodeports=1, limited: services.nodeports=2"
    )
    assert await used(store) == {"services.loadbalancers": "1", "services.nodeports": "1"}


async def test_scoped_quotas_only_count_the_pods_they_select(store: ObjectStore) -> None:
    await create(store, "resourcequotas", quota_body({"pods": "1"}, scopes=["BestEffort"]))
    await create(store, "pods", pod_body("guaranteed", {"limits": {"cpu": "1", "memory": "1Mi"}}))
    await create(store, "pods", pod_body("best-effort"))
    message = await refused(store, "pods", pod_body("another"))
    assert message.endswith("exceeded quota: q, requested: pods=1, used: pods=1, limited: pods=1")


async def test_racing_creates_never_overshoot_a_quota(store: ObjectStore) -> None:
    await create(store, "resourcequotas", quota_body({"pods": "3"}))

    async def attempt(i: int) -> bool:
        try:
            await create(store, "pods", pod_body(f"racer-{i}"))
        except errors.ApiError as exc:
            assert exc.code == 403, exc.message
            return False
        return True

    outcomes = await asyncio.gather(*(attempt(i) for i in range(12)))
    assert sum(outcomes) == 3
    assert await used(store) == {"pods": "3"}
    pods = await store.list(core(store, "pods"), NS, ListOptions())
    assert len(pods["items"]) == 3


async def test_changing_hard_limits_recounts(store: ObjectStore) -> None:
    await create(store, "resourcequotas", quota_body({"pods": "5"}))
    await create(store, "pods", pod_body("one"))
    current = await store.get(core(store, "resourcequotas"), NS, "q")
    current["spec"]["hard"] = {"pods": "5", "secrets": "4"}
    updated = await store.update(core(store, "resourcequotas"), NS, "q", current, WriteOptions())
    assert updated["status"]["hard"] == {"pods": "5", "secrets": "4"}
    assert updated["status"]["used"] == {"pods": "1", "secrets": "0"}
    await store.delete(core(store, "pods"), NS, "one", DeleteOptions(grace_period_seconds=0))
    # deletions are not refunded by admission: the controller recounts
    assert (await used(store))["pods"] == "1"


# -- the controller against a real API server ----------------------------------------------------


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with server(tmp_path, "--disable-controller-manager") as started:
        yield started


QUOTAS = "/api/v1/namespaces/default/resourcequotas"
PODS = "/api/v1/namespaces/default/pods"


@pytest.mark.slow
async def test_the_controller_counts_quotas_as_pods_come_end_and_go(api: RestClient) -> None:
    assert ResourceQuotaController.identity == "resourcequota-controller"
    await api.create(PODS, pod_body("early", {"requests": {"cpu": "250m"}}))
    hard = {"pods": "10", "requests.cpu": "2", "count/deployments.apps": "5", "configmaps": "10"}
    await api.create(QUOTAS, quota_body(hard))

    async def status_is(expected: Obj) -> bool:
        found = await api.get(f"{QUOTAS}/q")
        status = found.get("status") or {}
        return status.get("hard") == hard and status.get("used") == expected

    async with running(ResourceQuotaController(api, period=1.0)):
        # the root CA ConfigMap the server keeps in every namespace counts
        await until(lambda: status_is(counts(pods=1, cpu="250m")))
        await api.create(
            "/apis/apps/v1/namespaces/default/deployments",
            {
                "metadata": {"name": "web"},
                "spec": {
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod_body("x")["spec"]},
                },
            },
        )
        # deployments are not watched: the periodic recount finds them
        await until(lambda: status_is(counts(pods=1, cpu="250m", deployments=1)))
        await api.create(PODS, pod_body("late", {"requests": {"cpu": "500m"}}))
        await until(lambda: status_is(counts(pods=2, cpu="750m", deployments=1)))
        # the kubelet's part: a pod ends; then another is deleted
        await api.patch(f"{PODS}/early/status", {"status": {"phase": "Succeeded"}}, "merge")
        await until(lambda: status_is(counts(pods=1, cpu="500m", deployments=1)))
        await api.delete(f"{PODS}/late", {"gracePeriodSeconds": 0})
        await until(lambda: status_is(counts(pods=0, cpu="0", deployments=1)))
        # a new limit is counted at once
        hard["secrets"] = "3"
        await api.patch(f"{QUOTAS}/q", {"spec": {"hard": {"secrets": "3"}}}, "merge")
        await until(lambda: status_is({**counts(pods=0, cpu="0", deployments=1), "secrets": "0"}))


def counts(*, pods: int, cpu: str, deployments: int = 0) -> Obj:
    return {
        "pods": str(pods),
        "requests.cpu": cpu,
        "count/deployments.apps": str(deployments),
        "configmaps": "1",
    }
