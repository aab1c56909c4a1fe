from __future__ import annotations

from tests.unit.api_cases import check


def ipaddress(name: str) -> dict[str, object]:
    parent = {"group": "", "resource": "services", "namespace": "default", "name": "web"}
    return {"metadata": {"name": name}, "spec": {"parentRef": parent}}


def name_messages(name: str) -> list[str]:
    causes = check("ipaddresses.networking.k8s.io", ipaddress(name))
    return [c.message for c in causes if c.field == "metadata.name"]


def test_ipaddresses_are_named_by_their_canonical_address() -> None:
    assert name_messages("10.43.0.7") == []
    assert name_messages("fe80::42:1dff:fe84:f9e2") == []
    assert any("canonical form" in m for m in name_messages("fe80:0::42:1dff:fe84:f9e2"))
    assert any("valid IP address" in m for m in name_messages("not-an-ip"))


def bundle_messages(name: str, signer: str = "") -> list[str]:
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    spec = {"trustBundle": pem, **({"signerName": signer} if signer else {})}
    causes = check("clustertrustbundles.certificates.k8s.io", {"metadata": {"name": name}, "spec": spec})
    return [c.message for c in causes if c.field == "metadata.name"]


def test_cluster_trust_bundles_of_a_signer_carry_its_name_as_prefix() -> None:
    assert bundle_messages("test.test:signer-one:0", "test.test/signer-one") == []
    assert any("must be named with prefix" in m for m in bundle_messages("other:0", "test.test/signer-one"))
    assert bundle_messages("plain-bundle") == []
    assert any('must not have ":"' in m for m in bundle_messages("a:b"))
