"""Discovery documents: /version, /api, /apis, per group and version, and aggregated (v2).

kubectl 1.37 first asks for the aggregated form
(``application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList``) on ``/api`` and
``/apis``; older clients and the Python client read the legacy documents. Both are built
from the resource registry, so they always agree with what is routed. Groups that
aggregated API servers serve (APIServices backed by a Service) are merged in by
:func:`group_list_with` and :func:`aggregated_with`, ordered by their APIServices'
priorities, with the resources their backends list (:func:`version_discovery`).
"""

from __future__ import annotations

import platform
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from k3py import KUBERNETES_VERSION, __version__
from k3py.api.apiregistration import PRIORITIES
from k3py.api.crd.model import version_order
from k3py.api.resources import Registry, Resource
from k3py.util.arch import kube_platform

Obj = dict[str, Any]

AGGREGATED_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
CUSTOM_GROUP_PRIORITY = 1000
"""The group priority of the APIServices registered for CustomResourceDefinitions."""
APIREGISTRATION_PRIORITY = 20001
"""Above any APIService's (at most 20000): kube-aggregator lists its own group first."""


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
    "ephemeralcontainers": Subresource(("get", "patch", "update")),
    "resize": Subresource(("get", "patch", "update")),
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


# -- aggregated API servers (APIServices backed by a Service) --------------------------------


@dataclass(frozen=True)
class AggregatedVersion:
    """One group-version an APIService sends to its Service, and what its backend said of it."""

    group: str
    version: str
    group_priority: int
    version_priority: int
    resources: tuple[Obj, ...] = ()
    """The backend's resources in the aggregated (v2) form; empty until its discovery is read."""
    current: bool = False
    """Whether the last read of the backend's discovery succeeded (``freshness: Current``)."""


def wants_aggregated(accept: str) -> bool:
    """Does the Accept header ask for the aggregated (v2) discovery document?"""
    return any(
        "as=APIGroupDiscoveryList" in media and "v=v2" in media and "apidiscovery.k8s.io" in media
        for media in accept.split(",")
    )


def _by_priority(versions: Iterable[AggregatedVersion]) -> list[list[AggregatedVersion]]:
    """``SortedByGroupAndVersion``: groups by minimum priority (higher first) then name, each
    group's versions by priority (higher first) then kube-aware version order."""
    groups: dict[str, list[AggregatedVersion]] = {}
    for v in versions:
        groups.setdefault(v.group, []).append(v)
    ordered = sorted(groups.values(), key=lambda vs: (-max(v.group_priority for v in vs), vs[0].group))
    return [sorted(vs, key=lambda v: (-v.version_priority, version_order(v.version))) for vs in ordered]


def _local_priority(group: str) -> int:
    """A served group's priority: the highest of its APIServices' (a CRD group's: 1000);
    ``apiregistration.k8s.io`` above all, as kube-aggregator lists it first."""
    if group == "apiregistration.k8s.io":
        return APIREGISTRATION_PRIORITY
    found = [p.group for (g, _), p in PRIORITIES.items() if g == group]
    return max(found) if found else CUSTOM_GROUP_PRIORITY


def _merged_order(
    local: list[str], aggregated: list[list[AggregatedVersion]]
) -> list[tuple[str, list[AggregatedVersion]]]:
    """The local groups in their order, each aggregated group after the last group of a
    priority at least its own (so before any lower one); a group both serve keeps its local
    place."""
    remote = {vs[0].group: vs for vs in aggregated}
    out: list[tuple[str, list[AggregatedVersion]]] = [(g, remote.get(g, [])) for g in local]
    priorities = [_local_priority(g) for g in local]
    for versions in aggregated:
        if versions[0].group in local:
            continue
        priority = max(v.group_priority for v in versions)
        at = next((i + 1 for i in reversed(range(len(out))) if priorities[i] >= priority), 0)
        out.insert(at, (versions[0].group, versions))
        priorities.insert(at, priority)
    return out


