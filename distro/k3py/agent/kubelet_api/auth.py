"""Who may call the kubelet API, decided as upstream's kubelet decides.

Authentication: a client certificate issued by the cluster's client CA names the user (CN)
and groups (O), as the API server reads it (the API server itself comes as
``system:apiserver``); otherwise a bearer token is checked with a ``TokenReview``; anything
else is 401 (anonymous access is off, as K3s configures its kubelets).

Authorization: the request becomes attributes on this node's object, verb from the HTTP
method (GET ``get``, POST ``create``...) and subresource from the path — ``/stats/*``
``stats``, ``/metrics/*`` ``metrics``, ``/logs/*`` ``log``, ``/spec/*`` ``spec``,
``/checkpoint/*`` ``checkpoint``, everything else (exec, attach, portForward,
containerLogs, run) ``proxy``. ``/pods``, ``/healthz`` and ``/configz`` ask for their own
subresource first and fall back to ``proxy`` (upstream's fine-grained kubelet
authorization). :func:`api_authorizer` asks the API server with a ``SubjectAccessReview``
and caches answers briefly, as the kubelet's webhook authorizer does.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from k3py.client.rest import ApiStatusError, RestClient

log = logging.getLogger(__name__)

TOKEN_REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"
ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
ALLOWED_TTL = 300.0
DENIED_TTL = 30.0
TOKEN_TTL = 120.0

_METHOD_VERBS = {
    "GET": "get",
    "HEAD": "get",
    "POST": "create",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}
_PATH_SUBRESOURCES = (
    ("/stats", "stats"),
    ("/metrics", "metrics"),
    ("/logs", "log"),
    ("/spec", "spec"),
    ("/checkpoint", "checkpoint"),
)
_FINE_GRAINED = (("/pods", "pods"), ("/healthz", "healthz"), ("/configz", "configz"))


@dataclass(frozen=True)
class KubeletUser:
    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: dict[str, list[str]] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class KubeletAttributes:
    """A request as authorization sees it: ``<verb> nodes/<subresource> <name>``."""

    verb: str
    subresource: str
    name: str
    path: str
    resource: str = "nodes"

    def describe(self, user: KubeletUser) -> str:
        """upstream's 403 body: ``Forbidden (user=..., verb=..., resource=..., subresource=...)``."""
        return (
            f"Forbidden (user={user.name}, verb={self.verb}, resource={self.resource}, "
            f"subresource={self.subresource})"
        )


Authorizer = Callable[[KubeletUser, KubeletAttributes], Awaitable[bool]]


class TokenReviewer(Protocol):
    async def review_token(self, token: str) -> KubeletUser | None: ...


def _subpath(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def request_attributes(method: str, path: str, node_name: str) -> list[KubeletAttributes]:
    """The attributes to check, in order; the first one allowed admits the request."""
    verb = _METHOD_VERBS.get(method.upper(), method.lower())
    for prefix, subresource in _PATH_SUBRESOURCES:
        if _subpath(path, prefix):
            return [KubeletAttributes(verb, subresource, node_name, path)]
    proxy = KubeletAttributes(verb, "proxy", node_name, path)
    for prefix, subresource in _FINE_GRAINED:
        if _subpath(path, prefix):
            return [KubeletAttributes(verb, subresource, node_name, path), proxy]
    return [proxy]


class ApiAuthorizer:
    """TokenReview and SubjectAccessReview against the API server, with a small cache.

    Call it as an :data:`Authorizer`; :meth:`review_token` authenticates bearer tokens.
    """

    def __init__(self, api: RestClient, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.api = api
        self.clock = clock
        self._decisions: dict[tuple[Any, ...], tuple[float, bool]] = {}
        self._tokens: dict[str, tuple[float, KubeletUser | None]] = {}

    async def __call__(self, user: KubeletUser, attrs: KubeletAttributes) -> bool:
        key = (user.name, user.groups, user.uid, attrs.verb, attrs.resource, attrs.subresource, attrs.name)
        now = self.clock()
        cached = self._decisions.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        body = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": user.name,
                "groups": list(user.groups),
                "uid": user.uid,
                "extra": user.extra,
                "resourceAttributes": {
                    "verb": attrs.verb,
                    "group": "",
                    "version": "v1",
                    "resource": attrs.resource,
                    "subresource": attrs.subresource,
                    "name": attrs.name,
                },
            },
        }
        try:
            answer = await self.api.create(ACCESS_REVIEWS, body)
        except ApiStatusError as exc:
            log.warning("SubjectAccessReview failed: %s", exc)
            return False  # not cached: the next request asks again
        allowed = bool(answer.get("status", {}).get("allowed"))
        self._decisions[key] = (now + (ALLOWED_TTL if allowed else DENIED_TTL), allowed)
        return allowed

    async def review_token(self, token: str) -> KubeletUser | None:
        now = self.clock()
        digest = hashlib.sha256(token.encode()).hexdigest()  # tokens themselves are not kept
        cached = self._tokens.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
        try:
            answer = await self.api.create(TOKEN_REVIEWS, body)
        except ApiStatusError as exc:
            log.warning("TokenReview failed: %s", exc)
            return None
        status = answer.get("status", {})
        user: KubeletUser | None = None
        if status.get("authenticated"):
            info = status.get("user", {})
            user = KubeletUser(
                str(info.get("username", "")),
                tuple(info.get("groups") or ()),
                str(info.get("uid", "")),
                {k: list(v) for k, v in (info.get("extra") or {}).items()},
            )
        self._tokens[digest] = (now + TOKEN_TTL, user)
        return user


def api_authorizer(api: RestClient) -> ApiAuthorizer:
    """Authorize (and authenticate bearer tokens) through the API server, as upstream's webhook mode."""
    return ApiAuthorizer(api)
