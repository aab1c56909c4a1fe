"""The endpoints of the ``default/kubernetes`` Service: where pods reach the API server.

kube-apiserver's endpoint reconciler writes them, not a controller (the Service has no
selector): each API server adds its advertise address and secure port to the ``kubernetes``
Endpoints and EndpointSlice. k3py does the same, through its own object store as kube-apiserver
does, at start and again every ``RECONCILE`` seconds so that a deleted object comes back. With
several servers each adds itself; removing servers that are gone (upstream's lease reconciler)
is not done.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from k3py.api.resources import Resource
from k3py.apiserver import errors
from k3py.apiserver.generic import ObjectStore, WriteOptions
from k3py.dns.endpoints import Obj, Port, endpoints_with, slice_with

log = logging.getLogger(__name__)

NAMESPACE = "default"
NAME = "kubernetes"
RECONCILE = 10.0
"""Seconds between checks, kube-apiserver's ``--endpoint-reconciler`` interval."""
FIELD_MANAGER = "k3py-endpoint-reconciler"


async def ensure_kubernetes_endpoints(objects: ObjectStore, ip: str, https_port: int) -> None:
    """Make the ``kubernetes`` Endpoints and EndpointSlice list ``ip:https_port``."""
    ports = [Port("https", https_port, "TCP")]
    endpoints = _resource(objects, "", "v1", "endpoints")
    slices = _resource(objects, "discovery.k8s.io", "v1", "endpointslices")
    await _ensure(objects, endpoints, lambda old: endpoints_with(old, NAMESPACE, NAME, ip, ports))
    await _ensure(objects, slices, lambda old: slice_with(old, NAMESPACE, NAME, NAME, ip, ports))


async def keep_kubernetes_endpoints(objects: ObjectStore, ip: str, https_port: int) -> None:
    """:func:`ensure_kubernetes_endpoints` now and every ``RECONCILE`` seconds, until cancelled."""
    while True:
        try:
            await ensure_kubernetes_endpoints(objects, ip, https_port)
        except errors.ApiError as exc:
            log.warning("Cannot write the kubernetes Service's endpoints: %s", exc)
        await asyncio.sleep(RECONCILE)


def _resource(objects: ObjectStore, group: str, version: str, plural: str) -> Resource:
    found = objects.registry.lookup(group, version, plural)
    if found is None:
        raise RuntimeError(f"{group or 'core'}/{version} {plural} is not served")
    return found


async def _ensure(objects: ObjectStore, res: Resource, change: Callable[[Obj | None], Obj | None]) -> None:
    options = WriteOptions(field_manager=FIELD_MANAGER)
    current = await objects.find(res, NAMESPACE, NAME)
    if current is None:
        wanted = change(None)
        assert wanted is not None
        try:
            await objects.create(res, NAMESPACE, wanted, options)
            log.info("Created %s %s/%s", res.kind, NAMESPACE, NAME)
            return
        except errors.ApiError as exc:
            if exc.code != 409:
                raise

    def update(stored: Obj) -> Obj:
        return change(stored) or stored

    await objects.guaranteed_update(res, NAMESPACE, NAME, update, options)
