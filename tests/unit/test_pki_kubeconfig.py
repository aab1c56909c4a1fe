"""``k3py.pki.kubeconfig`` and ``client_identity``: the shapes, without a network."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest
import yaml

from k3py.pki import PkiError, client_identity, kubeconfig, write_kubeconfig

CA, CERT, KEY = b"ca-pem\n", b"cert-pem\n", b"key-pem\n"


def test_kubeconfig_embeds_the_credentials_like_k3s() -> None:
    text = kubeconfig("https://127.0.0.1:6443", CA, CERT, KEY)
    config = yaml.safe_load(text)
    assert config == {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "default",
                "cluster": {
                    "server": "https://127.0.0.1:6443",
                    "certificate-authority-data": base64.b64encode(CA).decode(),
                },
            }
        ],
        "contexts": [{"name": "default", "context": {"cluster": "default", "user": "default"}}],
        "current-context": "default",
        "preferences": {},
        "users": [
            {
                "name": "default",
                "user": {
                    "client-certificate-data": base64.b64encode(CERT).decode(),
                    "client-key-data": base64.b64encode(KEY).decode(),
                },
            }
        ],
    }


def test_kubeconfig_names_cluster_and_user() -> None:
    config = yaml.safe_load(kubeconfig("https://k.example:6443", CA, CERT, KEY, cluster="k3py", user="admin"))
    assert config["clusters"][0]["name"] == "k3py"
    assert config["users"][0]["name"] == "admin"
    assert config["contexts"][0]["context"] == {"cluster": "k3py", "user": "admin"}
    assert config["current-context"] == "default"


def test_long_base64_values_stay_on_one_line() -> None:
    text = kubeconfig("https://127.0.0.1:6443", CA, CERT * 200, KEY)
    assert any(line.strip().startswith("client-certificate-data: ") for line in text.splitlines())
    assert (
        yaml.safe_load(text)["users"][0]["user"]["client-certificate-data"]
        == base64.b64encode(CERT * 200).decode()
    )


def test_kubeconfig_wants_https() -> None:
    with pytest.raises(ValueError, match="https://"):
        kubeconfig("http://127.0.0.1:6443", CA, CERT, KEY)


@pytest.mark.parametrize("mode", [0o600, 0o644])
def test_write_kubeconfig_creates_parents_and_sets_the_mode(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "etc" / "k3py" / "k3py.yaml"
    write_kubeconfig(path, "first\n", mode)
    write_kubeconfig(path, "second\n", mode)
    assert path.read_text() == "second\n"
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert [p.name for p in path.parent.iterdir()] == ["k3py.yaml"]


def test_write_kubeconfig_failure_names_the_path(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(PkiError) as caught:
        write_kubeconfig(tmp_path / "file" / "k3py.yaml", "x", 0o600)
    assert caught.value.path == tmp_path / "file"


def test_client_identity_reads_cn_and_every_o() -> None:
    peercert = {
        "subject": (
            (("organizationName", "system:masters"),),
            (("organizationName", "devs"),),
            (("commonName", "alice"),),
        ),
        "issuer": ((("commonName", "k3py-client-ca@1"),),),
    }
    assert client_identity(peercert) == ("alice", ["system:masters", "devs"])
    assert client_identity({"subject": ((("commonName", "bob"),),)}) == ("bob", [])


@pytest.mark.parametrize(
    "peercert",
    [None, {}, {"subject": ((("organizationName", "system:masters"),),)}, {"subject": "garbage"}],
)
def test_client_identity_without_a_verified_named_certificate_is_none(
    peercert: dict[str, object] | None,
) -> None:
    assert client_identity(peercert) is None
