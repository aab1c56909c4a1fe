"""What the Endpoints and EndpointSlice controllers compute from a Service and its pods."""

from __future__ import annotations

from typing import Any

from k3py.controllers.endpoints import (
    MAX_CAPACITY,
    TriggerTimes,
    desired_labels,
    desired_subsets,
    find_port,
    selected_pods,
    truncate,
)
from k3py.controllers.endpointslice import _Plan, _reconcile, endpoint_for, slice_labels, slice_ports

Obj = dict[str, Any]


def service(**spec: Any) -> Obj:
    spec.setdefault("selector", {"app": "web"})
    spec.setdefault("ports", [{"name": "http", "port": 80, "targetPort": "web", "protocol": "TCP"}])
    return {
        "metadata": {"name": "svc", "namespace": "ns", "labels": {"team": "a"}, "creationTimestamp": "T0"},
        "spec": spec,
    }


def pod(name: str, ip: str, *, ready: bool = True, port: int = 8080, **extra: Any) -> Obj:
    status: Obj = {
        "phase": extra.pop("phase", "Running"),
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": name}],
    }
    meta: Obj = {"name": name, "namespace": "ns", "uid": f"uid-{name}", "labels": {"app": "web"}}
    meta.update(extra.pop("meta", {}))
    spec: Obj = {
        "nodeName": "n1",
        "containers": [{"name": "c", "ports": [{"name": "web", "containerPort": port}]}],
        **extra,
    }
    return {"metadata": meta, "spec": spec, "status": status}


