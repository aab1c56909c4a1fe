"""The cluster PKI in the server's TLS directory: created once, then reused or renewed.

The files keep K3s's names (K3s writes them to /var/lib/rancher/k3s/server/tls)::

    server-ca.crt, server-ca.key                    CA for serving certificates
    client-ca.crt, client-ca.key                    CA for client certificates
    serving-kube-apiserver.crt, ...key              the API server's certificate, then the server CA
    client-admin.crt, client-admin.key              system:admin in system:masters, then the client CA
    client-kube-apiserver.crt, ...key               system:apiserver in system:masters, then the
                                                    client CA: the API server's identity to kubelets

:func:`ensure_pki` first reads and parses every file that exists; one that cannot be read
or parsed raises :class:`PkiError` before anything is written. It then decides, in memory:

- the CAs are created when none of their four files exist (the first run); otherwise both
  pairs must be complete, matching and unexpired. A CA is never replaced silently: every
  kubeconfig and node certificate in the field depends on it.
- a leaf key is reused whenever it exists (a missing one is generated).
- a leaf certificate is reissued, with its existing key, when it is missing, does not match
  its key, was not issued by the current CA, has another subject or usage, is not valid
  yet, expires within :data:`RENEW_BEFORE`, or (serving) lacks a requested SAN. A reissued
  serving certificate carries exactly the requested SANs.

Finally it writes what changed, each file atomically (keys 0600, certificates 0644).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509

from k3py.pki import certs
from k3py.pki.certs import IPAddress, LeafSpec, PrivateKey
from k3py.pki.errors import PkiError
from k3py.pki.files import CERT_MODE, KEY_MODE, ensure_dir, read_optional, write_atomic

log = logging.getLogger(__name__)

RENEW_BEFORE = timedelta(days=90)

DEFAULT_DNS_NAMES = (
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
    "localhost",
)
DEFAULT_IP_ADDRESSES: tuple[IPAddress, ...] = (
    ipaddress.IPv4Address("127.0.0.1"),
    ipaddress.IPv6Address("::1"),
)

SERVER_CA = "server-ca"
CLIENT_CA = "client-ca"
SERVING = "serving-kube-apiserver"
ADMIN = "client-admin"
KUBELET_CLIENT = "client-kube-apiserver"

_USAGE_NAMES = {certs.SERVER_AUTH: "serverAuth", certs.CLIENT_AUTH: "clientAuth"}

ADMIN_SPEC = LeafSpec(common_name="system:admin", organizations=("system:masters",), usage=certs.CLIENT_AUTH)
KUBELET_CLIENT_SPEC = LeafSpec(
    common_name="system:apiserver", organizations=("system:masters",), usage=certs.CLIENT_AUTH
)


@dataclass(frozen=True, slots=True)
class CertKey:
    """A certificate file and its key file, with their contents as written."""

    cert_path: Path
    key_path: Path
    cert_pem: bytes  # an issued certificate is followed by its CA's certificate
    key_pem: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Pki:
    """Everything the server needs from its TLS directory."""

    tls_dir: Path
    server_ca: CertKey  # clients trust this (certificate-authority-data)
    client_ca: CertKey  # the server verifies client certificates against this
    serving: CertKey  # the API server's chain and key
    admin: CertKey  # system:admin, for the admin kubeconfig
    kubelet_client: CertKey  # system:apiserver: the API server calling kubelets (logs, exec, proxy)
    written: tuple[Path, ...] = ()  # the files this run wrote; empty when all were reused


@dataclass(frozen=True, slots=True)
class _Found:
    """A cert/key pair's paths and the bytes found there (None: no such file)."""

    cert_path: Path
    key_path: Path
    cert_data: bytes | None
    key_data: bytes | None

    @classmethod
    def read(cls, tls_dir: Path, name: str) -> _Found:
        cert_path, key_path = tls_dir / f"{name}.crt", tls_dir / f"{name}.key"
        return cls(cert_path, key_path, read_optional(cert_path), read_optional(key_path))

    def present(self) -> list[Path]:
        return [path for path, data in self._files() if data is not None]

    def missing(self) -> list[Path]:
        return [path for path, data in self._files() if data is None]

    def _files(self) -> tuple[tuple[Path, bytes | None], tuple[Path, bytes | None]]:
        return (self.cert_path, self.cert_data), (self.key_path, self.key_data)


