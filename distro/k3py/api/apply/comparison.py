"""What changed between two versions of an object, as field sets (structured-merge-diff's ``Compare``).

Leaves (scalars, atomic lists and maps, and lists or maps empty on both sides) are compared
by value: present only after is *added*, only before is *removed*, on both sides but different
is *modified*. Granular maps, sets and list-maps are walked item by item, and such a node is
itself added or removed when it appears or disappears as a whole. Who owned a field, and who
loses it, is decided from these three sets (:mod:`.updater`).

A group of duplicated list items (see :func:`~k3py.api.apply.shapes.index_list`) is compared as
one leaf under its name; when an item turns into duplicates or back, the single item's fields
count as removed or added.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from k3py.api.apply.fieldpath import FieldSet, Path, field_element, recursive_difference
from k3py.api.apply.fieldsets import field_set, lenient_index
from k3py.api.apply.shapes import Shape
from k3py.api.patch.json_value import equal

MISSING: Final = object()
"""The absence of a value (as opposed to a JSON null)."""


@dataclass(slots=True)
class Comparison:
    added: set[Path] = field(default_factory=set)
    modified: set[Path] = field(default_factory=set)
    removed: set[Path] = field(default_factory=set)

    def without(self, ignored: Iterable[Path]) -> Comparison:
        """The comparison with the ``ignored`` fields and everything under them left out."""
        cut = frozenset(ignored)
        if not cut:
            return self
        return Comparison(
            set(recursive_difference(self.added, cut)),
            set(recursive_difference(self.modified, cut)),
            set(recursive_difference(self.removed, cut)),
        )

    def changed(self) -> FieldSet:
        return frozenset(self.modified | self.added)


def compare(old: Any, new: Any, shape: Shape) -> Comparison:
    """How ``new`` differs from ``old``; either may be :data:`MISSING`."""
    result = Comparison()
    _compare(old, new, shape, (), result)
    return result


def _compare(old: Any, new: Any, shape: Shape, path: Path, result: Comparison) -> None:
    kind = shape.kind(new if new is not MISSING else old)
    mismatched = old is not MISSING and new is not MISSING and shape.kind(old) != kind
    if mismatched or kind == "scalar":
        _leaf(old, new, path, result)
    elif kind == "map":
        old_map, new_map = _as(old, dict), _as(new, dict)
        if shape.map_atomic or (not old_map and not new_map):
            _leaf(old, new, path, result)
            return
        for key in {**(old_map or {}), **(new_map or {})}:
            child = shape.child(key)
            before = old_map.get(key, MISSING) if old_map else MISSING
            after = new_map.get(key, MISSING) if new_map else MISSING
            _compare(before, after, child, (*path, field_element(key)), result)
        _node(old, new, path, result)
    else:
        _compare_lists(old, new, shape, path, result)


def _compare_lists(old: Any, new: Any, shape: Shape, path: Path, result: Comparison) -> None:
    old_list, new_list = _as(old, list), _as(new, list)
    before = lenient_index(shape, old_list if old_list is not None else [])
    after = lenient_index(shape, new_list if new_list is not None else [])
    if before is None or after is None or (not old_list and not new_list):
        _leaf(old, new, path, result)
        return
    items = shape.items()
    for element in dict.fromkeys([*before.order, *after.order]):
        old_group, new_group = before.groups.get(element), after.groups.get(element)
        where = (*path, element)
        if (old_group is not None and len(old_group) > 1) or (new_group is not None and len(new_group) > 1):
            _regroup(old_group, new_group, items, where, result)
        else:
            old_item = old_group[0] if old_group else MISSING
            new_item = new_group[0] if new_group else MISSING
            _compare(old_item, new_item, items, where, result)
    _node(old, new, path, result)


def _regroup(
    old: list[Any] | None, new: list[Any] | None, shape: Shape, path: Path, result: Comparison
) -> None:
    """A name that holds duplicates on at least one side: one leaf, plus a single item's fields."""
    _leaf(old if old is not None else MISSING, new if new is not None else MISSING, path, result)
    if old is not None and len(old) == 1:
        result.removed.update((*path, *sub) for sub in field_set(old[0], shape))
    if new is not None and len(new) == 1:
        result.added.update((*path, *sub) for sub in field_set(new[0], shape))


def _leaf(old: Any, new: Any, path: Path, result: Comparison) -> None:
    if not path:
        return
    if old is MISSING:
        result.added.add(path)
    elif new is MISSING:
        result.removed.add(path)
    elif not equal(old, new):
        result.modified.add(path)


def _node(old: Any, new: Any, path: Path, result: Comparison) -> None:
    if not path:
        return
    if old is MISSING:
        result.added.add(path)
    elif new is MISSING:
        result.removed.add(path)


def _as(value: Any, kind: type) -> Any:
    return value if isinstance(value, kind) else None
