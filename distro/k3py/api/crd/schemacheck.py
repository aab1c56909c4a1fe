"""Validation of a CRD version's ``openAPIV3Schema``: what apiextensions-apiserver accepts.

Three passes, in upstream's order (``validateCustomResourceDefinitionValidation``):

1. with the status subresource on, only some keys may appear at the root, and the root must be
   an object; ``nullable`` is never allowed there;
2. the schema must be *structural* (``schema.ValidateStructural``): every specified field has a
   type (unless ``x-kubernetes-int-or-string`` or ``x-kubernetes-preserve-unknown-fields``), value
   validations under ``allOf``/``anyOf``/``oneOf``/``not`` carry no type, default, description or
   extension and name no field the structure lacks, ``metadata`` at the root restricts at most
   ``name`` and ``generateName``; then every ``default`` must validate against its schema and
   survive pruning (``defaulting.ValidateDefaults``);
3. the OpenAPI subset CRDs allow (:mod:`.subset`).

Field paths are upstream's (``properties[spec].properties[replicas].type``); structural errors are
sorted by message as upstream sorts them.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any, Final

from k3py.api.crd import values
from k3py.api.crd.goformat import go_sharp_v
from k3py.api.crd.pruning import Schema, prune
from k3py.api.crd.subset import check_subset
from k3py.api.validation import Cause, Shown, forbidden, invalid, required

_META: Final = ("metadata", "kind", "apiVersion")
_ROOT_FIELDS: Final = {
    "description": "Description", "type": "Type", "format": "Format", "title": "Title",
    "maximum": "Maximum", "exclusiveMaximum": "ExclusiveMaximum", "minimum": "Minimum",
    "exclusiveMinimum": "ExclusiveMinimum", "maxLength": "MaxLength", "minLength": "MinLength",
    "pattern": "Pattern", "maxItems": "MaxItems", "minItems": "MinItems", "uniqueItems": "UniqueItems",
    "multipleOf": "MultipleOf", "required": "Required", "items": "Items", "properties": "Properties",
    "externalDocs": "ExternalDocs", "example": "Example",
    "x-kubernetes-preserve-unknown-fields": "XPreserveUnknownFields",
    "x-kubernetes-validations": "XValidations",
}  # fmt: skip
_ROOT_FIELDS_SHOWN: Final = "[" + " ".join(_ROOT_FIELDS.values()) + "]"
_ROOT, _ITEM, _FIELD = "root", "item", "field"
_INT_OR_STRING_ANY_OF: Final = [{"type": "integer"}, {"type": "string"}]


def check_schema(schema: Schema, path: str, *, status: bool) -> list[Cause]:
    """Every cause against one version's ``openAPIV3Schema`` found at ``path``."""
    causes: list[Cause] = []
    if status:
        causes += _status_root(schema, path)
    if schema.get("nullable") is True:
        causes.append(forbidden(f"{path}.nullable", "nullable cannot be true at the root"))
    structural = sorted(_invariants(schema, _ROOT, path) + _complete(schema, schema, path, path), key=_text)
    causes += structural or _defaults(schema, path, root=True)
    causes += check_subset(schema, path)
    return causes


def _text(cause: Cause) -> str:
    return f"{cause.field}: {cause.message}"


def _status_root(schema: Schema, path: str) -> list[Cause]:
    for key, value in schema.items():
        if value in (None, False, "", [], {}, 0):
            continue  # Go's zero values are not "set"
        if key == "type":
            if value != "object":
                detail = (
                    'only "object" is allowed as the type at the root of the schema '
                    "if the status subresource is enabled"
                )
                return [invalid(f"{path}.type", value, detail)]
            continue
        if key not in _ROOT_FIELDS:
            detail = (
                f"only {_ROOT_FIELDS_SHOWN} fields are allowed at the root of the schema "
                "if the status subresource is enabled"
            )
            return [invalid(path, _shown(schema), detail)]
    return []


def _shown(schema: Schema) -> Any:
    return Shown(go_sharp_v(dict(schema)))


# -- pass 2: structural ---------------------------------------------------------------------


def _props(schema: Schema) -> dict[str, Schema]:
    value = schema.get("properties")
    return {k: v for k, v in value.items() if isinstance(v, Mapping)} if isinstance(value, Mapping) else {}


