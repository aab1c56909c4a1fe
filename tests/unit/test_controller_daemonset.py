"""The DaemonSet controller's decisions, as pure functions: placement, pods, rolling updates."""

from __future__ import annotations

from typing import Any

from k3py.controllers.daemonset import (
    count,
    new_pod,
    node_affinity,
    placement,
    plan_nodes,
    surge_and_unavailable,
    target_node,
)

Obj = dict[str, Any]
NOW = "2020-01-01T00:00:00Z"


def daemonset(**spec: Any) -> Obj:
    base: Obj = {
        "metadata": {"name": "agent", "namespace": "ns", "uid": "u-1", "generation": 2},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "updateStrategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
            },
            "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"containers": [{"name": "c"}]}},
        },
    }
    base["spec"].update(spec)
    return base


def node(name: str, *taints: tuple[str, str], **labels: str) -> Obj:
    spec = {"taints": [{"key": k, "effect": e} for k, e in taints]}
    return {"metadata": {"name": name, "labels": labels}, "spec": spec}


def pod(
    name: str, on: str, hash_: str = "new", *, ready: bool = True, phase: str = "Running", **meta: Any
) -> Obj:
    condition = {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": NOW}
    return {
        "metadata": {
            "name": name,
            "uid": name,
            "creationTimestamp": meta.pop("created", NOW),
            "labels": {"controller-revision-hash": hash_, "pod-template-generation": "1"},
            **meta,
        },
        "spec": {"nodeName": on},
        "status": {"phase": phase, "conditions": [condition]},
    }


def test_a_node_is_eligible_as_the_scheduler_would_see_the_daemon_pod() -> None:
    ds = daemonset()
    assert placement(ds, node("n1")).should_run
    cordoned = node("n2")
    cordoned["spec"]["unschedulable"] = True
    cordoned["spec"]["taints"] = [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]
    assert placement(ds, cordoned).should_run, "the default tolerations include unschedulable"
    assert placement(ds, node("n3", ("node.kubernetes.io/not-ready", "NoExecute"))).should_run
    tainted = placement(ds, node("gpu", ("dedicated", "NoSchedule")))
    assert (tainted.should_run, tainted.should_continue) == (False, True)
    evicting = placement(ds, node("gpu", ("dedicated", "NoExecute")))
    assert (evicting.should_run, evicting.should_continue) == (False, False)
    tolerant = daemonset()
    tolerant["spec"]["template"]["spec"]["tolerations"] = [{"key": "dedicated", "operator": "Exists"}]
    assert placement(tolerant, node("gpu", ("dedicated", "NoSchedule"))).should_run


def test_node_selector_and_affinity_choose_nodes() -> None:
    ds = daemonset()
    ds["spec"]["template"]["spec"]["nodeSelector"] = {"disk": "ssd"}
    assert placement(ds, node("a", disk="ssd")).should_run
    assert not placement(ds, node("b", disk="hdd")).should_continue
    ds = daemonset()
    ds["spec"]["template"]["spec"]["affinity"] = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}
                ]
            }
        }
    }
    assert placement(ds, node("a", zone="a")).should_run
    assert not placement(ds, node("b", zone="b")).should_run


