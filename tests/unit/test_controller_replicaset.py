"""The ReplicaSet controller's pure decisions: batches, which pods go first, status, expectations."""

from __future__ import annotations

from typing import Any

from k3py.controllers.replicaset import (
    Expectations,
    calculate_status,
    pod_from_template,
    pods_to_delete,
    slow_start_batches,
    status_differs,
    status_patch,
)

Obj = dict[str, Any]
NOW = 1_800_000_000.0


def stamp(seconds: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod(
    name: str, *, node: str = "n1", phase: str = "Running", ready_at: float | None = NOW - 3600, **extra: Any
) -> Obj:
    conditions = (
        []
        if ready_at is None
        else [{"type": "Ready", "status": "True", "lastTransitionTime": stamp(ready_at)}]
    )
    return {
        "metadata": {"name": name, "uid": name, "creationTimestamp": stamp(NOW - 7200), **extra},
        "spec": {"nodeName": node},
        "status": {"phase": phase, "conditions": conditions},
    }


def names(pods: list[Obj]) -> list[str]:
    return [p["metadata"]["name"] for p in pods]


def test_slow_start_doubles_up_to_the_rest() -> None:
    assert slow_start_batches(0) == []
    assert slow_start_batches(1) == [1]
    assert slow_start_batches(10) == [1, 2, 4, 3]
    assert sum(slow_start_batches(500)) == 500


def test_deletion_prefers_unscheduled_pending_unready_then_doubled_up() -> None:
    pods = [
        pod("running"),
        pod("unscheduled", node=""),
        pod("pending", phase="Pending", ready_at=None),
        pod("unready", ready_at=None),
    ]
    assert names(pods_to_delete(pods, pods, 3, NOW)) == ["unscheduled", "pending", "unready"]
    alone, crowded = pod("alone", node="n2"), pod("crowded", node="n1")
    related = [crowded, pod("sibling", node="n1")]
    assert names(pods_to_delete([alone, crowded], related, 1, NOW)) == ["crowded"]


def test_deletion_prefers_recently_ready_and_cost() -> None:
    old, new = pod("old", ready_at=NOW - 100_000), pod("new", ready_at=NOW - 10)
    assert names(pods_to_delete([old, new], [], 1, NOW)) == ["new"]
    cheap = pod(
        "cheap", annotations={"controller.kubernetes.io/pod-deletion-cost": "-5"}, ready_at=NOW - 100_000
    )
    assert names(pods_to_delete([new, cheap], [], 1, NOW)) == ["cheap"]
    assert names(pods_to_delete([old, new], [], 5, NOW)) == ["old", "new"]


def test_status_counts_and_failure_condition() -> None:
    owner = {
        "metadata": {"generation": 4},
        "spec": {"minReadySeconds": 60, "template": {"metadata": {"labels": {"app": "a", "tier": "x"}}}},
        "status": {},
    }
    pods = [
        pod("a", labels={"app": "a", "tier": "x"}),
        pod("b", labels={"app": "a"}, ready_at=NOW - 5),
        pod("c", labels={"app": "a"}, ready_at=None),
    ]
    status = calculate_status(owner, pods, RuntimeError("quota exceeded"), -1, NOW, "t")
    assert status["replicas"] == 3 and status["fullyLabeledReplicas"] == 1
    assert status["readyReplicas"] == 2 and status["availableReplicas"] == 1
    assert status["observedGeneration"] == 4
    (failure,) = status["conditions"]
    assert (failure["reason"], failure["message"]) == ("FailedCreate", "quota exceeded")
    owner["status"] = status
    cleared = calculate_status(owner, pods, None, 0, NOW, "t")
    assert cleared["conditions"] == []
    assert status_differs(status, cleared) and not status_differs(cleared, cleared)
    assert status_patch({**cleared, "readyReplicas": 0})["status"]["readyReplicas"] is None


def test_pods_from_the_template_carry_the_controller_reference() -> None:
    owner = {"metadata": {"name": "web", "namespace": "ns", "uid": "u1"}}
    template = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c"}]}}
    created = pod_from_template(owner, "apps/v1", "ReplicaSet", template)
    assert created["metadata"]["generateName"] == "web-"
    assert created["metadata"]["labels"] == {"app": "web"}
    assert created["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": "web",
            "uid": "u1",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def test_expectations_wait_for_the_cache() -> None:
    expectations = Expectations()
    key = ("ns", "web")
    cache: dict[str, Obj] = {}
    expectations.expect(key, adds=["p1"], deletes=["p2"])
    cache["p2"] = pod("p2")
    assert not expectations.satisfied(key, cache.get)
    cache["p1"] = pod("p1")
    assert not expectations.satisfied(key, cache.get)
    del cache["p2"]
    assert expectations.satisfied(key, cache.get)
    expectations.expect(key, adds=["p3"])
    expectations.observed(key, pod("p3"), gone=False)
    assert expectations.satisfied(key, cache.get)
