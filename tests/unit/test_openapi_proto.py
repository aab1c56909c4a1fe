"""The OpenAPI v2 document as gnostic protobuf: field numbers, oneofs, Any YAML, negotiation.

Messages are read back with the small wire reader below (independent of the encoder); the
YAML expectations were produced by go.yaml.in/yaml/v3 v3.0.4 through gnostic's
``compiler.Marshal`` (the slow e2e test compares a whole served document with gnostic itself).
"""

from __future__ import annotations

import struct
from typing import Any

import orjson
import pytest

from k3py.api.resources import Registry
from k3py.apiserver import openapi_proto
from k3py.apiserver.handlers import Api
from k3py.apiserver.openapi import OpenAPI
from k3py.apiserver.openapi_proto import CONTENT_TYPE, encode
from k3py.apiserver.openapi_yaml import GoYaml

Fields = dict[int, list[Any]]  # field number → values (int for varints/fixed64, bytes otherwise)


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def fields(data: bytes) -> Fields:
    out: Fields = {}
    pos = 0
    while pos < len(data):
        key, pos = read_varint(data, pos)
        number, wire = key >> 3, key & 7
        value: Any
        if wire == 0:
            value, pos = read_varint(data, pos)
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 2:
            length, pos = read_varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
        else:
            raise AssertionError(f"unexpected wire type {wire}")
        out.setdefault(number, []).append(value)
    return out


def numbers(data: bytes) -> list[int]:
    """Field numbers in the order they are written."""
    order = []
    pos = 0
    while pos < len(data):
        key, pos = read_varint(data, pos)
        order.append(key >> 3)
        if key & 7 == 0:
            _, pos = read_varint(data, pos)
        elif key & 7 == 1:
            pos += 8
        else:
            length, pos = read_varint(data, pos)
            pos += length
    return order


def one(data: bytes, *path: int) -> bytes:
    """The single value at a path of field numbers."""
    for number in path:
        values = fields(data)[number]
        assert len(values) == 1, (number, values)
        data = values[0]
    return data


def named(data: bytes, number: int) -> dict[str, bytes]:
    """A list of Named* pairs (1: name, 2: value) as a dict, in order."""
    return {fields(pair)[1][0].decode(): fields(pair).get(2, [b""])[0] for pair in fields(data)[number]}


def any_yaml(data: bytes) -> str:
    assert set(fields(data)) == {2}, "gnostic sets only the yaml of an Any"
    text: str = one(data, 2).decode()
    return text


def document(**members: Any) -> dict[str, Any]:
    return {"swagger": "2.0", "info": {"title": "t", "version": "v1"}, "paths": {}, **members}


# -- the document ------------------------------------------------------------------------------


def test_document_info_and_field_order() -> None:
    doc = document(consumes=["application/json"], **{"x-top": {"a": 1}})
    data = encode(doc).data
    assert numbers(data) == [1, 2, 6, 8, 16]  # swagger, info, consumes, paths, vendor_extension
    assert one(data, 1) == b"2.0"
    info = one(data, 2)
    assert fields(info) == {1: [b"t"], 2: [b"v1"]}
    assert any_yaml(named(data, 16)["x-top"]) == "a: 1\n"
    assert one(data, 8) == b""  # an empty Paths is still present, as Go writes a non-nil message


