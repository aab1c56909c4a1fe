"""Pod rules of the API server over HTTP, on a real SQLite store: the QoS class recorded at
creation, sysctl names, the ``pods/ephemeralcontainers`` and ``pods/resize`` subresources, and
the RuntimeClass admission plugin.

The API server is built in-process (the generic store and ``build_app``, the RuntimeClass
steps in the admission chain where the server puts them); the test plays the kubelet where a
pod's status matters.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from typing import Any

import pytest

from k3py.api.resources import Registry, from_manifest, selection
from k3py.apiserver.generic import ObjectStore
from k3py.apiserver.runtimeclass import RuntimeClassAdmission, merge_tolerations
from k3py.client.rest import ApiStatusError, RestClient
from k3py.storage.model import Backend
from tests.integration.api_support import create_namespaces, served_client

Obj = dict[str, Any]
NS = "default"
PODS = f"/api/v1/namespaces/{NS}/pods"
RUNTIME_CLASSES = "/apis/node.k8s.io/v1/runtimeclasses"


@pytest.fixture
async def api(backend: Backend) -> AsyncIterator[RestClient]:
    store = ObjectStore(backend, Registry(from_manifest(selection())), ipaddress.ip_network("10.43.0.0/16"))
    runtime_classes = RuntimeClassAdmission(store)
    store.admission += [runtime_classes.mutating, runtime_classes.validating]
    await create_namespaces(store, NS)
    async with served_client(store) as client:
        yield client


def container(name: str, **resources: Obj) -> Obj:
    return {"name": name, "image": "busybox", "resources": resources}


async def create_pod(api: RestClient, name: str, *containers: Obj, **spec: Any) -> Obj:
    body = {"metadata": {"name": name}, "spec": {"containers": list(containers) or [container("c")], **spec}}
    return await api.create(PODS, body)


async def refused(call: Any) -> ApiStatusError:
    with pytest.raises(ApiStatusError) as caught:
        await call
    return caught.value


# -- the QoS class ----------------------------------------------------------------------------------


async def test_pods_are_created_with_their_qos_class_and_keep_it(api: RestClient) -> None:
    same = {"cpu": "100m", "memory": "100Mi"}
    guaranteed = await create_pod(api, "guaranteed", container("c", requests=same, limits=same))
    assert guaranteed["status"] == {"phase": "Pending", "qosClass": "Guaranteed"}
    limits_only = await create_pod(api, "limits-only", container("c", limits=same))
    assert limits_only["status"]["qosClass"] == "Guaranteed"  # requests default to limits
    burstable = await create_pod(api, "burstable", container("a", requests={"cpu": "1"}), container("b"))
    assert burstable["status"]["qosClass"] == "Burstable"
    mixed = await create_pod(api, "mixed", container("a", limits=same), container("b"))
    assert mixed["status"]["qosClass"] == "Burstable"
    best = await create_pod(api, "best-effort", container("c", requests={"ephemeral-storage": "1Gi"}))
    assert best["status"]["qosClass"] == "BestEffort"
    assert (await api.get(f"{PODS}/guaranteed"))["status"]["qosClass"] == "Guaranteed"

    # A status write that leaves the class or the observed generations out keeps them (an older
    # kubelet's).
    ready = {"type": "Ready", "status": "True", "observedGeneration": 1}
    status = {"phase": "Running", "observedGeneration": 1, "conditions": [ready]}
    written = await api.update(f"{PODS}/guaranteed/status", {**guaranteed, "status": status})
    assert written["status"]["qosClass"] == "Guaranteed"
    without = {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]}
    written = await api.update(f"{PODS}/guaranteed/status", {**written, "status": without})
    assert written["status"] == {
        "phase": "Running",
        "qosClass": "Guaranteed",
        "observedGeneration": 1,
        "conditions": [{"type": "Ready", "status": "False", "observedGeneration": 1}],
    }


# -- sysctls -----------------------------------------------------------------------------------------


async def test_invalid_sysctl_names_are_refused(api: RestClient) -> None:
    sysctls = [
        {"name": "foo-", "value": "bar"},
        {"name": "kernel.shmmax", "value": "100000000"},
        {"name": "safe-and-unsafe", "value": "100000000"},
        {"name": "bar..", "value": "42"},
    ]
    error = await refused(create_pod(api, "sysctls", securityContext={"sysctls": sysctls}))
    assert error.code == 422
    assert 'spec.securityContext.sysctls[0].name: Invalid value: "foo-"' in str(error)
    assert 'spec.securityContext.sysctls[3].name: Invalid value: "bar.."' in str(error)
    assert "must have at most 253 characters and match regex " in str(error)
    assert "safe-and-unsafe" not in str(error) and "kernel.shmmax" not in str(error)

    slashes = [{"name": "kernel/shm_rmid_forced", "value": "1"}, {"name": "net.core.somaxconn", "value": "1"}]
    created = await create_pod(api, "slashes", securityContext={"sysctls": slashes})
    assert created["spec"]["securityContext"]["sysctls"] == slashes
    on_host = await refused(create_pod(api, "host", hostNetwork=True, securityContext={"sysctls": slashes}))
    assert on_host.code == 422
    assert (
        'spec.securityContext.sysctls[1].name: Invalid value: "net.core.somaxconn": '
        "may not be specified when 'hostNetwork' is true"
    ) in str(on_host)
    assert "kernel/shm_rmid_forced" not in str(on_host)


# -- pods/ephemeralcontainers ---------------------------------------------------------------------


def debugger(name: str, **extra: Any) -> Obj:
    return {"name": name, "image": "busybox", "command": ["sh"], "stdin": True, "tty": True, **extra}


async def test_ephemeral_containers_are_added_through_their_subresource(api: RestClient) -> None:
    pod = await create_pod(api, "target")
    assert pod["metadata"]["generation"] == 1
    discovered = await api.get("/api/v1")
    verbs = {r["name"]: r.get("verbs") for r in discovered["resources"]}
    assert verbs["pods/ephemeralcontainers"] == verbs["pods/resize"] == ["get", "patch", "update"]

    # kubectl debug and the e2e framework: a strategic merge patch of the subresource.
    patch = {"spec": {"ephemeralContainers": [debugger("debugger")]}}
    patched = await api.patch(f"{PODS}/target/ephemeralcontainers", patch, "strategic")
    assert patched["kind"] == "Pod"
    assert patched["metadata"]["generation"] == 2
    (added,) = patched["spec"]["ephemeralContainers"]
    assert added["name"] == "debugger"
    assert added["terminationMessagePolicy"] == "File" and added["imagePullPolicy"] == "Always"
    read = await api.get(f"{PODS}/target/ephemeralcontainers")
    assert read["kind"] == "Pod" and len(read["spec"]["ephemeralContainers"]) == 1

    # An update of the subresource with one more container; what else it changes is dropped.
    current = await api.get(f"{PODS}/target")
    current["spec"]["ephemeralContainers"].append(debugger("debugger2", imagePullPolicy="IfNotPresent"))
    current["spec"]["containers"][0]["image"] = "nginx"
    current["metadata"]["labels"] = {"sneaked": "in"}
    current["status"] = {"phase": "Failed"}
    updated = await api.update(f"{PODS}/target/ephemeralcontainers", current)
    assert [c["name"] for c in updated["spec"]["ephemeralContainers"]] == ["debugger", "debugger2"]
    assert updated["spec"]["containers"][0]["image"] == "busybox"
    assert "labels" not in updated["metadata"]
    assert updated["status"]["phase"] == "Pending"
    assert updated["metadata"]["generation"] == 3


async def test_ephemeral_containers_may_not_be_removed_or_changed(api: RestClient) -> None:
    await create_pod(api, "target")
    await api.patch(
        f"{PODS}/target/ephemeralcontainers",
        {"spec": {"ephemeralContainers": [debugger("debugger")]}},
        "strategic",
    )
    current = await api.get(f"{PODS}/target")

    removed = {**current, "spec": {**current["spec"], "ephemeralContainers": []}}
    error = await refused(api.update(f"{PODS}/target/ephemeralcontainers", removed))
    assert error.code == 422
    assert (
        'spec.ephemeralContainers: Forbidden: existing ephemeral containers "debugger" may not be removed'
        in (str(error))
    )

    changed = await api.get(f"{PODS}/target")
    changed["spec"]["ephemeralContainers"][0]["image"] = "alpine"
    error = await refused(api.update(f"{PODS}/target/ephemeralcontainers", changed))
    assert error.code == 422
    assert 'existing ephemeral containers "debugger" may not be changed' in str(error)
    assert '+ image: "alpine"' in str(error)

    invalid = await api.get(f"{PODS}/target")
    invalid["spec"]["ephemeralContainers"].append(debugger("c"))  # the app container's name
    error = await refused(api.update(f"{PODS}/target/ephemeralcontainers", invalid))
    assert error.code == 422 and 'spec.ephemeralContainers[1].name: Duplicate value: "c"' in str(error)

    # The pod itself cannot change them.
    through_pod = await api.get(f"{PODS}/target")
    through_pod["spec"]["ephemeralContainers"].append(debugger("other"))
    error = await refused(api.update(f"{PODS}/target", through_pod))
    assert error.code == 422 and "pod updates may not change fields" in str(error)


async def test_static_pods_take_no_ephemeral_containers(api: RestClient) -> None:
    mirror = {"kubernetes.io/config.mirror": "abc"}
    body = {"metadata": {"name": "static", "annotations": mirror}, "spec": {"containers": [container("c")]}}
    await api.create(PODS, body)
    patch = {"spec": {"ephemeralContainers": [debugger("debugger")]}}
    error = await refused(api.patch(f"{PODS}/static/ephemeralcontainers", patch, "strategic"))
    assert (error.code, str(error)) == (
        422,
        'Pod "static" is invalid: Forbidden: static pods do not support ephemeral containers',
    )


# -- pods/resize ----------------------------------------------------------------------------------


POLICY = [
    {"resourceName": "cpu", "restartPolicy": "NotRequired"},
    {"resourceName": "memory", "restartPolicy": "NotRequired"},
]


async def run(api: RestClient, name: str, *, report_resources: bool = True) -> None:
    """What the kubelet reports of a running pod (container resources when it can resize)."""
    pod = await api.get(f"{PODS}/{name}")
    statuses = []
    for c in pod["spec"]["containers"]:
        status: Obj = {
            "name": c["name"],
            "image": c["image"],
            "imageID": "",
            "ready": True,
            "restartCount": 0,
            "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}},
        }
        if report_resources:
            status["resources"] = c.get("resources") or {}
        statuses.append(status)
    await api.patch(f"{PODS}/{name}/status", {"status": {"phase": "Running", "containerStatuses": statuses}})


async def test_resize_changes_cpu_and_memory_only(api: RestClient) -> None:
    original = {"cpu": "100m", "memory": "64Mi"}
    await create_pod(api, "resized", {**container("c1", requests=original), "resizePolicy": POLICY})
    await run(api, "resized")
    pod = await api.get(f"{PODS}/resized/resize")
    assert pod["kind"] == "Pod"
    pod["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "200m", "memory": "128Mi"}}
    pod["spec"]["containers"][0]["image"] = "nginx"  # not the subresource's: dropped
    pod["spec"]["activeDeadlineSeconds"] = 5
    updated = await api.update(f"{PODS}/resized/resize", pod)
    assert updated["spec"]["containers"][0]["resources"] == {"requests": {"cpu": "200m", "memory": "128Mi"}}
    assert updated["spec"]["containers"][0]["image"] == "busybox"
    assert "activeDeadlineSeconds" not in updated["spec"]
    assert updated["metadata"]["generation"] == 2
    assert updated["status"]["phase"] == "Running"

    # The e2e framework's patch (a two-way merge patch): limits added, requests changed.
    patch = {
        "spec": {
            "containers": [
                {"name": "c1", "resources": {"limits": {"cpu": "400m"}, "requests": {"cpu": "300m"}}}
            ]
        }
    }
    patched = await api.patch(f"{PODS}/resized/resize", patch, "strategic")
    resources = patched["spec"]["containers"][0]["resources"]
    assert resources == {"limits": {"cpu": "400m"}, "requests": {"cpu": "300m", "memory": "128Mi"}}
    assert patched["spec"]["containers"][0]["resizePolicy"] == POLICY
    assert patched["metadata"]["generation"] == 3

    # The resize policy is the pod's, set at creation: a resize may not change it.
    policy = {
        "spec": {
            "containers": [
                {"name": "c1", "resizePolicy": [{"resourceName": "cpu", "restartPolicy": "RestartContainer"}]}
            ]
        }
    }
    error = await refused(api.patch(f"{PODS}/resized/resize", policy, "strategic"))
    assert error.code == 422 and "only cpu and memory resources are mutable" in str(error)


async def test_resize_refusals(api: RestClient) -> None:
    requests = {"cpu": "100m", "memory": "64Mi"}
    await create_pod(api, "pod", container("c1", requests=requests))
    await run(api, "pod")
    path = f"{PODS}/pod/resize"

    def patch(resources: Obj) -> Obj:
        return {"spec": {"containers": [{"name": "c1", "resources": resources}]}}

    removed = await refused(
        api.patch(
            path,
            {"spec": {"containers": [{"name": "c1", "resources": {"requests": {"memory": "64Mi"}}}]}},
            "merge",
        )
    )
    assert removed.code == 422
    assert "spec.containers[0].resources.requests: Forbidden: resource requests cannot be removed" in str(
        removed
    )

    qos_change = await refused(api.patch(path, patch({"limits": requests}), "strategic"))
    assert qos_change.code == 422
    assert 'spec: Invalid value: "Burstable": Pod QOS Class may not change as a result of resizing' in (
        str(qos_change)
    )

    other = await refused(api.patch(path, patch({"requests": {"ephemeral-storage": "1Gi"}}), "strategic"))
    assert other.code == 422 and "spec: Forbidden: only cpu and memory resources are mutable" in str(other)

    renamed = await api.get(path)
    renamed["spec"]["containers"][0]["name"] = "c2"
    error = await refused(api.update(path, renamed))
    assert error.code == 422
    assert "spec.containers[0].name: Forbidden: containers may not be renamed or reordered on resize" in (
        str(error)
    )

    await create_pod(api, "old-kubelet", container("c1", requests=requests))
    await run(api, "old-kubelet", report_resources=False)
    error = await refused(
        api.patch(f"{PODS}/old-kubelet/resize", patch({"requests": {"cpu": "1"}}), "strategic")
    )
    assert error.code == 422
    assert "spec: Forbidden: Pod running on node without support for resize" in str(error)


# -- RuntimeClass admission -----------------------------------------------------------------------


async def test_runtime_class_sets_overhead_and_scheduling(api: RestClient) -> None:
    await api.create(
        RUNTIME_CLASSES,
        {
            "metadata": {"name": "sandboxed"},
            "handler": "runc",
            "overhead": {"podFixed": {"cpu": "10m", "memory": "1Mi"}},
            "scheduling": {
                "nodeSelector": {"sandbox": "yes"},
                "tolerations": [{"key": "sandbox", "operator": "Exists", "effect": "NoSchedule"}],
            },
        },
    )
    pod = await create_pod(
        api,
        "sandboxed",
        runtimeClassName="sandboxed",
        nodeSelector={"zone": "a"},
        tolerations=[{"key": "sandbox", "operator": "Equal", "value": "x", "effect": "NoSchedule"}],
    )
    spec = pod["spec"]
    assert spec["overhead"] == {"cpu": "10m", "memory": "1Mi"}
    assert spec["nodeSelector"] == {"zone": "a", "sandbox": "yes"}
    assert {"key": "sandbox", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    assert not any(t.get("value") == "x" for t in spec["tolerations"])  # covered by the class's

    same = await create_pod(
        api, "same", runtimeClassName="sandboxed", overhead={"cpu": "0.01", "memory": "1Mi"}
    )
    assert same["spec"]["overhead"] == {"cpu": "10m", "memory": "1Mi"}
    other = await refused(create_pod(api, "other", runtimeClassName="sandboxed", overhead={"cpu": "1"}))
    assert (other.code, str(other)) == (
        403,
        'pods "other" is forbidden: pod rejected: '
        "Pod's Overhead doesn't match RuntimeClass's defined Overhead",
    )
    conflict = await refused(
        create_pod(api, "conflict", runtimeClassName="sandboxed", nodeSelector={"sandbox": "no"})
    )
    assert conflict.code == 403
    assert (
        "conflict: runtimeClass.scheduling.nodeSelector[sandbox] = yes; pod.spec.nodeSelector[sandbox] = no"
        in (str(conflict))
    )


async def test_pods_naming_a_missing_runtime_class_or_setting_overhead_alone_are_refused(
    api: RestClient,
) -> None:
    missing = await refused(create_pod(api, "missing", runtimeClassName="gone"))
    assert (missing.code, missing.reason) == (403, "Forbidden")
    assert str(missing) == 'pods "missing" is forbidden: pod rejected: RuntimeClass "gone" not found'
    await api.create(RUNTIME_CLASSES, {"metadata": {"name": "plain"}, "handler": "runc"})
    plain = await create_pod(api, "plain", runtimeClassName="plain")
    assert "overhead" not in plain["spec"]
    alone = await refused(create_pod(api, "alone", runtimeClassName="plain", overhead={"cpu": "1"}))
    assert alone.code == 403 and "Pod Overhead set without corresponding RuntimeClass defined Overhead" in (
        str(alone)
    )
    no_class = await refused(create_pod(api, "no-class", overhead={"cpu": "1"}))
    assert no_class.code == 403


def test_merged_tolerations_leave_out_covered_ones() -> None:
    exists_all = {"operator": "Exists"}
    specific = {"key": "a", "operator": "Equal", "value": "1", "effect": "NoSchedule"}
    assert merge_tolerations([specific], [exists_all]) == [exists_all]
    timed = {"key": "a", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10}
    longer = {"key": "a", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 20}
    assert merge_tolerations([timed], [longer]) == [longer]  # 10s are within 20s, not the reverse
    assert merge_tolerations([longer], [timed]) == [longer]
    other_key = {"key": "b", "operator": "Exists"}
    assert merge_tolerations([timed], [other_key]) == [timed, other_key]
    assert merge_tolerations([specific, specific], []) == [specific]
