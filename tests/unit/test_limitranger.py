"""LimitRanger's defaults and bounds, with upstream's messages (plugin/pkg/admission/limitranger)."""

from __future__ import annotations

from typing import Any

import pytest

from k3py.apiserver.limitranger import (
    ANNOTATION,
    admit_pod,
    aggregate,
    limits_of,
    validate_claim,
)

Obj = dict[str, Any]


def limit_range(*items: Obj) -> Obj:
    return {"metadata": {"name": "limits", "namespace": "ns"}, "spec": {"limits": list(items)}}


def pod(*containers: Obj, init: tuple[Obj, ...] = ()) -> Obj:
    spec: Obj = {"containers": list(containers)}
    if init:
        spec["initContainers"] = list(init)
    return {"metadata": {"name": "p", "namespace": "ns"}, "spec": spec}


def container(name: str = "app", requests: Obj | None = None, limits: Obj | None = None) -> Obj:
    resources: Obj = {}
    if requests is not None:
        resources["requests"] = requests
    if limits is not None:
        resources["limits"] = limits
    return {"name": name, "image": "busybox", "resources": resources}


def test_defaults_fill_what_containers_leave_out_and_are_recorded() -> None:
    ranges = limit_range(
        {
            "type": "Container",
            "default": {"cpu": "500m", "memory": "128Mi"},
            "defaultRequest": {"cpu": "100m"},
        }
    )
    target = pod(
        container("app", limits={"memory": "64Mi"}, requests={"memory": "64Mi"}), init=(container("init"),)
    )
    assert admit_pod(ranges, target) == []
    app, init = target["spec"]["containers"][0], target["spec"]["initContainers"][0]
    assert app["resources"] == {
        "requests": {"memory": "64Mi", "cpu": "100m"},
        "limits": {"memory": "64Mi", "cpu": "500m"},
    }
    # the LimitRange's own defaulting: defaultRequest memory from default
    assert init["resources"] == {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"cpu": "500m", "memory": "128Mi"},
    }
    assert target["metadata"]["annotations"][ANNOTATION] == (
        "LimitRanger plugin set: cpu request for container app; cpu limit for container app; "
        "cpu, memory request for init container init; cpu, memory limit for init container init"
    )


def test_limit_range_defaulting_takes_default_from_max_and_request_from_min() -> None:
    [item] = limits_of(limit_range({"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "1Mi"}}))
    assert item["default"] == {"cpu": "2"}
    assert item["defaultRequest"] == {"cpu": "2", "memory": "1Mi"}
    [pod_item] = limits_of(limit_range({"type": "Pod", "max": {"cpu": "2"}}))
    assert "default" not in pod_item


def test_a_pod_without_container_limits_gets_no_annotation() -> None:
    target = pod(container())
    assert admit_pod(limit_range({"type": "Pod", "max": {"cpu": "4"}}), target) == [
        "maximum cpu usage per Pod is 4.  No limit is specified"
    ]
    assert "annotations" not in target["metadata"]


@pytest.mark.parametrize(
    ("item", "requests", "limits", "message"),
    [
        (
            {"max": {"cpu": "1"}},
            {"cpu": "1"},
            {"cpu": "2"},
            "maximum cpu usage per Container is 1, but limit is 2",
        ),
        (
            {"max": {"memory": "1Gi"}},
            {"memory": "2Gi"},
            {"memory": "512Mi"},
            "maximum memory usage per Container is 1Gi, but request is 2Gi",
        ),
        (
            {"min": {"cpu": "200m"}},
            {"cpu": "100m"},
            {"cpu": "1"},
            "minimum cpu usage per Container is 200m, but request is 100m",
        ),
        (
            {"min": {"cpu": "200m"}},
            {"cpu": "300m"},
            {"cpu": "150m"},
            "minimum cpu usage per Container is 200m, but limit is 150m",
        ),
        (
            {"maxLimitRequestRatio": {"cpu": "2"}},
            {"cpu": "100m"},
            {"cpu": "1"},
            "cpu max limit to request ratio per Container is 2, but provided ratio is 10.000000",
        ),
        ({"maxLimitRequestRatio": {"cpu": "4"}}, {"cpu": "250m"}, {"cpu": "1"}, ""),
    ],
)
def test_container_bounds(item: Obj, requests: Obj, limits: Obj, message: str) -> None:
    ranges = limit_range({"type": "Container", "default": {}, "defaultRequest": {}, **item})
    # with default and defaultRequest given (empty), min and max fill nothing in
    ranges["spec"]["limits"][0]["default"] = dict(limits)
    ranges["spec"]["limits"][0]["defaultRequest"] = dict(requests)
    problems = admit_pod(ranges, pod(container(requests=requests, limits=limits)))
    assert problems == ([message] if message else [])


def test_missing_request_or_limit_is_reported() -> None:
    # a Pod-type bound is not defaulted into the containers
    target = pod(container("a", requests={"cpu": "100m"}), container("b"))
    problems = admit_pod(limit_range({"type": "Pod", "min": {"memory": "1Mi"}, "max": {"cpu": "1"}}), target)
    assert problems == [
        "minimum memory usage per Pod is 1Mi.  No request is specified",
        "maximum cpu usage per Pod is 1.  No limit is specified",
    ]
    assert aggregate(problems) == f"[{problems[0]}, {problems[1]}]"
    assert aggregate(problems[:1]) == problems[0]


def test_pod_bounds_apply_to_the_sum_of_containers() -> None:
    ranges = limit_range({"type": "Pod", "max": {"cpu": "1"}})
    fits = pod(
        container("a", {"cpu": "400m"}, {"cpu": "500m"}), container("b", {"cpu": "500m"}, {"cpu": "500m"})
    )
    assert admit_pod(ranges, fits) == []
    over = pod(
        container("a", {"cpu": "400m"}, {"cpu": "600m"}), container("b", {"cpu": "500m"}, {"cpu": "500m"})
    )
    assert admit_pod(ranges, over) == ["maximum cpu usage per Pod is 1, but limit is 1100m"]


def test_claim_bounds() -> None:
    ranges = limit_range(
        {"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"}, "max": {"storage": "10Gi"}}
    )

    def claim(size: str) -> Obj:
        return {"metadata": {"name": "c"}, "spec": {"resources": {"requests": {"storage": size}}}}

    assert validate_claim(ranges, claim("5Gi")) == []
    assert validate_claim(ranges, claim("20Gi")) == [
        "maximum storage usage per PersistentVolumeClaim is 10Gi, but request is 20Gi"
    ]
    assert validate_claim(ranges, claim("500Mi")) == [
        "minimum storage usage per PersistentVolumeClaim is 1Gi, but request is 500Mi"
    ]
    assert validate_claim(ranges, {"metadata": {"name": "c"}, "spec": {}}) == [
        "minimum storage usage per PersistentVolumeClaim is 1Gi.  No request is specified",
        "maximum storage usage per PersistentVolumeClaim is 10Gi.  No request is specified",
    ]
