"""CEL's comprehension macros, checked and evaluated directly rather than expanded.

cel-go rewrites ``list.all(x, p)`` into a generic comprehension; here each macro is one loop in
Python with CEL's semantics kept: ``all`` is false as soon as a predicate is false and an error
on another element does not change that (``exists`` likewise with true), ``exists_one`` and
``filter`` raise the first error. Over a map the variable takes its keys; the two-variable forms
(``all(k, v, p)``, ``transformList``, ``transformMap``) bind index or key and value. Also here:
``sortBy`` (lists extension) and ``optMap`` (optionals), which bind a variable the same way.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Final

from k3py.api.cel import nodes as n
from k3py.api.cel.errors import CelEvalError
from k3py.api.cel.types import BOOL, DYN, ERROR, INT, CelType, list_of, map_of, optional_of
from k3py.api.cel.values import NONE, Optional, compare

if TYPE_CHECKING:
    from k3py.api.cel.checker import Checker
    from k3py.api.cel.evaluator import Context, Fn, Planner

Loop = Callable[["Context", object, list[str], list["Fn"]], object]
"""One macro's loop: the context, the range value, the variable names, the planned bodies."""

_TWO_VARIABLES: Final = frozenset({"transformList", "transformMap"})
_PREDICATES: Final = {"all": "_&&_", "exists": "_||_", "exists_one": "_?_:_", "existsOne": "_?_:_"}


def variable_count(e: n.Call) -> int:
    if e.function in _TWO_VARIABLES or (e.function in _PREDICATES and len(e.args) == 3):
        return 2
    return 1


# -- checking -------------------------------------------------------------------------------------


def check_macro(c: Checker, e: n.Call, paren: int) -> CelType:
    assert e.target is not None
    count = variable_count(e)
    names: list[str] = []
    for arg in e.args[:count]:
        if not isinstance(arg, n.Ident) or arg.name.startswith("."):
            c.error(arg.offset, "argument must be a simple name")
            names.append("")
        else:
            names.append(arg.name)
    target = c.check(e.target)
    variables = _variable_types(c, e, target, count)
    c.scopes.append(dict(zip(names, variables, strict=True)))
    bodies = [c.check(body) for body in e.args[count:]]
    c.scopes.pop()
    return _result(c, e, paren, variables, bodies)


def _variable_types(c: Checker, e: n.Call, target: CelType, count: int) -> list[CelType]:
    assert e.target is not None
    if e.function == "optMap":
        if target.kind == "optional_type":
            return [target.params[0]]
        if not target.is_dyn:
            c.error(paren_of(e), f"found no matching overload for 'optMap' applied to '{target}.(dyn)'")
        return [DYN]
    if target.kind == "list":
        return [INT, target.params[0]] if count == 2 else [target.params[0]]
    if target.kind == "map":
        return list(target.params[:count])
    if not target.is_dyn:
        c.error(
            e.target.offset,
            f"expression of type '{target}' cannot be range of a comprehension "
            "(must be list, map, or dynamic)",
        )
    return [DYN] * count


def paren_of(e: n.Call) -> int:
    return e.offset + len(e.function)


def _result(c: Checker, e: n.Call, paren: int, variables: list[CelType], bodies: list[CelType]) -> CelType:
    name = e.function
    if name in _PREDICATES or (
        name in ("filter", "map", "transformList", "transformMap") and len(bodies) == 2
    ):
        predicate = bodies[0]
        if not predicate.is_dyn and predicate != BOOL:
            operator = _PREDICATES.get(name, "_?_:_")
            shown = f"(bool, {predicate})" if operator in ("_&&_", "_||_") else f"({predicate}, int, int)"
            c.error(paren, f"found no matching overload for '{operator}' applied to '{shown}'")
    if name in _PREDICATES:
        return BOOL
    if name == "filter":
        return list_of(variables[0])
    if name == "sortBy":
        assert e.target is not None
        return c.out.types.get(id(e.target), ERROR) if variables else ERROR
    if name == "optMap":
        return optional_of(bodies[-1])
    if name == "transformMap":
        return map_of(variables[0], bodies[-1])
    return list_of(bodies[-1])


# -- evaluation -----------------------------------------------------------------------------------


