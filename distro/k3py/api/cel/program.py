"""Compiling CEL: :class:`Env` says what an expression may name, :func:`compile` parses and
type-checks it once, and the resulting :class:`Program` evaluates it as often as needed.

An environment lists the top-level variables with their types (``object``, ``params``,
``request`` ...) and the object types an expression may construct (``Object{spec: ...}``;
``JSONPatch`` is always there). Compile errors are :class:`CelSyntaxError` or
:class:`CelTypeError`, worded as cel-go words them; evaluation errors are
:class:`CelEvalError`. Results are JSON-like Python values.
"""

from __future__ import annotations

from collections.abc import Mapping

from k3py.api.cel.checker import Checker
from k3py.api.cel.errors import CelEvalError, CelSyntaxError, CelTypeError
from k3py.api.cel.evaluator import Context, Fn, Planner
from k3py.api.cel.parser import MAX_NESTING, parse
from k3py.api.cel.types import CelType
from k3py.api.cel.validators import literal_issues
from k3py.api.cel.values import to_json


class Env:
    """The names an expression may use: ``variables`` (top-level identifiers) and ``types``
    (object types it may construct; nested ones such as ``Object.spec`` resolve from them)."""

    def __init__(self, variables: Mapping[str, CelType], types: Mapping[str, CelType] = {}) -> None:
        self.variables = dict(variables)
        self.types = dict(types)


class Program:
    """A compiled expression; :meth:`evaluate` may be called concurrently from several threads
    (every evaluation has its own context)."""

    def __init__(self, expression: str, output_type: CelType, root: Fn) -> None:
        self.expression = expression
        self.output_type = output_type
        self._root = root

    def __repr__(self) -> str:
        return f"<Program {self.expression!r}: {self.output_type}>"

    def evaluate(self, activation: Mapping[str, object], cost_limit: int | None = None) -> object:
        """The value of the expression for ``activation``; :class:`CelEvalError` on failure,
        including when the evaluation costs more than ``cost_limit`` steps."""
        return to_json(self.evaluate_raw(activation, cost_limit))

    def evaluate_raw(self, activation: Mapping[str, object], cost_limit: int | None = None) -> object:
        """Like :meth:`evaluate`, but CEL-only values (durations, optionals, types) as they are."""
        try:
            return self._root(Context(activation, cost_limit))
        except RecursionError:  # only when the caller already sits deep in the stack
            raise CelEvalError("expression recursion limit exceeded") from None


def compile(expression: str, env: Env) -> Program:
    """Parse and type-check ``expression`` in ``env``."""
    tree = parse(expression)
    checker = Checker(env.variables, env.types)
    try:
        output_type = checker.check(tree)
        issues = checker.out.issues or literal_issues(tree)
        if issues:
            raise CelTypeError(expression, issues)
        root = Planner(checker.out).plan(tree)
    except RecursionError:  # only when the caller already sits deep in the stack
        raise CelSyntaxError(expression, 0, f"expression recursion limit exceeded: {MAX_NESTING}") from None
    return Program(expression, output_type, root)
