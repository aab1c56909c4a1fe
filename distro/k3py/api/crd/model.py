"""A served CRD as resources: one :class:`~k3py.api.resources.Resource` per served version.

:func:`resources_of` reads a stored CRD -- the names its status accepted, its served versions,
their schemas, subresources, printer columns and selectable fields -- and returns the resources
the registry serves, each carrying a :class:`CustomResource` with what the generic store, the
strategy, the printers and the selectors need. All versions share one set of objects, stored in
the storage version (``stored_as``/``storage_version``, as built-ins that exist in several
versions); reading converts by rewriting ``apiVersion`` (``conversion: None``), or through the
CRD's conversion webhook (``conversion_webhook``, called by the API server).

Also here: the CRD condition helpers and Kubernetes' version ordering (``v2`` before ``v1``
before ``v1beta2`` before ``v1alpha1`` before anything else).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from k3py.api.resources import Resource
from k3py.api.schema import Node, Schemas
from k3py.api.selectors import CustomResourceFields

Obj = dict[str, Any]

VERBS: Final = ("delete", "deletecollection", "get", "list", "patch", "create", "update", "watch")
"""A custom resource's verbs, in the order apiextensions-apiserver lists them."""
OBJECT_META: Final = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
ESTABLISHED, NAMES_ACCEPTED, TERMINATING = "Established", "NamesAccepted", "Terminating"


@dataclass(frozen=True, slots=True)
class PrinterColumn:
    name: str
    type: str
    json_path: str
    format: str = ""
    description: str = ""
    priority: int = 0


@dataclass(frozen=True, slots=True)
class ScalePaths:
    """Where the scale subresource finds replicas and the selector (``.spec.replicas``...)."""

    spec_replicas: str
    status_replicas: str
    label_selector: str = ""


@dataclass(frozen=True, eq=False)
class CustomResource:
    """What one served version of a CRD adds to its Resource (read-only)."""

    crd_name: str
    list_kind: str
    namespaced: bool
    schema: Mapping[str, Any] | None
    """The version's ``openAPIV3Schema``; None only for a CRD stored without one."""
    status: bool = False
    scale: ScalePaths | None = None
    columns: tuple[PrinterColumn, ...] = ()
    selectable_fields: tuple[str, ...] = ()
    """Field selector labels from ``selectableFields`` (``spec.color``)."""
    terminating: bool = False
    uid: str = field(default="")
    conversion_webhook: Mapping[str, Any] | None = None
    """The CRD's ``spec.conversion.webhook`` when its strategy is ``Webhook`` (None: versions
    differ only in apiVersion)."""

    @property
    def fields(self) -> CustomResourceFields:
        return CustomResourceFields(
            cluster_scoped=not self.namespaced, selectable_fields=self.selectable_fields
        )

    @functools.cached_property
    def node(self) -> Node | None:
        """The schema as server-side apply walks it, with ObjectMeta's schema for ``metadata``."""
        if self.schema is None:
            return None
        root = dict(self.schema)
        props = dict(root.get("properties") or {})
        props["metadata"] = {"$ref": f"#/$defs/{OBJECT_META}"}
        for name in ("apiVersion", "kind"):
            props.setdefault(name, {"type": "string"})
        root["properties"] = props
        name = f"custom:{self.crd_name}"
        return Schemas.get().with_definitions({name: root}).node(name)


def schema_node(resource: Resource) -> Node | None:
    """The schema tree of a resource: a custom resource's from its CRD, a built-in's from the
    bundled definitions (None when there is none)."""
    if resource.custom is not None:
        return resource.custom.node
    return Schemas.get().kind(resource.group, resource.version, resource.kind)


# -- CRD status -----------------------------------------------------------------------------


def condition(crd: Obj, kind: str) -> Obj | None:
    for found in (crd.get("status") or {}).get("conditions") or ():
        if isinstance(found, dict) and found.get("type") == kind:
            return found
    return None


def is_true(crd: Obj, kind: str) -> bool:
    found = condition(crd, kind)
    return found is not None and found.get("status") == "True"


def set_condition(crd: Obj, new: Obj, now: str) -> None:
    """``SetCRDCondition``: replace the condition of the same type, keeping its transition time
    when its status did not change."""
    status = crd.setdefault("status", {})
    conditions = [c for c in status.get("conditions") or () if isinstance(c, dict)]
    for i, old in enumerate(conditions):
        if old.get("type") == new["type"]:
            stamp = old.get("lastTransitionTime") if old.get("status") == new["status"] else None
            conditions[i] = {**new, "lastTransitionTime": stamp or now}
            break
    else:
        conditions.append({**new, "lastTransitionTime": now})
    status["conditions"] = conditions


