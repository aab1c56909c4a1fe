"""The ``scale`` subresource: an object seen as, and changed through, an ``autoscaling/v1`` Scale.

Built-in workloads keep their replicas at ``spec.replicas`` and ``status.replicas`` and their
selector at ``spec.selector``. A custom resource says where through its CRD's
``subresources.scale`` (``specReplicasPath``, ``statusReplicasPath``, ``labelSelectorPath``), as
apiextensions-apiserver's ``scaleFromCustomResource``: a missing count reads as 0, and a scale
update writes the new count at ``specReplicasPath``.
"""

from __future__ import annotations

from typing import Any

from k3py.api.crd.invariants import nested
from k3py.api.resources import Resource
from k3py.api.validation import Cause
from k3py.apiserver import errors

Obj = dict[str, Any]


def scale_of(res: Resource, obj: Obj) -> Obj:
    meta = obj["metadata"]
    custom = res.custom.scale if res.custom is not None else None
    if custom is not None:
        spec_replicas = _count(obj, custom.spec_replicas)
        status_replicas = _count(obj, custom.status_replicas)
        selector, _ = nested(obj, custom.label_selector, str, "string") if custom.label_selector else ("", "")
        text = str(selector or "")
    else:
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        spec_replicas, status_replicas = spec.get("replicas", 0), status.get("replicas", 0)
        text = _selector_text(spec.get("selector") or {})
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"],
            "namespace": meta.get("namespace", ""),
            "uid": meta.get("uid", ""),
            "resourceVersion": meta["resourceVersion"],
            "creationTimestamp": meta.get("creationTimestamp"),
        },
        "spec": {"replicas": spec_replicas},
        "status": {"replicas": status_replicas, "selector": text},
    }


def _count(obj: Obj, path: str) -> int:
    value, error = nested(obj, path, int, "int64")
    if error:
        raise errors.internal(error)
    return int(value or 0)


def _selector_text(selector: Any) -> str:
    if isinstance(selector, dict) and "matchLabels" in selector:
        return ",".join(f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items()))
    if isinstance(selector, dict):
        return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
    return ""


def with_replicas(res: Resource, current: Obj, scale: Obj) -> Obj:
    """``current`` with the Scale's ``spec.replicas`` written where the resource keeps it."""
    replicas = (scale.get("spec") or {}).get("replicas")
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise errors.invalid(
            "Scale",
            "autoscaling",
            current["metadata"]["name"],
            [
                Cause(
                    "FieldValueInvalid",
                    f"Invalid value: {replicas}: must be greater than or equal to 0",
                    "spec.replicas",
                )
            ],
        )
    custom = res.custom.scale if res.custom is not None else None
    path = custom.spec_replicas if custom is not None else ".spec.replicas"
    fields = [f for f in path.split(".") if f]
    target = current
    for name in fields[:-1]:
        child = target.get(name)
        if not isinstance(child, dict):
            child = target[name] = {}
        target = child
    target[fields[-1]] = replicas
    return current
