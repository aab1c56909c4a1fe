"""LimitRange admission (kube-apiserver's ``LimitRanger`` plugin): defaults and bounds for what
pods and claims ask for, from the LimitRanges of their namespace.

On pod creation (pods are not mutated or checked on update: their containers cannot change):

1. every ``Container``-type limit's ``default`` fills the limits a container leaves out and its
   ``defaultRequest`` the requests (the LimitRange's own defaulting first: ``default`` from
   ``max``, ``defaultRequest`` from ``default`` or ``min``); what was set is recorded in the
   pod's ``kubernetes.io/limit-ranger`` annotation, in upstream's words;
2. ``Container``-type ``min``, ``max`` and ``maxLimitRequestRatio`` are checked per container
   (init containers too), ``Pod``-type ones against the pod's summed requests and limits;
3. claims (create and update) are checked against ``PersistentVolumeClaim``-type ``min`` and
   ``max`` on what they request.

A violation refuses the write with 403 and upstream's message, e.g.
``pods "x" is forbidden: maximum cpu usage per Container is 1, but limit is 2``; several are
listed in brackets, as Go's aggregate error prints them.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Any

from k3py.api import quota
from k3py.api.defaults import canonical_quantity, quantity_value
from k3py.api.resources import Resource
from k3py.apiserver import errors
from k3py.apiserver.generic import ListOptions, Obj, ObjectStore, WriteOptions

ANNOTATION = "kubernetes.io/limit-ranger"
CONTAINER, POD, CLAIM = "Container", "Pod", "PersistentVolumeClaim"
Quantities = Mapping[str, Any]
"""A ResourceList as the object holds it: names to quantity strings."""


class LimitRanger:
    """Applies the LimitRanges of a pod's or claim's namespace to it."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        found = store.registry.lookup("", "v1", "limitranges")
        assert found is not None, "core/v1 limitranges is required"
        self.limitranges = found

    async def __call__(
        self, res: Resource, namespace: str, obj: Obj, old: Obj | None, opts: WriteOptions
    ) -> None:
        if res.group or opts.subresource or opts.deleting or not namespace:
            return
        if res.plural == "pods" and old is None:
            check: Callable[[Obj, Obj], list[str]] = admit_pod
        elif res.plural == "persistentvolumeclaims":
            if old is not None and (old.get("metadata") or {}).get("deletionTimestamp"):
                return
            check = validate_claim
        else:
            return
        listed = await self.store.list(self.limitranges, namespace, ListOptions())
        for item in sorted(listed["items"], key=lambda i: str(i["metadata"]["name"])):
            problems = check(item, obj)
            if problems:
                name = str((obj.get("metadata") or {}).get("name") or "")
                raise errors.ApiError(
                    403,
                    "Forbidden",
                    f'{res.name} "{name}" is forbidden: {aggregate(problems)}',
                    {"name": name, "kind": res.plural},
                )


def aggregate(problems: list[str]) -> str:
    """Go's ``utilerrors.NewAggregate(...).Error()``: one message, or several in brackets."""
    return problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]"


def limits_of(limit_range: Obj) -> list[Obj]:
    """The LimitRange's items, defaulted as the API server defaults a stored LimitRange."""
    out = []
    for raw in (limit_range.get("spec") or {}).get("limits") or []:
        if not isinstance(raw, dict):
            continue
        item = copy.deepcopy(raw)
        if item.get("type") == CONTAINER:
            default = item.setdefault("default", {}) or {}
            for name, value in (item.get("max") or {}).items():
                default.setdefault(name, value)
            request = item.setdefault("defaultRequest", {}) or {}
            for source in (default, item.get("min") or {}):
                for name, value in source.items():
                    request.setdefault(name, value)
            item["default"], item["defaultRequest"] = default, request
        out.append(item)
    return out


def admit_pod(limit_range: Obj, pod: Obj) -> list[str]:
    """Default the pod's containers from ``limit_range``, then what it violates."""
    items = limits_of(limit_range)
    default_pod(items, pod)
    return validate_pod(items, pod)


def default_pod(items: list[Obj], pod: Obj) -> None:
    """``PodMutateLimitFunc``: fill what containers leave out, record it in the annotation."""
    defaults: Obj = {}
    requests: Obj = {}
    for item in items:
        if item.get("type") == CONTAINER:
            defaults.update(item.get("default") or {})
            requests.update(item.get("defaultRequest") or {})
    if not defaults and not requests:
        return
    spec = pod.get("spec") or {}
    notes: list[str] = []
    for key, prefix in (("containers", "container"), ("initContainers", "init container")):
        for container in quota.containers(spec, key):
            notes += _merge(container, defaults, requests, prefix)
    if notes:
        meta = pod.setdefault("metadata", {})
        annotations = meta.get("annotations") or {}
        annotations[ANNOTATION] = "LimitRanger plugin set: " + "; ".join(notes)
        meta["annotations"] = annotations


