"""Container probes (liveness, readiness, startup) and lifecycle hooks (postStart, preStop).

A probe runs every ``periodSeconds`` after ``initialDelaySeconds``; its result flips only
after ``successThreshold`` successes or ``failureThreshold`` failures in a row, as upstream.
Handlers: ``exec`` (through the runtime, with ``timeoutSeconds``), ``httpGet`` (a status in
200-399 succeeds), ``tcpSocket`` (a connection succeeds), ``grpc`` (the gRPC health checking
protocol answers ``SERVING``).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from k3py.agent.cri import CriError, Runtime
from k3py.agent.cri.grpc import DEADLINE_EXCEEDED, Channel
from k3py.agent.cri.wire import Schema

log = logging.getLogger(__name__)

Obj = dict[str, Any]
_INSECURE = ssl.create_default_context()
_INSECURE.check_hostname = False
_INSECURE.verify_mode = ssl.CERT_NONE


@dataclass
class Outcome:
    ok: bool
    message: str = ""


def resolve_port(container: Obj, port: object) -> int:
    if isinstance(port, int):
        return port
    if isinstance(port, str) and port.isdigit():
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    raise ValueError(f"couldn't find port {port!r} in the container's ports")


async def run_handler(
    runtime: Runtime, container_id: str, container: Obj, handler: Obj, pod_ip: str, limit: float
) -> Outcome:
    """One run of a probe or hook handler."""
    try:
        if (action := handler.get("exec")) is not None:
            stdout, stderr, code = await runtime.exec_sync(
                container_id, list(action.get("command") or []), max(1, int(limit))
            )
            output = (stdout + stderr).decode(errors="replace")[:10240]
            if code != 0:
                return Outcome(False, f"command {action.get('command')!r} exited with {code}: {output}")
            return Outcome(True, output)
        if (action := handler.get("httpGet")) is not None:
            return await _http(container, action, pod_ip, limit)
        if (action := handler.get("tcpSocket")) is not None:
            host = action.get("host") or pod_ip
            port = resolve_port(container, action.get("port"))
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), limit)
            except (OSError, TimeoutError) as exc:
                return Outcome(False, f"dial tcp {host}:{port}: {exc or 'i/o timeout'}")
            writer.close()
            return Outcome(True)
        if (action := handler.get("sleep")) is not None:
            await asyncio.sleep(int(action.get("seconds") or 0))
            return Outcome(True)
        if (action := handler.get("grpc")) is not None:
            return await _grpc(action, pod_ip, limit)
    except CriError as exc:
        return Outcome(False, exc.message)
    except (ValueError, TimeoutError) as exc:
        return Outcome(False, str(exc) or "timeout")
    return Outcome(False, "no handler")


HEALTH = Schema(
    {
        "HealthCheckRequest": "service=1",
        "HealthCheckResponse": "status=1:enum",
    }
)
SERVING = 1
HEALTH_STATUS = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}


async def _grpc(action: Obj, pod_ip: str, limit: float) -> Outcome:
    """The gRPC health checking protocol (``grpc.health.v1.Health/Check``), as the kubelet calls it."""
    port = int(action.get("port") or 0)
    target = f"tcp://[{pod_ip}]:{port}" if ":" in pod_ip else f"tcp://{pod_ip}:{port}"
    request = HEALTH.encode("HealthCheckRequest", {"service": action.get("service") or ""})
    async with Channel(target, authority=f"{pod_ip}:{port}", connect_timeout=limit) as channel:
        try:
            reply = await channel.unary("/grpc.health.v1.Health/Check", request, timeout=limit)
        except CriError as exc:
            if exc.code == DEADLINE_EXCEEDED:
                return Outcome(False, f"timeout: health rpc did not complete within {limit:g}s")
            return Outcome(
                False, f'failed to connect service "{pod_ip}:{port}" within {limit:g}s: {exc.message}'
            )
    status = int(HEALTH.decode("HealthCheckResponse", reply).get("status") or 0)
    if status != SERVING:
        return Outcome(False, f'service unhealthy (responded with "{HEALTH_STATUS.get(status, status)}")')
    return Outcome(True)


async def _http(container: Obj, action: Obj, pod_ip: str, limit: float) -> Outcome:
    scheme = (action.get("scheme") or "HTTP").lower()
    host = action.get("host") or pod_ip
    port = resolve_port(container, action.get("port"))
    path = action.get("path") or "/"
    if not path.startswith("/"):
        path = "/" + path
    shown_host = f"[{host}]" if ":" in host else host
    url = f"{scheme}://{shown_host}:{port}{path}"
    headers = {"User-Agent": "kube-probe/1.37", "Accept": "*/*"}
    for header in action.get("httpHeaders") or []:
        headers[header.get("name", "")] = header.get("value", "")
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=limit)) as session,
            session.get(url, headers=headers, ssl=_INSECURE if scheme == "https" else True) as answer,
        ):
            body = await answer.content.read(10240)
            if 200 <= answer.status < 400:
                return Outcome(True, body.decode(errors="replace"))
            return Outcome(False, f"HTTP probe failed with statuscode: {answer.status}")
    except TimeoutError:
        return Outcome(
            False, f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)'
        )
    except aiohttp.ClientError as exc:
        return Outcome(False, f'Get "{url}": {exc}')


class Prober:
    """One probe of one container instance; ``on_change(kind, ok, message)`` on every flip."""

    def __init__(
        self,
        kind: str,
        probe: Obj,
        runtime: Runtime,
        container_id: str,
        container: Obj,
        pod_ip: Callable[[], str],
        on_change: Callable[[str, bool, str], None],
        *,
        gate: Callable[[], bool] = lambda: True,
    ) -> None:
        self.kind = kind
        self.probe = probe
        self.runtime = runtime
        self.container_id = container_id
        self.container = container
        self.pod_ip = pod_ip
        self.on_change = on_change
        self.gate = gate
        self.result: bool | None = None

    async def run(self) -> None:
        probe = self.probe
        await asyncio.sleep(int(probe.get("initialDelaySeconds") or 0))
        period = max(1, int(probe.get("periodSeconds") or 10))
        timeout = max(1, int(probe.get("timeoutSeconds") or 1))
        successes_needed = max(1, int(probe.get("successThreshold") or 1))
        failures_needed = max(1, int(probe.get("failureThreshold") or 3))
        successes = failures = 0
        while True:
            if self.gate():
                outcome = await run_handler(
                    self.runtime, self.container_id, self.container, probe, self.pod_ip(), timeout
                )
                if outcome.ok:
                    successes, failures = successes + 1, 0
                    if successes >= successes_needed and self.result is not True:
                        self.result = True
                        self.on_change(self.kind, True, "")
                    if self.kind == "startup" and self.result:
                        return  # started: the startup probe has done its work
                else:
                    successes, failures = 0, failures + 1
                    log.debug(
                        "%s probe of %s failed: %s", self.kind, self.container.get("name"), outcome.message
                    )
                    if failures >= failures_needed and self.result is not False:
                        self.result = False
                        self.on_change(self.kind, False, outcome.message)
                    elif failures < failures_needed:
                        self.on_change(self.kind + "-attempt", False, outcome.message)
            await asyncio.sleep(period)
