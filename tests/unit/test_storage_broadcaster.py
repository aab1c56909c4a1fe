"""The broadcaster that fans committed events out to watchers.

Prefix filtering, the per-subscriber buffer limit (overflow drops the buffer and flags the
subscriber as lagging, so it never slows anyone down), batched wake-ups for many
subscribers, unsubscribe and close.
"""

from __future__ import annotations

import asyncio

import pytest

from k3py.storage import Event, EventType, KeyValue
from k3py.storage.broadcaster import (
    IMMEDIATE_WAKE_SUBSCRIBERS,
    MAX_WAKE_DELAY,
    WAKE_DELAY_PER_SUBSCRIBER,
    Broadcaster,
    Subscriber,
    wake_delay,
)


def event(key: bytes, rev: int) -> Event:
    return Event(EventType.CREATE, KeyValue(key, b"v", rev, rev, 1), None)


def keys(events: list[Event]) -> list[bytes]:
    return [e.kv.key for e in events]


# -- wake_delay ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subscribers", "delay"),
    [
        (0, 0.0),
        (1, 0.0),
        (IMMEDIATE_WAKE_SUBSCRIBERS, 0.0),
        (IMMEDIATE_WAKE_SUBSCRIBERS + 1, (IMMEDIATE_WAKE_SUBSCRIBERS + 1) * WAKE_DELAY_PER_SUBSCRIBER),
        (1000, 0.01),
        (2000, MAX_WAKE_DELAY),
        (1_000_000, MAX_WAKE_DELAY),
    ],
)
def test_wake_delay(subscribers: int, delay: float) -> None:
    assert wake_delay(subscribers) == pytest.approx(delay)


def test_wake_delay_grows_monotonically_and_is_capped() -> None:
    delays = [wake_delay(n) for n in range(0, 5000, 7)]
    assert delays == sorted(delays)
    assert max(delays) == MAX_WAKE_DELAY == 0.02


# -- Subscriber ---------------------------------------------------------------------------------


async def test_subscriber_buffers_until_the_limit() -> None:
    sub = Subscriber(b"", limit=3)
    sub.push([event(b"a", 2), event(b"b", 3)])
    sub.push([event(b"c", 4)])  # exactly at the limit is fine
    assert not sub.lagging
    assert keys(sub.take()) == [b"a", b"b", b"c"]
    assert sub.buffer == []


async def test_overflow_drops_the_buffer_and_flags_lagging() -> None:
    sub = Subscriber(b"", limit=3)
    sub.push([event(b"a", 2), event(b"b", 3)])
    sub.push([event(b"c", 4), event(b"d", 5)])
    assert sub.lagging
    assert sub.buffer == []
    sub.push([event(b"e", 6)])  # a lagging subscriber takes nothing more until it catches up
    assert sub.buffer == []
    assert sub.take() == []


async def test_one_batch_larger_than_the_limit_overflows_an_empty_buffer() -> None:
    sub = Subscriber(b"", limit=2)
    sub.push([event(b"a", 2), event(b"b", 3), event(b"c", 4)])
    assert sub.lagging
    assert sub.buffer == []


async def test_take_clears_the_wake_flag() -> None:
    sub = Subscriber(b"", limit=10)
    sub.push([event(b"a", 2)])
    sub.wake.set()
    sub.take()
    assert not sub.wake.is_set()


# -- Broadcaster: filtering and delivery --------------------------------------------------------


async def test_publish_filters_by_prefix() -> None:
    b = Broadcaster(revision=1)
    everything = b.subscribe(b"", 100)
    pods = b.subscribe(b"/pods/", 100)
    pods_too = b.subscribe(b"/pods/", 100)
    nodes = b.subscribe(b"/nodes/", 100)
    b.publish([event(b"/pods/a", 2), event(b"/nodes/n", 3), event(b"/pods/b", 4), event(b"/podsx", 5)])
    assert keys(everything.take()) == [b"/pods/a", b"/nodes/n", b"/pods/b", b"/podsx"]
    assert keys(pods.take()) == [b"/pods/a", b"/pods/b"]
    assert keys(pods_too.take()) == [b"/pods/a", b"/pods/b"]
    assert keys(nodes.take()) == [b"/nodes/n"]
    assert b.revision == 5


