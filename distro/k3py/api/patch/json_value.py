"""Helpers for JSON-like Python values: copy, compare, identify, print.

JSON values are ``None``, ``bool``, ``int``, ``float``, ``str``, ``list`` and ``dict`` with
string keys. Python's own ``==`` is almost JSON equality but not quite (``True == 1``), and
merges need hashable identities for scalars, so the patch modules use these instead.
"""

from __future__ import annotations

import json
from collections.abc import Hashable
from typing import Any

JSON = Any
"""A JSON-like value (see the module docstring); ``Any`` because mypy cannot spell recursion here."""


def clone(value: JSON) -> JSON:
    """A deep copy: containers are new, scalars are immutable and shared."""
    if isinstance(value, dict):
        return {key: clone(item) for key, item in value.items()}
    if isinstance(value, list):
        return [clone(item) for item in value]
    return value


def kind(value: JSON) -> str:
    """object, array, string, number, boolean or null."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def equal(left: JSON, right: JSON) -> bool:
    """JSON equality: numbers compare by value, booleans are not numbers, key order is ignored."""
    left_kind, right_kind = kind(left), kind(right)
    if left_kind != right_kind:
        return False
    if left_kind == "object":
        return left.keys() == right.keys() and all(equal(v, right[k]) for k, v in left.items())
    if left_kind == "array":
        return len(left) == len(right) and all(equal(a, b) for a, b in zip(left, right, strict=True))
    return bool(left == right)


def identity(value: JSON) -> Hashable:
    """A hashable stand-in such that ``identity(a) == identity(b)`` iff ``equal(a, b)``."""
    value_kind = kind(value)
    if value_kind == "number":
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return (value_kind, value)
    if value_kind in ("object", "array"):
        return (value_kind, _canonical(value))
    return (value_kind, value)


def render(value: JSON, limit: int = 200) -> str:
    """Compact JSON for error messages, cut at ``limit`` characters."""
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _canonical(value: JSON) -> str:
    def normalize(item: JSON) -> JSON:
        if isinstance(item, dict):
            return {key: normalize(v) for key, v in item.items()}
        if isinstance(item, list):
            return [normalize(v) for v in item]
        if isinstance(item, float) and item.is_integer():
            return int(item)
        return item

    return json.dumps(normalize(value), separators=(",", ":"), sort_keys=True)
