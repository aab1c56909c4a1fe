"""Network namespaces for an ephemeral cluster: one per node, joined by a bridge.

Every name the harness creates carries the run's id (``k3c<id>`` for the bridge,
``k3py-<id>-<n>`` for namespaces, ``k3v<id><n>`` for the host ends of the veth pairs), so
:func:`leftovers` can tell whether a run left anything behind. The bridge holds the
subnet's first address, so the host (kubectl, the harness) reaches every node through it;
nodes reach each other across it. Nothing routes the subnet anywhere else.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import secrets
import subprocess
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

SUBNET_CANDIDATES = [
    ipaddress.IPv4Network(f"10.{second}.{third}.0/24")
    for second in (251, 252, 253)
    for third in range(0, 256, 7)
]
"""Where a run's /24 is taken from: the first not used by any address on this host."""


class NetworkError(Exception):
    """An ``ip`` command failed (the harness needs root and iproute2)."""


def ip(*args: str, namespace: str | None = None) -> str:
    command = ["ip", *(["netns", "exec", namespace, "ip"] if namespace else []), *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise NetworkError(f"{' '.join(command)}: {done.stderr.strip() or f'exit {done.returncode}'}")
    return done.stdout


@dataclass(frozen=True)
class NodeNet:
    namespace: str
    address: ipaddress.IPv4Address
    host_veth: str


@dataclass
class Network:
    run_id: str = field(default_factory=lambda: secrets.token_hex(3))
    subnet: ipaddress.IPv4Network | None = None
    nodes: list[NodeNet] = field(default_factory=list)
    created_bridge: bool = False

    @property
    def bridge(self) -> str:
        return f"k3c{self.run_id}"

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        assert self.subnet is not None
        return self.subnet.network_address + 1

    def create(self) -> None:
        self.subnet = self.subnet or free_subnet()
        ip("link", "add", self.bridge, "type", "bridge")
        self.created_bridge = True
        ip("addr", "add", f"{self.gateway}/{self.subnet.prefixlen}", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        log.info("network %s: bridge %s on %s", self.run_id, self.bridge, self.subnet)

    def add_node(self) -> NodeNet:
        assert self.subnet is not None, "create() first"
        index = len(self.nodes)
        namespace = f"k3py-{self.run_id}-{index}"
        node = NodeNet(namespace, self.gateway + 1 + index, f"k3v{self.run_id}{index}")
        ip("netns", "add", namespace)
        self.nodes.append(node)
        ip("link", "add", node.host_veth, "type", "veth", "peer", "name", "eth0", "netns", namespace)
        ip("link", "set", node.host_veth, "master", self.bridge, "up")
        ip("link", "set", "lo", "up", namespace=namespace)
        ip("addr", "add", f"{node.address}/{self.subnet.prefixlen}", "dev", "eth0", namespace=namespace)
        ip("link", "set", "eth0", "up", namespace=namespace)
        ip("route", "add", "default", "via", str(self.gateway), namespace=namespace)
        return node

    def destroy(self) -> list[str]:
        """Remove everything this network created; the problems met (empty when all went)."""
        problems = []
        for node in reversed(self.nodes):
            # Deleting one end of a veth pair deletes both, at once; a namespace's own links
            # go only when the kernel gets round to freeing it, after `netns delete` returns.
            for command in (("link", "delete", node.host_veth), ("netns", "delete", node.namespace)):
                try:
                    ip(*command)
                except NetworkError as exc:
                    problems.append(str(exc))
        self.nodes.clear()
        if self.created_bridge:
            try:
                ip("link", "delete", self.bridge)
                self.created_bridge = False
            except NetworkError as exc:
                problems.append(str(exc))
        return problems


def free_subnet() -> ipaddress.IPv4Network:
    used = []
    for entry in json.loads(ip("-json", "addr", "show") or "[]"):
        for info in entry.get("addr_info", []):
            if info.get("family") == "inet":
                used.append(ipaddress.IPv4Network(f"{info['local']}/{info['prefixlen']}", strict=False))
    for candidate in SUBNET_CANDIDATES:
        if not any(candidate.overlaps(u) for u in used):
            return candidate
    raise NetworkError("no free /24 in 10.251-253.0.0/16 for the cluster network")


def leftovers(run_id: str) -> list[str]:
    """Namespaces and links of a run that still exist (nothing, after a clean teardown)."""
    found = [f"netns {line.split()[0]}" for line in ip("netns", "list").splitlines() if f"-{run_id}-" in line]
    for entry in json.loads(ip("-json", "link", "show") or "[]"):
        name = entry.get("ifname", "")
        if run_id in name:
            found.append(f"link {name}")
    return found
