"""Forwarding pods/log, exec, attach, portforward, proxy, services/proxy and nodes/proxy to the
right place.

For a pod's log, exec, attach and portforward the pod's node is read from ``spec.nodeName``
and its kubelet from the Node object (the first ``InternalIP``, else ``ExternalIP``, else
``Hostname`` address, port ``status.daemonEndpoints.kubeletEndpoint.Port``, default 10250,
as K3s prefers them). The API server connects with TLS, trusting the server CA that signs
kubelet serving certificates and presenting its ``system:apiserver`` client certificate
(:class:`KubeletClient`), and rewrites the path to the kubelet's route::

    pods/{name}/log          /containerLogs/{ns}/{name}/{container}?follow=true&...
    pods/{name}/exec         /exec/{ns}/{name}/{container}?command=..&input=1&output=1&error=1&tty=1
    pods/{name}/attach       /attach/{ns}/{name}/{container}?input=1&output=1&error=1&tty=1
    pods/{name}/portforward  /portForward/{ns}/{name}?port=8080
    nodes/{name}/proxy/{p}   /{p}
    pods/{name}/proxy/{p}    http://{podIP}:{port}/{p}    (not the kubelet: the pod itself)
    services/{name}/proxy/{p} http://{endpoint}:{port}/{p} (a ready address of its endpoints)

(a proxied name is ``name``, ``name:port`` or ``scheme:name:port``).

Log bodies are streamed as they come (``follow`` keeps the connection open). Exec and
attach over WebSocket ``v5.channel.k8s.io`` (kubectl 1.30+) are translated to SPDY
towards the kubelet, and port-forward's SPDY tunnelled in WebSocket (kubectl 1.31+) is
unwrapped to plain SPDY (``translate``); every other upgrade (SPDY/3.1, older WebSocket
protocols) is spliced through unchanged (``upgrade``). Where the runtime's streaming server
refuses a WebSocket protocol (403), the refusal reaches the client, which may retry with
SPDY (kubectl does).

Errors are upstream's: an unknown pod 404, a pod without a node 400 ``pod X does not have a
host assigned``, a wrong container 400 ``container c is not valid for pod X``, an
unreachable kubelet 500 with the dial error, a kubelet error status carried over.
"""

from __future__ import annotations

import base64
import gzip
import logging
import random
import ssl
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, overload
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from k3py.api.resources import Resource
from k3py.apiserver import errors
from k3py.apiserver.authn import REQUEST_USER
from k3py.apiserver.authz import Attributes
from k3py.apiserver.generic import ObjectStore
from k3py.apiserver.kubelet_proxy.rewrite import rewrite_html, rewrite_url
from k3py.apiserver.kubelet_proxy.translate import (
    Streams,
    translate,
    tunnel,
    tunneled_protocols,
    wants_translation,
)
from k3py.apiserver.kubelet_proxy.upgrade import (
    HOP_BY_HOP,
    NOT_ADDED,
    BackendError,
    Target,
    is_upgrade,
    splice,
)
from k3py.client.rest import Credentials
from k3py.pki import Pki

log = logging.getLogger(__name__)

WEBSOCKET_STREAM_PROTOCOLS = ("binary.k8s.io", "base64.binary.k8s.io")
"""What a streamed response (a pod's log) speaks over WebSocket, as upstream's ``wsstream``."""

Obj = dict[str, Any]
DEFAULT_KUBELET_PORT = 10250
ADDRESS_TYPES = ("InternalIP", "ExternalIP", "Hostname")
CONNECT_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10, connect=10)
ERROR_BODY_LIMIT = 64 * 1024
LOG_PARAMS = (
    "follow",
    "previous",
    "timestamps",
    "sinceSeconds",
    "sinceTime",
    "tailLines",
    "limitBytes",
    "stream",
)
STREAM_FLAGS = (("stdin", "input"), ("stdout", "output"), ("stderr", "error"), ("tty", "tty"))

