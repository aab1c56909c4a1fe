"""The SQLite store against an in-memory model of etcd-like MVCC semantics (hypothesis).

The model keeps every revision of every key and every event. Rules create, update and
delete with and without compare-and-swap (including stale expectations), read keys and
paginated ranges at the head and at past revisions, compact, reopen the database, check
watches started from past revisions and keep live watches open across steps.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from k3py.storage import (
    Compacted,
    CompactionOptions,
    Conflict,
    EventType,
    FutureRevision,
    KeyExists,
    KeyNotFound,
    SQLiteOptions,
    SQLiteStore,
    open_store,
    prefix_end,
)

KEYS = [b"/a/1", b"/a/2", b"/a/10", b"/b/1", b"/b/2", b"/c"]
PREFIXES = [b"", b"/a/", b"/b/", b"/c", b"/a/1"]
values = st.binary(min_size=0, max_size=40)

T = TypeVar("T")
Observed = tuple[str, bytes, bytes, int, int, int, bytes | None, int | None, int | None]


@dataclass
class Version:
    rev: int
    create: int
    version: int  # 0: deleted
    value: bytes


@dataclass
class Model:
    revision: int = 1
    compacted: int = 0
    history: dict[bytes, list[Version]] = field(default_factory=dict)
    events: list[Observed] = field(default_factory=list)

    def at(self, key: bytes, rev: int) -> Version | None:
        found = None
        for v in self.history.get(key, []):
            if v.rev <= rev:
                found = v
        return found if found is not None and found.version else None

    def latest(self, key: bytes) -> Version | None:
        return self.at(key, self.revision)

    def write(self, key: bytes, value: bytes, deleting: bool = False) -> Version:
        prev = self.latest(key)
        self.revision += 1
        if deleting:
            assert prev is not None
            v = Version(self.revision, prev.create, 0, b"")
        elif prev is None:
            v = Version(self.revision, self.revision, 1, value)
        else:
            v = Version(self.revision, prev.create, prev.version + 1, value)
        self.history.setdefault(key, []).append(v)
        kind = "create" if prev is None else ("delete" if deleting else "update")
        self.events.append(
            (
                kind,
                key,
                v.value,
                v.rev,
                v.create,
                v.version,
                prev.value if prev else None,
                prev.rev if prev else None,
                prev.version if prev else None,
            )
        )
        return v

    def expected_events(self, prefix: bytes, after: int) -> list[Observed]:
        return [e for e in self.events if e[3] > after and e[1].startswith(prefix)]


def observe(events: list[object]) -> list[Observed]:
    out: list[Observed] = []
    for e in events:
        kind = {EventType.CREATE: "create", EventType.UPDATE: "update", EventType.DELETE: "delete"}[
            e.type  # type: ignore[attr-defined]
        ]
        kv, prev = e.kv, e.prev  # type: ignore[attr-defined]
        out.append(
            (
                kind,
                kv.key,
                kv.value,
                kv.mod_revision,
                kv.create_revision,
                kv.version,
                prev.value if prev else None,
                prev.mod_revision if prev else None,
                prev.version if prev else None,
            )
        )
    return out


class StoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.dir = Path(tempfile.mkdtemp(prefix="k3py-model-"))
        self.options = SQLiteOptions(
            path=self.dir / "state.db",
            compaction=CompactionOptions(enabled=False),
            watch_buffer=5,  # small, so live watchers overflow and catch up from the log
        )
        self.store: SQLiteStore = self.run(open_store(self.options))
        self.model = Model()
        self.live: list[tuple[bytes, int, list[Observed], asyncio.Task[None]]] = []

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        try:
            self.check_live_watches()
        finally:
            for *_, task in self.live:
                task.cancel()
            self.run(self.store.close())
            self.loop.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- writes ---------------------------------------------------------------------------

    @rule(key=st.sampled_from(KEYS), value=values)
    def create(self, key: bytes, value: bytes) -> None:
        if self.model.latest(key) is not None:
            try:
                self.run(self.store.create(key, value))
            except KeyExists:
                return
            raise AssertionError("create of a live key succeeded")
        kv = self.run(self.store.create(key, value))
        v = self.model.write(key, value)
        assert (kv.mod_revision, kv.create_revision, kv.version) == (v.rev, v.create, v.version)

    @rule(key=st.sampled_from(KEYS), value=values, cas=st.sampled_from(["none", "good", "stale"]))
    def update(self, key: bytes, value: bytes, cas: str) -> None:
        self._mutate(key, value, cas, deleting=False)

    @rule(key=st.sampled_from(KEYS), cas=st.sampled_from(["none", "good", "stale"]))
    def delete(self, key: bytes, cas: str) -> None:
        self._mutate(key, b"", cas, deleting=True)

    def _mutate(self, key: bytes, value: bytes, cas: str, *, deleting: bool) -> None:
        latest = self.model.latest(key)
        expected = 0
        if cas == "good" and latest is not None:
            expected = latest.rev
        elif cas == "stale":
            expected = latest.rev - 1 if latest is not None and latest.rev > 1 else 1
        op = (
            self.store.delete(key, expected_mod=expected)
            if deleting
            else self.store.update(key, value, expected_mod=expected)
        )
        if latest is None:
            try:
                self.run(op)
            except KeyNotFound:
                return
            raise AssertionError("write to a missing key succeeded")
        if expected and expected != latest.rev:
            try:
                self.run(op)
            except Conflict as exc:
                assert exc.actual == latest.rev
                return
            raise AssertionError("compare-and-swap with a stale revision succeeded")
        kv = self.run(op)
        v = self.model.write(key, value, deleting)
        if deleting:  # delete returns the deleted state
            assert (kv.value, kv.mod_revision) == (latest.value, latest.rev)
        else:
            assert (kv.value, kv.mod_revision, kv.version) == (value, v.rev, v.version)

    @rule(writes=st.lists(st.tuples(st.sampled_from(KEYS), values), min_size=2, max_size=12))
    def burst(self, writes: list[tuple[bytes, bytes]]) -> None:
        """Concurrent writes land in one group commit, in submission order."""

        async def submit() -> list[object]:
            ops = [
                self.store.update(k, v) if self.model.latest(k) is not None else self.store.create(k, v)
                for k, v in writes
            ]
            return await asyncio.gather(*ops, return_exceptions=True)

        results = self.run(submit())
        for (key, value), result in zip(writes, results, strict=True):
            if isinstance(result, KeyExists):  # created earlier in this burst
                assert self.model.latest(key) is not None
                continue
            assert not isinstance(result, BaseException), result
            v = self.model.write(key, value)
            assert result.mod_revision == v.rev  # type: ignore[attr-defined]

    # -- reads ----------------------------------------------------------------------------

    def pick_rev(self, data: st.DataObject) -> int:
        return data.draw(st.integers(min_value=0, max_value=self.model.revision + 2))

    @rule(key=st.sampled_from(KEYS), data=st.data())
    def get(self, key: bytes, data: st.DataObject) -> None:
        rev = self.pick_rev(data)
        if rev > self.model.revision:
            try:
                self.run(self.store.get(key, rev=rev))
            except FutureRevision:
                return
            raise AssertionError("read of a future revision succeeded")
        if 0 < rev < self.model.compacted:
            try:
                self.run(self.store.get(key, rev=rev))
            except Compacted:
                return
            raise AssertionError("read of a compacted revision succeeded")
        want = self.model.at(key, rev or self.model.revision)
        got = self.run(self.store.get(key, rev=rev))
        if want is None:
            assert got is None
        else:
            assert got is not None
            assert (got.value, got.mod_revision, got.create_revision, got.version) == (
                want.value,
                want.rev,
                want.create,
                want.version,
            )

    @rule(prefix=st.sampled_from(PREFIXES), limit=st.integers(0, 3), data=st.data())
    def range(self, prefix: bytes, limit: int, data: st.DataObject) -> None:
        rev = self.pick_rev(data)
        if rev > self.model.revision or 0 < rev < self.model.compacted:
            return
        at = rev or self.model.revision
        want = sorted(
            (k, v.value, v.rev)
            for k in self.model.history
            if k.startswith(prefix) and (v := self.model.at(k, at)) is not None
        )
        got: list[tuple[bytes, bytes, int]] = []
        start, end = prefix, prefix_end(prefix)
        pages = 0
        while True:
            result = self.run(self.store.range(start, end, rev=at, limit=limit))
            assert result.revision == at
            got.extend((kv.key, kv.value, kv.mod_revision) for kv in result.kvs)
            pages += 1
            if not result.more:
                assert result.next_key is None
                break
            assert limit and len(result.kvs) == limit and result.next_key is not None
            start = result.next_key
        assert got == want
        assert self.run(self.store.count(prefix, end)) == len(
            [k for k in self.model.history if k.startswith(prefix) and self.model.latest(k)]
        )

    # -- compaction, restart ----------------------------------------------------------------

    @rule(data=st.data())
    def compact(self, data: st.DataObject) -> None:
        rev = data.draw(st.integers(min_value=1, max_value=self.model.revision))
        done = self.run(self.store.compact(rev))
        target = min(rev, self.model.revision - 1)
        self.model.compacted = max(self.model.compacted, target)
        assert done == self.model.compacted == self.store.compact_revision

    @rule()
    def reopen(self) -> None:
        self.check_live_watches()
        for *_, task in self.live:
            task.cancel()
        self.live.clear()
        self.run(self.store.close())
        self.store = self.run(open_store(self.options))
        assert self.store.current_revision == self.model.revision
        assert self.store.compact_revision == self.model.compacted

    # -- watches --------------------------------------------------------------------------

    @rule(prefix=st.sampled_from(PREFIXES), data=st.data())
    def watch_from_past(self, prefix: bytes, data: st.DataObject) -> None:
        after = data.draw(
            st.integers(min_value=max(0, self.model.compacted - 1), max_value=self.model.revision)
        )
        if after < self.model.compacted:
            try:
                self.run(self._collect(prefix, after, 1))
            except Compacted:
                return
            raise AssertionError("watch from a compacted revision started")
        want = self.model.expected_events(prefix, after)
        got = self.run(self._collect(prefix, after, len(want)))
        assert got == want

    async def _collect(self, prefix: bytes, after: int, count: int) -> list[Observed]:
        got: list[Observed] = []
        async with self.store.watch(prefix, after=after) as w:
            if count == 0:
                return got
            async with asyncio.timeout(10):
                async for batch in w:
                    got.extend(observe(list(batch)))
                    if len(got) >= count:
                        break
        return got

    @precondition(lambda self: len(self.live) < 3)
    @rule(prefix=st.sampled_from(PREFIXES))
    def open_live_watch(self, prefix: bytes) -> None:
        seen: list[Observed] = []
        after = self.model.revision

        async def consume() -> None:
            async with self.store.watch(prefix, after=after) as w:
                async for batch in w:
                    seen.extend(observe(list(batch)))

        task = self.loop.create_task(consume())
        self.run(asyncio.sleep(0))
        self.live.append((prefix, after, seen, task))

    def check_live_watches(self) -> None:
        for prefix, after, seen, task in self.live:
            want = self.model.expected_events(prefix, after)

            async def settle(
                seen: list[Observed] = seen, n: int = len(want), task: asyncio.Task[None] = task
            ) -> None:
                async with asyncio.timeout(10):
                    while len(seen) < n and not task.done():  # noqa: ASYNC110 - the consumer only appends
                        await asyncio.sleep(0.005)

            self.run(settle())
            error = task.exception() if task.done() else None
            if isinstance(error, Compacted):
                # A watcher that fell behind (buffer overflow) catches up from the log; if a
                # compaction removed revisions it had not seen yet, it ends with Compacted
                # (as an etcd watcher does). What it saw until then is still exact. Catching up
                # after ``last`` is a watch from ``last``, refused when ``last < compacted`` as
                # watch_from_past expects.
                last = seen[-1][3] if seen else after
                assert self.model.compacted > last, error
                assert seen == want[: len(seen)]
                continue
            if error is not None:
                raise AssertionError(f"live watch failed: {error!r}") from error
            assert seen == want

    @invariant()
    def revision_matches(self) -> None:
        assert self.store.current_revision == self.model.revision


StoreMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestStoreModel = StoreMachine.TestCase


@pytest.mark.parametrize("count", [499, 500, 501, 1200])
async def test_ranges_on_either_side_of_the_inline_read_return_every_key(tmp_path: Path, count: int) -> None:
    """Ranges without a small limit are read on the loop when the index finds few keys and on
    a pool thread otherwise: both give every live key of the range, at the head and at a past
    revision, and a limit above the number of keys ends the range."""
    store = await open_store(
        SQLiteOptions(path=tmp_path / "state.db", compaction=CompactionOptions(enabled=False))
    )
    try:
        keys = [b"/r/%05d" % i for i in range(count + 2)]
        await asyncio.gather(*(store.create(k, k[::-1]) for k in keys))
        await store.create(b"/s", b"outside")
        before = store.current_revision
        await store.delete(keys[0])
        await store.delete(keys[-1])
        await store.update(keys[1], b"changed")
        for rev, want in (
            (0, [(keys[1], b"changed")] + [(k, k[::-1]) for k in keys[2:-1]]),
            (before, [(k, k[::-1]) for k in keys]),
        ):
            for limit in (0, 501, count + 10):
                got = await store.range(b"/r/", prefix_end(b"/r/"), rev=rev, limit=limit)
                assert got.revision == (rev or store.current_revision)
                if limit and limit < len(want):
                    assert [(kv.key, kv.value) for kv in got.kvs] == want[:limit]
                    assert got.more and got.next_key == want[limit][0]
                else:
                    assert [(kv.key, kv.value) for kv in got.kvs] == want
                    assert not got.more and got.next_key is None
    finally:
        await store.close()
