"""The node's pod network: the CNI config, the host's forwarding and NAT, routes to other nodes.

The model is K3s's flannel with the ``host-gw`` backend, without flannel:

- every node owns one block of the cluster CIDR (``spec.podCIDR``, handed out by the server's
  node IPAM); containerd builds each pod's interface with the standard CNI plugins from
  :func:`write_cni_config`: a veth into the ``cni0`` bridge, whose address is the block's
  first one and the pods' default gateway, an address from ``host-local`` IPAM, and
  ``portmap`` for ``hostPort``;
- :func:`setup_node_network` makes the node a router: IPv4 forwarding on, bridged traffic
  through iptables (``br_netfilter``, so hostPort and Service NAT see pod-to-pod packets),
  pod traffic leaving the cluster CIDR masqueraded behind the node's address, and forwarding
  of cluster traffic allowed even where the FORWARD policy is DROP;
- :class:`Routes` points each other node's block at that node's InternalIP, so nodes must
  share one L2 segment (flannel host-gw's requirement, met by the conformance harness's
  bridge).

Everything works on the current network namespace, is idempotent (an agent restart runs it
again) and touches only what is k3py's: iptables chains named ``K3PY-*`` and a single jump
to each, routes tagged with the :data:`ROUTE_PROTOCOL` number, and the bridge named in the
config. :func:`teardown_node_network` removes exactly those, and the chains of the service
proxy (:mod:`k3py.agent.serviceproxy`), which builds on the helpers here.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import shlex
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from k3py.agent.errors import NetworkError as NetworkError  # part of this module's API
from k3py.agent.serviceproxy_rules import HOOKS as SERVICE_HOOKS
from k3py.agent.serviceproxy_rules import is_service_chain
from k3py.util.proc import CommandFailed, ProcessError, run

log = logging.getLogger(__name__)

IPv4Network = ipaddress.IPv4Network
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

NETWORK_NAME = "cbr0"
"""The CNI network's name, as K3s's flannel config calls it (host-local keeps its leases
under a directory of this name)."""
CONFIG_NAME = "10-k3py.conflist"
"""containerd takes the first config of its conf dir by name: this sorts before most."""
CNI_VERSION = "1.0.0"
DEFAULT_BRIDGE = "cni0"

NAT_CHAIN = "K3PY-POSTROUTING"
FORWARD_CHAIN = "K3PY-FORWARD"
CHAINS = (("nat", "POSTROUTING", NAT_CHAIN), ("filter", "FORWARD", FORWARD_CHAIN))
"""(table, built-in chain, k3py chain): each k3py chain is jumped to once from the built-in."""
MULTICAST = "224.0.0.0/4"

ROUTE_PROTOCOL = 203
"""The routing protocol number k3py's routes carry (``ip route ... proto 203``), so listing
and deleting never touches a route anyone else made."""

IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
BRIDGE_NF_CALL_IPTABLES = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")


def _ipv4(cidr: IPNetwork, what: str) -> IPv4Network:
    if not isinstance(cidr, ipaddress.IPv4Network):
        raise NetworkError(f"the {what} {cidr} is IPv6: the k3py pod network is IPv4 only")
    return cidr


# -- CNI config ----------------------------------------------------------------------------------


def cni_config(
    *,
    pod_cidr: IPNetwork,
    cluster_cidr: IPNetwork,
    bridge: str = DEFAULT_BRIDGE,
    mtu: int | None = None,
    ipam_dir: Path | None = None,
) -> dict[str, Any]:
    """The conflist :func:`write_cni_config` writes, as a dict."""
    pod_cidr, cluster_cidr = _ipv4(pod_cidr, "pod CIDR"), _ipv4(cluster_cidr, "cluster CIDR")
    if not pod_cidr.subnet_of(cluster_cidr):
        raise NetworkError(f"the node's pod CIDR {pod_cidr} is not inside the cluster CIDR {cluster_cidr}")
    if pod_cidr.num_addresses < 4:
        raise NetworkError(f"the node's pod CIDR {pod_cidr} is too small for a gateway and a pod")
    ipam: dict[str, Any] = {
        "type": "host-local",
        "ranges": [[{"subnet": str(pod_cidr), "gateway": str(pod_cidr.network_address + 1)}]],
        "routes": [{"dst": "0.0.0.0/0"}],
    }
    if ipam_dir is not None:
        ipam["dataDir"] = os.fspath(ipam_dir)
    bridge_plugin: dict[str, Any] = {
        "type": "bridge",
        "bridge": bridge,
        "isGateway": True,
        "ipMasq": False,  # setup_node_network masquerades, once for the whole block
        "hairpinMode": True,  # a pod reaches itself through a Service address
        # no promiscMode: the bridge plugin refuses it together with hairpinMode
        "forceAddress": True,
        "ipam": ipam,
    }
    if mtu is not None:
        bridge_plugin["mtu"] = mtu
    return {
        "cniVersion": CNI_VERSION,
        "name": NETWORK_NAME,
        "plugins": [
            bridge_plugin,
            {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True},
        ],
    }


def write_cni_config(
    conf_dir: Path,
    *,
    pod_cidr: IPNetwork,
    cluster_cidr: IPNetwork,
    bridge: str = DEFAULT_BRIDGE,
    mtu: int | None = None,
    ipam_dir: Path | None = None,
) -> Path:
    """Write the node's CNI conflist into ``conf_dir`` (created if missing) and return its path.

    ``ipam_dir`` is where ``host-local`` records the addresses it gave out (the plugin's
    default, ``/var/lib/cni/networks``, when None; give one under the agent's directory so
    nodes sharing a host keep apart). The file is replaced atomically and left untouched
    when it already says the same, so containerd reloads it only on a real change.
    """
    config = cni_config(
        pod_cidr=pod_cidr, cluster_cidr=cluster_cidr, bridge=bridge, mtu=mtu, ipam_dir=ipam_dir
    )
    text = json.dumps(config, indent=2) + "\n"
    conf_dir.mkdir(parents=True, exist_ok=True)
    path = conf_dir / CONFIG_NAME
    try:
        if path.read_text() == text:
            return path
    except FileNotFoundError:
        pass
    fd, temp = tempfile.mkstemp(dir=conf_dir, prefix=f".{CONFIG_NAME}.")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        Path(temp).chmod(0o644)
        Path(temp).replace(path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    log.info("CNI config %s: pods on %s via bridge %s", path, pod_cidr, bridge)
    return path


# -- forwarding and NAT --------------------------------------------------------------------------


def setup_node_network(*, pod_cidr: IPNetwork, cluster_cidr: IPNetwork, node_ip: IPAddress) -> None:
    """Make the current network namespace route and NAT for its pods (see the module docstring).
    Raises :class:`NetworkError` when it cannot."""
    pod_cidr, cluster_cidr = _ipv4(pod_cidr, "pod CIDR"), _ipv4(cluster_cidr, "cluster CIDR")
    _write_sysctl(IP_FORWARD, "1")
    _bridge_netfilter()
    try:
        _ensure_chain("nat", "POSTROUTING", NAT_CHAIN, nat_rules(pod_cidr, cluster_cidr))
        _ensure_chain("filter", "FORWARD", FORWARD_CHAIN, forward_rules(cluster_cidr))
    except ProcessError as exc:
        raise NetworkError(f"cannot set up the pod network's iptables rules: {exc}") from exc
    log.info(
        "node network: forwarding for %s (node %s), masquerade to outside %s", pod_cidr, node_ip, cluster_cidr
    )


def nat_rules(pod_cidr: IPv4Network, cluster_cidr: IPv4Network) -> list[list[str]]:
    """The rules of :data:`NAT_CHAIN`: traffic within the cluster CIDR keeps its addresses;
    what this node's pods send elsewhere (multicast aside) leaves as the node."""
    return [
        ["-s", str(cluster_cidr), "-d", str(cluster_cidr), "-j", "RETURN"],
        ["-s", str(pod_cidr), "-d", MULTICAST, "-j", "RETURN"],
        ["-s", str(pod_cidr), "!", "-d", str(cluster_cidr), "-j", "MASQUERADE", "--random-fully"],
    ]


