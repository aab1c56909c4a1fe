"""Field paths and field sets, and their FieldsV1 encoding (sigs.k8s.io/structured-merge-diff ``fieldpath``).

A *path element* is one step into an object, kept in the form FieldsV1 writes it, which is
also hashable and cheap to compare:

- ``f:<name>``: a field of an object (``f:spec``, ``f:app``);
- ``k:<json>``: the item of a list-map with these key fields (``k:{"name":"nginx"}``);
- ``v:<json>``: the item of a set with this value (``v:"example.com/finalizer"``);
- ``i:<n>``: the n-th item of a list (the format has it; Kubernetes schemas never produce it).

The JSON inside is canonical (sorted keys, integral numbers as integers, Go's escaping), so
equal elements are equal strings. A *path* is a tuple of elements and a :data:`FieldSet` a
frozenset of paths. Membership is exact: a path's parents are not members unless inserted,
and union, intersection and difference work path by path, as upstream's ``Set`` does.

FieldsV1 nests elements as JSON object keys; ``{}`` marks a member with nothing under it and
``".": {}`` a member that also has children. :func:`to_fields_v1` writes the keys in
upstream's order (``.`` first, then elements sorted as upstream sorts them) and
:func:`from_fields_v1` reads any order, dropping elements of an unknown kind as upstream does.
"""

from __future__ import annotations

import decimal
import functools
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

PathElement = str
Path = tuple[PathElement, ...]
FieldSet = frozenset[Path]

EMPTY: Final[FieldSet] = frozenset()
_KINDS: Final = ("f", "k", "v", "i")  # upstream's order: fields, keys, values, indices


class FieldsV1Error(ValueError):
    """A FieldsV1 document or a path element that cannot be read."""


# Building elements and paths.


def field_element(name: str) -> PathElement:
    return "f:" + name


def key_element(keys: Mapping[str, Any]) -> PathElement:
    return "k:" + go_json(dict(keys), sort_keys=True)


def value_element(value: Any) -> PathElement:
    return "v:" + go_json(value, sort_keys=True)


def index_element(index: int) -> PathElement:
    return f"i:{index}"


def make_path(*parts: str | int | Mapping[str, Any]) -> Path:
    """A path from field names, indices and list-map keys: ``make_path("spec", {"name": "a"})``."""
    out: list[PathElement] = []
    for part in parts:
        if isinstance(part, str):
            out.append(field_element(part))
        elif isinstance(part, bool):
            raise TypeError("a path part is a field name, an index or a key mapping")
        elif isinstance(part, int):
            out.append(index_element(part))
        else:
            out.append(key_element(part))
    return tuple(out)


def parse_element(text: str) -> PathElement:
    """The canonical form of a serialized element; :class:`FieldsV1Error` if it is malformed.

    An element of an unknown kind raises :class:`UnknownElement`, which readers skip.
    """
    if len(text) < 2:
        raise FieldsV1Error(f"path element {text!r} is shorter than 2 characters")
    if text[1] != ":":
        raise FieldsV1Error(f"path element {text!r} has no colon after its kind")
    kind, body = text[0], text[2:]
    if kind == "f":
        return text
    if kind == "i":
        try:
            return index_element(int(body))
        except ValueError:
            raise FieldsV1Error(f"path element {text!r} is not an index") from None
    if kind not in ("k", "v"):
        raise UnknownElement(text)
    try:
        value = json.loads(body)
    except ValueError:
        raise FieldsV1Error(f"path element {text!r} does not hold JSON") from None
    if kind == "v":
        return value_element(value)
    if not isinstance(value, dict) or not value:
        raise FieldsV1Error(f"path element {text!r} does not hold a non-empty JSON object")
    return key_element(value)


class UnknownElement(FieldsV1Error):
    """A path element of a kind this version does not know (skipped when reading FieldsV1)."""


