"""Progress of the upstream build on a rich console: one status line per step, the log kept aside.

``with steps.step("build e2e.test"):`` shows a spinner with the step's title and the latest line
its commands printed (``go: downloading …``); the lines themselves go to the build log only.
When the step ends the console keeps one line: ``✓ build e2e.test  2m31s`` (with a note, such as
``cached``), or ``✗`` and the last lines of the log, so a failure can be read without opening it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.status import Status

from build.runner import CommandFailed, CommandLog, QuietSink
from conformance.upstream.errors import StepFailed

TAIL_LINES = 25
SHOWN_WIDTH = 100


class StatusSink:
    """A :class:`build.runner.Sink` that shows the latest command or output line in a rich status."""

    def __init__(self, status: Status, title: str) -> None:
        self.status = status
        self.title = title

    def command(self, line: str) -> None:
        self._show(line)

    def output(self, line: str) -> None:
        if line.strip():
            self._show(line)

    def _show(self, line: str) -> None:
        shown = line.strip()
        if len(shown) > SHOWN_WIDTH:
            shown = shown[: SHOWN_WIDTH - 1] + "…"
        self.status.update(f"[bold]{escape(self.title)}[/] [dim]{escape(shown)}[/]")


@dataclass
class StepNote:
    """What a step wants shown beside its ✓ (``cached``, ``v1.37.2``, a size)."""

    text: str = ""


@dataclass
class Steps:
    """Runs the steps of one build against one log, timing each (``seconds`` by title)."""

    console: Console
    log: CommandLog
    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def step(self, title: str) -> Iterator[StepNote]:
        """Show ``title`` while the block runs; a failed command becomes :class:`StepFailed`."""
        note = StepNote()
        started = time.monotonic()
        self.log.note(f"step: {title}")
        try:
            with self.console.status(f"[bold]{escape(title)}[/]") as status:
                self.log.sink = StatusSink(status, title)
                try:
                    yield note
                finally:
                    self.log.sink = QuietSink()
        except CommandFailed as exc:
            self._failed(title, started, with_tail=True)
            raise StepFailed(
                title,
                f"exit code {exc.returncode} from {exc.command[0]}",
                log=self.log.path,
                tail=log_tail(self.log.path),
            ) from exc
        except BaseException:
            self._failed(title, started, with_tail=False)
            raise
        self.seconds[title] = round(time.monotonic() - started, 2)
        extra = f"  [dim]{escape(note.text)}[/]" if note.text else ""
        self.console.print(f"[green]✓[/] {escape(title)}  [dim]{_duration(self.seconds[title])}[/]{extra}")

    def _failed(self, title: str, started: float, *, with_tail: bool) -> None:
        """The ✗ line; after a failed command, the end of the log (the command's output)."""
        self.console.print(f"[red]✗[/] {escape(title)}  [dim]{_duration(time.monotonic() - started)}[/]")
        tail = log_tail(self.log.path) if with_tail else []
        if tail:
            self.console.print(f"[dim]last lines of {self.log.path}:[/]")
            for line in tail:
                self.console.print(f"  {escape(line)}", style="dim", soft_wrap=True)


def log_tail(path: Path, lines: int = TAIL_LINES) -> list[str]:
    """The last ``lines`` lines of a log file (empty if there is none)."""
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            return [line.rstrip("\n") for line in deque(f, maxlen=lines)]
    except OSError:
        return []


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s"
