"""cli: everyday kubectl against the cluster."""

from __future__ import annotations

import json

from conformance.suites.kube import Kube


def test_apply_diff_label_and_output_formats(kube: Kube, namespace: str) -> None:
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "app", "namespace": namespace},
        "data": {"mode": "fast"},
    }
    kube.apply(cm)
    cm["data"] = {"mode": "slow"}
    diff = kube.run("diff", "-f", "-", input=json.dumps(cm), check=False)
    assert diff.returncode == 1 and "+  mode: slow" in diff.stdout
    kube.run("label", "configmap", "app", "tier=web", "-n", namespace)
    names = kube.run("get", "configmaps", "-l", "tier=web", "-n", namespace, "-o", "name").stdout.split()
    assert names == ["configmap/app"]
    columns = kube.run(
        "get", "configmap", "app", "-n", namespace, "-o", "custom-columns=N:.metadata.name,M:.data.mode"
    )
    assert columns.stdout.split() == ["N", "M", "app", "fast"]


def test_explain_and_api_resources(kube: Kube) -> None:
    assert "containers" in kube.run("explain", "pod.spec").stdout
    resources = kube.run("api-resources", "-o", "name").stdout.split()
    assert {"pods", "deployments.apps", "customresourcedefinitions.apiextensions.k8s.io"} <= set(resources)
