"""CustomResourceDefinitions end to end, through the API server's aiohttp application in-process.

A real SQLite store, the generic ObjectStore and ``build_app`` (no authentication), with the
CRD controller running as the server runs it: create a CRD and see it discovered within a
second, then drive its custom resources through every verb, subresource and representation,
and delete it again. Messages are kube-apiserver's.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from k3py.api.resources import Registry, from_manifest, selection
from k3py.apiserver.app import build_app
from k3py.apiserver.crds import install_custom_resources, run_crd_controller
from k3py.apiserver.generic import ObjectStore, WriteOptions
from k3py.storage.model import Backend

Obj = dict[str, Any]

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
CRONTABS = "/apis/stable.example.com/v1/namespaces/default/crontabs"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"
AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
MERGE = {"Content-Type": "application/merge-patch+json"}


def crontab_crd(**changes: Any) -> Obj:
    """The CronTab CRD of the Kubernetes documentation, with status, scale, columns and fields."""
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["cronSpec"],
                "properties": {
                    "cronSpec": {"type": "string", "pattern": r"^(\d+|\*)(/\d+)?(\s+(\d+|\*)(/\d+)?){4}$"},
                    "image": {"type": "string"},
                    "color": {"type": "string", "enum": ["red", "blue"]},
                    "replicas": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1},
                },
            },
            "status": {
                "type": "object",
                "properties": {"replicas": {"type": "integer"}, "labelSelector": {"type": "string"}},
            },
        },
    }
    version = {
        "name": "v1",
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": schema},
        "subresources": {
            "status": {},
            "scale": {
                "specReplicasPath": ".spec.replicas",
                "statusReplicasPath": ".status.replicas",
                "labelSelectorPath": ".status.labelSelector",
            },
        },
        "additionalPrinterColumns": [
            {"name": "Spec", "type": "string", "jsonPath": ".spec.cronSpec"},
            {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
        "selectableFields": [{"jsonPath": ".spec.color"}],
    }
    spec: Obj = {
        "group": "stable.example.com",
        "scope": "Namespaced",
        "names": {
            "plural": "crontabs",
            "singular": "crontab",
            "kind": "CronTab",
            "shortNames": ["ct"],
            "categories": ["all"],
        },
        "versions": [version],
    }
    spec.update(changes)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{spec['names']['plural']}.{spec['group']}"},
        "spec": spec,
    }


def crontab(name: str, **spec: Any) -> Obj:
    return {
        "apiVersion": "stable.example.com/v1",
        "kind": "CronTab",
        "metadata": {"name": name},
        "spec": {"cronSpec": "* * * * */5", "image": "my-cron-image", **spec},
    }


@dataclass
class Cluster:
    store: ObjectStore
    client: TestClient[Any, Any]

    async def json(
        self, method: str, path: str, body: Any = None, *, status: int = 200, **kwargs: Any
    ) -> Any:
        response = await self.request(method, path, body, **kwargs)
        text = await response.text()
        assert response.status == status, text
        return json.loads(text) if text else None

    async def request(self, method: str, path: str, body: Any = None, **kwargs: Any) -> ClientResponse:
        if body is not None and "data" not in kwargs:
            kwargs["data"] = json.dumps(body)
            kwargs.setdefault("headers", {}).setdefault("Content-Type", "application/json")
        return await self.client.request(method, path, **kwargs)

    async def create_crd(self, crd: Obj) -> Obj:
        created: Obj = await self.json("POST", CRDS, crd, status=201)
        return created

    async def established(self, name: str = "crontabs.stable.example.com") -> Obj:
        async def ready() -> Obj | None:
            crd: Obj = await self.json("GET", f"{CRDS}/{name}")
            conditions = {c["type"]: c["status"] for c in crd["status"].get("conditions") or ()}
            return crd if conditions.get("Established") == "True" else None

        established: Obj = await until(ready)
        return established


async def until(check: Callable[[], Awaitable[Any]], within: float = 1.0) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        if result := await check():
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"not within {within}s")
        await asyncio.sleep(0.01)


async def start(backend: Backend) -> ObjectStore:
    """What the server does at start: a registry, the stored CRDs served again."""
    store = ObjectStore(backend, Registry(from_manifest(selection())), ipaddress.ip_network("10.43.0.0/16"))
    await install_custom_resources(store)
    return store


@pytest.fixture
async def cluster(backend: Backend) -> AsyncIterator[Cluster]:
    store = await start(backend)
    namespaces = store.registry.lookup("", "v1", "namespaces")
    assert namespaces is not None
    await store.create(namespaces, "", {"metadata": {"name": "default"}}, WriteOptions())
    controller = asyncio.create_task(run_crd_controller(store), name="crd-controller")
    try:
        async with TestClient(TestServer(build_app(store))) as client:
            yield Cluster(store, client)
    finally:
        controller.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await controller


@pytest.fixture
async def crontabs(cluster: Cluster) -> Cluster:
    await cluster.create_crd(crontab_crd())
    await cluster.established()
    return cluster


# -- the definition -----------------------------------------------------------------------------


async def test_a_crd_is_served_and_discovered_within_a_second(cluster: Cluster) -> None:
    created = await cluster.create_crd(crontab_crd())
    assert created["status"] == {"acceptedNames": {"plural": "", "kind": ""}, "storedVersions": ["v1"]}
    assert created["spec"]["conversion"] == {"strategy": "None"}
    started = time.monotonic()

    async def discovered() -> bool:
        response = await cluster.request("GET", "/apis/stable.example.com/v1")
        return response.status == 200

    await until(discovered)
    assert time.monotonic() - started < 1.0
    crd = await cluster.established()
    conditions = {c["type"]: (c["status"], c["reason"], c["message"]) for c in crd["status"]["conditions"]}
    assert conditions == {
        "NamesAccepted": ("True", "NoConflicts", "no conflicts found"),
        "Established": ("True", "InitialNamesAccepted", "the initial names have been accepted"),
    }
    assert crd["status"]["acceptedNames"] == {
        "plural": "crontabs",
        "singular": "crontab",
        "shortNames": ["ct"],
        "kind": "CronTab",
        "listKind": "CronTabList",
        "categories": ["all"],
    }
    resources = await cluster.json("GET", "/apis/stable.example.com/v1")
    assert [(r["name"], r["kind"], r["verbs"]) for r in resources["resources"]] == [
        (
            "crontabs",
            "CronTab",
            ["delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"],
        ),
        ("crontabs/status", "CronTab", ["get", "patch", "update"]),
        ("crontabs/scale", "Scale", ["get", "patch", "update"]),
    ]
    groups = await cluster.json("GET", "/apis")
    assert groups["groups"][-1] == {
        "name": "stable.example.com",
        "versions": [{"groupVersion": "stable.example.com/v1", "version": "v1"}],
        "preferredVersion": {"groupVersion": "stable.example.com/v1", "version": "v1"},
    }
    aggregated = await cluster.json("GET", "/apis", headers={"Accept": AGGREGATED})
    [group] = [g for g in aggregated["items"] if g["metadata"]["name"] == "stable.example.com"]
    [resource] = group["versions"][0]["resources"]
    assert (resource["resource"], resource["shortNames"], resource["categories"], resource["scope"]) == (
        "crontabs",
        ["ct"],
        ["all"],
        "Namespaced",
    )
    assert [s["subresource"] for s in resource["subresources"]] == ["status", "scale"]


async def test_the_crd_registers_a_local_apiservice(crontabs: Cluster) -> None:
    async def registered() -> Obj | None:
        response = await crontabs.request(
            "GET", "/apis/apiregistration.k8s.io/v1/apiservices/v1.stable.example.com"
        )
        return await response.json() if response.status == 200 else None

    apiservice = await until(registered)
    assert apiservice["metadata"]["labels"] == {"kube-aggregator.kubernetes.io/automanaged": "true"}
    assert apiservice["spec"] == {
        "group": "stable.example.com",
        "version": "v1",
        "groupPriorityMinimum": 1000,
        "versionPriority": 100,
    }


async def test_openapi_documents_follow_crds(crontabs: Cluster) -> None:
    index = await crontabs.json("GET", "/openapi/v3")
    assert "apis/stable.example.com/v1" in index["paths"]
    document = await crontabs.json("GET", "/openapi/v3/apis/stable.example.com/v1")
    schema = document["components"]["schemas"]["com.example.stable.v1.CronTab"]
    assert schema["x-kubernetes-group-version-kind"] == [
        {"group": "stable.example.com", "kind": "CronTab", "version": "v1"}
    ]
    assert schema["properties"]["spec"]["properties"]["replicas"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 10,
        "default": 1,
    }
    assert schema["properties"]["metadata"]["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
    ]
    patch = document["paths"]["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}"]["patch"]
    assert "application/strategic-merge-patch+json" not in patch["requestBody"]["content"]
    v2 = await crontabs.json("GET", "/openapi/v2")
    assert "com.example.stable.v1.CronTabList" in v2["definitions"]
    proto = await crontabs.request(
        "GET", "/openapi/v2", headers={"Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"}
    )
    assert proto.status == 200 and b"com.example.stable.v1.CronTab" in await proto.read()
    await crontabs.json("DELETE", f"{CRDS}/crontabs.stable.example.com", status=200)

    async def gone() -> bool:
        return "apis/stable.example.com/v1" not in (await crontabs.json("GET", "/openapi/v3"))["paths"]

    await until(gone)
    assert "com.example.stable.v1.CronTab" not in (await crontabs.json("GET", "/openapi/v2"))["definitions"]


async def test_invalid_crds_are_refused_with_upstream_messages(cluster: Cluster) -> None:
    crd = crontab_crd()
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["image"] = {}
    crd["spec"]["conversion"] = {"strategy": "Webhook"}
    status = await cluster.json("POST", CRDS, crd, status=422)
    assert status["message"] == (
        'CustomResourceDefinition.apiextensions.k8s.io "crontabs.stable.example.com" is invalid: ['
        "spec.validation.openAPIV3Schema.properties[spec].properties[image].type: Required value: "
        "must not be empty for specified object fields, "
        "spec.conversion.webhookClientConfig: Required value: required when strategy is set to Webhook, "
        "spec.conversion.conversionReviewVersions: Required value]"
    )


async def test_conflicting_names_are_not_accepted_nor_served(crontabs: Cluster) -> None:
    other = crontab_crd(names={"plural": "crontables", "kind": "CronTab", "shortNames": ["cb"]})
    await crontabs.create_crd(other)

    async def refused() -> Obj | None:
        crd: Obj = await crontabs.json("GET", f"{CRDS}/crontables.stable.example.com")
        conditions = {c["type"]: c for c in crd["status"].get("conditions") or ()}
        return conditions if "NamesAccepted" in conditions else None

    conditions = await until(refused)
    assert {k: (v["status"], v["reason"], v["message"]) for k, v in conditions.items()} == {
        "NamesAccepted": ("False", "ListKindConflict", '"CronTabList" is already in use'),
        "Established": ("False", "NotAccepted", "not all names are accepted"),
    }
    await crontabs.json("GET", "/apis/stable.example.com/v1/namespaces/default/crontables", status=404)
    resources = await crontabs.json("GET", "/apis/stable.example.com/v1")
    assert [r["name"] for r in resources["resources"]] == ["crontabs", "crontabs/status", "crontabs/scale"]


# -- custom resources ---------------------------------------------------------------------------


async def test_custom_resources_are_pruned_defaulted_and_validated(crontabs: Cluster) -> None:
    body = crontab("a")
    body["spec"]["junk"] = 1
    response = await crontabs.request("POST", CRONTABS, body)
    created = await response.json()
    assert response.status == 201
    assert response.headers["Warning"] == '299 - "unknown field \\"spec.junk\\""'
    assert created["spec"] == {"cronSpec": "* * * * */5", "image": "my-cron-image", "replicas": 1}
    assert created["metadata"]["generation"] == 1
    strict = await crontabs.json(
        "POST", f"{CRONTABS}?fieldValidation=Strict", {**body, "metadata": {"name": "b"}}, status=400
    )
    assert strict["message"] == (
        'CronTab in version "v1" cannot be handled as a CronTab: '
        'strict decoding error: unknown field "spec.junk"'
    )
    bad = await crontabs.json("POST", CRONTABS, crontab("c", replicas="string", color="green"), status=422)
    assert bad["message"] == (
        'CronTab.stable.example.com "c" is invalid: ['
        'spec.color: Unsupported value: "green": supported values: "red", "blue", '
        'spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string", '
        ".spec.replicas: Invalid value: 0: "
        ".spec.replicas accessor error: string is of the type string, expected int64]"
    )
    assert [c["reason"] for c in bad["details"]["causes"]] == [
        "FieldValueNotSupported",
        "FieldValueTypeInvalid",
        "FieldValueInvalid",
    ]
    missing = await crontabs.json("POST", CRONTABS, {**crontab("d"), "spec": {"image": "x"}}, status=422)
    assert missing["message"] == 'CronTab.stable.example.com "d" is invalid: spec.cronSpec: Required value'


async def test_get_list_and_watch(crontabs: Cluster) -> None:
    await crontabs.json("POST", CRONTABS, crontab("a"), status=201)
    listed = await crontabs.json("GET", CRONTABS)
    assert (listed["kind"], listed["apiVersion"], [i["metadata"]["name"] for i in listed["items"]]) == (
        "CronTabList",
        "stable.example.com/v1",
        ["a"],
    )
    every = await crontabs.json("GET", "/apis/stable.example.com/v1/crontabs")
    assert [i["metadata"]["namespace"] for i in every["items"]] == ["default"]
    watch = await crontabs.request(
        "GET", f"{CRONTABS}?watch=1&resourceVersion={listed['metadata']['resourceVersion']}"
    )
    await crontabs.json("POST", CRONTABS, crontab("b"), status=201)
    event = json.loads(await asyncio.wait_for(watch.content.readline(), 2))
    assert (event["type"], event["object"]["metadata"]["name"], event["object"]["spec"]["replicas"]) == (
        "ADDED",
        "b",
        1,
    )
    watch.close()


async def test_tables_show_the_printer_columns(crontabs: Cluster) -> None:
    await crontabs.json("POST", CRONTABS, crontab("a", replicas=3), status=201)
    table = await crontabs.json("GET", CRONTABS, headers={"Accept": TABLE})
    assert [(c["name"], c["type"], c["format"]) for c in table["columnDefinitions"]] == [
        ("Name", "string", "name"),
        ("Spec", "string", ""),
        ("Replicas", "integer", ""),
        ("Age", "date", ""),
    ]
    [row] = table["rows"]
    assert row["cells"][:3] == ["a", "* * * * */5", 3]
    assert row["cells"][3].endswith("s")
    assert row["object"]["kind"] == "PartialObjectMetadata"
    single = await crontabs.json("GET", f"{CRONTABS}/a", headers={"Accept": TABLE})
    assert single["rows"][0]["cells"][0] == "a"


async def test_patches_and_server_side_apply(crontabs: Cluster) -> None:
    await crontabs.json("POST", CRONTABS, crontab("a"), status=201)
    merged = await crontabs.json("PATCH", f"{CRONTABS}/a", {"spec": {"replicas": 3}}, headers=MERGE)
    assert (merged["spec"]["replicas"], merged["metadata"]["generation"]) == (3, 2)
    json_patched = await crontabs.json(
        "PATCH",
        f"{CRONTABS}/a",
        [{"op": "replace", "path": "/spec/image", "value": "other"}],
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert json_patched["spec"]["image"] == "other"
    refused = await crontabs.json(
        "PATCH",
        f"{CRONTABS}/a",
        {"spec": {"replicas": 4}},
        headers={"Content-Type": "application/strategic-merge-patch+json"},
        status=415,
    )
    assert (refused["reason"], refused["message"]) == (
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
    )
    too_many = await crontabs.json(
        "PATCH", f"{CRONTABS}/a", {"spec": {"replicas": 11}}, headers=MERGE, status=422
    )
    assert too_many["message"] == (
        'CronTab.stable.example.com "a" is invalid: '
        "spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10"
    )
    applied_yaml = "\n".join(
        [
            "apiVersion: stable.example.com/v1",
            "kind: CronTab",
            "metadata:",
            "  name: s",
            "spec:",
            "  cronSpec: '* * * * *'",
        ]
    )
    applied = await crontabs.json(
        "PATCH",
        f"{CRONTABS}/s?fieldManager=tester",
        data=applied_yaml,
        headers={"Content-Type": "application/apply-patch+yaml"},
        status=201,  # created by the apply
    )
    assert applied["spec"] == {"cronSpec": "* * * * *", "replicas": 1}
    assert [m["manager"] for m in applied["metadata"]["managedFields"]] == ["tester"]
    reapplied = await crontabs.json(
        "PATCH",
        f"{CRONTABS}/s?fieldManager=tester",
        data=applied_yaml.replace("'* * * * *'", "'*/5 * * * *'"),
        headers={"Content-Type": "application/apply-patch+yaml"},
    )
    assert reapplied["spec"]["cronSpec"] == "*/5 * * * *"


async def test_status_and_spec_are_written_apart(crontabs: Cluster) -> None:
    created = await crontabs.json("POST", CRONTABS, {**crontab("a"), "status": {"replicas": 9}}, status=201)
    assert "status" not in created  # create cannot set status
    with_status = await crontabs.json(
        "PUT", f"{CRONTABS}/a/status", {**created, "status": {"replicas": 2}, "spec": {"cronSpec": "x"}}
    )
    assert (with_status["status"], with_status["spec"]["cronSpec"]) == ({"replicas": 2}, "* * * * */5")
    assert with_status["metadata"]["generation"] == 1
    main = await crontabs.json("PUT", f"{CRONTABS}/a", {**with_status, "status": {"replicas": 7}})
    assert main["status"] == {"replicas": 2}  # the main resource does not write status
    assert main["metadata"]["generation"] == 1  # nothing outside status changed
    changed = await crontabs.json("PUT", f"{CRONTABS}/a", {**main, "spec": {**main["spec"], "image": "new"}})
    assert changed["metadata"]["generation"] == 2
    bad = await crontabs.json(
        "PATCH", f"{CRONTABS}/a/status", {"status": {"replicas": "two"}}, headers=MERGE, status=422
    )
    assert bad["details"]["causes"][0]["field"] == "status.replicas"


async def test_the_scale_subresource(crontabs: Cluster) -> None:
    await crontabs.json("POST", CRONTABS, crontab("a", replicas=2), status=201)
    await crontabs.json(
        "PATCH",
        f"{CRONTABS}/a/status",
        {"status": {"replicas": 2, "labelSelector": "app=cron"}},
        headers=MERGE,
    )
    scale = await crontabs.json("GET", f"{CRONTABS}/a/scale")
    assert (scale["kind"], scale["apiVersion"], scale["spec"], scale["status"]) == (
        "Scale",
        "autoscaling/v1",
        {"replicas": 2},
        {"replicas": 2, "selector": "app=cron"},
    )
    scaled = await crontabs.json("PUT", f"{CRONTABS}/a/scale", {**scale, "spec": {"replicas": 5}})
    assert scaled["spec"] == {"replicas": 5}
    assert (await crontabs.json("GET", f"{CRONTABS}/a"))["spec"]["replicas"] == 5
    patched = await crontabs.json("PATCH", f"{CRONTABS}/a/scale", {"spec": {"replicas": 4}}, headers=MERGE)
    assert patched["spec"] == {"replicas": 4}
    await crontabs.json("PATCH", f"{CRONTABS}/a/scale", {"spec": {"replicas": 50}}, headers=MERGE, status=422)


async def test_field_selectors_include_selectable_fields(crontabs: Cluster) -> None:
    await crontabs.json("POST", CRONTABS, crontab("a", color="red"), status=201)
    await crontabs.json("POST", CRONTABS, crontab("b", color="blue"), status=201)
    blue = await crontabs.json("GET", f"{CRONTABS}?fieldSelector=spec.color%3Dblue")
    assert [i["metadata"]["name"] for i in blue["items"]] == ["b"]
    named = await crontabs.json("GET", f"{CRONTABS}?fieldSelector=metadata.name%3Da")
    assert [i["metadata"]["name"] for i in named["items"]] == ["a"]
    refused = await crontabs.json("GET", f"{CRONTABS}?fieldSelector=spec.image%3Dx", status=400)
    assert refused["message"] == "field label not supported: spec.image"


async def test_versions_share_their_objects(cluster: Cluster) -> None:
    crd = crontab_crd()
    v1 = crd["spec"]["versions"][0]
    v1beta1 = {**json.loads(json.dumps(v1)), "name": "v1beta1", "storage": False}
    v1beta1["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["legacy"] = {"type": "string"}
    crd["spec"]["versions"] = [v1beta1, v1]
    await cluster.create_crd(crd)
    await cluster.established()
    old = "/apis/stable.example.com/v1beta1/namespaces/default/crontabs"
    created = await cluster.json(
        "POST", old, {**crontab("a", legacy="yes"), "apiVersion": "stable.example.com/v1beta1"}, status=201
    )
    assert (created["apiVersion"], created["spec"]["legacy"]) == ("stable.example.com/v1beta1", "yes")
    read = await cluster.json("GET", f"{CRONTABS}/a")
    assert read["apiVersion"] == "stable.example.com/v1"
    assert "legacy" not in read["spec"]  # v1's schema does not know it: pruned when read as v1
    group = await cluster.json("GET", "/apis/stable.example.com")
    assert [v["version"] for v in group["versions"]] == ["v1", "v1beta1"]
    stored = await cluster.store.backend.get(b"/registry/stable.example.com/crontabs/default/a")
    assert stored is not None and json.loads(stored.value)["apiVersion"] == "stable.example.com/v1"


async def test_deleting_a_crd_deletes_its_objects_then_itself(crontabs: Cluster) -> None:
    await crontabs.json("POST", CRONTABS, crontab("free"), status=201)
    held = crontab("held")
    held["metadata"]["finalizers"] = ["example.com/hold"]
    await crontabs.json("POST", CRONTABS, held, status=201)
    deleting = await crontabs.json("DELETE", f"{CRDS}/crontabs.stable.example.com", status=200)
    assert deleting["metadata"]["finalizers"] == ["customresourcecleanup.apiextensions.k8s.io"]

    async def in_progress() -> Obj | None:
        crd: Obj = await crontabs.json("GET", f"{CRDS}/crontabs.stable.example.com")
        terminating = {c["type"]: c for c in crd["status"]["conditions"]}.get("Terminating")
        return terminating if terminating and terminating["reason"] == "InstanceDeletionInProgress" else None

    terminating = await until(in_progress)
    assert (terminating["status"], terminating["message"]) == (
        "True",
        "CustomResource deletion is in progress",
    )

    async def free_gone() -> bool:
        return (await crontabs.request("GET", f"{CRONTABS}/free")).status == 404

    await until(free_gone)
    refused = await crontabs.json("POST", CRONTABS, crontab("new"), status=405)
    assert (refused["reason"], refused["message"]) == (
        "MethodNotAllowed",
        "create not allowed while custom resource definition is terminating",
    )
    await crontabs.json("PATCH", f"{CRONTABS}/held", {"metadata": {"finalizers": None}}, headers=MERGE)

    async def crd_gone() -> bool:
        return (await crontabs.request("GET", f"{CRDS}/crontabs.stable.example.com")).status == 404

    await until(crd_gone, within=3.0)
    await until(lambda: _status_is(crontabs, CRONTABS, 404))
    await crontabs.json("GET", "/apis/stable.example.com/v1", status=404)
    assert await crontabs.store.backend.get(b"/registry/stable.example.com/crontabs/default/held") is None
    apiservice = "/apis/apiregistration.k8s.io/v1/apiservices/v1.stable.example.com"
    await until(lambda: _status_is(crontabs, apiservice, 404))


async def _status_is(cluster: Cluster, path: str, status: int) -> bool:
    return (await cluster.request("GET", path)).status == status


async def test_crds_are_served_again_after_a_restart(crontabs: Cluster, backend: Backend) -> None:
    await crontabs.json("POST", CRONTABS, crontab("a"), status=201)
    restarted = await start(backend)  # no controller: serving comes from the stored CRD alone
    resource = restarted.registry.lookup("stable.example.com", "v1", "crontabs")
    assert resource is not None and resource.custom is not None
    async with TestClient(TestServer(build_app(restarted))) as client:
        response = await client.get(f"{CRONTABS}/a")
        assert response.status == 200
        assert (await response.json())["spec"]["replicas"] == 1


async def test_names_freed_by_a_deleted_crd_go_to_the_next(crontabs: Cluster) -> None:
    await crontabs.create_crd(crontab_crd(names={"plural": "crontables", "kind": "CronTab"}))
    await crontabs.json("DELETE", f"{CRDS}/crontabs.stable.example.com", status=200)
    crd = await crontabs.established("crontables.stable.example.com")
    assert crd["status"]["acceptedNames"]["kind"] == "CronTab"
    await crontabs.json("GET", "/apis/stable.example.com/v1/namespaces/default/crontables")


async def test_a_crd_that_was_never_established_is_deleted_at_once(crontabs: Cluster) -> None:
    await crontabs.create_crd(crontab_crd(names={"plural": "crontables", "kind": "CronTab"}))
    await crontabs.json("DELETE", f"{CRDS}/crontables.stable.example.com", status=200)

    async def gone() -> bool:
        return await _status_is(crontabs, f"{CRDS}/crontables.stable.example.com", 404)

    await until(gone)


async def test_cluster_scoped_resources_and_crd_updates(cluster: Cluster) -> None:
    crd = crontab_crd(scope="Cluster")
    await cluster.create_crd(crd)
    created = await cluster.established()
    path = "/apis/stable.example.com/v1/crontabs"
    body = crontab("a")
    made = await cluster.json("POST", path, body, status=201)
    assert "namespace" not in made["metadata"]
    await cluster.json("GET", f"{path}/a")
    refused = await cluster.json("GET", f"{path}?fieldSelector=metadata.namespace%3Dx", status=400)
    assert refused["message"] == "field label not supported: metadata.namespace"
    columns = created["spec"]["versions"][0]["additionalPrinterColumns"]
    columns.append({"name": "Image", "type": "string", "jsonPath": ".spec.image", "priority": 1})
    await cluster.json("PUT", f"{CRDS}/crontabs.stable.example.com", created)

    async def five_columns() -> Obj | None:
        table: Obj = await cluster.json("GET", path, headers={"Accept": TABLE})
        return table if len(table["columnDefinitions"]) == 5 else None

    table = await until(five_columns)
    assert table["rows"][0]["cells"][-1] == "my-cron-image"
    assert table["columnDefinitions"][-1]["priority"] == 1


async def test_a_deleted_namespace_keeps_its_custom_resources_until_it_is_emptied(crontabs: Cluster) -> None:
    """Upstream's flow: the namespace turns Terminating; its content is the namespace
    controller's to delete (played here), which then finalizes the namespace."""
    await crontabs.json("POST", "/api/v1/namespaces", {"metadata": {"name": "team"}}, status=201)
    crontabs_path = "/apis/stable.example.com/v1/namespaces/team/crontabs"
    await crontabs.json("POST", crontabs_path, crontab("a"), status=201)
    ns = await crontabs.json("DELETE", "/api/v1/namespaces/team", status=200)
    assert (ns["status"]["phase"], ns["spec"]["finalizers"]) == ("Terminating", ["kubernetes"])
    assert await crontabs.store.backend.get(b"/registry/stable.example.com/crontabs/team/a") is not None
    await crontabs.json("POST", crontabs_path, crontab("b"), status=403)
    again = await crontabs.json("DELETE", "/api/v1/namespaces/team", status=409)
    assert "The system is ensuring all content is removed from this namespace" in again["message"]
    await crontabs.json("DELETE", f"{crontabs_path}/a", status=200)
    await crontabs.json("PUT", "/api/v1/namespaces/team/finalize", {**ns, "spec": {}}, status=200)
    await crontabs.json("GET", "/api/v1/namespaces/team", status=404)


