"""Leader election on a ``coordination.k8s.io/v1`` Lease, as client-go's leaderelection.

Several servers on one datastore must run one scheduler and one set of controllers. Each
candidate tries to hold the Lease: it takes it when the Lease is absent or expired (its
``renewTime`` older than ``leaseDurationSeconds``), renews it every ``retry_period`` while it
leads, and gives up leading — cancelling what it ran — when it could not renew within
``renew_deadline``. Writes carry the Lease's resourceVersion, so two candidates never both
succeed. On a clean stop the leader releases the Lease (empty holder) so another takes over
at once, as client-go's ``ReleaseOnCancel``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from k3py.client.rest import ApiStatusError, RestClient

log = logging.getLogger(__name__)

Obj = dict[str, Any]


def _micro_time(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: str | None) -> float:
    if not text:
        return 0.0
    for form in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.strptime(text, form).replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue
    return 0.0


class LeaderElector:
    def __init__(
        self,
        api: RestClient,
        namespace: str,
        name: str,
        identity: str,
        *,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
    ) -> None:
        self.api = api
        self.path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"
        self.collection = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
        self.name = name
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.leading = False

    async def run(self, lead: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run ``lead()`` whenever this candidate holds the Lease, until cancelled."""
        while True:
            await self._acquire()
            self.leading = True
            log.info("%s: %s became the leader", self.name, self.identity)
            work = asyncio.create_task(lead(), name=f"leader:{self.name}")
            try:
                await self._renew_until_lost(work)
            finally:
                self.leading = False
                work.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await work
            log.warning("%s: %s lost the lease", self.name, self.identity)

    async def _acquire(self) -> None:
        """Return once this candidate holds the Lease."""
        while True:
            if await self._try():
                return
            await asyncio.sleep(self.retry_period)

    async def _renew_until_lost(self, work: asyncio.Task[None]) -> None:
        last = time.monotonic()
        try:
            while not work.done():
                await asyncio.sleep(self.retry_period)
                if await self._try():
                    last = time.monotonic()
                elif time.monotonic() - last > self.renew_deadline:
                    return
            work.result()  # what it ran ended: raise its error, or return to run it again
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._release())
            raise

    async def _try(self) -> bool:
        """Take or renew the Lease; False when someone else holds a live one (or on an error)."""
        now = time.time()
        spec = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(self.lease_duration),
            "renewTime": _micro_time(now),
        }
        try:
            try:
                lease = await self.api.get(self.path)
            except ApiStatusError as exc:
                if exc.code != 404:
                    raise
                body = {
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {"name": self.name},
                    "spec": {**spec, "acquireTime": _micro_time(now), "leaseTransitions": 0},
                }
                await self.api.create(self.collection, body)
                return True
            held = lease.get("spec") or {}
            holder = held.get("holderIdentity") or ""
            expires = _parse(held.get("renewTime")) + float(held.get("leaseDurationSeconds") or 0)
            if holder and holder != self.identity and expires > now:
                return False
            if holder != self.identity:
                spec["acquireTime"] = _micro_time(now)
                spec["leaseTransitions"] = int(held.get("leaseTransitions") or 0) + 1
            else:
                spec["acquireTime"] = held.get("acquireTime") or _micro_time(now)
                spec["leaseTransitions"] = int(held.get("leaseTransitions") or 0)
            await self.api.update(self.path, {**lease, "spec": {**held, **spec}})
            return True
        except ApiStatusError as exc:
            if exc.code not in (409, 0):
                log.warning("%s: cannot take the lease: %s", self.name, exc)
            return False

    async def _release(self) -> None:
        lease = await self.api.get(self.path)
        if (lease.get("spec") or {}).get("holderIdentity") != self.identity:
            return
        spec = {**lease["spec"], "holderIdentity": None, "leaseDurationSeconds": 1}
        await self.api.update(self.path, {**lease, "spec": spec})
