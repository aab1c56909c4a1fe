"""Scheduler benchmark: pods bound per second onto API-only nodes.

Starts ``k3py server --disable-agent`` in a temporary data directory, as ``bench/api.py``
does, and registers nodes through the API the way KWOK fakes them: each Node is created with
its capacity (32 CPUs, 256 GiB, 110 pods) and a Ready condition, and a Lease in
``kube-node-lease`` renewed every 10 s keeps the node lifecycle controller from marking it
unreachable. No kubelet runs: pods are bound (``spec.nodeName`` set) and never started.
One watch on the benchmark's namespace notes when each pod is first seen bound. Measured:

- pods/s: pods created by 32 concurrent clients, from the first creation request to the last
  binding seen; the creation rate is printed too, to tell whether creating was the limit, and
  the server's CPU time per pod (creation, binding, the ``Scheduled`` Event and every watch
  that carries them) with how busy the server was: near 100% means its one core was the limit;
- a Deployment applied with ``kubectl apply``: the time until all its pods exist and until
  all are bound;
- the server's resident memory idle, and with the stored pods brought up to a round figure
  by more pods (they fit: every pod created here is bound, and each binding also stores a
  ``Scheduled`` Event).

Run: ``python bench/scheduler.py`` (``--quick`` for a smoke run; ``--profile FILE`` runs the
server under cProfile, which slows it down, to see where its time goes). Results go to
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.api import Server, row, rss_kib
from k3py.api import defaults
from k3py.scheduler import resources
from k3py.scheduler.cache import NodeCache
from k3py.scheduler.cluster import Cluster as SchedulingCluster
from k3py.scheduler.cycle import Placement, find_node

Obj = dict[str, Any]

NAMESPACE = "bench"
LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
LEASE_RENEW = 10.0
"""Seconds between lease renewals (the node lifecycle controller's grace period is 50 s)."""
CLIENTS = 32
"""Concurrent creation requests."""
DEPLOYMENT = "bench-deployment"


@dataclass(frozen=True)
class Scale:
    nodes: int
    pods: int
    replicas: int
    stored: int
    """Pods stored when the loaded memory is measured."""


FULL = Scale(nodes=100, pods=5000, replicas=1000, stored=10000)
QUICK = Scale(nodes=10, pods=300, replicas=100, stored=1000)


def stamp(micro: bool = False) -> str:
    now = time.time()
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
    return f"{text}.{int(now % 1 * 1e6):06d}Z" if micro else f"{text}Z"


def node(name: str) -> Obj:
    resources = {"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "100Gi"}
    now = stamp()
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "api-only",
            },
        },
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "phase": "Running",
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "API-only node of the scheduler benchmark",
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": now,
                }
            ],
            "addresses": [{"type": "Hostname", "address": name}],
        },
    }


def lease(name: str) -> Obj:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name},
        "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": stamp(micro=True)},
    }


def pod_spec() -> Obj:
    return {
        "terminationGracePeriodSeconds": 0,
        "containers": [
            {
                "name": "main",
                "image": "registry.k8s.io/pause:3.10",
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
            }
        ],
    }


def pod(name: str, group: str) -> bytes:
    return orjson.dumps(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": {"bench": group}},
            "spec": pod_spec(),
        }
    )


def deployment(replicas: int) -> Obj:
    labels = {"app": DEPLOYMENT}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": DEPLOYMENT, "namespace": NAMESPACE},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec()},
        },
    }


@dataclass
class Pods:
    """What one watch on the namespace has shown: when each pod was first seen, and bound."""

    seen: dict[str, float] = field(default_factory=dict)
    bound: dict[str, float] = field(default_factory=dict)

    def count(self, names: Iterable[str], where: dict[str, float]) -> int:
        return sum(1 for name in names if name in where)

    def last(self, names: Iterable[str], where: dict[str, float]) -> float:
        return max(where[name] for name in names)


