"""The service proxy's rules in real iptables, with real traffic, in network namespaces this test makes.

A "node" namespace has the pod network's bridge (``cni0``, 10.42.0.1/24) and the node's own
rules (:func:`setup_node_network`); two "pod" namespaces hang off the bridge by veths: a client
(10.42.0.2) and a server with two addresses (10.42.0.3 and .4: two endpoints) that answers TCP
and UDP with the address it was reached at and the address it saw. An "outside" namespace
reaches the node over a second veth (192.168.233.0/24), as a host off the cluster would.
:func:`apply_rules` loads the rules for a set of Services inside the node namespace; clients
run in the pod and outside namespaces (``nsenter --net``) and go through cluster IPs and
NodePorts.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from k3py.agent.netns import run_in_netns
from k3py.agent.network import setup_node_network, teardown_node_network
from k3py.agent.serviceproxy import apply_rules, chains_now, clear_udp_flows
from k3py.agent.serviceproxy_rules import Ruleset, build_rules

pytestmark = [pytest.mark.root, pytest.mark.slow]

CLUSTER = ipaddress.IPv4Network("10.42.0.0/16")
POD_CIDR = ipaddress.IPv4Network("10.42.0.0/24")
GATEWAY = "10.42.0.1"
CLIENT = "10.42.0.2"
ENDPOINTS = ("10.42.0.3", "10.42.0.4")
NODE_OUTSIDE, OUTSIDE = "192.168.233.1", "192.168.233.2"
TCP_PORT, UDP_PORT = 8080, 5353
SERVER = (
    "import socket, sys, threading\n"
    "tcp, udp, addresses = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]\n"
    "def serve_tcp(s):\n"
    "    while True:\n"
    "        c, peer = s.accept(); c.sendall(f'{c.getsockname()[0]} {peer[0]}'.encode()); c.close()\n"
    "def serve_udp(s):\n"
    "    while True:\n"
    "        _, peer = s.recvfrom(100); s.sendto(f'{s.getsockname()[0]} {peer[0]}'.encode(), peer)\n"
    "for address in addresses:\n"
    "    t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "    t.bind((address, tcp)); t.listen(64)\n"
    "    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind((address, udp))\n"
    "    threading.Thread(target=serve_tcp, args=(t,), daemon=True).start()\n"
    "    threading.Thread(target=serve_udp, args=(u,), daemon=True).start()\n"
    "print('ready', flush=True)\n"
    "threading.Event().wait()\n"
)
"""Answers on each address it is given (one socket each, so UDP replies leave from the address
that was asked) with ``<that address> <the client's address>``."""
CLIENT_SCRIPT = (
    "import json, socket, sys\n"
    "proto, host, port, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])\n"
    "out = []\n"
    "for _ in range(count):\n"
    "    try:\n"
    "        if proto == 'tcp':\n"
    "            with socket.create_connection((host, port), timeout=3) as c:\n"
    "                out.append(c.recv(100).decode())\n"
    "        else:\n"
    "            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:\n"
    "                s.settimeout(3); s.connect((host, port)); s.send(b'?')\n"
    "                out.append(s.recv(100).decode())\n"
    "    except OSError as exc:\n"
    "        out.append(type(exc).__name__)\n"
    "print(json.dumps(out))\n"
)

UDP_SESSION = (
    "import socket, sys\n"
    "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)\n"
    "s.connect((sys.argv[1], int(sys.argv[2])))\n"
    "for _ in sys.stdin:\n"
    "    s.send(b'?')\n"
    "    try:\n"
    "        print(s.recv(100).decode(), flush=True)\n"
    "    except OSError as exc:\n"
    "        print(type(exc).__name__, flush=True)\n"
)
"""One UDP socket (one source port: one conntrack entry) asking once per line of input."""