@functools.lru_cache(maxsize=4096)
def element_value(element: PathElement) -> Any:
    """What a ``k:`` or ``v:`` element holds (a dict of key fields, or a value); an index or name."""
    kind, body = element[0], element[2:]
    if kind == "f":
        return body
    if kind == "i":
        return int(body)
    return json.loads(body)


# Printing, as conflict messages and status causes show paths.


def element_string(element: PathElement) -> str:
    """``.name``, ``[name="nginx"]``, ``[="value"]`` or ``[0]``, like upstream's ``PathElement.String``."""
    kind = element[0]
    if kind == "f":
        return "." + element[2:]
    if kind == "i":
        return f"[{element[2:]}]"
    value = element_value(element)
    if kind == "v":
        return f"[={go_string(value)}]"
    return "[" + ",".join(f"{name}={go_string(value[name])}" for name in sorted(value)) + "]"


def path_string(path: Path) -> str:
    """``.spec.template.spec.containers[name="nginx"].image``."""
    return "".join(element_string(element) for element in path)


def go_string(value: Any) -> str:
    """A value as upstream's ``value.ToString`` prints it (strings quoted, numbers bare)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e21 else repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(go_string(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ";".join(f"{key}={go_string(item)}" for key, item in value.items()) + "}"
    return repr(value)


# Ordering, as upstream sorts path elements (FieldsV1 keys, conflict lists).


def element_sort_key(element: PathElement) -> Any:
    return _ElementKey(element)


class _ElementKey:
    __slots__ = ("element",)

    def __init__(self, element: PathElement) -> None:
        self.element = element

    def __lt__(self, other: _ElementKey) -> bool:
        return compare_elements(self.element, other.element) < 0


def compare_elements(left: PathElement, right: PathElement) -> int:
    if left == right:
        return 0
    left_rank, right_rank = _KINDS.index(left[0]), _KINDS.index(right[0])
    if left_rank != right_rank:
        return -1 if left_rank < right_rank else 1
    if left[0] == "f":
        return _cmp(left[2:], right[2:])
    if left[0] == "i":
        return _cmp(int(left[2:]), int(right[2:]))
    if left[0] == "v":
        return compare_values(element_value(left), element_value(right))
    left_keys, right_keys = element_value(left), element_value(right)
    for left_name, right_name in zip(sorted(left_keys), sorted(right_keys), strict=False):
        result = _cmp(left_name, right_name) or compare_values(left_keys[left_name], right_keys[right_name])
        if result:
            return result
    return _cmp(len(left_keys), len(right_keys))


def compare_values(left: Any, right: Any) -> int:
    """Upstream's total order on values: numbers < strings < booleans < lists < maps < null."""
    left_rank, right_rank = _value_rank(left), _value_rank(right)
    if left_rank != right_rank:
        return -1 if left_rank < right_rank else 1
    if left_rank == 3:
        for a, b in zip(left, right, strict=False):
            result = compare_values(a, b)
            if result:
                return result
        return _cmp(len(left), len(right))
    if left_rank == 4:
        left_items, right_items = sorted(left.items()), sorted(right.items())
        for (lk, lv), (rk, rv) in zip(left_items, right_items, strict=False):
            result = _cmp(lk, rk) or compare_values(lv, rv)
            if result:
                return result
        return _cmp(len(left_items), len(right_items))
    if left_rank == 5:
        return 0
    return _cmp(left, right)


def _value_rank(value: Any) -> int:
    if isinstance(value, bool):
        return 2
    if isinstance(value, int | float):
        return 0
    if isinstance(value, str):
        return 1
    if isinstance(value, list):
        return 3
    if isinstance(value, dict):
        return 4
    return 5


def _cmp(left: Any, right: Any) -> int:
    return -1 if left < right else (1 if left > right else 0)


# Set operations beyond Python's own.


def recursive_difference(fields: Iterable[Path], removed: Iterable[Path]) -> FieldSet:
    """``fields`` without the paths in ``removed`` and everything under them."""
    cut = frozenset(removed)
    if not cut:
        return frozenset(fields)
    return frozenset(path for path in fields if not any(path[:n] in cut for n in range(1, len(path) + 1)))


