"""Field paths, field sets and FieldsV1, against upstream's own data.

Golden FieldsV1 documents are structured-merge-diff's (``fieldpath/serialize_test.go``) and
apimachinery's (``managedfields/internal/fields_test.go``, ``managedfields_test.go``); the
managedFields examples come from the Kubernetes documentation (Server-Side Apply) and
kube-apiserver's integration tests (``test/integration/apiserver/apply``).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from k3py.api.apply import (
    FieldsV1Error,
    ManagedFieldsError,
    Manager,
    decode_managed_fields,
    encode_managed_fields,
    from_fields_v1,
    make_path,
    path_string,
    to_fields_v1,
)
from k3py.api.apply.fieldpath import (
    Path,
    field_element,
    go_json,
    index_element,
    key_element,
    ordered,
    parse_element,
    recursive_difference,
    value_element,
)


def compact(document: Any) -> str:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


# structured-merge-diff fieldpath/serialize_test.go, TestSerializeV1GoldenData.
GOLDEN_V1 = [
    r"""{"f:aaa":{},"f:aab":{},"f:aac":{},"f:aad":{},"f:aae":{},"f:aaf":{},"k:{\"name\":\"first\"}":{},"k:{\"name\":\"second\"}":{},"k:{\"port\":443,\"protocol\":\"tcp\"}":{},"k:{\"port\":443,\"protocol\":\"udp\"}":{},"v:1":{},"v:2":{},"v:3":{},"v:\"aa\"":{},"v:\"ab\"":{},"v:true":{},"i:1":{},"i:2":{},"i:3":{},"i:4":{}}""",
    r"""{"f:aaa":{"k:{\"name\":\"second\"}":{"v:3":{"f:aab":{}}},"v:3":{},"v:true":{}},"f:aab":{"f:aaa":{},"f:aaf":{"k:{\"port\":443,\"protocol\":\"udp\"}":{"k:{\"port\":443,\"protocol\":\"tcp\"}":{}}},"k:{\"name\":\"first\"}":{}},"f:aac":{"f:aaa":{"v:1":{}},"f:aac":{},"v:3":{"k:{\"name\":\"second\"}":{}}},"f:aad":{"f:aac":{"v:1":{}},"f:aaf":{"k:{\"name\":\"first\"}":{"k:{\"name\":\"first\"}":{}}},"i:1":{"i:1":{},"i:3":{"v:true":{}}}},"f:aae":{"f:aae":{},"k:{\"port\":443,\"protocol\":\"tcp\"}":{"k:{\"port\":443,\"protocol\":\"udp\"}":{}},"i:4":{"f:aaf":{}}},"f:aaf":{"i:1":{"f:aac":{}},"i:2":{},"i:3":{}},"k:{\"name\":\"first\"}":{"f:aad":{"f:aaf":{}}},"k:{\"port\":443,\"protocol\":\"tcp\"}":{"f:aaa":{"f:aad":{}}},"k:{\"port\":443,\"protocol\":\"udp\"}":{"f:aac":{},"k:{\"name\":\"first\"}":{"i:3":{}},"k:{\"port\":443,\"protocol\":\"udp\"}":{"i:4":{}}},"v:1":{"f:aac":{"i:4":{}},"f:aaf":{},"k:{\"port\":443,\"protocol\":\"tcp\"}":{}},"v:2":{"f:aad":{"f:aaf":{}},"i:1":{}},"v:3":{"f:aaa":{},"k:{\"name\":\"first\"}":{},"i:2":{}},"v:\"aa\"":{"f:aab":{"f:aaf":{}},"f:aae":{},"k:{\"name\":\"first\"}":{"f:aad":{}},"i:2":{}},"v:\"ab\"":{"f:aaf":{"i:4":{}},"k:{\"port\":443,\"protocol\":\"tcp\"}":{},"k:{\"port\":443,\"protocol\":\"udp\"}":{},"v:1":{"k:{\"port\":443,\"protocol\":\"udp\"}":{}},"i:1":{"f:aae":{"i:4":{}}}},"v:true":{"k:{\"name\":\"second\"}":{"f:aaa":{}},"i:2":{"k:{\"port\":443,\"protocol\":\"tcp\"}":{}}},"i:1":{"i:3":{"f:aaf":{}}},"i:2":{"f:aae":{},"k:{\"port\":443,\"protocol\":\"tcp\"}":{"v:1":{}}},"i:3":{"f:aab":{"v:true":{"v:\"aa\"":{}}},"f:aaf":{},"i:1":{}},"i:4":{"v:\"aa\"":{"f:aab":{"k:{\"name\":\"second\"}":{}}}}}""",
    # apimachinery managedfields/internal/fields_test.go, TestFieldsRoundTrip.
    r"""{"f:metadata":{".":{},"f:name":{}}}""",
    "{}",
    # kube-apiserver integration test TestApplyConvertsManagedFieldsVersion: what it expects.
    r"""{"f:metadata":{"f:labels":{"f:sidecar_version":{}}},"f:spec":{"f:template":{"f:spec":{"f:containers":{"k:{\"name\":\"sidecar\"}":{".":{},"f:image":{},"f:name":{}}}}}}}""",
]


@pytest.mark.parametrize("text", GOLDEN_V1)
def test_golden_fields_v1_round_trip_byte_for_byte(text: str) -> None:
    assert compact(to_fields_v1(from_fields_v1(json.loads(text)))) == text


def test_unknown_element_kinds_are_dropped() -> None:
    # structured-merge-diff TestDropUnknown.
    assert compact(to_fields_v1(from_fields_v1({"f:aaa": {}, "r:aab": {}}))) == '{"f:aaa":{}}'


def test_documentation_example_reads_as_paths() -> None:
    # kubernetes.io, "Server-Side Apply": the ConfigMap test-cm.
    fields = from_fields_v1({"f:metadata": {"f:labels": {"f:test-label": {}}}, "f:data": {"f:key": {}}})
    assert fields == {make_path("metadata", "labels", "test-label"), make_path("data", "key")}
    assert [path_string(path) for path in ordered(fields)] == [".data.key", ".metadata.labels.test-label"]


def test_member_with_children_writes_dot_first() -> None:
    name = {"name": "nginx"}
    fields = {
        make_path("spec", "containers", name),
        make_path("spec", "containers", name, "image"),
        make_path("metadata", "labels"),
        make_path("metadata", "labels", "app"),
    }
    assert compact(to_fields_v1(fields)) == (
        r'{"f:metadata":{"f:labels":{".":{},"f:app":{}}},'
        r'"f:spec":{"f:containers":{"k:{\"name\":\"nginx\"}":{".":{},"f:image":{}}}}}'
    )


def test_reading_accepts_any_key_order_and_spacing() -> None:
    document: dict[str, Any] = {'k:{ "protocol": "TCP", "containerPort": 80 }': {"f:name": {}, ".": {}}}
    assert from_fields_v1(document) == {
        (key_element({"containerPort": 80, "protocol": "TCP"}),),
        (key_element({"containerPort": 80, "protocol": "TCP"}), field_element("name")),
    }
    assert key_element({"protocol": "TCP", "containerPort": 80}) == 'k:{"containerPort":80,"protocol":"TCP"}'


@pytest.mark.parametrize(
    "document",
    [
        {"k:{invalid json}": {"f:name": {}, ".": {}}},  # apimachinery TestFieldsToSetError
        {"f:a": []},
        {"x": {}},
        {"k:[1]": {}},
        {"i:one": {}},
        [],
    ],
)
def test_malformed_fields_v1(document: Any) -> None:
    with pytest.raises(FieldsV1Error):
        from_fields_v1(document)


def test_path_strings_match_upstream_conflict_fields() -> None:
    assert path_string(make_path("spec", "replicas")) == ".spec.replicas"
    containers = make_path("spec", "template", "spec", "containers", {"name": "php-redis"}, "image")
    assert path_string(containers) == '.spec.template.spec.containers[name="php-redis"].image'
    port = (field_element("ports"), key_element({"protocol": "TCP", "containerPort": 8080}))
    assert path_string(port) == '.ports[containerPort=8080,protocol="TCP"]'
    assert path_string((field_element("finalizers"), value_element("a/b"))) == '.finalizers[="a/b"]'
    assert path_string((field_element("args"), index_element(2))) == ".args[2]"


def test_elements_sort_as_upstream_fields_keys_values_indices() -> None:
    fields = {
        (index_element(1),),
        (value_element(True),),
        (value_element("aa"),),
        (value_element(3),),
        (key_element({"name": "second"}),),
        (key_element({"name": "first"}),),
        (field_element("b"),),
        (field_element("a"),),
    }
    assert [path[0] for path in ordered(fields)] == [
        "f:a",
        "f:b",
        'k:{"name":"first"}',
        'k:{"name":"second"}',
        "v:3",
        'v:"aa"',
        "v:true",
        "i:1",
    ]


def test_ordered_yields_members_before_subtrees() -> None:
    fields = {
        make_path("spec", "template", "spec", "containers", {"name": "a"}, "image"),
        make_path("spec", "replicas"),
    }
    assert [path_string(path) for path in ordered(fields)] == [
        ".spec.replicas",
        '.spec.template.spec.containers[name="a"].image',
    ]


def test_recursive_difference_cuts_subtrees() -> None:
    fields = {make_path("status"), make_path("status", "replicas"), make_path("spec", "replicas")}
    assert recursive_difference(fields, {make_path("status")}) == {make_path("spec", "replicas")}


def test_go_json_escapes_html_and_writes_integral_numbers_bare() -> None:
    assert go_json({"b": "<&>", "a": 2.0}, sort_keys=True) == '{"a":2,"b":"\\u003c\\u0026\\u003e"}'
    assert parse_element("v:2.0") == "v:2"
    assert parse_element("v:3.1415") == "v:3.1415"


# apimachinery managedfields/internal/managedfields_test.go, TestRoundTripManagedFields.
ROUND_TRIP_MANAGED_FIELDS = [
    """- apiVersion: v1
  fieldsType: FieldsV1
  fieldsV1:
    v:3:
      f:alsoPi: {}
    v:3.1415:
      f:pi: {}
    v:false:
      f:notTrue: {}
  manager: foo
  operation: Update
  time: "2001-02-03T04:05:06Z"