class Cluster:
    """The HTTP session to the server, and what the benchmark keeps running against it."""

    def __init__(self, server: Server, http: aiohttp.ClientSession) -> None:
        self.server = server
        self.http = http
        self.pods = Pods()
        self.names: list[str] = []
        self.watcher: asyncio.Task[None] | None = None

    def url(self, path: str) -> str:
        return self.server.url + path

    async def request(self, method: str, path: str, body: Obj | bytes | None = None, **kw: Any) -> Obj:
        data = body if isinstance(body, bytes) or body is None else orjson.dumps(body)
        headers = {"Content-Type": kw.pop("content_type", "application/json")}
        async with self.http.request(method, self.url(path), data=data, headers=headers, **kw) as answer:
            text = await answer.read()
            if answer.status >= 300:
                raise RuntimeError(f"{method} {path}: {answer.status} {text.decode(errors='replace')}")
            found: Obj = orjson.loads(text)
            return found

    async def concurrently(self, calls: Iterable[Awaitable[object]], clients: int = CLIENTS) -> None:
        """Await ``calls`` (made lazily, as they are taken) with ``clients`` at a time."""
        pending = iter(calls)

        async def worker() -> None:
            for call in pending:
                await call

        await asyncio.gather(*(worker() for _ in range(clients)))

    # -- nodes -------------------------------------------------------------------------------

    async def add_nodes(self, count: int) -> None:
        self.names = [f"bench-node-{i:03d}" for i in range(count)]
        await self.concurrently(self.request("POST", "/api/v1/nodes", node(n)) for n in self.names)
        await self.concurrently(self.request("POST", LEASES, lease(n)) for n in self.names)

    async def renew_leases(self) -> None:
        while True:
            await asyncio.sleep(LEASE_RENEW)
            patch = {"spec": {"renewTime": stamp(micro=True)}}
            await self.concurrently(
                self.request("PATCH", f"{LEASES}/{n}", patch, content_type="application/merge-patch+json")
                for n in self.names
            )

    # -- pods --------------------------------------------------------------------------------

    async def prepare_namespace(self) -> str:
        """Create the namespace, wait for its default ServiceAccount; the pods' list version."""
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
        await self.request("POST", "/api/v1/namespaces", namespace)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            path = f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/default"
            async with self.http.get(self.url(path)) as answer:
                if answer.status == 200:
                    break
            await asyncio.sleep(0.2)
        else:
            raise RuntimeError(f"no default ServiceAccount in namespace {NAMESPACE} after 60 s")
        listed = await self.request("GET", f"/api/v1/namespaces/{NAMESPACE}/pods")
        return str(listed["metadata"]["resourceVersion"])

    async def watch(self, version: str) -> None:
        """Follow the namespace's pods, resuming after the server ends a watch."""
        path = f"/api/v1/namespaces/{NAMESPACE}/pods"
        while True:
            params = {"watch": "1", "resourceVersion": version, "timeoutSeconds": "3600"}
            async with self.http.get(
                self.url(path), params=params, timeout=aiohttp.ClientTimeout(total=None)
            ) as answer:
                if answer.status != 200:
                    raise RuntimeError(f"watch {path}: {answer.status} {await answer.text()}")
                async for line in _lines(answer):
                    event = orjson.loads(line)
                    obj = event["object"]
                    meta = obj.get("metadata") or {}
                    version = str(meta.get("resourceVersion") or version)
                    if event["type"] == "ERROR":
                        raise RuntimeError(f"watch {path}: {obj}")
                    now = time.perf_counter()
                    name = str(meta.get("name"))
                    self.pods.seen.setdefault(name, now)
                    if (obj.get("spec") or {}).get("nodeName"):
                        self.pods.bound.setdefault(name, now)

    async def create_pods(self, names: list[str], group: str, progress: Progress) -> float:
        """Create the pods; when the last creation was answered."""
        task = progress.add_task(f"created ({group})", total=len(names))
        path = f"/api/v1/namespaces/{NAMESPACE}/pods"

        async def create(name: str) -> None:
            await self.request("POST", path, pod(name, group))
            progress.advance(task)

        await self.concurrently(create(name) for name in names)
        return time.perf_counter()

    async def wait_for(
        self, names: list[str], where: dict[str, float], what: str, progress: Progress, within: float
    ) -> bool:
        """Wait until the watch has shown every pod named in ``where``; whether they all came."""
        task = progress.add_task(what, total=len(names))
        deadline = time.monotonic() + within
        while (done := self.pods.count(names, where)) < len(names):
            progress.update(task, completed=done)
            if self.watcher is not None and self.watcher.done():
                self.watcher.result()  # raises what ended it
                raise RuntimeError("the pod watch ended")
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.1)
        progress.update(task, completed=len(names))
        return True


