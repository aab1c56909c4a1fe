"""Pruning: a custom resource keeps only the fields its structural schema specifies.

A port of apiextensions-apiserver's ``schema/pruning`` and ``defaulting.PruneNonNullableNullsWithoutDefaults``
over the version's ``openAPIV3Schema`` (a JSON dict): an object keeps the keys its ``properties``
name, or every key when it has ``additionalProperties``; ``x-kubernetes-preserve-unknown-fields``
keeps unknown keys while still pruning inside the known ones; at the root and in every
``x-kubernetes-embedded-resource`` object, ``apiVersion``, ``kind`` and ``metadata`` are left to
the object-meta rules (an embedded ``metadata`` keeps only ObjectMeta's fields).

:func:`prune` returns the paths it removed (``spec.foo``, ``spec.items[0].bar``), which the API
server reports as unknown fields (``fieldValidation`` Warn/Strict), as upstream does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

Schema = Mapping[str, Any]

META_FIELDS: Final = frozenset({"apiVersion", "kind", "metadata"})
OBJECT_META_FIELDS: Final = frozenset(
    {
        "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
        "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
        "annotations", "ownerReferences", "finalizers", "managedFields",
    }
)  # fmt: skip
"""ObjectMeta's JSON fields: what an embedded resource's metadata may hold."""


def properties(schema: Schema | None) -> Mapping[str, Any]:
    value = schema.get("properties") if schema is not None else None
    return value if isinstance(value, Mapping) else {}


def additional(schema: Schema | None) -> Schema | None:
    """The schema of a map's values: ``additionalProperties`` as a schema (``true`` is ``{}``)."""
    value = schema.get("additionalProperties") if schema is not None else None
    if value is True:
        return {}
    return value if isinstance(value, Mapping) else None


def items(schema: Schema | None) -> Schema | None:
    value = schema.get("items") if schema is not None else None
    return value if isinstance(value, Mapping) else None


def child(schema: Schema | None, key: str) -> Schema | None:
    """The schema of ``key`` in an object: its property, else the map's values, else None."""
    props = properties(schema)
    if key in props and isinstance(props[key], Mapping):
        found: Schema = props[key]
        return found
    return additional(schema)


def preserves_unknown(schema: Schema | None) -> bool:
    return schema is not None and schema.get("x-kubernetes-preserve-unknown-fields") is True


def embedded(schema: Schema | None) -> bool:
    return schema is not None and schema.get("x-kubernetes-embedded-resource") is True


def prune(obj: Any, schema: Schema | None, *, root: bool = True) -> list[str]:
    """Remove what ``schema`` does not specify from ``obj`` (in place); return the removed paths.

    ``root``: ``obj`` is a whole resource, whose apiVersion, kind and metadata are not the
    schema's business (upstream's ``isResourceRoot``).
    """
    removed: list[str] = []
    if root and not embedded(schema):
        schema = {**(schema or {}), "x-kubernetes-embedded-resource": True}
    _prune(obj, schema, "", removed)
    return removed


def _path(parent: str, key: str) -> str:
    return f"{parent}.{key}" if parent else key


def _prune(value: Any, schema: Schema | None, path: str, removed: list[str]) -> None:
    if preserves_unknown(schema):
        _skip_prune(value, schema, path, removed)
        return
    if isinstance(value, dict):
        if schema is None:
            removed.extend(_path(path, k) for k in value)
            value.clear()
            return
        _prune_fields(value, schema, path, removed, keep_unknown=False)
    elif isinstance(value, list):
        element = items(schema)
        for i, item in enumerate(value):
            _prune(item, element, f"{path}[{i}]", removed)


def _skip_prune(value: Any, schema: Schema | None, path: str, removed: list[str]) -> None:
    """Under ``x-kubernetes-preserve-unknown-fields``: unknown keys stay, known ones are pruned."""
    if schema is None:
        return
    if isinstance(value, dict):
        _prune_fields(value, schema, path, removed, keep_unknown=True)
    elif isinstance(value, list):
        element = items(schema)
        for i, item in enumerate(value):
            _skip_prune(item, element, f"{path}[{i}]", removed)


def _prune_fields(
    value: dict[str, Any], schema: Schema, path: str, removed: list[str], *, keep_unknown: bool
) -> None:
    props, values = properties(schema), additional(schema)
    for key in list(value):
        sub = _path(path, key)
        if embedded(schema) and key in META_FIELDS:
            if key == "metadata" and path:  # an embedded resource's ObjectMeta (the root's is the server's)
                _prune_object_meta(value[key], sub, removed)
            continue
        if key in props:
            prop = props[key]
            _prune(value[key], prop if isinstance(prop, Mapping) else None, sub, removed)
        elif values is not None:
            _prune(value[key], values, sub, removed)
        elif not keep_unknown:
            del value[key]
            removed.append(sub)


def _prune_object_meta(meta: Any, path: str, removed: list[str]) -> None:
    if not isinstance(meta, dict):
        return
    for key in list(meta):
        if key not in OBJECT_META_FIELDS:
            del meta[key]
            removed.append(_path(path, key))


def prune_nulls(value: Any, schema: Schema | None) -> None:
    """Drop nulls where the schema neither allows (``nullable``) nor defaults them."""
    if isinstance(value, dict):
        for key in list(value):
            sub = child(schema, key)
            if value[key] is None and sub is not None and not sub.get("nullable") and "default" not in sub:
                del value[key]
            else:
                prune_nulls(value[key], sub)
    elif isinstance(value, list):
        element = items(schema)
        for item in value:
            prune_nulls(item, element)
