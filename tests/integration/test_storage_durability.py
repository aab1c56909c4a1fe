"""The SQLite store under crashes, write contention and a thousand watchers, on real files.

- A writer process is killed with SIGKILL in the middle of a stream of writes, three times
  over the same file. Every write it acknowledged is there afterwards, every value in the
  log is whole, the log has no gaps and nothing beyond one in-flight write per writer task,
  and the reopened store takes new writes.
- 64 tasks increment four shared counters by compare-and-swap while readers list them on
  the reader threads: no increment is lost, every listing is a consistent snapshot, and the
  only error anyone sees is ``Conflict``.
- 1,000 watchers on overlapping prefixes, some consuming so slowly that they overflow their
  buffer and catch up from the log, each see exactly the events of their prefix.

Run as a script (``python test_storage_durability.py write DB FIRST_SEQ``) this file is the
writer process of the crash test; it writes until it is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import random
import signal
import struct
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from k3py.storage import (
    CompactionOptions,
    Conflict,
    Event,
    EventType,
    KeyValue,
    SQLiteOptions,
    SQLiteStore,
    open_store,
    prefix_end,
)

NO_COMPACTION = CompactionOptions(enabled=False)
FIRST_REVISION = 2  # a new store is at revision 1; its first write gets 2

# -- self-checking values -----------------------------------------------------------------------

_SEQ = struct.Struct(">Q")
_DIGEST = 32
MAX_PAYLOAD = 4096


def make_value(key: bytes, seq: int) -> bytes:
    """``seq | sha256(key, seq, payload) | payload``, the payload's size and bytes drawn from ``seq``."""
    rng = random.Random(seq)
    payload = rng.randbytes(rng.randrange(MAX_PAYLOAD))
    head = _SEQ.pack(seq)
    return head + hashlib.sha256(key + head + payload).digest() + payload


def check_value(key: bytes, value: bytes) -> int:
    """The sequence number ``value`` was made with; fails if it is torn or belongs to another key."""
    assert len(value) >= _SEQ.size + _DIGEST, f"{key!r}: value truncated to {len(value)} bytes"
    head, digest = value[: _SEQ.size], value[_SEQ.size : _SEQ.size + _DIGEST]
    payload = value[_SEQ.size + _DIGEST :]
    assert hashlib.sha256(key + head + payload).digest() == digest, f"{key!r}: checksum mismatch"
    seq: int = _SEQ.unpack(head)[0]
    assert value == make_value(key, seq), f"{key!r}: value of seq {seq} has the wrong length"
    return seq


def describe(event: Event) -> str:
    prev = f" (prev @{event.prev.mod_revision} v{event.prev.version})" if event.prev else ""
    return f"{event.type.value} {event.kv.key!r} @{event.revision} v{event.kv.version}{prev}"


def first_difference(got: Sequence[Event], want: Sequence[Event]) -> str | None:
    """Where two event sequences part, in words; None if they are equal."""
    for i, (g, w) in enumerate(zip(got, want, strict=False)):
        if g != w:
            return f"event {i}: got {describe(g)}, want {describe(w)}"
    if len(got) > len(want):
        return f"{len(got) - len(want)} extra events, the first {describe(got[len(want)])}"
    if len(got) < len(want):
        return f"{len(want) - len(got)} events missing, the first {describe(want[len(got)])}"
    return None


async def read_log(store: SQLiteStore) -> list[Event]:
    """Every event up to the current revision, as a watch replays them from the log."""
    head = store.current_revision
    events: list[Event] = []
    if head < FIRST_REVISION:
        return events
    async with asyncio.timeout(10), store.watch(b"", after=FIRST_REVISION - 1) as w:
        async for batch in w:
            events.extend(batch)
            if events[-1].revision >= head:
                break
    return events


