"""The Deployment controller's pure decisions: hashes, surge arithmetic, annotations, conditions."""

from __future__ import annotations

from typing import Any

import pytest

from k3py.controllers.deployment import (
    HASH_LABEL,
    REVISION,
    REVISION_HISTORY,
    by_size,
    compute_hash,
    deployment_complete,
    equal_ignore_hash,
    fnv32a,
    max_surge,
    max_unavailable,
    new_rs_new_replicas,
    proportion,
    safe_encode,
    scaled_value,
    set_condition,
    set_new_rs_annotations,
)

Obj = dict[str, Any]


def deployment(replicas: int, surge: int | str = "25%", unavailable: int | str = "25%", **meta: Any) -> Obj:
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}
    return {
        "metadata": {"name": "d", **meta},
        "spec": {"replicas": replicas, "strategy": strategy},
        "status": {},
    }


def rs(name: str, replicas: int, created: str = "2026-01-01T00:00:00Z", **annotations: str) -> Obj:
    meta = {"name": name, "creationTimestamp": created, "annotations": dict(annotations)}
    return {"metadata": meta, "spec": {"replicas": replicas}}


def test_hash_is_fnv32a_safe_encoded() -> None:
    assert fnv32a(b"") == 0x811C9DC5
    assert fnv32a(b"a") == 0xE40C292C
    assert safe_encode("0123456789") == "456789bcdf"
    template = {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    first = compute_hash(template, None)
    assert set(first) <= set("bcdfghjklmnpqrstvwxz2456789") and first == compute_hash(template, None)
    assert compute_hash(template, 1) != first
    changed = {**template, "spec": {"containers": [{"name": "c", "image": "j"}]}}
    assert compute_hash(changed, None) != first


def test_templates_compare_without_the_hash_label() -> None:
    template = {"metadata": {"labels": {"app": "a"}}, "spec": {"x": 1}}
    hashed = {"metadata": {"labels": {"app": "a", HASH_LABEL: "abc"}}, "spec": {"x": 1}}
    assert equal_ignore_hash(template, hashed)
    assert not equal_ignore_hash(template, {**hashed, "spec": {"x": 2}})
    assert equal_ignore_hash({"spec": {}}, {"metadata": {"labels": {HASH_LABEL: "x"}}, "spec": {}})


def test_percentages_round_as_upstream() -> None:
    assert scaled_value("25%", 10, True) == 3 and scaled_value("25%", 10, False) == 2
    assert scaled_value(2, 10, False) == 2
    with pytest.raises(ValueError):
        scaled_value("25", 10, True)
    assert (max_surge(deployment(10)), max_unavailable(deployment(10))) == (3, 2)
    assert max_unavailable(deployment(3, surge=0, unavailable=0)) == 1
    assert max_unavailable(deployment(2, unavailable=5)) == 2
    recreate = {"spec": {"replicas": 3, "strategy": {"type": "Recreate"}}}
    assert (max_surge(recreate), max_unavailable(recreate)) == (0, 0)


def test_new_replica_set_grows_within_the_surge() -> None:
    d = deployment(10)
    old, new = rs("old", 10), rs("new", 0)
    assert new_rs_new_replicas(d, [old, new], new) == 3
    old["spec"]["replicas"] = 8
    new["spec"]["replicas"] = 3
    assert new_rs_new_replicas(d, [old, new], new) == 5
    assert new_rs_new_replicas(d, [rs("new", 9)], rs("new", 9)) == 10


def test_proportional_shares_follow_max_replicas() -> None:
    d = deployment(20, surge=3)  # scaled from 10 (max-replicas 13) to 20: 23 allowed, 13 to add
    big = rs("big", 8, **{"deployment.kubernetes.io/max-replicas": "13"})
    small = rs("small", 5, **{"deployment.kubernetes.io/max-replicas": "13"})
    first = proportion(big, d, 13, 0)
    assert first == 6
    assert proportion(small, d, 13, first) == 4
    assert proportion(small, d, 13, 13) == 0
    newer = rs("newer", 5, created="2026-02-01T00:00:00Z")
    assert [r["metadata"]["name"] for r in by_size([small, newer, big], newer_first=True)] == [
        "big",
        "newer",
        "small",
    ]


def test_revision_annotations_and_rollback_history() -> None:
    d = deployment(4, annotations={"team": "x", "kubectl.kubernetes.io/last-applied-configuration": "{}"})
    fresh = rs("new", 0)
    assert set_new_rs_annotations(d, fresh, 3, exists=False)
    annotations = fresh["metadata"]["annotations"]
    assert annotations == {
        "team": "x",
        REVISION: "3",
        "deployment.kubernetes.io/desired-replicas": "4",
        "deployment.kubernetes.io/max-replicas": "5",
    }
    rolled_back = rs("old", 0, **{REVISION: "1"})
    assert set_new_rs_annotations(d, rolled_back, 3, exists=True)
    assert rolled_back["metadata"]["annotations"][REVISION] == "3"
    assert rolled_back["metadata"]["annotations"][REVISION_HISTORY] == "1"
    rolled_back["metadata"]["annotations"][REVISION] = "5"
    set_new_rs_annotations(d, rolled_back, 7, exists=True)
    assert rolled_back["metadata"]["annotations"][REVISION_HISTORY] == "1,5"
    assert not set_new_rs_annotations(d, rolled_back, 7, exists=True)


def test_conditions_keep_transition_times_and_completion() -> None:
    status: Obj = {}
    first = {"type": "Progressing", "status": "True", "reason": "A", "lastTransitionTime": "t1"}
    set_condition(status, first)
    set_condition(status, {**first, "reason": "B", "lastTransitionTime": "t2"})
    assert status["conditions"] == [{**first, "reason": "B"}]
    set_condition(status, {**first, "status": "False", "reason": "C", "lastTransitionTime": "t3"})
    assert status["conditions"][0]["lastTransitionTime"] == "t3"
    d = deployment(2, generation=3)
    done = {"updatedReplicas": 2, "replicas": 2, "availableReplicas": 2, "observedGeneration": 3}
    assert deployment_complete(d, done)
    assert not deployment_complete(d, {**done, "observedGeneration": 2})
    assert not deployment_complete(d, {**done, "replicas": 3})
