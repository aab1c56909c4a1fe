"""What server-side apply needs to know about a place in a schema, and how list items are named.

A :class:`Shape` wraps a :class:`~k3py.api.schema.Node` and answers the questions
structured-merge-diff asks of its schema, with the rules kube-openapi's ``schemaconv`` uses to
build that schema from OpenAPI:

- an object is a map; ``x-kubernetes-map-type: atomic`` makes it a leaf, and its undeclared
  keys have the ``additionalProperties`` type, or are *deduced* when the object declares no
  properties or preserves unknown fields;
- a list is ``atomic`` unless ``x-kubernetes-list-type`` says ``set`` or ``map`` (keyed by
  ``x-kubernetes-list-map-keys``); without a list type, patch strategy ``merge`` makes it a
  list-map keyed by the patch merge key, or a set when there is no key;
- ``RawExtension`` is an atomic leaf; untyped places (no schema at all: ``node`` None) are
  deduced from the value: maps are granular, lists atomic, as upstream's deduced type.

:func:`index_list` names the items of a set or list-map (:mod:`.fieldpath` elements) and
groups duplicates, which live objects may hold and which are then handled as one atomic item.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Final, Literal

from k3py.api.apply.fieldpath import PathElement, element_string, index_element, key_element, value_element
from k3py.api.schema import Node, Schemas

Kind = Literal["map", "list", "scalar"]

OBJECT_META: Final = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_ATOMIC_DEFINITIONS: Final = frozenset({"io.k8s.apimachinery.pkg.runtime.RawExtension"})
# Key fields whose OpenAPI default upstream reads (kube-openapi keeps `default`; the bundled
# definitions do not), so that an item omitting them is named as the defaulted live item is.
_KEY_DEFAULTS: Final = {
    ("io.k8s.api.core.v1.ContainerPort", "protocol"): "TCP",
    ("io.k8s.api.core.v1.ServicePort", "protocol"): "TCP",
    ("io.k8s.api.core.v1.LocalObjectReference", "name"): "",
}


class ElementError(ValueError):
    """A list item that cannot be named (a list-map item that is not an object, a set of maps)."""


@dataclass(frozen=True, slots=True)
class Shape:
    """One place in a schema as structured-merge-diff sees it."""

    node: Node | None
    mode: Literal["typed", "deduced", "atomic"]
    is_root: bool = False

    @staticmethod
    def of(node: Node | None) -> Shape:
        if node is None or node.type == "any":
            return DEDUCED
        if node.name in _ATOMIC_DEFINITIONS:
            return ATOMIC
        return Shape(node, "typed")

    @staticmethod
    def root(node: Node | None) -> Shape:
        """The shape of a whole object; without a schema, ``metadata`` is still ObjectMeta."""
        return Shape.of(node) if node is not None else ROOT_DEDUCED

    # What a value here is.

    def kind(self, value: Any) -> Kind:
        """map, list or scalar; a value the schema does not expect here is a scalar (a leaf)."""
        if self.mode == "atomic":
            return "scalar"
        actual: Kind = "map" if isinstance(value, dict) else "list" if isinstance(value, list) else "scalar"
        expected = self.expected()
        if value is None:
            # Upstream tries a null as a map first, then as the schema's kind.
            return expected or "map"
        if expected is None or actual == expected:
            return actual
        return "scalar"

    def expected(self) -> Kind | None:
        """What the schema says lives here, or None when it is deduced from the value."""
        if self.mode == "atomic":
            return "scalar"
        if self.node is None:
            return None
        node_type = self.node.type
        if node_type == "object":
            return "map"
        return "list" if node_type == "array" else "scalar"

    # Maps.

    @property
    def map_atomic(self) -> bool:
        return self.node is not None and self.node.map_type == "atomic"

    def field(self, name: str) -> Shape | None:
        """The declared field ``name``, or None (then the key is a map entry: :meth:`values`)."""
        if self.is_root and name == "metadata":
            return _object_meta()
        if self.node is None or self.mode != "typed":
            return None
        child = self.node.field(name)
        return None if child is None else Shape.of(child)

    def values(self) -> Shape:
        """The shape of keys that are not declared fields."""
        if self.node is None or self.mode != "typed":
            return DEDUCED
        return Shape.of(self.node.values())

    def child(self, name: str) -> Shape:
        found = self.field(name)
        return found if found is not None else self.values()

    @property
    def closed(self) -> bool:
        """Whether keys other than the declared fields are errors (upstream: "not declared")."""
        node = self.node
        if node is None or self.mode != "typed" or not node.field_names or node.values() is not None:
            return False
        return not node.schema.get("x-kubernetes-preserve-unknown-fields")

    # Lists.

    @property
    def list_type(self) -> Literal["atomic", "set", "map"]:
        node = self.node
        if node is None or self.mode != "typed":
            return "atomic"
        declared = node.list_type
        if declared == "set":
            return "set"
        if declared == "map":
            return "map"
        if declared is None and "merge" in node.patch_strategy:
            return "map" if node.merge_key else "set"
        return "atomic"

    @property
    def keys(self) -> tuple[str, ...]:
        node = self.node
        if node is None or self.list_type != "map":
            return ()
        if node.list_type == "map":
            return node.list_map_keys
        return (node.merge_key,) if node.merge_key else ()

    def items(self) -> Shape:
        if self.node is None or self.mode != "typed":
            return ATOMIC
        return Shape.of(self.node.items())

    def key_default(self, name: str) -> Any:
        """The default of key field ``name`` of this list's items, or :data:`NO_DEFAULT`."""
        item = self.node.items() if self.node is not None else None
        if item is None:
            return NO_DEFAULT
        site = (item.schema.get("properties") or {}).get(name)
        if isinstance(site, dict) and "default" in site:
            return site["default"]
        return _KEY_DEFAULTS.get((item.name or "", name), NO_DEFAULT)


