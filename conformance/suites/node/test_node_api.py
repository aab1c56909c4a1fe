"""node: pod objects are validated and defaulted by the API (running them needs nodes)."""

from __future__ import annotations

import json

from conformance.suites.kube import Kube


def test_a_pod_is_defaulted_and_gets_its_service_account(kube: Kube, namespace: str) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": namespace},
        "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]},
    }
    kube.run("create", "-f", "-", input=json.dumps(pod))
    spec = kube.json("get", "pod", "p", "-n", namespace)["spec"]
    assert spec["restartPolicy"] == "Always" and spec["dnsPolicy"] == "ClusterFirst"
    assert spec["serviceAccountName"] == "default"
    assert spec["containers"][0]["terminationMessagePath"] == "/dev/termination-log"
    assert any(v["name"].startswith("kube-api-access-") for v in spec["volumes"])
    bad = {**pod, "metadata": {"name": "q", "namespace": namespace}, "spec": {"containers": []}}
    refused = kube.run("create", "-f", "-", input=json.dumps(bad), check=False)
    assert refused.returncode != 0 and "spec.containers: Required value" in refused.stderr
