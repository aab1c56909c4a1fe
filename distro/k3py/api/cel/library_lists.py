"""List functions: Kubernetes' lists library, cel-go's lists extension (version 3) and sets.

Kubernetes: ``isSorted``, ``sum``, ``min``, ``max``, ``indexOf``, ``lastIndexOf``. Extension:
``slice``, ``flatten``, ``distinct``, ``reverse``, ``sort``, ``first``, ``last``,
``lists.range`` (``sortBy`` is a macro, in :mod:`.macros`). Sets: ``sets.contains``,
``sets.equivalent``, ``sets.intersects``. Elements compare with CEL's equality and ordering, so
``[1, 2.0].indexOf(2)`` is 1.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Final

from k3py.api.cel.errors import CelEvalError
from k3py.api.cel.functions import define
from k3py.api.cel.library_time import check_duration
from k3py.api.cel.types import BOOL, DOUBLE, DURATION, DYN, INT, UINT, A, list_of, optional_of
from k3py.api.cel.values import NONE, Optional, check_int, check_uint, compare, equal, kind_of

MAX_RANGE: Final = 1_000_000


def is_sorted(items: Sequence[object]) -> bool:
    return all(compare(items[i], items[i + 1]) <= 0 for i in range(len(items) - 1))


def total(items: Sequence[object], kind: str) -> object:
    if kind == "int":
        return check_int(sum(items))  # type: ignore[arg-type]
    if kind == "uint":
        return check_uint(sum(items))  # type: ignore[arg-type]
    if kind == "double":
        return float(sum(items))  # type: ignore[arg-type]
    return check_duration(sum(d.nanos for d in items))  # type: ignore[attr-defined]


def extreme(items: Sequence[object], name: str) -> object:
    if not items:
        raise CelEvalError(f"{name} called on empty list")
    best = items[0]
    for item in items[1:]:
        order = compare(item, best)
        if (order < 0) if name == "min" else (order > 0):
            best = item
    return best


def index_of(items: Sequence[object], item: object) -> int:
    return next((i for i, x in enumerate(items) if equal(x, item)), -1)


def last_index_of(items: Sequence[object], item: object) -> int:
    return next((i for i in range(len(items) - 1, -1, -1) if equal(items[i], item)), -1)


def slice_list(items: Sequence[object], start: int, end: int) -> list[object]:
    if start < 0 or end < 0:
        raise CelEvalError(f"cannot slice({start}, {end}), negative indexes not supported")
    if start > end:
        raise CelEvalError(
            f"cannot slice({start}, {end}), start index must be less than or equal to end index"
        )
    if end > len(items):
        raise CelEvalError(f"cannot slice({start}, {end}), list is length {len(items)}")
    return list(items[start:end])


def flatten(items: Sequence[object], depth: int = 1) -> list[object]:
    if depth < 0:
        raise CelEvalError("level must be non-negative")
    out: list[object] = []
    for item in items:
        if depth > 0 and kind_of(item) == "list":
            out.extend(flatten(item, depth - 1))  # type: ignore[arg-type]
        else:
            out.append(item)
    return out


def distinct(items: Sequence[object]) -> list[object]:
    out: list[object] = []
    for item in items:
        if not any(equal(item, seen) for seen in out):
            out.append(item)
    return out


def sort_list(items: Sequence[object]) -> list[object]:
    kinds = {kind_of(x) for x in items}
    if kinds - {"int", "uint", "double", "string", "bytes", "bool", "timestamp", "duration"}:
        raise CelEvalError("list elements must be comparable")
    if len(kinds) > 1:
        raise CelEvalError("list elements must have the same type")
    return sorted(items, key=functools.cmp_to_key(compare))


def list_range(size: int) -> list[int]:
    if size < 0:
        raise CelEvalError(f"lists.range: size must be non-negative, got {size}")
    if size > MAX_RANGE:
        raise CelEvalError(f"lists.range: size {size} exceeds maximum allowed ({MAX_RANGE})")
    return list(range(size))


def _end(items: Sequence[object], index: int) -> Optional:
    return Optional(items[index], True) if items else NONE


def _define() -> None:
    define("isSorted", (list_of(A),), BOOL, is_sorted, member=True)
    for element in (INT, UINT, DOUBLE, DURATION):
        define("sum", (list_of(element),), element, lambda xs, k=element.kind: total(xs, k), member=True)
    define("min", (list_of(A),), A, lambda xs: extreme(xs, "min"), member=True)
    define("max", (list_of(A),), A, lambda xs: extreme(xs, "max"), member=True)
    define("indexOf", (list_of(A), A), INT, index_of, member=True)
    define("lastIndexOf", (list_of(A), A), INT, last_index_of, member=True)
    define("slice", (list_of(A), INT, INT), list_of(A), slice_list, member=True)
    define("flatten", (list_of(list_of(A)),), list_of(A), flatten, member=True)
    define("flatten", (list_of(DYN), INT), list_of(DYN), flatten, member=True)
    define("distinct", (list_of(A),), list_of(A), distinct, member=True)
    define("reverse", (list_of(A),), list_of(A), lambda xs: list(reversed(xs)), member=True)
    define("sort", (list_of(A),), list_of(A), sort_list, member=True)
    define("first", (list_of(A),), optional_of(A), lambda xs: _end(xs, 0), member=True)
    define("last", (list_of(A),), optional_of(A), lambda xs: _end(xs, -1), member=True)
    define("lists.range", (INT,), list_of(INT), list_range)
    define("sets.contains", (list_of(A), list_of(A)), BOOL, lambda a, b: all(index_of(a, x) >= 0 for x in b))
    define(
        "sets.equivalent", (list_of(A), list_of(A)), BOOL,
        lambda a, b: all(index_of(a, x) >= 0 for x in b) and all(index_of(b, x) >= 0 for x in a),
    )  # fmt: skip
    define(
        "sets.intersects", (list_of(A), list_of(A)), BOOL, lambda a, b: any(index_of(a, x) >= 0 for x in b)
    )


_define()
