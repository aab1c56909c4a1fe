"""The API aggregation layer: requests for group-versions that APIServices send to a Service are
proxied there, as kube-aggregator does in front of kube-apiserver.

:class:`Aggregator` follows APIServices, Services and EndpointSlices through
:class:`~k3py.apiserver.cache.ObjectCache` and adds an aiohttp middleware that runs after
authentication and authorization (the user is authorized here by RBAC, from the request info,
as kube-apiserver's filter chain does before its aggregator; the backend authorizes again with
SubjectAccessReviews). For a *remote* APIService (one naming a Service):

- ``/apis/<group>/<version>[/...]`` is proxied: 503 ``service unavailable`` unless its
  ``Available`` condition is True; otherwise to a ready endpoint of the Service port
  (``aggregator_routing.pick_endpoint``), over HTTPS trusting ``caBundle`` (the system roots
  without one; nothing with ``insecureSkipTLSVerify``) for the name ``<service>.<namespace>.svc``,
  presenting the front-proxy client certificate, with the user in ``X-Remote-*`` headers and
  the client's credentials removed. The answer is streamed back as it comes (watches), with
  upgrades (exec-like) spliced through. A backend that cannot be reached answers 503 with the
  dial error and triggers a new availability check at once.
- ``/apis/<group>`` answers the APIGroup built from every APIService of the group.
- ``/apis`` (legacy and aggregated v2) lists the group-versions with the local ones, by
  priority (``discovery.group_list_with``, ``discovery.aggregated_with``), with the resources the
  availability check last read from each backend (:meth:`Aggregator.record_discovery`).

Everything else goes on to the local handlers. The availability of remote APIServices is kept
by ``k3py.apiserver.aggregator_available``.
"""

from __future__ import annotations

import base64
import binascii
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from k3py.api.apiregistration import (
    GROUP,
    PLURAL,
    VERSION,
    ServiceRef,
    group_version,
    is_available,
    service_ref,
)
from k3py.apiserver import discovery, errors
from k3py.apiserver.aggregator_routing import (
    Unroutable,
    authority,
    forwarded_headers,
    pick_endpoint,
    response_headers,
)
from k3py.apiserver.authn import REQUEST_USER
from k3py.apiserver.cache import ObjectCache
from k3py.apiserver.generic import ObjectStore
from k3py.apiserver.handlers import respond
from k3py.apiserver.kubelet_proxy.upgrade import NOT_ADDED, BackendError, Target, is_upgrade, splice
from k3py.pki.tls import load_pem_pair

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
CONNECT_TIMEOUT = 10.0
DISCOVERY_TIMEOUT = 5.0
"""Seconds a proxied ``/apis/<group>/<version>`` may take (upstream's aggregated discovery timeout)."""
UNAVAILABLE = "service unavailable"


