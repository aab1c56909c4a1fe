"""The checks Kubernetes adds after type-checking: literal arguments that cannot work.

``duration('1x')``, ``timestamp('yesterday')`` and ``s.matches('[')`` fail on every evaluation,
so cel-go's AST validators (which Kubernetes enables) refuse them at compile time with
``invalid duration argument`` and the like, positioned at the literal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import fields
from typing import Final

from k3py.api.cel import nodes as n
from k3py.api.cel.errors import CelEvalError
from k3py.api.cel.library_time import parse_duration, parse_timestamp
from k3py.api.cel.stdlib import compile_regex

_LITERAL_CHECKS: Final[dict[str, Callable[[str], object]]] = {
    "duration": parse_duration,
    "timestamp": parse_timestamp,
    "matches": compile_regex,
}


def literal_issues(tree: n.Expr) -> list[tuple[int, str]]:
    """(offset, message) for each literal argument that its function would refuse."""
    issues: list[tuple[int, str]] = []
    for node in walk(tree):
        if not isinstance(node, n.Call) or node.function not in _LITERAL_CHECKS:
            continue
        position = 1 if node.function == "matches" and node.target is None else 0
        if len(node.args) <= position:
            continue
        argument = node.args[position]
        if isinstance(argument, n.Literal) and isinstance(argument.value, str):
            try:
                _LITERAL_CHECKS[node.function](argument.value)
            except CelEvalError:
                issues.append((argument.offset, f"invalid {node.function} argument"))
    return issues


def walk(node: object) -> Iterator[object]:
    """Every node under ``node``, itself included, parents first."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        for f in fields(current):  # type: ignore[arg-type]
            value = getattr(current, f.name)
            if isinstance(value, tuple):
                stack.extend(reversed([v for v in value if hasattr(v, "__dataclass_fields__")]))
            elif hasattr(value, "__dataclass_fields__"):
                stack.append(value)
