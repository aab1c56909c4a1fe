"""Keys and certificates in memory: generate, issue, parse and check; no file I/O here.

New keys are ECDSA P-256 (see docs/adr/0003-pki.md); existing ECDSA or RSA keys are
accepted, so an operator-provided CA keeps working. Certificates are X.509 v3 with the
extensions strict verifiers (Go's crypto/x509, OpenSSL with X509_STRICT) expect: a CA has
critical basicConstraints and keyUsage plus a subject key identifier; a leaf has
basicConstraints CA:FALSE, digitalSignature, one extended key usage and an authority key
identifier pointing at its CA.
"""

from __future__ import annotations

import ipaddress
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from k3py.pki.errors import PkiError

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

CA_VALIDITY = timedelta(days=3650)
LEAF_VALIDITY = timedelta(days=365)
# Certificates start slightly in the past so a peer whose clock lags a little accepts them.
BACKDATE = timedelta(minutes=5)

SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH
CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH


@dataclass(frozen=True, slots=True, kw_only=True)
class LeafSpec:
    """What an issued certificate must say: subject, usage and (for servers) SANs."""

    common_name: str
    organizations: tuple[str, ...] = ()
    usage: x509.ObjectIdentifier
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[IPAddress, ...] = ()

    def subject(self) -> x509.Name:
        attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in self.organizations]
        # No 64-character cap on the common name (RFC 5280's upper bound, which cryptography
        # enforces and Go does not): service-account users such as
        # system:serviceaccount:kube-system:endpointslicemirroring-controller are longer.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # cryptography still warns about the length
            attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, self.common_name, _validate=False))
        return x509.Name(attributes)


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_to_pem(key: PrivateKey) -> bytes:
    """PEM of the key, unencrypted, in the traditional form K3s writes ("EC PRIVATE KEY")."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def certs_to_pem(*certs: x509.Certificate) -> bytes:
    return b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in certs)


def new_ca(common_name: str, key: PrivateKey, now: datetime) -> x509.Certificate:
    """A self-signed CA certificate valid for :data:`CA_VALIDITY` from ``now``."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    return builder.sign(key, hashes.SHA256())


def issue(
    spec: LeafSpec,
    key: PrivateKey,
    ca_cert: x509.Certificate,
    ca_key: PrivateKey,
    now: datetime,
) -> x509.Certificate:
    """A certificate for ``key`` as ``spec`` describes, signed by the CA, valid for a year."""
    # Never outlive the CA: a chain is only as valid as its shortest-lived link.
    not_after = min(now + LEAF_VALIDITY, ca_cert.not_valid_after_utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(spec.subject())
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([spec.usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in spec.dns_names]
    names += [x509.IPAddress(ip) for ip in spec.ip_addresses]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def parse_key(path: Path, data: bytes) -> PrivateKey:
    """The private key in ``data`` (read from ``path``); a PkiError if it is not one we use."""
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError as exc:  # encrypted with a passphrase
        raise PkiError(path, f"cannot use the private key: {exc}") from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise PkiError(path, "not a valid PEM private key (file corrupt or truncated?)") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise PkiError(path, f"unsupported key type {type(key).__name__}; expected ECDSA or RSA")
    return key


def parse_certs(path: Path, data: bytes) -> list[x509.Certificate]:
    """The PEM certificates in ``data``, first one first; a PkiError if there are none."""
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise PkiError(path, "not a valid PEM certificate (file corrupt or truncated?)") from exc
    if not certs:  # pragma: no cover - load_pem_x509_certificates raises on no certificate
        raise PkiError(path, "no certificate found")
    return certs


def same_public_key(cert: x509.Certificate, key: PrivateKey) -> bool:
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    cert_public = cert.public_key().public_bytes(der, spki)
    return cert_public == key.public_key().public_bytes(der, spki)


def directly_issued_by(cert: x509.Certificate, ca_cert: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def is_ca(cert: x509.Certificate) -> bool:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    return constraints.ca


def subject_alt_names(cert: x509.Certificate) -> tuple[set[str], set[IPAddress]]:
    """The certificate's DNS names (lower case) and IP addresses; empty sets if it has none."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set(), set()
    dns = {name.lower() for name in san.get_values_for_type(x509.DNSName)}
    ips: set[IPAddress] = {
        ip
        for ip in san.get_values_for_type(x509.IPAddress)
        if isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address)
    }
    return dns, ips


def missing_sans(cert: x509.Certificate, dns_names: Sequence[str], ips: Sequence[IPAddress]) -> list[str]:
    """The requested names the certificate does not cover, as text (empty: all covered)."""
    have_dns, have_ips = subject_alt_names(cert)
    missing = [name for name in dns_names if name.lower() not in have_dns]
    missing += [str(ip) for ip in ips if ip not in have_ips]
    return missing
