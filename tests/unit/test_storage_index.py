"""The SQLite backend's in-memory ``KeyIndex`` and the ``prefix_end`` key helper.

Hand-written cases pin the contract (reads at past revisions, tombstones, what compaction
drops and keeps); a hypothesis test checks the index against a plain list of every write,
before and after compacting at any revision.
"""

from __future__ import annotations

from dataclasses import dataclass

import hypothesis.strategies as st
import pytest
from hypothesis import given

from k3py.storage import prefix_end
from k3py.storage.sqlite.index import Entry, KeyIndex, entry_at

# -- prefix_end ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "end"),
    [
        (b"", b""),  # the empty prefix covers every key: no end bound
        (b"a", b"b"),
        (b"/registry/pods/", b"/registry/pods0"),
        (b"a\xff", b"b"),
        (b"a\xfe", b"a\xff"),
        (b"\x00", b"\x01"),
        (b"\xff", b""),
        (b"\xff\xff\xff", b""),  # every key starting with it is the tail of the keyspace
    ],
)
def test_prefix_end_examples(prefix: bytes, end: bytes) -> None:
    assert prefix_end(prefix) == end


@given(prefix=st.binary(max_size=6), key=st.binary(max_size=8))
def test_prefix_end_bounds_exactly_the_keys_with_the_prefix(prefix: bytes, key: bytes) -> None:
    end = prefix_end(prefix)
    in_range = key >= prefix and (not end or key < end)
    assert in_range == key.startswith(prefix)


@given(prefix=st.binary(min_size=1, max_size=6).filter(lambda p: p.strip(b"\xff") != b""))
def test_prefix_end_is_the_smallest_bound(prefix: bytes) -> None:
    end = prefix_end(prefix)
    assert end > prefix
    assert not end.startswith(prefix)
    # Nothing sorts between the prefix's keys and the end: the key just below it has the prefix.
    below = end[:-1] + bytes([end[-1] - 1]) + b"\xff" * 8
    assert below.startswith(prefix)


# -- KeyIndex: a hand-built history --------------------------------------------------------------


def built() -> KeyIndex:
    """rev 2: create a; 3: create b; 4: update a; 5: delete b; 6: create c; 7: create b again."""
    index = KeyIndex()
    index.load(
        [
            (2, b"a", 2, 1),
            (3, b"b", 3, 1),
            (4, b"a", 2, 2),
            (5, b"b", 3, 0),
            (6, b"c", 6, 1),
            (7, b"b", 7, 1),
        ]
    )
    index.revision = 7
    return index


def test_get_at_past_revisions() -> None:
    index = built()
    assert index.get(b"a", 1) is None  # before it existed
    assert index.get(b"a", 2) == (2, 2, 1)
    assert index.get(b"a", 3) == (2, 2, 1)
    assert index.get(b"a", 7) == (4, 2, 2)
    assert index.get(b"b", 4) == (3, 3, 1)
    assert index.get(b"b", 5) is None  # deleted at 5
    assert index.get(b"b", 6) is None
    assert index.get(b"b", 7) == (7, 7, 1)  # recreated: a new create revision, version 1
    assert index.get(b"nope", 7) is None


def test_latest_shows_the_tombstone_that_get_hides() -> None:
    index = KeyIndex()
    index.load([(2, b"k", 2, 1), (3, b"k", 2, 0)])
    assert index.latest(b"k") == (3, 2, 0)
    assert index.get(b"k", 3) is None
    assert index.latest(b"missing") is None


def test_entry_at_picks_the_newest_entry_not_after_rev() -> None:
    history: list[Entry] = [(2, 2, 1), (5, 2, 2), (9, 2, 0)]
    assert entry_at(history, 1) is None
    assert entry_at(history, 4) == (2, 2, 1)
    assert entry_at(history, 5) == (5, 2, 2)
    assert entry_at(history, 8) == (5, 2, 2)
    assert entry_at(history, 100) == (9, 2, 0)


def test_range_at_past_revisions_skips_absent_and_deleted_keys() -> None:
    index = built()
    assert [k for k, _ in index.range(b"", b"", 3, 0).items] == [b"a", b"b"]
    assert [k for k, _ in index.range(b"", b"", 5, 0).items] == [b"a"]
    assert [k for k, _ in index.range(b"", b"", 6, 0).items] == [b"a", b"c"]
    now = index.range(b"", b"", 7, 0)
    assert now.items == [(b"a", (4, 2, 2)), (b"b", (7, 7, 1)), (b"c", (6, 6, 1))]
    assert (now.more, now.next_key) == (False, None)


def test_range_bounds_are_half_open() -> None:
    index = built()
    assert [k for k, _ in index.range(b"b", b"c", 7, 0).items] == [b"b"]
    assert [k for k, _ in index.range(b"a", prefix_end(b"a"), 7, 0).items] == [b"a"]
    assert [k for k, _ in index.range(b"b", b"", 7, 0).items] == [b"b", b"c"]
    assert index.range(b"c", b"b", 7, 0).items == []


