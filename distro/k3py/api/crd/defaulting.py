"""Defaulting: ``default`` values of a structural schema filled into a custom resource.

A port of apiextensions-apiserver's ``schema/defaulting`` algorithm: walking the object along
the schema, a property that is missing -- or null where the schema does not allow null -- gets
a deep copy of its ``default``, and the walk continues into what was filled in, so defaults
nested in a default apply too; a null map value or list item that is not nullable takes the
values' or items' default. Defaults live only on ``properties``, ``additionalProperties`` and
``items`` (value validations under ``allOf`` and friends carry none: the CRD's validation
refuses them), so the walk never looks elsewhere.

It runs after pruning on every write and on every read from storage, as upstream defaults
when decoding from etcd: a default added to a CRD shows up in objects stored before it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from k3py.api.crd.pruning import Schema, additional, items, properties


def apply(value: Any, schema: Schema | None) -> None:
    """Fill ``default`` values into ``value`` (in place)."""
    if schema is None:
        return
    if isinstance(value, dict):
        props = properties(schema)
        for key, prop in props.items():
            if not isinstance(prop, Mapping) or "default" not in prop:
                continue
            if key not in value or _non_nullable_null(value[key], prop):
                value[key] = copy.deepcopy(prop["default"])
        values = additional(schema)
        for key in list(value):
            if key in props:
                prop = props[key]
                apply(value[key], prop if isinstance(prop, Mapping) else None)
            elif values is not None:
                if _non_nullable_null(value[key], values) and "default" in values:
                    value[key] = copy.deepcopy(values["default"])
                apply(value[key], values)
    elif isinstance(value, list):
        element = items(schema)
        for i, item in enumerate(value):
            if element is not None and _non_nullable_null(item, element) and "default" in element:
                value[i] = copy.deepcopy(element["default"])
            apply(value[i], element)


def _non_nullable_null(value: Any, schema: Schema) -> bool:
    return value is None and not schema.get("nullable")
