"""Go's typed decoding of a CustomResourceDefinition: the type errors ``json.Unmarshal`` reports.

kube-apiserver decodes a v1 CustomResourceDefinition into its Go struct before anything else
reads it, so a field of the wrong JSON type (``shortNames: 5``, ``subresources: [status]``, a
schema's ``properties`` given as a list) is refused with 400 BadRequest before validation
(``json: cannot unmarshal number into Go struct field
CustomResourceDefinitionNames.spec.names.shortNames of type []string``).

:func:`decode` walks a CRD (all of it but ``metadata``, which the generic metadata checks own)
against the bundled OpenAPI definitions of ``apiextensions.k8s.io/v1`` -- what those Go structs
look like -- and returns the first such message, so that every later reader of a stored CRD
(validation, naming, serving, OpenAPI) may rely on its shape. As in Go, ``null`` is accepted
anywhere: a null field is dropped and a null list item or map value becomes its type's zero
value (``""``, ``{}``...), as upstream's decoding and re-encoding leave them. Unknown fields are
left to field validation, and the message's path names struct fields only (no list indices nor
map keys), as Go's does.

The types with an ``UnmarshalJSON`` of their own are decoded as upstream's are: ``JSON`` takes
anything, ``JSONSchemaPropsOrBool`` a schema or a boolean, ``JSONSchemaPropsOrArray`` a schema
or a list of them, ``JSONSchemaPropsOrStringArray`` a schema or a list of strings (upstream
silently drops anything else in the last two; here it is refused, as nothing can read it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, NoReturn

from k3py.api.schema import REF_PREFIX, Schemas

Obj = dict[str, Any]

PACKAGE: Final = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1."
ROOT: Final = "CustomResourceDefinition"
SKIPPED: Final = frozenset({"metadata", "apiVersion", "kind"})
"""Root fields checked elsewhere: ObjectMeta by the metadata checks, TypeMeta by the store."""
_TIME: Final = "io.k8s.apimachinery.pkg.apis.meta.v1.Time"
_INT_LIMITS: Final = {"int32": 2**31, "int64": 2**63}


def decode(crd: Obj, *, normalize: bool = True) -> str | None:
    """The error Go's ``json.Unmarshal`` of ``crd`` into a v1 CustomResourceDefinition reports
    first, or None when every field has the JSON type its Go field takes. With ``normalize``,
    nulls are replaced in place as decoding them would (see the module)."""
    walker = _Walker(Schemas.get(), normalize)
    try:
        for key in [k for k in crd if k not in SKIPPED]:
            walker.field(crd, key, walker.root_fields.get(key), (key,), ROOT)
    except _Mismatch as mismatch:
        return str(mismatch)
    return None


class _Mismatch(Exception):
    pass


def _kind(value: Any, numeric_target: bool) -> str:
    """How Go's decoder names a JSON value it cannot store (``UnmarshalTypeError.Value``)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return f"number {value}" if numeric_target else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _types(site: Mapping[str, Any]) -> list[Any]:
    declared = site.get("type")
    return [declared] if isinstance(declared, str) else list(declared or ())


