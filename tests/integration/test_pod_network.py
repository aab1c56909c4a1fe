"""The pod network with the real CNI plugins, in network namespaces this test makes.

Two "node" namespaces joined by a veth pair (one L2 segment, as the conformance harness's
bridge gives) each get the k3py CNI config, :func:`setup_node_network` and :class:`Routes`.
Pods are namespaces of their own, wired by calling the conflist's plugins (bridge +
host-local, portmap) as containerd does: CNI_COMMAND=ADD/DEL, the plugin's config with the
previous result on stdin. Then: pod to pod on one node and across nodes by IP keeps the pod's
address, a pod reaching outside the cluster CIDR shows up as its node, a hostPort answers on
the node's address, and teardown leaves nothing of k3py's behind.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from k3py.agent.netns import run_in_netns
from k3py.agent.network import (
    FORWARD_CHAIN,
    NAT_CHAIN,
    ROUTE_PROTOCOL,
    Routes,
    setup_node_network,
    teardown_node_network,
    write_cni_config,
)

pytestmark = [pytest.mark.root, pytest.mark.slow]

CNI_PATH = "/usr/lib/cni"
CLUSTER = ipaddress.IPv4Network("10.42.0.0/16")
LINK = ipaddress.IPv4Network("192.168.231.0/24")
"""The nodes' segment: only inside this test's namespaces."""
POD_PORT = 8080
HOST_PORT = 30080
PEER_PORT = 9090
ECHO_PEER = (
    "import socket,sys\n"
    "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind(('0.0.0.0', int(sys.argv[1]))); s.listen(8); print('ready', flush=True)\n"
    "while True:\n"
    "    c, a = s.accept(); c.sendall(a[0].encode()); c.close()\n"
)
"""A server that answers each connection with the address it came from."""


def ip(*args: str, netns: str | None = None) -> str:
    command = ["ip", *(["-n", netns] if netns else []), *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def in_ns(netns: str, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", netns, *command], check=check, capture_output=True, text=True
    )


@dataclass
class Pod:
    name: str
    netns: str
    node: Node
    result: dict[str, Any] = field(default_factory=dict)
    port_mappings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def address(self) -> str:
        return str(self.result["ips"][0]["address"]).split("/")[0]


@dataclass
class Node:
    name: str
    netns: str
    address: ipaddress.IPv4Address
    pod_cidr: ipaddress.IPv4Network
    conf_dir: Path
    ipam_dir: Path
    conflist: dict[str, Any] = field(default_factory=dict)

    def object(self) -> dict[str, Any]:
        return {
            "metadata": {"name": self.name},
            "spec": {"podCIDR": str(self.pod_cidr), "podCIDRs": [str(self.pod_cidr)]},
            "status": {"addresses": [{"type": "InternalIP", "address": str(self.address)}]},
        }


def cni(pod: Pod, command: str) -> None:
    """Run the conflist's plugins for ``pod`` in its node's namespace, as libcni does."""
    conflist = pod.node.conflist
    plugins = conflist["plugins"] if command == "ADD" else list(reversed(conflist["plugins"]))
    previous: dict[str, Any] | None = pod.result or None
    env = {
        "PATH": os.environ["PATH"],
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": pod.name,
        "CNI_NETNS": f"/run/netns/{pod.netns}",
        "CNI_IFNAME": "eth0",
        "CNI_PATH": CNI_PATH,
    }
    for plugin in plugins:
        config = {**plugin, "name": conflist["name"], "cniVersion": conflist["cniVersion"]}
        if previous is not None:
            config["prevResult"] = previous
        if plugin.get("capabilities", {}).get("portMappings") and pod.port_mappings:
            config["runtimeConfig"] = {"portMappings": pod.port_mappings}
        config.pop("capabilities", None)

        def call(config: dict[str, Any] = config, plugin: dict[str, Any] = plugin) -> str:
            done = subprocess.run(
                [f"{CNI_PATH}/{plugin['type']}"],
                input=json.dumps(config),
                env=env,
                capture_output=True,
                text=True,
            )
            assert done.returncode == 0, f"{plugin['type']} {command}: {done.stdout} {done.stderr}"
            return done.stdout

        out = run_in_netns(pod.node.netns, call)
        if command == "ADD":
            previous = json.loads(out)
    if command == "ADD":
        assert previous is not None
        pod.result = previous


def tcp_peer(netns: str, address: str, port: int) -> str:
    """Connect from ``netns`` and return what the server says (the address it saw)."""

    def connect() -> str:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection((address, port), timeout=3) as conn:
                    return conn.recv(100).decode()
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    return run_in_netns(netns, connect)


@dataclass
class Lab:
    nodes: list[Node]
    pods: list[Pod]
    servers: list[subprocess.Popen[str]]

    def serve(self, netns: str, port: int) -> None:
        server = subprocess.Popen(
            ["ip", "netns", "exec", netns, sys.executable, "-c", ECHO_PEER, str(port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.servers.append(server)
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "ready"


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    tag = secrets.token_hex(3)
    made: list[str] = []
    nodes = [
        Node(
            f"node{i}",
            f"k3pyt-{tag}-n{i}",
            LINK.network_address + i,
            ipaddress.IPv4Network(f"10.42.{i}.0/24"),
            tmp_path / f"node{i}" / "net.d",
            tmp_path / f"node{i}" / "ipam",
        )
        for i in (1, 2)
    ]
    lab = Lab(nodes, [], [])
    try:
        for node in nodes:
            ip("netns", "add", node.netns)
            made.append(node.netns)
            ip("link", "set", "lo", "up", netns=node.netns)
        first, second = nodes
        ip("link", "add", "eth0", "netns", first.netns, "type", "veth", "peer", "eth0", "netns", second.netns)
        for node in nodes:
            ip("addr", "add", f"{node.address}/{LINK.prefixlen}", "dev", "eth0", netns=node.netns)
            ip("link", "set", "eth0", "up", netns=node.netns)
        for i, node in enumerate(nodes):
            for name in (f"p{i}a", f"p{i}b"):
                pod = Pod(name, f"k3pyt-{tag}-{name}", node)
                ip("netns", "add", pod.netns)
                made.append(pod.netns)
                ip("link", "set", "lo", "up", netns=pod.netns)  # the loopback plugin's job in containerd
                lab.pods.append(pod)
        yield lab
    finally:
        for server in lab.servers:
            server.kill()
            server.wait()
            if server.stdout is not None:
                server.stdout.close()
        for pod in reversed(lab.pods):
            if pod.result:
                try:
                    cni(pod, "DEL")
                except AssertionError as exc:
                    print(f"DEL {pod.name}: {exc}")
        for node in nodes:
            if node.netns in made:
                run_in_netns(node.netns, teardown_node_network)
        for name in reversed(made):
            subprocess.run(["ip", "netns", "delete", name], check=False)


def bring_up(node: Node, all_nodes: list[Node]) -> list[str]:
    def inside() -> list[str]:
        path = write_cni_config(
            node.conf_dir, pod_cidr=node.pod_cidr, cluster_cidr=CLUSTER, ipam_dir=node.ipam_dir
        )
        node.conflist = json.loads(path.read_text())
        setup_node_network(pod_cidr=node.pod_cidr, cluster_cidr=CLUSTER, node_ip=node.address)
        return Routes().sync([n.object() for n in all_nodes], node.name)

    return run_in_netns(node.netns, inside)


def test_pods_reach_each_other_the_outside_and_host_ports(lab: Lab) -> None:
    node1, node2 = lab.nodes
    assert bring_up(node1, lab.nodes) == [f"add 10.42.2.0/24 via {node2.address}"]
    assert bring_up(node2, lab.nodes) == [f"add 10.42.1.0/24 via {node1.address}"]
    assert bring_up(node1, lab.nodes) == []  # a restart changes nothing
    p1a, p1b, p2a, p2b = lab.pods
    p1a.port_mappings = [{"hostPort": HOST_PORT, "containerPort": POD_PORT, "protocol": "tcp"}]
    for pod in lab.pods:
        cni(pod, "ADD")
        assert ipaddress.IPv4Address(pod.address) in pod.node.pod_cidr
    assert p1a.address != p1b.address

    # ICMP: same node, other node, the other node's gateway
    for source, target in ((p1a, p1b.address), (p1a, p2a.address), (p2b, p1b.address), (p2a, "10.42.1.1")):
        ping = in_ns(source.netns, "busybox", "ping", "-c", "1", "-W", "3", target, check=False)
        assert ping.returncode == 0, f"{source.name} -> {target}: {ping.stdout}{ping.stderr}"

    # TCP inside the cluster CIDR keeps the pod's address, on one node and across nodes
    lab.serve(p1a.netns, POD_PORT)
    assert tcp_peer(p1b.netns, p1a.address, POD_PORT) == p1b.address
    assert tcp_peer(p2a.netns, p1a.address, POD_PORT) == p2a.address

    # leaving the cluster CIDR: the node's address (masquerade)
    lab.serve(node2.netns, PEER_PORT)
    assert tcp_peer(p1a.netns, str(node2.address), PEER_PORT) == str(node1.address)

    # hostPort: node1's address, port HOST_PORT → p1a:POD_PORT, from the other node and a pod there
    assert tcp_peer(node2.netns, str(node1.address), HOST_PORT) == str(node2.address)
    assert tcp_peer(p2b.netns, str(node1.address), HOST_PORT) in (p2b.address, str(node2.address))


def test_setup_is_idempotent_and_teardown_removes_only_its_own(lab: Lab) -> None:
    node1, _ = lab.nodes
    foreign = "10.99.0.0/24"

    def prepare() -> None:
        subprocess.run(["iptables", "-t", "nat", "-N", "OTHER-CHAIN"], check=True)
        subprocess.run(["iptables", "-t", "nat", "-A", "POSTROUTING", "-j", "OTHER-CHAIN"], check=True)
        subprocess.run(["ip", "route", "add", foreign, "via", "192.168.231.2"], check=True)

    run_in_netns(node1.netns, prepare)
    bring_up(node1, lab.nodes)
    bring_up(node1, lab.nodes)

    def state() -> dict[str, str]:
        def out(*command: str) -> str:
            return subprocess.run(command, capture_output=True, text=True).stdout

        return {
            "nat": out("iptables", "-t", "nat", "-S"),
            "filter": out("iptables", "-t", "filter", "-S"),
            "routes": out("ip", "route", "show"),
            "ours": out("ip", "route", "show", "proto", str(ROUTE_PROTOCOL)),
            "forward": Path("/proc/sys/net/ipv4/ip_forward").read_text().strip(),
        }

    before = run_in_netns(node1.netns, state)
    assert before["nat"].count(f"-j {NAT_CHAIN}") == 1
    assert before["nat"].count(f"-A {NAT_CHAIN} ") == 3
    assert "MASQUERADE" in before["nat"]
    assert before["filter"].count(f"-j {FORWARD_CHAIN}") == 1
    assert before["ours"].startswith("10.42.2.0/24 via 192.168.231.2")
    assert before["forward"] == "1"

    cni(lab.pods[0], "ADD")  # makes the bridge and a veth
    done = run_in_netns(node1.netns, teardown_node_network)
    assert f"iptables -t nat: removed chain {NAT_CHAIN}" in done
    assert "deleted bridge cni0" in done
    assert any(line.startswith("deleted veth ") for line in done)
    after = run_in_netns(node1.netns, state)
    assert "K3PY" not in after["nat"] + after["filter"]
    assert "-A POSTROUTING -j OTHER-CHAIN" in after["nat"]
    assert foreign in after["routes"]
    assert after["ours"] == ""
    assert "cni0" not in ip("link", "show", netns=node1.netns)
    assert run_in_netns(node1.netns, teardown_node_network) == []  # nothing left: nothing done
    lab.pods[0].result = {}  # its interface went with the bridge's veth


def test_routes_leave_a_route_that_is_not_theirs(lab: Lab) -> None:
    node1, node2 = lab.nodes
    theirs = ["10.42.2.0/24", "via", str(node2.address), "proto", "static"]
    run_in_netns(node1.netns, lambda: ip("route", "add", *theirs))
    objects = [n.object() for n in lab.nodes]
    assert run_in_netns(node1.netns, lambda: Routes().sync(objects, node1.name)) == []
    assert "proto static" in ip("route", "show", "10.42.2.0/24", netns=node1.netns)
    assert run_in_netns(node1.netns, lambda: Routes().clear()) == []
    assert "10.42.2.0/24" in ip("route", "show", netns=node1.netns)
    run_in_netns(node1.netns, lambda: ip("route", "del", *theirs))
    assert run_in_netns(node1.netns, lambda: Routes().sync(objects, node1.name)) == [
        f"add 10.42.2.0/24 via {node2.address}"
    ]
    moved = [{**objects[1], "status": {"addresses": [{"type": "InternalIP", "address": "192.168.231.7"}]}}]
    assert run_in_netns(node1.netns, lambda: Routes().sync(moved, node1.name)) == [
        "replace 10.42.2.0/24 via 192.168.231.7"
    ]
    assert run_in_netns(node1.netns, lambda: Routes().sync([], node1.name)) == ["delete 10.42.2.0/24"]
    assert ip("route", "show", "proto", str(ROUTE_PROTOCOL), netns=node1.netns) == ""
