"""Strategic merge patch: ``application/strategic-merge-patch+json``, as kube-apiserver applies it.

It is JSON merge patch plus schema knowledge and directives (the apply half of apimachinery's
``pkg/util/strategicpatch``). :func:`apply` copies both documents, then walks the patch and
the schema :class:`~k3py.api.schema.Node` together:

- maps merge key by key; ``null`` deletes a key. ``$patch: replace`` in a map replaces it,
  ``$patch: delete`` empties it, ``$retainKeys: [...]`` drops every key not listed;
- lists whose field has patch strategy ``merge`` are merged (:mod:`.strategic_lists`): lists
  of objects by the field's merge key, with ``{$patch: delete, <key>: v}`` removing and
  ``{$patch: replace}`` replacing the whole list; lists of scalars as sets, with
  ``$deleteFromPrimitiveList/<field>`` removing values. ``$setElementOrder/<field>`` orders a
  merged list. Every other list is replaced;
- where the schema says nothing (``node`` None: a custom resource, an untyped field, a field
  the schema does not know) maps merge and lists are replaced, as in JSON merge patch.

A value taken from the patch where the document has nothing to merge it with is cleaned as
upstream cleans it: nulls are dropped from its objects and objects carrying ``$patch`` vanish.
k3py also drops the other directive keys there, which kube-apiserver drops later, when it
decodes into its typed structs.
"""

from __future__ import annotations

from typing import Any, Final

from k3py.api.patch import strategic_lists
from k3py.api.patch.directives import (
    DELETE_FROM_PRIMITIVE_LIST,
    DIRECTIVE,
    RETAIN_KEYS,
    SET_ELEMENT_ORDER,
    clean,
    directive_target,
    has_directive,
)
from k3py.api.patch.errors import InvalidPatch, PatchError
from k3py.api.patch.json_value import JSON, clone, render
from k3py.api.schema import Node

_MISSING: Final = object()


def apply(doc: dict[str, Any], patch: dict[str, Any], node: Node | None) -> dict[str, Any]:
    """``doc`` with ``patch`` applied, reading patch strategies from ``node`` (a kind's root).

    Neither argument is modified and the result shares nothing with them. Raises
    :class:`InvalidPatch` for a malformed patch and :class:`PatchError` for one that does not
    apply to this document.
    """
    if not isinstance(doc, dict):
        raise PatchError(f"strategic merge patch needs an object to patch, not {render(doc)}")
    if not isinstance(patch, dict):
        raise InvalidPatch(f"a strategic merge patch is a JSON object, not {render(patch)}")
    return merge_map(clone(doc), clone(patch), node)


def merge_map(original: dict[str, JSON], patch: dict[str, JSON], node: Node | None) -> dict[str, JSON]:
    """Merge ``patch`` into ``original`` and return the result; both are consumed (mutated)."""
    if DIRECTIVE in patch:
        return _map_directive(patch)
    _retain_keys(original, patch)
    _set_element_orders(original, patch, node)
    for key, value in patch.items():
        deleting = key.startswith(DELETE_FROM_PRIMITIVE_LIST)
        if deleting:
            key = directive_target(key, DELETE_FROM_PRIMITIVE_LIST)
        if value is None:
            original.pop(key, None)
            continue
        current = original.get(key, _MISSING)
        if current is _MISSING or (type(current) is not type(value) and not _both_scalars(current, value)):
            if not deleting:
                _take(original, key, value)
            continue
        child = node.child(key) if node is not None else None
        if isinstance(current, dict):
            if "replace" in _strategies(child):
                _take(original, key, value)
            else:
                original[key] = merge_map(current, value, child)
        elif isinstance(current, list):
            original[key] = strategic_lists.merge_field(current, value, child, deleting=deleting)
        else:
            original[key] = value
    return original


def _map_directive(patch: dict[str, JSON]) -> dict[str, JSON]:
    directive = patch.pop(DIRECTIVE)
    if directive == "replace":
        result = clean(patch)
        assert isinstance(result, dict)
        return result
    if directive == "delete":
        return {}
    raise InvalidPatch(f"unknown patch type: {render(directive)} in map: {render(patch)}")


def _retain_keys(original: dict[str, JSON], patch: dict[str, JSON]) -> None:
    """``$retainKeys``: every key the patch sets must be listed; unlisted keys are cleared."""
    if RETAIN_KEYS not in patch:
        return
    listed = patch.pop(RETAIN_KEYS)
    if not isinstance(listed, list) or not all(isinstance(k, str) for k in listed):
        raise InvalidPatch("invalid patch format of retainKeys")
    keep = set(listed)
    for key, value in patch.items():
        if value is None or key.startswith((DELETE_FROM_PRIMITIVE_LIST, SET_ELEMENT_ORDER)):
            continue
        if key not in keep:
            raise InvalidPatch(f"invalid patch format of retainKeys: {key!r} is set but not in $retainKeys")
    for key in [k for k in original if k not in keep]:
        del original[key]


def _set_element_orders(original: dict[str, JSON], patch: dict[str, JSON], node: Node | None) -> None:
    """Merge each list named by a ``$setElementOrder/<field>`` now, and put it in that order."""
    for key in [k for k in patch if k.startswith(SET_ELEMENT_ORDER)]:
        order = patch.pop(key)
        field = directive_target(key, SET_ELEMENT_ORDER)
        if not isinstance(order, list):
            raise InvalidPatch(f"invalid patch format of setElementOrder list: {key} is {render(order)}")
        current = original.get(field, _MISSING)
        value = patch.pop(field, _MISSING)
        if current is _MISSING and value is _MISSING:
            continue
        for name, found in ((field, current), (f"the patch's {field}", value)):
            if found is not _MISSING and not isinstance(found, list):
                raise PatchError(f"expected a list for {name}, but received {render(found)}")
        child = node.child(field) if node is not None else None
        original[field] = strategic_lists.merge_ordered(
            None if current is _MISSING else current,
            None if value is _MISSING else value,
            order,
            child,
        )


def _take(original: dict[str, JSON], key: str, value: JSON) -> None:
    """Set ``key`` to a value from the patch, cleaned; a value that is a directive is dropped."""
    if has_directive(value):
        original.pop(key, None)
    else:
        original[key] = clean(value)


def _strategies(node: Node | None) -> frozenset[str]:
    return node.patch_strategy if node is not None else frozenset()


def _both_scalars(left: JSON, right: JSON) -> bool:
    return not isinstance(left, dict | list) and not isinstance(right, dict | list)
