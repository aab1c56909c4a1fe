"""Merging and ownership against structured-merge-diff's own cases, plus properties.

The schemas rewrite upstream's test types as OpenAPI definitions: ``typed/merge_test.go``'s
"struct grab bag" and "associative list" (merge results, including the order of merged
lists) and ``merge/duplicates_test.go`` (live lists holding duplicated items). The one
difference in results is upstream's own: a JSON null that the configuration sets is dropped
from the merged object here, as kube-apiserver drops it when decoding into Go structs.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from k3py.api.apply import ApplyConflict, Manager
from k3py.api.apply.comparison import MISSING, compare
from k3py.api.apply.fieldpath import FieldSet, Path, field_element, key_element, make_path, value_element
from k3py.api.apply.fieldsets import field_set
from k3py.api.apply.managers import Managed, ManagedEntry
from k3py.api.apply.merging import merge
from k3py.api.apply.shapes import Shape
from k3py.api.apply.updater import apply, update
from k3py.api.schema import Schemas

SCHEMAS = Schemas(
    {
        "root": {
            "type": "object",
            "properties": {
                "numeric": {"type": "number"},
                "string": {"type": "string"},
                "bool": {"type": "boolean"},
                "unrelated": {"type": "number"},
                "setStr": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                "setBool": {"type": "array", "items": {"type": "boolean"}, "x-kubernetes-list-type": "set"},
                "setNumeric": {"type": "array", "items": {"type": "number"}, "x-kubernetes-list-type": "set"},
                "set": {"type": "array", "items": {"type": "number"}, "x-kubernetes-list-type": "set"},
                "list": {
                    "type": "array",
                    "items": {"$ref": "#/$defs/element"},
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["key", "id"],
                },
                "named": {
                    "type": "array",
                    "items": {"$ref": "#/$defs/named"},
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                },
                "atomicList": {
                    "type": "array",
                    "items": {"type": "string"},
                    "x-kubernetes-list-type": "atomic",
                },
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "element": {
            "type": "object",
            "properties": {
                "key": {"type": "string"},
                "id": {"type": "number"},
                "value": {"type": "object", "additionalProperties": {"type": "string"}},
                "bv": {"type": "boolean"},
                "nv": {"type": "number"},
            },
        },
        "named": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "value1": {"type": "number"},
                "value2": {"type": "number"},
            },
        },
    }
)
ROOT = Shape.of(SCHEMAS.node("root"))

# typed/merge_test.go: (live, config, merged).
MERGES = [
    ('{"numeric":1}', '{"numeric":3.14159}', '{"numeric":3.14159}'),
    ('{"string":"aoeu"}', '{"bool":true}', '{"string":"aoeu","bool":true}'),
    ('{"setStr":["a","b","c"]}', '{"setStr":["a","b"]}', '{"setStr":["a","b","c"]}'),
    ('{"setStr":["a","b"]}', '{"setStr":["a","b","c"]}', '{"setStr":["a","b","c"]}'),
    ('{"setStr":["a","b","c"]}', '{"setStr":[]}', '{"setStr":["a","b","c"]}'),
    ('{"setStr":[]}', '{"setStr":["a","b","c"]}', '{"setStr":["a","b","c"]}'),
    ('{"setStr":["a","b"]}', '{"setStr":["b","a"]}', '{"setStr":["b","a"]}'),
    ('{"setStr":["a","b","c"]}', '{"setStr":["d","e","f"]}', '{"setStr":["a","b","c","d","e","f"]}'),
    ('{"setStr":["a","b","c"]}', '{"setStr":["c","d","e","f"]}', '{"setStr":["a","b","c","d","e","f"]}'),
    (
        '{"setStr":["a","b","c","g","f"]}',
        '{"setStr":["c","d","e","f"]}',
        '{"setStr":["a","b","c","g","d","e","f"]}',
    ),
    ('{"setStr":["c","d","e","f"]}', '{"setStr":["a","c","e"]}', '{"setStr":["a","c","d","e","f"]}'),
    (
        '{"setStr":["a","b","c","x","y","z"]}',
        '{"setStr":["d","e","f","x","y","z"]}',
        '{"setStr":["a","b","c","d","e","f","x","y","z"]}',
    ),
    ('{"setStr":["c","a","g","f"]}', '{"setStr":["c","f","a","g"]}', '{"setStr":["c","f","a","g"]}'),
    ('{"setStr":["a","b","c","d"]}', '{"setStr":["d","e","f","a"]}', '{"setStr":["b","c","d","e","f","a"]}'),
    (
        '{"setStr":["c","d","e","f","g","h","i","j"]}',
        '{"setStr":["2","h","3","e","4","k","l"]}',
        '{"setStr":["c","d","f","g","2","h","i","j","3","e","4","k","l"]}',
    ),
    (
        '{"setStr":["a","b","c","d","e","f","g","h","i","j"]}',
        '{"setStr":["1","b","2","h","3","e","4","k","l"]}',
        '{"setStr":["a","1","b","c","d","f","g","2","h","i","j","3","e","4","k","l"]}',
    ),
    ('{"setBool":[true]}', '{"setBool":[false]}', '{"setBool":[true, false]}'),
    ('{"setNumeric":[1,2,3.14159]}', '{"setNumeric":[1,2,3]}', '{"setNumeric":[1,2,3.14159,3]}'),
    (
        '{"list":[{"key":"a","id":1,"value":{"a":"a"}}]}',
        '{"list":[{"key":"a","id":2,"value":{"a":"a"}}]}',
        '{"list":[{"key":"a","id":1,"value":{"a":"a"}},{"key":"a","id":2,"value":{"a":"a"}}]}',
    ),
    (
        '{"list":[{"key":"a","id":1},{"key":"b","id":1}]}',
        '{"list":[{"key":"a","id":1},{"key":"a","id":2}]}',
        '{"list":[{"key":"a","id":1},{"key":"b","id":1},{"key":"a","id":2}]}',
    ),
    (
        '{"list":[{"key":"b","id":2}]}',
        '{"list":[{"key":"a","id":1},{"key":"b","id":2},{"key":"c","id":3}]}',
        '{"list":[{"key":"a","id":1},{"key":"b","id":2},{"key":"c","id":3}]}',
    ),
    (
        '{"list":[{"key":"a","id":1},{"key":"b","id":2},{"key":"c","id":3}]}',
        '{"list":[{"key":"c","id":3},{"key":"b","id":2}]}',
        '{"list":[{"key":"a","id":1},{"key":"c","id":3},{"key":"b","id":2}]}',
    ),
    (
        '{"list":[{"key":"a","id":1},{"key":"b","id":2},{"key":"c","id":3}]}',
        '{"list":[{"key":"c","id":3},{"key":"a","id":1}]}',
        '{"list":[{"key":"b","id":2},{"key":"c","id":3},{"key":"a","id":1}]}',
    ),
    ('{"atomicList":["a","a","a"]}', '{"atomicList":null}', "{}"),  # upstream: {"atomicList":null}
    ('{"atomicList":["a","b","c"]}', '{"atomicList":[]}', '{"atomicList":[]}'),
    ('{"atomicList":["a","a","a"]}', '{"atomicList":["a","a"]}', '{"atomicList":["a","a"]}'),
]


@pytest.mark.parametrize(("live", "config", "merged"), MERGES)
def test_upstream_merges(live: str, config: str, merged: str) -> None:
    assert merge(json.loads(live), json.loads(config), ROOT) == json.loads(merged)


# merge/duplicates_test.go, run through the updater as upstream's fixture does.

Op = tuple[str, str, str]  # (update | apply | force, manager, YAML-ish JSON object)


def run(ops: list[Op]) -> tuple[dict[str, Any], Managed]:
    live: dict[str, Any] = {}
    managed: Managed = {}
    for action, name, text in ops:
        obj = json.loads(text)
        if action == "update":
            key = Manager.updater(name, "v1")
            previous = managed.get(key)
            managed, taken = update(live, obj, ROOT, managed)
            owned = taken | (managed[key].fields if key in managed else frozenset())
            if owned:
                managed[key] = ManagedEntry(key, "v1", owned, previous.time if previous else None)
            live = obj
        else:
            done = apply(live, obj, ROOT, managed, Manager.applier(name), "v1", force=action == "force")
            live, managed = done.object, done.managed
    return live, managed


def owned(managed: Managed) -> dict[str, FieldSet]:
    return {manager.name: entry.fields for manager, entry in managed.items()}


def item(name: str, *rest: str) -> Path:
    return (field_element("named"), key_element({"name": name}), *(field_element(f) for f in rest))


def value(number: int) -> Path:
    return (field_element("set"), value_element(number))


NAMED = make_path("named")
SET = make_path("set")
DUPLICATED = '{"named":[{"name":"a","value1":1},{"name":"a","value1":2},{"name":"b","value1":3}]}'

DUPLICATES: list[tuple[str, list[Op], dict[str, set[Path]]]] = [
    (
        "sets/ownership/duplicates",
        [("update", "one", '{"set":[1,1,3,4]}')],
        {"one": {SET, value(1), value(3), value(4)}},
    ),
    (
        "sets/ownership/add_duplicate",
        [("update", "one", '{"set":[1,3,4]}'), ("update", "two", '{"set":[1,1,3,4]}')],
        {"one": {SET, value(3), value(4)}, "two": {value(1)}},
    ),
    (
        "sets/merging/ignore_duplicate",
        [("update", "updater", '{"set":[1,1,3,4]}'), ("apply", "applier", '{"set":[5]}')],
        {"updater": {SET, value(1), value(3), value(4)}, "applier": {value(5)}},
    ),
    (
        "list/ownership/duplicated_items",
        [("update", "updater", DUPLICATED)],
        {"updater": {NAMED, item("a"), item("b"), item("b", "name"), item("b", "value1")}},
    ),
    (
        "list/ownership/change_duplicated_items",
        [
            ("update", "one", DUPLICATED),
            ("update", "two", DUPLICATED.replace('"value1":2', '"value1":3')),
        ],
        {"one": {NAMED, item("b"), item("b", "name"), item("b", "value1")}, "two": {item("a")}},
    ),
    (
        "list/ownership/add_duplicated_items_different_field",
        [
            ("update", "one", '{"named":[{"name":"a","value1":1},{"name":"b","value1":3}]}'),
            (
                "update",
                "two",
                '{"named":[{"name":"a","value1":1},{"name":"a","value2":3},{"name":"b","value1":3}]}',
            ),
        ],
        {"one": {NAMED, item("b"), item("b", "name"), item("b", "value1")}, "two": {item("a")}},
    ),
    (
        "list/merge/change_duplicated_item",
        [("update", "updater", DUPLICATED), ("force", "applier", '{"named":[{"name":"a","value1":3}]}')],
        {
            "updater": {NAMED, item("b"), item("b", "name"), item("b", "value1")},
            "applier": {item("a"), item("a", "name"), item("a", "value1")},
        },
    ),
    (
        "list/merge/change_non_duplicated_item",
        [("update", "updater", DUPLICATED), ("force", "applier", '{"named":[{"name":"b","value1":4}]}')],
        {
            "updater": {NAMED, item("a"), item("b"), item("b", "name")},
            "applier": {item("b"), item("b", "name"), item("b", "value1")},
        },
    ),
    (
        "list/merge/apply_update_duplicates_apply_without",
        [
            ("apply", "applier", '{"named":[{"name":"a","value1":1},{"name":"b","value1":3}]}'),
            ("update", "updater", DUPLICATED.replace('"value1":2', '"value1":2')),
            ("apply", "applier", '{"named":[{"name":"b","value1":3}]}'),
        ],
        {"applier": {item("b"), item("b", "name"), item("b", "value1")}, "updater": {item("a")}},
    ),
]


@pytest.mark.parametrize(
    ("ops", "expected"), [case[1:] for case in DUPLICATES], ids=[c[0] for c in DUPLICATES]
)
def test_upstream_duplicates(ops: list[Op], expected: dict[str, set[Path]]) -> None:
    _, managed = run(ops)
    assert owned(managed) == expected


def test_duplicates_in_objects() -> None:
    live, _ = run([("update", "updater", '{"set":[1,1,3,4]}'), ("force", "applier", '{"set":[1]}')])
    assert live == {"set": [1, 3, 4]}
    live, _ = run(
        [("update", "updater", DUPLICATED), ("force", "applier", '{"named":[{"name":"a","value1":3}]}')]
    )
    assert live == {"named": [{"name": "a", "value1": 3}, {"name": "b", "value1": 3}]}
    live, _ = run([("update", "updater", DUPLICATED), ("force", "applier", '{"unrelated":5}')])
    assert live == {**json.loads(DUPLICATED), "unrelated": 5}


def test_changing_a_duplicated_group_conflicts_on_its_name() -> None:
    with pytest.raises(ApplyConflict) as caught:
        run([("update", "updater", DUPLICATED), ("apply", "applier", '{"named":[{"name":"a","value1":2}]}')])
    assert (
        str(caught.value)
        == 'Apply failed with 1 conflict: conflict with "updater" using v1: .named[name="a"]'
    )


# Properties, on objects of the test schema.

_names = st.sampled_from(["a", "b", "c", "d"])
_objects = st.fixed_dictionaries(
    {},
    optional={
        "numeric": st.integers(0, 3),
        "string": _names,
        "setStr": st.lists(_names, unique=True, max_size=4),
        "atomicList": st.lists(_names, max_size=3),
        "labels": st.dictionaries(_names, _names, max_size=3),
        "named": st.lists(
            st.fixed_dictionaries(
                {"name": _names}, optional={"value1": st.integers(0, 2), "value2": st.integers(0, 2)}
            ),
            max_size=4,
            unique_by=lambda element: element["name"],
        ),
    },
)


@settings(max_examples=200)
@given(_objects, _objects)
def test_merging_is_idempotent(live: dict[str, Any], config: dict[str, Any]) -> None:
    merged = merge(live, config, ROOT)
    assert merge(merged, config, ROOT) == merged
    assert field_set(config, ROOT) <= field_set(merged, ROOT)


@settings(max_examples=200)
@given(_objects, _objects)
def test_comparison_is_consistent(old: dict[str, Any], new: dict[str, Any]) -> None:
    forward, backward = compare(old, new, ROOT), compare(new, old, ROOT)
    assert forward.added == backward.removed
    assert forward.modified == backward.modified
    assert not compare(old, old, ROOT).changed() and not compare(old, old, ROOT).removed
    assert not forward.added & field_set(old, ROOT)
    assert compare(MISSING, new, ROOT).added >= field_set(new, ROOT)


@settings(max_examples=200)
@given(_objects, _objects, _objects)
def test_apply_owns_the_configuration_and_reapplying_changes_nothing(
    created: dict[str, Any], first: dict[str, Any], second: dict[str, Any]
) -> None:
    live, managed = run([("update", "creator", json.dumps(created)), ("force", "alice", json.dumps(first))])
    applier = Manager.applier("alice")
    if field_set(first, ROOT):
        assert managed[applier].fields == field_set(first, ROOT)
    again = apply(live, first, ROOT, managed, applier, "v1", force=False)
    assert again.object == live and again.managed == managed and not again.changed
    # Every field anyone owns is in the object; a second config replaces the first cleanly.
    after = apply(live, second, ROOT, managed, applier, "v1", force=True)
    present = field_set(after.object, ROOT)
    for entry in after.managed.values():
        assert entry.fields <= present | {NAMED, SET, make_path("labels"), make_path("setStr")}
    # (Up to empty lists and maps: pruning can empty one the configuration mentions as []; in
    # kube-apiserver both decode to an omitted Go field.)
    assert without_empty(merge(after.object, second, ROOT)) == without_empty(after.object)


def without_empty(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_empty(v) for k, v in value.items() if v not in ([], {})}
    return value
