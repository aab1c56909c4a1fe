"""What the service proxy reads from Services and EndpointSlices, as kube-proxy reads them.

:func:`service_ports` turns a Service into its IPv4 service ports (none for headless and
ExternalName Services); :func:`endpoints_for` finds a service port's endpoints in the
Service's IPv4 EndpointSlices through the slice port of the same name and protocol, the first
address of each endpoint and its conditions (``ready`` missing counts as true, ``serving``
missing as ``ready``); :func:`usable` applies kube-proxy's rule that serving endpoints that are
terminating stand in only when no endpoint is ready. Fields that cannot be read raise
KeyError/TypeError/ValueError for the caller to skip that one object.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

Obj = dict[str, Any]

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
PROTOCOLS = {"TCP": "tcp", "UDP": "udp", "SCTP": "sctp"}
"""Service protocols and their iptables names."""
DEFAULT_AFFINITY_TIMEOUT = 10800


@dataclass(frozen=True, slots=True)
class Endpoint:
    ip: str
    port: int
    node: str
    ready: bool
    serving: bool
    terminating: bool


@dataclass(frozen=True, slots=True)
class ServicePort:
    """One port of one Service, read from the object, with what the rules need."""

    namespace: str
    service: str
    name: str
    protocol: str
    port: int
    node_port: int
    cluster_ips: tuple[str, ...]
    external_ips: tuple[str, ...]
    affinity_timeout: int | None
    external_local: bool
    internal_local: bool

    @property
    def label(self) -> str:
        base = f"{self.namespace}/{self.service}"
        return f"{base}:{self.name}" if self.name else base

    def chain(self, prefix: str) -> str:
        return chain_name(prefix, f"{self.label}{self.protocol}")


def chain_name(prefix: str, key: str) -> str:
    """kube-proxy's chain names: a prefix and 16 characters of base32(sha256(key))."""
    digest = base64.b32encode(hashlib.sha256(key.encode()).digest()).decode()
    return f"{prefix}{digest[:16]}"


def key_of(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def service_ports(service: Obj) -> list[ServicePort]:
    """The IPv4 service ports a Service has rules for: none for headless and ExternalName
    Services. Raises KeyError/TypeError/ValueError on fields that cannot be read."""
    namespace, name = key_of(service)
    spec = service.get("spec") or {}
    kind = spec.get("type") or "ClusterIP"
    if kind == "ExternalName":
        return []
    cluster_ips = [str(ip) for ip in (spec.get("clusterIPs") or [spec.get("clusterIP")]) if ip]
    cluster_ips = [ip for ip in cluster_ips if ip != "None" and _is_ipv4(ip)]
    if not cluster_ips:
        return []
    external_ips = [str(ip) for ip in spec.get("externalIPs") or [] if _is_ipv4(str(ip))]
    if kind == "LoadBalancer":
        for ingress in ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
            if ingress.get("ip") and _is_ipv4(str(ingress["ip"])):
                external_ips.append(str(ingress["ip"]))
    affinity_timeout = None
    if spec.get("sessionAffinity") == "ClientIP":
        config = ((spec.get("sessionAffinityConfig") or {}).get("clientIP")) or {}
        affinity_timeout = int(config.get("timeoutSeconds") or DEFAULT_AFFINITY_TIMEOUT)
    result = []
    for item in spec.get("ports") or []:
        protocol = str(item.get("protocol") or "TCP")
        if protocol not in PROTOCOLS:
            log.warning("service %s/%s: protocol %s is not supported: skipped", namespace, name, protocol)
            continue
        node_port = int(item.get("nodePort") or 0) if kind in ("NodePort", "LoadBalancer") else 0
        result.append(
            ServicePort(
                namespace=namespace,
                service=name,
                name=str(item.get("name") or ""),
                protocol=protocol,
                port=_port(item.get("port")),
                node_port=_port(node_port) if node_port else 0,
                cluster_ips=tuple(cluster_ips),
                external_ips=tuple(external_ips),
                affinity_timeout=affinity_timeout,
                external_local=spec.get("externalTrafficPolicy") == "Local"
                and kind in ("NodePort", "LoadBalancer"),
                internal_local=spec.get("internalTrafficPolicy") == "Local",
            )
        )
    return result


def _port(value: Any) -> int:
    number = int(value)
    if not 0 < number < 65536:
        raise ValueError(f"port {value} out of range")
    return number


def _is_ipv4(text: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(text), ipaddress.IPv4Address)
    except ValueError:
        return False


def slices_by_service(slices: Iterable[Obj]) -> dict[tuple[str, str], list[Obj]]:
    found: dict[tuple[str, str], list[Obj]] = {}
    for item in slices:
        meta = item.get("metadata") or {}
        service = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if service and item.get("addressType") == "IPv4":
            found.setdefault((str(meta.get("namespace") or ""), str(service)), []).append(item)
    return found


def endpoints_for(port: ServicePort, slices: Iterable[Obj]) -> list[Endpoint]:
    """The endpoints of ``port`` in its Service's slices, each address and port once, in a
    stable order. A slice that cannot be read is skipped."""
    found: dict[tuple[str, int], Endpoint] = {}
    for item in sorted(slices, key=key_of):
        try:
            number = _slice_port(item, port)
            if number is None:
                continue
            for endpoint in item.get("endpoints") or []:
                addresses = [str(a) for a in endpoint.get("addresses") or [] if _is_ipv4(str(a))]
                if not addresses:
                    continue
                conditions = endpoint.get("conditions") or {}
                ready = conditions.get("ready") is not False
                serving = conditions.get("serving")
                found.setdefault(
                    (addresses[0], number),
                    Endpoint(
                        ip=addresses[0],
                        port=number,
                        node=str(endpoint.get("nodeName") or ""),
                        ready=ready,
                        serving=ready if serving is None else bool(serving),
                        terminating=bool(conditions.get("terminating")),
                    ),
                )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            log.warning("endpoint slice %s/%s: cannot read it (%s): skipped", *key_of(item), exc)
    return sorted(found.values(), key=lambda e: (ipaddress.IPv4Address(e.ip), e.port))


def _slice_port(item: Obj, port: ServicePort) -> int | None:
    for candidate in item.get("ports") or []:
        if str(candidate.get("name") or "") != port.name:
            continue
        if str(candidate.get("protocol") or "TCP") != port.protocol:
            continue
        if candidate.get("port") is None:
            return None
        return _port(candidate["port"])
    return None


def usable(endpoints: list[Endpoint]) -> list[Endpoint]:
    """Ready endpoints; when there are none, serving endpoints that are terminating."""
    ready = [e for e in endpoints if e.ready]
    return ready or [e for e in endpoints if e.serving and e.terminating]
