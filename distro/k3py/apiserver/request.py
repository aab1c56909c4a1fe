"""Request information: which resource, namespace, name, subresource and verb a URL means,
and which representation the client accepts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from k3py.api.resources import Registry, Resource
from k3py.apiserver import errors


@dataclass(frozen=True)
class Target:
    resource: Resource
    namespace: str
    name: str
    subresource: str


def parse_path(registry: Registry, group: str, version: str, rest: list[str]) -> Target:
    """``rest``: the path segments after ``/api/v1`` or ``/apis/<group>/<version>``."""
    if "" in rest:
        raise errors.not_found_path("/".join(rest))  # no empty namespace, name or segment
    namespace = ""
    if len(rest) >= 3 and rest[0] == "namespaces":
        candidate = registry.lookup(group, version, rest[2])
        if candidate is not None and candidate.namespaced:
            namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        raise errors.not_found_path("/".join(rest))
    resource = registry.lookup(group, version, rest[0])
    if resource is None:
        raise errors.not_found_path("/".join(rest))
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    if sub and sub not in resource.subresources:
        raise errors.not_found_path("/".join(rest))
    if namespace == "" and resource.namespaced and name:
        raise errors.not_found_path("/".join(rest))  # a namespaced object needs its namespace
    return Target(resource, namespace, name, sub)


@dataclass(frozen=True)
class MediaType:
    """One entry of an Accept header: type plus the parameters Kubernetes uses."""

    mime: str
    as_kind: str = ""  # Table, PartialObjectMetadata, PartialObjectMetadataList, APIGroupDiscoveryList
    group: str = ""
    version: str = ""

    @property
    def yaml(self) -> bool:
        return self.mime == "application/yaml"


_JSON_LIKE = {"application/json", "application/yaml", "*/*", "application/*"}


def parse_accept(header: str) -> list[MediaType]:
    out: list[MediaType] = []
    for part in header.split(","):
        fields = [f.strip() for f in part.split(";")]
        mime = fields[0].lower()
        if not mime:
            continue
        params: dict[str, str] = {}
        for f in fields[1:]:
            if "=" in f:
                k, v = f.split("=", 1)
                params[k.strip()] = v.strip()
        out.append(MediaType(mime, params.get("as", ""), params.get("g", ""), params.get("v", "")))
    return out or [MediaType("application/json")]


SUPPORTED_AS = {
    ("Table", "meta.k8s.io", "v1"),
    ("PartialObjectMetadata", "meta.k8s.io", "v1"),
    ("PartialObjectMetadataList", "meta.k8s.io", "v1"),
}


def negotiate(header: str, *, allowed_as: set[tuple[str, str, str]] | None = None) -> MediaType:
    """The first acceptable representation; 406 NotAcceptable if there is none."""
    allowed = SUPPORTED_AS if allowed_as is None else allowed_as
    for media in parse_accept(header or "application/json"):
        if media.mime not in _JSON_LIKE:
            continue
        if media.as_kind and (media.as_kind, media.group, media.version) not in allowed:
            continue
        mime = "application/yaml" if media.mime == "application/yaml" else "application/json"
        return MediaType(mime, media.as_kind, media.group, media.version)
    raise errors.not_acceptable(header)


@dataclass(frozen=True)
class RequestInfo:
    """What a request asks for, in authorization terms (kube-apiserver's ``RequestInfo``).

    Derived from the method, path and query alone, before any routing: a resource request is
    ``/api/<v>/...`` or ``/apis/<g>/<v>/...``; everything else (discovery roots, /healthz,
    /openapi, /version) is a non-resource request checked against its path.
    """

    verb: str
    path: str
    resource_request: bool = False
    api_group: str = ""
    api_version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""


_METHOD_VERBS = {
    "GET": "get",
    "HEAD": "get",
    "POST": "create",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}
_NAMESPACE_SUBRESOURCES = {"status", "finalize"}


def request_info(method: str, path: str, query: Mapping[str, str]) -> RequestInfo:
    """kube-apiserver's request-info rules, so that RBAC rules mean here what they mean upstream.

    ``/api/v1`` and ``/apis/<g>/<v>`` with nothing after them are non-resource requests (the
    discovery documents); ``namespaces/<ns>/<resource>/...`` scopes to ``ns`` unless the next
    segment is a namespace subresource; a GET without a name is ``list`` (``watch`` with
    ``watch=true``), a DELETE without one ``deletecollection``; a list or watch whose field
    selector pins ``metadata.name`` is about that name.
    """
    # Empty segments stay (``namespaces//secrets`` names the empty namespace), as upstream's
    # splitPath keeps them: authorization must see the URL the router serves.
    parts = path.strip("/").split("/") if path.strip("/") else []
    http_verb = method.lower()
    if len(parts) >= 3 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return RequestInfo(verb=http_verb, path=path)
    verb = _METHOD_VERBS.get(method, http_verb)
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if not name and verb == "get":
        verb = "watch" if query.get("watch", "").lower() in ("1", "true") else "list"
    if not name and verb == "delete":
        verb = "deletecollection"
    if verb in ("list", "watch") and (pinned := _pinned_name(query.get("fieldSelector", ""))):
        name = pinned
    return RequestInfo(
        verb=verb,
        path=path,
        resource_request=True,
        api_group=group,
        api_version=version,
        namespace=namespace,
        resource=resource,
        subresource=subresource,
        name=name,
    )


def _pinned_name(field_selector: str) -> str:
    for term in field_selector.split(","):
        key, sep, value = term.partition("=")
        if sep and key.strip() == "metadata.name":
            return value.lstrip("=").strip()
    return ""
