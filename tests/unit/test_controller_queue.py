"""The controllers' work queue: de-duplication, no concurrent processing of a key, back-off."""

from __future__ import annotations

import asyncio

import pytest

from k3py.controllers.queue import ShutDown, WorkQueue


async def test_a_key_is_queued_once_and_requeued_if_added_while_processing() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    queue.add("a")
    queue.add("b")
    assert len(queue) == 2
    key = await queue.get()
    assert key == "a"
    queue.add("a")  # while it is processed: not handed out again until done
    assert await queue.get() == "b"
    assert len(queue) == 0
    queue.done("a")
    assert await queue.get() == "a"


async def test_rate_limited_retries_back_off_and_forget_resets() -> None:
    queue: WorkQueue[str] = WorkQueue(base_delay=0.01)
    loop = asyncio.get_running_loop()
    for expected in (0.01, 0.02, 0.04):
        started = loop.time()
        queue.add_rate_limited("k")
        assert await asyncio.wait_for(queue.get(), 1) == "k"
        queue.done("k")
        assert loop.time() - started >= expected * 0.9
    assert queue.retries("k") == 3
    queue.forget("k")
    assert queue.retries("k") == 0


async def test_shut_down_releases_waiting_workers() -> None:
    queue: WorkQueue[str] = WorkQueue()
    waiter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    await queue.shut_down()
    with pytest.raises(ShutDown):
        await waiter
