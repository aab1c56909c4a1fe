"""What an object costs a ResourceQuota: upstream's quota evaluators, shared by the API server's
admission (which charges each write) and the resourcequota controller (which recounts).

Usage is a :data:`ResourceList` of exact numbers (``Fraction``) by resource name, as
``pkg/quota/v1/evaluator/core`` computes it:

- every object of a namespaced resource counts ``count/<plural>.<group>`` (``count/<plural>``
  for the core group), and the legacy names ``pods``, ``services``, ``configmaps``,
  ``secrets``, ``persistentvolumeclaims``, ``replicationcontrollers``, ``resourcequotas``;
- a pod that has not ended counts ``pods`` and its compute resources: ``requests.cpu`` (and
  ``cpu``), ``requests.memory`` (and ``memory``), ``requests.ephemeral-storage``,
  ``limits.*``, hugepages and extended resources (``requests.<name>``);
- a Service counts ``services.nodeports`` and ``services.loadbalancers`` by its type;
- a PersistentVolumeClaim counts ``requests.storage`` and the per-StorageClass names.

A quota applies to an object when its scopes (``spec.scopes`` and ``spec.scopeSelector``)
match it: only pods are ever matched by a scoped quota.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

from k3py.api.defaults import canonical_quantity, quantity_value

Obj = dict[str, Any]
ResourceList = dict[str, Fraction]

LEGACY_COUNTS = frozenset(
    {
        "pods",
        "services",
        "configmaps",
        "secrets",
        "persistentvolumeclaims",
        "replicationcontrollers",
        "resourcequotas",
    }
)
"""Resources whose object count also has a plain name (``pods``), besides ``count/<plural>``."""
COMPUTE = ("cpu", "memory", "ephemeral-storage")
POD_VALIDATION = frozenset(
    {"requests.cpu", "requests.memory", "limits.cpu", "limits.memory", "cpu", "memory"}
)
"""What a quota on pods requires every container to state (upstream's backward compatibility)."""
STORAGE_CLASS_SUFFIX = ".storageclass.storage.k8s.io/"
TERMINAL = ("Succeeded", "Failed")
BINARY = ((6, "Ei"), (5, "Pi"), (4, "Ti"), (3, "Gi"), (2, "Mi"), (1, "Ki"))


# -- quantities ----------------------------------------------------------------------------------


def parse_list(values: object) -> ResourceList:
    """A ResourceList's quantities as numbers (what does not parse is left out)."""
    if not isinstance(values, Mapping):
        return {}
    out: ResourceList = {}
    for name, raw in values.items():
        number = quantity_value(raw)
        if number is not None:
            out[str(name)] = number
    return out


def format_quantity(value: Fraction) -> str:
    """The canonical text of a sum: binary suffixes for multiples of 1Ki, else decimal SI."""
    if value.denominator == 1 and value >= 1024:
        whole = int(value)
        for power, suffix in BINARY:
            if whole % (1024**power) == 0:
                return f"{whole // 1024**power}{suffix}"
    nanos = math.ceil(value * 10**9)
    text = canonical_quantity(f"{nanos}n")
    return text if text is not None else str(nanos) + "n"


def format_list(values: Mapping[str, Fraction]) -> dict[str, str]:
    return {name: format_quantity(value) for name, value in sorted(values.items())}


def add(a: Mapping[str, Fraction], b: Mapping[str, Fraction]) -> ResourceList:
    out = dict(a)
    for name, value in b.items():
        out[name] = out.get(name, Fraction(0)) + value
    return out


def subtract(a: Mapping[str, Fraction], b: Mapping[str, Fraction]) -> ResourceList:
    out = dict(a)
    for name, value in b.items():
        out[name] = out.get(name, Fraction(0)) - value
    return out


def mask(values: Mapping[str, Fraction], names: Iterable[str]) -> ResourceList:
    keep = set(names)
    return {name: value for name, value in values.items() if name in keep}


def pretty(values: Mapping[str, Fraction]) -> str:
    """Upstream's ``prettyPrint``: ``name=quantity`` pairs sorted by name, comma-separated."""
    return ",".join(f"{name}={format_quantity(value)}" for name, value in sorted(values.items()))


# -- usage ---------------------------------------------------------------------------------------


def object_count_name(plural: str, group: str) -> str:
    return f"count/{plural}.{group}" if group else f"count/{plural}"


def usage(plural: str, group: str, obj: Obj, now: datetime | None = None) -> ResourceList:
    """What ``obj`` (of resource ``plural`` in ``group``) counts against a quota."""
    out: ResourceList = {object_count_name(plural, group): Fraction(1)}
    if group:
        return out
    if plural == "pods":
        return add(out, pod_usage(obj, now))
    if plural in LEGACY_COUNTS:
        out[plural] = Fraction(1)
    if plural == "services":
        out.update(_service_usage(obj))
    elif plural == "persistentvolumeclaims":
        out.update(_claim_usage(obj))
    return out


def counted(pod: Obj, now: datetime | None = None) -> bool:
    """``QuotaV1Pod``: a pod counts until it ends or its grace period is over."""
    if (pod.get("status") or {}).get("phase") in TERMINAL:
        return False
    meta = pod.get("metadata") or {}
    deleted = meta.get("deletionTimestamp")
    grace = meta.get("deletionGracePeriodSeconds")
    if deleted and grace is not None:
        try:
            at = datetime.fromisoformat(str(deleted).replace("Z", "+00:00"))
        except ValueError:
            return True
        current = now or datetime.now(at.tzinfo)
        if current > at + timedelta(seconds=int(grace)):
            return False
    return True


def pod_usage(pod: Obj, now: datetime | None = None) -> ResourceList:
    if not counted(pod, now):
        return {}
    spec = pod.get("spec") or {}
    result: ResourceList = {"pods": Fraction(1)}
    return add(result, compute_usage(pod_resources(spec, "requests"), pod_resources(spec, "limits")))


def compute_usage(requests: Mapping[str, Fraction], limits: Mapping[str, Fraction]) -> ResourceList:
    """``podComputeUsageHelper``: requests and limits under their quota names."""
    out: ResourceList = {}
    for name in COMPUTE:
        if name in requests:
            out[f"requests.{name}"] = requests[name]
            out[name] = requests[name]
        if name in limits:
            out[f"limits.{name}"] = limits[name]
    for name, value in requests.items():
        if name.startswith("hugepages-") or _extended(name):
            out[f"requests.{name}"] = value
    for name, value in limits.items():
        if name.startswith("hugepages-"):
            out[f"limits.{name}"] = value
    return out


def _extended(name: str) -> bool:
    """An extended resource: domain-qualified, outside ``kubernetes.io``."""
    domain = name.partition("/")[0] if "/" in name else ""
    return bool(domain) and not domain.endswith("kubernetes.io") and not name.startswith("requests.")


def containers(spec: Obj, key: str) -> list[Obj]:
    return [c for c in spec.get(key) or [] if isinstance(c, dict)]


def container_resources(container: Obj, kind: str) -> ResourceList:
    return parse_list((container.get("resources") or {}).get(kind))


def pod_resources(spec: Obj, kind: str) -> ResourceList:
    """``PodRequests``/``PodLimits``: the containers' sum, sidecars added, the largest one-shot
    init container (with the sidecars started before it) when larger, the overhead added;
    pod-level resources replace the sum for what they name."""
    total: ResourceList = {}
    for container in containers(spec, "containers"):
        total = add(total, container_resources(container, kind))
    sidecars: ResourceList = {}
    init_max: ResourceList = {}
    for container in containers(spec, "initContainers"):
        own = container_resources(container, kind)
        if container.get("restartPolicy") == "Always":
            sidecars = add(sidecars, own)
            total = add(total, own)
            continue
        for name, value in add(own, sidecars).items():
            init_max[name] = max(init_max.get(name, Fraction(0)), value)
    for name, value in init_max.items():
        total[name] = max(total.get(name, Fraction(0)), value)
    pod_level = parse_list((spec.get("resources") or {}).get(kind))
    total.update({name: value for name, value in pod_level.items() if name in COMPUTE})
    if kind == "requests" or total:
        total = add(total, parse_list(spec.get("overhead")))
    return total


def _service_usage(service: Obj) -> ResourceList:
    spec = service.get("spec") or {}
    ports = [p for p in spec.get("ports") or [] if isinstance(p, dict)]
    kind = spec.get("type") or "ClusterIP"
    out: ResourceList = {}
    if kind == "NodePort":
        out["services.nodeports"] = Fraction(len(ports))
    elif kind == "LoadBalancer":
        if spec.get("allocateLoadBalancerNodePorts", True) is False:
            out["services.nodeports"] = Fraction(sum(1 for p in ports if p.get("nodePort")))
        else:
            out["services.nodeports"] = Fraction(len(ports))
        out["services.loadbalancers"] = Fraction(1)
    return out


def _claim_usage(claim: Obj) -> ResourceList:
    spec = claim.get("spec") or {}
    requested = parse_list((spec.get("resources") or {}).get("requests")).get("storage")
    allocated = parse_list((claim.get("status") or {}).get("allocatedResources")).get("storage")
    storage = max((v for v in (requested, allocated) if v is not None), default=None)
    out: ResourceList = {}
    storage_class = spec.get("storageClassName") or (
        (claim.get("metadata") or {}).get("annotations") or {}
    ).get("volume.beta.kubernetes.io/storage-class")
    if storage_class:
        out[f"{storage_class}{STORAGE_CLASS_SUFFIX}persistentvolumeclaims"] = Fraction(1)
    if storage is not None:
        out["requests.storage"] = storage
        if storage_class:
            out[f"{storage_class}{STORAGE_CLASS_SUFFIX}requests.storage"] = storage
    return out


# -- scopes --------------------------------------------------------------------------------------


def hard(quota: Obj) -> ResourceList:
    return parse_list((quota.get("spec") or {}).get("hard"))


def scope_selectors(quota: Obj) -> list[Obj]:
    """``spec.scopes`` and ``spec.scopeSelector`` as one list of requirements."""
    spec = quota.get("spec") or {}
    out: list[Obj] = [{"scopeName": s, "operator": "Exists"} for s in spec.get("scopes") or []]
    for expr in (spec.get("scopeSelector") or {}).get("matchExpressions") or []:
        if isinstance(expr, dict):
            out.append(expr)
    return out


def matches(quota: Obj, plural: str, group: str, obj: Obj) -> bool:
    """Whether ``quota`` applies to ``obj``: it limits something the object uses, and every
    scope requirement matches (a scoped quota only ever matches pods)."""
    limited = set((quota.get("spec") or {}).get("hard") or {})
    if not limited & set(tracked_names(plural, group, obj)):
        return False
    selectors = scope_selectors(quota)
    if not selectors:
        return True
    if group or plural != "pods":
        return False
    return all(_scope_matches(s, obj) for s in selectors)


def tracked_names(plural: str, group: str, obj: Obj) -> set[str]:
    """The quota names that can count this object (those it uses, and for pods the compute
    names a container might leave out, so their constraints are checked)."""
    names = set(usage(plural, group, obj))
    if plural == "pods" and not group:
        names |= POD_VALIDATION | {"pods"}
    return names


def _scope_matches(selector: Obj, pod: Obj) -> bool:
    scope = selector.get("scopeName")
    operator = selector.get("operator") or "Exists"
    spec = pod.get("spec") or {}
    if scope == "PriorityClass":
        name = spec.get("priorityClassName") or ""
        values = list(selector.get("values") or [])
        if operator == "Exists":
            return True
        if operator == "DoesNotExist":
            return False
        if operator == "In":
            return name in values
        if operator == "NotIn":
            return name not in values
        return False
    if scope == "Terminating":
        found = _active_deadline(spec)
    elif scope == "NotTerminating":
        found = not _active_deadline(spec)
    elif scope == "BestEffort":
        found = best_effort(spec)
    elif scope == "NotBestEffort":
        found = not best_effort(spec)
    elif scope == "CrossNamespacePodAffinity":
        found = False
    else:
        return False
    return found if operator == "Exists" else not found if operator == "DoesNotExist" else False


def _active_deadline(spec: Obj) -> bool:
    deadline = spec.get("activeDeadlineSeconds")
    return isinstance(deadline, int) and deadline >= 0


def best_effort(spec: Obj) -> bool:
    """QoS class BestEffort: no container requests or limits cpu or memory."""
    for key in ("containers", "initContainers"):
        for container in containers(spec, key):
            resources = container.get("resources") or {}
            for kind in ("requests", "limits"):
                if any(name in ("cpu", "memory") for name in resources.get(kind) or {}):
                    return False
    return True


def pod_constraints(required: Iterable[str], pod: Obj) -> str:
    """Upstream's pod ``Constraints``: "" or what containers leave out that the quota needs
    (``must specify limits.cpu for: app; requests.memory for: app,init``)."""
    wanted = set(required) & POD_VALIDATION
    if not wanted:
        return ""
    spec = pod.get("spec") or {}
    missing: dict[str, set[str]] = {}
    for key in ("containers", "initContainers"):
        for container in containers(spec, key):
            stated = set(
                compute_usage(
                    container_resources(container, "requests"), container_resources(container, "limits")
                )
            )
            for name in wanted - stated:
                missing.setdefault(name, set()).add(str(container.get("name") or ""))
    if not missing:
        return ""
    parts = [f"{name} for: {','.join(sorted(missing[name]))}" for name in sorted(missing)]
    return "must specify " + "; ".join(parts)


# -- a namespace's usage -------------------------------------------------------------------------

ResourceKey = tuple[str, str]
"""(plural, group) of a resource whose objects a quota counts."""
_BY_PREFIX = (
    ("requests.storage", ("persistentvolumeclaims", "")),
    ("services", ("services", "")),
    ("requests.", ("pods", "")),
    ("limits.", ("pods", "")),
    ("hugepages-", ("pods", "")),
)


def resource_of(name: str) -> ResourceKey | None:
    """The resource whose objects a quota name counts (None for a name nothing counts)."""
    if name.startswith("count/"):
        plural, _, group = name[len("count/") :].partition(".")
        return plural, group
    if STORAGE_CLASS_SUFFIX in name:
        return "persistentvolumeclaims", ""
    if name in LEGACY_COUNTS:
        return name, ""
    if name in COMPUTE:
        return "pods", ""
    for prefix, key in _BY_PREFIX:
        if name.startswith(prefix):
            return key
    return None


def resources_counted(names: Iterable[str]) -> set[ResourceKey]:
    return {key for key in map(resource_of, names) if key is not None}


def namespace_usage(
    quota: Obj, listed: Mapping[ResourceKey, Iterable[Obj]], now: datetime | None = None
) -> ResourceList:
    """``status.used`` of ``quota`` from the namespace's objects (``listed`` by resource): every
    hard name gets a value, zero when nothing uses it."""
    limited = set((quota.get("spec") or {}).get("hard") or {})
    total: ResourceList = dict.fromkeys(limited, Fraction(0))
    for (plural, group), items in listed.items():
        for obj in items:
            if matches(quota, plural, group, obj):
                total = add(total, mask(usage(plural, group, obj, now), limited))
    return total