def _group_version(group: str, version: str) -> Obj:
    return {"groupVersion": f"{group}/{version}", "version": version}


def group_list_with(registry: Registry, remote: Iterable[AggregatedVersion]) -> Obj:
    """:func:`group_list` with the aggregated group-versions added where their priority puts
    them (kube-aggregator's ``/apis``)."""
    doc = group_list(registry)
    local = {g["name"]: g for g in doc["groups"]}
    groups: list[Obj] = []
    for name, served_remotely in _merged_order(list(local), _by_priority(remote)):
        entry = local.get(name)
        if entry is None:
            versions = [_group_version(name, v.version) for v in served_remotely]
            entry = {"name": name, "versions": versions, "preferredVersion": versions[0]}
        else:
            served = {v["version"] for v in entry["versions"]}
            extra = [_group_version(name, v.version) for v in served_remotely if v.version not in served]
            entry = {**entry, "versions": [*entry["versions"], *extra]}
        groups.append(entry)
    return {**doc, "groups": groups}


def api_group(name: str, versions: Iterable[AggregatedVersion]) -> Obj:
    """``/apis/<group>`` from the group's APIServices (``convertToDiscoveryAPIGroup``)."""
    [ordered] = _by_priority(versions)
    entries = [_group_version(name, v.version) for v in ordered]
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": name,
        "versions": entries,
        "preferredVersion": entries[0],
    }


def aggregated_with(registry: Registry, remote: Iterable[AggregatedVersion]) -> Obj:
    """:func:`aggregated` (``/apis``) with the aggregated group-versions merged in; a version
    whose backend could not be read is listed ``Stale``, with what was last read."""
    doc = aggregated(registry, core=False)
    local = {item["metadata"]["name"]: item for item in doc["items"]}
    items: list[Obj] = []
    for name, served_remotely in _merged_order(list(local), _by_priority(remote)):
        item = local.get(name) or {"metadata": {"name": name, "creationTimestamp": None}, "versions": []}
        served = {v["version"] for v in item["versions"]}
        extra = [
            {
                "version": v.version,
                "resources": list(v.resources),
                "freshness": "Current" if v.current else "Stale",
            }
            for v in served_remotely
            if v.version not in served
        ]
        items.append({**item, "versions": [*item["versions"], *extra]})
    return {**doc, "items": items}


def version_discovery(resource_list: Obj) -> list[Obj]:
    """An ``APIResourceList``'s resources in the aggregated form
    (``ConvertGroupVersionIntoToDiscovery``): each ``a/b`` entry becomes a subresource of ``a``."""
    group, _, version = str(resource_list.get("groupVersion") or "").rpartition("/")
    entries = [r for r in resource_list.get("resources") or [] if isinstance(r, dict)]
    out: dict[str, Obj] = {}
    for r in entries:
        name = str(r.get("name") or "")
        if not name or "/" in name:
            continue
        resource: Obj = {
            "resource": name,
            "responseKind": {
                "group": r.get("group", group),
                "version": r.get("version", version),
                "kind": r.get("kind", ""),
            },
            "scope": "Namespaced" if r.get("namespaced") else "Cluster",
            "singularResource": r.get("singularName", ""),
            "verbs": list(r.get("verbs") or []),
        }
        for key in ("shortNames", "categories"):
            if r.get(key):
                resource[key] = list(r[key])
        out[name] = resource
    for r in entries:
        parent, slash, sub = str(r.get("name") or "").partition("/")
        if not slash or parent not in out:
            continue
        subresource = {
            "subresource": sub,
            "responseKind": {
                "group": r.get("group", group),
                "version": r.get("version", version),
                "kind": r.get("kind", ""),
            },
            "verbs": list(r.get("verbs") or []),
        }
        out[parent].setdefault("subresources", []).append(subresource)
    return list(out.values())
