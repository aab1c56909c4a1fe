"""``ClusterDns``: the cluster's DNS server as the k3py server runs it (K3s ships CoreDNS).

It is what K3s's ``coredns`` manifest and Corefile amount to, inside the server process:

* the ``kube-system/kube-dns`` Service on ``--cluster-dns`` (ports ``dns`` 53/UDP and ``dns-tcp``
  53/TCP, labels as K3s's manifest; no ``metrics`` port, since no metrics are served) with no
  selector, and its ``v1 Endpoints`` and EndpointSlice naming this server's node IP. They are
  written under the ``publisher`` client (K3s applies its manifests as the supervisor) and
  written again every ``REPUBLISH`` seconds, so a deleted object comes back;
* informers of Services and EndpointSlices under the ``reader`` client, whose identity is the
  ``system:serviceaccount:kube-system:coredns`` of K3s's CoreDNS, bound to ``system:coredns``;
* the UDP and TCP servers (``transport``) answering from the zone (``zone``) and upstream
  (``forward``).

Where it listens: the node IP, port 53, so the Service's target port is 53 as in K3s and a
pod's ``nameserver 10.43.0.10`` reaches it through the service proxy's DNAT to the slice's
address. Binding the node IP (not every address) leaves loopback resolvers such as
systemd-resolved's 127.0.0.53 alone. A host whose own resolver holds port 53 on every address
makes the bind fail: the server logs that and goes on without cluster DNS (``--disable
coredns`` silences it). ``DnsSettings.port`` sets another port, which the Service's target port
and the slice's ports then carry.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from k3py.client.informer import Informer
from k3py.client.rest import ApiStatusError, Obj, RestClient
from k3py.dns.endpoints import Port, endpoints_with, slice_with
from k3py.dns.forward import DNS_PORT, RESOLV_CONF, Forwarder
from k3py.dns.resolver import Resolver
from k3py.dns.transport import DnsServer
from k3py.dns.zone import DEFAULT_DOMAIN, DEFAULT_TTL, ClusterZone

log = logging.getLogger(__name__)

IDENTITY = "system:serviceaccount:kube-system:coredns"
IDENTITY_GROUPS = ("system:serviceaccounts", "system:serviceaccounts:kube-system")
NAMESPACE = "kube-system"
SERVICE = "kube-dns"
SERVICE_LABELS = {
    "k8s-app": "kube-dns",
    "kubernetes.io/cluster-service": "true",
    "kubernetes.io/name": "CoreDNS",
}
SERVICES_PATH = "/api/v1/services"
SLICES_PATH = "/apis/discovery.k8s.io/v1/endpointslices"
REPUBLISH = 60.0
"""Seconds between checks that the kube-dns objects are still as written."""
RETRY_MAX = 30.0

_Change = Callable[[Obj | None], Obj | None]


class DnsError(Exception):
    """The cluster DNS server cannot start (its address is taken or not on this host)."""


@dataclass(frozen=True, kw_only=True)
class DnsSettings:
    node_ip: str
    """This server's node address: where it listens (unless ``listen``) and what endpoints say."""
    service_ip: str
    """The kube-dns Service's cluster IP (``--cluster-dns``)."""
    port: int = DNS_PORT
    listen: str | None = None
    domain: str = DEFAULT_DOMAIN
    ttl: int = DEFAULT_TTL
    node_name: str | None = None
    resolv_conf: Path = RESOLV_CONF

    @property
    def address(self) -> str:
        return self.listen or self.node_ip


