"""The decisions of the garbage collector, the namespace controller and the pod garbage collector,
from objects alone (their API traffic is tested in tests/integration/test_controller_gc.py)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from k3py.client.rest import Credentials, RestClient
from k3py.controllers.garbagecollector import (
    ApiResource,
    Discovery,
    GarbageCollector,
    Node,
    Verdict,
    decide,
    group_of,
    own_policy,
    parse_resource_list,
)
from k3py.controllers.namespace import Content, conditions, merge_conditions
from k3py.controllers.podgc import excess_terminated, failed_status, out_of_service, unscheduled_terminating

Obj = dict[str, Any]
PODS = ApiResource("", "v1", "pods", "Pod", True, frozenset({"list", "watch", "delete", "get"}))
RS = ApiResource("apps", "v1", "replicasets", "ReplicaSet", True, frozenset({"list", "watch", "delete"}))


def obj(
    uid: str, *owners: str, deleting: bool = False, finalizers: tuple[str, ...] = (), block: bool = True
) -> Obj:
    meta: Obj = {"name": f"n-{uid}", "namespace": "default", "uid": uid}
    if owners:
        meta["ownerReferences"] = [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": o, "uid": o, "blockOwnerDeletion": block}
            for o in owners
        ]
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    if finalizers:
        meta["finalizers"] = list(finalizers)
    return {"metadata": meta}


# -- the garbage collector ----------------------------------------------------------------------


def test_resources_are_addressed_as_the_api_serves_them() -> None:
    assert PODS.collection() == "/api/v1/pods"
    assert PODS.path("team", "web-1") == "/api/v1/namespaces/team/pods/web-1"
    assert RS.collection("team") == "/apis/apps/v1/namespaces/team/replicasets"
    assert (PODS.group_resource, RS.group_resource, RS.api_version) == ("pods", "replicasets.apps", "apps/v1")
    assert (group_of("apps/v1"), group_of("v1")) == ("apps", "")


def test_discovery_keeps_top_level_resources_only() -> None:
    listed = {
        "resources": [
            {"name": "pods", "kind": "Pod", "namespaced": True, "verbs": ["list", "watch", "delete"]},
            {"name": "pods/status", "kind": "Pod", "namespaced": True, "verbs": ["get"]},
        ]
    }
    assert parse_resource_list("", "v1", listed) == [
        ApiResource("", "v1", "pods", "Pod", True, frozenset({"list", "watch", "delete"}))
    ]


@pytest.mark.parametrize(
    ("verdict", "finalizers", "expected"),
    [
        (Verdict(solid=("a",)), (), ("keep", ())),
        (Verdict(solid=("a",), dangling=("b",), waiting=("c",)), (), ("unlink", ("b", "c"))),
        (Verdict(waiting=("c",), dangling=("b",)), (), ("delete", "Foreground")),
        (Verdict(dangling=("b",)), (), ("delete", "Background")),
        (Verdict(dangling=("b",)), ("orphan",), ("delete", "Orphan")),
        (Verdict(dangling=("b",)), ("foregroundDeletion",), ("delete", "Foreground")),
        (Verdict(), (), ("keep", ())),
    ],
)
def test_a_dependent_goes_only_when_no_owner_holds_it(
    verdict: Verdict, finalizers: tuple[str, ...], expected: tuple[str, object]
) -> None:
    node = Node.of(PODS, obj("d", "a", finalizers=finalizers))
    assert decide(node, verdict) == expected
    assert own_policy(("x",)) == "Background"


def test_only_blocking_references_hold_up_a_foreground_deletion() -> None:
    assert Node.of(PODS, obj("d", "a")).blocks("a")
    assert not Node.of(PODS, obj("d", "a", block=False)).blocks("a")
    assert not Node.of(PODS, obj("d", "a")).blocks("z")
    owner = Node.of(RS, obj("a", deleting=True, finalizers=("foregroundDeletion",)))
    assert owner.waiting_for_dependents
    assert not Node.of(RS, obj("a", finalizers=("foregroundDeletion",))).waiting_for_dependents


async def test_the_graph_queues_whom_a_change_concerns() -> None:
    gc = GarbageCollector(RestClient("https://127.0.0.1:1", Credentials()))
    gc.observe(RS, None, obj("rs"))
    assert len(gc.queue) == 0  # no owners, not being deleted: nothing to decide
    gc.observe(PODS, None, obj("p1", "rs"))
    gc.observe(PODS, None, obj("p2", "rs"))
    assert gc.dependents["rs"] == {"p1", "p2"}
    assert await drain(gc) == {"p1", "p2"}
    gc.observe(RS, obj("rs"), obj("rs", deleting=True, finalizers=("foregroundDeletion",)))
    assert await drain(gc) == {"rs", "p1", "p2"}  # the owner to wait, its dependents to go
    gc.observe(PODS, obj("p1", "rs"), None)
    assert await drain(gc) == {"rs"}  # the owner may be done now
    assert gc.dependents["rs"] == {"p2"}
    gc.observe(RS, obj("rs", deleting=True, finalizers=("foregroundDeletion",)), None)
    assert await drain(gc) == {"p2"}  # its owner is gone
    gc.observe(PODS, obj("p2", "rs"), obj("p2"))
    assert "rs" not in gc.dependents


async def drain(gc: GarbageCollector) -> set[str]:
    out = set()
    while len(gc.queue):
        key = await gc.queue.get()
        gc.queue.done(key)
        out.add(key[1])
    return out


# -- the namespace controller -------------------------------------------------------------------


def test_namespace_conditions_are_worded_as_upstream() -> None:
    done = {c["type"]: c for c in conditions(Discovery(), Content())}
    assert {k: (c["status"], c["reason"]) for k, c in done.items()} == {
        "NamespaceDeletionDiscoveryFailure": ("False", "ResourcesDiscovered"),
        "NamespaceDeletionGroupVersionParsingFailure": ("False", "ParsedGroupVersions"),
        "NamespaceDeletionContentFailure": ("False", "ContentDeleted"),
        "NamespaceContentRemaining": ("False", "ContentRemoved"),
        "NamespaceFinalizersRemaining": ("False", "ContentHasNoFinalizers"),
    }
    content = Content(Counter({"pods.": 2, "widgets.example.com": 1}), Counter({"example.com/x": 1}))
    found = Discovery(failed={"metrics.k8s.io/v1beta1": "unavailable"})
    busy = {c["type"]: c for c in conditions(found, content)}
    assert busy["NamespaceContentRemaining"]["message"] == (
        "Some resources are remaining: pods. has 2 resource instances, "
        "widgets.example.com has 1 resource instances"
    )
    assert busy["NamespaceFinalizersRemaining"]["message"] == (
        "Some content in the namespace has finalizers remaining: example.com/x in 1 resource instances"
    )
    assert busy["NamespaceDeletionDiscoveryFailure"]["message"] == (
        "Discovery failed for some groups, 1 failing: metrics.k8s.io/v1beta1: unavailable"
    )
    assert not content.empty and Content().empty


def test_a_condition_keeps_its_transition_time_while_its_status_holds() -> None:
    old = [{"type": "A", "status": "True", "lastTransitionTime": "t0"}, {"type": "Other", "status": "True"}]
    new = [{"type": "A", "status": "True"}, {"type": "B", "status": "False"}]
    merged = {c["type"]: c for c in merge_conditions(old, new, "t1")}
    assert merged["A"]["lastTransitionTime"] == "t0"
    assert merged["B"]["lastTransitionTime"] == "t1"
    assert "Other" in merged
    flipped = merge_conditions(old, [{"type": "A", "status": "False"}], "t2")
    assert [c["lastTransitionTime"] for c in flipped if c["type"] == "A"] == ["t2"]


# -- the pod garbage collector ------------------------------------------------------------------


def pod(name: str, phase: str = "Running", created: str = "2026-01-01T00:00:00Z", **spec: Any) -> Obj:
    return {
        "metadata": {"name": name, "creationTimestamp": created},
        "spec": spec,
        "status": {"phase": phase},
    }


def test_the_oldest_terminated_pods_beyond_the_threshold_go() -> None:
    pods = [
        pod("new", "Succeeded", "2026-01-03T00:00:00Z"),
        pod("old", "Failed", "2026-01-01T00:00:00Z"),
        pod("mid", "Succeeded", "2026-01-02T00:00:00Z"),
        pod("running", "Running", "2025-01-01T00:00:00Z"),
    ]
    assert [p["metadata"]["name"] for p in excess_terminated(pods, 1)] == ["old", "mid"]
    assert excess_terminated(pods, 3) == []
    assert excess_terminated(pods, 0) == []  # 0 turns it off


def test_terminating_pods_nobody_scheduled_go() -> None:
    stuck = pod("stuck")
    stuck["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    bound = pod("bound", nodeName="n1")
    bound["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert unscheduled_terminating([stuck, bound, pod("pending")]) == [stuck]


def test_a_node_is_out_of_service_when_tainted_and_not_ready() -> None:
    taint = {"key": "node.kubernetes.io/out-of-service", "effect": "NoExecute"}
    ready = {"type": "Ready", "status": "True"}
    down = {"type": "Ready", "status": "Unknown"}
    assert out_of_service({"spec": {"taints": [taint]}, "status": {"conditions": [down]}})
    assert out_of_service({"spec": {"taints": [taint]}})
    assert not out_of_service({"spec": {"taints": [taint]}, "status": {"conditions": [ready]}})
    assert not out_of_service({"spec": {}, "status": {"conditions": [down]}})


def test_a_collected_pod_is_marked_failed_by_pod_gc() -> None:
    marked = failed_status(pod("p"), "PodGC: node no longer exists")
    assert marked is not None
    patch = marked["status"]
    assert patch["phase"] == "Failed"
    (cond,) = patch["conditions"]
    assert (cond["type"], cond["status"], cond["reason"], cond["message"]) == (
        "DisruptionTarget",
        "True",
        "DeletionByPodGC",
        "PodGC: node no longer exists",
    )
    assert failed_status(pod("p")) == {"status": {"phase": "Failed"}}
    assert failed_status(pod("p", "Succeeded")) is None  # a terminal phase stays
