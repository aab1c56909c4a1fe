"""Pod admission on the node (``k3py.agent.admission``) and the kubelet's use of it.

The checks are pure functions (a pod, the Node, the admitted pods → the failures), tested with
upstream's reasons and messages. Then the kubelet itself: new pods go through admission, a
rejected one gets its Failed status and Warning event and never reaches the runtime. Below the
kubelet: an in-memory API client, and a runtime that records every call and never answers.
"""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any, cast

import pytest

from k3py.agent import admission
from k3py.agent.admission import Failure
from k3py.agent.cri import Runtime
from k3py.agent.cri_config import NodeSettings
from k3py.agent.kubelet import Kubelet
from k3py.agent.worker import PodWorker
from k3py.client.rest import ApiStatusError, RestClient

Obj = dict[str, Any]

PORTS_MESSAGE = "Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports"
AFFINITY_MESSAGE = "Predicate NodeAffinity failed: node(s) didn't match Pod's node affinity/selector"


def node(
    name: str = "n1",
    *,
    cpu: str = "2",
    memory: str = "4Gi",
    pods: str = "110",
    labels: dict[str, str] | None = None,
    taints: list[Obj] | None = None,
    extra: dict[str, str] | None = None,
) -> Obj:
    allocatable = {"cpu": cpu, "memory": memory, "pods": pods, "ephemeral-storage": "10Gi", **(extra or {})}
    return {
        "metadata": {"name": name, "labels": labels or {"kubernetes.io/hostname": name}},
        "spec": {"taints": taints or []},
        "status": {"capacity": allocatable, "allocatable": allocatable},
    }


def pod(
    name: str,
    *,
    cpu: str | None = None,
    memory: str | None = None,
    host_port: int | None = None,
    node_name: str = "n1",
    created: str = "2026-01-01T00:00:00Z",
    **spec: Any,
) -> Obj:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    container: Obj = {
        "name": "c",
        "image": "busybox",
        "resources": {"requests": requests} if requests else {},
    }
    if host_port is not None:
        container["ports"] = [{"containerPort": 80, "hostPort": host_port, "protocol": "TCP"}]
    return {
        "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}", "creationTimestamp": created},
        "spec": {"nodeName": node_name, "containers": [container], **spec},
        "status": {"phase": "Pending"},
    }


def reasons(found: list[Failure]) -> list[str]:
    return [f.reason for f in found]


# -- the checks -----------------------------------------------------------------------------------


def test_a_pod_that_fits_is_admitted() -> None:
    running = [pod("a", cpu="500m", memory="1Gi", host_port=8080)]
    assert admission.verdict(pod("b", cpu="1", memory="1Gi", host_port=8081), node(), running) is None


def test_a_taken_host_port_is_refused_with_upstreams_words() -> None:
    running = [pod("a", host_port=21017)]
    found = admission.verdict(pod("b", host_port=21017), node(), running)
    assert found == Failure("NodePorts", PORTS_MESSAGE, "NodePorts")
    status = admission.rejected_status(pod("b", host_port=21017), found, "2026-01-02T00:00:00Z")
    assert status == {
        "phase": "Failed",
        "reason": "NodePorts",
        "message": "Pod was rejected: " + PORTS_MESSAGE,
        "qosClass": "BestEffort",
        "startTime": "2026-01-02T00:00:00Z",
    }


def test_host_ports_conflict_by_protocol_and_address() -> None:
    udp = pod("b", host_port=21017)
    udp["spec"]["containers"][0]["ports"][0]["protocol"] = "UDP"
    assert admission.verdict(udp, node(), [pod("a", host_port=21017)]) is None
    one_ip = pod("b", host_port=21017)
    one_ip["spec"]["containers"][0]["ports"][0]["hostIP"] = "127.0.0.1"
    other_ip = pod("a", host_port=21017)
    other_ip["spec"]["containers"][0]["ports"][0]["hostIP"] = "127.0.0.2"
    assert admission.verdict(one_ip, node(), [other_ip]) is None
    # A wildcard address takes the port on every address.
    assert admission.verdict(one_ip, node(), [pod("a", host_port=21017)]) is not None


