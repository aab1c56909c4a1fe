"""The Endpoints controller: one ``Endpoints`` object per selecting Service, as upstream's.

For every Service with a selector (and not of type ExternalName) the controller keeps an
Endpoints object of the same name listing the pods the selector matches: ready pods under
``addresses``, the others under ``notReadyAddresses`` (all under ``addresses`` when the Service
sets ``publishNotReadyAddresses``), grouped into subsets by the ports they serve. A named
``targetPort`` is resolved per pod from its containers' ports; a pod without the port is left
out of that port's subset. Pods without an IP, terminal pods, and terminating pods (unless the
Service publishes not-ready addresses) are left out. Services without a selector keep their
user-managed Endpoints untouched; the Endpoints of a deleted Service are deleted.

The pieces shared with the EndpointSlice controller (selector matching, readiness, port
resolution, the last-change trigger time) live here too.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from typing import Any

from k3py.client.informer import SharedInformers
from k3py.client.rest import ApiStatusError, RestClient
from k3py.controllers.base import Controller, Key
from k3py.controllers.objects import deleting, pod_finished, pod_ready

log = logging.getLogger(__name__)

Obj = dict[str, Any]

MANAGED_BY_LABEL = "endpoints.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpoint-controller"
HEADLESS_LABEL = "service.kubernetes.io/headless"
TRIGGER_TIME_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"
OVER_CAPACITY_ANNOTATION = "endpoints.kubernetes.io/over-capacity"
MAX_CAPACITY = 1000
"""Addresses one Endpoints object holds at most; the rest are truncated (annotated so)."""


# -- shared with the EndpointSlice controller ------------------------------------------------------


def selector_of(service: Obj) -> dict[str, str] | None:
    """The Service's selector, or ``None`` when it has none (its endpoints are user-managed)."""
    selector = (service.get("spec") or {}).get("selector")
    if not isinstance(selector, dict) or not selector:
        return None
    return {str(k): str(v) for k, v in selector.items()}


def managed(service: Obj) -> bool:
    """Whether the controllers compute this Service's endpoints from its selector."""
    spec = service.get("spec") or {}
    return spec.get("type") != "ExternalName" and selector_of(service) is not None


def selects(selector: dict[str, str], pod: Obj | None) -> bool:
    if pod is None:
        return False
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return all(labels.get(k) == v for k, v in selector.items())


def selected_pods(service: Obj, pods: Iterable[Obj]) -> list[Obj]:
    namespace = (service.get("metadata") or {}).get("namespace") or ""
    selector = selector_of(service) or {}
    found = [
        p for p in pods if (p.get("metadata") or {}).get("namespace") == namespace and selects(selector, p)
    ]
    return sorted(found, key=lambda p: str(p["metadata"].get("name")))


def services_selecting(services: Iterable[Obj], pod: Obj) -> list[Key]:
    namespace = (pod.get("metadata") or {}).get("namespace") or ""
    keys = []
    for service in services:
        meta = service.get("metadata") or {}
        selector = selector_of(service)
        if meta.get("namespace") == namespace and selector is not None and selects(selector, pod):
            keys.append((namespace, str(meta.get("name") or "")))
    return keys


def family_of(address: str) -> str:
    try:
        return "IPv6" if ipaddress.ip_address(address).version == 6 else "IPv4"
    except ValueError:
        return ""


def pod_ip(pod: Obj, family: str | None) -> str:
    """The pod's IP of ``family`` (its first IP when ``family`` is ``None``), or ``""``."""
    status = pod.get("status") or {}
    ips = [str(entry.get("ip")) for entry in status.get("podIPs") or [] if entry.get("ip")]
    if not ips and status.get("podIP"):
        ips = [str(status["podIP"])]
    for ip in ips:
        if family is None or family_of(ip) == family:
            return ip
    return ""


