"""PodTopologySpread: maxSkew filtering, minDomains, inclusion policies, scoring, defaults."""

from __future__ import annotations

import random
from typing import Any

from k3py.scheduler import spread
from k3py.scheduler.cluster import Cluster
from k3py.scheduler.cycle import Placement, Unschedulable, find_node
from k3py.scheduler.resources import NodeInfo

Obj = dict[str, Any]
ZONE = "topology.kubernetes.io/zone"
HOST = "kubernetes.io/hostname"
APP = {"app": "web"}


def node(name: str, zone: str | None = None, **spec: Any) -> Obj:
    labels = {HOST: name, **({ZONE: zone} if zone else {})}
    status = {
        "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
        "conditions": [{"type": "Ready", "status": "True"}],
    }
    return {"metadata": {"name": name, "labels": labels}, "spec": spec, "status": status}


def pod(name: str, labels: dict[str, str] | None = None, *constraints: Obj, **meta: Any) -> Obj:
    spec: Obj = {"containers": [{"name": "c", "image": "busybox"}]}
    if constraints:
        spec["topologySpreadConstraints"] = list(constraints)
    return {"metadata": {"name": name, "namespace": "default", "labels": labels or {}, **meta}, "spec": spec}


def constraint(key: str = ZONE, skew: int = 1, when: str = "DoNotSchedule", **more: Any) -> Obj:
    return {
        "maxSkew": skew,
        "topologyKey": key,
        "whenUnsatisfiable": when,
        "labelSelector": {"matchLabels": APP},
        **more,
    }


def web(i: int) -> Obj:
    return pod(f"web-{i}", APP)


def reasons(incoming: Obj, nodes: list[NodeInfo]) -> dict[str, str]:
    state = spread.prefilter(incoming, nodes)
    out = {}
    for info in nodes:
        status = spread.filter(state, incoming, info)
        out[info.name] = "" if status is None else status.reasons[0]
    return out


def test_max_skew_keeps_domains_within_reach_of_the_least_populated() -> None:
    nodes = [
        NodeInfo.of(node("a", "z1"), [web(1), web(2)]),
        NodeInfo.of(node("b", "z2"), [web(3)]),
        NodeInfo.of(node("c")),
    ]
    incoming = pod("web-4", APP, constraint())
    assert reasons(incoming, nodes) == {
        "a": spread.ERR_CONSTRAINTS,
        "b": "",
        "c": spread.ERR_MISSING_LABEL,
    }
    state = spread.prefilter(incoming, nodes)
    assert state is not None and state.counts == [{"z1": 2, "z2": 1}]
    missing = spread.filter(state, incoming, nodes[2])
    assert missing is not None and not missing.resolvable
    # A pod its own selector does not match adds nothing to the skew.
    assert reasons(pod("other", {}, constraint()), nodes)["a"] == ""


def test_min_domains_counts_the_minimum_as_zero_until_there_are_enough() -> None:
    nodes = [NodeInfo.of(node("a", "z1"), [web(1)]), NodeInfo.of(node("b", "z2"), [web(2)])]
    assert reasons(pod("w", APP, constraint()), nodes) == {"a": "", "b": ""}
    needs_three = pod("w", APP, constraint(minDomains=3))
    assert reasons(needs_three, nodes) == {"a": spread.ERR_CONSTRAINTS, "b": spread.ERR_CONSTRAINTS}


def test_node_inclusion_policies() -> None:
    tainted = node("b", "z2", taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}])
    nodes = [NodeInfo.of(node("a", "z1"), [web(1)]), NodeInfo.of(tainted)]
    # Taints ignored by default: z2 counts with 0 pods, so z1 (1 + 1 - 0) is too crowded.
    assert reasons(pod("w", APP, constraint()), nodes)["a"] == spread.ERR_CONSTRAINTS
    honor = pod("w", APP, constraint(nodeTaintsPolicy="Honor"))
    assert reasons(honor, nodes)["a"] == ""
    # Node affinity honoured by default: a node the pod may not use is not a domain.
    limited = pod("w", APP, constraint())
    limited["spec"]["nodeSelector"] = {ZONE: "z1"}
    assert reasons(limited, nodes)["a"] == ""
    ignore = pod("w", APP, constraint(nodeAffinityPolicy="Ignore"))
    ignore["spec"]["nodeSelector"] = {ZONE: "z1"}
    assert reasons(ignore, nodes)["a"] == spread.ERR_CONSTRAINTS


