from __future__ import annotations

from typing import Any

from k3py.controllers.expectations import Expectations

Obj = dict[str, Any]
KEY = ("ns", "svc")


def slice_(name: str, version: int) -> Obj:
    return {"metadata": {"name": name, "resourceVersion": str(version)}}


def test_a_write_is_pending_until_the_cache_shows_it() -> None:
    expected = Expectations()
    cache: dict[str, Obj] = {}
    assert not expected.behind(KEY, cache.get)
    expected.wrote(KEY, slice_("a", 7))
    assert expected.behind(KEY, cache.get)
    cache["a"] = slice_("a", 6)  # an older version: still behind
    assert expected.behind(KEY, cache.get)
    cache["a"] = slice_("a", 7)
    assert not expected.behind(KEY, cache.get)
    assert not expected.behind(("ns", "other"), cache.get)


def test_informer_events_clear_writes_and_deletions() -> None:
    expected = Expectations()
    nothing: dict[str, Obj] = {}
    expected.wrote(KEY, slice_("a", 7))
    expected.observed(KEY, None, slice_("a", 5))
    assert expected.behind(KEY, nothing.get)
    expected.observed(KEY, slice_("a", 5), slice_("a", 8))
    assert not expected.behind(KEY, {"a": slice_("a", 8)}.get)
    expected.deleted(KEY, "b")
    assert expected.behind(KEY, {"b": slice_("b", 9)}.get)
    expected.observed(KEY, slice_("b", 9), None)
    assert not expected.behind(KEY, {"b": slice_("b", 9)}.get)


def test_a_write_the_cache_never_shows_is_forgotten() -> None:
    expected = Expectations(timeout=0.0)
    expected.wrote(KEY, slice_("a", 7))
    nothing: dict[str, Obj] = {}
    assert not expected.behind(KEY, nothing.get)