async def _lines(answer: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    buffer = b""
    async for chunk in answer.content.iter_any():
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if line.strip():
                yield line


def cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def kubectl() -> str:
    beside = Path(sys.executable).with_name("kubectl")
    found = str(beside) if beside.exists() else shutil.which("kubectl")
    if found is None:
        raise RuntimeError("kubectl not found beside the Python interpreter nor on PATH")
    return found


def timeout_for(count: int) -> float:
    """Long enough for the floor of 100 pods/s with room to spare; a run slower than 10/s is
    reported as such rather than waited for."""
    return max(60.0, count / 10)


def partial(bound: int, total: int, seconds: float) -> str:
    return f"only {bound:,} of {total:,} bound after {seconds:.0f} s"


async def measure_pods(cluster: Cluster, scale: Scale, progress: Progress) -> None:
    names = [f"p-{i:05d}" for i in range(scale.pods)]
    pid = cluster.server.process.pid
    cpu = cpu_seconds(pid)
    start = time.perf_counter()
    created = await cluster.create_pods(names, "pods", progress)
    done = await cluster.wait_for(names, cluster.pods.bound, "bound", progress, timeout_for(scale.pods))
    bound = cluster.pods.count(names, cluster.pods.bound)
    at_created = sum(1 for n in names if cluster.pods.bound.get(n, created + 1) <= created)
    end = cluster.pods.last(names, cluster.pods.bound) if done else time.perf_counter()
    cpu = cpu_seconds(pid) - cpu
    elapsed = end - start
    row(
        f"pods bound, {scale.pods:,} pods onto {scale.nodes} nodes (/s)",
        f"{bound / elapsed:,.0f}",
        f"{elapsed:.1f} s from first create to last bound" if done else partial(bound, scale.pods, elapsed),
    )
    row(
        "server CPU time per pod, created and bound (ms)",
        f"{cpu / scale.pods * 1e3:.1f}",
        f"the server was busy {cpu / (time.perf_counter() - start):.0%} of the time",
    )
    row(
        f"pods created, {CLIENTS} concurrent clients (/s)",
        f"{scale.pods / (created - start):,.0f}",
        f"{at_created:,} already bound when the last creation was answered",
    )


async def measure_deployment(cluster: Cluster, scale: Scale, progress: Progress) -> None:
    manifest = cluster.server.base / "deployment.json"
    manifest.write_bytes(orjson.dumps(deployment(scale.replicas)))
    kubeconfig = cluster.server.base / "k3py.yaml"
    before = set(cluster.pods.seen)
    start = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        kubectl(), "--kubeconfig", str(kubeconfig), "apply", "-f", str(manifest),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await process.communicate()
    applied = time.perf_counter()
    if process.returncode != 0:
        raise RuntimeError(f"kubectl apply failed: {output.decode(errors='replace')}")
    task = progress.add_task("deployment pods created", total=scale.replicas)
    deadline = time.monotonic() + timeout_for(scale.replicas)
    while True:
        names = [n for n in cluster.pods.seen if n not in before and n.startswith(DEPLOYMENT)]
        progress.update(task, completed=len(names))
        if len(names) >= scale.replicas or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    all_created = len(names) >= scale.replicas
    remaining = max(1.0, deadline - time.monotonic())
    done = all_created and await cluster.wait_for(
        names, cluster.pods.bound, "deployment pods bound", progress, remaining
    )
    bound = cluster.pods.count(names, cluster.pods.bound)
    end = cluster.pods.last(names, cluster.pods.bound) if done else time.perf_counter()
    created = cluster.pods.last(names, cluster.pods.seen) if all_created else end
    row(
        f"Deployment of {scale.replicas:,} replicas, kubectl apply -> all bound (s)",
        f"{end - start:.1f}",
        f"all created after {created - start:.1f} s, kubectl took {applied - start:.1f} s"
        if done
        else partial(bound, scale.replicas, end - start),
    )


async def measure_memory(cluster: Cluster, scale: Scale, progress: Progress, idle: int) -> None:
    more = scale.stored - scale.pods - scale.replicas
    names = [f"q-{i:05d}" for i in range(more)]
    if names:
        await cluster.create_pods(names, "more", progress)
        await cluster.wait_for(names, cluster.pods.bound, "bound (more)", progress, timeout_for(more))
    stored = len(cluster.pods.seen)
    bound = len(cluster.pods.bound)
    await asyncio.sleep(2.0)
    loaded = rss_kib(cluster.server.process.pid)
    row("server RSS idle, after start (MB)", f"{idle / 1024:.1f}")
    row(
        f"server RSS with {stored:,} pods stored (MB)",
        f"{loaded / 1024:.1f}",
        f"{bound:,} bound, each with its Scheduled Event",
    )


def measure_cycle(scale: Scale) -> None:
    """The scheduling cycle alone, in this process, without the server: the benchmark's pods
    placed one at a time onto its nodes, each counted on its node before the next cycle."""
    cache = NodeCache()
    for i in range(scale.nodes):
        cache.set_node(node(f"node-{i:03d}"))
    pods = []
    for i in range(scale.pods):
        spec = {**pod_spec(), "priority": 0}
        defaults.pod_spec(spec)  # as the API server stores it (default tolerations included)
        meta = {"name": f"p-{i:05d}", "namespace": NAMESPACE, "labels": {"bench": "cycle"}}
        pods.append({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})
    cluster, rng = SchedulingCluster(), random.Random(0)
    started = time.process_time()
    for each in pods:
        with resources.memoized():
            placed = find_node(each, cache.snapshot(), rng, cluster)
        assert isinstance(placed, Placement), placed
        cache.place((NAMESPACE, each["metadata"]["name"]), placed.node, each)
    per_pod = (time.process_time() - started) / scale.pods * 1e3
    row(
        f"scheduling cycle alone, {scale.pods:,} pods onto {scale.nodes} nodes (ms a pod)",
        f"{per_pod:.2f}",
        "CPU time in this process, no server",
    )


async def run(scale: Scale, base: Path, profile: Path | None = None) -> int:
    server = Server(base, profile=profile)
    try:
        await server.wait_ready()
        await asyncio.sleep(1.0)
        idle = rss_kib(server.process.pid)
        connector = aiohttp.TCPConnector(ssl=server.ssl_context(), limit=CLIENTS + 8)
        async with aiohttp.ClientSession(connector=connector) as http:
            cluster = Cluster(server, http)
            version = await cluster.prepare_namespace()
            await cluster.add_nodes(scale.nodes)
            watcher = cluster.watcher = asyncio.create_task(cluster.watch(version), name="bench-watch")
            renewer = asyncio.create_task(cluster.renew_leases(), name="bench-leases")
            await asyncio.sleep(2.0)  # the scheduler sees the nodes
            columns = (
                TextColumn("{task.description:<24}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
            )
            try:
                with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
                    await measure_pods(cluster, scale, progress)
                    await measure_deployment(cluster, scale, progress)
                    await measure_memory(cluster, scale, progress, idle)
            finally:
                for task in (watcher, renewer):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small figures for a smoke run")
    parser.add_argument(
        "--dir", type=Path, default=None, help="directory for the server's data (default: a temp dir)"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="run the server under cProfile and write its stats to this file (slows it down)",
    )
    parser.add_argument(
        "--cycle-only",
        action="store_true",
        help="measure only the scheduling cycle, in this process, without starting a server",
    )
    args = parser.parse_args()
    scale = QUICK if args.quick else FULL
    measure_cycle(scale)
    if args.cycle_only:
        sys.exit(0)
    base = Path(tempfile.mkdtemp(prefix="k3py-bench-scheduler-", dir=args.dir))
    profile = args.profile.resolve() if args.profile is not None else None
    try:
        sys.exit(asyncio.run(run(scale, base, profile)))
    finally:
        shutil.rmtree(base, ignore_errors=True)
