"""The embedded registry mirror: a read-only OCI distribution API over the node's air-gap images.

K3s's ``--embedded-registry`` lets each node serve the images it already holds, and points
containerd at that mirror before the real registry. k3py's serves what
:mod:`k3py.agent.registry_content` indexed from ``<data-dir>/agent/images``, on loopback
inside the node (containerd runs in the same network namespace), over plain HTTP. containerd
learns of it from ``hosts.toml`` files (:mod:`k3py.agent.registry_hosts`), and so a pull of an
imported image (``imagePullPolicy: Always``) resolves and fetches through it on a node that
reaches no registry; anything the mirror does not hold answers 404 and containerd goes on to
the next host.

Routes (the OCI distribution spec's pull side)::

    GET       /v2/                                   200 {}
    GET|HEAD  /v2/<name>/manifests/<tag or digest>   the manifest or index as stored
    GET|HEAD  /v2/<name>/blobs/<digest>              the blob (Range: bytes=… honoured)

containerd adds ``?ns=<registry>`` to every request it sends a mirror: ``<name>`` is the path
inside that registry (``e2e-test-images/agnhost`` with ``ns=registry.k8s.io``;
``library/busybox`` with ``ns=docker.io``). Without ``ns`` the name is Docker Hub's.
Anything unknown is a 404 with the distribution error body (``NAME_UNKNOWN``,
``MANIFEST_UNKNOWN``, ``BLOB_UNKNOWN``); writes are 405 ``UNSUPPORTED``.

The last requests are kept in :attr:`RegistryMirror.requests` (method, path, status), which
is what tells that a pull really went through the mirror.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from k3py.agent.registry_content import BlobSource, Catalog

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

DOCKER_HUB: Final = "docker.io"
DOCKER_HUB_ALIASES: Final = frozenset({"registry-1.docker.io", "index.docker.io"})
API_HEADERS: Final = {"Docker-Distribution-API-Version": "registry/2.0"}
CHUNK: Final = 1 << 20
REQUEST_LOG: Final = 1000
SHUTDOWN_GRACE: Final = 3.0
_NAME: Final = re.compile(
    r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"
)
_RANGE: Final = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass(frozen=True)
class MirrorRequest:
    """One request the mirror answered."""

    method: str
    path: str
    ns: str
    status: int


class RegistryMirror:
    """The mirror's HTTP server: ``await mirror.start()`` … ``await mirror.stop()``."""

    def __init__(self, catalog: Catalog, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.catalog = catalog
        self.host = host
        self.port = port
        self.requests: collections.deque[MirrorRequest] = collections.deque(maxlen=REQUEST_LOG)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``: what ``hosts.toml`` names (the bound port once started)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._record])
        app.add_routes(
            [
                web.get("/v2/", self.base),
                web.get("/v2", self.base),
                web.get(r"/v2/{name:.+}/manifests/{reference}", self.manifest),
                web.get(r"/v2/{name:.+}/blobs/{digest}", self.blob),
                web.route("*", r"/v2/{tail:.*}", self.unsupported),
            ]
        )
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(
            self.app(), access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_GRACE
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]  # the port bound, when 0 asked for any
        log.info(
            "Registry mirror listening on %s for %s", self.url, ", ".join(sorted(self.catalog.registries()))
        )

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @web.middleware
    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # aiohttp's own 404/405 for paths outside the routes
            response = exc
        self.requests.append(
            MirrorRequest(request.method, request.path, request.query.get("ns", ""), response.status)
        )
        log.debug("Registry mirror: %s %s → %d", request.method, request.path_qs, response.status)
        return response

    # -- handlers --------------------------------------------------------------------------------

    async def base(self, request: web.Request) -> web.Response:
        return web.json_response({}, headers=API_HEADERS)

    async def unsupported(self, request: web.Request) -> web.Response:
        if request.method in ("GET", "HEAD"):
            return _error(404, "NAME_UNKNOWN", "repository name not known to registry")
        return _error(405, "UNSUPPORTED", "the operation is unsupported: this mirror is read-only")

    async def manifest(self, request: web.Request) -> web.StreamResponse:
        repository = _repository(request)
        reference = request.match_info["reference"]
        if repository is None or repository not in self.catalog.repositories:
            return _error(404, "NAME_UNKNOWN", "repository name not known to registry", name=repository)
        found = self.catalog.manifest(repository, reference)
        if found is None:
            return _error(404, "MANIFEST_UNKNOWN", "manifest unknown", name=repository, reference=reference)
        headers = {
            **API_HEADERS,
            "Content-Type": found.media_type,
            "Docker-Content-Digest": found.digest,
            "Content-Length": str(found.source.size),
        }
        if request.method == "HEAD":
            return await _head(request, headers)
        data = await asyncio.to_thread(found.source.read)
        return web.Response(body=data, headers=headers)

    async def blob(self, request: web.Request) -> web.StreamResponse:
        repository = _repository(request)
        digest = request.match_info["digest"]
        if repository is None or repository not in self.catalog.repositories:
            return _error(404, "NAME_UNKNOWN", "repository name not known to registry", name=repository)
        source = self.catalog.blob(repository, digest)
        if source is None:
            return _error(404, "BLOB_UNKNOWN", "blob unknown to registry", name=repository, digest=digest)
        start, end = 0, source.size
        status = 200
        headers = {
            **API_HEADERS,
            "Content-Type": "application/octet-stream",
            "Docker-Content-Digest": digest,
            "Accept-Ranges": "bytes",
        }
        if "Range" in request.headers:
            wanted = _byte_range(request.headers["Range"], source.size)
            if wanted is None:
                unsatisfiable = {"Content-Range": f"bytes */{source.size}"}
                return _error(416, "BLOB_UNKNOWN", "requested range not satisfiable", headers=unsatisfiable)
            (start, end), status = wanted, 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{source.size}"
        headers["Content-Length"] = str(end - start)
        if request.method == "HEAD":
            return await _head(request, headers, status)
        response = web.StreamResponse(status=status, headers=headers)
        await response.prepare(request)
        await _send(response, source, start, end)
        await response.write_eof()
        return response


