"""JSON Merge Patch (RFC 7386): the RFC's examples, and create/apply as inverses."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from k3py.api.patch import merge_patch
from k3py.api.patch.json_value import equal

# RFC 7386 appendix A, in order.
RFC_EXAMPLES: list[tuple[Any, Any, Any]] = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("doc", "patch", "expected"), RFC_EXAMPLES)
def test_rfc_examples(doc: Any, patch: Any, expected: Any) -> None:
    before = copy.deepcopy((doc, patch))
    assert merge_patch.apply(doc, patch) == expected
    assert (doc, patch) == before


def test_arrays_in_the_patch_are_taken_as_they_are() -> None:
    assert merge_patch.apply({}, {"a": [{"b": None}, None]}) == {"a": [{"b": None}, None]}


def test_the_result_shares_nothing_with_the_inputs() -> None:
    doc = {"keep": {"x": [1]}, "merge": {"y": 1}}
    patch = {"merge": {"z": [2]}, "new": {"w": [3]}}
    result = merge_patch.apply(doc, patch)
    result["keep"]["x"].append(9)
    result["merge"]["z"].append(9)
    result["new"]["w"].append(9)
    assert doc == {"keep": {"x": [1]}, "merge": {"y": 1}}
    assert patch == {"merge": {"z": [2]}, "new": {"w": [3]}}


def test_create_examples() -> None:
    assert merge_patch.create({"a": 1, "b": {"c": 2, "d": 3}}, {"b": {"c": 2, "d": 4}, "e": [1]}) == {
        "a": None,
        "b": {"d": 4},
        "e": [1],
    }
    assert merge_patch.create({"a": 1}, {"a": 1.0}) == {}
    assert merge_patch.create({"a": True}, {"a": 1}) == {"a": 1}
    assert merge_patch.create([1], {"a": 1}) == {"a": 1}


keys = st.text(max_size=4)
scalars = (
    st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=4)
)
# Anything JSON can hold.
json_values = st.recursive(
    st.none() | scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=16,
)
# What a merge patch can produce: no null as an object member (null means "remove").
targets = st.recursive(
    scalars,
    lambda inner: st.lists(json_values, max_size=3) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=16,
)


@given(source=json_values, target=targets)
def test_applying_the_created_patch_gives_the_target(source: Any, target: Any) -> None:
    before = copy.deepcopy((source, target))
    patch = merge_patch.create(source, target)
    assert equal(merge_patch.apply(source, patch), target)
    assert (source, target) == before


@given(doc=st.dictionaries(keys, json_values, max_size=5))
def test_an_empty_patch_changes_nothing(doc: dict[str, Any]) -> None:
    assert merge_patch.apply(doc, {}) == doc
    assert merge_patch.create(doc, doc) == {}


@given(doc=json_values, patch=json_values)
def test_applying_twice_is_applying_once(doc: Any, patch: Any) -> None:
    once = merge_patch.apply(doc, patch)
    assert equal(merge_patch.apply(once, patch), once)