def _list(schema: Schema, key: str) -> list[Schema]:
    value = schema.get(key)
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _invariants(s: Schema, level: str, path: str) -> list[Cause]:
    causes: list[Cause] = []
    kind = s.get("type") if isinstance(s.get("type"), str) else ""
    items = s.get("items")
    if kind == "array" and items is None:
        causes.append(required(f"{path}.items", "must be specified"))
    if isinstance(items, Mapping):
        causes += _invariants(items, _ITEM, f"{path}.items")
    for key, prop in _props(s).items():
        causes += _invariants(prop, _FIELD, f"{path}.properties[{key}]")
    extra = s.get("additionalProperties")
    if extra is not None:
        if level == _ROOT:
            causes.append(forbidden(f"{path}.additionalProperties", "must not be used at the root"))
        if isinstance(extra, Mapping):
            causes += _invariants(extra, _FIELD, f"{path}.additionalProperties")
    int_or_string = s.get("x-kubernetes-int-or-string") is True
    preserve = s.get("x-kubernetes-preserve-unknown-fields") is True
    embedded = s.get("x-kubernetes-embedded-resource") is True
    if int_or_string and preserve:
        causes.append(
            invalid(
                f"{path}.x-kubernetes-preserve-unknown-fields",
                True,
                "must be false if x-kubernetes-int-or-string is true",
            )
        )
    if int_or_string and embedded:
        causes.append(
            invalid(
                f"{path}.x-kubernetes-embedded-resource",
                True,
                "must be false if x-kubernetes-int-or-string is true",
            )
        )
    skip_any_of = s.get("anyOf") == _INT_OR_STRING_ANY_OF
    all_of = _list(s, "allOf")
    skip_first = bool(all_of) and all_of[0].get("anyOf") == _INT_OR_STRING_ANY_OF
    causes += _value_validation(s, skip_any_of, skip_first, level, path)
    check_meta = level == _ROOT or embedded
    if embedded and kind != "object":
        message = "must be object if x-kubernetes-embedded-resource is true"
        causes.append(
            required(f"{path}.type", message) if not kind else invalid(f"{path}.type", kind, message)
        )
    elif not kind and not int_or_string and not preserve:
        where = {
            _ROOT: "at the root",
            _ITEM: "for specified array items",
            _FIELD: "for specified object fields",
        }
        causes.append(required(f"{path}.type", f"must not be empty {where[level]}"))
    if embedded and extra is not None:
        causes.append(
            forbidden(
                f"{path}.additionalProperties", "must not be used if x-kubernetes-embedded-resource is set"
            )
        )
    if level == _ROOT and kind and kind != "object":
        causes.append(invalid(f"{path}.type", kind, "must be object at the root"))
    props = _props(s)
    for name in ("kind", "apiVersion"):
        if name in props and check_meta and props[name].get("type", "") != "string":
            causes.append(
                invalid(f"{path}.properties[{name}].type", props[name].get("type", ""), "must be string")
            )
    if "metadata" in props:
        causes += _metadata(props["metadata"], check_meta, level, f"{path}.properties[metadata]")
    if embedded and not preserve and not props:
        causes.append(
            required(
                f"{path}.properties",
                "must not be empty if x-kubernetes-embedded-resource is true "
                "without x-kubernetes-preserve-unknown-fields",
            )
        )
    return causes


def _metadata(s: Schema, check_meta: bool, level: str, path: str) -> list[Cause]:
    causes: list[Cause] = []
    if check_meta and s.get("type", "") != "object":
        causes.append(invalid(f"{path}.type", s.get("type", ""), "must be object"))
    if level == _ROOT:
        rest = {k: v for k, v in s.items() if k not in ("type", "default")}
        if set(_props(s)) <= {"name", "generateName"}:
            rest.pop("properties", None)
        if any(v not in (None, False, "", [], {}) for v in rest.values()):
            causes.append(
                forbidden(
                    path,
                    "must not specify anything other than name and generateName, "
                    "but metadata is implicitly specified",
                )
            )
    return causes


def _value_validation(s: Schema, skip_any_of: bool, skip_first: bool, level: str, path: str) -> list[Cause]:
    causes: list[Cause] = []
    if not skip_any_of:
        for i, nested in enumerate(_list(s, "anyOf")):
            causes += _nested(nested, False, level, f"{path}.anyOf[{i}]")
    for i, nested in enumerate(_list(s, "allOf")):
        causes += _nested(nested, skip_first and i == 0, level, f"{path}.allOf[{i}]")
    for i, nested in enumerate(_list(s, "oneOf")):
        causes += _nested(nested, False, level, f"{path}.oneOf[{i}]")
    if isinstance(s.get("not"), Mapping):
        causes += _nested(s["not"], False, level, f"{path}.not")
    pattern = s.get("pattern")
    if isinstance(pattern, str) and pattern:
        try:
            re.compile(pattern)
        except re.error as err:
            causes.append(
                invalid(f"{path}.pattern", pattern, f"must be a valid regular expression, but isn't: {err}")
            )
    return causes


