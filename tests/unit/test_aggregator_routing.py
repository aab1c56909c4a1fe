"""``k3py.apiserver.aggregator_routing``: which endpoint a proxied request goes to, and the
headers it carries (the user as request headers, the client's credentials dropped)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from k3py.apiserver.aggregator_routing import (
    Unroutable,
    forwarded_headers,
    identity_headers,
    pick_endpoint,
    response_headers,
)
from k3py.apiserver.authn import User

Obj = dict[str, Any]


def service(*ports: tuple[str, int], type_: str = "ClusterIP", families: list[str] | None = None) -> Obj:
    spec: Obj = {"type": type_, "ports": [{"name": n, "port": p} for n, p in ports]}
    if families:
        spec["ipFamilies"] = families
    return {"metadata": {"namespace": "ns", "name": "api"}, "spec": spec}


def endpoint_slice(
    port_name: str, port: int, *endpoints: tuple[str, bool | None], family: str = "IPv4"
) -> Obj:
    return {
        "addressType": family,
        "endpoints": [
            {"addresses": [a], **({"conditions": {"ready": r}} if r is not None else {})}
            for a, r in endpoints
        ],
        "ports": [{"name": port_name, "port": port}],
    }


def test_a_ready_endpoint_of_the_port_with_the_service_ports_name() -> None:
    svc = service(("http", 80), ("https", 443))
    slices = [
        endpoint_slice("http", 8080, ("10.0.0.1", True)),
        endpoint_slice("https", 8443, ("10.0.0.2", False), ("10.0.0.3", None)),
    ]
    for seed in range(20):
        assert pick_endpoint(svc, slices, 443, random.Random(seed)) == ("10.0.0.3", 8443)
    assert pick_endpoint(svc, slices, 80) == ("10.0.0.1", 8080)


def test_the_choice_is_spread_over_ready_endpoints() -> None:
    svc = service(("", 443))
    slices = [endpoint_slice("", 6443, ("10.0.0.1", True), ("10.0.0.2", True))]
    picked = {pick_endpoint(svc, slices, 443, random.Random(seed))[0] for seed in range(40)}
    assert picked == {"10.0.0.1", "10.0.0.2"}


def test_the_services_first_ip_family_is_preferred() -> None:
    svc = service(("", 443), families=["IPv6", "IPv4"])
    slices = [
        endpoint_slice("", 443, ("10.0.0.1", True)),
        endpoint_slice("", 443, ("fd00::1", True), family="IPv6"),
    ]
    for seed in range(20):
        assert pick_endpoint(svc, slices, 443, random.Random(seed))[0] == "fd00::1"


@pytest.mark.parametrize(
    ("svc", "slices", "message"),
    [
        (service(("", 443)), [], 'no endpoints available for service "api"'),
        (
            service(("", 443)),
            [endpoint_slice("", 443, ("10.0.0.1", False))],
            'no endpoints available for service "api"',
        ),
        (
            service(("", 443)),
            [endpoint_slice("other", 443, ("10.0.0.1", True))],
            'no endpoints available for service "api"',
        ),
        (service(("", 80)), [], 'no service port 443 found for service "api"'),
        (service(("", 443), type_="ExternalName"), [], 'unsupported service type "ExternalName"'),
    ],
)
def test_unroutable(svc: Obj, slices: list[Obj], message: str) -> None:
    with pytest.raises(Unroutable, match=message):
        pick_endpoint(svc, slices, 443)


def test_the_user_as_request_headers() -> None:
    user = User(
        "jane",
        ("devs", "system:authenticated"),
        "uid-1",
        (("acme.com/project", ("a", "b")), ("scopes", ("view",))),
    )
    assert identity_headers(user) == [
        ("X-Remote-User", "jane"),
        ("X-Remote-Uid", "uid-1"),
        ("X-Remote-Group", "devs"),
        ("X-Remote-Group", "system:authenticated"),
        ("X-Remote-Extra-acme.com%2Fproject", "a"),
        ("X-Remote-Extra-acme.com%2Fproject", "b"),
        ("X-Remote-Extra-scopes", "view"),
    ]
    assert identity_headers(User("anonymous")) == [("X-Remote-User", "anonymous")]


def test_forwarded_headers_drop_credentials_and_forged_identities() -> None:
    incoming = [
        ("Accept", "application/json"),
        ("Authorization", "Bearer secret"),
        ("X-Remote-User", "system:admin"),
        ("x-remote-group", "system:masters"),
        ("X-Remote-Extra-scopes", "all"),
        ("Impersonate-User", "root"),
        ("Connection", "keep-alive"),
        ("Host", "api:6443"),
        ("Content-Length", "3"),
        ("User-Agent", "kubectl"),
    ]
    assert forwarded_headers(incoming, User("jane", ("devs",))) == [
        ("Accept", "application/json"),
        ("User-Agent", "kubectl"),
        ("X-Remote-User", "jane"),
        ("X-Remote-Group", "devs"),
    ]


def test_response_headers_drop_hop_by_hop_ones() -> None:
    answer = [
        ("Content-Type", "application/json"),
        ("Transfer-Encoding", "chunked"),
        ("Date", "x"),
        ("Audit-Id", "1"),
    ]
    assert response_headers(answer) == [("Content-Type", "application/json"), ("Audit-Id", "1")]
