"""PodDisruptionBudget arithmetic: the disruption controller's status and the eviction's rules."""

from __future__ import annotations

from typing import Any

import pytest

from k3py.apiserver import errors
from k3py.apiserver.eviction import (
    Options,
    _options,
    can_ignore_pdb,
    check_and_decrement,
    should_enforce_resource_version,
    too_many_requests,
    unhealthy_may_go,
)
from k3py.controllers.disruption import (
    DELETION_TIMEOUT,
    STALE_POD_DISRUPTION_TIMEOUT,
    Counts,
    DisruptionError,
    build_disrupted_pods,
    conditions_up_to_date,
    count_healthy,
    desired_healthy,
    failed_status,
    new_status,
    pod_selected,
    scaled_value,
    stale_disruption_wait,
    uses_controller_scale,
)

Obj = dict[str, Any]
NOW = 1_800_000_000.0
T0 = "2027-01-15T08:00:00Z"  # NOW as RFC 3339
T_RECENT = "2027-01-15T07:59:00Z"  # a minute before NOW
T_OLD = "2027-01-15T07:57:00Z"  # three minutes before NOW


def pod(name: str, *, ready: bool = True, deleting: bool = False, phase: str = "Running", **meta: Any) -> Obj:
    metadata: Obj = {"name": name, "namespace": "ns", **meta}
    if deleting:
        metadata["deletionTimestamp"] = T0
    condition = {"type": "Ready", "status": "True" if ready else "False"}
    return {"metadata": metadata, "status": {"phase": phase, "conditions": [condition]}}


def budget(generation: int = 1, spec: Obj | None = None, **status: Any) -> Obj:
    return {
        "metadata": {"name": "pdb", "namespace": "ns", "generation": generation, "resourceVersion": "7"},
        "spec": {"minAvailable": 1, "selector": {}} if spec is None else spec,
        "status": status,
    }


def test_times_agree() -> None:
    from k3py.controllers.objects import parse_time

    assert parse_time(T0) == NOW
    assert DELETION_TIMEOUT == STALE_POD_DISRUPTION_TIMEOUT == 120.0


@pytest.mark.parametrize(
    ("value", "total", "up", "expected"),
    [(3, 10, True, 3), ("25%", 10, True, 3), ("25%", 10, False, 2), ("100%", 7, True, 7), ("0%", 5, True, 0)],
)
def test_scaled_value(value: Any, total: int, up: bool, expected: int) -> None:
    assert scaled_value(value, total, round_up=up) == expected


@pytest.mark.parametrize("value", ["3", "x%", None, True])
def test_scaled_value_rejects(value: Any) -> None:
    with pytest.raises(DisruptionError):
        scaled_value(value, 4, round_up=True)


def test_desired_healthy_and_where_the_count_comes_from() -> None:
    assert not uses_controller_scale({"minAvailable": 2})
    assert uses_controller_scale({"minAvailable": "50%"})
    assert uses_controller_scale({"maxUnavailable": 1})
    assert desired_healthy({"minAvailable": 2}, 5) == 2
    assert desired_healthy({"minAvailable": "50%"}, 5) == 3
    assert desired_healthy({"maxUnavailable": "25%"}, 5) == 3  # 5 - ceil(1.25)
    assert desired_healthy({"maxUnavailable": 9}, 5) == 0
    assert desired_healthy({}, 5) == 0


def test_disrupted_pods_expire_or_leave_with_their_pod() -> None:
    pods = [pod("recent"), pod("old"), pod("deleting", deleting=True), pod("unrecorded")]
    recorded = {"recent": T_RECENT, "old": T_OLD, "deleting": T_RECENT, "gone": T_RECENT}

    kept, recheck = build_disrupted_pods(pods, recorded, NOW)

    assert kept == {"recent": T_RECENT}
    assert recheck == NOW - 60 + DELETION_TIMEOUT
    assert build_disrupted_pods(pods, {}, NOW) == ({}, None)


def test_count_healthy_skips_terminating_unready_and_recently_disrupted() -> None:
    pods = [pod("a"), pod("b", ready=False), pod("c", deleting=True), pod("d"), pod("e")]
    assert count_healthy(pods, {"d": T_RECENT, "e": T_OLD}, NOW) == 2  # a, e


