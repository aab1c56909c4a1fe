"""``extension-apiserver-authentication``'s data: what the server requires, merged with what is
stored as upstream's clusterauthenticationtrust controller merges it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from cryptography import x509

from k3py.apiserver.aggregator_trust import TrustInfo, authentication_data
from k3py.pki.certs import certs_to_pem, new_ca, new_key

NOW = datetime(2030, 6, 1, tzinfo=UTC)


def ca(name: str, when: datetime = NOW) -> bytes:
    return certs_to_pem(new_ca(name, new_key(), when))


def names(pem: str) -> list[str]:
    return [c.subject.rfc4514_string() for c in x509.load_pem_x509_certificates(pem.encode())]


CLIENT, PROXY = ca("client"), ca("proxy")
REQUIRED = TrustInfo(client_ca=CLIENT, request_header_ca=PROXY)


def test_a_fresh_configmap_says_what_the_server_requires() -> None:
    data = authentication_data({}, REQUIRED, NOW)
    assert data == {
        "client-ca-file": CLIENT.decode(),
        "requestheader-username-headers": '["X-Remote-User"]',
        "requestheader-uid-headers": '["X-Remote-Uid"]',
        "requestheader-group-headers": '["X-Remote-Group"]',
        "requestheader-extra-headers-prefix": '["X-Remote-Extra-"]',
        "requestheader-allowed-names": '["system:auth-proxy"]',
        "requestheader-client-ca-file": PROXY.decode(),
    }
    assert authentication_data(data, REQUIRED, NOW) == data  # stable: nothing to rewrite


def test_stored_entries_are_kept_first_and_duplicates_dropped() -> None:
    other = ca("other-server")
    stored = {
        "client-ca-file": (other + CLIENT).decode(),
        "requestheader-allowed-names": '["front-proxy-client", "system:auth-proxy"]',
        "requestheader-group-headers": "not json",
    }
    data = authentication_data(stored, REQUIRED, NOW)
    assert names(data["client-ca-file"]) == ["CN=other-server", "CN=client"]
    assert json.loads(data["requestheader-allowed-names"]) == ["front-proxy-client", "system:auth-proxy"]
    assert json.loads(data["requestheader-group-headers"]) == ["X-Remote-Group"]


def test_expired_stored_cas_are_dropped() -> None:
    old = ca("expired", NOW - timedelta(days=3651))
    data = authentication_data({"requestheader-client-ca-file": (old + PROXY).decode()}, REQUIRED, NOW)
    assert names(data["requestheader-client-ca-file"]) == ["CN=proxy"]
