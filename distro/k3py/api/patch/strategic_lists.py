"""How strategic merge patch merges lists, and the order the merged list comes out in.

A list field is merged only when its patch strategy says ``merge`` (or the patch carries a
``$deleteFromPrimitiveList`` for it); otherwise the patch's list replaces it.

- Lists of objects merge by the field's merge key (``name`` for containers, ``containerPort``
  for ports): a patch element merges into the element with the same key value, or is added.
  ``{$patch: delete, <key>: v}`` removes every element with that key value and
  ``{$patch: replace}`` makes the rest of the patch list the whole list.
- Lists of scalars merge as sets: the union, without duplicates.

Order follows upstream exactly, because users see it (``kubectl get -o yaml``): elements the
patch names come in the patch's order (or ``$setElementOrder``'s), and elements only the
server has keep their relative order and are slotted in before the first patch element
that they preceded in the live list. So an element added without ``$setElementOrder`` comes
*before* the existing ones, as with kube-apiserver.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

from k3py.api.patch.directives import DIRECTIVE, clean, has_directive
from k3py.api.patch.errors import InvalidPatch, PatchError
from k3py.api.patch.json_value import JSON, identity, kind, render
from k3py.api.schema import Node

Key = Callable[[JSON], Hashable]


def merge_field(current: list[JSON], value: list[JSON], node: Node | None, *, deleting: bool) -> list[JSON]:
    """The merged value of a list field, by the field's patch strategy."""
    return _merge_field(current, value, node, deleting=deleting)[0]


def merge_ordered(
    current: list[JSON] | None, value: list[JSON] | None, order: list[JSON], node: Node | None
) -> list[JSON]:
    """A list field merged with the patch's list (either may be absent), then put in the order
    of ``$setElementOrder``; elements it does not name are slotted in as for any merge."""
    merge_key = node.merge_key if node is not None else None
    _check_order(value or [], order, merge_key)
    live = current or []
    if value is None:
        merged = live
    elif current is None:
        cleaned = clean(value)
        assert isinstance(cleaned, list)
        merged = cleaned
    else:
        merged, live = _merge_field(current, value, node, deleting=False)
    element_kind = _element_kind(current or [], value or [])
    if element_kind is None:
        return merged
    return _normalize(merged, order, live, _key(element_kind, merge_key))


def _merge_field(
    current: list[JSON], value: list[JSON], node: Node | None, *, deleting: bool
) -> tuple[list[JSON], list[JSON]]:
    """The merged list, and the live list as the merge left it (see :func:`_merge`)."""
    if deleting or (node is not None and "merge" in node.patch_strategy):
        items = node.items() if node is not None else None
        merge_key = node.merge_key if node is not None else None
        return _merge(current, value, items, merge_key, deleting=deleting)
    result = clean(value)
    assert isinstance(result, list)
    return result, current


def _merge(
    current: list[JSON], value: list[JSON], items: Node | None, merge_key: str | None, *, deleting: bool
) -> tuple[list[JSON], list[JSON]]:
    """Merge two lists; also returns the order ``$setElementOrder`` takes as the live order.

    Upstream deletes and appends in the live list's own array, so after a merge of objects it
    sees, in the live list's length, the survivors followed by the added elements; that
    view decides where ``$setElementOrder`` slots server-only elements, and its fixtures
    depend on it.
    """
    element_kind = _element_kind(current, value)
    if element_kind is None:
        return current, current
    if element_kind == "scalar":
        if deleting:
            doomed = {identity(v) for v in value}
            return [v for v in current if identity(v) not in doomed], current
        merged = _unique(current + value)
        return _normalize(merged, value, current, identity), current
    if deleting:
        raise InvalidPatch(f"invalid patch format of primitive list: {render(value)} is a list of objects")
    if not merge_key:
        name = items.name if items is not None and items.name else "an untyped list"
        raise PatchError(f"cannot merge lists without merge key for {name}")
    survivors, rest, replaced = _list_directives(current, value, merge_key)
    merged = _merge_by_key(survivors, rest, merge_key, items)
    live = current if replaced else merged[: len(current)]
    return _normalize(merged, rest, survivors, _key("map", merge_key)), live


