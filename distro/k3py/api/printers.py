"""Server-side Table printing: the answer to ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io``.

``table(resource, objects, now=...)`` renders a ``meta.k8s.io/v1`` Table the way kube-apiserver
does: the per-kind column definitions and cell logic of pkg/printers/internalversion/printers.go
(pods' STATUS and RESTARTS, deployments' READY, services' PORT(S), ...), always in wide form
(priority-1 columns included; kubectl hides them unless ``-o wide``), and for every resource
without a printer upstream's default convertor: ``Name`` and ``Created At``.

Flow: the list/get handler picks the GroupResource key (``pods``, ``deployments.apps`` -- core
resources unqualified), passes the objects already converted to the served version, the list's
metadata (or the object's resourceVersion for a single GET) and the request's ``includeObject``.
Each printer reads the v1 JSON with the defaults and v1->internal conversions upstream applies
before printing (``clusterIPs`` falling back to ``clusterIP``, missing counts as zero, ...).

Column descriptions are upstream's SwaggerDoc strings, looked up lazily in the bundled 1.37
definitions; the few that upstream takes from types 1.37 no longer serves (extensions/v1beta1)
are copied here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from k3py.api.schema import SchemaError, Schemas
from k3py.api.selectors import SelectorError, from_label_selector_object, go_quote

Obj = Mapping[str, Any]
Cell = str | int | float | bool | None
"""A Table cell; custom resources' columns may also hold numbers and nulls."""
CellsFn = Callable[[Obj, datetime], list[Cell]]


class TableError(ValueError):
    """A Table request kube-apiserver answers with 400 BadRequest; the message is upstream's."""


# -- durations and timestamps (apimachinery/pkg/util/duration) ----------------------------------

_NS: Final = 1_000_000_000


