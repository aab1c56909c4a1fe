"""The kubelet's HTTPS server: upstream's routes on port 10250, over the cluster's PKI.

Routes (as upstream's kubelet)::

    GET  /healthz                                      "ok"
    GET  /pods                                         PodList of this node's pods
    GET  /stats/summary                                the backend's summary
    GET  /containerLogs/{ns}/{pod}/{container}         the container's log (``k3py.agent.logs``)
    *    /exec/{ns}/{pod}[/{uid}]/{container}          ?command=...&stdin=1&stdout=1&stderr=1&tty=1
    *    /attach/{ns}/{pod}[/{uid}]/{container}        ?stdin=1&stdout=1&stderr=1&tty=1
    *    /portForward/{ns}/{pod}[/{uid}]               ?ports=80,443 (WebSocket clients)

Exec, attach and port-forward ask the container runtime for a streaming URL (CRI
``Exec``/``Attach``/``PortForward``) and proxy the caller's upgrade request there, splicing
the connection both ways (``k3py.apiserver.kubelet_proxy.upgrade``): whatever the runtime's
streaming server speaks (SPDY/3.1, WebSocket ``v4.channel.k8s.io``) passes through, and a
refused WebSocket handshake reaches the client, which then falls back to SPDY.

Errors are plain text with upstream's status codes: 400 for bad parameters, 401/403 from
``auth``, 404 for an unknown pod or container, 500 when the runtime fails.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import orjson
from aiohttp import web

from k3py.agent.kubelet_api.auth import (
    Authorizer,
    KubeletUser,
    TokenReviewer,
    request_attributes,
)
from k3py.agent.kubelet_api.backend import ContainerLocation, KubeletBackend
from k3py.agent.logs import LogOptionError, LogOptions, read_log
from k3py.apiserver.kubelet_proxy.upgrade import BackendError, Target, is_upgrade, splice
from k3py.pki import client_identity
from k3py.pki.tls import load_pem_pair

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SHUTDOWN_GRACE = 3.0
USER = web.RequestKey("kubelet_user", KubeletUser)


class KubeletApi:
    """The kubelet's API server: ``await api.start()`` … ``await api.stop()``."""

    def __init__(
        self,
        backend: KubeletBackend,
        *,
        bind: str,
        port: int,
        serving_cert_pem: bytes,
        serving_key_pem: bytes,
        client_ca_pem: bytes,
        authorizer: Authorizer | None,
        token_reviewer: TokenReviewer | None = None,
    ) -> None:
        """``authorizer`` None admits every authenticated caller (tests, single-user setups).

        Bearer tokens are checked by ``token_reviewer``, else by the authorizer's own
        ``review_token`` (:class:`~k3py.agent.kubelet_api.auth.ApiAuthorizer` has one);
        without either only client certificates are accepted.
        """
        self.backend = backend
        self.bind = bind
        self.port = port
        self.authorizer = authorizer
        review = (
            getattr(authorizer, "review_token", None)
            if token_reviewer is None
            else token_reviewer.review_token
        )
        self._review_token: Callable[[str], Awaitable[KubeletUser | None]] | None = review
        self.ssl_context = _server_context(serving_cert_pem, serving_key_pem, client_ca_pem)
        self._runner: web.AppRunner | None = None
        self.bound_port = port

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._admit])
        app.add_routes(
            [
                web.get("/healthz", self.healthz),
                web.get("/pods", self.pods),
                web.get("/stats/summary", self.stats_summary),
                web.get("/metrics", self.metrics),
                web.get("/metrics/resource", self.metrics),
                web.get("/metrics/cadvisor", self.metrics),
                web.get("/metrics/probes", self.metrics),
                web.get("/containerLogs/{namespace}/{pod}/{container}", self.container_logs),
                web.route("*", "/exec/{namespace}/{pod}/{container}", self.exec),
                web.route("*", "/exec/{namespace}/{pod}/{uid}/{container}", self.exec),
                web.route("*", "/attach/{namespace}/{pod}/{container}", self.attach),
                web.route("*", "/attach/{namespace}/{pod}/{uid}/{container}", self.attach),
                web.route("*", "/portForward/{namespace}/{pod}", self.port_forward),
                web.route("*", "/portForward/{namespace}/{pod}/{uid}", self.port_forward),
            ]
        )
        return app

    async def start(self) -> None:
        # Open exec and log streams get a short grace at shutdown, then are closed.
        self._runner = web.AppRunner(
            self.app(), access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_GRACE
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.bind, self.port, ssl_context=self.ssl_context)
        await site.start()
        self.bound_port = self._runner.addresses[0][1]  # the port bound, when 0 asked for any
        log.info("kubelet API listening on %s:%d", self.bind, self.bound_port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- authentication and authorization --------------------------------------------------

    @web.middleware
    async def _admit(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        user = await self._user(request)
        if user is None:
            return _text(401, "Unauthorized")
        if self.authorizer is not None:
            attributes = request_attributes(request.method, request.path, self.backend.node_name)
            for attrs in attributes:
                if await self.authorizer(user, attrs):
                    break
            else:
                denied = attributes[-1]
                log.info("kubelet API: %s", denied.describe(user))
                return _text(403, denied.describe(user))
        request[USER] = user
        try:
            return await handler(request)
        except web.HTTPException as exc:
            return _text(exc.status, exc.text or exc.reason)

    async def _user(self, request: web.Request) -> KubeletUser | None:
        transport = request.transport
        ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
        if ssl_object is not None and (identity := client_identity(ssl_object.getpeercert())):
            return KubeletUser(identity[0], tuple(identity[1]))
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip() and self._review_token is not None:
            return await self._review_token(token.strip())
        return None

    # -- read-only endpoints ---------------------------------------------------------------

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def pods(self, request: web.Request) -> web.Response:
        body = {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": self.backend.pods()}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def stats_summary(self, request: web.Request) -> web.Response:
        body = await self.backend.stats_summary()
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def metrics(self, request: web.Request) -> web.Response:
        """Prometheus text: the node's and its containers' usage, and what runs (the summary's data)."""
        summary = await self.backend.stats_summary()
        return web.Response(
            text=prometheus_text(summary, len(self.backend.pods())), content_type="text/plain"
        )

    # -- logs ------------------------------------------------------------------------------

    async def container_logs(self, request: web.Request) -> web.StreamResponse:
        namespace, pod, container = (request.match_info[k] for k in ("namespace", "pod", "container"))
        try:
            options = LogOptions.from_query(request.query)
        except LogOptionError as exc:
            return _text(400, str(exc))
        try:
            location = self.backend.locate(namespace, pod, container)
        except LookupError as exc:
            return _text(404, _message(exc))
        previous = _flag(request.query, "previous")
        path = location.previous_log_path if previous else location.log_path
        if path is None:
            if previous:
                return _text(400, f'previous terminated container "{container}" in pod "{pod}" not found')
            return _text(400, f'container "{container}" in pod "{pod}" is waiting to start: no log yet')
        try:
            path.open("rb").close()  # unreadable: an error status, before any header is sent
        except OSError as exc:
            return _text(500, f"failed to read the log of container {container!r}: {exc.strerror or exc}")
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)  # at once: ``follow`` may wait long for a first line
        keep_following = self._still_running(namespace, pod, container, location)
        with contextlib.suppress(OSError):  # the client went away (or the file, mid-read)
            async for chunk in read_log(path, options, keep_following=keep_following):
                await response.write(chunk)
            await response.write_eof()
        return response

    def _still_running(
        self, namespace: str, pod: str, container: str, seen: ContainerLocation
    ) -> Callable[[], Awaitable[bool]]:
        """For ``follow``: is the instance whose log is read still the running one?"""

        async def check() -> bool:
            try:
                now = self.backend.locate(namespace, pod, container)
            except LookupError:
                return False
            return now.running and (now.container_id, now.log_path) == (seen.container_id, seen.log_path)

        return check

    # -- streaming: exec, attach, port-forward ---------------------------------------------

    async def exec(self, request: web.Request) -> web.StreamResponse:
        location, failure = self._streaming_container(request)
        if location is None or location.container_id is None:
            return failure or _text(400, "container not created yet")
        options = _stream_options(request.query)
        if isinstance(options, web.Response):
            return options
        command = request.query.getall("command", [])
        if not command:
            return _text(400, "you must specify a command to execute")
        tty, stdin, stdout, stderr = options
        container_id, runtime = location.container_id, self.backend.runtime
        return await self._proxy(
            request,
            "exec",
            lambda: runtime.exec(container_id, command, tty=tty, stdin=stdin, stdout=stdout, stderr=stderr),
        )

    async def attach(self, request: web.Request) -> web.StreamResponse:
        location, failure = self._streaming_container(request)
        if location is None or location.container_id is None:
            return failure or _text(400, "container not created yet")
        options = _stream_options(request.query)
        if isinstance(options, web.Response):
            return options
        tty, stdin, stdout, stderr = options
        container_id, runtime = location.container_id, self.backend.runtime
        return await self._proxy(
            request,
            "attach",
            lambda: runtime.attach(container_id, tty=tty, stdin=stdin, stdout=stdout, stderr=stderr),
        )

    async def port_forward(self, request: web.Request) -> web.StreamResponse:
        namespace, pod = request.match_info["namespace"], request.match_info["pod"]
        try:
            location = self.backend.locate(namespace, pod, None)
        except LookupError as exc:
            return _text(404, _message(exc))
        if (uid := request.match_info.get("uid")) and uid != location.pod_uid:
            return _text(404, f"pod not found ({namespace}/{pod} has another uid than {uid})")
        try:
            ports = _ports(request.query.getall("port", []) + request.query.getall("ports", []))
        except ValueError as exc:
            return _text(400, str(exc))
        sandbox_id, runtime = location.sandbox_id, self.backend.runtime
        return await self._proxy(request, "portforward", lambda: runtime.port_forward(sandbox_id, ports))

    def _streaming_container(
        self, request: web.Request
    ) -> tuple[ContainerLocation | None, web.Response | None]:
        namespace, pod, container = (request.match_info[k] for k in ("namespace", "pod", "container"))
        try:
            location = self.backend.locate(namespace, pod, container)
        except LookupError as exc:
            return None, _text(404, _message(exc))
        if (uid := request.match_info.get("uid")) and uid != location.pod_uid:
            return None, _text(404, f"pod not found ({namespace}/{pod} has another uid than {uid})")
        if location.container_id is None or not location.running:
            return None, _text(400, f'container "{container}" in pod "{pod}" is not running')
        return location, None

    async def _proxy(
        self, request: web.Request, what: str, stream_url: Callable[[], Awaitable[str]]
    ) -> web.StreamResponse:
        """Ask the runtime for the streaming URL, then splice the caller's upgrade to it."""
        if not is_upgrade(request):
            return _text(400, "Upgrade request required")
        try:
            location = await stream_url()
        except Exception as exc:  # the runtime's error, whatever its type, is the caller's answer
            log.warning("runtime %s failed: %s", what, exc)
            return _text(500, f"failed to get the {what} stream from the container runtime: {exc}")
        try:
            target = streaming_target(location)
        except ValueError as exc:
            return _text(500, str(exc))
        try:
            return await splice(request, target)
        except BackendError as exc:
            return _text(500, f"the container runtime's streaming server: {exc}")


def streaming_target(url: str) -> Target:
    """The runtime's streaming URL (``http://127.0.0.1:<port>/exec/<token>``) as a proxy target."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"the container runtime returned an unusable streaming URL {url!r}")
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    context: ssl.SSLContext | None = None
    if secure:
        # The runtime's streaming server uses a self-signed certificate on loopback.
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return Target(parts.hostname, port, path, context)


def _stream_options(query: Mapping[str, str]) -> tuple[bool, bool, bool, bool] | web.Response:
    """(tty, stdin, stdout, stderr) as upstream's ``remotecommand.NewOptions`` reads them.

    The kubelet's parameters are ``input``, ``output``, ``error`` and ``tty``; the API's
    names (``stdin``, ``stdout``, ``stderr``) are accepted too.
    """
    tty = _flag(query, "tty")
    stdin = _flag(query, "input") or _flag(query, "stdin")
    stdout = _flag(query, "output") or _flag(query, "stdout")
    stderr = (_flag(query, "error") or _flag(query, "stderr")) and not tty  # a terminal has no stderr
    if not (stdin or stdout or stderr):
        return _text(400, "you must specify at least 1 of stdin, stdout, stderr")
    return tty, stdin, stdout, stderr


def _ports(values: list[str]) -> list[int]:
    ports: list[int] = []
    for value in values:
        for item in value.split(","):
            if not item.strip():
                continue
            if not item.strip().isdigit() or not 0 < int(item) < 65536:
                raise ValueError(f"invalid port {item.strip()!r}: must be a number between 1 and 65535")
            ports.append(int(item))
    return ports


def _flag(query: Mapping[str, str], name: str) -> bool:
    return query.get(name, "").lower() in ("1", "true")


def _message(exc: LookupError) -> str:
    return str(exc.args[0]) if exc.args else "not found"


def _text(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message, content_type="text/plain")


def _server_context(cert_pem: bytes, key_pem: bytes, client_ca_pem: bytes) -> ssl.SSLContext:
    """TLS 1.2+, the serving chain, client certificates verified against the client CA if sent."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    load_pem_pair(context, cert_pem, key_pem)
    context.load_verify_locations(cadata=client_ca_pem.decode("ascii"))
    context.verify_mode = ssl.CERT_OPTIONAL
    context.set_alpn_protocols(["http/1.1"])
    return context


def prometheus_text(summary: dict[str, Any], pods: int) -> str:
    """Upstream's resource metrics (``/metrics/resource``) and pod counts, from a stats summary."""
    node = summary.get("node") or {}
    lines = [
        "# HELP kubelet_running_pods Number of pods that have a running pod sandbox",
        "# TYPE kubelet_running_pods gauge",
        f"kubelet_running_pods {pods}",
        "# HELP node_memory_working_set_bytes Current working set of the node in bytes",
        "# TYPE node_memory_working_set_bytes gauge",
        f"node_memory_working_set_bytes {int((node.get('memory') or {}).get('workingSetBytes') or 0)}",
        "# HELP container_cpu_usage_seconds_total Cumulative cpu time consumed by the container",
        "# TYPE container_cpu_usage_seconds_total counter",
    ]
    memory = [
        "# HELP container_memory_working_set_bytes Current working set of the container in bytes",
        "# TYPE container_memory_working_set_bytes gauge",
    ]
    for pod in summary.get("pods") or []:
        ref = pod.get("podRef") or {}
        for container in pod.get("containers") or []:
            labels = (
                f'container="{container.get("name", "")}",namespace="{ref.get("namespace", "")}",'
                f'pod="{ref.get("name", "")}"'
            )
            cpu = int((container.get("cpu") or {}).get("usageCoreNanoSeconds") or 0) / 1e9
            lines.append(f"container_cpu_usage_seconds_total{{{labels}}} {cpu}")
            working_set = int((container.get("memory") or {}).get("workingSetBytes") or 0)
            memory.append(f"container_memory_working_set_bytes{{{labels}}} {working_set}")
    return "\n".join(lines + memory) + "\n"
