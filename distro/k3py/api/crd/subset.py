"""The OpenAPI subset a CRD schema may use (``ValidateCustomResourceDefinitionOpenAPISchema``).

No ``$ref``, ``id``, ``patternProperties``, ``definitions``, ``dependencies``, ``additionalItems``
or ``uniqueItems``; ``properties`` and ``additionalProperties`` not together; no ``default`` in the
root's ``metadata``, ``apiVersion`` or ``kind``; list and map types (``x-kubernetes-list-type``,
``-list-map-keys``, ``-map-type``) consistent with the node's type and items; a
``x-kubernetes-validations`` rule present and parsing as CEL (:mod:`k3py.api.cel`; rules are
not type-checked or evaluated).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from k3py.api import cel
from k3py.api.crd.pruning import Schema
from k3py.api.selectors import go_quote
from k3py.api.validation import Cause, Shown, forbidden, go_strings, invalid, not_supported, required

_TYPES: Final = ("array", "boolean", "integer", "number", "object", "string")
_META: Final = ("metadata", "kind", "apiVersion")


def _props(schema: Schema) -> dict[str, Schema]:
    value = schema.get("properties")
    return {k: v for k, v in value.items() if isinstance(v, Mapping)} if isinstance(value, Mapping) else {}


def _list(schema: Schema, key: str) -> list[Schema]:
    value = schema.get(key)
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def check_subset(schema: Schema, path: str) -> list[Cause]:
    """Every cause against the OpenAPI subset, for a version's schema found at ``path``."""
    return _openapi(schema, path, _Context(allow_defaults=True), root=True)


class _Context:
    """specStandardValidatorV3's state while walking down: may defaults appear, inside ObjectMeta?"""

    def __init__(self, *, allow_defaults: bool, reason: str = "", inside_meta: bool = False) -> None:
        self.allow_defaults = allow_defaults
        self.reason = reason
        self.inside_meta = inside_meta

    def no_defaults(self, reason: str) -> _Context:
        return _Context(allow_defaults=False, reason=reason, inside_meta=self.inside_meta)

    def meta(self) -> _Context:
        return _Context(allow_defaults=self.allow_defaults, reason=self.reason, inside_meta=True)


def _standard(s: Schema, path: str, ctx: _Context) -> list[Cause]:
    causes: list[Cause] = []
    kind = s.get("type")
    if isinstance(kind, str) and kind and kind not in _TYPES and kind != "null":
        causes.append(not_supported(f"{path}.type", kind, _TYPES))
    if "default" in s and not ctx.allow_defaults:
        causes.append(
            forbidden(f"{path}.default", "must not be set" + (f" {ctx.reason}" if ctx.reason else ""))
        )
    for key in ("id", "additionalItems", "patternProperties", "definitions", "dependencies", "$ref"):
        if s.get(key) not in (None, "", {}):
            causes.append(forbidden(f"{path}.{key}", f"{key} is not supported"))
    if kind == "null":
        causes.append(forbidden(f"{path}.type", "type cannot be set to null, use nullable as an alternative"))
    if isinstance(s.get("items"), list):
        causes.append(forbidden(f"{path}.items", "items must be a schema object and not an array"))
    if ctx.inside_meta and s.get("x-kubernetes-embedded-resource") is True:
        causes.append(
            forbidden(f"{path}.x-kubernetes-embedded-resource", "must not be used inside of resource meta")
        )
    return causes


def _openapi(s: Schema, path: str, ctx: _Context, *, root: bool = False) -> list[Cause]:
    causes = _standard(s, path, ctx)
    if s.get("uniqueItems") is True:
        causes.append(
            forbidden(
                f"{path}.uniqueItems",
                "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
            )
        )
    props = _props(s)
    extra = s.get("additionalProperties")
    if extra is not None:
        if props and (extra is False or isinstance(extra, Mapping)):
            causes.append(
                forbidden(
                    f"{path}.additionalProperties", "additionalProperties and properties are mutual exclusive"
                )
            )
        if isinstance(extra, Mapping):
            sub = (
                ctx.no_defaults("inside additionalProperties applying to object metadata")
                if ctx.inside_meta
                else ctx
            )
            causes += _openapi(extra, f"{path}.additionalProperties", sub)
    embedded = s.get("x-kubernetes-embedded-resource") is True
    for key, prop in props.items():
        sub = ctx
        if (root or embedded) and key in _META:
            sub = sub.meta()
            if root:
                sub = sub.no_defaults(f"in top-level {key}")
        causes += _openapi(prop, f"{path}.properties[{key}]", sub)
    if isinstance(s.get("not"), Mapping):
        causes += _openapi(s["not"], f"{path}.not", ctx)
    for key in ("allOf", "oneOf", "anyOf"):
        for i, nested in enumerate(_list(s, key)):
            causes += _openapi(nested, f"{path}.{key}[{i}]", ctx)
    if isinstance(s.get("items"), Mapping):
        causes += _openapi(s["items"], f"{path}.items", ctx)
    causes += _extensions(s, path)
    return causes


