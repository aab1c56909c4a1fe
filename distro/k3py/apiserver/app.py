"""The API server's aiohttp application: authentication, authorization, errors as ``Status``.

Every request is authenticated (``k3py.apiserver.authn``: client certificate, bearer token,
else anonymous), may impersonate another user, and is then authorized
(``k3py.apiserver.authz``) from its request info before any handler runs. The health
endpoints and /version answer anonymous clients because the default RBAC policy's
``system:public-info-viewer`` role allows it, as upstream. With an
:class:`~k3py.apiserver.aggregator.Aggregator`, its middleware runs next, after authorization:
it proxies the group-versions APIServices send to aggregated API servers and adds them to
discovery, before the local handlers (which would answer 404) see those requests.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from k3py.apiserver import errors
from k3py.apiserver.aggregator import Aggregator
from k3py.apiserver.authn import (
    ANONYMOUS,
    REQUEST_USER,
    TokenAuthenticator,
    User,
    authenticate_token,
    authenticated,
    bearer_token,
    impersonation,
)
from k3py.apiserver.authz import Attributes, Authorizer, forbidden
from k3py.apiserver.generic import ObjectStore
from k3py.apiserver.handlers import Api
from k3py.apiserver.kubelet_proxy.routes import KubeletClient, KubeletProxy
from k3py.apiserver.request import request_info
from k3py.apiserver.reviews import Review
from k3py.apiserver.tokens import TokenRequests
from k3py.storage import StorageError

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Security:
    """How requests are authenticated and authorized."""

    certificate_user: Callable[[web.Request], User | None]
    authorize: Authorizer
    tokens: Sequence[TokenAuthenticator] = ()
    api_audiences: Sequence[str] = ()
    anonymous: bool = True
    public_paths: frozenset[str] = frozenset()
    """Paths answered to anyone without authentication or authorization (``/cacerts``)."""

    async def user(self, request: web.Request) -> User:
        """The request's user; 401 for a credential nobody accepts (or none, without anonymous)."""
        if (user := self.certificate_user(request)) is not None:
            return authenticated(user)
        header = request.headers.get("Authorization", "")
        if header:
            token = bearer_token(header)
            audiences = self.api_audiences
            if token is not None and (
                found := await authenticate_token(token, self.tokens, audiences, audiences)
            ):
                return authenticated(found.user)
            raise errors.unauthorized()
        if not self.anonymous:
            raise errors.unauthorized()
        return ANONYMOUS

    def check(self, attrs: Attributes) -> None:
        decision = self.authorize(attrs)
        if not decision.allowed:
            log.debug("forbidden: %s %s (%s)", attrs.user.name, attrs.verb, decision.reason)
            raise forbidden(attrs, decision.reason)

    async def admit(self, request: web.Request) -> User:
        """Authenticate, apply impersonation, authorize: the user the handlers act for."""
        if request.path in self.public_paths:
            return ANONYMOUS
        user = await self.user(request)
        if (asked := impersonation(request.headers)) is not None:
            target, checks = asked
            for c in checks:
                self.check(
                    Attributes(
                        user,
                        "impersonate",
                        True,
                        api_group=c.group,
                        namespace=c.namespace,
                        resource=c.resource,
                        subresource=c.subresource,
                        name=c.name,
                    )
                )
            user = target
        self.check(Attributes.of(user, request_info(request.method, request.path, request.query)))
        return user


def status_response(exc: errors.ApiError) -> web.Response:
    return web.Response(
        body=orjson.dumps(exc.status()),
        status=exc.code,
        content_type="application/json",
        headers=exc.headers or None,
    )


def make_middleware(security: Security | None) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            if security is not None:
                request[REQUEST_USER] = await security.admit(request)
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
    store: ObjectStore,
    extra_routes: Sequence[web.RouteDef] = (),
    *,
    security: Security | None = None,
    reviews: Mapping[tuple[str, str], Review] | None = None,
    token_requests: TokenRequests | None = None,
    kubelet: KubeletClient | None = None,
    aggregator: Aggregator | None = None,
) -> web.Application:
    """``kubelet``: how to call kubelets; without it pods/log, exec, attach, portforward and
    the proxies are not served (404). ``aggregator``: proxies to aggregated API servers
    (started and closed by the caller); without it APIServices naming a Service are not served."""
    api = Api(store, store.registry, reviews, token_requests)
    middlewares = [make_middleware(security)]
    if aggregator is not None:
        middlewares.append(aggregator.middleware)
    app = web.Application(middlewares=middlewares, client_max_size=4 * 1024 * 1024)
    app.add_routes(extra_routes)
    if kubelet is not None:
        proxy = KubeletProxy(store, kubelet, security.check if security is not None else None)
        app.add_routes(proxy.routes())
        app.on_cleanup.append(lambda _: proxy.close())
    app.add_routes(api.routes())
    return app
