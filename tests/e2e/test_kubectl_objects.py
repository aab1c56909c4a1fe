"""kubectl v1.37 against a live k3py server: discovery, create, get in every output format,
label, annotate, patch, replace, watch, finalizers, wait."""

from __future__ import annotations

import json
import subprocess
import time

import yaml

from tests.e2e.cluster import Cluster


def test_discovery_lists_served_resources(cluster: Cluster) -> None:
    out = cluster.kubectl("api-resources", "-o", "wide").stdout
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "pods" in lines and "po" in lines["pods"].split()
    assert "deployments" in lines and "apps/v1" in lines["deployments"]
    assert "namespaces" in lines and "false" in lines["namespaces"].split()  # cluster-scoped
    versions = cluster.kubectl("api-versions").stdout.split()
    assert {"v1", "apps/v1", "batch/v1", "rbac.authorization.k8s.io/v1"} <= set(versions)
    server = json.loads(cluster.kubectl("version", "-o", "json").stdout)["serverVersion"]
    assert server["major"] == "1" and server["minor"] == "37" and "+k3py" in server["gitVersion"]


def test_system_namespaces_exist(cluster: Cluster) -> None:
    names = cluster.kubectl("get", "namespaces", "-o", "name").stdout.split()
    assert {
        "namespace/default",
        "namespace/kube-system",
        "namespace/kube-public",
        "namespace/kube-node-lease",
    } <= set(names)


def test_create_namespace_and_delete_it_with_its_content(cluster: Cluster) -> None:
    cluster.kubectl("create", "namespace", "scratch-space")
    cluster.kubectl("create", "configmap", "inside", "--from-literal=a=b", "-n", "scratch-space")
    assert cluster.kubectl_json("get", "namespace", "scratch-space")["status"]["phase"] == "Active"
    cluster.kubectl("delete", "namespace", "scratch-space")
    assert cluster.kubectl("get", "namespace", "scratch-space", check=False).returncode != 0
    cluster.kubectl("create", "namespace", "scratch-space")  # its old content is gone
    # Only what every namespace gets (the root CA) may be there, not the old config map.
    left = cluster.kubectl("get", "configmaps", "-n", "scratch-space", "-o", "name").stdout.split()
    assert set(left) <= {"configmap/kube-root-ca.crt"}
    cluster.kubectl("delete", "namespace", "scratch-space")


def test_create_get_and_output_formats(cluster: Cluster, namespace: str) -> None:
    n = ("-n", namespace)
    cluster.kubectl(
        "create", "configmap", "settings", "--from-literal=mode=fast", "--from-literal=size=3", *n
    )
    cluster.kubectl("create", "secret", "generic", "creds", "--from-literal=password=s3cret", *n)
    cluster.kubectl("create", "serviceaccount", "robot", *n)

    cm = cluster.kubectl_json("get", "configmap", "settings", *n)
    assert cm["data"] == {"mode": "fast", "size": "3"}
    assert cm["metadata"]["uid"] and cm["metadata"]["resourceVersion"].isdigit()
    assert cm["metadata"]["creationTimestamp"].endswith("Z")
    as_yaml = yaml.safe_load(cluster.kubectl("get", "cm", "settings", "-o", "yaml", *n).stdout)
    assert as_yaml["data"]["mode"] == "fast"
    assert cluster.kubectl("get", "configmaps", "-o", "name", *n).stdout.split() == [
        "configmap/kube-root-ca.crt",
        "configmap/settings",
    ]
    assert cluster.kubectl("get", "cm", "settings", "-o", "jsonpath={.data.size}", *n).stdout == "3"
    columns = cluster.kubectl(
        "get", "cm", "-o", "custom-columns=NAME:.metadata.name,MODE:.data.mode", *n
    ).stdout
    assert "settings" in columns and "fast" in columns
    table = cluster.kubectl("get", "configmaps", *n).stdout.splitlines()
    assert table[0].split() == ["NAME", "DATA", "AGE"]
    assert any(line.split()[:2] == ["settings", "2"] for line in table[1:])
    secret = cluster.kubectl_json("get", "secret", "creds", *n)
    assert secret["type"] == "Opaque" and secret["data"]["password"] == "czNjcmV0"
    wide = cluster.kubectl("get", "sa", "robot", "-o", "wide", *n).stdout
    assert "robot" in wide


