"""Local APIServices, their availability, the checks of remote ones that need no call, and
kube-aggregator's APIService validation.

The registration and status tests run against a real SQLite store through the generic
ObjectStore, as the server does at start; the rest are pure functions.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from k3py.api.apiregistration import (
    MANAGED_LABEL,
    PRIORITIES,
    default_apiservice,
    local_apiservices,
    set_condition,
    static_availability,
    validate_apiservice,
    validate_apiservice_status,
)
from k3py.api.resources import Registry, Resource, from_manifest, selection
from k3py.apiserver import errors
from k3py.apiserver.apiservices import (
    apiservice_resource,
    keep_available,
    refresh_availability,
    register_local,
)
from k3py.apiserver.generic import DeleteOptions, ListOptions, ObjectStore, WriteOptions
from k3py.storage.model import Backend

Obj = dict[str, Any]
TIMEOUT = 5.0


def registry(runtime_config: Mapping[str, bool] | None = None) -> Registry:
    """What the server serves."""
    return Registry(from_manifest(selection(runtime_config)))


def object_store(backend: Backend, runtime_config: Mapping[str, bool] | None = None) -> ObjectStore:
    return ObjectStore(backend, registry(runtime_config), ipaddress.ip_network("10.43.0.0/16"))


@pytest.fixture
def store(backend: Backend) -> ObjectStore:
    return object_store(backend)


def apiservices_of(store: ObjectStore) -> Resource:
    resource = apiservice_resource(store.registry)
    assert resource is not None
    return resource


async def stored(store: ObjectStore) -> dict[str, Obj]:
    listed = await store.list(apiservices_of(store), "", ListOptions())
    return {obj["metadata"]["name"]: obj for obj in listed["items"]}


def condition(obj: Obj) -> Obj:
    [found] = [c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == "Available"]
    return dict(found)


def user_apiservice(name: str, group: str, version: str, service: Obj | None = None) -> Obj:
    spec: Obj = {"group": group, "version": version, "groupPriorityMinimum": 1000, "versionPriority": 15}
    if service is not None:
        spec |= {"service": service, "insecureSkipTLSVerify": True}
    return {"metadata": {"name": name}, "spec": spec}


# -- the local list ---------------------------------------------------------------------------


def test_local_apiservices_of_the_default_registry_carry_upstream_priorities() -> None:
    by_name = {obj["metadata"]["name"]: obj for obj in local_apiservices(registry())}
    expected = {
        "v1.": ("", 18000, 1),
        "v1.apps": ("apps", 17800, 15),
        "v1.events.k8s.io": ("events.k8s.io", 17750, 15),
        "v1.authentication.k8s.io": ("authentication.k8s.io", 17700, 15),
        "v1.autoscaling": ("autoscaling", 17500, 15),
        "v2.autoscaling": ("autoscaling", 17500, 30),
        "v1.batch": ("batch", 17400, 15),
        "v1.rbac.authorization.k8s.io": ("rbac.authorization.k8s.io", 17000, 15),
        "v1.apiextensions.k8s.io": ("apiextensions.k8s.io", 16700, 15),
        "v1.flowcontrol.apiserver.k8s.io": ("flowcontrol.apiserver.k8s.io", 16100, 21),
    }
    for name, (group, group_priority, version_priority) in expected.items():
        spec = by_name[name]["spec"]
        assert (spec.get("group", ""), spec["groupPriorityMinimum"], spec["versionPriority"]) == (
            group,
            group_priority,
            version_priority,
        ), name
    assert "group" not in by_name["v1."]["spec"]  # core's empty group is omitted, as upstream writes it
    for obj in by_name.values():
        assert obj["metadata"]["labels"] == {MANAGED_LABEL: "onstart"}
        assert "service" not in obj["spec"]
        assert condition(obj) | {"lastTransitionTime": ""} == {
            "type": "Available",
            "status": "True",
            "lastTransitionTime": "",
            "reason": "Local",
            "message": "Local APIServices are always available",
        }
    served = {f"{v}.{g}" for g in registry().groups() for v in registry().versions(g)}
    # Every served group-version but the aggregator's own group has one (upstream has none for it).
    assert set(by_name) == served - {"v1.apiregistration.k8s.io"}


def test_group_versions_missing_from_the_priority_table_get_no_apiservice() -> None:
    served = registry({"lifecycle.k8s.io/v1alpha1": True})
    assert "v1alpha1" in served.versions("lifecycle.k8s.io")
    assert ("lifecycle.k8s.io", "v1alpha1") not in PRIORITIES
    names = {obj["metadata"]["name"] for obj in local_apiservices(served)}
    assert "v1alpha1.lifecycle.k8s.io" not in names
    assert "v1.apps" in names


# -- registration against a real store ---------------------------------------------------------


async def test_register_local_creates_every_local_apiservice_available(store: ObjectStore) -> None:
    await register_local(store)
    found = await stored(store)
    wanted = {obj["metadata"]["name"]: obj for obj in local_apiservices(store.registry)}
    assert set(found) == set(wanted), "v1. needs APIService names exempt from the DNS-subdomain rule"
    for name, obj in found.items():
        assert obj["spec"] == wanted[name]["spec"]
        assert obj["metadata"]["labels"] == {MANAGED_LABEL: "onstart"}
        assert (condition(obj)["status"], condition(obj)["reason"]) == ("True", "Local")


async def test_register_local_is_idempotent_across_restarts(backend: Backend) -> None:
    await register_local(object_store(backend))
    first = await stored(object_store(backend))
    revision = backend.current_revision
    await register_local(object_store(backend))  # a restart: a new ObjectStore on the same data
    assert backend.current_revision == revision
    assert await stored(object_store(backend)) == first


async def test_register_local_restores_a_changed_spec_and_keeps_the_status(store: ObjectStore) -> None:
    await register_local(store)
    resource = apiservices_of(store)
    before = (await stored(store))["v1.apps"]
    edited = {**before, "spec": {**before["spec"], "groupPriorityMinimum": 100, "versionPriority": 3}}
    await store.update(resource, "", "v1.apps", edited, WriteOptions())
    assert (await stored(store))["v1.apps"]["spec"]["groupPriorityMinimum"] == 100

    await register_local(store)
    after = (await stored(store))["v1.apps"]
    assert after["spec"] == {
        "group": "apps",
        "version": "v1",
        "groupPriorityMinimum": 17800,
        "versionPriority": 15,
    }
    assert condition(after) == condition(before)  # same transition time: nothing transitioned


async def test_register_local_follows_runtime_config_and_leaves_users_apiservices(backend: Backend) -> None:
    store = object_store(backend)
    resource = apiservices_of(store)
    opts = WriteOptions()
    ref = {"namespace": "kube-system", "name": "metrics-server", "port": 443}
    await store.create(
        resource, "", user_apiservice("v1beta1.metrics.k8s.io", "metrics.k8s.io", "v1beta1", ref), opts
    )
    users_batch = await store.create(resource, "", user_apiservice("v1.batch", "batch", "v1"), opts)
    await register_local(store)
    assert (await stored(store))["v1.batch"] == users_batch  # the user's (unlabelled): not rewritten
    assert users_batch["spec"]["groupPriorityMinimum"] == 1000
    assert "v1.autoscaling" in await stored(store)

    restarted = object_store(backend, {"autoscaling/v1": False, "resource.k8s.io/v1beta2": True})
    await register_local(restarted)
    found = await stored(restarted)
    assert "v1.autoscaling" not in found  # no longer served: removed
    assert found["v1beta2.resource.k8s.io"]["spec"] == {
        "group": "resource.k8s.io",
        "version": "v1beta2",
        "groupPriorityMinimum": 16200,
        "versionPriority": 15,
    }
    assert "v1beta1.metrics.k8s.io" in found  # a user's APIService is never removed
    assert found["v1.batch"] == users_batch  # nor touched


# -- availability -------------------------------------------------------------------------------


def service(name: str, ports: list[int], type_: str = "ClusterIP") -> Obj:
    return {
        "metadata": {"namespace": "kube-system", "name": name},
        "spec": {"type": type_, "ports": [{"name": f"p{p}", "port": p} for p in ports]},
    }


def endpoint_slice(port_name: str, *, ready: bool = True) -> Obj:
    return {
        "metadata": {"namespace": "kube-system", "name": "metrics-server-1"},
        "endpoints": [{"addresses": ["10.42.0.5"], "conditions": {"ready": ready}}],
        "ports": [{"name": port_name, "port": 10250}],
    }


REMOTE = user_apiservice(
    "v1beta1.metrics.k8s.io",
    "metrics.k8s.io",
    "v1beta1",
    {"namespace": "kube-system", "name": "metrics-server"},
)


def test_availability_of_a_local_apiservice() -> None:
    found = static_availability(user_apiservice("v1.example.com", "example.com", "v1"), None, [])
    assert found is not None and (found["status"], found["reason"]) == ("True", "Local")


def test_availability_without_the_service() -> None:
    found = static_availability(REMOTE, None, [])
    assert found is not None
    assert (found["type"], found["status"], found["reason"]) == ("Available", "False", "ServiceNotFound")
    assert found["message"] == 'service/metrics-server in "kube-system" is not present'


def test_availability_when_the_service_lacks_the_port() -> None:
    found = static_availability(REMOTE, service("metrics-server", [80]), [endpoint_slice("p80")])
    assert found is not None and (found["status"], found["reason"]) == ("False", "ServicePortError")
    assert found["message"] == 'service/metrics-server in "kube-system" is not listening on port 443'


def test_availability_without_endpoints() -> None:
    svc = service("metrics-server", [443])
    missing = static_availability(REMOTE, svc, [])
    assert missing is not None and (missing["reason"], missing["message"]) == (
        "EndpointsNotFound",
        'cannot find endpointslices for service/metrics-server in "kube-system"',
    )
    for slices in ([endpoint_slice("p443", ready=False)], [endpoint_slice("other")]):
        found = static_availability(REMOTE, svc, slices)
        assert found is not None and (found["reason"], found["message"]) == (
            "MissingEndpoints",
            'endpointslices for service/metrics-server in "kube-system" '
            'have no addresses with port name "p443"',
        )


@pytest.mark.parametrize(
    "svc", [service("metrics-server", [443]), service("metrics-server", [], "ExternalName")]
)
def test_a_reachable_looking_backend_must_be_called(svc: Obj) -> None:
    assert static_availability(REMOTE, svc, [endpoint_slice("p443")]) is None


def test_set_condition_keeps_the_transition_time_unless_the_status_changes() -> None:
    old = {"type": "Available", "status": "False", "lastTransitionTime": "T0", "reason": "A", "message": "a"}
    other = {"type": "Other", "status": "True"}
    same = set_condition([other, old], {**old, "lastTransitionTime": "T1", "reason": "B", "message": "b"})
    assert same == [other, {**old, "reason": "B", "message": "b"}]
    flipped = set_condition([old], {**old, "status": "True", "lastTransitionTime": "T2"})
    assert flipped == [{**old, "status": "True", "lastTransitionTime": "T2"}]
    assert set_condition([other], old) == [other, old]


async def wait_for(what: Callable[[], Any], predicate: Callable[[Any], bool]) -> Any:
    """Poll ``what()`` (a coroutine) until ``predicate`` holds; fail after TIMEOUT seconds."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            value = await what()
            if predicate(value):
                return value
            await asyncio.sleep(0.02)


