"""Fatal CLI errors and the one place where any fatal error becomes an exit code.

Lower layers raise their own named errors (``ConfigError``, ``StorageError``,
``ServerError``, ``ProcessError``...); :func:`exit_status` maps each to an exit code and a
one-line message. ``main()`` prints the message and calls ``sys.exit`` with the code.
"""

from __future__ import annotations

from dataclasses import dataclass

from k3py.agent.errors import AgentError, AirgapError, ContainerdError, JoinError, NetworkError
from k3py.aio import TaskCrashed
from k3py.config import ConfigError
from k3py.payload import PayloadError
from k3py.server import ServerError
from k3py.storage import StorageError
from k3py.util.proc import ProcessError

EXIT_FAILURE = 1
EXIT_USAGE = 2


class CLIError(Exception):
    """A fatal error of the ``k3py`` command, with the exit code it should produce."""

    exit_code = EXIT_FAILURE


class UsageError(CLIError):
    """Bad command line: unknown flag, missing value, unknown subcommand."""

    exit_code = EXIT_USAGE


@dataclass(frozen=True, slots=True)
class ExitStatus:
    code: int
    message: str


_RUNTIME_ERRORS: tuple[type[Exception], ...] = (
    AgentError,
    AirgapError,
    ContainerdError,
    JoinError,
    NetworkError,
    PayloadError,
    ProcessError,
    ServerError,
    StorageError,
    TaskCrashed,
)


def exit_status(error: Exception) -> ExitStatus | None:
    """The exit code and one-line message for a fatal error; None for a bug (re-raise it)."""
    if isinstance(error, CLIError):
        return ExitStatus(error.exit_code, _one_line(error))
    if isinstance(error, ConfigError):
        return ExitStatus(EXIT_USAGE, _one_line(error))
    if isinstance(error, _RUNTIME_ERRORS):
        return ExitStatus(EXIT_FAILURE, _one_line(error))
    return None


def _one_line(error: Exception) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__
