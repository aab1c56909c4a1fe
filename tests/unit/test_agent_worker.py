"""The pod worker's container kinds (sidecars, i.e. init containers with ``restartPolicy:
Always``, and ephemeral containers) and in-place resize, in what it runs and in the pod status
it writes.

The kubelet and its pod worker are real; below them, an in-memory CRI runtime (containers
whose state the test drives) and an in-memory API client that answers status patches.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path
from typing import Any, cast

from k3py.agent import podstatus, resize
from k3py.agent.cri import Runtime
from k3py.agent.cri_config import NodeSettings
from k3py.agent.kubelet import Kubelet
from k3py.agent.podstatus import ContainerView
from k3py.agent.worker import CREATED, EXITED, RUNNING, PodWorker, termination_prereqs
from k3py.client.rest import RestClient

Obj = dict[str, Any]


class MemoryRuntime:
    """Just enough of the CRI for one pod: a sandbox and containers that stay as told."""

    def __init__(self) -> None:
        self.ids = itertools.count(1)
        self.containers: dict[str, Obj] = {}
        self.calls: list[tuple[str, str]] = []
        self.exec_codes: list[int] = []

    def by_name(self, name: str) -> list[Obj]:
        return [c for c in self.containers.values() if c["name"] == name]

    async def run_pod_sandbox(self, config: Obj, runtime_handler: str = "") -> str:
        return "sandbox"

    async def pod_sandbox_status(self, sandbox_id: str) -> Obj:
        return {"state": 0, "network": {"ip": "10.42.0.9"}}

    async def pod_sandbox_info(self, sandbox_id: str) -> dict[str, str]:
        return {}

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        self.calls.append(("stop_pod_sandbox", sandbox_id))

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        self.calls.append(("remove_pod_sandbox", sandbox_id))

    async def image_status(self, image: str) -> Obj | None:
        return {"id": "sha256:1"}

    async def create_container(self, sandbox_id: str, config: Obj, sandbox_config: Obj) -> str:
        container_id = f"c{next(self.ids)}"
        name = config["metadata"]["name"]
        self.containers[container_id] = {"id": container_id, "name": name, "state": CREATED, "exit_code": 0}
        self.calls.append(("create", name))
        return container_id

    async def start_container(self, container_id: str) -> None:
        self.containers[container_id].update(state=RUNNING, started_at=time.time_ns())
        self.calls.append(("start", self.containers[container_id]["name"]))

    async def container_status(self, container_id: str) -> Obj:
        return dict(self.containers[container_id])

    async def stop_container(self, container_id: str, timeout: int) -> None:  # noqa: ASYNC109
        container = self.containers[container_id]
        self.calls.append(("stop", container["name"]))
        await asyncio.sleep(0.05)  # a process takes a moment to end
        if container["state"] == RUNNING:
            container.update(state=EXITED, exit_code=143, finished_at=time.time_ns())

    async def remove_container(self, container_id: str) -> None:
        self.containers.pop(container_id, None)

    async def update_container_resources(self, container_id: str, linux: Obj) -> None:
        self.calls.append(("update", self.containers[container_id]["name"]))
        self.containers[container_id]["linux"] = linux

    async def exec_sync(
        self,
        container_id: str,
        command: list[str],
        timeout: int,  # noqa: ASYNC109
    ) -> tuple[bytes, bytes, int]:
        self.calls.append(("exec", self.containers[container_id]["name"]))
        return b"", b"", self.exec_codes.pop(0) if self.exec_codes else 0

    def exit(self, name: str, code: int) -> None:
        for container in self.by_name(name):
            if container["state"] == RUNNING:
                container.update(state=EXITED, exit_code=code, finished_at=time.time_ns())


class MemoryApi:
    """Status patches are answered with the pod as patched; events are taken and dropped."""

    def __init__(self) -> None:
        self.statuses: list[Obj] = []

    async def patch(self, path: str, body: Obj) -> Obj:
        if path.endswith("/status"):
            self.statuses.append(body["status"])
        return body

    async def create(self, path: str, body: Obj) -> Obj:
        return body

    async def delete(self, path: str, body: Obj | None = None) -> Obj:
        return {}


def make_worker(tmp_path: Path, pod: Obj) -> tuple[PodWorker, MemoryRuntime, MemoryApi]:
    runtime, api = MemoryRuntime(), MemoryApi()
    kubelet = Kubelet(
        api=cast(RestClient, api),
        runtime=cast(Runtime, runtime),
        node=NodeSettings(node_name="n1", cluster_dns="10.43.0.10"),
        node_ip="10.0.0.1",
        agent_dir=tmp_path,
        allocatable={"cpu": "2", "memory": "1Gi"},
    )
    return PodWorker(kubelet, pod["metadata"]["uid"], pod), runtime, api


def sidecar_pod(*, policy: str = "Always", startup: bool = True, pre_stop: bool = False) -> Obj:
    sidecar: Obj = {"name": "proxy", "image": "agnhost:2.66", "restartPolicy": "Always"}
    if startup:
        sidecar["startupProbe"] = {"exec": {"command": ["true"]}, "periodSeconds": 1}
    app: Obj = {"name": "app", "image": "agnhost:2.66"}
    if pre_stop:
        app["lifecycle"] = {"preStop": {"exec": {"command": ["sh", "-c", "curl localhost:8080"]}}}
    return {
        "metadata": {"name": "p", "namespace": "ns", "uid": "uid-1"},
        "spec": {
            "restartPolicy": policy,
            "terminationGracePeriodSeconds": 5,
            "initContainers": [sidecar, {"name": "setup", "image": "busybox:1.37"}],
            "containers": [app],
        },
        "status": {},
    }


def conditions(status: Obj) -> dict[str, str]:
    return {c["type"]: c["status"] for c in status["conditions"]}


async def settle(worker: PodWorker) -> None:
    """Let the probers' first rounds run (they wake the worker when a result flips)."""
    for _ in range(20):
        await asyncio.sleep(0.01)


