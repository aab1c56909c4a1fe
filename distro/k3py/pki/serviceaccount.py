"""Service-account tokens: the signing key, issuing and verifying JWTs, OIDC discovery.

K3s keeps one RSA key in ``server/tls/service.key``. :func:`ensure_service_account_key`
creates it on the first run and reuses it afterwards; a file that cannot be read or parsed
is a :class:`PkiError` and is never replaced, since every token in the field was signed with it.

A :class:`TokenIssuer` signs and verifies tokens as kube-apiserver does (pkg/serviceaccount):

- :meth:`~TokenIssuer.issue` makes a bound token (TokenRequest, projected volumes): RS256,
  header ``{alg, kid}``, claims iss, sub, aud, exp, iat, nbf, jti and ``kubernetes.io``,
  which names the namespace, the service account and the pod, secret or node it is bound to.
- :meth:`~TokenIssuer.issue_legacy` makes a secret-based token (iss ``kubernetes/serviceaccount``,
  no expiry).
- :meth:`~TokenIssuer.verify` checks, in upstream's order: the shape and the (still
  unverified) issuer, the algorithm, the key id and signature, the claims, the audience,
  then the times with go-jose's 60-second leeway. It returns :class:`ServiceAccountClaims`,
  which also derive the user the API server authenticates. It does not look up the service
  account or the bound object; the API server does that against its store.

:func:`openid_configuration` and :meth:`TokenIssuer.jwks` are the documents upstream serves
at :data:`OPENID_CONFIG_PATH` and :data:`JWKS_PATH`.
"""

from __future__ import annotations

import hashlib
import logging
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal, NamedTuple
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from k3py.pki import certs, jws
from k3py.pki.errors import PkiError
from k3py.pki.files import KEY_MODE, ensure_dir, read_optional, write_atomic
from k3py.pki.jws import TokenError, TokenErrorReason

log = logging.getLogger(__name__)

KEY_FILE = "service.key"
KEY_BITS = 2048
ALGORITHM = "RS256"

DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"  # what K3s passes to the apiserver
LEGACY_ISSUER = "kubernetes/serviceaccount"
LEEWAY = timedelta(seconds=60)  # go-jose's jwt.DefaultLeeway, on exp, nbf and iat

# TokenRequest limits and defaults (pkg/apis/authentication, pkg/serviceaccount/claims.go);
# the API server enforces them, issue() only needs a positive lifetime.
MIN_EXPIRATION_SECONDS = 600
DEFAULT_EXPIRATION_SECONDS = 3600
WARN_ONLY_EXPIRATION_SECONDS = 3600 + 7  # a kubelet asking for this gets the extended lifetime
EXTENDED_EXPIRATION_SECONDS = 365 * 24 * 3600  # ... and a warnafter at the lifetime it asked for

OPENID_CONFIG_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/openid/v1/jwks"
DISCOVERY_MAX_AGE_SECONDS = 3600

USERNAME_PREFIX = "system:serviceaccount:"
ALL_SERVICE_ACCOUNTS_GROUP = "system:serviceaccounts"
EXTRA_CREDENTIAL_ID = "authentication.kubernetes.io/credential-id"
EXTRA_POD_NAME = "authentication.kubernetes.io/pod-name"
EXTRA_POD_UID = "authentication.kubernetes.io/pod-uid"
EXTRA_NODE_NAME = "authentication.kubernetes.io/node-name"
EXTRA_NODE_UID = "authentication.kubernetes.io/node-uid"

_LEGACY_NAMESPACE = "kubernetes.io/serviceaccount/namespace"
_LEGACY_SECRET = "kubernetes.io/serviceaccount/secret.name"
_LEGACY_SA_NAME = "kubernetes.io/serviceaccount/service-account.name"
_LEGACY_SA_UID = "kubernetes.io/serviceaccount/service-account.uid"

BoundKind = Literal["Pod", "Secret", "Node"]


@dataclass(frozen=True, slots=True)
class BoundObject:
    """The object a bound token dies with (TokenRequest's boundObjectRef)."""

    kind: BoundKind
    name: str
    uid: str


@dataclass(frozen=True, slots=True)
class NodeRef:
    """The node a pod-bound token's pod runs on (or the node a node-bound token names)."""

    name: str
    uid: str = ""


