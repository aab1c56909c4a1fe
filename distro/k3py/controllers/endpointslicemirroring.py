"""The EndpointSlice mirroring controller: custom v1 Endpoints copied into EndpointSlices.

A Service without a selector gets its endpoints from whoever writes its Endpoints object by hand
(or by an operator). Consumers that read only EndpointSlices (kube-proxy, CoreDNS) would miss
those, so this controller mirrors every such Endpoints object into slices, as upstream's
``endpointslicemirroring-controller`` does. An Endpoints object is mirrored when its Service
exists and has no selector, and the Endpoints carries neither the label
``endpointslice.kubernetes.io/skip-mirror: "true"`` nor a leader-election record annotation.

Data flows one way: :func:`desired_slices` turns the Endpoints' subsets into groups of endpoints
keyed by address type and port set (``addresses`` become ready endpoints, ``notReadyAddresses``
not ready ones, invalid IPs are skipped, at most ``max_per_subset`` addresses of a subset are
mirrored); :func:`plan_slices` compares the groups with the slices this controller already
keeps (``endpointslice.kubernetes.io/managed-by: endpointslicemirroring-controller.k8s.io``)
and says which to create, rewrite in place, or delete; the controller writes that plan. Slices
are named ``<endpoints>-<random>``, labelled like the Endpoints plus ``kubernetes.io/service-name``
and the managed-by label, carry the Endpoints' annotations (but its trigger time and kubectl's
last applied configuration), and are owned by the Endpoints object. Slices of other managers
are never read nor written.

Like the EndpointSlice controller, this one remembers the slice versions it wrote and waits for
its slice cache to show them before syncing the same Endpoints again, so that a cache a moment
behind does not make it create duplicates.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, field
from typing import Any

from k3py.client.events import EventRecorder
from k3py.client.informer import SharedInformers
from k3py.client.rest import ApiStatusError, RestClient
from k3py.controllers.base import Controller, Key
from k3py.controllers.endpoints import TRIGGER_TIME_ANNOTATION
from k3py.controllers.endpointslice import (
    MANAGED_BY_LABEL,
    SERVICE_NAME_LABEL,
    PortKey,
    port_key,
    slice_ports,
)
from k3py.controllers.expectations import Expectations
from k3py.controllers.objects import deleting, labels_of, meta_of, owner_reference, spec_of

log = logging.getLogger(__name__)

Obj = dict[str, Any]
GroupKey = tuple[str, PortKey]
"""(address type, port set): the endpoints that may share a slice."""

MANAGED_BY = "endpointslicemirroring-controller.k8s.io"
SKIP_MIRROR_LABEL = "endpointslice.kubernetes.io/skip-mirror"
LEADER_ANNOTATION = "control-plane.alpha.kubernetes.io/leader"
LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"
UNMIRRORED_ANNOTATIONS = frozenset({TRIGGER_TIME_ANNOTATION, LAST_APPLIED_ANNOTATION})
MAX_ENDPOINTS_PER_SUBSET = 1000
"""Addresses of one subset mirrored at most (``--mirroring-max-endpoints-per-subset``)."""
MAX_ENDPOINTS_PER_SLICE = 100
"""Endpoints one slice holds at most, as the EndpointSlice controller's slices (upstream's mirror
puts a port set's endpoints, up to the per-subset maximum, into a single slice)."""
SLICES = "/apis/discovery.k8s.io/v1/endpointslices"
STALE_RETRY = 0.1
"""Seconds before an Endpoints whose slice cache is behind this controller's writes is synced again."""
SERVER_FIELDS = frozenset({"deprecatedTopology", "hints", "zone"})
"""Endpoint fields this controller never writes, ignored when comparing."""


# -- what to mirror --------------------------------------------------------------------------------


def should_mirror(endpoints: Obj | None) -> bool:
    """Whether the Endpoints object itself allows mirroring (its Service is checked apart)."""
    if endpoints is None:
        return False
    if labels_of(endpoints).get(SKIP_MIRROR_LABEL) == "true":
        return False
    return LEADER_ANNOTATION not in (meta_of(endpoints).get("annotations") or {})


def service_mirrorable(service: Obj | None) -> bool:
    """A Service whose Endpoints are mirrored: it exists and selects no pods itself."""
    return service is not None and not spec_of(service).get("selector")


