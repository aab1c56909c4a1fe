"""Server-side field validation: unknown and duplicate fields, per ``fieldValidation``.

``Strict`` rejects the request (400 BadRequest, "strict decoding error: ..."), ``Warn``
(the server's default) answers with ``Warning`` headers, ``Ignore`` does neither. Unknown
fields are found by walking the object along the kind's schema; duplicate keys need the
raw JSON, so the body is decoded a second time only when it is checked. A custom resource's
unknown fields are those its schema prunes (and ObjectMeta's unknown ones in ``metadata``).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import yaml

from k3py.api.crd import pruning
from k3py.api.crd.model import OBJECT_META
from k3py.api.resources import Resource
from k3py.api.schema import Node, Schemas

_META_ALWAYS = ("apiVersion", "kind", "metadata")


def unknown_fields(resource: Resource, obj: Any, *, drop: bool = False) -> list[str]:
    """Paths of fields the kind's schema does not have; with ``drop``, also remove them
    (as decoding into the typed object does upstream, so they are never stored)."""
    if resource.custom is not None:
        return _custom_unknown_fields(resource.custom.schema, obj, drop)
    node = Schemas.get().kind(resource.group, resource.version, resource.kind)
    if node is None or not isinstance(obj, dict):
        return []
    found: list[str] = []
    _walk(node, obj, "", found, drop)
    return found


def _custom_unknown_fields(schema: pruning.Schema | None, obj: Any, drop: bool) -> list[str]:
    if not isinstance(obj, dict):
        return []
    target = obj if drop else copy.deepcopy(obj)
    found: list[str] = []
    if isinstance(target.get("metadata"), dict):
        _walk(Schemas.get().node(OBJECT_META), target["metadata"], "metadata", found, drop=True)
    if schema is not None:
        found += pruning.prune(target, schema)
    return found


def _walk(node: Node, value: Any, path: str, found: list[str], drop: bool) -> None:
    if isinstance(value, dict):
        names = node.field_names
        values = node.values()
        if not names and values is None:
            return  # a free-form object (RawExtension, JSON): anything goes
        for key, child in list(value.items()):
            sub = f"{path}.{key}" if path else key
            if key in names:
                field = node.field(key)
                if field is not None:
                    _walk(field, child, sub, found, drop)
            elif values is not None:
                _walk(values, child, sub, found, drop)
            else:
                found.append(sub)
                if drop:
                    del value[key]
    elif isinstance(value, list):
        items = node.items()
        if items is not None:
            for i, child in enumerate(value):
                _walk(items, child, f"{path}[{i}]", found, drop)


class _Keys(dict[str, Any]):
    """A decoded JSON object that remembers the keys it held more than once."""

    repeated: list[str]


def duplicate_fields(raw: bytes) -> list[str]:
    """Paths (``spec.replicas``, ``spec.containers[0].name``) of keys that occur twice in one
    JSON object of ``raw``, as upstream's strict decoding names them (invalid JSON: none)."""

    def hook(pairs: list[tuple[str, Any]]) -> _Keys:
        seen: set[str] = set()
        obj = _Keys(pairs)
        obj.repeated = []
        for key, _ in pairs:
            if key in seen and key not in obj.repeated:
                obj.repeated.append(key)
            seen.add(key)
        return obj

    try:
        decoded = json.loads(raw, object_pairs_hook=hook)
    except ValueError:
        return []
    found: list[str] = []

    def walk(value: Any, path: str) -> None:
        if isinstance(value, _Keys):
            found.extend(f"{path}.{key}" if path else key for key in value.repeated)
            for key, child in value.items():
                walk(child, f"{path}.{key}" if path else key)
        elif isinstance(value, list):
            for i, child in enumerate(value):
                walk(child, f"{path}[{i}]")

    walk(decoded, "")
    return found


class _DuplicateKeys(yaml.SafeLoader):
    """A YAML loader that notes each key a mapping repeats, with its line (1-based)."""

    def __init__(self, stream: bytes) -> None:
        super().__init__(stream)
        self.duplicates: list[tuple[int, str]] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool):
                continue
            if key in seen:
                shown = json.dumps(key) if isinstance(key, str) else key
                line = key_node.start_mark.line + 1
                self.duplicates.append((line, f"line {line}: key {shown} already set in map"))
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def yaml_duplicates(raw: bytes) -> list[str]:
    """Keys a YAML document repeats in one mapping, as go-yaml's strict decoding reports them
    (``line 9: key "foo" already set in map``); none for YAML that does not parse."""
    loader = _DuplicateKeys(raw)
    try:
        loader.get_single_data()
    except yaml.YAMLError:
        return []
    finally:
        loader.dispose()
    return [message for _, message in sorted(loader.duplicates)]  # in document order


def problems(resource: Resource, obj: Any, raw: bytes | None) -> list[str]:
    """Unknown (then dropped from ``obj``) and duplicate fields, as messages."""
    messages = [f'unknown field "{path}"' for path in unknown_fields(resource, obj, drop=True)]
    if raw is not None:
        messages += [f'duplicate field "{key}"' for key in duplicate_fields(raw)]
    return messages
