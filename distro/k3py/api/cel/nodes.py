"""The CEL syntax tree: one frozen dataclass per expression form of the language definition.

Nodes carry an offset (``offset``, not part of equality) so that later stages can report
positions where cel-go reports them: an operator's token (``>``, ``?``, ``.``, ``[``), a call's
name (its ``(`` follows it), otherwise the token the node starts at. Macros (``has``, ``all``,
``exists``, ``map`` ...) stay ordinary calls: the parser checks their argument shapes but does
not expand them.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as _field
from typing import Literal as Kind

LiteralValue = int | float | str | bytes | bool | None


@dataclass(frozen=True, slots=True)
class Literal:
    """A constant; ``kind`` tells ``1`` (int) from ``1u`` (uint) and ``1.0`` (double)."""

    kind: Kind["int", "uint", "double", "string", "bytes", "bool", "null"]
    value: LiteralValue
    offset: int = _field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Ident:
    """A name; a leading dot (``.a``) resolves it from the root scope and is kept in ``name``."""

    name: str
    offset: int = _field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Select:
    """``operand.field``, or ``operand.?field`` when ``optional``."""

    operand: Expr
    field: str
    optional: bool = False
    offset: int = _field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Index:
    """``operand[index]``, or ``operand[?index]`` when ``optional``."""

    operand: Expr
    index: Expr
    optional: bool = False
    offset: int = _field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Call:
    """``function(args)`` or, with a ``target``, the receiver call ``target.function(args)``."""

    function: str
    args: tuple[Expr, ...]
    target: Expr | None = None
    offset: int = _field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Unary:
    """``!operand`` or ``-operand``."""

    op: Kind["!", "-"]
    operand: Expr
    offset: int = _field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Binary:
    """An infix operator: ``|| && < <= >= > == != in + - * / %``."""

    op: str
    left: Expr
    right: Expr
    offset: int = _field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Conditional:
    """``condition ? then : otherwise``."""

    condition: Expr
    then: Expr
    otherwise: Expr
    offset: int = _field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class ListElement:
    """One element of a list literal; ``[?x]`` marks it optional."""

    value: Expr
    optional: bool = False


@dataclass(frozen=True, slots=True)
class CreateList:
    """``[a, b, c]``."""

    elements: tuple[ListElement, ...]
    offset: int = _field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class MapEntry:
    """``key: value`` in a map literal; ``?key: value`` marks it optional."""

    key: Expr
    value: Expr
    optional: bool = False


@dataclass(frozen=True, slots=True)
class CreateMap:
    """``{k: v, ...}``."""

    entries: tuple[MapEntry, ...]
    offset: int = _field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class FieldInit:
    """``name: value`` in a message construction; ``?name: value`` marks it optional."""

    name: str
    value: Expr
    optional: bool = False


@dataclass(frozen=True, slots=True)
class CreateMessage:
    """``pkg.Type{field: value, ...}``; ``type_name`` keeps a leading dot if written."""

    type_name: str
    fields: tuple[FieldInit, ...]
    offset: int = _field(default=0, compare=False)


Expr = (
    Literal
    | Ident
    | Select
    | Index
    | Call
    | Unary
    | Binary
    | Conditional
    | CreateList
    | CreateMap
    | CreateMessage
)