def test_too_little_cpu_reports_millicores_and_the_first_shortage_only() -> None:
    running = [pod("a", cpu="1500m", memory="3Gi")]
    found = admission.failures(pod("b", cpu="600m", memory="2Gi"), node(), running)
    assert reasons(found) == ["OutOfcpu", "OutOfmemory"]
    assert (
        found[0].message
        == "Node didn't have enough resource: cpu, requested: 600, used: 1500, capacity: 2000"
    )
    assert found[1].message == (
        "Node didn't have enough resource: memory, "
        f"requested: {2 << 30}, used: {3 << 30}, capacity: {4 << 30}"
    )
    assert admission.verdict(pod("b", cpu="600m", memory="2Gi"), node(), running) == found[0]


def test_the_pod_count_is_checked_even_for_a_pod_without_requests() -> None:
    running = [pod("a"), pod("b")]
    found = admission.verdict(pod("c"), node(pods="2"), running)
    assert found == Failure(
        "OutOfpods", "Node didn't have enough resource: pods, requested: 1, used: 2, capacity: 2"
    )


def test_effective_requests_count_init_containers_sidecars_and_overhead() -> None:
    # 1 CPU app + 0.5 CPU sidecar, or a 1.8 CPU init container with the sidecar started
    # before it: 2.3 CPU, plus 100m overhead.
    big = pod("b", cpu="1", overhead={"cpu": "100m"})
    big["spec"]["initContainers"] = [
        {
            "name": "proxy",
            "image": "i",
            "restartPolicy": "Always",
            "resources": {"requests": {"cpu": "500m"}},
        },
        {"name": "setup", "image": "i", "resources": {"requests": {"cpu": "1800m"}}},
    ]
    found = admission.verdict(big, node(cpu="3"), [pod("a", cpu="700m")])
    assert found is not None
    assert (
        found.message == "Node didn't have enough resource: cpu, requested: 2400, used: 700, capacity: 3000"
    )
    # The admitted pods' effective requests count as well.
    assert admission.verdict(pod("c", cpu="400m"), node(cpu="3"), [big]) is None
    assert admission.verdict(pod("c", cpu="700m"), node(cpu="3"), [big]) is not None


def test_extended_resources_the_node_does_not_list_are_not_checked() -> None:
    wants = pod("b")
    wants["spec"]["containers"][0]["resources"] = {"requests": {"example.com/gpu": "2"}}
    assert admission.verdict(wants, node(), []) is None
    found = admission.verdict(wants, node(extra={"example.com/gpu": "1"}), [])
    assert found == Failure(
        "OutOfexample.com/gpu",
        "Node didn't have enough resource: example.com/gpu, requested: 2, used: 0, capacity: 1",
    )
    assert wants["spec"]["containers"][0]["resources"]["requests"] == {"example.com/gpu": "2"}, "not modified"


def test_node_selector_and_required_affinity() -> None:
    ssd = node(labels={"disk": "ssd"})
    assert admission.verdict(pod("b", nodeSelector={"disk": "ssd"}), ssd, []) is None
    found = admission.failures(pod("b", nodeSelector={"disk": "hdd"}), ssd, [])
    assert found == [Failure("NodeAffinity", AFFINITY_MESSAGE, "NodeAffinity")]
    assert admission.only_node_affinity(found)
    term = {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["nvme"]}]}
    affinity = {
        "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}
    }
    assert reasons(admission.failures(pod("b", affinity=affinity), ssd, [])) == ["NodeAffinity"]


def test_another_nodes_pod_is_refused() -> None:
    found = admission.failures(pod("b", node_name="n2"), node("n1"), [])
    assert found == [
        Failure(
            "NodeName", "Predicate NodeName failed: node(s) didn't match the requested node name", "NodeName"
        )
    ]
    assert not admission.only_node_affinity(found)