def test_paths_operations_and_parameters() -> None:
    doc = document(
        paths={
            "/apis/apps/v1/namespaces/{namespace}/deployments": {
                "parameters": [
                    {"name": "namespace", "in": "path", "required": True, "type": "string"},
                    {"$ref": "#/parameters/pretty"},
                ],
                "post": {
                    "operationId": "createDeployment",
                    "tags": ["apps_v1"],
                    "consumes": ["*/*"],
                    "parameters": [
                        {
                            "name": "body",
                            "in": "body",
                            "required": True,
                            "schema": {"$ref": "#/definitions/D"},
                        },
                        {"name": "dryRun", "in": "query", "type": "string", "uniqueItems": True},
                        {"name": "X-Trace", "in": "header", "type": "string"},
                        {"name": "file", "in": "formData", "type": "file"},
                    ],
                    "responses": {
                        "200": {"description": "OK", "schema": {"$ref": "#/definitions/D"}},
                        "default": {"$ref": "#/responses/error"},
                        "x-note": "n",
                    },
                    "x-kubernetes-action": "post",
                    "x-kubernetes-group-version-kind": {
                        "group": "apps",
                        "kind": "Deployment",
                        "version": "v1",
                    },
                },
            },
            "x-paths-extension": True,
        }
    )
    paths = one(encode(doc).data, 8)
    assert numbers(paths) == [1, 2]  # vendor extensions (1) are written before the paths (2)
    assert any_yaml(named(paths, 1)["x-paths-extension"]) == "true\n"
    item = named(paths, 2)["/apis/apps/v1/namespaces/{namespace}/deployments"]
    assert numbers(item) == [4, 9, 9]  # post, parameters
    path_param, ref = (fields(p) for p in fields(item)[9])
    sub = one(path_param[1][0], 2, 4)  # ParametersItem.parameter → Parameter.non_body → path sub-schema
    assert fields(sub) == {1: [1], 2: [b"path"], 4: [b"namespace"], 5: [b"string"]}
    assert fields(ref[2][0]) == {1: [b"#/parameters/pretty"]}  # ParametersItem.json_reference

    post = one(item, 4)
    assert fields(post)[1] == [b"apps_v1"] and fields(post)[5] == [b"createDeployment"]
    body, query, header, form = (one(p, 1) for p in fields(post)[8])
    assert fields(one(body, 1)) == {2: [b"body"], 3: [b"body"], 4: [1], 5: [one(body, 1, 5)]}
    assert fields(one(body, 1, 5)) == {1: [b"#/definitions/D"]}
    assert fields(one(query, 2, 3)) == {2: [b"query"], 4: [b"dryRun"], 6: [b"string"], 20: [1]}
    assert fields(one(header, 2, 1))[2] == [b"header"]
    assert fields(one(form, 2, 2))[6] == [b"file"]

    responses = one(post, 9)
    codes = named(responses, 1)
    assert list(codes) == ["200", "default"]
    ok = one(codes["200"], 1)  # ResponseValue.response
    assert fields(ok)[1] == [b"OK"]
    assert fields(one(ok, 2, 1)) == {1: [b"#/definitions/D"]}  # SchemaItem.schema
    assert fields(one(codes["default"], 2)) == {1: [b"#/responses/error"]}  # ResponseValue.json_reference
    assert any_yaml(named(responses, 2)["x-note"]) == "n\n"
    extensions = named(post, 13)
    assert any_yaml(extensions["x-kubernetes-action"]) == "post\n"
    assert (
        any_yaml(extensions["x-kubernetes-group-version-kind"])
        == "group: apps\nkind: Deployment\nversion: v1\n"
    )


def test_schema_fields() -> None:
    schema = {
        "description": "d",
        "type": "object",
        "required": ["spec"],
        "properties": {
            "spec": {"$ref": "#/definitions/Spec"},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "closed": {"type": "object", "additionalProperties": False},
            "ports": {"type": "array", "items": {"type": "integer", "format": "int32"}},
            "mode": {"type": "string", "enum": ["A", "B"], "default": "A"},
            "ratio": {"type": "number", "minimum": -1.5, "maximum": 0, "exclusiveMinimum": True},
            "count": {"type": "integer", "minLength": 0, "maxLength": 12, "minItems": -1},
            "either": {"type": ["string", "integer"]},
            "merged": {"allOf": [{"$ref": "#/definitions/A"}, {"description": "b"}], "readOnly": True},
        },
        "x-kubernetes-group-version-kind": [{"group": "", "kind": "Pod", "version": "v1"}],
        "x-kubernetes-list-map-keys": ["name", "protocol"],
    }
    definitions = one(encode(document(definitions={"T": schema})).data, 9)
    t = named(definitions, 1)["T"]
    assert numbers(t) == [4, 19, 22, 25, 31, 31]
    assert fields(t)[19] == [b"spec"] and fields(one(t, 22)) == {1: [b"object"]}
    extensions = named(t, 31)
    assert (
        any_yaml(extensions["x-kubernetes-group-version-kind"]) == '- group: ""\n  kind: Pod\n  version: v1\n'
    )
    assert any_yaml(extensions["x-kubernetes-list-map-keys"]) == "- name\n- protocol\n"

    props = named(one(t, 25), 1)
    assert list(props) == ["spec", "labels", "closed", "ports", "mode", "ratio", "count", "either", "merged"]
    assert fields(props["spec"]) == {1: [b"#/definitions/Spec"]}
    assert fields(one(props["labels"], 21, 1)) == {22: [one(props["labels"], 21, 1, 22)]}  # schema member
    assert fields(one(props["closed"], 21)) == {2: [0]}  # the boolean member, written although false
    items = one(props["ports"], 23)
    assert fields(one(items, 1)) == {2: [b"int32"], 22: [one(items, 1, 22)]}
    mode = fields(props["mode"])
    assert [any_yaml(v) for v in mode[20]] == ["A\n", "B\n"] and any_yaml(mode[5][0]) == "A\n"
    ratio = fields(props["ratio"])
    assert struct.unpack("<d", ratio[9][0]) == (-1.5,) and 7 not in ratio  # maximum 0 is a zero value
    assert ratio[10] == [1]
    count = fields(props["count"])
    assert count[11] == [12] and 12 not in count and count[15] == [(1 << 64) - 1]  # int64 -1
    assert fields(one(props["either"], 22)) == {1: [b"string", b"integer"]}
    merged = fields(props["merged"])
    assert [fields(s) for s in merged[24]] == [{1: [b"#/definitions/A"]}, {4: [b"b"]}] and merged[27] == [1]


