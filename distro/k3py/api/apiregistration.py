"""APIServices (``apiregistration.k8s.io/v1``) as kube-aggregator defines them.

kube-apiserver registers one *local* APIService per built-in group-version it serves (its
autoregister controller: name ``<version>.<group>``, label
``kube-aggregator.kubernetes.io/automanaged: onstart``, the group's priorities from
:data:`PRIORITIES`) and keeps an ``Available`` condition on every APIService. This module holds
what needs no store and no network: the APIServices a registry calls for
(:func:`local_apiservices`), where a remote one sends requests (:func:`service_ref`), the
conditions an APIService can be given (:func:`static_availability` decides everything short
of calling the backend: local ones are always available; one whose Service, port or ready
endpoints are missing is not; the rest are probed by ``k3py.apiserver.aggregator_available``),
and kube-aggregator's v1 defaulting and validation. ``k3py.apiserver.apiservices`` writes them.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from k3py.api import objects
from k3py.api.resources import Registry
from k3py.api.selectors import go_quote
from k3py.api.validation import (
    Cause,
    dns1035_errors,
    dns_subdomain_errors,
    invalid,
    not_supported,
    required,
)

log = logging.getLogger(__name__)

Obj = dict[str, Any]

GROUP, VERSION, PLURAL = "apiregistration.k8s.io", "v1", "apiservices"
MANAGED_LABEL = "kube-aggregator.kubernetes.io/automanaged"
ON_START = "onstart"
MANAGED_VALUES = (ON_START, "true")
"""Label values that mark an APIService as the server's: synced at start, or continuously."""
AVAILABLE = "Available"
LOCAL_MESSAGE = "Local APIServices are always available"
PASSED_MESSAGE = "all checks passed"
DEFAULT_SERVICE_PORT = 443


@dataclass(frozen=True, slots=True)
class Priority:
    group: int
    """``groupPriorityMinimum``: the group's rank among groups (higher first)."""
    version: int
    """``versionPriority``: the version's rank inside its group (higher first)."""