def test_ready_and_not_ready_pods_are_split_and_named_ports_resolved() -> None:
    pods = [pod("b", "10.0.0.2", ready=False), pod("a", "10.0.0.10"), pod("c", "10.0.0.3")]
    [subset] = desired_subsets(service(), pods)
    assert [a["ip"] for a in subset["addresses"]] == ["10.0.0.3", "10.0.0.10"]
    assert [a["ip"] for a in subset["notReadyAddresses"]] == ["10.0.0.2"]
    assert subset["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    first = subset["addresses"][0]
    assert first["nodeName"] == "n1"
    assert first["targetRef"] == {"kind": "Pod", "namespace": "ns", "name": "c", "uid": "uid-c"}
    assert "hostname" not in first


def test_pods_serving_different_ports_get_different_subsets() -> None:
    subsets = desired_subsets(service(), [pod("a", "10.0.0.1", port=8080), pod("b", "10.0.0.2", port=9090)])
    assert sorted((s["ports"][0]["port"], s["addresses"][0]["ip"]) for s in subsets) == [
        (8080, "10.0.0.1"),
        (9090, "10.0.0.2"),
    ]


def test_several_service_ports_share_one_subset() -> None:
    ports = [{"name": "a", "port": 80, "targetPort": 8080}, {"name": "b", "port": 443, "targetPort": 8443}]
    [subset] = desired_subsets(service(ports=ports), [pod("a", "10.0.0.1")])
    assert [p["port"] for p in subset["ports"]] == [8080, 8443]


def test_pods_left_out() -> None:
    pods = [
        pod("no-ip", ""),
        pod("done", "10.0.0.2", phase="Succeeded"),
        pod("going", "10.0.0.3", meta={"deletionTimestamp": "now"}),
        pod("other", "10.0.0.4", meta={"labels": {"app": "db"}}),
        pod("no-port", "10.0.0.5", containers=[{"name": "c"}]),
    ]
    svc = service()
    assert desired_subsets(svc, selected_pods(svc, pods)) == []


def test_publish_not_ready_addresses_lists_everything_as_ready() -> None:
    pods = [pod("a", "10.0.0.1", ready=False), pod("b", "10.0.0.2", meta={"deletionTimestamp": "now"})]
    [subset] = desired_subsets(service(publishNotReadyAddresses=True), pods)
    assert [a["ip"] for a in subset["addresses"]] == ["10.0.0.1", "10.0.0.2"]
    assert "notReadyAddresses" not in subset


def test_headless_service_without_ports_and_hostnames() -> None:
    svc = service(clusterIP="None", ports=[])
    named = pod("a", "10.0.0.1", hostname="db-0", subdomain="svc")
    [subset] = desired_subsets(svc, [named, pod("b", "10.0.0.2", hostname="x", subdomain="other")])
    assert "ports" not in subset
    assert [a.get("hostname") for a in subset["addresses"]] == ["db-0", None]
    assert desired_labels(svc) == {
        "team": "a",
        "endpoints.kubernetes.io/managed-by": "endpoint-controller",
        "service.kubernetes.io/headless": "",
    }


def test_find_port() -> None:
    web = pod("a", "10.0.0.1", port=8081)
    assert find_port(web, {"port": 80, "targetPort": "web"}) == 8081
    assert find_port(web, {"port": 80, "targetPort": "web", "protocol": "UDP"}) is None
    assert find_port(web, {"port": 80, "targetPort": 9000}) == 9000
    assert find_port(web, {"port": 80}) == 80


def test_truncation_keeps_ready_addresses_first() -> None:
    subsets: list[Obj] = [
        {"notReadyAddresses": [{"ip": f"n{i}"} for i in range(10)]},
        {"addresses": [{"ip": f"r{i}"} for i in range(MAX_CAPACITY)]},
    ]
    assert truncate(subsets)
    assert subsets == [{"addresses": [{"ip": f"r{i}"} for i in range(MAX_CAPACITY)]}]
    assert not truncate(subsets)


def test_trigger_time_is_the_earliest_change_since_the_last_sync() -> None:
    times = TriggerTimes()
    svc = service()
    key = ("ns", "svc")
    assert times.compute(key, svc, [pod("b", "1.1.1.1")]) == "T0"
    assert times.compute(key, svc, [pod("b", "1.1.1.1")]) == ""
    assert times.compute(key, svc, [pod("b", "1.1.1.1"), pod("a", "1.1.1.2")]) == "a"


# -- EndpointSlices --------------------------------------------------------------------------------


def test_endpoint_conditions_follow_readiness_and_termination() -> None:
    svc = service()
    ready = endpoint_for(pod("a", "10.0.0.1"), svc, "10.0.0.1", "zone-a")
    assert ready["conditions"] == {"ready": True, "serving": True, "terminating": False}
    assert ready["zone"] == "zone-a"
    going = endpoint_for(pod("b", "10.0.0.2", meta={"deletionTimestamp": "now"}), svc, "10.0.0.2", "")
    assert going["conditions"] == {"ready": False, "serving": True, "terminating": True}
    assert "zone" not in going
    unready = endpoint_for(pod("c", "10.0.0.3", ready=False), svc, "10.0.0.3", "")
    assert unready["conditions"] == {"ready": False, "serving": False, "terminating": False}


def test_slice_labels() -> None:
    assert slice_labels(service()) == {
        "team": "a",
        "kubernetes.io/service-name": "svc",
        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
    }


def _desired(count: int, start: int = 0) -> dict[Any, Any]:
    ports = slice_ports([{"port": 8080, "protocol": "TCP"}])
    endpoints = {
        (f"10.0.{i // 250}.{i % 250}",): {"addresses": [f"10.0.{i // 250}.{i % 250}"]}
        for i in range(start, start + count)
    }
    return {(("", 8080, "TCP", ""),): (ports, endpoints)}


def test_new_endpoints_are_split_into_slices_of_at_most_the_limit() -> None:
    plan = _Plan()
    _reconcile(plan, "IPv4", _desired(250), [], {}, 100)
    assert [len(e) for _, _, e in plan.create] == [100, 100, 50]
    assert {f for f, _, _ in plan.create} == {"IPv4"}
    assert plan.create[0][1] == [{"name": "", "port": 8080, "protocol": "TCP"}]


def test_reconcile_keeps_unchanged_slices_and_fills_the_ones_it_writes() -> None:
    desired = _desired(5)
    ports = [{"name": "", "port": 8080, "protocol": "TCP"}]
    (_, endpoints) = desired[(("", 8080, "TCP", ""),)]
    listed = list(endpoints.values())
    untouched = {"metadata": {"name": "s-1", "labels": {}}, "ports": ports, "endpoints": listed[:2]}
    changed = {
        "metadata": {"name": "s-2", "labels": {}},
        "ports": ports,
        "endpoints": [listed[2], {"addresses": ["10.9.9.9"]}],
    }
    gone = {"metadata": {"name": "s-3", "labels": {}}, "ports": [{"name": "", "port": 1, "protocol": "TCP"}]}
    plan = _Plan()
    _reconcile(plan, "IPv4", desired, [untouched, changed, gone], {}, 100)
    assert plan.delete == [gone]
    assert plan.create == []
    [(slice_, kept)] = plan.update
    assert slice_ is changed
    assert kept == [listed[2], listed[3], listed[4]]
