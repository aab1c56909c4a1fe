"""The function table that the checker resolves calls against and the evaluator dispatches on.

Every CEL function, operators included (``_+_``, ``_[_]``, ``@in``), is a name with overloads.
An :class:`Overload` declares its parameter types (a receiver-style one, ``'a'.startsWith(x)``,
lists the receiver first and sets ``member``), its result type and the Python function that
computes it. Library modules add theirs with :func:`define` when :func:`table` first loads them.

The checker keeps the overloads whose declared types fit the arguments' static types; at run
time :func:`dispatch` picks, among those, the first whose parameter kinds match the values
(only kinds are compared: ``list(A)`` accepts any list), which is what ``dyn`` arguments need.
A JSON integer where only a double fits is taken as that double (a ``number`` field may hold
``1``), as Kubernetes' schema-driven conversion would.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, cast

from k3py.api.cel.errors import CelEvalError
from k3py.api.cel.types import CelType
from k3py.api.cel.values import kind_of

Impl = Callable[..., object]

_ANY_KINDS: Final = frozenset({"dyn", "param", "error"})


@dataclass(frozen=True, slots=True)
class Overload:
    name: str
    params: tuple[CelType, ...]
    result: CelType
    impl: Impl
    member: bool = False
    kinds: tuple[str | None, ...] = ()
    """The runtime kind each parameter needs (None: any), from ``params``."""

    def accepts(self, args: Sequence[object]) -> bool:
        """Whether the runtime kinds of ``args`` fit the declared parameters."""
        for wanted, value in zip(self.kinds, args, strict=True):
            if wanted is None:
                continue
            actual = kind_of(value)
            if actual != wanted and not (wanted == "object" and actual in ("map", "null")):
                return False
        return True


def _runtime_kind(declared: CelType) -> str | None:
    if declared.kind in _ANY_KINDS:
        return None
    if declared.kind == "opaque":
        return declared.name
    return declared.kind


_TABLE: dict[str, list[Overload]] = {}
_LOADED: list[bool] = []


def define(
    name: str, params: Sequence[CelType], result: CelType, impl: Impl, *, member: bool = False
) -> None:
    """Add an overload of ``name``."""
    kinds = tuple(_runtime_kind(p) for p in params)
    _TABLE.setdefault(name, []).append(Overload(name, tuple(params), result, impl, member, kinds))


def table() -> dict[str, list[Overload]]:
    """Every function by name, the libraries loaded on first use."""
    if not _LOADED:
        _LOADED.append(True)
        from k3py.api.cel import (  # noqa: F401  (defining is what importing them does)
            library_authz,
            library_format,
            library_k8s,
            library_lists,
            library_semver,
            library_strings,
            library_time,
            stdlib,
        )
    return _TABLE


def dispatch(name: str, candidates: Sequence[Overload], args: Sequence[object]) -> object:
    """Call the first of ``candidates`` that accepts ``args``; "no such overload" if none does."""
    for overload in candidates:
        if overload.accepts(args):
            return overload.impl(*args)
    for overload in candidates:  # JSON has one number type: 1 stands for 1.0 where a double is due
        widened = [
            float(cast(int, a)) if wanted == "double" and kind_of(a) == "int" else a
            for wanted, a in zip(overload.kinds, args, strict=True)
        ]
        if overload.accepts(widened):
            return overload.impl(*widened)
    raise CelEvalError(f"no such overload: {name}")


def signature(args: Sequence[CelType], member: bool) -> str:
    """How cel-go shows argument types in "found no matching overload" errors."""
    if member:
        rest = ", ".join(str(a) for a in args[1:])
        return f"{args[0]}.({rest})"
    return "(" + ", ".join(str(a) for a in args) + ")"