- apiVersion: v1beta1
  fieldsType: FieldsV1
  fieldsV1:
    i:5:
      f:i: {}
  manager: foo
  operation: Update
  time: "2011-12-13T14:15:16Z"
""",
    """- apiVersion: v1
  fieldsType: FieldsV1
  fieldsV1:
    f:spec:
      f:containers:
        k:{"name":"c"}:
          f:image: {}
          f:name: {}
  manager: foo
  operation: Apply
""",
    """- apiVersion: v1
  fieldsType: FieldsV1
  fieldsV1:
    f:apiVersion: {}
    f:kind: {}
    f:metadata:
      f:labels:
        f:app: {}
      f:name: {}
    f:spec:
      f:replicas: {}
      f:selector:
        f:matchLabels:
          f:app: {}
      f:template:
        f:medatada:
          f:labels:
            f:app: {}
        f:spec:
          f:containers:
            k:{"name":"nginx"}:
              .: {}
              f:image: {}
              f:name: {}
              f:ports:
                i:0:
                  f:containerPort: {}
  manager: foo
  operation: Update
""",
    """- apiVersion: v1
  fieldsType: FieldsV1
  fieldsV1:
    f:spec:
      f:replicas: {}
  manager: foo
  operation: Update
  subresource: scale
""",
    # kubernetes.io, "Server-Side Apply": an object with two managers.
    """- apiVersion: v1
  fieldsType: FieldsV1
  fieldsV1:
    f:metadata:
      f:labels:
        f:test-label: {}
  manager: kubectl
  operation: Apply
  time: '2019-03-30T15:00:00Z'
