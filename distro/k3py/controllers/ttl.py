"""The TTL-after-finished controller: deletes finished Jobs once their time to live has passed.

A Job with ``spec.ttlSecondsAfterFinished`` that has a ``Complete`` or ``Failed`` condition
expires that many seconds after the condition's ``lastTransitionTime``. Until then its key
waits in the queue; at expiry the controller reads the Job afresh from the API (the cache may
be stale, the TTL may have been changed) and deletes it with a uid precondition, cascading
to its pods in the foreground as upstream does.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from k3py.client.informer import SharedInformers
from k3py.client.rest import ApiStatusError, RestClient
from k3py.controllers.base import Controller, Key
from k3py.controllers.job import condition_true
from k3py.controllers.objects import parse_time

log = logging.getLogger(__name__)

Obj = dict[str, Any]


def finish_time(job: Obj) -> float | None:
    """When the Job finished: its terminal condition's transition time."""
    for kind in ("Complete", "Failed"):
        cond = condition_true(job, kind)
        if cond is not None:
            return parse_time(cond.get("lastTransitionTime")) or time.time()
    return None


def remaining(job: Obj, now: float) -> float | None:
    """Seconds until the Job expires (<= 0: expired); None when it never does or is going."""
    ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
    if not isinstance(ttl, int) or (job.get("metadata") or {}).get("deletionTimestamp"):
        return None
    finished = finish_time(job)
    if finished is None:
        return None
    return finished + ttl - now


class TTLAfterFinishedController(Controller):
    name = "ttl-after-finished-controller"
    identity = "ttl-after-finished-controller"

    def __init__(self, api: RestClient, informers: SharedInformers | None = None) -> None:
        super().__init__(api, informers)
        self.jobs = self.informer("/apis/batch/v1/jobs")
        self.on(self.jobs, self._changed)

    def _changed(self, old: Obj | None, new: Obj | None) -> None:
        if new is not None and remaining(new, time.time()) is not None:
            self.enqueue(new)

    async def sync(self, key: Key) -> None:
        namespace, name = key
        cached = self.jobs.get(namespace, name)
        if cached is None:
            return
        left = remaining(cached, time.time())
        if left is None:
            return
        if left > 0:
            self.queue.add_after(key, left)
            return
        path = f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}"
        try:
            fresh = await self.api.get(path)
        except ApiStatusError as exc:
            if exc.code == 404:
                return
            raise
        left = remaining(fresh, time.time())
        if left is None:
            return
        if left > 0:
            self.queue.add_after(key, left)
            return
        log.info("%s: deleting job %s/%s: its time to live has passed", self.name, namespace, name)
        options = {"propagationPolicy": "Foreground", "preconditions": {"uid": fresh["metadata"]["uid"]}}
        try:
            await self.api.delete(path, options)
        except ApiStatusError as exc:
            if exc.code not in (404, 409):
                raise
