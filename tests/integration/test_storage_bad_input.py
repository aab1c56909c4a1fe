"""The SQLite store against bad files and bad disks: real files and real mounts, no mocks.

- A corrupt database (garbage over the header or a page, random bytes, a truncated file) and
  a foreign SQLite database are refused with ``StoreUnavailable`` naming the path and the
  reason, and are left exactly as they were: same bytes, no ``-wal``/``-shm`` beside them.
- A read-only file system (a tmpfs remounted read-only; an ext4 file system that the kernel
  turns read-only under an open store) refuses opening and writing with a clear reason, and
  every acknowledged write is there once the file system is writable again.
- A full disk (a small tmpfs) fails the writes that do not fit, with a clear reason, and
  nothing else: acknowledged writes stay, the failed ones are invisible, the revision does not
  advance for them, no watcher sees them, and the store goes on once there is room again.
  Writes whose commit log record fit are acknowledged although SQLite cannot take them yet:
  the store serves them from memory, also after a reopen on the still-full disk (where new
  writes go into the commit log after them), and SQLite takes them once there is room. A
  compaction that does not fit changes nothing either.

The mount tests need root (``root`` marker); every mount is undone in a finalizer.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import random
import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from k3py.storage import (
    Event,
    EventType,
    KeyValue,
    SQLiteStore,
    StoreUnavailable,
    open_store,
    prefix_end,
)
from k3py.storage.sqlite import writer
from k3py.util.proc import run
from tests.integration.storage_support import options, revisions_in_database

TIMEOUT = 60.0  # no store operation may hang on a bad disk
CORRUPT = r"corrupt|malformed|not a (k3py |SQLite )?database|not SQLite"
FOREIGN = r"another program|foreign|not a k3py"
READ_ONLY = r"read-only"
DISK_FULL = r"disk full"


def value_for(key: bytes, size: int = 1000) -> bytes:
    block = hashlib.sha256(key).digest()
    return (block * (size // len(block) + 1))[:size]


def snapshot(directory: Path) -> dict[str, str]:
    """Every file in ``directory`` with the hash of its bytes."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


async def fill(path: Path, keys: int, size: int = 300) -> dict[bytes, KeyValue]:
    """Create a store at ``path`` with ``keys`` keys (one update each for some history), close it."""
    store = await open_store(options(path))
    try:
        written: dict[bytes, KeyValue] = {}
        for i in range(keys):
            key = b"/data/%05d" % i
            written[key] = await store.create(key, value_for(key, size))
        for key in list(written)[::7]:
            written[key] = await store.update(key, value_for(key + b"+", size))
        return written
    finally:
        await store.close()


async def contents(store: SQLiteStore, prefix: bytes = b"") -> dict[bytes, KeyValue]:
    result = await store.range(prefix, prefix_end(prefix))
    assert not result.more
    return {kv.key: kv for kv in result.kvs}


async def refused(path: Path) -> str:
    """Open the store at ``path``, expecting refusal; the message, checked to name the path."""
    with pytest.raises(StoreUnavailable) as caught:
        async with asyncio.timeout(TIMEOUT):
            store = await open_store(options(path))
            await store.close()  # not reached when the store is refused
    message = str(caught.value)
    assert str(path) in message or str(path.parent) in message, message
    return message


# -- corrupt files --------------------------------------------------------------------------------

PAGE = 4096
Corruption = Callable[[bytes], bytes]


def garbage(data: bytes, start: int, length: int) -> bytes:
    noise = random.Random(f"{start}/{length}").randbytes(length)
    return data[:start] + noise + data[start + length :]


