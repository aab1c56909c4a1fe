"""Cluster DNS in a real ``k3py server`` (no agent), asked over UDP and TCP on loopback.

Each server runs with a loopback ``--node-ip`` of its own (127.0.0.9, 127.0.0.10), so its DNS
listens there on port 53 (hence root) and the endpoints it writes for ``kube-dns`` and
``kubernetes`` name that address. Every
name asked is a cluster name: nothing is forwarded off the host.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from k3py.client.rest import Kubeconfig, RestClient
from k3py.dns.wire import CNAME, NOERROR, NXDOMAIN, PTR, SOA, SRV, A, Address, Message, Srv, Target
from tests.e2e.cluster import Cluster, start, stop
from tests.integration.api_support import exists, until
from tests.integration.dns_support import query_tcp, query_udp

pytestmark = [pytest.mark.slow, pytest.mark.root]

Obj = dict[str, Any]
NODE_IP = "127.0.0.9"
"""The loopback address the names test's server listens on: other servers of a test run may hold
127.0.0.1:53, and the tests of this module may run at once on two workers."""
DNS = (NODE_IP, 53)
ENDPOINTS_NODE_IP = "127.0.0.10"
"""The address of the endpoints test's server."""
SERVICES = "/api/v1/namespaces/default/services"
SLICES = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"


@pytest.fixture
def cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    node_ip = NODE_IP if request.node.name == "test_cluster_names_resolve" else ENDPOINTS_NODE_IP
    started = start(tmp_path, "--node-ip", node_ip, dns=True)
    try:
        yield started
    finally:
        stop(started)
        print(started.log.read_text())  # shown when the test fails


@pytest.fixture
async def api(cluster: Cluster) -> AsyncIterator[RestClient]:
    config = Kubeconfig.load(cluster.kubeconfig)
    async with RestClient(config.server, config.credentials) as client:
        yield client
    await asyncio.sleep(0.25)


async def ask(name: str, qtype: int, want: int = NOERROR) -> Message:
    """Ask over UDP until the answer has ``want`` as its rcode and some answer (the caches lag)."""
    answer: Message | None = None

    async def answered() -> bool:
        nonlocal answer
        try:
            answer = await query_udp(*DNS, name, qtype)
        except (OSError, TimeoutError):
            return False
        return answer.rcode == want and (bool(answer.answers) or want != NOERROR)

    await until(answered, within=20)
    assert answer is not None
    return answer


def addresses(message: Message) -> set[str]:
    return {str(r.data.address) for r in message.answers if isinstance(r.data, Address)}


