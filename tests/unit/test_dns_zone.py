"""The cluster zone's answers (the Kubernetes DNS specification) from plain Service and slice dicts."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from k3py.dns.wire import (
    AAAA,
    ANY,
    CNAME,
    NOERROR,
    NS,
    NXDOMAIN,
    PTR,
    SOA,
    SRV,
    TXT,
    A,
    Address,
    Srv,
    Target,
    Txt,
)
from k3py.dns.zone import Answer, ClusterZone

Obj = dict[str, Any]


def service(name: str, namespace: str = "ns", **spec: Any) -> Obj:
    return {"metadata": {"name": name, "namespace": namespace}, "spec": spec}


def endpoint_slice(service_name: str, endpoints: list[Obj], ports: list[Obj], namespace: str = "ns") -> Obj:
    return {
        "metadata": {
            "name": f"{service_name}-abc",
            "namespace": namespace,
            "labels": {"kubernetes.io/service-name": service_name},
        },
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": ports,
    }


def endpoint(ip: str, ready: bool = True, hostname: str | None = None) -> Obj:
    found: Obj = {"addresses": [ip], "conditions": {"ready": ready}}
    if hostname:
        found["hostname"] = hostname
    return found


PORTS = [{"name": "http", "port": 80, "protocol": "TCP"}, {"name": "dns", "port": 53, "protocol": "UDP"}]


@pytest.fixture
def zone() -> ClusterZone:
    zone = ClusterZone()
    zone.load(
        [
            service("web", clusterIP="10.43.0.20", clusterIPs=["10.43.0.20"], ports=PORTS),
            service("dual", clusterIP="10.43.0.21", clusterIPs=["10.43.0.21", "fd00:43::21"], ports=[]),
            service("db", clusterIP="None", ports=[{"name": "pg", "port": 5432, "protocol": "TCP"}]),
            service("all", clusterIP="None", publishNotReadyAddresses=True, ports=[]),
            service("ext", type="ExternalName", externalName="example.com."),
            service("empty", clusterIP="None"),
        ],
        [
            endpoint_slice(
                "db",
                [
                    endpoint("10.42.0.5", hostname="db-0"),
                    endpoint("10.42.0.6"),
                    endpoint("10.42.0.7", ready=False),
                ],
                [{"name": "pg", "port": 5432, "protocol": "TCP"}],
            ),
            endpoint_slice("all", [endpoint("10.42.0.8", ready=False)], []),
            endpoint_slice(
                "web", [endpoint("10.42.0.9")], [{"name": "http", "port": 8080, "protocol": "TCP"}]
            ),
        ],
    )
    return zone


def ask(zone: ClusterZone, name: str, qtype: int) -> Answer:
    answer = zone.lookup(name, qtype)
    assert answer is not None, f"the zone does not answer {name}"
    return answer


def addresses(answer: Answer) -> set[str]:
    return {str(r.data.address) for r in answer.answers if isinstance(r.data, Address)}


def test_a_cluster_ip_service_answers_its_cluster_ip(zone: ClusterZone) -> None:
    answer = ask(zone, "web.ns.svc.cluster.local", A)
    assert answer.rcode == NOERROR and addresses(answer) == {"10.43.0.20"}
    assert all(r.ttl == 5 and r.name == "web.ns.svc.cluster.local" for r in answer.answers)
    dual = ask(zone, "dual.ns.svc.cluster.local", AAAA)
    assert addresses(dual) == {"fd00:43::21"}


def test_names_are_case_insensitive_and_keep_the_asked_case(zone: ClusterZone) -> None:
    answer = ask(zone, "WEB.Ns.SVC.cluster.LOCAL", A)
    assert addresses(answer) == {"10.43.0.20"}
    assert answer.answers[0].name == "WEB.Ns.SVC.cluster.LOCAL"


def test_srv_of_a_cluster_ip_service_names_the_service(zone: ClusterZone) -> None:
    answer = ask(zone, "_http._tcp.web.ns.svc.cluster.local", SRV)
    assert [r.data for r in answer.answers] == [Srv(0, 100, 80, "web.ns.svc.cluster.local")]
    assert addresses(Answer(answers=answer.additional)) == {"10.43.0.20"}
    udp = ask(zone, "_dns._udp.web.ns.svc.cluster.local", SRV)
    assert [r.data.port for r in udp.answers if isinstance(r.data, Srv)] == [53]
    assert ask(zone, "_http._udp.web.ns.svc.cluster.local", SRV).rcode == NXDOMAIN


def test_a_cluster_ip_service_does_not_list_its_endpoints(zone: ClusterZone) -> None:
    assert ask(zone, "10-42-0-9.web.ns.svc.cluster.local", A).rcode == NXDOMAIN


def test_a_headless_service_answers_its_ready_endpoints(zone: ClusterZone) -> None:
    assert addresses(ask(zone, "db.ns.svc.cluster.local", A)) == {"10.42.0.5", "10.42.0.6"}
    assert addresses(ask(zone, "all.ns.svc.cluster.local", A)) == {"10.42.0.8"}  # publishNotReadyAddresses


def test_headless_srv_points_at_each_endpoint_by_hostname(zone: ClusterZone) -> None:
    answer = ask(zone, "_pg._tcp.db.ns.svc.cluster.local", SRV)
    targets = {r.data.target for r in answer.answers if isinstance(r.data, Srv)}
    assert targets == {"db-0.db.ns.svc.cluster.local", "10-42-0-6.db.ns.svc.cluster.local"}
    assert {r.name: str(r.data.address) for r in answer.additional if isinstance(r.data, Address)} == {
        "db-0.db.ns.svc.cluster.local": "10.42.0.5",
        "10-42-0-6.db.ns.svc.cluster.local": "10.42.0.6",
    }
    assert addresses(ask(zone, "db-0.db.ns.svc.cluster.local", A)) == {"10.42.0.5"}
    assert ask(zone, "10-42-0-7.db.ns.svc.cluster.local", A).rcode == NXDOMAIN  # not ready


def test_external_name_is_a_cname_whatever_is_asked(zone: ClusterZone) -> None:
    for qtype in (A, AAAA, CNAME):
        answer = ask(zone, "ext.ns.svc.cluster.local", qtype)
        assert [(r.rtype, r.data) for r in answer.answers] == [(CNAME, Target("example.com"))]


def test_pod_names_spell_their_address(zone: ClusterZone) -> None:
    assert addresses(ask(zone, "10-42-1-7.ns.pod.cluster.local", A)) == {"10.42.1.7"}
    assert addresses(ask(zone, "fd00-42--7.ns.pod.cluster.local", AAAA)) == {"fd00:42::7"}
    assert ask(zone, "not-an-ip.ns.pod.cluster.local", A).rcode == NXDOMAIN


def test_ptr_answers_cluster_ips_and_headless_endpoints(zone: ClusterZone) -> None:
    cluster_ip = ipaddress.ip_address("10.43.0.20").reverse_pointer
    assert [r.data for r in ask(zone, cluster_ip, PTR).answers] == [Target("web.ns.svc.cluster.local")]
    endpoint_ip = ipaddress.ip_address("10.42.0.5").reverse_pointer
    assert [r.data for r in ask(zone, endpoint_ip, PTR).answers] == [Target("db-0.db.ns.svc.cluster.local")]
    v6 = ipaddress.ip_address("fd00:43::21").reverse_pointer
    assert [r.data for r in ask(zone, v6, PTR).answers] == [Target("dual.ns.svc.cluster.local")]
    assert zone.lookup("1.1.168.192.in-addr.arpa", PTR) is None  # not the cluster's: upstream


def test_missing_names_are_nxdomain_and_other_types_nodata(zone: ClusterZone) -> None:
    missing = ask(zone, "nope.ns.svc.cluster.local", A)
    assert missing.rcode == NXDOMAIN and not missing.answers
    assert [r.rtype for r in missing.authority] == [SOA] and missing.authority[0].name == "cluster.local"
    nodata = ask(zone, "web.ns.svc.cluster.local", AAAA)
    assert nodata.rcode == NOERROR and not nodata.answers and [r.rtype for r in nodata.authority] == [SOA]
    for between in ("ns.svc.cluster.local", "svc.cluster.local", "_tcp.web.ns.svc.cluster.local"):
        assert ask(zone, between, A).rcode == NOERROR, between
    empty = ask(zone, "empty.ns.svc.cluster.local", A)  # a headless service without endpoints exists
    assert empty.rcode == NOERROR and not empty.answers
    assert ask(zone, "web.other.svc.cluster.local", A).rcode == NXDOMAIN


def test_apex_and_schema_version(zone: ClusterZone) -> None:
    assert [r.rtype for r in ask(zone, "cluster.local", SOA).answers] == [SOA]
    assert [r.rtype for r in ask(zone, "cluster.local", NS).answers] == [NS]
    version = ask(zone, "dns-version.cluster.local", TXT)
    assert [r.data for r in version.answers] == [Txt((b"1.1.0",))]
    assert {r.rtype for r in ask(zone, "web.ns.svc.cluster.local", ANY).answers} == {A}


def test_names_outside_the_domain_are_not_answered(zone: ClusterZone) -> None:
    assert zone.lookup("example.com", A) is None
    assert zone.lookup("web.ns.svc.cluster.localx", A) is None


def test_a_reload_replaces_what_was_there(zone: ClusterZone) -> None:
    zone.load([service("web", "ns", clusterIP="10.43.0.30", ports=[])], [])
    assert addresses(ask(zone, "web.ns.svc.cluster.local", A)) == {"10.43.0.30"}
    assert ask(zone, "db.ns.svc.cluster.local", A).rcode == NXDOMAIN


def test_another_domain() -> None:
    zone = ClusterZone("k3py.internal")
    zone.load([service("web", "ns", clusterIP="10.43.0.20", ports=[])], [])
    assert addresses(ask(zone, "web.ns.svc.k3py.internal", A)) == {"10.43.0.20"}
    assert zone.lookup("web.ns.svc.cluster.local", A) is None
