"""The service proxy's rules: Services and EndpointSlices in, ``iptables-restore`` input out.

This is kube-proxy's iptables mode, with ``K3PY-`` chains, as a pure function
(:func:`build_rules`) so that it can be checked without a kernel. Per table:

``nat``
    ``K3PY-SERVICES`` (from PREROUTING and OUTPUT) sends each cluster IP, external IP and
    load-balancer IP, port and protocol to the service port's chain, and local destinations
    (loopback aside) to ``K3PY-NODEPORTS``. ``K3PY-SVC-<hash>`` picks one ready endpoint of
    the cluster (``K3PY-SVL-<hash>``: of this node, for a ``Local`` traffic policy) with
    ``-m statistic --mode random`` at probabilities 1/n, 1/(n-1), …, 1, after the
    ``-m recent`` checks of ClientIP session affinity; ``K3PY-SEP-<hash>`` marks hairpin
    traffic (a pod reaching itself) for masquerade and DNATs to the endpoint.
    ``K3PY-EXT-<hash>`` is the way in for NodePorts and external addresses: masquerade, then
    the cluster chain; with ``externalTrafficPolicy: Local`` only this node's endpoints, and
    the client's address is kept. Traffic to a cluster IP from outside the cluster CIDR is
    marked too; ``K3PY-POSTROUTING-SVC`` (from POSTROUTING) masquerades what is marked.
``filter``
    ``K3PY-SVC-REJECT`` (from INPUT, FORWARD and OUTPUT, new connections only) rejects
    traffic to a service port without endpoints (ICMP port unreachable) and drops traffic to
    a ``Local`` policy with no endpoint on this node.

Which service ports and endpoints there are is read by :mod:`k3py.agent.serviceproxy_model`
(target ports through the slice port of the same name; terminating endpoints only when none
is ready). A Service or slice with fields that cannot be read is logged and skipped, so one
bad object never stops the others.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from k3py.agent.serviceproxy_model import (
    PROTOCOLS,
    Endpoint,
    Obj,
    ServicePort,
    chain_name,
    endpoints_for,
    key_of,
    service_ports,
    slices_by_service,
    usable,
)

log = logging.getLogger(__name__)

SERVICES_CHAIN = "K3PY-SERVICES"
NODEPORTS_CHAIN = "K3PY-NODEPORTS"
MARK_MASQ_CHAIN = "K3PY-MARK-MASQ"
POSTROUTING_CHAIN = "K3PY-POSTROUTING-SVC"
REJECT_CHAIN = "K3PY-SVC-REJECT"
FIXED_CHAINS = {
    "nat": (SERVICES_CHAIN, NODEPORTS_CHAIN, MARK_MASQ_CHAIN, POSTROUTING_CHAIN),
    "filter": (REJECT_CHAIN,),
}
SERVICE_CHAIN_PREFIXES = ("K3PY-SVC-", "K3PY-SVL-", "K3PY-SEP-", "K3PY-EXT-")
HOOKS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("nat", "PREROUTING", SERVICES_CHAIN, ()),
    ("nat", "OUTPUT", SERVICES_CHAIN, ()),
    ("nat", "POSTROUTING", POSTROUTING_CHAIN, ()),
    ("filter", "INPUT", REJECT_CHAIN, ("-m", "conntrack", "--ctstate", "NEW")),
    ("filter", "FORWARD", REJECT_CHAIN, ("-m", "conntrack", "--ctstate", "NEW")),
    ("filter", "OUTPUT", REJECT_CHAIN, ("-m", "conntrack", "--ctstate", "NEW")),
)
"""(table, built-in chain, k3py chain, extra match): the jumps into the service chains."""
HOOK_COMMENT = "k3py service proxy"
LOOPBACK = "127.0.0.0/8"


def is_service_chain(name: str) -> bool:
    """Whether ``name`` is one of the chains the service proxy owns (in either table)."""
    return name in FIXED_CHAINS["nat"] + FIXED_CHAINS["filter"] or name.startswith(SERVICE_CHAIN_PREFIXES)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProxyOptions:
    masquerade_bit: int = 14
    """The packet mark bit (0x4000) that asks K3PY-POSTROUTING-SVC to masquerade, kube-proxy's."""

    @property
    def mark(self) -> str:
        return f"{1 << self.masquerade_bit:#x}"


@dataclass(frozen=True, slots=True, order=True)
class UdpFlow:
    """A UDP frontend (an address, or None for a NodePort on every local address) and port
    that leads to ``endpoint``: when it stops doing so, its conntrack entries must go."""

    frontend: str | None
    port: int
    endpoint: str


@dataclass(slots=True)
class Table:
    chains: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)

    def chain(self, name: str) -> str:
        if name not in self.chains:
            self.chains.append(name)
        return name

    def add(self, chain: str, *words: str, comment: str = "") -> None:
        parts = ["-A", chain, *words[:-2]]
        if comment:
            parts += ["-m", "comment", "--comment", f'"{comment}"']
        self.rules.append(" ".join([*parts, *words[-2:]]))


