"""The in-memory MVCC key index of the SQLite backend (etcd's ``treeIndex`` idea).

The database holds one table ordered by revision; this index maps each key to the list of
revisions that touched it, so point reads, ranges at any retained revision and compare-and-
swap checks never scan SQL. Only the writer thread mutates it, always after its transaction
is durable; readers on other threads take the same lock for short, bounded sections.

An entry is ``(mod_revision, create_revision, version)``; ``version == 0`` marks a deletion
(a tombstone). Each key's entries are sorted by mod_revision.
"""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right, insort
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from operator import itemgetter
from typing import NamedTuple

Entry = tuple[int, int, int]
"""(mod_revision, create_revision, version); version 0 means the key was deleted."""


_mod = itemgetter(0)
"""An entry's mod_revision (the key ``bisect`` sorts entries by)."""


def entry_at(history: list[Entry], rev: int) -> Entry | None:
    """The newest entry of one key's history at or before ``rev``."""
    last = history[-1]
    if last[0] <= rev:
        return last
    i = bisect_right(history, rev, key=_mod)
    return history[i - 1] if i else None


class CompactionPlan(NamedTuple):
    """What compaction at ``rev`` removes, worked out once for both the SQL delete and the
    index (``KeyIndex.compaction_plan``, then ``KeyIndex.compact``)."""

    rev: int
    revisions: list[int]
    """The rows compaction at ``rev`` removes."""
    drops: list[tuple[bytes, list[Entry], int]]
    """Each key whose history shortens, its entries and how many leading ones go."""


@dataclass(frozen=True, slots=True)
class IndexRange:
    items: list[tuple[bytes, Entry]]
    more: bool
    next_key: bytes | None


class KeyIndex:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.revision = 1
        """The newest durable revision; reads at 0 ("latest") read at this one."""
        self.compacted = 0
        """History at or before this revision is gone."""
        self._hist: dict[bytes, list[Entry]] = {}
        self._keys: list[bytes] = []
        # (revision, key) in revision order: from that revision on, compaction can drop part
        # of the key's history (the entry before it, or the whole key if the revision deleted
        # it). Compaction reads this from the front, so it costs what it removes, not the
        # size of the keyspace.
        self._droppable: deque[tuple[int, bytes]] = deque()

    # -- loading ---------------------------------------------------------------------------

    def load(self, rows: Iterable[tuple[int, bytes, int, int]]) -> None:
        """Fill from ``(rev, key, create_rev, version)`` rows in revision order."""
        hist, droppable = self._hist, self._droppable
        for rev, key, create_rev, version in rows:
            entries = hist.get(key)
            if entries is None:
                hist[key] = [(rev, create_rev, version)]
                if version == 0:
                    droppable.append((rev, key))
            else:
                entries.append((rev, create_rev, version))
                droppable.append((rev, key))
        self._keys = sorted(hist)

    # -- reads (callers hold ``lock``) ---------------------------------------------------------

    def latest(self, key: bytes) -> Entry | None:
        entries = self._hist.get(key)
        return entries[-1] if entries else None

    def get(self, key: bytes, rev: int) -> Entry | None:
        """The live entry of ``key`` at ``rev``, or None if absent or deleted then."""
        entries = self._hist.get(key)
        if entries is None:
            return None
        entry = entry_at(entries, rev)
        return entry if entry is not None and entry[2] else None

    def range(self, start: bytes, end: bytes, rev: int, limit: int) -> IndexRange:
        keys, hist = self._keys, self._hist
        i = bisect_left(keys, start)
        stop = bisect_left(keys, end) if end else len(keys)
        items: list[tuple[bytes, Entry]] = []
        while i < stop:
            key = keys[i]
            i += 1
            entry = entry_at(hist[key], rev)
            if entry is None or not entry[2]:
                continue
            if limit and len(items) == limit:
                return IndexRange(items, True, key)
            items.append((key, entry))
        return IndexRange(items, False, None)

    def count(self, start: bytes, end: bytes) -> int:
        keys, hist = self._keys, self._hist
        i = bisect_left(keys, start)
        stop = bisect_left(keys, end) if end else len(keys)
        return sum(1 for k in keys[i:stop] if hist[k][-1][2])

    def __len__(self) -> int:
        return len(self._hist)

    # -- writes (writer thread, holding ``lock``) -------------------------------------------

    def apply(self, key: bytes, entry: Entry) -> None:
        entries = self._hist.get(key)
        if entries is None:
            self._hist[key] = [entry]
            insort(self._keys, key)
            if entry[2] == 0:
                self._droppable.append((entry[0], key))
        else:
            entries.append(entry)
            self._droppable.append((entry[0], key))

    def _superseded(self, rev: int) -> Iterator[tuple[bytes, list[Entry], int]]:
        """Each key whose history compaction at ``rev`` shortens, with how many leading
        entries it drops."""
        hist = self._hist
        seen: set[bytes] = set()
        for at, key in self._droppable:
            if at > rev:
                return
            if key in seen:
                continue
            seen.add(key)
            entries = hist[key]
            n = bisect_right(entries, rev, key=_mod)
            drop = n if n and entries[n - 1][2] == 0 else n - 1
            if drop > 0:
                yield key, entries, drop

    def compaction_plan(self, rev: int) -> CompactionPlan:
        """What compaction at ``rev`` removes; the index is unchanged until ``compact``."""
        drops = list(self._superseded(rev))
        revisions = [e[0] for _, entries, drop in drops for e in entries[:drop]]
        return CompactionPlan(rev, revisions, drops)

    def compact(self, plan: CompactionPlan) -> None:
        """Carry out ``plan``, made by ``compaction_plan`` after the index last changed: drop
        every entry superseded at or before its revision, and tombstones at or before it."""
        rev = plan.rev
        gone: list[bytes] = []
        for key, entries, drop in plan.drops:
            del entries[:drop]
            if not entries:
                gone.append(key)
        droppable = self._droppable
        while droppable and droppable[0][0] <= rev:
            droppable.popleft()
        for key in gone:
            del self._hist[key]
        if len(gone) > 64:
            self._keys = [k for k in self._keys if k in self._hist]
        else:
            for key in gone:
                del self._keys[bisect_left(self._keys, key)]