# kube-apiserver's apiVersionPriorities: DefaultGenericAPIServicePriorities
# (pkg/controlplane/apiserver/aggregator.go) merged with cmd/kube-apiserver/app/aggregator.go.
PRIORITIES: dict[tuple[str, str], Priority] = {
    ("", "v1"): Priority(18000, 1),
    ("apps", "v1"): Priority(17800, 15),
    ("events.k8s.io", "v1"): Priority(17750, 15),
    ("events.k8s.io", "v1beta1"): Priority(17750, 5),
    ("authentication.k8s.io", "v1"): Priority(17700, 15),
    ("authentication.k8s.io", "v1beta1"): Priority(17700, 9),
    ("authentication.k8s.io", "v1alpha1"): Priority(17700, 1),
    ("authorization.k8s.io", "v1"): Priority(17600, 15),
    ("autoscaling", "v1"): Priority(17500, 15),
    ("autoscaling", "v2"): Priority(17500, 30),
    ("autoscaling", "v2beta1"): Priority(17500, 9),
    ("autoscaling", "v2beta2"): Priority(17500, 1),
    ("batch", "v1"): Priority(17400, 15),
    ("batch", "v1beta1"): Priority(17400, 9),
    ("batch", "v2alpha1"): Priority(17400, 9),
    ("certificates.k8s.io", "v1"): Priority(17300, 15),
    ("certificates.k8s.io", "v1beta1"): Priority(17300, 9),
    ("certificates.k8s.io", "v1alpha1"): Priority(17300, 1),
    ("networking.k8s.io", "v1"): Priority(17200, 15),
    ("networking.k8s.io", "v1beta1"): Priority(17200, 9),
    ("policy", "v1"): Priority(17100, 15),
    ("policy", "v1beta1"): Priority(17100, 9),
    ("rbac.authorization.k8s.io", "v1"): Priority(17000, 15),
    ("storage.k8s.io", "v1"): Priority(16800, 15),
    ("storage.k8s.io", "v1beta1"): Priority(16800, 9),
    ("storage.k8s.io", "v1alpha1"): Priority(16800, 1),
    ("apiextensions.k8s.io", "v1"): Priority(16700, 15),
    ("admissionregistration.k8s.io", "v1"): Priority(16700, 15),
    ("admissionregistration.k8s.io", "v1beta1"): Priority(16700, 12),
    ("admissionregistration.k8s.io", "v1alpha1"): Priority(16700, 9),
    ("scheduling.k8s.io", "v1"): Priority(16600, 15),
    ("coordination.k8s.io", "v1"): Priority(16500, 15),
    ("coordination.k8s.io", "v1beta1"): Priority(16500, 13),
    ("coordination.k8s.io", "v1alpha2"): Priority(16500, 12),
    ("node.k8s.io", "v1"): Priority(16300, 15),
    ("node.k8s.io", "v1beta1"): Priority(16300, 9),
    ("node.k8s.io", "v1alpha1"): Priority(16300, 1),
    ("discovery.k8s.io", "v1"): Priority(16200, 15),
    ("discovery.k8s.io", "v1beta1"): Priority(16200, 12),
    # The GA versions of resource.k8s.io and storagemigration.k8s.io postdate the upstream
    # tables this was checked against; their entries follow the group's existing values.
    ("resource.k8s.io", "v1"): Priority(16200, 21),
    ("resource.k8s.io", "v1beta2"): Priority(16200, 15),
    ("resource.k8s.io", "v1beta1"): Priority(16200, 9),
    ("resource.k8s.io", "v1alpha3"): Priority(16200, 1),
    ("flowcontrol.apiserver.k8s.io", "v1"): Priority(16100, 21),
    ("flowcontrol.apiserver.k8s.io", "v1beta3"): Priority(16100, 18),
    ("flowcontrol.apiserver.k8s.io", "v1beta2"): Priority(16100, 15),
    ("flowcontrol.apiserver.k8s.io", "v1beta1"): Priority(16100, 12),
    ("flowcontrol.apiserver.k8s.io", "v1alpha1"): Priority(16100, 9),
    ("internal.apiserver.k8s.io", "v1alpha1"): Priority(16000, 9),
    ("storagemigration.k8s.io", "v1"): Priority(15800, 15),
    ("storagemigration.k8s.io", "v1beta1"): Priority(15800, 9),
    ("storagemigration.k8s.io", "v1alpha1"): Priority(15800, 9),
}
"""Upstream registers no APIService for a group-version missing here (nor for its own
``apiregistration.k8s.io``): it would stay in the list for good once a CRD took the name."""


# -- what should exist ------------------------------------------------------------------------


def local_apiservices(registry: Registry) -> list[Obj]:
    """One local APIService per served group-version that has a priority, in discovery order."""
    out: list[Obj] = []
    for group in registry.groups():
        for version in registry.versions(group):
            priority = PRIORITIES.get((group, version))
            if priority is None:
                log.debug("Skipping APIService creation for %s", f"{group}/{version}".lstrip("/"))
                continue
            spec: Obj = {"group": group} if group else {}  # core's group is empty, so omitted
            spec |= {
                "version": version,
                "groupPriorityMinimum": priority.group,
                "versionPriority": priority.version,
            }
            out.append(
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "APIService",
                    "metadata": {"name": f"{version}.{group}", "labels": {MANAGED_LABEL: ON_START}},
                    "spec": spec,
                    "status": {"conditions": [local_condition()]},
                }
            )
    return out


def local_condition() -> Obj:
    return _condition("True", "Local", LOCAL_MESSAGE)


@dataclass(frozen=True, slots=True)
class ServiceRef:
    """Where a remote APIService's requests go: a Service port."""

    namespace: str
    name: str
    port: int

    @property
    def server_name(self) -> str:
        """The name its serving certificate is checked for."""
        return f"{self.name}.{self.namespace}.svc"

    def describe(self) -> str:
        return f"service/{self.name} in {go_quote(self.namespace)}"


def service_ref(apiservice: Obj) -> ServiceRef | None:
    """The Service a remote APIService names; None for a local one."""
    ref = _map(apiservice.get("spec")).get("service")
    if not isinstance(ref, dict):
        return None
    port = ref.get("port")
    return ServiceRef(
        str(ref.get("namespace") or ""),
        str(ref.get("name") or ""),
        port if isinstance(port, int) and not isinstance(port, bool) else DEFAULT_SERVICE_PORT,
    )