def test_label_annotate_patch_replace(cluster: Cluster, namespace: str) -> None:
    n = ("-n", namespace)
    cluster.kubectl("create", "configmap", "cfg", "--from-literal=a=1", *n)
    cluster.kubectl("label", "configmap", "cfg", "tier=web", *n)
    cluster.kubectl("annotate", "configmap", "cfg", "owner=ops", *n)
    assert cluster.kubectl("get", "cm", "-l", "tier=web", "-o", "name", *n).stdout.split() == [
        "configmap/cfg"
    ]
    assert cluster.kubectl("get", "cm", "-l", "tier!=web", "-o", "name", *n).stdout.split() == [
        "configmap/kube-root-ca.crt"
    ]

    cluster.kubectl("patch", "configmap", "cfg", "--type=merge", "-p", '{"data":{"b":"2"}}', *n)
    cluster.kubectl(
        "patch", "configmap", "cfg", "--type=json", "-p", '[{"op":"remove","path":"/data/a"}]', *n
    )
    cluster.kubectl("patch", "configmap", "cfg", "-p", '{"data":{"c":"3"}}', *n)  # strategic, the default
    cm = cluster.kubectl_json("get", "cm", "cfg", *n)
    assert cm["data"] == {"b": "2", "c": "3"}
    assert cm["metadata"]["labels"] == {"tier": "web"}
    assert cm["metadata"]["annotations"]["owner"] == "ops"

    cm["data"] = {"replaced": "yes"}
    cluster.kubectl("replace", "-f", "-", input=json.dumps(cm))
    assert cluster.kubectl_json("get", "cm", "cfg", *n)["data"] == {"replaced": "yes"}
    stale = cluster.kubectl("replace", "-f", "-", input=json.dumps(cm), check=False)  # old resourceVersion
    assert stale.returncode != 0 and "the object has been modified" in stale.stderr


def test_watch_sees_an_update(cluster: Cluster, namespace: str) -> None:
    n = ("-n", namespace)
    cluster.kubectl("create", "configmap", "watched", "--from-literal=v=1", *n)
    command = cluster.kubectl_command("get", "cm", "watched", "-w", "-o", 'jsonpath={.data.v}{"\\n"}', *n)
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as watcher:
        try:
            assert watcher.stdout is not None
            assert watcher.stdout.readline().strip() == "1"
            cluster.kubectl("patch", "cm", "watched", "--type=merge", "-p", '{"data":{"v":"2"}}', *n)
            assert watcher.stdout.readline().strip() == "2"
        finally:
            watcher.terminate()


def test_finalizer_holds_deletion_until_removed(cluster: Cluster, namespace: str) -> None:
    n = ("-n", namespace)
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "held", "namespace": namespace, "finalizers": ["example.com/hold"]},
    }
    cluster.kubectl("create", "-f", "-", input=json.dumps(manifest))
    cluster.kubectl("delete", "cm", "held", "--wait=false", *n)
    held = cluster.kubectl_json("get", "cm", "held", *n)
    assert held["metadata"]["deletionTimestamp"]
    cluster.kubectl(
        "patch", "cm", "held", "--type=json", "-p", '[{"op":"remove","path":"/metadata/finalizers"}]', *n
    )
    gone = cluster.kubectl("get", "cm", "held", *n, check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr


def test_wait_for_jsonpath(cluster: Cluster, namespace: str) -> None:
    n = ("-n", namespace)
    cluster.kubectl("create", "configmap", "flag", "--from-literal=ready=no", *n)
    command = cluster.kubectl_command(
        "wait", "cm/flag", "--for=jsonpath={.data.ready}=yes", "--timeout=30s", *n
    )
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as waiter:
        time.sleep(1.0)
        assert waiter.poll() is None
        cluster.kubectl("patch", "cm", "flag", "--type=merge", "-p", '{"data":{"ready":"yes"}}', *n)
        out, err = waiter.communicate(timeout=30)
        assert waiter.returncode == 0, err
        assert "condition met" in out


def test_anonymous_requests_get_only_what_rbac_grants_them(cluster: Cluster) -> None:
    status, _, body = cluster.request("GET", "/api/v1/namespaces", authenticated=False)
    assert status == 403
    assert json.loads(body)["message"] == (
        'namespaces is forbidden: User "system:anonymous" cannot list resource "namespaces" '
        'in API group "" at the cluster scope'
    )
    assert cluster.request("GET", "/healthz", authenticated=False)[0] == 200
    assert cluster.request("GET", "/version", authenticated=False)[0] == 200
