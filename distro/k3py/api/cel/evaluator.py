"""The CEL evaluator: a checked expression turned, once, into a tree of Python closures.

:class:`Planner` walks the tree with the checker's findings and returns one closure per node;
evaluating is calling the root with a :class:`Context` (the activation, the comprehension
variables in scope, the cost so far). Names resolved at compile time cost one dict lookup at run
time, and a variable is read from the activation only when the expression reaches it, so an
activation whose values are computed on demand (a policy's ``variables``) stays lazy.

Errors are :class:`CelEvalError`; ``&&`` and ``||`` absorb them the CEL way (``false && error``
is ``false``, ``error || true`` is ``true``), the ternary evaluates only the branch it takes, and
every call, selection and comprehension step adds one to the cost (comparing two lists or maps
adds their size), checked against the limit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from k3py.api.cel import nodes as n
from k3py.api.cel.checker import OPERATORS, UNARY_OPERATORS, Checked
from k3py.api.cel.errors import CelEvalError
from k3py.api.cel.functions import Overload, dispatch
from k3py.api.cel.values import MISSING, NONE, Optional, UInt, equal, kind_of, lookup

COST_EXCEEDED: Final = "operation cancelled: actual cost limit exceeded"


class Context:
    __slots__ = ("activation", "cost", "limit", "locals")

    def __init__(self, activation: Mapping[str, object], limit: int | None) -> None:
        self.activation = activation
        self.locals: dict[str, object] = {}
        self.cost = 0
        self.limit = limit if limit is not None else 1 << 62

    def charge(self, amount: int = 1) -> None:
        self.cost += amount
        if self.cost > self.limit:
            raise CelEvalError(COST_EXCEEDED)


def exceeded() -> None:
    raise CelEvalError(COST_EXCEEDED)


Fn = Callable[[Context], object]


def select(value: object, field: str) -> object:
    """``value.field``: a key of a map (objects are maps at run time)."""
    if isinstance(value, Mapping):
        try:
            return value[field]
        except KeyError:
            raise CelEvalError(f"no such key: {field}") from None
    raise CelEvalError(f"no such overload: {kind_of(value)}.{field}")


def has_field(value: object, field: str) -> bool:
    if isinstance(value, Mapping):
        return field in value
    if isinstance(value, Optional):
        return value.present and has_field(value.value, field)
    raise CelEvalError("no such overload")


def truth(value: object) -> bool:
    if value is True or value is False:
        return value
    raise CelEvalError("no such overload")


class Planner:
    def __init__(self, checked: Checked) -> None:
        self.checked = checked

    def plan(self, e: n.Expr) -> Fn:
        return _PLANS[type(e)](self, e)

    def _literal(self, e: n.Literal) -> Fn:
        return _constant(UInt(e.value) if e.kind == "uint" else e.value)  # type: ignore[arg-type]

    def _unary(self, e: n.Unary) -> Fn:
        return self._apply(e, UNARY_OPERATORS[e.op], [self.plan(e.operand)])

    # -- names ----------------------------------------------------------------------------------

    def _name(self, e: n.Expr) -> Fn:
        ref = self.checked.refs[id(e)]
        if ref.kind == "type":
            return _constant(ref.value)
        name = ref.name
        if ref.kind == "local":
            return lambda ctx: ctx.locals[name]

        def variable(ctx: Context) -> object:
            try:
                return ctx.activation[name]
            except KeyError:
                raise CelEvalError(f"no such attribute(s): {name}") from None

        return variable

    def _select(self, e: n.Select) -> Fn:
        if id(e) in self.checked.refs:
            return self._name(e)
        operand = self.plan(e.operand)
        field = e.field
        if e.optional or self._optional(e.operand):

            def optional_select(ctx: Context) -> object:
                ctx.charge()
                value = _unwrapped(operand(ctx))
                if isinstance(value, Mapping) and field in value:
                    return Optional(value[field], True)
                return NONE

            return optional_select

        def plain_select(ctx: Context) -> object:
            ctx.cost += 1
            if ctx.cost > ctx.limit:
                exceeded()
            value = operand(ctx)
            if type(value) is dict:
                try:
                    return value[field]
                except KeyError:
                    raise CelEvalError(f"no such key: {field}") from None
            return select(value, field)

        return plain_select

    def _optional(self, e: n.Expr) -> bool:
        found = self.checked.types.get(id(e))
        return found is not None and found.kind == "optional_type"

    # -- operators and calls ----------------------------------------------------------------------

    def _binary(self, e: n.Binary) -> Fn:
        left, right = self.plan(e.left), self.plan(e.right)
        if e.op == "&&":
            return _and(left, right)
        if e.op == "||":
            return _or(left, right)
        if e.op in ("==", "!="):
            negate = e.op == "!="

            def equality(ctx: Context) -> object:
                a, b = left(ctx), right(ctx)
                ctx.charge(1 + _size_cost(a))  # comparing collections costs their size
                return equal(a, b) != negate

            return equality
        return self._apply(e, OPERATORS[e.op], [left, right])

    def _apply(self, e: n.Expr, function: str, args: list[Fn]) -> Fn:
        candidates: list[Overload] = self.checked.overloads.get(id(e), [])
        if len(args) == 1:
            (only,) = args

            def unary(ctx: Context) -> object:
                ctx.cost += 1
                if ctx.cost > ctx.limit:
                    exceeded()
                return dispatch(function, candidates, (only(ctx),))

            return unary
        if len(args) == 2:
            first, second = args

            def binary(ctx: Context) -> object:
                ctx.cost += 1
                if ctx.cost > ctx.limit:
                    exceeded()
                return dispatch(function, candidates, (first(ctx), second(ctx)))

            return binary

        def call(ctx: Context) -> object:
            ctx.charge()
            return dispatch(function, candidates, [arg(ctx) for arg in args])

        return call

    def _call(self, e: n.Call) -> Fn:
        if e.target is None and e.function == "has" and len(e.args) == 1:
            target = e.args[0]
            assert isinstance(target, n.Select)
            operand, field = self.plan(target.operand), target.field

            def has(ctx: Context) -> object:
                ctx.charge()
                return has_field(operand(ctx), field)

            return has
        function = self.checked.functions.get(id(e))
        if function is None:  # a macro
            from k3py.api.cel.macros import plan_macro

            return plan_macro(self, e)
        args = list(e.args)
        if e.target is not None and function == e.function:
            args.insert(0, e.target)
        if function == "or" or function == "orValue":
            return _lazy_or(function, [self.plan(a) for a in args])
        return self._apply(e, function, [self.plan(a) for a in args])

    def _index(self, e: n.Index) -> Fn:
        operand, index = self.plan(e.operand), self.plan(e.index)
        candidates = self.checked.overloads.get(id(e), [])
        if not (e.optional or self._optional(e.operand)):

            def plain_index(ctx: Context) -> object:
                ctx.charge()
                return dispatch("_[_]", candidates, (operand(ctx), index(ctx)))

            return plain_index

        def optional_index(ctx: Context) -> object:
            ctx.charge()
            value = _unwrapped(operand(ctx))
            if value is MISSING:
                return NONE
            key = index(ctx)
            if isinstance(value, Mapping):
                found = lookup(value, key)
                return NONE if found is MISSING else Optional(found, True)
            if isinstance(value, (list, tuple)) and isinstance(key, int) and 0 <= key < len(value):
                return Optional(value[key], True)
            return NONE

        return optional_index

    def _conditional(self, e: n.Conditional) -> Fn:
        condition, then, otherwise = self.plan(e.condition), self.plan(e.then), self.plan(e.otherwise)

        def conditional(ctx: Context) -> object:
            return then(ctx) if truth(condition(ctx)) else otherwise(ctx)

        return conditional

    # -- construction ---------------------------------------------------------------------------

    def _list(self, e: n.CreateList) -> Fn:
        items = [(self.plan(item.value), item.optional) for item in e.elements]
        if not any(optional for _, optional in items):
            plain = [fn for fn, _ in items]
            return lambda ctx: [fn(ctx) for fn in plain]

        def create_list(ctx: Context) -> object:
            out: list[object] = []
            for fn, optional in items:
                value = fn(ctx)
                if optional:
                    _append_present(out, value)
                else:
                    out.append(value)
            return out

        return create_list

    def _map(self, e: n.CreateMap) -> Fn:
        entries = [(self.plan(x.key), self.plan(x.value), x.optional) for x in e.entries]

        def create_map(ctx: Context) -> object:
            out: dict[object, object] = {}
            for key_fn, value_fn, optional in entries:
                key = key_fn(ctx)
                if kind_of(key) not in ("string", "int", "uint", "bool"):
                    raise CelEvalError(f"unsupported key type: {kind_of(key)}")
                if key in out:
                    raise CelEvalError(f"insert failed: key {key} already exists")
                _put(out, key, value_fn(ctx), optional=optional)
            return out

        return create_map

    def _message(self, e: n.CreateMessage) -> Fn:
        fields = [(f.name, self.plan(f.value), f.optional) for f in e.fields]

        def create_message(ctx: Context) -> object:
            out: dict[str, object] = {}
            for name, fn, optional in fields:
                _put(out, name, fn(ctx), optional=optional)
            return out

        return create_message


_PLANS: Final[dict[type, Callable[[Planner, Any], Fn]]] = {
    n.Literal: Planner._literal,
    n.Ident: Planner._name,
    n.Select: Planner._select,
    n.Call: Planner._call,
    n.Binary: Planner._binary,
    n.Unary: Planner._unary,
    n.Index: Planner._index,
    n.Conditional: Planner._conditional,
    n.CreateList: Planner._list,
    n.CreateMap: Planner._map,
    n.CreateMessage: Planner._message,
}


def _size_cost(value: object) -> int:
    return len(value) if type(value) is list or type(value) is dict else 0


def _constant(value: object) -> Fn:
    return lambda ctx: value


def _unwrapped(value: object) -> object:
    """An optional's value, or MISSING for an empty one (``a.?b`` and ``a[?k]`` on optionals)."""
    if isinstance(value, Optional):
        return value.value if value.present else MISSING
    return value


