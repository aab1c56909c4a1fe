"""The pod garbage collector: removes the pods that nobody else will ever remove.

As kube-controller-manager's ``podgc``, every :data:`CHECK_PERIOD` seconds, from the pod and
node informers, it force-deletes (grace period 0):

* terminated pods (``Succeeded``/``Failed``) beyond ``terminated_threshold``, oldest first
  (``--terminated-pod-gc-threshold``, 12500; 0 turns this off);
* orphaned pods, bound to a node that no longer exists: the node must have been missing for
  :data:`QUARANTINE` seconds and a live read must confirm it, then each pod is marked
  ``Failed`` with the ``DisruptionTarget`` condition (reason ``DeletionByPodGC``) first;
* terminating pods that were never scheduled (no kubelet will finish them);
* terminating pods on a node that is not Ready and carries the
  ``node.kubernetes.io/out-of-service`` taint.

A pod not yet terminated is marked ``Failed`` before it is deleted, as upstream marks it.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from k3py.api import objects
from k3py.client.informer import SharedInformers
from k3py.client.rest import ApiStatusError, RestClient
from k3py.controllers.base import Controller, Key
from k3py.controllers.objects import meta_of

log = logging.getLogger(__name__)

Obj = dict[str, Any]
CHECK_PERIOD = 20.0
QUARANTINE = 40.0
TERMINATED_THRESHOLD = 12500
OUT_OF_SERVICE = "node.kubernetes.io/out-of-service"
TICK: Key = ("", "pod-gc")
TERMINAL = ("Succeeded", "Failed")


def is_terminated(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in TERMINAL


def excess_terminated(pods: list[Obj], threshold: int) -> list[Obj]:
    """The oldest terminated pods beyond ``threshold`` (none when the threshold is 0)."""
    if threshold <= 0:
        return []
    done = [p for p in pods if is_terminated(p)]
    extra = len(done) - threshold
    if extra <= 0:
        return []
    done.sort(
        key=lambda p: (str(meta_of(p).get("creationTimestamp") or ""), str(meta_of(p).get("name") or ""))
    )
    return done[:extra]


def unscheduled_terminating(pods: list[Obj]) -> list[Obj]:
    return [p for p in pods if meta_of(p).get("deletionTimestamp") and not _node_of(p)]


def out_of_service(node: Obj) -> bool:
    """Not Ready (or unknown) and tainted ``node.kubernetes.io/out-of-service``."""
    taints = (node.get("spec") or {}).get("taints") or []
    if not any(t.get("key") == OUT_OF_SERVICE for t in taints):
        return False
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") != "True")
    return True


def failed_status(pod: Obj, message: str = "") -> Obj | None:
    """The status patch marking a pod failed before the collector deletes it (None: nothing to
    change): phase ``Failed`` unless it already ended, and with a ``message`` the
    ``DisruptionTarget`` condition upstream's podgc adds to the pods of a vanished node."""
    patch: Obj = {}
    if message:
        patch["conditions"] = [
            {
                "type": "DisruptionTarget",
                "status": "True",
                "reason": "DeletionByPodGC",
                "message": message,
                "lastTransitionTime": objects.now(),
            }
        ]
    if not is_terminated(pod):
        patch["phase"] = "Failed"
    return {"status": patch} if patch else None


class PodGarbageCollector(Controller):
    name = "pod-garbage-collector"
    identity = "pod-garbage-collector"

    def __init__(
        self,
        api: RestClient,
        informers: SharedInformers | None = None,
        *,
        terminated_threshold: int = TERMINATED_THRESHOLD,
        period: float = CHECK_PERIOD,
        quarantine: float = QUARANTINE,
    ) -> None:
        super().__init__(api, informers)
        self.terminated_threshold = terminated_threshold
        self.period = period
        self.quarantine = quarantine
        self.pods = self.informer("/api/v1/pods")
        self.nodes = self.informer("/api/v1/nodes")
        self._missing_since: dict[str, float] = {}
        self._deleted: set[str] = set()
        """Uids this collector force-deleted, which its cache may still show (never counted twice)."""

    async def run(self) -> None:
        self.queue.add(TICK)
        await super().run()

    async def sync(self, key: Key) -> None:
        try:
            await self.collect()
        finally:
            self.queue.add_after(TICK, self.period)

    async def collect(self) -> None:
        await self._terminating_out_of_service()
        await self._terminated()
        await self._orphaned()
        for pod in unscheduled_terminating(self.pods.items()):
            await self._fail(pod)
            await self._force_delete(pod, "never scheduled and terminating")

    async def _terminated(self) -> None:
        pods = self.pods.items()
        self._deleted &= {str(meta_of(p).get("uid")) for p in pods}
        counted = [p for p in pods if str(meta_of(p).get("uid")) not in self._deleted]
        for pod in excess_terminated(counted, self.terminated_threshold):
            await self._force_delete(pod, f"terminated pods exceed {self.terminated_threshold}")

    async def _terminating_out_of_service(self) -> None:
        tainted = {meta_of(n).get("name") for n in self.nodes.items() if out_of_service(n)}
        for pod in self.pods.items():
            if meta_of(pod).get("deletionTimestamp") and _node_of(pod) in tainted:
                await self._fail(pod)
                await self._force_delete(pod, "terminating on an out-of-service node")

    async def _orphaned(self) -> None:
        present = {str(meta_of(n).get("name")) for n in self.nodes.items()}
        bound = {_node_of(p) for p in self.pods.items()} - {""}
        now = time.monotonic()
        for name in list(self._missing_since):
            if name in present or name not in bound:
                del self._missing_since[name]
        for name in sorted(bound - present):
            since = self._missing_since.setdefault(name, now)
            if now - since < self.quarantine or await self._node_exists(name):
                continue
            for pod in self.pods.items():
                if _node_of(pod) == name:
                    await self._fail(pod, "PodGC: node no longer exists")
                    await self._force_delete(pod, f"its node {name} no longer exists")
            self._missing_since.pop(name, None)

    async def _node_exists(self, name: str) -> bool:
        try:
            await self.api.get(f"/api/v1/nodes/{name}")
        except ApiStatusError as exc:
            if exc.code == 404:
                return False
            raise
        return True

    async def _fail(self, pod: Obj, message: str = "") -> None:
        patch = failed_status(pod, message)
        if patch is None:
            return
        meta = meta_of(pod)
        path = f"/api/v1/namespaces/{meta.get('namespace')}/pods/{meta.get('name')}/status"
        try:
            await self.api.patch(path, patch, "strategic")
        except ApiStatusError as exc:
            if exc.code != 404:
                raise

    async def _force_delete(self, pod: Obj, why: str) -> None:
        meta = meta_of(pod)
        path = f"/api/v1/namespaces/{meta.get('namespace')}/pods/{meta.get('name')}"
        body = {
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": meta.get("uid")},
        }
        try:
            await self.api.delete(path, body)
        except ApiStatusError as exc:
            if exc.code not in (404, 409):
                raise
            return
        self._deleted.add(str(meta.get("uid")))
        log.info("%s: force-deleted pod %s/%s: %s", self.name, meta.get("namespace"), meta.get("name"), why)


def _node_of(pod: Obj) -> str:
    return str((pod.get("spec") or {}).get("nodeName") or "")
