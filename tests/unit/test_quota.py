"""Quota evaluation (pkg/quota/v1/evaluator/core) and the admission's refusal messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest

from k3py.api import quota
from k3py.apiserver.quota import Refused, check

Obj = dict[str, Any]


def pod(*containers: Obj, phase: str = "Pending", **spec: Any) -> Obj:
    return {
        "metadata": {"name": "p"},
        "spec": {"containers": list(containers), **spec},
        "status": {"phase": phase},
    }


def container(name: str = "app", requests: Obj | None = None, limits: Obj | None = None) -> Obj:
    return {"name": name, "resources": {"requests": requests or {}, "limits": limits or {}}}


def rq(hard: Obj, used: Obj | None = None, **spec: Any) -> Obj:
    status: Obj = {"hard": hard}
    if used is not None:
        status["used"] = used
    return {"metadata": {"name": "q"}, "spec": {"hard": hard, **spec}, "status": status}


def shown(values: quota.ResourceList) -> dict[str, str]:
    return quota.format_list(values)


def test_pod_usage_counts_requests_and_limits() -> None:
    target = pod(
        container("a", {"cpu": "250m", "memory": "64Mi"}, {"cpu": "1", "memory": "128Mi"}),
        container("b", {"cpu": "250m", "example.com/gpu": "1"}),
    )
    assert shown(quota.usage("pods", "", target)) == {
        "count/pods": "1",
        "cpu": "500m",
        "limits.cpu": "1",
        "limits.memory": "128Mi",
        "memory": "64Mi",
        "pods": "1",
        "requests.cpu": "500m",
        "requests.example.com/gpu": "1",
        "requests.memory": "64Mi",
    }


def test_init_containers_count_by_their_largest() -> None:
    target = pod(container("a", {"cpu": "100m"}), initContainers=[container("i", {"cpu": "2"})])
    assert shown(quota.usage("pods", "", target))["requests.cpu"] == "2"


def test_ended_pods_only_count_as_objects() -> None:
    assert shown(quota.usage("pods", "", pod(container(), phase="Succeeded"))) == {"count/pods": "1"}
    gone = pod(container())
    past = datetime.now(UTC) - timedelta(minutes=5)
    gone["metadata"].update(
        deletionTimestamp=past.strftime("%Y-%m-%dT%H:%M:%SZ"), deletionGracePeriodSeconds=30
    )
    assert not quota.counted(gone)
    gone["metadata"]["deletionTimestamp"] = (datetime.now(UTC) + timedelta(minutes=5)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    assert quota.counted(gone)


def test_service_and_claim_usage() -> None:
    lb = {"spec": {"type": "LoadBalancer", "ports": [{"port": 80}, {"port": 443}]}}
    assert shown(quota.usage("services", "", lb)) == {
        "count/services": "1",
        "services": "1",
        "services.loadbalancers": "1",
        "services.nodeports": "2",
    }
    claim = {"spec": {"storageClassName": "fast", "resources": {"requests": {"storage": "5Gi"}}}}
    assert shown(quota.usage("persistentvolumeclaims", "", claim)) == {
        "count/persistentvolumeclaims": "1",
        "fast.storageclass.storage.k8s.io/persistentvolumeclaims": "1",
        "fast.storageclass.storage.k8s.io/requests.storage": "5Gi",
        "persistentvolumeclaims": "1",
        "requests.storage": "5Gi",
    }
    assert quota.usage("deployments", "apps", {}) == {"count/deployments.apps": Fraction(1)}
    assert quota.usage("configmaps", "", {}) == {"count/configmaps": Fraction(1), "configmaps": Fraction(1)}


@pytest.mark.parametrize(
    ("value", "text"),
    [(Fraction(3, 2), "1500m"), (Fraction(2), "2"), (Fraction(2 * 2**30), "2Gi"), (Fraction(10**9), "1G")],
)
def test_sums_are_shown_canonically(value: Fraction, text: str) -> None:
    assert quota.format_quantity(value) == text


def test_scopes_select_pods() -> None:
    best_effort = pod(container())
    burstable = pod(container(requests={"cpu": "1"}), activeDeadlineSeconds=30, priorityClassName="high")
    scoped = rq({"pods": "1"}, scopes=["BestEffort"])
    assert quota.matches(scoped, "pods", "", best_effort)
    assert not quota.matches(scoped, "pods", "", burstable)
    terminating = rq({"pods": "1"}, scopes=["Terminating", "NotBestEffort"])
    assert quota.matches(terminating, "pods", "", burstable)
    assert not quota.matches(terminating, "pods", "", best_effort)
    high = rq(
        {"pods": "1"},
        scopeSelector={
            "matchExpressions": [{"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}]
        },
    )
    assert quota.matches(high, "pods", "", burstable)
    assert not quota.matches(high, "pods", "", best_effort)
    # a scoped quota never matches other resources; an unscoped one only what it limits
    assert not quota.matches(rq({"services": "1"}, scopes=["BestEffort"]), "services", "", {})
    assert quota.matches(rq({"services": "1"}), "services", "", {})
    assert not quota.matches(rq({"services": "1"}), "secrets", "", {})


def test_pods_must_state_what_a_quota_limits() -> None:
    target = pod(container("a", {"cpu": "1"}), container("b"), initContainers=[container("i", {"cpu": "1"})])
    assert quota.pod_constraints({"requests.cpu": Fraction(1)}, target) == "must specify requests.cpu for: b"
    assert quota.pod_constraints({"limits.memory": Fraction(1), "cpu": Fraction(1)}, target) == (
        "must specify cpu for: b; limits.memory for: a,b,i"
    )
    assert quota.pod_constraints({"pods": Fraction(1)}, target) == ""


def test_exceeding_a_quota_is_refused_with_upstreams_words() -> None:
    full = rq({"pods": "2", "requests.cpu": "1"}, {"pods": "2", "requests.cpu": "500m"})
    with pytest.raises(Refused) as refused:
        check(full, {"pods": Fraction(1), "requests.cpu": Fraction(1, 4)})
    assert str(refused.value) == "exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2"
    with pytest.raises(Refused) as refused:
        check(full, {"requests.cpu": Fraction(1)})
    assert str(refused.value) == (
        "exceeded quota: q, requested: requests.cpu=1, used: requests.cpu=500m, limited: requests.cpu=1"
    )
    check(full, {"requests.cpu": Fraction(1, 2)})
    with pytest.raises(Refused) as refused:
        check(rq({"pods": "2"}), {"pods": Fraction(1)})
    assert str(refused.value) == "status unknown for quota: q, resources: pods"


def test_namespace_usage_counts_matching_objects_for_every_hard_name() -> None:
    limits = rq({"pods": "10", "requests.memory": "1Gi", "count/deployments.apps": "3", "services": "5"})
    assert quota.resources_counted(limits["spec"]["hard"]) == {
        ("pods", ""),
        ("deployments", "apps"),
        ("services", ""),
    }
    listed: dict[quota.ResourceKey, list[Obj]] = {
        ("pods", ""): [pod(container(requests={"memory": "256Mi"})), pod(container(), phase="Failed")],
        ("deployments", "apps"): [{}, {}],
        ("services", ""): [],
    }
    assert shown(quota.namespace_usage(limits, listed)) == {
        "count/deployments.apps": "2",
        "pods": "1",
        "requests.memory": "256Mi",
        "services": "0",
    }
