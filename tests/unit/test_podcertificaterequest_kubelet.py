"""The kubelet's side of podCertificate projected volumes: keys of every type, the stub PKCS#10
request that proves the key (verified with cryptography and with the API server's rules), the
request it creates, and a source's life (waiting, issued, refreshed, denied) against an API
kept in memory below the unit under test."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from k3py.agent.envvars import ConfigError
from k3py.agent.podcertificates import (
    CertificateProjection,
    PodCertificateError,
    PrivateKey,
    Requester,
    clean_chain,
    files,
    generate_key,
    new_request,
    pem_key,
    stub_request,
)
from k3py.agent.volumes import PodVolumes
from k3py.api import podcertificates as pcrs
from k3py.api.pcr_validation import status_causes, validate

Obj = dict[str, Any]
WHO = Requester("ns", "web", "pod-uid", "default", "sa-uid", "node1", "node-uid")
SOURCE: Obj = {
    "signerName": "e2e.example.com/signer",
    "keyType": "ECDSAP256",
    "credentialBundlePath": "bundle.pem",
}


@pytest.mark.parametrize(
    ("key_type", "kind", "size"),
    [
        ("RSA3072", rsa.RSAPublicKey, 3072),
        ("RSA4096", rsa.RSAPublicKey, 4096),
        ("ECDSAP256", ec.EllipticCurvePublicKey, 256),
        ("ECDSAP384", ec.EllipticCurvePublicKey, 384),
        ("ECDSAP521", ec.EllipticCurvePublicKey, 521),
        ("ED25519", ed25519.Ed25519PublicKey, 0),
    ],
)
def test_each_key_type_makes_its_key_and_a_verifiable_stub_request(
    key_type: str, kind: type, size: int
) -> None:
    key = generate_key(key_type)
    request = x509.load_der_x509_csr(stub_request(key))
    public = request.public_key()
    assert isinstance(public, kind)
    if isinstance(public, rsa.RSAPublicKey):
        assert public.key_size == size
    if isinstance(public, ec.EllipticCurvePublicKey):
        assert public.curve.key_size == size
    assert public == key.public_key()
    assert request.is_signature_valid
    assert list(request.subject) == []
    loaded = serialization.load_pem_private_key(pem_key(key), None)
    assert loaded.public_key() == key.public_key()
    assert pem_key(key).startswith(b"-----BEGIN PRIVATE KEY-----\n")


def test_an_unknown_key_type_is_an_error() -> None:
    with pytest.raises(PodCertificateError, match='unknown key type "DSA"'):
        generate_key("DSA")


def test_the_request_names_pod_account_and_node_and_passes_the_api_servers_checks() -> None:
    key = generate_key("ED25519")
    source = dict(SOURCE, maxExpirationSeconds=3600, userAnnotations={"spiffe/path-overriding": "/custom"})
    made = new_request(WHO, source, stub_request(key))
    assert made["metadata"] == {
        "namespace": "ns",
        "generateName": "req-",
        "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "web", "uid": "pod-uid"}],
    }
    spec = made["spec"]
    assert (spec["podName"], spec["podUID"], spec["serviceAccountName"], spec["serviceAccountUID"]) == (
        "web",
        "pod-uid",
        "default",
        "sa-uid",
    )
    assert (spec["nodeName"], spec["nodeUID"], spec["signerName"]) == (
        "node1",
        "node-uid",
        "e2e.example.com/signer",
    )
    assert spec["maxExpirationSeconds"] == 3600
    assert spec["unverifiedUserAnnotations"] == {"spiffe/path-overriding": "/custom"}
    assert validate(made, None) == []
    plain = new_request(WHO, SOURCE, stub_request(key))["spec"]
    assert "maxExpirationSeconds" not in plain and "unverifiedUserAnnotations" not in plain


def test_the_chain_is_cleaned_of_headers_and_text_between_blocks() -> None:
    first, second = _self_signed(generate_key("ECDSAP256")), _self_signed(generate_key("ECDSAP256"))
    lines = first.splitlines(keepends=True)
    messy = (
        "leading text\n" + lines[0] + "Proc-Type: 4,ENCRYPTED\n\n" + "".join(lines[1:]) + "between\n" + second
    )
    assert clean_chain(messy) == (first + second).encode()


# -- a source's life ---------------------------------------------------------------------------


@dataclass
class MemoryApi:
    """Requests kept in a dict: what the API server stores, without one."""

    stored: dict[str, Obj] = field(default_factory=dict)
    events: list[tuple[str, str, str]] = field(default_factory=list)

    async def requester(self, pod: Obj) -> Requester:
        return WHO

    async def create(self, request: Obj) -> Obj:
        obj = copy.deepcopy(request)
        obj["metadata"]["name"] = f"req-{len(self.stored)}"
        pcrs.prepare_create(obj)  # as the API server's strategy does (maxExpirationSeconds)
        assert validate(obj, None) == [], "the kubelet made a request the API server would refuse"
        self.stored[obj["metadata"]["name"]] = obj
        return copy.deepcopy(obj)

    async def get(self, namespace: str, name: str) -> Obj | None:
        found = self.stored.get(name)
        return copy.deepcopy(found) if found is not None else None

    def refused(self, pod: Obj, kind: str, reason: str, message: str) -> None:
        self.events.append((kind, reason, message))

    def sign(self, name: str, now: datetime, lifetime: timedelta = timedelta(hours=1)) -> str:
        """Issue ``name`` as a signer would (checked by the API server's rules)."""
        old = self.stored[name]
        public = x509.load_der_x509_csr(
            pcrs.decode_bytes(old["spec"]["stubPKCS10Request"]) or b""
        ).public_key()
        before = now.replace(microsecond=0)
        chain = _certificate(public, before, lifetime)
        new = copy.deepcopy(old)
        new["status"] = {
            "certificateChain": chain,
            "notBefore": pcrs.format_time(before),
            "notAfter": pcrs.format_time(before + lifetime),
            "beginRefreshAt": pcrs.format_time(before + lifetime / 2),
            "conditions": [_condition("Issued", "Signed", now)],
        }
        assert status_causes(new, old, now) == []
        self.stored[name] = new
        return chain

    def refuse(self, name: str, kind: str, now: datetime) -> None:
        self.stored[name]["status"] = {
            "conditions": [_condition(kind, "UnsupportedKeyType", now, "use RSA3072")]
        }


async def test_a_source_waits_then_serves_the_issued_pair_and_refreshes_it() -> None:
    api, projection, now = MemoryApi(), CertificateProjection(dict(SOURCE)), datetime.now(UTC)
    pod: Obj = {"metadata": {"name": "web", "namespace": "ns", "uid": "pod-uid"}}
    with pytest.raises(PodCertificateError, match="credential bundle is not issued yet"):
        await projection.credentials(api, pod, now)
    with pytest.raises(PodCertificateError, match="not issued yet"):
        await projection.credentials(api, pod, now)
    assert list(api.stored) == ["req-0"]  # waiting does not ask again
    chain = api.sign("req-0", now)
    first = await projection.credentials(api, pod, now)
    assert first.chain == chain.encode()
    key = serialization.load_pem_private_key(first.key, None)
    assert key.public_key() == x509.load_pem_x509_certificate(first.chain).public_key()
    written = files(dict(SOURCE, keyPath="key.pem", certificateChainPath="chain.pem"), first, 0o644)
    assert written == {
        "bundle.pem": (first.key + first.chain, 0o644),
        "key.pem": (first.key, 0o644),
        "chain.pem": (first.chain, 0o644),
    }
    assert await projection.credentials(api, pod, now + timedelta(minutes=10)) == first
    assert list(api.stored) == ["req-0"]
    later = now + timedelta(minutes=31)  # past beginRefreshAt: a new key is asked for
    assert await projection.credentials(api, pod, later) == first  # the old pair serves meanwhile
    assert list(api.stored) == ["req-0", "req-1"]
    api.sign("req-1", later)
    second = await projection.credentials(api, pod, later)
    assert second.key != first.key and second.chain != first.chain


@pytest.mark.parametrize(("kind", "verb"), [("Denied", "denied"), ("Failed", "failed")])
async def test_a_refused_request_is_final(kind: str, verb: str) -> None:
    api, projection, now = MemoryApi(), CertificateProjection(dict(SOURCE)), datetime.now(UTC)
    pod: Obj = {"metadata": {"name": "web", "namespace": "ns", "uid": "pod-uid"}}
    with pytest.raises(PodCertificateError):
        await projection.credentials(api, pod, now)
    api.refuse("req-0", kind, now)
    message = (
        f'PodCertificateRequest was permanently {verb}: reason="UnsupportedKeyType" message="use RSA3072"'
    )
    for _ in range(2):
        with pytest.raises(PodCertificateError) as raised:
            await projection.credentials(api, pod, now)
        assert str(raised.value) == message
    assert list(api.stored) == ["req-0"]
    happened = "was denied" if kind == "Denied" else "failed"
    event = f'PodCertificateRequest ns/req-0 {happened}, reason="UnsupportedKeyType", message="use RSA3072"'
    assert api.events == [(kind, "UnsupportedKeyType", event)]  # once, not at every look


async def test_a_request_that_vanished_is_made_again_after_a_while() -> None:
    api, projection, now = MemoryApi(), CertificateProjection(dict(SOURCE)), datetime.now(UTC)
    pod: Obj = {"metadata": {"name": "web", "namespace": "ns", "uid": "pod-uid"}}
    with pytest.raises(PodCertificateError):
        await projection.credentials(api, pod, now)
    api.stored.clear()
    with pytest.raises(PodCertificateError):
        await projection.credentials(api, pod, now + timedelta(minutes=1))
    assert api.stored == {}
    with pytest.raises(PodCertificateError):
        await projection.credentials(api, pod, now + timedelta(minutes=16))
    assert list(api.stored) == ["req-0"]


async def test_projected_volumes_write_the_pair_at_the_sources_paths(tmp_path: Path) -> None:
    api = MemoryApi()
    source = {
        "defaultMode": 0o440,
        "sources": [{"podCertificate": dict(SOURCE, keyPath="tls.key")}],
    }
    pod: Obj = {
        "metadata": {"name": "web", "namespace": "ns", "uid": "pod-uid"},
        "spec": {"volumes": [{"name": "tls", "projected": source}]},
    }

    async def nothing(kind: str, name: str) -> Obj | None:
        return None

    async def no_token(account: str, audience: str, seconds: int) -> tuple[str, float]:
        raise AssertionError("no token asked for")

    volumes = PodVolumes(tmp_path, pod, nothing, no_token, certificates=api)
    with pytest.raises(PodCertificateError, match="not issued yet"):
        await volumes._projected_files(source, "tls")
    api.sign("req-0", datetime.now(UTC))
    written = await volumes._projected_files(source, "tls")
    assert sorted(written) == ["bundle.pem", "tls.key"]
    assert written["tls.key"][1] == 0o440
    assert written["bundle.pem"][0].startswith(written["tls.key"][0])
    pod["spec"]["securityContext"] = {"fsGroup": 2000}
    assert {mode for _, mode in (await volumes._projected_files(source, "tls")).values()} == {0o600}
    without = PodVolumes(tmp_path, pod, nothing, no_token)
    with pytest.raises(ConfigError, match="not served on this node"):
        await without._projected_files(source, "tls")


# -- helpers -----------------------------------------------------------------------------------


def _condition(kind: str, reason: str, now: datetime, message: str = "") -> Obj:
    return {
        "type": kind,
        "status": "True",
        "reason": reason,
        "message": message,
        "lastTransitionTime": pcrs.format_time(now),
    }


def _certificate(public: Any, before: datetime, lifetime: timedelta) -> str:
    issuer = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "signer")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(before)
        .not_valid_after(before + lifetime)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier("spiffe://cluster.local/ns/ns/sa/default")]
            ),
            critical=False,
        )
        .sign(issuer, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _self_signed(key: PrivateKey) -> str:
    return _certificate(key.public_key(), datetime.now(UTC).replace(microsecond=0), timedelta(hours=1))
