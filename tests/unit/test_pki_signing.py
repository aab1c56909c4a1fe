"""Signing CertificateSigningRequests: the certificate a CA issues, and each signer's rules."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from k3py.pki import CertKey, certs, signing
from k3py.pki.signing import (
    KUBE_APISERVER_CLIENT,
    KUBELET_CLIENT,
    KUBELET_SERVING,
    SigningError,
    sign,
    signer_problem,
)

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
YEAR = timedelta(days=365)
CLIENT = ["digital signature", "key encipherment", "client auth"]
SERVING = ["digital signature", "key encipherment", "server auth"]
E = TypeVar("E", bound=x509.ExtensionType)


@pytest.fixture(scope="module")
def ca() -> CertKey:
    key = certs.new_key()
    cert = certs.new_ca("test-ca", key, NOW - timedelta(days=1))
    return CertKey(Path("ca.crt"), Path("ca.key"), certs.certs_to_pem(cert), certs.key_to_pem(key))


def ca_cert(ca: CertKey) -> x509.Certificate:
    return x509.load_pem_x509_certificate(ca.cert_pem)


def request(
    cn: str = "system:node:n1",
    orgs: Sequence[str] = ("system:nodes",),
    sans: Sequence[x509.GeneralName] = (),
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | None = None,
    extensions: Sequence[x509.ExtensionType] = (),
) -> bytes:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    if cn:
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attributes))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    signed = builder.sign(key or certs.new_key(), hashes.SHA256())
    return signed.public_bytes(serialization.Encoding.PEM)


def parsed(pem: bytes) -> x509.CertificateSigningRequest:
    return signing.parse_request(pem)


def extension(cert: x509.Certificate, kind: type[E]) -> E:
    return cert.extensions.get_extension_for_class(kind).value


# -- signing -----------------------------------------------------------------------------------


def test_a_client_request_is_signed_with_its_subject_usages_and_validity(ca: CertKey) -> None:
    key = certs.new_key()
    pem = sign(request(key=key), ca, usages=CLIENT, duration=YEAR, now=NOW)
    [cert] = x509.load_pem_x509_certificates(pem)
    issuer = ca_cert(ca)
    cert.verify_directly_issued_by(issuer)
    assert cert.issuer == issuer.subject
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "system:node:n1"
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == [
        "system:nodes"
    ]
    assert certs.same_public_key(cert, key)
    usage = extension(cert, x509.KeyUsage)
    assert usage.digital_signature and usage.key_encipherment and not usage.key_cert_sign
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).critical
    assert list(extension(cert, x509.ExtendedKeyUsage)) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert extension(cert, x509.BasicConstraints).ca is False
    assert (
        extension(cert, x509.AuthorityKeyIdentifier).key_identifier
        == extension(issuer, x509.SubjectKeyIdentifier).digest
    )
    # Backdated 5 minutes; a long-lived certificate lives exactly its duration.
    assert cert.not_valid_before_utc == NOW - timedelta(minutes=5)
    assert cert.not_valid_after_utc == NOW + YEAR - timedelta(minutes=5)
    assert cert.serial_number > 0
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)


def test_two_certificates_for_one_request_have_different_serials(ca: CertKey) -> None:
    pem = request()
    first, second = (
        x509.load_pem_x509_certificate(sign(pem, ca, usages=CLIENT, duration=YEAR, now=NOW)) for _ in range(2)
    )
    assert first.serial_number != second.serial_number


def test_a_short_certificate_ends_exactly_at_its_duration(ca: CertKey) -> None:
    pem = sign(request(), ca, usages=CLIENT, duration=timedelta(hours=1), now=NOW)
    cert = x509.load_pem_x509_certificate(pem)
    assert cert.not_valid_after_utc == NOW + timedelta(hours=1)


def test_a_certificate_never_outlives_its_ca(ca: CertKey) -> None:
    cert = x509.load_pem_x509_certificate(
        sign(request(), ca, usages=CLIENT, duration=timedelta(days=365 * 20), now=NOW)
    )
    assert cert.not_valid_after_utc == ca_cert(ca).not_valid_after_utc


def test_an_expired_ca_signs_nothing(ca: CertKey) -> None:
    later = ca_cert(ca).not_valid_after_utc + timedelta(days=1)
    with pytest.raises(SigningError, match="the signer has expired"):
        sign(request(), ca, usages=CLIENT, duration=YEAR, now=later)


def test_serving_sans_are_kept_and_other_requested_extensions_dropped(ca: CertKey) -> None:
    sans: list[x509.GeneralName] = [
        x509.DNSName("node1.example"),
        x509.IPAddress(ipaddress.ip_address("10.0.0.7")),
        x509.IPAddress(ipaddress.ip_address("fd00::7")),
    ]
    pem = request(sans=sans, extensions=[x509.BasicConstraints(ca=True, path_length=None)])
    cert = x509.load_pem_x509_certificate(sign(pem, ca, usages=SERVING, duration=YEAR, now=NOW))
    san = extension(cert, x509.SubjectAlternativeName)
    assert san.get_values_for_type(x509.DNSName) == ["node1.example"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("10.0.0.7"),
        ipaddress.ip_address("fd00::7"),
    ]
    assert extension(cert, x509.BasicConstraints).ca is False  # the request asked for CA:TRUE
    assert list(extension(cert, x509.ExtendedKeyUsage)) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_usages_map_as_upstream_does(ca: CertKey) -> None:
    usages = ["client auth", "s/mime", "server auth", "email protection", "signing"]
    cert = x509.load_pem_x509_certificate(sign(request(), ca, usages=usages, duration=YEAR, now=NOW))
    # Sorted in Go's ExtKeyUsage order, s/mime and email protection being one.
    assert list(extension(cert, x509.ExtendedKeyUsage)) == [
        ExtendedKeyUsageOID.SERVER_AUTH,
        ExtendedKeyUsageOID.CLIENT_AUTH,
        ExtendedKeyUsageOID.EMAIL_PROTECTION,
    ]
    usage = extension(cert, x509.KeyUsage)
    assert usage.digital_signature and not usage.key_encipherment


def test_no_key_usage_extension_without_key_usages(ca: CertKey) -> None:
    cert = x509.load_pem_x509_certificate(sign(request(), ca, usages=["client auth"], duration=YEAR, now=NOW))
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.KeyUsage)


def test_an_rsa_request_is_signed(ca: CertKey) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = x509.load_pem_x509_certificate(sign(request(key=key), ca, usages=CLIENT, duration=YEAR, now=NOW))
    assert certs.same_public_key(cert, key)


def test_unreadable_or_forged_requests_are_refused(ca: CertKey) -> None:
    with pytest.raises(SigningError, match="PEM block type must be CERTIFICATE REQUEST"):
        sign(ca.cert_pem, ca, usages=CLIENT, duration=YEAR, now=NOW)
    with pytest.raises(SigningError, match="PEM block type must be CERTIFICATE REQUEST"):
        sign(b"hello", ca, usages=CLIENT, duration=YEAR, now=NOW)
    der = bytearray(parsed(request()).public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01  # the last byte of the signature
    forged = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM)
    with pytest.raises(SigningError, match="unable to verify certificate request signature"):
        sign(forged, ca, usages=CLIENT, duration=YEAR, now=NOW)


def test_unknown_usages_are_refused(ca: CertKey) -> None:
    with pytest.raises(SigningError, match='unrecognized usage values: \\["flying"\\]'):
        sign(request(), ca, usages=["client auth", "flying"], duration=YEAR, now=NOW)


# -- the signers' rules ----------------------------------------------------------------------------


def test_kubelet_client_accepts_a_node_with_client_usages() -> None:
    for usages in (["client auth"], ["digital signature", "client auth"], CLIENT):
        assert signer_problem(KUBELET_CLIENT, parsed(request()), usages) is None


@pytest.mark.parametrize(
    ("pem", "usages", "reason"),
    [
        (request(orgs=()), CLIENT, "subject organization is not system:nodes"),
        (
            request(orgs=("system:nodes", "system:masters")),
            CLIENT,
            "subject organization is not system:nodes",
        ),
        (request(orgs=("system:masters",)), CLIENT, "subject organization is not system:nodes"),
        (request(sans=[x509.DNSName("n1")]), CLIENT, "DNS subjectAltNames are not allowed"),
        (request(sans=[x509.RFC822Name("a@b.c")]), CLIENT, "Email subjectAltNames are not allowed"),
        (
            request(sans=[x509.IPAddress(ipaddress.ip_address("10.0.0.1"))]),
            CLIENT,
            "IP subjectAltNames are not allowed",
        ),
        (
            request(sans=[x509.UniformResourceIdentifier("spiffe://x")]),
            CLIENT,
            "URI subjectAltNames are not allowed",
        ),
        (request(cn="system:admin"), CLIENT, "subject common name does not begin with system:node:"),
        (request(cn="system:node:"), CLIENT, "subject common name does not begin with system:node:"),
        (
            request(),
            [*CLIENT, "server auth"],
            "usages did not match [client auth digital signature key encipherment]",
        ),
        (
            request(),
            ["digital signature"],
            "usages did not match [client auth digital signature key encipherment]",
        ),
    ],
)
def test_kubelet_client_rules(pem: bytes, usages: list[str], reason: str) -> None:
    assert signer_problem(KUBELET_CLIENT, parsed(pem), usages) == reason


def test_kubelet_serving_accepts_a_node_with_names() -> None:
    dns = [x509.DNSName("n1")]
    ip = [x509.IPAddress(ipaddress.ip_address("10.0.0.1"))]
    for sans in (dns, ip, dns + ip):
        for usages in (SERVING, ["digital signature", "server auth"], ["server auth"]):
            assert signer_problem(KUBELET_SERVING, parsed(request(sans=sans)), usages) is None


@pytest.mark.parametrize(
    ("pem", "usages", "reason"),
    [
        (request(orgs=("system:masters",)), SERVING, "subject organization is not system:nodes"),
        (request(sans=[]), SERVING, "DNS or IP subjectAltName is required"),
        (
            request(sans=[x509.DNSName("n1"), x509.RFC822Name("a@b.c")]),
            SERVING,
            "Email subjectAltNames are not allowed",
        ),
        (
            request(sans=[x509.DNSName("n1"), x509.UniformResourceIdentifier("spiffe://x")]),
            SERVING,
            "URI subjectAltNames are not allowed",
        ),
        (
            request(sans=[x509.DNSName("n1")]),
            [*SERVING, "client auth"],
            "usages did not match [digital signature key encipherment server auth]",
        ),
        (
            request(sans=[x509.DNSName("n1")]),
            ["digital signature", "key encipherment"],
            "usages did not match [digital signature key encipherment server auth]",
        ),
        (
            request(sans=[x509.DNSName("n1")], cn="kubelet"),
            SERVING,
            "subject common name does not begin with system:node:",
        ),
    ],
)
def test_kubelet_serving_rules(pem: bytes, usages: list[str], reason: str) -> None:
    assert signer_problem(KUBELET_SERVING, parsed(pem), usages) == reason


def test_kube_apiserver_client_rules() -> None:
    anyone = parsed(request(cn="jane", orgs=("developers",), sans=[x509.DNSName("x")]))
    assert signer_problem(KUBE_APISERVER_CLIENT, anyone, CLIENT) is None
    assert signer_problem(KUBE_APISERVER_CLIENT, anyone, ["client auth"]) is None
    assert (
        signer_problem(KUBE_APISERVER_CLIENT, anyone, [*CLIENT, "server auth"])
        == "invalid usage for client certificate: server auth"
    )
    assert (
        signer_problem(KUBE_APISERVER_CLIENT, anyone, ["digital signature"])
        == "missing required usage for client certificate: client auth"
    )


def test_other_signers_have_no_rules_here() -> None:
    with pytest.raises(SigningError, match="unrecognized signerName"):
        signer_problem("example.com/mine", parsed(request()), CLIENT)


def test_the_last_common_name_counts_as_go_reads_it() -> None:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "system:node:a"),
            x509.NameAttribute(NameOID.COMMON_NAME, "system:admin"),
        ]
    )
    assert signing.common_name(name) == "system:admin"
