"""CustomResourceDefinitions through kubectl 1.37: served, validated, defaulted, printed, patched, deleted."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import yaml

from tests.e2e.cluster import Cluster

GROUP = "stable.example.com"


def crd(plural: str, kind: str) -> dict[str, object]:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["cronSpec"],
                "properties": {
                    "cronSpec": {"type": "string", "pattern": r"^(\S+ ){4}\S+$"},
                    "image": {"type": "string"},
                    "replicas": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1},
                },
            },
            "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": kind.lower(), "kind": kind, "shortNames": [plural[:3]]},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": "Spec", "type": "string", "jsonPath": ".spec.cronSpec"},
                        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
                        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                    ],
                }
            ],
        },
    }


@pytest.fixture
def crontabs(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    plural = "crontabs" + request.node.name.rsplit("_", 1)[-1][:8].lower()
    cluster.kubectl("apply", "-f", "-", input=json.dumps(crd(plural, "CronTab" + plural[8:].capitalize())))
    cluster.kubectl("wait", "--for=condition=Established", f"crd/{plural}.{GROUP}", "--timeout=30s")
    yield plural
    cluster.kubectl("delete", "crd", f"{plural}.{GROUP}", "--wait=false", check=False)


def test_a_crd_is_served_validated_defaulted_and_printed(
    cluster: Cluster, namespace: str, crontabs: str
) -> None:
    kind = cluster.kubectl_json("get", "crd", f"{crontabs}.{GROUP}")["spec"]["names"]["kind"]
    assert crontabs in cluster.kubectl("api-resources", "--api-group", GROUP).stdout
    good = {"apiVersion": f"{GROUP}/v1", "kind": kind, "metadata": {"name": "nightly"},
            "spec": {"cronSpec": "* * * * 5", "image": "busybox", "unknown": "pruned"}}  # fmt: skip
    strict = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(good), check=False)
    assert 'strict decoding error: unknown field "spec.unknown"' in strict.stderr, (
        "kubectl validates strictly"
    )
    cluster.kubectl("apply", "--validate=false", "-n", namespace, "-f", "-", input=json.dumps(good))
    stored = cluster.kubectl_json("get", crontabs, "nightly", "-n", namespace)
    assert stored["spec"] == {"cronSpec": "* * * * 5", "image": "busybox", "replicas": 1}, "defaulted, pruned"

    table = cluster.kubectl("get", crontabs, "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "SPEC", "REPLICAS", "PHASE"]  # with columns given, no implicit AGE
    assert table[1].split()[:7] == ["nightly", "*", "*", "*", "*", "5", "1"]

    bad = {**good, "metadata": {"name": "broken"}, "spec": {"cronSpec": "nope", "replicas": 50}}
    refused = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(bad), check=False)
    assert refused.returncode != 0
    assert (
        "spec.replicas: Invalid value: 50: spec.replicas in body should be less than or equal to 10"
        in refused.stderr
    )
    assert 'spec.cronSpec: Invalid value: "nope": spec.cronSpec in body should match' in refused.stderr
    assert cluster.kubectl("get", crontabs, "broken", "-n", namespace, check=False).returncode != 0

    cluster.kubectl(
        "patch", crontabs, "nightly", "-n", namespace, "--type=merge", "-p", '{"spec":{"replicas":3}}'
    )
    cluster.kubectl("patch", crontabs, "nightly", "-n", namespace, "--subresource=status", "--type=merge",
                    "-p", '{"status":{"phase":"Running"}}')  # fmt: skip
    ignored = cluster.kubectl(
        "patch", crontabs, "nightly", "-n", namespace, "--type=merge", "-p", '{"status":{"phase":"Lost"}}'
    )
    assert ignored.returncode == 0
    stored = cluster.kubectl_json("get", crontabs, "nightly", "-n", namespace)
    assert stored["spec"]["replicas"] == 3 and stored["status"] == {"phase": "Running"}
    assert stored["metadata"]["generation"] == 2, "status writes do not move the generation"
    strategic = cluster.kubectl(
        "patch",
        crontabs,
        "nightly",
        "-n",
        namespace,
        "--type=strategic",
        "-p",
        '{"spec":{"replicas":2}}',
        check=False,
    )
    assert (
        strategic.returncode != 0
        and "application/strategic-merge-patch+json is not supported" in strategic.stderr
    )


def test_deleting_a_crd_deletes_its_objects_and_stops_serving_it(
    cluster: Cluster, namespace: str, crontabs: str
) -> None:
    kind = cluster.kubectl_json("get", "crd", f"{crontabs}.{GROUP}")["spec"]["names"]["kind"]
    for name in ("a", "b"):
        obj = {
            "apiVersion": f"{GROUP}/v1",
            "kind": kind,
            "metadata": {"name": name},
            "spec": {"cronSpec": "1 2 3 4 5"},
        }
        cluster.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(obj))
    cluster.kubectl("delete", "crd", f"{crontabs}.{GROUP}", "--timeout=30s")
    deadline = time.monotonic() + 10
    while crontabs in cluster.kubectl("api-resources", "--api-group", GROUP).stdout:
        assert time.monotonic() < deadline, "still served"
        time.sleep(0.1)
    status, _, _ = cluster.request("GET", f"/apis/{GROUP}/v1/namespaces/{namespace}/{crontabs}")
    assert status == 404
    cluster.kubectl("apply", "-f", "-", input=json.dumps(crd(crontabs, kind)))
    cluster.kubectl("wait", "--for=condition=Established", f"crd/{crontabs}.{GROUP}", "--timeout=30s")
    listed = cluster.kubectl_json("get", crontabs, "-n", namespace)
    assert listed["items"] == [], "the objects went with the definition"


def test_a_name_conflict_is_reported_and_not_served(cluster: Cluster, crontabs: str) -> None:
    kind = cluster.kubectl_json("get", "crd", f"{crontabs}.{GROUP}")["spec"]["names"]["kind"]
    clash = crd(crontabs + "x", kind)
    cluster.kubectl("apply", "-f", "-", input=json.dumps(clash))
    try:
        cluster.kubectl(
            "wait", "--for=condition=NamesAccepted=False", f"crd/{crontabs}x.{GROUP}", "--timeout=30s"
        )
        conditions = cluster.kubectl_json("get", "crd", f"{crontabs}x.{GROUP}")["status"]["conditions"]
        names = next(c for c in conditions if c["type"] == "NamesAccepted")
        assert names["reason"] == "ListKindConflict"  # upstream reports the last of its name checks
        assert f'"{kind}List" is already in use' in names["message"]
    finally:
        cluster.kubectl("delete", "crd", f"{crontabs}x.{GROUP}", "--wait=false", check=False)


def test_explain_and_yaml_round_trip(cluster: Cluster, namespace: str, crontabs: str) -> None:
    explained = cluster.kubectl("explain", f"{crontabs}.spec").stdout
    assert "cronSpec" in explained and "replicas" in explained
    kind = cluster.kubectl_json("get", "crd", f"{crontabs}.{GROUP}")["spec"]["names"]["kind"]
    manifest = yaml.safe_dump({"apiVersion": f"{GROUP}/v1", "kind": kind, "metadata": {"name": "why"},
                               "spec": {"cronSpec": "0 0 * * *"}})  # fmt: skip
    cluster.kubectl("apply", "--server-side", "-n", namespace, "-f", "-", input=manifest)
    assert cluster.kubectl_json("get", crontabs, "why", "-n", namespace)["spec"]["replicas"] == 1


def test_validation_rules_that_k3py_does_not_evaluate_are_said_to_be_so(cluster: Cluster) -> None:
    definition = crd("ruledthings", "RuledThing")
    version = definition["spec"]["versions"][0]  # type: ignore[index]
    version["schema"]["openAPIV3Schema"]["properties"]["spec"]["x-kubernetes-validations"] = [
        {"rule": "self.replicas <= 5", "message": "at most five"}
    ]
    applied = cluster.kubectl("apply", "-f", "-", input=json.dumps(definition))
    try:
        assert "x-kubernetes-validations rules are accepted but not evaluated by k3py" in applied.stderr
    finally:
        cluster.kubectl("delete", "crd", f"ruledthings.{GROUP}", "--wait=false", check=False)
