"""Node IPAM: every Node gets its own slice of the cluster CIDR as ``spec.podCIDR``.

kube-controller-manager's range allocator, as K3s runs it: the cluster CIDR (``10.42.0.0/16``
by default) is cut into blocks of ``mask`` bits (a /24 each); a Node without ``spec.podCIDR``
gets the next free block as ``spec.podCIDR`` and ``spec.podCIDRs`` (set once, never changed),
and the agent on that node builds its pod network on it. What is taken is never stored apart:
it is read from the Nodes themselves each time (so a restarted server picks up where it left
off), plus the blocks this allocator has written but not yet seen come back through its
cache. A deleted Node's block is free again as soon as the Node is gone.

Like upstream, the search resumes after the last block handed out instead of from the start,
so a block freed a moment ago is reused last. When every block is taken, the Node waits: the
allocator logs it and records a ``CIDRNotAvailable`` Warning Event on it (once, not on every
change of that Node), and tries again whenever a Node is deleted.

:class:`CidrSet` is the arithmetic; :class:`NodeIpam` is the controller that applies it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from k3py.api import objects as api_objects
from k3py.api.resources import Resource
from k3py.apiserver import errors
from k3py.apiserver.cache import RETRY_DELAY, ObjectCache
from k3py.apiserver.generic import Obj, ObjectStore, WriteOptions
from k3py.storage import StorageError

log = logging.getLogger(__name__)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MANAGER = "kube-controller-manager"
"""The field manager of the allocator's writes, as upstream records them."""
EVENT_SOURCE = "cidrAllocator"
CIDR_NOT_AVAILABLE = "CIDRNotAvailable"
EVENT_NAMESPACE = "default"
"""Where Events about cluster-scoped objects (Nodes) go, as upstream's recorder puts them."""
MAX_BLOCK_BITS = 16
"""At most 2**16 blocks per cluster CIDR (upstream's limit on ``--node-cidr-mask-size``)."""


class CidrError(ValueError):
    """A cluster CIDR and mask that cannot be cut into node blocks."""


class CidrSet:
    """The blocks of ``mask`` bits in ``cluster_cidr``, each free or taken."""

    def __init__(self, cluster_cidr: IPNetwork, mask: int) -> None:
        if not cluster_cidr.prefixlen <= mask <= cluster_cidr.max_prefixlen:
            raise CidrError(
                f"node CIDR mask /{mask} must lie between the cluster CIDR's /{cluster_cidr.prefixlen} "
                f"and /{cluster_cidr.max_prefixlen}"
            )
        if mask - cluster_cidr.prefixlen > MAX_BLOCK_BITS:
            raise CidrError(
                f"cluster CIDR {cluster_cidr} with a node mask of /{mask} has more than "
                f"2^{MAX_BLOCK_BITS} blocks; use a smaller cluster CIDR or a larger node block"
            )
        self.cluster_cidr = cluster_cidr
        self.mask = mask
        self.size = 1 << (mask - cluster_cidr.prefixlen)
        self._block = 1 << (cluster_cidr.max_prefixlen - mask)
        self._taken: set[int] = set()
        self._next = 0

    def __len__(self) -> int:
        """How many blocks are taken."""
        return len(self._taken)

    def block(self, index: int) -> IPNetwork:
        base = int(self.cluster_cidr.network_address) + index * self._block
        return ipaddress.ip_network((base, self.mask))

    def index(self, cidr: IPNetwork) -> int | None:
        """The block ``cidr`` is, or None when it is not exactly one of this set's blocks."""
        if cidr.version != self.cluster_cidr.version or cidr.prefixlen != self.mask:
            return None
        if not cidr.subnet_of(self.cluster_cidr):  # type: ignore[arg-type]  # same version checked
            return None
        return (int(cidr.network_address) - int(self.cluster_cidr.network_address)) // self._block

    def occupy(self, cidr: IPNetwork) -> bool:
        """Mark ``cidr`` taken; False when it is not one of this set's blocks (left alone)."""
        index = self.index(cidr)
        if index is None:
            return False
        self._taken.add(index)
        return True

    def release(self, cidr: IPNetwork) -> None:
        index = self.index(cidr)
        if index is not None:
            self._taken.discard(index)

    def is_taken(self, cidr: IPNetwork) -> bool:
        index = self.index(cidr)
        return index is not None and index in self._taken

    def allocate(self) -> IPNetwork | None:
        """Take the first free block at or after the one after the last allocation (wrapping
        around); None when all are taken."""
        for step in range(self.size):
            index = (self._next + step) % self.size
            if index not in self._taken:
                self._taken.add(index)
                self._next = (index + 1) % self.size
                return self.block(index)
        return None

    def reset(self, taken: Iterable[IPNetwork]) -> None:
        """Forget every block, then take ``taken`` (the search position is kept)."""
        self._taken.clear()
        for cidr in taken:
            self.occupy(cidr)