@dataclass(slots=True)
class Ruleset:
    """What :func:`build_rules` made: chains and rules per table, and the UDP flows."""

    tables: dict[str, Table]
    udp_flows: set[UdpFlow] = field(default_factory=set)
    udp_frontends: set[tuple[str | None, int]] = field(default_factory=set)
    """UDP frontends that have endpoints (their old "unreachable" conntrack entries must go
    when they gain them)."""

    def render(self, existing: Mapping[str, Iterable[str]] | None = None) -> str:
        """The ``iptables-restore --noflush`` input: every chain declared (so flushed), the
        service chains of ``existing`` (table → chain names there now) that are no longer
        wanted deleted, then the rules."""
        existing = existing or {}
        lines: list[str] = []
        for name, table in self.tables.items():
            stale = sorted(c for c in existing.get(name, ()) if is_service_chain(c) and c not in table.chains)
            lines.append(f"*{name}")
            lines += [f":{chain} - [0:0]" for chain in [*table.chains, *stale]]
            lines += [f"-X {chain}" for chain in stale]
            lines += table.rules
            lines.append("COMMIT")
        return "\n".join(lines) + "\n"


def build_rules(
    services: Iterable[Obj],
    endpoint_slices: Iterable[Obj],
    *,
    node_name: str,
    cluster_cidr: ipaddress.IPv4Network | ipaddress.IPv6Network | None,
    options: ProxyOptions | None = None,
) -> Ruleset:
    """The full rule set for these Services and slices on node ``node_name`` (see the module
    docstring). ``cluster_cidr`` None (or IPv6) turns off the masquerade of traffic to cluster
    IPs from outside the cluster."""
    options = options or ProxyOptions()
    cidr = str(cluster_cidr) if isinstance(cluster_cidr, ipaddress.IPv4Network) else None
    nat, filt = Table(), Table()
    for name in FIXED_CHAINS["nat"]:
        nat.chain(name)
    filt.chain(REJECT_CHAIN)
    ruleset = Ruleset({"filter": filt, "nat": nat})
    mark = f"{options.mark}/{options.mark}"
    nat.add(POSTROUTING_CHAIN, "-m", "mark", "!", "--mark", mark, "-j", "RETURN")
    nat.add(POSTROUTING_CHAIN, "-j", "MARK", "--xor-mark", options.mark)
    nat.add(
        POSTROUTING_CHAIN,
        "-j",
        "MASQUERADE --random-fully",
        comment="k3py service traffic requiring SNAT",
    )
    nat.add(MARK_MASQ_CHAIN, "-j", "MARK", "--or-mark", options.mark)

    by_service = slices_by_service(endpoint_slices)
    nodeport_rules: list[tuple[str, ...]] = []
    for service in sorted(services, key=key_of):
        try:
            ports = service_ports(service)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            log.warning("service %s/%s: cannot read it (%s): skipped", *key_of(service), exc)
            continue
        for port in ports:
            endpoints = endpoints_for(port, by_service.get((port.namespace, port.service), []))
            _service_port_rules(ruleset, port, endpoints, node_name, cidr, nodeport_rules)
    for words in nodeport_rules:
        nat.add(NODEPORTS_CHAIN, *words[1:], comment=words[0])
    nat.add(
        SERVICES_CHAIN,
        "-m",
        "addrtype",
        "--dst-type",
        "LOCAL",
        "!",
        "-d",
        LOOPBACK,
        "-j",
        NODEPORTS_CHAIN,
        comment="k3py service nodeports; NOTE: this must be the last rule in this chain",
    )
    return ruleset


