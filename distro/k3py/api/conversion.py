"""Conversion between versions of one kind that share their objects.

events.k8s.io/v1 Events are core/v1 Events in a newer shape (upstream keeps one internal
type); the store holds the core/v1 form and each read or write through events.k8s.io/v1
converts, so an Event written through either API is seen by both.

autoscaling/v1 HorizontalPodAutoscalers are stored as autoscaling/v2 ones. v1 knows only
a CPU utilization target; what v1 cannot express (other metrics, behavior, conditions,
current metrics) travels in ``autoscaling.alpha.kubernetes.io/*`` annotations, as upstream
does, so a v1 client's read-modify-write keeps it. The annotations hold the v2 JSON of
those fields (upstream writes older v2beta1 shapes there).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from k3py.api.crd import custom
from k3py.api.resources import Resource

Obj = dict[str, Any]

# core/v1 field → events.k8s.io/v1 field; the rest (reason, type, action, related, series,
# eventTime, reportingInstance) keep their names.
_EVENT_RENAMES = {
    "involvedObject": "regarding",
    "message": "note",
    "source": "deprecatedSource",
    "firstTimestamp": "deprecatedFirstTimestamp",
    "lastTimestamp": "deprecatedLastTimestamp",
    "count": "deprecatedCount",
    "reportingComponent": "reportingController",
}
_EVENT_BACK = {new: old for old, new in _EVENT_RENAMES.items()}
_TYPE_META = ("kind", "apiVersion")


def _rename(obj: Obj, renames: dict[str, str], kind: str, api_version: str) -> Obj:
    out: Obj = {"kind": kind, "apiVersion": api_version}
    for key, value in obj.items():
        if key not in _TYPE_META:
            out[renames.get(key, key)] = value
    return out


def event_from_core(obj: Obj) -> Obj:
    return _rename(obj, _EVENT_RENAMES, "Event", "events.k8s.io/v1")


def event_to_core(obj: Obj) -> Obj:
    return _rename(obj, _EVENT_BACK, "Event", "v1")


_HPA = "autoscaling.alpha.kubernetes.io/"
_HPA_KEPT = {"metrics": "spec", "behavior": "spec", "conditions": "status", "current-metrics": "status"}
_DEFAULT_CPU = 80


def _is_cpu_utilization(metric: Any) -> bool:
    resource = metric.get("resource") if isinstance(metric, dict) else None
    return (
        isinstance(resource, dict)
        and metric.get("type") == "Resource"
        and resource.get("name") == "cpu"
        and (resource.get("target") or resource.get("current") or {}).get("averageUtilization") is not None
    )


def hpa_from_v2(obj: Obj) -> Obj:
    out: Obj = {"kind": "HorizontalPodAutoscaler", "apiVersion": "autoscaling/v1"}
    meta = dict(obj.get("metadata") or {})
    annotations = dict(meta.get("annotations") or {})
    spec = dict(obj.get("spec") or {})
    status = dict(obj.get("status") or {})
    metrics = spec.pop("metrics", None) or []
    cpu = [m for m in metrics if _is_cpu_utilization(m)]
    if cpu:
        spec["targetCPUUtilizationPercentage"] = cpu[0]["resource"]["target"]["averageUtilization"]
    others = [m for m in metrics if not _is_cpu_utilization(m)]
    kept = {"metrics": others, "behavior": spec.pop("behavior", None)}
    current = status.pop("currentMetrics", None) or []
    current_cpu = [m for m in current if _is_cpu_utilization(m)]
    if current_cpu:
        status["currentCPUUtilizationPercentage"] = current_cpu[0]["resource"]["current"][
            "averageUtilization"
        ]
    kept["current-metrics"] = [m for m in current if not _is_cpu_utilization(m)]
    kept["conditions"] = status.pop("conditions", None)
    for name, value in kept.items():
        if value:
            annotations[_HPA + name] = json.dumps(value, separators=(",", ":"))
    if annotations:
        meta["annotations"] = annotations
    out["metadata"] = meta
    out["spec"] = spec
    if obj.get("status") is not None:
        out["status"] = status
    return out


def hpa_to_v2(obj: Obj) -> Obj:
    out: Obj = {"kind": "HorizontalPodAutoscaler", "apiVersion": "autoscaling/v2"}
    meta = dict(obj.get("metadata") or {})
    annotations = dict(meta.get("annotations") or {})
    spec = dict(obj.get("spec") or {})
    status = dict(obj.get("status") or {})
    kept: dict[str, Any] = {}
    for name in _HPA_KEPT:
        raw = annotations.pop(_HPA + name, None)
        if raw is not None:
            try:
                kept[name] = json.loads(raw)
            except ValueError:
                continue
    target = spec.pop("targetCPUUtilizationPercentage", None)
    cpu = {
        "type": "Resource",
        "resource": {
            "name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": target or _DEFAULT_CPU},
        },
    }
    others = [m for m in kept.get("metrics") or [] if isinstance(m, dict)]
    spec["metrics"] = ([cpu] if target is not None or not others else []) + others
    if kept.get("behavior"):
        spec["behavior"] = kept["behavior"]
    current = status.pop("currentCPUUtilizationPercentage", None)
    current_metrics = [m for m in kept.get("current-metrics") or [] if isinstance(m, dict)]
    if current is not None:
        current_metrics.insert(
            0, {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": current}}}
        )
    if current_metrics:
        status["currentMetrics"] = current_metrics
    if kept.get("conditions"):
        status["conditions"] = kept["conditions"]
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    out["metadata"] = meta
    out["spec"] = spec
    if obj.get("status") is not None:
        out["status"] = status
    return out


_CONVERTERS: dict[str, tuple[Callable[[Obj], Obj], Callable[[Obj], Obj]]] = {
    "events.k8s.io/v1/events": (event_to_core, event_from_core),
    "autoscaling/v1/horizontalpodautoscalers": (hpa_to_v2, hpa_from_v2),
}


def _converter(resource: Resource) -> tuple[Callable[[Obj], Obj], Callable[[Obj], Obj]] | None:
    return _CONVERTERS.get(f"{resource.group_version}/{resource.plural}")


def to_storage(resource: Resource, obj: Obj) -> Obj:
    """The stored form of ``obj`` (served as ``resource``)."""
    converter = _converter(resource)
    if converter:
        return converter[0](obj)
    return {**obj, "apiVersion": resource.storage_version} if resource.storage_version else obj


def from_storage(resource: Resource, obj: Obj) -> Obj:
    """``obj`` (as stored) in the shape ``resource`` serves.

    Without a converter of its own, another version of a resource differs from the stored one
    only in its apiVersion here: fields one version has and the other lacks pass through as they
    are (upstream's conversions drop or move some of them). A custom resource is that
    (``conversion: None``), then pruned and defaulted by the served version's schema, as
    apiextensions-apiserver decodes what it reads from storage.
    """
    converter = _converter(resource)
    if converter:
        return converter[1](obj)
    out = {**obj, "apiVersion": resource.api_version} if resource.storage_version else obj
    if resource.custom is not None:
        custom.normalize(resource.custom, out)
    return out
