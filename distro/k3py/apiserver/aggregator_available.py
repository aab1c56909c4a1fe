"""The availability of remote APIServices, checked by calling their backends, as
kube-aggregator's remote availability controller does.

For an APIService that names a Service, :func:`k3py.api.apiregistration.static_availability`
first rules on what needs no call (Service missing, port missing, no EndpointSlices, no ready
endpoint). Otherwise the backend is probed: ``GET /apis/<group>/<version>`` at a ready endpoint
(chosen afresh for each of :data:`ATTEMPTS` concurrent attempts), over the proxy's TLS, as
``system:kube-aggregator`` in ``system:masters`` (request headers), within :data:`TIMEOUT`
seconds. Any 2xx answer makes it ``Available`` (``Passed``, ``all checks passed``); when every
attempt fails, ``FailedDiscoveryCheck`` carries the last error. The APIResourceList a 2xx
answer holds is handed to :meth:`Aggregator.record_discovery` for the ``/apis`` documents
(upstream's discovery manager reads the same legacy document when a backend has no aggregated
discovery).

An APIService is checked again when it changes, when its Service or EndpointSlices change,
when a proxied request could not reach its backend, and every :data:`RECHECK_PERIOD` seconds.
The condition is written through the status subresource only when it differs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from typing import Any

import aiohttp
import orjson

from k3py.api.apiregistration import (
    discovery_path,
    failed_discovery_condition,
    passed_condition,
    service_ref,
    static_availability,
)
from k3py.api.resources import Resource
from k3py.apiserver import discovery, errors
from k3py.apiserver.aggregator import Aggregator, describe
from k3py.apiserver.aggregator_routing import Unroutable, authority, identity_headers
from k3py.apiserver.apiservices import apiservice_resource, ensure_condition
from k3py.apiserver.authn import MASTERS, User
from k3py.apiserver.webhook_client import read_at_most
from k3py.storage import StorageError

log = logging.getLogger(__name__)

Obj = dict[str, Any]

ATTEMPTS = 5
TIMEOUT = 5.0
RECHECK_PERIOD = 30.0
RETRY_DELAY = 1.0
BODY_LIMIT = 3 * 1024 * 1024
CHECKER = User("system:kube-aggregator", (MASTERS,))


class AvailabilityController:
    """Runs until cancelled (a supervised task); the aggregator must be started."""

    name = "apiservice-remote-availability"

    def __init__(self, aggregator: Aggregator, recheck_period: float = RECHECK_PERIOD) -> None:
        self.aggregator = aggregator
        self.recheck_period = recheck_period
        self._pending: set[str] = set()
        self._wake = asyncio.Event()

    def recheck(self, name: str) -> None:
        self._pending.add(name)
        self._wake.set()

    def _recheck_all(self) -> None:
        for obj in self.aggregator.remote_apiservices():
            self._pending.add(obj["metadata"]["name"])
        self._wake.set()

    def _service_changed(self, obj: Obj | None) -> None:
        if obj is None:
            return self._recheck_all()
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace")
        name = (meta.get("labels") or {}).get("kubernetes.io/service-name") or meta.get("name")
        for apiservice in self.aggregator.remote_apiservices():
            ref = service_ref(apiservice)
            if ref is not None and (ref.namespace, ref.name) == (namespace, name):
                self.recheck(apiservice["metadata"]["name"])
        return None

    async def run(self) -> None:
        resource = apiservice_resource(self.aggregator.store.registry)
        assert resource is not None
        agg = self.aggregator
        agg.apiservices.subscribe(
            lambda obj: self.recheck(obj["metadata"]["name"]) if obj is not None else self._recheck_all()
        )
        agg.services.subscribe(self._service_changed)
        agg.slices.subscribe(self._service_changed)
        agg.on_unreachable(self.recheck)
        self._recheck_all()
        loop = asyncio.get_running_loop()
        next_full = loop.time() + self.recheck_period
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, next_full - loop.time()))
            self._wake.clear()
            if loop.time() >= next_full:
                self._recheck_all()
                self._wake.clear()
                next_full = loop.time() + self.recheck_period
            todo, self._pending = sorted(self._pending), set()
            results = await asyncio.gather(*(self._sync(resource, name) for name in todo))
            failed = [name for name, ok in zip(todo, results, strict=True) if not ok]
            if failed:
                await asyncio.sleep(RETRY_DELAY)
                for name in failed:
                    self.recheck(name)

    async def _sync(self, resource: Resource, name: str) -> bool:
        """Check one APIService and write its condition; False when the write should be retried."""
        apiservice = self.aggregator.apiservices.get("", name)
        if apiservice is None or service_ref(apiservice) is None:
            return True
        condition = await self.check(apiservice)
        try:
            written = await ensure_condition(self.aggregator.store, resource, apiservice, lambda _: condition)
        except errors.ApiError as exc:
            if exc.code == 404:
                return True
            log.warning("Could not update APIService %s status: %s", name, exc)
            return False
        except StorageError as exc:
            log.warning("Could not update APIService %s status: %s", name, exc)
            return False
        if written is not None:
            log.info(
                "APIService %s: Available=%s (%s: %s)",
                name,
                written.get("status"),
                written.get("reason"),
                written.get("message"),
            )
        return True

    async def check(self, apiservice: Obj) -> Obj:
        """The ``Available`` condition ``apiservice`` deserves now (module docstring)."""
        ref = service_ref(apiservice)
        assert ref is not None
        agg = self.aggregator
        static = static_availability(
            apiservice, agg.services.get(ref.namespace, ref.name), agg.slices_of(ref)
        )
        if static is not None:
            return static
        name = apiservice["metadata"]["name"]
        results = await asyncio.gather(*(self._probe(apiservice) for _ in range(ATTEMPTS)))
        for error, resources in results:
            if error is None:
                agg.record_discovery(name, resources)
                return passed_condition()
        agg.record_discovery(name, None)
        return failed_discovery_condition(next(e for e, _ in reversed(results) if e is not None))

    async def _probe(self, apiservice: Obj) -> tuple[str | None, tuple[Obj, ...] | None]:
        """One discovery call: (None, resources) on success, else (the error, None)."""
        ref = service_ref(apiservice)
        assert ref is not None
        try:
            context = self.aggregator.ssl_context(apiservice)
            host, port = self.aggregator.endpoint(ref)
        except (Unroutable, errors.ApiError) as exc:
            return str(exc), None
        url = f"https://{authority(host, port)}{discovery_path(apiservice)}"
        headers = [("Accept", "application/json"), *identity_headers(CHECKER)]
        try:
            async with asyncio.timeout(TIMEOUT):
                async with self.aggregator.session().get(
                    url,
                    headers=headers,
                    ssl=context,
                    server_hostname=ref.server_name,
                    allow_redirects=False,
                ) as answer:
                    body = await read_at_most(answer.content, BODY_LIMIT)
                    if not 200 <= answer.status < 300:
                        return f"bad status from {url}: {answer.status}", None
        except TimeoutError:
            return (
                f"failing or missing response from {url}: Get {_quote(url)}: context deadline exceeded",
                None,
            )
        except (aiohttp.ClientError, OSError, ssl.SSLError) as exc:
            return (
                f"failing or missing response from {url}: Get {_quote(url)}: {describe(exc, host, port)}",
                None,
            )
        return None, _resources(body)


def _resources(body: bytes) -> tuple[Obj, ...]:
    """The aggregated-form resources of an APIResourceList (none when it is not one)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ()
    if not isinstance(doc, dict) or doc.get("kind") != "APIResourceList":
        return ()
    return tuple(discovery.version_discovery(doc))


def _quote(url: str) -> str:
    return f'"{url}"'