def service_families(service: Obj) -> list[str]:
    spec = service.get("spec") or {}
    families = [str(f) for f in spec.get("ipFamilies") or []]
    if families:
        return families
    cluster_ip = spec.get("clusterIP")
    if cluster_ip and cluster_ip != "None" and family_of(str(cluster_ip)):
        return [family_of(str(cluster_ip))]
    return ["IPv4"]


def find_port(pod: Obj, service_port: Obj) -> int | None:
    """The pod's port for ``service_port``'s targetPort: a number, or a named container port."""
    target = service_port.get("targetPort")
    if target is None or target == "":
        target = service_port.get("port")
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    protocol = service_port.get("protocol") or "TCP"
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target and (port.get("protocol") or "TCP") == protocol:
                return int(port["containerPort"])
    return None


def hostname_of(pod: Obj, service: Obj) -> str:
    """The pod's hostname when it names this Service as its subdomain, as DNS publishes it."""
    spec = pod.get("spec") or {}
    svc_meta = service.get("metadata") or {}
    pod_meta = pod.get("metadata") or {}
    if (
        spec.get("hostname")
        and spec.get("subdomain") == svc_meta.get("name")
        and pod_meta.get("namespace") == svc_meta.get("namespace")
    ):
        return str(spec["hostname"])
    return ""


def target_ref(pod: Obj) -> Obj:
    meta = pod.get("metadata") or {}
    return {
        "kind": "Pod",
        "namespace": meta.get("namespace"),
        "name": meta.get("name"),
        "uid": meta.get("uid"),
    }


def headless(service: Obj) -> bool:
    return (service.get("spec") or {}).get("clusterIP") == "None"


def _ready_since(pod: Obj) -> str:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready" and condition.get("lastTransitionTime"):
            return str(condition["lastTransitionTime"])
    return str((pod.get("metadata") or {}).get("creationTimestamp") or "")


class TriggerTimes:
    """Upstream's trigger-time tracker: when did the change that this sync publishes happen?

    For each Service it remembers the state times (a pod's Ready transition, else its
    creation; the Service's creation) seen at the last sync; the trigger time of a sync is the
    earliest state time that changed since, or ``""`` when nothing did.
    """

    def __init__(self) -> None:
        self._seen: dict[Key, tuple[str, dict[str, str]]] = {}

    def compute(self, key: Key, service: Obj, pods: list[Obj]) -> str:
        service_time = str((service.get("metadata") or {}).get("creationTimestamp") or "")
        pod_times = {str(p["metadata"].get("name")): _ready_since(p) for p in pods}
        before_service, before_pods = self._seen.get(key, ("", {}))
        changed = [t for n, t in pod_times.items() if before_pods.get(n) != t and t]
        if service_time != before_service and service_time:
            changed.append(service_time)
        self._seen[key] = (service_time, pod_times)
        return min(changed) if changed else ""

    def forget(self, key: Key) -> None:
        self._seen.pop(key, None)


# -- Endpoints -------------------------------------------------------------------------------------


def _port_key(ports: list[Obj]) -> tuple[tuple[str, int, str, str], ...]:
    return tuple(
        sorted(
            (
                str(p.get("name") or ""),
                int(p["port"]),
                str(p.get("protocol")),
                str(p.get("appProtocol") or ""),
            )
            for p in ports
        )
    )


def _address(pod: Obj, service: Obj, ip: str) -> Obj:
    address: Obj = {"ip": ip}
    hostname = hostname_of(pod, service)
    if hostname:
        address["hostname"] = hostname
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        address["nodeName"] = node
    address["targetRef"] = target_ref(pod)
    return address


