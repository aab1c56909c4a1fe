"""The server's HTTPS listener: one aiohttp application on ``--bind-address:--https-listen-port``.

It serves whatever application it is given (the API server with the health endpoints),
over TLS when given an SSL context, and on a local Unix socket when given its path: the
socket the components inside the server process use, in a directory only its owner may
enter. A port or socket that cannot be bound becomes a ``ServerError`` with the address
and the reason.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import ssl
from pathlib import Path
from typing import Any

from aiohttp import web

from k3py.config import IPAddress
from k3py.server.errors import ServerError

log = logging.getLogger(__name__)

STOP_TIMEOUT = 5.0
"""Seconds that in-flight requests get to finish when the server stops."""


class Listener:
    """Owns the aiohttp runner and site; ``start`` binds, ``stop`` drains and closes."""

    def __init__(
        self,
        host: IPAddress,
        port: int,
        app: web.Application,
        *,
        ssl_context: ssl.SSLContext | None = None,
        local_socket: Path | None = None,
        access_log: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.local_socket = local_socket
        self._ssl = ssl_context
        kwargs: dict[str, Any] = {} if access_log else {"access_log": None}
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=STOP_TIMEOUT, **kwargs)
        self._started = False

    @property
    def address(self) -> str:
        shown = f"[{self.host}]" if self.host.version == 6 else str(self.host)
        return f"{shown}:{self.port}"

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, str(self.host), self.port, ssl_context=self._ssl)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            raise ServerError(f"cannot listen on {self.address}: {_describe(exc)}") from None
        self._started = True
        log.info("Listening on %s://%s", "https" if self._ssl else "http", self.address)
        if self.local_socket is not None:
            try:
                await self._listen_locally(self.local_socket)
            except OSError as exc:
                await self.stop()
                raise ServerError(f"cannot listen on {self.local_socket}: {exc.strerror or exc}") from None

    async def _listen_locally(self, path: Path) -> None:
        await asyncio.to_thread(_private_dir, path.parent)
        await web.UnixSite(self._runner, str(path)).start()  # replaces a socket left by a crash
        await asyncio.to_thread(path.chmod, 0o600)
        log.debug("Listening on %s", path)

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        await self._runner.cleanup()
        if self.local_socket is not None:
            self.local_socket.unlink(missing_ok=True)
        log.info("Stopped listening on %s", self.address)


def _private_dir(directory: Path) -> None:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)


def _describe(exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return "address already in use (is another k3py server running? choose another --https-listen-port)"
    if exc.errno == errno.EACCES:
        return "permission denied (ports below 1024 need root)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return "address not available on this host (check --bind-address)"
    return exc.strerror or str(exc)