def test_match_label_keys_narrow_the_selector_and_terminating_pods_do_not_count() -> None:
    old = pod("web-old", {**APP, "rev": "1"})
    gone = pod("web-gone", {**APP, "rev": "2"}, deletionTimestamp="2026-01-01T00:00:00Z")
    nodes = [NodeInfo.of(node("a", "z1"), [old, gone]), NodeInfo.of(node("b", "z2"))]
    plain = pod("web-new", {**APP, "rev": "2"}, constraint())
    assert reasons(plain, nodes)["a"] == spread.ERR_CONSTRAINTS
    by_revision = pod("web-new", {**APP, "rev": "2"}, constraint(matchLabelKeys=["rev"]))
    assert reasons(by_revision, nodes) == {"a": "", "b": ""}


def test_schedule_anyway_scores_the_emptier_domain_higher() -> None:
    nodes = [
        NodeInfo.of(node("a", "z1"), [web(1), web(2)]),
        NodeInfo.of(node("b", "z2"), [web(3)]),
        NodeInfo.of(node("c", "z3")),
    ]
    soft = pod("w", APP, constraint(when="ScheduleAnyway"))
    assert spread.prefilter(soft, nodes) is None
    scores = spread.scores(soft, nodes, nodes, Cluster())
    assert scores["c"] > scores["b"] > scores["a"]
    # ln(3 + 2) weight: raw a = round(2 * 1.609) = 3, b = 2, c = 0; 100 * (3 + 0 - s) / 3.
    assert scores == {"a": 0, "b": 33, "c": 100}
    placed = find_node(soft, nodes, random.Random(0))
    assert isinstance(placed, Placement) and placed.node == "c"


def test_system_defaults_apply_to_pods_a_service_or_replicaset_selects() -> None:
    nodes = [NodeInfo.of(node("a", "z1"), [web(1), web(2)]), NodeInfo.of(node("b", "z1"))]
    service = {"metadata": {"name": "web", "namespace": "default"}, "spec": {"selector": APP}}
    alone = pod("w", APP)
    assert spread.default_constraints(alone, Cluster()) == []
    assert spread.scores(alone, nodes, nodes, Cluster()) == {"a": 0, "b": 0}
    with_service = Cluster(services=[service])
    [host, zone] = spread.default_constraints(alone, with_service)
    assert (host.topology_key, host.max_skew, zone.topology_key, zone.max_skew) == (HOST, 3, ZONE, 5)
    scores = spread.scores(alone, nodes, nodes, with_service)
    assert scores["b"] > scores["a"]
    owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "controller": True}
    owned = pod("w", {**APP, "pod-template-hash": "1"}, ownerReferences=[owner])
    rs = {"spec": {"selector": {"matchLabels": {**APP, "pod-template-hash": "1"}}}}
    selector = spread.default_selector(owned, Cluster(controllers={("ReplicaSet", "default", "web-1"): rs}))
    assert [str(r) for r in selector.requirements] == ["app=web", "pod-template-hash=1"]


def test_find_node_reports_the_spread_reason() -> None:
    nodes = [NodeInfo.of(node("a", "z1"), [web(1)]), NodeInfo.of(node("b", "z2"), [web(2), web(3)])]
    hard = pod("w", APP, constraint(HOST, minDomains=3))
    result = find_node(hard, nodes, random.Random(0))
    assert isinstance(result, Unschedulable)
    assert result.message.startswith(
        "0/2 nodes are available: 2 node(s) didn't match pod topology spread constraints."
    )