async def test_a_delete_left_pending_answers_200_unless_cascading_was_asked(crontabs: Cluster) -> None:
    """Upstream answers 202 only for a pending delete given ``orphanDependents: false``."""
    path = "/apis/stable.example.com/v1/namespaces/default/crontabs"
    for name in ("kept", "cascaded"):
        body = crontab(name)
        body["metadata"]["finalizers"] = ["example.com/hold"]
        await crontabs.json("POST", path, body, status=201)
    kept = await crontabs.json("DELETE", f"{path}/kept", status=200)
    assert kept["metadata"]["deletionTimestamp"]
    await crontabs.json("DELETE", f"{path}/cascaded", {"orphanDependents": False}, status=202)
    for name in ("kept", "cascaded"):
        await crontabs.json("PATCH", f"{path}/{name}", {"metadata": {"finalizers": None}}, headers=MERGE)
        await crontabs.json("GET", f"{path}/{name}", status=404)


# -- what a CRD may not do ----------------------------------------------------------------------


def _set(obj: Obj, path: tuple[str | int, ...], value: Any) -> Obj:
    node: Any = obj
    for step in path[:-1]:
        node = node[step]
    if value is None:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return obj


_VERSION = ("spec", "versions", 0)
_SCHEMA = (*_VERSION, "schema", "openAPIV3Schema")
_IN_VERSION = "CustomResourceDefinitionVersion.spec.versions."
_IN_SCHEMA = "JSONSchemaProps.spec.versions.schema.openAPIV3Schema."
WRONGLY_TYPED: list[tuple[tuple[str | int, ...], Any, str]] = [
    ((*_VERSION, "subresources"), ["status"], _IN_VERSION + "subresources"),
    ((*_VERSION, "schema"), ["x"], _IN_VERSION + "schema"),
    ((*_VERSION, "selectableFields"), {"a": 1}, _IN_VERSION + "selectableFields"),
    ((*_SCHEMA, "properties"), ["spec"], _IN_SCHEMA + "properties"),
    ((*_SCHEMA, "required"), 5, _IN_SCHEMA + "required"),
    ((*_SCHEMA, "properties", "spec", "required"), [["cronSpec"]], _IN_SCHEMA + "properties.required"),
    ((*_SCHEMA, "x-kubernetes-list-map-keys"), 5, _IN_SCHEMA + "x-kubernetes-list-map-keys"),
    ((*_SCHEMA, "x-kubernetes-validations"), 5, _IN_SCHEMA + "x-kubernetes-validations"),
    (("spec", "names", "shortNames"), 5, "CustomResourceDefinitionNames.spec.names.shortNames"),
    (("spec", "names", "shortNames"), "ab", "CustomResourceDefinitionNames.spec.names.shortNames"),
    (("spec", "names", "categories"), 5, "CustomResourceDefinitionNames.spec.names.categories"),
    ((*_VERSION, "additionalPrinterColumns"), 7, _IN_VERSION + "additionalPrinterColumns"),
    ((*_VERSION, "served"), "yes", _IN_VERSION + "served"),
    (
        (*_VERSION, "additionalPrinterColumns", 0, "priority"),
        "x",
        "CustomResourceColumnDefinition.spec.versions.additionalPrinterColumns.priority",
    ),
]


