"""Pod startup latency and the node agent's memory, on a real one-server + one-agent cluster.

Starts an ephemeral cluster (each node in its own network namespace, the busybox image
imported from an air-gap archive), then creates pods bound for the agent node at a steady
rate (open loop) and measures, for each, the time from its creation request to the moment a
watch shows it ``Running`` (the upstream pod-startup SLO: image present, no probes; p99 ≤ 5 s).
Before and after, it records the resident memory of the agent process and of its containerd.

Run as root: ``python bench/pod_startup.py`` (``--pods 50 --rate 5``). Results go to
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "distro"))

from conformance.cluster import ClusterSpec, EphemeralCluster
from k3py.images.busybox import write_busybox

IMAGE = "docker.io/k3py/busybox:bench"
NAMESPACE = "bench"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def containerd_pid(data_dir: Path) -> int:
    config = f"--config {data_dir}/agent/etc/containerd/config.toml"
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if config in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode():
                    return int(entry.name)
            except OSError:
                continue
    raise LookupError("the agent's containerd is not running")


def pod(name: str, node: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeSelector": {"kubernetes.io/hostname": node},
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "main", "image": IMAGE, "command": ["sleep", "3600"]}],
        },
    }


async def measure(cluster: EphemeralCluster, count: int, rate: float, node: str) -> list[float]:
    tls = cluster.server.data_dir / "server" / "tls"
    context = ssl.create_default_context(cafile=str(tls / "server-ca.crt"))
    context.load_cert_chain(str(tls / "client-admin.crt"), str(tls / "client-admin.key"))
    base = cluster.server_url
    created: dict[str, float] = {}
    running: dict[str, float] = {}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
        async with session.post(f"{base}/api/v1/namespaces", json=namespace) as answer:
            assert answer.status in (201, 409), await answer.text()
        await asyncio.sleep(2)  # the namespace's service account
        async with session.get(f"{base}/api/v1/namespaces/{NAMESPACE}/pods") as answer:
            version = (await answer.json())["metadata"]["resourceVersion"]
        done = asyncio.Event()

        async def watch() -> None:
            url = f"{base}/api/v1/namespaces/{NAMESPACE}/pods?watch=1&resourceVersion={version}"
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=None)) as answer:
                async for line in answer.content:
                    event = orjson.loads(line)
                    obj = event["object"]
                    name = obj["metadata"]["name"]
                    if obj.get("status", {}).get("phase") == "Running" and name not in running:
                        running[name] = time.monotonic()
                        if len(running) == count:
                            done.set()
                            return

        watcher = asyncio.create_task(watch())
        await asyncio.sleep(0.5)
        start = time.monotonic()
        for i in range(count):
            await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
            name = f"p{i:03d}"
            created[name] = time.monotonic()
            async with session.post(
                f"{base}/api/v1/namespaces/{NAMESPACE}/pods", json=pod(name, node)
            ) as answer:
                assert answer.status == 201, await answer.text()
            print(f"\rcreated {i + 1}/{count}, running {len(running)}", end="", flush=True)
        await asyncio.wait_for(done.wait(), 300)
        watcher.cancel()
        print()
    return sorted(running[name] - created[name] for name in created)


def percentile(values: list[float], fraction: float) -> float:
    return values[min(len(values) - 1, round(fraction * (len(values) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=50, help="pods to start (default: 50)")
    parser.add_argument("--rate", type=float, default=5.0, help="pods created per second (default: 5)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces, containerd)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="k3py-bench-pods-") as tmp:
        base = Path(tmp)
        write_busybox(base / "busybox.tar", IMAGE)
        spec = ClusterSpec(base_dir=base / "cluster", agents=1, airgap_images=(base / "busybox.tar",))
        with EphemeralCluster(spec) as cluster:
            agent = cluster.nodes[1]
            assert agent.process is not None
            time.sleep(5)
            idle = (rss_mib(agent.process.pid), rss_mib(containerd_pid(agent.data_dir)))
            latencies = asyncio.run(measure(cluster, args.pods, args.rate, agent.name))
            time.sleep(5)
            loaded = (rss_mib(agent.process.pid), rss_mib(containerd_pid(agent.data_dir)))
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    print(f"pod startup ({args.pods} pods at {args.rate:g}/s, created -> Running seen by a watch):")
    mean = statistics.mean(latencies)
    print(f"  p50 {p50:.2f} s   p99 {p99:.2f} s   max {latencies[-1]:.2f} s   mean {mean:.2f} s")
    print(f"agent RSS: {idle[0]:.1f} MiB with 0 pods, {loaded[0]:.1f} MiB with {args.pods}")
    print(f"containerd RSS: {idle[1]:.1f} MiB with 0 pods, {loaded[1]:.1f} MiB with {args.pods}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