def address_endpoint(address: Obj, ready: bool) -> tuple[str, Obj] | None:
    """The address type and slice endpoint of one Endpoints address; None for an invalid IP."""
    try:
        ip = ipaddress.ip_address(str(address.get("ip") or ""))
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # as Go's net.IP.To4 reads it
    family = "IPv4" if isinstance(ip, ipaddress.IPv4Address) else "IPv6"
    endpoint: Obj = {"addresses": [str(ip)], "conditions": {"ready": ready}}
    if address.get("hostname"):
        endpoint["hostname"] = address["hostname"]
    if address.get("nodeName"):
        endpoint["nodeName"] = address["nodeName"]
    if address.get("targetRef"):
        endpoint["targetRef"] = dict(address["targetRef"])
    return family, endpoint


def mirror_ports(ports: list[Obj]) -> list[Obj]:
    """Endpoints ports as slice ports (named ``""`` when unnamed, TCP when no protocol is given)."""
    mirrored: list[Obj] = []
    for port in ports:
        entry: Obj = {"name": port.get("name") or "", "port": int(port.get("port") or 0)}
        entry["protocol"] = port.get("protocol") or "TCP"
        if port.get("appProtocol"):
            entry["appProtocol"] = port["appProtocol"]
        mirrored.append(entry)
    return slice_ports(mirrored)


def _endpoint_identity(endpoint: Obj) -> tuple[str, ...]:
    """Upstream's endpoint hash: its addresses, hostname, and target's namespace and name."""
    target = endpoint.get("targetRef") or {}
    return (
        *endpoint["addresses"],
        str(endpoint.get("hostname") or ""),
        str(target.get("namespace") or ""),
        str(target.get("name") or ""),
    )


@dataclass
class SliceGroup:
    """Endpoints of one address type serving one port set."""

    address_type: str
    ports: list[Obj]
    endpoints: dict[tuple[str, ...], Obj] = field(default_factory=dict)


@dataclass
class Desired:
    """What an Endpoints object mirrors to, and what of it could not be mirrored."""

    groups: dict[GroupKey, SliceGroup]
    invalid: int = 0
    """Addresses skipped because their IP does not parse."""
    over_limit: int = 0
    """Addresses skipped because their subset held more than the per-subset maximum."""


def desired_slices(endpoints: Obj, max_per_subset: int = MAX_ENDPOINTS_PER_SUBSET) -> Desired:
    """The endpoints each (address type, port set) group of slices should hold."""
    desired = Desired(groups={})
    for subset in endpoints.get("subsets") or []:
        ports = mirror_ports(subset.get("ports") or [])
        key = port_key(ports)
        added = 0
        listed = [(a, True) for a in subset.get("addresses") or []]
        listed += [(a, False) for a in subset.get("notReadyAddresses") or []]
        for address, ready in listed:
            if added >= max_per_subset:
                desired.over_limit += 1
                continue
            found = address_endpoint(address, ready)
            if found is None:
                desired.invalid += 1
                continue
            family, endpoint = found
            group = desired.groups.setdefault((family, key), SliceGroup(family, ports))
            group.endpoints[_endpoint_identity(endpoint)] = endpoint
            added += 1
    return desired


def slice_labels(endpoints: Obj) -> dict[str, str]:
    labels = labels_of(endpoints)
    labels[SERVICE_NAME_LABEL] = str(meta_of(endpoints).get("name") or "")
    labels[MANAGED_BY_LABEL] = MANAGED_BY
    return labels


def slice_annotations(endpoints: Obj) -> dict[str, str]:
    annotations = meta_of(endpoints).get("annotations") or {}
    return {k: v for k, v in annotations.items() if k not in UNMIRRORED_ANNOTATIONS}


# -- planning the writes ---------------------------------------------------------------------------


@dataclass
class SliceWrite:
    """One slice to write: ``current`` is the slice rewritten in place (None: create a new one)."""

    address_type: str
    ports: list[Obj]
    endpoints: list[Obj]
    current: Obj | None = None


@dataclass
class SlicePlan:
    create: list[SliceWrite] = field(default_factory=list)
    update: list[SliceWrite] = field(default_factory=list)
    delete: list[Obj] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.create or self.update or self.delete)


def same_endpoint(current: Obj, wanted: Obj) -> bool:
    """Whether a listed endpoint says what is wanted (fields this controller never writes aside)."""
    return {k: v for k, v in current.items() if k not in SERVER_FIELDS} == wanted


