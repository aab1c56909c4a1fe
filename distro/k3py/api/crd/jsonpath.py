"""The JSONPath of kubectl and client-go (``k8s.io/client-go/util/jsonpath``), as printer columns use it.

A CRD's ``additionalPrinterColumns[].jsonPath`` is evaluated as the template ``{<path>}`` with
missing keys allowed: ``.spec.replicas``, ``.metadata.labels['app.kubernetes.io/name']``,
``.status.conditions[?(@.type=="Ready")].status``, ``.spec.items[0]``, ``.spec.items[*].name``,
``..name``. :func:`parse` turns a path into steps (raising :class:`JSONPathError` with a message
for what client-go rejects) and :func:`find` returns the values it reaches, in document order.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

import orjson

from k3py.api.crd.goformat import go_v


class JSONPathError(ValueError):
    """A path client-go's parser refuses."""


@dataclass(frozen=True, slots=True)
class Field:
    name: str  # "*" for every value of a map


@dataclass(frozen=True, slots=True)
class Recursive:
    """``..``: the next step applies at every depth."""


@dataclass(frozen=True, slots=True)
class Index:
    start: int | None
    end: int | None = None
    step: int | None = None
    single: bool = False


@dataclass(frozen=True, slots=True)
class Wildcard:
    """``[*]``: every item of a list (or value of a map)."""


@dataclass(frozen=True, slots=True)
class Filter:
    left: tuple[Step, ...]
    operator: str  # "" tests existence
    right: tuple[Step, ...] | None = None
    literal: Any = None


Step = Field | Recursive | Index | Wildcard | Filter

_NAME: Final = re.compile(r"[A-Za-z0-9_\-/$]+")
_FILTER: Final = re.compile(r"\?\((.*)\)$", re.S)
_COMPARISON: Final = re.compile(r"^(.+?)\s*(==|!=|>=|<=|>|<)\s*(.+)$", re.S)


def parse(path: str) -> tuple[Step, ...]:
    """The steps of a path, with or without the surrounding ``{}``."""
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if text.startswith("$"):
        text = text[1:]
    steps: list[Step] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if text.startswith("..", i):
            steps.append(Recursive())
            i += 2
            continue
        if ch == ".":
            i += 1
            if i < len(text) and text[i] == "*":
                steps.append(Field("*"))
                i += 1
                continue
            match = _NAME.match(text, i)
            if match is None:
                if i >= len(text):
                    continue  # a lone "." is the whole object
                raise JSONPathError(f"unrecognized character in action: {text[i]!r}")
            steps.append(Field(match.group()))
            i = match.end()
        elif ch == "[":
            end = _closing(text, i)
            steps.append(_bracket(text[i + 1 : end]))
            i = end + 1
        elif ch.isspace():
            i += 1
        else:
            match = _NAME.match(text, i)
            if match is None:
                raise JSONPathError(f"unrecognized character in action: {ch!r}")
            steps.append(Field(match.group()))
            i = match.end()
    return tuple(steps)


def _closing(text: str, start: int) -> int:
    depth, quote = 0, ""
    for j in range(start, len(text)):
        ch = text[j]
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth == 0:
                return j
    raise JSONPathError("unterminated array")


def _bracket(body: str) -> Step:
    body = body.strip()
    if body == "*":
        return Wildcard()
    if len(body) >= 2 and body[0] == body[-1] and body[0] in "'\"":
        return Field(body[1:-1])
    if (match := _FILTER.match(body)) is not None:
        return _filter(match.group(1).strip())
    parts = body.split(":")
    try:
        numbers = [int(p) if p.strip() else None for p in parts]
    except ValueError:
        raise JSONPathError(f"invalid array index {body}") from None
    if len(numbers) == 1:
        return Index(numbers[0], single=True)
    if len(numbers) > 3:
        raise JSONPathError(f"invalid array index {body}")
    return Index(numbers[0], numbers[1], numbers[2] if len(numbers) == 3 else None)


def _filter(expression: str) -> Filter:
    match = _COMPARISON.match(expression)
    if match is None:
        return Filter(_operand(expression), "")
    left, operator, right = match.groups()
    right = right.strip()
    if right.startswith("@") or right.startswith("$"):
        return Filter(_operand(left), operator, right=_operand(right))
    return Filter(_operand(left), operator, literal=_literal(right))


def _operand(text: str) -> tuple[Step, ...]:
    text = text.strip()
    if not text.startswith("@"):
        raise JSONPathError(f"unrecognized filter operand {text}")
    return parse(text[1:])


def _literal(text: str) -> Any:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    if text in ("true", "false"):
        return text == "true"
    raise JSONPathError(f"unrecognized filter value {text}")


def find(obj: Any, steps: tuple[Step, ...]) -> list[Any]:
    """The values ``steps`` reach from ``obj``; missing keys reach nothing."""
    current = [obj]
    recursive = False
    for step in steps:
        if isinstance(step, Recursive):
            recursive = True
            continue
        sources = [v for value in current for v in _descend(value)] if recursive else current
        recursive = False
        current = [found for value in sources for found in _apply(step, value)]
    return current


def _descend(value: Any) -> Iterator[Any]:
    yield value
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for child in children:
        yield from _descend(child)


def _apply(step: Step, value: Any) -> list[Any]:
    if isinstance(step, Field):
        if not isinstance(value, dict):
            return []
        if step.name == "*":
            return [value[k] for k in sorted(value)]
        return [value[step.name]] if step.name in value else []
    if isinstance(step, Wildcard):
        if isinstance(value, list):
            return list(value)
        return [value[k] for k in sorted(value)] if isinstance(value, dict) else []
    if isinstance(step, Index):
        if not isinstance(value, list):
            return []
        if step.single:
            assert step.start is not None
            position = step.start + len(value) if step.start < 0 else step.start
            return [value[position]] if 0 <= position < len(value) else []
        return value[slice(step.start, step.end, step.step)]
    if isinstance(step, Filter):
        candidates = (
            value
            if isinstance(value, list)
            else [value[k] for k in sorted(value)]
            if isinstance(value, dict)
            else []
        )
        return [item for item in candidates if _matches(step, item)]
    return []


def _matches(step: Filter, item: Any) -> bool:
    left = find(item, step.left)
    if not step.operator:
        return bool(left)
    if not left:
        return False
    right = find(item, step.right) if step.right is not None else [step.literal]
    if not right:
        return False
    a, b = left[0], right[0]
    if step.operator in ("==", "!="):
        equal = _comparable(a) == _comparable(b)
        return equal if step.operator == "==" else not equal
    try:
        return bool(_ORDER[step.operator](a, b))
    except TypeError:
        return False


_ORDER: Final[dict[str, Callable[[Any, Any], Any]]] = {
    ">": operator.gt,
    "<": operator.lt,
    ">=": operator.ge,
    "<=": operator.le,
}


def _comparable(value: Any) -> Any:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def text(value: Any) -> str:
    """How ``PrintResults`` writes one value: JSON for maps and lists, else Go's ``%v``."""
    if isinstance(value, (dict, list)):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    if value is None:
        return "null"
    return go_v(value)
