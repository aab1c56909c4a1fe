"""Request information: which resource, namespace, name, subresource and verb a URL means,
and which representation the client accepts.
"""

from __future__ import annotations

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