def test_new_status_allows_what_is_above_the_desired_count() -> None:
    pdb = budget(generation=3)
    status = new_status(pdb, Counts(4, 2, 4, {"x": T0}), T0)

    assert status is not None
    assert status["observedGeneration"] == 3
    assert (status["currentHealthy"], status["desiredHealthy"], status["expectedPods"]) == (4, 2, 4)
    assert status["disruptionsAllowed"] == 2
    assert status["disruptedPods"] == {"x": T0}
    [condition] = status["conditions"]
    assert condition == {
        "type": "DisruptionAllowed",
        "status": "True",
        "observedGeneration": 3,
        "lastTransitionTime": T0,
        "reason": "SufficientPods",
        "message": "",
    }
    # Written once, the same counts need no new write.
    assert new_status({**pdb, "status": status}, Counts(4, 2, 4, {"x": T0}), "later") is None
    assert conditions_up_to_date({**pdb, "status": status})


def test_new_status_allows_nothing_without_expected_pods_or_healthy_margin() -> None:
    previous = new_status(budget(), Counts(3, 2, 3, {}), T_OLD)
    assert previous is not None
    no_pods = new_status(budget(), Counts(0, 0, 0, {}), T0)
    short = new_status(budget(**previous), Counts(1, 2, 3, {}), T0)

    assert no_pods is not None and no_pods["disruptionsAllowed"] == 0
    assert "disruptedPods" not in no_pods
    assert short is not None and short["disruptionsAllowed"] == 0
    [condition] = short["conditions"]
    assert (condition["status"], condition["reason"], condition["lastTransitionTime"]) == (
        "False",
        "InsufficientPods",
        T0,
    )


def test_failed_sync_stops_disruptions() -> None:
    status = failed_status(budget(disruptionsAllowed=3, observedGeneration=1), "found no controllers", T0)
    assert status["disruptionsAllowed"] == 0
    [condition] = status["conditions"]
    assert (condition["status"], condition["reason"], condition["message"]) == (
        "False",
        "SyncFailed",
        "found no controllers",
    )
    assert not conditions_up_to_date(budget(**status))


def test_selectors_nil_selects_nothing_and_empty_everything() -> None:
    target = pod("a", labels={"app": "x"})
    assert pod_selected(budget(spec={"selector": {}}), target)
    assert not pod_selected(budget(spec={}), target)
    assert pod_selected(budget(spec={"selector": {"matchLabels": {"app": "x"}}}), target)
    assert not pod_selected(budget(spec={"selector": {"matchLabels": {"app": "y"}}}), target)
    assert not pod_selected(
        budget(spec={"selector": {"matchExpressions": [{"key": "a", "operator": "Bad"}]}}), target
    )
    other_namespace = {**budget(spec={"selector": {}}), "metadata": {"name": "p", "namespace": "other"}}
    assert not pod_selected(other_namespace, target)


def test_stale_disruption_target() -> None:
    def with_target(reason: str = "EvictionByEvictionAPI", status: str = "True", **kw: Any) -> Obj:
        target = pod("a", **kw)
        target["status"]["conditions"].append(
            {"type": "DisruptionTarget", "status": status, "reason": reason, "lastTransitionTime": T_RECENT}
        )
        return target

    assert stale_disruption_wait(with_target(), NOW) == STALE_POD_DISRUPTION_TIMEOUT - 60
    assert stale_disruption_wait(with_target(), NOW + 600) == 0
    assert stale_disruption_wait(with_target(reason="TerminationByKubelet"), NOW) is None
    assert stale_disruption_wait(with_target(status="False"), NOW) is None
    assert stale_disruption_wait(with_target(deleting=True), NOW) is None
    assert stale_disruption_wait(with_target(phase="Failed"), NOW) is None
    assert stale_disruption_wait(pod("b"), NOW) is None


# -- the eviction's rules ---------------------------------------------------------------------------


