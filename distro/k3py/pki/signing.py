"""Certificates for CertificateSigningRequests: the signer's checks, then the signature.

kube-controller-manager's csrsigning controller, minus the API: :func:`signer_problem` says
why a request may not be signed by a built-in signer (upstream's wording), and :func:`sign`
turns a PEM ``CERTIFICATE REQUEST`` into a certificate from a CA, as upstream's
``authority.PermissiveSigningPolicy`` does:

- subject and SANs (DNS, IP, email, URI) come from the request; every other extension the
  request asks for is dropped;
- key usage and extended key usage come from the CSR's ``spec.usages`` (upstream's mapping:
  "signing" and "digital signature" are both digitalSignature, "s/mime" is emailProtection);
- basicConstraints CA:FALSE, a random 128-bit serial, an authority key identifier;
- notBefore is ``now`` minus :data:`BACKDATE` (a peer whose clock lags a little still
  accepts it); notAfter is ``now + duration``, less the backdate for certificates of
  :data:`SHORT` or longer (so they live exactly ``duration``), and never after the CA's.

Which CA signs for which signer, and what the CSR's conditions say, is the API server's
business (``k3py.apiserver.certificates``); this module only knows X.509.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from k3py.pki import certs
from k3py.pki.bundle import CertKey

KUBE_APISERVER_CLIENT = "kubernetes.io/kube-apiserver-client"
KUBELET_CLIENT = "kubernetes.io/kube-apiserver-client-kubelet"
KUBELET_SERVING = "kubernetes.io/kubelet-serving"
LEGACY_UNKNOWN = "kubernetes.io/legacy-unknown"

NODE_PREFIX = "system:node:"
NODES_GROUP = "system:nodes"

BACKDATE = timedelta(minutes=5)
SHORT = timedelta(hours=8)
"""Below this lifetime the end is not backdated (5 minutes would be too much of it)."""
SERIAL_BITS = 128

DIGITAL_SIGNATURE = "digital signature"
KEY_ENCIPHERMENT = "key encipherment"
CLIENT_AUTH = "client auth"
SERVER_AUTH = "server auth"

_KEY_USAGE_FLAGS = {
    "signing": "digital_signature",
    DIGITAL_SIGNATURE: "digital_signature",
    "content commitment": "content_commitment",
    KEY_ENCIPHERMENT: "key_encipherment",
    "key agreement": "key_agreement",
    "data encipherment": "data_encipherment",
    "cert sign": "key_cert_sign",
    "crl sign": "crl_sign",
    "encipher only": "encipher_only",
    "decipher only": "decipher_only",
}
_EXTENDED_KEY_USAGES = {  # in Go's x509.ExtKeyUsage order, which upstream sorts them by
    "any": ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
    SERVER_AUTH: ExtendedKeyUsageOID.SERVER_AUTH,
    CLIENT_AUTH: ExtendedKeyUsageOID.CLIENT_AUTH,
    "code signing": ExtendedKeyUsageOID.CODE_SIGNING,
    "email protection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "s/mime": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "ipsec end system": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.5"),
    "ipsec tunnel": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.6"),
    "ipsec user": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.7"),
    "timestamping": ExtendedKeyUsageOID.TIME_STAMPING,
    "ocsp signing": ExtendedKeyUsageOID.OCSP_SIGNING,
    "microsoft sgc": x509.ObjectIdentifier("1.3.6.1.4.1.311.10.3.3"),
    "netscape sgc": x509.ObjectIdentifier("2.16.840.1.113730.4.1"),
}
KNOWN_USAGES = frozenset(_KEY_USAGE_FLAGS) | frozenset(_EXTENDED_KEY_USAGES)

_KUBELET_CLIENT_USAGES = frozenset({DIGITAL_SIGNATURE, KEY_ENCIPHERMENT, CLIENT_AUTH})
_KUBELET_SERVING_USAGES = frozenset({DIGITAL_SIGNATURE, KEY_ENCIPHERMENT, SERVER_AUTH})


class SigningError(Exception):
    """A request that cannot be signed (unreadable, a bad signature, an expired CA...)."""


# -- reading a request -----------------------------------------------------------------------


def parse_request(csr_pem: bytes) -> x509.CertificateSigningRequest:
    """The request in the first PEM block, which must be a ``CERTIFICATE REQUEST``."""
    start = csr_pem.find(b"-----BEGIN ")
    if start < 0 or not csr_pem.startswith(b"-----BEGIN CERTIFICATE REQUEST-----", start):
        raise SigningError("PEM block type must be CERTIFICATE REQUEST")
    try:
        return x509.load_pem_x509_csr(csr_pem[start:])
    except ValueError as exc:
        raise SigningError(f"unable to parse certificate request: {exc}") from None


def common_name(name: x509.Name) -> str:
    """The subject's common name as Go reads it (the last CN when there are several)."""
    found = [str(a.value) for a in name.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return found[-1] if found else ""


def organizations(name: x509.Name) -> list[str]:
    return [str(a.value) for a in name.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]


def _sans(request: x509.CertificateSigningRequest) -> x509.SubjectAlternativeName | None:
    try:
        return request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None


def _san_values(request: x509.CertificateSigningRequest, kind: type[x509.GeneralName]) -> list[object]:
    sans = _sans(request)
    return [] if sans is None else [name.value for name in sans if isinstance(name, kind)]


def node_name(request: x509.CertificateSigningRequest) -> str | None:
    """``<name>`` when the subject is ``system:node:<name>`` in exactly [system:nodes]."""
    cn = common_name(request.subject)
    if organizations(request.subject) != [NODES_GROUP] or not cn.startswith(NODE_PREFIX):
        return None
    return cn.removeprefix(NODE_PREFIX) or None


# -- the built-in signers' rules ---------------------------------------------------------------


def _go_list(values: Collection[str]) -> str:
    """Go's ``%v`` of a sorted string set: ``[a b c]``."""
    return "[" + " ".join(sorted(values)) + "]"


def _node_subject_problem(request: x509.CertificateSigningRequest) -> str | None:
    if organizations(request.subject) != [NODES_GROUP]:
        return "subject organization is not system:nodes"
    return None


def _node_common_name_problem(request: x509.CertificateSigningRequest) -> str | None:
    if node_name(request) is None:
        return "subject common name does not begin with system:node:"
    return None


def kubelet_client_problem(request: x509.CertificateSigningRequest, usages: Collection[str]) -> str | None:
    """``kubernetes.io/kube-apiserver-client-kubelet``: a node's client certificate, nothing more."""
    problem = _node_subject_problem(request)
    if problem:
        return problem
    for kind, label in (
        (x509.DNSName, "DNS"),
        (x509.RFC822Name, "Email"),
        (x509.IPAddress, "IP"),
        (x509.UniformResourceIdentifier, "URI"),
    ):
        if _san_values(request, kind):
            return f"{label} subjectAltNames are not allowed"
    problem = _node_common_name_problem(request)
    if problem:
        return problem
    wanted = set(usages)
    if CLIENT_AUTH not in wanted or not wanted <= _KUBELET_CLIENT_USAGES:
        return f"usages did not match {_go_list(_KUBELET_CLIENT_USAGES)}"
    return None


def kubelet_serving_problem(request: x509.CertificateSigningRequest, usages: Collection[str]) -> str | None:
    """``kubernetes.io/kubelet-serving``: a node's serving certificate for its names and addresses."""
    problem = _node_subject_problem(request)
    if problem:
        return problem
    if not _san_values(request, x509.DNSName) and not _san_values(request, x509.IPAddress):
        return "DNS or IP subjectAltName is required"
    if _san_values(request, x509.RFC822Name):
        return "Email subjectAltNames are not allowed"
    if _san_values(request, x509.UniformResourceIdentifier):
        return "URI subjectAltNames are not allowed"
    wanted = set(usages)
    if SERVER_AUTH not in wanted or not wanted <= _KUBELET_SERVING_USAGES:
        return f"usages did not match {_go_list(_KUBELET_SERVING_USAGES)}"
    return _node_common_name_problem(request)


def apiserver_client_problem(usages: Sequence[str]) -> str | None:
    """``kubernetes.io/kube-apiserver-client``: any subject, client usages only."""
    for usage in usages:
        if usage not in (DIGITAL_SIGNATURE, KEY_ENCIPHERMENT, CLIENT_AUTH):
            return f"invalid usage for client certificate: {usage}"
    if CLIENT_AUTH not in usages:
        return f"missing required usage for client certificate: {CLIENT_AUTH}"
    return None


def signer_problem(
    signer_name: str, request: x509.CertificateSigningRequest, usages: Sequence[str]
) -> str | None:
    """Why ``signer_name`` must refuse the request (None: it may sign). Only the three built-in
    signers k3py runs have rules; any other name is a :class:`SigningError`."""
    if signer_name == KUBELET_CLIENT:
        return kubelet_client_problem(request, usages)
    if signer_name == KUBELET_SERVING:
        return kubelet_serving_problem(request, usages)
    if signer_name == KUBE_APISERVER_CLIENT:
        return apiserver_client_problem(usages)
    raise SigningError(f'unrecognized signerName: "{signer_name}"')


# -- signing -----------------------------------------------------------------------------------


def _usages(usages: Sequence[str]) -> tuple[x509.KeyUsage | None, list[x509.ObjectIdentifier]]:
    unknown = [u for u in usages if u not in KNOWN_USAGES]
    if unknown:
        raise SigningError("unrecognized usage values: [" + " ".join(f'"{u}"' for u in unknown) + "]")
    flags = {_KEY_USAGE_FLAGS[u] for u in usages if u in _KEY_USAGE_FLAGS}
    extended = [oid for name, oid in _EXTENDED_KEY_USAGES.items() if name in usages]
    extended = list(dict.fromkeys(extended))  # "s/mime" and "email protection" are one
    if not flags:
        return None, extended
    if flags & {"encipher_only", "decipher_only"} and "key_agreement" not in flags:
        raise SigningError('"encipher only" and "decipher only" need "key agreement"')
    names = (
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
        "encipher_only",
        "decipher_only",
    )
    return x509.KeyUsage(**{name: name in flags for name in names}), extended


def _authority_key_identifier(
    ca_cert: x509.Certificate, ca_key: certs.PrivateKey
) -> x509.AuthorityKeyIdentifier:
    """The CA's subject key identifier, as Go copies it; derived from its key when it has none."""
    try:
        ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _go_time(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} +0000 UTC"


def validity(now: datetime, duration: timedelta, ca_not_after: datetime) -> tuple[datetime, datetime]:
    """(notBefore, notAfter) of a certificate signed at ``now`` for ``duration``."""
    not_before = now - BACKDATE
    not_after = now + duration if duration < SHORT else now + duration - BACKDATE
    if not_before >= ca_not_after:
        raise SigningError(f"the signer has expired: NotAfter={_go_time(ca_not_after)}")
    if now >= ca_not_after:
        raise SigningError(
            f"refusing to sign a certificate that expired in the past: NotAfter={_go_time(ca_not_after)}"
        )
    return not_before, min(not_after, ca_not_after)


def sign(
    csr_pem: bytes,
    ca: CertKey,
    *,
    usages: Sequence[str],
    duration: timedelta,
    now: datetime,
) -> bytes:
    """The PEM certificate for the request, signed by ``ca`` (see the module docstring).

    Raises :class:`SigningError` for a request that is unreadable, badly signed or asks for
    unknown usages, and when the CA has expired; ``k3py.pki.PkiError`` for unusable CA files.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    request = parse_request(csr_pem)
    try:
        valid = request.is_signature_valid
    except UnsupportedAlgorithm as exc:
        raise SigningError(f"unable to verify certificate request signature: {exc}") from None
    if not valid:
        raise SigningError("unable to verify certificate request signature: the signature does not verify")
    ca_cert = certs.parse_certs(ca.cert_path, ca.cert_pem)[0]
    ca_key = certs.parse_key(ca.key_path, ca.key_pem)
    key_usage, extended = _usages(usages)
    not_before, not_after = validity(now, duration, ca_cert.not_valid_after_utc)
    public_key = request.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(request.subject)
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(secrets.randbits(SERIAL_BITS) or 1)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_authority_key_identifier(ca_cert, ca_key), critical=False)
    )
    if key_usage is not None:
        builder = builder.add_extension(key_usage, critical=True)
    if extended:
        builder = builder.add_extension(x509.ExtendedKeyUsage(extended), critical=False)
    names = _kept_sans(request)
    if names:
        # Go marks the SANs critical when they are all that names the subject (RFC 5280 4.2.1.6).
        builder = builder.add_extension(
            x509.SubjectAlternativeName(names), critical=len(request.subject) == 0
        )
    cert = builder.sign(ca_key, hashes.SHA256())
    return certs.certs_to_pem(cert)


def _kept_sans(request: x509.CertificateSigningRequest) -> list[x509.GeneralName]:
    sans = _sans(request)
    kept = (x509.DNSName, x509.IPAddress, x509.RFC822Name, x509.UniformResourceIdentifier)
    return [] if sans is None else [name for name in sans if isinstance(name, kept)]
