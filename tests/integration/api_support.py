"""Helpers for tests that drive a live ``k3py server`` through the client: the server with the
components a test runs itself turned off, an admin client, controllers run in the test's loop,
the API server in-process over a store, and waiting."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from k3py.apiserver.app import build_app
from k3py.apiserver.authz import Authorizer
from k3py.apiserver.generic import ObjectStore, WriteOptions
from k3py.apiserver.webhooks import WebhookAdmission
from k3py.client.rest import ApiStatusError, Credentials, Kubeconfig, RestClient
from tests.e2e.cluster import Cluster, start, stop


@contextlib.contextmanager
def server(base: Path, *flags: str) -> Iterator[Cluster]:
    """A ``k3py server`` without its agent (``flags`` turn off more, e.g. ``--disable-scheduler``
    when the test runs the scheduler itself), stopped when the block ends."""
    started = start(base, *flags)
    try:
        yield started
    finally:
        stop(started)


@contextlib.asynccontextmanager
async def served(store: ObjectStore, *routes: web.RouteDef) -> AsyncIterator[str]:
    """The API server in-process over ``store`` (with ``routes`` besides its own) on
    127.0.0.1, plain HTTP and no authentication; its URL."""
    app = TestServer(build_app(store, routes), host="127.0.0.1")
    await app.start_server()
    try:
        yield str(app.make_url("")).rstrip("/")
    finally:
        await app.close()


@contextlib.asynccontextmanager
async def served_client(store: ObjectStore) -> AsyncIterator[RestClient]:
    """A client of :func:`served`."""
    async with served(store) as url, RestClient(url, Credentials()) as client:
        yield client


@contextlib.asynccontextmanager
async def webhook_admission(
    store: ObjectStore, authorize: Authorizer | None = None
) -> AsyncIterator[WebhookAdmission]:
    """Admission webhooks in ``store``'s admission chain, following their configurations."""
    webhooks = WebhookAdmission(store, authorize)
    await webhooks.start()
    store.admission += [webhooks.mutating, webhooks.validating]
    try:
        yield webhooks
    finally:
        await webhooks.close()


async def create_namespaces(store: ObjectStore, *names: str) -> None:
    namespaces = store.registry.lookup("", "v1", "namespaces")
    assert namespaces is not None
    for name in names:
        await store.create(namespaces, "", {"metadata": {"name": name}}, WriteOptions())


@contextlib.asynccontextmanager
async def admin_api(cluster: Cluster, namespace: str = "default") -> AsyncIterator[RestClient]:
    """The cluster's admin client, once ``namespace`` has its default service account (the
    server's bootstrap is done by then)."""
    config = Kubeconfig.load(cluster.kubeconfig)
    async with RestClient(config.server, config.credentials) as client:
        await until(lambda: exists(client, f"/api/v1/namespaces/{namespace}/serviceaccounts/default"))
        yield client
    await asyncio.sleep(0.25)  # let the TLS connections finish closing on this loop


class Runnable(Protocol):
    """A controller or the scheduler: it runs until cancelled."""

    name: str

    def run(self) -> Coroutine[Any, Any, None]: ...


@contextlib.asynccontextmanager
async def running(*components: Runnable) -> AsyncIterator[None]:
    """The components run as tasks of the test's loop until the block ends."""
    tasks = [asyncio.create_task(c.run(), name=f"test-{c.name}") for c in components]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def until(check: Callable[[], Awaitable[bool]], within: float = 30.0) -> None:
    """Wait until ``check()`` holds; fail the test after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {within}s")
        await asyncio.sleep(0.1)


async def exists(api: RestClient, path: str) -> bool:
    """Whether ``path`` names an object (404: it does not)."""
    try:
        await api.get(path)
    except ApiStatusError as exc:
        if exc.code == 404:
            return False
        raise
    return True
