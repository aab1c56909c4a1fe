"""``k3py.pki.ensure_pki``: first run, reuse, reissue on new SANs or near expiry, refusals."""

from __future__ import annotations

import ipaddress
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from k3py.pki import Pki, PkiError, ensure_pki
from k3py.pki.bundle import DEFAULT_DNS_NAMES

NODE_IP = ipaddress.IPv4Address("192.0.2.10")
SERVICE_IP = ipaddress.IPv4Address("10.43.0.1")
NAMES = ("server-ca", "client-ca", "serving-kube-apiserver", "client-admin", "client-kube-apiserver")
KEYS = tuple(f"{name}.key" for name in NAMES)
CERTS = tuple(f"{name}.crt" for name in NAMES)
CA_FILES = ("server-ca.crt", "server-ca.key", "client-ca.crt", "client-ca.key")


def make(tls_dir: Path, *extra_names: str, now: datetime | None = None) -> Pki:
    return ensure_pki(
        tls_dir, dns_names=["node-1", *extra_names], ip_addresses=[NODE_IP, SERVICE_IP], now=now
    )


def snapshot(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


def leaf(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificates(pem)[0]


def sans(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.DNSName), [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]


def usages(cert: x509.Certificate) -> list[x509.ObjectIdentifier]:
    return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def test_first_run_creates_everything_with_the_right_modes(tmp_path: Path) -> None:
    tls = tmp_path / "server" / "tls"
    pki = make(tls)

    assert sorted(p.name for p in tls.iterdir()) == sorted(KEYS + CERTS)  # no temp files left
    assert stat.S_IMODE(tls.stat().st_mode) == 0o700
    for name in KEYS:
        assert stat.S_IMODE((tls / name).stat().st_mode) == 0o600, name
    for name in CERTS:
        assert stat.S_IMODE((tls / name).stat().st_mode) == 0o644, name
    assert set(pki.written) == {tls / name for name in KEYS + CERTS}
    assert pki.serving.cert_pem == (tls / "serving-kube-apiserver.crt").read_bytes()
    assert pki.admin.key_pem == (tls / "client-admin.key").read_bytes()
    assert pki.admin.key_pem.startswith(b"-----BEGIN EC PRIVATE KEY-----")


def test_the_certificates_say_what_kubernetes_expects(tmp_path: Path) -> None:
    now = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    pki = make(tmp_path, now=now)
    server_ca = leaf(pki.server_ca.cert_pem)
    client_ca = leaf(pki.client_ca.cert_pem)
    serving_chain = x509.load_pem_x509_certificates(pki.serving.cert_pem)
    admin_chain = x509.load_pem_x509_certificates(pki.admin.cert_pem)

    assert server_ca.subject.rfc4514_string() == f"CN=k3py-server-ca@{int(now.timestamp())}"
    assert client_ca.subject.rfc4514_string() == f"CN=k3py-client-ca@{int(now.timestamp())}"
    for ca in (server_ca, client_ca):
        assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert ca.not_valid_after_utc - now == timedelta(days=3650)
        public_key = ca.public_key()
        assert isinstance(public_key, ec.EllipticCurvePublicKey)
        assert public_key.curve.name == "secp256r1"

    serving = serving_chain[0]
    assert serving_chain[1:] == [server_ca]
    serving.verify_directly_issued_by(server_ca)
    assert serving.not_valid_after_utc - now == timedelta(days=365)
    assert usages(serving) == [ExtendedKeyUsageOID.SERVER_AUTH]
    dns, ips = sans(serving)
    assert dns == [*DEFAULT_DNS_NAMES, "node-1"]
    assert ips == ["127.0.0.1", "::1", str(NODE_IP), str(SERVICE_IP)]

    admin = admin_chain[0]
    assert admin_chain[1:] == [client_ca]
    admin.verify_directly_issued_by(client_ca)
    assert admin.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "system:admin"
    assert admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:masters"
    assert usages(admin) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_second_run_reuses_every_byte(tmp_path: Path) -> None:
    first = make(tmp_path)
    before = snapshot(tmp_path)
    second = make(tmp_path)
    assert second.written == ()
    assert snapshot(tmp_path) == before
    assert (second.server_ca, second.client_ca, second.serving, second.admin) == (
        first.server_ca,
        first.client_ca,
        first.serving,
        first.admin,
    )


def test_a_new_san_reissues_only_the_serving_certificate(tmp_path: Path) -> None:
    make(tmp_path)
    before = snapshot(tmp_path)
    pki = make(tmp_path, "api.example.com", "198.51.100.7")  # a --tls-san name and an IP

    assert pki.written == (tmp_path / "serving-kube-apiserver.crt",)
    after = snapshot(tmp_path)
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"serving-kube-apiserver.crt"}  # CAs, keys and the admin cert unchanged
    dns, ips = sans(leaf(pki.serving.cert_pem))
    assert "api.example.com" in dns
    assert "198.51.100.7" in ips and "198.51.100.7" not in dns  # an IP given as a name is an IP SAN
    assert make(tmp_path, "api.example.com", "198.51.100.7").written == ()
    assert make(tmp_path, "API.example.com.").written == ()  # case and a trailing dot do not matter


def test_leaf_certificates_are_renewed_within_90_days_of_expiry(tmp_path: Path) -> None:
    start = datetime.now(UTC)
    first = make(tmp_path, now=start)
    assert make(tmp_path, now=start + timedelta(days=270)).written == ()

    later = make(tmp_path, now=start + timedelta(days=280))
    assert set(later.written) == {
        first.serving.cert_path,
        first.admin.cert_path,
        first.kubelet_client.cert_path,
    }
    assert later.server_ca == first.server_ca and later.client_ca == first.client_ca
    assert later.serving.key_pem == first.serving.key_pem  # same key, new certificate
    assert leaf(later.serving.cert_pem).not_valid_after_utc > start + timedelta(days=600)


def test_a_deleted_leaf_key_is_replaced_and_its_certificate_reissued(tmp_path: Path) -> None:
    first = make(tmp_path)
    first.admin.key_path.unlink()
    pki = make(tmp_path)
    assert set(pki.written) == {first.admin.key_path, first.admin.cert_path}
    assert pki.admin.key_pem != first.admin.key_pem


@pytest.mark.parametrize("name", ["server-ca.key", "client-ca.crt", "serving-kube-apiserver.key"])
def test_corrupt_file_raises_naming_it_and_nothing_is_written(tmp_path: Path, name: str) -> None:
    make(tmp_path)
    target = tmp_path / name
    target.write_bytes(target.read_bytes()[:60])  # truncated
    before = snapshot(tmp_path)
    with pytest.raises(PkiError) as caught:
        make(tmp_path, "new-san.example.com")  # would otherwise reissue the serving certificate
    assert caught.value.path == target
    assert str(target) in str(caught.value)
    assert "corrupt" in caught.value.reason
    assert snapshot(tmp_path) == before


def test_an_unreadable_file_raises_naming_it(tmp_path: Path) -> None:
    make(tmp_path)
    target = tmp_path / "client-admin.crt"
    target.unlink()
    target.mkdir()  # unreadable as a file, even for root
    with pytest.raises(PkiError, match=r"client-admin\.crt: cannot read"):
        make(tmp_path)
    assert target.is_dir()


def test_a_key_that_does_not_match_its_ca_certificate_is_refused(tmp_path: Path) -> None:
    make(tmp_path)
    other = make(tmp_path / "other")
    (tmp_path / "client-ca.key").write_bytes(other.client_ca.key_pem)
    with pytest.raises(PkiError, match=r"client-ca\.key: does not match the certificate"):
        make(tmp_path)


@pytest.mark.parametrize("name", CA_FILES)
def test_a_missing_ca_file_is_never_regenerated(tmp_path: Path, name: str) -> None:
    make(tmp_path)
    (tmp_path / name).unlink()
    before = snapshot(tmp_path)
    with pytest.raises(PkiError, match="never regenerated") as caught:
        make(tmp_path)
    assert caught.value.path == tmp_path / name
    assert snapshot(tmp_path) == before


def test_deleted_cas_are_not_recreated_while_issued_certificates_exist(tmp_path: Path) -> None:
    make(tmp_path)
    for name in CA_FILES:
        (tmp_path / name).unlink()
    with pytest.raises(PkiError, match="never regenerated"):
        make(tmp_path)
    assert not (tmp_path / "server-ca.crt").exists()


def test_an_expired_ca_stops_the_server(tmp_path: Path) -> None:
    start = datetime.now(UTC)
    make(tmp_path, now=start)
    before = snapshot(tmp_path)
    with pytest.raises(PkiError, match=r"server-ca\.crt: the CA certificate expired"):
        make(tmp_path, now=start + timedelta(days=3651))
    assert snapshot(tmp_path) == before


def test_a_ca_expiring_soon_is_kept_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    start = datetime.now(UTC)
    first = make(tmp_path, now=start)
    pki = make(tmp_path, now=start + timedelta(days=3600))
    assert pki.server_ca == first.server_ca
    assert "plan a CA rotation" in caplog.text
    # the reissued leaves do not outlive their CA
    assert (
        leaf(pki.serving.cert_pem).not_valid_after_utc == leaf(first.server_ca.cert_pem).not_valid_after_utc
    )


@pytest.mark.parametrize("bad", ["", "bad name", "bücher.example"])
def test_invalid_dns_names_are_refused_before_anything_is_written(tmp_path: Path, bad: str) -> None:
    with pytest.raises(PkiError, match="invalid DNS name"):
        make(tmp_path / "tls", bad)
    assert not (tmp_path / "tls").exists()
