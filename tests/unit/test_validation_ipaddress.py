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