async def test_wrongly_typed_crds_are_refused_before_validation(cluster: Cluster) -> None:
    for path, value, field in WRONGLY_TYPED:
        status = await cluster.json("POST", CRDS, _set(crontab_crd(), path, value), status=400)
        assert status["reason"] == "BadRequest"
        assert status["message"].startswith(
            'CustomResourceDefinition in version "v1" cannot be handled as a CustomResourceDefinition: '
            "json: cannot unmarshal "
        ), path
        assert f" into Go struct field {field} of type " in status["message"]
    status = await cluster.json("POST", CRDS, _set(crontab_crd(), ("spec",), None), status=422)
    assert "spec.group: Required value" in status["message"]
    status = await cluster.json("POST", CRDS, _set(crontab_crd(), (*_VERSION, "name"), None), status=422)
    assert 'spec.versions[0].name: Invalid value: ""' in status["message"]
    created = await cluster.create_crd(crontab_crd())
    fixed = await cluster.json(
        "PATCH",
        f"{CRDS}/crontabs.stable.example.com",
        {"spec": {"names": {"shortNames": 5}}},
        headers=MERGE,
        status=400,
    )
    assert "CustomResourceDefinitionNames.spec.names.shortNames of type []string" in fixed["message"]
    assert (await cluster.established())["metadata"]["uid"] == created["metadata"]["uid"]
    await cluster.json("GET", "/openapi/v2")


