"""``k3py.pki.frontproxy``: the request-header CA and the proxy's client certificate, made once
and reused, added to a TLS directory that predates them, and refused when half a CA is left."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from k3py.pki import PkiError, ensure_pki
from k3py.pki.frontproxy import ensure_front_proxy


def test_first_run_creates_the_pair_and_the_next_reuses_it(tmp_path: Path) -> None:
    ensure_pki(tmp_path, dns_names=[], ip_addresses=[])  # a directory from before aggregation
    first = ensure_front_proxy(tmp_path)
    assert sorted(p.name for p in first.written) == [
        "client-auth-proxy.crt",
        "client-auth-proxy.key",
        "request-header-ca.crt",
        "request-header-ca.key",
    ]
    ca = x509.load_pem_x509_certificate(first.request_header_ca.cert_pem)
    chain = x509.load_pem_x509_certificates(first.client.cert_pem)
    chain[0].verify_directly_issued_by(ca)
    assert chain[1:] == [ca]
    assert chain[0].subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "system:auth-proxy"
    usage = chain[0].extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    client_ca = x509.load_pem_x509_certificate((tmp_path / "client-ca.crt").read_bytes())
    assert ca.subject != client_ca.subject  # a CA of its own

    again = ensure_front_proxy(tmp_path)
    assert again.written == ()
    assert (again.request_header_ca, again.client) == (first.request_header_ca, first.client)


def test_the_client_certificate_is_renewed_near_expiry(tmp_path: Path) -> None:
    start = datetime.now(UTC)
    first = ensure_front_proxy(tmp_path, now=start)
    later = ensure_front_proxy(tmp_path, now=start + timedelta(days=300))
    assert later.written == (first.client.cert_path,)
    assert later.client.key_pem == first.client.key_pem


def test_half_a_ca_is_refused(tmp_path: Path) -> None:
    first = ensure_front_proxy(tmp_path)
    first.request_header_ca.key_path.unlink()
    with pytest.raises(PkiError, match=r"request-header-ca\.key"):
        ensure_front_proxy(tmp_path)