async def test_server_publishes_kube_dns_and_kubernetes_endpoints(api: RestClient) -> None:
    kube_dns = "/api/v1/namespaces/kube-system"
    await until(lambda: exists(api, f"{kube_dns}/endpoints/kube-dns"))
    service = await api.get(f"{kube_dns}/services/kube-dns")
    assert service["spec"]["clusterIP"] == "10.43.0.10" and "selector" not in service["spec"]
    assert {(p["name"], p["protocol"], p["targetPort"]) for p in service["spec"]["ports"]} == {
        ("dns", "UDP", 53),
        ("dns-tcp", "TCP", 53),
    }
    assert service["metadata"]["labels"]["k8s-app"] == "kube-dns"
    endpoints = await api.get(f"{kube_dns}/endpoints/kube-dns")
    assert [a["ip"] for a in endpoints["subsets"][0]["addresses"]] == [ENDPOINTS_NODE_IP]
    await until(
        lambda: exists(api, "/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices/kube-dns")
    )
    dns_slice = await api.get("/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices/kube-dns")
    assert dns_slice["metadata"]["labels"]["kubernetes.io/service-name"] == "kube-dns"
    assert {(p["name"], p["port"]) for p in dns_slice["ports"]} == {("dns", 53), ("dns-tcp", 53)}

    await until(lambda: exists(api, f"{SLICES}/kubernetes"))
    kubernetes = await api.get("/api/v1/namespaces/default/endpoints/kubernetes")
    port = (await api.get(f"{SERVICES}/kubernetes"))["spec"]["ports"][0]["targetPort"]
    assert kubernetes["subsets"] == [
        {
            "addresses": [{"ip": ENDPOINTS_NODE_IP}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
        }
    ]
    api_slice = await api.get(f"{SLICES}/kubernetes")
    assert api_slice["endpoints"][0]["addresses"] == [ENDPOINTS_NODE_IP]
    assert api_slice["ports"] == [{"name": "https", "port": port, "protocol": "TCP"}]
    assert api_slice["metadata"]["labels"]["kubernetes.io/service-name"] == "kubernetes"
    await asyncio.sleep(1.5)  # the endpoint controllers must leave both alone
    assert (await api.get(f"{SLICES}/kubernetes"))["endpoints"] == api_slice["endpoints"]


async def test_cluster_names_resolve(api: RestClient) -> None:
    assert addresses(await ask("kubernetes.default.svc.cluster.local", A)) == {"10.43.0.1"}
    assert addresses(await ask("kube-dns.kube-system.svc.cluster.local", A)) == {"10.43.0.10"}

    web = await api.create(
        SERVICES,
        {"metadata": {"name": "web"}, "spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}},
    )
    cluster_ip = web["spec"]["clusterIP"]
    assert addresses(await ask("Web.Default.svc.cluster.local", A)) == {cluster_ip}
    srv = await ask("_http._tcp.web.default.svc.cluster.local", SRV)
    assert [r.data for r in srv.answers] == [Srv(0, 100, 80, "web.default.svc.cluster.local")]
    reverse = ipaddress.ip_address(cluster_ip).reverse_pointer
    ptr = await ask(reverse, PTR)
    assert [r.data for r in ptr.answers] == [Target("web.default.svc.cluster.local")]

    headless = {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}]}
    await api.create(SERVICES, {"metadata": {"name": "db"}, "spec": headless})
    await api.create(
        SLICES,
        {
            "metadata": {"name": "db-1", "labels": {"kubernetes.io/service-name": "db"}},
            "addressType": "IPv4",
            "endpoints": [
                {"addresses": ["10.42.0.5"], "hostname": "db-0", "conditions": {"ready": True}},
                {"addresses": ["10.42.0.6"], "conditions": {"ready": True}},
                {"addresses": ["10.42.0.7"], "conditions": {"ready": False}},
            ],
            "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
        },
    )
    assert addresses(await ask("db.default.svc.cluster.local", A)) == {"10.42.0.5", "10.42.0.6"}
    db_srv = await ask("_pg._tcp.db.default.svc.cluster.local", SRV)
    assert {r.data.target for r in db_srv.answers if isinstance(r.data, Srv)} == {
        "db-0.db.default.svc.cluster.local",
        "10-42-0-6.db.default.svc.cluster.local",
    }
    assert addresses(await ask("db-0.db.default.svc.cluster.local", A)) == {"10.42.0.5"}
    db_ptr = await ask(ipaddress.ip_address("10.42.0.5").reverse_pointer, PTR)
    assert [r.data for r in db_ptr.answers] == [Target("db-0.db.default.svc.cluster.local")]

    external = {"type": "ExternalName", "externalName": "db.example.org"}
    await api.create(SERVICES, {"metadata": {"name": "ext"}, "spec": external})
    cname = await ask("ext.default.svc.cluster.local", CNAME)
    assert [(r.rtype, r.data) for r in cname.answers] == [(CNAME, Target("db.example.org"))]

    missing = await ask("nope.default.svc.cluster.local", A, want=NXDOMAIN)
    assert [r.rtype for r in missing.authority] == [SOA] and missing.aa
    assert addresses(await ask("10-42-3-4.default.pod.cluster.local", A)) == {"10.42.3.4"}

    over_tcp = await query_tcp(
        *DNS,
        [
            ("web.default.svc.cluster.local", A),
            ("_pg._tcp.db.default.svc.cluster.local", SRV),
            ("x.svc.cluster.local", A),
        ],
    )
    assert addresses(over_tcp[0]) == {cluster_ip}
    assert len(over_tcp[1].answers) == 2 and len(over_tcp[1].additional) == 2
    assert over_tcp[2].rcode == NXDOMAIN

    await api.delete(f"{SERVICES}/web")
    await ask("web.default.svc.cluster.local", A, want=NXDOMAIN)
