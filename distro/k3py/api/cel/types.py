"""CEL types as the checker sees them, and the object types built from OpenAPI schemas.

A :class:`CelType` is a kind (``int``, ``list``, ``map``, ``object``, ``param`` ...) with its
parameters; ``str()`` spells it as cel-go does in its messages (``list(int)``,
``map(string, dyn)``, ``optional_type(string)``, an object type's own name). Object types are
how a Kubernetes object's schema reaches CEL: :func:`schema_type` names each nested object after
its path (``Object.spec.template``; list elements add ``@idx``, map values ``@elem``) and builds
fields on first use, so a recursive or very large schema costs only what an expression touches.

:func:`unify` is the one assignability rule the checker uses: ``dyn`` (and the error type that
stands for an already reported mistake) fits anything, type parameters (``A`` in
``list(A) + list(A)``) bind to the first concrete type they meet, ``null`` fits object and
well-known and opaque types.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from k3py.api.schema import Node

_SIMPLE_NAMES: Final = {
    "null": "null_type",
    "timestamp": "google.protobuf.Timestamp",
    "duration": "google.protobuf.Duration",
}


class CelType:
    """One CEL type; compare with ``==`` (object types compare by name)."""

    __slots__ = ("_fields", "_resolve", "kind", "name", "params")

    def __init__(
        self,
        kind: str,
        params: tuple[CelType, ...] = (),
        name: str = "",
        fields: Callable[[str], CelType | None] | None = None,
    ) -> None:
        self.kind = kind
        self.params = params
        self.name = name or kind
        self._resolve = fields
        self._fields: dict[str, CelType | None] = {}

    def __str__(self) -> str:
        if self.kind in ("list", "map", "type", "optional_type"):
            inner = ", ".join(str(p) for p in self.params)
            return f"{self.kind}({inner})"
        if self.kind in _SIMPLE_NAMES:
            return _SIMPLE_NAMES[self.kind]
        return self.name

    def __repr__(self) -> str:
        return f"CelType({self})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CelType):
            return NotImplemented
        return self.kind == other.kind and self.name == other.name and self.params == other.params

    def __hash__(self) -> int:
        return hash((self.kind, self.name, self.params))

    @property
    def is_dyn(self) -> bool:
        """True for ``dyn`` and for the error type (which behaves like it after a reported error)."""
        return self.kind in ("dyn", "error")

    def field(self, name: str) -> CelType | None:
        """The type of an object type's field ``name``, or None if it has no such field."""
        if self._resolve is None:
            return None
        if name not in self._fields:
            self._fields[name] = self._resolve(name)
        return self._fields[name]


def list_of(element: CelType) -> CelType:
    return CelType("list", (element,))


def map_of(key: CelType, value: CelType) -> CelType:
    return CelType("map", (key, value))


def type_of(inner: CelType) -> CelType:
    return CelType("type", (inner,))


def optional_of(inner: CelType) -> CelType:
    return CelType("optional_type", (inner,))


def param(name: str) -> CelType:
    return CelType("param", (), name)


def opaque(name: str) -> CelType:
    """An extension type such as ``kubernetes.URL``: compared by name, no fields."""
    return CelType("opaque", (), name)


def object_type(name: str, fields: Mapping[str, CelType]) -> CelType:
    return CelType("object", (), name, fields.get)


def dynamic_object(name: str) -> CelType:
    """An object type without a schema: every field exists and is ``dyn``."""
    return CelType("object", (), name, lambda field: DYN)


DYN: Final = CelType("dyn")
ERROR: Final = CelType("error")
INT: Final = CelType("int")
UINT: Final = CelType("uint")
DOUBLE: Final = CelType("double")
STRING: Final = CelType("string")
BYTES: Final = CelType("bytes")
BOOL: Final = CelType("bool")
NULL: Final = CelType("null")
TIMESTAMP: Final = CelType("timestamp")
DURATION: Final = CelType("duration")
A: Final = param("A")
B: Final = param("B")
JSONPATCH: Final = object_type("JSONPatch", {"op": STRING, "path": STRING, "from": STRING, "value": DYN})

