"""APIServices in the store: the local ones registered at start, every one's availability kept.

- :func:`register_local` runs at every start, before the server listens: it creates the local
  APIServices that are missing, rewrites those whose spec or label drifted, and deletes the
  ``onstart`` ones whose group-version is no longer served (a ``--runtime-config`` change).
  APIServices without the label (a user's) are never touched.
- :func:`keep_available` is a long-running task, kube-aggregator's local availability
  controller: it follows APIServices through :class:`~k3py.apiserver.cache.ObjectCache` and
  gives every local one (no Service) the ``Local`` condition, through the status subresource,
  whenever the stored one differs. Those that name a Service are
  ``k3py.apiserver.aggregator_available``'s: it calls their backends.
- :func:`ensure_condition` is the one write both use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable

from k3py.api.apiregistration import (
    GROUP,
    MANAGED_LABEL,
    MANAGED_VALUES,
    ON_START,
    PLURAL,
    VERSION,
    Obj,
    available_condition,
    labels,
    local_apiservices,
    local_condition,
    same_condition,
    service_ref,
    set_condition,
)
from k3py.api.resources import Registry, Resource
from k3py.apiserver import errors
from k3py.apiserver.cache import ObjectCache
from k3py.apiserver.generic import DeleteOptions, ListOptions, ObjectStore, WriteOptions

log = logging.getLogger(__name__)

MANAGER = "kube-apiserver"
"""The field manager of the writes, as upstream's loopback client records them."""
RETRY_DELAY = 1.0
"""Seconds before :func:`keep_available` tries again after a status write failed."""


# -- registration at start --------------------------------------------------------------------


def apiservice_resource(registry: Registry) -> Resource | None:
    return registry.lookup(GROUP, VERSION, PLURAL)


async def register_local(store: ObjectStore) -> None:
    """Make the stored local APIServices match what this server serves (module docstring)."""
    resource = apiservice_resource(store.registry)
    if resource is None:
        log.info("%s/%s is not served: no APIServices registered", GROUP, VERSION)
        return
    wanted = {obj["metadata"]["name"]: obj for obj in local_apiservices(store.registry)}
    listed = await store.list(resource, "", ListOptions())
    existing = {obj["metadata"]["name"]: obj for obj in listed["items"]}
    opts = WriteOptions(field_manager=MANAGER)
    counts = {"created": 0, "updated": 0, "deleted": 0}
    for name, want in wanted.items():
        have = existing.get(name)
        try:
            if have is None:
                have = await store.create(resource, "", _without_status(want), opts)
                counts["created"] += 1
            elif labels(have).get(MANAGED_LABEL) not in MANAGED_VALUES:
                continue  # a user's APIService under this name: theirs to keep
            elif have.get("spec") != want["spec"] or labels(have).get(MANAGED_LABEL) != ON_START:
                have = await store.guaranteed_update(resource, "", name, _adopt(want), opts)
                counts["updated"] += 1
            await ensure_condition(store, resource, have, lambda _: local_condition())
        except errors.ApiError as exc:
            log.error("Could not register APIService %s: %s", name, exc)
    for name, have in existing.items():
        if name in wanted or labels(have).get(MANAGED_LABEL) != ON_START:
            continue
        try:
            await store.delete(resource, "", name, DeleteOptions())
            counts["deleted"] += 1
        except errors.ApiError as exc:
            if exc.code != 404:
                log.error("Could not remove APIService %s: %s", name, exc)
    if any(counts.values()):
        log.info("Local APIServices: %(created)d created, %(updated)d updated, %(deleted)d deleted", counts)


def _adopt(want: Obj) -> Callable[[Obj], Obj]:
    def change(current: Obj) -> Obj:
        meta = current["metadata"]
        meta["labels"] = {**labels(current), MANAGED_LABEL: ON_START}
        return {**current, "spec": want["spec"]}

    return change


def _without_status(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k != "status"}


async def ensure_condition(
    store: ObjectStore, resource: Resource, apiservice: Obj, compute: Callable[[Obj], Obj]
) -> Obj | None:
    """Write ``compute(apiservice)`` as the Available condition, through ``/status``, if it
    differs; return the condition written (None when there was nothing to write).

    ``compute`` runs again on the stored object inside the compare-and-swap, so a write that
    races another sees the newest spec.
    """
    if same_condition(available_condition(apiservice), compute(apiservice)):
        return None

    def change(current: Obj) -> Obj:
        wanted = compute(current)
        if same_condition(available_condition(current), wanted):
            return current
        status = current.get("status") or {}
        conditions = set_condition(status.get("conditions") or [], wanted)
        return {**current, "status": {**status, "conditions": conditions}}

    name = apiservice["metadata"]["name"]
    written = await store.guaranteed_update(
        resource, "", name, change, WriteOptions(field_manager=MANAGER), subresource="status"
    )
    return available_condition(written)


# -- availability, kept current ---------------------------------------------------------------


async def keep_available(store: ObjectStore) -> None:
    """Keep every local APIService's Available condition current, until cancelled (a
    supervised task)."""
    resource = apiservice_resource(store.registry)
    if resource is None:
        return
    changed = asyncio.Event()
    apiservices = ObjectCache(store, resource)
    apiservices.subscribe(lambda _: changed.set())
    try:
        await apiservices.start()
        while True:
            changed.clear()
            if await refresh_availability(store, resource, apiservices.objects()):
                await changed.wait()
            else:  # a write failed: again after a pause, or sooner if something changes
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), RETRY_DELAY)
    finally:
        await apiservices.stop()


async def refresh_availability(store: ObjectStore, resource: Resource, apiservices: Iterable[Obj]) -> bool:
    """One pass over the local ones of ``apiservices``; False when a write failed and the pass
    should be retried."""
    ok = True
    for apiservice in apiservices:
        if service_ref(apiservice) is not None:
            continue
        name = apiservice["metadata"]["name"]
        try:
            written = await ensure_condition(store, resource, apiservice, lambda _: local_condition())
        except errors.ApiError as exc:
            if exc.code == 404:
                continue  # deleted meanwhile; the cache will drop it
            log.warning("Could not update APIService %s status: %s", name, exc)
            ok = False
            continue
        if written is not None:
            log.info("APIService %s: Available=%s (%s)", name, written.get("status"), written.get("reason"))
    return ok