_NESTED_FORBIDDEN: Final = (
    ("type", "must be empty to be structural"),
    ("additionalProperties", "must be undefined to be structural"),
    ("default", "must be undefined to be structural"),
    ("title", "must be empty to be structural"),
    ("description", "must be empty to be structural"),
    ("nullable", "must be false to be structural"),
    ("x-kubernetes-preserve-unknown-fields", "must be false to be structural"),
    ("x-kubernetes-embedded-resource", "must be false to be structural"),
    ("x-kubernetes-int-or-string", "must be false to be structural"),
    ("x-kubernetes-list-map-keys", "must be empty to be structural"),
    ("x-kubernetes-list-type", "must be undefined to be structural"),
    ("x-kubernetes-map-type", "must be undefined to be structural"),
    ("x-kubernetes-validations", "must be empty to be structural"),
)


def _nested(v: Schema, skip_any_of: bool, level: str, path: str) -> list[Cause]:
    """A value validation under a junctor: no structure of its own."""
    causes = _value_validation(v, skip_any_of, False, level, path)
    if isinstance(v.get("items"), Mapping):
        causes += _nested(v["items"], False, level, f"{path}.items")
    for key, prop in _props(v).items():
        causes += _nested(prop, False, _FIELD, f"{path}.properties[{key}]")
    for key, detail in _NESTED_FORBIDDEN:
        if v.get(key) not in (None, False, "", [], {}) or (key == "default" and "default" in v):
            causes.append(forbidden(f"{path}.{key}", detail))
    if "metadata" in _props(v):
        causes.append(forbidden(f"{path}.properties[metadata]", "must not be specified in a nested context"))
    return causes


def _complete(v: Schema, s: Schema | None, s_path: str, v_path: str) -> list[Cause]:
    """Every field a value validation names must exist in the structure (``complete.go``)."""
    causes: list[Cause] = []
    junctors = [("not", [v["not"]] if isinstance(v.get("not"), Mapping) else [])]
    junctors += [(key, _list(v, key)) for key in ("allOf", "anyOf", "oneOf")]
    for key, nested_list in junctors:
        for i, nested in enumerate(nested_list):
            where = f"{v_path}.not" if key == "not" else f"{v_path}.{key}[{i}]"
            causes += _complete_nested(nested, s, s_path, where)
    return causes


def _complete_nested(v: Schema, s: Schema | None, s_path: str, v_path: str) -> list[Cause]:
    if s is None:
        return [required(s_path, f"because it is defined in {v_path}")]
    causes = _complete(v, s, s_path, v_path)
    if isinstance(v.get("items"), Mapping):
        element = s.get("items")
        causes += _complete_nested(
            v["items"],
            element if isinstance(element, Mapping) else None,
            f"{s_path}.items",
            f"{v_path}.items",
        )
    structure = _props(s)
    for key, prop in _props(v).items():
        if key not in structure:
            where = f"{v_path}.properties[{key}]"
            causes.append(required(f"{s_path}.properties[{key}]", f"because it is defined in {where}"))
        else:
            causes += _complete_nested(
                prop, structure[key], f"{s_path}.properties[{key}]", f"{v_path}.properties[{key}]"
            )
    return causes


def _defaults(s: Schema, path: str, *, root: bool = False) -> list[Cause]:
    """Each default validates against its schema and has no field pruning would drop."""
    causes: list[Cause] = []
    if "default" in s and not root:
        default = s["default"]
        found = values.to_causes(values.check(s, default), prefix=f"{path}.default")
        causes += found
        pruned = copy.deepcopy(default)
        prune(pruned, s, root=s.get("x-kubernetes-embedded-resource") is True)
        if not found and not values.json_equal(pruned, default):
            causes.append(invalid(f"{path}.default", _value(default), "must not have unknown fields"))
    if isinstance(s.get("items"), Mapping):
        causes += _defaults(s["items"], f"{path}.items")
    for key, prop in _props(s).items():
        if root and key in _META:
            continue  # forbidden anyway (pass 3)
        causes += _defaults(prop, f"{path}.properties[{key}]")
    if isinstance(s.get("additionalProperties"), Mapping):
        causes += _defaults(s["additionalProperties"], f"{path}.additionalProperties")
    return causes


def _value(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool)) or value is None else Shown(go_sharp_v(value))