# Never forwarded: the client's credentials and identity requests are for this server; the
# backend sees the API server's own certificate.
_PRIVATE_HEADERS = ("Authorization", "Impersonate-User", "Impersonate-Group", "Impersonate-Uid")
_HOP_BY_HOP = HOP_BY_HOP | {h.lower() for h in ("Date", "Server", *_PRIVATE_HEADERS)}


@dataclass(frozen=True)
class KubeletClient:
    """How the API server calls kubelets: the CA of their serving certificates, its client pair."""

    ca_pem: bytes
    cert_pem: bytes = field(repr=False)
    key_pem: bytes = field(repr=False)

    @classmethod
    def of(cls, pki: Pki) -> KubeletClient:
        """Trust the server CA (it signs kubelet serving certificates), be ``system:apiserver``."""
        return cls(pki.server_ca.cert_pem, pki.kubelet_client.cert_pem, pki.kubelet_client.key_pem)

    def ssl_context(self) -> ssl.SSLContext:
        return Credentials(self.ca_pem, self.cert_pem, self.key_pem).ssl_context()


@dataclass(frozen=True)
class Endpoint:
    """A kubelet's address."""

    node: str
    host: str
    port: int

    @property
    def authority(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


class KubeletProxy:
    """The handlers; :meth:`routes` go before the generic resource routes."""

    def __init__(
        self, store: ObjectStore, client: KubeletClient, check: Callable[[Attributes], None] | None = None
    ) -> None:
        """``check`` raises a 403 when the attributes are not allowed (``Security.check``)."""
        self.store = store
        self.client = client
        self.check = check
        self._ssl = client.ssl_context()
        # A pod's or service's own certificate is nobody's to vouch for: upstream's proxy
        # transport for pods and services skips verification too.
        self._unverified = ssl.create_default_context()
        self._unverified.check_hostname = False
        self._unverified.verify_mode = ssl.CERT_NONE
        self._session: aiohttp.ClientSession | None = None
        pods, nodes = store.registry.lookup("", "v1", "pods"), store.registry.lookup("", "v1", "nodes")
        services = store.registry.lookup("", "v1", "services")
        endpoints = store.registry.lookup("", "v1", "endpoints")
        assert pods and nodes and services and endpoints, "the core API is always served"
        self.pods: Resource = pods
        self.nodes: Resource = nodes
        self.services: Resource = services
        self.endpoints: Resource = endpoints

    def routes(self) -> list[web.RouteDef]:
        pod = "/api/v1/namespaces/{namespace}/pods/{name}"
        service = "/api/v1/namespaces/{namespace}/services/{name}"
        return [
            web.get(f"{pod}/log", self.log),
            web.route("*", f"{pod}/exec", self.exec),
            web.route("*", f"{pod}/attach", self.attach),
            web.route("*", f"{pod}/portforward", self.port_forward),
            web.route("*", f"{pod}/proxy", self.pod_proxy),
            web.route("*", f"{pod}/proxy/{{path:.*}}", self.pod_proxy),
            web.route("*", f"{service}/proxy", self.service_proxy),
            web.route("*", f"{service}/proxy/{{path:.*}}", self.service_proxy),
            web.route("*", "/api/v1/nodes/{name}/proxy", self.node_proxy),
            web.route("*", "/api/v1/nodes/{name}/proxy/{path:.*}", self.node_proxy),
        ]

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=self._ssl, limit=0)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=CONNECT_TIMEOUT, auto_decompress=False
            )
        return self._session

    # -- pods/log ------------------------------------------------------------------------

    async def log(self, request: web.Request) -> web.StreamResponse:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        pod = await self.store.get(self.pods, namespace, name)
        container = pod_container(pod, request.query.get("container", ""))
        endpoint = await self.endpoint(pod)
        query = urlencode([(k, v) for k, v in request.query.items() if k in LOG_PARAMS])
        url = f"https://{endpoint.authority}/containerLogs/{namespace}/{name}/{container}"
        if query:
            url += f"?{query}"
        try:
            async with self.session().get(url) as answer:
                if not 200 <= answer.status <= 206:
                    raise kubelet_error(answer.status, await answer.content.read(ERROR_BODY_LIMIT), name)
                if is_websocket(request):
                    return await stream_over_websocket(request, answer.content, f"{namespace}/{name}")
                response = web.StreamResponse(headers={"Content-Type": "text/plain"})
                await response.prepare(request)
                try:
                    async for chunk in answer.content.iter_any():
                        await response.write(chunk)
                    await response.write_eof()
                except (ConnectionError, aiohttp.ClientPayloadError) as exc:
                    log.debug("log stream of %s/%s ended: %s", namespace, name, exc)
                return response
        except (aiohttp.ClientConnectionError, TimeoutError, ssl.SSLError) as exc:
            raise unreachable(f'Get "{url}": {_dial_error(exc, endpoint)}') from None

    # -- pods/exec, attach, portforward --------------------------------------------------

    async def exec(self, request: web.Request) -> web.StreamResponse:
        return await self._stream(request, "exec")

    async def attach(self, request: web.Request) -> web.StreamResponse:
        return await self._stream(request, "attach")

    async def port_forward(self, request: web.Request) -> web.StreamResponse:
        return await self._stream(request, "portforward")

    async def _stream(self, request: web.Request, kind: str) -> web.StreamResponse:
        if request.method not in ("GET", "POST"):
            raise errors.method_not_allowed(request.method, self.pods)
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        if request.method == "GET" and self.check is not None and REQUEST_USER in request:
            # A WebSocket upgrade is a GET, authorized as ``get`` by the middleware; opening a
            # stream into a container needs ``create`` as well (upstream's
            # AuthorizePodWebsocketUpgradeCreatePermission).
            self.check(
                Attributes(
                    request[REQUEST_USER],
                    "create",
                    True,
                    path=request.path,
                    api_version="v1",
                    namespace=namespace,
                    resource="pods",
                    subresource=kind,
                    name=name,
                )
            )
        pod = await self.store.get(self.pods, namespace, name)
        if REQUEST_USER in request:
            for step in self.store.connect_admission:
                await step(self.pods, namespace, name, kind, request.query.items(), request[REQUEST_USER])
        if kind == "portforward":
            path = f"/portForward/{namespace}/{name}"
        else:
            container = pod_container(pod, request.query.get("container", ""))
            path = f"/{kind}/{namespace}/{name}/{container}"
        endpoint = await self.endpoint(pod)
        if not is_upgrade(request):
            raise errors.bad_request("Upgrade request required")
        query = stream_query(request.query, kind)
        target = Target(
            endpoint.host, endpoint.port, f"{path}?{query}" if query else path, self._ssl, endpoint.host
        )
        try:
            if kind != "portforward" and wants_translation(request):
                return await translate(request, target, Streams.from_query(request.query))
            if kind == "portforward" and (tunneled := tunneled_protocols(request)):
                return await tunnel(request, target, tunneled)
            return await splice(request, target, drop_headers=_PRIVATE_HEADERS)
        except BackendError as exc:
            raise unreachable(f"error dialing backend: {exc}") from None

    # -- proxies -------------------------------------------------------------------------

    async def node_proxy(self, request: web.Request) -> web.StreamResponse:
        scheme, node_name, port = split_proxy_name(request.match_info["name"])
        node = await self.store.get(self.nodes, "", node_name)
        endpoint = node_endpoint(node)
        if port:
            endpoint = Endpoint(endpoint.node, endpoint.host, port)
        secure = scheme != "http"
        path = "/" + request.match_info.get("path", "")
        return await self._forward(request, endpoint, path, tls=self._ssl if secure else None)

    async def pod_proxy(self, request: web.Request) -> web.StreamResponse:
        scheme, name, port = split_proxy_name(request.match_info["name"])
        namespace = request.match_info["namespace"]
        pod = await self.store.get(self.pods, namespace, name)
        ip = pod.get("status", {}).get("podIP", "")
        if not ip:
            raise errors.unavailable(f'pod "{name}" has no IP address yet')
        secure = scheme == "https"
        port = port or first_container_port(pod) or (443 if secure else 80)
        endpoint = Endpoint(pod.get("spec", {}).get("nodeName", ""), ip, port)
        path = "/" + request.match_info.get("path", "")
        return await self._forward(request, endpoint, path, tls=self._unverified if secure else None)

    async def service_proxy(self, request: web.Request) -> web.StreamResponse:
        """``services/{name}/proxy``: to one ready address of the service's endpoints, picked at
        random, on the port of the service port the name selects (upstream's ``ResourceLocation``)."""
        scheme, name, port = split_proxy_name(request.match_info["name"], named_port=True)
        namespace = request.match_info["namespace"]
        service = await self.store.get(self.services, namespace, name)
        endpoints = await self.store.get(self.endpoints, namespace, name)
        host, target = service_target(service, endpoints, port)
        secure = scheme == "https"
        path = "/" + request.match_info.get("path", "")
        tls = self._unverified if secure else None
        return await self._forward(request, Endpoint("", host, target), path, tls=tls)

    async def _forward(
        self, request: web.Request, endpoint: Endpoint, path: str, *, tls: ssl.SSLContext | None
    ) -> web.StreamResponse:
        """An HTTP request to ``endpoint`` (over ``tls`` when given), the answer streamed back."""
        path_qs = f"{path}?{request.query_string}" if request.query_string else path
        secure = tls is not None
        if "path" not in request.match_info and request.method in ("GET", "HEAD") and not is_upgrade(request):
            # upstream's proxyRedirectsforRootPath: ``.../proxy`` is ``.../proxy/`` (issue 4958)
            query = f"?{request.query_string}" if request.query_string else ""
            return web.Response(status=301, headers={"Location": f"{request.path}/{query}"})
        if is_upgrade(request):
            target = Target(endpoint.host, endpoint.port, path_qs, tls, endpoint.host if secure else None)
            try:
                return await splice(request, target, drop_headers=_PRIVATE_HEADERS)
            except BackendError as exc:
                raise unreachable(f"error dialing backend: {exc}") from None
        url = f"{'https' if secure else 'http'}://{endpoint.authority}{path_qs}"
        headers = _forwarded_headers(request.headers.items())
        body = request.content if request.can_read_body else None
        try:
            async with self.session().request(
                request.method,
                url,
                headers=headers,
                data=body,
                skip_auto_headers=NOT_ADDED,
                ssl=tls if tls is not None else False,
                allow_redirects=False,
            ) as answer:
                prefix = request.path[: len(request.path) - len(path)] if request.path.endswith(path) else ""
                headers_out = []
                for key, value in answer.headers.items():
                    if key.lower() == "location" and prefix:
                        value = rewrite_url(value, prefix, (request.host,))
                    if key.lower() not in _HOP_BY_HOP:
                        headers_out.append((key, value))
                encoding = answer.headers.get("Content-Encoding", "").lower()
                if prefix and _is_html(answer.headers) and encoding in ("", "identity", "gzip"):
                    page = _rewritten(await answer.read(), encoding, prefix, request.host)
                    return web.Response(
                        status=answer.status, reason=answer.reason, body=page, headers=headers_out
                    )
                response = web.StreamResponse(status=answer.status, reason=answer.reason)
                response.headers.extend(headers_out)
                await response.prepare(request)
                try:
                    async for chunk in answer.content.iter_any():
                        await response.write(chunk)
                    await response.write_eof()
                except (ConnectionError, aiohttp.ClientPayloadError) as exc:
                    log.debug("proxied response from %s ended: %s", endpoint.authority, exc)
                return response
        except (aiohttp.ClientConnectionError, TimeoutError, ssl.SSLError) as exc:
            raise unreachable(f"error trying to reach service: {_dial_error(exc, endpoint)}") from None

    # -- where ---------------------------------------------------------------------------

    async def endpoint(self, pod: Obj) -> Endpoint:
        """The kubelet running ``pod``; 400 when it is not scheduled yet."""
        node_name = pod.get("spec", {}).get("nodeName", "")
        if not node_name:
            raise errors.bad_request(f"pod {pod['metadata']['name']} does not have a host assigned")
        return node_endpoint(await self.store.get(self.nodes, "", node_name))


