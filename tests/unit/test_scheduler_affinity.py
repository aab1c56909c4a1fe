"""InterPodAffinity: required terms filter (with upstream's reasons), preferred terms score."""

from __future__ import annotations

import random
from typing import Any

from k3py.scheduler import affinity
from k3py.scheduler.cluster import Cluster
from k3py.scheduler.cycle import Placement, Unschedulable, find_node
from k3py.scheduler.resources import NodeInfo

Obj = dict[str, Any]
ZONE = "topology.kubernetes.io/zone"
HOST = "kubernetes.io/hostname"


def node(name: str, zone: str | None = None) -> Obj:
    labels = {HOST: name, **({ZONE: zone} if zone else {})}
    status = {
        "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
        "conditions": [{"type": "Ready", "status": "True"}],
    }
    return {"metadata": {"name": name, "labels": labels}, "spec": {}, "status": status}


def pod(name: str, labels: dict[str, str] | None = None, namespace: str = "default", **affinity: Any) -> Obj:
    spec: Obj = {"containers": [{"name": "c", "image": "busybox"}]}
    if affinity:
        spec["affinity"] = affinity
    return {"metadata": {"name": name, "namespace": namespace, "labels": labels or {}}, "spec": spec}


def term(key: str = ZONE, **more: Any) -> Obj:
    return {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": key, **more}


def required(*terms: Obj) -> Obj:
    return {"requiredDuringSchedulingIgnoredDuringExecution": list(terms)}


def preferred(weight: int, t: Obj) -> Obj:
    return {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": weight, "podAffinityTerm": t}]}


def cluster_of(*placed: tuple[Obj, list[Obj]]) -> list[NodeInfo]:
    return [NodeInfo.of(n, pods) for n, pods in placed]


def statuses(incoming: Obj, nodes: list[NodeInfo], cluster: Cluster | None = None) -> dict[str, str]:
    state = affinity.prefilter(incoming, nodes, (cluster or Cluster()).namespaces)
    out = {}
    for info in nodes:
        status = affinity.filter(state, incoming, info)
        out[info.name] = "" if status is None else status.reasons[0]
    return out


def test_affinity_requires_a_matching_pod_in_the_same_domain() -> None:
    db = pod("db", {"app": "db"})
    nodes = cluster_of((node("a", "z1"), [db]), (node("b", "z1"), []), (node("c", "z2"), []), (node("d"), []))
    web = pod("web", podAffinity=required(term()))
    assert statuses(web, nodes) == {
        "a": "",
        "b": "",
        "c": affinity.ERR_AFFINITY,
        "d": affinity.ERR_AFFINITY,  # no zone label at all
    }
    state = affinity.prefilter(web, nodes, {})
    refused = affinity.filter(state, web, nodes[2])
    assert refused is not None and not refused.resolvable


def test_the_first_pod_of_a_self_affine_group_may_go_anywhere_with_the_key() -> None:
    nodes = cluster_of((node("a", "z1"), []), (node("b"), []))
    first = pod("db-0", {"app": "db"}, podAffinity=required(term()))
    assert statuses(first, nodes) == {"a": "", "b": affinity.ERR_AFFINITY}
    other = pod("web", {"app": "web"}, podAffinity=required(term()))
    assert statuses(other, nodes)["a"] == affinity.ERR_AFFINITY


def test_anti_affinity_of_the_pod_and_of_existing_pods() -> None:
    db = pod("db", {"app": "db"})
    nodes = cluster_of((node("a", "z1"), [db]), (node("b", "z2"), []))
    lonely = pod("lonely", podAntiAffinity=required(term()))
    assert statuses(lonely, nodes) == {"a": affinity.ERR_ANTI_AFFINITY, "b": ""}
    state = affinity.prefilter(lonely, nodes, {})
    refused = affinity.filter(state, lonely, nodes[0])
    assert refused is not None and refused.resolvable

    guard = pod("guard", {"app": "guard"}, podAntiAffinity=required(term(HOST)))
    nodes = cluster_of((node("a", "z1"), [guard]), (node("b", "z1"), []))
    assert statuses(pod("x", {"app": "db"}), nodes) == {"a": affinity.ERR_EXISTING_ANTI_AFFINITY, "b": ""}
    assert statuses(pod("y", {"app": "web"}), nodes) == {"a": "", "b": ""}


def test_namespaces_and_namespace_selector() -> None:
    elsewhere = pod("db", {"app": "db"}, namespace="data")
    nodes = cluster_of((node("a", "z1"), [elsewhere]), (node("b", "z2"), []))
    # By default a term only looks at the pod's own namespace.
    assert statuses(pod("web", podAffinity=required(term())), nodes)["a"] == affinity.ERR_AFFINITY
    listed = pod("web", podAffinity=required(term(namespaces=["data"])))
    assert statuses(listed, nodes) == {"a": "", "b": affinity.ERR_AFFINITY}
    chosen = pod("web", podAffinity=required(term(namespaceSelector={"matchLabels": {"tier": "data"}})))
    labelled = Cluster(namespaces={"data": {"tier": "data"}, "default": {}})
    assert statuses(chosen, nodes, labelled) == {"a": "", "b": affinity.ERR_AFFINITY}
    assert statuses(chosen, nodes, Cluster())["a"] == affinity.ERR_AFFINITY
    everywhere = pod("web", podAffinity=required(term(namespaceSelector={})))
    assert statuses(everywhere, nodes)["a"] == ""


def test_match_and_mismatch_label_keys_use_the_owners_values() -> None:
    blue = pod("db-blue", {"app": "db", "track": "blue"})
    green = pod("db-green", {"app": "db", "track": "green"})
    nodes = cluster_of((node("a", "z1"), [blue]), (node("b", "z2"), [green]))
    same_track = pod("web", {"track": "green"}, podAffinity=required(term(matchLabelKeys=["track"])))
    assert statuses(same_track, nodes) == {"a": affinity.ERR_AFFINITY, "b": ""}
    other_track = pod("web", {"track": "green"}, podAffinity=required(term(mismatchLabelKeys=["track"])))
    assert statuses(other_track, nodes) == {"a": "", "b": affinity.ERR_AFFINITY}


def test_preferred_terms_score_by_weight_and_existing_pods_terms_count_too() -> None:
    db = pod("db", {"app": "db"})
    nodes = cluster_of((node("a", "z1"), [db]), (node("b", "z2"), []), (node("c", "z1"), []))
    near = pod("web", podAffinity=preferred(10, term()))
    assert affinity.raw_scores(near, nodes, nodes, {}) == {"a": 10, "b": 0, "c": 10}
    assert affinity.scores(near, nodes, nodes, {}) == {"a": 100, "b": 0, "c": 100}
    away = pod("web", podAntiAffinity=preferred(5, term()))
    assert affinity.scores(away, nodes, nodes, {}) == {"a": 0, "b": 100, "c": 0}
    # An existing pod's required affinity to the incoming pod pulls it (hardPodAffinityWeight 1).
    fan = pod("fan", podAffinity=required(term(HOST)))
    nodes = cluster_of((node("a", "z1"), [fan]), (node("b", "z2"), []))
    assert affinity.raw_scores(pod("db2", {"app": "db"}), nodes, nodes, {}) == {"a": 1, "b": 0}


def test_find_node_runs_the_filter_and_the_score() -> None:
    db = pod("db", {"app": "db"})
    nodes = cluster_of((node("a", "z1"), []), (node("b", "z2"), [db]))
    placed = find_node(pod("web", podAffinity=preferred(100, term())), nodes, random.Random(0))
    assert isinstance(placed, Placement) and placed.node == "b"
    refused = find_node(pod("web", podAntiAffinity=required(term())), nodes[1:], random.Random(0))
    assert isinstance(refused, Unschedulable)
    assert refused.message == (
        "0/1 nodes are available: 1 node(s) didn't match pod anti-affinity rules. "
        "preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
    )