async def test_only_matching_subscribers_are_woken() -> None:
    b = Broadcaster(revision=1)
    pods = b.subscribe(b"/pods/", 100)
    nodes = b.subscribe(b"/nodes/", 100)
    b.publish([event(b"/pods/a", 2)])
    await asyncio.sleep(0)
    assert pods.wake.is_set()
    assert not nodes.wake.is_set()
    assert nodes.buffer == []


async def test_publishing_nothing_changes_nothing() -> None:
    b = Broadcaster(revision=7)
    sub = b.subscribe(b"", 100)
    b.publish([])
    await asyncio.sleep(0)
    assert b.revision == 7
    assert not sub.wake.is_set()


async def test_a_lagging_subscriber_does_not_hold_back_the_others() -> None:
    b = Broadcaster(revision=1)
    slow = b.subscribe(b"", 2)
    fast = b.subscribe(b"", 100)
    for rev in range(2, 6):
        b.publish([event(b"k%d" % rev, rev)])
    await asyncio.sleep(0)
    assert slow.lagging and slow.buffer == []
    assert slow.wake.is_set()  # woken so that it notices and catches up from the log
    assert keys(fast.take()) == [b"k2", b"k3", b"k4", b"k5"]
    assert not fast.lagging


# -- Broadcaster: wake batching -----------------------------------------------------------------


async def test_few_subscribers_are_woken_on_the_next_loop_turn() -> None:
    b = Broadcaster(revision=1)
    sub = b.subscribe(b"", 100)
    b.publish([event(b"a", 2)])
    assert not sub.wake.is_set()  # never woken inside publish (the writer is still running)
    await asyncio.sleep(0)
    assert sub.wake.is_set()


async def test_many_subscribers_are_woken_together_after_the_delay() -> None:
    b = Broadcaster(revision=1)
    subs = [b.subscribe(b"", 100) for _ in range(2000)]
    assert wake_delay(len(b)) == MAX_WAKE_DELAY
    loop = asyncio.get_running_loop()
    published = loop.time()
    b.publish([event(b"a", 2)])
    await asyncio.sleep(0)
    b.publish([event(b"b", 3)])  # joins the wake-up already scheduled
    await asyncio.sleep(0)
    if any(s.wake.is_set() for s in subs):  # only a stalled test run may see them woken here
        assert loop.time() - published >= MAX_WAKE_DELAY
    async with asyncio.timeout(5):
        await subs[0].wake.wait()
    assert all(s.wake.is_set() for s in subs)
    assert all(keys(s.take()) == [b"a", b"b"] for s in subs)  # one wake-up for both batches


# -- Broadcaster: unsubscribe and close ---------------------------------------------------------


async def test_unsubscribe_stops_delivery() -> None:
    b = Broadcaster(revision=1)
    gone = b.subscribe(b"/p/", 100)
    stays = b.subscribe(b"/p/", 100)
    assert len(b) == 2
    b.unsubscribe(gone)
    assert len(b) == 1
    assert gone.closed
    b.publish([event(b"/p/a", 2)])
    await asyncio.sleep(0)
    assert gone.buffer == []
    assert not gone.wake.is_set()
    assert keys(stays.take()) == [b"/p/a"]


async def test_unsubscribe_twice_and_of_the_last_of_a_prefix() -> None:
    b = Broadcaster(revision=1)
    sub = b.subscribe(b"/p/", 100)
    other = b.subscribe(b"/q/", 100)
    b.unsubscribe(sub)
    b.unsubscribe(sub)
    assert len(b) == 1
    resubscribed = b.subscribe(b"/p/", 100)  # the emptied prefix group works again
    b.publish([event(b"/p/a", 2)])
    assert keys(resubscribed.take()) == [b"/p/a"]
    assert other.buffer == []


async def test_close_wakes_every_subscriber_as_closed() -> None:
    b = Broadcaster(revision=1)
    subs = [b.subscribe(prefix, 100) for prefix in (b"", b"/a/", b"/a/")]
    b.publish([event(b"/x", 2)])  # a wake-up is pending for the first subscriber
    b.close()
    assert len(b) == 0
    assert all(s.closed and s.wake.is_set() for s in subs)
    await asyncio.sleep(0.01)  # the cancelled wake-up does not run after close
    b.publish([event(b"/a/b", 3)])
    assert [keys(s.buffer) for s in subs] == [[b"/x"], [], []]  # nothing after close