def is_websocket(request: web.Request) -> bool:
    return is_upgrade(request) and request.headers.get("Upgrade", "").lower() == "websocket"


async def stream_over_websocket(
    request: web.Request, body: aiohttp.StreamReader, what: str
) -> web.WebSocketResponse:
    """A streamed body as upstream's ``wsstream`` reader sends it: each chunk one binary message
    (``binary.k8s.io``, or no subprotocol) or one base64 text message (``base64.binary.k8s.io``),
    then a normal close."""
    ws = web.WebSocketResponse(protocols=WEBSOCKET_STREAM_PROTOCOLS, autoping=True)
    await ws.prepare(request)
    as_text = ws.ws_protocol == "base64.binary.k8s.io"
    try:
        async for chunk in body.iter_any():
            if as_text:
                await ws.send_str(base64.b64encode(chunk).decode("ascii"))
            else:
                await ws.send_bytes(chunk)
    except (ConnectionError, aiohttp.ClientPayloadError) as exc:
        log.debug("log stream of %s ended: %s", what, exc)
    await ws.close()
    return ws


def node_endpoint(node: Obj) -> Endpoint:
    """The kubelet address of a Node object (K3s's preference order: InternalIP, ExternalIP, Hostname)."""
    name = node["metadata"]["name"]
    status = node.get("status", {})
    addresses = status.get("addresses") or []
    port = status.get("daemonEndpoints", {}).get("kubeletEndpoint", {}).get("Port") or DEFAULT_KUBELET_PORT
    for kind in ADDRESS_TYPES:
        for address in addresses:
            if address.get("type") == kind and address.get("address"):
                return Endpoint(name, str(address["address"]), int(port))
    known = [f"{a.get('type')}:{a.get('address')}" for a in addresses]
    raise errors.internal(f"no preferred addresses found; known addresses: [{' '.join(known)}]")


