"""The OpenAPI documents: what kubectl looks for in them, and the schema dialect."""

from __future__ import annotations

import hashlib

import orjson

from k3py.api.crd.model import VERBS, CustomResource
from k3py.api.resources import Registry, Resource
from k3py.apiserver.openapi import V3_REF, OpenAPI, convert


def test_every_patch_operation_declares_field_validation() -> None:
    openapi = OpenAPI(Registry())
    body, digest = openapi.v3_document("apps", "v1")
    assert hashlib.sha512(body).hexdigest().upper() == digest
    doc = orjson.loads(body)
    patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {
        "group": "apps",
        "version": "v1",
        "kind": "Deployment",
    }
    assert {"name": "fieldValidation", "in": "query"}.items() <= next(
        p for p in patch["parameters"] if p["name"] == "fieldValidation"
    ).items()
    assert "io.k8s.api.apps.v1.Deployment" in doc["components"]["schemas"]
    assert "io.k8s.api.core.v1.PodSpec" in doc["components"]["schemas"]  # referenced, so included
    assert "io.k8s.api.core.v1.Service" not in doc["components"]["schemas"]  # not referenced


def test_index_points_at_current_hashes() -> None:
    openapi = OpenAPI(Registry())
    index = openapi.v3_index()["paths"]
    _, digest = openapi.v3_document("", "v1")
    assert index["api/v1"]["serverRelativeURL"] == f"/openapi/v3/api/v1?hash={digest}"
    assert "apis/batch/v1" in index


def test_schema_dialect() -> None:
    converted = convert(
        {
            "type": ["object", "null"],
            "properties": {
                "port": {"oneOf": [{"type": ["string", "null"]}, {"type": ["integer", "null"]}]},
                "meta": {
                    "$ref": "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
                    "description": "d",
                },
                "kind": {
                    "type": ["string", "null"],
                    "enum": ["Deployment"],
                    "description": "Kind is a string value",
                },
            },
        },
        V3_REF,
    )
    assert converted["type"] == "object"
    assert converted["properties"]["port"] == {
        "type": "string",
        "format": "int-or-string",
        "x-kubernetes-int-or-string": True,
    }
    assert converted["properties"]["meta"] == {
        "allOf": [{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}],
        "description": "d",
    }
    assert "enum" not in converted["properties"]["kind"]


def test_v2_holds_every_served_kind() -> None:
    doc = orjson.loads(OpenAPI(Registry()).v2_document())
    assert doc["swagger"] == "2.0"
    kinds = {
        (gvk["group"], gvk["kind"])
        for schema in doc["definitions"].values()
        for gvk in schema.get("x-kubernetes-group-version-kind", [])
    }
    for res in Registry():
        assert (res.group, res.kind) in kinds, res.name


def test_operations_follow_each_resources_verbs() -> None:
    paths = orjson.loads(OpenAPI(Registry()).v2_document())["paths"]
    assert "delete" not in paths["/api/v1/namespaces"]  # no deletecollection on namespaces upstream
    assert {"get", "post", "delete"} <= paths["/api/v1/namespaces/{namespace}/pods"].keys()
    assert {"get", "put", "patch", "delete"} <= paths["/api/v1/namespaces/{name}"].keys()


def test_a_custom_definition_never_replaces_a_built_in_one() -> None:
    registry = Registry()
    builtin = orjson.loads(OpenAPI(registry).v2_document())["definitions"]["io.k8s.api.core.v1.Pod"]
    schema = {
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": {"x": {"type": "string"}}}},
    }
    custom = CustomResource(
        crd_name="pods.core.api.k8s.io", list_kind="PodList", namespaced=True, schema=schema
    )
    registry.set_custom([Resource("core.api.k8s.io", "v1", "Pod", "pods", True, verbs=VERBS, custom=custom)])
    definitions = orjson.loads(OpenAPI(registry).v2_document())["definitions"]
    assert definitions["io.k8s.api.core.v1.Pod"] == builtin
    renamed = definitions["io.k8s.api.core.v1.Pod_v2"]
    assert renamed["x-kubernetes-group-version-kind"] == [
        {"group": "core.api.k8s.io", "kind": "Pod", "version": "v1"}
    ]
    assert renamed["properties"]["spec"]["properties"] == {"x": {"type": "string"}}
    items = definitions["io.k8s.api.core.v1.Pod_v2List"]["properties"]["items"]["items"]
    assert items == {"$ref": "#/definitions/io.k8s.api.core.v1.Pod_v2"}
    document = orjson.loads(OpenAPI(registry).v3_document("core.api.k8s.io", "v1")[0])
    assert "io.k8s.api.core.v1.Pod_v2" in document["components"]["schemas"]
    assert "io.k8s.api.core.v1.Pod" not in document["components"]["schemas"]
