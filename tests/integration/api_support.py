"""Helpers for tests that drive a live API server through the client: waiting and existence."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from k3py.client.rest import ApiStatusError, RestClient


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
