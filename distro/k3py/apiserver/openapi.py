"""OpenAPI documents: v3 (an index and one document per group-version) and v2 (one document).

The schemas come from the bundled Kubernetes 1.37 definitions (``k3py.api.schema``),
rewritten in kube-apiserver's OpenAPI dialect; the paths come from the resource registry.
kubectl reads them for ``explain`` and to learn that the server validates fields itself
(the ``fieldValidation`` query parameter on each PATCH operation).
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any

import orjson

from k3py import KUBERNETES_VERSION
from k3py.api.resources import Registry, Resource
from k3py.api.schema import Schemas
from k3py.apiserver import openapi_crd
from k3py.apiserver.discovery import SUBRESOURCES

Obj = dict[str, Any]

V3_REF = "#/components/schemas/"
V2_REF = "#/definitions/"
_DEFS = "#/$defs/"

_QUERY = {
    "dryRun": "When present, indicates that modifications should not be persisted. Valid value: All.",
    "fieldManager": "fieldManager is a name associated with the actor or entity making these changes.",
    "fieldValidation": (
        "fieldValidation instructs the server on how to handle objects in the request containing unknown or "
        "duplicate fields. Valid values are: Ignore, Warn (the default), Strict."
    ),
    "force": 'Force is going to "force" Apply requests. It must be false for non-apply patch requests.',
    "pretty": "If 'true', then the output is pretty printed.",
    "labelSelector": "A selector to restrict the list of returned objects by their labels.",
    "fieldSelector": "A selector to restrict the list of returned objects by their fields.",
    "limit": "limit is a maximum number of responses to return for a list call.",
    "continue": "The continue option should be set when retrieving more results from the server.",
    "resourceVersion": "resourceVersion constrains which resource versions a request is served from.",
    "resourceVersionMatch": "resourceVersionMatch determines how resourceVersion is applied to list calls.",
    "watch": "Watch for changes to the described resources and return them as a stream of notifications.",
    "allowWatchBookmarks": 'allowWatchBookmarks requests watch events with type "BOOKMARK".',
    "sendInitialEvents": "sendInitialEvents=true may be set together with watch=true.",
    "timeoutSeconds": "Timeout for the list/watch call.",
    "gracePeriodSeconds": "The duration in seconds before the object should be deleted.",
    "propagationPolicy": "Whether and how garbage collection will be performed.",
}
_TYPES = {"limit": "integer", "timeoutSeconds": "integer", "gracePeriodSeconds": "integer",
          "watch": "boolean", "allowWatchBookmarks": "boolean", "sendInitialEvents": "boolean",
          "force": "boolean"}  # fmt: skip
_WRITE = ["dryRun", "fieldManager", "fieldValidation"]
_LIST = ["allowWatchBookmarks", "continue", "fieldSelector", "labelSelector", "limit", "resourceVersion",
         "resourceVersionMatch", "sendInitialEvents", "timeoutSeconds", "watch"]  # fmt: skip
_PATCH_TYPES = [
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
]


def _query(name: str, v3: bool) -> Obj:
    kind = _TYPES.get(name, "string")
    param: Obj = {"name": name, "in": "query", "description": _QUERY[name], "uniqueItems": True}
    if v3:
        param["schema"] = {"type": kind, "uniqueItems": True}
    else:
        param["type"] = kind
    return param


def _path_param(name: str, v3: bool) -> Obj:
    description = {
        "name": "name of the resource",
        "namespace": "object name and auth scope, such as for teams and projects",
    }[name]
    param: Obj = {"name": name, "in": "path", "required": True, "description": description}
    if v3:
        param["schema"] = {"type": "string", "uniqueItems": True}
    else:
        param["type"] = "string"
    return param


def convert(schema: Any, ref_prefix: str) -> Any:
    """The bundled JSON-schema dialect rewritten as kube-apiserver's OpenAPI."""
    if isinstance(schema, list):
        return [convert(item, ref_prefix) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: Obj = {}
    for key, value in schema.items():
        if key == "$ref":
            out["$ref"] = ref_prefix + str(value).removeprefix(_DEFS)
        elif key == "type" and isinstance(value, list):
            kinds = [v for v in value if v != "null"]
            out["type"] = kinds[0] if kinds else "object"
        elif key == "oneOf" and _one_of_types(value) == {"string", "integer"}:
            out["type"] = "string"
            out["format"] = "int-or-string"
            if ref_prefix == V3_REF:
                out["x-kubernetes-int-or-string"] = True
        elif key == "oneOf" and _one_of_types(value) == {"string", "number"}:
            out["type"] = "string"  # resource.Quantity: kube-apiserver documents it as a string
        elif key == "properties" and isinstance(value, dict):
            out["properties"] = {name: _property(prop, ref_prefix) for name, prop in value.items()}
        else:
            out[key] = convert(value, ref_prefix)
    return out


def _one_of_types(value: Any) -> set[str]:
    """The non-null types of a two-way ``oneOf`` of plain types (int-or-string, Quantity), else none."""
    if not isinstance(value, list) or len(value) != 2:
        return set()
    kinds = {
        tuple(v.get("type", ())) if isinstance(v.get("type"), list) else (v.get("type"),)
        for v in value
        if isinstance(v, dict)
    }
    return {k for t in kinds for k in t if k != "null"}


def _property(prop: Any, ref_prefix: str) -> Any:
    converted = convert(prop, ref_prefix)
    if not isinstance(converted, dict):
        return converted
    if "enum" in converted and isinstance(prop, dict) and _gvk_enum(prop):
        converted.pop("enum")
    if ref_prefix == V3_REF and "$ref" in converted and len(converted) > 1:
        ref = converted.pop("$ref")
        converted["allOf"] = [{"$ref": ref}]
    return converted


def _gvk_enum(prop: Obj) -> bool:
    """apiVersion/kind enums are added by the bundled schemas; upstream's documents have none."""
    description = str(prop.get("description", ""))
    return description.startswith(("APIVersion defines", "Kind is a string value"))


def _references(schema: Any, found: set[str]) -> None:
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith(_DEFS):
            found.add(ref.removeprefix(_DEFS))
        for value in schema.values():
            _references(value, found)
    elif isinstance(schema, list):
        for value in schema:
            _references(value, found)


def _closure(schemas: Schemas, roots: list[str]) -> list[str]:
    seen: set[str] = set()
    todo = [r for r in roots if r in schemas]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        refs: set[str] = set()
        _references(schemas.definition(name), refs)
        todo.extend(r for r in refs if r not in seen and r in schemas)
    return sorted(seen)


def _definition_name(schemas: Schemas, res: Resource) -> str | None:
    node = schemas.kind(res.group, res.version, res.kind)
    return node.name if node is not None else None


_COMMON = [
    "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
    "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
    "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent",
    "io.k8s.apimachinery.pkg.apis.meta.v1.Patch",
    "io.k8s.api.autoscaling.v1.Scale",
]


def _operation(
    res: Resource, action: str, ref: str | None, params: list[Obj], v3: bool, *, patch: bool = False
) -> Obj:
    op: Obj = {
        "tags": [res.group_version.replace("/", "_").replace(".", "")],
        "operationId": f"{action}{res.kind}",
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": res.group, "version": res.version, "kind": res.kind},
    }
    if params:
        op["parameters"] = params
    target = {"$ref": (V3_REF if v3 else V2_REF) + ref} if ref else {"type": "object"}
    # Custom resources have no strategic merge patch.
    patch_types = [t for t in _PATCH_TYPES if res.custom is None or "strategic" not in t]
    if v3:
        op["responses"] = {"200": {"description": "OK", "content": {"application/json": {"schema": target}}}}
        if patch:
            op["requestBody"] = {
                "content": {
                    t: {"schema": {"$ref": V3_REF + "io.k8s.apimachinery.pkg.apis.meta.v1.Patch"}}
                    for t in patch_types
                },
                "required": True,
            }
    else:
        op["responses"] = {"200": {"description": "OK", "schema": target}}
        op["consumes"] = patch_types if patch else ["*/*"]
        op["produces"] = ["application/json", "application/yaml"]
    return op


def _paths(res: Resource, ref: str | None, v3: bool) -> dict[str, Obj]:
    base = "/api/v1" if not res.group else f"/apis/{res.group}/{res.version}"
    scope = f"{base}/namespaces/{{namespace}}/{res.plural}" if res.namespaced else f"{base}/{res.plural}"
    common = [_path_param("namespace", v3)] if res.namespaced else []
    q = functools.partial(_query, v3=v3)
    item_params = [*common, _path_param("name", v3), q("pretty")]
    list_ref = (ref + "List") if ref else None
    paths: dict[str, Obj] = {
        scope: {
            "parameters": [*common, q("pretty")],
            "get": _operation(res, "list", list_ref, [q(n) for n in _LIST], v3),
            "post": _operation(res, "post", ref, [q(n) for n in _WRITE], v3),
            "delete": _operation(
                res,
                "deletecollection",
                "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
                [q(n) for n in (*_LIST, "dryRun", "gracePeriodSeconds", "propagationPolicy")],
                v3,
            ),
        },
        f"{scope}/{{name}}": {
            "parameters": item_params,
            "get": _operation(res, "get", ref, [], v3),
            "put": _operation(res, "put", ref, [q(n) for n in _WRITE], v3),
            "patch": _operation(res, "patch", ref, [q(n) for n in (*_WRITE, "force")], v3, patch=True),
            "delete": _operation(
                res,
                "delete",
                "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
                [q(n) for n in ("dryRun", "gracePeriodSeconds", "propagationPolicy")],
                v3,
            ),
        },
    }
    # Only the operations the resource has (namespaces have no deletecollection).
    verbs = set(res.verbs)
    for path, method, verb in (
        (scope, "get", "list"),
        (scope, "post", "create"),
        (scope, "delete", "deletecollection"),
        (f"{scope}/{{name}}", "get", "get"),
        (f"{scope}/{{name}}", "put", "update"),
        (f"{scope}/{{name}}", "patch", "patch"),
        (f"{scope}/{{name}}", "delete", "delete"),
    ):
        if verb not in verbs:
            del paths[path][method]
    for sub in res.subresources:
        sub_ref = subresource_definition(sub) or ref
        item: Obj = {"parameters": item_params}
        for verb in SUBRESOURCES[sub].verbs:
            method, names = _SUBRESOURCE_OPERATIONS[verb]
            item[method] = _operation(res, method, sub_ref, [q(n) for n in names], v3, patch=verb == "patch")
        paths[f"{scope}/{{name}}/{sub}"] = item
    # A path whose resource has none of its operations (the create-only reviews) is not listed.
    return {path: item for path, item in paths.items() if set(item) - {"parameters"}}


_SUBRESOURCE_OPERATIONS = {
    "get": ("get", ()),
    "update": ("put", _WRITE),
    "patch": ("patch", (*_WRITE, "force")),
    "create": ("post", _WRITE),
}


def subresource_definition(sub: str) -> str | None:
    """The OpenAPI definition a subresource reads and writes; None for the resource's own."""
    served = SUBRESOURCES[sub]
    if not served.kind:
        return None
    return f"io.k8s.api.{served.group.split('.')[0]}.{served.version}.{served.kind}"


class OpenAPI:
    """Builds each document once, on first request, and keeps its bytes and hash.

    When the registry's custom resources change (a CRD is served, changed or removed), the v2
    document and the v3 documents of the group-versions holding custom resources, before or
    after, are built again on their next request.
    """

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._v3: dict[str, tuple[bytes, str]] = {}
        self._v2: bytes | None = None
        self._revision = registry.revision
        self._custom_keys: set[str] = set()

    def _refresh(self) -> None:
        if self._revision == self.registry.revision:
            return
        self._revision = self.registry.revision
        custom = {self.path_of(r.group, r.version) for r in self.registry.custom()}
        stale = custom | self._custom_keys
        self._v3 = {key: doc for key, doc in self._v3.items() if key not in stale}
        self._custom_keys = custom
        self._v2 = None

    @staticmethod
    def path_of(group: str, version: str) -> str:
        return f"api/{version}" if not group else f"apis/{group}/{version}"

    def group_versions(self) -> list[tuple[str, str]]:
        self._refresh()
        return [(g, v) for g in self.registry.groups() for v in self.registry.versions(g)]

    def v3_document(self, group: str, version: str) -> tuple[bytes, str]:
        self._refresh()
        key = self.path_of(group, version)
        cached = self._v3.get(key)
        if cached is None:
            body = orjson.dumps(self._build_v3(group, version), option=orjson.OPT_SORT_KEYS)
            cached = self._v3[key] = (body, hashlib.sha512(body).hexdigest().upper())
        return cached

    def v3_index(self) -> Obj:
        paths: Obj = {}
        for group, version in self.group_versions():
            _, digest = self.v3_document(group, version)
            key = self.path_of(group, version)
            paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={digest}"}
        return {"paths": paths}

    def v2_document(self) -> bytes:
        self._refresh()
        if self._v2 is None:
            self._v2 = orjson.dumps(self._build_v2(), option=orjson.OPT_SORT_KEYS)
        return self._v2

    def _build_v3(self, group: str, version: str) -> Obj:
        paths, schemas = _paths_and_schemas(self.registry.in_version(group, version), v3=True)
        return {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": f"v{KUBERNETES_VERSION}"},
            "paths": paths,
            "components": {"schemas": schemas},
        }

    def _build_v2(self) -> Obj:
        paths, definitions = _paths_and_schemas(list(self.registry), v3=False)
        return {
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": f"v{KUBERNETES_VERSION}"},
            "paths": paths,
            "definitions": definitions,
        }


def _paths_and_schemas(resources: list[Resource], *, v3: bool) -> tuple[Obj, Obj]:
    """The paths of ``resources`` and every schema they reference, in the chosen dialect."""
    custom = openapi_crd.definitions(resources, v3=v3)
    schemas = Schemas.get().with_definitions(custom) if custom else Schemas.get()
    paths: Obj = {}
    roots = list(_COMMON)
    for res in resources:
        ref = _definition_name(schemas, res)
        if ref is not None:
            roots += [ref, ref + "List"]
        roots += [d for sub in res.subresources if (d := subresource_definition(sub))]
        paths.update(_paths(res, ref, v3=v3))
    prefix = V3_REF if v3 else V2_REF
    return paths, {name: convert(schemas.definition(name), prefix) for name in _closure(schemas, roots)}
