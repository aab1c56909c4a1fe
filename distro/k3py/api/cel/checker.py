"""The CEL type checker: gives every node of a parsed expression a type, or reports why not.

It walks the tree once, as cel-go's checker does, and collects every error instead of stopping
at the first (an erroneous node gets the error type, which fits anything afterwards, so one
mistake is reported once). What it learns is kept for the evaluator: the type of each node, how
each name resolved (a comprehension variable, an environment variable, a type name, a qualified
function name) and, for each call, the overloads that fit the arguments' static types.

Messages, positions and the order of errors are cel-go's; the position of an operator is its
token, of a call its opening parenthesis, of a selection its dot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from k3py.api.cel import nodes as n
from k3py.api.cel.functions import Overload, signature, table
from k3py.api.cel.types import (
    BOOL,
    BYTES,
    DOUBLE,
    DYN,
    ERROR,
    INT,
    JSONPATCH,
    NULL,
    STRING,
    TYPE_NAMES,
    UINT,
    CelType,
    assignable,
    dynamic_object,
    list_of,
    map_of,
    optional_of,
    substitute,
    type_of,
    unify,
)

LITERAL_TYPES: Final = {
    "int": INT, "uint": UINT, "double": DOUBLE, "string": STRING, "bytes": BYTES,
    "bool": BOOL, "null": NULL,
}  # fmt: skip
OPERATORS: Final = {
    "||": "_||_", "&&": "_&&_", "<": "_<_", "<=": "_<=_", ">": "_>_", ">=": "_>=_",
    "==": "_==_", "!=": "_!=_", "in": "@in", "+": "_+_", "-": "_-_", "*": "_*_",
    "/": "_/_", "%": "_%_",
}  # fmt: skip
UNARY_OPERATORS: Final = {"!": "!_", "-": "-_"}
MACROS: Final = {
    ("all", 2), ("exists", 2), ("exists_one", 2), ("existsOne", 2), ("map", 2), ("map", 3),
    ("filter", 2), ("all", 3), ("exists", 3), ("exists_one", 3), ("existsOne", 3),
    ("transformList", 3), ("transformList", 4), ("transformMap", 3), ("transformMap", 4),
    ("sortBy", 2), ("optMap", 2),
}  # fmt: skip
"""Receiver-style macros and their argument counts (the first one or two are variable names)."""


@dataclass(frozen=True, slots=True)
class Ref:
    """What a name means: ``local`` or ``variable`` (``name``), ``type`` (``value``)."""

    kind: str
    name: str = ""
    value: CelType | None = None


@dataclass(slots=True)
class Checked:
    """The checker's findings, keyed by ``id()`` of the nodes of the tree it was given."""

    types: dict[int, CelType] = field(default_factory=dict)
    refs: dict[int, Ref] = field(default_factory=dict)
    overloads: dict[int, list[Overload]] = field(default_factory=dict)
    functions: dict[int, str] = field(default_factory=dict)
    issues: list[tuple[int, str]] = field(default_factory=list)


