"""The one choke point for running other programs.

Every external command k3py or its tooling runs goes through :func:`run` (wait for it) or
:func:`exec_replace` (become it). Commands are argument lists, never shell strings; each is
logged as ``+ cmd`` before it starts; a command that cannot be found or that fails raises a
named :class:`ProcessError` carrying what was run, so callers convert it at their edge.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

log = logging.getLogger(__name__)

Command = Sequence[str | os.PathLike[str]]


class ProcessError(Exception):
    """Base class: an external command could not be run or did not succeed."""

    def __init__(self, message: str, command: Sequence[str]) -> None:
        super().__init__(message)
        self.command = tuple(command)


class CommandNotFound(ProcessError):
    """The program is not on PATH (or the given path does not exist)."""

    def __init__(self, command: Sequence[str]) -> None:
        super().__init__(f"command not found: {command[0]}", command)


class CommandFailed(ProcessError):
    """The program ran and exited non-zero (or was killed by a signal)."""

    def __init__(self, command: Sequence[str], returncode: int, stderr: str = "") -> None:
        detail = stderr.strip().splitlines()[-1] if stderr.strip() else ""
        message = f"command failed with exit code {returncode}: {shlex.join(command)}"
        super().__init__(f"{message}: {detail}" if detail else message, command)
        self.returncode = returncode
        self.stderr = stderr


@dataclass(frozen=True, slots=True)
class Completed:
    """What a finished command left behind (output only when it was captured)."""

    command: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


def which(program: str, *, path: str | None = None, extra_dirs: Sequence[Path] = ()) -> Path | None:
    """Find ``program`` on ``path`` (default $PATH), then in ``extra_dirs``; None if nowhere."""
    found = shutil.which(program, path=path)
    if found is not None:
        return Path(found)
    for directory in extra_dirs:
        candidate = directory / program
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def run(
    command: Command,
    *,
    check: bool = True,
    capture: bool = False,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    quiet: bool = False,
) -> Completed:
    """Run ``command`` to completion.

    Output goes to this process's stdout/stderr unless ``capture`` is set. With ``check``
    (the default) a non-zero exit raises :class:`CommandFailed`. ``quiet`` logs the
    ``+ cmd`` line at DEBUG instead of INFO, for probes that run on every invocation.
    """
    args = [os.fspath(part) for part in command]
    log.log(logging.DEBUG if quiet else logging.INFO, "+ %s", shlex.join(args))
    try:
        result = subprocess.run(
            args,
            check=False,
            capture_output=capture,
            text=True,
            env=dict(env) if env is not None else None,
            cwd=cwd,
        )
    except FileNotFoundError as exc:
        raise CommandNotFound(args) from exc
    except PermissionError as exc:
        raise ProcessError(f"cannot execute {args[0]}: permission denied", args) from exc
    completed = Completed(
        command=tuple(args),
        returncode=result.returncode,
        stdout=result.stdout or "",
        stderr=result.stderr or "",
    )
    if check and result.returncode != 0:
        raise CommandFailed(args, result.returncode, completed.stderr)
    return completed


def exec_replace(command: Command, *, env: Mapping[str, str] | None = None) -> NoReturn:
    """Replace this process with ``command`` (for wrappers such as ``k3py kubectl``)."""
    args = [os.fspath(part) for part in command]
    log.debug("+ exec %s", shlex.join(args))
    try:
        os.execve(args[0], args, dict(env) if env is not None else dict(os.environ))
    except FileNotFoundError as exc:
        raise CommandNotFound(args) from exc
    except OSError as exc:
        raise ProcessError(f"cannot execute {args[0]}: {exc.strerror}", args) from exc