async def test_keep_available_marks_local_apiservices_only(store: ObjectStore) -> None:
    resource = apiservices_of(store)
    await store.create(resource, "", REMOTE, WriteOptions())
    await store.create(resource, "", user_apiservice("v1.example.com", "example.com", "v1"), WriteOptions())

    async def get(name: str) -> Obj:
        return await store.get(resource, "", name)

    task = asyncio.create_task(keep_available(store), name="test/keep-available")
    try:
        local = await wait_for(
            lambda: get("v1.example.com"), lambda obj: bool((obj.get("status") or {}).get("conditions"))
        )
        assert (condition(local)["status"], condition(local)["reason"]) == ("True", "Local")
        settled = local["metadata"]["resourceVersion"]
        await asyncio.sleep(0.2)  # no further writes once the condition is right
        assert (await get("v1.example.com"))["metadata"]["resourceVersion"] == settled
        assert not (await get("v1beta1.metrics.k8s.io")).get("status", {}).get("conditions")  # not its own
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("cache-")]


async def test_keep_available_returns_when_apiservices_are_not_served(backend: Backend) -> None:
    served = Registry(r for r in registry() if r.plural != "apiservices")
    await asyncio.wait_for(keep_available(ObjectStore(backend, served)), TIMEOUT)


# -- validation ---------------------------------------------------------------------------------


