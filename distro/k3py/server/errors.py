"""Errors that stop ``k3py server`` from starting or running; the CLI exits 1 on them."""

from __future__ import annotations


class ServerError(Exception):
    """The server cannot start or keep running; the message says what to do."""
