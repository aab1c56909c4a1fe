"""The cluster zone: the records the Kubernetes DNS specification asks for, from Services and
EndpointSlices (plain dicts, as informers hold them).

``ClusterZone.load`` turns the objects into an index of names; ``lookup`` answers one question
from it. Following the specification (kubernetes/dns ``docs/specification.md``, schema 1.1.0)
and CoreDNS's ``kubernetes`` plugin with ``pods insecure``, as K3s configures it:

* ``<svc>.<ns>.svc.<domain>``: A/AAAA of the cluster IPs; for a headless Service, one per ready
  endpoint address (every address with ``publishNotReadyAddresses``); an ExternalName Service
  answers a CNAME to its external name whatever the type asked;
* ``_<port>._<proto>.<svc>.<ns>.svc.<domain>``: SRV per named port, to the Service name, or for
  a headless Service to ``<hostname>.<svc>.<ns>.svc.<domain>`` per endpoint, whose address
  records are served too (``hostname`` from the endpoint, else the address with dashes);
* ``a-b-c-d.<ns>.pod.<domain>``: the address the name spells, unchecked (``pods insecure``);
* PTR under ``in-addr.arpa``/``ip6.arpa`` for cluster IPs and headless endpoint addresses;
* ``dns-version.<domain>`` TXT ``1.1.0``; the apex's SOA and NS.

A name in the zone that holds nothing is NXDOMAIN, one that holds other types NOERROR with no
answer (NODATA); both carry the SOA in the authority section (RFC 2308). Reverse names the
cluster does not know are not answered here (``None``): they go upstream, as CoreDNS's
``fallthrough in-addr.arpa ip6.arpa`` sends them.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from k3py.dns.wire import (
    AAAA,
    ANY,
    CNAME,
    NOERROR,
    NS,
    NXDOMAIN,
    PTR,
    SOA,
    SRV,
    TXT,
    A,
    Address,
    Rdata,
    Record,
    Soa,
    Srv,
    Target,
    Txt,
)

Obj = dict[str, Any]
DEFAULT_DOMAIN = "cluster.local"
DEFAULT_TTL = 5
"""Seconds: the ``kubernetes`` plugin's default ``ttl``, which K3s's Corefile keeps."""
SCHEMA_VERSION = b"1.1.0"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
REVERSE_ZONES = ("in-addr.arpa", "ip6.arpa")


@dataclass(frozen=True)
class Answer:
    """What the zone says about one question."""

    rcode: int = NOERROR
    answers: tuple[Record, ...] = ()
    authority: tuple[Record, ...] = ()
    additional: tuple[Record, ...] = ()


@dataclass
class _Index:
    records: dict[str, list[tuple[int, Rdata]]] = field(default_factory=lambda: defaultdict(list))
    """Lower-case name → (type, data), for every name that holds records."""
    names: set[str] = field(default_factory=set)
    """Every name that exists (holds records, or has names below it)."""
    namespaces: set[str] = field(default_factory=set)
    reverse: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    """Reverse name → the names its PTR records point to."""


class ClusterZone:
    """``zone.load(services, slices)``, then ``zone.lookup(name, qtype)``."""

    def __init__(self, domain: str = DEFAULT_DOMAIN, ttl: int = DEFAULT_TTL) -> None:
        self.domain = domain.strip(".").lower()
        self.ttl = ttl
        self.serial = 1
        self._index = _Index()
        self.soa = self._soa()

    def _soa(self) -> Record:
        """The apex SOA; its minimum (the negative-caching TTL) is the zone's TTL, as CoreDNS's."""
        names = (f"ns.dns.{self.domain}", f"hostmaster.{self.domain}")
        return Record(self.domain, SOA, self.ttl, Soa(*names, self.serial, 7200, 1800, 86400, self.ttl))

    def owns(self, name: str) -> bool:
        """Whether ``name`` is in the cluster domain (reverse names are asked with ``lookup``)."""
        lowered = name.lower()
        return lowered == self.domain or lowered.endswith("." + self.domain)

    def load(self, services: Iterable[Obj], slices: Iterable[Obj]) -> None:
        """Replace the index with one built from these objects."""
        by_service: dict[tuple[str, str], list[Obj]] = defaultdict(list)
        for item in slices:
            meta = item.get("metadata") or {}
            owner = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
            if owner:
                by_service[(str(meta.get("namespace") or ""), str(owner))].append(item)
        index = _Index()
        for name in (self.domain, f"svc.{self.domain}", f"pod.{self.domain}"):
            index.names.add(name)
        index.records[f"dns-version.{self.domain}"].append((TXT, Txt((SCHEMA_VERSION,))))
        index.records[self.domain].append((NS, Target(f"ns.dns.{self.domain}")))
        for service in services:
            meta = service.get("metadata") or {}
            namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
            if namespace and name:
                self._add_service(index, namespace, name, service, by_service[(namespace, name)])
        for owner in list(index.records):
            _add_parents(index, owner, self.domain)
        self._index = index
        self.serial = self.serial % 0xFFFFFFFF + 1
        self.soa = self._soa()

    def _add_service(self, index: _Index, namespace: str, name: str, service: Obj, slices: list[Obj]) -> None:
        spec = service.get("spec") or {}
        fqdn = f"{name}.{namespace}.svc.{self.domain}".lower()
        index.namespaces.add(namespace.lower())
        index.names.add(fqdn)
        if spec.get("type") == "ExternalName":
            external = str(spec.get("externalName") or "").strip(".")
            if external:
                index.records[fqdn].append((CNAME, Target(external)))
            return
        ports = [p for p in spec.get("ports") or [] if p.get("name")]
        cluster_ips = [ip for ip in spec.get("clusterIPs") or [spec.get("clusterIP")] if ip and ip != "None"]
        if cluster_ips:
            for ip in cluster_ips:
                _add_address(index, fqdn, ip)
            for port in ports:
                srv = _srv_name(port.get("name"), port.get("protocol"), fqdn)
                index.records[srv].append((SRV, Srv(0, 100, int(port.get("port") or 0), fqdn)))
            return
        if spec.get("clusterIP") != "None":
            return  # not headless, and no cluster IP yet: the name exists, without addresses
        publish_all = bool(spec.get("publishNotReadyAddresses"))
        members = [
            (endpoint, item)
            for item in slices
            for endpoint in item.get("endpoints") or []
            if publish_all or (endpoint.get("conditions") or {}).get("ready") is not False
        ]
        weight = 100 // len(members) if members else 100
        for endpoint, item in members:
            for address in endpoint.get("addresses") or []:
                host = str(endpoint.get("hostname") or _dashed(address)).lower()
                target = f"{host}.{fqdn}"
                _add_address(index, fqdn, address, reverse=False)
                _add_address(index, target, address)
                for port in item.get("ports") or []:
                    if port.get("name") and port.get("port"):
                        srv = _srv_name(port["name"], port.get("protocol"), fqdn)
                        index.records[srv].append((SRV, Srv(0, weight, int(port["port"]), target)))

    def lookup(self, name: str, qtype: int) -> Answer | None:
        """The answer for ``name`` (any case), or None if the cluster does not answer it."""
        lowered = name.lower().strip(".")
        index = self._index
        if _in_reverse_zone(lowered):
            targets = index.reverse.get(lowered)
            if not targets:
                return None
            if qtype not in (PTR, ANY):
                return Answer(authority=(self.soa,))
            return Answer(answers=tuple(Record(name, PTR, self.ttl, Target(t)) for t in targets))
        if not self.owns(lowered):
            return None
        if lowered == self.domain and qtype in (SOA, ANY):
            return Answer(answers=(Record(name, SOA, self.ttl, self.soa.data),))
        found = index.records.get(lowered)
        if found is None:
            found = self._pod(lowered)
        if found is None:
            rcode = NOERROR if lowered in index.names else NXDOMAIN
            return Answer(rcode=rcode, authority=(self.soa,))
        answers = [
            Record(name, rtype, self.ttl, data)
            for rtype, data in found
            if qtype in (rtype, ANY) or rtype == CNAME
        ]
        if not answers:
            return Answer(authority=(self.soa,))
        return Answer(answers=tuple(answers), additional=self._glue(answers))

    def _pod(self, name: str) -> list[tuple[int, Rdata]] | None:
        """``a-b-c-d.<ns>.pod.<domain>``: the address it spells (``pods insecure``)."""
        labels = name[: -len(self.domain) - 1].split(".")
        if len(labels) == 2 and labels[1] == "pod":
            return [] if labels[0] in self._index.namespaces else None
        if len(labels) != 3 or labels[2] != "pod":
            return None
        for spelled in (labels[0].replace("-", "."), labels[0].replace("-", ":")):
            try:
                ip = ipaddress.ip_address(spelled)
            except ValueError:
                continue
            return [(A if ip.version == 4 else AAAA, Address(ip))]
        return None

    def _glue(self, answers: list[Record]) -> tuple[Record, ...]:
        """Addresses of the SRV targets, as CoreDNS adds them."""
        glue: list[Record] = []
        seen: set[str] = set()
        for record in answers:
            if isinstance(record.data, Srv) and record.data.target not in seen:
                seen.add(record.data.target)
                for rtype, data in self._index.records.get(record.data.target, []):
                    if rtype in (A, AAAA):
                        glue.append(Record(record.data.target, rtype, self.ttl, data))
        return tuple(glue)


def _srv_name(port: object, protocol: object, fqdn: str) -> str:
    return f"_{str(port).lower()}._{str(protocol or 'TCP').lower()}.{fqdn}"


def _dashed(address: str) -> str:
    return address.replace(".", "-").replace(":", "-")


def _add_address(index: _Index, name: str, text: str, *, reverse: bool = True) -> None:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return
    entry = (A if ip.version == 4 else AAAA, Address(ip))
    if entry not in index.records[name]:
        index.records[name].append(entry)
        if reverse and name not in index.reverse[ip.reverse_pointer]:
            index.reverse[ip.reverse_pointer].append(name)


def _add_parents(index: _Index, name: str, domain: str) -> None:
    """Mark ``name`` and the names between it and the domain as existing (empty non-terminals)."""
    while name != domain and name.endswith("." + domain):
        index.names.add(name)
        name = name.split(".", 1)[1]


def _in_reverse_zone(name: str) -> bool:
    return any(name == zone or name.endswith("." + zone) for zone in REVERSE_ZONES)
