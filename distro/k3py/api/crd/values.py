"""Validation of a custom resource against its version's ``openAPIV3Schema``, with upstream's messages.

A port of kube-openapi's ``validate.SchemaValidator`` (the go-openapi validator kube-apiserver
vendors) over the schema as apiextensions-apiserver converts it (``x-kubernetes-int-or-string``
becomes ``type: [integer, string]``; formats outside its supported list are dropped), then of
``kubeOpenAPIResultToFieldErrors``, which turns each kube-openapi error into a field error::

    spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"
    spec.size: Unsupported value: "XL": supported values: "S", "M", "L"
    spec.cronSpec: Required value

Each schema node runs kube-openapi's validators in its order -- type, ``allOf``/``anyOf``/
``oneOf``/``not``, string, format, number, array, ``enum``, object -- each only for the kinds of
value it applies to, so a wrong type is reported once and does not also fail ``minimum``. Paths
are kube-openapi's (``spec.items[0].name``; a required field of the root is ``.spec`` in the
message and ``spec`` as the field). Go map iteration is random upstream; here properties are
checked in the schema's order.

On update, errors on values the update did not change are dropped (CRD validation ratcheting,
on by default since 1.30), so an object stored under an older schema can still be edited.

``x-kubernetes-validations`` (CEL) rules are not evaluated: k3py carries no CEL interpreter, so
they refuse nothing.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from k3py.api.crd import formats
from k3py.api.crd.goformat import go_field_value, go_float, go_v
from k3py.api.crd.pruning import Schema, additional, items, properties
from k3py.api.selectors import go_quote
from k3py.api.validation import Cause

_IN: Final = "body"


@dataclass(frozen=True, slots=True)
class OpenAPIError:
    """One kube-openapi error: its code, the path it names and the value it carries."""

    code: str  # type, required, enum, too_long, max_items, max_properties, composite, other
    name: str
    value: Any
    message: str
    values: tuple[Any, ...] = ()
    limit: int = -1


# -- the validators ---------------------------------------------------------------------------


def check(schema: Schema, data: Any, path: str = "") -> list[OpenAPIError]:
    """kube-openapi's SchemaValidator.Validate for one node."""
    types = _types(schema)
    fmt = formats.supported(schema.get("format"))
    if data is None:
        return _type(types, bool(schema.get("nullable")), fmt, path, None) + _enum(schema, None, path)
    errors = _type(types, bool(schema.get("nullable")), fmt, path, data)
    errors += _junctors(schema, data, path)
    if isinstance(data, str):
        errors += _string(schema, data, path)
        if fmt and not formats.valid(fmt, data):
            errors.append(_invalid_type(path, str(schema.get("format")), data))
    if _is_number(data):
        errors += _number(schema, data, path)
    if isinstance(data, list):
        errors += _array(schema, data, path)
    errors += _enum(schema, data, path)
    if isinstance(data, dict):
        errors += _object(schema, data, path)
    return errors


def _types(schema: Schema) -> list[str]:
    if schema.get("x-kubernetes-int-or-string"):
        return ["integer", "string"]
    declared = schema.get("type")
    return [declared] if isinstance(declared, str) and declared else []


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _kind(value: Any) -> tuple[str, str]:
    """The JSON type and go-openapi format kube-openapi infers for a decoded value."""
    if isinstance(value, bool):
        return "boolean", ""
    if isinstance(value, int):
        return "integer", "int64"
    if isinstance(value, float):
        return "number", "float64"
    if isinstance(value, str):
        return "string", ""
    if isinstance(value, list):
        return "array", ""
    return "object", ""


def _invalid_type(path: str, type_name: str, value: str) -> OpenAPIError:
    return OpenAPIError(
        "type", path, value, f"{path} in {_IN} must be of type {type_name}: {go_quote(value)}"
    )