def test_range_limit_reports_the_next_live_key() -> None:
    index = built()
    page = index.range(b"", b"", 7, 2)
    assert [k for k, _ in page.items] == [b"a", b"b"]
    assert (page.more, page.next_key) == (True, b"c")
    rest = index.range(b"c", b"", 7, 2)
    assert [k for k, _ in rest.items] == [b"c"]
    assert (rest.more, rest.next_key) == (False, None)
    # At revision 6, "b" is deleted: the page skips it and the next key is "c".
    page = index.range(b"", b"", 6, 1)
    assert [k for k, _ in page.items] == [b"a"]
    assert (page.more, page.next_key) == (True, b"c")
    # Exactly `limit` live keys: nothing more.
    exact = index.range(b"", b"", 7, 3)
    assert (len(exact.items), exact.more, exact.next_key) == (3, False, None)


def test_count_counts_live_keys_at_the_head() -> None:
    index = built()
    assert index.count(b"", b"") == 3
    assert index.count(b"b", b"c") == 1
    index.apply(b"c", (8, 6, 0))
    index.revision = 8
    assert index.count(b"", b"") == 2
    assert len(index) == 3  # the deleted key keeps its history until compaction


def test_apply_keeps_keys_sorted_and_history_ordered() -> None:
    index = KeyIndex()
    for rev, key in enumerate([b"m", b"c", b"x", b"a"], start=2):
        index.apply(key, (rev, rev, 1))
    index.apply(b"c", (6, 3, 2))
    index.revision = 6
    assert [k for k, _ in index.range(b"", b"", 6, 0).items] == [b"a", b"c", b"m", b"x"]
    assert index.get(b"c", 6) == (6, 3, 2)
    assert index.get(b"c", 5) == (3, 3, 1)


def test_fresh_index_revision_bookkeeping() -> None:
    index = KeyIndex()
    assert (index.revision, index.compacted, len(index)) == (1, 0, 0)
    index.load([])
    assert index.range(b"", b"", 1, 0).items == []
    assert index.count(b"", b"") == 0


# -- KeyIndex: compaction -------------------------------------------------------------------------


def test_compaction_keeps_the_newest_version_and_drops_deleted_keys() -> None:
    index = built()
    assert sorted(index.compaction_plan(6).revisions) == [2, 3, 5]  # a@2 superseded; b's create+tombstone
    index.compact(index.compaction_plan(6))
    assert index.get(b"a", 7) == (4, 2, 2)
    assert index.get(b"c", 7) == (6, 6, 1)
    assert index.get(b"b", 7) == (7, 7, 1)  # the recreated key is untouched
    assert index.get(b"b", 6) is None  # its deleted past is gone
    assert index.latest(b"b") == (7, 7, 1)
    assert index.compaction_plan(7).revisions == []  # nothing left to drop


def test_compaction_removes_a_deleted_key_entirely() -> None:
    index = KeyIndex()
    index.load([(2, b"gone", 2, 1), (3, b"gone", 2, 2), (4, b"gone", 2, 0), (5, b"kept", 5, 1)])
    index.revision = 5
    assert sorted(index.compaction_plan(4).revisions) == [2, 3, 4]
    index.compact(index.compaction_plan(4))
    assert len(index) == 1
    assert index.latest(b"gone") is None
    assert [k for k, _ in index.range(b"", b"", 5, 0).items] == [b"kept"]
    assert index.count(b"", b"") == 1


def test_compaction_before_a_tombstone_keeps_it() -> None:
    index = KeyIndex()
    index.load([(2, b"k", 2, 1), (3, b"k", 2, 2), (4, b"k", 2, 0)])
    index.revision = 4
    assert index.compaction_plan(3).revisions == [2]
    index.compact(index.compaction_plan(3))
    assert index.get(b"k", 3) == (3, 2, 2)
    assert index.latest(b"k") == (4, 2, 0)
    index.compact(index.compaction_plan(4))  # the tombstone is now at or before the point: it goes
    assert len(index) == 0


def test_compaction_plan_does_not_change_the_index() -> None:
    index = built()
    index.compaction_plan(7)
    assert index.get(b"a", 2) == (2, 2, 1)
    assert index.get(b"b", 3) == (3, 3, 1)


def test_compaction_of_many_deleted_keys_rebuilds_the_key_list() -> None:
    index = KeyIndex()
    rows = [(2 + i, b"k%03d" % i, 2 + i, 1) for i in range(200)]
    rows += [(202 + j, b"k%03d" % i, 2 + i, 0) for j, i in enumerate(range(0, 200, 2))]  # delete even ones
    index.load(rows)
    index.revision = 301
    index.compact(index.compaction_plan(301))  # 100 keys go at once (more than 64): the bulk path
    odd = [b"k%03d" % i for i in range(1, 200, 2)]
    assert [k for k, _ in index.range(b"", b"", 301, 0).items] == odd
    assert [k for k, _ in index.range(b"k000", b"k010", 301, 3).items] == odd[:3]
    assert len(index) == 100
    assert index.count(b"", b"") == 100


