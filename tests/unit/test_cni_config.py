"""The node's CNI conflist: what it asks the plugins for, that it is written atomically and
only on change, and the pure parts of the node network (NAT rules, node routes)."""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path

import pytest

from k3py.agent.network import (
    CONFIG_NAME,
    NETWORK_NAME,
    NetworkError,
    Route,
    cni_config,
    nat_rules,
    node_route,
    write_cni_config,
)

CLUSTER = ipaddress.IPv4Network("10.42.0.0/16")
POD = ipaddress.IPv4Network("10.42.3.0/24")


def test_the_conflist_chains_bridge_and_portmap(tmp_path: Path) -> None:
    path = write_cni_config(
        tmp_path / "net.d", pod_cidr=POD, cluster_cidr=CLUSTER, ipam_dir=tmp_path / "ipam"
    )
    assert path == tmp_path / "net.d" / CONFIG_NAME
    config = json.loads(path.read_text())
    assert config["name"] == NETWORK_NAME == "cbr0"
    assert config["cniVersion"] == "1.0.0"
    bridge, portmap = config["plugins"]
    assert bridge["type"] == "bridge"
    assert bridge["bridge"] == "cni0"
    assert bridge["isGateway"] is True
    assert bridge["ipMasq"] is False
    assert bridge["hairpinMode"] is True
    assert "promiscMode" not in bridge  # the plugin refuses it with hairpinMode
    assert "mtu" not in bridge
    assert bridge["ipam"] == {
        "type": "host-local",
        "ranges": [[{"subnet": "10.42.3.0/24", "gateway": "10.42.3.1"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": str(tmp_path / "ipam"),
    }
    assert portmap == {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True}
    assert path.stat().st_mode & 0o777 == 0o644


def test_bridge_name_mtu_and_default_ipam_dir() -> None:
    config = cni_config(pod_cidr=POD, cluster_cidr=CLUSTER, bridge="k3br", mtu=1450)
    bridge = config["plugins"][0]
    assert bridge["bridge"] == "k3br"
    assert bridge["mtu"] == 1450
    assert "dataDir" not in bridge["ipam"]


def test_rewriting_the_same_config_leaves_the_file_alone(tmp_path: Path) -> None:
    conf_dir = tmp_path / "net.d"
    path = write_cni_config(conf_dir, pod_cidr=POD, cluster_cidr=CLUSTER)
    os.utime(path, (1, 1))
    inode = path.stat().st_ino
    assert write_cni_config(conf_dir, pod_cidr=POD, cluster_cidr=CLUSTER) == path
    assert path.stat().st_mtime == 1
    assert path.stat().st_ino == inode
    other = ipaddress.IPv4Network("10.42.4.0/24")
    write_cni_config(conf_dir, pod_cidr=other, cluster_cidr=CLUSTER)
    assert path.stat().st_ino != inode  # replaced by rename, not rewritten in place
    assert "10.42.4.0/24" in path.read_text()
    assert sorted(p.name for p in conf_dir.iterdir()) == [CONFIG_NAME]  # no temporary file left


@pytest.mark.parametrize("pod", ["10.43.0.0/24", "10.42.0.0/31"])
def test_a_pod_cidr_it_cannot_use_is_refused(tmp_path: Path, pod: str) -> None:
    with pytest.raises(NetworkError, match=pod.replace(".", r"\.")):
        write_cni_config(tmp_path, pod_cidr=ipaddress.IPv4Network(pod), cluster_cidr=CLUSTER)
    assert not (tmp_path / CONFIG_NAME).exists()


def test_nat_keeps_cluster_traffic_and_masquerades_the_rest() -> None:
    rules = nat_rules(POD, CLUSTER)
    assert rules[0] == ["-s", "10.42.0.0/16", "-d", "10.42.0.0/16", "-j", "RETURN"]
    assert rules[-1][:5] == ["-s", "10.42.3.0/24", "!", "-d", "10.42.0.0/16"]
    assert "MASQUERADE" in rules[-1]


def test_a_node_route_needs_a_pod_cidr_and_an_ipv4_internal_ip() -> None:
    node = {
        "metadata": {"name": "n2"},
        "spec": {"podCIDR": "10.42.1.0/24"},
        "status": {
            "addresses": [
                {"type": "Hostname", "address": "n2"},
                {"type": "InternalIP", "address": "fd00::2"},
                {"type": "InternalIP", "address": "192.168.5.2"},
            ]
        },
    }
    assert node_route(node) == Route(
        ipaddress.IPv4Network("10.42.1.0/24"), ipaddress.IPv4Address("192.168.5.2")
    )
    assert node_route({**node, "spec": {}}) is None
    assert (
        node_route({**node, "status": {"addresses": [{"type": "ExternalIP", "address": "1.2.3.4"}]}}) is None
    )