def _service_port_rules(
    ruleset: Ruleset,
    port: ServicePort,
    endpoints: list[Endpoint],
    node_name: str,
    cidr: str | None,
    nodeport_rules: list[tuple[str, ...]],
) -> None:
    nat, filt = ruleset.tables["nat"], ruleset.tables["filter"]
    proto = PROTOCOLS[port.protocol]
    match = ("-p", proto, "-m", proto)
    cluster = usable(endpoints)
    local = usable([e for e in endpoints if e.node == node_name])
    internal = local if port.internal_local else cluster
    external = local if port.external_local else cluster
    svc, svl, ext = port.chain("K3PY-SVC-"), port.chain("K3PY-SVL-"), port.chain("K3PY-EXT-")
    internal_chain = svl if port.internal_local else svc
    external_chain = svl if port.external_local else svc
    label = port.label

    def missing(local_policy: bool) -> tuple[str, str]:
        if not cluster or not local_policy:
            return "REJECT", f"{label} has no endpoints"
        return "DROP", f"{label} has no local endpoints"

    # the cluster IPs
    for ip in port.cluster_ips:
        dest = ("-d", f"{ip}/32", *match, "--dport", str(port.port))
        if internal:
            nat.add(SERVICES_CHAIN, *dest, "-j", nat.chain(internal_chain), comment=f"{label} cluster IP")
        else:
            target, why = missing(port.internal_local)
            filt.add(REJECT_CHAIN, *dest, "-j", target, comment=why)
    # the ways in from outside: external (and load-balancer) IPs, the NodePort
    frontends = [("-d", f"{ip}/32", "--dport", str(port.port)) for ip in port.external_ips]
    for words in frontends:
        if external:
            nat.add(SERVICES_CHAIN, *words[:2], *match, *words[2:], "-j", ext, comment=f"{label} external IP")
        else:
            target, why = missing(port.external_local)
            filt.add(REJECT_CHAIN, *words[:2], *match, *words[2:], "-j", target, comment=why)
    if port.node_port:
        if external or (port.external_local and cluster):
            nodeport_rules.append((label, *match, "--dport", str(port.node_port), "-j", ext))
        if not external:
            target, why = missing(port.external_local)
            filt.add(
                REJECT_CHAIN,
                "-m",
                "addrtype",
                "--dst-type",
                "LOCAL",
                *match,
                "--dport",
                str(port.node_port),
                "-j",
                target,
                comment=why,
            )
    if (frontends and external) or (port.node_port and (external or (port.external_local and cluster))):
        nat.chain(ext)
        if port.external_local:
            if cidr:
                nat.add(
                    ext,
                    "-s",
                    cidr,
                    "-j",
                    nat.chain(svc),
                    comment=f"pod traffic for {label} external destinations",
                )
            nat.add(
                ext,
                "-m",
                "addrtype",
                "--src-type",
                "LOCAL",
                "-j",
                MARK_MASQ_CHAIN,
                comment=f"masquerade LOCAL traffic for {label} external destinations",
            )
            nat.add(ext, "-m", "addrtype", "--src-type", "LOCAL", "-j", nat.chain(svc))
            if external:
                nat.add(ext, "-j", nat.chain(svl))
        else:
            nat.add(
                ext, "-j", MARK_MASQ_CHAIN, comment=f"masquerade traffic for {label} external destinations"
            )
            nat.add(ext, "-j", nat.chain(external_chain))
    # the endpoint-picking chains and the endpoints
    for chain, chosen in ((svc, cluster), (svl, local)):
        if chain not in nat.chains:
            continue
        if chain == svc and cidr:
            for ip in port.cluster_ips:
                nat.add(
                    svc,
                    "!",
                    "-s",
                    cidr,
                    "-d",
                    f"{ip}/32",
                    *match,
                    "--dport",
                    str(port.port),
                    "-j",
                    MARK_MASQ_CHAIN,
                    comment=f"{label} cluster IP",
                )
        _balance(nat, port, chain, chosen, match)
    for endpoint in cluster:
        if port.protocol == "UDP":
            for ip in (*port.cluster_ips, *port.external_ips):
                ruleset.udp_flows.add(UdpFlow(ip, port.port, endpoint.ip))
            if port.node_port:
                ruleset.udp_flows.add(UdpFlow(None, port.node_port, endpoint.ip))
    if port.protocol == "UDP" and cluster:
        ruleset.udp_frontends.update((ip, port.port) for ip in (*port.cluster_ips, *port.external_ips))
        if port.node_port:
            ruleset.udp_frontends.add((None, port.node_port))


def _balance(
    nat: Table, port: ServicePort, chain: str, endpoints: list[Endpoint], match: tuple[str, ...]
) -> None:
    """``chain`` picks one of ``endpoints``: the one a client's affinity names, else at random
    with probabilities 1/n, 1/(n-1), …, 1; each endpoint's chain DNATs to it."""
    seps = [
        (endpoint, chain_name("K3PY-SEP-", f"{port.label}{port.protocol}{endpoint.ip}:{endpoint.port}"))
        for endpoint in endpoints
    ]
    recent = ("--mask", "255.255.255.255", "--rsource")
    if port.affinity_timeout is not None:
        for endpoint, sep in seps:
            nat.add(
                chain,
                "-m",
                "recent",
                "--name",
                sep,
                *recent,
                "--rcheck",
                "--seconds",
                str(port.affinity_timeout),
                "--reap",
                "-j",
                sep,
                comment=f"{port.label} -> {endpoint.ip}:{endpoint.port}",
            )
    for index, (endpoint, sep) in enumerate(seps):
        left = len(seps) - index
        pick = (
            ("-m", "statistic", "--mode", "random", "--probability", f"{1 / left:.10f}") if left > 1 else ()
        )
        nat.add(chain, *pick, "-j", sep, comment=f"{port.label} -> {endpoint.ip}:{endpoint.port}")
        if sep in nat.chains:
            continue  # already written for the other policy's chain
        nat.chain(sep)
        nat.add(sep, "-s", f"{endpoint.ip}/32", "-j", MARK_MASQ_CHAIN, comment=port.label)
        remember = (
            ("-m", "recent", "--set", "--name", sep, *recent) if port.affinity_timeout is not None else ()
        )
        nat.add(
            sep,
            *match,
            *remember,
            "-j",
            f"DNAT --to-destination {endpoint.ip}:{endpoint.port}",
            comment=port.label,
        )
