"""``k3py.pki.serviceaccount``: the signing key, bound and legacy tokens, refusals, OIDC documents."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import stat
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from k3py.pki import (
    BoundObject,
    NodeRef,
    PkiError,
    ServiceAccountKey,
    TokenError,
    TokenErrorReason,
    TokenIssuer,
    ensure_service_account_key,
    openid_configuration,
)
from k3py.pki.serviceaccount import (
    DEFAULT_ISSUER,
    LEEWAY,
    LEGACY_ISSUER,
    MIN_EXPIRATION_SECONDS,
)

NOW = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
SA_UID = "4f6d2c1e-0000-4000-8000-000000000001"
POD = BoundObject("Pod", "web-0", "4f6d2c1e-0000-4000-8000-000000000002")
NODE = NodeRef("node-1", "4f6d2c1e-0000-4000-8000-000000000003")
Reason = TokenErrorReason


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> ServiceAccountKey:
    return ensure_service_account_key(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def other_key() -> ServiceAccountKey:
    return ServiceAccountKey.from_private_key(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture
def issuer(key: ServiceAccountKey) -> TokenIssuer:
    return TokenIssuer(key)


# --- helpers: an independent encoder, to craft tokens the issuer would never make ---------


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parts(token: str) -> tuple[dict[str, object], dict[str, object], bytes]:
    header, payload, signature = token.split(".")
    return json.loads(unb64(header)), json.loads(unb64(payload)), unb64(signature)


def forge(private_key: rsa.RSAPrivateKey, header: Mapping[str, object], claims: Mapping[str, object]) -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = private_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64(signature)}"


def reason_of(
    issuer: TokenIssuer, token: str, *, audiences: Sequence[str] = (), now: datetime | None = None
) -> TokenErrorReason:
    with pytest.raises(TokenError) as caught:
        issuer.verify(token, audiences=audiences, now=now)
    assert str(caught.value)  # every refusal says why
    return caught.value.reason


def pod_token(issuer: TokenIssuer, **kwargs: object) -> str:
    options: dict[str, object] = {"audiences": [], "expiration_seconds": 3600, "bound": POD, "now": NOW}
    options.update(kwargs)
    return issuer.issue("default", "builder", SA_UID, **options)[0]  # type: ignore[arg-type]


# --- issuing and verifying ------------------------------------------------------------------


def test_a_bound_token_has_upstreams_header_and_claims(issuer: TokenIssuer, key: ServiceAccountKey) -> None:
    token, expires_at = issuer.issue(
        "default", "builder", SA_UID, audiences=[], expiration_seconds=3600, bound=POD, node=NODE, now=NOW
    )
    header, claims, _ = parts(token)
    assert header == {"alg": "RS256", "kid": key.key_id}
    iat = int(NOW.timestamp())
    jti = claims.pop("jti")
    assert isinstance(jti, str) and uuid.UUID(jti).version == 4
    assert claims == {
        "aud": [DEFAULT_ISSUER],  # no audiences asked for: the API audiences, as TokenRequest defaults them
        "exp": iat + 3600,
        "iat": iat,
        "nbf": iat,
        "iss": DEFAULT_ISSUER,
        "sub": "system:serviceaccount:default:builder",
        "kubernetes.io": {
            "namespace": "default",
            "serviceaccount": {"name": "builder", "uid": SA_UID},
            "pod": {"name": POD.name, "uid": POD.uid},
            "node": {"name": NODE.name, "uid": NODE.uid},
        },
    }
    assert expires_at == NOW + timedelta(seconds=3600)


def test_round_trip(issuer: TokenIssuer) -> None:
    token = pod_token(issuer, node=NODE)
    claims = issuer.verify(token, now=NOW + timedelta(minutes=30))
    assert (claims.namespace, claims.service_account_name, claims.service_account_uid) == (
        "default",
        "builder",
        SA_UID,
    )
    assert claims.bound == POD
    assert claims.node == NODE
    assert claims.issuer == DEFAULT_ISSUER
    assert claims.audiences == claims.matched_audiences == (DEFAULT_ISSUER,)
    assert claims.issued_at == NOW.replace(microsecond=0)
    assert claims.expires_at == NOW + timedelta(hours=1)
    assert claims.jti == parts(token)[1]["jti"]
    assert not claims.legacy and claims.secret_name is None
    assert not claims.stale and claims.warn_after is None


def test_the_user_is_derived_as_upstream_does(issuer: TokenIssuer) -> None:
    claims = issuer.verify(pod_token(issuer, node=NODE), now=NOW)
    assert claims.username == "system:serviceaccount:default:builder"
    assert claims.uid == SA_UID
    assert claims.groups == ("system:serviceaccounts", "system:serviceaccounts:default")
    assert claims.user_info() == {
        "username": "system:serviceaccount:default:builder",
        "uid": SA_UID,
        "groups": ["system:serviceaccounts", "system:serviceaccounts:default"],
        "extra": {
            "authentication.kubernetes.io/credential-id": [f"JTI={claims.jti}"],
            "authentication.kubernetes.io/node-name": [NODE.name],
            "authentication.kubernetes.io/node-uid": [NODE.uid],
            "authentication.kubernetes.io/pod-name": [POD.name],
            "authentication.kubernetes.io/pod-uid": [POD.uid],
        },
    }
    assert list(dict(claims.extra)) == sorted(dict(claims.extra))


def test_node_and_secret_bound_tokens(issuer: TokenIssuer) -> None:
    node_bound = BoundObject("Node", NODE.name, NODE.uid)
    claims = issuer.verify(pod_token(issuer, bound=node_bound), now=NOW)
    assert claims.bound == node_bound
    assert claims.node == NODE  # upstream reports a node-bound token's node in the user's extra too
    assert dict(claims.extra).keys() == {
        "authentication.kubernetes.io/credential-id",
        "authentication.kubernetes.io/node-name",
        "authentication.kubernetes.io/node-uid",
    }

    secret = BoundObject("Secret", "builder-token", "4f6d2c1e-0000-4000-8000-000000000004")
    token = pod_token(issuer, bound=secret)
    assert parts(token)[1]["kubernetes.io"] == {
        "namespace": "default",
        "serviceaccount": {"name": "builder", "uid": SA_UID},
        "secret": {"name": secret.name, "uid": secret.uid},
    }
    claims = issuer.verify(token, now=NOW)
    assert claims.bound == secret and claims.node is None
    assert [key for key, _ in claims.extra] == ["authentication.kubernetes.io/credential-id"]


def test_an_unbound_token_carries_only_the_service_account(issuer: TokenIssuer) -> None:
    token = pod_token(issuer, bound=None)
    assert parts(token)[1]["kubernetes.io"] == {
        "namespace": "default",
        "serviceaccount": {"name": "builder", "uid": SA_UID},
    }
    claims = issuer.verify(token, now=NOW)
    assert claims.bound is None and claims.node is None


def test_warnafter_marks_a_token_stale_but_keeps_it_valid(issuer: TokenIssuer) -> None:
    token = pod_token(issuer, expiration_seconds=365 * 24 * 3600, warn_after_seconds=3607)
    warn_at = int(NOW.timestamp()) + 3607
    assert parts(token)[1]["kubernetes.io"]["warnafter"] == warn_at  # type: ignore[index]
    fresh = issuer.verify(token, now=NOW + timedelta(hours=1))
    assert fresh.warn_after == datetime.fromtimestamp(warn_at, UTC) and not fresh.stale
    assert issuer.verify(token, now=NOW + timedelta(days=30)).stale


def test_legacy_tokens_verify_with_the_api_audiences_implied(
    issuer: TokenIssuer, key: ServiceAccountKey
) -> None:
    token = issuer.issue_legacy("default", "builder", SA_UID, "builder-token-x7k2p")
    header, claims, _ = parts(token)
    assert header == {"alg": "RS256", "kid": key.key_id}
    assert claims == {
        "iss": LEGACY_ISSUER,
        "sub": "system:serviceaccount:default:builder",
        "kubernetes.io/serviceaccount/namespace": "default",
        "kubernetes.io/serviceaccount/secret.name": "builder-token-x7k2p",
        "kubernetes.io/serviceaccount/service-account.name": "builder",
        "kubernetes.io/serviceaccount/service-account.uid": SA_UID,
    }
    verified = issuer.verify(token, now=NOW + timedelta(days=3650))  # no expiry
    assert verified.legacy and verified.secret_name == "builder-token-x7k2p"
    assert verified.issuer == LEGACY_ISSUER
    assert verified.audiences == (DEFAULT_ISSUER,)
    assert verified.expires_at is None and verified.jti is None and verified.bound is None
    assert verified.user_info() == {
        "username": "system:serviceaccount:default:builder",
        "uid": SA_UID,
        "groups": ["system:serviceaccounts", "system:serviceaccounts:default"],
    }
    assert reason_of(issuer, token, audiences=["vault"]) is Reason.WRONG_AUDIENCE


def test_a_legacy_token_must_name_everything_upstream_checks(
    issuer: TokenIssuer, key: ServiceAccountKey
) -> None:
    claims = parts(issuer.issue_legacy("default", "builder", SA_UID, "builder-token"))[1]
    for missing in (
        "kubernetes.io/serviceaccount/secret.name",
        "kubernetes.io/serviceaccount/service-account.uid",
    ):
        partial = {k: v for k, v in claims.items() if k != missing}
        assert reason_of(issuer, forge(key.private_key, {"alg": "RS256"}, partial)) is Reason.MALFORMED
    other_sub = {**claims, "sub": "system:serviceaccount:kube-system:builder"}
    assert reason_of(issuer, forge(key.private_key, {"alg": "RS256"}, other_sub)) is Reason.MALFORMED


# --- refusals ---------------------------------------------------------------------------------


def test_a_tampered_payload_is_rejected(issuer: TokenIssuer) -> None:
    header, payload, signature = pod_token(issuer).split(".")
    claims = json.loads(unb64(payload))
    claims["kubernetes.io"]["namespace"] = "kube-system"
    claims["sub"] = "system:serviceaccount:kube-system:builder"
    tampered = f"{header}.{b64(json.dumps(claims).encode())}.{signature}"
    assert reason_of(issuer, tampered, now=NOW) is Reason.BAD_SIGNATURE


def test_a_tampered_signature_is_rejected(issuer: TokenIssuer) -> None:
    header, payload, signature = pod_token(issuer).split(".")
    raw = bytearray(unb64(signature))
    raw[len(raw) // 2] ^= 0x01
    assert reason_of(issuer, f"{header}.{payload}.{b64(bytes(raw))}", now=NOW) is Reason.BAD_SIGNATURE
    # The last of 342 characters carries 2 bits of the 256-byte signature and 4 zero bits; a lax
    # decoder reads a variant with a non-zero filler alike. It is refused, not decoded alike.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    variant = signature[:-1] + alphabet[alphabet.index(signature[-1]) | 1]
    assert unb64(variant) == unb64(signature)
    assert reason_of(issuer, f"{header}.{payload}.{variant}", now=NOW) is Reason.MALFORMED


def test_a_token_signed_by_another_key_is_rejected(issuer: TokenIssuer, other_key: ServiceAccountKey) -> None:
    stranger = TokenIssuer(other_key)  # same issuer URL, another cluster's key
    assert reason_of(issuer, pod_token(stranger), now=NOW) is Reason.BAD_SIGNATURE
    # Without a kid the key cannot be ruled out by id; the signature check still refuses it.
    claims = parts(pod_token(stranger))[1]
    unkeyed = forge(other_key.private_key, {"alg": "RS256"}, claims)
    assert reason_of(issuer, unkeyed, now=NOW) is Reason.BAD_SIGNATURE


def test_a_token_without_kid_is_checked_against_the_key(issuer: TokenIssuer, key: ServiceAccountKey) -> None:
    claims = parts(pod_token(issuer))[1]
    assert issuer.verify(forge(key.private_key, {"alg": "RS256"}, claims), now=NOW).bound == POD


def test_expiry_and_not_before_allow_upstreams_leeway(issuer: TokenIssuer) -> None:
    assert timedelta(seconds=60) == LEEWAY
    token = pod_token(issuer, expiration_seconds=MIN_EXPIRATION_SECONDS)
    expires = NOW.replace(microsecond=0) + timedelta(seconds=MIN_EXPIRATION_SECONDS)
    issued = NOW.replace(microsecond=0)
    assert issuer.verify(token, now=expires + LEEWAY).expires_at == expires
    assert reason_of(issuer, token, now=expires + LEEWAY + timedelta(seconds=1)) is Reason.EXPIRED
    assert issuer.verify(token, now=issued - LEEWAY).issued_at == issued
    assert reason_of(issuer, token, now=issued - LEEWAY - timedelta(seconds=1)) is Reason.NOT_YET_VALID


def test_issued_in_the_future_is_not_yet_valid(issuer: TokenIssuer, key: ServiceAccountKey) -> None:
    claims = parts(pod_token(issuer))[1]
    future = {**claims, "iat": int(NOW.timestamp()) + 3000}  # nbf stays now
    token = forge(key.private_key, {"alg": "RS256", "kid": key.key_id}, future)
    with pytest.raises(TokenError, match="issued in the future") as caught:
        issuer.verify(token, now=NOW)
    assert caught.value.reason is Reason.NOT_YET_VALID


def test_the_audience_must_intersect_the_requested_ones(key: ServiceAccountKey) -> None:
    issuer = TokenIssuer(key, api_audiences=[DEFAULT_ISSUER, "k3s"])
    vault = pod_token(issuer, audiences=["vault"])
    assert reason_of(issuer, vault, now=NOW) is Reason.WRONG_AUDIENCE  # default: the API audiences
    assert issuer.verify(vault, audiences=["vault", "other"], now=NOW).matched_audiences == ("vault",)
    api = pod_token(issuer)
    assert parts(api)[1]["aud"] == [DEFAULT_ISSUER, "k3s"]
    assert issuer.verify(api, audiences=["k3s"], now=NOW).matched_audiences == ("k3s",)
    assert reason_of(issuer, api, audiences=["vault"], now=NOW) is Reason.WRONG_AUDIENCE


def test_a_single_string_audience_is_accepted(issuer: TokenIssuer, key: ServiceAccountKey) -> None:
    claims = {**parts(pod_token(issuer))[1], "aud": DEFAULT_ISSUER}  # RFC 7519 allows a string
    token = forge(key.private_key, {"alg": "RS256", "kid": key.key_id}, claims)
    assert issuer.verify(token, now=NOW).audiences == (DEFAULT_ISSUER,)


def test_alg_none_and_hmac_are_refused(issuer: TokenIssuer, key: ServiceAccountKey) -> None:
    _, payload, _ = pod_token(issuer).split(".")
    none_header = b64(json.dumps({"alg": "none", "kid": key.key_id}).encode())
    assert reason_of(issuer, f"{none_header}.{payload}.", now=NOW) is Reason.UNSUPPORTED_ALGORITHM

    # The classic confusion: HMAC keyed with the (public) verification key.
    public_pem = key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hs_header = b64(json.dumps({"alg": "HS256", "kid": key.key_id}).encode())
    mac = hmac.new(public_pem, f"{hs_header}.{payload}".encode(), hashlib.sha256).digest()
    assert reason_of(issuer, f"{hs_header}.{payload}.{b64(mac)}", now=NOW) is Reason.UNSUPPORTED_ALGORITHM


def test_another_issuer_is_refused(issuer: TokenIssuer, key: ServiceAccountKey) -> None:
    claims = {**parts(pod_token(issuer))[1], "iss": "https://dex.example.com"}
    token = forge(key.private_key, {"alg": "RS256", "kid": key.key_id}, claims)
    assert reason_of(issuer, token, now=NOW) is Reason.WRONG_ISSUER
    elsewhere = TokenIssuer(key, issuer="https://oidc.example.com")
    assert reason_of(elsewhere, pod_token(issuer), now=NOW) is Reason.WRONG_ISSUER


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not-a-jwt",
        "a.b",
        "a.b.c.d",
        '{"payload":"eyJ9","signatures":[]}',
        "!!!.e30.AA",
        "e30=.e30.AA",  # padding is not base64url as JWS uses it
        "W10.e30.AA",  # a header that is a list
        "e30.bnVsbA.AA",  # a payload that is null
        "e30.e30.AA",  # no iss: not one of ours
    ],
)
def test_malformed_tokens_are_refused(issuer: TokenIssuer, token: str) -> None:
    assert reason_of(issuer, token, now=NOW) in (Reason.MALFORMED, Reason.WRONG_ISSUER)


def test_bound_claims_of_the_wrong_shape_are_malformed(issuer: TokenIssuer, key: ServiceAccountKey) -> None:
    good = parts(pod_token(issuer))[1]
    k8s = good["kubernetes.io"]
    assert isinstance(k8s, dict)
    variants: list[dict[str, object]] = [
        {**good, "exp": "tomorrow"},
        {k: v for k, v in good.items() if k != "exp"},
        {**good, "kubernetes.io": "default"},
        {**good, "kubernetes.io": {**k8s, "serviceaccount": {"name": "builder"}}},
        {**good, "kubernetes.io": {**k8s, "secret": {"name": "s", "uid": "u"}}},  # pod and secret
        {**good, "sub": "system:serviceaccount:kube-system:builder"},
        {**good, "aud": [1]},
    ]
    for claims in variants:
        token = forge(key.private_key, {"alg": "RS256", "kid": key.key_id}, claims)
        assert reason_of(issuer, token, now=NOW) is Reason.MALFORMED, claims


def test_issue_refuses_arguments_it_cannot_encode(issuer: TokenIssuer) -> None:
    with pytest.raises(ValueError, match="pod-bound"):
        issuer.issue("default", "builder", SA_UID, audiences=[], expiration_seconds=600, node=NODE)
    with pytest.raises(TypeError, match="not one string"):
        issuer.issue("default", "builder", SA_UID, audiences="vault", expiration_seconds=600)
    with pytest.raises(ValueError, match="sa_uid"):
        issuer.issue("default", "builder", "", audiences=[], expiration_seconds=600)
    with pytest.raises(ValueError, match="positive"):
        issuer.issue("default", "builder", SA_UID, audiences=[], expiration_seconds=0)
    with pytest.raises(ValueError, match="timezone"):
        issuer.issue(
            "default", "builder", SA_UID, audiences=[], expiration_seconds=600, now=datetime(2030, 1, 1)
        )


# --- the key file ------------------------------------------------------------------------------


def test_the_key_is_created_once_with_mode_0600_and_reused(tmp_path: Path) -> None:
    tls = tmp_path / "server" / "tls"
    first = ensure_service_account_key(tls)
    path = tls / "service.key"
    assert first.created and first.path == path
    assert sorted(p.name for p in tls.iterdir()) == ["service.key"]  # no temp file left behind
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = path.read_bytes()
    assert data.startswith(b"-----BEGIN RSA PRIVATE KEY-----")  # PKCS#1, as K3s writes it
    assert first.private_key.key_size == 2048

    again = ensure_service_account_key(tls)
    assert not again.created
    assert again.key_id == first.key_id
    assert path.read_bytes() == data


def test_a_pkcs8_key_is_accepted(tmp_path: Path) -> None:
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / "service.key").write_bytes(pem)
    loaded = ensure_service_account_key(tmp_path)
    assert loaded.key_id == ServiceAccountKey.from_private_key(private_key).key_id
    assert (tmp_path / "service.key").read_bytes() == pem


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"-----BEGIN RSA PRIVATE KEY-----\ntruncated\n",
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    ],
    ids=["empty", "truncated", "ecdsa"],
)
def test_an_unusable_key_file_raises_and_is_left_alone(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "service.key"
    path.write_bytes(content)
    with pytest.raises(PkiError) as caught:
        ensure_service_account_key(tmp_path)
    assert caught.value.path == path
    assert path.read_bytes() == content


def test_an_unreadable_key_file_raises(tmp_path: Path) -> None:
    (tmp_path / "service.key").mkdir()  # unreadable even for root
    with pytest.raises(PkiError, match="cannot read"):
        ensure_service_account_key(tmp_path)
    assert (tmp_path / "service.key").is_dir()


# --- discovery and independent checks ---------------------------------------------------------


def test_openid_configuration_is_upstreams_document() -> None:
    assert openid_configuration(DEFAULT_ISSUER, "https://10.0.0.1:6443/openid/v1/jwks") == {
        "issuer": DEFAULT_ISSUER,
        "jwks_uri": "https://10.0.0.1:6443/openid/v1/jwks",
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }
    with pytest.raises(ValueError, match="https"):
        openid_configuration("http://kubernetes.default.svc", "https://10.0.0.1:6443/openid/v1/jwks")
    with pytest.raises(ValueError, match="jwks_uri"):
        openid_configuration(DEFAULT_ISSUER, "http://10.0.0.1:6443/openid/v1/jwks")


def test_the_jwks_key_verifies_a_token_with_cryptography_alone(
    issuer: TokenIssuer, key: ServiceAccountKey
) -> None:
    (jwk,) = issuer.jwks()["keys"]
    assert jwk.keys() == {"use", "kty", "kid", "alg", "n", "e"}
    assert (jwk["use"], jwk["kty"], jwk["alg"], jwk["e"]) == ("sig", "RSA", "RS256", "AQAB")
    der = key.private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert jwk["kid"] == base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()

    public = rsa.RSAPublicNumbers(
        int.from_bytes(unb64(jwk["e"]), "big"), int.from_bytes(unb64(jwk["n"]), "big")
    ).public_key()
    token = pod_token(issuer)
    header, payload, signature = token.split(".")
    public.verify(unb64(signature), f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
    assert json.loads(unb64(header))["kid"] == jwk["kid"]


def test_an_independent_jwt_library_accepts_the_token(issuer: TokenIssuer) -> None:
    jwt = pytest.importorskip(
        "jwt", reason="PyJWT is not installed in this venv (it is not a k3py dependency)"
    )
    (jwk,) = issuer.jwks()["keys"]
    token, _ = issuer.issue(
        "default", "builder", SA_UID, audiences=["vault"], expiration_seconds=600, bound=POD
    )
    claims = jwt.decode(
        token, jwt.PyJWK(jwk).key, algorithms=["RS256"], audience="vault", issuer=DEFAULT_ISSUER
    )
    assert claims["sub"] == "system:serviceaccount:default:builder"
    assert jwt.get_unverified_header(token)["kid"] == jwk["kid"]
