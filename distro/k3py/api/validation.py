"""Semantic validation: one ``Cause`` per invalid field, as kube-apiserver reports them.

``validate`` runs on create (``old`` is None) and on update. It covers object metadata for
every resource and the per-kind rules registered in ``_BY_RESOURCE``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from k3py.api import objects
from k3py.api.resources import Resource

Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Cause:
    """One invalid field: upstream's cause reason, message and field path."""

    reason: str  # FieldValueRequired, FieldValueInvalid, FieldValueNotSupported, ...
    message: str
    field: str = ""


Validator = Callable[[Obj, Obj | None], list[Cause]]

_LABEL_NAMED = {"namespaces", "services"}  # DNS-1123 labels, not subdomains


def required(field: str) -> Cause:
    return Cause("FieldValueRequired", "Required value", field)


def invalid(field: str, value: object, detail: str) -> Cause:
    shown = f'"{value}"' if isinstance(value, str) else str(value)
    return Cause("FieldValueInvalid", f"Invalid value: {shown}: {detail}", field)


def immutable(field: str) -> Cause:
    return Cause("FieldValueInvalid", "field is immutable", field)


def validate(resource: Resource, obj: Obj, old: Obj | None) -> list[Cause]:
    causes = _metadata(resource, obj, old)
    fn = _BY_RESOURCE.get(resource.name)
    if fn is not None:
        causes += fn(obj, old)
    return causes


def _metadata(resource: Resource, obj: Obj, old: Obj | None) -> list[Cause]:
    meta = obj.get("metadata") or {}
    causes: list[Cause] = []
    name = meta.get("name")
    if not name:
        if not meta.get("generateName"):
            return [
                Cause(
                    "FieldValueRequired", "Required value: name or generateName is required", "metadata.name"
                )
            ]
        return causes
    if not isinstance(name, str):
        return [invalid("metadata.name", name, "must be a string")]
    check = (
        objects.label_errors
        if resource.plural in _LABEL_NAMED and not resource.group
        else objects.subdomain_errors
    )
    for message in objects.path_segment_errors(name) or check(name):
        causes.append(invalid("metadata.name", name, message))
    for field in ("labels", "annotations"):
        value = meta.get(field)
        if value is not None and not isinstance(value, dict):
            causes.append(invalid(f"metadata.{field}", value, "must be a map of strings"))
        elif isinstance(value, dict):
            for k, v in value.items():
                if not isinstance(v, str):
                    causes.append(invalid(f"metadata.{field}", v, f"value of {k!r} must be a string"))
    if old is not None and old.get("metadata", {}).get("name") != name:
        causes.append(immutable("metadata.name"))
    return causes


def _configmap(obj: Obj, old: Obj | None) -> list[Cause]:
    causes: list[Cause] = []
    data, binary = obj.get("data") or {}, obj.get("binaryData") or {}
    for key in set(data) & set(binary):
        causes.append(invalid("data", key, "duplicate of key present in binaryData"))
    if (
        old is not None
        and old.get("immutable")
        and (data != (old.get("data") or {}) or binary != (old.get("binaryData") or {}))
    ):
        causes.append(
            Cause("FieldValueForbidden", "Forbidden: field is immutable when `immutable` is set", "data")
        )
    return causes


def _pod(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [required("spec")]
    causes: list[Cause] = []
    containers = spec.get("containers")
    if not containers:
        causes.append(required("spec.containers"))
    names: set[str] = set()
    for i, c in enumerate(containers or []):
        path = f"spec.containers[{i}]"
        if not isinstance(c, dict):
            causes.append(invalid(path, c, "must be an object"))
            continue
        cname = c.get("name")
        if not cname:
            causes.append(required(f"{path}.name"))
        elif cname in names:
            causes.append(Cause("FieldValueDuplicate", f'Duplicate value: "{cname}"', f"{path}.name"))
        else:
            names.add(cname)
            for message in objects.label_errors(cname):
                causes.append(invalid(f"{path}.name", cname, message))
        if not c.get("image") and old is None:
            causes.append(required(f"{path}.image"))
    policy = spec.get("restartPolicy")
    if policy is not None and policy not in ("Always", "OnFailure", "Never"):
        causes.append(
            Cause(
                "FieldValueNotSupported",
                f'Unsupported value: "{policy}": supported values: "Always", "OnFailure", "Never"',
                "spec.restartPolicy",
            )
        )
    if old is not None:
        old_spec = old.get("spec") or {}
        for field in ("nodeName", "restartPolicy", "serviceAccountName"):
            if old_spec.get(field) and spec.get(field) != old_spec.get(field):
                causes.append(immutable(f"spec.{field}"))
    return causes


def _selector_matches_template(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [required("spec")]
    causes: list[Cause] = []
    selector = spec.get("selector")
    if not isinstance(selector, dict) or not (
        selector.get("matchLabels") or selector.get("matchExpressions")
    ):
        causes.append(required("spec.selector"))
        return causes
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    wanted = selector.get("matchLabels") or {}
    if any(labels.get(k) != v for k, v in wanted.items()):
        causes.append(
            invalid("spec.template.metadata.labels", labels, "`selector` does not match template `labels`")
        )
    if not (template.get("spec") or {}).get("containers"):
        causes.append(required("spec.template.spec.containers"))
    if old is not None and (old.get("spec") or {}).get("selector") != selector:
        causes.append(immutable("spec.selector"))
    replicas = spec.get("replicas")
    if isinstance(replicas, int) and replicas < 0:
        causes.append(invalid("spec.replicas", replicas, "must be greater than or equal to 0"))
    return causes


def _service(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [required("spec")]
    causes: list[Cause] = []
    kind = spec.get("type", "ClusterIP")
    if kind not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
        causes.append(
            Cause(
                "FieldValueNotSupported",
                f'Unsupported value: "{kind}": supported values: '
                '"ClusterIP", "ExternalName", "LoadBalancer", "NodePort"',
                "spec.type",
            )
        )
    ports = spec.get("ports") or []
    if not ports and kind != "ExternalName" and spec.get("clusterIP") != "None":
        causes.append(required("spec.ports"))
    for i, port in enumerate(ports):
        number = port.get("port") if isinstance(port, dict) else None
        if not isinstance(number, int) or not 1 <= number <= 65535:
            causes.append(invalid(f"spec.ports[{i}].port", number, "must be between 1 and 65535, inclusive"))
        if len(ports) > 1 and not (isinstance(port, dict) and port.get("name")):
            causes.append(required(f"spec.ports[{i}].name"))
    if old is not None:
        old_ip = (old.get("spec") or {}).get("clusterIP")
        if old_ip and spec.get("clusterIP") not in (None, "", old_ip) and kind != "ExternalName":
            causes.append(immutable("spec.clusterIP"))
    return causes


_BY_RESOURCE: dict[str, Validator] = {
    "configmaps": _configmap,
    "pods": _pod,
    "deployments.apps": _selector_matches_template,
    "replicasets.apps": _selector_matches_template,
    "statefulsets.apps": _selector_matches_template,
    "daemonsets.apps": _selector_matches_template,
    "services": _service,
}