def forward_rules(cluster_cidr: IPv4Network) -> list[list[str]]:
    """The rules of :data:`FORWARD_CHAIN`: cluster traffic is forwarded whatever the policy."""
    return [
        ["-s", str(cluster_cidr), "-j", "ACCEPT"],
        ["-d", str(cluster_cidr), "-j", "ACCEPT"],
    ]


def _iptables(*args: str, check: bool = True) -> str:
    return run(["iptables", "-w", "5", *args], capture=True, check=check, quiet=True).stdout


def _chain_rules(table: str, chain: str) -> list[str] | None:
    """The ``-A`` lines of ``chain`` as ``iptables -S`` prints them, None when it does not exist."""
    result = run(["iptables", "-w", "5", "-t", table, "-S", chain], capture=True, check=False, quiet=True)
    if result.returncode != 0:
        return None
    return [line for line in result.stdout.splitlines() if line.startswith("-A ")]


def _ensure_chain(table: str, parent: str, chain: str, rules: Sequence[Sequence[str]]) -> None:
    """``chain`` holds exactly ``rules`` and ``parent`` jumps to it once. Rules already right
    are left alone (no moment without them); otherwise the chain is rebuilt."""
    current = _chain_rules(table, chain)
    if current is None:
        _iptables("-t", table, "-N", chain)
    if current is None or len(current) != len(rules) or not all(_has_rule(table, chain, r) for r in rules):
        _iptables("-t", table, "-F", chain)
        for rule in rules:
            _iptables("-t", table, "-A", chain, *rule)
    jump = ["-m", "comment", "--comment", "k3py pod network", "-j", chain]
    if not _has_rule(table, parent, jump):
        # after the service proxy's jumps: its rejects must be seen before this chain's ACCEPTs
        lines = _chain_rules(table, parent) or []
        first = next(
            (i for i, line in enumerate(lines) if not is_service_chain(line.split()[-1])), len(lines)
        )
        _iptables("-t", table, "-I", parent, str(first + 1), *jump)


