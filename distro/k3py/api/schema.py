"""The Kubernetes 1.37 OpenAPI definitions, as a small typed tree that patching and explain walk.

The data is ``data/definitions-1.37.json.gz``, written by ``build/schemas.py`` from the
``kubernetes-validate`` package: a JSON Schema document whose ``$defs`` maps names such as
``io.k8s.api.apps.v1.Deployment`` to schemas carrying Kubernetes' ``x-kubernetes-*`` extensions.
:meth:`Schemas.get` loads it once, on first use, and keeps it for the life of the process, each
definition as compressed JSON until something asks for it.

A :class:`Node` is one place in that tree: a kind's root, a field, a list's items, a map's
values. It pairs the schema *at the site* (a property, ``items`` or ``additionalProperties``,
where patch extensions such as ``x-kubernetes-patch-strategy`` live) with the schema it
*resolves to* through ``$ref`` (where the fields are). Resolved definitions are shared and their
children built once, so walking ``Deployment → spec → template → spec → containers`` costs a few
dict lookups after the first time. Raw schema dicts are shared too: treat them as read-only.
"""

from __future__ import annotations

import functools
import gzip
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final

import orjson

DATA_FILE: Final = "definitions-1.37.json.gz"
REF_PREFIX: Final = "#/$defs/"

Schema = Mapping[str, Any]
"""One JSON Schema object from the definitions (read-only)."""

_PRIMITIVES: Final = frozenset({"object", "array", "string", "integer", "number", "boolean"})
_MAX_REF_HOPS: Final = 16


class SchemaError(Exception):
    """The definitions are missing or inconsistent (a ``$ref`` to nowhere, an unreadable file)."""


@dataclass(frozen=True, slots=True)
class GroupVersionKind:
    group: str
    version: str
    kind: str

    def __str__(self) -> str:
        api_version = f"{self.group}/{self.version}" if self.group else self.version
        return f"{api_version}, Kind={self.kind}"


class Schemas:
    """A set of named definitions; :meth:`get` is the bundled Kubernetes 1.37 set.

    Definitions read from a document stay compressed (``_Encoded``) until asked for: a
    server walks the few kinds it is sent, while the parsed set would hold 3.5 MB for as long
    as it runs (0.6 MB compressed). ``definition`` decompresses and parses one each time (8 to 45
    µs); the shapes that walks build keep theirs.
    """

    def __init__(self, definitions: Mapping[str, dict[str, Any]], encoded: _Encoded | None = None) -> None:
        self._definitions = definitions
        self._encoded = encoded if encoded is not None else _Encoded({}, {})
        self._shapes: dict[str, _Shape] = {}
        self._kinds: dict[GroupVersionKind, str] | None = None

    @classmethod
    def get(cls) -> Schemas:
        """The bundled definitions, loaded on first call and shared afterwards."""
        return _bundled()

    def with_definitions(self, extra: Mapping[str, dict[str, Any]]) -> Schemas:
        """These definitions and ``extra`` (which wins on a name clash), e.g. a custom resource's
        schema whose ``$ref`` points at the bundled ObjectMeta."""
        return Schemas({**self._definitions, **extra}, self._encoded)

    @classmethod
    def from_file(cls, path: Path) -> Schemas:
        """Definitions from a (gzipped, if it ends in ``.gz``) JSON Schema document with ``$defs``."""
        data = path.read_bytes()
        return cls.from_document(gzip.decompress(data) if path.suffix == ".gz" else data, str(path))

    @classmethod
    def from_document(cls, data: bytes, origin: str = "document") -> Schemas:
        try:
            document = orjson.loads(data)
        except orjson.JSONDecodeError as err:
            raise SchemaError(f"{origin} is not JSON: {err}") from None
        definitions = document.get("$defs") if isinstance(document, dict) else None
        if not isinstance(definitions, dict):
            raise SchemaError(f"{origin} has no $defs object")
        return cls({}, _Encoded.of(definitions))

    def __len__(self) -> int:
        return sum(1 for _ in self.names())

    def __contains__(self, name: object) -> bool:
        return name in self._definitions or name in self._encoded.schemas

    def names(self) -> Iterator[str]:
        yield from self._definitions
        yield from (name for name in self._encoded.schemas if name not in self._definitions)

    def definition(self, name: str) -> dict[str, Any]:
        """The raw schema named ``name`` (do not modify it). KeyError if unknown."""
        found = self._definitions.get(name)
        if found is not None:
            return found
        encoded = self._encoded.schemas.get(name)
        if encoded is None:
            raise KeyError(f"no definition named {name!r}")
        parsed: dict[str, Any] = orjson.loads(zlib.decompress(encoded))
        return parsed

    def node(self, name: str) -> Node:
        """The root node of the definition ``name``. KeyError if unknown."""
        shape = self._shape(name)
        return Node(self, shape.schema, shape)

    def kind(self, group: str, version: str, kind: str) -> Node | None:
        """The root node of a kind, found by its ``x-kubernetes-group-version-kind``."""
        name = self._kind_index().get(GroupVersionKind(group, version, kind))
        return None if name is None else self.node(name)

    def kinds(self) -> tuple[GroupVersionKind, ...]:
        """Every group/version/kind some definition declares, in the data's order."""
        return tuple(self._kind_index())

    def _kind_index(self) -> dict[GroupVersionKind, str]:
        """Each kind and the first definition declaring it: the encoded ones first, in the
        document's order, then the parsed ones (a parsed definition replaces an encoded one of
        its name)."""
        if self._kinds is None:
            index = {key: name for key, name in self._encoded.kinds.items() if name not in self._definitions}
            for key, name in _kinds_of(self._definitions).items():
                index.setdefault(key, name)
            self._kinds = index
        return self._kinds

    def _shape(self, name: str) -> _Shape:
        shape = self._shapes.get(name)
        if shape is None:
            shape = self._shapes[name] = _Shape(self.definition(name), name)
        return shape

    def _resolve(self, site: Schema) -> _Shape:
        """The shape a site schema stands for: its ``$ref`` target, or the site itself."""
        schema, hops = site, 0
        while (ref := schema.get("$ref")) is not None:
            if not isinstance(ref, str) or not ref.startswith(REF_PREFIX):
                raise SchemaError(f"unsupported $ref {ref!r}: only {REF_PREFIX}<name> is")
            name = ref[len(REF_PREFIX) :]
            if name not in self:
                raise SchemaError(f"$ref to unknown definition {name!r}")
            shape = self._shape(name)
            if "$ref" not in shape.schema:
                return shape
            schema, hops = shape.schema, hops + 1
            if hops > _MAX_REF_HOPS:
                raise SchemaError(f"$ref chain through {name!r} does not end")
        return _Shape(site, None)


