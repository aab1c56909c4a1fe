"""The Job controller's rules: index sets, failed pods, podFailurePolicy, successPolicy, conditions."""

from __future__ import annotations

from typing import Any

from k3py.controllers.job import (
    FAILURE_COUNT_KEY,
    JobController,
    failure_count,
    failure_policy_action,
    format_indexes,
    is_failed,
    parse_indexes,
    set_condition,
    success_policy_rule,
)

Obj = dict[str, Any]


def pod(
    phase: str = "Running", *, deleting: bool = False, exits: dict[str, int] | None = None, **status: Any
) -> Obj:
    statuses = [
        {"name": name, "state": {"terminated": {"exitCode": code}}} for name, code in (exits or {}).items()
    ]
    meta: Obj = {"name": "p", "namespace": "ns"}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "status": {"phase": phase, "containerStatuses": statuses, **status}}


def job(**spec: Any) -> Obj:
    return {"metadata": {"name": "j", "namespace": "ns", "uid": "u"}, "spec": spec, "status": {}}


def test_index_sets_round_trip_in_upstream_form() -> None:
    assert format_indexes({0, 1, 2, 4, 6, 7}) == "0-2,4,6-7"
    assert format_indexes(set()) == ""
    assert parse_indexes("0-2,4,6-7", 10) == {0, 1, 2, 4, 6, 7}
    assert parse_indexes("1,8-12", 10) == {1, 8, 9}  # beyond completions is ignored
    assert parse_indexes(None, 3) == set()


def test_which_pods_count_as_failed() -> None:
    plain = job()
    assert is_failed(pod("Failed"), plain)
    assert not is_failed(pod("Running"), plain)
    # Deleted before succeeding counts as a failure, unless only Failed pods are replaced.
    assert is_failed(pod("Running", deleting=True), plain)
    assert not is_failed(pod("Succeeded", deleting=True), plain)
    assert not is_failed(pod("Running", deleting=True), job(podReplacementPolicy="Failed"))
    assert not is_failed(pod("Running", deleting=True), job(podFailurePolicy={"rules": []}))


def test_pod_failure_policy_rules_match_in_order() -> None:
    policy = {
        "rules": [
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
            {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
            {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [1, 2]}},
        ]
    }
    spec = job(podFailurePolicy=policy)
    disrupted = pod("Failed", conditions=[{"type": "DisruptionTarget", "status": "True"}])
    assert failure_policy_action(spec, disrupted) == (
        "Ignore",
        "Pod ns/p has condition DisruptionTarget matching Ignore rule at index 0",
    )
    assert failure_policy_action(spec, pod("Failed", exits={"main": 42})) == (
        "FailJob",
        "Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 1",
    )
    assert failure_policy_action(spec, pod("Failed", exits={"side": 42}))[0] == "Count"  # NotIn [1, 2]
    assert failure_policy_action(spec, pod("Failed", exits={"side": 1})) == ("Count", "")
    assert failure_policy_action(spec, pod("Failed", exits={"main": 0})) == ("Count", "")  # 0 never matches
    assert failure_policy_action(spec, pod("Running", exits={"main": 42})) == ("Count", "")
    assert failure_policy_action(job(), pod("Failed", exits={"main": 42})) == ("Count", "")


def test_success_policy_rules() -> None:
    indexes = job(completions=5, successPolicy={"rules": [{"succeededIndexes": "0,2-3"}]})
    assert success_policy_rule(indexes, {0, 2}) is None
    assert success_policy_rule(indexes, {0, 2, 3}) == 0
    counted = job(completions=5, successPolicy={"rules": [{"succeededIndexes": "0-3", "succeededCount": 2}]})
    assert success_policy_rule(counted, {4, 1}) is None
    assert success_policy_rule(counted, {1, 3}) == 0
    only_count = job(
        completions=5, successPolicy={"rules": [{"succeededIndexes": "4"}, {"succeededCount": 3}]}
    )
    assert success_policy_rule(only_count, {0, 1, 2}) == 1
    assert success_policy_rule(job(completions=5), {0, 1, 2, 3, 4}) is None


def test_completion_rules() -> None:
    complete = JobController._complete
    assert complete({"completions": 3}, 3, 0, set())
    assert not complete({"completions": 3}, 2, 1, set())
    # Without completions, one success ends the Job once no pod is still running.
    assert not complete({}, 1, 1, set())
    assert complete({}, 1, 0, set())
    assert complete({"completions": 2, "completionMode": "Indexed"}, 0, 0, {0, 1})
    assert not complete({"completions": 2, "completionMode": "Indexed"}, 5, 0, {1})


def test_conditions_keep_their_transition_time_while_unchanged() -> None:
    status: Obj = {}
    assert set_condition(status, "Suspended", "True", "JobSuspended", "Job suspended")
    first = dict(status["conditions"][0])
    assert not set_condition(status, "Suspended", "True", "JobSuspended", "Job suspended")
    assert status["conditions"] == [first]
    assert set_condition(status, "Suspended", "False", "JobResumed", "Job resumed")
    [resumed] = status["conditions"]
    assert (resumed["type"], resumed["status"], resumed["reason"]) == ("Suspended", "False", "JobResumed")
    assert set(resumed) == {"type", "status", "reason", "message", "lastProbeTime", "lastTransitionTime"}


def test_failed_indexes_decide_the_job() -> None:
    verdict = JobController._index_verdict
    spec = {"completions": 4, "backoffLimitPerIndex": 1}
    assert verdict(spec, {}, {0, 1}) is None
    assert verdict(spec, {"failedIndexes": "2"}, {0, 1}) is None  # index 3 still runs
    assert verdict(spec, {"failedIndexes": "2"}, {0, 1, 3}) == ("FailedIndexes", "Job has failed indexes")
    limited = {**spec, "maxFailedIndexes": 1}
    assert verdict(limited, {"failedIndexes": "0,2"}, set()) == (
        "MaxFailedIndexesExceeded",
        "Job has exceeded the specified maximal number of failed indexes",
    )
    status: Obj = {}
    verdict(spec, status, set())
    assert status == {"failedIndexes": ""}


def test_failure_counts_come_from_the_pod_annotation() -> None:
    assert failure_count({"metadata": {"annotations": {FAILURE_COUNT_KEY: "3"}}}) == 3
    assert failure_count({"metadata": {}}) == 0
    assert failure_count({"metadata": {"annotations": {FAILURE_COUNT_KEY: "x"}}}) == 0
