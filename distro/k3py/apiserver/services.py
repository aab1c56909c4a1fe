"""Cluster IPs and node ports for Services, allocated when a Service is created, and on an
update that changes its type to one that needs them (ExternalName to ClusterIP, ClusterIP to
NodePort).

The first address of ``--service-cidr`` belongs to the ``kubernetes`` Service, as in every
cluster. Allocation scans the Services that exist (a lock keeps two creations from taking
the same address); an address or port asked for explicitly must be free and in range.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
from typing import Any

import orjson

from k3py.api.resources import Resource
from k3py.api.validation import Cause
from k3py.apiserver import errors
from k3py.storage import Backend, prefix_end

Obj = dict[str, Any]
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
NODE_PORTS = range(30000, 32768)


class ServiceAllocator:
    def __init__(self, backend: Backend, cidr: IPNetwork, resource: Resource) -> None:
        self.backend = backend
        self.cidr = cidr
        self.resource = resource
        self.lock = asyncio.Lock()

    @property
    def kubernetes_ip(self) -> str:
        return str(self.cidr.network_address + 1)

    async def _in_use(self) -> tuple[set[str], set[int]]:
        ips: set[str] = set()
        ports: set[int] = set()
        prefix = self.resource.storage_prefix()
        start, end = prefix, prefix_end(prefix)
        while True:
            page = await self.backend.range(start, end, limit=500)
            for kv in page.kvs:
                spec = orjson.loads(kv.value).get("spec") or {}
                ips.update(
                    ip for ip in spec.get("clusterIPs") or [spec.get("clusterIP")] if ip and ip != "None"
                )
                for port in spec.get("ports") or []:
                    if isinstance(port, dict) and isinstance(port.get("nodePort"), int):
                        ports.add(port["nodePort"])
            if not page.more or page.next_key is None:
                return ips, ports
            start = page.next_key

    async def allocate(self, obj: Obj, old: Obj | None = None) -> None:
        """Fill ``spec.clusterIP(s)``, IP families and node ports of a Service being created, or
        updated from ``old`` (whose own addresses and ports it may keep)."""
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        name = str((obj.get("metadata") or {}).get("name") or "")
        kind = spec.get("type", "ClusterIP")
        ips, ports = await self._in_use()
        if old is not None:
            old_ips, old_ports = _allocations(old.get("spec") or {})
            ips -= old_ips
            ports -= old_ports
        causes: list[Cause] = []
        if kind != "ExternalName":
            wanted = spec.get("clusterIP") or ""
            if wanted == "None":
                spec["clusterIPs"] = ["None"]
            elif wanted:
                try:
                    address = ipaddress.ip_address(wanted)
                except ValueError:
                    address = None
                if address is None or address not in self.cidr or address == self.cidr.network_address:
                    causes.append(
                        Cause(
                            "FieldValueInvalid",
                            f'Invalid value: "{wanted}": provided IP is not in the valid range. '
                            f"The range of valid IPs is {self.cidr}",
                            "spec.clusterIPs",
                        )
                    )
                elif wanted in ips:
                    causes.append(
                        Cause(
                            "FieldValueInvalid",
                            f'Invalid value: "{wanted}": provided IP is already allocated',
                            "spec.clusterIPs",
                        )
                    )
                else:
                    spec["clusterIPs"] = [wanted]
            else:
                free = self._free_ip(ips)
                if free is None:
                    raise errors.ApiError(
                        500,
                        "InternalError",
                        f"Internal error occurred: failed to allocate a serviceIP: range is full "
                        f"({self.cidr})",
                    )
                spec["clusterIP"] = free
                spec["clusterIPs"] = [free]
            family = "IPv6" if self.cidr.version == 6 else "IPv4"
            spec.setdefault("ipFamilies", [family])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
            if spec.get("clusterIPs") and not spec.get("clusterIP"):
                spec["clusterIP"] = spec["clusterIPs"][0]
        if kind in ("NodePort", "LoadBalancer"):
            for i, port in enumerate(spec.get("ports") or []):
                if not isinstance(port, dict):
                    continue
                wanted_port = port.get("nodePort")
                if wanted_port:
                    if not isinstance(wanted_port, int) or wanted_port not in NODE_PORTS:
                        causes.append(
                            Cause(
                                "FieldValueInvalid",
                                f"Invalid value: {wanted_port}: provided port is not in the valid range. "
                                "The range of valid ports is 30000-32767",
                                f"spec.ports[{i}].nodePort",
                            )
                        )
                    elif wanted_port in ports:
                        causes.append(
                            Cause(
                                "FieldValueInvalid",
                                f"Invalid value: {wanted_port}: provided port is already allocated",
                                f"spec.ports[{i}].nodePort",
                            )
                        )
                    else:
                        ports.add(wanted_port)
                    continue
                free_port = self._free_port(ports)
                if free_port is None:
                    raise errors.ApiError(
                        500,
                        "InternalError",
                        "Internal error occurred: failed to allocate a nodePort: range is full",
                    )
                port["nodePort"] = free_port
                ports.add(free_port)
        if causes:
            raise errors.invalid("Service", "", name, causes)

    @staticmethod
    def needs_allocation(spec: Obj) -> bool:
        """Whether an updated Service lacks a cluster IP or node port its type needs."""
        kind = spec.get("type", "ClusterIP")
        if kind != "ExternalName" and not spec.get("clusterIP") and not spec.get("clusterIPs"):
            return True
        return kind in ("NodePort", "LoadBalancer") and any(
            isinstance(p, dict) and not p.get("nodePort") for p in spec.get("ports") or []
        )

    def _free_ip(self, used: set[str]) -> str | None:
        size = self.cidr.num_addresses
        first = 2  # .0 is the network, .1 the kubernetes service
        last = size - 2 if self.cidr.version == 4 else size - 1
        if last < first:
            return None
        for _ in range(64):
            candidate = str(self.cidr.network_address + random.randint(first, last))
            if candidate not in used:
                return candidate
        for offset in range(first, last + 1):
            candidate = str(self.cidr.network_address + offset)
            if candidate not in used:
                return candidate
        return None

    @staticmethod
    def _free_port(used: set[int]) -> int | None:
        for _ in range(64):
            candidate = random.choice(NODE_PORTS)
            if candidate not in used:
                return candidate
        return next((p for p in NODE_PORTS if p not in used), None)


def _allocations(spec: Obj) -> tuple[set[str], set[int]]:
    """The cluster IPs and node ports a Service's spec holds."""
    ips = {ip for ip in spec.get("clusterIPs") or [spec.get("clusterIP")] if ip and ip != "None"}
    ports = {
        p["nodePort"]
        for p in spec.get("ports") or []
        if isinstance(p, dict) and isinstance(p.get("nodePort"), int)
    }
    return ips, ports
