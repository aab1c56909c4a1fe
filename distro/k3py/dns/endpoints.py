"""Endpoints and EndpointSlices that a server writes for a Service it serves itself.

The ``kubernetes`` Service (the API server) and ``kube-dns`` (this package) have no selector:
no controller computes their endpoints, the servers that serve them write them, each adding its
own address as kube-apiserver's endpoint reconciler does. These pure functions take the stored
object (or None) and return the object to write, or None when it already lists the address.
The EndpointSlice carries ``kubernetes.io/service-name`` (how the service proxy and the DNS find
it) and a ``managed-by`` other than the EndpointSlice controller's, which therefore leaves it be.
"""

from __future__ import annotations

import copy
import ipaddress
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
MANAGED_BY = "k3py-server"
SKIP_MIRROR_LABEL = "endpointslice.kubernetes.io/skip-mirror"
"""On the Endpoints: the EndpointSliceMirroring controller must not copy them, the server writes
the slice itself (upstream's apiserver labels the ``kubernetes`` Endpoints so)."""


@dataclass(frozen=True)
class Port:
    name: str
    port: int
    protocol: str = "TCP"

    def as_dict(self) -> Obj:
        return {"name": self.name, "port": self.port, "protocol": self.protocol}


def endpoints_with(
    existing: Obj | None, namespace: str, name: str, ip: str, ports: list[Port], node: str | None = None
) -> Obj | None:
    """A ``v1 Endpoints`` listing ``ip`` on ``ports``: ``existing`` plus it, or None if present."""
    wanted_ports = [p.as_dict() for p in ports]
    address: Obj = {"ip": ip} | ({"nodeName": node} if node else {})
    if existing is None:
        return {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": name, "namespace": namespace, "labels": {SKIP_MIRROR_LABEL: "true"}},
            "subsets": [{"addresses": [address], "ports": wanted_ports}],
        }
    result = copy.deepcopy(existing)
    labels = result.setdefault("metadata", {}).setdefault("labels", {})
    relabelled = labels.get(SKIP_MIRROR_LABEL) != "true"
    labels[SKIP_MIRROR_LABEL] = "true"
    subsets = result.setdefault("subsets", []) or []
    result["subsets"] = subsets
    for subset in subsets:
        if _same_ports(subset.get("ports") or [], wanted_ports):
            if any(a.get("ip") == ip for a in subset.get("addresses") or []):
                return result if relabelled else None
            subset.setdefault("addresses", []).append(address)
            return result
    subsets.append({"addresses": [address], "ports": wanted_ports})
    return result


def slice_with(
    existing: Obj | None,
    namespace: str,
    name: str,
    service: str,
    ip: str,
    ports: list[Port],
    node: str | None = None,
) -> Obj | None:
    """A ``discovery.k8s.io/v1 EndpointSlice`` of ``service`` holding ``ip``, or None if it does."""
    endpoint: Obj = {"addresses": [ip], "conditions": {"ready": True, "serving": True, "terminating": False}}
    if node:
        endpoint["nodeName"] = node
    labels = {SERVICE_NAME_LABEL: service, MANAGED_BY_LABEL: MANAGED_BY}
    if existing is None:
        return {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "addressType": address_type(ip),
            "endpoints": [endpoint],
            "ports": [p.as_dict() for p in ports],
        }
    result = copy.deepcopy(existing)
    meta = result.setdefault("metadata", {})
    changed = False
    if any((meta.get("labels") or {}).get(k) != v for k, v in labels.items()):
        meta["labels"] = (meta.get("labels") or {}) | labels
        changed = True
    if not _same_ports(result.get("ports") or [], [p.as_dict() for p in ports]):
        result["ports"] = [p.as_dict() for p in ports]
        changed = True
    endpoints = result.get("endpoints") or []
    if not any(ip in (e.get("addresses") or []) for e in endpoints):
        result["endpoints"] = [*endpoints, endpoint]
        changed = True
    return result if changed else None


def address_type(ip: str) -> str:
    return "IPv4" if ipaddress.ip_address(ip).version == 4 else "IPv6"


def _same_ports(have: list[Obj], want: list[Obj]) -> bool:
    def key(p: Obj) -> tuple[str, int, str]:
        return (str(p.get("name") or ""), int(p.get("port") or 0), str(p.get("protocol") or "TCP"))

    return sorted(map(key, have)) == sorted(map(key, want))