def pod_container(pod: Obj, container: str) -> str:
    """The container a request is about, defaulted and checked as upstream's ``validateContainer``."""
    spec = pod.get("spec", {})
    name = pod["metadata"]["name"]
    if not container:
        containers = spec.get("containers") or []
        if len(containers) == 1:
            return str(containers[0]["name"])
        if not containers:
            raise errors.bad_request(f"pod {name} does not have a container")
        every = [
            c["name"]
            for key in ("initContainers", "containers", "ephemeralContainers")
            for c in spec.get(key) or []
        ]
        raise errors.bad_request(
            f"a container name must be specified for pod {name}, choose one of: [{' '.join(every)}]"
        )
    for key in ("containers", "initContainers", "ephemeralContainers"):
        if any(c.get("name") == container for c in spec.get(key) or []):
            return container
    raise errors.bad_request(f"container {container} is not valid for pod {name}")


def stream_query(query: Mapping[str, str], kind: str) -> str:
    """The kubelet's query for exec/attach/portforward, from the API's ``Pod*Options``."""
    params: list[tuple[str, str]] = []
    if kind == "portforward":
        params += [("port", port) for port in _all(query, "ports")]
        return urlencode(params)
    for api_name, kubelet_name in STREAM_FLAGS:
        if query.get(api_name, "").lower() in ("1", "true"):
            params.append((kubelet_name, "1"))
    if kind == "exec":
        params += [("command", command) for command in _all(query, "command")]
    return urlencode(params)


