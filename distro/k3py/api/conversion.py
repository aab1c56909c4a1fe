"""Conversion between versions of one kind that share their objects.

events.k8s.io/v1 Events are core/v1 Events in a newer shape (upstream keeps one internal
type); the store holds the core/v1 form and each read or write through events.k8s.io/v1
converts, so an Event written through either API is seen by both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from k3py.api.resources import Resource

Obj = dict[str, Any]

# core/v1 field → events.k8s.io/v1 field; the rest (reason, type, action, related, series,
# eventTime, reportingInstance) keep their names.
_EVENT_RENAMES = {
    "involvedObject": "regarding",
    "message": "note",
    "source": "deprecatedSource",
    "firstTimestamp": "deprecatedFirstTimestamp",
    "lastTimestamp": "deprecatedLastTimestamp",
    "count": "deprecatedCount",
    "reportingComponent": "reportingController",
}
_EVENT_BACK = {new: old for old, new in _EVENT_RENAMES.items()}
_TYPE_META = ("kind", "apiVersion")


def _rename(obj: Obj, renames: dict[str, str], kind: str, api_version: str) -> Obj:
    out: Obj = {"kind": kind, "apiVersion": api_version}
    for key, value in obj.items():
        if key not in _TYPE_META:
            out[renames.get(key, key)] = value
    return out


def event_from_core(obj: Obj) -> Obj:
    return _rename(obj, _EVENT_RENAMES, "Event", "events.k8s.io/v1")


def event_to_core(obj: Obj) -> Obj:
    return _rename(obj, _EVENT_BACK, "Event", "v1")


_CONVERTERS: dict[str, tuple[Callable[[Obj], Obj], Callable[[Obj], Obj]]] = {
    "events.events.k8s.io": (event_to_core, event_from_core),
}


def to_storage(resource: Resource, obj: Obj) -> Obj:
    """The stored form of ``obj`` (served as ``resource``)."""
    converter = _CONVERTERS.get(resource.name)
    return converter[0](obj) if converter else obj


def from_storage(resource: Resource, obj: Obj) -> Obj:
    """``obj`` (as stored) in the shape ``resource`` serves."""
    converter = _CONVERTERS.get(resource.name)
    return converter[1](obj) if converter else obj