def slice_key(slice_: Obj) -> GroupKey:
    return str(slice_.get("addressType") or ""), port_key(slice_.get("ports") or [])


def plan_slices(
    desired: Desired,
    existing: list[Obj],
    labels: dict[str, str],
    annotations: dict[str, str],
    max_per_slice: int = MAX_ENDPOINTS_PER_SLICE,
) -> SlicePlan:
    """The creates, in-place rewrites and deletes that make ``existing`` mirror ``desired``.

    Endpoints stay in the slice they are in; a slice is rewritten when its endpoints, labels or
    annotations differ; new endpoints fill room in slices being rewritten, then in unchanged
    ones, then go to new slices; a slice left with nothing is deleted, and its name is reused
    for a slice that would otherwise be created (upstream's recycling).
    """
    plan = SlicePlan()
    by_key: dict[GroupKey, list[Obj]] = {}
    for current in sorted(existing, key=lambda s: str(meta_of(s).get("name") or "")):
        by_key.setdefault(slice_key(current), []).append(current)
    for key, slices in by_key.items():
        if key not in desired.groups:
            plan.delete.extend(slices)
    for key, group in desired.groups.items():
        _plan_group(plan, group, by_key.get(key, []), labels, annotations, max_per_slice)
    _recycle(plan)
    return plan


def _plan_group(
    plan: SlicePlan,
    group: SliceGroup,
    existing: list[Obj],
    labels: dict[str, str],
    annotations: dict[str, str],
    limit: int,
) -> None:
    placed: set[tuple[str, ...]] = set()
    changed: list[SliceWrite] = []
    unchanged: list[SliceWrite] = []
    for current in existing:
        meta = meta_of(current)
        dirty = (meta.get("labels") or {}) != labels or (meta.get("annotations") or {}) != annotations
        kept: list[Obj] = []
        for endpoint in current.get("endpoints") or []:
            identity = _endpoint_identity(endpoint) if endpoint.get("addresses") else ()
            wanted = group.endpoints.get(identity)
            if wanted is None or identity in placed or len(kept) >= limit:
                dirty = True
                continue
            placed.add(identity)
            dirty = dirty or not same_endpoint(endpoint, wanted)
            kept.append(wanted)
        write = SliceWrite(group.address_type, group.ports, kept, current)
        if not kept:
            plan.delete.append(current)
        else:
            (changed if dirty else unchanged).append(write)
    left = [e for identity, e in group.endpoints.items() if identity not in placed]
    # New endpoints go first into slices being rewritten anyway, then into unchanged ones.
    for write in changed + unchanged:
        room = limit - len(write.endpoints)
        if left and room > 0:
            write.endpoints.extend(left[:room])
            left = left[room:]
            if not any(write is w for w in changed):
                changed.append(write)
    plan.update.extend(changed)
    while left:
        plan.create.append(SliceWrite(group.address_type, group.ports, left[:limit]))
        left = left[limit:]


def _recycle(plan: SlicePlan) -> None:
    """Turn a create plus a delete of the same address type into one in-place rewrite."""
    for write in list(plan.create):
        for old in plan.delete:
            if old.get("addressType") == write.address_type:
                plan.delete.remove(old)
                plan.create.remove(write)
                plan.update.append(SliceWrite(write.address_type, write.ports, write.endpoints, old))
                break


# -- the controller --------------------------------------------------------------------------------