NO_DEFAULT: Final = object()
DEDUCED: Final = Shape(None, "deduced")
ROOT_DEDUCED: Final = Shape(None, "deduced", is_root=True)
ATOMIC: Final = Shape(None, "atomic")


@functools.cache
def _object_meta() -> Shape | None:
    schemas = Schemas.get()
    return Shape.of(schemas.node(OBJECT_META)) if OBJECT_META in schemas else None


# Naming list items.


def element_of(shape: Shape, index: int, item: Any) -> PathElement:
    """The path element of ``item``, the ``index``-th item of a list of this shape."""
    list_type = shape.list_type
    if list_type == "atomic":
        return index_element(index)
    if list_type == "set":
        if isinstance(item, dict):
            raise ElementError("associative list without keys has an element that's a map type")
        if isinstance(item, list):
            raise ElementError("not supported: associative list with lists as elements")
        if item is None:
            raise ElementError("associative list without keys has an element that's an explicit null")
        return value_element(item)
    if item is None:
        raise ElementError("associative list with keys may not have a null element")
    if not isinstance(item, dict):
        raise ElementError("associative list with keys may not have non-map elements")
    keys: dict[str, Any] = {}
    for name in shape.keys:
        if name in item:
            keys[name] = item[name]
        elif (default := shape.key_default(name)) is not NO_DEFAULT:
            keys[name] = default
    if not keys:
        raise ElementError(
            f"associative list with keys has an element that omits all key fields {list(shape.keys)}"
        )
    return key_element(keys)


@dataclass(slots=True)
class IndexedList:
    """A list's items by path element, in first-appearance order; duplicates share one group."""

    order: list[PathElement]
    groups: dict[PathElement, list[Any]]
    positions: list[PathElement]
    """The element of each item, in the list's order."""


def index_list(shape: Shape, items: list[Any] | None) -> IndexedList:
    """The items of a set or list-map by name. Raises :class:`ElementError` for an unnameable item."""
    indexed = IndexedList([], {}, [])
    for index, item in enumerate(items or ()):
        try:
            element = element_of(shape, index, item)
        except ElementError as err:
            raise ElementError(f"element {index}: {err}") from None
        indexed.positions.append(element)
        group = indexed.groups.get(element)
        if group is None:
            indexed.order.append(element)
            indexed.groups[element] = [item]
        else:
            group.append(item)
    return indexed


def duplicates(indexed: IndexedList) -> list[str]:
    """Upstream's messages for the duplicated items of a list (an applied config may have none)."""
    return [
        f"duplicate entries for key {element_string(e)}" for e in indexed.order if len(indexed.groups[e]) > 1
    ]