def _type(types: list[str], nullable: bool, fmt: str, path: str, data: Any) -> list[OpenAPIError]:
    if data is None:
        if types and "null" not in types and not nullable:
            return [_invalid_type(path, ",".join(types), "null")]
        return []
    if not types and not fmt:
        return []
    kind, kind_format = _kind(data)
    float_int = kind == "number" and float(data).is_integer() and "integer" in types
    int_float = kind == "integer" and "number" in types
    text_or_list = isinstance(data, (str, list))
    if not text_or_list and fmt and not (kind in types or kind_format == fmt or float_int or int_float):
        return [_invalid_type(path, fmt, kind_format)]
    if not ("number" in types or "integer" in types) and fmt and text_or_list:
        return []
    if not (kind in types or float_int or int_float):
        return [_invalid_type(path, ",".join(types), kind)]
    return []


def _junctors(schema: Schema, data: Any, path: str) -> list[OpenAPIError]:
    errors: list[OpenAPIError] = []
    any_of = _schemas(schema.get("anyOf"))
    if any_of:
        results = [check(s, data, path) for s in any_of]
        if all(results):
            errors.append(_composite(f"{go_quote(path)} must validate at least one schema (anyOf)"))
            errors += _best(results)
    one_of = _schemas(schema.get("oneOf"))
    if one_of:
        results = [check(s, data, path) for s in one_of]
        valid = sum(1 for r in results if not r)
        if valid != 1:
            found = "Found none valid" if valid == 0 else f"Found {valid} valid alternatives"
            errors.append(
                _composite(f"{go_quote(path)} must validate one and only one schema (oneOf). {found}")
            )
            if valid == 0:
                errors += _best(results)
    all_of = _schemas(schema.get("allOf"))
    if all_of:
        results = [check(s, data, path) for s in all_of]
        for result in results:
            errors += result
        valid = sum(1 for r in results if not r)
        if valid != len(all_of):
            suffix = ". None validated" if valid == 0 else ""
            errors.append(_composite(f"{go_quote(path)} must validate all the schemas (allOf){suffix}"))
    negated = schema.get("not")
    if isinstance(negated, Mapping) and not check(negated, data, path):
        errors.append(_composite(f"{go_quote(path)} must not validate the schema (not)"))
    return errors


def _best(results: list[list[OpenAPIError]]) -> list[OpenAPIError]:
    """The failed alternative to report: kube-openapi keeps the one with the most passing checks;
    here, the one with the fewest errors (the first on a tie)."""
    return min(results, key=lambda errors: len(errors))


def _schemas(value: Any) -> list[Schema]:
    return [s for s in value if isinstance(s, Mapping)] if isinstance(value, list) else []


def _composite(message: str) -> OpenAPIError:
    return OpenAPIError("composite", "", None, message)


def _string(schema: Schema, data: str, path: str) -> list[OpenAPIError]:
    """Length (in characters, as Go counts runes) and pattern; the first failure only."""
    length = len(data)
    if (limit := _int(schema.get("maxLength"))) is not None and length > limit:
        message = f"{path} in {_IN} should be at most {limit} chars long"
        return [OpenAPIError("too_long", path, data, message, limit=limit)]
    if (limit := _int(schema.get("minLength"))) is not None and length < limit:
        return [OpenAPIError("other", path, data, f"{path} in {_IN} should be at least {limit} chars long")]
    pattern = schema.get("pattern")
    if isinstance(pattern, str) and pattern:
        compiled = _regex(pattern)
        if compiled is None or not compiled.search(data):
            shown = pattern if compiled is not None else f"{pattern}, but pattern is invalid"
            return [OpenAPIError("other", path, data, f"{path} in {_IN} should match '{shown}'")]
    return []


