"""The health endpoints, answered the way kube-apiserver answers them.

``GET /healthz``, ``/livez`` and ``/readyz`` run the checks registered for that endpoint
and answer ``ok`` (200, plain text). With ``?verbose`` every check is listed as
``[+]name ok``; a failing check turns the answer into a 500 listing ``[-]name failed:
reason withheld`` (the reason goes to the log, not to anonymous callers). ``?exclude=name``
skips a check, and ``/readyz/name`` runs one check alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aiohttp import web

log = logging.getLogger(__name__)

ENDPOINTS = ("healthz", "livez", "readyz")
CHECK_TIMEOUT = 5.0

Probe = Callable[[], Awaitable[None]]
"""Returns if healthy; raises with the reason if not."""


@dataclass(frozen=True, slots=True)
class HealthCheck:
    name: str
    probe: Probe
    endpoints: frozenset[str] = frozenset(ENDPOINTS)


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None

    def line(self) -> str:
        return f"[+]{self.name} ok" if self.ok else f"[-]{self.name} failed: reason withheld"


async def _ping() -> None:
    return None


PING = HealthCheck("ping", _ping)


async def run_check(check: HealthCheck) -> CheckResult:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            await check.probe()
    except TimeoutError:
        return CheckResult(check.name, f"timed out after {CHECK_TIMEOUT:g}s")
    except Exception as exc:  # a failing probe is a result, not a crash
        return CheckResult(check.name, str(exc) or type(exc).__name__)
    return CheckResult(check.name, None)


def health_routes(checks: Sequence[HealthCheck]) -> list[web.RouteDef]:
    """Routes for the three endpoints and their per-check sub-paths."""
    routes: list[web.RouteDef] = []
    for endpoint in ENDPOINTS:
        selected = tuple(check for check in checks if endpoint in check.endpoints)
        routes.append(web.get(f"/{endpoint}", _endpoint_handler(endpoint, selected)))
        routes.append(web.get(f"/{endpoint}/{{check}}", _single_check_handler(endpoint, selected)))
    return routes


def _endpoint_handler(
    endpoint: str, checks: tuple[HealthCheck, ...]
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        excluded = set(request.query.getall("exclude", []))
        unknown = sorted(excluded - {check.name for check in checks})
        if unknown:
            return web.Response(status=400, text=f"unknown check(s) to exclude: {', '.join(unknown)}\n")
        results = await asyncio.gather(*(run_check(c) for c in checks if c.name not in excluded))
        failed = [result for result in results if not result.ok]
        for result in failed:
            log.info("%s check %s failed: %s", endpoint, result.name, result.error)
        if not failed and "verbose" not in request.query:
            return web.Response(text="ok")
        lines = [result.line() for result in results]
        lines.extend(f"[+]{name} excluded: ok" for name in sorted(excluded))
        lines.append(f"{endpoint} check {'failed' if failed else 'passed'}")
        return web.Response(status=500 if failed else 200, text="\n".join(lines) + "\n")

    return handle


def _single_check_handler(
    endpoint: str, checks: tuple[HealthCheck, ...]
) -> Callable[[web.Request], Awaitable[web.Response]]:
    by_name = {check.name: check for check in checks}

    async def handle(request: web.Request) -> web.Response:
        check = by_name.get(request.match_info["check"])
        if check is None:
            raise web.HTTPNotFound(text=f"no {endpoint} check named {request.match_info['check']!r}\n")
        result = await run_check(check)
        if result.ok:
            return web.Response(text="ok")
        log.info("%s check %s failed: %s", endpoint, result.name, result.error)
        return web.Response(status=500, text=f"internal server error: {check.name} check failed\n")

    return handle
