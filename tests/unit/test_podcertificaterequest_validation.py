"""PodCertificateRequests through their strategy and upstream's validation rules (create,
update, /status), and the podCertificate projected volume source of a pod."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from k3py.agent.podcertificates import PrivateKey, generate_key, stub_request
from k3py.api import podcertificates as pcrs
from k3py.api.pcr_validation import status_causes
from k3py.apiserver.strategy import strategy_for
from tests.unit.api_cases import check, resource

Obj = dict[str, Any]
NOW = datetime.now(UTC).replace(microsecond=0)


def request(key: PrivateKey | None = None, **spec: object) -> Obj:
    body: Obj = {
        "signerName": "example.com/e2e",
        "podName": "test-pod",
        "podUID": "12345678-1234-1234-1234-123456789012",
        "serviceAccountName": "default",
        "serviceAccountUID": "12345678-1234-1234-1234-123456789013",
        "nodeName": "test-node",
        "nodeUID": "12345678-1234-1234-1234-123456789014",
        "stubPKCS10Request": pcrs.encode_bytes(stub_request(key or generate_key("ECDSAP256"))),
    }
    body.update(spec)
    return {
        "metadata": {"name": "req-1", "namespace": "default"},
        "spec": {k: v for k, v in body.items() if v is not None},
    }


def created(obj: Obj) -> tuple[Obj, list[str]]:
    """The object as a create stores it, and the messages of its causes."""
    strategy = strategy_for(resource(pcrs.RESOURCE))
    new = copy.deepcopy(obj)
    strategy.prepare_create(new)
    return new, [f"{c.field}: {c.message}" for c in strategy.validate(new, None)]


def status_update(old: Obj, status: Obj, now: datetime = NOW) -> list[str]:
    strategy = strategy_for(resource(pcrs.RESOURCE))
    new = copy.deepcopy(old)
    new["status"] = status
    new["spec"]["podName"] = "changed"  # the status subresource keeps the stored spec
    strategy.prepare_status_update(new, old)
    assert new["spec"] == old["spec"]
    return [f"{c.field}: {c.message}" for c in status_causes(new, old, now)]


def certificate(
    key: PrivateKey,
    *,
    before: datetime = NOW - timedelta(minutes=1),
    lifetime: timedelta = timedelta(hours=1),
) -> str:
    issuer = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "e2e.example.com")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(before)
        .not_valid_after(before + lifetime)
        .sign(issuer, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def issued(chain: str, before: datetime, after: datetime, refresh: datetime, kind: str = "Issued") -> Obj:
    condition = {
        "type": kind,
        "status": "True",
        "reason": "E2E",
        "message": "Issued by E2E test",
        "lastTransitionTime": pcrs.format_time(NOW),
    }
    return {
        "certificateChain": chain,
        "notBefore": pcrs.format_time(before),
        "notAfter": pcrs.format_time(after),
        "beginRefreshAt": pcrs.format_time(refresh),
        "conditions": [condition],
    }


# -- create -------------------------------------------------------------------------------------


def test_a_kubelet_request_is_valid_and_asks_for_a_day_by_default() -> None:
    obj, messages = created(request())
    assert messages == []
    assert obj["spec"]["maxExpirationSeconds"] == 86400
    assert obj["status"] == {}


@pytest.mark.parametrize("key_type", ["RSA3072", "ECDSAP384", "ECDSAP521", "ED25519"])
def test_every_kubelet_key_type_is_accepted(key_type: str) -> None:
    assert created(request(generate_key(key_type)))[1] == []


def test_lifetimes_outside_an_hour_to_91_days_are_refused() -> None:
    assert created(request(maxExpirationSeconds=3599))[1] == [
        "spec.maxExpirationSeconds: Invalid value: 3599: must be in the range [3600, 7862400]"
    ]
    assert created(request(maxExpirationSeconds=7862400))[1] == []
    kubernetes = created(
        request(signerName="kubernetes.io/kube-apiserver-client-pod", maxExpirationSeconds=86401)
    )
    assert kubernetes[1] == [
        "spec.maxExpirationSeconds: Invalid value: 86401: must be in the range [3600, 86400]"
    ]


def test_the_stub_request_must_be_signed_by_a_supported_key() -> None:
    assert created(request(stubPKCS10Request=None))[1] == [
        "spec: Invalid value: <value omitted>: exactly one of (stubPKCS10Request) or "
        "(pkixPublicKey, proofOfPossession) must be set"
    ]
    small = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    stub = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(small, hashes.SHA256())
    der = stub.public_bytes(serialization.Encoding.DER)
    assert created(request(stubPKCS10Request=pcrs.encode_bytes(der)))[1] == [
        'spec.stubPKCS10Request: Invalid value: "2048-bit modulus": RSA keys must have '
        "modulus size 3072 or 4096"
    ]
    tampered = bytearray(stub_request(generate_key("ECDSAP256")))
    tampered[-3] ^= 0xFF  # inside the signature
    messages = created(request(stubPKCS10Request=pcrs.encode_bytes(bytes(tampered))))[1]
    assert messages in (
        ["spec.stubPKCS10Request: Invalid value: <value omitted>: invalid signature"],
        ["spec.stubPKCS10Request: Invalid value: <value omitted>: must be a valid PKCS#10 CSR"],
    )
    garbage = created(request(stubPKCS10Request=pcrs.encode_bytes(b"not a request")))[1]
    assert garbage == ["spec.stubPKCS10Request: Invalid value: <value omitted>: must be a valid PKCS#10 CSR"]


def test_names_uids_signer_and_annotations_are_checked() -> None:
    _, messages = created(
        request(
            podName="Bad_Pod",
            nodeUID="",
            serviceAccountUID="x" * 129,
            signerName="nodomain",
            unverifiedUserAnnotations={"plain-key": "v", "spiffe/path-overriding": "/custom"},
        )
    )
    assert any(m.startswith("spec.signerName: Invalid value") for m in messages)
    assert any(m.startswith('spec.podName: Invalid value: "Bad_Pod"') for m in messages)
    assert 'spec.nodeUID: Invalid value: "": must not be empty' in messages
    assert "spec.serviceAccountUID: Too long: must have at most 128 bytes" in messages
    assert (
        'spec.unverifiedUserAnnotations: Invalid value: "plain-key": must be a '
        'domain-prefixed key (such as "acme.io/foo")' in messages
    )
    assert not any("spiffe/path-overriding" in m for m in messages)


# -- update -------------------------------------------------------------------------------------


def test_the_spec_is_immutable_and_updates_keep_the_status() -> None:
    stored, _ = created(request())
    stored["status"] = {"conditions": []}
    strategy = strategy_for(resource(pcrs.RESOURCE))
    relabelled = copy.deepcopy(stored)
    relabelled["metadata"]["labels"] = {"test.podcertificaterequest.example.com": "test"}
    relabelled["status"] = {"certificateChain": "sneaked in"}
    strategy.prepare_update(relabelled, stored)
    assert relabelled["status"] == stored["status"]
    assert strategy.validate(relabelled, stored) == []
    changed = copy.deepcopy(stored)
    changed["spec"]["podName"] = "other"
    strategy.prepare_update(changed, stored)
    assert [c.message for c in strategy.validate(changed, stored)] == [
        "Invalid value: <value omitted>: field is immutable"
    ]


def test_the_status_subresource_keeps_spec_and_metadata() -> None:
    stored, _ = created(request())
    strategy = strategy_for(resource(pcrs.RESOURCE))
    new = copy.deepcopy(stored)
    new["metadata"]["labels"] = {"a": "b"}
    new["metadata"]["managedFields"] = [{"manager": "signer"}]
    new["status"] = {"conditions": []}
    strategy.prepare_status_update(new, stored)
    assert "labels" not in new["metadata"]
    assert new["metadata"]["managedFields"] == [{"manager": "signer"}]


# -- /status ------------------------------------------------------------------------------------


def stored_request(key: PrivateKey, seconds: int = 86400) -> Obj:
    return created(request(key, maxExpirationSeconds=seconds))[0]


def test_a_well_formed_issuance_is_accepted_and_then_frozen() -> None:
    key = generate_key("ECDSAP256")
    old = stored_request(key)
    before = NOW - timedelta(minutes=1)
    status = issued(
        certificate(key, before=before), before, before + timedelta(hours=1), before + timedelta(minutes=15)
    )
    assert status_update(old, status) == []
    done = copy.deepcopy(old)
    done["status"] = status
    assert status_update(done, copy.deepcopy(status)) == []  # the same again: no change
    again = copy.deepcopy(status)
    again["conditions"][0]["message"] = "changed"
    assert status_update(done, again) == [
        "status: Invalid value: <value omitted>: immutable after PodCertificateRequest "
        "is issued, denied, or failed"
    ]


def test_an_issuance_must_match_the_key_and_the_times() -> None:
    key = generate_key("ED25519")
    old = stored_request(key, seconds=3600)
    before = NOW - timedelta(minutes=1)
    after, refresh = before + timedelta(hours=1), before + timedelta(minutes=15)
    other = certificate(generate_key("ED25519"), before=before)
    assert status_update(old, issued(other, before, after, refresh)) == [
        f"status.certificateChain: Invalid value: {_quoted(other)}: leaf certificate was "
        f"not issued to the requested public key"
    ]
    chain = certificate(key, before=before)
    wrong = status_update(old, issued(chain, before + timedelta(seconds=1), after, refresh))
    assert wrong and "must be set to the NotBefore time encoded in the leaf certificate" in wrong[0]
    stale_start = NOW - timedelta(hours=1)
    stale = certificate(key, before=stale_start, lifetime=timedelta(hours=1, minutes=30))
    old_start = status_update(
        old, issued(stale, stale_start, stale_start + timedelta(hours=1, minutes=30), NOW)
    )
    assert old_start and "must be set to within 5 minutes of kube-apiserver's current time" in old_start[0]
    long = certificate(key, before=before, lifetime=timedelta(hours=2))
    too_long = status_update(old, issued(long, before, before + timedelta(hours=2), refresh))
    assert too_long == [
        "status.certificateChain: Invalid value: 2h0m0s: leaf certificate lifetime must be <= "
        "spec.maxExpirationSeconds (3600)"
    ]
    early = status_update(old, issued(chain, before, after, before + timedelta(minutes=5)))
    assert early and early[0].endswith("must be at least 10 minutes after status.notBefore")
    late = status_update(old, issued(chain, before, after, after - timedelta(minutes=5)))
    assert late and late[0].endswith("must be at least 10 minutes before status.notAfter")
    missing = issued(chain, before, after, refresh)
    del missing["beginRefreshAt"]
    assert status_update(old, missing) == [
        "status.beginRefreshAt: Required value: must be present and in the range "
        "[notbefore+10min, notafter-10min]"
    ]
    assert status_update(old, issued("garbage", before, after, refresh)) == [
        'status.certificateChain: Invalid value: "garbage": issued certificate chain '
        "must contain at least one certificate"
    ]


def test_conditions_denials_and_failures() -> None:
    key = generate_key("ECDSAP256")
    old = stored_request(key)
    before = NOW - timedelta(minutes=1)
    chain = certificate(key, before=before)
    denied = {
        "conditions": [
            {
                "type": "Denied",
                "status": "True",
                "reason": "UnsupportedKeyType",
                "message": "use RSA",
                "lastTransitionTime": pcrs.format_time(NOW),
            }
        ]
    }
    assert status_update(old, denied) == []
    with_chain = dict(denied, certificateChain=chain)
    assert status_update(old, with_chain) == [
        "status: Invalid value: <value omitted>: non-condition status fields must be empty when denying or "
        "failing the PodCertificateRequest"
    ]
    both = issued(chain, before, before + timedelta(hours=1), before + timedelta(minutes=15))
    both["conditions"].append(dict(denied["conditions"][0]))
    assert status_update(old, both) == [
        'status.conditions[1].type: Invalid value: "Denied": There may be at most one condition with type '
        '"Issued", "Denied", or "Failed"'
    ]
    other = {
        "conditions": [
            {
                "type": "Pending",
                "status": "True",
                "reason": "Wait",
                "lastTransitionTime": pcrs.format_time(NOW),
            }
        ]
    }
    assert status_update(old, other) == [
        'status.conditions[0].type: Unsupported value: "Pending": supported values: '
        '"Issued", "Denied", "Failed"'
    ]
    false = {
        "conditions": [
            {"type": "Failed", "status": "False", "reason": "X", "lastTransitionTime": pcrs.format_time(NOW)}
        ]
    }
    assert status_update(old, false) == [
        'status.conditions[0].status: Unsupported value: "False": supported values: "True"'
    ]
    no_reason = {
        "conditions": [{"type": "Failed", "status": "True", "lastTransitionTime": pcrs.format_time(NOW)}]
    }
    assert status_update(old, no_reason) == ["status.conditions[0].reason: Required value"]
    assert status_update(old, {"certificateChain": chain}) == [
        "status: Invalid value: <value omitted>: status is immutable unless "
        'transitioning to "Issued", "Denied", or "Failed"'
    ]


def _quoted(text: str) -> str:
    return '"' + text.replace("\n", "\\n") + '"'


# -- the podCertificate projected volume source -------------------------------------------------


def pod_with(source: Obj) -> Obj:
    projection = {"sources": [{"podCertificate": source}]}
    return {
        "metadata": {"name": "inspector", "namespace": "default"},
        "spec": {
            "containers": [{"name": "c", "image": "busybox"}],
            "volumes": [{"name": "tls-config", "projected": projection}],
        },
    }


def projection_messages(**source: object) -> list[str]:
    base: Obj = {
        "signerName": "e2e.example.com/signer",
        "keyType": "ECDSAP256",
        "credentialBundlePath": "b.pem",
    }
    base.update(source)
    body = {k: v for k, v in base.items() if v is not None}
    return [f"{c.field}: {c.message}" for c in check("pods", pod_with(body))]


FIELD = "spec.volumes[0].projected.sources[0].podCertificate"


def test_projection_lifetime_limits_use_upstreams_words() -> None:
    assert projection_messages() == []
    assert projection_messages(maxExpirationSeconds=3600) == []
    assert projection_messages(maxExpirationSeconds=3599) == [
        f"{FIELD}.maxExpirationSeconds: Invalid value: 3599: if provided, "
        f"maxExpirationSeconds must be >= 3600"
    ]
    assert projection_messages(maxExpirationSeconds=91 * 86400 + 1) == [
        f"{FIELD}.maxExpirationSeconds: Invalid value: 7862401: if provided, "
        f"maxExpirationSeconds must be <= 7862400"
    ]
    kubernetes = projection_messages(
        signerName="kubernetes.io/kube-apiserver-client-pod", maxExpirationSeconds=86401
    )
    assert kubernetes == [
        f"{FIELD}.maxExpirationSeconds: Invalid value: 86401: if provided, "
        f"maxExpirationSeconds must be <= 86400"
    ]


def test_projection_key_type_paths_and_annotations() -> None:
    assert projection_messages(keyType="DSA") == [
        f'{FIELD}.keyType: Unsupported value: "DSA": supported values: "RSA3072", "RSA4096", "ECDSAP256", '
        '"ECDSAP384", "ECDSAP521", "ED25519"'
    ]
    assert projection_messages(credentialBundlePath=None) == [
        f"{FIELD}: Required value: specify at least one of credentialBundlePath, keyPath, "
        f"and certificateChainPath"
    ]
    assert projection_messages(keyPath="b.pem") == [
        'spec.volumes[0].projected: Invalid value: "b.pem": conflicting duplicate paths'
    ]
    assert projection_messages(keyPath="../key.pem") == [
        f"{FIELD}.keyPath: Invalid value: \"../key.pem\": must not contain '..'"
    ]
    assert projection_messages(userAnnotations={"spiffe/path-overriding": "/custom"}) == []
    assert projection_messages(userAnnotations={"nodomain": "x"}) == [
        f'{FIELD}.userAnnotations: Invalid value: "nodomain": must be a domain-prefixed '
        f'key (such as "acme.io/foo")'
    ]
