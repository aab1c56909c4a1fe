"""Storage benchmark: durable write rates, reads, lists, watch latency, size under churn.

Run: ``python bench/storage.py`` (``--quick`` shrinks every figure for a smoke run).
Results are recorded in docs/benchmarks.md with the command that produced them.

The physical reference is the disk's own rate of durable 4 KiB writes: a 4 KiB write at the
next offset of a preallocated file followed by fdatasync (what a log append costs at best;
pg_test_fsync measures the same). Beside it, the rate of 4 KiB appended to a growing file and
fsync'ed, which is what a log without preallocation pays (the file's size changes, so the
file system commits metadata too). Both are measured in rounds interleaved with the
single-writer rounds, in the same directory, so all see the same disk weather; medians are
reported.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from k3py.storage import CompactionOptions, SQLiteOptions, SQLiteStore, open_store, prefix_end

VALUE = b"v" * 512


@dataclass(frozen=True)
class Scale:
    rounds: int
    round_seconds: float
    concurrent_seconds: float
    watchers: int
    watch_rate: int
    watch_seconds: float
    churn_keys: int
    churn_passes: int


FULL = Scale(7, 1.0, 4.0, 1000, 500, 10.0, 1000, 1000)
QUICK = Scale(2, 0.3, 0.5, 50, 200, 1.0, 100, 20)


def fsync_rate(directory: Path, seconds: float) -> float:
    path = directory / "fsync-probe"
    size = 16 << 20
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, b"\0" * size)
        os.fsync(fd)
        block = b"x" * 4096
        offset = n = 0
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            os.pwrite(fd, block, offset)
            os.fdatasync(fd)
            offset = (offset + 4096) % size
            n += 1
        return n / seconds
    finally:
        os.close(fd)
        path.unlink()


def append_fsync_rate(directory: Path, seconds: float) -> float:
    """4 KiB appended to a growing file, then fsync: what a log without preallocation pays."""
    path = directory / "append-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
    try:
        block = b"x" * 4096
        n = 0
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            os.write(fd, block)
            os.fsync(fd)
            n += 1
        return n / seconds
    finally:
        os.close(fd)
        path.unlink()


async def fill(store: SQLiteStore, keys: int, prefix: bytes = b"/bench/") -> list[bytes]:
    names = [prefix + b"%06d" % i for i in range(keys)]
    for i in range(0, keys, 256):
        await asyncio.gather(*(store.create(k, VALUE) for k in names[i : i + 256]))
    return names


async def single_writer(store: SQLiteStore, names: list[bytes], seconds: float) -> float:
    n = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        await store.update(names[n % len(names)], VALUE)
        n += 1
    return n / seconds


async def concurrent_writers(store: SQLiteStore, names: list[bytes], writers: int, seconds: float) -> float:
    end = time.perf_counter() + seconds

    async def writer(j: int) -> int:
        n = 0
        while time.perf_counter() < end:
            await store.update(names[(j * 131 + n) % len(names)], VALUE)
            n += 1
        return n

    counts = await asyncio.gather(*(writer(j) for j in range(writers)))
    return sum(counts) / seconds


async def reads(store: SQLiteStore, names: list[bytes], seconds: float) -> float:
    n = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        await store.get(names[n % len(names)])
        n += 1
    return n / seconds


async def list_ms(store: SQLiteStore, prefix: bytes, repeat: int = 5) -> tuple[float, int]:
    times = []
    count = 0
    for _ in range(repeat):
        t = time.perf_counter()
        result = await store.range(prefix, prefix_end(prefix))
        times.append(time.perf_counter() - t)
        count = len(result.kvs)
    return statistics.median(times) * 1e3, count


async def watch_latency(
    store: SQLiteStore, watchers: int, rate: int, seconds: float
) -> tuple[list[float], float, int]:
    """p50/p99/max delivery latency in ms, the write rate achieved, and events delivered."""
    sent: dict[bytes, float] = {}
    latencies: list[float] = []
    total = int(rate * seconds)
    prefix = b"/watch/"
    start_rev = store.current_revision
    ready = asyncio.Event()
    registered = 0

    async def watcher() -> None:
        nonlocal registered
        got = 0
        async with store.watch(prefix, after=start_rev) as w:
            registered += 1
            if registered == watchers:
                ready.set()
            async for batch in w:
                now = time.perf_counter()
                for e in batch:
                    latencies.append(now - sent[e.kv.key])
                got += len(batch)
                if got >= total:
                    return

    tasks = [asyncio.create_task(watcher()) for _ in range(watchers)]
    await ready.wait()
    await asyncio.sleep(0.1)
    began = time.perf_counter()
    for i in range(total):
        due = began + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        key = prefix + b"%08d" % i
        sent[key] = time.perf_counter()
        await store.create(key, VALUE)
    achieved = total / (time.perf_counter() - began)
    await asyncio.gather(*tasks)
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1e3

    return [pct(0.5), pct(0.99), latencies[-1] * 1e3], achieved, len(latencies)


def redo_size(path: Path) -> int:
    return Path(f"{path}-redo").stat().st_size


def db_size(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


async def churn(directory: Path, keys: int, passes: int) -> tuple[int, int, int, int]:
    path = directory / "churn.db"
    options = SQLiteOptions(
        path=path, compaction=CompactionOptions(retain_revisions=1000, trigger_revisions=1000)
    )
    store = await open_store(options)
    try:
        names = await fill(store, keys, b"/churn/")
        first = 0
        for p in range(passes):
            for i in range(0, keys, 64):
                await asyncio.gather(*(store.update(k, VALUE) for k in names[i : i + 64]))
            if p == 0:
                first = db_size(path)
        return first, db_size(path), passes * keys, redo_size(path)
    finally:
        await store.close()


def row(label: str, value: str, note: str = "") -> None:
    print(f"{label:<58} {value:>14}  {note}")


async def main(scale: Scale, directory: Path) -> int:
    store = await open_store(
        SQLiteOptions(path=directory / "bench.db", compaction=CompactionOptions(retain_revisions=1000))
    )
    try:
        names = await fill(store, 1000)
        refs, appends, singles = [], [], []
        for _ in range(scale.rounds):
            refs.append(fsync_rate(directory, scale.round_seconds))
            appends.append(append_fsync_rate(directory, scale.round_seconds))
            singles.append(await single_writer(store, names, scale.round_seconds))
        ref, append = statistics.median(refs), statistics.median(appends)
        single = statistics.median(singles)
        row("disk: 4 KiB write + fdatasync, preallocated file (/s)", f"{ref:,.0f}", "physical reference")
        row("disk: 4 KiB append + fsync, growing file (/s)", f"{append:,.0f}", "naive log append")
        row(
            "durable writes/s, 1 writer (512 B values)",
            f"{single:,.0f}",
            f"{single / ref:.0%} of the physical reference, {single / append:.0%} of append + fsync",
        )
        many = await concurrent_writers(store, names, 64, scale.concurrent_seconds)
        row("durable writes/s, 64 concurrent writers", f"{many:,.0f}")
        row("reads/s (get by key, 1 reader)", f"{await reads(store, names, scale.round_seconds):,.0f}")
        ms, n = await list_ms(store, b"/bench/")
        row(f"list {n:,} keys (ms)", f"{ms:.1f}")
        await fill(store, 10_000 if scale is FULL else 2_000, b"/big/")
        ms, n = await list_ms(store, b"/big/")
        row(f"list {n:,} keys (ms)", f"{ms:.1f}")
        (p50, p99, worst), achieved, delivered = await watch_latency(
            store, scale.watchers, scale.watch_rate, scale.watch_seconds
        )
        row(
            f"watch latency p99, {scale.watchers:,} watchers at {scale.watch_rate} writes/s (ms)",
            f"{p99:.1f}",
            f"p50 {p50:.1f}, max {worst:.1f}, {achieved:.0f} writes/s achieved, {delivered:,} deliveries",
        )
    finally:
        await store.close()
    first, last, updates, redo = await churn(directory, scale.churn_keys, scale.churn_passes)
    row(f"DB+WAL after first pass over {scale.churn_keys:,} keys (KiB)", f"{first / 1024:,.0f}")
    row(
        f"DB+WAL after {updates:,} updates, compaction on (KiB)",
        f"{last / 1024:,.0f}",
        f"{last / first:.2f}x the first pass",
    )
    row("commit log beside them (KiB)", f"{redo / 1024:,.0f}", "preallocated once, never grows")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small figures for a smoke run")
    parser.add_argument(
        "--dir", type=Path, default=None, help="directory for the databases (default: a temp dir)"
    )
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="k3py-bench-", dir=args.dir))
    try:
        sys.exit(asyncio.run(main(QUICK if args.quick else FULL, base)))
    finally:
        shutil.rmtree(base, ignore_errors=True)