def test_which_pods_skip_the_budget() -> None:
    assert not can_ignore_pdb(pod("a"))
    assert can_ignore_pdb(pod("a", phase="Pending"))
    assert can_ignore_pdb(pod("a", phase="Succeeded"))
    assert can_ignore_pdb(pod("a", deleting=True))
    assert should_enforce_resource_version(pod("a", phase="Pending"))
    assert not should_enforce_resource_version(pod("a", phase="Failed"))
    assert not should_enforce_resource_version(pod("a", deleting=True))


def test_unhealthy_pods() -> None:
    met = budget(currentHealthy=2, desiredHealthy=2)
    assert unhealthy_may_go(pod("a", ready=False), met)
    assert not unhealthy_may_go(pod("a"), met)
    assert not unhealthy_may_go(pod("a", ready=False), budget(currentHealthy=1, desiredHealthy=2))
    assert not unhealthy_may_go(pod("a", ready=False), budget(currentHealthy=0, desiredHealthy=0))
    always = budget(spec={"unhealthyPodEvictionPolicy": "AlwaysAllow"}, currentHealthy=0, desiredHealthy=2)
    assert unhealthy_may_go(pod("a", ready=False), always)


def test_check_and_decrement_spends_one_disruption() -> None:
    pdb = budget(observedGeneration=1, disruptionsAllowed=2, currentHealthy=3, desiredHealthy=1)
    spent = check_and_decrement(pdb, "a", T0)
    assert spent["status"]["disruptionsAllowed"] == 1
    assert spent["status"]["disruptedPods"] == {"a": T0}
    assert spent["metadata"]["resourceVersion"] == "7"  # the update is conditional on it
    assert "conditions" not in spent["status"]
    last = check_and_decrement(spent, "b", T0)
    assert last["status"]["disruptedPods"] == {"a": T0, "b": T0}
    [condition] = last["status"]["conditions"]
    assert (condition["status"], condition["reason"]) == ("False", "InsufficientPods")
    assert pdb["status"]["disruptionsAllowed"] == 2  # the budget read is left alone


@pytest.mark.parametrize(
    ("status", "code", "fragment"),
    [
        ({"observedGeneration": 0, "disruptionsAllowed": 1}, 429, "still being processed"),
        ({"observedGeneration": 1, "disruptionsAllowed": -1}, 403, "pdb disruptions allowed is negative"),
        (
            {"observedGeneration": 1, "disruptionsAllowed": 0, "desiredHealthy": 2, "currentHealthy": 2},
            429,
            "needs 2 healthy pods and has 2 currently",
        ),
        (
            {
                "observedGeneration": 1,
                "disruptionsAllowed": 5,
                "disruptedPods": {str(i): T0 for i in range(2001)},
            },
            403,
            "DisruptedPods map too big",
        ),
    ],
)
def test_check_and_decrement_refuses(status: Obj, code: int, fragment: str) -> None:
    with pytest.raises(errors.ApiError) as refused:
        check_and_decrement(budget(**status), "a", T0)
    assert refused.value.code == code
    shown = refused.value.status()
    text = shown["message"] + "".join(c["message"] for c in shown.get("details", {}).get("causes", []))
    assert fragment in text


def test_too_many_requests_shape() -> None:
    error = too_many_requests("why", 10)
    assert error.status()["details"] == {
        "causes": [{"reason": "DisruptionBudget", "message": "why"}],
        "retryAfterSeconds": 10,
    }
    assert error.headers == {"Retry-After": "10"}
    assert "retryAfterSeconds" not in too_many_requests("why", 0).status()["details"]


def test_delete_options_and_dry_run() -> None:
    assert _options(None, ["All"]) == Options(dry_run=True)
    given = _options({"gracePeriodSeconds": 5, "preconditions": {"uid": "u", "resourceVersion": "3"}}, [])
    assert given == Options(grace_period_seconds=5, uid="u", resource_version="3")
    assert given.delete_options().precondition_resource_version == "3"
    assert _options({"dryRun": ["All"]}, []).dry_run
    assert _options({"orphanDependents": True}, []).propagation_policy == "Orphan"
    with pytest.raises(errors.ApiError) as bad:
        _options({"dryRun": ["Some"]}, [])
    assert bad.value.code == 400
    with pytest.raises(errors.ApiError):
        _options({"gracePeriodSeconds": "5"}, [])
