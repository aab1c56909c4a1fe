"""State every cluster has from its first start: the system namespaces, the ``kubernetes``
Service on the first address of the service range, and the default ServiceCIDR ``kubernetes``
naming that range (Ready, as kube-apiserver's default ServiceCIDR controller reports it)."""

from __future__ import annotations

import logging
from typing import Any

from k3py.api import objects
from k3py.api.resources import Registry
from k3py.apiserver import errors
from k3py.apiserver.generic import ObjectStore, WriteOptions

log = logging.getLogger(__name__)

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


async def bootstrap(store: ObjectStore, https_port: int) -> None:
    await _namespaces(store, store.registry)
    await _kubernetes_service(store, store.registry, https_port)
    await _default_service_cidr(store, store.registry)


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


async def _default_service_cidr(store: ObjectStore, registry: Registry) -> None:
    cidrs = registry.lookup("networking.k8s.io", "v1", "servicecidrs")
    if cidrs is None or store.services is None:
        return  # a build without the resource
    body = {"metadata": {"name": "kubernetes"}, "spec": {"cidrs": [str(store.services.cidr)]}}
    try:
        await store.create(cidrs, "", body, WriteOptions())
        log.info("Created ServiceCIDR kubernetes for %s", store.services.cidr)
    except errors.ApiError as exc:
        if exc.code != 409:
            raise

    def ready(current: dict[str, Any]) -> dict[str, Any]:
        conditions = (current.get("status") or {}).get("conditions") or []
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
            return current
        condition = {
            "type": "Ready",
            "status": "True",
            "lastTransitionTime": objects.now(),
            "reason": "",
            "message": "Kubernetes default Service CIDR is ready",
        }
        current["status"] = {"conditions": [condition]}
        return current

    await store.guaranteed_update(cidrs, "", "kubernetes", ready, WriteOptions(), "status")
