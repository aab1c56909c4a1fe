"""Supervised, named asyncio tasks: no fire-and-forget coroutines anywhere in k3py.

A :class:`Supervisor` owns every long-lived task of one flow. ``spawn`` names the task and
watches it: a crash is logged with its traceback and, for a critical task, recorded and
signalled through :meth:`Supervisor.wait_failed` and the ``on_crash`` callback, so the
flow can shut down instead of limping on. ``shutdown`` cancels every task still running
and waits at most ``grace`` seconds; stragglers are named in the log, never waited on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Self

log = logging.getLogger(__name__)


class TaskCrashed(Exception):
    """A critical supervised task ended with an exception (kept as ``__cause__``)."""

    def __init__(self, name: str, error: BaseException) -> None:
        super().__init__(f"task {name!r} crashed: {error!r}")
        self.name = name
        self.error = error


class Supervisor:
    """Creates named tasks, logs how they end and cancels them all on shutdown."""

    def __init__(
        self,
        name: str,
        *,
        grace: float = 10.0,
        on_crash: Callable[[TaskCrashed], None] | None = None,
    ) -> None:
        self.name = name
        self.grace = grace
        self._on_crash = on_crash
        self._tasks: dict[asyncio.Task[Any], bool] = {}
        self._failed = asyncio.Event()
        self._failure: TaskCrashed | None = None
        self._closing = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown()

    @property
    def failure(self) -> TaskCrashed | None:
        """The first crash of a critical task, if any."""
        return self._failure

    @property
    def running(self) -> list[str]:
        """Names of the tasks that have not finished yet."""
        return sorted(task.get_name() for task in self._tasks if not task.done())

    def spawn(self, name: str, coro: Coroutine[Any, Any, Any], *, critical: bool = True) -> asyncio.Task[Any]:
        """Start ``coro`` as a task called ``<supervisor>/<name>`` and supervise it.

        A critical task that raises makes :meth:`wait_failed` return; a non-critical one is
        only logged.
        """
        if self._closing:
            coro.close()
            raise RuntimeError(f"supervisor {self.name!r} is shutting down; cannot start {name!r}")
        task = asyncio.create_task(coro, name=f"{self.name}/{name}")
        self._tasks[task] = critical
        task.add_done_callback(self._on_done)
        log.debug("Started task %s", task.get_name())
        return task

    def _on_done(self, task: asyncio.Task[Any]) -> None:
        critical = self._tasks.get(task, False)
        if task.cancelled():
            log.debug("Task %s cancelled", task.get_name())
            return
        error = task.exception()
        if error is None:
            log.debug("Task %s finished", task.get_name())
            return
        log.error("Task %s crashed", task.get_name(), exc_info=error)
        if critical and self._failure is None and not self._closing:
            self._failure = TaskCrashed(task.get_name(), error)
            self._failure.__cause__ = error
            self._failed.set()
            if self._on_crash is not None:
                self._on_crash(self._failure)

    async def wait_failed(self) -> TaskCrashed:
        """Return once a critical task has crashed (the first crash)."""
        await self._failed.wait()
        assert self._failure is not None
        return self._failure

    async def shutdown(self) -> None:
        """Cancel every running task and wait for them, at most ``grace`` seconds."""
        self._closing = True
        pending = [task for task in self._tasks if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            _, stragglers = await asyncio.wait(pending, timeout=self.grace)
            if stragglers:
                names = ", ".join(sorted(task.get_name() for task in stragglers))
                log.warning("Tasks still running %.1fs after cancellation: %s", self.grace, names)
        self._tasks = {task: critical for task, critical in self._tasks.items() if not task.done()}
