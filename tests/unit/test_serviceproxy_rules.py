"""The service proxy's rule text: what kube-proxy's iptables mode writes, with k3py's chains."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import pytest

from k3py.agent.serviceproxy import clear_udp_flows
from k3py.agent.serviceproxy_rules import (
    NODEPORTS_CHAIN,
    REJECT_CHAIN,
    SERVICES_CHAIN,
    Ruleset,
    UdpFlow,
    build_rules,
    is_service_chain,
)

CLUSTER = ipaddress.IPv4Network("10.42.0.0/16")
NODE = "n1"
Obj = dict[str, Any]


def service(name: str, cluster_ip: str = "10.43.0.50", namespace: str = "default", **spec: Any) -> Obj:
    spec.setdefault("ports", [{"name": "http", "port": 80, "targetPort": "web", "protocol": "TCP"}])
    return {
        "metadata": {"namespace": namespace, "name": name},
        "spec": {"clusterIP": cluster_ip, "clusterIPs": [cluster_ip], "type": "ClusterIP", **spec},
    }


def endpoint(ip: str, node: str = NODE, **conditions: bool) -> Obj:
    return {"addresses": [ip], "nodeName": node, "conditions": {"ready": True, **conditions}}


def slice_(
    service_name: str,
    *endpoints: Obj,
    ports: list[Obj] | None = None,
    name: str = "",
    namespace: str = "default",
    address_type: str = "IPv4",
) -> Obj:
    return {
        "metadata": {
            "namespace": namespace,
            "name": name or f"{service_name}-abcde",
            "labels": {"kubernetes.io/service-name": service_name},
        },
        "addressType": address_type,
        "ports": ports if ports is not None else [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": list(endpoints),
    }


def rules(services: list[Obj], slices: list[Obj], node: str = NODE) -> Ruleset:
    return build_rules(services, slices, node_name=node, cluster_cidr=CLUSTER)


def chain(ruleset: Ruleset, name: str, table: str = "nat") -> list[str]:
    return [r for r in ruleset.tables[table].rules if r.startswith(f"-A {name} ")]


def jump_of(rule: str) -> str:
    return rule.split()[-1]


def svc_chain(ruleset: Ruleset, cluster_ip: str, port: int = 80) -> str:
    (rule,) = [
        r for r in chain(ruleset, SERVICES_CHAIN) if f"-d {cluster_ip}/32 " in r and f"--dport {port} " in r
    ]
    return jump_of(rule)


def dnat_targets(ruleset: Ruleset, picking_chain: str) -> list[tuple[str | None, str]]:
    """(probability or None, DNAT destination) for each endpoint ``picking_chain`` chooses."""
    found = []
    for rule in chain(ruleset, picking_chain):
        if "-m recent" in rule or "MARK-MASQ" in rule:
            continue
        match = re.search(r"--probability (\S+)", rule)
        (dnat,) = [r for r in chain(ruleset, jump_of(rule)) if "DNAT" in r]
        found.append((match.group(1) if match else None, dnat.split("--to-destination ")[1]))
    return found


def test_endpoints_are_picked_with_kube_proxys_probabilities() -> None:
    eps = [endpoint(f"10.42.0.{i}") for i in (5, 3, 4, 6)]
    ruleset = rules([service("web")], [slice_("web", *eps)])
    picks = dnat_targets(ruleset, svc_chain(ruleset, "10.43.0.50"))
    assert picks == [
        ("0.2500000000", "10.42.0.3:8080"),
        ("0.3333333333", "10.42.0.4:8080"),
        ("0.5000000000", "10.42.0.5:8080"),
        (None, "10.42.0.6:8080"),
    ]
    text = ruleset.render()
    assert text.startswith("*filter\n:K3PY-SVC-REJECT - [0:0]\n")
    assert "*nat\n" in text and text.endswith("COMMIT\n")
    # hairpin: an endpoint reaching itself is masqueraded; outside the cluster CIDR too
    assert any("-s 10.42.0.3/32" in r and "K3PY-MARK-MASQ" in r for r in ruleset.tables["nat"].rules)
    masq = chain(ruleset, svc_chain(ruleset, "10.43.0.50"))[0]
    assert masq.startswith(f"-A {svc_chain(ruleset, '10.43.0.50')} ! -s 10.42.0.0/16 -d 10.43.0.50/32")
    assert masq.endswith("-j K3PY-MARK-MASQ")
    # the nodeports rule is last in K3PY-SERVICES
    assert chain(ruleset, SERVICES_CHAIN)[-1].endswith(f"-j {NODEPORTS_CHAIN}")
    assert "--dst-type LOCAL ! -d 127.0.0.0/8" in chain(ruleset, SERVICES_CHAIN)[-1]


def test_target_port_comes_from_the_slice_port_of_the_same_name() -> None:
    web = service(
        "web",
        ports=[
            {"name": "http", "port": 80, "targetPort": "web"},
            {"name": "metrics", "port": 9100, "targetPort": 9100},
        ],
    )
    ports = [{"name": "metrics", "port": 9200, "protocol": "TCP"}, {"name": "http", "port": 8080}]
    ruleset = rules([web], [slice_("web", endpoint("10.42.0.3"), ports=ports)])
    assert dnat_targets(ruleset, svc_chain(ruleset, "10.43.0.50", 80)) == [(None, "10.42.0.3:8080")]
    assert dnat_targets(ruleset, svc_chain(ruleset, "10.43.0.50", 9100)) == [(None, "10.42.0.3:9200")]
    # a slice port of another protocol or name does not count
    udp_only = [{"name": "http", "port": 8080, "protocol": "UDP"}]
    ruleset = rules([web], [slice_("web", endpoint("10.42.0.3"), ports=udp_only)])
    assert not chain(ruleset, SERVICES_CHAIN)[:-1]
    assert len(chain(ruleset, REJECT_CHAIN, "filter")) == 2


def test_a_service_without_ready_endpoints_is_rejected() -> None:
    web = service("web", type="NodePort", ports=[{"port": 80, "nodePort": 30080, "protocol": "UDP"}])
    ruleset = rules([web], [slice_("web", endpoint("10.42.0.3", ready=False), ports=[{"port": 8080}])])
    rejects = chain(ruleset, REJECT_CHAIN, "filter")
    assert rejects == [
        f"-A {REJECT_CHAIN} -d 10.43.0.50/32 -p udp -m udp --dport 80 -m comment --comment "
        '"default/web has no endpoints" -j REJECT',
        f"-A {REJECT_CHAIN} -m addrtype --dst-type LOCAL -p udp -m udp --dport 30080 -m comment --comment "
        '"default/web has no endpoints" -j REJECT',
    ]
    assert chain(ruleset, SERVICES_CHAIN) == chain(rules([], []), SERVICES_CHAIN)
    assert not chain(ruleset, NODEPORTS_CHAIN)
    assert not [c for c in ruleset.tables["nat"].chains if c.startswith(("K3PY-SVC-", "K3PY-SEP-"))]


def test_terminating_serving_endpoints_are_used_only_when_none_is_ready() -> None:
    going = endpoint("10.42.0.9", ready=False, serving=True, terminating=True)
    gone = endpoint("10.42.0.8", ready=False, serving=False, terminating=True)
    ruleset = rules([service("web")], [slice_("web", endpoint("10.42.0.3"), going, gone)])
    assert dnat_targets(ruleset, svc_chain(ruleset, "10.43.0.50")) == [(None, "10.42.0.3:8080")]
    ruleset = rules([service("web")], [slice_("web", going, gone)])
    assert dnat_targets(ruleset, svc_chain(ruleset, "10.43.0.50")) == [(None, "10.42.0.9:8080")]


def test_client_ip_affinity_uses_recent_with_the_timeout() -> None:
    web = service(
        "web", sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}}
    )
    ruleset = rules([web], [slice_("web", endpoint("10.42.0.3"), endpoint("10.42.0.4"))])
    svc = svc_chain(ruleset, "10.43.0.50")
    checks = [r for r in chain(ruleset, svc) if "--rcheck" in r]
    assert len(checks) == 2
    for rule in checks:
        sep = jump_of(rule)
        assert f"-m recent --name {sep} --mask 255.255.255.255 --rsource --rcheck --seconds 60 --reap" in rule
        (dnat,) = [r for r in chain(ruleset, sep) if "DNAT" in r]
        assert f"-m recent --set --name {sep} --mask 255.255.255.255 --rsource" in dnat
    # affinity checks come before the random pick
    assert "--rcheck" in chain(ruleset, svc)[1] and "statistic" in chain(ruleset, svc)[3]
    default = rules([{**web, "spec": {**web["spec"], "sessionAffinityConfig": None}}], [slice_("web")])
    assert default.tables  # no endpoints: nothing to check, but it must not fail
    one = rules(
        [{**web, "spec": {**web["spec"], "sessionAffinityConfig": None}}],
        [slice_("web", endpoint("10.42.0.3"))],
    )
    assert "--seconds 10800" in " ".join(one.tables["nat"].rules)
    plain = rules([service("web")], [slice_("web", endpoint("10.42.0.3"))])
    assert "recent" not in plain.render()


def test_node_port_with_cluster_policy_masquerades() -> None:
    web = service("web", type="NodePort", ports=[{"name": "http", "port": 80, "nodePort": 30080}])
    ruleset = rules([web], [slice_("web", endpoint("10.42.0.3", node="n2"))])
    (nodeport,) = chain(ruleset, NODEPORTS_CHAIN)
    assert "-p tcp -m tcp --dport 30080" in nodeport
    ext = jump_of(nodeport)
    assert ext.startswith("K3PY-EXT-")
    assert [jump_of(r) for r in chain(ruleset, ext)] == ["K3PY-MARK-MASQ", svc_chain(ruleset, "10.43.0.50")]


def test_node_port_with_local_policy_keeps_the_client_and_uses_local_endpoints() -> None:
    web = service(
        "web",
        type="LoadBalancer",
        externalTrafficPolicy="Local",
        ports=[{"name": "http", "port": 80, "nodePort": 30080}],
    )
    web["status"] = {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}, {"ip": "2001:db8::1"}]}}
    slices = [slice_("web", endpoint("10.42.0.3"), endpoint("10.42.1.3", node="n2"))]
    ruleset = rules([web], slices)
    (nodeport,) = chain(ruleset, NODEPORTS_CHAIN)
    ext = jump_of(nodeport)
    ext_rules = chain(ruleset, ext)
    svc = svc_chain(ruleset, "10.43.0.50")
    assert "-s 10.42.0.0/16" in ext_rules[0] and jump_of(ext_rules[0]) == svc
    assert "--src-type LOCAL" in ext_rules[1] and jump_of(ext_rules[1]) == "K3PY-MARK-MASQ"
    assert "--src-type LOCAL" in ext_rules[2] and jump_of(ext_rules[2]) == svc
    svl = jump_of(ext_rules[3])
    assert svl.startswith("K3PY-SVL-") and len(ext_rules) == 4
    assert not any("MARK-MASQ" in r and "--src-type" not in r for r in ext_rules)
    assert dnat_targets(ruleset, svl) == [(None, "10.42.0.3:8080")]
    assert len(dnat_targets(ruleset, svc)) == 2  # the cluster IP still reaches every endpoint
    # the load-balancer IP goes the same way; the IPv6 one is skipped
    assert any("-d 192.0.2.10/32" in r and r.endswith(f"-j {ext}") for r in chain(ruleset, SERVICES_CHAIN))
    assert "2001:db8" not in ruleset.render()
    # on a node without local endpoints: outside traffic is dropped, pods still get through
    other = rules([web], slices, node="n3")
    ext_rules = chain(other, jump_of(chain(other, NODEPORTS_CHAIN)[0]))
    assert len(ext_rules) == 3 and not any("K3PY-SVL-" in r for r in ext_rules)
    drops = chain(other, REJECT_CHAIN, "filter")
    assert any("--dport 30080" in r and "no local endpoints" in r and r.endswith("-j DROP") for r in drops)


def test_internal_traffic_policy_local() -> None:
    web = service("web", internalTrafficPolicy="Local")
    slices = [slice_("web", endpoint("10.42.0.3"), endpoint("10.42.1.3", node="n2"))]
    ruleset = rules([web], slices)
    svl = svc_chain(ruleset, "10.43.0.50")
    assert svl.startswith("K3PY-SVL-")
    assert dnat_targets(ruleset, svl) == [(None, "10.42.0.3:8080")]
    other = rules([web], slices, node="n3")
    (drop,) = chain(other, REJECT_CHAIN, "filter")
    assert "-d 10.43.0.50/32" in drop and drop.endswith("-j DROP")


def test_external_ips_and_protocols() -> None:
    dns = service(
        "dns",
        "10.43.0.10",
        externalIPs=["192.0.2.7", "2001:db8::7"],
        ports=[
            {"name": "dns", "port": 53, "protocol": "UDP"},
            {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
            {"name": "sig", "port": 3868, "protocol": "SCTP"},
        ],
    )
    ports = [
        {"name": "dns", "port": 5353, "protocol": "UDP"},
        {"name": "dns-tcp", "port": 5353, "protocol": "TCP"},
        {"name": "sig", "port": 3868, "protocol": "SCTP"},
    ]
    ruleset = rules([dns], [slice_("dns", endpoint("10.42.0.3"), ports=ports)])
    services = chain(ruleset, SERVICES_CHAIN)
    for proto in ("udp", "tcp", "sctp"):
        assert any(f"-d 10.43.0.10/32 -p {proto} -m {proto}" in r for r in services), proto
        assert any(f"-d 192.0.2.7/32 -p {proto} -m {proto}" in r and "K3PY-EXT-" in r for r in services), (
            proto
        )
    assert ruleset.udp_flows == {
        UdpFlow("10.43.0.10", 53, "10.42.0.3"),
        UdpFlow("192.0.2.7", 53, "10.42.0.3"),
    }


def test_headless_external_name_and_ipv6_get_nothing() -> None:
    headless = service("headless", "None")
    external = service("ext", "", type="ExternalName", externalName="example.com")
    v6 = service("v6", "fd00::10")
    slices = [slice_(n, endpoint("10.42.0.3")) for n in ("headless", "ext", "v6")]
    ruleset = rules([headless, external, v6], slices)
    assert ruleset.render() == rules([], []).render()


def test_bad_fields_skip_only_their_object() -> None:
    good = service("good", "10.43.0.60")
    bad_port = service("bad", "10.43.0.61", ports=[{"port": "eighty"}])
    bad_ports = service("worse", "10.43.0.62", ports=[{"port": 99999}])
    no_spec: Obj = {"metadata": {"namespace": "default", "name": "nospec"}}
    odd_proto = service("odd", "10.43.0.63", ports=[{"port": 80, "protocol": "ICMP"}])
    no_balancer = {**service("lb", "10.43.0.64", type="LoadBalancer"), "status": {"loadBalancer": None}}
    listed_ports = service("listy", "10.43.0.65", ports={"port": 80})
    slices = [
        slice_("good", endpoint("10.42.0.3"), {"addresses": ["2001:db8::9"]}, {"addresses": []}, {}),
        slice_("good", name="good-v6", address_type="IPv6"),
        slice_("good", endpoint("10.42.0.4"), ports=[{"name": "http", "port": "x"}], name="good-broken"),
        slice_("good", endpoint("10.42.0.5"), ports=[{"name": "http", "port": None}], name="good-none"),
        {"metadata": {}},
        slice_("bad", endpoint("10.42.0.7")),
        slice_("lb", endpoint("10.42.0.8")),
        {**slice_("good", name="good-odd"), "endpoints": {"addresses": ["10.42.0.9"]}},
    ]
    services = [good, bad_port, bad_ports, no_spec, odd_proto, no_balancer, listed_ports]
    ruleset = rules(services, slices)
    assert dnat_targets(ruleset, svc_chain(ruleset, "10.43.0.60")) == [(None, "10.42.0.3:8080")]
    text = ruleset.render()
    for ip in ("10.43.0.61", "10.43.0.62", "10.43.0.63", "10.43.0.65"):
        assert ip not in text
    assert dnat_targets(ruleset, svc_chain(ruleset, "10.43.0.64")) == [(None, "10.42.0.8:8080")]


def test_chain_names_are_stable_short_and_owned() -> None:
    first = rules([service("web")], [slice_("web", endpoint("10.42.0.3"))])
    again = rules([service("web")], [slice_("web", endpoint("10.42.0.3"))])
    assert first.render() == again.render()
    for name in first.tables["nat"].chains + first.tables["filter"].chains:
        assert len(name) <= 28 and is_service_chain(name), name
    assert not is_service_chain("K3PY-POSTROUTING") and not is_service_chain("K3PY-FORWARD")
    assert not is_service_chain("KUBE-SERVICES")


def test_render_deletes_stale_service_chains_only() -> None:
    ruleset = rules([service("web")], [slice_("web", endpoint("10.42.0.3"))])
    text = ruleset.render({"nat": ["K3PY-SVC-OLD", "K3PY-POSTROUTING", "PREROUTING", SERVICES_CHAIN]})
    assert ":K3PY-SVC-OLD - [0:0]\n-X K3PY-SVC-OLD\n" in text
    assert "-X K3PY-POSTROUTING" not in text and f"-X {SERVICES_CHAIN}" not in text
    assert text.count(f":{SERVICES_CHAIN} ") == 1


@pytest.mark.parametrize("have_before", [True, False])
def test_udp_conntrack_entries_of_gone_endpoints_are_cleared(have_before: bool) -> None:
    dns = service("dns", "10.43.0.10", ports=[{"port": 53, "protocol": "UDP"}])
    ports = [{"port": 5353, "protocol": "UDP"}]
    two = rules([dns], [slice_("dns", endpoint("10.42.0.3"), endpoint("10.42.0.4"), ports=ports)])
    one = rules([dns], [slice_("dns", endpoint("10.42.0.4"), ports=ports)])
    none = rules([dns], [slice_("dns", ports=ports)])
    fake = "/bin/true"
    if not have_before:
        assert clear_udp_flows(None, two, fake) == []
        return
    assert clear_udp_flows(two, one, fake) == [
        [
            fake,
            "-D",
            "-p",
            "udp",
            "--orig-dst",
            "10.43.0.10",
            "--orig-port-dst",
            "53",
            "--dst-nat",
            "10.42.0.3",
        ]
    ]
    assert clear_udp_flows(one, one, fake) == []
    assert clear_udp_flows(none, one, fake) == [
        [fake, "-D", "-p", "udp", "--orig-dst", "10.43.0.10", "--orig-port-dst", "53"]
    ]
