"""The API server's aiohttp application: authentication, errors as ``Status``, routes.

Clients authenticate with a certificate signed by the cluster's client CA (checked during
the TLS handshake); the user is the certificate's CN and its groups the O values, as in
kube-apiserver. The health endpoints and /version answer anyone, as upstream's
``system:public-info-viewer`` role allows; everything else needs a user (401 otherwise).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson
from aiohttp import web

from k3py.api.resources import Registry
from k3py.apiserver import errors
from k3py.apiserver.generic import ObjectStore
from k3py.apiserver.handlers import Api
from k3py.apiserver.services import IPNetwork
from k3py.storage import Backend, StorageError

log = logging.getLogger(__name__)

PUBLIC_PATHS = ("/healthz", "/livez", "/readyz", "/version")
USER_KEY = web.AppKey("k3py.identity", object)
Identify = Callable[[web.Request], "tuple[str, list[str]] | None"]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _is_public(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in PUBLIC_PATHS)


def status_response(exc: errors.ApiError) -> web.Response:
    return web.Response(
        body=orjson.dumps(exc.status()),
        status=exc.code,
        content_type="application/json",
        headers=exc.headers or None,
    )


def make_middleware(identify: Identify | None) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            if identify is not None and not _is_public(request.path):
                user = identify(request)
                if user is None:
                    raise errors.unauthorized()
                request["user"] = user
            return await handler(request)
        except errors.ApiError as exc:
            return status_response(exc)
        except web.HTTPNotFound:
            return status_response(errors.not_found_path(request.path))
        except web.HTTPMethodNotAllowed:
            return status_response(errors.method_not_allowed(request.method))
        except StorageError as exc:
            log.warning("storage error on %s %s: %s", request.method, request.path, exc)
            return status_response(errors.internal(str(exc)))

    return middleware


def build_app(
    backend: Backend,
    extra_routes: Sequence[web.RouteDef] = (),
    *,
    identify: Identify | None = None,
    registry: Registry | None = None,
    service_cidr: IPNetwork | None = None,
) -> web.Application:
    registry = registry or Registry()
    api = Api(ObjectStore(backend, registry, service_cidr), registry)
    app = web.Application(middlewares=[make_middleware(identify)], client_max_size=4 * 1024 * 1024)
    app.add_routes(extra_routes)
    app.add_routes(api.routes())
    return app
