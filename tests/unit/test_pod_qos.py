"""The QoS class of a pod, as upstream's ``ComputePodQOS`` and ``GetPodQOS`` tell it."""

from __future__ import annotations

from typing import Any

import pytest

from k3py.api.qos import compute_qos, pod_qos

Obj = dict[str, Any]
CPU_MEM = {"cpu": "100m", "memory": "100Mi"}


def pod(*containers: Obj, init: tuple[Obj, ...] = (), **spec: Any) -> Obj:
    return {"spec": {"containers": list(containers), "initContainers": list(init), **spec}}


def c(**resources: Obj) -> Obj:
    return {"name": "c", "resources": resources}


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        (pod(c()), "BestEffort"),
        (pod(c(requests={"ephemeral-storage": "1Gi"})), "BestEffort"),  # only cpu and memory count
        (pod(c(requests=CPU_MEM, limits=CPU_MEM)), "Guaranteed"),
        (pod(c(requests={"cpu": "0.1", "memory": "100Mi"}, limits=CPU_MEM)), "Guaranteed"),  # 0.1 is 100m
        (pod(c(requests={"cpu": "100m"}, limits={"cpu": "100m"})), "Burstable"),  # memory left out
        (pod(c(requests=CPU_MEM, limits={"cpu": "200m", "memory": "100Mi"})), "Burstable"),
        (pod(c(requests=CPU_MEM, limits=CPU_MEM), c()), "Burstable"),  # Guaranteed + BestEffort
        (pod(c(requests=CPU_MEM, limits=CPU_MEM), init=(c(),)), "Burstable"),
        (pod(c(requests={"cpu": "0"}, limits={"cpu": "0"})), "BestEffort"),
    ],
)
def test_containers_decide_the_class(shape: Obj, expected: str) -> None:
    assert compute_qos(shape) == expected


def test_pod_level_resources_decide_alone_when_they_name_cpu_or_memory() -> None:
    guaranteed = {"requests": CPU_MEM, "limits": CPU_MEM}
    assert compute_qos(pod(c(), resources=guaranteed)) == "Guaranteed"
    assert compute_qos(pod(c(), resources={"requests": {"cpu": "1"}})) == "Burstable"
    # Resources pods cannot set at their level leave the decision to the containers.
    other = {"requests": {"ephemeral-storage": "1Gi"}}
    assert compute_qos(pod(c(requests=CPU_MEM, limits=CPU_MEM), resources=other)) == "Guaranteed"


def test_the_recorded_class_wins() -> None:
    recorded = {**pod(c()), "status": {"qosClass": "Burstable"}}
    assert pod_qos(recorded) == "Burstable"
    assert compute_qos(recorded) == "BestEffort"
