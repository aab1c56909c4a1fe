"""Bearer tokens the API server accepts, and the TokenRequest that issues them.

- Service-account tokens (JWTs signed by ``k3py.pki.TokenIssuer``): after the signature,
  issuer, audience and times check out, the token is alive only while what it names is: the
  service account with the same uid, and the pod, secret or node it is bound to (a pod being
  deleted ends it), as kube-apiserver's service-account authenticator checks on every request.
  A legacy (secret-based) token must still be the one stored in its secret.
- Bootstrap tokens (``<id>.<secret>``, Secret ``bootstrap-token-<id>`` in kube-system with
  ``usage-bootstrap-authentication: "true"``): user ``system:bootstrap:<id>`` in
  ``system:bootstrappers`` plus the secret's ``auth-extra-groups``, until its expiration.

``serviceaccounts/token`` (TokenRequest) issues a bound token for a service account, optionally
bound to a Pod, Secret or Node whose uid must match.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from k3py.api.resources import Resource
from k3py.api.validation import Cause
from k3py.apiserver import errors
from k3py.apiserver.authn import BOOTSTRAP_TOKEN, TokenRejected, TokenUser, User
from k3py.apiserver.generic import Obj, ObjectStore
from k3py.apiserver.node_authz import node_name as node_of
from k3py.pki import BoundObject, NodeRef, TokenError, TokenErrorReason, TokenIssuer, jointoken
from k3py.pki.serviceaccount import (
    DEFAULT_EXPIRATION_SECONDS,
    DISCOVERY_MAX_AGE_SECONDS,
    JWKS_PATH,
    MIN_EXPIRATION_SECONDS,
    OPENID_CONFIG_PATH,
    openid_configuration,
)

log = logging.getLogger(__name__)

BOOTSTRAP_SECRET_TYPE = "bootstrap.kubernetes.io/token"
BOOTSTRAP_GROUP = "system:bootstrappers"
EXTRA_GROUP = re.compile(r"^system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]$")
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
SERVER_TOKEN_USER = "system:bootstrap:k3py-server-token"
"""Who the server token authenticates as: a bootstrapper, allowed to ask for a node certificate."""
LEGACY_SECRET_TYPE = "kubernetes.io/service-account-token"
MAX_EXPIRATION_SECONDS = 1 << 32
BOUND_KINDS = {"Pod": ("", "v1", "pods"), "Secret": ("", "v1", "secrets"), "Node": ("", "v1", "nodes")}


class _Lookup:
    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    async def find(self, group: str, version: str, plural: str, namespace: str, name: str) -> Obj | None:
        resource = self.store.registry.lookup(group, version, plural)
        if resource is None or not name:
            return None
        return await self.store.find(resource, namespace if resource.namespaced else "", name)


def _uid(obj: Obj | None) -> str:
    return str(((obj or {}).get("metadata") or {}).get("uid") or "")


def _deleting(obj: Obj) -> bool:
    """Whether an object's deletion time has passed (a pod still shutting down keeps its tokens,
    as upstream: they end at its deletionTimestamp)."""
    stamp = (obj.get("metadata") or {}).get("deletionTimestamp")
    if not stamp:
        return False
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")) <= datetime.now(UTC)
    except ValueError:
        return True


def _secret_value(secret: Obj, key: str) -> str:
    encoded = (secret.get("data") or {}).get(key)
    if not isinstance(encoded, str):
        return ""
    try:
        return base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return ""


class ServiceAccountTokens(_Lookup):
    """The service-account token authenticator (a ``TokenAuthenticator``)."""

    def __init__(self, issuer: TokenIssuer, store: ObjectStore) -> None:
        super().__init__(store)
        self.issuer = issuer

    async def __call__(self, token: str, audiences: Sequence[str]) -> TokenUser | None:
        if token.count(".") != 2:
            return None
        try:
            claims = self.issuer.verify(token, audiences=audiences)
        except TokenError as exc:
            if exc.reason in (TokenErrorReason.MALFORMED, TokenErrorReason.WRONG_ISSUER):
                return None  # not a service-account token: another authenticator may know it
            log.debug("service-account token refused: %s", exc)
            raise TokenRejected(str(exc)) from None
        namespace = claims.namespace
        account = await self.find("", "v1", "serviceaccounts", namespace, claims.service_account_name)
        if account is None or _deleting(account):
            raise TokenRejected(f"service account {namespace}/{claims.service_account_name} is gone")
        if claims.service_account_uid and _uid(account) != claims.service_account_uid:
            raise TokenRejected(f"service account {namespace}/{claims.service_account_name} was recreated")
        if claims.legacy:
            secret = await self.find("", "v1", "secrets", namespace, claims.secret_name or "")
            if secret is None or _deleting(secret) or not _same(_secret_value(secret, "token"), token):
                raise TokenRejected("the token's secret is gone or holds another token")
        if (bound := claims.bound) is not None:
            group, version, plural = BOUND_KINDS[bound.kind]
            target = await self.find(group, version, plural, namespace, bound.name)
            if target is None or _deleting(target) or (bound.uid and _uid(target) != bound.uid):
                raise TokenRejected(f"the {bound.kind.lower()} {bound.name} the token is bound to is gone")
        return TokenUser(
            User(claims.username, claims.groups, claims.uid, claims.extra), claims.matched_audiences
        )


def _credential(token: str) -> str:
    """The credential of a join token (``K10<hash>::<credential>``), else the token itself."""
    try:
        return jointoken.parse(token).credential
    except jointoken.TokenFormatError:
        return token


class ServerToken:
    """The server token authenticator: agents join with it (a ``TokenAuthenticator``)."""

    USER = User(SERVER_TOKEN_USER, (BOOTSTRAP_GROUP, f"{BOOTSTRAP_GROUP}:k3py:server-token"))

    def __init__(self, token: jointoken.JoinToken) -> None:
        secret = token.server_secret
        assert secret is not None, "a server token"
        self.secret = secret

    async def __call__(self, token: str, audiences: Sequence[str]) -> TokenUser | None:
        try:
            given = jointoken.parse(token).server_secret
        except jointoken.TokenFormatError:
            return None
        if given is None:
            return None
        if _same(given, self.secret):
            return TokenUser(self.USER)
        if token.startswith((jointoken.PREFIX, f"{jointoken.SERVER_USER}:")):
            raise TokenRejected("wrong server token")
        return None  # a bare secret that is not the server's: not a server token at all


class BootstrapTokens(_Lookup):
    """The bootstrap token authenticator (a ``TokenAuthenticator``)."""

    async def __call__(self, token: str, audiences: Sequence[str]) -> TokenUser | None:
        match = BOOTSTRAP_TOKEN.match(_credential(token))
        if match is None:
            return None
        token_id, token_secret = match.groups()
        secret = await self.find("", "v1", "secrets", "kube-system", f"bootstrap-token-{token_id}")
        if secret is None or secret.get("type") != BOOTSTRAP_SECRET_TYPE or _deleting(secret):
            raise TokenRejected(f"no bootstrap token {token_id}")
        if _secret_value(secret, "token-id") != token_id:
            raise TokenRejected(f"bootstrap token {token_id}: the secret holds another token id")
        if not _same(_secret_value(secret, "token-secret"), token_secret):
            raise TokenRejected(f"bootstrap token {token_id}: wrong secret")
        if _secret_value(secret, "usage-bootstrap-authentication") != "true":
            raise TokenRejected(f"bootstrap token {token_id} is not for authentication")
        if expired(_secret_value(secret, "expiration")):
            raise TokenRejected(f"bootstrap token {token_id} has expired")
        groups = [BOOTSTRAP_GROUP]
        extra = _secret_value(secret, "auth-extra-groups")
        for group in (g.strip() for g in extra.split(",")) if extra else ():
            if not EXTRA_GROUP.match(group):
                raise TokenRejected(f"bootstrap token {token_id}: invalid extra group {group!r}")
            if group not in groups:
                groups.append(group)
        return TokenUser(User(f"system:bootstrap:{token_id}", tuple(groups)))


def expired(expiration: str, now: datetime | None = None) -> bool:
    """Whether an RFC 3339 ``expiration`` has passed; an unreadable one counts as expired."""
    if not expiration:
        return False
    if not RFC3339.match(expiration):
        return True
    try:
        when = datetime.fromisoformat(expiration.replace("Z", "+00:00"))
    except ValueError:
        return True
    return when <= (now or datetime.now(UTC))


def _same(stored: str, given: str) -> bool:
    """Constant-time comparison of two secrets, whatever characters they hold."""
    return hmac.compare_digest(
        stored.encode("utf-8", "surrogatepass"), given.encode("utf-8", "surrogatepass")
    )


def _invalid(field: str, value: Any, detail: str) -> Cause:
    return Cause("FieldValueInvalid", f"Invalid value: {value}: {detail}", field)


class TokenRequests(_Lookup):
    """``POST .../serviceaccounts/<name>/token``: a bound token for that service account."""

    def __init__(self, issuer: TokenIssuer, store: ObjectStore) -> None:
        super().__init__(store)
        self.issuer = issuer

    async def _node_may_request(self, node: str, namespace: str, account: str, ref: Obj) -> None:
        """NodeRestriction for TokenRequest: a node asks only for tokens bound to its own pods."""

        def refuse(why: str) -> errors.ApiError:
            return errors.ApiError(
                403,
                "Forbidden",
                f'serviceaccounts "{account}" is forbidden: {why}',
                {"name": account, "kind": "serviceaccounts"},
            )

        if ref.get("kind") != "Pod":
            raise refuse("node requested token not bound to a pod")
        if not ref.get("uid"):
            raise refuse("node requested token with a pod binding without a uid")
        pod = await self.find("", "v1", "pods", namespace, str(ref.get("name") or ""))
        if pod is None or (pod.get("spec") or {}).get("nodeName") != node:
            raise refuse("node requested token bound to a pod scheduled on a different node")

    async def create(
        self, accounts: Resource, namespace: str, name: str, body: Obj, requester: User | None = None
    ) -> Obj:
        spec = body.get("spec") if isinstance(body.get("spec"), dict) else {}
        assert isinstance(spec, dict)
        expiration = spec.get("expirationSeconds")
        if expiration is None:
            expiration = DEFAULT_EXPIRATION_SECONDS
        if not isinstance(expiration, int) or isinstance(expiration, bool):
            raise errors.bad_request("spec.expirationSeconds must be an integer")
        causes: list[Cause] = []
        if expiration < MIN_EXPIRATION_SECONDS:
            causes.append(
                _invalid(
                    "spec.expirationSeconds", expiration, "may not specify a duration less than 10 minutes"
                )
            )
        elif expiration > MAX_EXPIRATION_SECONDS:
            causes.append(
                _invalid(
                    "spec.expirationSeconds",
                    expiration,
                    "may not specify a duration larger than 2^32 seconds",
                )
            )
        ref = spec.get("boundObjectRef") or {}
        if ref and ref.get("kind") not in BOUND_KINDS:
            causes.append(
                Cause(
                    "FieldValueNotSupported",
                    f'Unsupported value: "{ref.get("kind")}": supported values: "Node", "Pod", "Secret"',
                    "spec.boundObjectRef.kind",
                )
            )
        if causes:
            raise errors.invalid("TokenRequest", "authentication.k8s.io", name, causes)
        if requester is not None and (node_user := node_of(requester)) is not None:
            await self._node_may_request(node_user, namespace, name, ref)
        account = await self.store.get(accounts, namespace, name)
        bound: BoundObject | None = None
        node: NodeRef | None = None
        if ref:
            kind = str(ref["kind"])
            group, version, plural = BOUND_KINDS[kind]
            target = await self.find(group, version, plural, namespace, str(ref.get("name") or ""))
            if target is None:
                resource = self.store.registry.lookup(group, version, plural)
                assert resource is not None
                raise errors.not_found(resource, str(ref.get("name") or ""))
            if ref.get("uid") and ref["uid"] != _uid(target):
                raise errors.ApiError(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {plural} "{ref.get("name")}": the UID in the bound '
                    f"object reference ({ref['uid']}) does not match the UID in record ({_uid(target)}). "
                    "The object might have been deleted and then recreated",
                )
            if kind == "Pod" and ((target.get("spec") or {}).get("serviceAccountName") or "default") != name:
                raise errors.bad_request(
                    f'cannot bind token for serviceaccount "{name}" to pod running with different '
                    "serviceaccount name."
                )
            bound = BoundObject(kind, str(ref.get("name")), _uid(target))  # type: ignore[arg-type]
            node_name = ((target.get("spec") or {}).get("nodeName") or "") if kind == "Pod" else ""
            if node_name:
                node_obj = await self.find("", "v1", "nodes", "", node_name)
                node = NodeRef(node_name, _uid(node_obj))
        audiences = [str(a) for a in spec.get("audiences") or []]
        issued = self.issuer.issue(
            namespace,
            name,
            _uid(account),
            audiences=audiences,
            expiration_seconds=expiration,
            bound=bound,
            node=node,
        )
        shown_spec = {
            "audiences": audiences or list(self.issuer.api_audiences),
            "expirationSeconds": expiration,
            "boundObjectRef": ref or None,
        }
        return {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": None},
            "spec": shown_spec,
            "status": {
                "token": issued.token,
                "expirationTimestamp": issued.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
        }


def discovery_routes(issuer: TokenIssuer, jwks_uri: str) -> list[web.RouteDef]:
    """The OIDC discovery document and key set (``system:service-account-issuer-discovery``
    lets every service account read them), or none when the issuer cannot be discovered."""
    try:
        configuration = orjson.dumps(openid_configuration(issuer.issuer, jwks_uri))
    except ValueError as exc:
        log.warning("not serving OIDC discovery: %s", exc)
        return []
    keys = orjson.dumps(issuer.jwks())
    cache = {"Cache-Control": f"public, max-age={DISCOVERY_MAX_AGE_SECONDS}"}

    async def configuration_document(request: web.Request) -> web.Response:
        return web.Response(body=configuration, content_type="application/json", headers=cache)

    async def key_set(request: web.Request) -> web.Response:
        return web.Response(body=keys, content_type="application/jwk-set+json", headers=cache)

    return [web.get(OPENID_CONFIG_PATH, configuration_document), web.get(JWKS_PATH, key_set)]


CACERTS_PATH = "/cacerts"
"""Where a joining node fetches the CA bundle (K3s's path) to check it against its token's hash;
served to anyone, before authentication, since a node cannot yet trust the server."""


CLIENT_CA_PATH = "/v1-k3py/client-ca.crt"
"""The CA that signs client certificates: kubelets check the API server's calls against it.
Public like ``/cacerts``: a CA certificate is no secret."""


def cacerts_route(ca_bundle: bytes, path: str = CACERTS_PATH) -> web.RouteDef:
    async def cacerts(request: web.Request) -> web.Response:
        return web.Response(body=ca_bundle, content_type="text/plain")

    return web.get(path, cacerts)