def _has_rule(table: str, chain: str, rule: Sequence[str]) -> bool:
    command = ["iptables", "-w", "5", "-t", table, "-C", chain, *rule]
    return run(command, check=False, capture=True, quiet=True).returncode == 0


def _remove_chain(table: str, parent: str, chain: str) -> bool:
    """Remove every jump from ``parent`` to ``chain``, then the chain; False if there was none."""
    if _chain_rules(table, chain) is None:
        return False
    _remove_jumps(table, parent, chain, _chain_rules(table, parent) or [])
    _iptables("-t", table, "-F", chain)
    _iptables("-t", table, "-X", chain)
    return True


def ensure_first_jump(table: str, parent: str, rule: Sequence[str]) -> bool:
    """``parent`` holds ``rule`` (ending ``-j CHAIN``) once, as its first rule, so that no
    other software's (or the pod network's) ACCEPT is seen first; a jump elsewhere is moved.
    Returns whether anything changed."""
    chain = rule[-1]
    lines = _chain_rules(table, parent) or []
    jumps = [i for i, line in enumerate(lines) if line.split()[-2:] == ["-j", chain]]
    if jumps == [0] and _has_rule(table, parent, rule):
        return False
    _remove_jumps(table, parent, chain, lines)
    _iptables("-t", table, "-I", parent, "1", *rule)
    return True


def remove_chains(table: str, hooks: Iterable[tuple[str, str]], owned: Callable[[str], bool]) -> list[str]:
    """Remove the jumps of ``hooks`` ((built-in chain, k3py chain) pairs), then every chain of
    ``table`` that ``owned`` says is k3py's, in one ``iptables-restore`` (chains that jump to
    each other go together). Returns the chains removed."""
    for parent, chain in hooks:
        _remove_jumps(table, parent, chain, _chain_rules(table, parent) or [])
    chains = sorted(name for name in list_chains(table) if owned(name))
    if chains:
        text = "\n".join(
            [f"*{table}", *(f":{c} - [0:0]" for c in chains), *(f"-X {c}" for c in chains), "COMMIT", ""]
        )
        restore(text)
    return chains


def list_chains(table: str) -> list[str]:
    """The names of the chains ``table`` has now (built-in ones included)."""
    out = run(["iptables-save", "-t", table], capture=True, quiet=True).stdout
    return [line[1:].split()[0] for line in out.splitlines() if line.startswith(":")]