class _Walker:
    def __init__(self, schemas: Schemas, normalize: bool) -> None:
        self.schemas = schemas
        self.normalize = normalize
        self.root_fields: Mapping[str, Any] = schemas.definition(PACKAGE + ROOT).get("properties") or {}

    def field(self, owner: Obj, key: str, site: Any, stack: tuple[str, ...], struct: str) -> None:
        """Decode the field ``key`` of a struct; a null field is dropped, an unknown one kept."""
        if not isinstance(site, Mapping):
            return
        if owner[key] is None:
            if self.normalize:
                del owner[key]
            return
        self.value(site, owner[key], stack, struct)

    def struct(self, name: str, value: Any, stack: tuple[str, ...], parent: str) -> None:
        """Decode ``value`` into the struct ``name`` (a short definition name), a field of the
        struct ``parent``."""
        if not isinstance(value, dict):
            self.fail(value, f"v1.{name}", parent, stack)
        props = self.schemas.definition(PACKAGE + name).get("properties") or {}
        for key in list(value):
            self.field(value, key, props.get(key), (*stack, key), name)

    def value(self, site: Mapping[str, Any], value: Any, stack: tuple[str, ...], struct: str) -> None:
        """Decode a non-null ``value`` into the Go type ``site`` describes; ``struct`` names the
        innermost struct and ``stack`` the fields from the root, for the message."""
        ref = site.get("$ref")
        if isinstance(ref, str):
            self.reference(ref.removeprefix(REF_PREFIX), value, stack, struct)
            return
        kinds = _types(site)
        if "string" in kinds and not isinstance(value, str):
            self.fail(value, "string", struct, stack)
        if "boolean" in kinds and not isinstance(value, bool):
            self.fail(value, "bool", struct, stack)
        if "integer" in kinds:
            self.integer(value, str(site.get("format") or "int64"), struct, stack)
        if "number" in kinds and (isinstance(value, bool) or not isinstance(value, (int, float))):
            self.fail(value, "float64", struct, stack)
        if "array" in kinds:
            element = site.get("items")
            if not isinstance(value, list):
                self.fail(value, "[]" + self.go_type(element), struct, stack)
            if isinstance(element, Mapping):
                for i, item in enumerate(value):
                    value[i] = self.item(element, item, stack, struct)
        if "object" in kinds:
            values = site.get("additionalProperties")
            if not isinstance(value, dict):
                self.fail(value, "map[string]" + self.go_type(values), struct, stack)
            if isinstance(values, Mapping):
                for key, item in value.items():
                    value[key] = self.item(values, item, stack, struct)

    def item(self, site: Mapping[str, Any], value: Any, stack: tuple[str, ...], struct: str) -> Any:
        """A list item or map value: decoded, or the zero value of its type for null."""
        if value is not None:
            self.value(site, value, stack, struct)
            return value
        return self.zero(site) if self.normalize else None

    def zero(self, site: Mapping[str, Any]) -> Any:
        ref = site.get("$ref")
        if isinstance(ref, str):
            name = ref.removeprefix(REF_PREFIX)
            return {} if name.startswith(PACKAGE) and _types(self.schemas.definition(name)) else None
        kinds = _types(site)
        for kind, zero in (("string", ""), ("boolean", False), ("integer", 0), ("number", 0)):
            if kind in kinds:
                return zero
        return None  # a nil slice or map

    def reference(self, name: str, value: Any, stack: tuple[str, ...], struct: str) -> None:
        short = name.removeprefix(PACKAGE)
        if name == _TIME:
            if not isinstance(value, str):
                self.fail(value, "v1.Time", struct, stack)
        elif short == "JSON":
            pass  # any JSON value
        elif short == "JSONSchemaPropsOrBool":
            if not isinstance(value, (bool, dict)):
                self.fail(value, f"v1.{short}", struct, stack)
            if isinstance(value, dict):
                self.struct("JSONSchemaProps", value, stack, struct)
        elif short in ("JSONSchemaPropsOrArray", "JSONSchemaPropsOrStringArray"):
            if not isinstance(value, (list, dict)):
                self.fail(value, f"v1.{short}", struct, stack)
            if isinstance(value, dict):
                self.struct("JSONSchemaProps", value, stack, struct)
            elif short == "JSONSchemaPropsOrArray":
                for i, item in enumerate(value):
                    value[i] = self.item(
                        {"$ref": REF_PREFIX + PACKAGE + "JSONSchemaProps"}, item, stack, struct
                    )
            else:
                for i, item in enumerate(value):
                    value[i] = self.item({"type": "string"}, item, stack, struct)
        elif name.startswith(PACKAGE):
            self.struct(short, value, stack, struct)

    def integer(self, value: Any, go_format: str, struct: str, stack: tuple[str, ...]) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(value, go_format, struct, stack)
        limit = _INT_LIMITS.get(go_format, 2**63)
        whole = isinstance(value, int) or value.is_integer()
        if not whole or not -limit <= value < limit:
            self.fail(value, go_format, struct, stack, numeric=True)

    def go_type(self, site: Any) -> str:
        """The Go type a schema site stands for, as ``reflect.Type.String`` prints it."""
        if not isinstance(site, Mapping):
            return "interface {}"
        ref = site.get("$ref")
        if isinstance(ref, str):
            return "v1." + ref.rsplit(".", 1)[-1]
        kinds = _types(site)
        for kind, name in (("string", "string"), ("boolean", "bool"), ("number", "float64")):
            if kind in kinds:
                return name
        if "integer" in kinds:
            return str(site.get("format") or "int64")
        if "array" in kinds:
            return "[]" + self.go_type(site.get("items"))
        return "map[string]" + self.go_type(site.get("additionalProperties"))

    @staticmethod
    def fail(
        value: Any, go_type: str, struct: str, stack: tuple[str, ...], *, numeric: bool = False
    ) -> NoReturn:
        raise _Mismatch(
            f"json: cannot unmarshal {_kind(value, numeric)} into Go struct field "
            f"{struct}.{'.'.join(stack)} of type {go_type}"
        )
