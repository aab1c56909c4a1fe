"""Certificate requests built to break what reads them later are refused when created."""

from __future__ import annotations

import base64
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from k3py.api import csr_validation
from k3py.api.csr_validation import request_error

KEY = ec.generate_private_key(ec.SECP256R1())
ECDSA_SHA256 = bytes.fromhex("300a06082a8648ce3d040302")


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _tlv(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _length(len(body)) + body


def resigned(tbs: bytes) -> bytes:
    """A PEM request around ``tbs``, validly signed: only its contents are odd."""
    signature = KEY.sign(tbs, ec.ECDSA(hashes.SHA256()))
    der = _tlv(0x30, tbs + ECDSA_SHA256 + _tlv(0x03, b"\x00" + signature))
    return (
        b"-----BEGIN CERTIFICATE REQUEST-----\n"
        + base64.encodebytes(der)
        + b"-----END CERTIFICATE REQUEST-----\n"
    )


def request(common_name: str, *extensions: x509.ExtensionType) -> x509.CertificateSigningRequest:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    return builder.sign(KEY, hashes.SHA256())


def encoded(pem: bytes) -> str:
    return base64.b64encode(pem).decode()


def test_a_plain_request_is_fine() -> None:
    assert request_error(encoded(request("system:node:n1").public_bytes(serialization.Encoding.PEM))) is None


def test_two_san_extensions_are_malformed() -> None:
    tbs = request(
        "system:node:n1",
        x509.SubjectAlternativeName([x509.DNSName("n1")]),
        x509.IssuerAlternativeName([x509.DNSName("n1")]),
    ).tbs_certrequest_bytes
    tbs = tbs.replace(bytes.fromhex("0603551d12"), bytes.fromhex("0603551d11"))  # the IAN OID becomes SAN
    assert (error := request_error(encoded(resigned(tbs)))) and "malformed" in error


def test_a_common_name_that_is_not_utf8_is_malformed() -> None:
    tbs = request("system:node:n1XX").tbs_certrequest_bytes.replace(b"n1XX", b"n1\xff\xfe")
    assert (error := request_error(encoded(resigned(tbs)))) and "malformed" in error


@pytest.mark.parametrize("blocks", [20_000, 100_000])
def test_pem_scanning_is_linear(blocks: int) -> None:
    started = time.monotonic()
    assert csr_validation._blocks(b"-----BEGIN A-----\n" * blocks) == []
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("seconds", [10**18, 2**31, -1, "600", 1e9, True])
def test_expiration_must_be_a_32_bit_integer(seconds: object) -> None:
    body = {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": "x"},
        "spec": {
            "request": encoded(request("jane").public_bytes(serialization.Encoding.PEM)),
            "signerName": "kubernetes.io/kube-apiserver-client",
            "usages": ["client auth"],
            "expirationSeconds": seconds,
        },
    }
    causes = csr_validation.validate(body, None)
    assert [c.field for c in causes] == ["spec.expirationSeconds"]
