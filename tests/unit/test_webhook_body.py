"""Reading a webhook's answer whole, however the server sends it (a real loopback server)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from k3py.apiserver.webhook_client import read_at_most

BODY = b'{"kind": "ConversionReview", "padding": "' + b"x" * 5000 + b'"}'


async def _trickle(request: web.Request) -> web.StreamResponse:
    """The body in small pieces with pauses, as a busy webhook's answer arrives."""
    response = web.StreamResponse()
    await response.prepare(request)
    for start in range(0, len(BODY), 700):
        await response.write(BODY[start : start + 700])
        await asyncio.sleep(0.01)
    await response.write_eof()
    return response


@pytest.fixture
async def url() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/", _trickle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        await runner.cleanup()


async def test_an_answer_sent_in_pieces_is_read_whole(url: str) -> None:
    async with aiohttp.ClientSession() as session, session.post(url) as answer:
        assert await read_at_most(answer.content, 1 << 20) == BODY


async def test_a_longer_answer_is_cut_at_the_limit(url: str) -> None:
    async with aiohttp.ClientSession() as session, session.post(url) as answer:
        assert await read_at_most(answer.content, 2000) == BODY[:2000]