@dataclass(frozen=True, slots=True)
class _Issuer:
    cert: x509.Certificate
    key: PrivateKey
    files: CertKey


@dataclass(slots=True)
class _Plan:
    """The files to write once everything has been read and checked."""

    writes: list[tuple[Path, bytes, int]] = field(default_factory=list)

    def add(self, path: Path, data: bytes, mode: int) -> None:
        self.writes.append((path, data, mode))


def ensure_pki(
    tls_dir: Path,
    *,
    dns_names: Sequence[str],
    ip_addresses: Sequence[IPAddress],
    now: datetime | None = None,
) -> Pki:
    """Create or reuse the cluster PKI in ``tls_dir`` (see the module docstring).

    ``dns_names`` and ``ip_addresses`` are the serving certificate's SANs besides the
    defaults (the kubernetes service names, localhost, 127.0.0.1, ::1). ``now`` is for tests.
    """
    now = datetime.now(UTC) if now is None else now
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    serving_spec = _serving_spec(dns_names, ip_addresses)
    ensure_dir(tls_dir, mode=0o700)
    names = (SERVER_CA, CLIENT_CA, SERVING, ADMIN, KUBELET_CLIENT)
    found = {name: _Found.read(tls_dir, name) for name in names}

    plan = _Plan()
    leaves = found[SERVING].present() + found[ADMIN].present() + found[KUBELET_CLIENT].present()
    server_ca, client_ca = _cas(found[SERVER_CA], found[CLIENT_CA], leaves, now, plan)
    serving = _leaf(found[SERVING], serving_spec, server_ca, now, plan)
    admin = _leaf(found[ADMIN], ADMIN_SPEC, client_ca, now, plan)
    kubelet_client = _leaf(found[KUBELET_CLIENT], KUBELET_CLIENT_SPEC, client_ca, now, plan)

    for path, data, mode in plan.writes:
        write_atomic(path, data, mode)
    return Pki(
        tls_dir=tls_dir,
        server_ca=server_ca.files,
        client_ca=client_ca.files,
        serving=serving,
        admin=admin,
        kubelet_client=kubelet_client,
        written=tuple(path for path, _, _ in plan.writes),
    )


def _serving_spec(dns_names: Sequence[str], ip_addresses: Sequence[IPAddress]) -> LeafSpec:
    """Defaults plus the caller's names, deduplicated in order; IPs given as names move over."""
    names: list[str] = []
    ips: list[IPAddress] = list(DEFAULT_IP_ADDRESSES)
    for raw in (*DEFAULT_DNS_NAMES, *dns_names):
        name = raw.strip().removesuffix(".")
        try:
            ips.append(ipaddress.ip_address(name))
            continue
        except ValueError:
            pass
        if not name or not name.isascii() or any(c.isspace() for c in name):
            raise PkiError(None, f"invalid DNS name {raw!r} for the serving certificate (use ASCII/punycode)")
        if name.lower() not in {n.lower() for n in names}:
            names.append(name)
    ips += ip_addresses
    return LeafSpec(
        common_name="kube-apiserver",
        usage=certs.SERVER_AUTH,
        dns_names=tuple(names),
        ip_addresses=tuple(dict.fromkeys(ips)),
    )


def _cas(
    server: _Found, client: _Found, leaves: Sequence[Path], now: datetime, plan: _Plan
) -> tuple[_Issuer, _Issuer]:
    """The two CAs, created on the first run (``leaves``: issued files already present)."""
    present = server.present() + client.present()
    if not present and not leaves:
        log.info("creating the cluster CAs in %s", server.cert_path.parent)
        return _new_ca(server, SERVER_CA, now, plan), _new_ca(client, CLIENT_CA, now, plan)
    missing = server.missing() + client.missing()
    if missing:
        evidence = (present or list(leaves))[0]
        raise PkiError(
            missing[0],
            f"missing, but {evidence.name} exists. A cluster CA is never regenerated: restore the CA "
            f"files from a backup, or delete {evidence.parent} to start a new cluster (every "
            "kubeconfig and node certificate issued so far then stops working)",
        )
    return _load_ca(server, now), _load_ca(client, now)


