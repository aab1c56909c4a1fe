"""The scheduler's node cache: what each node counts as pods are bound, assumed, moved and
removed, and that the scheduler's informer handlers and binding keep it in step."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from k3py.client.rest import ApiStatusError, Credentials, RestClient
from k3py.scheduler import Scheduler, resources
from k3py.scheduler.cache import NodeCache
from k3py.scheduler.queue import SchedulingQueue
from k3py.scheduler.resources import HostPort, NodeInfo, pod_requests

Obj = dict[str, Any]
MI = 1024 * 1024


def node(name: str, cpu: str = "4") -> Obj:
    allocatable = {"cpu": cpu, "memory": "8Gi", "pods": "110"}
    status = {"allocatable": allocatable, "conditions": [{"type": "Ready", "status": "True"}]}
    return {"metadata": {"name": name}, "spec": {}, "status": status}


def pod(name: str, cpu: str = "100m", *, node_name: str = "", **spec: Any) -> Obj:
    container = {"name": "c", "image": "busybox", "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}}}
    body: Obj = {"containers": [container], **spec}
    if node_name:
        body["nodeName"] = node_name
    return {
        "metadata": {"name": name, "namespace": "ns", "resourceVersion": "1", "labels": {"app": "web"}},
        "spec": body,
        "status": {"phase": "Pending"},
    }


def counted(cache: NodeCache) -> dict[str, tuple[list[str], int]]:
    """Each known node's pods (names) and requested CPU (millicores)."""
    return {
        info.name: ([p["metadata"]["name"] for p in info.pods], info.requested.get("cpu", 0))
        for info in cache.snapshot()
    }


def test_pods_are_counted_moved_and_forgotten() -> None:
    cache = NodeCache()
    cache.set_node(node("b"))
    cache.set_node(node("a"))
    cache.place(("ns", "p"), "a", pod("p", "250m"))
    cache.place(("ns", "q"), "a", pod("q", "500m"))
    assert counted(cache) == {"a": (["p", "q"], 750), "b": ([], 0)}
    assert [info.name for info in cache.snapshot()] == ["a", "b"]

    cache.place(("ns", "p"), "b", pod("p", "1"))  # a newer object, elsewhere
    assert counted(cache) == {"a": (["q"], 500), "b": (["p"], 1000)}
    assert cache.node_of(("ns", "p")) == "b"

    cache.forget(("ns", "q"))
    cache.forget(("ns", "never-placed"))
    assert counted(cache) == {"a": ([], 0), "b": (["p"], 1000)}


def test_pods_on_an_unknown_node_show_up_with_it_and_outlive_its_removal() -> None:
    cache = NodeCache()
    cache.place(("ns", "early"), "late-node", pod("early"))
    assert cache.snapshot() == []

    cache.set_node(node("late-node", cpu="2"))
    assert counted(cache) == {"late-node": (["early"], 100)}
    assert cache.snapshot()[0].allocatable["cpu"] == 2000

    cache.remove_node("late-node")
    assert cache.snapshot() == []
    cache.set_node(node("late-node"))
    assert counted(cache) == {"late-node": (["early"], 100)}


def test_removing_a_pod_gives_back_all_it_took() -> None:
    ported = pod("ported", containers=[{"name": "c", "image": "x", "ports": [{"hostPort": 80}]}])
    anti = pod(
        "anti",
        affinity={
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "zone"}
                ]
            }
        },
    )
    info = NodeInfo.of(node("a"), [pod("plain"), ported, anti])
    assert info.ports == [HostPort("0.0.0.0", "TCP", 80)]
    assert info.with_affinity == [anti] and info.with_required_anti_affinity == [anti]

    info.remove(ported)
    info.remove(anti)

    assert info.ports == [] and info.with_affinity == [] and info.with_required_anti_affinity == []
    assert info.requested == {"cpu": 100, "memory": 64 * MI}
    with pytest.raises(ValueError, match="not on 'a'"):
        info.remove(pod("plain"))  # an equal object is not the one counted


def test_pod_counts_are_remembered_until_the_pods_change() -> None:
    info = NodeInfo.of(node("a"), [pod("p")])
    calls: list[str] = []

    def web(p: Obj) -> bool:
        calls.append(p["metadata"]["name"])
        return bool(p["metadata"]["labels"].get("app") == "web")

    assert info.count_pods("web", web) == 1
    assert info.count_pods("web", web) == 1
    assert calls == ["p"]
    info.add(pod("q"))
    assert info.count_pods("web", web) == 2
    assert calls == ["p", "p", "q"]


def test_requests_are_remembered_only_inside_a_cycle() -> None:
    p = pod("p", "100m")
    with resources.memoized():
        assert pod_requests(p)["cpu"] == 100
        p["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "2"
        assert pod_requests(p)["cpu"] == 100  # objects must not change within a cycle
    assert pod_requests(p)["cpu"] == 2000


# -- the scheduler's handlers ------------------------------------------------------------------


class FailingBinder(RestClient):
    """The API answers every create with 409 Conflict: a binding that does not happen."""

    def __init__(self) -> None:
        super().__init__("https://127.0.0.1:1", Credentials())
        self.created: list[str] = []

    async def create(self, path: str, body: Obj) -> Obj:
        self.created.append(path)
        raise ApiStatusError(409, "Conflict", "conflict")


def scheduler(api: RestClient | None = None) -> Scheduler:
    return Scheduler(api or RestClient("https://127.0.0.1:1", Credentials()), queue=SchedulingQueue())


def test_informer_changes_keep_the_cache_in_step() -> None:
    s = scheduler()
    s.on_node_change(None, node("n1"))
    s.on_pod_change(None, pod("pending"))
    s.on_pod_change(None, pod("bound", node_name="n1"))
    assert counted(s.cache) == {"n1": (["bound"], 100)}

    finished = pod("bound", node_name="n1")
    finished["status"]["phase"] = "Succeeded"
    s.on_pod_change(pod("bound", node_name="n1"), finished)
    assert counted(s.cache) == {"n1": ([], 0)}

    s.on_pod_change(None, pod("other", node_name="n1"))
    s.on_pod_change(pod("other", node_name="n1"), None)
    s.on_node_change(node("n1"), None)
    assert s.cache.snapshot() == []


def test_an_assumed_pod_counts_until_its_binding_fails() -> None:
    api = FailingBinder()
    s = scheduler(api)
    s.on_node_change(None, node("n1"))
    s.on_pod_change(None, pod("p", "1"))
    s.pods._put(("ns", "p"), pod("p", "1"))  # what the informer holds
    queued = s.queue.pop_ready()
    assert queued is not None

    async def cycle() -> None:
        await s.schedule_one(queued)
        assert counted(s.cache) == {"n1": (["p"], 1000)}  # assumed while the binding waits
        binding = s._bindings.get_nowait()
        assert binding.node == "n1"
        await s.bind(binding.queued, binding.pod, binding.node)

    asyncio.run(cycle())

    assert api.created[0] == "/api/v1/namespaces/ns/pods/p/binding"
    assert counted(s.cache) == {"n1": ([], 0)}
    assert s.queue.where(("ns", "p")) == "backoff"