def messages(obj: Obj) -> list[tuple[str, str]]:
    return [(c.field, c.message) for c in validate_apiservice(obj)]


def test_valid_apiservices_have_no_causes() -> None:
    for obj in local_apiservices(registry()):
        assert messages(obj) == [], obj["metadata"]["name"]
    assert messages(REMOTE) == []


def test_the_name_must_be_version_dot_group() -> None:
    obj = user_apiservice("metrics", "metrics.k8s.io", "v1beta1")
    assert messages(obj) == [
        (
            "metadata.name",
            'Invalid value: "metrics": must be `spec.version+"."+spec.group`: "v1beta1.metrics.k8s.io"',
        )
    ]


def test_spec_rules() -> None:
    obj = {
        "metadata": {"name": "v2."},
        "spec": {"version": "v2", "groupPriorityMinimum": 20001, "versionPriority": 0},
    }
    assert messages(obj) == [
        ("spec.group", "Required value: only v1 may have an empty group and it better be legacy kube"),
        ("spec.groupPriorityMinimum", "Invalid value: 20001: must be positive and less than 20000"),
        ("spec.versionPriority", "Invalid value: 0: must be positive and less than 1000"),
    ]
    bad_version = user_apiservice("V1.example.com", "example.com", "V1")
    assert [f for f, _ in messages(bad_version)] == ["spec.version"]


