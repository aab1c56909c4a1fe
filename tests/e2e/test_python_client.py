"""The official Python client (``kubernetes``) against a live k3py server: list, create, patch,
delete, and a watch that resumes from a resourceVersion and re-lists after 410 Gone."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from tests.e2e.cluster import Cluster, start, stop


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A server that compacts its history every second down to 20 revisions, however recent, so
    that old resourceVersions really expire."""
    base: Path = tmp_path_factory.mktemp("k3py-compacting")
    compacting = ("--datastore-compact-interval", "1", "--datastore-compact-retain", "20")
    started = start(base, *compacting, "--datastore-compact-min-age", "0")
    try:
        yield started
    finally:
        stop(started)


@pytest.fixture
def core(cluster: Cluster) -> Iterator[client.CoreV1Api]:
    api_client = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    try:
        yield client.CoreV1Api(api_client)
    finally:
        api_client.close()


def test_list_create_patch_delete(core: client.CoreV1Api, namespace: str) -> None:
    body = client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="py", labels={"from": "python"}), data={"k": "v"}
    )
    created = core.create_namespaced_config_map(namespace, body)
    assert created.metadata.uid and created.data == {"k": "v"}

    listed = core.list_namespaced_config_map(namespace, label_selector="from=python")
    assert [cm.metadata.name for cm in listed.items] == ["py"]

    patched = core.patch_namespaced_config_map("py", namespace, {"data": {"k2": "v2"}})
    assert patched.data == {"k": "v", "k2": "v2"}
    assert int(patched.metadata.resource_version) > int(created.metadata.resource_version)

    with pytest.raises(ApiException) as conflict:
        core.create_namespaced_config_map(namespace, body)
    assert conflict.value.status == 409

    core.delete_namespaced_config_map("py", namespace)
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_config_map("py", namespace)
    assert missing.value.status == 404


def test_watch_resumes_from_a_resource_version(core: client.CoreV1Api, namespace: str) -> None:
    listed = core.list_namespaced_config_map(namespace)
    start = listed.metadata.resource_version
    for i in range(3):
        core.create_namespaced_config_map(
            namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name=f"w{i}"))
        )
    seen = []
    w = watch.Watch()
    for event in w.stream(
        core.list_namespaced_config_map, namespace, resource_version=start, timeout_seconds=5
    ):
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) == 3:
            w.stop()
    assert seen == [("ADDED", "w0"), ("ADDED", "w1"), ("ADDED", "w2")]


def test_watch_from_a_compacted_revision_gets_410(core: client.CoreV1Api, namespace: str) -> None:
    for i in range(30):  # history to compact away
        core.create_namespaced_config_map(
            namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name=f"c{i}"))
        )
    old = core.read_namespaced_config_map("c0", namespace).metadata.resource_version
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the compactor runs every second
        try:
            core.list_namespaced_config_map(namespace, resource_version=old, resource_version_match="Exact")
        except ApiException as exc:
            if exc.status == 410:
                break
        time.sleep(0.2)
    w = watch.Watch()
    with pytest.raises(ApiException) as gone:
        for _ in w.stream(
            core.list_namespaced_config_map, namespace, resource_version=old, timeout_seconds=5
        ):
            pass
    assert gone.value.status == 410

    # What a client does next: list again and watch from the list's resourceVersion.
    fresh = core.list_namespaced_config_map(namespace).metadata.resource_version
    core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="after"))
    )
    names = [
        e["object"].metadata.name
        for e in watch.Watch().stream(
            core.list_namespaced_config_map, namespace, resource_version=fresh, timeout_seconds=2
        )
    ]
    assert names == ["after"]