def test_a_daemon_pod_is_pinned_to_its_node_and_tolerates_the_defaults() -> None:
    made = new_pod(daemonset(), "n1", "h1")
    assert made["metadata"]["generateName"] == "agent-"
    assert made["metadata"]["labels"] == {
        "app": "agent",
        "controller-revision-hash": "h1",
        "pod-template-generation": "2",
    }
    assert "nodeName" not in made["spec"]
    assert target_node(made) == "n1"
    tolerations = {(t["key"], t["effect"], t["operator"]) for t in made["spec"]["tolerations"]}
    assert tolerations == {
        ("node.kubernetes.io/not-ready", "NoExecute", "Exists"),
        ("node.kubernetes.io/unreachable", "NoExecute", "Exists"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule", "Exists"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule", "Exists"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule", "Exists"),
        ("node.kubernetes.io/unschedulable", "NoSchedule", "Exists"),
    }


def test_the_node_affinity_replaces_match_fields_in_every_term() -> None:
    pin = [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]
    expressions = [{"key": "zone", "operator": "In", "values": ["a"]}]
    existing = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": expressions, "matchFields": [{"key": "x"}]}]
            }
        }
    }
    terms = node_affinity(existing, "n1")["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"] == [{"matchExpressions": expressions, "matchFields": pin}]
    fresh = node_affinity(None, "n1")["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert fresh["nodeSelectorTerms"] == [{"matchFields": pin}]


def test_missing_pods_are_created_and_misplaced_or_failed_ones_deleted() -> None:
    ds = daemonset()
    nodes = [node("n1"), node("n2"), node("gone", ("x", "NoExecute"))]
    by_node = {
        "n2": [pod("failed", "n2", phase="Failed")],
        "gone": [pod("evicted", "gone")],
        "removed-node": [pod("bound", "removed-node"), pod("pinned", "")],
    }
    by_node["removed-node"][1]["spec"] = new_pod(ds, "removed-node", "new")["spec"]
    actions = plan_nodes(ds, nodes, by_node, "new")
    assert sorted(actions.create) == ["n1"]
    assert [p["metadata"]["name"] for p in actions.failed] == ["failed"]
    assert sorted(p["metadata"]["name"] for p in actions.delete) == ["evicted", "pinned"]


def test_extra_pods_on_a_node_are_deleted_keeping_the_oldest() -> None:
    by_node = {"n1": [pod("young", "n1", created="2020-01-02T00:00:00Z"), pod("old", "n1")]}
    actions = plan_nodes(daemonset(), [node("n1")], by_node, "new")
    assert [p["metadata"]["name"] for p in actions.delete] == ["young"]


def test_rolling_update_without_surge_respects_max_unavailable() -> None:
    nodes = [node(f"n{i}") for i in range(3)]
    by_node = {f"n{i}": [pod(f"p{i}", f"n{i}", "old")] for i in range(3)}
    actions = plan_nodes(daemonset(), nodes, by_node, "new")
    assert len(actions.delete) == 1 and actions.create == []
    by_node["n0"] = [pod("p0", "n0", "old", ready=False)]
    actions = plan_nodes(daemonset(), nodes, by_node, "new")
    assert [p["metadata"]["name"] for p in actions.delete] == ["p0"], "an unavailable old pod goes at once"
    on_delete = daemonset(updateStrategy={"type": "OnDelete"})
    assert (
        plan_nodes(
            on_delete, nodes, {f"n{i}": [pod(f"p{i}", f"n{i}", "old")] for i in range(3)}, "new"
        ).delete
        == []
    )


def test_rolling_update_with_surge_creates_first_then_deletes_the_old_pod() -> None:
    ds = daemonset(
        updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    )
    nodes = [node("n1"), node("n2")]
    by_node = {"n1": [pod("a", "n1", "old")], "n2": [pod("b", "n2", "old")]}
    actions = plan_nodes(ds, nodes, by_node, "new")
    assert (len(actions.create), actions.delete) == (1, [])
    by_node["n1"].append(pod("a2", "n1", "new", ready=False))
    waiting = plan_nodes(ds, nodes, by_node, "new")
    assert (waiting.create, waiting.delete) == ([], []), "one surge pod at a time"
    by_node["n1"][1] = pod("a2", "n1", "new")
    assert [p["metadata"]["name"] for p in plan_nodes(ds, nodes, by_node, "new").delete] == ["a"]


def test_max_surge_and_unavailable_scale_with_the_desired_count() -> None:
    percent = daemonset(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%"}})
    assert surge_and_unavailable(percent, 10) == (0, 3)
    zero = daemonset(
        updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}}
    )
    assert surge_and_unavailable(zero, 10) == (0, 1)


def test_status_counts() -> None:
    nodes = [node("n1"), node("n2"), node("n3"), node("gpu", ("dedicated", "NoSchedule"))]
    by_node = {
        "n1": [pod("a", "n1", "new")],
        "n2": [pod("b", "n2", "old", ready=False)],
        "gpu": [pod("c", "gpu", "new")],
    }
    counts = count(daemonset(), nodes, by_node, "new")
    assert (counts.desired, counts.current, counts.misscheduled) == (3, 2, 1)
    assert (counts.ready, counts.available, counts.updated) == (1, 1, 1)
