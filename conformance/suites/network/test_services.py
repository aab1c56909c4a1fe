"""network: Service addresses and ports are allocated and kept unique."""

from __future__ import annotations

import ipaddress
import json

from conformance.suites.kube import Kube


def test_services_get_unique_cluster_ips_and_node_ports(kube: Kube, namespace: str) -> None:
    kube.run("create", "service", "clusterip", "one", "--tcp=80:8080", "-n", namespace)
    kube.run("create", "service", "nodeport", "two", "--tcp=80:8080", "-n", namespace)
    one = kube.json("get", "service", "one", "-n", namespace)
    two = kube.json("get", "service", "two", "-n", namespace)
    assert ipaddress.ip_address(one["spec"]["clusterIP"]) != ipaddress.ip_address(two["spec"]["clusterIP"])
    assert 30000 <= two["spec"]["ports"][0]["nodePort"] <= 32767
    taken = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "three", "namespace": namespace},
        "spec": {"clusterIP": one["spec"]["clusterIP"], "ports": [{"port": 80}]},
    }
    clash = kube.run("create", "-f", "-", input=json.dumps(taken), check=False)
    assert clash.returncode != 0 and "provided IP is already allocated" in clash.stderr


def test_the_kubernetes_service_fronts_the_api(kube: Kube) -> None:
    service = kube.json("get", "service", "kubernetes", "-n", "default")
    assert service["spec"]["ports"][0]["port"] == 443
    assert service["spec"]["clusterIP"]