@dataclass(slots=True)
class TrieNode:
    """One path element of a :func:`trie`: whether its path is a member, and what is under it."""

    member: bool = False
    children: dict[PathElement, TrieNode] = field(default_factory=dict)


def trie(fields: Iterable[Path]) -> dict[PathElement, TrieNode]:
    """The paths of ``fields`` as a tree keyed by path element."""
    root: dict[PathElement, TrieNode] = {}
    for path in fields:
        level, node = root, None
        for element in path:
            node = level.get(element)
            if node is None:
                node = level[element] = TrieNode()
            level = node.children
        if node is not None:
            node.member = True
    return root


def ordered(fields: Iterable[Path]) -> Iterator[Path]:
    """The paths in upstream's iteration order: at each level members first, then the subtrees."""

    def walk(level: dict[PathElement, TrieNode], prefix: Path) -> Iterator[Path]:
        elements = sorted(level, key=element_sort_key)
        for element in elements:
            if level[element].member:
                yield (*prefix, element)
        for element in elements:
            if level[element].children:
                yield from walk(level[element].children, (*prefix, element))

    return walk(trie(fields), ())


# FieldsV1.


def to_fields_v1(fields: Iterable[Path]) -> dict[str, Any]:
    """The FieldsV1 document of a field set."""

    def encode(level: dict[PathElement, TrieNode]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for element in sorted(level, key=element_sort_key):
            node = level[element]
            if node.children:
                inner: dict[str, Any] = {".": {}} if node.member else {}
                inner.update(encode(node.children))
                out[element] = inner
            else:
                out[element] = {}
        return out

    return encode(trie(fields))


def from_fields_v1(document: Any) -> FieldSet:
    """The field set a FieldsV1 document describes; :class:`FieldsV1Error` if it is malformed."""
    if not isinstance(document, dict):
        raise FieldsV1Error(f"FieldsV1 is a JSON object, not {type(document).__name__}")
    out: set[Path] = set()

    def decode(level: dict[str, Any], prefix: Path) -> bool:
        member, has_children = False, False
        for text, inner in level.items():
            if text == ".":
                member = True
                continue
            try:
                element = parse_element(text)
            except UnknownElement:
                continue
            if not isinstance(inner, dict):
                raise FieldsV1Error(f"the value of {text!r} is not a JSON object")
            has_children = True
            if decode(inner, (*prefix, element)):
                out.add((*prefix, element))
        return member or not has_children

    decode(document, ())
    return frozenset(out)


# Go's JSON, which FieldsV1 keys and manager identifiers are written in.


def go_json(value: Any, *, sort_keys: bool = False) -> str:
    """Compact JSON as Go's encoding/json writes it: HTML characters escaped, integral numbers bare."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        for char, escaped in _GO_ESCAPES:
            text = text.replace(char, escaped)
        return text
    if isinstance(value, list | tuple):
        return "[" + ",".join(go_json(item, sort_keys=sort_keys) for item in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value) if sort_keys else list(value)
        items = (go_json(str(key)) + ":" + go_json(value[key], sort_keys=sort_keys) for key in keys)
        return "{" + ",".join(items) + "}"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


_GO_ESCAPES: Final = (
    ("<", "\\u003c"),
    (">", "\\u003e"),
    ("&", "\\u0026"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
)


def _go_float(value: float) -> str:
    if not math.isfinite(value):
        raise ValueError(f"{value} is not a JSON number")
    if value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    magnitude = abs(value)
    if 1e-6 <= magnitude < 1e21:
        text = repr(value)
        if "e" not in text:
            return text
        return format(decimal.Decimal(text), "f")
    mantissa, _, exponent = repr(value).partition("e")
    sign = "-" if exponent.startswith("-") else "+"
    return f"{mantissa}e{sign}{int(exponent.lstrip('+-'))}"