def ip(*args: str, netns: str | None = None) -> str:
    command = ["ip", *(["-n", netns] if netns else []), *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def nsenter(netns: str, *command: str) -> list[str]:
    return ["nsenter", f"--net=/run/netns/{netns}", "--", *command]


@dataclass
class Lab:
    node: str
    client: str
    server: str
    outside: str
    processes: list[subprocess.Popen[str]] = field(default_factory=list)

    def ask(self, netns: str, proto: str, host: str, port: int, count: int = 1) -> list[str]:
        """What ``count`` fresh connections (datagrams) from ``netns`` to ``host:port`` got back."""
        done = subprocess.run(
            nsenter(netns, sys.executable, "-c", CLIENT_SCRIPT, proto, host, str(port), str(count)),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        answers: list[str] = json.loads(done.stdout)
        return answers

    def load(self, services: list[dict[str, Any]], slices: list[dict[str, Any]]) -> Ruleset:
        ruleset = build_rules(services, slices, node_name="node", cluster_cidr=CLUSTER)
        run_in_netns(self.node, lambda: apply_rules(ruleset))
        return ruleset

    def iptables_save(self) -> str:
        done = subprocess.run(nsenter(self.node, "iptables-save"), capture_output=True, text=True, check=True)
        return done.stdout


@pytest.fixture
def lab() -> Iterator[Lab]:
    tag = secrets.token_hex(3)
    lab = Lab(f"k3pyt-{tag}-node", f"k3pyt-{tag}-cli", f"k3pyt-{tag}-srv", f"k3pyt-{tag}-out")
    made: list[str] = []
    try:
        for name in (lab.node, lab.client, lab.server, lab.outside):
            ip("netns", "add", name)
            made.append(name)
            ip("link", "set", "lo", "up", netns=name)
        ip("link", "add", "cni0", "type", "bridge", netns=lab.node)
        ip("addr", "add", f"{GATEWAY}/24", "dev", "cni0", netns=lab.node)
        ip("link", "set", "cni0", "up", netns=lab.node)
        for pod, addresses in ((lab.client, [CLIENT]), (lab.server, list(ENDPOINTS))):
            host_end = f"veth{pod[-3:]}"
            ip("link", "add", host_end, "netns", lab.node, "type", "veth", "peer", "eth0", "netns", pod)
            ip("link", "set", host_end, "master", "cni0", "up", netns=lab.node)
            ip("link", "set", host_end, "type", "bridge_slave", "hairpin", "on", netns=lab.node)  # as CNI's
            for address in addresses:
                ip("addr", "add", f"{address}/24", "dev", "eth0", netns=pod)
            ip("link", "set", "eth0", "up", netns=pod)
            ip("route", "add", "default", "via", GATEWAY, netns=pod)
        ip("link", "add", "eth1", "netns", lab.node, "type", "veth", "peer", "eth0", "netns", lab.outside)
        for netns, address in ((lab.node, NODE_OUTSIDE), (lab.outside, OUTSIDE)):
            device = "eth1" if netns == lab.node else "eth0"
            ip("addr", "add", f"{address}/24", "dev", device, netns=netns)
            ip("link", "set", device, "up", netns=netns)
        ip("route", "add", "default", "via", OUTSIDE, netns=lab.node)
        ip("route", "add", "10.43.0.0/16", "via", NODE_OUTSIDE, netns=lab.outside)
        run_in_netns(
            lab.node,
            lambda: setup_node_network(
                pod_cidr=POD_CIDR, cluster_cidr=CLUSTER, node_ip=ipaddress.IPv4Address(NODE_OUTSIDE)
            ),
        )
        server = subprocess.Popen(
            nsenter(lab.server, sys.executable, "-c", SERVER, str(TCP_PORT), str(UDP_PORT), *ENDPOINTS),
            stdout=subprocess.PIPE,
            text=True,
        )
        lab.processes.append(server)
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "ready"
        yield lab
    finally:
        for process in lab.processes:
            process.kill()
            process.wait()
            if process.stdout is not None:
                process.stdout.close()
        if lab.node in made:
            run_in_netns(lab.node, lambda: teardown_node_network(bridge="cni0"))
        for name in reversed(made):
            subprocess.run(["ip", "netns", "delete", name], check=False)


def service(
    name: str, cluster_ip: str, protocol: str = "TCP", node_port: int = 0, **spec: Any
) -> dict[str, Any]:
    port: dict[str, Any] = {"name": "p", "port": 80 if protocol == "TCP" else 53, "protocol": protocol}
    if node_port:
        port["nodePort"] = node_port
    return {
        "metadata": {"namespace": "default", "name": name},
        "spec": {
            "type": "NodePort" if node_port else "ClusterIP",
            "clusterIP": cluster_ip,
            "clusterIPs": [cluster_ip],
            "ports": [port],
            **spec,
        },
    }


def slice_(name: str, protocol: str, *addresses: str) -> dict[str, Any]:
    return {
        "metadata": {
            "namespace": "default",
            "name": f"{name}-x",
            "labels": {"kubernetes.io/service-name": name},
        },
        "addressType": "IPv4",
        "ports": [{"name": "p", "port": TCP_PORT if protocol == "TCP" else UDP_PORT, "protocol": protocol}],
        "endpoints": [
            {"addresses": [a], "nodeName": "node", "conditions": {"ready": True, "serving": True}}
            for a in addresses
        ],
    }


def test_cluster_ips_node_ports_affinity_rejects_and_teardown(lab: Lab) -> None:
    services = [
        service("web", "10.43.0.50", node_port=30080),
        service("sticky", "10.43.0.51", sessionAffinity="ClientIP"),
        service("dns", "10.43.0.10", "UDP", node_port=30053),
        service("empty", "10.43.0.60", node_port=30090),
        service("self", "10.43.0.52"),
    ]
    slices = [
        slice_("web", "TCP", *ENDPOINTS),
        slice_("sticky", "TCP", *ENDPOINTS),
        slice_("dns", "UDP", *ENDPOINTS),
        slice_("empty", "TCP"),
        slice_("self", "TCP", ENDPOINTS[0]),
    ]
    lab.load(services, slices)
    lab.load(services, slices)  # a resync changes nothing
    saved = lab.iptables_save()
    assert saved.count("-j K3PY-SERVICES") == 2 and saved.count("-j K3PY-SVC-REJECT") == 3

    # a cluster IP from a pod: both endpoints by chance, the client's own address kept
    answers = lab.ask(lab.client, "tcp", "10.43.0.50", 80, 30)
    assert {a.split()[0] for a in answers} == set(ENDPOINTS), answers
    assert {a.split()[1] for a in answers} == {CLIENT}
    # session affinity: one endpoint for every connection of this client
    answers = lab.ask(lab.client, "tcp", "10.43.0.51", 80, 20)
    assert len(set(answers)) == 1 and answers[0].split()[0] in ENDPOINTS, answers
    # UDP, by cluster IP and by NodePort
    answers = lab.ask(lab.client, "udp", "10.43.0.10", 53, 20)
    assert {a.split()[0] for a in answers} == set(ENDPOINTS), answers
    assert lab.ask(lab.client, "udp", GATEWAY, 30053)[0].split()[0] in ENDPOINTS
    # a NodePort from a pod, from the node itself and from outside: masqueraded
    for netns, node_address in ((lab.client, GATEWAY), (lab.node, NODE_OUTSIDE), (lab.outside, NODE_OUTSIDE)):
        (answer,) = lab.ask(netns, "tcp", node_address, 30080)
        endpoint, seen = answer.split()
        assert endpoint in ENDPOINTS and seen == GATEWAY, (netns, answer)
    # a cluster IP from outside the cluster CIDR is masqueraded too
    (answer,) = lab.ask(lab.outside, "tcp", "10.43.0.50", 80)
    assert answer.split()[1] == GATEWAY, answer
    # hairpin: an endpoint reaching itself through the cluster IP, masqueraded
    assert lab.ask(lab.server, "tcp", "10.43.0.52", 80, 3) == [f"{ENDPOINTS[0]} {GATEWAY}"] * 3
    # no endpoints: rejected at once, by cluster IP and by NodePort
    assert lab.ask(lab.client, "tcp", "10.43.0.60", 80) == ["ConnectionRefusedError"]
    assert lab.ask(lab.outside, "tcp", NODE_OUTSIDE, 30090) == ["ConnectionRefusedError"]

    # an endpoint goes: its chain goes, traffic goes to the other one
    before = chains_in(lab)
    slices[0] = slice_("web", "TCP", ENDPOINTS[1])
    lab.load(services, slices)
    after = chains_in(lab)
    assert len([c for c in before if c.startswith("K3PY-SEP-")]) - 1 == len(
        [c for c in after if c.startswith("K3PY-SEP-")]
    )
    assert {a.split()[0] for a in lab.ask(lab.client, "tcp", "10.43.0.50", 80, 10)} == {ENDPOINTS[1]}
    # the service goes: its address is no longer translated (nothing answers there)
    lab.load(services[1:], slices[1:])
    assert "10.43.0.50" not in lab.iptables_save()

    done = run_in_netns(lab.node, lambda: teardown_node_network(bridge="cni0"))
    assert "iptables -t filter: removed chain K3PY-SVC-REJECT" in done
    assert "K3PY" not in lab.iptables_save()
    assert run_in_netns(lab.node, chains_now) == {"nat": [], "filter": []}


def chains_in(lab: Lab) -> list[str]:
    return run_in_netns(lab.node, chains_now)["nat"]


def test_pod_network_setup_after_the_proxy_keeps_the_rejects_first(lab: Lab, tmp_path: Path) -> None:
    lab.load([service("empty", "10.43.0.60")], [slice_("empty", "TCP")])
    run_in_netns(lab.node, lambda: teardown_node_network(bridge="none"))
    lab.load([service("empty", "10.43.0.60")], [slice_("empty", "TCP")])
    run_in_netns(
        lab.node,
        lambda: setup_node_network(
            pod_cidr=POD_CIDR, cluster_cidr=CLUSTER, node_ip=ipaddress.IPv4Address(NODE_OUTSIDE)
        ),
    )
    forward = subprocess.run(
        nsenter(lab.node, "iptables", "-S", "FORWARD"), capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert forward[1].endswith("-j K3PY-SVC-REJECT") and forward[2].endswith("-j K3PY-FORWARD"), forward
    assert lab.ask(lab.client, "tcp", "10.43.0.60", 80) == ["ConnectionRefusedError"]


def test_udp_flows_to_a_removed_endpoint_are_forgotten(lab: Lab) -> None:
    if shutil.which("conntrack") is None:
        pytest.skip("the conntrack tool is not installed (Debian package conntrack)")
    services = [service("dns", "10.43.0.10", "UDP")]
    both = lab.load(services, [slice_("dns", "UDP", *ENDPOINTS)])
    client = subprocess.Popen(
        nsenter(lab.client, sys.executable, "-c", UDP_SESSION, "10.43.0.10", "53"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    lab.processes.append(client)
    assert client.stdin is not None and client.stdout is not None

    def ask() -> str:
        assert client.stdin is not None and client.stdout is not None
        client.stdin.write("?\n")
        client.stdin.flush()
        return client.stdout.readline().split()[0]

    first = ask()
    assert first in ENDPOINTS
    (other,) = set(ENDPOINTS) - {first}
    only_other = lab.load(services, [slice_("dns", "UDP", other)])
    assert ask() == first  # the flow's conntrack entry still leads to the old endpoint
    commands = run_in_netns(lab.node, lambda: clear_udp_flows(both, only_other))
    assert [c[-1] for c in commands] == [first]
    assert ask() == other
    client.stdin.close()