async def settle(done: Callable[[], bool], within: float) -> None:
    """Wait until ``done()`` or ``within`` seconds passed; the caller's checks say what is wrong."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(within):
            while not done():  # noqa: ASYNC110 - the condition spans many tasks
                await asyncio.sleep(0.01)


# -- 1. SIGKILL in the middle of a write stream ---------------------------------------------------

WRITER_TASKS = 8
KEYS_PER_TASK = 8
ROUNDS = 3
SEQS_PER_ROUND = 1_000_000
PARENT_SEQ = SEQS_PER_ROUND // 2  # the parent's own writes take seqs from here in each round


def writer_key(task: int, i: int) -> bytes:
    return b"/crash/%d/%d" % (task, i)


def key_task(key: bytes) -> bytes:
    return key.split(b"/")[2]


async def write_until_killed(path: Path, first_seq: int) -> None:
    """The writer process: tasks with their own keys, each printing a write once it returned."""
    store = await open_store(SQLiteOptions(path=path, compaction=NO_COMPACTION))
    seqs = itertools.count(first_seq)

    async def writer(task: int) -> None:
        keys = [writer_key(task, i) for i in range(KEYS_PER_TASK)]
        live = {key for key in keys if await store.get(key) is not None}
        rng = random.Random(first_seq + task)
        while True:
            key = rng.choice(keys)
            seq = next(seqs)
            value = make_value(key, seq)
            kv = await (store.update(key, value) if key in live else store.create(key, value))
            live.add(key)
            # One write(2) per line, whatever the buffering, so a kill never cuts a line short.
            sys.stdout.write(f"{key.hex()} {kv.mod_revision} {seq} {hashlib.sha256(value).hexdigest()}\n")
            sys.stdout.flush()

    await asyncio.gather(*(writer(t) for t in range(WRITER_TASKS)))


@dataclass(frozen=True)
class Ack:
    key: bytes
    rev: int
    seq: int
    digest: str

    @classmethod
    def parse(cls, line: bytes) -> Ack:
        key, rev, seq, digest = line.decode().split()
        return cls(bytes.fromhex(key), int(rev), int(seq), digest)


def last_words(stderr: Path) -> str:
    """The end of what a writer process printed on stderr."""
    return stderr.read_text(errors="replace")[-4000:]


async def run_writer(path: Path, first_seq: int, kill_after: int, stderr: Path) -> list[Ack]:
    """Start a writer, SIGKILL it after ``kill_after`` acknowledgements; every ack it printed."""
    with stderr.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "write",
            str(path),
            str(first_seq),
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
        )
    assert proc.stdout is not None
    acks: list[Ack] = []
    try:
        async with asyncio.timeout(30):
            while len(acks) < kill_after and (line := await proc.stdout.readline()):
                acks.append(Ack.parse(line))
            assert len(acks) == kill_after, f"writer stopped after {len(acks)} acks:\n{last_words(stderr)}"
            proc.kill()
            # Lines printed before the signal landed are acknowledged writes too; a line cut
            # short (it should not happen: one line is one write of less than PIPE_BUF bytes)
            # was never acknowledged.
            rest = await proc.stdout.read()
            acks.extend(Ack.parse(line) for line in rest.splitlines(keepends=True) if line.endswith(b"\n"))
            await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == -signal.SIGKILL, last_words(stderr)
    return acks


def check_log(log: list[Event], head: int) -> None:
    """Revisions 2..head without gaps, each value whole, each key's history well formed."""
    revs = [e.revision for e in log]
    if revs != list(range(FIRST_REVISION, head + 1)):
        missing = sorted(set(range(FIRST_REVISION, head + 1)) - set(revs))
        raise AssertionError(f"log is not revisions {FIRST_REVISION}..{head}: missing {missing[:10]}")
    last: dict[bytes, Event] = {}
    seqs: set[int] = set()
    for e in log:
        key = e.kv.key
        seq = check_value(key, e.kv.value)
        assert seq not in seqs, f"seq {seq} stored twice (again at revision {e.revision})"
        seqs.add(seq)
        before = last.get(key)
        if before is None:
            assert (e.type, e.prev, e.kv.create_revision, e.kv.version) == (
                EventType.CREATE,
                None,
                e.revision,
                1,
            ), describe(e)
        else:
            assert e.type is EventType.UPDATE, describe(e)
            assert e.prev == before.kv, f"{describe(e)} does not follow {describe(before)}"
            assert e.kv.create_revision == before.kv.create_revision, describe(e)
            assert e.kv.version == before.kv.version + 1, describe(e)
        last[key] = e