def _stored_crd(name: str, path: tuple[str | int, ...], value: Any) -> Obj:
    """A CRD as an older k3py may have stored it (a wrongly-typed field, established, served)."""
    group = f"{name}.example.com"
    crd = _set(crontab_crd(group=group), path, value)
    crd["metadata"].update(name=f"crontabs.{group}", uid=name, creationTimestamp="2026-01-01T00:00:00Z")
    crd["status"] = {
        "acceptedNames": {
            "plural": "crontabs",
            "singular": "crontab",
            "kind": "CronTab",
            "listKind": "CronTabList",
        },
        "conditions": [
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": ""}
        ],
        "storedVersions": ["v1"],
    }
    return crd


async def test_unreadable_stored_crds_stop_neither_the_server_nor_the_others(backend: Backend) -> None:
    rows = [_stored_crd(f"bad{i}", path, value) for i, (path, value, _) in enumerate(WRONGLY_TYPED)]
    rows += [
        _stored_crd("nospec", ("spec",), None),
        _stored_crd("noname", (*_VERSION, "name"), None),
        _stored_crd("good", ("spec", "names", "shortNames"), ["ct"]),
    ]
    for row in rows:
        key = f"/registry/apiextensions.k8s.io/customresourcedefinitions/{row['metadata']['name']}"
        await backend.create(key.encode(), json.dumps(row).encode())
    store = await start(backend)
    assert [(r.group, r.plural) for r in store.registry.custom()] == [("good.example.com", "crontabs")]
    namespaces = store.registry.lookup("", "v1", "namespaces")
    assert namespaces is not None
    await store.create(namespaces, "", {"metadata": {"name": "default"}}, WriteOptions())
    controller = asyncio.create_task(run_crd_controller(store), name="crd-controller")
    try:
        async with TestClient(TestServer(build_app(store))) as client:
            cluster = Cluster(store, client)
            await cluster.create_crd(crontab_crd())
            await cluster.established()
            await cluster.json("POST", CRONTABS, crontab("a"), status=201)
            good = "/apis/good.example.com/v1/namespaces/default/crontabs"
            await cluster.json(
                "POST", good, {**crontab("b"), "apiVersion": "good.example.com/v1"}, status=201
            )
            v2 = await cluster.json("GET", "/openapi/v2")
            assert "com.example.good.v1.CronTab" in v2["definitions"]
            assert not any(".bad" in name for name in v2["definitions"])
            await cluster.json("GET", "/apis/bad3.example.com/v1/namespaces/default/crontabs", status=404)
            assert not controller.done()
    finally:
        controller.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await controller