def group_version(apiservice: Obj) -> tuple[str, str]:
    spec = _map(apiservice.get("spec"))
    return str(spec.get("group") or ""), str(spec.get("version") or "")


def discovery_path(apiservice: Obj) -> str:
    """The path whose answer proves the backend serves the group-version."""
    group, version = group_version(apiservice)
    return f"/apis/{group}/{version}" if group else f"/api/{version}"


def is_available(apiservice: Obj) -> bool:
    condition = available_condition(apiservice)
    return condition is not None and condition.get("status") == "True"


def static_availability(apiservice: Obj, service: Obj | None, slices: Sequence[Obj]) -> Obj | None:
    """The ``Available`` condition kube-aggregator's checks before any call decide, or None
    when the backend must be called to know (``FailedDiscoveryCheck`` or ``Passed``).

    Local APIServices are always available. For one that names a Service: the Service is
    missing (``ServiceNotFound``); for a ClusterIP Service, it lacks the port
    (``ServicePortError``), has no EndpointSlices (``EndpointsNotFound``) or none with a
    ready endpoint and the port's name (``MissingEndpoints``). ``slices`` are the Service's
    EndpointSlices.
    """
    ref = service_ref(apiservice)
    if ref is None:
        return local_condition()
    where = ref.describe()
    if service is None:
        return _condition("False", "ServiceNotFound", f"{where} is not present")
    service_spec = _map(service.get("spec"))
    if (service_spec.get("type") or "ClusterIP") != "ClusterIP":
        return None
    port = next(
        (p for p in service_spec.get("ports") or [] if isinstance(p, dict) and p.get("port") == ref.port),
        None,
    )
    if port is None:
        return _condition("False", "ServicePortError", f"{where} is not listening on port {ref.port}")
    if not slices:
        return _condition(
            "False",
            "EndpointsNotFound",
            f"cannot find endpointslices for service/{ref.name} in {go_quote(ref.namespace)}",
        )
    port_name = str(port.get("name") or "")
    if not any(_serves(s, port_name) for s in slices):
        return _condition(
            "False",
            "MissingEndpoints",
            f"endpointslices for service/{ref.name} in {go_quote(ref.namespace)} have no addresses "
            f"with port name {go_quote(port_name)}",
        )
    return None


def _serves(endpoint_slice: Obj, port_name: str) -> bool:
    """``hasAvailableEndpoint``: a ready (or not saying) endpoint and a port of that name."""
    ready = any(
        _map(_map(e).get("conditions")).get("ready") is not False
        for e in endpoint_slice.get("endpoints") or []
    )
    named = any(
        isinstance(p, dict) and str(p.get("name") or "") == port_name and p.get("port") is not None
        for p in endpoint_slice.get("ports") or []
    )
    return ready and named


def passed_condition() -> Obj:
    return _condition("True", "Passed", PASSED_MESSAGE)


def failed_discovery_condition(message: str) -> Obj:
    return _condition("False", "FailedDiscoveryCheck", message)


def _condition(status: str, reason: str, message: str) -> Obj:
    return {
        "type": AVAILABLE,
        "status": status,
        "lastTransitionTime": objects.now(),
        "reason": reason,
        "message": message,
    }


def available_condition(apiservice: Obj) -> Obj | None:
    conditions = _map(apiservice.get("status")).get("conditions") or []
    return next((c for c in conditions if isinstance(c, dict) and c.get("type") == AVAILABLE), None)


def set_condition(conditions: Iterable[Obj], new: Obj) -> list[Obj]:
    """``SetAPIServiceCondition``: replace the condition of ``new``'s type, keeping its
    lastTransitionTime unless the status changed; append it when there is none."""
    out, found = [], False
    for condition in conditions:
        if not found and condition.get("type") == new["type"]:
            found = True
            merged = {**condition, "reason": new["reason"], "message": new["message"]}
            if condition.get("status") != new["status"]:
                merged |= {"status": new["status"], "lastTransitionTime": new["lastTransitionTime"]}
            out.append(merged)
        else:
            out.append(condition)
    return out if found else [*out, new]


