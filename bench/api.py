"""API server benchmark over HTTPS with real client connections.

Starts ``k3py server`` (no agent) in a temporary data directory and measures:

- the load of a known K3s/kine comparison: 5,000 Secrets created, then read back, at a
  sustained 200 requests/s (open loop: requests start on schedule, whether or not earlier
  ones have finished), with mean and p99 latency per verb;
- GET, LIST and WATCH throughput: gets/s with 16 concurrent clients, lists/s of 500 Secrets,
  and watch events/s delivered while Secrets are updated;
- the server's resident memory when idle (after start) and after the load.

Run: ``python bench/api.py`` (``--quick`` for a smoke run). Results go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson


@dataclass(frozen=True)
class Scale:
    secrets: int
    rate: float
    throughput_seconds: float


FULL = Scale(5000, 200.0, 10.0)
QUICK = Scale(200, 200.0, 1.0)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Server:
    def __init__(self, base: Path, *, profile: Path | None = None) -> None:
        """Start the server; with ``profile``, under cProfile, its stats written there on exit."""
        self.base = base
        self.port = free_port()
        self.data = base / "data"
        self.log = base / "server.log"
        profiler = ["-m", "cProfile", "-o", str(profile)] if profile is not None else []
        command = [
            sys.executable, *profiler, "-m", "k3py.cli", "server", "--config", os.devnull,
            "--data-dir", str(self.data), "--bind-address", "127.0.0.1",
            "--https-listen-port", str(self.port), "--write-kubeconfig", str(base / "k3py.yaml"),
            "--disable-agent",
        ]  # fmt: skip
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def ssl_context(self) -> ssl.SSLContext:
        tls = self.data / "server" / "tls"
        context = ssl.create_default_context(cafile=str(tls / "server-ca.crt"))
        context.load_cert_chain(str(tls / "client-admin.crt"), str(tls / "client-admin.key"))
        return context

    async def wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited:\n{self.log.read_text()}")
            if (self.data / "server" / "tls" / "client-admin.key").exists():
                try:
                    async with (
                        aiohttp.ClientSession() as s,
                        s.get(self.url + "/readyz", ssl=self.ssl_context()) as r,
                    ):
                        if r.status == 200:
                            return
                except (aiohttp.ClientError, OSError):
                    pass
            await asyncio.sleep(0.1)
        raise RuntimeError("server not ready in 30s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def secret(i: int) -> bytes:
    data = base64.b64encode(os.urandom(48)).decode()
    return orjson.dumps(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"s-{i:05d}", "labels": {"bench": "api"}},
            "type": "Opaque",
            "data": {"token": data},
        }
    )


async def paced(count: int, rate: float, call: object) -> list[float]:
    """Start ``call(i)`` for i in range(count) at ``rate``/s; return each latency in ms."""
    latencies: list[float] = [0.0] * count
    start = time.perf_counter()

    async def one(i: int) -> None:
        t = time.perf_counter()
        await call(i)  # type: ignore[operator]
        latencies[i] = (time.perf_counter() - t) * 1e3

    tasks = []
    for i in range(count):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    achieved = count / (time.perf_counter() - start)
    if achieved < rate * 0.95:
        print(f"warning: achieved {achieved:.0f} req/s, below the {rate:.0f} asked for", file=sys.stderr)
    return latencies


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def row(label: str, value: str, note: str = "") -> None:
    print(f"{label:<58} {value:>14}  {note}")


async def run(scale: Scale, base: Path) -> int:
    server = Server(base)
    try:
        await server.wait_ready()
        await asyncio.sleep(1.0)
        idle = rss_kib(server.process.pid)
        ns = f"{server.url}/api/v1/namespaces/default/secrets"
        connector = aiohttp.TCPConnector(ssl=server.ssl_context(), limit=64)
        async with aiohttp.ClientSession(
            connector=connector, json_serialize=lambda o: orjson.dumps(o).decode()
        ) as http:

            async def create(i: int) -> None:
                headers = {"Content-Type": "application/json"}
                async with http.post(ns, data=secret(i), headers=headers) as r:
                    if r.status != 201:
                        raise RuntimeError(f"create {i}: {r.status} {await r.text()}")
                    await r.read()

            async def get(i: int) -> None:
                async with http.get(f"{ns}/s-{i:05d}") as r:
                    if r.status != 200:
                        raise RuntimeError(f"get {i}: {r.status}")
                    await r.read()

            creates = await paced(scale.secrets, scale.rate, create)
            gets = await paced(scale.secrets, scale.rate, get)
            row(
                f"create Secret at {scale.rate:.0f}/s, {scale.secrets:,} of them: mean (ms)",
                f"{statistics.mean(creates):.1f}",
                f"p99 {p99(creates):.1f} ms",
            )
            row(
                f"get Secret at {scale.rate:.0f}/s, {scale.secrets:,} of them: mean (ms)",
                f"{statistics.mean(gets):.1f}",
                f"p99 {p99(gets):.1f} ms",
            )

            async def throughput(call: object, workers: int, seconds: float) -> float:
                end = time.perf_counter() + seconds
                done = 0

                async def worker(w: int) -> None:
                    nonlocal done
                    i = w
                    while time.perf_counter() < end:
                        await call(i % scale.secrets)  # type: ignore[operator]
                        done += 1
                        i += workers

                await asyncio.gather(*(worker(w) for w in range(workers)))
                return done / seconds

            row(
                "GET throughput, 16 concurrent clients (/s)",
                f"{await throughput(get, 16, scale.throughput_seconds):,.0f}",
            )

            async def list_page(_: int) -> None:
                async with http.get(ns, params={"limit": "500"}) as r:
                    await r.read()

            row(
                "LIST of 500 Secrets, 4 concurrent clients (/s)",
                f"{await throughput(list_page, 4, scale.throughput_seconds):,.0f}",
            )

            async with http.get(ns) as r:
                rv = (await r.json(loads=orjson.loads))["metadata"]["resourceVersion"]
            received = 0
            stop = asyncio.Event()

            async def watch() -> None:
                nonlocal received
                params = {"watch": "1", "resourceVersion": rv, "timeoutSeconds": "300"}
                async with http.get(ns, params=params, timeout=aiohttp.ClientTimeout(total=None)) as r:
                    async for _ in r.content:
                        received += 1
                        if stop.is_set():
                            return

            watcher = asyncio.create_task(watch())
            await asyncio.sleep(0.5)

            async def update(i: int) -> None:
                patch = orjson.dumps({"metadata": {"annotations": {"n": str(time.perf_counter_ns())}}})
                async with http.patch(
                    f"{ns}/s-{i:05d}", data=patch, headers={"Content-Type": "application/merge-patch+json"}
                ) as r:
                    await r.read()

            t = time.perf_counter()
            await throughput(update, 16, scale.throughput_seconds)
            await asyncio.sleep(0.5)
            stop.set()
            row(
                "WATCH events delivered to one watcher under 16 writers (/s)",
                f"{received / (time.perf_counter() - t):,.0f}",
            )
            watcher.cancel()
        loaded = rss_kib(server.process.pid)
        row("server RSS idle, after start (MB)", f"{idle / 1024:.1f}")
        row(f"server RSS after the load, {scale.secrets:,} Secrets stored (MB)", f"{loaded / 1024:.1f}")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small figures for a smoke run")
    parser.add_argument(
        "--dir", type=Path, default=None, help="directory for the server's data (default: a temp dir)"
    )
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="k3py-bench-api-", dir=args.dir))
    try:
        sys.exit(asyncio.run(run(QUICK if args.quick else FULL, base)))
    finally:
        shutil.rmtree(base, ignore_errors=True)