def _merge(container: Obj, limits: Obj, requests: Obj, prefix: str) -> list[str]:
    resources = container.get("resources") or {}
    container["resources"] = resources
    notes = []
    for kind, defaults in (("requests", requests), ("limits", limits)):
        current = resources.get(kind) or {}
        added = sorted(name for name in defaults if name not in current)
        for name in added:
            current[name] = canonical_quantity(defaults[name]) or defaults[name]
        if current:
            resources[kind] = current
        if added:
            word = "request" if kind == "requests" else "limit"
            notes.append(f"{', '.join(added)} {word} for {prefix} {container.get('name') or ''}")
    return notes


def validate_pod(items: list[Obj], pod: Obj) -> list[str]:
    """``PodValidateLimitFunc``: Container-type bounds per container, Pod-type on the sums."""
    spec = pod.get("spec") or {}
    problems: list[str] = []
    for item in items:
        kind = item.get("type")
        if kind == CONTAINER:
            for key in ("containers", "initContainers"):
                for container in quota.containers(spec, key):
                    resources = container.get("resources") or {}
                    problems += bounds(
                        CONTAINER, item, resources.get("requests") or {}, resources.get("limits") or {}
                    )
        elif kind == POD:
            requests = _text(quota.pod_resources(spec, "requests"))
            limits = _text(quota.pod_resources(spec, "limits"))
            problems += bounds(POD, item, requests, limits)
    return problems


def validate_claim(limit_range: Obj, claim: Obj) -> list[str]:
    """PersistentVolumeClaim-type ``min`` and ``max`` against what the claim requests."""
    requests = ((claim.get("spec") or {}).get("resources") or {}).get("requests") or {}
    problems: list[str] = []
    for item in limits_of(limit_range):
        if item.get("type") != CLAIM:
            continue
        for name, value in sorted((item.get("min") or {}).items()):
            problems += _some(min_constraint(CLAIM, name, value, requests, {}))
        for name, value in sorted((item.get("max") or {}).items()):
            problems += _some(max_request_constraint(CLAIM, name, value, requests))
    return problems


def bounds(kind: str, item: Obj, requests: Quantities, limits: Quantities) -> list[str]:
    problems: list[str] = []
    for name, value in sorted((item.get("min") or {}).items()):
        problems += _some(min_constraint(kind, name, value, requests, limits))
    for name, value in sorted((item.get("max") or {}).items()):
        problems += _some(max_constraint(kind, name, value, requests, limits))
    for name, value in sorted((item.get("maxLimitRequestRatio") or {}).items()):
        problems += _some(ratio_constraint(kind, name, value, requests, limits))
    return problems


def _some(problem: str) -> list[str]:
    return [problem] if problem else []


def _text(values: Mapping[str, Fraction]) -> dict[str, str]:
    return {name: quota.format_quantity(value) for name, value in values.items()}


def _milli(value: object) -> int:
    """What upstream compares: the milli-value, rounded up."""
    number = quantity_value(value)
    return math.ceil(number * 1000) if number is not None else 0


def _shown(value: object) -> str:
    return canonical_quantity(value) or str(value)


def min_constraint(kind: str, name: str, enforced: object, requests: Quantities, limits: Quantities) -> str:
    floor = _shown(enforced)
    if name not in requests:
        return f"minimum {name} usage per {kind} is {floor}.  No request is specified"
    if _milli(requests[name]) < _milli(enforced):
        return f"minimum {name} usage per {kind} is {floor}, but request is {_shown(requests[name])}"
    if name in limits and _milli(limits[name]) < _milli(enforced):
        return f"minimum {name} usage per {kind} is {floor}, but limit is {_shown(limits[name])}"
    return ""


def max_constraint(kind: str, name: str, enforced: object, requests: Quantities, limits: Quantities) -> str:
    ceiling = _shown(enforced)
    if name not in limits:
        return f"maximum {name} usage per {kind} is {ceiling}.  No limit is specified"
    if _milli(limits[name]) > _milli(enforced):
        return f"maximum {name} usage per {kind} is {ceiling}, but limit is {_shown(limits[name])}"
    if name in requests and _milli(requests[name]) > _milli(enforced):
        return f"maximum {name} usage per {kind} is {ceiling}, but request is {_shown(requests[name])}"
    return ""


def max_request_constraint(kind: str, name: str, enforced: object, requests: Quantities) -> str:
    ceiling = _shown(enforced)
    if name not in requests:
        return f"maximum {name} usage per {kind} is {ceiling}.  No request is specified"
    if _milli(requests[name]) > _milli(enforced):
        return f"maximum {name} usage per {kind} is {ceiling}, but request is {_shown(requests[name])}"
    return ""


def ratio_constraint(kind: str, name: str, enforced: object, requests: Quantities, limits: Quantities) -> str:
    ratio = _shown(enforced)
    request = _milli(requests[name]) if name in requests else 0
    limit = _milli(limits[name]) if name in limits else 0
    if not request:
        return (
            f"{name} max limit to request ratio per {kind} is {ratio}, "
            "but no request is specified or request is 0"
        )
    if not limit:
        return (
            f"{name} max limit to request ratio per {kind} is {ratio}, "
            "but no limit is specified or limit is 0"
        )
    observed = Fraction(limit, request)
    if observed * 1000 > _milli(enforced):
        return (
            f"{name} max limit to request ratio per {kind} is {ratio}, "
            f"but provided ratio is {float(observed):f}"
        )
    return ""