def test_security_definitions_tags_and_external_docs() -> None:
    doc = document(
        securityDefinitions={
            "BearerToken": {"type": "apiKey", "name": "authorization", "in": "header"},
            "basic": {"type": "basic"},
            "oauth": {
                "type": "oauth2",
                "flow": "accessCode",
                "authorizationUrl": "a",
                "tokenUrl": "t",
                "scopes": {"read": "read things"},
            },
        },
        security=[{"BearerToken": []}, {"oauth": ["read"]}],
        tags=[{"name": "core", "externalDocs": {"url": "https://k8s.io"}}],
    )
    data = encode(doc).data
    definitions = named(one(data, 13), 1)
    assert fields(one(definitions["BearerToken"], 2)) == {
        1: [b"apiKey"],
        2: [b"authorization"],
        3: [b"header"],
    }
    assert fields(one(definitions["basic"], 1)) == {1: [b"basic"]}
    oauth = one(definitions["oauth"], 6)
    assert fields(oauth)[4] == [b"a"] and fields(oauth)[5] == [b"t"]
    assert fields(one(oauth, 3, 1)) == {1: [b"read"], 2: [b"read things"]}
    bearer, scoped = (named(requirement, 1) for requirement in fields(data)[12])
    assert bearer == {"BearerToken": b""} and fields(scoped["oauth"]) == {1: [b"read"]}
    assert fields(one(data, 14, 3)) == {2: [b"https://k8s.io"]}


