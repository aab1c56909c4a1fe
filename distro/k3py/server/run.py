"""The ``k3py server`` flow: one asyncio loop from start to clean shutdown.

Start-up is sequential and each step fails with a named error: prepare the data
directory → open the datastore → listen for HTTP (health endpoints for now; the API
server, controllers and scheduler join here as supervised tasks) → open the ``ready``
gate. The flow then waits for a stop request (SIGINT/SIGTERM, or a crashed critical task)
and unwinds in reverse: stop listening, cancel tasks with a bounded grace, close the store.
"""

from __future__ import annotations

import asyncio
import logging
import platform
from contextlib import AsyncExitStack

from k3py import __version__
from k3py.aio import Gate, StopRequest, Supervisor, stop_on_signals
from k3py.config import ServerConfig
from k3py.server.datastore import StoreHandle, open_datastore, prepare_data_dir
from k3py.server.health import PING, HealthCheck
from k3py.server.listener import Listener

log = logging.getLogger(__name__)

SHUTDOWN_GRACE = 10.0
"""Seconds that supervised tasks get to finish after cancellation."""


def run_server(config: ServerConfig) -> None:
    """Run the server until SIGINT/SIGTERM; raise on a fatal error."""
    asyncio.run(_main(config))


async def _main(config: ServerConfig) -> None:
    stop = StopRequest()
    with stop_on_signals(stop):
        await serve(config, stop)


async def serve(config: ServerConfig, stop: StopRequest, ready: Gate | None = None) -> None:
    """Run the server until ``stop`` is set. ``ready`` opens once it answers requests."""
    ready = ready if ready is not None else Gate("ready")
    log.info(
        "Starting k3py v%s (python %s) on node %s", __version__, platform.python_version(), config.node_name
    )
    log.debug("Configuration: %r", config)
    async with AsyncExitStack() as cleanup:
        prepare_data_dir(config)
        store = await open_datastore(config)
        cleanup.push_async_callback(_close_store, store)

        tasks = Supervisor("server", grace=SHUTDOWN_GRACE, on_crash=lambda _: stop.set())
        cleanup.push_async_callback(tasks.shutdown)

        async def etcd() -> None:
            if store.current_revision < 1:
                raise RuntimeError(f"datastore reports revision {store.current_revision}")

        async def shutdown() -> None:
            if stop.is_set:
                raise RuntimeError("server is shutting down")

        checks = (
            PING,
            HealthCheck("etcd", etcd),
            HealthCheck("shutdown", shutdown, endpoints=frozenset({"readyz"})),
        )
        listener = Listener(config.bind_address, config.https_listen_port, checks, access_log=config.debug)
        await listener.start()
        cleanup.push_async_callback(listener.stop)

        _log_missing_components(config)
        ready.open()
        log.info("k3py server is up at %s (revision %d)", config.listen_url, store.current_revision)
        await stop.wait()
        ready.close()
    if tasks.failure is not None:
        raise tasks.failure
    log.info("k3py server stopped")


async def _close_store(store: StoreHandle) -> None:
    await store.close()
    log.info("Datastore closed")


def _log_missing_components(config: ServerConfig) -> None:
    """Say plainly what this version does not do yet, instead of pretending."""
    if config.disable_agent:
        log.info("Embedded agent disabled (--disable-agent)")
    else:
        log.warning("The embedded agent is not implemented yet: this node runs no pods")
    log.info(
        "Not writing a kubeconfig to %s yet: it arrives with the API server",
        config.write_kubeconfig,
    )
    if config.disable:
        log.debug("Disabled components: %s", ", ".join(sorted(config.disable)))