def restore(text: str) -> None:
    """Load ``text`` with one ``iptables-restore --noflush``: each table's part is applied
    at once or not at all. Raises :class:`ProcessError` when iptables refuses it."""
    with tempfile.NamedTemporaryFile("w", prefix="k3py-iptables-", suffix=".rules") as out:
        out.write(text)
        out.flush()
        run(["iptables-restore", "-w", "5", "--noflush", out.name], capture=True, quiet=True)


def _remove_jumps(table: str, parent: str, chain: str, lines: Iterable[str]) -> None:
    for line in lines:
        words = line.split()
        if words[-2:] == ["-j", chain] or words[-2:] == ["-g", chain]:
            # "-A PARENT <spec> -j CHAIN" → "-D PARENT <spec> -j CHAIN"; comments are quoted
            _iptables("-t", table, "-D", *shlex.split(line)[1:])


def _write_sysctl(path: Path, value: str) -> None:
    try:
        if path.read_text().strip() != value:
            path.write_text(value)
    except OSError as exc:
        raise NetworkError(f"cannot set {path} to {value}: {exc.strerror or exc}") from exc


def _bridge_netfilter() -> None:
    """Bridged pod-to-pod packets through iptables, if the kernel has ``br_netfilter``."""
    if not BRIDGE_NF_CALL_IPTABLES.exists():
        try:
            run(["modprobe", "br_netfilter"], capture=True, quiet=True)
        except ProcessError as exc:
            log.debug("modprobe br_netfilter: %s", exc)
    if not BRIDGE_NF_CALL_IPTABLES.exists():
        log.warning(
            "br_netfilter is not loaded and cannot be: traffic between pods on this node bypasses "
            "iptables (hostPort and Service addresses may not work from pods of the same node)"
        )
        return
    try:
        _write_sysctl(BRIDGE_NF_CALL_IPTABLES, "1")
    except NetworkError as exc:
        log.warning("%s", exc)


# -- routes to other nodes -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Route:
    destination: IPv4Network
    gateway: ipaddress.IPv4Address


def node_route(node: dict[str, Any]) -> Route | None:
    """Where ``node``'s pods are reached: its podCIDR via its (IPv4) InternalIP; None when the
    node has either missing."""
    spec, status = node.get("spec") or {}, node.get("status") or {}
    try:
        cidr = ipaddress.ip_network(str(spec.get("podCIDR") or ""))
    except ValueError:
        return None
    if not isinstance(cidr, ipaddress.IPv4Network):
        return None
    for address in status.get("addresses") or []:
        if address.get("type") != "InternalIP":
            continue
        try:
            ip = ipaddress.ip_address(str(address.get("address") or ""))
        except ValueError:
            continue
        if isinstance(ip, ipaddress.IPv4Address):
            return Route(cidr, ip)
    return None


