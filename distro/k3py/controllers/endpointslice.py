"""The EndpointSlice controller: each selecting Service's endpoints as ``discovery.k8s.io/v1`` slices.

For every Service with a selector (and not of type ExternalName) the controller keeps slices
named ``<service>-<random>`` (``generateName``), labelled ``kubernetes.io/service-name`` and
``endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io``, owned by the
Service. Each slice holds endpoints of one address type (the Service's IP families) that serve
the same ports, at most ``max_endpoints_per_slice`` (100) of them. An endpoint is one pod: its
IP, its conditions (``ready``, ``serving``, ``terminating``: terminating pods stay listed, not
ready, as upstream), ``nodeName``, ``zone`` (its node's ``topology.kubernetes.io/zone``),
``hostname`` and a ``targetRef``. A Service with no endpoints keeps one empty placeholder slice.

Reconciling keeps churn low as upstream's reconciler does: endpoints stay in the slice they
are in, changed slices are rewritten, emptied slices are deleted, and new endpoints fill the
room of slices being written anyway before new slices are created. Because slices are created
with generated names, a cache that has not yet seen the controller's own writes would make it
create duplicates: the controller remembers the versions it wrote and retries a Service until
its slice cache has caught up.
"""

from __future__ import annotations

import logging
from typing import Any

from k3py.client.informer import SharedInformers
from k3py.client.rest import ApiStatusError, RestClient
from k3py.controllers.base import Controller, Key
from k3py.controllers.endpoints import (
    HEADLESS_LABEL,
    TRIGGER_TIME_ANNOTATION,
    TriggerTimes,
    endpoint_ports,
    headless,
    hostname_of,
    managed,
    pod_ip,
    selected_pods,
    service_families,
    services_selecting,
    target_ref,
)
from k3py.controllers.expectations import Expectations
from k3py.controllers.objects import deleting, pod_finished, pod_ready

log = logging.getLogger(__name__)

Obj = dict[str, Any]
PortKey = tuple[tuple[str, int, str, str], ...]

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
MANAGED_BY = "endpointslice-controller.k8s.io"
ZONE_LABEL = "topology.kubernetes.io/zone"
MAX_ENDPOINTS_PER_SLICE = 100
SLICES = "/apis/discovery.k8s.io/v1/endpointslices"
STALE_RETRY = 0.1
"""Seconds before a Service whose slice cache is behind this controller's writes is synced again."""


def port_key(ports: list[Obj]) -> PortKey:
    return tuple(
        sorted(
            (
                str(p.get("name") or ""),
                int(p.get("port") or 0),
                str(p.get("protocol")),
                str(p.get("appProtocol") or ""),
            )
            for p in ports
        )
    )


def slice_ports(ports: list[Obj]) -> list[Obj]:
    """Endpoint ports as slices list them: every port named, ``""`` when the Service's is not."""
    return [
        dict(p, name=p.get("name") or "")
        for p in sorted(ports, key=lambda p: (str(p.get("name") or ""), p["port"]))
    ]


def endpoint_for(pod: Obj, service: Obj, ip: str, zone: str) -> Obj:
    publish = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
    serving = publish or pod_ready(pod)
    terminating = deleting(pod)
    endpoint: Obj = {
        "addresses": [ip],
        "conditions": {
            "ready": publish or (serving and not terminating),
            "serving": serving,
            "terminating": terminating,
        },
    }
    hostname = hostname_of(pod, service)
    if hostname:
        endpoint["hostname"] = hostname
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        endpoint["nodeName"] = node
    if zone:
        endpoint["zone"] = zone
    endpoint["targetRef"] = target_ref(pod)
    return endpoint


def endpoint_key(endpoint: Obj) -> tuple[str, ...]:
    return tuple(str(a) for a in endpoint.get("addresses") or [])


def same_endpoint(current: Obj, wanted: Obj) -> bool:
    """Whether a listed endpoint says what is wanted (fields the server adds are ignored)."""
    if set(current) - set(wanted) - {"deprecatedTopology", "hints"}:
        return False
    for field, value in wanted.items():
        have = current.get(field)
        if field == "targetRef" and isinstance(have, dict):
            have = {k: v for k, v in have.items() if k != "resourceVersion"}
        if have != value:
            return False
    return True


def slice_labels(service: Obj) -> dict[str, str]:
    labels = {
        k: v
        for k, v in ((service.get("metadata") or {}).get("labels") or {}).items()
        if k not in (SERVICE_NAME_LABEL, MANAGED_BY_LABEL)
    }
    if headless(service):
        labels[HEADLESS_LABEL] = ""
    else:
        labels.pop(HEADLESS_LABEL, None)
    labels[SERVICE_NAME_LABEL] = str(service["metadata"]["name"])
    labels[MANAGED_BY_LABEL] = MANAGED_BY
    return labels