async def stop_probers(worker: PodWorker) -> None:
    tasks = [t for r in worker.records.values() for t in r.probers]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await worker.kubelet.events.close()


async def test_sidecar_holds_the_next_init_container_until_started(tmp_path: Path) -> None:
    worker, runtime, api = make_worker(tmp_path, sidecar_pod())
    runtime.exec_codes = [1]  # the first startup probe fails
    try:
        await worker.sync()
        assert [c for c in runtime.calls if c[0] == "start"] == [("start", "proxy")]
        await settle(worker)
        await worker.sync()
        assert not runtime.by_name("setup"), "started before the sidecar's startup probe passed"
        status = api.statuses[-1]
        assert status["phase"] == "Pending"
        assert conditions(status)["Initialized"] == "False"
        assert next(c for c in status["conditions"] if c["type"] == "Initialized")["message"] == (
            "containers with incomplete status: [proxy setup]"
        )

        await asyncio.sleep(1.1)  # the next probe succeeds
        await worker.sync()
        assert [c for c in runtime.calls if c[0] == "start"][-1] == ("start", "setup")
        assert not runtime.by_name("app")
        runtime.exit("setup", 0)
        await worker.sync()
        assert runtime.by_name("app") and runtime.by_name("app")[0]["state"] == RUNNING
        assert runtime.by_name("proxy")[0]["state"] == RUNNING, "a sidecar keeps running"
        status = api.statuses[-1]
        assert status["phase"] == "Running"
        assert conditions(status) == {
            "PodReadyToStartContainers": "True",
            "Initialized": "True",
            "ContainersReady": "True",
            "Ready": "True",
        }
        proxy = next(s for s in status["initContainerStatuses"] if s["name"] == "proxy")
        assert proxy["started"] is True and proxy["ready"] is True and "running" in proxy["state"]
    finally:
        await stop_probers(worker)


async def test_sidecar_is_restarted_whatever_the_pod_policy(tmp_path: Path) -> None:
    worker, runtime, api = make_worker(tmp_path, sidecar_pod(policy="Never", startup=False))
    try:
        await worker.sync()  # proxy, then setup
        runtime.exit("setup", 0)
        await worker.sync()  # app
        assert runtime.by_name("app")
        runtime.exit("proxy", 1)
        await worker.sync()
        proxies = runtime.by_name("proxy")
        assert len(proxies) == 1 and proxies[0]["state"] == RUNNING, "the sidecar was not restarted"
        assert worker.records["proxy"].restart_count == 1
        assert api.statuses[-1]["phase"] == "Running"
        assert conditions(api.statuses[-1])["Initialized"] == "True"
    finally:
        await stop_probers(worker)


async def test_pod_ends_when_its_app_containers_have_and_sidecars_stop(tmp_path: Path) -> None:
    worker, runtime, api = make_worker(tmp_path, sidecar_pod(policy="Never", startup=False))
    try:
        await worker.sync()
        runtime.exit("setup", 0)
        await worker.sync()
        runtime.exit("app", 0)
        await worker.sync()
        assert ("stop", "proxy") in runtime.calls
        assert runtime.by_name("proxy")[0]["state"] == EXITED
        assert api.statuses[-1]["phase"] == "Succeeded"
        await worker.sync()
        assert runtime.by_name("proxy")[0]["state"] == EXITED, "a finished pod's sidecar came back"
    finally:
        await stop_probers(worker)