def same_condition(a: Obj | None, b: Obj | None) -> bool:
    """``IsCRDConditionEquivalent``: type, status, reason and message agree."""
    if a is None or b is None:
        return a is b
    return all(a.get(k) == b.get(k) for k in ("type", "status", "reason", "message"))


# -- versions -------------------------------------------------------------------------------

_KUBE_VERSION: Final = re.compile(r"v([1-9][0-9]*)(?:(alpha|beta)([1-9][0-9]*))?")


def version_order(version: str) -> tuple[int, int, int, str]:
    """Sort key: GA, then beta, then alpha (higher numbers first), then other names alphabetically."""
    match = _KUBE_VERSION.fullmatch(version)
    if match is None:
        return (3, 0, 0, version)
    major, stage, minor = match.groups()
    rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (rank, -int(major), -int(minor or 0), "")


def versions(crd: Obj) -> list[Obj]:
    """The CRD's ``spec.versions`` (what is not an object left out)."""
    spec = crd.get("spec")
    found = spec.get("versions") if isinstance(spec, dict) else None
    return [v for v in found if isinstance(v, dict)] if isinstance(found, list) else []


def storage_version(crd: Obj) -> str:
    for version in versions(crd):
        if version.get("storage") is True:
            return str(version.get("name") or "")
    return ""


# -- resources ------------------------------------------------------------------------------


def resources_of(crd: Obj) -> list[Resource]:
    """The resources a CRD serves: one per served version (preferred first), named as its
    status accepted."""
    served = [v for v in versions(crd) if v.get("served") is True]
    return [_resource(crd, v) for v in sorted(served, key=lambda v: version_order(str(v.get("name"))))]


def storage_resource(crd: Obj) -> Resource | None:
    """The resource of the storage version, served or not (to reach every stored object)."""
    for version in versions(crd):
        if version.get("storage") is True:
            return _resource(crd, version)
    return None


def _resource(crd: Obj, version: Obj) -> Resource:
    spec, status = crd["spec"], crd.get("status") or {}
    wanted, accepted = spec.get("names") or {}, status.get("acceptedNames") or {}
    group = str(spec["group"])
    plural = str(accepted.get("plural") or wanted.get("plural") or "")
    kind = str(accepted.get("kind") or wanted.get("kind") or "")
    namespaced = spec.get("scope", "Namespaced") == "Namespaced"
    subresources = version.get("subresources") or {}
    custom = CustomResource(
        crd_name=str(crd["metadata"]["name"]),
        uid=str(crd["metadata"].get("uid", "")),
        list_kind=str(accepted.get("listKind") or wanted.get("listKind") or f"{kind}List"),
        namespaced=namespaced,
        schema=(version.get("schema") or {}).get("openAPIV3Schema"),
        status=isinstance(subresources.get("status"), dict),
        scale=_scale(subresources.get("scale")),
        columns=tuple(_columns(version.get("additionalPrinterColumns") or ())),
        selectable_fields=tuple(
            str(f["jsonPath"]).removeprefix(".")
            for f in version.get("selectableFields") or ()
            if isinstance(f, dict) and f.get("jsonPath")
        ),
        terminating=bool((crd.get("metadata") or {}).get("deletionTimestamp")),
        conversion_webhook=_conversion_webhook(spec.get("conversion")),
    )
    return Resource(
        group=group,
        version=str(version["name"]),
        kind=kind,
        plural=plural,
        namespaced=namespaced,
        short_names=tuple(accepted.get("shortNames") or ()),
        categories=tuple(accepted.get("categories") or ()),
        subresources=(("status",) if custom.status else ()) + (("scale",) if custom.scale else ()),
        verbs=VERBS,
        singular=str(accepted.get("singular") or ""),
        stored_as=f"{group}/{plural}",
        storage_version=f"{group}/{storage_version(crd)}",
        custom=custom,
    )


def _conversion_webhook(conversion: Any) -> Mapping[str, Any] | None:
    if not isinstance(conversion, dict) or conversion.get("strategy") != "Webhook":
        return None
    webhook = conversion.get("webhook")
    return webhook if isinstance(webhook, dict) else {}


def _scale(scale: Any) -> ScalePaths | None:
    if not isinstance(scale, dict):
        return None
    return ScalePaths(
        str(scale.get("specReplicasPath") or ""),
        str(scale.get("statusReplicasPath") or ""),
        str(scale.get("labelSelectorPath") or ""),
    )


def _columns(columns: Any) -> list[PrinterColumn]:
    return [
        PrinterColumn(
            name=str(c.get("name", "")),
            type=str(c.get("type", "")),
            json_path=str(c.get("jsonPath", "")),
            format=str(c.get("format", "")),
            description=str(c.get("description", "")),
            priority=int(c.get("priority") or 0),
        )
        for c in columns
        if isinstance(c, dict)
    ]