CORRUPTIONS: dict[str, Corruption] = {
    "garbage over the file header": lambda d: garbage(d, 0, 100),
    "garbage over the header fields after the magic": lambda d: garbage(d, 16, 84),
    "garbage over the schema page": lambda d: garbage(d, 100, PAGE - 100),
    "garbage over the log table's root page": lambda d: garbage(d, PAGE, PAGE),
    "garbage over a page in the middle": lambda d: garbage(d, (len(d) // PAGE // 2) * PAGE, PAGE),
    "garbage over the last page": lambda d: garbage(d, len(d) - PAGE, PAGE),
    "random bytes": lambda d: random.Random(0).randbytes(len(d)),
    "truncated to half": lambda d: d[: len(d) // 2 // PAGE * PAGE],
    "truncated inside the header": lambda d: d[:50],
    "truncated inside the first page": lambda d: d[:1000],
}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS), ids=list(CORRUPTIONS))
async def test_corrupt_database_is_refused_and_left_untouched(tmp_path: Path, corruption: str) -> None:
    path = tmp_path / "state.db"
    await fill(path, 200)
    assert list(snapshot(tmp_path)) == ["state.db", "state.db-redo"]  # checkpointed on close
    assert path.stat().st_size >= 8 * PAGE
    path.write_bytes(CORRUPTIONS[corruption](path.read_bytes()))
    before = snapshot(tmp_path)

    message = await refused(path)

    assert re.search(CORRUPT, message, re.IGNORECASE), message
    assert snapshot(tmp_path) == before  # same bytes, and no -wal or -shm left beside it


# -- foreign SQLite databases ---------------------------------------------------------------------

FOREIGN_KINDS = {
    "rollback journal": "PRAGMA journal_mode = DELETE",
    "WAL journal": "PRAGMA journal_mode = WAL",
    "another application id": "PRAGMA application_id = 1179603789",  # 'FOSM'
}


def make_foreign(path: Path, setup: str) -> list[tuple[int, str]]:
    conn = sqlite3.connect(path)
    try:
        conn.execute(setup)
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        conn.executemany("INSERT INTO users (name) VALUES (?)", [(f"user-{i}",) for i in range(100)])
        conn.commit()
        rows: list[tuple[int, str]] = conn.execute("SELECT id, name FROM users ORDER BY id").fetchall()
        return rows
    finally:
        conn.close()


@pytest.mark.parametrize("kind", list(FOREIGN_KINDS), ids=list(FOREIGN_KINDS))
async def test_foreign_sqlite_database_is_refused_and_left_untouched(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "state.db"
    rows = make_foreign(path, FOREIGN_KINDS[kind])
    before = snapshot(tmp_path)

    message = await refused(path)

    assert re.search(FOREIGN, message, re.IGNORECASE), message
    assert snapshot(tmp_path) == before  # not even its journal mode was changed
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        assert conn.execute("SELECT id, name FROM users ORDER BY id").fetchall() == rows
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        assert tables == ["users"]
    finally:
        conn.close()


# -- mounts ---------------------------------------------------------------------------------------


class Mounts:
    """Real file systems mounted under a test's tmp dir, all unmounted by the fixture."""

    def __init__(self, base: Path) -> None:
        self._base = base
        self._mounted: list[Path] = []

    def tmpfs(self, size: str) -> Path:
        target = self._base / f"tmpfs{len(self._mounted)}"
        target.mkdir()
        run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "k3py-test", target], capture=True)
        self._mounted.append(target)
        return target

    def ext4(self, size_mib: int) -> tuple[Path, Path]:
        """A fresh ext4 file system on a loop device that turns read-only on any error."""
        image = self._base / f"ext4-{len(self._mounted)}.img"
        with image.open("wb") as f:
            f.truncate(size_mib << 20)
        run(["mkfs.ext4", "-q", "-F", image], capture=True)
        target = self._base / f"ext4-{len(self._mounted)}"
        target.mkdir()
        self.mount_ext4(image, target)
        return image, target

    def mount_ext4(self, image: Path, target: Path) -> None:
        run(["mount", "-o", "loop,errors=remount-ro", image, target], capture=True)
        if target not in self._mounted:
            self._mounted.append(target)

    def remount(self, target: Path, opts: str) -> None:
        run(["mount", "-o", f"remount,{opts}", target], capture=True)

    def unmount(self, target: Path) -> None:
        run(["umount", target], capture=True)
        self._mounted.remove(target)

    def device(self, target: Path) -> str:
        source = run(["findmnt", "-n", "-o", "SOURCE", target], capture=True).stdout.strip()
        return Path(source).name

    def cleanup(self) -> None:
        for target in reversed(self._mounted):
            # Lazily if something (a store a failed test left open) still holds it.
            if run(["umount", target], check=False, capture=True).returncode != 0:
                run(["umount", "--lazy", target], check=False, capture=True)
        self._mounted.clear()