def plan_macro(p: Planner, e: n.Call) -> Fn:
    assert e.target is not None
    count = variable_count(e)
    names = [arg.name for arg in e.args[:count] if isinstance(arg, n.Ident)]
    target = p.plan(e.target)
    bodies = [p.plan(body) for body in e.args[count:]]
    loop = _LOOPS[e.function]

    def macro(ctx: Context) -> object:
        saved = {name: ctx.locals[name] for name in names if name in ctx.locals}
        try:
            return loop(ctx, target(ctx), names, bodies)
        finally:
            for name in names:
                ctx.locals.pop(name, None)
            ctx.locals.update(saved)

    return macro


def _bindings(ctx: Context, value: object, names: list[str]) -> Iterator[None]:
    """Bind the loop variables to each element of ``value`` in turn."""
    two = len(names) == 2
    if isinstance(value, Mapping):
        for key in list(value.keys()):
            ctx.charge()
            ctx.locals[names[0]] = key
            if two:
                ctx.locals[names[1]] = value[key]
            yield
    elif isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        for index, item in enumerate(value):
            ctx.charge()
            if two:
                ctx.locals[names[0]], ctx.locals[names[1]] = index, item
            else:
                ctx.locals[names[0]] = item
            yield
    else:
        raise CelEvalError("no such overload")


def _quantifier(absorbing: bool) -> Loop:
    def loop(ctx: Context, value: object, names: list[str], bodies: list[Fn]) -> object:
        failure: CelEvalError | None = None
        for _ in _bindings(ctx, value, names):
            try:
                result = bodies[0](ctx)
            except CelEvalError as err:
                if err.args and "cost limit" in str(err.args[0]):
                    raise
                failure = failure or err
                continue
            if result is absorbing:
                return absorbing
            if result is not (not absorbing):
                failure = failure or CelEvalError("no such overload")
        if failure is not None:
            raise failure
        return not absorbing

    return loop


def _predicate(ctx: Context, body: Fn) -> bool:
    result = body(ctx)
    if result is True or result is False:
        return result
    raise CelEvalError("no such overload")


def _exists_one(ctx: Context, value: object, names: list[str], bodies: list[Fn]) -> object:
    found = 0
    for _ in _bindings(ctx, value, names):
        found += _predicate(ctx, bodies[0])
    return found == 1


def _map(ctx: Context, value: object, names: list[str], bodies: list[Fn]) -> object:
    out: list[object] = []
    for _ in _bindings(ctx, value, names):
        if len(bodies) == 1 or _predicate(ctx, bodies[0]):
            out.append(bodies[-1](ctx))
    return out


def _filter(ctx: Context, value: object, names: list[str], bodies: list[Fn]) -> object:
    out: list[object] = []
    for _ in _bindings(ctx, value, names):
        if _predicate(ctx, bodies[0]):
            out.append(ctx.locals[names[0]])
    return out


def _transform_map(ctx: Context, value: object, names: list[str], bodies: list[Fn]) -> object:
    out: dict[object, object] = {}
    for _ in _bindings(ctx, value, names):
        if len(bodies) == 1 or _predicate(ctx, bodies[0]):
            out[ctx.locals[names[0]]] = bodies[-1](ctx)
    return out


def _sort_by(ctx: Context, value: object, names: list[str], bodies: list[Fn]) -> object:
    keyed: list[tuple[object, object]] = []
    for _ in _bindings(ctx, value, names):
        keyed.append((bodies[0](ctx), ctx.locals[names[0]]))
    keyed.sort(key=functools.cmp_to_key(_by_key))
    return [item for _, item in keyed]


def _by_key(a: tuple[object, object], b: tuple[object, object]) -> int:
    return compare(a[0], b[0])


def _opt_map(ctx: Context, value: object, names: list[str], bodies: list[Fn]) -> object:
    if not isinstance(value, Optional):
        raise CelEvalError("no such overload")
    if not value.present:
        return NONE
    ctx.locals[names[0]] = value.value
    return Optional(bodies[0](ctx), True)


_LOOPS: Final[dict[str, Loop]] = {
    "all": _quantifier(absorbing=False),
    "exists": _quantifier(absorbing=True),
    "exists_one": _exists_one,
    "existsOne": _exists_one,
    "map": _map,
    "transformList": _map,
    "filter": _filter,
    "transformMap": _transform_map,
    "sortBy": _sort_by,
    "optMap": _opt_map,
}
