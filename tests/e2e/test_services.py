"""Services on a real node: the embedded agent's service proxy, with pods started by containerd.

A Deployment of two busybox httpd pods answers with its pod's name; a client pod reaches them
through the Service's cluster IP, the node's own namespace through a NodePort, and a Service
that selects nothing refuses connections at once (the proxy's REJECT).
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from conformance.cluster import EphemeralCluster
from tests.e2e.test_pods import (  # noqa: F401 (fixtures)
    IMAGE,
    apply,
    eventually,
    get,
    kubectl,
    node,
    ns,
    pod_manifest,
)

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.xdist_group("node")]

HTTPD = "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"
FETCH = (
    "import socket, sys\n"
    "with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5) as c:\n"
    "    c.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n'); data = b''\n"
    "    while chunk := c.recv(4096): data += chunk\n"
    "print(data.decode().rsplit('\\r\\n\\r\\n', 1)[-1].strip())\n"
)


def deployment(name: str, replicas: int) -> dict[str, Any]:
    container = {
        "name": "httpd",
        "image": IMAGE,
        "command": ["sh", "-c", HTTPD],
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"terminationGracePeriodSeconds": 0, "containers": [container]},
            },
        },
    }


def service(name: str, app: str, kind: str = "ClusterIP") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "type": kind,
            "selector": {"app": app},
            "ports": [{"name": "web", "port": 80, "targetPort": "http"}],
        },
    }


def fetch_from_pod(cluster: EphemeralCluster, namespace: str, pod: str, host: str, port: int) -> str:
    """The page's body, fetched from inside ``pod`` with busybox nc; its error when none."""
    request = f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {host} {port}"
    done = kubectl(cluster, "exec", "-n", namespace, pod, "--", "sh", "-c", request, check=False)
    body = done.stdout.replace("\r\n", "\n").rsplit("\n\n", 1)[-1]  # text mode may turn CRLF into LF
    return (body + done.stderr).strip()


def test_cluster_ip_node_port_and_reject(node: EphemeralCluster, ns: str) -> None:  # noqa: F811
    apply(node, ns, deployment("echo", 2))
    apply(node, ns, service("echo", "echo"))
    apply(node, ns, service("echo-np", "echo", "NodePort"))
    apply(node, ns, service("nobody", "nothing-has-this-label"))
    apply(node, ns, pod_manifest("cli", {"name": "main", "command": ["sleep", "3600"]}))
    kubectl(node, "rollout", "status", "-n", ns, "deployment/echo", "--timeout=90s")
    kubectl(node, "wait", "-n", ns, "--for=condition=Ready", "pod/cli", "--timeout=60s")
    pods = {p["metadata"]["name"] for p in get(node, "pods", "-n", ns, "-l", "app=echo")["items"]}
    assert len(pods) == 2

    # the cluster IP from a pod: every replica answers, sooner or later
    cluster_ip = get(node, "service", "echo", "-n", ns)["spec"]["clusterIP"]
    answers: list[str] = []

    def both_answered() -> bool:
        answers.append(fetch_from_pod(node, ns, "cli", cluster_ip, 80))
        return pods <= set(answers)

    try:
        eventually(both_answered, 60, f"both replicas through {cluster_ip}")
    except AssertionError:
        print(node.server.log_tail(100))
        raise AssertionError(f"answers through {cluster_ip}: {answers[-5:]}") from None

    # the NodePort from the node's own network namespace
    node_port = get(node, "service", "echo-np", "-n", ns)["spec"]["ports"][0]["nodePort"]
    address = str(node.server.net.address)

    def through_node_port() -> str:
        done = subprocess.run(
            [
                "nsenter",
                f"--net=/run/netns/{node.server.net.namespace}",
                "--",
                sys.executable,
                "-c",
                FETCH,
                address,
                str(node_port),
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return done.stdout.strip() if done.stdout.strip() in pods else ""

    eventually(through_node_port, 60, f"an answer on {address}:{node_port}")

    # no endpoints: refused at once
    nobody = get(node, "service", "nobody", "-n", ns)["spec"]["clusterIP"]
    eventually(
        lambda: "Connection refused" in fetch_from_pod(node, ns, "cli", nobody, 80),
        30,
        "a refused connection",
    )


def test_pods_resolve_cluster_names_and_reach_the_api_server(node: EphemeralCluster, ns: str) -> None:  # noqa: F811
    apply(node, ns, deployment("named", 1))
    apply(node, ns, service("named", "named"))
    apply(node, ns, pod_manifest("asker", {"name": "main", "command": ["sleep", "3600"]}))
    kubectl(node, "rollout", "status", "-n", ns, "deployment/named", "--timeout=90s")
    kubectl(node, "wait", "-n", ns, "--for=condition=Ready", "pod/asker", "--timeout=60s")
    cluster_ip = get(node, "service", "named", "-n", ns)["spec"]["clusterIP"]

    def lookup(name: str) -> str:
        done = kubectl(node, "exec", "-n", ns, "asker", "--", "nslookup", name, check=False)
        return done.stdout + done.stderr

    # the short name through the pod's search path, then the full name, from kube-dns (10.43.0.10)
    eventually(lambda: cluster_ip in lookup("named"), 60, f"named resolving to {cluster_ip}")
    # a loaded CI machine may let a first query time out: each answer is waited for
    eventually(lambda: cluster_ip in lookup(f"named.{ns}.svc.cluster.local"), 30, "the full name")
    eventually(lambda: "10.43.0.1" in lookup("kubernetes.default"), 30, "kubernetes.default")
    eventually(lambda: "NXDOMAIN" in lookup(f"nothing-here.{ns}.svc.cluster.local"), 30, "an NXDOMAIN")
    # a name resolved in the pod leads to the page, and the API server answers on its Service
    assert fetch_from_pod(node, ns, "asker", "named", 80).startswith("named-")
    probe = "nc -w 2 10.43.0.1 443 </dev/null 2>&1; echo rc=$?"  # a refused connect is rc=1
    done = kubectl(node, "exec", "-n", ns, "asker", "--", "sh", "-c", probe, check=False)
    assert done.stdout.strip().endswith("rc=0"), done.stdout + done.stderr
