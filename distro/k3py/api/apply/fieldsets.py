"""Field sets of objects, and objects cut by field sets (structured-merge-diff's ``typed`` walks).

- :func:`field_set`: the fields a value sets (``ToFieldSet``): every scalar, every atomic list
  or map, every item of a set or list-map, every map entry that is not a declared field;
  granular maps and declared fields are only reached through their contents;
- :func:`with_named_fields`: the set plus the declared fields its paths go through
  (``EnsureNamedFieldsAreMembers``), so pruning can remove a struct whose last owned
  field went away;
- :func:`remove_items`: a copy of a value without the given paths (``RemoveItems``);
- :func:`problems`: what upstream refuses in an applied configuration (a field the schema
  does not declare, an unnameable or duplicated list item, a map where a list belongs).

Live objects are read leniently: a list whose items cannot be named is one atomic value, and
duplicated items (see :func:`~k3py.api.apply.shapes.index_list`) are owned by their name only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from k3py.api.apply.fieldpath import (
    FieldSet,
    Path,
    PathElement,
    TrieNode,
    field_element,
    index_element,
    path_string,
    trie,
)
from k3py.api.apply.shapes import ElementError, IndexedList, Shape, duplicates, index_list
from k3py.api.patch.json_value import clone


def field_set(value: Any, shape: Shape) -> FieldSet:
    out: set[Path] = set()
    _collect(value, shape, (), out)
    return frozenset(out)


def _collect(value: Any, shape: Shape, path: Path, out: set[Path]) -> None:
    kind = shape.kind(value)
    if kind == "scalar":
        if path:
            out.add(path)
    elif kind == "list":
        indexed = lenient_index(shape, value)
        if indexed is None:
            if path:
                out.add(path)
            return
        items = shape.items()
        for element in indexed.order:
            group = indexed.groups[element]
            if len(group) == 1:
                _collect(group[0], items, (*path, element), out)
            out.add((*path, element))
    elif shape.map_atomic:
        if path:
            out.add(path)
    elif isinstance(value, dict):
        for key, item in value.items():
            child = shape.field(key)
            where = (*path, field_element(key))
            if child is None:
                _collect(item, shape.values(), where, out)
                out.add(where)
            else:
                _collect(item, child, where, out)


def lenient_index(shape: Shape, value: Any) -> IndexedList | None:
    """The named items of a granular list, or None when it is atomic, null or unnameable."""
    if shape.list_type == "atomic" or not isinstance(value, list):
        return None
    try:
        return index_list(shape, value)
    except ElementError:
        return None


def with_named_fields(fields: Iterable[Path], shape: Shape) -> FieldSet:
    out = set(fields)
    steps: dict[Path, tuple[Shape | None, bool]] = {}

    def step(prefix: Path) -> tuple[Shape | None, bool]:
        found = steps.get(prefix)
        if found is None:
            parent = step(prefix[:-1])[0] if len(prefix) > 1 else shape
            found = steps[prefix] = _step(parent, prefix[-1])
        return found

    for path in list(out):
        for depth in range(1, len(path)):
            if step(path[:depth])[1]:
                out.add(path[:depth])
    return frozenset(out)


def _step(shape: Shape | None, element: PathElement) -> tuple[Shape | None, bool]:
    """The shape under ``element``, and whether the element is a declared field."""
    if shape is None:
        return None, False
    if element[0] == "f":
        declared = shape.field(element[2:])
        return (declared, True) if declared is not None else (shape.values(), False)
    if element[0] == "k":
        return shape.items(), False
    return None, False


def remove_items(value: Any, fields: Iterable[Path], shape: Shape) -> Any:
    """A copy of ``value`` without the members of ``fields`` (and what is under them).

    A map or list emptied this way becomes None, which the map holding it then drops.
    """
    return _remove(value, trie(fields), shape)


def _remove(value: Any, cut: dict[PathElement, TrieNode], shape: Shape) -> Any:
    kind = shape.kind(value)
    if kind == "list":
        indexed = lenient_index(shape, value)
        if indexed is None or not value:
            return clone(value)
        out: list[Any] = []
        items = shape.items()
        for item, element in zip(value, indexed.positions, strict=True):
            node = cut.get(element)
            if node is None or (not node.member and len(indexed.groups[element]) > 1):
                out.append(clone(item))
            elif not node.member:
                kept = _remove(item, node.children, items)
                if kept is not None:
                    out.append(kept)
        return out or None
    if kind == "scalar" or shape.map_atomic or not isinstance(value, dict) or not value:
        return clone(value)
    result: dict[str, Any] = {}
    for key, item in value.items():
        node = cut.get(field_element(key))
        if node is None:
            result[key] = clone(item)
        elif not node.member:
            kept = _remove(item, node.children, shape.child(key))
            if kept is not None:
                result[key] = kept
    return result or None


def problems(value: Any, shape: Shape, path: Path = ()) -> list[str]:
    """Why upstream would refuse ``value`` as an applied configuration (empty when it would not)."""
    prefix = f"{path_string(path)}: " if path else ""
    expected = shape.expected()
    if value is None or shape.mode == "atomic":
        return []
    if expected == "map" and not isinstance(value, dict):
        return [f"{prefix}expected map, got {_kind_name(value)}"]
    if expected == "list" and not isinstance(value, list):
        return [f"{prefix}expected list, got {_kind_name(value)}"]
    if expected == "scalar" and isinstance(value, dict | list):
        return [f"{prefix}expected scalar, got {_kind_name(value)}"]
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            child = shape.field(key)
            below = (*path, field_element(key))
            if child is None and shape.closed:
                found.append(f"{path_string(below)}: field not declared in schema")
                continue
            found.extend(problems(item, child if child is not None else shape.values(), below))
    elif isinstance(value, list) and shape.list_type == "atomic":
        for index, item in enumerate(value):
            found.extend(problems(item, shape.items(), (*path, index_element(index))))
    elif isinstance(value, list):
        try:
            indexed = index_list(shape, value)
        except ElementError as err:
            return [f"{prefix}{err}"]
        found.extend(prefix + message for message in duplicates(indexed))
        for element in indexed.order:
            found.extend(problems(indexed.groups[element][0], shape.items(), (*path, element)))
    return found


def _kind_name(value: Any) -> str:
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list):
        return "list"
    if isinstance(value, bool):
        return "boolean"
    return "string" if isinstance(value, str) else "number"
