"""JSON Patch (RFC 6902): the RFC's examples, kube-apiserver's messages, and round trips."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from k3py.api.patch import InvalidPatch, PatchError, json_patch

# RFC 6902 appendix A (A.11's unknown member, A.14's escapes, A.16's array value included).
RFC_EXAMPLES: list[tuple[str, Any, list[dict[str, Any]], Any]] = [
    (
        "A.1 add an object member",
        {"foo": "bar"},
        [{"op": "add", "path": "/baz", "value": "qux"}],
        {"baz": "qux", "foo": "bar"},
    ),
    (
        "A.2 add an array element",
        {"foo": ["bar", "baz"]},
        [{"op": "add", "path": "/foo/1", "value": "qux"}],
        {"foo": ["bar", "qux", "baz"]},
    ),
    (
        "A.3 remove an object member",
        {"baz": "qux", "foo": "bar"},
        [{"op": "remove", "path": "/baz"}],
        {"foo": "bar"},
    ),
    (
        "A.4 remove an array element",
        {"foo": ["bar", "qux", "baz"]},
        [{"op": "remove", "path": "/foo/1"}],
        {"foo": ["bar", "baz"]},
    ),
    (
        "A.5 replace a value",
        {"baz": "qux", "foo": "bar"},
        [{"op": "replace", "path": "/baz", "value": "boo"}],
        {"baz": "boo", "foo": "bar"},
    ),
    (
        "A.6 move a value",
        {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
        [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
        {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}},
    ),
    (
        "A.7 move an array element",
        {"foo": ["all", "grass", "cows", "eat"]},
        [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
        {"foo": ["all", "cows", "eat", "grass"]},
    ),
    (
        "A.8 test a value",
        {"baz": "qux", "foo": ["a", 2, "c"]},
        [{"op": "test", "path": "/baz", "value": "qux"}, {"op": "test", "path": "/foo/1", "value": 2}],
        {"baz": "qux", "foo": ["a", 2, "c"]},
    ),
    (
        "A.10 add a nested member object",
        {"foo": "bar"},
        [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
        {"foo": "bar", "child": {"grandchild": {}}},
    ),
    (
        "A.11 ignore unrecognized elements",
        {"foo": "bar"},
        [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}],
        {"foo": "bar", "baz": "qux"},
    ),
    (
        "A.14 ~ escape ordering",
        {"/": 9, "~1": 10},
        [{"op": "test", "path": "/~01", "value": 10}],
        {"/": 9, "~1": 10},
    ),
    (
        "A.16 add an array value",
        {"foo": ["bar"]},
        [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
        {"foo": ["bar", ["abc", "def"]]},
    ),
    (
        "copy",
        {"a": {"b": [1]}},
        [{"op": "copy", "from": "/a", "path": "/c"}],
        {"a": {"b": [1]}, "c": {"b": [1]}},
    ),
    ("add replaces an existing member", {"a": 1}, [{"op": "add", "path": "/a", "value": 2}], {"a": 2}),
    ("add at the end index", {"a": [1]}, [{"op": "add", "path": "/a/1", "value": 2}], {"a": [1, 2]}),
    ("the root is replaced", {"a": 1}, [{"op": "replace", "path": "", "value": [1]}], [1]),
    ("test the whole document", {"a": 1.0}, [{"op": "test", "path": "", "value": {"a": 1}}], {"a": 1.0}),
    ("move to the same place", {"a": 1}, [{"op": "move", "from": "/a", "path": "/a"}], {"a": 1}),
    (
        "keys with a slash (labels)",
        {"metadata": {"labels": {}}},
        [{"op": "add", "path": "/metadata/labels/app.kubernetes.io~1name", "value": "web"}],
        {"metadata": {"labels": {"app.kubernetes.io/name": "web"}}},
    ),
    ("an empty key", {"": 1}, [{"op": "replace", "path": "/", "value": 2}], {"": 2}),
]


@pytest.mark.parametrize(
    ("doc", "ops", "expected"), [c[1:] for c in RFC_EXAMPLES], ids=[c[0] for c in RFC_EXAMPLES]
)
def test_rfc_examples(doc: Any, ops: list[dict[str, Any]], expected: Any) -> None:
    before = copy.deepcopy((doc, ops))
    assert json_patch.apply(doc, ops) == expected
    assert (doc, ops) == before


# Failures, with the messages kube-apiserver (evanphx/json-patch) gives.
FAILURES: list[tuple[str, Any, list[dict[str, Any]], str]] = [
    (
        "A.9 test fails",
        {"baz": "qux"},
        [{"op": "test", "path": "/baz", "value": "bar"}],
        "testing value /baz failed: test failed",
    ),
    (
        "A.12 add to a missing parent",
        {"foo": "bar"},
        [{"op": "add", "path": "/baz/bat", "value": "qux"}],
        'add operation does not apply: doc is missing path: "/baz/bat": missing value',
    ),
    (
        "A.15 a string is not a number",
        {"/": 9, "~1": 10},
        [{"op": "test", "path": "/~01", "value": "10"}],
        "testing value /~01 failed: test failed",
    ),
    ("true is not 1", {"a": True}, [{"op": "test", "path": "/a", "value": 1}], "testing value /a failed"),
    ("test a missing member", {}, [{"op": "test", "path": "/a", "value": None}], "testing value /a failed"),
    (
        "remove a missing member",
        {"a": {}},
        [{"op": "remove", "path": "/a/b"}],
        "error in remove for path: '/a/b': Unable to remove nonexistent key: b: missing value",
    ),
    (
        "remove past the end",
        {"a": [1]},
        [{"op": "remove", "path": "/a/1"}],
        "error in remove for path: '/a/1': Unable to access invalid index: 1: invalid index referenced",
    ),
    (
        "add past the end",
        {"a": [1]},
        [{"op": "add", "path": "/a/3", "value": 0}],
        "Unable to access invalid index: 3: invalid index referenced",
    ),
    (
        "an index with a leading zero",
        {"a": [1, 2]},
        [{"op": "add", "path": "/a/01", "value": 0}],
        "value was not a proper array index: '01'",
    ),
    (
        "a negative index",
        {"a": [1, 2]},
        [{"op": "remove", "path": "/a/-1"}],
        "not a proper array index: '-1'",
    ),
    ("- only adds", {"a": [1]}, [{"op": "remove", "path": "/a/-"}], "not a proper array index: '-'"),
    (
        "replace a missing member",
        {},
        [{"op": "replace", "path": "/a", "value": 1}],
        "replace operation does not apply: doc is missing key: /a: missing value",
    ),
    ("through a scalar", {"a": 1}, [{"op": "add", "path": "/a/b", "value": 1}], "doc is missing path"),
    (
        "move from a missing member",
        {},
        [{"op": "move", "from": "/a", "path": "/b"}],
        "error in move for path: '/a': Unable to remove nonexistent key: a: missing value",
    ),
    (
        "move into a child",
        {"a": {"b": {}}},
        [{"op": "move", "from": "/a", "path": "/a/b/c"}],
        "/a cannot be moved into its own child /a/b/c",
    ),
    (
        "copy from a missing member",
        {},
        [{"op": "copy", "from": "/a/b", "path": "/c"}],
        "copy operation does not apply: doc is missing from path: /a/b: missing value",
    ),
    ("unknown op", {}, [{"op": "frobnicate", "path": "/a"}], "Unexpected kind: frobnicate"),
    ("no op", {}, [{"path": "/a"}], "Unexpected kind: unknown"),
    ("no path", {}, [{"op": "add", "value": 1}], "add operation failed to decode path: missing value"),
    ("no from", {}, [{"op": "move", "path": "/a"}], "move operation failed to decode from: missing value"),
    ("no value", {}, [{"op": "add", "path": "/a"}], 'the operation has no "value"'),
    ("remove the root", {}, [{"op": "remove", "path": ""}], "the document root cannot be removed"),
]


@pytest.mark.parametrize(("doc", "ops", "message"), [c[1:] for c in FAILURES], ids=[c[0] for c in FAILURES])
def test_failures(doc: Any, ops: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(PatchError) as raised:
        json_patch.apply(doc, ops)
    assert message in str(raised.value)
    assert not isinstance(raised.value, InvalidPatch)


@pytest.mark.parametrize(
    ("ops", "message"),
    [
        ({"op": "add"}, "a JSON patch is a list of operations"),
        (["add"], "a JSON patch operation is an object"),
        ([{"op": "add", "path": "a", "value": 1}], 'it must be empty or start with "/"'),
        ([{"op": "add", "path": "/a~2", "value": 1}], '"~" must be followed by 0 or 1'),
    ],
)
def test_malformed_patches(ops: Any, message: str) -> None:
    with pytest.raises(InvalidPatch, match=message):
        json_patch.apply({}, ops)


def test_a_failed_patch_changes_nothing() -> None:
    doc = {"a": [1, 2]}
    ops = [{"op": "add", "path": "/a/-", "value": 3}, {"op": "test", "path": "/a/0", "value": 9}]
    with pytest.raises(PatchError):
        json_patch.apply(doc, ops)
    assert doc == {"a": [1, 2]}


def test_added_values_are_not_shared_with_the_patch() -> None:
    value = {"deep": [1]}
    result = json_patch.apply(
        {}, [{"op": "add", "path": "/a", "value": value}, {"op": "copy", "from": "/a", "path": "/b"}]
    )
    result["a"]["deep"].append(2)
    assert value == {"deep": [1]}
    assert result["b"] == {"deep": [1]}


def test_pointers_round_trip() -> None:
    tokens = ["a/b", "~", "", "c~1d", "0"]
    pointer = json_patch.format_pointer(tokens)
    assert pointer == "/a~1b/~0//c~01d/0"
    assert json_patch.parse_pointer(pointer) == tokens
    assert json_patch.parse_pointer("") == []


scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)


@st.composite
def containers_in(draw: st.DrawFn, doc: Any) -> tuple[list[str], Any]:
    """A path (tokens) to some object or array inside ``doc``, and that container."""
    tokens: list[str] = []
    node = doc
    while True:
        children = (
            [(k, v) for k, v in node.items() if isinstance(v, dict | list)]
            if isinstance(node, dict)
            else [(str(i), v) for i, v in enumerate(node) if isinstance(v, dict | list)]
        )
        if not children or draw(st.booleans()):
            return tokens, node
        token, node = draw(st.sampled_from(children))
        tokens.append(token)


@given(data=st.data(), doc=st.dictionaries(st.text(max_size=5), json_values, max_size=5), value=json_values)
def test_add_then_remove_round_trips(data: st.DataObject, doc: dict[str, Any], value: Any) -> None:
    tokens, container = data.draw(containers_in(doc))
    if isinstance(container, dict):
        key = data.draw(st.text(max_size=5).filter(lambda k: k not in container))
    else:
        key = str(data.draw(st.integers(min_value=0, max_value=len(container))))
    path = json_patch.format_pointer([*tokens, key])
    before = copy.deepcopy(doc)
    added = json_patch.apply(
        doc, [{"op": "add", "path": path, "value": value}, {"op": "test", "path": path, "value": value}]
    )
    assert doc == before
    assert json_patch.apply(added, [{"op": "remove", "path": path}]) == doc


@given(doc=st.dictionaries(st.text(max_size=5), json_values, min_size=1, max_size=5), data=st.data())
def test_move_there_and_back(doc: dict[str, Any], data: st.DataObject) -> None:
    key = data.draw(st.sampled_from(sorted(doc)))
    source = json_patch.format_pointer([key])
    target = json_patch.format_pointer([data.draw(st.text(max_size=5).filter(lambda k: k not in doc))])
    there = json_patch.apply(doc, [{"op": "move", "from": source, "path": target}])
    assert json_patch.apply(there, [{"op": "move", "from": target, "path": source}]) == doc
    copied = json_patch.apply(doc, [{"op": "copy", "from": source, "path": target}])
    json_patch.apply(copied, [{"op": "test", "path": target, "value": doc[key]}])
    assert json_patch.apply(copied, [{"op": "remove", "path": target}]) == doc
