"""Named build errors; ``tasks.py`` turns them into one-line messages and exit codes."""

from __future__ import annotations


class BuildError(Exception):
    """Base class: the build cannot go on. The message says what went wrong and what to do."""

    exit_code = 1


class HostNotReady(BuildError):
    """The host lacks a tool or a kernel feature the build needs (fix: ``invoke deps``)."""

    exit_code = 2
