"""The asyncio kit: supervised tasks, readiness gates, stop signals."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

import pytest

from k3py.aio import Gate, Gates, StopRequest, Supervisor, TaskCrashed, stop_on_signals


async def crash(after: float = 0.0) -> None:
    await asyncio.sleep(after)
    raise ValueError("boom")


async def test_tasks_are_named_and_cancelled_on_exit() -> None:
    async with Supervisor("srv") as tasks:
        task = tasks.spawn("sleeper", asyncio.sleep(3600))
        await asyncio.sleep(0)
        assert task.get_name() == "srv/sleeper"
        assert tasks.running == ["srv/sleeper"]
    assert task.cancelled()
    assert tasks.running == []


async def test_critical_crash_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    crashes: list[TaskCrashed] = []
    async with Supervisor("srv", on_crash=crashes.append) as tasks:
        tasks.spawn("worker", crash())
        failure = await asyncio.wait_for(tasks.wait_failed(), timeout=5)
    assert failure.name == "srv/worker"
    assert isinstance(failure.error, ValueError)
    assert crashes == [failure]
    assert tasks.failure is failure
    assert "Task srv/worker crashed" in caplog.text


async def test_non_critical_crash_is_only_logged(caplog: pytest.LogCaptureFixture) -> None:
    async with Supervisor("srv") as tasks:
        task = tasks.spawn("optional", crash(), critical=False)
        await asyncio.wait([task])
        await asyncio.sleep(0)
    assert tasks.failure is None
    assert "Task srv/optional crashed" in caplog.text


async def stubborn(started: asyncio.Event) -> None:
    started.set()
    while True:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await asyncio.sleep(0.3)  # ignores the first cancellation for a while
            return


async def test_shutdown_grace_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    started = asyncio.Event()
    tasks = Supervisor("srv", grace=0.05)
    task = tasks.spawn("stubborn", stubborn(started))
    await started.wait()
    loop = asyncio.get_running_loop()
    begin = loop.time()
    await tasks.shutdown()
    assert loop.time() - begin < 0.25
    assert "srv/stubborn" in caplog.text
    await task  # let it finish so the test leaves nothing behind


async def test_spawn_after_shutdown_is_refused() -> None:
    tasks = Supervisor("srv")
    await tasks.shutdown()
    with pytest.raises(RuntimeError, match="shutting down"):
        tasks.spawn("late", asyncio.sleep(0))


async def test_gate_opens_waiters() -> None:
    gate = Gate("datastore")
    waiter = asyncio.create_task(gate.wait())
    await asyncio.sleep(0)
    assert not waiter.done()
    assert repr(gate) == "Gate('datastore', closed)"
    gate.open()
    await asyncio.wait_for(waiter, timeout=1)
    assert repr(gate) == "Gate('datastore', open)"
    gate.close()
    assert repr(gate) == "Gate('datastore', closed)"


async def test_gates_are_named_and_ordered() -> None:
    gates = Gates("datastore", "apiserver")
    gates["datastore"].open()
    assert [gate.name for gate in gates] == ["datastore", "apiserver"]
    assert len(gates) == 2
    assert [gate.is_open for gate in gates] == [True, False]
    gates["apiserver"].open()
    assert gates.all_open
    with pytest.raises(ValueError, match="declared twice"):
        gates.add("datastore")


async def test_sigterm_sets_the_stop_request() -> None:
    stop = StopRequest()
    with stop_on_signals(stop, [signal.SIGUSR1]):
        os.kill(os.getpid(), signal.SIGUSR1)
        await asyncio.wait_for(stop.wait(), timeout=5)
    assert stop.signum is signal.SIGUSR1


async def test_stop_request_set_by_code_keeps_first_reason() -> None:
    stop = StopRequest()
    stop.set()
    stop.set(signal.SIGTERM)
    assert stop.is_set and stop.signum is None