class Checker:
    def __init__(self, variables: Mapping[str, CelType], types: Mapping[str, CelType]) -> None:
        self.variables = variables
        self.type_names = types
        self.scopes: list[dict[str, CelType]] = []
        self.out = Checked()

    # -- entry points ---------------------------------------------------------------------------

    def check(self, expr: n.Expr) -> CelType:
        result = self._check(expr)
        self.out.types[id(expr)] = result
        return result

    def error(self, offset: int, message: str) -> CelType:
        self.out.issues.append((offset, message))
        return ERROR

    def resolve_type(self, name: str) -> CelType | None:
        """A type by name: built-in, from the environment, or nested (``Object.spec``)."""
        name = name.removeprefix(".")
        if name in self.type_names:
            declared = self.type_names[name]
            return dynamic_object(name) if declared.is_dyn else declared
        if name == "JSONPatch":
            return JSONPATCH
        if name in TYPE_NAMES:
            return TYPE_NAMES[name]
        head, dot, tail = name.rpartition(".")
        parent = self.resolve_type(head) if dot else None
        if parent is None or parent.kind != "object":
            return None
        found = parent.field(tail)
        if found is not None and found.kind in ("list", "map"):  # Object.spec.containers{...}
            found = found.params[-1]
        if found is not None and found.is_dyn:  # a field without a schema: any fields go
            return dynamic_object(name)
        return found

    # -- dispatch ----------------------------------------------------------------------------------

    def _check(self, e: n.Expr) -> CelType:
        if isinstance(e, n.Literal):
            return LITERAL_TYPES[e.kind]
        if isinstance(e, n.Ident):
            return self._ident(e)
        if isinstance(e, n.Select):
            return self._select(e)
        if isinstance(e, n.Call):
            return self._call(e)
        if isinstance(e, n.Binary):
            return self._resolve(e, OPERATORS[e.op], [e.left, e.right], e.offset)
        if isinstance(e, n.Unary):
            return self._resolve(e, UNARY_OPERATORS[e.op], [e.operand], e.offset)
        if isinstance(e, n.Index):
            return self._index(e)
        if isinstance(e, n.Conditional):
            return self._resolve(e, "_?_:_", [e.condition, e.then, e.otherwise], e.offset)
        if isinstance(e, n.CreateList):
            return self._list(e)
        if isinstance(e, n.CreateMap):
            return self._map(e)
        return self._message(e)

    # -- names ----------------------------------------------------------------------------------

    def _ident(self, e: n.Ident) -> CelType:
        ref = self.lookup(e.name)
        if ref is None:
            return self.error(e.offset, f"undeclared reference to '{e.name.lstrip('.')}' (in container '')")
        self.out.refs[id(e)] = ref
        if ref.kind == "type":
            assert ref.value is not None
            return type_of(ref.value)
        if ref.kind == "local":
            return self._local(ref.name)
        return self.variables[ref.name]

    def lookup(self, name: str) -> Ref | None:
        if not name.startswith("."):
            for scope in reversed(self.scopes):
                if name in scope:
                    return Ref("local", name)
        name = name.removeprefix(".")
        if name in self.variables:
            return Ref("variable", name)
        found = self.resolve_type(name)
        if found is not None and (name in TYPE_NAMES or found.kind == "object"):
            return Ref("type", name, found)
        return None

    def _local(self, name: str) -> CelType:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        raise KeyError(name)

    def qualified(self, e: n.Expr) -> str | None:
        """``a.b.c`` for a chain of plain selections on an identifier that is not a local."""
        if isinstance(e, n.Ident):
            ref = self.lookup(e.name)
            return None if ref is not None and ref.kind == "local" else e.name
        if isinstance(e, n.Select) and not e.optional:
            inner = self.qualified(e.operand)
            return None if inner is None else f"{inner}.{e.field}"
        return None

    def _select(self, e: n.Select) -> CelType:
        name = self.qualified(e)
        if name is not None:
            ref = self.lookup(name)
            if ref is not None and ref.kind != "local":
                self.out.refs[id(e)] = ref
                return self.variables[ref.name] if ref.kind == "variable" else type_of(ref.value or DYN)
        return self.select_field(e.operand, e.field, e.offset, optional=e.optional)

    def select_field(self, operand: n.Expr, name: str, offset: int, *, optional: bool) -> CelType:
        target = self.check(operand)
        wrapped = target.kind == "optional_type"
        if wrapped:
            target = target.params[0]
        if target.kind == "map":
            result = target.params[1]
        elif target.kind == "object":
            field_type = target.field(name)
            result = self.error(offset, f"undefined field '{name}'") if field_type is None else field_type
        elif target.is_dyn or target.kind == "param":
            result = DYN
        else:
            self.error(offset, f"type '{target}' does not support field selection")
            result = DYN
        return optional_of(result) if (wrapped or optional) and result is not ERROR else result

    # -- calls ----------------------------------------------------------------------------------

    def _resolve(
        self, e: n.Expr, function: str, args: list[n.Expr], offset: int, member: bool = False
    ) -> CelType:
        types = [self.check(a) for a in args]
        return self.overload(e, function, types, offset, member=member)

    def overload(
        self, e: n.Expr, function: str, types: list[CelType], offset: int, *, member: bool
    ) -> CelType:
        declared = table().get(function)
        if declared is None:
            return self.error(offset, f"undeclared reference to '{function}' (in container '')")
        fitting: list[Overload] = []
        result: CelType | None = None
        for overload in declared:
            if overload.member != member or len(overload.params) != len(types):
                continue
            bindings: dict[str, CelType] = {}
            if all(unify(p, t, bindings) for p, t in zip(overload.params, types, strict=True)):
                fitting.append(overload)
                found = substitute(overload.result, bindings)
                result = found if result is None or result == found else DYN
        self.out.overloads[id(e)] = fitting
        self.out.functions[id(e)] = function
        if result is None:
            text = signature(types, member)
            return self.error(offset, f"found no matching overload for '{function}' applied to '{text}'")
        return result

    def _call(self, e: n.Call) -> CelType:
        paren = e.offset + len(e.function)
        if e.target is None and e.function == "has" and len(e.args) == 1:
            select = e.args[0]
            assert isinstance(select, n.Select)
            self.select_field(select.operand, select.field, select.offset, optional=False)
            return BOOL
        if e.target is not None and (e.function, len(e.args)) in MACROS:
            from k3py.api.cel.macros import check_macro

            return check_macro(self, e, paren)
        if e.target is not None:
            prefix = self.qualified(e.target)
            if prefix is not None and f"{prefix}.{e.function}" in table() and self.lookup(prefix) is None:
                return self._resolve(e, f"{prefix}.{e.function}", list(e.args), paren)
            return self._resolve(e, e.function, [e.target, *e.args], paren, member=True)
        return self._resolve(e, e.function.removeprefix("."), list(e.args), paren)

    def _index(self, e: n.Index) -> CelType:
        operand = self.check(e.operand)
        index = self.check(e.index)
        wrapped = operand.kind == "optional_type"
        if wrapped:
            operand = operand.params[0]
        result = self.overload(e, "_[_]", [operand, index], e.offset, member=False)
        return optional_of(result) if (wrapped or e.optional) and result is not ERROR else result

    # -- literals -------------------------------------------------------------------------------

    def join(self, offset: int, previous: CelType | None, current: CelType) -> CelType:
        if previous is None:
            return current
        if assignable(previous, current):
            return current if previous.is_dyn is False and current.is_dyn else previous
        return self.error(offset, f"expected type '{previous}' but found '{current}'")

    def element(self, value: n.Expr, optional: bool) -> CelType:
        found = self.check(value)
        if not optional:
            return found
        if found.kind == "optional_type":
            return found.params[0]
        if found.is_dyn:
            return DYN
        return self.error(value.offset, f"expected type 'optional_type({found})' but found '{found}'")

    def _list(self, e: n.CreateList) -> CelType:
        element: CelType | None = None
        for item in e.elements:
            element = self.join(item.value.offset, element, self.element(item.value, item.optional))
        return list_of(element or DYN)

    def _map(self, e: n.CreateMap) -> CelType:
        key: CelType | None = None
        value: CelType | None = None
        for entry in e.entries:
            key = self.join(entry.key.offset, key, self.check(entry.key))
            value = self.join(entry.value.offset, value, self.element(entry.value, entry.optional))
        return map_of(key or DYN, value or DYN)

    def _message(self, e: n.CreateMessage) -> CelType:
        name = e.type_name.removeprefix(".")
        message = self.resolve_type(name)
        if message is None:
            for init in e.fields:
                self.check(init.value)
            return self.error(e.offset, f"undeclared reference to '{name}' (in container '')")
        if message.kind != "object":
            return self.error(e.offset, f"'{name}' is not a message type")
        for init in e.fields:
            value = self.element(init.value, init.optional)
            expected = message.field(init.name)
            if expected is None:
                self.error(init.value.offset, f"undefined field '{init.name}'")
            elif not assignable(expected, value):
                self.error(
                    init.value.offset,
                    f"expected type of field '{init.name}' is '{expected}' but provided type is '{value}'",
                )
        return message