def test_members_without_a_field_are_dropped_and_reported() -> None:
    doc = document(
        definitions={"Q": {"oneOf": [{"type": "string"}, {"type": "number"}], "description": "q"}},
        servers=["nope"],
    )
    encoded = encode(doc)
    assert encoded.dropped == ("/definitions/Q/oneOf", "/servers")  # in document order
    assert fields(named(one(encoded.data, 9), 1)["Q"]) == {4: [b"q"]}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("atomic", "atomic\n"),
        ("merge,retainKeys", "merge,retainKeys\n"),
        ("", '""\n'),
        ("true", '"true"\n'),
        ("yes", "yes\n"),
        ("null", '"null"\n'),
        ("~", '"~"\n'),
        ("123", '"123"\n'),
        ("1.5", '"1.5"\n'),
        ("0x1F", '"0x1F"\n'),
        ("2024-01-01", '"2024-01-01"\n'),
        ("2024-13-01", "2024-13-01\n"),
        ("0b102", "0b102\n"),
        ("<<", "<<\n"),
        ("-", "'-'\n"),
        ("- a", "'- a'\n"),
        ("a: b", "'a: b'\n"),
        ("a:b", "a:b\n"),
        ("a #b", "'a #b'\n"),
        (" lead", "' lead'\n"),
        ("trail ", "'trail '\n"),
        ("'q'", "'''q'''\n"),
        ("line1\nline2", "|-\n    line1\n    line2\n"),
        ("line1\nline2\n", "|\n    line1\n    line2\n"),
        ("a\n\n", "|+\n    a\n\n"),
        ("\nx", "|4-\n\n    x\n"),
        ("tab\there", '"tab\\there"\n'),
        ("@at", "'@at'\n"),
        ("?x", "?x\n"),
        ("emoji 😀", '"emoji \\U0001F600"\n'),
        ("ctrl \x01", '"ctrl \\x01"\n'),
        ("\ufeffbom", '"\\uFEFF\\x62\\x6F\\x6D"\n'),
        ("a\u2028b", "'a\u2028    b'\n"),
        ("quote's", "quote's\n"),
        (1, "1\n"),
        (-5, "-5\n"),
        (1.5, "1.5\n"),
        (1e-07, "1e-7\n"),
        (True, "true\n"),
        (False, "false\n"),
        (None, "null\n"),
        ([], "[]\n"),
        ({}, "{}\n"),
        (["a", "b"], "- a\n- b\n"),
        ({"b": 1, "a": [1, 2]}, "b: 1\na:\n    - 1\n    - 2\n"),
        (
            [{"discriminator": "type", "fields-to-discriminateBy": {"localhostProfile": "LocalhostProfile"}}],
            "- discriminator: type\n  fields-to-discriminateBy:\n    localhostProfile: LocalhostProfile\n",
        ),
        ([[1, 2], [3]], "- - 1\n  - 2\n- - 3\n"),
        (
            {"a": {"b": {"c": [1, {"d": []}]}}},
            "a:\n    b:\n        c:\n            - 1\n            - d: []\n",
        ),
        ({"k": "multi\nline"}, "k: |-\n    multi\n    line\n"),
        (["multi\nline"], "- |-\n  multi\n  line\n"),
        ({"": 1, "true": 2, "- x": 3}, '"": 1\n"true": 2\n\'- x\': 3\n'),
        ({"a\nb": 1}, "? |-\n    a\n    b\n: 1\n"),
        ({"k" * 129: 1}, f"? {'k' * 129}\n: 1\n"),
    ],
)
def test_any_yaml_is_what_yaml_v3_writes(value: Any, expected: str) -> None:
    assert GoYaml.dump(value) == expected


# -- the served document -----------------------------------------------------------------------


def test_served_document_encodes_whole_and_is_cached() -> None:
    body = OpenAPI(Registry()).v2_document()
    encoded = encode(orjson.loads(body))
    assert encoded.dropped == ()  # nothing the document holds is outside swagger 2.0
    assert openapi_proto.protobuf(body) == encoded.data
    assert openapi_proto.protobuf(body) is openapi_proto.protobuf(body)
    assert len(encoded.data) < len(body)
    data = encoded.data
    assert one(data, 1) == b"2.0"
    definitions = named(one(data, 9), 1)
    assert list(definitions) == sorted(definitions)  # document order: the JSON's sorted keys
    deployment = definitions["io.k8s.api.apps.v1.Deployment"]
    gvk = any_yaml(named(deployment, 31)["x-kubernetes-group-version-kind"])
    assert gvk == "- group: apps\n  kind: Deployment\n  version: v1\n"
    assert openapi_proto.etag(body).startswith('"') and len(openapi_proto.etag(body)) == 130


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("", "application/json"),
        ("*/*", "application/json"),
        ("application/json", "application/json"),
        ("application/json, */*", "application/json"),
        ("application/com.github.proto-openapi.spec.v2@v1.0+protobuf", CONTENT_TYPE),
        ("application/com.github.proto-openapi.spec.v2.v1.0+protobuf", CONTENT_TYPE),
        ("application/json;q=0.5, application/com.github.proto-openapi.spec.v2@v1.0+protobuf", CONTENT_TYPE),
        (
            "application/com.github.proto-openapi.spec.v2@v1.0+protobuf;q=0.9, application/json",
            "application/json",
        ),
        ("application/*", "application/json"),
        ("application/yaml", None),
        ("application/vnd.kubernetes.protobuf", None),
    ],
)
def test_negotiation_follows_kube_openapi(accept: str, expected: str | None) -> None:
    assert Api._openapi_v2_media(accept or "*/*") == expected