class Aggregator:
    """The caches, the backend transport and the routing; :meth:`start` before serving,
    :meth:`close` at shutdown."""

    def __init__(self, store: ObjectStore, proxy_cert_pem: bytes, proxy_key_pem: bytes) -> None:
        apiservices = store.registry.lookup(GROUP, VERSION, PLURAL)
        services = store.registry.lookup("", "v1", "services")
        slices = store.registry.lookup("discovery.k8s.io", "v1", "endpointslices")
        assert apiservices and services and slices, "apiregistration, core and discovery are always served"
        self.store = store
        self.apiservices = ObjectCache(store, apiservices)
        self.services = ObjectCache(store, services)
        self.slices = ObjectCache(store, slices)
        self._cert_pem, self._key_pem = proxy_cert_pem, proxy_key_pem
        self._contexts: dict[tuple[bytes, bool], ssl.SSLContext] = {}
        self._session: aiohttp.ClientSession | None = None
        self._remote: dict[tuple[str, str], Obj] = {}
        self._discovered: dict[str, tuple[tuple[Obj, ...], bool]] = {}
        self._unreachable: list[Callable[[str], None]] = []
        self.apiservices.subscribe(lambda _: self._index())

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        for cache in (self.apiservices, self.services, self.slices):
            await cache.start()

    async def close(self) -> None:
        for cache in (self.apiservices, self.services, self.slices):
            await cache.stop()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0),
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=CONNECT_TIMEOUT, connect=CONNECT_TIMEOUT
                ),
                auto_decompress=False,
            )
        return self._session

    # -- what the caches say ------------------------------------------------------------------

    def _index(self) -> None:
        remote = {}
        for obj in self.apiservices.objects():
            if service_ref(obj) is not None:
                remote[group_version(obj)] = obj
        self._remote = remote
        names = {obj["metadata"]["name"] for obj in remote.values()}
        self._discovered = {k: v for k, v in self._discovered.items() if k in names}

    def remote(self, group: str, version: str) -> Obj | None:
        """The APIService that sends ``group/version`` to a Service, if any."""
        return self._remote.get((group, version))

    def remote_apiservices(self) -> list[Obj]:
        return list(self._remote.values())

    def slices_of(self, ref: ServiceRef) -> list[Obj]:
        return [
            s
            for s in self.slices.objects(ref.namespace)
            if ((s.get("metadata") or {}).get("labels") or {}).get(SERVICE_NAME_LABEL) == ref.name
        ]

    def endpoint(self, ref: ServiceRef) -> tuple[str, int]:
        """A ready endpoint of the Service port; :class:`Unroutable` when there is none."""
        service = self.services.get(ref.namespace, ref.name)
        if service is None:
            raise Unroutable(f'service "{ref.name}" not found')
        return pick_endpoint(service, self.slices_of(ref), ref.port)

    def record_discovery(self, name: str, resources: tuple[Obj, ...] | None) -> None:
        """What the backend of APIService ``name`` lists (None: it could not be read now, the
        last list is kept and shown stale)."""
        if resources is None:
            last, _ = self._discovered.get(name, ((), False))
            self._discovered[name] = (last, False)
        else:
            self._discovered[name] = (resources, True)

    def on_unreachable(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(apiservice name)`` when a proxied request could not reach its backend."""
        self._unreachable.append(callback)

    def aggregated_versions(self) -> list[discovery.AggregatedVersion]:
        out = []
        for obj in self._remote.values():
            group, version = group_version(obj)
            spec = obj.get("spec") or {}
            resources, current = self._discovered.get(obj["metadata"]["name"], ((), False))
            out.append(
                discovery.AggregatedVersion(
                    group,
                    version,
                    int(spec.get("groupPriorityMinimum") or 0),
                    int(spec.get("versionPriority") or 0),
                    resources,
                    current,
                )
            )
        return out

    # -- TLS towards backends -----------------------------------------------------------------

    def ssl_context(self, apiservice: Obj) -> ssl.SSLContext:
        """Trust the APIService's ``caBundle`` (the system roots without one), or nothing with
        ``insecureSkipTLSVerify``; present the front-proxy certificate. Kept per bundle."""
        spec = apiservice.get("spec") or {}
        insecure = spec.get("insecureSkipTLSVerify") is True
        raw = spec.get("caBundle")
        try:
            pem = base64.b64decode(raw, validate=True) if isinstance(raw, str) and raw else b""
        except (binascii.Error, ValueError):
            raise errors.internal("the APIService's caBundle is not valid base64") from None
        key = (pem, insecure)
        context = self._contexts.get(key)
        if context is None:
            try:
                if insecure:
                    context = ssl.create_default_context()
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                elif pem:
                    context = ssl.create_default_context(cadata=pem.decode("ascii", "replace"))
                else:
                    context = ssl.create_default_context()
                load_pem_pair(context, self._cert_pem, self._key_pem)
            except (ssl.SSLError, ValueError) as exc:
                raise errors.internal(f"unable to load the APIService's caBundle: {exc}") from None
            self._contexts[key] = context
        return context

    # -- routing ------------------------------------------------------------------------------

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        parts = request.path.split("/")
        if len(parts) < 2 or parts[1] != "apis" or not self._remote:
            return await handler(request)
        if len(parts) == 2 or (len(parts) == 3 and not parts[2]):
            if request.method == "GET":
                return self.groups_discovery(request)
        elif len(parts) == 3 or (len(parts) == 4 and not parts[3]):
            if (found := self.group_discovery(request, parts[2])) is not None:
                return found
        elif (apiservice := self.remote(parts[2], parts[3])) is not None:
            return await self.proxy(request, apiservice)
        return await handler(request)

    def groups_discovery(self, request: web.Request) -> web.Response:
        registry, versions = self.store.registry, self.aggregated_versions()
        if discovery.wants_aggregated(request.headers.get("Accept", "")):
            doc = discovery.aggregated_with(registry, versions)
            return web.Response(body=_json(doc), headers={"Content-Type": discovery.AGGREGATED_V2})
        return respond(discovery.group_list_with(registry, versions))

    def group_discovery(self, request: web.Request, group: str) -> web.Response | None:
        """``/apis/<group>`` when an aggregated API server serves part of it; None otherwise."""
        if not any(group_version(obj)[0] == group for obj in self._remote.values()):
            return None
        if request.method != "GET":
            raise errors.method_not_allowed(request.method)
        versions = [
            discovery.AggregatedVersion(
                group,
                group_version(obj)[1],
                int((obj.get("spec") or {}).get("groupPriorityMinimum") or 0),
                int((obj.get("spec") or {}).get("versionPriority") or 0),
            )
            for obj in self.apiservices.objects()
            if group_version(obj)[0] == group
        ]
        return respond(discovery.api_group(group, versions))

    # -- the proxy ----------------------------------------------------------------------------

    async def proxy(self, request: web.Request, apiservice: Obj) -> web.StreamResponse:
        name = apiservice["metadata"]["name"]
        ref = service_ref(apiservice)
        assert ref is not None
        if not is_available(apiservice):
            return unavailable(UNAVAILABLE)
        user = request.get(REQUEST_USER)
        if user is None:
            raise errors.internal("missing user")
        context = self.ssl_context(apiservice)
        try:
            host, port = self.endpoint(ref)
        except Unroutable as exc:
            log.warning("APIService %s: cannot route to %s/%s: %s", name, ref.namespace, ref.name, exc)
            return unavailable(UNAVAILABLE)
        headers = forwarded_headers(request.headers.items(), user)
        if is_upgrade(request):
            upgrade = [(h, request.headers[h]) for h in ("Connection", "Upgrade")]
            target = Target(host, port, request.raw_path, context, ref.server_name)
            try:
                return await splice(request.clone(headers=CIMultiDict(headers + upgrade)), target)
            except BackendError as exc:
                self._notify(name)
                return unavailable(f"error trying to reach service: {exc}")
        if "Accept-Encoding" not in request.headers:
            headers.append(("Accept-Encoding", "identity"))  # what arrives is relayed undecoded
        url = URL(f"https://{authority(host, port)}{request.raw_path}", encoded=True)
        discovery_only = len(request.path.strip("/").split("/")) == 3
        timeout = aiohttp.ClientTimeout(
            total=DISCOVERY_TIMEOUT if discovery_only else None, sock_connect=CONNECT_TIMEOUT
        )
        try:
            async with self.session().request(
                request.method,
                url,
                headers=headers,
                data=request.content if request.body_exists else None,
                skip_auto_headers=NOT_ADDED,
                ssl=context,
                server_hostname=ref.server_name,
                allow_redirects=False,
                timeout=timeout,
            ) as answer:
                response = web.StreamResponse(status=answer.status, reason=answer.reason)
                response.headers.extend(response_headers(answer.headers.items()))
                await response.prepare(request)
                try:
                    async for chunk in answer.content.iter_any():
                        await response.write(chunk)
                    await response.write_eof()
                except (ConnectionError, aiohttp.ClientPayloadError, TimeoutError) as exc:
                    log.debug("proxied answer from APIService %s ended: %s", name, exc)
                return response
        except (aiohttp.ClientConnectionError, TimeoutError, ssl.SSLError) as exc:
            self._notify(name)
            return unavailable(f"error trying to reach service: {describe(exc, host, port)}")

    def _notify(self, name: str) -> None:
        for callback in self._unreachable:
            callback(name)


def unavailable(message: str) -> web.Response:
    """kube-aggregator's proxy errors: a plain-text 503 (``http.Error``), not a ``Status``."""
    return web.Response(
        status=503,
        text=message + "\n",
        headers={"X-Content-Type-Options": "nosniff"},
    )


def describe(exc: BaseException, host: str, port: int) -> str:
    """Go's wording for the usual failures to reach a backend."""
    dial = f"dial tcp {authority(host, port)}"
    if isinstance(exc, TimeoutError):
        return f"{dial}: i/o timeout"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return f"tls: failed to verify certificate: x509: {exc.certificate_error}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        cause = exc.os_error
        if isinstance(cause, ConnectionRefusedError):
            return f"{dial}: connect: connection refused"
        return f"{dial}: {cause.strerror or cause}"
    return str(exc) or type(exc).__name__


def _json(doc: Obj) -> bytes:
    return orjson.dumps(doc)
