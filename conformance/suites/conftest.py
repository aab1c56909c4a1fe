"""Fixtures of the native conformance suite: kubectl 1.37 and the official client against any cluster.

The suite checks Kubernetes behaviour as upstream documents it, so it passes on any conformant
cluster; it never relies on how k3py does things. The cluster is the kubeconfig in
``K3PY_CONFORMANCE_KUBECONFIG`` (``invoke conformance --suite native`` sets it).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.suites.kube import Kube, eventually

KUBECONFIG_ENV = "K3PY_CONFORMANCE_KUBECONFIG"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        area = Path(str(item.path)).parent.name
        item.add_marker(pytest.mark.e2e)
        item.user_properties.append(("area", area))


@pytest.fixture(scope="session")
def kube() -> Kube:
    path = os.environ.get(KUBECONFIG_ENV)
    if not path:
        pytest.fail(f"set {KUBECONFIG_ENV} to the kubeconfig of the cluster under test")
    return Kube(Path(path))


@pytest.fixture
def namespace(kube: Kube) -> Iterator[str]:
    """A fresh namespace, settled as upstream's e2e framework waits for it (default account, root CA)."""
    name = f"native-{uuid.uuid4().hex[:10]}"
    kube.run("create", "namespace", name)
    eventually(
        lambda: (
            kube.run(
                "get", "serviceaccount/default", "configmap/kube-root-ca.crt", "-n", name, check=False
            ).returncode
            == 0
        ),
        what=f"namespace {name} settled",
    )
    yield name
    kube.run("delete", "namespace", name, "--wait=false", check=False)
