"""Authentication: who sent a request, as kube-apiserver decides it.

In order: a client certificate that chained to the client CA during the TLS handshake (CN is
the user, every O a group), then a bearer token (each token authenticator either claims it
or passes; a token nobody accepts is a 401, never anonymous), then anonymous
(``system:anonymous`` in ``system:unauthenticated``), which RBAC limits to what the
public-info-viewer role grants. Every authenticated user is also in ``system:authenticated``.

Impersonation (``Impersonate-User``, ``-Group``, ``-Uid``, ``-Extra-<key>`` headers) swaps the
user for the one named, after the authorizer allows the ``impersonate`` verb on each part,
as ``kubectl --as`` expects.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote

from aiohttp import web
from multidict import CIMultiDictProxy

from k3py.apiserver import errors

AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
MASTERS = "system:masters"
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
SERVICE_ACCOUNTS_GROUP = "system:serviceaccounts"


@dataclass(frozen=True)
class User:
    """An authenticated identity: name, groups, uid and extra values (``user.Info``)."""

    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: tuple[tuple[str, tuple[str, ...]], ...] = field(default=())

    @property
    def extra_dict(self) -> dict[str, list[str]]:
        return {key: list(values) for key, values in self.extra}

    def user_info(self) -> dict[str, object]:
        """The ``UserInfo`` object of authentication.k8s.io/v1 (empty fields omitted)."""
        info: dict[str, object] = {"username": self.name}
        if self.uid:
            info["uid"] = self.uid
        if self.groups:
            info["groups"] = list(self.groups)
        if self.extra:
            info["extra"] = self.extra_dict
        return info

    @classmethod
    def from_user_info(cls, info: Mapping[str, object]) -> User:
        groups = info.get("groups") or []
        extra = info.get("extra") or {}
        return cls(
            name=str(info.get("username") or ""),
            groups=tuple(str(g) for g in groups) if isinstance(groups, list) else (),
            uid=str(info.get("uid") or ""),
            extra=tuple(
                (str(k), tuple(str(v) for v in vs)) for k, vs in sorted(extra.items()) if isinstance(vs, list)
            )
            if isinstance(extra, dict)
            else (),
        )


ANONYMOUS = User("system:anonymous", (UNAUTHENTICATED,))
REQUEST_USER = web.RequestKey("k3py.user", User)
"""Where the API server's middleware leaves each request's user (``request[REQUEST_USER]``)."""


def authenticated(user: User) -> User:
    """``user`` with ``system:authenticated`` added, as upstream's group adder does."""
    if user.name == ANONYMOUS.name or AUTHENTICATED in user.groups:
        return user
    return User(user.name, (*user.groups, AUTHENTICATED), user.uid, user.extra)


def service_account_user(
    namespace: str, name: str, uid: str = "", extra: Sequence[tuple[str, tuple[str, ...]]] = ()
) -> User:
    return User(
        f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}",
        (SERVICE_ACCOUNTS_GROUP, f"{SERVICE_ACCOUNTS_GROUP}:{namespace}"),
        uid,
        tuple(extra),
    )


def split_service_account(username: str) -> tuple[str, str] | None:
    """(namespace, name) of ``system:serviceaccount:<ns>:<name>``; None for other users."""
    if not username.startswith(SERVICE_ACCOUNT_PREFIX):
        return None
    namespace, sep, name = username[len(SERVICE_ACCOUNT_PREFIX) :].partition(":")
    if not (sep and namespace and name) or ":" in name:
        return None
    return namespace, name


class TokenRejected(Exception):
    """A bearer token that a token authenticator recognised but found invalid."""


@dataclass(frozen=True)
class TokenUser:
    """Who a bearer token names, and the audiences it was accepted for."""

    user: User
    audiences: tuple[str, ...] = ()
    """Empty from an audience-agnostic authenticator (bootstrap and server tokens): such a token
    is good for the API's own audiences only (upstream's ``WrapAudienceAgnosticToken``)."""