def test_local_apiservices_take_no_tls_settings() -> None:
    obj = user_apiservice("v1.example.com", "example.com", "v1")
    obj["spec"] |= {"caBundle": "AAAA", "insecureSkipTLSVerify": True}
    assert messages(obj) == [
        ("spec.caBundle", 'Invalid value: "3 bytes": local APIServices may not have a caBundle'),
        (
            "spec.insecureSkipTLSVerify",
            "Invalid value: true: local APIServices may not have insecureSkipTLSVerify",
        ),
    ]


def test_service_references() -> None:
    obj = user_apiservice("v1.example.com", "example.com", "v1", {"port": 70000})
    obj["spec"] |= {"caBundle": "AAAA"}
    assert messages(obj) == [
        ("spec.service.namespace", "Required value"),
        ("spec.service.name", "Required value"),
        (
            "spec.service.port",
            "Invalid value: 70000: port is not valid: must be between 1 and 65535, inclusive",
        ),
        ("spec.insecureSkipTLSVerify", "Invalid value: true: may not be true if caBundle is present"),
    ]


def test_defaulting_gives_a_service_reference_port_443() -> None:
    obj = user_apiservice("v1.example.com", "example.com", "v1", {"namespace": "ns", "name": "svc"})
    default_apiservice(obj)
    assert obj["spec"]["service"]["port"] == 443
    local = user_apiservice("v1.example.com", "example.com", "v1")
    default_apiservice(local)
    assert "service" not in local["spec"]


def test_status_conditions_must_be_true_false_or_unknown() -> None:
    obj = {
        "status": {
            "conditions": [{"type": "Available", "status": "True"}, {"type": "Available", "status": "Yes"}]
        }
    }
    assert [(c.field, c.message) for c in validate_apiservice_status(obj)] == [
        (
            "status.conditions[1].status",
            'Unsupported value: "Yes": supported values: "True", "False", "Unknown"',
        )
    ]


async def test_a_status_write_to_a_deleted_apiservice_is_not_an_error(store: ObjectStore) -> None:
    """keep_available may act on a cached object that is already gone."""
    resource = apiservices_of(store)
    obj = await store.create(
        resource, "", user_apiservice("v1.example.com", "example.com", "v1"), WriteOptions()
    )
    await store.delete(resource, "", "v1.example.com", DeleteOptions())
    with pytest.raises(errors.ApiError) as raised:
        await store.get(resource, "", "v1.example.com")
    assert raised.value.code == 404
    assert await refresh_availability(store, resource, [obj])
