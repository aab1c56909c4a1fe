"""What the node lifecycle controller decides: Unknown conditions, condition taints, eviction delays."""

from __future__ import annotations

from typing import Any

import pytest

from k3py.api.taints import tolerates
from k3py.controllers.nodelifecycle import (
    eviction_delay,
    mark_unknown,
    reconcile_taints,
)
from k3py.controllers.objects import rfc3339

Obj = dict[str, Any]
NOW = 1_800_000_000.0


def node(*conditions: tuple[str, str], taints: list[Obj] | None = None, **spec: Any) -> Obj:
    return {
        "metadata": {"name": "n1", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"taints": taints or [], **spec},
        "status": {
            "conditions": [
                {"type": t, "status": s, "reason": "KubeletReady", "lastHeartbeatTime": "HB"}
                for t, s in conditions
            ]
        },
    }


def test_a_silent_node_has_its_conditions_set_to_unknown() -> None:
    silent = node(("Ready", "True"), ("MemoryPressure", "False"), ("NetworkUnavailable", "False"))
    assert mark_unknown(silent, NOW)
    by_type = {c["type"]: c for c in silent["status"]["conditions"]}
    assert by_type["Ready"] == {
        "type": "Ready",
        "status": "Unknown",
        "reason": "NodeStatusUnknown",
        "message": "Kubelet stopped posting node status.",
        "lastHeartbeatTime": "HB",
        "lastTransitionTime": rfc3339(NOW),
    }
    assert by_type["MemoryPressure"]["status"] == "Unknown"
    assert by_type["DiskPressure"]["reason"] == "NodeStatusNeverUpdated"
    assert by_type["DiskPressure"]["message"] == "Kubelet never posted node status."
    assert by_type["DiskPressure"]["lastHeartbeatTime"] == "2026-01-01T00:00:00Z"
    assert by_type["NetworkUnavailable"]["status"] == "False"
    assert not mark_unknown(silent, NOW + 10)
    assert by_type["Ready"]["lastTransitionTime"] == rfc3339(NOW)


@pytest.mark.parametrize(
    ("ready", "expected"),
    [
        ("True", set()),
        (
            "False",
            {("node.kubernetes.io/not-ready", "NoSchedule"), ("node.kubernetes.io/not-ready", "NoExecute")},
        ),
        (
            "Unknown",
            {
                ("node.kubernetes.io/unreachable", "NoSchedule"),
                ("node.kubernetes.io/unreachable", "NoExecute"),
            },
        ),
    ],
)
def test_ready_condition_taints(ready: str, expected: set[tuple[str, str]]) -> None:
    user = {"key": "dedicated", "value": "gpu", "effect": "NoExecute"}
    taints = reconcile_taints(node(("Ready", ready), taints=[user]), NOW)
    if not expected:
        assert taints is None
        return
    assert taints is not None
    assert taints[0] == user
    assert {(t["key"], t["effect"]) for t in taints[1:]} == expected
    for taint in taints[1:]:
        assert ("timeAdded" in taint) == (taint["effect"] == "NoExecute")


def test_taints_are_swapped_and_removed_as_the_node_changes() -> None:
    unreachable = [
        {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute", "timeAdded": "T"},
    ]
    assert reconcile_taints(node(("Ready", "Unknown"), taints=unreachable), NOW) is None
    assert reconcile_taints(node(("Ready", "True"), taints=unreachable), NOW) == []
    swapped = reconcile_taints(node(("Ready", "False"), taints=unreachable), NOW)
    assert swapped is not None
    assert {t["key"] for t in swapped} == {"node.kubernetes.io/not-ready"}


def test_pressure_and_unschedulable_taints() -> None:
    taints = reconcile_taints(node(("Ready", "True"), ("DiskPressure", "True"), unschedulable=True), NOW)
    assert taints == [
        {"key": "node.kubernetes.io/disk-pressure", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
    ]


def test_tolerates() -> None:
    taint = {"key": "k", "value": "v", "effect": "NoExecute"}
    assert tolerates({"key": "k", "value": "v"}, taint)
    assert tolerates({"key": "k", "operator": "Exists", "effect": "NoExecute"}, taint)
    assert tolerates({"operator": "Exists"}, taint)
    assert not tolerates({"key": "k", "value": "w"}, taint)
    assert not tolerates({"key": "k", "operator": "Exists", "effect": "NoSchedule"}, taint)
    assert not tolerates({"key": "other", "operator": "Exists"}, taint)


def pod_tolerating(*tolerations: Obj) -> Obj:
    return {"spec": {"tolerations": list(tolerations)}}


UNREACHABLE = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}
NOT_READY = {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}


def test_eviction_delay() -> None:
    assert eviction_delay(pod_tolerating(), [UNREACHABLE]) == 0.0
    forever = {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}
    assert eviction_delay(pod_tolerating(forever), [UNREACHABLE]) is None
    limited = dict(forever, tolerationSeconds=30)
    assert eviction_delay(pod_tolerating(limited), [UNREACHABLE]) == 30.0
    assert eviction_delay(pod_tolerating(limited), [UNREACHABLE, NOT_READY]) == 0.0
    everything = {"operator": "Exists", "tolerationSeconds": 300}
    assert eviction_delay(pod_tolerating(limited, everything), [UNREACHABLE, NOT_READY]) == 30.0
    assert eviction_delay(pod_tolerating(dict(forever, tolerationSeconds=-5)), [UNREACHABLE]) == 0.0