TYPE_NAMES: Final = {
    "int": INT, "uint": UINT, "double": DOUBLE, "string": STRING, "bytes": BYTES,
    "bool": BOOL, "null_type": NULL, "list": list_of(DYN), "map": map_of(DYN, DYN),
    "type": type_of(DYN), "dyn": DYN,
    "google.protobuf.Timestamp": TIMESTAMP, "google.protobuf.Duration": DURATION,
}  # fmt: skip
"""The type names an expression can write as values (``type(x) == int``)."""

_NULLABLE: Final = frozenset({"object", "opaque", "timestamp", "duration", "null"})


def unify(expected: CelType, actual: CelType, bindings: dict[str, CelType]) -> bool:
    """Whether a value of type ``actual`` may stand where ``expected`` is declared, binding
    the type parameters of ``expected`` in ``bindings`` as it goes."""
    if expected.kind == "param":
        bound = bindings.get(expected.name)
        if bound is None or bound.is_dyn:
            if bound is None or not actual.is_dyn:
                bindings[expected.name] = actual
            return True
        return unify(bound, actual, {}) or _more_general(actual, bound, bindings, expected.name)
    if expected.is_dyn or actual.is_dyn:
        _bind_free(expected, bindings)
        return True
    if actual.kind == "null" and expected.kind in _NULLABLE:
        return True
    if expected.kind != actual.kind or len(expected.params) != len(actual.params):
        return False
    if expected.kind in ("object", "opaque") and expected.name != actual.name:
        return False
    return all(unify(e, a, bindings) for e, a in zip(expected.params, actual.params, strict=True))


def _more_general(actual: CelType, bound: CelType, bindings: dict[str, CelType], name: str) -> bool:
    """``A`` bound to ``list(int)`` also accepts ``list(dyn)``, and then becomes the latter."""
    if unify(actual, bound, {}):
        bindings[name] = actual
        return True
    return False


def _bind_free(expected: CelType, bindings: dict[str, CelType]) -> None:
    if expected.kind == "param":
        bindings.setdefault(expected.name, DYN)
    for p in expected.params:
        _bind_free(p, bindings)


def substitute(declared: CelType, bindings: Mapping[str, CelType]) -> CelType:
    """``declared`` with its type parameters replaced by their bindings (``dyn`` if unbound)."""
    if declared.kind == "param":
        return bindings.get(declared.name, DYN)
    if not declared.params:
        return declared
    return CelType(declared.kind, tuple(substitute(p, bindings) for p in declared.params))


def assignable(expected: CelType, actual: CelType) -> bool:
    return unify(expected, actual, {})


def schema_type(node: Node | None, name: str = "Object") -> CelType:
    """The CEL type of values following the OpenAPI ``node``; objects with declared properties
    become object types named ``name``, ``name.field``, ``name.list.@idx``, ``name.map.@elem``."""
    if node is None:
        return DYN
    kind = node.type
    if kind == "integer":
        return INT
    if kind == "number":
        return DOUBLE
    if kind == "string":
        return STRING
    if kind == "boolean":
        return BOOL
    if kind == "array":
        return list_of(schema_type(node.items(), f"{name}.@idx"))
    if kind != "object":
        return DYN
    if node.field_names or node.schema.get("x-kubernetes-embedded-resource"):
        return _object_from_schema(node, name)
    values = node.values()
    if values is not None:
        return map_of(STRING, schema_type(values, f"{name}.@elem"))
    return DYN  # no schema for the fields: x-kubernetes-preserve-unknown-fields or a bare object


def _object_from_schema(node: Node, name: str) -> CelType:
    declared = frozenset(node.field_names)
    if node.schema.get("x-kubernetes-embedded-resource"):
        declared |= {"apiVersion", "kind", "metadata"}

    def field(field_name: str) -> CelType | None:
        if field_name not in declared:
            return None
        return schema_type(node.field(field_name), f"{name}.{field_name}")

    return CelType("object", (), name, field)
