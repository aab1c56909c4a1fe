"""kubectl apply (client-side three-way merge), diff, edit and explain against a live server."""

from __future__ import annotations

import json

import yaml

from tests.e2e.cluster import Cluster

MANIFEST = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
        ports: [{containerPort: 80}]
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 80}]
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
data:
  mode: blue
"""


def test_apply_then_reapply_a_changed_copy_keeps_fields_set_by_others(
    cluster: Cluster, namespace: str
) -> None:
    n = ("-n", namespace)
    out = cluster.kubectl("apply", "-f", "-", *n, input=MANIFEST).stdout
    assert (
        "deployment.apps/web created" in out
        and "service/web created" in out
        and "configmap/web-config created" in out
    )

    # Someone else changes fields the manifest does not mention.
    cluster.kubectl("annotate", "deployment", "web", "team=ops", *n)
    cluster.kubectl("patch", "deployment", "web", "-p", '{"spec":{"minReadySeconds":5}}', *n)

    changed = MANIFEST.replace("replicas: 2", "replicas: 3").replace("mode: blue", "mode: green")
    out = cluster.kubectl("apply", "-f", "-", *n, input=changed).stdout
    assert "deployment.apps/web configured" in out and "service/web unchanged" in out

    deploy = cluster.kubectl_json("get", "deployment", "web", *n)
    assert deploy["spec"]["replicas"] == 3
    assert deploy["spec"]["minReadySeconds"] == 5  # kept: not in the last applied configuration
    assert deploy["metadata"]["annotations"]["team"] == "ops"
    assert deploy["metadata"]["generation"] == 3
    assert cluster.kubectl_json("get", "cm", "web-config", *n)["data"] == {"mode": "green"}

    # A field removed from the manifest is removed from the object.
    trimmed = changed.replace("  labels: {app: web}\nspec:\n  replicas", "spec:\n  replicas", 1)
    cluster.kubectl("apply", "-f", "-", *n, input=trimmed)
    assert "labels" not in cluster.kubectl_json("get", "deployment", "web", *n)["metadata"]

    service = cluster.kubectl_json("get", "service", "web", *n)
    assert service["spec"]["clusterIP"].startswith("10.43.")
    assert service["spec"]["ports"][0]["protocol"] == "TCP"


def test_diff_shows_pending_changes_only(cluster: Cluster, namespace: str) -> None:
    n = ("-n", namespace)
    cluster.kubectl("apply", "-f", "-", *n, input=MANIFEST)
    same = cluster.kubectl("diff", "-f", "-", *n, input=MANIFEST, check=False)
    assert same.returncode == 0 and same.stdout == ""
    changed = cluster.kubectl(
        "diff", "-f", "-", *n, input=MANIFEST.replace("mode: blue", "mode: red"), check=False
    )
    assert changed.returncode == 1
    assert "-  mode: blue" in changed.stdout and "+  mode: red" in changed.stdout
    assert cluster.kubectl_json("get", "cm", "web-config", *n)["data"] == {"mode": "blue"}  # dry run only


def test_edit_with_a_non_interactive_editor(cluster: Cluster, namespace: str) -> None:
    n = ("-n", namespace)
    cluster.kubectl("apply", "-f", "-", *n, input=MANIFEST)
    editor = "sed -i -e 's/mode: blue/mode: edited/'"
    out = cluster.kubectl("edit", "configmap", "web-config", *n, env={"KUBE_EDITOR": editor}).stdout
    assert "edited" in out
    assert cluster.kubectl_json("get", "cm", "web-config", *n)["data"] == {"mode": "edited"}


def test_scale_and_explain(cluster: Cluster, namespace: str) -> None:
    n = ("-n", namespace)
    cluster.kubectl("apply", "-f", "-", *n, input=MANIFEST)
    cluster.kubectl("scale", "deployment", "web", "--replicas=5", *n)
    assert cluster.kubectl_json("get", "deployment", "web", *n)["spec"]["replicas"] == 5
    scale = json.loads(
        cluster.kubectl("get", "--raw", f"/apis/apps/v1/namespaces/{namespace}/deployments/web/scale").stdout
    )
    assert (
        scale["kind"] == "Scale"
        and scale["spec"]["replicas"] == 5
        and scale["status"]["selector"] == "app=web"
    )

    explained = cluster.kubectl("explain", "deployment.spec.strategy").stdout
    assert "DeploymentStrategy" in explained and "rollingUpdate" in explained
    recursive = cluster.kubectl("explain", "pods.spec.containers", "--recursive").stdout
    assert "livenessProbe" in recursive


def test_multi_document_yaml_output(cluster: Cluster, namespace: str) -> None:
    n = ("-n", namespace)
    cluster.kubectl("apply", "-f", "-", *n, input=MANIFEST)
    listed = yaml.safe_load(cluster.kubectl("get", "deployment,service,configmap", "-o", "yaml", *n).stdout)
    kinds = sorted(item["kind"] for item in listed["items"])
    assert kinds.count("Deployment") == 1 and "Service" in kinds and "ConfigMap" in kinds


def test_server_side_apply_conflict_and_force(cluster: Cluster, namespace: str) -> None:
    n = ("-n", namespace)
    out = cluster.kubectl("apply", "--server-side", "-f", "-", *n, input=MANIFEST).stdout
    assert "deployment.apps/web serverside-applied" in out
    cluster.kubectl("scale", "deployment", "web", "--replicas=5", *n)  # another manager takes replicas

    changed = MANIFEST.replace("replicas: 2", "replicas: 3")
    refused = cluster.kubectl("apply", "--server-side", "-f", "-", *n, input=changed, check=False)
    assert refused.returncode != 0
    assert "Apply failed with 1 conflict" in refused.stderr and ".spec.replicas" in refused.stderr
    assert cluster.kubectl_json("get", "deployment", "web", *n)["spec"]["replicas"] == 5

    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", *n, input=changed)
    deploy = cluster.kubectl_json("get", "deployment", "web", "--show-managed-fields", *n)
    assert deploy["spec"]["replicas"] == 3
    applier = [m for m in deploy["metadata"]["managedFields"] if m["operation"] == "Apply"]
    assert applier and applier[0]["manager"] == "kubectl"
    assert "f:replicas" in applier[0]["fieldsV1"]["f:spec"]

    # Dropping a field from the applied configuration removes it from the object.
    trimmed = changed.replace("        ports: [{containerPort: 80}]\n", "", 1)
    cluster.kubectl("apply", "--server-side", "-f", "-", *n, input=trimmed)
    container = cluster.kubectl_json("get", "deployment", "web", *n)["spec"]["template"]["spec"][
        "containers"
    ][0]
    assert "ports" not in container