async def test_sidecars_stop_after_the_app_containers_pre_stop_hooks(tmp_path: Path) -> None:
    worker, runtime, _ = make_worker(tmp_path, sidecar_pod(startup=False, pre_stop=True))
    try:
        await worker.sync()
        runtime.exit("setup", 0)
        await worker.sync()
        runtime.calls.clear()
        await worker.stop_everything(grace=5, reason="deleting")
        order = [c for c in runtime.calls if c[0] in ("exec", "stop")]
        assert order == [("exec", "app"), ("stop", "app"), ("stop", "proxy")]
        assert runtime.calls[-1] == ("stop_pod_sandbox", "sandbox")
    finally:
        await stop_probers(worker)


async def test_ephemeral_container_starts_in_a_running_pod_and_never_restarts(tmp_path: Path) -> None:
    pod: Obj = {
        "metadata": {"name": "p", "namespace": "ns", "uid": "uid-2"},
        "spec": {"containers": [{"name": "app", "image": "busybox:1.37"}]},
        "status": {},
    }
    worker, runtime, api = make_worker(tmp_path, pod)
    try:
        await worker.sync()
        assert "ephemeralContainerStatuses" not in api.statuses[-1]
        debugger = {"name": "debugger", "image": "busybox:1.37", "stdin": True, "tty": True}
        worker.update(dict(pod, spec=dict(pod["spec"], ephemeralContainers=[debugger])))
        await worker.sync()
        assert runtime.by_name("debugger")[0]["state"] == RUNNING
        (status,) = api.statuses[-1]["ephemeralContainerStatuses"]
        assert status["name"] == "debugger" and "running" in status["state"] and status["ready"] is False
        assert [c["name"] for c in api.statuses[-1]["containerStatuses"]] == ["app"]
        assert worker._field_path(debugger, False) == "spec.ephemeralContainers{debugger}"
        runtime.exit("debugger", 0)
        await worker.sync()
        assert len(runtime.by_name("debugger")) == 1, "an ephemeral container was restarted"
        (status,) = api.statuses[-1]["ephemeralContainerStatuses"]
        assert status["state"]["terminated"]["exitCode"] == 0
        assert api.statuses[-1]["phase"] == "Running"
    finally:
        await stop_probers(worker)


def test_termination_order_puts_sidecars_last_in_reverse() -> None:
    spec = {
        "initContainers": [
            {"name": "a", "restartPolicy": "Always"},
            {"name": "once"},
            {"name": "b", "restartPolicy": "Always"},
        ],
        "containers": [{"name": "x"}, {"name": "y"}],
    }
    assert termination_prereqs(spec, {"a", "b", "once", "x", "y"}) == {"b": ["x", "y"], "a": ["x", "y", "b"]}
    assert termination_prereqs(spec, {"a", "x"}) == {"b": ["x"], "a": ["x"]}


def _view(name: str, state: Obj, *, started: bool | None = None, ready: bool = False) -> ContainerView:
    view = ContainerView(name, "img", state=state, started=started, ready=ready, restartable=True)
    return view


def test_phase_and_conditions_with_sidecars() -> None:
    running: Obj = {"running": {}}
    app_running = ContainerView("app", "img", state=running, ready=True, started=True)
    app_waiting = ContainerView("app", "img", state={"waiting": {"reason": "PodInitializing"}})
    unstarted = _view("proxy", running, started=False)
    started = _view("proxy", running, started=True, ready=True)
    assert podstatus.phase("Always", [unstarted], [app_waiting], init_failed=False) == "Pending"
    assert podstatus.phase("Always", [started], [app_running], init_failed=False) == "Running"
    # a restarting sidecar does not take an initialized pod back to Pending
    assert (
        podstatus.phase("Always", [unstarted], [app_running], init_failed=False, initialized=True)
        == "Running"
    )
    # a stopped sidecar does not count; a running one keeps a finished pod running
    done = ContainerView("app", "img", state={"terminated": {"exitCode": 0}})
    stopped = _view("proxy", {"terminated": {"exitCode": 143}})
    assert podstatus.phase("Never", [stopped], [done], init_failed=False) == "Succeeded"
    assert podstatus.phase("Never", [started], [done], init_failed=False) == "Running"

    pod: Obj = {"metadata": {}, "spec": {}, "status": {}}
    got = podstatus.conditions(pod, [unstarted], [app_waiting], sandbox_ready=True, pod_phase="Pending")
    initialized = next(c for c in got if c["type"] == "Initialized")
    assert initialized["status"] == "False" and initialized["message"].endswith("[proxy]")
    unready = _view("proxy", running, started=True, ready=False)
    got = podstatus.conditions(pod, [unready], [app_running], sandbox_ready=True, pod_phase="Running")
    ready = next(c for c in got if c["type"] == "ContainersReady")
    assert ready["status"] == "False" and ready["message"] == "containers with unready status: [proxy]"
    assert next(c for c in got if c["type"] == "Initialized")["status"] == "True"