async def _terminating(cluster: Cluster, name: str) -> Obj | None:
    response = await cluster.request("GET", f"{CRDS}/{name}")
    if response.status != 200:
        return None
    crd: Obj = await response.json()
    found: Obj | None = {c["type"]: c for c in crd["status"].get("conditions") or ()}.get("Terminating")
    return found


async def test_a_crd_over_a_built_in_is_not_served_and_its_deletion_keeps_the_built_ins(
    crontabs: Cluster,
) -> None:
    policies = "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies"
    policy = {"metadata": {"name": "deny"}, "spec": {"podSelector": {}}}
    await crontabs.json("POST", policies, policy, status=201)
    await crontabs.json("POST", CRONTABS, crontab("a"), status=201)
    approved = {"api-approved.kubernetes.io": "unapproved, testing"}
    for group, plural, kind, version in (
        ("networking.k8s.io", "networkpolicies", "NetworkPolicy", "v9"),
        ("apiextensions.k8s.io", "customresourcedefinitions", "CustomResourceDefinition", "v1"),
    ):
        crd = crontab_crd(group=group, names={"plural": plural, "kind": kind}, scope="Namespaced")
        crd["spec"]["versions"][0]["name"] = version
        crd["metadata"]["annotations"] = approved
        name = f"{plural}.{group}"
        await crontabs.create_crd(crd)

        async def refused(name: str = name) -> Obj | None:
            got: Obj = await crontabs.json("GET", f"{CRDS}/{name}")
            conditions = {c["type"]: c for c in got["status"].get("conditions") or ()}
            return conditions if "NamesAccepted" in conditions else None

        conditions = await until(refused)
        assert (conditions["NamesAccepted"]["status"], conditions["NamesAccepted"]["reason"]) == (
            "False",
            "OverlappingBuiltInResource",
        )
        assert conditions["Established"]["status"] == "False"
        await crontabs.json("GET", f"/apis/{group}/{version}/namespaces/default/{plural}", status=404)
        await crontabs.json("DELETE", f"{CRDS}/{name}", status=200)

        async def gone(name: str = name) -> bool:
            return await _status_is(crontabs, f"{CRDS}/{name}", 404)

        await until(gone)
    assert [p["metadata"]["name"] for p in (await crontabs.json("GET", policies))["items"]] == ["deny"]
    assert [c["metadata"]["name"] for c in (await crontabs.json("GET", CRDS))["items"]] == [
        "crontabs.stable.example.com"
    ]
    await crontabs.json("GET", f"{CRONTABS}/a")


