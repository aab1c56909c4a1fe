"""apps: workload objects are validated, defaulted and scaled through the API."""

from __future__ import annotations

import json

from conformance.suites.kube import Kube


def deployment(namespace: str) -> dict[str, object]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "registry.k8s.io/pause:3.10"}]},
            },
        },
    }


def test_a_deployment_is_defaulted_and_scaled(kube: Kube, namespace: str) -> None:
    kube.apply(deployment(namespace))
    spec = kube.json("get", "deployment", "web", "-n", namespace)["spec"]
    assert spec["replicas"] == 1 and spec["strategy"]["type"] == "RollingUpdate"
    assert spec["revisionHistoryLimit"] == 10
    kube.run("scale", "deployment", "web", "--replicas=3", "-n", namespace)
    assert kube.json("get", "deployment", "web", "-n", namespace)["spec"]["replicas"] == 3


def test_a_selector_must_match_the_template(kube: Kube, namespace: str) -> None:
    bad = deployment(namespace)
    bad["spec"]["selector"] = {"matchLabels": {"app": "other"}}  # type: ignore[index]
    refused = kube.run("create", "-f", "-", input=json.dumps(bad), check=False)
    assert refused.returncode != 0
    assert "`selector` does not match template `labels`" in refused.stderr
