"""The scheduling queue: order, backoff, the unschedulable pool and what brings pods back.

Time is a fake clock the tests move; only the ``pop`` tests wait (briefly) on the loop.
"""

from __future__ import annotations

import asyncio

from k3py.scheduler.queue import QueuedPod, SchedulingQueue


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def queue(clock: Clock) -> SchedulingQueue:
    return SchedulingQueue(clock=clock, initial_backoff=1.0, max_backoff=10.0, max_unschedulable=300.0)


def popped(q: SchedulingQueue) -> QueuedPod:
    pod = q.pop_ready()
    assert pod is not None
    return pod


def test_highest_priority_first_then_the_oldest() -> None:
    clock = Clock()
    q = queue(clock)
    q.add(("ns", "old-low"), 0)
    clock.now += 1
    q.add(("ns", "high"), 100)
    clock.now += 1
    q.add(("ns", "new-low"), 0)

    order = [popped(q).key[1] for _ in range(3)]

    assert order == ["high", "old-low", "new-low"]
    assert q.pop_ready() is None


def test_a_priority_change_reorders_and_a_deleted_pod_is_not_popped() -> None:
    q = queue(Clock())
    q.add(("ns", "a"), 0)
    q.add(("ns", "b"), 0)
    q.add(("ns", "c"), 0)
    q.add(("ns", "b"), 50)
    q.delete(("ns", "a"))

    assert [popped(q).key[1] for _ in range(2)] == ["b", "c"]
    assert q.pop_ready() is None


def test_an_unschedulable_pod_waits_for_a_cluster_change() -> None:
    clock = Clock()
    q = queue(clock)
    q.add(("ns", "p"))
    pod = popped(q)
    q.unschedulable(pod)
    assert q.where(pod.key) == "unschedulable"
    clock.now += 60
    assert q.pop_ready() is None  # time alone (under max_unschedulable) does not bring it back

    q.move_all()

    assert q.where(pod.key) == "active"  # its 1 s backoff is long over
    assert popped(q).attempts == 1


def test_a_change_during_backoff_moves_the_pod_to_backoff_first() -> None:
    clock = Clock()
    q = queue(clock)
    q.add(("ns", "p"))
    q.unschedulable(popped(q))
    q.move_all()
    assert q.where(("ns", "p")) == "backoff"
    assert q.pop_ready() is None
    clock.now += 1.0
    assert popped(q).key == ("ns", "p")


def test_backoff_doubles_up_to_the_maximum() -> None:
    clock = Clock()
    q = queue(clock)
    q.add(("ns", "p"))
    delays = []
    for _ in range(6):
        pod = popped(q)
        q.failed(pod)
        delays.append(pod.backoff_until - clock.now)
        clock.now = pod.backoff_until
    assert delays == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_a_change_while_the_pod_was_being_scheduled_is_not_lost() -> None:
    clock = Clock()
    q = queue(clock)
    q.add(("ns", "p"))
    pod = popped(q)
    assert q.where(pod.key) == "in-flight"
    q.move_all()  # a node appeared while the pod was being evaluated without it

    q.unschedulable(pod)

    assert q.where(pod.key) == "backoff"
    clock.now += 1
    assert popped(q).key == pod.key


def test_an_update_of_the_pod_itself_retries_it() -> None:
    clock = Clock()
    q = queue(clock)
    q.add(("ns", "p"))
    q.unschedulable(popped(q))
    clock.now += 5

    q.add(("ns", "p"))  # e.g. a toleration was added

    assert q.where(("ns", "p")) == "active"


def test_long_unschedulable_pods_are_retried_anyway() -> None:
    clock = Clock()
    q = queue(clock)
    q.add(("ns", "p"))
    q.unschedulable(popped(q))
    clock.now += 299
    assert q.pop_ready() is None
    clock.now += 1
    assert popped(q).key == ("ns", "p")


def test_done_and_deleted_pods_are_forgotten() -> None:
    q = queue(Clock())
    q.add(("ns", "p"))
    q.done(popped(q))
    q.move_all()
    assert q.pop_ready() is None and q.where(("ns", "p")) == ""
    q.add(("ns", "gone"))
    pod = popped(q)
    q.delete(pod.key)
    q.unschedulable(pod)
    q.move_all()
    assert q.pop_ready() is None and q.where(pod.key) == ""


async def test_pop_waits_for_a_new_pod() -> None:
    q = SchedulingQueue()
    waiting = asyncio.create_task(q.pop())
    await asyncio.sleep(0.01)
    assert not waiting.done()

    q.add(("ns", "p"))

    pod = await asyncio.wait_for(waiting, 1.0)
    assert pod.key == ("ns", "p")


async def test_pop_wakes_when_a_backoff_ends() -> None:
    q = SchedulingQueue(initial_backoff=0.05)
    q.add(("ns", "p"))
    q.failed(await q.pop())
    loop = asyncio.get_running_loop()
    started = loop.time()

    pod = await asyncio.wait_for(q.pop(), 1.0)

    assert pod.key == ("ns", "p")
    assert 0.03 <= loop.time() - started < 0.5


def test_move_retries_only_the_named_unschedulable_pods() -> None:
    clock = Clock()
    q = queue(clock)
    q.add(("default", "a"))
    q.add(("default", "b"))
    q.unschedulable(popped(q))
    q.unschedulable(popped(q))
    assert sorted(q.unschedulable_keys()) == [("default", "a"), ("default", "b")]
    clock.now += 5  # past the first backoff
    q.move([("default", "b"), ("default", "gone")])
    assert (q.where(("default", "a")), q.where(("default", "b"))) == ("unschedulable", "active")
    assert popped(q).key == ("default", "b")