def _extensions(s: Schema, path: str) -> list[Cause]:
    causes: list[Cause] = []
    kind = s.get("type", "")
    if s.get("x-kubernetes-preserve-unknown-fields") is False:
        causes.append(
            invalid(f"{path}.x-kubernetes-preserve-unknown-fields", False, "must be true or undefined")
        )
    map_type = s.get("x-kubernetes-map-type")
    if map_type is not None:
        if kind != "object":
            message = "must be object if x-kubernetes-map-type is specified"
            causes.append(
                required(f"{path}.type", message) if not kind else invalid(f"{path}.type", kind, message)
            )
        if map_type not in ("atomic", "granular"):
            causes.append(not_supported(f"{path}.x-kubernetes-map-type", map_type, ("atomic", "granular")))
    list_type = s.get("x-kubernetes-list-type")
    items = s.get("items") if isinstance(s.get("items"), Mapping) else None
    if list_type is not None and kind != "array":
        message = "must be array if x-kubernetes-list-type is specified"
        causes.append(
            required(f"{path}.type", message) if not kind else invalid(f"{path}.type", kind, message)
        )
    elif list_type == "set" and items is not None:
        message = "must be atomic as item of a list with x-kubernetes-list-type=set"
        if items.get("type") == "array" and items.get("x-kubernetes-list-type", "atomic") != "atomic":
            causes.append(
                invalid(f"{path}.items.x-kubernetes-list-type", items["x-kubernetes-list-type"], message)
            )
        if items.get("type") == "object" and items.get("x-kubernetes-map-type") != "atomic":
            causes.append(
                invalid(f"{path}.items.x-kubernetes-map-type", items.get("x-kubernetes-list-type"), message)
            )
    if list_type is not None and list_type not in ("atomic", "set", "map"):
        causes.append(not_supported(f"{path}.x-kubernetes-list-type", list_type, ("atomic", "set", "map")))
    keys = [k for k in s.get("x-kubernetes-list-map-keys") or () if isinstance(k, str)]
    if keys and list_type is None:
        causes.append(
            required(
                f"{path}.x-kubernetes-list-type", "must be map if x-kubernetes-list-map-keys is non-empty"
            )
        )
    elif keys and list_type != "map":
        causes.append(
            invalid(
                f"{path}.x-kubernetes-list-type",
                list_type,
                "must be map if x-kubernetes-list-map-keys is non-empty",
            )
        )
    if list_type == "map":
        causes += _map_list(s, items, keys, path)
    if list_type in ("set", "map") and items is not None:
        causes += _map_set_items(items, list_type, keys, path)
    for i, rule in enumerate(s.get("x-kubernetes-validations") or ()):
        if isinstance(rule, Mapping):
            causes += _validation_rule(rule, f"{path}.x-kubernetes-validations[{i}].rule")
    return causes


def _validation_rule(rule: Schema, field: str) -> list[Cause]:
    """A rule is required and must parse as CEL (it is neither type-checked nor evaluated)."""
    text = str(rule.get("rule") or "")
    if not text.strip():
        return [required(field, "rule is not specified")]
    error = cel.check(text)
    return [] if error is None else [invalid(field, Shown(_go_rule(rule)), f"compilation failed: {error}")]


def _go_rule(rule: Schema) -> str:
    """``%#v`` of an ``apiextensions.ValidationRule``, the value upstream's message shows."""

    def text(key: str) -> str:
        return go_quote(str(rule.get(key) or ""))

    def pointer(key: str, go_type: str) -> str:
        return f"({go_type})(nil)" if rule.get(key) is None else f"({go_type})(0xc000000000)"

    return (
        f"apiextensions.ValidationRule{{Rule:{text('rule')}, Message:{text('message')}, "
        f"MessageExpression:{text('messageExpression')}, "
        f"Reason:{pointer('reason', '*apiextensions.FieldValueErrorReason')}, "
        f"FieldPath:{text('fieldPath')}, OptionalOldSelf:{pointer('optionalOldSelf', '*bool')}}}"
    )


def _map_list(s: Schema, items: Schema | None, keys: list[str], path: str) -> list[Cause]:
    causes: list[Cause] = []
    if not keys:
        causes.append(
            required(
                f"{path}.x-kubernetes-list-map-keys", "must not be empty if x-kubernetes-list-type is map"
            )
        )
    if s.get("items") is None:
        causes.append(required(f"{path}.items", "must have a schema if x-kubernetes-list-type is map"))
    if items is None:
        return causes
    if items.get("type") != "object":
        causes.append(
            invalid(
                f"{path}.items.type",
                items.get("type", ""),
                "must be object if parent array's x-kubernetes-list-type is map",
            )
        )
        return causes
    seen: set[str] = set()
    props = _props(items)
    for key in keys:
        if key in props:
            if props[key].get("type") in ("array", "object"):
                causes.append(
                    invalid(
                        f"{path}.items.properties[{key}].type",
                        "object",
                        "must be a scalar type if parent array's x-kubernetes-list-type is map",
                    )
                )
        else:
            causes.append(
                invalid(
                    f"{path}.x-kubernetes-list-map-keys",
                    go_strings(keys),
                    "entries must all be names of item properties",
                )
            )
        if key in seen:
            causes.append(
                invalid(
                    f"{path}.x-kubernetes-list-map-keys",
                    go_strings(keys),
                    "must not contain duplicate entries",
                )
            )
        seen.add(key)
    return causes


def _map_set_items(items: Schema, list_type: str, keys: list[str], path: str) -> list[Cause]:
    causes: list[Cause] = []
    if items.get("nullable") is True:
        causes.append(
            forbidden(
                f"{path}.items.nullable", f"cannot be nullable when x-kubernetes-list-type is {list_type}"
            )
        )
    if list_type == "map":
        props = _props(items)
        needed = set(items.get("required") or ())
        for key in keys:
            prop = props.get(key)
            if prop is None:
                continue
            if key not in needed and "default" not in prop:
                causes.append(
                    required(
                        f"{path}.items.properties[{key}].default",
                        "this property is in x-kubernetes-list-map-keys, "
                        "so it must have a default or be a required property",
                    )
                )
            if prop.get("nullable") is True:
                causes.append(
                    forbidden(
                        f"{path}.items.properties[{key}].nullable",
                        "this property is in x-kubernetes-list-map-keys, so it cannot be nullable",
                    )
                )
    return causes