async def verify_after_crash(
    options: SQLiteOptions, acked: list[Ack], round_acks: list[Ack], previous_head: int, parent_seq: int
) -> int:
    """Reopen after a kill, check everything, write twice; the head revision afterwards."""
    store = await open_store(options)
    try:
        head = store.current_revision
        log = await read_log(store)
        check_log(log, head)
        at = {e.revision: e for e in log}

        lost = [ack for ack in acked if ack.rev > head]
        assert not lost, f"{len(lost)} acknowledged writes lost (store reopened at {head}), e.g. {lost[0]}"
        for ack in acked:
            kv = await store.get(ack.key, rev=ack.rev)
            assert kv is not None, f"acknowledged {ack} is missing"
            assert kv.mod_revision == ack.rev, f"acknowledged {ack} found at revision {kv.mod_revision}"
            assert hashlib.sha256(kv.value).hexdigest() == ack.digest, f"acknowledged {ack} has another value"
            assert check_value(ack.key, kv.value) == ack.seq
            assert at[ack.rev].kv == kv

        # Committed but never acknowledged: at most the one write each task had in flight,
        # made by this round's writer, and newer than anything that task acknowledged.
        acked_revs = {a.rev for a in round_acks}
        assert len(acked_revs) == len(round_acks), "two acknowledgements name one revision"
        assert min(acked_revs) > previous_head
        unacked = [at[rev] for rev in range(previous_head + 1, head + 1) if rev not in acked_revs]
        per_task = Counter(key_task(e.kv.key) for e in unacked)
        assert max(per_task.values(), default=0) <= 1, (
            f"more than one unacknowledged write per task: {per_task}"
        )
        first_seq = round_acks[0].seq // SEQS_PER_ROUND * SEQS_PER_ROUND
        for e in unacked:
            assert first_seq <= check_value(e.kv.key, e.kv.value) < first_seq + PARENT_SEQ, describe(e)
            task_revs = [a.rev for a in round_acks if key_task(a.key) == key_task(e.kv.key)]
            assert e.revision > max(task_revs, default=0), (
                f"{describe(e)} is older than an acknowledged write"
            )

        latest = await store.range(b"", b"", limit=0)
        assert latest.revision == head
        for kv in latest.kvs:
            check_value(kv.key, kv.value)

        # The store goes on: an update of a key the writer had and a new key.
        old = await store.get(round_acks[-1].key)
        assert old is not None
        value = make_value(old.key, parent_seq)
        kv = await store.update(old.key, value, expected_mod=old.mod_revision)
        assert (kv.mod_revision, kv.version) == (head + 1, old.version + 1)
        key = b"/crash/parent/%d" % parent_seq
        kv = await store.create(key, make_value(key, parent_seq + 1))
        assert kv.mod_revision == head + 2
        assert await store.get(old.key) == KeyValue(
            old.key, value, old.create_revision, head + 1, old.version + 1
        )
        return store.current_revision
    finally:
        await store.close()


async def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    options = SQLiteOptions(path=tmp_path / "state.db", compaction=NO_COMPACTION)
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    acked: list[Ack] = []
    head = FIRST_REVISION - 1
    for round_ in range(1, ROUNDS + 1):
        kill_after = rng.randrange(200, 2001)
        first_seq = round_ * SEQS_PER_ROUND
        round_acks = await run_writer(options.path, first_seq, kill_after, tmp_path / f"writer{round_}.err")
        assert len(round_acks) >= kill_after
        acked += round_acks
        try:
            head = await verify_after_crash(options, acked, round_acks, head, first_seq + PARENT_SEQ)
        except AssertionError as exc:
            exc.add_note(f"round {round_}, killed after {kill_after} acks, seed {seed}")
            raise

    store = await open_store(options)
    try:
        assert store.current_revision == head
        check_log(await read_log(store), head)
    finally:
        await store.close()


# -- 2. compare-and-swap under contention ----------------------------------------------------------

COUNTERS = [b"/counters/%d" % i for i in range(4)]
INCREMENTERS = 64
INCREMENTS = 30
LISTERS = 4


@dataclass
class Tally:
    done: Counter[bytes] = field(default_factory=Counter)
    conflicts: int = 0
    snapshots: int = 0
    unexpected: list[str] = field(default_factory=list)


