"""Named errors of the upstream suite's build; ``tasks.py`` shows their message and exits with their code.

They extend :class:`build.errors.BuildError`, so whoever already turns build errors into one-line
messages and exit codes (``invoke build``) handles these the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from build.errors import BuildError, HostNotReady


class UpstreamError(BuildError):
    """The upstream conformance suite or its images cannot be built; the message says why."""


class GoNotFound(HostNotReady):
    """No ``go`` on PATH nor in /usr/local/go/bin."""


class GoTooOld(HostNotReady):
    """Go is older than the ``go`` line of Kubernetes' go.mod (and GOTOOLCHAIN=local forbids an upgrade)."""


class VersionNotFound(UpstreamError):
    """The module proxy offers no Kubernetes release matching the request."""


class ModuleLayoutChanged(UpstreamError):
    """Kubernetes' go.mod no longer has the shape the rewrite expects (staging replaces, v0.0.0 requires)."""


class StepFailed(UpstreamError):
    """A command of one build step failed; ``tail`` is the end of its output, the whole is in ``log``."""

    def __init__(self, step: str, message: str, *, log: Path, tail: Sequence[str] = ()) -> None:
        super().__init__(f"{step} failed: {message} (full log: {log})")
        self.step = step
        self.log = log
        self.tail = tuple(tail)


class SuiteNotBuilt(UpstreamError):
    """An operation needs e2e.test but the cache holds no valid build of it."""


class PackageMissing(UpstreamError):
    """A Debian package (or a file or library it should hold) is not available for the target architecture."""