async def test_deleting_a_crd_over_a_built_in_says_why_nothing_is_deleted(crontabs: Cluster) -> None:
    """A CRD an older k3py established over a built-in: not served, and deleting it skips the objects."""
    policies = "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies"
    await crontabs.json(
        "POST", policies, {"metadata": {"name": "deny"}, "spec": {"podSelector": {}}}, status=201
    )
    row = _stored_crd("x", ("spec", "group"), "networking.k8s.io")
    row["spec"]["names"] = {"plural": "networkpolicies", "kind": "NetworkPolicy"}
    row["status"]["acceptedNames"] = {"plural": "networkpolicies", "kind": "NetworkPolicy"}
    row["metadata"]["name"] = "networkpolicies.networking.k8s.io"
    row["metadata"]["finalizers"] = ["example.com/hold"]
    row["spec"]["versions"][0]["name"] = "v9"
    row["status"]["storedVersions"] = ["v9"]
    key = b"/registry/apiextensions.k8s.io/customresourcedefinitions/networkpolicies.networking.k8s.io"
    await crontabs.store.backend.create(key, json.dumps(row).encode())
    await crontabs.json("GET", "/apis/networking.k8s.io/v9/namespaces/default/networkpolicies", status=404)
    await crontabs.json("DELETE", f"{CRDS}/networkpolicies.networking.k8s.io", status=200)

    async def skipped() -> Obj | None:
        terminating = await _terminating(crontabs, "networkpolicies.networking.k8s.io")
        return terminating if terminating and terminating["status"] == "False" else None

    terminating = await until(skipped)
    assert (terminating["reason"], terminating["message"]) == (
        "OverlappingBuiltInResource",
        "instances overlap with built-in resources in storage",
    )
    await crontabs.json(
        "PATCH",
        f"{CRDS}/networkpolicies.networking.k8s.io",
        {"metadata": {"finalizers": None}},
        headers=MERGE,
    )
    await until(lambda: _status_is(crontabs, f"{CRDS}/networkpolicies.networking.k8s.io", 404))
    assert [p["metadata"]["name"] for p in (await crontabs.json("GET", policies))["items"]] == ["deny"]


