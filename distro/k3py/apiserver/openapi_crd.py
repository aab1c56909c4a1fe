"""OpenAPI definitions of custom resources, as apiextensions-apiserver's OpenAPI builder makes them.

One definition per served version, named after the reversed group (``com.example.stable.v1.CronTab``
for ``stable.example.com/v1``), plus its list (``...CronTabList``). The version's schema is the
body; ``metadata`` refers to the bundled ObjectMeta, ``apiVersion`` and ``kind`` get TypeMeta's
descriptions, and ``x-kubernetes-group-version-kind`` names the kind, so :mod:`.openapi` finds
and documents custom resources exactly as it does built-ins. For OpenAPI v2 the schema is first
cut down as upstream's ``ToStructuralOpenAPIV2`` does (kubectl's v2 reader copes with neither
junctors nor nullable types), and a schema that keeps unknown fields at the root is only
``type: object``. The definitions use the bundled ``#/$defs/`` references; :func:`.openapi.convert`
rewrites them for each document.

Built-in definitions win a name clash: a CRD of group ``core.api.k8s.io`` would name its kind
``io.k8s.api.core.v1.Pod``, so its definitions are renamed ``io.k8s.api.core.v1.Pod_v2`` and
``io.k8s.api.core.v1.Pod_v2List`` (``_v3``... if those are taken too), as kube-openapi's aggregator
renames the clashing definitions of a merged spec.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Mapping
from typing import Any, Final

from k3py.api.resources import Resource
from k3py.api.schema import Schemas

log = logging.getLogger(__name__)

Obj = dict[str, Any]

_META: Final = "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1."
_DOCS: Final = "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md"


def definition_name(res: Resource) -> str:
    """``util.ToRESTFriendlyName`` of ``<group>/<version>.<Kind>``: the group reversed."""
    return ".".join([*reversed(res.group.split(".")), res.version, res.kind])


def definitions(resources: Iterable[Resource], *, v3: bool) -> dict[str, Obj]:
    """The definitions of the custom resources among ``resources``, none of them named as a
    bundled (built-in) definition or as another custom one."""
    taken = Schemas.get()
    out: dict[str, Obj] = {}
    for res in resources:
        if res.custom is None:
            continue
        name = base = definition_name(res)
        number = 1
        while any(n in taken or n in out for n in (name, f"{name}List")):
            number += 1
            name = f"{base}_v{number}"
        try:
            kind, listed = _kind(res, v3), _list(res, name)
        except Exception as exc:  # one unreadable schema must not take the whole document down
            log.error("No OpenAPI definition for %s/%s: %r", res.group_version, res.kind, exc)
            continue
        out[name] = kind
        out[f"{name}List"] = listed
    return out


_TYPE_META: Final = {
    "apiVersion": (
        "APIVersion defines the versioned schema of this representation of an object. Servers should convert "
        "recognized schemas to the latest internal value, and may reject unrecognized values. "
        f"More info: {_DOCS}#resources"
    ),
    "kind": (
        "Kind is a string value representing the REST resource this object represents. "
        "Servers may infer this from the endpoint the client submits requests to. "
        "Cannot be updated. In CamelCase. "
        f"More info: {_DOCS}#types-kinds"
    ),
}
"""TypeMeta's field documentation (its SwaggerDoc), as upstream gives it to every custom resource."""


def _type_meta() -> dict[str, Obj]:
    return {key: {"description": text, "type": "string"} for key, text in _TYPE_META.items()}


def _gvk(res: Resource, kind: str) -> list[Obj]:
    return [{"group": res.group, "kind": kind, "version": res.version}]


def _kind(res: Resource, v3: bool) -> Obj:
    assert res.custom is not None
    schema = res.custom.schema
    if schema is None or (not v3 and schema.get("x-kubernetes-preserve-unknown-fields") is True):
        body: Obj = {"type": "object"}
    else:
        body = copy.deepcopy(dict(schema))
        if not v3:
            body = to_v2(body)
        properties = dict(body.get("properties") or {})
        properties.update(_type_meta())
        properties["metadata"] = {
            "$ref": _META + "ObjectMeta",
            "description": f"Standard object's metadata. More info: {_DOCS}#metadata",
        }
        body["properties"] = properties
    body["x-kubernetes-group-version-kind"] = _gvk(res, res.kind)
    return body


def _list(res: Resource, name: str) -> Obj:
    properties: dict[str, Obj] = {
        **_type_meta(),
        "items": {
            "description": f"List of {res.plural}. More info: {_DOCS}",
            "items": {"$ref": f"#/$defs/{name}"},
            "type": "array",
        },
        "metadata": {
            "$ref": _META + "ListMeta",
            "description": f"Standard list metadata. More info: {_DOCS}#types-kinds",
        },
    }
    return {
        "description": f"{res.list_kind} is a list of {res.kind}",
        "properties": {key: properties[key] for key in ("apiVersion", "items", "kind", "metadata")},
        "required": ["items"],
        "type": "object",
        "x-kubernetes-group-version-kind": _gvk(res, res.list_kind),
    }


def to_v2(schema: Obj) -> Obj:
    """``ToStructuralOpenAPIV2``: no junctors; a nullable or unknown-preserving node loses its
    type (nullable), properties and items; an array without items loses its type; a nullable
    field is not required."""
    for key in ("allOf", "anyOf", "oneOf", "not"):
        schema.pop(key, None)
    if schema.get("nullable"):
        schema.pop("nullable")
        for key in ("type", "items", "properties"):
            schema.pop(key, None)
    if schema.get("x-kubernetes-preserve-unknown-fields") is True:
        schema.pop("items", None)
        schema.pop("properties", None)
    if schema.get("type") == "array" and not isinstance(schema.get("items"), Mapping):
        schema.pop("type")
    properties = schema.get("properties")
    if isinstance(properties, dict):
        nullable = {k for k, v in properties.items() if isinstance(v, Mapping) and v.get("nullable")}
        if nullable and isinstance(schema.get("required"), list):
            schema["required"] = [r for r in schema["required"] if r not in nullable] or None
            if schema["required"] is None:
                del schema["required"]
        schema["properties"] = {
            k: to_v2(dict(v)) if isinstance(v, Mapping) else v for k, v in properties.items()
        }
    extra = schema.get("additionalProperties")
    if isinstance(extra, Mapping):
        if extra.get("nullable"):
            schema.pop("required", None)
        schema["additionalProperties"] = to_v2(dict(extra))
    if isinstance(schema.get("items"), Mapping):
        schema["items"] = to_v2(dict(schema["items"]))
    return schema