class Routes:
    """Host-gw routes to the other nodes' pod CIDRs in the current network namespace."""

    def __init__(self, protocol: int = ROUTE_PROTOCOL) -> None:
        self.protocol = protocol

    def current(self) -> dict[IPv4Network, ipaddress.IPv4Address | None]:
        """k3py's routes now in the main table: destination → gateway."""
        out = run(
            ["ip", "-json", "-4", "route", "show", "proto", str(self.protocol)], capture=True, quiet=True
        )
        routes: dict[IPv4Network, ipaddress.IPv4Address | None] = {}
        for entry in json.loads(out.stdout or "[]"):
            dst = str(entry.get("dst") or "")
            if not dst or dst == "default":
                continue
            gateway = entry.get("gateway")
            routes[ipaddress.IPv4Network(dst, strict=False)] = (
                ipaddress.IPv4Address(gateway) if gateway else None
            )
        return routes

    def sync(self, nodes: Iterable[dict[str, Any]], self_name: str) -> list[str]:
        """Make k3py's routes exactly one per other node with a podCIDR and an InternalIP;
        return what changed (``add``/``replace``/``delete`` lines). A route the kernel refuses
        (a gateway not on any local subnet) is logged and skipped; :class:`NetworkError` when
        ``ip`` cannot run at all."""
        wanted: dict[IPv4Network, ipaddress.IPv4Address] = {}
        for node in nodes:
            if str((node.get("metadata") or {}).get("name") or "") == self_name:
                continue
            route = node_route(node)
            if route is not None:
                wanted[route.destination] = route.gateway
        have = self.current()
        changes: list[str] = []
        for destination, gateway in sorted(wanted.items()):
            if have.get(destination) == gateway:
                continue
            verb = "replace" if destination in have else "add"
            if verb == "add" and self._taken(destination):
                log.warning("route to pods %s: a route that is not k3py's is there; left alone", destination)
                continue
            try:
                run(
                    [
                        "ip",
                        "route",
                        "replace",
                        str(destination),
                        "via",
                        str(gateway),
                        "proto",
                        str(self.protocol),
                    ],
                    capture=True,
                )
            except CommandFailed as exc:
                log.warning("route to pods %s via node %s: %s", destination, gateway, exc)
                continue
            changes.append(f"{verb} {destination} via {gateway}")
        for destination in sorted(set(have) - set(wanted)):
            self._delete(destination)
            changes.append(f"delete {destination}")
        for change in changes:
            log.info("pod route: %s", change)
        return changes

    def clear(self) -> list[str]:
        """Delete every k3py route; return what went."""
        gone = []
        for destination in sorted(self.current()):
            self._delete(destination)
            gone.append(f"delete {destination}")
        return gone

    def _taken(self, destination: IPv4Network) -> bool:
        """Whether a route someone else made covers exactly ``destination`` (``replace`` would
        overwrite it)."""
        command = ["ip", "-json", "-4", "route", "show", "exact", str(destination)]
        out = run(command, capture=True, check=False, quiet=True)
        if out.returncode != 0:
            return True  # cannot tell: leave it
        return any(
            str(entry.get("protocol", "")) != str(self.protocol) for entry in json.loads(out.stdout or "[]")
        )

    def _delete(self, destination: IPv4Network) -> None:
        run(["ip", "route", "del", str(destination), "proto", str(self.protocol)], capture=True, check=False)


# -- teardown ------------------------------------------------------------------------------------


def teardown_node_network(*, bridge: str = DEFAULT_BRIDGE, protocol: int = ROUTE_PROTOCOL) -> list[str]:
    """Undo :func:`setup_node_network`, :class:`Routes`, the service proxy's rules and the bridge
    the CNI plugin made, in the current network namespace: k3py's iptables chains and their
    jumps, k3py's routes, the veths enslaved to ``bridge`` and ``bridge`` itself. Forwarding
    stays on (other software may rely on it). Returns one line per thing removed; nothing
    there is not an error."""
    done: list[str] = []
    for table in ("nat", "filter"):
        hooks = [(parent, chain) for t, parent, chain, _ in SERVICE_HOOKS if t == table]
        try:
            for chain in remove_chains(table, hooks, is_service_chain):
                done.append(f"iptables -t {table}: removed chain {chain}")
        except ProcessError as exc:
            log.warning("cannot remove the service proxy's iptables chains in %s: %s", table, exc)
    for table, parent, chain in CHAINS:
        try:
            if _remove_chain(table, parent, chain):
                done.append(f"iptables -t {table}: removed chain {chain}")
        except ProcessError as exc:
            log.warning("cannot remove iptables chain %s: %s", chain, exc)
    done += [f"route {line}" for line in Routes(protocol).clear()]
    if link_exists(bridge):
        for veth in bridge_ports(bridge):
            run(["ip", "link", "delete", veth], capture=True, check=False)
            done.append(f"deleted veth {veth}")
        run(["ip", "link", "delete", bridge], capture=True, check=False)
        done.append(f"deleted bridge {bridge}")
    return done


def link_exists(name: str) -> bool:
    return run(["ip", "link", "show", "dev", name], capture=True, check=False, quiet=True).returncode == 0


def bridge_ports(bridge: str) -> list[str]:
    """The interfaces enslaved to ``bridge`` (the host ends of the pods' veths)."""
    out = run(["ip", "-json", "link", "show", "master", bridge], capture=True, check=False, quiet=True)
    if out.returncode != 0:
        return []
    return [str(link["ifname"]) for link in json.loads(out.stdout or "[]") if link.get("ifname")]