def _repository(request: web.Request) -> str | None:
    """``<registry>/<name>`` for the request, or None when the name is not a valid one."""
    name = request.match_info["name"]
    if _NAME.match(name) is None:
        return None
    registry = request.query.get("ns") or DOCKER_HUB
    if registry in DOCKER_HUB_ALIASES:
        registry = DOCKER_HUB
    return f"{registry}/{name}"


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    """``bytes=a-b``, ``bytes=a-`` or ``bytes=-n`` as [start, end) inside ``size``, else None."""
    match = _RANGE.match(header.strip())
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.group(1), match.group(2)
    if first == "":
        start, end = max(0, size - int(last)), size
    else:
        start, end = int(first), (min(size, int(last) + 1) if last else size)
    return (start, end) if start < end else None


async def _head(request: web.Request, headers: dict[str, str], status: int = 200) -> web.StreamResponse:
    """A HEAD answer that keeps the ``Content-Length`` of the body a GET would send."""
    response = web.StreamResponse(status=status, headers=headers)
    await response.prepare(request)
    await response.write_eof()
    return response


async def _send(response: web.StreamResponse, source: BlobSource, start: int, end: int) -> None:
    with await asyncio.to_thread(source.path.open, "rb") as file:
        await asyncio.to_thread(file.seek, source.offset + start)
        left = end - start
        while left > 0:
            chunk = await asyncio.to_thread(file.read, min(CHUNK, left))
            if not chunk:
                raise ConnectionResetError(f"{source.path} ended {left} bytes early")
            await response.write(chunk)
            left -= len(chunk)


def _error(
    status: int, code: str, message: str, *, headers: dict[str, str] | None = None, **detail: str | None
) -> web.Response:
    body = {"errors": [{"code": code, "message": message, "detail": {k: v for k, v in detail.items() if v}}]}
    return web.json_response(body, status=status, headers={**API_HEADERS, **(headers or {})})