def owner_reference(service: Obj) -> Obj:
    meta = service["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "name": meta["name"],
        "uid": meta.get("uid"),
        "controller": True,
        "blockOwnerDeletion": True,
    }


class EndpointSliceController(Controller):
    """Keeps each selecting Service's EndpointSlices in step with its pods."""

    name = "endpointslice"
    identity = "endpointslice-controller"
    workers = 2

    def __init__(
        self,
        api: RestClient,
        informers: SharedInformers | None = None,
        *,
        max_endpoints_per_slice: int = MAX_ENDPOINTS_PER_SLICE,
    ) -> None:
        super().__init__(api, informers)
        self.max_endpoints = max_endpoints_per_slice
        self.services = self.informer("/api/v1/services")
        self.pods = self.informer("/api/v1/pods")
        self.nodes = self.informer("/api/v1/nodes")
        self.slices = self.informer(SLICES, label_selector=f"{MANAGED_BY_LABEL}={MANAGED_BY}")
        self.triggers = TriggerTimes()
        self.expected = Expectations()
        self.on(self.services, lambda old, new: self.enqueue(new or old))
        self.on(self.pods, self._pod_changed)
        self.on(self.slices, self._slice_changed)

    def _pod_changed(self, old: Obj | None, new: Obj | None) -> None:
        keys: set[Key] = set()
        for pod in (old, new):
            if pod is not None:
                keys.update(services_selecting(self.services.items(), pod))
        for key in keys:
            self.queue.add(key)

    def _slice_changed(self, old: Obj | None, new: Obj | None) -> None:
        obj = new or old
        if obj is None:
            return
        meta = obj.get("metadata") or {}
        service = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if not service:
            return
        key = (str(meta.get("namespace") or ""), str(service))
        self.expected.observed(key, old, new)
        self.queue.add(key)

    def _service_slices(self, namespace: str, service: str) -> list[Obj]:
        found = [
            s
            for s in self.slices.items()
            if s["metadata"].get("namespace") == namespace
            and (s["metadata"].get("labels") or {}).get(SERVICE_NAME_LABEL) == service
        ]
        return sorted(found, key=lambda s: str(s["metadata"]["name"]))

    async def sync(self, key: Key) -> None:
        namespace, name = key
        if self.expected.behind(key, lambda name: self.slices.get(key[0], name)):
            # Expected soon (the watch is a moment behind the writes): look again shortly.
            log.debug("the EndpointSlice cache of %s/%s has not caught up yet", namespace, name)
            self.queue.add_after(key, STALE_RETRY)
            return
        service = self.services.get(namespace, name)
        existing = self._service_slices(namespace, name)
        if service is None:
            self.triggers.forget(key)
            # Upstream leaves this to the garbage collector (the slices are owned by the Service).
            for old in existing:
                await self._delete(key, old)
            return
        if not managed(service):
            return
        pods = selected_pods(service, self.pods.in_namespace(namespace))
        trigger = self.triggers.compute(key, service, pods)
        families = service_families(service)
        plan = _Plan()
        for family in families:
            desired = self._desired(service, pods, family)
            of_family = [s for s in existing if s.get("addressType") == family]
            _reconcile(plan, family, desired, of_family, slice_labels(service), self.max_endpoints)
        plan.delete.extend(s for s in existing if s.get("addressType") not in families)
        if not plan.create and not plan.update and len(plan.delete) == len(existing):
            _keep_placeholder(plan, families[0], existing)
        for current, endpoints in plan.update:
            await self._write(
                key, service, trigger, current, current.get("addressType") or families[0], endpoints
            )
        for family, ports, endpoints in plan.create:
            await self._write(key, service, trigger, None, family, endpoints, ports)
        for old in plan.delete:
            await self._delete(key, old)

    def _desired(
        self, service: Obj, pods: list[Obj], family: str
    ) -> dict[PortKey, tuple[list[Obj], dict[tuple[str, ...], Obj]]]:
        groups: dict[PortKey, tuple[list[Obj], dict[tuple[str, ...], Obj]]] = {}
        for pod in pods:
            ip = pod_ip(pod, family)
            if not ip or pod_finished(pod):
                continue
            ports = slice_ports(endpoint_ports(pod, service))
            if not ports and (service.get("spec") or {}).get("ports"):
                continue  # it serves none of the Service's ports
            endpoint = endpoint_for(pod, service, ip, self._zone(pod))
            _, endpoints = groups.setdefault(port_key(ports), (ports, {}))
            endpoints.setdefault(endpoint_key(endpoint), endpoint)
        return groups

    def _zone(self, pod: Obj) -> str:
        node = self.nodes.get("", str((pod.get("spec") or {}).get("nodeName") or ""))
        return str(((node or {}).get("metadata") or {}).get("labels", {}).get(ZONE_LABEL) or "")

    async def _write(
        self,
        key: Key,
        service: Obj,
        trigger: str,
        current: Obj | None,
        family: str,
        endpoints: list[Obj],
        ports: list[Obj] | None = None,
    ) -> None:
        namespace = key[0]
        meta = (current or {}).get("metadata") or {}
        annotations = dict(meta.get("annotations") or {})
        if trigger:
            annotations[TRIGGER_TIME_ANNOTATION] = trigger
        metadata: Obj = {
            "namespace": namespace,
            "labels": slice_labels(service),
            "ownerReferences": [owner_reference(service)],
        }
        if annotations:
            metadata["annotations"] = annotations
        body: Obj = {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": metadata,
            "addressType": family,
            "endpoints": endpoints,
            "ports": ports if current is None else (current.get("ports") or []),
        }
        base = f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices"
        if current is None:
            metadata["generateName"] = f"{key[1]}-"
            try:
                written = await self.api.create(base, body)
            except ApiStatusError as exc:
                if exc.code == 403 and "terminat" in str(exc).lower():
                    return  # its namespace is going away
                raise
        else:
            metadata["name"] = meta["name"]
            metadata["resourceVersion"] = meta.get("resourceVersion")
            written = await self.api.update(f"{base}/{meta['name']}", body)
        self.expected.wrote(key, written)

    async def _delete(self, key: Key, old: Obj) -> None:
        meta = old["metadata"]
        try:
            await self.api.delete(
                f"/apis/discovery.k8s.io/v1/namespaces/{key[0]}/endpointslices/{meta['name']}"
            )
        except ApiStatusError as exc:
            if exc.code != 404:
                raise
            return
        self.expected.deleted(key, str(meta["name"]))


