"""Pod admission on a real node: a pod bound straight to the node whose host port is taken.

The scheduler never sees such a pod (its ``spec.nodeName`` is set by its creator), so only the
node's kubelet can refuse it, as upstream's does: phase Failed with the predicate's reason and
message, a Warning event, no container started. Once the port is free again, the next such pod
runs (what a StatefulSet relies on when it replaces its rejected pod). One real node: ``k3py
server`` with its embedded agent and containerd, the ``node`` fixture of ``test_pods``.
"""

from __future__ import annotations

from typing import Any

import pytest

from conformance.cluster import EphemeralCluster
from tests.e2e.test_pods import (  # noqa: F401 (node and ns are fixtures)
    apply,
    events,
    eventually,
    get,
    kubectl,
    node,
    ns,
    phase,
    pod_manifest,
)

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.xdist_group("node")]

PORT = 21017
MESSAGE = "Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports"


def with_host_port(name: str, node_name: str) -> dict[str, Any]:
    manifest = pod_manifest(
        name,
        {
            "name": "main",
            "command": ["sleep", "3600"],
            "ports": [{"containerPort": PORT, "hostPort": PORT, "name": "conflict"}],
        },
    )
    manifest["spec"]["nodeName"] = node_name
    return manifest


def test_a_pod_with_a_taken_host_port_is_rejected(node: EphemeralCluster, ns: str) -> None:  # noqa: F811
    name = node.server.name
    apply(node, ns, with_host_port("first", name))
    kubectl(node, "wait", "-n", ns, "--for=condition=Ready", "pod/first", "--timeout=90s")

    apply(node, ns, with_host_port("second", name))
    eventually(lambda: phase(node, ns, "second") == "Failed", 60, "the second pod to be rejected")
    status = get(node, "pod", "second", "-n", ns)["status"]
    assert status["reason"] == "NodePorts"
    assert status["message"] == "Pod was rejected: " + MESSAGE
    assert status["qosClass"] == "BestEffort"
    assert not status.get("containerStatuses"), "no container of a rejected pod starts"
    rejections = eventually(
        lambda: [e for e in events(node, ns, "second") if e["reason"] == "NodePorts"], 30, "the event"
    )
    assert rejections[0]["type"] == "Warning"
    assert rejections[0]["message"] == MESSAGE
    assert not {"Pulled", "Created", "Started"} & {e["reason"] for e in events(node, ns, "second")}
    assert phase(node, ns, "first") == "Running"

    kubectl(node, "delete", "pod", "second", "-n", ns, "--timeout=60s")
    assert kubectl(node, "get", "pod", "second", "-n", ns, check=False).returncode != 0

    # The port free again, the next pod bound here runs.
    kubectl(node, "delete", "pod", "first", "-n", ns, "--timeout=60s")
    apply(node, ns, with_host_port("third", name))
    kubectl(node, "wait", "-n", ns, "--for=condition=Ready", "pod/third", "--timeout=90s")
