"""The scheduling queue: which pending pod to try next, and when to try a failed one again.

Three places, as kube-scheduler's ``PriorityQueue``:

- **active**: pods to try now, highest ``spec.priority`` first, then the oldest;
- **backoff**: pods that failed and wait ``initial * 2**(attempts-1)`` seconds (at most
  ``max_backoff``) before going back to active;
- **unschedulable**: pods no node could take. They stay there until the cluster changes
  (a node is added or updated, a pod is deleted or bound: :meth:`move_all`), then go to
  backoff (or straight to active once their backoff is over); a pod left there for
  ``max_unschedulable`` seconds is retried anyway.

A cluster change that happens while a pod is being scheduled (between :meth:`pop` and
:meth:`unschedulable`) sends that pod to backoff rather than to the unschedulable pool,
so it is not forgotten because it was evaluated against the state before the change. An
update of the pod itself does the same. The clock is injectable so tests need not sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

Key = tuple[str, str]
"""(namespace, name) of a pod."""


@dataclass
class QueuedPod:
    key: Key
    priority: int
    added: float
    """When the pod was first queued: ties in priority go to the oldest."""
    attempts: int = 0
    backoff_until: float = 0.0
    cycle: int = 0
    """The scheduling cycle that popped it last."""


class SchedulingQueue:
    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        initial_backoff: float = 1.0,
        max_backoff: float = 10.0,
        max_unschedulable: float = 300.0,
    ) -> None:
        self.clock = clock
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.max_unschedulable = max_unschedulable
        self._known: dict[Key, QueuedPod] = {}
        self._active: dict[Key, QueuedPod] = {}
        self._heap: list[tuple[int, float, int, Key]] = []
        self._backoff: dict[Key, QueuedPod] = {}
        self._unschedulable: dict[Key, float] = {}
        self._in_flight: dict[Key, bool] = {}
        """Popped and not yet reported; True once the cluster or the pod changed meanwhile."""
        self._sequence = 0
        self.cycle = 0
        self._wake = asyncio.Event()

    # -- what the informers report ----------------------------------------------------------

    def add(self, key: Key, priority: int = 0) -> None:
        """A pending pod appeared or changed: queue it (an unschedulable one is retried)."""
        known = self._known.get(key)
        if known is None:
            known = QueuedPod(key, priority, self.clock())
            self._known[key] = known
            self._to_active(known)
            return
        known.priority = priority
        if key in self._in_flight:
            self._in_flight[key] = True
        elif key in self._unschedulable:
            del self._unschedulable[key]
            self._requeue(known)
        elif key in self._active:
            self._push(known)  # its priority may have changed

    def delete(self, key: Key) -> None:
        """The pod is gone, or bound, or no longer ours."""
        self._known.pop(key, None)
        self._active.pop(key, None)
        self._backoff.pop(key, None)
        self._unschedulable.pop(key, None)

    def move_all(self) -> None:
        """The cluster changed in a way that may let unschedulable pods fit: retry them."""
        self.move(list(self._unschedulable))

    def move(self, keys: Iterable[Key]) -> None:
        """A change that may help only some unschedulable pods (a pod appeared that others
        have affinity to): retry those. A pod being scheduled meanwhile is retried too."""
        for key in keys:
            if key in self._unschedulable:
                del self._unschedulable[key]
                self._requeue(self._known[key])
        for key in self._in_flight:
            self._in_flight[key] = True

    def unschedulable_keys(self) -> list[Key]:
        """The pods waiting for a cluster change."""
        return list(self._unschedulable)

    # -- what the scheduling loop reports ---------------------------------------------------

    def pop_ready(self) -> QueuedPod | None:
        """The next pod to try now, if any (without waiting)."""
        self.flush()
        while self._heap:
            _, _, _, key = heapq.heappop(self._heap)
            pod = self._active.pop(key, None)
            if pod is None:
                continue  # deleted, or pushed again with a new priority
            self.cycle += 1
            pod.cycle = self.cycle
            self._in_flight[key] = False
            return pod
        return None

    async def pop(self) -> QueuedPod:
        """Wait for the next pod to try."""
        while True:
            if (pod := self.pop_ready()) is not None:
                return pod
            self._wake.clear()
            wait = self._next_deadline()
            timeout = None if wait is None else max(0.0, wait - self.clock())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def done(self, pod: QueuedPod) -> None:
        """Scheduled (bound): forget the pod."""
        self._in_flight.pop(pod.key, None)
        self.delete(pod.key)

    def unschedulable(self, pod: QueuedPod) -> None:
        """No node fits: wait for a cluster change (or backoff, if one happened meanwhile)."""
        changed = self._in_flight.pop(pod.key, False)
        if pod.key not in self._known:
            return  # deleted while being scheduled
        self._count_attempt(pod)
        if changed:
            self._to_backoff(pod)
        else:
            self._unschedulable[pod.key] = self.clock()

    def failed(self, pod: QueuedPod) -> None:
        """An error (the binding failed, the server is away): retry after the backoff."""
        self._in_flight.pop(pod.key, None)
        if pod.key not in self._known:
            return
        self._count_attempt(pod)
        self._to_backoff(pod)

    # -- inside -----------------------------------------------------------------------------

    def flush(self) -> None:
        """Backed-off pods whose time has come go to active; so do long-unschedulable ones."""
        now = self.clock()
        for key, pod in list(self._backoff.items()):
            if pod.backoff_until <= now:
                del self._backoff[key]
                self._to_active(pod)
        for key, since in list(self._unschedulable.items()):
            if now - since >= self.max_unschedulable:
                del self._unschedulable[key]
                self._requeue(self._known[key])

    def _count_attempt(self, pod: QueuedPod) -> None:
        pod.attempts += 1
        delay = min(self.max_backoff, self.initial_backoff * 2 ** (pod.attempts - 1))
        pod.backoff_until = self.clock() + delay

    def _requeue(self, pod: QueuedPod) -> None:
        if pod.backoff_until > self.clock():
            self._to_backoff(pod)
        else:
            self._to_active(pod)

    def _to_backoff(self, pod: QueuedPod) -> None:
        self._backoff[pod.key] = pod
        self._wake.set()  # the waiting pop must learn the new deadline

    def _to_active(self, pod: QueuedPod) -> None:
        self._active[pod.key] = pod
        self._push(pod)
        self._wake.set()

    def _push(self, pod: QueuedPod) -> None:
        self._sequence += 1
        heapq.heappush(self._heap, (-pod.priority, pod.added, self._sequence, pod.key))

    def _next_deadline(self) -> float | None:
        deadlines = [pod.backoff_until for pod in self._backoff.values()]
        deadlines += [since + self.max_unschedulable for since in self._unschedulable.values()]
        return min(deadlines, default=None)

    # -- for tests and logs -----------------------------------------------------------------

    def where(self, key: Key) -> str:
        """ "active", "backoff", "unschedulable", "in-flight" or "" (not queued)."""
        if key in self._in_flight:
            return "in-flight"
        if key in self._active:
            return "active"
        if key in self._backoff:
            return "backoff"
        if key in self._unschedulable:
            return "unschedulable"
        return ""