class IssuedToken(NamedTuple):
    token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceAccountClaims:
    """What a verified token says, and the user kube-apiserver derives from it."""

    issuer: str
    namespace: str
    service_account_name: str
    service_account_uid: str
    audiences: tuple[str, ...]  # the token's; the API audiences for a token without aud
    matched_audiences: tuple[str, ...]  # those of them that were requested
    bound: BoundObject | None = None
    secret_name: str | None = None  # legacy tokens only
    node: NodeRef | None = None
    issued_at: datetime | None = None
    expires_at: datetime | None = None  # None for legacy tokens
    warn_after: datetime | None = None
    stale: bool = False  # past warn_after: upstream records an audit annotation
    jti: str | None = None

    @property
    def legacy(self) -> bool:
        return self.secret_name is not None

    @property
    def username(self) -> str:
        return service_account_username(self.namespace, self.service_account_name)

    @property
    def uid(self) -> str:
        return self.service_account_uid

    @property
    def groups(self) -> tuple[str, ...]:
        return (ALL_SERVICE_ACCOUNTS_GROUP, f"{ALL_SERVICE_ACCOUNTS_GROUP}:{self.namespace}")

    @property
    def extra(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """Upstream's ``ServiceAccountInfo.UserInfo().Extra``, sorted by key."""
        extra: dict[str, tuple[str, ...]] = {}
        if self.bound is not None and self.bound.kind == "Pod" and self.bound.name and self.bound.uid:
            extra[EXTRA_POD_NAME] = (self.bound.name,)
            extra[EXTRA_POD_UID] = (self.bound.uid,)
        if self.jti:
            extra[EXTRA_CREDENTIAL_ID] = (f"JTI={self.jti}",)
        if self.node is not None and self.node.name:
            extra[EXTRA_NODE_NAME] = (self.node.name,)
            if self.node.uid:
                extra[EXTRA_NODE_UID] = (self.node.uid,)
        return tuple(sorted(extra.items()))

    def user_info(self) -> dict[str, object]:
        """The authentication.k8s.io/v1 ``UserInfo`` (without ``system:authenticated``)."""
        info: dict[str, object] = {"username": self.username, "uid": self.uid, "groups": list(self.groups)}
        if self.extra:
            info["extra"] = {key: list(values) for key, values in self.extra}
        return info


def service_account_username(namespace: str, name: str) -> str:
    return f"{USERNAME_PREFIX}{namespace}:{name}"


@dataclass(frozen=True, slots=True)
class ServiceAccountKey:
    """The signing key and its key id (upstream's ``keyIDFromPublicKey``)."""

    path: Path | None
    private_key: rsa.RSAPrivateKey
    key_id: str
    created: bool = False  # True when this run generated it

    @classmethod
    def from_private_key(
        cls, private_key: rsa.RSAPrivateKey, path: Path | None = None, *, created: bool = False
    ) -> ServiceAccountKey:
        return cls(path, private_key, key_id(private_key.public_key()), created)

    def jwk(self) -> dict[str, str]:
        """The public key as upstream's JWKS lists it."""
        numbers = self.private_key.public_key().public_numbers()
        return {
            "use": "sig",
            "kty": "RSA",
            "kid": self.key_id,
            "alg": ALGORITHM,
            "n": jws.b64_uint(numbers.n),
            "e": jws.b64_uint(numbers.e),
        }


def key_id(public_key: rsa.RSAPublicKey) -> str:
    """base64url (unpadded) of the SHA-256 of the DER SubjectPublicKeyInfo."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return jws.b64(hashlib.sha256(der).digest())


def ensure_service_account_key(tls_dir: Path) -> ServiceAccountKey:
    """Reuse ``tls_dir/service.key`` or, when there is none, create it (RSA 2048, mode 0600)."""
    ensure_dir(tls_dir, mode=0o700)
    path = tls_dir / KEY_FILE
    data = read_optional(path)
    if data is None:
        log.info("creating the service-account signing key %s", path)
        new = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
        write_atomic(path, certs.key_to_pem(new), KEY_MODE)
        return ServiceAccountKey.from_private_key(new, path, created=True)
    key = certs.parse_key(path, data)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise PkiError(path, "not an RSA key; service-account tokens are signed with RS256, which needs one")
    if key.key_size < KEY_BITS:
        raise PkiError(path, f"the RSA key has {key.key_size} bits; at least {KEY_BITS} are required")
    return ServiceAccountKey.from_private_key(key, path)


class TokenIssuer:
    """Signs and verifies service-account tokens with one key (see the module docstring)."""

    def __init__(
        self, key: ServiceAccountKey, *, issuer: str = DEFAULT_ISSUER, api_audiences: Sequence[str] = ()
    ) -> None:
        if not issuer or issuer == LEGACY_ISSUER:
            raise ValueError(f"invalid service-account issuer {issuer!r}")
        self.key = key
        self.issuer = issuer
        self.api_audiences: tuple[str, ...] = _audience_list(api_audiences) or (issuer,)
        self._public_key = key.private_key.public_key()

    def issue(
        self,
        namespace: str,
        sa_name: str,
        sa_uid: str,
        *,
        audiences: Sequence[str] = (),
        expiration_seconds: int = DEFAULT_EXPIRATION_SECONDS,
        bound: BoundObject | None = None,
        node: NodeRef | None = None,
        warn_after_seconds: int | None = None,
        now: datetime | None = None,
    ) -> IssuedToken:
        """A bound token, as TokenRequest returns it (no audiences: the API audiences).

        ``node`` adds the pod's node to a pod-bound token; a token bound to a node itself
        takes ``bound=BoundObject("Node", ...)``. ``warn_after_seconds`` sets ``warnafter``.
        """
        now = _now(now)
        _require_names(namespace=namespace, sa_name=sa_name, sa_uid=sa_uid)
        if expiration_seconds < 1:
            raise ValueError(f"expiration_seconds must be positive, not {expiration_seconds}")
        if node is not None and (bound is None or bound.kind != "Pod"):
            raise ValueError("node goes with a pod-bound token; bind to a node with BoundObject('Node', ...)")
        issued = math.floor(now.timestamp())
        expires = math.floor((now + timedelta(seconds=expiration_seconds)).timestamp())
        k8s: dict[str, object] = {"namespace": namespace, "serviceaccount": {"name": sa_name, "uid": sa_uid}}
        if bound is not None:
            k8s[bound.kind.lower()] = _ref(bound.name, bound.uid)
        if node is not None:
            k8s["node"] = _ref(node.name, node.uid)
        if warn_after_seconds:
            k8s["warnafter"] = math.floor((now + timedelta(seconds=warn_after_seconds)).timestamp())
        claims = {
            "aud": list(_audience_list(audiences) or self.api_audiences),
            "exp": expires,
            "iat": issued,
            "iss": self.issuer,
            "jti": str(uuid.uuid4()),
            "kubernetes.io": k8s,
            "nbf": issued,
            "sub": service_account_username(namespace, sa_name),
        }
        return IssuedToken(self._sign(claims), datetime.fromtimestamp(expires, UTC))

    def issue_legacy(self, namespace: str, sa_name: str, sa_uid: str, secret_name: str) -> str:
        """A secret-based token (``kubernetes.io/service-account-token``): no audience, no expiry."""
        _require_names(namespace=namespace, sa_name=sa_name, sa_uid=sa_uid, secret_name=secret_name)
        return self._sign(
            {
                "iss": LEGACY_ISSUER,
                _LEGACY_NAMESPACE: namespace,
                _LEGACY_SECRET: secret_name,
                _LEGACY_SA_NAME: sa_name,
                _LEGACY_SA_UID: sa_uid,
                "sub": service_account_username(namespace, sa_name),
            }
        )

    def verify(
        self, token: str, *, audiences: Sequence[str] = (), now: datetime | None = None
    ) -> ServiceAccountClaims:
        """The token's claims, or a :class:`TokenError`. ``audiences`` are the ones the request
        is for (TokenReview's spec.audiences); none means the API audiences."""
        now = _now(now)
        header, payload, signed, signature = jws.split(token)
        issuer = payload.get("iss")
        if issuer != self.issuer and issuer != LEGACY_ISSUER:
            raise TokenError(
                TokenErrorReason.WRONG_ISSUER,
                f"token issuer {issuer!r} is neither {self.issuer!r} nor {LEGACY_ISSUER!r}",
            )
        self._check_signature(header, signed, signature)
        token_audiences = _payload_audiences(payload) or self.api_audiences
        requested = _audience_list(audiences) or self.api_audiences
        matched = tuple(aud for aud in token_audiences if aud in requested)
        if not matched:
            raise TokenError(
                TokenErrorReason.WRONG_AUDIENCE,
                f"token audiences {list(token_audiences)} are not valid for the target audiences "
                f"{list(requested)}",
            )
        audience = _Audiences(token_audiences, matched)
        if issuer == LEGACY_ISSUER:
            claims = _legacy_claims(payload, audience)
        else:
            claims = _bound_claims(payload, self.issuer, audience, now)
        _check_times(payload, now)
        return claims

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The JSON Web Key Set served at :data:`JWKS_PATH`."""
        return {"keys": [self.key.jwk()]}

    def _sign(self, claims: Mapping[str, object]) -> str:
        header = jws.b64(jws.json_bytes({"alg": ALGORITHM, "kid": self.key.key_id}))
        payload = jws.b64(jws.json_bytes(claims))
        signed = f"{header}.{payload}".encode("ascii")
        signature = self.key.private_key.sign(signed, padding.PKCS1v15(), hashes.SHA256())
        return f"{header}.{payload}.{jws.b64(signature)}"

    def _check_signature(self, header: Mapping[str, object], signed: bytes, signature: bytes) -> None:
        alg = header.get("alg")
        if alg != ALGORITHM:
            raise TokenError(
                TokenErrorReason.UNSUPPORTED_ALGORITHM,
                f"unsupported signing algorithm {alg!r}: service-account tokens are signed with {ALGORITHM}",
            )
        if "crit" in header:
            raise jws.malformed("critical header parameters are not supported")
        kid = header.get("kid", "")
        if not isinstance(kid, str):
            raise jws.malformed("the kid header is not a string")
        if kid and kid != self.key.key_id:
            raise TokenError(
                TokenErrorReason.BAD_SIGNATURE,
                f"invalid signature: no key with id {kid!r} (another cluster's token?)",
            )
        try:
            self._public_key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            raise TokenError(TokenErrorReason.BAD_SIGNATURE, "invalid signature") from None


def openid_configuration(issuer: str, jwks_uri: str) -> dict[str, object]:
    """The OIDC discovery document served at :data:`OPENID_CONFIG_PATH`.

    Like upstream, refuses (ValueError) an issuer that is not an https URL without query or
    fragment, and a jwks_uri that is not https: the caller then serves neither document.
    """
    iss = urlsplit(issuer)
    if iss.scheme != "https" or not iss.netloc or iss.query or iss.fragment:
        raise ValueError(
            f"issuer {issuer!r} must be an https URL without query or fragment for OIDC discovery"
        )
    jwks = urlsplit(jwks_uri)
    if jwks.scheme != "https" or not jwks.netloc:
        raise ValueError(f"jwks_uri {jwks_uri!r} must be an https URL")
    return {
        "issuer": issuer,
        "jwks_uri": jwks_uri,
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [ALGORITHM],
    }


# --- claims -------------------------------------------------------------------------------


class _Ref(NamedTuple):
    name: str
    uid: str


class _Audiences(NamedTuple):
    token: tuple[str, ...]
    matched: tuple[str, ...]


def _bound_claims(
    payload: Mapping[str, object], issuer: str, audiences: _Audiences, now: datetime
) -> ServiceAccountClaims:
    """A bound token's claims, checked for what upstream's validator reads."""
    k8s = payload.get("kubernetes.io")
    if not isinstance(k8s, dict):
        raise jws.malformed("the kubernetes.io claim is missing")
    namespace = _string(k8s, "namespace", "kubernetes.io.namespace")
    sa = _object_ref(k8s, "serviceaccount")
    if sa is None or not sa.uid:
        raise jws.malformed("kubernetes.io.serviceaccount needs a name and a uid")
    pod, secret, node = (_object_ref(k8s, key) for key in ("pod", "secret", "node"))
    if secret is not None and (pod is not None or node is not None):
        raise jws.malformed("the token is bound to more than one object")
    bound: BoundObject | None = None
    if pod is not None:
        bound = BoundObject("Pod", *pod)
    elif secret is not None:
        bound = BoundObject("Secret", *secret)
    elif node is not None:
        bound = BoundObject("Node", *node)
    if payload.get("sub") != service_account_username(namespace, sa.name):
        raise jws.malformed("the sub claim does not name the token's service account")
    expires = _date(payload, "exp")
    if expires is None:
        raise jws.malformed("the exp claim is missing")
    jti = payload.get("jti")
    if jti is not None and not isinstance(jti, str):
        raise jws.malformed("the jti claim is not a string")
    warn_after = _date(k8s, "warnafter")
    return ServiceAccountClaims(
        issuer=issuer,
        namespace=namespace,
        service_account_name=sa.name,
        service_account_uid=sa.uid,
        audiences=audiences.token,
        matched_audiences=audiences.matched,
        bound=bound,
        node=NodeRef(*node) if node is not None else None,
        issued_at=_date(payload, "iat"),
        expires_at=expires,
        warn_after=warn_after,
        stale=warn_after is not None and now > warn_after,
        jti=jti or None,
    )


def _legacy_claims(payload: Mapping[str, object], audiences: _Audiences) -> ServiceAccountClaims:
    """A secret-based token's claims, checked as upstream's legacy validator does."""
    namespace = _string(payload, _LEGACY_NAMESPACE, "namespace")
    secret = _string(payload, _LEGACY_SECRET, "secret name")
    name = _string(payload, _LEGACY_SA_NAME, "service account name")
    uid = _string(payload, _LEGACY_SA_UID, "service account uid")
    if payload.get("sub") != service_account_username(namespace, name):
        raise jws.malformed("the sub claim does not name the token's service account")
    return ServiceAccountClaims(
        issuer=LEGACY_ISSUER,
        namespace=namespace,
        service_account_name=name,
        service_account_uid=uid,
        audiences=audiences.token,
        matched_audiences=audiences.matched,
        secret_name=secret,
        issued_at=_date(payload, "iat"),
        expires_at=_date(payload, "exp"),
    )


def _check_times(payload: Mapping[str, object], now: datetime) -> None:
    """go-jose's Claims.Validate with its default leeway: nbf, exp, then iat (when present)."""
    not_before, expires, issued = (_date(payload, key) for key in ("nbf", "exp", "iat"))
    if not_before is not None and now + LEEWAY < not_before:
        raise TokenError(
            TokenErrorReason.NOT_YET_VALID,
            f"service account token is not valid yet (not before {not_before})",
        )
    if expires is not None and now - LEEWAY > expires:
        raise TokenError(TokenErrorReason.EXPIRED, f"service account token has expired (at {expires})")
    if issued is not None and now + LEEWAY < issued:
        raise TokenError(
            TokenErrorReason.NOT_YET_VALID, f"service account token is issued in the future ({issued})"
        )


def _object_ref(k8s: Mapping[str, object], key: str) -> _Ref | None:
    """``{name, uid}`` under ``key`` (a name is required, a uid may be omitted)."""
    value = k8s.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise jws.malformed(f"kubernetes.io.{key} is not an object")
    name = _string(value, "name", f"kubernetes.io.{key}.name")
    uid = value.get("uid", "")
    if not isinstance(uid, str):
        raise jws.malformed(f"kubernetes.io.{key}.uid is not a string")
    return _Ref(name, uid)


def _payload_audiences(payload: Mapping[str, object]) -> tuple[str, ...]:
    aud = payload.get("aud")
    if aud is None:
        return ()
    if isinstance(aud, str):  # RFC 7519 allows a single string
        return (aud,)
    if not isinstance(aud, list) or not all(isinstance(a, str) for a in aud):
        raise jws.malformed("the aud claim is not a string or a list of strings")
    return tuple(aud)


def _string(claims: Mapping[str, object], key: str, what: str) -> str:
    value = claims.get(key)
    if not isinstance(value, str) or not value:
        raise jws.malformed(f"the {what} claim is missing")
    return value


def _date(claims: Mapping[str, object], key: str) -> datetime | None:
    value = claims.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise jws.malformed(f"the {key} claim is not a number")
    try:
        return datetime.fromtimestamp(math.floor(value), UTC)
    except (OverflowError, OSError, ValueError):
        raise jws.malformed(f"the {key} claim is out of range") from None


def _ref(name: str, uid: str) -> dict[str, str]:
    """Upstream's ``ref`` (both fields omitempty)."""
    return {key: value for key, value in (("name", name), ("uid", uid)) if value}


def _require_names(**names: str) -> None:
    for field, value in names.items():
        if not isinstance(value, str) or not value:
            raise ValueError(f"{field} must be a non-empty string")
    for field in ("namespace", "sa_name"):
        if ":" in names[field]:
            raise ValueError(f"{field} {names[field]!r} must not contain ':'")


def _audience_list(audiences: Sequence[str]) -> tuple[str, ...]:
    if isinstance(audiences, str):
        raise TypeError("audiences must be a sequence of strings, not one string")
    return tuple(audiences)


def _now(now: datetime | None) -> datetime:
    now = datetime.now(UTC) if now is None else now
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now