@pytest.fixture
def mounts(tmp_path: Path) -> Iterator[Mounts]:
    m = Mounts(tmp_path)
    try:
        yield m
    finally:
        m.cleanup()


@asynccontextmanager
async def watching(store: SQLiteStore, after: int) -> AsyncIterator[list[Event]]:
    """Collect every event after ``after`` into the yielded list until the block ends."""
    seen: list[Event] = []

    async def consume() -> None:
        async with store.watch(b"", after=after) as watch:
            async for batch in watch:
                seen.extend(batch)

    task = asyncio.create_task(consume(), name="test-watcher")
    await asyncio.sleep(0)
    try:
        yield seen
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task  # a watcher that died early raises its own error here


async def settle(seen: list[Event], count: int) -> None:
    """Wait until a watcher has ``count`` events, then a little longer for any extra ones."""
    async with asyncio.timeout(TIMEOUT):
        while len(seen) < count:  # noqa: ASYNC110 - the watcher task only appends
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)


# -- read-only file systems -----------------------------------------------------------------------


@pytest.mark.root
async def test_open_on_a_read_only_filesystem_is_refused_then_works_when_writable(mounts: Mounts) -> None:
    mnt = mounts.tmpfs("8m")
    path = mnt / "data" / "state.db"
    written = await fill(path, 50)
    before = snapshot(path.parent)
    mounts.remount(mnt, "ro")

    message = await refused(path)

    assert snapshot(path.parent) == before
    mounts.remount(mnt, "rw")
    store = await open_store(options(path))
    try:
        assert await contents(store) == written
        assert store.current_revision == max(kv.mod_revision for kv in written.values())
        kv = await store.create(b"/after", b"writable again")
        assert kv.mod_revision == store.current_revision
    finally:
        await store.close()
    assert re.search(READ_ONLY, message, re.IGNORECASE), message  # last: the data matters more


@pytest.mark.root
async def test_writes_fail_cleanly_when_the_filesystem_turns_read_only(mounts: Mounts) -> None:
    # A tmpfs cannot be remounted read-only while the store holds files open for writing
    # (EBUSY). The real way a data disk goes read-only under a running server is ext4's
    # errors=remount-ro: the kernel's own test hook raises such an error.
    image, mnt = mounts.ext4(32)
    path = mnt / "data" / "state.db"
    messages: list[str] = []
    store = await open_store(options(path))
    try:
        written: dict[bytes, KeyValue] = {}
        for i in range(50):
            key = b"/k/%03d" % i
            written[key] = await store.create(key, value_for(key))
        head = store.current_revision
        async with watching(store, head) as seen:
            (Path("/sys/fs/ext4") / mounts.device(mnt) / "trigger_fs_error").write_text("k3py test\n")
            writes: list[Callable[[], Awaitable[KeyValue]]] = [
                lambda: store.create(b"/new", b"never stored"),
                lambda: store.update(b"/k/001", b"never stored"),
                lambda: store.delete(b"/k/002"),
            ]
            for write in writes:
                with pytest.raises(StoreUnavailable) as caught:
                    async with asyncio.timeout(TIMEOUT):
                        await write()
                messages.append(str(caught.value))
            async with asyncio.timeout(TIMEOUT):  # a group commit fails as a whole, as clearly
                group = await asyncio.gather(
                    *(store.create(b"/group/%d" % i, b"never stored") for i in range(4)),
                    return_exceptions=True,
                )
            assert all(isinstance(result, StoreUnavailable) for result in group), group
            messages += [str(result) for result in group]
            assert store.current_revision == head
            assert await store.get(b"/new") is None
            assert await contents(store) == written  # reads still answer, from what was committed
            await asyncio.sleep(0.1)
            assert seen == []
    finally:
        async with asyncio.timeout(TIMEOUT):
            await store.close()

    # Repair the file system as an operator would, then the store is whole again.
    mounts.unmount(mnt)
    fsck = run(["e2fsck", "-f", "-y", image], check=False, capture=True)
    assert fsck.returncode in (0, 1), fsck.stdout + fsck.stderr  # 1: errors were corrected
    mounts.mount_ext4(image, mnt)
    store = await open_store(options(path))
    try:
        assert store.current_revision == head
        assert await contents(store) == written
        kv = await store.create(b"/new", b"now it fits")
        assert kv.mod_revision == head + 1
    finally:
        await store.close()
    # Checked last, so that a vague message does not hide whether the data survived.
    for message in messages:
        assert re.search(READ_ONLY, message, re.IGNORECASE), message