def _list_directives(
    current: list[JSON], value: list[JSON], merge_key: str
) -> tuple[list[JSON], list[JSON], bool]:
    """Apply ``$patch`` elements: the live list after deletions (or the replacement), the rest
    of the patch, and whether the patch replaced the list."""
    rest: list[JSON] = []
    replace = False
    for item in value:
        if not has_directive(item):
            rest.append(item)
            continue
        directive = item[DIRECTIVE]
        if directive == "delete":
            if merge_key not in item:
                raise PatchError(_no_merge_key(item, merge_key))
            doomed = identity(item[merge_key])
            current = [e for e in current if not (merge_key in e and identity(e[merge_key]) == doomed)]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise PatchError("merging lists cannot yet be specified in the patch")
        else:
            raise InvalidPatch(f"unknown patch type: {render(directive)} in map: {render(item)}")
    if replace:
        replaced = clean(rest)
        assert isinstance(replaced, list)
        return replaced, [], True
    return current, rest, False


def _merge_by_key(current: list[JSON], value: list[JSON], merge_key: str, items: Node | None) -> list[JSON]:
    # Maps and lists recurse into each other: strategic imports this module.
    from k3py.api.patch.strategic import merge_map

    merged = list(current)
    for item in value:
        if merge_key not in item:
            raise PatchError(_no_merge_key(item, merge_key))
        wanted = identity(item[merge_key])
        for index, existing in enumerate(merged):
            if merge_key in existing and identity(existing[merge_key]) == wanted:
                merged[index] = merge_map(existing, item, items)
                break
        else:
            merged.append(clean(item))
    return merged


def _normalize(merged: list[JSON], patch_order: list[JSON], server_order: list[JSON], key: Key) -> list[JSON]:
    """Patch elements in ``patch_order``, server-only ones in ``server_order``, interleaved."""
    named = {key(item) for item in patch_order}
    from_patch = _sorted_by(
        [item for item in merged if key(item) in named],
        patch_order,
        key,
    )
    server_only = _sorted_by([item for item in merged if key(item) not in named], server_order, key)
    position = _positions(server_order, key)
    result: list[JSON] = []
    i = j = 0
    while i < len(server_only) and j < len(from_patch):
        left, right = position.get(key(server_only[i])), position.get(key(from_patch[j]))
        if left is not None and right is not None and left < right:
            result.append(server_only[i])
            i += 1
        else:
            result.append(from_patch[j])
            j += 1
    return result + server_only[i:] + from_patch[j:]


def _sorted_by(items: list[JSON], order: list[JSON], key: Key) -> list[JSON]:
    position = _positions(order, key)
    return sorted(items, key=lambda item: position.get(key(item), len(order)))


def _positions(items: Sequence[JSON], key: Key) -> dict[Hashable, int]:
    """Each key's first index in ``items``."""
    position: dict[Hashable, int] = {}
    for index, item in enumerate(items):
        position.setdefault(key(item), index)
    return position


def _check_order(value: list[JSON], order: list[JSON], merge_key: str | None) -> None:
    """The patch list must name its elements in the same relative order as ``$setElementOrder``."""
    if not value or not order:
        return
    named = (
        [v for v in value if not (isinstance(v, dict) and v.get(DIRECTIVE) == "delete")]
        if merge_key
        else value
    )
    key = _key("map", merge_key) if merge_key else identity
    i = j = 0
    while i < len(named) and j < len(order):
        if has_directive(named[i]):
            i += 1
            continue
        if key(named[i]) == key(order[j]):
            i += 1
        j += 1
    if i < len(named):
        raise PatchError(
            f"the order in patch list:\n{render(value)}\n"
            f" doesn't match $setElementOrder list:\n{render(order)}"
        )


def _key(element_kind: str, merge_key: str | None) -> Key:
    if element_kind != "map" or not merge_key:
        return identity

    def by_merge_key(item: JSON) -> Hashable:
        if not isinstance(item, dict):
            raise PatchError(f"expected an object with merge key {merge_key}, but received {render(item)}")
        if merge_key not in item:
            raise PatchError(_no_merge_key(item, merge_key))
        return identity(item[merge_key])

    return by_merge_key


def _element_kind(*lists: list[JSON]) -> str | None:
    """map or scalar for the elements of all ``lists``, None when they are all empty."""
    kinds = {kind(item) for items in lists for item in items}
    if not kinds:
        return None
    if "array" in kinds:
        raise PatchError("lists of lists are not supported")
    if len(kinds) > 1:
        raise PatchError(f"list element types are not identical: {render(list(lists))}")
    return "map" if kinds == {"object"} else "scalar"


def _unique(values: list[JSON]) -> list[JSON]:
    seen: set[Hashable] = set()
    unique = []
    for value in values:
        ident = identity(value)
        if ident not in seen:
            seen.add(ident)
            unique.append(value)
    return unique


def _no_merge_key(item: Any, merge_key: str) -> str:
    return f"map: {render(item)} does not contain declared merge key: {merge_key}"