def endpoint_ports(pod: Obj, service: Obj) -> list[Obj]:
    """The Service's ports as this pod serves them; a named port the pod lacks is left out."""
    found = []
    for service_port in (service.get("spec") or {}).get("ports") or []:
        number = find_port(pod, service_port)
        if number is None:
            log.debug("pod %s has no port %s", pod["metadata"].get("name"), service_port.get("targetPort"))
            continue
        port: Obj = {"port": number, "protocol": service_port.get("protocol") or "TCP"}
        if service_port.get("name"):
            port["name"] = service_port["name"]
        if service_port.get("appProtocol"):
            port["appProtocol"] = service_port["appProtocol"]
        found.append(port)
    return found


def desired_subsets(service: Obj, pods: list[Obj]) -> list[Obj]:
    """The Service's subsets: addresses grouped by the set of ports they serve, sorted."""
    publish = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
    family = service_families(service)[0]
    portless = not (service.get("spec") or {}).get("ports") and headless(service)
    # Each IP once, with the ports it serves; a ready address wins over a not-ready one.
    by_ip: dict[str, tuple[bool, Obj, list[Obj]]] = {}
    for pod in pods:
        ip = pod_ip(pod, family)
        if not ip or pod_finished(pod) or (deleting(pod) and not publish):
            continue
        ports = endpoint_ports(pod, service)
        if not ports and not portless:
            continue
        ready = publish or pod_ready(pod)
        seen = by_ip.get(ip)
        if seen is None or (ready and not seen[0]):
            by_ip[ip] = (ready, _address(pod, service, ip), ports)
    groups: dict[tuple[tuple[str, int, str, str], ...], tuple[list[Obj], list[Obj], list[Obj]]] = {}
    for ip in sorted(by_ip, key=_ip_order):
        ready, address, ports = by_ip[ip]
        _, ready_list, not_ready_list = groups.setdefault(_port_key(ports), (ports, [], []))
        (ready_list if ready else not_ready_list).append(address)
    subsets = []
    for key in sorted(groups):
        ports, ready_list, not_ready_list = groups[key]
        subset: Obj = {}
        if ready_list:
            subset["addresses"] = ready_list
        if not_ready_list:
            subset["notReadyAddresses"] = not_ready_list
        if ports:
            subset["ports"] = sorted(ports, key=lambda p: (str(p.get("name") or ""), p["port"]))
        subsets.append(subset)
    return subsets


def _ip_order(ip: str) -> tuple[int, int]:
    parsed = ipaddress.ip_address(ip)
    return parsed.version, int(parsed)


def truncate(subsets: list[Obj]) -> bool:
    """Keep at most :data:`MAX_CAPACITY` addresses, ready ones first; whether any were dropped."""
    total = sum(len(s.get("addresses") or []) + len(s.get("notReadyAddresses") or []) for s in subsets)
    if total <= MAX_CAPACITY:
        return False
    room = MAX_CAPACITY
    for field in ("addresses", "notReadyAddresses"):
        for subset in subsets:
            kept = (subset.get(field) or [])[:room]
            room -= len(kept)
            if kept:
                subset[field] = kept
            else:
                subset.pop(field, None)
    subsets[:] = [s for s in subsets if s.get("addresses") or s.get("notReadyAddresses")]
    return True


def desired_labels(service: Obj) -> dict[str, str]:
    labels = dict((service.get("metadata") or {}).get("labels") or {})
    labels[MANAGED_BY_LABEL] = CONTROLLER_NAME
    if headless(service):
        labels[HEADLESS_LABEL] = ""
    else:
        labels.pop(HEADLESS_LABEL, None)
    return labels