@dataclass(frozen=True, slots=True)
class _Encoded:
    """Definitions kept as compressed JSON, and the kinds they declare (worked out while parsed)."""

    schemas: Mapping[str, bytes]
    kinds: Mapping[GroupVersionKind, str]

    @classmethod
    def of(cls, definitions: Mapping[str, dict[str, Any]]) -> _Encoded:
        return cls(
            {name: zlib.compress(orjson.dumps(schema)) for name, schema in definitions.items()},
            _kinds_of(definitions),
        )


def _kinds_of(definitions: Mapping[str, Schema]) -> dict[GroupVersionKind, str]:
    """Each group/version/kind the definitions declare, and the first definition declaring it."""
    index: dict[GroupVersionKind, str] = {}
    for name, schema in definitions.items():
        for gvk in schema.get("x-kubernetes-group-version-kind") or ():
            key = GroupVersionKind(gvk.get("group", ""), gvk["version"], gvk["kind"])
            index.setdefault(key, name)
    return index


class _Shape:
    """A resolved schema and its lazily built children, shared by every site that refers to it."""

    __slots__ = ("_items", "_values", "fields", "name", "schema", "type")

    def __init__(self, schema: Schema, name: str | None) -> None:
        self.schema = schema
        self.name = name
        self.type: str | None = None
        self.fields: dict[str, Node | None] = {}
        self._items: Node | _Unset | None = _UNSET
        self._values: Node | _Unset | None = _UNSET


class _Unset:
    pass


_UNSET: Final = _Unset()


