"""Calling one admission webhook: where it listens, TLS, the POST and its failures.

A ``clientConfig.url`` is called as written. A ``clientConfig.service`` is reached as
kube-apiserver does with endpoint routing: the Service's port (``port``, default 443) is looked
up, then a ready address of that port in the Service's EndpointSlices (the v1 Endpoints when
there are none), and that pod address is dialled directly. The request still names
``https://<service>.<namespace>.svc:<port><path>``, and the certificate is verified against
``caBundle`` (the system's roots without one) for the server name ``<service>.<namespace>.svc``.

Every failure to get an answer is a :class:`CallError` whose message reads as Go's
``failed to call webhook: Post "<url>?timeout=10s": context deadline exceeded``; the caller
applies the webhook's ``failurePolicy`` to it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from k3py.api.resources import Resource
from k3py.apiserver import errors
from k3py.apiserver.generic import ListOptions, Obj, ObjectStore

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
RESPONSE_LIMIT = 3 * 1024 * 1024
"""Bytes of a webhook's answer read at most (kube-apiserver's request-size limit)."""


class CallError(Exception):
    """The webhook could not be called or its answer not read: ``failurePolicy`` decides."""


@dataclass(frozen=True)
class Target:
    """Where to send one call: the URL shown and sent as Host, and the address dialled."""

    url: str
    dial_host: str
    dial_port: int
    server_name: str


class WebhookClient:
    """Calls webhooks over one shared HTTP session; :meth:`close` when done."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self._session: aiohttp.ClientSession | None = None
        self._contexts: dict[bytes, ssl.SSLContext] = {}

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, force_close=True))
        return self._session

    async def call(self, client_config: Obj, body: Obj, seconds: int) -> Obj:
        """POST ``body`` (an AdmissionReview) and return the AdmissionReview answered within
        ``seconds`` (the webhook's ``timeoutSeconds``)."""
        target = await self.target(client_config, seconds)
        context = self.ssl_context(client_config.get("caBundle"))
        data = orjson.dumps(body)
        try:
            async with asyncio.timeout(seconds):
                return await self._post(target, context, data)
        except TimeoutError:
            raise CallError(
                f'failed to call webhook: Post "{target.url}": context deadline exceeded'
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise CallError(
                f'failed to call webhook: Post "{target.url}": {_describe(exc, target)}'
            ) from None

    async def _post(self, target: Target, context: ssl.SSLContext | None, data: bytes) -> Obj:
        parts = urlsplit(target.url)
        dial_url = parts._replace(netloc=_authority(target.dial_host, target.dial_port)).geturl()
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Host": parts.netloc,
        }
        async with self.session().post(
            dial_url,
            data=data,
            headers=headers,
            ssl=context if context is not None else False,
            server_hostname=target.server_name if context is not None else None,
            allow_redirects=False,
        ) as answer:
            raw = await read_at_most(answer.content, RESPONSE_LIMIT + 1)
            if len(raw) > RESPONSE_LIMIT:
                raise CallError(f'failed to call webhook: Post "{target.url}": response body too large')
            if answer.status != 200:
                shown = raw[:256].decode(errors="replace")
                raise CallError(
                    f'failed to call webhook: an error on the server ("{shown}") '
                    f"has prevented the request from succeeding (status {answer.status})"
                )
        try:
            review = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise CallError(f"received invalid webhook response: {exc}") from None
        if not isinstance(review, dict):
            raise CallError("received invalid webhook response: not an AdmissionReview object")
        return review

    # -- where to send it -------------------------------------------------------------------

    async def target(self, client_config: Obj, seconds: int) -> Target:
        query = f"timeout={seconds}s"
        service = client_config.get("service")
        if isinstance(service, dict):
            return await self._service_target(service, query)
        url = str(client_config.get("url") or "")
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise CallError(f'failed to call webhook: invalid webhook URL "{url}"')
        port = parts.port or 443
        sep = "&" if parts.query else ""
        full = parts._replace(query=f"{parts.query}{sep}{query}").geturl()
        return Target(full, parts.hostname, port, parts.hostname)

    async def _service_target(self, service: Obj, query: str) -> Target:
        namespace, name = str(service.get("namespace", "")), str(service.get("name", ""))
        port = int(service.get("port") or 443)
        path = str(service.get("path") or "")
        server_name = f"{name}.{namespace}.svc"
        url = f"https://{server_name}:{port}{path}?{query}"
        host, target_port = await self.resolve(namespace, name, port)
        return Target(url, host, target_port, server_name)

    async def resolve(self, namespace: str, name: str, port: int) -> tuple[str, int]:
        """A ready endpoint (address, port) of the Service's ``port``."""
        services = self._resource("", "v1", "services")
        try:
            svc = await self.store.get(services, namespace, name)
        except errors.ApiError as exc:
            if exc.code == 404:
                raise CallError(f'failed to call webhook: service "{name}" not found') from None
            raise CallError(f"failed to call webhook: {exc.message}") from None
        service_port = next(
            (p for p in (svc.get("spec") or {}).get("ports") or [] if int(p.get("port") or 0) == port), None
        )
        if service_port is None:
            raise CallError(f'failed to call webhook: service "{name}" has no port {port}')
        port_name = str(service_port.get("name") or "")
        found = await self._from_slices(namespace, name, port_name)
        if found is None:
            found = await self._from_endpoints(namespace, name, port_name)
        if found is None:
            raise CallError(f'failed to call webhook: no endpoints available for service "{name}"')
        return found

    async def _from_slices(self, namespace: str, name: str, port_name: str) -> tuple[str, int] | None:
        slices = self.store.registry.lookup("discovery.k8s.io", "v1", "endpointslices")
        if slices is None:
            return None
        listed = await self.store.list(
            slices, namespace, ListOptions(label_selector=f"{SERVICE_NAME_LABEL}={name}")
        )
        for item in listed["items"]:
            port = next(
                (p.get("port") for p in item.get("ports") or [] if str(p.get("name") or "") == port_name),
                None,
            )
            if not isinstance(port, int):
                continue
            for endpoint in item.get("endpoints") or []:
                if (endpoint.get("conditions") or {}).get("ready") is False:
                    continue
                addresses = endpoint.get("addresses") or []
                if addresses:
                    return str(addresses[0]), port
        return None

    async def _from_endpoints(self, namespace: str, name: str, port_name: str) -> tuple[str, int] | None:
        endpoints = self._resource("", "v1", "endpoints")
        try:
            found = await self.store.get(endpoints, namespace, name)
        except errors.ApiError:
            return None
        for subset in found.get("subsets") or []:
            port = next(
                (p.get("port") for p in subset.get("ports") or [] if str(p.get("name") or "") == port_name),
                None,
            )
            addresses = subset.get("addresses") or []
            if isinstance(port, int) and addresses:
                return str(addresses[0].get("ip")), port
        return None

    def _resource(self, group: str, version: str, plural: str) -> Resource:
        found = self.store.registry.lookup(group, version, plural)
        if found is None:
            raise CallError(f"failed to call webhook: {plural} are not served")
        return found

    # -- TLS --------------------------------------------------------------------------------

    def ssl_context(self, ca_bundle: Any) -> ssl.SSLContext:
        """A context trusting ``caBundle`` (base64 PEM, as the JSON carries it), or the system
        roots without one; contexts are kept per bundle."""
        pem = b""
        if isinstance(ca_bundle, str) and ca_bundle:
            try:
                pem = base64.b64decode(ca_bundle, validate=True)
            except (binascii.Error, ValueError):
                raise CallError("failed to call webhook: caBundle is not valid base64") from None
        context = self._contexts.get(pem)
        if context is None:
            try:
                context = (
                    ssl.create_default_context(cadata=pem.decode("ascii", "replace"))
                    if pem
                    else ssl.create_default_context()
                )
            except ssl.SSLError as exc:
                raise CallError(f"failed to call webhook: unable to load caBundle: {exc}") from None
            self._contexts[pem] = context
        return context


def _authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _describe(exc: BaseException, target: Target) -> str:
    """Go's wording for the usual failures, so messages read as kube-apiserver's."""
    dial = f"dial tcp {_authority(target.dial_host, target.dial_port)}"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return f"tls: failed to verify certificate: x509: {exc.certificate_error}"
    if isinstance(exc, aiohttp.ClientSSLError):
        return f"remote error: tls: {exc}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        cause = exc.os_error
        if isinstance(cause, ConnectionRefusedError):
            return f"{dial}: connect: connection refused"
        return f"{dial}: {cause.strerror or cause}"
    return str(exc) or type(exc).__name__


async def read_at_most(stream: aiohttp.StreamReader, limit: int) -> bytes:
    """The whole body, or its first ``limit`` bytes when it is longer (``read(n)`` alone returns
    whatever has arrived so far, which may be part of an answer)."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await stream.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)