def _trunc_div(a: int, b: int) -> int:
    return -(-a // b) if a < 0 else a // b


def human_duration(delta: timedelta) -> str:
    """``duration.HumanDuration``: kubectl's AGE ("5s", "3m2s", "2d3h", "45d", "2y100d", ...)."""
    ns = (delta.days * 86_400 + delta.seconds) * _NS + delta.microseconds * 1000
    seconds = _trunc_div(ns, _NS)
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = ns // (60 * _NS)
    if minutes < 10:
        return f"{minutes}m" if seconds % 60 == 0 else f"{minutes}m{seconds % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = ns // (3600 * _NS)
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d" if hours % 24 == 0 else f"{hours // 24}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    years, days = divmod(hours // 24, 365)
    if hours < 24 * 365 * 8 and days:
        return f"{years}y{days}d"
    return f"{years}y"


def _time(value: object) -> datetime | None:
    """A metav1.Time / MicroTime; None for the zero time (serialized as null or absent)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _since(value: object, now: datetime) -> str:
    """``translateTimestampSince``."""
    when = _time(value)
    return "<unknown>" if when is None else human_duration(now - when)


def age_of(value: str, now: datetime) -> str:
    """A ``date`` column of a custom resource: the time's age, ``<unknown>`` for the zero time,
    ``<invalid>`` for text that is not a time (``ConvertToHumanReadableDateType``)."""
    if value in ("", "null"):
        return "<unknown>"
    when = _time(value)
    return "<invalid>" if when is None else human_duration(now - when)


# -- reading v1 JSON the way the internal types see it ------------------------------------------


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _str(obj: Any, *path: str) -> str:
    value = _get(obj, *path)
    return value if isinstance(value, str) else ""


def _int(obj: Any, *path: str) -> int:
    value = _get(obj, *path)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _list(obj: Any, *path: str) -> list[Any]:
    value = _get(obj, *path)
    return value if isinstance(value, list) else []


def _map(obj: Any, *path: str) -> Mapping[str, Any]:
    value = _get(obj, *path)
    return value if isinstance(value, Mapping) else {}


def _name(obj: Obj) -> str:
    return _str(obj, "metadata", "name")


def _age(obj: Obj, now: datetime) -> str:
    return _since(_get(obj, "metadata", "creationTimestamp"), now)


def _deleting(obj: Obj) -> bool:
    return _get(obj, "metadata", "deletionTimestamp") is not None


def format_labels(labels: Mapping[str, Any]) -> str:
    """``labels.FormatLabels``: sorted ``k=v`` pairs, or ``<none>``."""
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels)) or "<none>"


def format_label_selector(selector: Obj | None) -> str:
    """``metav1.FormatLabelSelector``."""
    try:
        return str(from_label_selector_object(selector)) or "<none>"
    except SelectorError:
        return "<error>"


def _containers(template_spec: Obj) -> tuple[str, str]:
    """``layoutContainerCells``: container names and images, comma-joined."""
    containers = _list(template_spec, "containers")
    return ",".join(_str(c, "name") for c in containers), ",".join(_str(c, "image") for c in containers)


def _bool_ptr(value: object) -> str:
    return "<unset>" if not isinstance(value, bool) else ("True" if value else "False")


def _condition_true(conditions: Iterable[Any], kind: str) -> bool:
    """The first condition of ``kind`` decides (``hasJobCondition``)."""
    for condition in conditions:
        if _str(condition, "type") == kind:
            return _str(condition, "status") == "True"
    return False


def _more(items: list[str], count: int, limit: int, empty: str) -> str:
    """``listWithMoreString`` and friends: the first ``limit`` items, then ``+ N more...``."""
    shown = ",".join(items[:limit])
    if count > limit:
        return f"{shown} + {count - limit} more..."
    return shown or empty


# -- columns ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Doc:
    """A column description taken from a field's documentation in the bundled definitions."""

    definition: str  # e.g. "io.k8s.api.core.v1.PodSpec"
    field: str


@functools.cache
def _describe(doc: Doc) -> str:
    try:
        prop = Schemas.get().definition(doc.definition)["properties"][doc.field]
    except (KeyError, SchemaError):  # descriptions are cosmetic: never fail a request over one
        return ""
    description = prop.get("description")
    return description if isinstance(description, str) else ""


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str
    description: str | Doc
    format: str = ""
    priority: int = 0  # 1: shown by kubectl only with -o wide

    def definition(self) -> dict[str, Any]:
        description = self.description if isinstance(self.description, str) else _describe(self.description)
        return {
            "name": self.name,
            "type": self.type,
            "format": self.format,
            "description": description,
            "priority": self.priority,
        }


def _core(kind: str, field: str) -> Doc:
    return Doc(f"io.k8s.api.core.v1.{kind}", field)


def _api(group_version: str, kind: str, field: str) -> Doc:
    return Doc(f"io.k8s.api.{group_version}.{kind}", field)


def _col(name: str, description: str | Doc, type_: str = "string", priority: int = 0) -> Column:
    return Column(name, type_, description, priority=priority)


def _wide(name: str, description: str | Doc) -> Column:
    return Column(name, "string", description, priority=1)


NAME: Final = Column(
    "Name", "string", Doc("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "name"), format="name"
)
AGE: Final = _col("Age", Doc("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "creationTimestamp"))
CONTAINERS: Final = _wide("Containers", "Names of each container in the template.")
IMAGES: Final = _wide("Images", "Images referenced by each container in the template.")

# extensions/v1beta1 SwaggerDoc strings that upstream's printers still use for apps columns.
_EXT_REPLICASET_SPEC_REPLICAS = (
    "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and "
    "unspecified. Defaults to 1. More info: "
    "https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller"
)
_EXT_REPLICASET_STATUS_REPLICAS = (
    "Replicas is the most recently oberved number of replicas. More info: "
    "https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller"
)
_EXT_REPLICASET_SELECTOR = (
    "Selector is a label query over pods that should match the replica count. If the selector is empty, "
    "it is defaulted to the labels present on the pod template. Label keys and values that must match in "
    "order to be controlled by this replica set. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors"
)
_EXT_DAEMONSET_INFO = "More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/"
_EXT_DAEMONSET_SELECTOR = (
    "A label query over pods that are managed by the daemon set. Must match in order to be controlled. "
    "If empty, defaulted to labels on Pod template. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors"
)


@dataclass(frozen=True, slots=True)
class Printer:
    """One kind's columns and how to fill them from an object (always the wide cells)."""

    columns: tuple[Column, ...]
    cells: CellsFn
    conditions: Callable[[Obj], list[dict[str, str]]] | None = None


# -- pods -----------------------------------------------------------------------------------------


def _restartable(container: Any) -> bool:
    """A sidecar: an init container with ``restartPolicy: Always``."""
    return _str(container, "restartPolicy") == "Always"


def _later(current: datetime | None, state: Any) -> datetime | None:
    finished = _time(_get(state, "lastState", "terminated", "finishedAt"))
    if finished is not None and (current is None or finished > current):
        return finished
    return current


def _pod_cells(pod: Obj, now: datetime) -> list[Cell]:
    spec, status = _map(pod, "spec"), _map(pod, "status")
    init_specs = _list(spec, "initContainers")
    by_name = {_str(c, "name"): c for c in init_specs}
    total = len(_list(spec, "containers")) + sum(1 for c in init_specs if _restartable(c))
    ready = restarts = sidecar_restarts = 0
    last_restart: datetime | None = None
    last_sidecar_restart: datetime | None = None
    phase = _str(status, "phase")
    reason = _str(status, "reason") or phase
    if any(
        _str(c, "type") == "PodScheduled" and _str(c, "reason") == "SchedulingGated"
        for c in _list(status, "conditions")
    ):
        reason = "SchedulingGated"

    initializing = False
    for i, cs in enumerate(_list(status, "initContainerStatuses")):
        restarts += _int(cs, "restartCount")
        last_restart = _later(last_restart, cs)
        sidecar = _restartable(by_name.get(_str(cs, "name")))
        if sidecar:
            sidecar_restarts += _int(cs, "restartCount")
            last_sidecar_restart = _later(last_sidecar_restart, cs)
        terminated = _get(cs, "state", "terminated")
        waiting = _get(cs, "state", "waiting")
        if isinstance(terminated, Mapping) and _int(terminated, "exitCode") == 0:
            continue
        if sidecar and _get(cs, "started") is True:
            ready += 1 if _get(cs, "ready") is True else 0
            continue
        if isinstance(terminated, Mapping):
            if why := _str(terminated, "reason"):
                reason = "Init:" + why
            elif signal := _int(terminated, "signal"):
                reason = f"Init:Signal:{signal}"
            else:
                reason = f"Init:ExitCode:{_int(terminated, 'exitCode')}"
        elif _str(waiting, "reason") not in ("", "PodInitializing"):
            reason = "Init:" + _str(waiting, "reason")
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break

    if not initializing or _condition_true(_list(status, "conditions"), "Initialized"):
        restarts, last_restart = sidecar_restarts, last_sidecar_restart
        has_running = False
        for cs in reversed(_list(status, "containerStatuses")):
            restarts += _int(cs, "restartCount")
            last_restart = _later(last_restart, cs)
            terminated = _get(cs, "state", "terminated")
            if why := _str(cs, "state", "waiting", "reason"):
                reason = why
            elif isinstance(terminated, Mapping):
                if why := _str(terminated, "reason"):
                    reason = why
                elif signal := _int(terminated, "signal"):
                    reason = f"Signal:{signal}"
                else:
                    reason = f"ExitCode:{_int(terminated, 'exitCode')}"
            elif _get(cs, "ready") is True and isinstance(_get(cs, "state", "running"), Mapping):
                has_running = True
                ready += 1
        # A pod that completed but still has a running container reads as Running (or NotReady).
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_true(_list(status, "conditions"), "Ready") else "NotReady"

    if _deleting(pod) and _str(status, "reason") == "NodeLost":
        reason = "Unknown"
    elif _deleting(pod) and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"

    restarts_cell = str(restarts)
    if restarts and last_restart is not None:
        restarts_cell = f"{restarts} ({human_duration(now - last_restart)} ago)"

    pod_ips = _list(status, "podIPs")
    pod_ip = _str(pod_ips[0], "ip") if pod_ips else _str(status, "podIP")
    gates = _list(spec, "readinessGates")
    gates_cell = "<none>"
    if gates:
        conditions = {_str(c, "type"): _str(c, "status") for c in reversed(_list(status, "conditions"))}
        passing = sum(1 for g in gates if conditions.get(_str(g, "conditionType")) == "True")
        gates_cell = f"{passing}/{len(gates)}"
    return [
        _name(pod),
        f"{ready}/{total}",
        reason,
        restarts_cell,
        _age(pod, now),
        pod_ip or "<none>",
        _str(spec, "nodeName") or "<none>",
        _str(status, "nominatedNodeName") or "<none>",
        gates_cell,
    ]


def _pod_conditions(pod: Obj) -> list[dict[str, str]]:
    phase = _str(pod, "status", "phase")
    if phase == "Succeeded":
        return [
            {
                "type": "Completed",
                "status": "True",
                "reason": phase,
                "message": "The pod has completed successfully.",
            }
        ]
    if phase == "Failed":
        return [{"type": "Completed", "status": "True", "reason": phase, "message": "The pod failed."}]
    return []


_POD = Printer(
    (
        NAME,
        _col("Ready", "The aggregate readiness state of this pod for accepting traffic."),
        _col("Status", "The aggregate status of the containers in this pod."),
        _col(
            "Restarts",
            "The number of times the containers in this pod have been restarted and when the last container "
            "in this pod has restarted.",
        ),
        AGE,
        _wide("IP", _core("PodStatus", "podIP")),
        _wide("Node", _core("PodSpec", "nodeName")),
        _wide("Nominated Node", _core("PodStatus", "nominatedNodeName")),
        _wide("Readiness Gates", _core("PodSpec", "readinessGates")),
    ),
    _pod_cells,
    _pod_conditions,
)

# -- workloads ----------------------------------------------------------------------------------


def _deployment_cells(obj: Obj, now: datetime) -> list[Cell]:
    try:
        selector = str(from_label_selector_object(_get(obj, "spec", "selector")))
    except SelectorError:
        selector = "<invalid>"
    names, images = _containers(_map(obj, "spec", "template", "spec"))
    ready, desired = _int(obj, "status", "readyReplicas"), _int(obj, "spec", "replicas")
    return [
        _name(obj),
        f"{ready}/{desired}",
        _int(obj, "status", "updatedReplicas"),
        _int(obj, "status", "availableReplicas"),
        _age(obj, now),
        names,
        images,
        selector,
    ]


def _replica_set_cells(obj: Obj, now: datetime) -> list[Cell]:
    names, images = _containers(_map(obj, "spec", "template", "spec"))
    return [
        _name(obj),
        _int(obj, "spec", "replicas"),
        _int(obj, "status", "replicas"),
        _int(obj, "status", "readyReplicas"),
        _age(obj, now),
        names,
        images,
        format_label_selector(_get(obj, "spec", "selector")),
    ]


def _replication_controller_cells(obj: Obj, now: datetime) -> list[Cell]:
    names, images = _containers(_map(obj, "spec", "template", "spec"))
    return [
        _name(obj),
        _int(obj, "spec", "replicas"),
        _int(obj, "status", "replicas"),
        _int(obj, "status", "readyReplicas"),
        _age(obj, now),
        names,
        images,
        format_labels(_map(obj, "spec", "selector")),
    ]


def _stateful_set_cells(obj: Obj, now: datetime) -> list[Cell]:
    names, images = _containers(_map(obj, "spec", "template", "spec"))
    return [
        _name(obj),
        f"{_int(obj, 'status', 'readyReplicas')}/{_int(obj, 'spec', 'replicas')}",
        _age(obj, now),
        names,
        images,
    ]


def _daemon_set_cells(obj: Obj, now: datetime) -> list[Cell]:
    template_spec = _map(obj, "spec", "template", "spec")
    names, images = _containers(template_spec)
    status = _map(obj, "status")
    return [
        _name(obj),
        _int(status, "desiredNumberScheduled"),
        _int(status, "currentNumberScheduled"),
        _int(status, "numberReady"),
        _int(status, "updatedNumberScheduled"),
        _int(status, "numberAvailable"),
        format_labels(_map(template_spec, "nodeSelector")),
        _age(obj, now),
        names,
        images,
        format_label_selector(_get(obj, "spec", "selector")),
    ]


def _job_cells(obj: Obj, now: datetime) -> list[Cell]:
    spec, status = _map(obj, "spec"), _map(obj, "status")
    succeeded = _int(status, "succeeded")
    if isinstance(spec.get("completions"), int):
        completions = f"{succeeded}/{spec['completions']}"
    elif (parallelism := _int(spec, "parallelism")) > 1:
        completions = f"{succeeded}/1 of {parallelism}"
    else:
        completions = f"{succeeded}/1"
    started, finished = _time(status.get("startTime")), _time(status.get("completionTime"))
    took = "" if started is None else human_duration((finished or now) - started)
    conditions = _list(status, "conditions")
    if _condition_true(conditions, "Complete"):
        state = "Complete"
    elif _condition_true(conditions, "Failed"):
        state = "Failed"
    elif _deleting(obj):
        state = "Terminating"
    elif _condition_true(conditions, "Suspended"):
        state = "Suspended"
    elif _condition_true(conditions, "FailureTarget"):
        state = "FailureTarget"
    else:
        state = "Running"
    names, images = _containers(_map(spec, "template", "spec"))
    return [
        _name(obj),
        state,
        completions,
        took,
        _age(obj, now),
        names,
        images,
        format_label_selector(spec.get("selector")),
    ]


def _cron_job_cells(obj: Obj, now: datetime) -> list[Cell]:
    spec = _map(obj, "spec")
    last = _get(obj, "status", "lastScheduleTime")
    job_spec = _map(spec, "jobTemplate", "spec")
    names, images = _containers(_map(job_spec, "template", "spec"))
    return [
        _name(obj),
        _str(spec, "schedule"),
        _str(spec, "timeZone") if isinstance(spec.get("timeZone"), str) else "<none>",
        _bool_ptr(spec.get("suspend")),
        len(_list(obj, "status", "active")),
        "<none>" if last is None else _since(last, now),
        _age(obj, now),
        names,
        images,
        format_label_selector(job_spec.get("selector")),
    ]


def _template_cells(obj: Obj, now: datetime) -> list[Cell]:
    names, images = _containers(_map(obj, "template", "spec"))
    return [_name(obj), names, images, format_labels(_map(obj, "template", "metadata", "labels"))]


def _hpa_target(spec: Any, current: Any) -> str:
    """One metric as ``kubectl get hpa`` shows it: ``cpu: 40%/60%``, ``memory: <unknown>/500Mi``."""
    kind = _str(spec, "type")
    source = (
        _get(spec, {"Resource": "resource", "ContainerResource": "containerResource"}.get(kind, "")) or {}
    )
    name = _str(source, "name") if isinstance(source, dict) else ""
    target = _get(source, "target") or {} if isinstance(source, dict) else {}
    now_value = (_get(current, "resource", "current") or {}) if current else {}
    if _get(target, "averageUtilization") is not None:
        shown = (
            f"{now_value['averageUtilization']}%"
            if isinstance(now_value, dict) and "averageUtilization" in now_value
            else "<unknown>"
        )
        return f"{name}: {shown}/{_get(target, 'averageUtilization')}%"
    wanted = _get(target, "averageValue") or _get(target, "value")
    if wanted is not None:
        shown = (
            str(now_value.get("averageValue") or now_value.get("value") or "<unknown>")
            if isinstance(now_value, dict)
            else "<unknown>"
        )
        return f"{name}: {shown}/{wanted}" if name else f"{shown}/{wanted}"
    return "<unknown>"


def _hpa_cells(obj: Obj, now: datetime) -> list[Cell]:
    ref = _get(obj, "spec", "scaleTargetRef") or {}
    reference = f"{_str(ref, 'kind')}/{_str(ref, 'name')}"
    if _get(obj, "spec", "targetCPUUtilizationPercentage") is not None:  # autoscaling/v1
        current = _get(obj, "status", "currentCPUUtilizationPercentage")
        shown = f"{current}%" if current is not None else "<unknown>"
        targets = f"cpu: {shown}/{_get(obj, 'spec', 'targetCPUUtilizationPercentage')}%"
    else:
        metrics = _list(obj, "spec", "metrics")
        currents = _list(obj, "status", "currentMetrics")
        parts = [_hpa_target(m, currents[i] if i < len(currents) else None) for i, m in enumerate(metrics)]
        targets = (
            ", ".join(parts[:2]) + (f" + {len(parts) - 2} more..." if len(parts) > 2 else "") or "<none>"
        )
    minimum = _get(obj, "spec", "minReplicas")
    return [
        _name(obj),
        reference,
        targets,
        str(minimum) if minimum is not None else "<unset>",
        _get(obj, "spec", "maxReplicas") or 0,
        _get(obj, "status", "currentReplicas") or 0,
        _age(obj, now),
    ]


def _controller_revision_cells(obj: Obj, now: datetime) -> list[Cell]:
    controller = "<none>"
    for ref in _list(obj, "metadata", "ownerReferences"):
        if _get(ref, "controller") is True:
            group = _str(ref, "apiVersion").rpartition("/")[0]
            kind = _str(ref, "kind")
            group_kind = f"{kind}.{group}" if group else kind
            controller = f"{group_kind.lower()}/{_str(ref, 'name')}" if group_kind else _str(ref, "name")
            break
    return [_name(obj), controller, _int(obj, "revision"), _age(obj, now)]


# -- services and networking --------------------------------------------------------------------


def _load_balancer_ips(status: Obj) -> str:
    found = {_str(i, "ip") or _str(i, "hostname") for i in _list(status, "loadBalancer", "ingress")}
    return ",".join(sorted(found - {""}))


def _service_external_ip(svc: Obj) -> str:
    spec = _map(svc, "spec")
    external = [str(ip) for ip in _list(spec, "externalIPs")]
    kind = _str(spec, "type")
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) or "<none>"
    if kind == "LoadBalancer":
        balanced = _load_balancer_ips(_map(svc, "status"))
        if external:
            return ",".join((balanced.split(",") if balanced else []) + external)
        return balanced or "<pending>"
    if kind == "ExternalName":
        return _str(spec, "externalName")
    return "<unknown>"


def service_ports(ports: Iterable[Any]) -> str:
    """``makePortString``: ``80/TCP,443:30443/TCP``."""
    shown = []
    for port in ports:
        protocol = _str(port, "protocol") or "TCP"
        node_port = _int(port, "nodePort")
        middle = f":{node_port}" if node_port > 0 else ""
        shown.append(f"{_int(port, 'port')}{middle}/{protocol}")
    return ",".join(shown)


def _service_cells(obj: Obj, now: datetime) -> list[Cell]:
    spec = _map(obj, "spec")
    cluster_ips = _list(spec, "clusterIPs")
    cluster_ip = str(cluster_ips[0]) if cluster_ips else _str(spec, "clusterIP")
    return [
        _name(obj),
        _str(spec, "type"),
        cluster_ip or "<none>",
        _service_external_ip(obj),
        service_ports(_list(spec, "ports")) or "<none>",
        _age(obj, now),
        format_labels(_map(spec, "selector")),
    ]


def _ingress_cells(obj: Obj, now: datetime) -> list[Cell]:
    rules = _list(obj, "spec", "rules")
    hosts: list[str] = []
    more = False
    for rule in rules:  # formatHosts: rules without a host count towards "more" but show nothing
        more = more or len(hosts) == 3
        if not more and _str(rule, "host"):
            hosts.append(_str(rule, "host"))
    host_cell = ",".join(hosts) or "*"
    if more:
        host_cell += f" + {len(rules) - 3} more..."
    class_name = _get(obj, "spec", "ingressClassName")
    return [
        _name(obj),
        class_name if isinstance(class_name, str) else "<none>",
        host_cell,
        _load_balancer_ips(_map(obj, "status")),
        "80, 443" if _list(obj, "spec", "tls") else "80",
        _age(obj, now),
    ]


def _ingress_class_cells(obj: Obj, now: datetime) -> list[Cell]:
    params = _get(obj, "spec", "parameters")
    shown = "<none>"
    if isinstance(params, Mapping):
        shown = _str(params, "kind")
        if isinstance(params.get("apiGroup"), str):
            shown += "." + params["apiGroup"]
        shown += "/" + _str(params, "name")
    return [_name(obj), _str(obj, "spec", "controller"), shown, _age(obj, now)]


def _endpoint_slice_cells(obj: Obj, now: datetime) -> list[Cell]:
    ports = []
    for port in _list(obj, "ports"):
        number, name = _get(port, "port"), _get(port, "name")
        ports.append(str(number) if isinstance(number, int) else name if isinstance(name, str) else "*")
    addresses = [str(a) for e in _list(obj, "endpoints") for a in _list(e, "addresses")]
    return [
        _name(obj),
        _str(obj, "addressType"),
        _more(ports, len(ports), 3, "<unset>"),
        _more(addresses, len(addresses), 3, "<unset>"),
        _age(obj, now),
    ]


def _int_or_string(value: object) -> str:
    return str(value) if isinstance(value, int | str) and not isinstance(value, bool) else "N/A"


# -- nodes, config, storage, RBAC, the rest -----------------------------------------------------


def _node_cells(obj: Obj, now: datetime) -> list[Cell]:
    ready = {_str(c, "type"): _str(c, "status") for c in _list(obj, "status", "conditions")}.get("Ready")
    states = ["Unknown" if ready is None else "Ready" if ready == "True" else "NotReady"]
    if _get(obj, "spec", "unschedulable") is True:
        states.append("SchedulingDisabled")
    roles = set()
    for key, value in _map(obj, "metadata", "labels").items():
        if key.startswith("node-role.kubernetes.io/") and len(key) > len("node-role.kubernetes.io/"):
            roles.add(key.removeprefix("node-role.kubernetes.io/"))
        elif key == "kubernetes.io/role" and value:
            roles.add(str(value))
    info = _map(obj, "status", "nodeInfo")

    def address(kind: str) -> str:
        found = (_str(a, "address") for a in _list(obj, "status", "addresses") if _str(a, "type") == kind)
        return next(found, "<none>")

    return [
        _name(obj),
        ",".join(states),
        ",".join(sorted(roles)) or "<none>",
        _age(obj, now),
        _str(info, "kubeletVersion"),
        address("InternalIP"),
        address("ExternalIP"),
        _str(info, "osImage") or "<unknown>",
        _str(info, "kernelVersion") or "<unknown>",
        _str(info, "containerRuntimeVersion") or "<unknown>",
    ]


def _event_view(event: Obj) -> dict[str, Any]:
    """An events.k8s.io/v1 Event seen through core/v1 field names (one internal type upstream)."""
    if "regarding" not in event and "note" not in event and "reportingController" not in event:
        return dict(event)
    return {
        "metadata": event.get("metadata"),
        "involvedObject": event.get("regarding"),
        "message": event.get("note"),
        "source": event.get("deprecatedSource"),
        "firstTimestamp": event.get("deprecatedFirstTimestamp"),
        "lastTimestamp": event.get("deprecatedLastTimestamp"),
        "count": event.get("deprecatedCount"),
        "reportingComponent": event.get("reportingController"),
        **{key: event.get(key) for key in ("reportingInstance", "eventTime", "series", "type", "reason")},
    }


def _event_cells(obj: Obj, now: datetime) -> list[Cell]:
    event = _event_view(obj)
    first = _get(event, "firstTimestamp")
    first_seen = _since(first if _time(first) is not None else event.get("eventTime"), now)
    last = _get(event, "lastTimestamp")
    last_seen = first_seen if _time(last) is None else _since(last, now)
    count = _int(event, "count")
    series = event.get("series")
    if isinstance(series, Mapping):
        last_seen, count = _since(series.get("lastObservedTime"), now), _int(series, "count")
    elif count == 0:
        count = 1  # singleton events have no count in the new API
    kind, name = _str(event, "involvedObject", "kind").lower(), _str(event, "involvedObject", "name")
    component = _str(event, "source", "component") or _str(event, "reportingComponent")
    instance = _str(event, "source", "host") or _str(event, "reportingInstance")
    return [
        last_seen,
        _str(event, "type"),
        _str(event, "reason"),
        f"{kind}/{name}" if name else kind,
        _str(event, "involvedObject", "fieldPath"),
        f"{component}, {instance}" if instance else component,
        _str(event, "message").strip(),
        first_seen,
        count,
        _name(event),
    ]


def _access_modes(modes: list[Any]) -> str:
    """``GetAccessModesAsString``."""
    shown = {
        "ReadWriteOnce": "RWO",
        "ReadOnlyMany": "ROX",
        "ReadWriteMany": "RWX",
        "ReadWriteOncePod": "RWOP",
    }
    return ",".join(short for mode, short in shown.items() if mode in modes)


def _storage_class_of(obj: Obj, spec_class: object) -> str:
    annotations = _map(obj, "metadata", "annotations")
    if "volume.beta.kubernetes.io/storage-class" in annotations:
        return str(annotations["volume.beta.kubernetes.io/storage-class"])
    return spec_class if isinstance(spec_class, str) else ""


def _quantity(resources: Obj, name: str) -> str:
    value = resources.get(name)
    return str(value) if value is not None else "0"  # Go's zero Quantity prints "0"


def _persistent_volume_cells(obj: Obj, now: datetime) -> list[Cell]:
    spec = _map(obj, "spec")
    claim = _get(spec, "claimRef")
    vac = spec.get("volumeAttributesClassName")
    return [
        _name(obj),
        _quantity(_map(spec, "capacity"), "storage"),
        _access_modes(_list(spec, "accessModes")),
        _str(spec, "persistentVolumeReclaimPolicy"),
        "Terminating" if _deleting(obj) else _str(obj, "status", "phase"),
        f"{_str(claim, 'namespace')}/{_str(claim, 'name')}" if isinstance(claim, Mapping) else "",
        _storage_class_of(obj, spec.get("storageClassName")),
        vac if isinstance(vac, str) else "<unset>",
        _str(obj, "status", "reason"),
        _age(obj, now),
        _str(spec, "volumeMode") or "<unset>",
    ]


def _persistent_volume_claim_cells(obj: Obj, now: datetime) -> list[Cell]:
    spec, status = _map(obj, "spec"), _map(obj, "status")
    bound = bool(_str(spec, "volumeName"))
    vac = spec.get("volumeAttributesClassName")
    return [
        _name(obj),
        "Terminating" if _deleting(obj) else _str(status, "phase"),
        _str(spec, "volumeName"),
        _quantity(_map(status, "capacity"), "storage") if bound else "",
        _access_modes(_list(status, "accessModes")) if bound else "",
        _storage_class_of(obj, spec.get("storageClassName")),
        vac if isinstance(vac, str) else "<unset>",
        _age(obj, now),
        _str(spec, "volumeMode") or "<unset>",
    ]


def _storage_class_cells(obj: Obj, now: datetime) -> list[Cell]:
    annotations = _map(obj, "metadata", "annotations")
    default = "true" in (
        annotations.get("storageclass.kubernetes.io/is-default-class"),
        annotations.get("storageclass.beta.kubernetes.io/is-default-class"),
    )
    expand = obj.get("allowVolumeExpansion")
    return [
        _name(obj) + (" (default)" if default else ""),
        _str(obj, "provisioner"),
        _str(obj, "reclaimPolicy") or "Delete",
        _str(obj, "volumeBindingMode") or "Immediate",
        expand if isinstance(expand, bool) else False,
        _age(obj, now),
    ]


def _binding_cells(obj: Obj, now: datetime) -> list[Cell]:
    users, groups, accounts = [], [], []
    for subject in _list(obj, "subjects"):
        kind, name = _str(subject, "kind"), _str(subject, "name")
        if kind == "ServiceAccount":
            accounts.append(f"{_str(subject, 'namespace')}/{name}")
        elif kind == "User":
            users.append(name)
        elif kind == "Group":
            groups.append(name)
    role = f"{_str(obj, 'roleRef', 'kind')}/{_str(obj, 'roleRef', 'name')}"
    return [_name(obj), role, _age(obj, now), ", ".join(users), ", ".join(groups), ", ".join(accounts)]


def _csr_cells(obj: Obj, now: datetime) -> list[Cell]:
    types = {_str(c, "type") for c in _list(obj, "status", "conditions")}
    state = "Denied" if "Denied" in types else "Approved" if "Approved" in types else "Pending"
    state += ",Failed" if "Failed" in types else ""
    state += ",Issued" if _str(obj, "status", "certificate") else ""
    seconds = _get(obj, "spec", "expirationSeconds")
    requested = human_duration(timedelta(seconds=seconds)) if isinstance(seconds, int) else "<none>"
    return [
        _name(obj),
        _age(obj, now),
        _str(obj, "spec", "signerName") or "<none>",
        _str(obj, "spec", "username"),
        requested,
        state,
    ]


def _resource_quota_cells(obj: Obj, now: datetime) -> list[Cell]:
    hard, used = _map(obj, "status", "hard"), _map(obj, "status", "used")
    requests: list[str] = []
    limits: list[str] = []
    for name in sorted(hard):
        pieces = name.split(".")
        target = limits if len(pieces) > 1 and pieces[0] == "limits" else requests
        target.append(f"{name}: {_quantity(used, name)}/{_quantity(hard, name)}")
    return [_name(obj), ", ".join(requests), ", ".join(limits), _age(obj, now)]


def _priority_class_cells(obj: Obj, now: datetime) -> list[Cell]:
    return [
        _name(obj),
        _int(obj, "value"),
        obj.get("globalDefault") is True,
        _age(obj, now),
        _str(obj, "preemptionPolicy"),
    ]


def _apiservice_service(obj: Obj) -> str:
    ref = _get(obj, "spec", "service")
    if not isinstance(ref, dict):
        return "Local"
    return f"{ref.get('namespace') or ''}/{ref.get('name') or ''}"


def _apiservice_available(obj: Obj) -> str:
    """kube-aggregator's cell: ``True``, ``False (Reason)``, or ``Unknown`` without a condition."""
    conditions = _get(obj, "status", "conditions")
    for condition in conditions if isinstance(conditions, list) else []:
        if isinstance(condition, dict) and condition.get("type") == "Available":
            status = str(condition.get("status") or "")
            reason = condition.get("reason")
            return f"{status} ({reason})" if reason and status != "True" else status
    return "Unknown"


def _simple(*fields: Callable[[Obj], Cell], age: bool = True) -> CellsFn:
    """Cells that are the name, then ``fields`` of the object, then (usually) the age."""

    def cells(obj: Obj, now: datetime) -> list[Cell]:
        return [_name(obj), *(f(obj) for f in fields), *([_age(obj, now)] if age else [])]

    return cells


def _default_cells(obj: Obj, now: datetime) -> list[Cell]:
    created = _time(_get(obj, "metadata", "creationTimestamp"))
    stamp = created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if created else "0001-01-01T00:00:00Z"
    return [_name(obj), stamp]


_REPLICA_SET_COLUMNS = (
    NAME,
    _col("Desired", _EXT_REPLICASET_SPEC_REPLICAS, "integer"),
    _col("Current", _EXT_REPLICASET_STATUS_REPLICAS, "integer"),
    _col("Ready", "The number of ready replicas for this replica set.", "integer"),
    AGE,
    CONTAINERS,
    IMAGES,
    _wide("Selector", _EXT_REPLICASET_SELECTOR),
)
_BINDING_COLUMNS = (
    NAME,
    _col("Role", _api("rbac.v1", "RoleBinding", "roleRef")),
    AGE,
    _wide("Users", "Users in the roleBinding"),
    _wide("Groups", "Groups in the roleBinding"),
    _wide("ServiceAccounts", "ServiceAccounts in the roleBinding"),
)
_WEBHOOKS = _simple(lambda o: len(_list(o, "webhooks")))
_WEBHOOK_COLUMNS = (
    NAME,
    _col("Webhooks", "Webhooks indicates the number of webhooks registered in this configuration", "integer"),
    AGE,
)

_EVENT = Printer(
    (
        _col("Last Seen", _core("Event", "lastTimestamp")),
        _col("Type", _core("Event", "type")),
        _col("Reason", _core("Event", "reason")),
        _col("Object", _core("Event", "involvedObject")),
        _wide("Subobject", _core("ObjectReference", "fieldPath")),
        _wide("Source", _core("Event", "source")),
        _col("Message", _core("Event", "message")),
        _wide("First Seen", _core("Event", "firstTimestamp")),
        _wide("Count", _core("Event", "count")),
        Column("Name", "string", NAME.description, format="name", priority=1),
    ),
    _event_cells,
)

DEFAULT_PRINTER: Final = Printer(
    (
        NAME,
        Column(
            "Created At", "date", Doc("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "creationTimestamp")
        ),
    ),
    _default_cells,
)

# Keyed by GroupResource string: the plural for the core group, "plural.group" otherwise.
PRINTERS: Final[Mapping[str, Printer]] = {
    "pods": _POD,
    "podtemplates": Printer(
        (
            NAME,
            _col("Containers", "Names of each container in the template."),
            _col("Images", "Images referenced by each container in the template."),
            _col("Pod Labels", "The labels for the pod template."),
        ),
        _template_cells,
    ),
    "replicationcontrollers": Printer(
        (
            NAME,
            _col("Desired", _core("ReplicationControllerSpec", "replicas"), "integer"),
            _col("Current", _core("ReplicationControllerStatus", "replicas"), "integer"),
            _col("Ready", _core("ReplicationControllerStatus", "readyReplicas"), "integer"),
            AGE,
            CONTAINERS,
            IMAGES,
            _wide("Selector", _core("ReplicationControllerSpec", "selector")),
        ),
        _replication_controller_cells,
    ),
    "deployments.apps": Printer(
        (
            NAME,
            _col("Ready", "Number of the pod with ready state"),
            _col(
                "Up-to-date",
                "Total number of non-terminated pods targeted by this deployment that have the desired "
                "template spec.",
            ),
            _col(
                "Available",
                "Total number of available pods (ready for at least minReadySeconds) targeted by this "
                "deployment.",
            ),
            AGE,
            CONTAINERS,
            IMAGES,
            _wide(
                "Selector",
                "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the "
                "ones affected by this deployment.",
            ),
        ),
        _deployment_cells,
    ),
    "replicasets.apps": Printer(_REPLICA_SET_COLUMNS, _replica_set_cells),
    "statefulsets.apps": Printer(
        (NAME, _col("Ready", "Number of the pod with ready state"), AGE, CONTAINERS, IMAGES),
        _stateful_set_cells,
    ),
    "daemonsets.apps": Printer(
        (
            NAME,
            _col(
                "Desired",
                "The total number of nodes that should be running the daemon pod (including nodes "
                "correctly running the daemon pod). " + _EXT_DAEMONSET_INFO,
                "integer",
            ),
            _col(
                "Current",
                "The number of nodes that are running at least 1 daemon pod and are supposed to run "
                "the daemon pod. " + _EXT_DAEMONSET_INFO,
                "integer",
            ),
            _col(
                "Ready",
                "The number of nodes that should be running the daemon pod and have one or more of the "
                "daemon pod running and ready.",
                "integer",
            ),
            _col("Up-to-date", "The total number of nodes that are running updated daemon pod", "integer"),
            _col(
                "Available",
                "The number of nodes that should be running the daemon pod and have one or more of "
                "the daemon pod running and available (ready for at least spec.minReadySeconds)",
                "integer",
            ),
            _col("Node Selector", _core("PodSpec", "nodeSelector")),
            AGE,
            CONTAINERS,
            IMAGES,
            _wide("Selector", _EXT_DAEMONSET_SELECTOR),
        ),
        _daemon_set_cells,
    ),
    "horizontalpodautoscalers.autoscaling": Printer(
        (
            NAME,
            _col("Reference", "Reference to the object being autoscaled"),
            _col("Targets", "Current and target value of the metrics used to scale"),
            _col("MinPods", "Lower limit for the number of pods"),
            _col("MaxPods", "Upper limit for the number of pods", "integer"),
            _col("Replicas", "Current number of replicas", "integer"),
            AGE,
        ),
        _hpa_cells,
    ),
    "controllerrevisions.apps": Printer(
        (
            NAME,
            _col("Controller", "Controller of the object"),
            _col("Revision", _api("apps.v1", "ControllerRevision", "revision")),
            AGE,
        ),
        _controller_revision_cells,
    ),
    "jobs.batch": Printer(
        (
            NAME,
            _col("Status", "Status of the job."),
            _col("Completions", _api("batch.v1", "JobStatus", "succeeded")),
            _col("Duration", "Time required to complete the job."),
            AGE,
            CONTAINERS,
            IMAGES,
            _wide("Selector", _api("batch.v1", "JobSpec", "selector")),
        ),
        _job_cells,
    ),
    "cronjobs.batch": Printer(
        (
            NAME,
            _col("Schedule", _api("batch.v1", "CronJobSpec", "schedule")),
            _col("Timezone", _api("batch.v1", "CronJobSpec", "timeZone")),
            _col("Suspend", _api("batch.v1", "CronJobSpec", "suspend"), "boolean"),
            _col("Active", _api("batch.v1", "CronJobStatus", "active"), "integer"),
            _col("Last Schedule", _api("batch.v1", "CronJobStatus", "lastScheduleTime")),
            AGE,
            CONTAINERS,
            IMAGES,
            _wide("Selector", _api("batch.v1", "JobSpec", "selector")),
        ),
        _cron_job_cells,
    ),
    "services": Printer(
        (
            NAME,
            _col("Type", _core("ServiceSpec", "type")),
            _col("Cluster-IP", _core("ServiceSpec", "clusterIP")),
            _col("External-IP", _core("ServiceSpec", "externalIPs")),
            _col("Port(s)", _core("ServiceSpec", "ports")),
            AGE,
            _wide("Selector", _core("ServiceSpec", "selector")),
        ),
        _service_cells,
    ),
    "ingresses.networking.k8s.io": Printer(
        (
            NAME,
            _col(
                "Class",
                "The name of the IngressClass resource that should be used for additional configuration",
            ),
            _col("Hosts", "Hosts that incoming requests are matched against before the ingress rule"),
            _col("Address", "Address is a list containing ingress points for the load-balancer"),
            _col("Ports", "Ports of TLS configurations that open"),
            AGE,
        ),
        _ingress_cells,
    ),
    "ingressclasses.networking.k8s.io": Printer(
        (
            NAME,
            _col("Controller", "Controller that is responsible for handling this class"),
            _col("Parameters", "A reference to a resource with additional parameters"),
            AGE,
        ),
        _ingress_class_cells,
    ),
    "networkpolicies.networking.k8s.io": Printer(
        (NAME, _col("Pod-Selector", _api("networking.v1", "NetworkPolicySpec", "podSelector")), AGE),
        _simple(lambda o: format_label_selector(_map(o, "spec", "podSelector"))),
    ),
    "endpointslices.discovery.k8s.io": Printer(
        (
            NAME,
            _col("AddressType", _api("discovery.v1", "EndpointSlice", "addressType")),
            _col("Ports", _api("discovery.v1", "EndpointSlice", "ports")),
            _col("Endpoints", _api("discovery.v1", "EndpointSlice", "endpoints")),
            AGE,
        ),
        _endpoint_slice_cells,
    ),
    "nodes": Printer(
        (
            NAME,
            _col("Status", "The status of the node"),
            _col("Roles", "The roles of the node"),
            AGE,
            _col("Version", _core("NodeSystemInfo", "kubeletVersion")),
            _wide("Internal-IP", _core("NodeStatus", "addresses")),
            _wide("External-IP", _core("NodeStatus", "addresses")),
            _wide("OS-Image", _core("NodeSystemInfo", "osImage")),
            _wide("Kernel-Version", _core("NodeSystemInfo", "kernelVersion")),
            _wide("Container-Runtime", _core("NodeSystemInfo", "containerRuntimeVersion")),
        ),
        _node_cells,
    ),
    "events": _EVENT,
    "events.events.k8s.io": _EVENT,  # one internal type upstream; see _event_view
    "namespaces": Printer(
        (NAME, _col("Status", "The status of the namespace"), AGE),
        _simple(lambda o: _str(o, "status", "phase")),
    ),
    "secrets": Printer(
        (NAME, _col("Type", _core("Secret", "type")), _col("Data", _core("Secret", "data")), AGE),
        _simple(lambda o: _str(o, "type"), lambda o: len(_map(o, "data"))),
    ),
    "configmaps": Printer(
        (NAME, _col("Data", _core("ConfigMap", "data")), AGE),
        _simple(lambda o: len(_map(o, "data")) + len(_map(o, "binaryData"))),
    ),
    "serviceaccounts": Printer(
        (NAME, _col("Secrets", _core("ServiceAccount", "secrets")), AGE),
        _simple(lambda o: len(_list(o, "secrets"))),
    ),
    "resourcequotas": Printer(
        (
            NAME,
            _col(
                "Request", "Request represents a minimum amount of cpu/memory that a container may consume."
            ),
            _col(
                "Limit",
                "Limits control the maximum amount of cpu/memory that a container may use independent of "
                "contention on the node.",
            ),
            AGE,
        ),
        _resource_quota_cells,
    ),
    "persistentvolumes": Printer(
        (
            NAME,
            _col("Capacity", _core("PersistentVolumeSpec", "capacity")),
            _col("Access Modes", _core("PersistentVolumeSpec", "accessModes")),
            _col("Reclaim Policy", _core("PersistentVolumeSpec", "persistentVolumeReclaimPolicy")),
            _col("Status", _core("PersistentVolumeStatus", "phase")),
            _col("Claim", _core("PersistentVolumeSpec", "claimRef")),
            _col("StorageClass", "StorageClass of the pv"),
            _col("VolumeAttributesClass", "VolumeAttributesClass of the pv"),
            _col("Reason", _core("PersistentVolumeStatus", "reason")),
            AGE,
            _wide("VolumeMode", _core("PersistentVolumeSpec", "volumeMode")),
        ),
        _persistent_volume_cells,
    ),
    "persistentvolumeclaims": Printer(
        (
            NAME,
            _col("Status", _core("PersistentVolumeClaimStatus", "phase")),
            _col("Volume", _core("PersistentVolumeClaimSpec", "volumeName")),
            _col("Capacity", _core("PersistentVolumeClaimStatus", "capacity")),
            _col("Access Modes", _core("PersistentVolumeClaimStatus", "accessModes")),
            _col("StorageClass", "StorageClass of the pvc"),
            _col("VolumeAttributesClass", "VolumeAttributesClass of the pvc"),
            AGE,
            _wide("VolumeMode", _core("PersistentVolumeClaimSpec", "volumeMode")),
        ),
        _persistent_volume_claim_cells,
    ),
    "storageclasses.storage.k8s.io": Printer(
        (
            NAME,
            _col("Provisioner", _api("storage.v1", "StorageClass", "provisioner")),
            _col("ReclaimPolicy", _api("storage.v1", "StorageClass", "reclaimPolicy")),
            _col("VolumeBindingMode", _api("storage.v1", "StorageClass", "volumeBindingMode")),
            _col("AllowVolumeExpansion", _api("storage.v1", "StorageClass", "allowVolumeExpansion")),
            AGE,
        ),
        _storage_class_cells,
    ),
    "csinodes.storage.k8s.io": Printer(
        (
            NAME,
            _col("Drivers", "Drivers indicates the number of CSI drivers registered on the node", "integer"),
            AGE,
        ),
        _simple(lambda o: len(_list(o, "spec", "drivers"))),
    ),
    "volumeattachments.storage.k8s.io": Printer(
        (
            NAME,
            Column(
                "Attacher", "string", _api("storage.v1", "VolumeAttachmentSpec", "attacher"), format="name"
            ),
            _col("PV", _api("storage.v1", "VolumeAttachmentSource", "persistentVolumeName")),
            _col("Node", _api("storage.v1", "VolumeAttachmentSpec", "nodeName")),
            _col("Attached", _api("storage.v1", "VolumeAttachmentStatus", "attached"), "boolean"),
            AGE,
        ),
        _simple(
            lambda o: _str(o, "spec", "attacher"),
            lambda o: _str(o, "spec", "source", "persistentVolumeName"),
            lambda o: _str(o, "spec", "nodeName"),
            lambda o: _get(o, "status", "attached") is True,
        ),
    ),
    "rolebindings.rbac.authorization.k8s.io": Printer(_BINDING_COLUMNS, _binding_cells),
    "clusterrolebindings.rbac.authorization.k8s.io": Printer(
        (
            NAME,
            _col("Role", _api("rbac.v1", "ClusterRoleBinding", "roleRef")),
            AGE,
            _wide("Users", "Users in the clusterRoleBinding"),
            _wide("Groups", "Groups in the clusterRoleBinding"),
            _wide("ServiceAccounts", "ServiceAccounts in the clusterRoleBinding"),
        ),
        _binding_cells,
    ),
    "certificatesigningrequests.certificates.k8s.io": Printer(
        (
            NAME,
            AGE,
            _col("SignerName", _api("certificates.v1", "CertificateSigningRequestSpec", "signerName")),
            _col("Requestor", _api("certificates.v1", "CertificateSigningRequestSpec", "request")),
            _col(
                "RequestedDuration",
                _api("certificates.v1", "CertificateSigningRequestSpec", "expirationSeconds"),
            ),
            _col("Condition", _api("certificates.v1", "CertificateSigningRequestStatus", "conditions")),
        ),
        _csr_cells,
    ),
    "apiservices.apiregistration.k8s.io": Printer(
        (
            NAME,
            _col("Service", "The reference to the service that hosts this API endpoint."),
            _col("Available", "Whether this service is available."),
            AGE,
        ),
        _simple(_apiservice_service, _apiservice_available),
    ),
    "leases.coordination.k8s.io": Printer(
        (NAME, _col("Holder", _api("coordination.v1", "LeaseSpec", "holderIdentity")), AGE),
        _simple(lambda o: _str(o, "spec", "holderIdentity")),
    ),
    "priorityclasses.scheduling.k8s.io": Printer(
        (
            NAME,
            _col("Value", _api("scheduling.v1", "PriorityClass", "value"), "integer"),
            _col("Global-Default", _api("scheduling.v1", "PriorityClass", "globalDefault"), "boolean"),
            AGE,
            _wide("PreemptionPolicy", _api("scheduling.v1", "PriorityClass", "preemptionPolicy")),
        ),
        _priority_class_cells,
    ),
    "runtimeclasses.node.k8s.io": Printer(
        # Upstream describes Handler with ObjectMeta's (absent) "handler" doc: an empty string.
        (NAME, _col("Handler", ""), AGE),
        _simple(lambda o: _str(o, "handler")),
    ),
    "poddisruptionbudgets.policy": Printer(
        (
            NAME,
            _col("Min Available", "The minimum number of pods that must be available."),
            _col("Max Unavailable", "The maximum number of pods that may be unavailable."),
            _col(
                "Allowed Disruptions",
                "Calculated number of pods that may be disrupted at this time.",
                "integer",
            ),
            AGE,
        ),
        _simple(
            lambda o: _int_or_string(_get(o, "spec", "minAvailable")),
            lambda o: _int_or_string(_get(o, "spec", "maxUnavailable")),
            lambda o: _int(o, "status", "disruptionsAllowed"),
        ),
    ),
    "mutatingwebhookconfigurations.admissionregistration.k8s.io": Printer(_WEBHOOK_COLUMNS, _WEBHOOKS),
    "validatingwebhookconfigurations.admissionregistration.k8s.io": Printer(_WEBHOOK_COLUMNS, _WEBHOOKS),
}


def printer_for(resource: str) -> Printer:
    """The printer for a GroupResource; upstream's default (Name, Created At) when none is known."""
    return PRINTERS.get(resource, DEFAULT_PRINTER)


# -- the Table ----------------------------------------------------------------------------------

_INCLUDE_OBJECT: Final = ("", "Metadata", "Object", "None")
_LIST_META_KEYS: Final = ("resourceVersion", "continue", "remainingItemCount")


def _row_object(obj: Obj, include_object: str, group_version: str) -> Any:
    if include_object == "None":
        return None  # upstream's empty RawExtension marshals as null
    if include_object == "Object":
        return obj
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": group_version,
        "metadata": dict(_map(obj, "metadata")),
    }


def table(
    resource: str,
    objects: Iterable[Obj],
    *,
    now: datetime,
    include_object: str = "Metadata",
    list_meta: Mapping[str, Any] | None = None,
    no_headers: bool = False,
    group_version: str = "meta.k8s.io/v1",
    printer: Printer | None = None,
) -> dict[str, Any]:
    """A ``meta.k8s.io/v1`` Table of ``objects`` (all of kind ``resource``), as of ``now``.

    ``include_object`` is the request's ``includeObject``: ``Metadata`` (or "") puts a
    PartialObjectMetadata in each row, ``Object`` the object itself, ``None`` nothing (null).
    ``list_meta`` is the list's metadata (``resourceVersion``, ``continue``,
    ``remainingItemCount``); for a single GET pass the object's resourceVersion. ``no_headers``
    leaves ``columnDefinitions`` null, as upstream does for ``TableOptions.noHeaders``.
    ``printer`` overrides the kind's own (a custom resource's columns come from its CRD).
    Raises ``TableError`` for an unknown ``include_object``.
    """
    if include_object not in _INCLUDE_OBJECT:
        raise TableError(f"unrecognized includeObject value: {go_quote(include_object)}")
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    printer = printer if printer is not None else printer_for(resource)
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": printer.cells(obj, now)}
        if printer.conditions is not None and (conditions := printer.conditions(obj)):
            row["conditions"] = conditions
        row["object"] = _row_object(obj, include_object, group_version)
        rows.append(row)
    meta = {k: list_meta[k] for k in _LIST_META_KEYS if list_meta and list_meta.get(k) not in (None, "")}
    return {
        "kind": "Table",
        "apiVersion": group_version,
        "metadata": meta,
        "columnDefinitions": None if no_headers else [c.definition() for c in printer.columns],
        "rows": rows,
    }
