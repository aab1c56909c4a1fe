"""An applied configuration merged into the live object (structured-merge-diff's ``Merge``).

The configuration wins wherever it says something: leaves (scalars, atomic lists and maps,
and lists or maps empty on both sides) are taken from it whole; granular maps merge key by
key; sets and list-maps merge item by item, matched by name. The merged list keeps the
configuration's order for the items it names, and places the live object's other items where
they were relative to those, with upstream's algorithm (:func:`_merge_lists`).

A JSON null in the configuration sets nothing but the leaf it stands on, which it removes:
the key goes away, as it does upstream when the result is decoded into Go structs. A group
of duplicated live items is replaced whole by the configuration's item of that name.
"""

from __future__ import annotations

from typing import Any

from k3py.api.apply.comparison import MISSING
from k3py.api.apply.fieldpath import PathElement
from k3py.api.apply.fieldsets import lenient_index
from k3py.api.apply.shapes import IndexedList, Shape
from k3py.api.patch.json_value import clone


def merge(live: Any, config: Any, shape: Shape) -> Any:
    """``config`` merged into ``live``; neither is modified and the result shares nothing with them."""
    if config is MISSING:
        return clone(live)
    kind = shape.kind(config)
    if live is not MISSING and shape.kind(live) != kind:
        live = MISSING
    if kind == "scalar":
        return clone(config)
    if kind == "map":
        return _merge_maps(live, config, shape)
    return _merge_lists(live, config, shape)


def _merge_maps(live: Any, config: Any, shape: Shape) -> Any:
    live_map = live if isinstance(live, dict) else None
    config_map = config if isinstance(config, dict) else None
    if shape.map_atomic or (not live_map and not config_map):
        return clone(config)
    out: dict[str, Any] = {}
    for key, value in (live_map or {}).items():
        given = config_map.get(key, MISSING) if config_map else MISSING
        merged = merge(value, given, shape.child(key))
        if merged is not None or given is not None:
            out[key] = merged
    for key, given in (config_map or {}).items():
        if live_map is None or key not in live_map:
            merged = merge(MISSING, given, shape.child(key))
            if merged is not None:
                out[key] = merged
    return out


def _merge_lists(live: Any, config: Any, shape: Shape) -> Any:
    live_list = live if isinstance(live, list) else None
    config_list = config if isinstance(config, list) else None
    if not live_list and not config_list:
        return clone(config)
    lhs = lenient_index(shape, live_list if live_list is not None else [])
    rhs = lenient_index(shape, config_list if config_list is not None else [])
    if lhs is None or rhs is None:
        return clone(config)
    items = shape.items()
    out: list[Any] = []

    def take(element: PathElement, with_config: bool) -> None:
        group = lhs.groups.get(element)
        given = rhs.groups[element][0] if with_config else MISSING
        if given is MISSING:
            out.extend(clone(item) for item in group or ())
        elif group is None or len(group) > 1:
            out.append(merge(MISSING, given, items))
        else:
            out.append(merge(group[0], given, items))

    _interleave(lhs, rhs, take)
    return out


def _interleave(lhs: IndexedList, rhs: IndexedList, take: Any) -> None:
    """Visit every name once, in upstream's merged order (structured-merge-diff ``visitListItems``).

    Items only in ``lhs`` keep their place; shared items follow ``rhs``'s order, and a shared
    ``lhs`` item met before its turn is skipped, to be emitted when ``rhs`` reaches it.
    """
    shared = [element for element in rhs.order if element in lhs.groups]
    next_shared = shared.pop(0) if shared else None
    left, right = 0, 0
    while left < len(lhs.order) or right < len(rhs.order):
        if left < len(lhs.order) and right < len(rhs.order):
            element = lhs.order[left]
            if element == rhs.order[right]:
                take(element, True)
                left, right = left + 1, right + 1
                next_shared = shared.pop(0) if shared else None
                continue
            if element in rhs.groups and next_shared is not None and next_shared != element:
                left += 1
                continue
        if left < len(lhs.order) and lhs.order[left] not in rhs.groups:
            take(lhs.order[left], False)
            left += 1
            continue
        if right < len(rhs.order):
            element = rhs.order[right]
            take(element, True)
            right += 1
            if next_shared == element:
                next_shared = shared.pop(0) if shared else None
            continue
        left += 1  # A shared lhs item already taken with its rhs item: nothing left to do here.