class ClusterDns:
    """``await dns.start()`` (binds, or raises :class:`DnsError`), then ``await dns.run()`` until
    cancelled; ``run`` closes the sockets when it ends."""

    def __init__(self, reader: RestClient, publisher: RestClient, settings: DnsSettings) -> None:
        self.reader = reader
        self.publisher = publisher
        self.settings = settings
        self.zone = ClusterZone(settings.domain, settings.ttl)
        own = {settings.address, settings.service_ip}
        self.forwarder = Forwarder(own=own, own_port=settings.port, resolv_conf=settings.resolv_conf)
        self.resolver = Resolver(self.zone, self.forwarder)
        self.server = DnsServer(self.resolver, settings.address, settings.port)
        self.services = Informer(reader, SERVICES_PATH)
        self.slices = Informer(reader, SLICES_PATH)
        self._reload_pending = False

    async def start(self) -> None:
        """Listen; until the informers have synced, cluster names get SERVFAIL (clients retry)."""
        try:
            await self.server.start()
        except OSError as exc:
            raise DnsError(
                f"cluster DNS cannot listen on {self.settings.address} port {self.settings.port}: {exc}; "
                "free the port or run with --disable coredns"
            ) from None

    async def run(self) -> None:
        try:
            for informer in (self.services, self.slices):
                informer.add_handler(self._changed)
            async with asyncio.TaskGroup() as group:
                group.create_task(self.services.run(), name="dns-services")
                group.create_task(self.slices.run(), name="dns-endpointslices")
                group.create_task(self._serve_when_synced(), name="dns-sync")
                group.create_task(self._publish_forever(), name="dns-publish")
        finally:
            await self.server.close()

    async def _serve_when_synced(self) -> None:
        await self.services.synced()
        await self.slices.synced()
        self._reload()
        self.resolver.ready = True
        log.info("Cluster DNS serving %s from %d services", self.settings.domain, len(self.services.items()))

    def _changed(self, _old: Obj | None, _new: Obj | None) -> None:
        """Rebuild the zone once per burst of changes, after the handlers of this turn."""
        if not self._reload_pending:
            self._reload_pending = True
            asyncio.get_running_loop().call_soon(self._reload)

    def _reload(self) -> None:
        self._reload_pending = False
        self.zone.load(self.services.items(), self.slices.items())

    async def _publish_forever(self) -> None:
        delay = 0.5
        while True:
            try:
                await publish(self.publisher, self.settings)
            except ApiStatusError as exc:
                log.warning("Cannot write the kube-dns Service or its endpoints: %s (retrying)", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
                continue
            delay = 0.5
            await asyncio.sleep(REPUBLISH)


def service_ports(settings: DnsSettings) -> list[Obj]:
    return [
        {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": settings.port},
        {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": settings.port},
    ]


def kube_dns_service(settings: DnsSettings) -> Obj:
    """K3s's ``kube-dns`` Service, without its selector: its endpoints are this server."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": SERVICE, "namespace": NAMESPACE, "labels": dict(SERVICE_LABELS)},
        "spec": {
            "type": "ClusterIP",
            "clusterIP": settings.service_ip,
            "clusterIPs": [settings.service_ip],
            "ports": service_ports(settings),
        },
    }


def endpoint_ports(settings: DnsSettings) -> list[Port]:
    return [Port("dns", settings.port, "UDP"), Port("dns-tcp", settings.port, "TCP")]


async def publish(api: RestClient, settings: DnsSettings) -> None:
    """Ensure the kube-dns Service exists and its endpoints list this server."""
    services = f"/api/v1/namespaces/{NAMESPACE}/services"
    try:
        await api.create(services, kube_dns_service(settings))
        log.info("Created service %s/%s at %s", NAMESPACE, SERVICE, settings.service_ip)
    except ApiStatusError as exc:
        if exc.code != 409:
            raise
    ip, node, ports = settings.node_ip, settings.node_name, endpoint_ports(settings)
    await _ensure(
        api,
        f"/api/v1/namespaces/{NAMESPACE}/endpoints",
        SERVICE,
        lambda old: endpoints_with(old, NAMESPACE, SERVICE, ip, ports, node),
    )
    await _ensure(
        api,
        f"/apis/discovery.k8s.io/v1/namespaces/{NAMESPACE}/endpointslices",
        SERVICE,
        lambda old: slice_with(old, NAMESPACE, SERVICE, SERVICE, ip, ports, node),
    )


async def _ensure(api: RestClient, collection: str, name: str, change: _Change) -> None:
    """Create or update ``collection/name`` to what ``change`` makes of it; retry on conflicts."""
    for _ in range(5):
        try:
            current: Obj | None = await api.get(f"{collection}/{name}")
        except ApiStatusError as exc:
            if exc.code != 404:
                raise
            current = None
        wanted = change(current)
        if wanted is None:
            return
        try:
            if current is None:
                await api.create(collection, wanted)
            else:
                await api.update(f"{collection}/{name}", wanted)
            return
        except ApiStatusError as exc:
            if exc.code != 409:
                raise
    raise ApiStatusError(409, "Conflict", f"{collection}/{name}: too many concurrent writes")
