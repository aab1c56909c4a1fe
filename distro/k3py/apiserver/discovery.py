"""Discovery documents: /version, /api, /apis, per group and version, and aggregated (v2).

kubectl 1.37 first asks for the aggregated form
(``application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList``) on ``/api`` and
``/apis``; older clients and the Python client read the legacy documents. Both are built
from the resource registry, so they always agree with what is routed.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from typing import Any

from k3py import KUBERNETES_VERSION, __version__
from k3py.api.resources import Registry, Resource
from k3py.util.arch import kube_platform

Obj = dict[str, Any]

AGGREGATED_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


@dataclass(frozen=True)
class Subresource:
    """A served subresource: its verbs and the kind it reads and writes ("" = the resource's own)."""

    verbs: tuple[str, ...]
    group: str = ""
    version: str = ""
    kind: str = ""

    def response_kind(self, r: Resource) -> Obj:
        if not self.kind:
            return {"group": r.group, "version": r.version, "kind": r.kind}
        return {"group": self.group, "version": self.version, "kind": self.kind}


SUBRESOURCES = {
    "status": Subresource(("get", "patch", "update")),
    "scale": Subresource(("get", "patch", "update"), "autoscaling", "v1", "Scale"),
    "token": Subresource(("create",), "authentication.k8s.io", "v1", "TokenRequest"),
    "approval": Subresource(("get", "patch", "update")),
    "finalize": Subresource(("update",)),
    "eviction": Subresource(("create",), "policy", "v1", "Eviction"),
}
SUBRESOURCE_VERBS = {name: list(sub.verbs) for name, sub in SUBRESOURCES.items()}


def version_info() -> Obj:
    major, minor, _ = KUBERNETES_VERSION.split(".")
    return {
        "major": major,
        "minor": minor,
        "gitVersion": f"v{KUBERNETES_VERSION}+k3py{__version__}",
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "",
        "goVersion": f"python{platform.python_version()}",
        "compiler": platform.python_implementation().lower(),
        "platform": kube_platform(),
    }


def _api_resource(r: Resource) -> Obj:
    out: Obj = {
        "name": r.plural,
        "singularName": r.singular_name,
        "namespaced": r.namespaced,
        "kind": r.kind,
        "verbs": list(r.verbs),
    }
    if r.short_names:
        out["shortNames"] = list(r.short_names)
    if r.categories:
        out["categories"] = list(r.categories)
    return out


def resource_list(registry: Registry, group: str, version: str) -> Obj:
    """``APIResourceList`` for /api/v1 or /apis/<group>/<version>."""
    resources: list[Obj] = []
    for r in registry.in_version(group, version):
        resources.append(_api_resource(r))
        for sub in r.subresources:
            served = SUBRESOURCES[sub]
            entry: Obj = {
                "name": f"{r.plural}/{sub}",
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": served.kind or r.kind,
                "verbs": list(served.verbs),
            }
            if served.kind:
                entry["group"], entry["version"] = served.group, served.version
            resources.append(entry)
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }


def core_versions(address: str) -> Obj:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
    }


def _group(registry: Registry, group: str) -> Obj:
    versions = [{"groupVersion": f"{group}/{v}", "version": v} for v in registry.versions(group)]
    return {"name": group, "versions": versions, "preferredVersion": versions[0]}


def group_list(registry: Registry) -> Obj:
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group(registry, g) for g in registry.groups() if g],
    }


def group(registry: Registry, name: str) -> Obj | None:
    if not name or name not in registry.groups():
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(registry, name)}


def _aggregated_resource(r: Resource) -> Obj:
    out: Obj = {
        "resource": r.plural,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": "Namespaced" if r.namespaced else "Cluster",
        "singularResource": r.singular_name,
        "verbs": list(r.verbs),
    }
    if r.short_names:
        out["shortNames"] = list(r.short_names)
    if r.categories:
        out["categories"] = list(r.categories)
    subs = []
    for sub in r.subresources:
        served = SUBRESOURCES[sub]
        subs.append(
            {"subresource": sub, "responseKind": served.response_kind(r), "verbs": list(served.verbs)}
        )
    if subs:
        out["subresources"] = subs
    return out


def aggregated(registry: Registry, *, core: bool) -> Obj:
    """``APIGroupDiscoveryList`` (apidiscovery.k8s.io/v2) for /api (core) or /apis."""
    items = []
    for g in registry.groups():
        if bool(g) == core:
            continue
        versions = [
            {
                "version": v,
                "resources": [_aggregated_resource(r) for r in registry.in_version(g, v)],
                "freshness": "Current",
            }
            for v in registry.versions(g)
        ]
        items.append({"metadata": {"name": g, "creationTimestamp": None}, "versions": versions})
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    }