def _all(query: Mapping[str, str], name: str) -> list[str]:
    getall = getattr(query, "getall", None)
    return list(getall(name, [])) if getall is not None else ([query[name]] if name in query else [])


@overload
def split_proxy_name(raw: str) -> tuple[str, str, int]: ...


@overload
def split_proxy_name(raw: str, *, named_port: bool) -> tuple[str, str, int | str]: ...


def split_proxy_name(raw: str, *, named_port: bool = False) -> tuple[str, str, int | str]:
    """``name``, ``name:port`` or ``scheme:name:port`` (upstream's proxy naming); a service's
    port may be named (``named_port``), a pod's is a number (0: not given)."""
    parts = raw.split(":")
    scheme = ""
    if len(parts) == 3:
        scheme, name, port = parts
    elif len(parts) == 2:
        name, port = parts
    else:
        name, port = raw, ""
    if scheme not in ("", "http", "https"):
        raise errors.bad_request(f"invalid scheme {scheme!r} in {raw!r}: use http or https")
    if port.isdigit():
        if not 0 < int(port) < 65536:
            raise errors.bad_request(f"invalid port {port!r} in {raw!r}")
        return scheme, name, int(port)
    if port and not named_port:
        raise errors.bad_request(f"invalid port {port!r} in {raw!r}")
    return scheme, name, port if named_port else 0