class Node:
    """One place in a schema tree; children are resolved on demand and cached."""

    __slots__ = ("_schemas", "_shape", "_site")

    def __init__(self, schemas: Schemas, site: Schema, shape: _Shape) -> None:
        self._schemas = schemas
        self._site = site
        self._shape = shape

    def __repr__(self) -> str:
        return f"<Node {self.name or '(inline)'} {self.type}>"

    @property
    def identity(self) -> tuple[int, int]:
        """Equal for two nodes that view the same place of the same schema tree (while both live)."""
        return id(self._shape), id(self._site)

    # What this node is.

    @property
    def name(self) -> str | None:
        """The definition this node resolves to, or None for an inline schema."""
        return self._shape.name

    @property
    def schema(self) -> Schema:
        """The resolved schema (read-only)."""
        return self._shape.schema

    @property
    def type(self) -> str:
        """object, array, string, integer, number, boolean, int-or-string or any."""
        shape = self._shape
        if shape.type is None:
            shape.type = _normalized_type(self._schemas, shape.schema)
        return shape.type

    @property
    def format(self) -> str | None:
        """The OpenAPI format (int32, int64, byte, date-time...), if any."""
        return self._text("format")

    @property
    def description(self) -> str:
        """The field's own description if it has one, else its type's; '' when neither does."""
        return self._text("description") or ""

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(self._shape.schema.get("required") or ())

    @property
    def enum(self) -> tuple[Any, ...]:
        return tuple(self._lookup("enum") or ())

    @property
    def group_version_kinds(self) -> tuple[GroupVersionKind, ...]:
        gvks = self._shape.schema.get("x-kubernetes-group-version-kind") or ()
        return tuple(GroupVersionKind(g.get("group", ""), g["version"], g["kind"]) for g in gvks)

    # How patches and server-side apply treat it.

    @property
    def patch_strategy(self) -> frozenset[str]:
        """Strategic-merge-patch strategies: a subset of {merge, retainKeys, replace}."""
        value = self._text("x-kubernetes-patch-strategy")
        return frozenset(s for s in value.split(",") if s) if value else frozenset()

    @property
    def merge_key(self) -> str | None:
        """The key that identifies elements of a list merged by strategic merge patch."""
        return self._text("x-kubernetes-patch-merge-key")

    @property
    def list_type(self) -> str | None:
        """atomic, set, map, or None when the schema does not say."""
        return self._text("x-kubernetes-list-type")

    @property
    def list_map_keys(self) -> tuple[str, ...]:
        return tuple(self._lookup("x-kubernetes-list-map-keys") or ())

    @property
    def map_type(self) -> str | None:
        """atomic, granular, or None when the schema does not say."""
        return self._text("x-kubernetes-map-type")

    # Children.

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(self._shape.schema.get("properties") or ())

    def field(self, name: str) -> Node | None:
        """The declared property ``name`` of an object, or None."""
        shape = self._shape
        try:
            return shape.fields[name]
        except KeyError:
            pass
        site = (shape.schema.get("properties") or {}).get(name)
        node = self._child(site) if isinstance(site, Mapping) else None
        shape.fields[name] = node
        return node

    def values(self) -> Node | None:
        """The values of a map (``additionalProperties``), or None when this is not a map."""
        shape = self._shape
        if isinstance(shape._values, _Unset):
            site = shape.schema.get("additionalProperties")
            if site is True:
                site = {}
            shape._values = self._child(site) if isinstance(site, Mapping) else None
        return shape._values

    def items(self) -> Node | None:
        """The elements of an array, or None when this is not an array."""
        shape = self._shape
        if isinstance(shape._items, _Unset):
            site = shape.schema.get("items")
            shape._items = self._child(site) if isinstance(site, Mapping) else None
        return shape._items

    def child(self, key: str) -> Node | None:
        """What a key of this object holds: a declared field, else the map's values, else None."""
        node = self.field(key)
        return node if node is not None else self.values()

    def _child(self, site: Schema) -> Node:
        return Node(self._schemas, site, self._schemas._resolve(site))

    def _lookup(self, key: str) -> Any:
        """An annotation from the site, falling back to the resolved schema."""
        value = self._site.get(key)
        return value if value is not None else self._shape.schema.get(key)

    def _text(self, key: str) -> str | None:
        value = self._lookup(key)
        return value if isinstance(value, str) else None


def _normalized_type(schemas: Schemas, schema: Schema) -> str:
    if schema.get("format") == "int-or-string" or schema.get("x-kubernetes-int-or-string"):
        return "int-or-string"
    alternatives = schema.get("oneOf") or schema.get("anyOf")
    if alternatives:
        types = {_normalized_type(schemas, schemas._resolve(alt).schema) for alt in alternatives}
        if {"integer", "string"} <= types:
            return "int-or-string"
        # resource.Quantity is string-or-number; the API always writes it back as a string.
        if "string" in types:
            return "string"
        return types.pop() if len(types) == 1 else "any"
    declared = schema.get("type")
    names = [declared] if isinstance(declared, str) else list(declared or ())
    for name in names:
        if name in _PRIMITIVES:
            return str(name)
    if "properties" in schema or "additionalProperties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return "any"


@functools.cache
def _bundled() -> Schemas:
    resource = resources.files(__package__ or "k3py.api").joinpath("data", DATA_FILE)
    try:
        data = gzip.decompress(resource.read_bytes())
    except (OSError, EOFError) as err:
        raise SchemaError(
            f"cannot read the bundled API definitions {DATA_FILE}: {err}"
            " (regenerate them: python build/schemas.py)"
        ) from None
    return Schemas.from_document(data, DATA_FILE)