async def test_a_crd_in_a_built_in_group_version_leaves_the_built_ins_alone(cluster: Cluster) -> None:
    crd = crontab_crd(group="rbac.authorization.k8s.io")
    crd["metadata"]["annotations"] = {"api-approved.kubernetes.io": "unapproved, testing"}
    await cluster.create_crd(crd)
    await cluster.established("crontabs.rbac.authorization.k8s.io")
    mine = "/apis/rbac.authorization.k8s.io/v1/namespaces/default/crontabs"
    await cluster.json(
        "POST", mine, {**crontab("a"), "apiVersion": "rbac.authorization.k8s.io/v1"}, status=201
    )
    roles = "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles"
    refused = await cluster.json("POST", roles, {"metadata": {"name": "r"}, "rules": [{}]}, status=422)
    assert "rules[0].verbs: Required value" in refused["message"]
    await cluster.json("POST", roles, {"metadata": {"name": "r"}, "rules": []}, status=201)
    assert await cluster.store.backend.get(b"/registry/rbac.authorization.k8s.io/roles/default/r") is not None
    discovered = await cluster.json("GET", "/apis/rbac.authorization.k8s.io/v1")
    names = [r["name"] for r in discovered["resources"]]
    assert names[:4] == ["clusterrolebindings", "clusterroles", "rolebindings", "roles"]
    assert "crontabs" in names
    await asyncio.sleep(0.2)  # the controller's registration pass
    apiservice = "/apis/apiregistration.k8s.io/v1/apiservices/v1.rbac.authorization.k8s.io"
    await cluster.json("GET", apiservice, status=404)  # registered at start as a built-in's, not here


