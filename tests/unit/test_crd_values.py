"""Custom resources against their schema: kube-openapi's checks and messages, pruning, defaulting.

Expected messages are those kube-apiserver answers (kube-openapi's templates through
``kubeOpenAPIResultToFieldErrors``); the property tests pin invariants of pruning and defaulting.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from k3py.api.crd import defaulting, invariants, pruning, values
from k3py.api.crd.goformat import go_float, go_sharp_v
from k3py.api.validation import Cause

Obj = dict[str, Any]

SCHEMA: Obj = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["cronSpec"],
            "properties": {
                "cronSpec": {"type": "string", "pattern": r"^(\d+|\*)(/\d+)?(\s+(\d+|\*)(/\d+)?){4}$"},
                "image": {"type": "string", "maxLength": 10},
                "replicas": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1},
                "size": {"type": "string", "enum": ["S", "M", "L"]},
                "ratio": {"type": "number", "exclusiveMaximum": True, "maximum": 1.5},
                "port": {"x-kubernetes-int-or-string": True},
                "tags": {"type": "array", "maxItems": 2, "items": {"type": "string", "minLength": 2}},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "note": {"type": "string", "nullable": True},
                "id": {"type": "string", "format": "uuid"},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            },
        },
        "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}},
    },
}


def causes(spec: Obj, schema: Obj = SCHEMA) -> list[Cause]:
    return values.validate(schema, {"apiVersion": "v1", "kind": "K", "metadata": {}, "spec": spec})


def ok_spec(**fields: Any) -> Obj:
    return {"cronSpec": "* * * * */5", **fields}


def test_a_valid_object_passes() -> None:
    assert causes(ok_spec(image="nginx", replicas=3, size="M", port="http", tags=["ab"], note=None)) == []


def test_wrong_type_reports_the_type_it_found() -> None:
    assert causes(ok_spec(replicas="string")) == [
        Cause(
            "FieldValueTypeInvalid",
            'Invalid value: "string": spec.replicas in body must be of type integer: "string"',
            "spec.replicas",
        )
    ]


def test_a_wrong_type_is_reported_once_not_also_against_minimum() -> None:
    assert [c.field for c in causes(ok_spec(replicas=True))] == ["spec.replicas"]
    assert causes(ok_spec(replicas=True))[0].message.endswith('must be of type integer: "boolean"')


def test_required_enum_and_pattern() -> None:
    assert causes({"size": "XL"}) == [
        Cause(
            "FieldValueNotSupported", 'Unsupported value: "XL": supported values: "S", "M", "L"', "spec.size"
        ),
        Cause("FieldValueRequired", "Required value", "spec.cronSpec"),
    ]
    pattern = SCHEMA["properties"]["spec"]["properties"]["cronSpec"]["pattern"]
    assert causes({"cronSpec": "bad"}) == [
        Cause(
            "FieldValueInvalid",
            f"Invalid value: \"bad\": spec.cronSpec in body should match '{pattern}'",
            "spec.cronSpec",
        )
    ]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("replicas", 0, "Invalid value: 0: spec.replicas in body should be greater than or equal to 1"),
        ("replicas", 11, "Invalid value: 11: spec.replicas in body should be less than or equal to 10"),
        ("ratio", 1.5, "Invalid value: 1.5: spec.ratio in body should be less than 1.5"),
        ("image", "a-very-long-image", "Too long: may not be more than 10 bytes"),
        ("tags", ["ab", "cd", "ef"], "Too many: 3: must have at most 2 items"),
        ("note", 5, 'Invalid value: "integer": spec.note in body must be of type string: "integer"'),
        ("port", 1.5, 'Invalid value: "number": spec.port in body must be of type integer,string: "number"'),
        ("id", "nope", 'Invalid value: "nope": spec.id in body must be of type uuid: "nope"'),
    ],
)
def test_bounds_lengths_and_formats(field: str, value: Any, message: str) -> None:
    assert [c.message for c in causes(ok_spec(**{field: value}))] == [message]


def test_nested_paths_and_map_values() -> None:
    found = causes(ok_spec(tags=["ab", "x"], labels={"a": 1}))
    assert [(c.field, c.message) for c in found] == [
        ("spec.tags[1]", 'Invalid value: "x": spec.tags[1] in body should be at least 2 chars long'),
        (
            "spec.labels.a",
            'Invalid value: "integer": spec.labels.a in body must be of type string: "integer"',
        ),
    ]


def test_null_where_not_nullable() -> None:
    assert causes(ok_spec(image=None))[0].message == (
        'Invalid value: "null": spec.image in body must be of type string: "null"'
    )


def test_junctors_report_the_composite_error_at_nil() -> None:
    schema = {
        "type": "object",
        "properties": {"spec": {"type": "object", "anyOf": [{"required": ["a"]}, {"required": ["b"]}]}},
    }
    found = causes({}, schema)
    assert found[0] == Cause(
        "FieldValueInvalid", 'Invalid value: "": "spec" must validate at least one schema (anyOf)', "<nil>"
    )
    assert found[1] == Cause("FieldValueRequired", "Required value", "spec.a")


def test_ratcheting_keeps_unchanged_invalid_values() -> None:
    old = {"spec": {"cronSpec": "bad", "image": "x"}}
    new = {"spec": {"cronSpec": "bad", "image": "y"}}
    assert values.validate(SCHEMA, new, old) == []
    changed = {"spec": {"cronSpec": "still bad", "image": "y"}}
    assert [c.field for c in values.validate(SCHEMA, changed, old)] == ["spec.cronSpec"]


def test_go_value_rendering() -> None:
    assert [go_float(v) for v in (1e6, 123456.0, 0.5, 1e-05, 3.0)] == ["1e+06", "123456", "0.5", "1e-05", "3"]
    assert go_sharp_v({"b": [1, "x", None], "a": True}) == (
        'map[string]interface {}{"a":true, "b":[]interface {}{1, "x", interface {}(nil)}}'
    )


# -- pruning ------------------------------------------------------------------------------------


def test_pruning_drops_unknown_fields_and_reports_their_paths() -> None:
    obj: Obj = {
        "apiVersion": "v1",
        "kind": "K",
        "metadata": {"name": "x", "whatever": 1},
        "spec": {"cronSpec": "c", "junk": 1, "tags": ["a"], "extra": {"any": {"thing": 1}}},
        "other": True,
    }
    removed = pruning.prune(obj, SCHEMA)
    assert removed == ["spec.junk", "other"]
    assert obj["metadata"] == {"name": "x", "whatever": 1}  # the root's metadata is ObjectMeta's business
    assert obj["spec"]["extra"] == {"any": {"thing": 1}}


def test_embedded_resources_keep_type_meta_and_object_meta_only() -> None:
    schema = {
        "type": "object",
        "properties": {
            "template": {
                "type": "object",
                "x-kubernetes-embedded-resource": True,
                "properties": {"spec": {"type": "object"}},
            }
        },
    }
    obj = {
        "template": {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "bogus": 1},
            "spec": {},
            "x": 1,
        }
    }
    assert sorted(pruning.prune(obj, schema)) == ["template.metadata.bogus", "template.x"]
    assert obj["template"] == {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}}


def test_preserve_unknown_fields_keeps_unknown_keys_but_prunes_known_ones() -> None:
    schema = {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
        "properties": {"spec": {"type": "object", "properties": {"a": {"type": "string"}}}},
    }
    obj = {"free": 1, "spec": {"a": "x", "b": 2}}
    assert pruning.prune(obj, schema, root=False) == ["spec.b"]
    assert obj == {"free": 1, "spec": {"a": "x"}}


def test_nulls_without_nullable_or_default_are_dropped() -> None:
    obj = {"spec": {"cronSpec": "c", "image": None, "note": None, "replicas": None}}
    pruning.prune_nulls(obj, SCHEMA)
    assert obj == {"spec": {"cronSpec": "c", "note": None, "replicas": None}}


# -- defaulting ---------------------------------------------------------------------------------


def test_defaults_fill_missing_and_null_fields_and_nested_defaults() -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "default": {},
                "properties": {
                    "replicas": {"type": "integer", "default": 1},
                    "ports": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {"protocol": {"type": "string", "default": "TCP"}},
                        },
                    },
                },
            }
        },
    }
    obj: Obj = {}
    defaulting.apply(obj, schema)
    assert obj == {"spec": {"replicas": 1}}
    obj = {"spec": {"replicas": None, "ports": [{}, {"protocol": "UDP"}]}}
    defaulting.apply(obj, schema)
    assert obj == {"spec": {"replicas": 1, "ports": [{"protocol": "TCP"}, {"protocol": "UDP"}]}}


def test_defaults_are_copies() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "object", "default": {"b": []}}}}
    first: Obj = {}
    second: Obj = {}
    defaulting.apply(first, schema)
    defaulting.apply(second, schema)
    first["a"]["b"].append(1)
    assert second == {"a": {"b": []}}


# -- properties ---------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=3),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.sampled_from("abcz"), children, max_size=3)
    ),
    max_leaves=12,
)
specs = st.dictionaries(
    st.sampled_from(["cronSpec", "replicas", "junk", "tags", "labels", "extra"]), json_values
)


@given(specs)
def test_pruning_is_idempotent_and_only_removes(spec: Obj) -> None:
    obj = {"spec": copy.deepcopy(spec)}
    pruning.prune(obj, SCHEMA)
    once = copy.deepcopy(obj)
    assert pruning.prune(obj, SCHEMA) == []
    assert obj == once
    assert set(obj["spec"]) <= set(spec)


@given(specs)
def test_defaulting_is_idempotent_and_keeps_what_is_set(spec: Obj) -> None:
    obj = {"spec": copy.deepcopy(spec)}
    defaulting.apply(obj, SCHEMA)
    once = copy.deepcopy(obj)
    defaulting.apply(obj, SCHEMA)
    assert obj == once
    for key, value in spec.items():
        if value is not None:
            assert obj["spec"][key] == value
    assert obj["spec"].get("replicas") is not None


@given(st.integers(-(2**40), 2**40))
def test_integer_bounds_agree_with_python(value: int) -> None:
    found = causes(ok_spec(replicas=value))
    assert (found == []) == (1 <= value <= 10)


# -- beyond the schema --------------------------------------------------------------------------


def test_set_and_map_lists_hold_no_duplicates() -> None:
    schema = {
        "type": "object",
        "properties": {
            "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
            "ports": {
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["port", "protocol"],
                "items": {
                    "type": "object",
                    "required": ["port"],
                    "properties": {
                        "port": {"type": "integer"},
                        "protocol": {"type": "string", "default": "TCP"},
                    },
                },
            },
        },
    }
    obj = {
        "tags": ["a", "b", "a"],
        "ports": [{"port": 80}, {"port": 80, "protocol": "TCP"}, {"port": 80, "protocol": "UDP"}],
    }
    assert invariants.list_duplicates(obj, schema) == [
        Cause("FieldValueDuplicate", 'Duplicate value: "a"', "tags[2]"),
        Cause(
            "FieldValueDuplicate",
            'Duplicate value: map[string]interface {}{"port":80, "protocol":"TCP"}',
            "ports[1]",
        ),
    ]


def test_duplicates_are_found_in_one_pass_and_reported_once() -> None:
    schema = {
        "type": "object",
        "properties": {
            "set": {"type": "array", "x-kubernetes-list-type": "set", "items": {}},
            "map": {
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["k"],
                "items": {"type": "object", "properties": {"k": {"x-kubernetes-int-or-string": True}}},
            },
        },
    }
    size = 20_000  # comparing every pair took minutes
    distinct = {"set": list(range(size)), "map": [{"k": i} for i in range(size)]}
    started = time.monotonic()
    assert invariants.list_duplicates(distinct, schema) == []
    assert time.monotonic() - started < 2.0
    # true, 1 and 1.0 differ, as Go's values do; objects are equal whatever their keys' order
    mixed = {"set": [1, True, 1.0, "1", {"a": 1, "b": 2}, {"b": 2, "a": 1}], "map": [{"k": 1}, {"k": "1"}]}
    assert invariants.list_duplicates(mixed, schema) == [
        Cause("FieldValueDuplicate", 'Duplicate value: map[string]interface {}{"a":1, "b":2}', "set[5]")
    ]
    # upstream's validateListSet: where a value occurs the second time, once
    repeated = {"set": ["a"] * size, "map": [{"k": 7}] * 3}
    assert invariants.list_duplicates(repeated, schema) == [
        Cause("FieldValueDuplicate", 'Duplicate value: "a"', "set[1]"),
        Cause("FieldValueDuplicate", 'Duplicate value: map[string]interface {}{"k":7}', "map[1]"),
    ]


def test_embedded_resources_need_type_meta() -> None:
    schema = {
        "type": "object",
        "properties": {
            "template": {
                "type": "object",
                "x-kubernetes-embedded-resource": True,
                "x-kubernetes-preserve-unknown-fields": True,
            }
        },
    }
    assert invariants.embedded_resources(
        {"template": {"kind": "pod_", "metadata": {"name": "a/b"}}}, schema
    ) == [
        Cause("FieldValueRequired", "Required value", "template.apiVersion"),
        Cause(
            "FieldValueInvalid",
            'Invalid value: "pod_": may have mixed case, but should otherwise match: '
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
            "start with an alphabetic character, and end with an alphanumeric character "
            "(e.g. 'my-name',  or 'abc-123', regex used for validation is "
            "'[a-z]([-a-z0-9]*[a-z0-9])?')",
            "template.kind",
        ),
        Cause("FieldValueInvalid", "Invalid value: \"a/b\": may not contain '/'", "template.metadata.name"),
    ]


def test_scale_replica_fields() -> None:
    assert invariants.scale_replicas({"spec": {"replicas": -1}}, ".spec.replicas") == [
        Cause("FieldValueInvalid", "Invalid value: -1: should be a non-negative integer", ".spec.replicas")
    ]
    assert invariants.scale_replicas({"spec": {}}, ".spec.replicas") == []
    assert invariants.scale_replicas({"spec": {"replicas": 2**31}}, ".spec.replicas")[0].message == (
        "Invalid value: 2147483648: should be less than or equal to 2147483647"
    )
