"""Fixtures for end-to-end tests: a live ``k3py server`` per test module, namespaces per test.

Starting a server takes about a second; tests in a module share it and each works in its
own namespace, so they do not see each other's objects.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator

import pytest

from tests.e2e.cluster import Cluster, start, stop


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/e2e/" in str(item.path):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    started = start(tmp_path_factory.mktemp("k3py"))
    try:
        yield started
    finally:
        stop(started)


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    # A suffix of its own: a deleted namespace lingers while its content is removed, as upstream.
    name = "t-" + request.node.name.lower().replace("_", "-")[:40].strip("-") + "-" + secrets.token_hex(3)
    manifest = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    cluster.kubectl("create", "-f", "-", input=json.dumps(manifest))
    # As upstream's e2e framework does: wait for what every namespace gets (the default service
    # account, the root CA ConfigMap), so that tests start from a settled namespace.
    deadline = time.monotonic() + 30
    while (
        cluster.kubectl(
            "get", "serviceaccount/default", "configmap/kube-root-ca.crt", "-n", name, check=False
        ).returncode
        != 0
    ):
        assert time.monotonic() < deadline, f"namespace {name} did not get its defaults"
        time.sleep(0.05)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