def test_only_untolerated_no_execute_taints_refuse() -> None:
    no_schedule = node(taints=[{"key": "dedicated", "value": "db", "effect": "NoSchedule"}])
    assert admission.verdict(pod("b"), no_schedule, []) is None, "NoSchedule is the scheduler's business"
    no_execute = node(taints=[{"key": "dedicated", "value": "db", "effect": "NoExecute"}])
    assert admission.verdict(pod("b"), no_execute, []) == Failure(
        "TaintToleration",
        "Predicate TaintToleration failed: node(s) had taints that the pod didn't tolerate",
        "TaintToleration",
    )
    tolerant = pod("b", tolerations=[{"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}])
    assert admission.verdict(tolerant, no_execute, []) is None


def test_checks_run_in_upstreams_order() -> None:
    tainted = node(cpu="1", labels={"disk": "ssd"}, taints=[{"key": "k", "effect": "NoExecute"}])
    everything = pod("b", cpu="2", host_port=21017, node_name="n2", nodeSelector={"disk": "hdd"})
    found = admission.failures(everything, tainted, [pod("a", host_port=21017)])
    assert reasons(found) == ["OutOfcpu", "NodeAffinity", "NodeName", "NodePorts", "TaintToleration"]
    assert not admission.only_node_affinity(found)


def test_the_pods_operating_system_must_be_linux() -> None:
    labelled = pod("b")
    labelled["metadata"]["labels"] = {"kubernetes.io/os": "windows"}
    assert reasons(admission.failures(labelled, node(), [])) == ["PodOSSelectorNodeLabelDoesNotMatch"]
    assert reasons(admission.failures(pod("b", os={"name": "windows"}), node(), [])) == ["PodOSNotSupported"]
    assert admission.verdict(pod("b", os={"name": "linux"}), node(), []) is None


def test_finished_and_deleted_pods_are_not_admitted_again() -> None:
    assert admission.wanted(pod("b"))
    done = pod("b")
    done["status"]["phase"] = "Succeeded"
    assert not admission.wanted(done)
    going = pod("b")
    going["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert not admission.wanted(going)


# -- the kubelet ----------------------------------------------------------------------------------


class MemoryApi:
    """Status patches answered with the pod as patched; events and deletions recorded; the
    Node read from ``nodes``."""

    def __init__(self) -> None:
        self.statuses: dict[str, list[Obj]] = {}
        self.events: list[Obj] = []
        self.deleted: list[str] = []
        self.node: Obj | None = None
        self.node_reads = 0

    async def patch(self, path: str, body: Obj) -> Obj:
        if path.endswith("/status"):
            self.statuses.setdefault(path.split("/")[-2], []).append(copy.deepcopy(body["status"]))
        return body

    async def create(self, path: str, body: Obj) -> Obj:
        if path.endswith("/events"):
            self.events.append(body)
        return body

    async def delete(self, path: str, body: Obj | None = None) -> Obj:
        self.deleted.append(path.split("/")[-1])
        return {}

    async def get(self, path: str) -> Obj:
        self.node_reads += 1
        await asyncio.sleep(0.01)
        if path.startswith("/api/v1/nodes/") and self.node is not None:
            return self.node
        raise ApiStatusError(404, "NotFound", f"{path} not found")


class SilentRuntime:
    """Records each call and never answers (the pods here must not get that far)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        async def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            await asyncio.Event().wait()

        return call


@pytest.fixture
async def kubelet(tmp_path: Path) -> Any:
    api, runtime = MemoryApi(), SilentRuntime()
    found = Kubelet(
        api=cast(RestClient, api),
        runtime=cast(Runtime, runtime),
        node=NodeSettings(node_name="n1", cluster_dns="10.43.0.10"),
        node_ip="10.0.0.1",
        agent_dir=tmp_path,
        allocatable={"cpu": "2", "memory": "4Gi", "pods": "110"},
    )
    found._adopted = True
    yield found
    tasks = [w.task for w in found.workers.values() if w.task is not None] + list(found._tasks)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await found.events.close()


def running(kubelet: Kubelet, obj: Obj) -> PodWorker:
    """A pod admitted earlier whose worker is busy elsewhere (no task: it does not run here)."""
    obj["status"]["phase"] = "Running"
    worker = PodWorker(kubelet, obj["metadata"]["uid"], obj)
    kubelet.workers[worker.uid] = worker
    return worker


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0.01)


async def test_a_pod_with_a_taken_host_port_is_rejected_and_never_run(kubelet: Kubelet) -> None:
    api, runtime = cast(MemoryApi, kubelet.api), cast(SilentRuntime, kubelet.runtime)
    running(kubelet, pod("first", host_port=21017))
    second = pod("second", host_port=21017, cpu="100m", memory="64Mi")
    kubelet._pod_changed(None, second)
    assert "uid-second" not in kubelet.workers, "admitted in the next turn of the loop, with its batch"
    await settle()
    worker = kubelet.workers["uid-second"]
    assert worker.rejected == Failure("NodePorts", PORTS_MESSAGE, "NodePorts")
    assert not worker.holds_resources
    [status] = api.statuses["second"]
    assert status["phase"] == "Failed" and status["reason"] == "NodePorts"
    assert status["message"] == "Pod was rejected: " + PORTS_MESSAGE
    assert status["qosClass"] == "Burstable"
    assert "containerStatuses" not in status and "conditions" not in status
    [event] = api.events
    assert (event["type"], event["reason"], event["message"]) == ("Warning", "NodePorts", PORTS_MESSAGE)
    assert event["involvedObject"]["name"] == "second"
    assert runtime.calls == [], "a rejected pod gets no sandbox and no containers"

    # Later passes do not write it again; its deletion is cleaned up as any pod's.
    kubelet._pod_changed(second, dict(second, status=status))
    await settle()
    assert len(api.statuses["second"]) == 1
    deleting = dict(
        second, status=status, metadata=dict(second["metadata"], deletionTimestamp="2026-01-01T00:01:00Z")
    )
    kubelet._pod_changed(second, deleting)
    await settle()
    assert api.deleted == ["second"]
    assert worker.terminated
    assert len(api.statuses["second"]) == 1
    assert runtime.calls == []


async def test_only_pods_that_hold_resources_count(kubelet: Kubelet) -> None:
    done = running(kubelet, pod("done", host_port=21017))
    done.pod["status"]["phase"] = "Succeeded"
    rejected = running(kubelet, pod("rejected", host_port=21018))
    rejected.rejected = Failure("NodePorts", PORTS_MESSAGE, "NodePorts")
    stopping = running(kubelet, pod("stopping", host_port=21019))
    stopping.pod["status"]["phase"] = "Failed"
    stopping.pod["metadata"]["deletionTimestamp"] = "2026-01-01T00:01:00Z"
    assert [p["metadata"]["name"] for p in kubelet.admitted_pods()] == ["stopping"]
    for port in (21017, 21018, 21019):
        kubelet._pod_changed(None, pod(f"new-{port}", host_port=port))
    await settle()
    assert kubelet.workers["uid-new-21017"].rejected is None
    assert kubelet.workers["uid-new-21018"].rejected is None
    assert kubelet.workers["uid-new-21019"].rejected is not None, "a pod being deleted still holds its port"


async def test_pods_arriving_together_are_admitted_oldest_first(kubelet: Kubelet) -> None:
    younger = pod("younger", host_port=21017, created="2026-01-01T00:00:05Z")
    older = pod("older", host_port=21017, created="2026-01-01T00:00:01Z")
    kubelet._pod_changed(None, younger)
    kubelet._pod_changed(None, older)
    await asyncio.sleep(0)
    assert kubelet.workers["uid-older"].rejected is None
    assert kubelet.workers["uid-younger"].rejected == Failure("NodePorts", PORTS_MESSAGE, "NodePorts")


async def test_a_pod_deleted_before_admission_is_forgotten(kubelet: Kubelet) -> None:
    gone = pod("gone")
    kubelet._pod_changed(None, gone)
    kubelet._pod_changed(gone, None)
    await settle()
    assert kubelet.workers == {}


async def test_finished_pods_get_a_worker_without_admission(kubelet: Kubelet) -> None:
    running(kubelet, pod("first", host_port=21017))
    done = pod("done", host_port=21017)
    done["status"]["phase"] = "Failed"
    kubelet._pod_changed(None, done)
    await settle()
    assert kubelet.workers["uid-done"].rejected is None
    assert cast(MemoryApi, kubelet.api).events == []


async def test_node_affinity_alone_reads_the_node_again(kubelet: Kubelet) -> None:
    api = cast(MemoryApi, kubelet.api)
    # The Node as this kubelet has seen it lacks the label; the API server's has it.
    api.node = node(labels={"kubernetes.io/hostname": "n1", "disk": "ssd"})
    kubelet._pod_changed(None, pod("fits", nodeSelector={"disk": "ssd"}))
    await settle()
    assert api.node_reads == 1
    assert kubelet.workers["uid-fits"].rejected is None

    kubelet._pod_changed(None, pod("misfit", nodeSelector={"disk": "hdd"}))
    await settle()
    assert api.node_reads == 2
    assert kubelet.workers["uid-misfit"].rejected == Failure("NodeAffinity", AFFINITY_MESSAGE, "NodeAffinity")

    # Other failures do not wait for the Node.
    kubelet._pod_changed(None, pod("both", cpu="3", nodeSelector={"disk": "hdd"}))
    await settle()
    assert api.node_reads == 2
    failure = kubelet.workers["uid-both"].rejected
    assert failure is not None and failure.reason == "OutOfcpu"


async def test_a_pod_deleted_while_the_node_is_read_is_forgotten(kubelet: Kubelet) -> None:
    api = cast(MemoryApi, kubelet.api)
    api.node = node()
    waiting = pod("waiting", nodeSelector={"disk": "ssd"})
    kubelet._pod_changed(None, waiting)
    for _ in range(3):
        await asyncio.sleep(0)  # admission, then the task that reads the Node starts
    assert api.node_reads == 1
    kubelet._pod_changed(waiting, None)
    await settle()
    assert "uid-waiting" not in kubelet.workers


async def test_a_node_that_cannot_be_read_again_leaves_the_first_answer(kubelet: Kubelet) -> None:
    api = cast(MemoryApi, kubelet.api)  # no Node to read: 404
    kubelet._pod_changed(None, pod("misfit", nodeSelector={"disk": "ssd"}))
    await settle()
    assert api.node_reads == 1
    assert kubelet.workers["uid-misfit"].rejected == Failure("NodeAffinity", AFFINITY_MESSAGE, "NodeAffinity")


async def test_a_failing_check_lets_the_pod_run_and_the_batch_go_on(
    kubelet: Kubelet, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(pod: Obj, node: Obj, admitted: Any) -> list[Failure]:
        if pod["metadata"]["name"] == "odd":
            raise KeyError("resources")
        return [Failure("NodePorts", PORTS_MESSAGE, "NodePorts")]

    monkeypatch.setattr(admission, "failures", broken)
    kubelet._pod_changed(None, pod("odd", created="2026-01-01T00:00:01Z"))
    kubelet._pod_changed(None, pod("next", created="2026-01-01T00:00:02Z"))
    await asyncio.sleep(0)
    assert kubelet.workers["uid-odd"].rejected is None
    assert kubelet.workers["uid-next"].rejected is not None
    assert "pod ns/odd: admission failed" in caplog.text