@functools.lru_cache(maxsize=512)
def _regex(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None


def _number(schema: Schema, data: int | float, path: str) -> list[OpenAPIError]:
    """multipleOf, minimum, maximum, compared in the value's own type as kube-openapi does."""
    errors: list[OpenAPIError] = []
    whole = isinstance(data, int)
    factor = _float(schema.get("multipleOf"))
    if factor is not None:
        limit: int | float = math.trunc(factor) if whole else factor
        if limit < 0:
            errors.append(
                OpenAPIError(
                    "other",
                    path,
                    limit,
                    f"factor MultipleOf declared for {path} must be positive: {go_v(limit)}",
                )
            )
        elif limit and not _multiple(data, limit):
            errors.append(
                OpenAPIError("other", path, data, f"{path} in {_IN} should be a multiple of {go_v(limit)}")
            )
    for key, exclusive_key, above in (
        ("minimum", "exclusiveMinimum", False),
        ("maximum", "exclusiveMaximum", True),
    ):
        bound = _float(schema.get(key))
        if bound is None:
            continue
        limit = math.trunc(bound) if whole else bound
        exclusive = schema.get(exclusive_key) is True
        if above:
            failed = data >= limit if exclusive else data > limit
            wording = "less than" if exclusive else "less than or equal to"
        else:
            failed = data <= limit if exclusive else data < limit
            wording = "greater than" if exclusive else "greater than or equal to"
        if failed:
            shown = str(limit) if isinstance(limit, int) else go_float(limit)
            errors.append(OpenAPIError("other", path, data, f"{path} in {_IN} should be {wording} {shown}"))
    return errors


def _multiple(data: int | float, factor: int | float) -> bool:
    if isinstance(data, int) and isinstance(factor, int):
        return data % factor == 0
    ratio = (1 / factor * data) if factor < 1 else (data / factor)
    return math.isfinite(ratio) and abs(ratio - round(ratio)) <= 1e-9 * max(1.0, abs(ratio))


def _array(schema: Schema, data: list[Any], path: str) -> list[OpenAPIError]:
    errors: list[OpenAPIError] = []
    element = items(schema)
    if element is not None:
        for i, item in enumerate(data):
            errors += check(element, item, f"{path}[{i}]")
    size = len(data)
    if (limit := _int(schema.get("minItems"))) is not None and size < limit:
        errors.append(
            OpenAPIError("other", path, size, f"{path} in {_IN} should have at least {limit} items")
        )
    if (limit := _int(schema.get("maxItems"))) is not None and size > limit:
        message = f"{path} in {_IN} should have at most {limit} items"
        errors.append(OpenAPIError("max_items", path, size, message, limit=limit))
    if schema.get("uniqueItems") is True and any(
        json_equal(a, b) for i, a in enumerate(data) for b in data[i + 1 :]
    ):
        errors.append(OpenAPIError("other", path, None, f"{path} in {_IN} shouldn't contain duplicates"))
    return errors


def _enum(schema: Schema, data: Any, path: str) -> list[OpenAPIError]:
    allowed = schema.get("enum")
    if not isinstance(allowed, list) or not allowed:
        return []
    if any(json_equal(data, option) for option in allowed):
        return []
    message = f"{path} in {_IN} should be one of [{' '.join(go_v(v) for v in allowed)}]"
    return [OpenAPIError("enum", path, data, message, values=tuple(allowed))]


def _object(schema: Schema, data: dict[str, Any], path: str) -> list[OpenAPIError]:
    count = len(data)
    if (limit := _int(schema.get("minProperties"))) is not None and count < limit:
        return [
            OpenAPIError("other", path, limit, f"{path} in {_IN} should have at least {limit} properties")
        ]
    if (limit := _int(schema.get("maxProperties"))) is not None and count > limit:
        message = f"{path} in {_IN} should have at most {limit} properties"
        return [OpenAPIError("max_properties", path, count, message, limit=limit)]
    errors: list[OpenAPIError] = []
    props = properties(schema)
    if schema.get("additionalProperties") is False:
        for key in data:
            if key not in props:
                message = f"{path}.{key} in {_IN} is a forbidden property"
                errors.append(OpenAPIError("other", path, key, message))
    elif (values := additional(schema)) is not None:
        for key, value in data.items():
            if key not in props:
                errors += check(values, value, f"{path}.{key}")
    for key, prop in props.items():
        if key in data and isinstance(prop, Mapping):
            errors += check(prop, data[key], f"{path}.{key}" if path else key)
    for key in schema.get("required") or ():
        if key not in data:
            errors.append(
                OpenAPIError("required", f"{path}.{key}", None, f"{path}.{key} in {_IN} is required")
            )
    return errors


def _int(value: Any) -> int | None:
    return int(value) if _is_number(value) else None


def _float(value: Any) -> float | None:
    return float(value) if _is_number(value) else None


def json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values where ``true`` is not ``1`` (Go keeps bool and numbers apart)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    return type(a) is type(b) and bool(a == b)


# -- kube-openapi errors as field errors ------------------------------------------------------


def to_causes(errors: Sequence[OpenAPIError], prefix: str = "") -> list[Cause]:
    """``kubeOpenAPIResultToFieldErrors``: reasons and messages as kubectl prints them. Fields are
    under ``prefix`` (upstream's ``fldPath``; without one, an error of the root is ``<nil>``)."""
    causes: list[Cause] = []
    root = prefix or "<nil>"
    for error in errors:
        if error.code == "composite":
            causes.append(Cause("FieldValueInvalid", f'Invalid value: "": {error.message}', root))
            continue
        name = error.name.removeprefix(".") if error.name != "." else ""
        field = (f"{prefix}.{name}" if prefix else name) if name else root
        if error.code == "required":
            causes.append(Cause("FieldValueRequired", "Required value", field))
        elif error.code == "enum":
            supported = ", ".join(go_quote(_enum_text(v)) for v in error.values)
            message = f"Unsupported value: {go_field_value(error.value)}: supported values: {supported}"
            causes.append(Cause("FieldValueNotSupported", message, field))
        elif error.code == "too_long":
            causes.append(
                Cause("FieldValueTooLong", f"Too long: may not be more than {error.limit} bytes", field)
            )
        elif error.code in ("max_items", "max_properties"):
            message = f"Too many: {error.value}: must have at most {error.limit} items"
            causes.append(Cause("FieldValueTooMany", message, field))
        else:
            reason = "FieldValueTypeInvalid" if error.code == "type" else "FieldValueInvalid"
            shown = go_field_value(error.value if error.value is not None else "")
            causes.append(Cause(reason, f"Invalid value: {shown}: {error.message}", field))
    return causes


def _enum_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return orjson.dumps(value).decode()


# -- the whole object, with ratcheting --------------------------------------------------------


def validate(schema: Schema, obj: Any, old: Any = None) -> list[Cause]:
    """Field errors of ``obj`` under ``schema``; with ``old`` (an update), errors on values the
    update left unchanged are dropped."""
    causes = to_causes(check(schema, obj))
    if old is None:
        return causes
    return [c for c in causes if not _unchanged(c, obj, old)]


_MISSING: Final = object()


def _unchanged(cause: Cause, new: Any, old: Any) -> bool:
    if cause.field == "<nil>":
        return False
    path = cause.field
    if cause.reason == "FieldValueRequired":  # the object lacking the field must be unchanged
        path = path.rpartition(".")[0]
    if "[" in path:  # list items are not correlated across an update: the whole list must be unchanged
        path = path.partition("[")[0]
    new_value, old_value = _at(new, path), _at(old, path)
    return new_value is not _MISSING and old_value is not _MISSING and json_equal(new_value, old_value)


_SEGMENT: Final = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _at(value: Any, path: str) -> Any:
    """The value at a field path such as ``spec.items[2].name`` ('' is the whole object)."""
    for key, index in _SEGMENT.findall(path):
        if key:
            if not isinstance(value, dict) or key not in value:
                return _MISSING
            value = value[key]
        else:
            if not isinstance(value, list) or int(index) >= len(value):
                return _MISSING
            value = value[int(index)]
    return value