TokenAuthenticator = Callable[[str, Sequence[str]], Awaitable[TokenUser | None]]
"""(token, audiences the caller accepts) -> the token's user; None when the token is not of
its kind. Raises :class:`TokenRejected` for a token of its kind that is not valid."""


async def authenticate_token(
    token: str,
    authenticators: Sequence[TokenAuthenticator],
    audiences: Sequence[str],
    api_audiences: Sequence[str],
) -> TokenUser | None:
    """The user a bearer token names for ``audiences``, or None when no authenticator accepts it."""
    for authenticator in authenticators:
        try:
            found = await authenticator(token, audiences)
        except TokenRejected:
            return None
        if found is None:
            continue
        if found.audiences:
            return found
        shared = tuple(a for a in audiences if a in api_audiences)
        if shared:
            return TokenUser(found.user, shared)
        return None  # an audience-agnostic token asked for by another audience
    return None


def bearer_token(authorization: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; None for other schemes."""
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    return token or None


# -- impersonation ---------------------------------------------------------------------------

IMPERSONATE_USER = "Impersonate-User"
IMPERSONATE_GROUP = "Impersonate-Group"
IMPERSONATE_UID = "Impersonate-Uid"
IMPERSONATE_EXTRA_PREFIX = "impersonate-extra-"


@dataclass(frozen=True)
class ImpersonationCheck:
    """One thing the requester must be allowed to impersonate (resource attributes)."""

    resource: str
    name: str
    group: str = ""
    namespace: str = ""
    subresource: str = ""


def impersonation(headers: CIMultiDictProxy[str]) -> tuple[User, list[ImpersonationCheck]] | None:
    """The user a request asks to act as, and what must be authorized; None without headers.

    Groups, uid or extras without a user are a 400, as
    upstream answers. A service account user is checked as ``serviceaccounts`` in its namespace.
    """
    getall = headers.getall
    names = getall(IMPERSONATE_USER, [])
    groups = [g for g in getall(IMPERSONATE_GROUP, [])]
    uids = getall(IMPERSONATE_UID, [])
    extra: dict[str, list[str]] = {}
    for key in headers:
        lowered = key.lower()
        if lowered.startswith(IMPERSONATE_EXTRA_PREFIX):
            extra_key = unquote(lowered[len(IMPERSONATE_EXTRA_PREFIX) :])
            extra[extra_key] = [v for v in getall(key, [])]
    if not names:
        if groups or uids or extra:
            raise errors.bad_request(
                "requested impersonation of groups, uid or extra values without impersonating a user"
            )
        return None
    if len(names) > 1 or len(uids) > 1:
        raise errors.bad_request("only one user and one uid may be impersonated")
    name = names[0]
    checks: list[ImpersonationCheck] = []
    if sa := split_service_account(name):
        checks.append(ImpersonationCheck("serviceaccounts", sa[1], namespace=sa[0]))
        if not groups:
            groups = [SERVICE_ACCOUNTS_GROUP, f"{SERVICE_ACCOUNTS_GROUP}:{sa[0]}"]
    else:
        checks.append(ImpersonationCheck("users", name))
    checks.extend(ImpersonationCheck("groups", g) for g in getall(IMPERSONATE_GROUP, []))
    if uids:
        checks.append(ImpersonationCheck("uids", uids[0], group="authentication.k8s.io"))
    for key, values in extra.items():
        checks.extend(
            ImpersonationCheck("userextras", v, group="authentication.k8s.io", subresource=key)
            for v in values
        )
    if name == ANONYMOUS.name:
        if UNAUTHENTICATED not in groups:
            groups.append(UNAUTHENTICATED)
    elif AUTHENTICATED not in groups and UNAUTHENTICATED not in groups:
        groups.append(AUTHENTICATED)
    extras = tuple((k, tuple(v)) for k, v in sorted(extra.items()))
    return User(name, tuple(groups), uids[0] if uids else "", extras), checks


BOOTSTRAP_TOKEN = re.compile(r"^([a-z0-9]{6})\.([a-z0-9]{16})$")
"""A bootstrap token: ``<id>.<secret>``, kept as Secret ``bootstrap-token-<id>`` in kube-system."""