class EndpointsController(Controller):
    """Keeps each selecting Service's Endpoints object in step with its pods."""

    name = "endpoints"
    identity = "endpoint-controller"
    workers = 2

    def __init__(self, api: RestClient, informers: SharedInformers | None = None) -> None:
        super().__init__(api, informers)
        self.services = self.informer("/api/v1/services")
        self.pods = self.informer("/api/v1/pods")
        self.endpoints = self.informer("/api/v1/endpoints")
        self.triggers = TriggerTimes()
        self.on(self.services, lambda old, new: self.enqueue(new or old))
        self.on(self.pods, self._pod_changed)
        self.on(self.endpoints, self._endpoints_changed)

    def _pod_changed(self, old: Obj | None, new: Obj | None) -> None:
        keys: set[Key] = set()
        for pod in (old, new):
            if pod is not None:
                keys.update(services_selecting(self.services.items(), pod))
        for key in keys:
            self.queue.add(key)

    def _endpoints_changed(self, old: Obj | None, new: Obj | None) -> None:
        if new is None and old is not None:
            self.enqueue(old)  # deleted by someone: recreate it if its Service still selects pods
        elif old is None and new is not None:
            # Seen for the first time (at start, mostly): one this controller made for a Service
            # deleted while it was not running is deleted now (upstream's checkLeftoverEndpoints,
            # limited to the Endpoints that carry this controller's label).
            labels = (new.get("metadata") or {}).get("labels") or {}
            if labels.get(MANAGED_BY_LABEL) == CONTROLLER_NAME:
                self.enqueue(new)

    async def sync(self, key: Key) -> None:
        namespace, name = key
        path = f"/api/v1/namespaces/{namespace}/endpoints/{name}"
        service = self.services.get(namespace, name)
        if service is None:
            self.triggers.forget(key)
            await _delete(self.api, path)
            return
        if not managed(service):
            return
        pods = selected_pods(service, self.pods.in_namespace(namespace))
        subsets = desired_subsets(service, pods)
        truncated = truncate(subsets)
        trigger = self.triggers.compute(key, service, pods)
        current = self.endpoints.get(namespace, name)
        labels = desired_labels(service)
        if current is not None and _up_to_date(current, subsets, labels, truncated):
            return
        meta = (current or {}).get("metadata") or {}
        annotations = dict(meta.get("annotations") or {})
        if trigger:
            annotations[TRIGGER_TIME_ANNOTATION] = trigger
        else:
            annotations.pop(TRIGGER_TIME_ANNOTATION, None)
        if truncated:
            annotations[OVER_CAPACITY_ANNOTATION] = "truncated"
        else:
            annotations.pop(OVER_CAPACITY_ANNOTATION, None)
        metadata: Obj = {"name": name, "namespace": namespace, "labels": labels}
        if annotations:
            metadata["annotations"] = annotations
        body: Obj = {"apiVersion": "v1", "kind": "Endpoints", "metadata": metadata, "subsets": subsets}
        if current is None:
            try:
                await self.api.create(f"/api/v1/namespaces/{namespace}/endpoints", body)
            except ApiStatusError as exc:
                if exc.code == 403 and "terminat" in str(exc).lower():
                    return  # its namespace is going away: nothing to publish into
                raise
            return
        metadata["resourceVersion"] = meta.get("resourceVersion")
        await self.api.update(path, body)


def _up_to_date(current: Obj, subsets: list[Obj], labels: dict[str, str], truncated: bool) -> bool:
    annotations = (current.get("metadata") or {}).get("annotations") or {}
    return (
        _canonical(current.get("subsets") or []) == _canonical(subsets)
        and ((current.get("metadata") or {}).get("labels") or {}) == labels
        and (OVER_CAPACITY_ANNOTATION in annotations) == truncated
    )


def _canonical(subsets: list[Obj]) -> list[Obj]:
    """Subsets as compared: without the target references' resourceVersions."""
    out = []
    for subset in subsets:
        copy = dict(subset)
        for field in ("addresses", "notReadyAddresses"):
            if field in copy:
                copy[field] = [
                    dict(a, targetRef={k: v for k, v in a["targetRef"].items() if k != "resourceVersion"})
                    if isinstance(a.get("targetRef"), dict)
                    else a
                    for a in copy[field]
                ]
        out.append(copy)
    return out


async def _delete(api: RestClient, path: str) -> None:
    try:
        await api.delete(path)
    except ApiStatusError as exc:
        if exc.code != 404:
            raise
