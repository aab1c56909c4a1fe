"""The server flow in-process: ``serve`` with a real store, and the health endpoints' answers."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from k3py.aio import Gate, StopRequest
from k3py.config import load_server_config
from k3py.server import ServerError, serve
from k3py.server.health import PING, HealthCheck, health_routes
from k3py.storage import StoreUnavailable


async def get(url: str) -> tuple[int, str]:
    # The health endpoints answer anyone; the server's certificate is not what these tests check.
    async with aiohttp.ClientSession() as session, session.get(url, ssl=False) as response:
        return response.status, await response.text()


async def broken() -> None:
    raise RuntimeError("disk on fire")


async def test_failing_check_turns_endpoints_red(free_port: int, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="k3py.server.health")
    app = web.Application()
    app.add_routes(health_routes([PING, HealthCheck("etcd", broken, frozenset({"readyz"}))]))
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", free_port).start()
    base = f"http://127.0.0.1:{free_port}"
    try:
        assert await get(f"{base}/livez") == (200, "ok")  # etcd is a readyz-only check here
        status, body = await get(f"{base}/readyz")
        assert status == 500
        assert body.splitlines() == ["[+]ping ok", "[-]etcd failed: reason withheld", "readyz check failed"]
        assert "disk on fire" not in body
        assert "readyz check etcd failed: disk on fire" in caplog.text
        assert await get(f"{base}/readyz?exclude=etcd") == (200, "ok")
        status, body = await get(f"{base}/readyz?exclude=etcd&verbose")
        assert body.splitlines() == ["[+]ping ok", "[+]etcd excluded: ok", "readyz check passed"]
        assert (await get(f"{base}/readyz?exclude=nope"))[0] == 400
        assert (await get(f"{base}/readyz/etcd"))[0] == 500
        assert await get(f"{base}/readyz/ping") == (200, "ok")
    finally:
        await runner.cleanup()


async def test_serve_runs_until_stopped(tmp_path: Path, free_port: int) -> None:
    config = load_server_config(
        {
            "config": "/dev/null",
            "data-dir": str(tmp_path),
            "bind-address": "127.0.0.1",
            "https-listen-port": str(free_port),
            "datastore-compact-interval": "0",
            "write-kubeconfig": str(tmp_path / "k3py.yaml"),
            "disable-agent": "true",
        },
        {},
    )
    stop, ready = StopRequest(), Gate("ready")
    server = asyncio.create_task(serve(config, stop, ready))
    try:
        await asyncio.wait_for(ready.wait(), timeout=10)
        assert await get(f"https://127.0.0.1:{free_port}/readyz?verbose") == (
            200,
            "[+]ping ok\n[+]etcd ok\n[+]shutdown ok\nreadyz check passed\n",
        )
    finally:
        stop.set()
        await asyncio.wait_for(server, timeout=10)
    assert not ready.is_open
    with pytest.raises(aiohttp.ClientConnectionError):
        await get(f"https://127.0.0.1:{free_port}/healthz")


async def test_serve_reports_a_corrupt_store(tmp_path: Path, free_port: int) -> None:
    db = tmp_path / "server" / "db" / "state.db"
    db.parent.mkdir(parents=True)
    db.write_bytes(b"\x00garbage" * 1000)
    config = load_server_config(
        {"config": "/dev/null", "data-dir": str(tmp_path), "https-listen-port": str(free_port)}, {}
    )
    with pytest.raises(StoreUnavailable, match=r"state\.db"):
        await serve(config, StopRequest())


async def test_data_dir_that_is_a_file(tmp_path: Path, free_port: int) -> None:
    (tmp_path / "data").write_text("not a directory")
    config = load_server_config(
        {"config": "/dev/null", "data-dir": str(tmp_path / "data"), "https-listen-port": str(free_port)}, {}
    )
    with pytest.raises(ServerError, match="data"):
        await serve(config, StopRequest())
