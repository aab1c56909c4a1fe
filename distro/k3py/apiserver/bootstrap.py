"""State every cluster has from its first start: the system namespaces and the
``kubernetes`` Service on the first address of the service range."""

from __future__ import annotations

import logging

from k3py.api.resources import Registry
from k3py.apiserver import errors
from k3py.apiserver.generic import ObjectStore, WriteOptions

log = logging.getLogger(__name__)

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


async def bootstrap(store: ObjectStore, https_port: int) -> None:
    await _namespaces(store, store.registry)
    await _kubernetes_service(store, store.registry, https_port)


async def _namespaces(store: ObjectStore, registry: Registry) -> None:
    namespaces = registry.lookup("", "v1", "namespaces")
    assert namespaces is not None
    for name in SYSTEM_NAMESPACES:
        try:
            await store.create(namespaces, "", {"metadata": {"name": name}}, WriteOptions())
            log.info("Created namespace %s", name)
        except errors.ApiError as exc:
            if exc.code != 409:
                raise


async def _kubernetes_service(store: ObjectStore, registry: Registry, https_port: int) -> None:
    services = registry.lookup("", "v1", "services")
    assert services is not None and store.services is not None
    service = {
        "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {
            "type": "ClusterIP",
            "clusterIP": store.services.kubernetes_ip,
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": https_port}],
            "sessionAffinity": "None",
        },
    }
    try:
        await store.create(services, "default", service, WriteOptions())
        log.info("Created service default/kubernetes at %s", store.services.kubernetes_ip)
    except errors.ApiError as exc:
        if exc.code != 409:
            raise