async def test_openapi_keeps_built_in_definitions(cluster: Cluster) -> None:
    crd = crontab_crd(group="core.api.k8s.io", names={"plural": "pods", "kind": "Pod"})
    crd["metadata"]["annotations"] = {"api-approved.kubernetes.io": "unapproved, testing"}
    await cluster.create_crd(crd)
    await cluster.established("pods.core.api.k8s.io")
    v2 = await cluster.json("GET", "/openapi/v2")
    pod = v2["definitions"]["io.k8s.api.core.v1.Pod"]
    assert pod["x-kubernetes-group-version-kind"] == [{"group": "", "kind": "Pod", "version": "v1"}]
    assert pod["properties"]["spec"]["$ref"] == "#/definitions/io.k8s.api.core.v1.PodSpec"
    custom = v2["definitions"]["io.k8s.api.core.v1.Pod_v2"]
    assert custom["x-kubernetes-group-version-kind"] == [
        {"group": "core.api.k8s.io", "kind": "Pod", "version": "v1"}
    ]
    core = await cluster.json("GET", "/openapi/v3/api/v1")
    assert core["components"]["schemas"]["io.k8s.api.core.v1.Pod"] == {
        **core["components"]["schemas"]["io.k8s.api.core.v1.Pod"],
        "x-kubernetes-group-version-kind": [{"group": "", "kind": "Pod", "version": "v1"}],
    }
