"""api-machinery: object lifecycle, concurrency, watches, finalizers, discovery."""

from __future__ import annotations

import json
import subprocess
import time

from conformance.suites.kube import Kube, eventually


def test_a_stale_update_is_a_conflict(kube: Kube, namespace: str) -> None:
    kube.run("create", "configmap", "cm", "--from-literal=a=1", "-n", namespace)
    first = kube.json("get", "configmap", "cm", "-n", namespace)
    kube.run("patch", "configmap", "cm", "-n", namespace, "--type=merge", "-p", '{"data":{"a":"2"}}')
    first["data"]["a"] = "3"
    stale = kube.run("replace", "-f", "-", input=json.dumps(first), check=False)
    assert stale.returncode != 0
    assert "the object has been modified; please apply your changes to the latest version" in stale.stderr
    assert kube.json("get", "configmap", "cm", "-n", namespace)["data"] == {"a": "2"}


def test_a_finalizer_holds_deletion_until_removed(kube: Kube, namespace: str) -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "held", "namespace": namespace, "finalizers": ["example.com/hold"]},
    }
    kube.apply(obj)
    kube.run("delete", "configmap", "held", "-n", namespace, "--wait=false")
    held = kube.json("get", "configmap", "held", "-n", namespace)
    assert held["metadata"]["deletionTimestamp"]
    kube.run(
        "patch",
        "configmap",
        "held",
        "-n",
        namespace,
        "--type=json",
        "-p",
        '[{"op":"remove","path":"/metadata/finalizers"}]',
    )
    eventually(lambda: kube.run("get", "configmap", "held", "-n", namespace, check=False).returncode != 0)


def test_a_watch_sees_changes_in_order(kube: Kube, namespace: str) -> None:
    kube.run("create", "configmap", "w", "-n", namespace)
    command = [
        "kubectl",
        "--kubeconfig",
        str(kube.kubeconfig),
        "get",
        "configmap",
        "w",
        "-n",
        namespace,
        "--watch-only",
        "-o",
        'jsonpath={.data.step}{"\\n"}',
    ]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as watcher:
        time.sleep(1.0)
        for step in ("1", "2", "3"):
            kube.run(
                "patch",
                "configmap",
                "w",
                "-n",
                namespace,
                "--type=merge",
                "-p",
                f'{{"data":{{"step":"{step}"}}}}',
            )
        assert watcher.stdout is not None
        seen = [watcher.stdout.readline().strip() for _ in range(3)]
        watcher.terminate()
    assert seen == ["1", "2", "3"]


def test_deleting_a_namespace_deletes_what_it_holds(kube: Kube) -> None:
    kube.run("create", "namespace", "native-doomed")
    kube.run("create", "configmap", "inside", "-n", "native-doomed")
    kube.run("delete", "namespace", "native-doomed", "--timeout=60s")
    assert kube.run("get", "namespace", "native-doomed", check=False).returncode != 0
    kube.run("create", "namespace", "native-doomed")
    try:
        names = kube.run("get", "configmaps", "-n", "native-doomed", "-o", "name").stdout.split()
        assert "configmap/inside" not in names
    finally:
        kube.run("delete", "namespace", "native-doomed", "--wait=false", check=False)


def test_discovery_lists_the_core_groups(kube: Kube) -> None:
    versions = set(kube.run("api-versions").stdout.split())
    assert {
        "v1",
        "apps/v1",
        "batch/v1",
        "rbac.authorization.k8s.io/v1",
        "apiextensions.k8s.io/v1",
    } <= versions
    assert not [v for v in versions if "alpha" in v], "no alpha API is on by default"


def test_server_side_apply_reports_conflicts_between_managers(kube: Kube, namespace: str) -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "ssa", "namespace": namespace},
        "data": {"owner": "one"},
    }
    kube.run("apply", "--server-side", "--field-manager=one", "-f", "-", input=json.dumps(obj))
    obj["data"] = {"owner": "two"}
    clash = kube.run(
        "apply", "--server-side", "--field-manager=two", "-f", "-", input=json.dumps(obj), check=False
    )
    assert clash.returncode != 0 and "conflict" in clash.stderr.lower()
    kube.run(
        "apply", "--server-side", "--field-manager=two", "--force-conflicts", "-f", "-", input=json.dumps(obj)
    )
    assert kube.json("get", "configmap", "ssa", "-n", namespace)["data"] == {"owner": "two"}