class EndpointSliceMirroringController(Controller):
    """Keeps EndpointSlices mirroring the Endpoints of Services without a selector."""

    name = "endpointslicemirroring"
    identity = "endpointslicemirroring-controller"
    workers = 2

    def __init__(
        self,
        api: RestClient,
        informers: SharedInformers | None = None,
        *,
        max_endpoints_per_subset: int = MAX_ENDPOINTS_PER_SUBSET,
        max_endpoints_per_slice: int = MAX_ENDPOINTS_PER_SLICE,
    ) -> None:
        super().__init__(api, informers)
        self.max_per_subset = max_endpoints_per_subset
        self.max_per_slice = max_endpoints_per_slice
        self.services = self.informer("/api/v1/services")
        self.endpoints = self.informer("/api/v1/endpoints")
        self.slices = self.informer(SLICES, label_selector=f"{MANAGED_BY_LABEL}={MANAGED_BY}")
        self.events = EventRecorder(
            api, "endpoint-slice-mirroring-controller", kind="Endpoints", api_version="v1"
        )
        self.expected = Expectations()
        self.on(self.services, lambda old, new: self.enqueue(new or old))
        self.on(self.endpoints, self._endpoints_changed)
        self.on(self.slices, self._slice_changed)

    def _endpoints_changed(self, old: Obj | None, new: Obj | None) -> None:
        if old is not None and new is not None and not (should_mirror(old) or should_mirror(new)):
            return  # neither before nor after a candidate: nothing of it is mirrored
        self.enqueue(new or old)

    def _slice_changed(self, old: Obj | None, new: Obj | None) -> None:
        obj = new or old
        if obj is None:
            return
        meta = meta_of(obj)
        owner = labels_of(obj).get(SERVICE_NAME_LABEL)
        if not owner:
            return
        key = (str(meta.get("namespace") or ""), owner)
        self.expected.observed(key, old, new)
        self.queue.add(key)

    def _mirrored(self, key: Key) -> list[Obj]:
        return [
            s
            for s in self.slices.items()
            if meta_of(s).get("namespace") == key[0]
            and labels_of(s).get(SERVICE_NAME_LABEL) == key[1]
            and labels_of(s).get(MANAGED_BY_LABEL) == MANAGED_BY
        ]

    async def sync(self, key: Key) -> None:
        namespace, name = key
        if self.expected.behind(key, lambda name: self.slices.get(key[0], name)):
            log.debug("the EndpointSlice cache of %s/%s has not caught up yet", namespace, name)
            self.queue.add_after(key, STALE_RETRY)
            return
        existing = self._mirrored(key)
        endpoints = self.endpoints.get(namespace, name)
        if (
            endpoints is None
            or not should_mirror(endpoints)
            or not service_mirrorable(self.services.get(namespace, name))
        ):
            for old in existing:
                await self._delete(key, old)
            return
        desired = desired_slices(endpoints, self.max_per_subset)
        self._report_skipped(endpoints, desired)
        plan = plan_slices(
            desired, existing, slice_labels(endpoints), slice_annotations(endpoints), self.max_per_slice
        )
        if not deleting(endpoints):  # no new slices for an Endpoints going away
            for write in plan.create:
                if not await self._write(key, endpoints, write):
                    return  # its namespace is terminating
        for write in plan.update:
            await self._write(key, endpoints, write)
        for old in plan.delete:
            await self._delete(key, old)

    def _report_skipped(self, endpoints: Obj, desired: Desired) -> None:
        if desired.invalid:
            self.events.post(
                endpoints,
                "Warning",
                "InvalidIPAddress",
                f"Skipped {desired.invalid} invalid IP addresses when mirroring to EndpointSlices",
            )
        if desired.over_limit:
            self.events.post(
                endpoints,
                "Warning",
                "TooManyAddressesToMirror",
                f"A max of {self.max_per_subset} addresses can be mirrored to EndpointSlices per "
                f"Endpoints subset. {desired.over_limit} addresses were skipped",
            )

    async def _write(self, key: Key, endpoints: Obj, write: SliceWrite) -> bool:
        """Create or rewrite one slice; False when the namespace is terminating."""
        namespace, name = key
        metadata: Obj = {
            "namespace": namespace,
            "labels": slice_labels(endpoints),
            "ownerReferences": [owner_reference(endpoints, "v1", "Endpoints")],
        }
        annotations = slice_annotations(endpoints)
        if annotations:
            metadata["annotations"] = annotations
        body: Obj = {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": metadata,
            "addressType": write.address_type,
            "endpoints": write.endpoints,
            "ports": write.ports,
        }
        base = f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices"
        if write.current is None:
            metadata["generateName"] = f"{name}-"
            try:
                written = await self.api.create(base, body)
            except ApiStatusError as exc:
                if exc.code == 403 and "terminat" in str(exc).lower():
                    return False
                raise
        else:
            current = meta_of(write.current)
            metadata["name"] = current["name"]
            metadata["resourceVersion"] = current.get("resourceVersion")
            written = await self.api.update(f"{base}/{current['name']}", body)
        self.expected.wrote(key, written)
        return True

    async def _delete(self, key: Key, old: Obj) -> None:
        name = str(meta_of(old).get("name"))
        try:
            await self.api.delete(f"/apis/discovery.k8s.io/v1/namespaces/{key[0]}/endpointslices/{name}")
        except ApiStatusError as exc:
            if exc.code != 404:
                raise
            return
        self.expected.deleted(key, name)