async def test_compare_and_swap_increments_lose_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="k3py.storage")
    # Compaction deletes history every 100 writes meanwhile, far enough behind the head that
    # no read at the head can lose its rows.
    compaction = CompactionOptions(retain_revisions=500, trigger_revisions=100)
    store = await open_store(SQLiteOptions(path=tmp_path / "state.db", compaction=compaction))
    tally = Tally()
    incrementing = True
    history: list[Event] = []
    background: list[asyncio.Task[None]] = []
    try:
        created = {key: (await store.create(key, b"0")).mod_revision for key in COUNTERS}
        base = store.current_revision

        async def increment(task: int) -> None:
            rng = random.Random(task)
            try:
                for _ in range(INCREMENTS):
                    key = rng.choice(COUNTERS)
                    while True:
                        kv = await store.get(key)
                        assert kv is not None
                        if rng.random() < 0.5:  # let others commit in between, not only in our group
                            await asyncio.sleep(0)
                        try:
                            await store.update(key, b"%d" % (int(kv.value) + 1), expected_mod=kv.mod_revision)
                        except Conflict as exc:
                            assert exc.expected == kv.mod_revision < exc.actual, exc
                            tally.conflicts += 1
                            continue
                        tally.done[key] += 1
                        break
            except Exception as exc:
                tally.unexpected.append(f"incrementer {task}: {exc!r}")

        async def list_counters() -> None:
            """Each listing (on a reader thread) is one snapshot: the counters add up to its revision."""
            try:
                while incrementing:
                    page = await store.range(COUNTERS[0], prefix_end(b"/counters/"), limit=0)
                    assert [kv.key for kv in page.kvs] == COUNTERS
                    assert sum(int(kv.value) for kv in page.kvs) == page.revision - base, page
                    tally.snapshots += 1
            except Exception as exc:
                tally.unexpected.append(f"lister: {exc!r}")

        async def watch() -> None:
            async with store.watch(b"/counters/", after=base) as w:
                async for batch in w:
                    history.extend(batch)

        background.append(asyncio.create_task(watch(), name="counter-watch"))
        listers = [asyncio.create_task(list_counters(), name=f"lister-{i}") for i in range(LISTERS)]
        background += listers
        async with asyncio.timeout(30):
            await asyncio.gather(*(increment(t) for t in range(INCREMENTERS)))
            incrementing = False
            await asyncio.gather(*listers)
        assert tally.unexpected == []
        total = INCREMENTERS * INCREMENTS
        assert sum(tally.done.values()) == total
        assert tally.conflicts > 0, "no compare-and-swap ever lost: the test did not contend"
        assert tally.snapshots > 0
        for key in COUNTERS:
            kv = await store.get(key)
            assert kv is not None
            assert (int(kv.value), kv.version) == (tally.done[key], tally.done[key] + 1), key
        assert store.current_revision == base + total  # a lost compare-and-swap writes nothing
        assert store.compact_revision > 0

        # Every increment, once, in order: n is followed by n + 1 on each counter.
        await settle(lambda: len(history) >= total or background[0].done(), 10)
        assert [e.revision for e in history] == list(range(base + 1, base + total + 1))
        last = {key: (b"0", rev) for key, rev in created.items()}
        for e in history:
            value, rev = last[e.kv.key]
            assert e.type is EventType.UPDATE and e.prev is not None
            assert (e.prev.value, e.prev.mod_revision) == (value, rev), describe(e)
            assert int(e.kv.value) == int(value) + 1, describe(e)
            last[e.kv.key] = (e.kv.value, e.revision)
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    finally:
        incrementing = False
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await store.close()


# -- 3. a thousand watchers -----------------------------------------------------------------------

WATCHERS = 1000
SLOW_EVERY = 7  # every 7th watcher is slow, so slow ones are spread over every prefix
PREFIXES = [b"", b"/a/", b"/b/", b"/c/", b"/a/1"]
KEYS = (
    [b"/a/%d" % i for i in range(20)]
    + [b"/b/%d" % i for i in range(20)]
    + [b"/c/%d" % i for i in range(10)]
    + [b"/a", b"/d/x"]
)
WRITES = 2000
# Below what any prefix gets while the slow watchers stall (about 200 events for /c/ and
# /a/1, 1,000 for b""), so every slow watcher overflows; fast ones mostly keep up.
SMALL_BUFFER = 150


@dataclass
class Expected:
    """What the store must do: the live keys and every event, applied in submission order."""

    revision: int
    live: dict[bytes, KeyValue] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)

    def plan(self, key: bytes, rng: random.Random) -> Event:
        prev = self.live.get(key)
        self.revision += 1
        rev = self.revision
        value = b"v%d" % rev
        if prev is None:
            event = Event(EventType.CREATE, KeyValue(key, value, rev, rev, 1), None)
        elif rng.random() < 0.75:
            kv = KeyValue(key, value, prev.create_revision, rev, prev.version + 1)
            event = Event(EventType.UPDATE, kv, prev)
        else:
            event = Event(EventType.DELETE, KeyValue(key, b"", prev.create_revision, rev, 0), prev)
        if event.type is EventType.DELETE:
            del self.live[key]
        else:
            self.live[key] = event.kv
        self.events.append(event)
        return event


