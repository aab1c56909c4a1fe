"""The agent's fatal errors, apart from the agent itself: the CLI maps them to exit codes
without importing the node's modules (a server started with ``--disable-agent`` never loads
them)."""

from __future__ import annotations


class AgentError(Exception):
    """The node cannot run: its container runtime does not answer, or a step of its start failed."""


class AirgapError(Exception):
    """An archive cannot be imported: the message names the archive and the reason."""


class ContainerdError(Exception):
    """containerd cannot be found, configured or started: the message says what to do."""


class JoinError(Exception):
    """The node could not join: the message says why and what to check."""


class NetworkError(RuntimeError):
    """The node's network could not be set up (a command failed, a bad setting)."""
