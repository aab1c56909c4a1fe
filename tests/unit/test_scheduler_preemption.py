"""DefaultPreemption: which node, which victims, and what the message says when none."""

from __future__ import annotations

import random
from typing import Any

from k3py.scheduler import preemption
from k3py.scheduler.cluster import Cluster
from k3py.scheduler.cycle import Filtering, Placement, Unschedulable, find_node
from k3py.scheduler.preemption import Candidate
from k3py.scheduler.resources import NodeInfo

Obj = dict[str, Any]


def node(name: str, cpu: str = "2") -> Obj:
    status = {
        "allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"},
        "conditions": [{"type": "Ready", "status": "True"}],
    }
    return {"metadata": {"name": name, "labels": {}}, "spec": {}, "status": status}


def pod(name: str, cpu: str, prio: int = 0, labels: dict[str, str] | None = None, **status: Any) -> Obj:
    return {
        "metadata": {"name": name, "namespace": "default", "labels": labels or {}, "uid": f"uid-{name}"},
        "spec": {
            "priority": prio,
            "containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": cpu}}}],
        },
        "status": status,
    }


def names(candidate: Candidate | None) -> tuple[str, list[str]]:
    assert candidate is not None
    return candidate.node, [v["metadata"]["name"] for v in candidate.victims]


def preempt(incoming: Obj, nodes: list[NodeInfo], cluster: Cluster | None = None) -> preemption.Outcome:
    result = find_node(incoming, nodes, random.Random(0), cluster)
    assert isinstance(result, Unschedulable)
    assert result.preemption is not None
    return result.preemption


def test_the_fewest_lower_priority_pods_are_evicted_and_the_rest_reprieved() -> None:
    nodes = [
        NodeInfo.of(node("a"), [pod("low-1", "1", 1), pod("low-2", "500m", 2), pod("high", "500m", 100)])
    ]
    outcome = preempt(pod("p", "1", 50), nodes)
    # Removing low-1 alone frees 1 core; low-2 (more important) is reprieved first and fits.
    assert names(outcome.candidate) == ("a", ["low-1"])
    assert outcome.message == ""
    result = find_node(pod("p", "1", 50), nodes, random.Random(0))
    assert isinstance(result, Unschedulable)
    assert result.message == "0/1 nodes are available: 1 Insufficient cpu."


def test_the_node_with_the_least_important_victims_is_chosen() -> None:
    nodes = [
        NodeInfo.of(node("a"), [pod("a-mid", "2", 20)]),
        NodeInfo.of(node("b"), [pod("b-low", "1", 5), pod("b-low2", "1", 5)]),
        NodeInfo.of(node("c"), [pod("c-low", "2", 5)]),
    ]
    # b and c tie on the highest victim priority (5); c needs one victim, b two.
    assert names(preempt(pod("p", "2", 50), nodes).candidate) == ("c", ["c-low"])
    assert names(preemption.pick([Candidate("x", ()), Candidate("y", (pod("v", "1"),))])) == ("x", [])


def test_pdb_violations_are_avoided_and_counted() -> None:
    guarded = pod("guarded", "2", 1, {"app": "db"})
    nodes = [NodeInfo.of(node("a"), [guarded]), NodeInfo.of(node("b"), [pod("free", "2", 1)])]
    pdb = {
        "metadata": {"name": "db", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "db"}}},
        "status": {"disruptionsAllowed": 0},
    }
    outcome = preempt(pod("p", "2", 50), nodes, Cluster(pdbs=[pdb]))
    assert names(outcome.candidate) == ("b", ["free"])
    violating, fine = preemption.split_by_pdb([guarded, pod("free", "2", 1)], [pdb])
    assert ([p["metadata"]["name"] for p in violating], [p["metadata"]["name"] for p in fine]) == (
        ["guarded"],
        ["free"],
    )
    only = preempt(pod("p", "2", 50), nodes[:1], Cluster(pdbs=[pdb]))
    assert only.candidate is not None and only.candidate.pdb_violations == 1


def test_why_preemption_cannot_help() -> None:
    nodes = [NodeInfo.of(node("a"), [pod("same", "2", 50)]), NodeInfo.of(node("big", "1"))]
    outcome = preempt(pod("p", "2", 50), nodes)
    assert outcome.candidate is None and outcome.clear_nomination
    assert outcome.message == (
        "preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, "
        "1 Preemption is not helpful for scheduling."
    )
    never = pod("p", "2", 100)
    never["spec"]["preemptionPolicy"] = "Never"
    assert preempt(never, nodes).message == "preemption: not eligible due to preemptionPolicy=Never."


def test_a_nominated_pod_waits_for_its_victims_and_keeps_its_room() -> None:
    terminating = pod(
        "victim",
        "2",
        1,
        conditions=[{"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler"}],
    )
    terminating["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    nodes = [NodeInfo.of(node("a"), [terminating]), NodeInfo.of(node("b"))]
    waiting = pod("p", "2", 50, nominatedNodeName="a")
    nodes_full = [nodes[0], NodeInfo.of(node("b"), [pod("other", "2", 100)])]
    assert preempt(waiting, nodes_full).message == (
        "preemption: not eligible due to a terminating pod on the nominated node."
    )
    # Once the victim is gone the nominated node is preferred over any other.
    freed = [NodeInfo.of(node("a")), NodeInfo.of(node("b", "4"))]
    placed = find_node(waiting, freed, random.Random(0))
    assert isinstance(placed, Placement) and placed.node == "a"
    # Meanwhile a pod of lower priority may not take the room nominated to it.
    cluster = Cluster(nominated=[waiting])
    small = find_node(pod("q", "1", 10), [NodeInfo.of(node("a"))], random.Random(0), cluster)
    assert isinstance(small, Unschedulable)
    assert Filtering(pod("q", "1", 10), cluster).statuses([NodeInfo.of(node("a"))])["a"] is not None
    bigger = find_node(pod("r", "1", 90), [NodeInfo.of(node("a"))], random.Random(0), cluster)
    assert isinstance(bigger, Placement)