async def submit(store: SQLiteStore, event: Event) -> None:
    """Make the store write ``event``, with compare-and-swap on the revision it must replace."""
    key = event.kv.key
    if event.type is EventType.CREATE:
        assert await store.create(key, event.kv.value) == event.kv
        return
    assert event.prev is not None
    if event.type is EventType.UPDATE:
        kv = await store.update(key, event.kv.value, expected_mod=event.prev.mod_revision)
        assert kv == event.kv
    else:
        assert await store.delete(key, expected_mod=event.prev.mod_revision) == event.prev


async def write_workload(store: SQLiteStore, expected: Expected, halfway: asyncio.Event) -> None:
    """~2,000 writes: single ones, and bursts that one group commit takes together."""
    rng = random.Random(1)
    while len(expected.events) < WRITES:
        if rng.random() < 0.3:
            burst = [expected.plan(rng.choice(KEYS), rng) for _ in range(rng.randrange(2, 40))]
            await asyncio.gather(*(submit(store, e) for e in burst))
        else:
            await submit(store, expected.plan(rng.choice(KEYS), rng))
        if len(expected.events) >= WRITES // 2:
            halfway.set()


@dataclass
class Watcher:
    prefix: bytes
    slow: bool
    seen: list[Event] = field(default_factory=list)
    task: asyncio.Task[None] | None = None

    async def follow(self, store: SQLiteStore, after: int, halfway: asyncio.Event) -> None:
        async with store.watch(self.prefix, after=after) as w:
            async for batch in w:
                self.seen.extend(batch)
                if self.slow:
                    # Live from the start, then stalled until half the writes are in and slow
                    # after that: the events pile up, and overflow a small buffer.
                    await halfway.wait()
                    await asyncio.sleep(0.005)


@pytest.mark.parametrize("buffer", [None, SMALL_BUFFER], ids=["default-buffer", "small-buffer"])
async def test_thousand_watchers_see_exactly_their_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, buffer: int | None
) -> None:
    options = SQLiteOptions(path=tmp_path / "state.db", compaction=NO_COMPACTION)
    if buffer is not None:
        options = replace(options, watch_buffer=buffer)
    store = await open_store(options)
    catch_ups = 0
    read_history = store._history

    def counting_history(start: bytes, end: bytes, after: int, upto: int) -> asyncio.Future[list[Event]]:
        nonlocal catch_ups
        catch_ups += 1
        return read_history(start, end, after, upto)

    # A spy, not a fake: watchers started at the head read the log only to catch up.
    monkeypatch.setattr(store, "_history", counting_history)
    watchers = [Watcher(PREFIXES[i % len(PREFIXES)], slow=i % SLOW_EVERY == 0) for i in range(WATCHERS)]
    try:
        expected = Expected(store.current_revision)
        rng = random.Random(0)
        for key in KEYS[::2]:  # history before the watch starts, which no watcher may see
            await submit(store, expected.plan(key, rng))
        start = store.current_revision
        expected.events.clear()
        halfway = asyncio.Event()
        for i, watcher in enumerate(watchers):
            watcher.task = asyncio.create_task(watcher.follow(store, start, halfway), name=f"watcher-{i}")
        await settle(lambda: store.watcher_count == WATCHERS, 5)
        assert store.watcher_count == WATCHERS

        async with asyncio.timeout(20):
            await write_workload(store, expected, halfway)
        want = {p: [e for e in expected.events if e.kv.key.startswith(p)] for p in PREFIXES}
        await settle(lambda: all(len(w.seen) >= len(want[w.prefix]) for w in watchers), 10)
        await asyncio.sleep(0.1)  # a duplicate or a stray event would have arrived by now

        failed = [f"{t.get_name()}: {t.exception()!r}" for w in watchers if (t := w.task) and t.done()]
        assert failed == []
        wrong = []
        for i, w in enumerate(watchers):
            difference = first_difference(w.seen, want[w.prefix])
            if difference is not None:
                wrong.append(f"watcher {i} on {w.prefix!r}{' (slow)' if w.slow else ''}: {difference}")
        assert wrong == [], f"{len(wrong)} watchers wrong, e.g. {wrong[:5]}"
        if buffer is not None:
            slow = sum(w.slow for w in watchers)
            assert catch_ups >= slow, (
                f"{catch_ups} catch-ups for {slow} slow watchers: overflow went untested"
            )
    finally:
        tasks = [w.task for w in watchers if w.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await store.close()


def main(argv: list[str]) -> None:
    if len(argv) != 4 or argv[1] != "write":
        raise SystemExit(f"usage: {argv[0]} write DB FIRST_SEQ")
    asyncio.run(write_until_killed(Path(argv[2]), int(argv[3])))


if __name__ == "__main__":
    main(sys.argv)