def _is_html(headers: Mapping[str, str]) -> bool:
    return headers.get("Content-Type", "").split(";")[0].strip().lower() == "text/html"


def _rewritten(page: bytes, encoding: str, prefix: str, host: str) -> bytes:
    """A proxied HTML page with its links under ``prefix`` (gzip kept when it came so)."""
    raw = gzip.decompress(page) if encoding == "gzip" else page
    text = rewrite_html(raw.decode("utf-8", "surrogateescape"), lambda url: rewrite_url(url, prefix, (host,)))
    out = text.encode("utf-8", "surrogateescape")
    return gzip.compress(out) if encoding == "gzip" else out


def first_container_port(pod: Obj) -> int:
    """The port a pod proxy request without one goes to: the first container's first port (0:
    none), as upstream's ``ResourceLocation`` for pods."""
    for container in pod.get("spec", {}).get("containers") or []:
        ports = container.get("ports") or []
        if ports and isinstance(ports[0].get("containerPort"), int):
            return int(ports[0]["containerPort"])
    return 0


def service_target(service: Obj, endpoints: Obj, port: int | str) -> tuple[str, int]:
    """The address and port a service proxy request goes to: the service port named or numbered
    ``port`` (any when not given), then a random ready address of the endpoints' subset port of
    the same name; 503 when there is none, as upstream."""
    name = service["metadata"]["name"]
    wanted = None
    for candidate in service.get("spec", {}).get("ports") or []:
        if port in ("", 0) or candidate.get("name") == port or candidate.get("port") == port:
            wanted = candidate
            break
    if wanted is None:
        raise errors.unavailable(f"no service port {port!r} found for service {name!r}")
    choices = [
        (str(address["ip"]), int(subset_port["port"]))
        for subset in endpoints.get("subsets") or []
        for subset_port in subset.get("ports") or []
        if subset_port.get("name", "") == wanted.get("name", "")
        for address in subset.get("addresses") or []
        if address.get("ip")
    ]
    if not choices:
        raise errors.unavailable(f'no endpoints available for service "{name}"')
    return random.choice(choices)


def kubelet_error(status: int, body: bytes, name: str) -> errors.ApiError:
    """A kubelet error answer as the API's ``Status`` (upstream's ``GenericHttpResponseChecker``)."""
    text = body.decode("utf-8", "replace").strip()
    if status == 400:
        return errors.bad_request(text)
    if status == 500:
        return errors.internal(text)
    if status == 404:
        return errors.ApiError(404, "NotFound", text or "the server could not find the requested resource")
    if status == 401:
        return errors.ApiError(401, "Unauthorized", text or "Unauthorized")
    if status == 403:
        return errors.ApiError(403, "Forbidden", text or "Forbidden")
    return errors.ApiError(status, "", text or f"the kubelet answered {status} for pod {name}")


def unreachable(message: str) -> errors.ApiError:
    """The backend could not be reached: a 500 whose message is the dial error.

    Upstream turns such an error (not a ``Status`` of its own) into a 500 of reason Unknown
    (empty), which kubectl prints as ``Error from server: <message>``.
    """
    return errors.ApiError(500, "", message)


def _dial_error(exc: BaseException, endpoint: Endpoint) -> str:
    cause = exc.__cause__ or exc
    if isinstance(exc, TimeoutError):
        return f"dial tcp {endpoint.authority}: i/o timeout"
    if isinstance(cause, ConnectionRefusedError) or "Connect call failed" in str(cause):
        return f"dial tcp {endpoint.authority}: connect: connection refused"
    return f"dial tcp {endpoint.authority}: {cause}"


def _forwarded_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in headers if k.lower() not in _HOP_BY_HOP]
