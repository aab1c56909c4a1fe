"""A real operator framework (kopf) and the official Python client against k3py: the operator
watches a custom resource and writes its status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from tests.e2e.cluster import Cluster

GROUP, VERSION, PLURAL = "operators.example.com", "v1", "widgets"
OPERATOR = """
import kopf

@kopf.on.create("operators.example.com", "v1", "widgets")
def greet(spec, name, **_):
    return {"message": f"hello {spec['greeting']} from {name}"}

@kopf.on.update("operators.example.com", "v1", "widgets", field="spec.greeting")
def regreet(new, **_):
    return {"message": f"hello again {new}"}
"""


@pytest.fixture(scope="module")
def widgets(cluster: Cluster) -> Iterator[None]:
    definition = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": PLURAL, "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {"type": "object", "properties": {"greeting": {"type": "string"}}},
                                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                            },
                        }
                    },
                }
            ],
        },
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(definition))
    cluster.kubectl("wait", "--for=condition=Established", f"crd/{PLURAL}.{GROUP}", "--timeout=30s")
    yield
    cluster.kubectl("delete", "crd", f"{PLURAL}.{GROUP}", "--wait=false", check=False)


@pytest.fixture
def operator(
    cluster: Cluster, namespace: str, widgets: None, tmp_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    script = tmp_path / "operator.py"
    script.write_text(OPERATOR)
    log = (tmp_path / "kopf.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kopf",
            "run",
            "--standalone",
            "--namespace",
            namespace,
            "--verbose",
            str(script),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)},
    )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_kopf_writes_the_status_of_a_custom_resource(
    cluster: Cluster, namespace: str, operator: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    api = kubernetes.client.CustomObjectsApi(
        kubernetes.config.new_client_from_config(str(cluster.kubeconfig))
    )
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Widget",
        "metadata": {"name": "w1"},
        "spec": {"greeting": "pi"},
    }
    api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)

    def status() -> dict[str, Any]:
        obj = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "w1")
        assert isinstance(obj, dict)
        return dict(obj.get("status") or {})

    deadline = time.monotonic() + 60
    while status().get("greet") != {"message": "hello pi from w1"}:
        assert operator.poll() is None, (tmp_path / "kopf.log").read_text()
        assert time.monotonic() < deadline, (
            f"no status from the operator:\n{(tmp_path / 'kopf.log').read_text()}"
        )
        time.sleep(0.2)

    api.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "w1", {"spec": {"greeting": "k3py"}}
    )
    deadline = time.monotonic() + 60
    while status().get("regreet/spec.greeting") != {"message": "hello again k3py"}:
        assert time.monotonic() < deadline, f"no update handled:\n{(tmp_path / 'kopf.log').read_text()}"
        time.sleep(0.2)