def _new_ca(found: _Found, name: str, now: datetime, plan: _Plan) -> _Issuer:
    key = certs.new_key()
    cert = certs.new_ca(f"k3py-{name}@{int(now.timestamp())}", key, now)
    files = CertKey(found.cert_path, found.key_path, certs.certs_to_pem(cert), certs.key_to_pem(key))
    plan.add(files.key_path, files.key_pem, KEY_MODE)
    plan.add(files.cert_path, files.cert_pem, CERT_MODE)
    return _Issuer(cert, key, files)


def _load_ca(found: _Found, now: datetime) -> _Issuer:
    assert found.cert_data is not None and found.key_data is not None
    cert = certs.parse_certs(found.cert_path, found.cert_data)[0]
    key = certs.parse_key(found.key_path, found.key_data)
    if not certs.is_ca(cert):
        raise PkiError(found.cert_path, "not a CA certificate (basicConstraints CA:TRUE is missing)")
    if not certs.same_public_key(cert, key):
        raise PkiError(found.key_path, f"does not match the certificate in {found.cert_path.name}")
    expires = cert.not_valid_after_utc
    if expires <= now:
        raise PkiError(
            found.cert_path,
            f"the CA certificate expired on {expires:%Y-%m-%d}; rotate the cluster CA before starting",
        )
    if expires - now < RENEW_BEFORE:
        log.warning("%s expires on %s: plan a CA rotation", found.cert_path, f"{expires:%Y-%m-%d}")
    files = CertKey(found.cert_path, found.key_path, found.cert_data, found.key_data)
    return _Issuer(cert, key, files)


def _leaf(found: _Found, spec: LeafSpec, issuer: _Issuer, now: datetime, plan: _Plan) -> CertKey:
    # Parse both files before deciding anything, so a corrupt one is reported, not replaced.
    chain = certs.parse_certs(found.cert_path, found.cert_data) if found.cert_data is not None else None
    key = certs.parse_key(found.key_path, found.key_data) if found.key_data is not None else certs.new_key()
    reason: str | None
    if found.key_data is not None:
        key_pem = found.key_data
        reason = _reissue_reason(chain, key, spec, issuer, now)
    else:
        key_pem = certs.key_to_pem(key)
        plan.add(found.key_path, key_pem, KEY_MODE)
        reason = "new key"
    if reason is None:
        assert found.cert_data is not None
        return CertKey(found.cert_path, found.key_path, found.cert_data, key_pem)
    log.info("issuing %s: %s", found.cert_path, reason)
    cert = certs.issue(spec, key, issuer.cert, issuer.key, now)
    cert_pem = certs.certs_to_pem(cert, issuer.cert)
    plan.add(found.cert_path, cert_pem, CERT_MODE)
    return CertKey(found.cert_path, found.key_path, cert_pem, key_pem)


def _reissue_reason(
    chain: list[x509.Certificate] | None, key: PrivateKey, spec: LeafSpec, issuer: _Issuer, now: datetime
) -> str | None:
    """Why the existing certificate cannot be kept, or None if it can."""
    if chain is None:
        return "no certificate yet"
    leaf = chain[0]
    if not certs.same_public_key(leaf, key):
        return "the certificate does not match the key"
    if not certs.directly_issued_by(leaf, issuer.cert) or chain[1:] != [issuer.cert]:
        return f"not issued by the current {issuer.files.cert_path.name}"
    if leaf.subject != spec.subject():
        return f"subject {leaf.subject.rfc4514_string()} is not {spec.subject().rfc4514_string()}"
    if spec.usage not in _extended_key_usage(leaf):
        return f"extended key usage lacks {_USAGE_NAMES.get(spec.usage, spec.usage.dotted_string)}"
    if leaf.not_valid_before_utc > now:
        return f"not valid before {leaf.not_valid_before_utc:%Y-%m-%d %H:%M} (has the clock moved back?)"
    if leaf.not_valid_after_utc - now < RENEW_BEFORE:
        return f"expires on {leaf.not_valid_after_utc:%Y-%m-%d}, within {RENEW_BEFORE.days} days"
    missing = certs.missing_sans(leaf, spec.dns_names, spec.ip_addresses)
    if missing:
        return f"does not cover {', '.join(missing)}"
    return None


def _extended_key_usage(cert: x509.Certificate) -> list[x509.ObjectIdentifier]:
    try:
        return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return []