def same_condition(current: Obj | None, wanted: Obj) -> bool:
    return current is not None and all(current.get(k) == wanted[k] for k in ("status", "reason", "message"))


def labels(obj: Obj) -> dict[str, str]:
    return _map(_map(obj.get("metadata")).get("labels"))


def _map(value: object) -> Obj:
    return value if isinstance(value, dict) else {}


# -- validation and defaulting (kube-aggregator's, for k3py.api) ------------------------------


def default_apiservice(obj: Obj) -> None:
    """v1 defaulting: a Service reference without a port means 443."""
    ref = _map(obj.get("spec")).get("service")
    if isinstance(ref, dict) and ref.get("port") is None:
        ref["port"] = DEFAULT_SERVICE_PORT


def validate_apiservice(obj: Obj, old: Obj | None = None) -> list[Cause]:
    """``ValidateAPIService``; the metadata checks every kind gets are not repeated here,
    except the name, which must be ``spec.version + "." + spec.group``."""
    spec = _map(obj.get("spec"))
    group, version = str(spec.get("group") or ""), str(spec.get("version") or "")
    causes = _name_causes(_map(obj.get("metadata")), f"{version}.{group}")
    if not group and version != "v1":
        causes.append(required("spec.group", "only v1 may have an empty group and it better be legacy kube"))
    if group:
        causes += [invalid("spec.group", group, msg) for msg in dns_subdomain_errors(group)]
    causes += [invalid("spec.version", version, msg) for msg in dns1035_errors(version)]
    causes += _priority(spec, "groupPriorityMinimum", 20000)
    causes += _priority(spec, "versionPriority", 1000)
    skip_tls = spec.get("insecureSkipTLSVerify") is True
    ca_bytes = _ca_length(spec.get("caBundle"))
    ref = spec.get("service")
    if not isinstance(ref, dict):
        if ca_bytes:
            causes.append(
                invalid("spec.caBundle", f"{ca_bytes} bytes", "local APIServices may not have a caBundle")
            )
        if skip_tls:
            detail = "local APIServices may not have insecureSkipTLSVerify"
            causes.append(invalid("spec.insecureSkipTLSVerify", True, detail))
        return causes
    if not ref.get("namespace"):
        causes.append(required("spec.service.namespace"))
    if not ref.get("name"):
        causes.append(required("spec.service.name"))
    port = ref.get("port") if ref.get("port") is not None else DEFAULT_SERVICE_PORT
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        causes.append(
            invalid("spec.service.port", port, "port is not valid: must be between 1 and 65535, inclusive")
        )
    if skip_tls and ca_bytes:
        causes.append(invalid("spec.insecureSkipTLSVerify", True, "may not be true if caBundle is present"))
    return causes


def validate_apiservice_status(obj: Obj) -> list[Cause]:
    """``ValidateAPIServiceStatus``: each condition's status is True, False or Unknown."""
    causes: list[Cause] = []
    for i, condition in enumerate(_map(obj.get("status")).get("conditions") or []):
        status = _map(condition).get("status")
        if status not in ("True", "False", "Unknown"):
            field = f"status.conditions[{i}].status"
            causes.append(not_supported(field, status or "", ("True", "False", "Unknown")))
    return causes


def _name_causes(meta: Obj, wanted: str) -> list[Cause]:
    """The name function upstream gives ObjectMeta validation, for the name and generateName."""
    causes: list[Cause] = []
    for key in ("generateName", "name"):
        value = meta.get(key)
        if isinstance(value, str) and value and not objects.path_segment_errors(value) and value != wanted:
            detail = f'must be `spec.version+"."+spec.group`: {go_quote(wanted)}'
            causes.append(invalid(f"metadata.{key}", value, detail))
    return causes


def _priority(spec: Obj, key: str, limit: int) -> list[Cause]:
    value = spec.get(key, 0)
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= limit:
        return []
    return [invalid(f"spec.{key}", value, f"must be positive and less than {limit}")]


def _ca_length(value: object) -> int:
    """Bytes of a caBundle (base64 in JSON)."""
    if not isinstance(value, str) or not value:
        return 0
    try:
        return len(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        return len(value)
