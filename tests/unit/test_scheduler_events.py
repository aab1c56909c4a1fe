"""How the scheduler reacts to what its informers report, and the snapshot it schedules on.

The informers are fed directly (their ``run`` is not started; no server is involved): this
checks which changes queue, forget or retry pods, and which pods count on which node.
"""

from __future__ import annotations

import copy
from typing import Any

from k3py.client.rest import Credentials, RestClient
from k3py.scheduler import Scheduler
from k3py.scheduler.queue import SchedulingQueue

Obj = dict[str, Any]


def scheduler() -> Scheduler:
    return Scheduler(RestClient("https://127.0.0.1:1", Credentials()), queue=SchedulingQueue())


def pod(name: str, **spec: Any) -> Obj:
    return {
        "metadata": {"name": name, "namespace": "ns", "resourceVersion": "1"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec},
        "status": {"phase": "Pending"},
    }


def node(name: str, **status: Any) -> Obj:
    return {"metadata": {"name": name}, "spec": {}, "status": {"allocatable": {"cpu": "1"}, **status}}


def park(s: Scheduler, name: str) -> None:
    """Queue the pod, pop it and report it unschedulable."""
    s.on_pod_change(None, pod(name))
    popped = s.queue.pop_ready()
    assert popped is not None and popped.key == ("ns", name)
    s.queue.unschedulable(popped)


def test_only_our_pending_ungated_pods_are_queued() -> None:
    s = scheduler()
    s.on_pod_change(None, pod("mine"))
    s.on_pod_change(None, pod("explicit", schedulerName="default-scheduler"))
    s.on_pod_change(None, pod("other", schedulerName="someone-else"))
    s.on_pod_change(None, pod("bound", nodeName="n1"))
    s.on_pod_change(None, pod("gated", schedulingGates=[{"name": "wait"}]))
    terminating = pod("terminating")
    terminating["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    s.on_pod_change(None, terminating)

    queued = {
        name
        for name in ("mine", "explicit", "other", "bound", "gated", "terminating")
        if s.queue.where(("ns", name))
    }

    assert queued == {"mine", "explicit"}


def test_a_status_write_does_not_requeue_but_a_spec_change_does() -> None:
    s = scheduler()
    park(s, "p")
    before = pod("p")
    status_only = copy.deepcopy(before)
    status_only["metadata"]["resourceVersion"] = "2"
    status_only["status"]["conditions"] = [{"type": "PodScheduled", "status": "False"}]

    s.on_pod_change(before, status_only)
    assert s.queue.where(("ns", "p")) == "unschedulable"

    tolerant = copy.deepcopy(status_only)
    tolerant["spec"]["tolerations"] = [{"operator": "Exists"}]
    s.on_pod_change(status_only, tolerant)
    assert s.queue.where(("ns", "p")) in ("active", "backoff")


def test_node_heartbeats_do_not_retry_but_new_room_does() -> None:
    s = scheduler()
    park(s, "p")
    ready = node("n1", conditions=[{"type": "Ready", "status": "True", "lastHeartbeatTime": "t1"}])
    beat = node("n1", conditions=[{"type": "Ready", "status": "True", "lastHeartbeatTime": "t2"}])

    s.on_node_change(ready, beat)
    assert s.queue.where(("ns", "p")) == "unschedulable"

    s.on_node_change(None, node("n2"))
    assert s.queue.where(("ns", "p")) in ("active", "backoff")


def test_a_deleted_or_finished_bound_pod_frees_room() -> None:
    s = scheduler()
    park(s, "p")
    s.on_pod_change(None, pod("running", nodeName="n1"))
    assert s.queue.where(("ns", "p")) == "unschedulable"  # a pod bound elsewhere frees nothing

    done = pod("running", nodeName="n1")
    done["status"]["phase"] = "Succeeded"
    s.on_pod_change(pod("running", nodeName="n1"), done)
    assert s.queue.where(("ns", "p")) in ("active", "backoff")

    park(s, "q")
    s.on_pod_change(pod("other", nodeName="n1"), None)
    assert s.queue.where(("ns", "q")) in ("active", "backoff")


def test_a_bound_pod_leaves_the_queue() -> None:
    s = scheduler()
    s.on_pod_change(None, pod("p"))
    s.on_pod_change(pod("p"), pod("p", nodeName="n1"))
    assert s.queue.where(("ns", "p")) == ""
    assert s.queue.pop_ready() is None