def pod_cidr(node: Obj) -> IPNetwork | None:
    """The node's ``spec.podCIDR`` (else the first of ``spec.podCIDRs``), None when unset or
    unreadable."""
    spec = node.get("spec") or {}
    values = [spec.get("podCIDR"), *(spec.get("podCIDRs") or [])]
    for value in values:
        if isinstance(value, str) and value:
            try:
                return ipaddress.ip_network(value)
            except ValueError:
                return None
    return None


@dataclass(frozen=True, slots=True)
class _Assigned:
    uid: str
    cidr: IPNetwork


class NodeIpam:
    """Assigns ``spec.podCIDR``/``spec.podCIDRs`` to Nodes (see the module docstring).

    ``NodeIpam(objects, cluster_cidr, mask=24).run()`` runs as a supervised task until
    cancelled. :meth:`sync` is one pass over a list of Nodes, for tests and for :meth:`run`.
    """

    def __init__(self, store: ObjectStore, cluster_cidr: IPNetwork, mask: int = 24) -> None:
        self.store = store
        self.cidrs = CidrSet(cluster_cidr, mask)
        nodes = store.registry.lookup("", "v1", "nodes")
        assert nodes is not None, "core/v1 nodes is required"
        self.nodes: Resource = nodes
        self.events = store.registry.lookup("", "v1", "events")
        self._assigned: dict[str, _Assigned] = {}
        """Blocks written to nodes (by name) that the node list given to :meth:`sync` may
        not show yet."""
        self._starved: set[str] = set()
        """Uids of nodes already told that no block is left."""
        self._foreign: set[tuple[str, str]] = set()
        """(node, podCIDR) pairs already reported as outside the cluster CIDR or shared."""

    async def run(self) -> None:
        """Until cancelled (a supervised task)."""
        cache = ObjectCache(self.store, self.nodes)
        wake = asyncio.Event()
        cache.subscribe(lambda _obj: wake.set())
        log.info("node IPAM: /%d blocks of %s for pod CIDRs", self.cidrs.mask, self.cidrs.cluster_cidr)
        try:
            await cache.start()
            while True:
                await wake.wait()
                wake.clear()
                if not await self.sync(cache.objects()):
                    await asyncio.sleep(RETRY_DELAY)
                    wake.set()
        finally:
            await cache.stop()

    async def sync(self, nodes: list[Obj]) -> bool:
        """Give every node of ``nodes`` (all the cluster has) that lacks one a block; False
        when a write failed and the pass should be tried again."""
        self._take_existing(nodes)
        ok = True
        waiting = [node for node in nodes if pod_cidr(node) is None and not _deleting(node)]
        waiting.sort(key=lambda n: (str(n["metadata"].get("creationTimestamp") or ""), _name(n)))
        for node in waiting:
            if _name(node) in self._assigned:
                continue  # written; the list has not caught up yet
            try:
                await self._assign(node)
            except (errors.ApiError, StorageError) as exc:
                if isinstance(exc, errors.ApiError) and exc.code == 404:
                    continue
                log.warning("node IPAM: node %s: %s; retrying", _name(node), exc)
                ok = False
        return ok

    def _take_existing(self, nodes: list[Obj]) -> None:
        """Recount what is taken: the nodes' blocks, then ours not yet seen in ``nodes``."""
        by_name = {_name(node): node for node in nodes}
        for name, assigned in list(self._assigned.items()):
            node = by_name.get(name)
            if node is None or _uid(node) != assigned.uid or pod_cidr(node) is not None:
                del self._assigned[name]
        self.cidrs.reset(())
        present = {_uid(node) for node in nodes}
        self._starved &= present
        for node in nodes:
            cidr = pod_cidr(node)
            if cidr is None:
                continue
            if self.cidrs.is_taken(cidr) or not self.cidrs.occupy(cidr):
                self._report_foreign(node, cidr)
        for assigned in self._assigned.values():
            self.cidrs.occupy(assigned.cidr)

    def _report_foreign(self, node: Obj, cidr: IPNetwork) -> None:
        key = (_name(node), str(cidr))
        if key in self._foreign:
            return
        self._foreign.add(key)
        if self.cidrs.index(cidr) is None:
            log.warning(
                "node IPAM: node %s has podCIDR %s, which is not a /%d block of the cluster CIDR %s; "
                "left as it is",
                key[0],
                cidr,
                self.cidrs.mask,
                self.cidrs.cluster_cidr,
            )
        else:
            log.warning("node IPAM: node %s has podCIDR %s, which another node has too", key[0], cidr)

    async def _assign(self, node: Obj) -> None:
        name, uid = _name(node), _uid(node)
        cidr = self.cidrs.allocate()
        if cidr is None:
            await self._starving(node)
            return
        self._starved.discard(uid)
        wrote = False

        def change(current: Obj) -> Obj:
            nonlocal wrote
            if _uid(current) != uid or pod_cidr(current) is not None or _deleting(current):
                return current  # replaced, already set, or on its way out
            wrote = True
            spec = current.setdefault("spec", {})
            spec["podCIDR"] = str(cidr)
            spec["podCIDRs"] = [str(cidr)]
            return current

        try:
            await self.store.guaranteed_update(
                self.nodes, "", name, change, WriteOptions(field_manager=MANAGER)
            )
        except BaseException:
            self.cidrs.release(cidr)
            raise
        if wrote:
            self._assigned[name] = _Assigned(uid, cidr)
            log.info("node IPAM: node %s gets podCIDR %s", name, cidr)
        else:
            self.cidrs.release(cidr)

    async def _starving(self, node: Obj) -> None:
        name, uid = _name(node), _uid(node)
        if uid in self._starved:
            return
        self._starved.add(uid)
        log.error(
            "node IPAM: no free /%d left in the cluster CIDR %s (%d blocks, all taken): node %s gets "
            "no podCIDR until a node is deleted",
            self.cidrs.mask,
            self.cidrs.cluster_cidr,
            self.cidrs.size,
            name,
        )
        await self._record_event(node, f"Node {name} status is now: {CIDR_NOT_AVAILABLE}")

    async def _record_event(self, node: Obj, message: str) -> None:
        if self.events is None:
            return
        name, stamp = _name(node), api_objects.now()
        event = {
            "metadata": {"name": f"{name}.{time.time_ns():x}"},  # as upstream's recorder names them
            "involvedObject": {"kind": "Node", "apiVersion": "v1", "name": name, "uid": _uid(node)},
            "reason": CIDR_NOT_AVAILABLE,
            "message": message,
            "type": "Warning",
            "source": {"component": EVENT_SOURCE},
            "reportingComponent": EVENT_SOURCE,
            "reportingInstance": "",
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        try:
            await self.store.create(self.events, EVENT_NAMESPACE, event, WriteOptions(field_manager=MANAGER))
        except (errors.ApiError, StorageError) as exc:  # an Event is a courtesy: the log has it
            log.warning("node IPAM: cannot record an Event for node %s: %s", name, exc)


def _name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def _uid(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("uid") or "")


def _deleting(obj: Obj) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))
