"""The Table of a custom resource: ``Name`` and the version's ``additionalPrinterColumns``.

apiextensions-apiserver's ``tableconvertor``: each column's ``jsonPath`` is evaluated as a
client-go JSONPath (missing keys allowed) and the first value found becomes the cell, typed by
the column: ``integer`` and ``number`` keep numbers, ``boolean`` booleans, ``string`` prints any
value (maps and lists as JSON), ``date`` turns an RFC 3339 time into an age (``5m``); anything
else -- or nothing found -- is a null cell. A version without columns gets ``Age``
(``.metadata.creationTimestamp``), as upstream's ``serveDefaultColumnsIfEmpty`` adds.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from k3py.api import printers
from k3py.api.crd import jsonpath
from k3py.api.crd.model import CustomResource, PrinterColumn
from k3py.api.printers import Cell, Column, Doc, Printer

_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
AGE = PrinterColumn("Age", "date", ".metadata.creationTimestamp")


def printer(custom: CustomResource) -> Printer:
    """The Table printer of one served version (built once per set of columns and cached)."""
    return _printer(custom.columns)


@functools.lru_cache(maxsize=256)
def _printer(declared: tuple[PrinterColumn, ...]) -> Printer:
    definitions = [printers.NAME]
    paths: list[tuple[str, tuple[jsonpath.Step, ...] | None]] = []
    for column in declared or (AGE,):
        description: str | Doc = column.description if declared else Doc(_META, "creationTimestamp")
        definitions.append(
            Column(column.name, column.type, description, format=column.format, priority=column.priority)
        )
        try:
            steps: tuple[jsonpath.Step, ...] | None = jsonpath.parse(column.json_path)
        except jsonpath.JSONPathError:
            steps = None
        paths.append((column.type, steps))

    def cells(obj: Mapping[str, Any], now: datetime) -> list[Cell]:
        row: list[Cell] = [str((obj.get("metadata") or {}).get("name") or "")]
        for kind, steps in paths:
            found = jsonpath.find(obj, steps) if steps is not None else []
            row.append(cell(kind, found[0], now) if found else None)
        return row

    return Printer(tuple(definitions), cells)


def cell(kind: str, value: Any, now: datetime) -> Cell:
    """``cellForJSONValue`` (and PrintResults for string columns)."""
    if value is None:
        return None
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "integer" and number:
        return int(value) if isinstance(value, int) else math.trunc(value)
    if kind == "number" and number:
        return int(value) if float(value).is_integer() else float(value)
    if kind == "boolean" and isinstance(value, bool):
        return value
    if kind == "string":
        return value if isinstance(value, str) else jsonpath.text(value)
    if kind == "date" and isinstance(value, str):
        return printers.age_of(value, now)
    return None