- apiVersion: v1
  fieldsType: FieldsV1
  fieldsV1:
    f:data:
      f:key: {}
  manager: kube-controller-manager
  operation: Update
  time: '2019-03-30T16:00:00Z'
""",
]


@pytest.mark.parametrize("text", ROUND_TRIP_MANAGED_FIELDS)
def test_managed_fields_round_trip(text: str) -> None:
    entries = yaml.safe_load(text)
    assert encode_managed_fields(decode_managed_fields(entries)) == entries


def test_managed_fields_null_is_empty() -> None:
    assert decode_managed_fields(None) == {}
    assert encode_managed_fields({}) == []


def test_manager_identifiers_match_upstream() -> None:
    # apimachinery TestBuildManagerIdentifier.
    assert (
        Manager.updater("foo", "v1").identifier == '{"manager":"foo","operation":"Update","apiVersion":"v1"}'
    )
    assert Manager.applier("foo").identifier == '{"manager":"foo","operation":"Apply"}'
    assert (
        Manager.applier("foo", "scale").identifier
        == '{"manager":"foo","operation":"Apply","subresource":"scale"}'
    )


def _entry(manager: str, operation: str, time: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"manager": manager, "operation": operation, "apiVersion": "v1"}
    if time is not None:
        entry["time"] = time
    entry["fieldsType"] = "FieldsV1"
    entry["fieldsV1"] = {f"f:{manager}": {}}
    return entry


def test_entries_sort_as_upstream() -> None:
    # apimachinery TestSortEncodedManagedFields, "manager sorted".
    given_order = [
        _entry("c", "Update", "2001-01-01T01:00:00Z"),
        _entry("a", "Apply"),
        _entry("g", "Apply"),
        _entry("f", "Update", "2002-01-01T01:00:00Z"),
        _entry("i", "Apply"),
        _entry("d", "Update", "2002-01-01T01:00:00Z"),
        _entry("h", "Apply"),
        _entry("e", "Update", "2003-01-01T01:00:00Z"),
        _entry("b", "Apply"),
    ]
    encoded = encode_managed_fields(decode_managed_fields(given_order))
    assert [entry["manager"] for entry in encoded] == ["a", "b", "g", "h", "i", "c", "d", "f", "e"]


def test_times_are_written_in_utc_seconds() -> None:
    entries = [_entry("a", "Update", "2024-05-01T12:00:00.123456+02:00")]
    assert encode_managed_fields(decode_managed_fields(entries))[0]["time"] == "2024-05-01T10:00:00Z"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"fieldsType": "FieldsV2"}, 'invalid fieldsType "FieldsV2" in managed fields entry 0'),
        ({"fieldsType": None}, "missing fieldsType in managed fields entry 0"),
        ({"apiVersion": None}, "apiVersion must not be empty"),
        ({"operation": "Invalid"}, "operation must be `Apply` or `Update`"),
        ({"operation": None}, "operation must be `Apply` or `Update`"),
        ({"fieldsV1": {"f:a": 1}}, "error decoding managed fields entry 0"),
    ],
)
def test_invalid_entries(change: dict[str, Any], message: str) -> None:
    # apimachinery TestHasFieldsType, TestHasAPIVersion, TestHasOperation.
    entry = {key: value for key, value in {**_entry("foo", "Apply"), **change}.items() if value is not None}
    with pytest.raises(ManagedFieldsError, match=message.replace("(", r"\(")):
        decode_managed_fields([entry])


# Hypothesis: any field set survives FieldsV1, through JSON text too.

_names = st.text(alphabet="abcxyz-._/:{}\"' é<&", min_size=1, max_size=6)
_scalars = st.one_of(st.integers(-5, 500), _names, st.booleans())
_elements = st.one_of(
    _names.map(field_element),
    st.dictionaries(st.sampled_from(["name", "port", "protocol"]), _scalars, min_size=1, max_size=3).map(
        key_element
    ),
    _scalars.map(value_element),
    st.integers(0, 20).map(index_element),
)
_paths: st.SearchStrategy[Path] = st.lists(_elements, min_size=1, max_size=5).map(tuple)


@given(st.frozensets(_paths, max_size=25))
def test_any_field_set_round_trips(fields: frozenset[Path]) -> None:
    document = to_fields_v1(fields)
    assert from_fields_v1(document) == fields
    assert from_fields_v1(json.loads(compact(document))) == fields
    assert to_fields_v1(from_fields_v1(document)) == document
