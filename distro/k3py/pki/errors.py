"""The one error the PKI raises: what went wrong, and with which file.

Every failure to read, parse, trust or write a key, certificate or kubeconfig becomes a
:class:`PkiError` naming the path (when there is one) and the reason, so the CLI can print
it on one line and exit 1 without a traceback.
"""

from __future__ import annotations

from pathlib import Path


class PkiError(Exception):
    """A key, certificate or kubeconfig file could not be used or written."""

    def __init__(self, path: Path | None, reason: str) -> None:
        super().__init__(f"{path}: {reason}" if path is not None else reason)
        self.path = path
        self.reason = reason