class _Plan:
    def __init__(self) -> None:
        self.update: list[tuple[Obj, list[Obj]]] = []
        self.create: list[tuple[str, list[Obj], list[Obj]]] = []
        self.delete: list[Obj] = []


def _reconcile(
    plan: _Plan,
    family: str,
    desired: dict[PortKey, tuple[list[Obj], dict[tuple[str, ...], Obj]]],
    existing: list[Obj],
    labels: dict[str, str],
    limit: int,
) -> None:
    """Plan the writes that make ``existing`` slices (one address type) hold ``desired``."""
    placed: set[tuple[PortKey, tuple[str, ...]]] = set()
    updating: list[tuple[Obj, list[Obj]]] = []
    unchanged: list[tuple[Obj, list[Obj]]] = []
    for current in existing:
        pk = port_key(current.get("ports") or [])
        group = desired.get(pk)
        if group is None:
            plan.delete.append(current)
            continue
        kept: list[Obj] = []
        changed = ((current.get("metadata") or {}).get("labels") or {}) != labels
        for endpoint in current.get("endpoints") or []:
            ek = endpoint_key(endpoint)
            wanted = group[1].get(ek)
            if wanted is None or (pk, ek) in placed or len(kept) >= limit:
                changed = True
                continue
            placed.add((pk, ek))
            changed = changed or not same_endpoint(endpoint, wanted)
            kept.append(wanted)
        if not kept:
            plan.delete.append(current)
        elif changed:
            updating.append((current, kept))
        else:
            unchanged.append((current, kept))
    for pk, (ports, endpoints) in sorted(desired.items()):
        left = [e for ek, e in sorted(endpoints.items()) if (pk, ek) not in placed]
        # New endpoints go first into slices being written anyway, then into untouched ones.
        for current, kept in updating:
            if port_key(current.get("ports") or []) == pk and left:
                room = limit - len(kept)
                kept.extend(left[:room])
                left = left[room:]
        for entry in list(unchanged):
            current, kept = entry
            if port_key(current.get("ports") or []) == pk and left and limit - len(kept) > 0:
                room = limit - len(kept)
                kept.extend(left[:room])
                left = left[room:]
                unchanged.remove(entry)
                updating.append(entry)
        while left:
            plan.create.append((family, ports, left[:limit]))
            left = left[limit:]
    plan.update.extend(updating)


def _keep_placeholder(plan: _Plan, family: str, existing: list[Obj]) -> None:
    """No endpoints at all: keep (or create) one empty slice, as upstream does."""
    for current in existing:
        if current.get("addressType") == family and not current.get("endpoints") and not current.get("ports"):
            plan.delete = [s for s in plan.delete if s is not current]
            return
    plan.create.append((family, [], []))