# -- full disk ------------------------------------------------------------------------------------

GROUP = 8  # writes submitted together, so failures also hit whole group commits


def fill_remaining_space(directory: Path) -> Path:
    """Write a file until the file system has no byte left; return it so it can be removed."""
    filler = directory / "filler"
    chunk = b"\0" * 4096
    with filler.open("wb", buffering=0) as f:
        try:
            while True:
                f.write(chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    with filler.open("ab", buffering=0) as f:  # and any last partial block
        for size in (2048, 1024, 512, 256, 128, 64, 32, 16, 8, 4, 2, 1):
            try:
                f.write(b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
    return filler


@pytest.mark.root
async def test_full_disk_fails_only_the_writes_that_do_not_fit(mounts: Mounts) -> None:
    mnt = mounts.tmpfs("1m")
    path = mnt / "data" / "state.db"
    store = await open_store(options(path))
    acked: dict[bytes, KeyValue] = {}
    failed: dict[bytes, BaseException] = {}
    try:
        base = store.current_revision
        async with watching(store, base) as seen:
            async with asyncio.timeout(TIMEOUT):
                n = 0
                while not failed:
                    names = [b"/full/%06d" % (n + i) for i in range(GROUP)]
                    n += GROUP
                    results = await asyncio.gather(
                        *(store.create(k, value_for(k)) for k in names), return_exceptions=True
                    )
                    for key, result in zip(names, results, strict=True):
                        if isinstance(result, BaseException):
                            failed[key] = result
                        else:
                            acked[key] = result
            assert len(acked) > 50  # the disk held a fair amount before it filled
            in_database = len(revisions_in_database(path))
            assert in_database < len(acked)  # the newest acknowledged writes wait in the commit log

            for error in failed.values():
                assert isinstance(error, StoreUnavailable), repr(error)
                assert re.search(DISK_FULL, str(error), re.IGNORECASE), str(error)
            # Acknowledged writes hold consecutive revisions: no failed write consumed one.
            assert sorted(kv.mod_revision for kv in acked.values()) == list(
                range(base + 1, base + 1 + len(acked))
            )
            assert store.current_revision == base + len(acked)
            for key in failed:
                assert await store.get(key) is None
            assert await contents(store, b"/full/") == acked
            assert await store.count(b"/full/", prefix_end(b"/full/")) == len(acked)
            await settle(seen, len(acked))
            assert [(e.type, e.kv) for e in seen] == [
                (EventType.CREATE, kv) for kv in sorted(acked.values(), key=lambda kv: kv.mod_revision)
            ]
    finally:
        async with asyncio.timeout(TIMEOUT):
            await store.close()
    head = base + len(acked)

    # Reopened on the still-full disk: everything acknowledged, nothing else.
    store = await open_store(options(path))
    try:
        assert store.current_revision == head
        assert await contents(store) == acked
    finally:
        await store.close()
    assert len(revisions_in_database(path)) == in_database

    # Once there is room again, the store goes on from where it was.
    mounts.remount(mnt, "size=8m")
    store = await open_store(options(path))
    try:
        for key in failed:
            kv = await store.create(key, value_for(key))
            acked[key] = kv
        assert store.current_revision == head + len(failed)
        assert await contents(store) == acked
    finally:
        await store.close()
    assert len(revisions_in_database(path)) == len(acked)
    store = await open_store(options(path))
    try:
        assert await contents(store) == acked
    finally:
        await store.close()


@pytest.mark.root
async def test_full_disk_keeps_the_open_store_writable_once_space_is_freed(mounts: Mounts) -> None:
    mnt = mounts.tmpfs("1m")
    path = mnt / "data" / "state.db"
    store = await open_store(options(path))
    written: dict[bytes, KeyValue] = {}
    try:
        async with asyncio.timeout(TIMEOUT):
            i = 0
            while True:
                key = b"/k/%05d" % i
                try:
                    written[key] = await store.create(key, value_for(key))
                except StoreUnavailable as exc:
                    assert re.search(DISK_FULL, str(exc), re.IGNORECASE), str(exc)
                    break
                i += 1
        head = store.current_revision
        assert head == max(kv.mod_revision for kv in written.values())  # the failure took no revision
        mounts.remount(mnt, "size=8m")  # the same store, without reopening
        kv = await store.create(b"/after", b"room again")
        assert kv.mod_revision == head + 1
        written[b"/after"] = kv
        assert await contents(store) == written
    finally:
        await store.close()
    store = await open_store(options(path))
    try:
        assert await contents(store) == written
    finally:
        await store.close()


@pytest.mark.root
async def test_a_store_opened_with_writes_sqlite_cannot_take_appends_after_them(
    mounts: Mounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer, "DEFER_SECONDS", 3600.0)  # rows wait until the store closes
    mnt = mounts.tmpfs("4m")
    path = mnt / "data" / "state.db"
    written: dict[bytes, KeyValue] = {}
    store = await open_store(options(path))
    try:
        for i in range(10):
            key = b"/before/%d" % i
            written[key] = await store.create(key, value_for(key))
        filler = fill_remaining_space(mnt)
    finally:
        await store.close()  # SQLite cannot take the ten rows: they stay in the commit log
    assert len(revisions_in_database(path)) == 0

    # Opened on the full disk: the rows are served from memory, and new writes go into the
    # commit log after them (the log has room; SQLite has none).
    store = await open_store(options(path))
    try:
        assert await contents(store) == written
        for i in range(5):
            key = b"/after/%d" % i
            written[key] = await store.create(key, value_for(key))
        assert await contents(store) == written
    finally:
        await store.close()
    assert len(revisions_in_database(path)) == 0

    filler.unlink()
    store = await open_store(options(path))
    try:
        assert await contents(store) == written
        assert store.current_revision == max(kv.mod_revision for kv in written.values())
    finally:
        await store.close()
    assert len(revisions_in_database(path)) == len(written)


@pytest.mark.root
async def test_compaction_that_does_not_fit_changes_nothing(mounts: Mounts) -> None:
    mnt = mounts.tmpfs("1m")
    path = mnt / "data" / "state.db"
    store = await open_store(options(path))
    names = [b"/c/%02d" % i for i in range(20)]
    try:
        for key in names:
            await store.create(key, value_for(key, 200))
        async with asyncio.timeout(TIMEOUT):
            n = 0
            while True:
                key = names[n % len(names)]
                try:
                    await store.update(key, value_for(key + b"%d" % n, 200))
                except StoreUnavailable:
                    break
                n += 1
        filler = fill_remaining_space(mnt)
        head = store.current_revision
        old = head - 3 * len(names)
        assert old > 1 + len(names)
        at_old = await store.range(b"", b"", rev=old)
        latest = await contents(store)

        with pytest.raises(StoreUnavailable, match=DISK_FULL):
            async with asyncio.timeout(TIMEOUT):
                await store.compact(head - 1)

        assert store.compact_revision == 0  # nothing was compacted, and the store says so
        assert await store.range(b"", b"", rev=old) == at_old  # history is still readable
        async with store.watch(b"", after=old) as watch, asyncio.timeout(TIMEOUT):
            async for batch in watch:
                assert batch[0].revision == old + 1
                break
        assert await contents(store) == latest
        assert store.current_revision == head

        filler.unlink()
        mounts.remount(mnt, "size=8m")
        assert await store.compact(head - 1) == head - 1
        assert store.compact_revision == head - 1
    finally:
        await store.close()
    store = await open_store(options(path))
    try:
        assert store.compact_revision == head - 1
        assert store.current_revision == head
        assert await contents(store) == latest
    finally:
        await store.close()
