"""The server's garbage-collector settings: rarer young collections, startup objects frozen,
cycles made later still collected, everything restored afterwards."""

from __future__ import annotations

import gc
import weakref

from k3py.server.collector import YOUNG_THRESHOLD, freeze_startup_objects, server_collection


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def cycle() -> weakref.ref[Node]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_thresholds_apply_inside_and_are_restored_after() -> None:
    before = gc.get_threshold()
    with server_collection():
        assert gc.get_threshold() == (YOUNG_THRESHOLD, before[1], before[2])
    assert gc.get_threshold() == before


def test_objects_alive_at_the_freeze_are_kept_and_later_cycles_are_collected() -> None:
    with server_collection():
        early = cycle()
        keep = early()  # alive at the freeze
        freeze_startup_objects()
        assert gc.get_freeze_count() > 0
        del keep
        gc.collect()
        assert early() is not None  # frozen: no collection looks at it any more
        late = cycle()
        gc.collect()
        assert late() is None
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert early() is None  # unfrozen on the way out, so collected again
