"""What every controller shares: a queue of keys, informers, and workers that call ``sync(key)``.

A controller subclasses :class:`Controller`, creates its informers in ``__init__`` (their
handlers enqueue keys), and implements ``sync``. ``run`` starts the informers, waits for their
first lists, then runs ``workers`` workers until cancelled. A ``sync`` that raises is logged and
retried with back-off; one that succeeds resets the key's back-off.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from k3py.client.informer import Handler, Informer, SharedInformers
from k3py.client.rest import RestClient
from k3py.controllers.queue import ShutDown, WorkQueue

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Key = tuple[str, str]
"""(namespace, name); namespace ``""`` for cluster-scoped objects."""


def key_of(obj: Obj) -> Key:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


class Controller:
    name = "controller"
    identity = ""
    """The kube-system service account upstream's controller runs as (``deployment-controller``)."""
    workers = 1

    def __init__(self, api: RestClient, informers: SharedInformers | None = None) -> None:
        self.api = api
        self.shared = informers if informers is not None else SharedInformers(api)
        """Where this controller's informers come from: the controller manager's, shared by all
        its controllers (whose cached objects none may modify), or one of its own."""
        self.queue: WorkQueue[Key] = WorkQueue()
        self.informers: list[Informer] = []
        self._handlers: list[tuple[Informer, Handler]] = []

    def informer(self, path: str, **selectors: str) -> Informer:
        """An informer this controller starts and waits for (``field_selector=``, ``label_selector=``)."""
        found = self.shared.informer(path, **selectors)
        if found not in self.informers:
            self.informers.append(found)
        return found

    def on(self, informer: Informer, handler: Handler) -> None:
        """Call ``handler`` on the informer's changes while this controller exists; when ``run``
        ends the handler goes (the informers are shared and outlive a leadership term)."""
        informer.add_handler(handler)
        self._handlers.append((informer, handler))

    def enqueue(self, obj: Obj | None) -> None:
        if obj is not None:
            self.queue.add(key_of(obj))

    async def sync(self, key: Key) -> None:
        raise NotImplementedError

    async def run(self) -> None:
        tasks = [asyncio.create_task(i.run(), name=f"{self.name}:{i.path}") for i in self.informers]
        try:
            for informer in self.informers:
                await informer.synced()
            log.info("%s: caches synced", self.name)
            await asyncio.gather(*(self._work() for _ in range(self.workers)))
        finally:
            for task in tasks:
                task.cancel()
            for informer, handler in self._handlers:
                informer.remove_handler(handler)
            await self.queue.shut_down()

    async def _work(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except ShutDown:
                return
            try:
                await self.sync(key)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                retries = self.queue.retries(key)
                level = logging.WARNING if retries < 5 else logging.DEBUG
                log.log(
                    level,
                    "%s: syncing %s/%s failed: %s",
                    self.name,
                    key[0],
                    key[1],
                    exc,
                    exc_info=retries == 0,
                )
                self.queue.add_rate_limited(key)
            else:
                self.queue.forget(key)
            finally:
                self.queue.done(key)
