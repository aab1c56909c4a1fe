"""Process-wide logging for long-running commands, in K3s's terminal style.

Lines look like ``INFO[0003] Datastore sqlite:///var/lib/k3py/server/db/state.db open``:
a four-letter level and the seconds since start, then the message, on stderr. INFO is the
default level; ``--debug`` turns on DEBUG for k3py's own loggers only, so libraries stay
quiet unless they warn.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

_LEVEL_NAMES = {
    logging.DEBUG: "DEBU",
    logging.INFO: "INFO",
    logging.WARNING: "WARN",
    logging.ERROR: "ERRO",
    logging.CRITICAL: "FATA",
}
_HANDLER_NAME = "k3py"


class K3sStyleFormatter(logging.Formatter):
    """``LEVL[SSSS] message``, with the traceback indented below when there is one."""

    def __init__(self, started: float | None = None) -> None:
        super().__init__()
        self._started = time.monotonic() if started is None else started

    def format(self, record: logging.LogRecord) -> str:
        level = _LEVEL_NAMES.get(record.levelno, record.levelname[:4].upper())
        elapsed = max(0, int(time.monotonic() - self._started))
        line = f"{level}[{elapsed:04d}] {record.getMessage()}"
        if record.exc_info:
            trace = self.formatException(record.exc_info)
            line += "\n" + "\n".join(f"    {part}" for part in trace.splitlines())
        return line


def configure(*, debug: bool, stream: TextIO | None = None) -> None:
    """Send log records to ``stream`` (stderr) in K3s style; safe to call more than once."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == _HANDLER_NAME:
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(K3sStyleFormatter())
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("k3py").setLevel(logging.DEBUG if debug else logging.INFO)
    if debug:
        logging.getLogger("aiohttp.access").setLevel(logging.INFO)