def _append_present(out: list[object], value: object) -> None:
    if not isinstance(value, Optional):
        raise CelEvalError("no such overload")
    if value.present:
        out.append(value.value)


def _put(out: dict[Any, object], key: object, value: object, *, optional: bool) -> None:
    """A map entry or message field; an optional one (``?key: opt``) only when present."""
    if not optional:
        out[key] = value
        return
    if not isinstance(value, Optional):
        raise CelEvalError("no such overload")
    if value.present:
        out[key] = value.value


def _and(left: Fn, right: Fn) -> Fn:
    return _logical(left, right, absorbing=False)


def _or(left: Fn, right: Fn) -> Fn:
    return _logical(left, right, absorbing=True)


def _logical(left: Fn, right: Fn, *, absorbing: bool) -> Fn:
    """``&&`` (absorbing false) or ``||`` (absorbing true): the absorbing value on either side
    wins over an error or a non-bool on the other; otherwise the first error is raised."""

    def logical(ctx: Context) -> object:
        try:
            first = left(ctx)
        except CelEvalError as err:
            if err.args and err.args[0] == COST_EXCEEDED:
                raise
            failure = err
        else:
            if first is absorbing:
                return absorbing
            if first is not (not absorbing):
                failure = CelEvalError("no such overload")
            else:
                return truth(right(ctx))
        try:
            second = right(ctx)
        except CelEvalError as err:
            if err.args and err.args[0] == COST_EXCEEDED:
                raise
            raise failure from None
        if second is absorbing:
            return absorbing
        raise failure

    return logical


def _lazy_or(function: str, args: list[Fn]) -> Fn:
    """``opt.or(other)`` and ``opt.orValue(default)`` evaluate the fallback only when needed."""
    optional, fallback = args

    def choose(ctx: Context) -> object:
        ctx.charge()
        value = optional(ctx)
        if not isinstance(value, Optional):
            raise CelEvalError(f"no such overload: {function}")
        if value.present:
            return value if function == "or" else value.value
        return fallback(ctx)

    return choose