# -- KeyIndex against a model (hypothesis) ---------------------------------------------------------


@dataclass(frozen=True)
class Write:
    rev: int
    key: bytes
    create: int
    version: int  # 0: deleted


def replay(ops: list[tuple[bytes, bool]]) -> list[Write]:
    """Turn (key, delete?) steps into a valid write log: deletes of absent keys are skipped."""
    log: list[Write] = []
    live: dict[bytes, Write] = {}
    rev = 1
    for key, deleting in ops:
        prev = live.get(key)
        if deleting and prev is None:
            continue
        rev += 1
        if deleting:
            assert prev is not None
            w = Write(rev, key, prev.create, 0)
            del live[key]
        elif prev is None:
            w = live[key] = Write(rev, key, rev, 1)
        else:
            w = live[key] = Write(rev, key, prev.create, prev.version + 1)
        log.append(w)
    return log


def model_at(log: list[Write], rev: int) -> dict[bytes, Entry]:
    state: dict[bytes, Entry] = {}
    for w in log:
        if w.rev > rev:
            break
        if w.version:
            state[w.key] = (w.rev, w.create, w.version)
        else:
            state.pop(w.key, None)
    return state


def model_compaction(log: list[Write], rev: int) -> set[int]:
    """Revisions compaction at ``rev`` removes: all but each key's newest row at or before
    ``rev``, and that row too if it is a deletion."""
    newest: dict[bytes, Write] = {}
    doomed: set[int] = set()
    for w in log:
        if w.rev > rev:
            break
        if w.key in newest:
            doomed.add(newest[w.key].rev)
        newest[w.key] = w
    doomed.update(w.rev for w in newest.values() if not w.version)
    return doomed


def index_from(log: list[Write], *, incremental: bool) -> KeyIndex:
    index = KeyIndex()
    if incremental:  # as the writer does it
        for w in log:
            index.apply(w.key, (w.rev, w.create, w.version))
    else:  # as opening the store does it
        index.load((w.rev, w.key, w.create, w.version) for w in log)
    index.revision = log[-1].rev if log else 1
    return index


def check_reads(index: KeyIndex, log: list[Write], revs: range, keys: list[bytes]) -> None:
    for rev in revs:
        want = model_at(log, rev)
        for key in keys:
            assert index.get(key, rev) == want.get(key), (key, rev)
        assert index.range(b"", b"", rev, 0).items == sorted(want.items())
        assert index.range(b"k1", b"k3", rev, 0).items == sorted(
            (k, e) for k, e in want.items() if b"k1" <= k < b"k3"
        )
    head = model_at(log, index.revision)
    assert index.count(b"", b"") == len(head)


KEYS = [b"k0", b"k1", b"k2", b"k3"]
steps = st.lists(st.tuples(st.sampled_from(KEYS), st.booleans()), max_size=30)


@given(ops=steps, incremental=st.booleans())
def test_index_matches_the_write_log_at_every_revision(
    ops: list[tuple[bytes, bool]], incremental: bool
) -> None:
    log = replay(ops)
    index = index_from(log, incremental=incremental)
    check_reads(index, log, range(1, index.revision + 1), KEYS)


@given(ops=steps, incremental=st.booleans(), data=st.data())
def test_compaction_drops_exactly_the_superseded_history(
    ops: list[tuple[bytes, bool]], incremental: bool, data: st.DataObject
) -> None:
    log = replay(ops)
    index = index_from(log, incremental=incremental)
    head = index.revision
    points = sorted(data.draw(st.lists(st.integers(1, head), min_size=1, max_size=3)))
    removed: set[int] = set()
    for point in points:
        plan = index.compaction_plan(point)
        assert len(plan.revisions) == len(set(plan.revisions))
        want = model_compaction(log, point) - removed
        assert set(plan.revisions) == want
        index.compact(plan)
        index.compacted = point
        removed |= want
        # Every read at or after the compaction point answers as before.
        check_reads(index, log, range(point, head + 1), KEYS)
        # No history of a key that was deleted at or before the point remains.
        for key in KEYS:
            latest = index.latest(key)
            state = model_at(log, head)
            if key in state:
                assert latest == state[key]
            elif latest is not None:
                assert latest[2] == 0 and latest[0] > point  # deleted after the point
    # Compacting at the head leaves one entry per live key and nothing else.
    index.compact(index.compaction_plan(head))
    assert len(index) == len(model_at(log, head))
    assert index.compaction_plan(head).revisions == []
