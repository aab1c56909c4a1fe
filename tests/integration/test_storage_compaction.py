"""Compaction and checkpoints on real files.

- The server's compaction policy on a quiet cluster: history goes by age, however few writes
  came after it, as kube-apiserver compacts etcd (a paged list's continue token from long ago
  must expire even on an idle cluster, which upstream's API chunking conformance test waits for).
- Under steady churn the WAL stays small: batched inserts and compaction leave SQLite's
  automatic checkpoint room to copy it back and start it over.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from k3py.config import load_server_config
from k3py.server.datastore import storage_options
from k3py.storage import Compacted, CompactionOptions, SQLiteOptions, open_store
from k3py.storage.sqlite.schema import connect

NO_DEFAULT_FILE = Path("/nonexistent/k3py/config.yaml")


async def test_a_quiet_store_compacts_history_older_than_the_minimum_age(tmp_path: Path) -> None:
    given = {
        "data-dir": str(tmp_path),
        "datastore-compact-interval": "0.2",
        "datastore-compact-min-age": "1",
    }  # every other compaction setting at the server's default
    options = storage_options(load_server_config(given, {}, default_config_file=NO_DEFAULT_FILE))
    options.path.parent.mkdir(parents=True)
    store = await open_store(options)
    try:
        await store.create(b"/registry/leases/kube-system/k3py", b"0")
        first = await store.create(b"/registry/configmaps/default/a", b"1")
        writes, started = 1, time.monotonic()
        while store.compact_revision < first.mod_revision:  # a lease renewal now and then
            assert time.monotonic() - started < 5, "the old revision was never compacted"
            await asyncio.sleep(0.15)
            await store.update(b"/registry/leases/kube-system/k3py", str(writes).encode())
            writes += 1
        assert time.monotonic() - started >= 1.0, "compacted before it was a second old"
        assert writes < 40
        try:
            await store.range(b"/registry/configmaps/", b"/registry/configmaps0", rev=first.mod_revision - 1)
        except Compacted:
            pass
        else:
            raise AssertionError("a read below the compaction point succeeded")
        assert (await store.get(b"/registry/configmaps/default/a")) is not None  # the live key stays
    finally:
        await store.close()


async def test_the_wal_stays_small_under_churn(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    wal = tmp_path / "state.db-wal"
    compaction = CompactionOptions(retain_revisions=500, trigger_revisions=500)
    store = await open_store(SQLiteOptions(path=path, compaction=compaction))
    keys = [b"/churn/%03d" % i for i in range(200)]
    value = bytes(range(256)) * 4
    written = 0
    largest = 0
    try:
        for key in keys:
            await store.create(key, value)
        for n in range(20_000):  # 20 MB of values, 40 compactions
            await store.update(keys[n % len(keys)], value)
            written += len(value)
            if n % 500 == 0:
                largest = max(largest, wal.stat().st_size)
    finally:
        await store.close()
    assert written > 2 * (8 << 20)  # without checkpoints the WAL would hold it all
    assert largest < 8 << 20, f"the WAL grew to {largest:,} bytes"


def test_the_writer_connection_deletes_without_writing_freed_pages(tmp_path: Path) -> None:
    """Debian's SQLite overwrites deleted rows and freed pages by default; the writer asks for
    FAST secure delete, so compaction writes only the pages it changes (and zeroes the deleted
    content in them)."""
    writer = connect(tmp_path / "state.db", writer=True)
    reader = connect(tmp_path / "state.db", writer=False)
    try:
        assert writer.execute("PRAGMA secure_delete").fetchone()[0] == 2  # FAST
        assert writer.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL: the commit log syncs
        assert reader.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    finally:
        writer.close()
        reader.close()
