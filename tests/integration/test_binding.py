"""``pods/binding`` and the legacy ``bindings`` resource, over HTTP.

A real SQLite store, the generic ObjectStore and ``build_app`` with the binding routes in
front of the generic ones (no authentication), as the server wires them.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from k3py.api.resources import Registry, from_manifest, selection
from k3py.apiserver.app import build_app
from k3py.apiserver.binding import BindingRejected, bind_pod, binding_routes, validate_binding
from k3py.apiserver.generic import ObjectStore, WriteOptions
from k3py.storage.model import Backend

Obj = dict[str, Any]
PODS = "/api/v1/namespaces/default/pods"


@pytest.fixture
async def client(backend: Backend) -> AsyncIterator[TestClient[Any, Any]]:
    store = ObjectStore(backend, Registry(from_manifest(selection())), ipaddress.ip_network("10.43.0.0/16"))
    namespaces = store.registry.lookup("", "v1", "namespaces")
    assert namespaces is not None
    await store.create(namespaces, "", {"metadata": {"name": "default"}}, WriteOptions())
    async with TestClient(TestServer(build_app(store, binding_routes(store)))) as test_client:
        yield test_client


def pod(name: str, **spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec},
    }


def binding(name: str, node: str, **meta: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": name, **meta},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    }


async def call(client: TestClient[Any, Any], method: str, path: str, body: Any = None) -> tuple[int, Obj]:
    response = await client.request(method, path, json=body)
    return response.status, await response.json()


async def created(client: TestClient[Any, Any], body: Obj) -> Obj:
    status, obj = await call(client, "POST", PODS, body)
    assert status == 201, obj
    return obj


async def test_binding_sets_the_node_the_condition_and_the_annotations(client: TestClient[Any, Any]) -> None:
    before = await created(client, pod("web"))
    body = binding("web", "node-a", annotations={"example.com/why": "fits"})

    status, answer = await call(client, "POST", f"{PODS}/web/binding", body)

    assert status == 201, answer
    assert answer == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}
    _, after = await call(client, "GET", f"{PODS}/web")
    assert after["spec"]["nodeName"] == "node-a"
    assert after["metadata"]["annotations"] == {"example.com/why": "fits"}
    [scheduled] = [c for c in after["status"]["conditions"] if c["type"] == "PodScheduled"]
    assert scheduled["status"] == "True"
    assert scheduled["lastTransitionTime"]
    assert int(after["metadata"]["resourceVersion"]) > int(before["metadata"]["resourceVersion"])


async def test_a_bound_pod_cannot_be_bound_again(client: TestClient[Any, Any]) -> None:
    await created(client, pod("web"))
    assert (await call(client, "POST", f"{PODS}/web/binding", binding("web", "node-a")))[0] == 201

    status, answer = await call(client, "POST", f"{PODS}/web/binding", binding("web", "node-b"))

    assert status == 409
    assert answer["reason"] == "Conflict"
    assert answer["message"] == (
        'Operation cannot be fulfilled on pods/binding "web": pod web is already assigned to node "node-a"'
    )
    assert answer["details"] == {"name": "web", "kind": "pods/binding"}
    _, after = await call(client, "GET", f"{PODS}/web")
    assert after["spec"]["nodeName"] == "node-a"


async def test_only_one_of_two_concurrent_bindings_wins(client: TestClient[Any, Any]) -> None:
    await created(client, pod("web"))

    answers = await asyncio.gather(
        *(call(client, "POST", f"{PODS}/web/binding", binding("web", f"node-{i}")) for i in range(4))
    )

    assert sorted(status for status, _ in answers) == [201, 409, 409, 409]
    _, after = await call(client, "GET", f"{PODS}/web")
    [(winner, _)] = [(i, a) for i, (status, a) in enumerate(answers) if status == 201]
    assert after["spec"]["nodeName"] == f"node-{winner}"


async def test_the_legacy_bindings_resource_takes_the_name_from_the_body(
    client: TestClient[Any, Any],
) -> None:
    await created(client, pod("web"))

    status, answer = await call(client, "POST", "/api/v1/namespaces/default/bindings", binding("web", "n1"))

    assert status == 201, answer
    _, after = await call(client, "GET", f"{PODS}/web")
    assert after["spec"]["nodeName"] == "n1"


async def test_uid_and_resource_version_preconditions(client: TestClient[Any, Any]) -> None:
    live = await created(client, pod("web"))
    meta = live["metadata"]

    wrong_uid = await call(client, "POST", f"{PODS}/web/binding", binding("web", "n1", uid="not-it"))
    stale = await call(client, "POST", f"{PODS}/web/binding", binding("web", "n1", resourceVersion="1"))

    assert wrong_uid[0] == 409
    assert wrong_uid[1]["message"] == (
        f'Operation cannot be fulfilled on pods "web": Precondition failed: UID in precondition: not-it, '
        f"UID in object meta: {meta['uid']}"
    )
    assert stale[0] == 409
    assert "Precondition failed: ResourceVersion in precondition: 1" in stale[1]["message"]
    right = binding("web", "n1", uid=meta["uid"], resourceVersion=meta["resourceVersion"])
    assert (await call(client, "POST", f"{PODS}/web/binding", right))[0] == 201


async def test_refusals(client: TestClient[Any, Any]) -> None:
    await created(client, pod("web"))
    await created(client, pod("gated", schedulingGates=[{"name": "example.com/wait"}]))

    missing = await call(client, "POST", f"{PODS}/ghost/binding", binding("ghost", "n1"))
    other_name = await call(client, "POST", f"{PODS}/web/binding", binding("other", "n1"))
    no_target = await call(client, "POST", f"{PODS}/web/binding", {"metadata": {"name": "web"}})
    bad_kind = await call(
        client, "POST", f"{PODS}/web/binding", {"metadata": {"name": "web"}, "target": {"kind": "Pod"}}
    )
    wrong_kind = await call(client, "POST", f"{PODS}/web/binding", {**binding("web", "n1"), "kind": "Pod"})
    gated = await call(client, "POST", f"{PODS}/gated/binding", binding("gated", "n1"))
    dry = await call(client, "POST", f"{PODS}/web/binding?dryRun=All", binding("web", "n1"))

    assert missing[0] == 404 and missing[1]["message"] == 'pods "ghost" not found'
    assert other_name[0] == 400
    assert other_name[1]["message"] == "name in URL does not match name in Binding object"
    assert no_target[0] == 500 and no_target[1]["message"] == "target.name: Required value"
    assert bad_kind[0] == 500
    assert bad_kind[1]["message"] == (
        '[target.kind: Unsupported value: "Pod": supported values: "Node", "<empty>", '
        "target.name: Required value]"
    )
    assert wrong_kind[0] == 400
    assert wrong_kind[1]["message"] == "the kind in the data (Pod) does not match the expected kind (Binding)"
    assert gated[0] == 409
    assert gated[1]["message"].endswith("pod gated has non-empty .spec.schedulingGates")
    assert dry[0] == 201
    _, after = await call(client, "GET", f"{PODS}/web")
    assert "nodeName" not in after["spec"]


async def test_other_verbs_on_the_binding_path_are_not_bindings(client: TestClient[Any, Any]) -> None:
    await created(client, pod("web"))

    response = await client.get(f"{PODS}/web/binding")

    assert response.status in (404, 405)
    _, after = await call(client, "GET", f"{PODS}/web")
    assert "nodeName" not in after["spec"]


def test_validation_and_binding_rules_as_pure_functions() -> None:
    assert validate_binding({"target": {"name": "n1"}}) == []
    assert validate_binding({"target": {"kind": "Node", "name": "n1"}}) == []
    live = pod("p")
    live["metadata"] |= {"deletionTimestamp": "2026-01-01T00:00:00Z"}
    with pytest.raises(BindingRejected, match="pod p is being deleted, cannot be assigned to a host"):
        bind_pod(live, "n1", {}, now="2026-01-01T00:00:00Z")
    earlier = {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2025-01-01T00:00:00Z"}
    unbound = pod("q") | {"status": {"conditions": [earlier]}}
    bound = bind_pod(unbound, "n1", {}, now="2026-01-01T00:00:00Z")
    assert bound["status"]["conditions"][0]["lastTransitionTime"] == "2025-01-01T00:00:00Z"
    assert "nodeName" not in unbound["spec"]  # the input is left alone
