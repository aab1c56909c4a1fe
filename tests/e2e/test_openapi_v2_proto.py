"""/openapi/v2 in gnostic protobuf: checked with gnostic itself, and what kubectl does with it.

kubectl fetches the protobuf document when the OpenAPI v3 document lacks a group-version (here:
applying a kind the server does not serve); it must then report the kind as unknown and apply
the rest of the manifest, as against kube-apiserver.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from k3py.util import proc
from tests.e2e.cluster import Cluster

CHECKER = Path(__file__).parent / "gnosticcheck"
PROTOBUF = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"  # what client-go sends
SERVED_AS = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"

UNSERVED_KIND = """
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  mode: blue
---
apiVersion: admissionregistration.k8s.io/v1alpha1
kind: MutatingAdmissionPolicy
metadata:
  name: add-label
spec:
  matchConstraints:
    resourceRules:
    - apiGroups: ["apps"]
      apiVersions: ["v1"]
      operations: ["CREATE"]
      resources: ["deployments"]
"""

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: strict
spec:
  replicas: 1
  selector:
    matchLabels: {app: strict}
  template:
    metadata:
      labels: {app: strict}
    spec:
      containers:
      - name: web
        image: nginx:1.25
"""


def fetch(cluster: Cluster, accept: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    return cluster.request("GET", "/openapi/v2", headers={"Accept": accept, **headers})


def go_env() -> dict[str, str]:
    """The module cache build/protos.py uses, so the modules it fetched are reused."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "k3py" / "go"
    return {
        **os.environ,
        "GOPATH": str(cache),
        "GOMODCACHE": str(cache / "pkg" / "mod"),
        "GOFLAGS": "-mod=mod",
        "GOTOOLCHAIN": "local",
    }


def build_checker(workdir: Path) -> Path:
    go = proc.which("go", extra_dirs=[Path("/usr/local/go/bin")])
    if go is None:
        pytest.skip("go is not installed (https://go.dev/dl): it builds the gnostic checker")
    source = workdir / "src"
    shutil.copytree(CHECKER, source)  # built outside the tree: -mod=mod may touch go.mod
    binary = workdir / "gnosticcheck"
    proc.run([go, "build", "-o", binary, "."], cwd=source, env=go_env(), capture=True)
    return binary


def test_negotiation_and_caching_headers(cluster: Cluster) -> None:
    status, json_headers, body = fetch(cluster, "application/json")
    assert status == 200 and json_headers["Content-Type"] == "application/json"
    assert json.loads(body)["swagger"] == "2.0"
    status, headers, data = fetch(cluster, PROTOBUF)
    assert status == 200 and headers["Content-Type"] == SERVED_AS
    assert data[:5] == b"\n\x032.0"  # field 1, swagger
    assert headers["ETag"] == json_headers["ETag"] and headers["Vary"] == "Accept"
    status, _, empty = fetch(cluster, PROTOBUF, **{"If-None-Match": headers["ETag"]})
    assert (status, empty) == (304, b"")
    assert fetch(cluster, SERVED_AS)[2] == data
    assert fetch(cluster, "application/yaml")[0] == 406


@pytest.mark.slow
def test_served_protobuf_is_what_gnostic_makes_of_the_json(cluster: Cluster, tmp_path: Path) -> None:
    checker = build_checker(tmp_path)
    _, _, source = fetch(cluster, "application/json")
    _, _, data = fetch(cluster, PROTOBUF)
    (tmp_path / "document.json").write_bytes(source)
    (tmp_path / "document.pb").write_bytes(data)
    files = [tmp_path / name for name in ("document.json", "document.pb", "decoded.json")]
    report = json.loads(proc.run([checker, *files], capture=True).stdout)
    assert report["canonical"], "re-marshalling the decoded message changes the bytes"
    assert report["identical"], f"not what kube-apiserver serves for this JSON:\n{report['first_difference']}"
    assert report["gnostic_errors"] == ""  # gnostic reads the whole document, as kube-apiserver's
    decoded = json.loads((tmp_path / "decoded.json").read_text())
    assert decoded == json.loads(source)


def test_kubectl_reports_an_unserved_kind_and_applies_the_rest(cluster: Cluster, namespace: str) -> None:
    done = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=UNSERVED_KIND, check=False)
    assert done.returncode != 0
    kind = '"MutatingAdmissionPolicy" in version "admissionregistration.k8s.io/v1alpha1"'
    assert f"no matches for kind {kind}" in done.stderr, done.stderr
    assert "configmap/settings created" in done.stdout
    assert cluster.kubectl_json("get", "configmap", "settings", "-n", namespace)["data"] == {"mode": "blue"}


def test_kubectl_apply_validate_strict_still_works(cluster: Cluster, namespace: str) -> None:
    done = cluster.kubectl("apply", "--validate=strict", "-n", namespace, "-f", "-", input=DEPLOYMENT)
    assert "deployment.apps/strict created" in done.stdout
    typo = DEPLOYMENT.replace("replicas: 1", "replicas: 1\n  replica: 2")
    strict = ("apply", "--validate=strict", "-n", namespace, "-f", "-")
    rejected = cluster.kubectl(*strict, input=typo, check=False)
    assert rejected.returncode != 0 and 'unknown field "spec.replica"' in rejected.stderr, rejected.stderr
