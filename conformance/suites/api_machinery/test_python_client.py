"""api-machinery through the official Python client: typed reads, writes and a watch."""

from __future__ import annotations

from kubernetes import client, config, watch

from conformance.suites.kube import Kube


def test_the_official_client_reads_writes_and_watches(kube: Kube, namespace: str) -> None:
    api_client = config.new_client_from_config(config_file=str(kube.kubeconfig))
    try:
        core = client.CoreV1Api(api_client)
        assert namespace in {ns.metadata.name for ns in core.list_namespace().items}
        body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="typed"), data={"k": "v"})
        created = core.create_namespaced_config_map(namespace, body)
        events = watch.Watch().stream(
            core.list_namespaced_config_map,
            namespace,
            field_selector="metadata.name=typed",
            resource_version=created.metadata.resource_version,
            timeout_seconds=20,
        )
        core.patch_namespaced_config_map("typed", namespace, {"data": {"k": "w"}})
        first = next(iter(events))
        assert first["type"] == "MODIFIED" and first["object"].data == {"k": "w"}
    finally:
        api_client.close()