def resize_pod(policy: list[Obj] | None = None) -> Obj:
    app: Obj = {"name": "app", "image": "busybox:1.37", "resources": {"requests": {"cpu": "100m"}}}
    if policy:
        app["resizePolicy"] = policy
    return {
        "metadata": {"name": "p", "namespace": "ns", "uid": "uid-3", "generation": 1},
        "spec": {"restartPolicy": "OnFailure", "containers": [app]},
        "status": {},
    }


def resized(pod: Obj, resources: Obj) -> Obj:
    (app,) = pod["spec"]["containers"]
    spec = dict(pod["spec"], containers=[dict(app, resources=resources)])
    return dict(pod, metadata=dict(pod["metadata"], generation=2), spec=spec)


async def test_resize_updates_the_running_container_in_place(tmp_path: Path) -> None:
    pod = resize_pod()
    worker, runtime, api = make_worker(tmp_path, pod)
    try:
        await worker.sync()
        (app,) = api.statuses[-1]["containerStatuses"]
        assert app["resources"] == {"requests": {"cpu": "100m"}}
        assert app["allocatedResources"] == {"cpu": "100m"}
        wanted = {"requests": {"cpu": "200m"}, "limits": {"cpu": "400m"}}
        worker.update(resized(pod, wanted))
        await worker.sync()
        assert ("update", "app") in runtime.calls
        (container,) = runtime.by_name("app")
        assert container["linux"]["cpu_shares"] == 204 and container["linux"]["cpu_quota"] == 40000
        assert container["linux"]["memory_limit_in_bytes"] == -1
        status = api.statuses[-1]
        (app,) = status["containerStatuses"]
        assert app["resources"] == wanted and app["allocatedResources"] == {"cpu": "200m"}
        assert app["restartCount"] == 0 and status["observedGeneration"] == 2
        # an equivalent spelling is no change
        runtime.calls.clear()
        worker.update(resized(pod, {"requests": {"cpu": "0.2"}, "limits": {"cpu": "400m"}}))
        await worker.sync()
        assert ("update", "app") not in runtime.calls
    finally:
        await stop_probers(worker)


async def test_resize_restarts_when_the_policy_says_so(tmp_path: Path) -> None:
    pod = resize_pod([{"resourceName": "cpu", "restartPolicy": "RestartContainer"}])
    worker, runtime, api = make_worker(tmp_path, pod)
    try:
        await worker.sync()
        first = runtime.by_name("app")[0]["id"]
        worker.update(resized(pod, {"requests": {"cpu": "300m"}}))
        await worker.sync()
        (container,) = runtime.by_name("app")
        assert container["id"] != first and container["state"] == RUNNING
        assert ("update", "app") not in runtime.calls
        (app,) = api.statuses[-1]["containerStatuses"]
        assert app["restartCount"] == 1 and app["resources"] == {"requests": {"cpu": "300m"}}
        assert "running" in app["state"]
    finally:
        await stop_probers(worker)


def test_resize_rules() -> None:
    assert resize.changed_resources({"requests": {"cpu": "1"}}, {"requests": {"cpu": "1000m"}}) == set()
    assert resize.changed_resources({"requests": {"cpu": "1"}}, {"limits": {"memory": "1Gi"}}) == {
        "cpu",
        "memory",
    }
    restart = {"resizePolicy": [{"resourceName": "memory", "restartPolicy": "RestartContainer"}]}
    assert resize.needs_restart(restart, {"memory"}) and not resize.needs_restart(restart, {"cpu"})
    assert not resize.needs_restart({}, {"cpu", "memory"})
    lifted = resize.update_request({"resources": {"requests": {"cpu": "2m"}}})
    assert lifted == {"cpu_shares": 2, "cpu_period": 100000, "cpu_quota": -1, "memory_limit_in_bytes": -1}
    assert resize.status_resources({}) == {}
    assert resize.allocated_resources({"resources": {"limits": {"cpu": "1"}}}) is None
