"""What a custom resource must satisfy beyond its schema's value checks.

The rest of upstream's ``customResourceStrategy.Validate``:

- ``x-kubernetes-list-type: set`` lists hold no item twice and ``map`` lists no key twice
  (``listtype.ValidateListSetsAndMaps``);
- every ``x-kubernetes-embedded-resource`` object has a string ``apiVersion`` and ``kind`` and a
  well-formed ``metadata`` (``objectmeta.Validate``);
- with the scale subresource, the replica counts at ``specReplicasPath`` and
  ``statusReplicasPath`` are non-negative int32s and ``labelSelectorPath`` holds a string
  (``ValidateScaleSpec``/``ValidateScaleStatus``).

Field paths are ``field.Path`` strings: ``spec.ports[2]``, ``spec.templates[web].kind``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

import orjson

from k3py.api import objects
from k3py.api.crd.goformat import go_sharp_v, go_type, go_v
from k3py.api.crd.pruning import Schema, additional, embedded, items, properties
from k3py.api.validation import Cause, Shown, dns1035_errors, duplicate, invalid, required

MAX_INT32: Final = 2**31 - 1
_GROUP_VERSION: Final = re.compile(r"[^/]+(/[^/]+)?")


def list_duplicates(value: Any, schema: Schema | None, path: str = "") -> list[Cause]:
    """Items a ``set`` list holds twice and keys a ``map`` list holds twice."""
    causes: list[Cause] = []
    if schema is None:
        return causes
    if isinstance(value, dict):
        props, values = properties(schema), additional(schema)
        for key, item in value.items():
            if key in props and isinstance(props[key], Mapping):
                causes += list_duplicates(item, props[key], f"{path}.{key}" if path else key)
            elif values is not None:
                causes += list_duplicates(item, values, f"{path}[{key}]")
    elif isinstance(value, list):
        list_type = schema.get("x-kubernetes-list-type")
        if list_type == "set":
            for i in _repeats(value):
                causes.append(duplicate(f"{path}[{i}]", _shown(value[i])))
        elif list_type == "map":
            causes += _map_keys(value, schema, path)
        element = items(schema)
        for i, item in enumerate(value):
            causes += list_duplicates(item, element, f"{path}[{i}]")
    return causes


def _map_keys(value: list[Any], schema: Schema, path: str) -> list[Cause]:
    keys = [k for k in schema.get("x-kubernetes-list-map-keys") or () if isinstance(k, str)]
    element = items(schema)
    defaults = {
        k: p["default"] for k, p in properties(element).items() if isinstance(p, Mapping) and "default" in p
    }
    found = {
        i: {k: item[k] if k in item else defaults[k] for k in keys if k in item or k in defaults}
        for i, item in enumerate(value)
        if isinstance(item, dict)
    }
    positions = list(found)
    return [
        duplicate(f"{path}[{positions[j]}]", _shown(found[positions[j]]))
        for j in _repeats(list(found.values()))
    ]


def _repeats(values: list[Any]) -> list[int]:
    """``validateListSet``: the index where each value that occurs more than once occurs the
    second time, in one pass (a canonical form of each value in a dict)."""
    seen: dict[bytes | str, int] = {}
    repeats: list[int] = []
    for i, value in enumerate(values):
        identity = _identity(value)
        times = seen.get(identity, 0)
        if times == 1:
            repeats.append(i)
        seen[identity] = times + 1
    return repeats


def _identity(value: Any) -> bytes | str:
    """The same for JSON values that are equal as upstream compares them (objects whatever their
    keys' order), different for ``true``, ``1`` and ``1.0``."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits (from YAML): repr tells them apart
        return repr(value)


def _shown(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool)) or value is None else Shown(go_sharp_v(value))


def embedded_resources(value: Any, schema: Schema | None, path: str = "") -> list[Cause]:
    """TypeMeta and ObjectMeta of every embedded resource below the root."""
    causes: list[Cause] = []
    if schema is None:
        return causes
    if isinstance(value, dict):
        if embedded(schema) and path:
            causes += _embedded(value, path)
        props, values = properties(schema), additional(schema)
        for key, item in value.items():
            if key in props and isinstance(props[key], Mapping):
                causes += embedded_resources(item, props[key], f"{path}.{key}" if path else key)
            elif values is not None:
                causes += embedded_resources(item, values, f"{path}[{key}]")
    elif isinstance(value, list):
        element = items(schema)
        for i, item in enumerate(value):
            causes += embedded_resources(item, element, f"{path}[{i}]")
    return causes


def _embedded(obj: dict[str, Any], path: str) -> list[Cause]:
    causes = [required(f"{path}.{key}", "") for key in ("apiVersion", "kind") if key not in obj]
    api_version, kind, meta = obj.get("apiVersion"), obj.get("kind"), obj.get("metadata")
    if "apiVersion" in obj:
        if not isinstance(api_version, str):
            causes.append(invalid(f"{path}.apiVersion", api_version, "must be a string"))
        elif not api_version:
            causes.append(invalid(f"{path}.apiVersion", api_version, "must not be empty"))
        elif _GROUP_VERSION.fullmatch(api_version) is None:
            causes.append(
                invalid(f"{path}.apiVersion", api_version, f"unexpected GroupVersion string: {api_version}")
            )
    if "kind" in obj:
        if not isinstance(kind, str):
            causes.append(invalid(f"{path}.kind", kind, "must be a string"))
        elif not kind:
            causes.append(invalid(f"{path}.kind", kind, "must not be empty"))
        elif errors := dns1035_errors(kind.lower()):
            detail = "may have mixed case, but should otherwise match: " + ",".join(errors)
            causes.append(invalid(f"{path}.kind", kind, detail))
    if "metadata" in obj:
        if not isinstance(meta, dict):
            causes.append(invalid(f"{path}.metadata", _shown(meta), "must be an object"))
        elif isinstance(meta.get("name"), str) and meta["name"]:
            for message in objects.path_segment_errors(meta["name"]):
                causes.append(invalid(f"{path}.metadata.name", meta["name"], message))
    return causes


def scale_replicas(obj: Any, path: str) -> list[Cause]:
    """A replica count at ``path`` (``.spec.replicas``): absent, or an int64 in 0..MaxInt32."""
    value, error = nested(obj, path, int, "int64")
    if error:
        return [invalid(path, 0, error)]
    if value is None:
        return []
    assert isinstance(value, int)
    if value < 0:
        return [invalid(path, value, "should be a non-negative integer")]
    if value > MAX_INT32:
        return [invalid(path, value, f"should be less than or equal to {MAX_INT32}")]
    return []


def scale_selector(obj: Any, path: str) -> list[Cause]:
    _, error = nested(obj, path, str, "string")
    return [invalid(path, "", error)] if error else []


def nested(obj: Any, path: str, kind: type, type_name: str) -> tuple[Any, str]:
    """``unstructured.Nested<Type>``: the value at a simple ``.a.b`` path, or the accessor error."""
    fields = [f for f in path.split(".") if f]
    value = obj
    for depth, name in enumerate(fields):
        if not isinstance(value, dict):
            shown = "." + ".".join(fields[:depth])
            return (
                None,
                f"{shown} accessor error: {go_v(value)} is of the type {go_type(value)}, "
                "expected map[string]interface{}",
            )
        if name not in value:
            return None, ""
        value = value[name]
    if value is None:
        return None, ""
    if not isinstance(value, kind) or isinstance(value, bool):
        shown = "." + ".".join(fields)
        return (
            None,
            f"{shown} accessor error: {go_v(value)} is of the type {go_type(value)}, expected {type_name}",
        )
    return value, ""
