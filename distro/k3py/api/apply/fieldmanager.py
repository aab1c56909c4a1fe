"""Server-side apply and field tracking for whole objects, as kube-apiserver's field manager does them.

Every write goes through one of two functions; both return the object to store, with its
``metadata.managedFields`` brought up to date:

- :func:`apply` (PATCH ``application/apply-patch+yaml``): merge the configuration, give its
  fields to the applier, prune what the applier dropped, refuse to take fields other
  managers own unless forced (:class:`~k3py.api.apply.errors.ApplyConflict`);
- :func:`track_update` (create, update, every other patch): give the fields the write changed
  to the writer's ``Update`` entry and take them from everyone else.

Around structured-merge-diff (:mod:`.updater`) this adds what apimachinery's manager chain
does: entries are named by :class:`~k3py.api.apply.managers.Manager`; identity and server-set
metadata (``apiVersion``, ``kind``, ``metadata.name``, ``uid``, ``resourceVersion``...) are
never owned; *reset fields* (``status`` through the main resource, ``spec`` through
``/status``) are neither owned nor conflicting; an object whose managedFields are empty is
not tracked by updates until something applies to it, and that first apply hands everything
already there to ``before-first-apply``; at most ten ``Update`` entries are kept; an entry's
time moves only when its operation changed the object; and the manager ``kubectl`` takes over
from its client-side apply without conflicts (:mod:`.lastapplied`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from typing import Any, Final

import orjson

from k3py.api.apply import updater
from k3py.api.apply.errors import ApplyConflict, ApplyError
from k3py.api.apply.fieldpath import FieldSet, make_path
from k3py.api.apply.fieldsets import problems
from k3py.api.apply.lastapplied import KUBECTL, allowed_conflicts, with_last_applied
from k3py.api.apply.managers import (
    Managed,
    ManagedEntry,
    ManagedFieldsError,
    Manager,
    cap_updaters,
    decode,
    encode,
    normalize_time,
)
from k3py.api.apply.shapes import Shape
from k3py.api.patch.json_value import clone
from k3py.api.schema import Node

BEFORE_FIRST_APPLY: Final = "before-first-apply"
# Fields no manager ever owns (apimachinery internal/stripmeta.go).
NEVER_OWNED: Final[FieldSet] = frozenset(
    make_path(*parts)
    for parts in (
        ("apiVersion",),
        ("kind",),
        ("metadata",),
        ("metadata", "name"),
        ("metadata", "namespace"),
        ("metadata", "creationTimestamp"),
        ("metadata", "selfLink"),
        ("metadata", "uid"),
        ("metadata", "clusterName"),
        ("metadata", "generation"),
        ("metadata", "managedFields"),
        ("metadata", "resourceVersion"),
    )
)


def apply(
    live: dict[str, Any] | None,
    config: dict[str, Any],
    *,
    manager: str,
    force: bool,
    node: Node | None,
    api_version: str,
    now: str,
    subresource: str = "",
    reset_fields: Collection[tuple[str, ...]] | None = None,
) -> dict[str, Any]:
    """The object after ``manager`` applies ``config`` to ``live`` (None: the object does not exist).

    ``node`` is the kind's schema (None: deduce from the values), ``api_version`` the version
    the request came through and ``now`` its time (RFC 3339). Neither object is modified.
    Raises :class:`ApplyConflict` and :class:`ApplyError`.
    """
    _check_config(config, api_version)
    shape = Shape.root(node)
    found = problems(config, shape)
    if found:
        raise ApplyError(f"failed to create typed patch object ({_describe(config)}): {_joined(found)}")
    ignored = _reset_paths(node, subresource, reset_fields)
    base = _without_managed_fields(live) if live is not None else {}
    try:
        managed = decode(_managed_fields_of(live)) if live is not None else {}
    except ManagedFieldsError as err:
        raise ApplyError(f"failed to decode managed fields: {err}") from None
    if not managed and live is not None:
        first = Manager.updater(BEFORE_FIRST_APPLY, api_version, subresource)
        managed = _record_update({}, base, shape, {}, first, api_version, now, ignored)
    applier = Manager.applier(manager, subresource)
    previous = managed.get(applier)
    try:
        result = updater.apply(
            base, config, shape, managed, applier, api_version, force=force, ignored=ignored
        )
    except ApplyConflict as conflict:
        # kubectl taking over from its own client-side apply: not a conflict (lastapplied.py).
        allowed = allowed_conflicts(base, shape, api_version) if manager == KUBECTL else None
        if allowed is None:
            raise
        left = [c for c in conflict.conflicts if c.path not in allowed]
        if left:
            raise ApplyConflict(left) from None
        result = updater.apply(
            base, config, shape, managed, applier, api_version, force=True, ignored=ignored
        )
    managed = dict(result.managed)
    entry = managed.get(applier)
    if entry is not None:
        kept_time = previous.time if previous is not None and not result.changed else None
        managed[applier] = ManagedEntry(applier, api_version, entry.fields - NEVER_OWNED, kept_time or now)
    obj = with_last_applied(result.object, config) if manager == KUBECTL else result.object
    return _with_managed_fields(obj, managed)


def track_update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    *,
    manager: str,
    node: Node | None,
    api_version: str,
    now: str,
    subresource: str = "",
    reset_fields: Collection[tuple[str, ...]] | None = None,
) -> dict[str, Any]:
    """``new`` with managedFields recording that ``manager`` wrote it over ``old`` (None: a create).

    The managedFields come from ``new`` when it carries valid ones (a client may edit them;
    ``[]`` or ``[{}]`` clears them), else from ``old``; through a subresource, always from ``old``.
    Unreadable managedFields are dropped, never an error, as kube-apiserver does.
    """
    managed = _managed_for_update(old, new, subresource)
    target = _without_managed_fields(new)
    if not managed and old is not None:
        return target
    if old is None and not managed:
        return _track_create(target, manager, node, api_version, now, subresource, reset_fields)
    return _track(old, target, managed, manager, node, api_version, now, subresource, reset_fields)


def _track(
    old: dict[str, Any] | None,
    target: dict[str, Any],
    managed: Managed,
    manager: str,
    node: Node | None,
    api_version: str,
    now: str,
    subresource: str,
    reset_fields: Collection[tuple[str, ...]] | None,
) -> dict[str, Any]:
    shape = Shape.root(node)
    ignored = _reset_paths(node, subresource, reset_fields)
    writer = Manager.updater(manager, api_version, subresource)
    base = _without_managed_fields(old) if old is not None else {}
    managed = _record_update(base, target, shape, managed, writer, api_version, now, ignored)
    return _with_managed_fields(target, cap_updaters(managed))


class _CreatedFields:
    """The managedFields of recent creates, by everything they depend on (the object as a
    128-bit digest, not kept whole): objects created from one template (a controller's pods, a
    client's batch) differ only in values no field set holds, so the field walk and its
    encoding run once for all of them."""

    SIZE = 128
    VARYING: Final = ("name", "generateName", "uid", "creationTimestamp")
    """Metadata whose value differs from one created object to the next (presence is kept)."""

    def __init__(self) -> None:
        self._entries: dict[tuple[Any, ...], tuple[Node | None, bytes]] = {}

    def key(self, target: dict[str, Any], *context: Any) -> tuple[Any, ...] | None:
        metadata = target.get("metadata")
        if not isinstance(metadata, dict):
            return None
        blanked = {**metadata, **{k: "" for k in self.VARYING if k in metadata}}
        shown = {**target, "metadata": blanked}
        try:
            encoded = orjson.dumps(shown)
        except TypeError:
            return None
        return (*context, hashlib.blake2b(encoded, digest_size=16).digest())  # not the object itself

    def get(self, key: tuple[Any, ...], node: Node | None, now: str) -> list[dict[str, Any]] | None:
        found = self._entries.get(key)
        if found is None or not _same_node(found[0], node):  # ids in the key, the node kept here
            return None
        entries: list[dict[str, Any]] = orjson.loads(found[1])
        for entry in entries:
            entry["time"] = normalize_time(now)
        return entries

    def put(self, key: tuple[Any, ...], node: Node | None, entries: list[dict[str, Any]]) -> None:
        if len(self._entries) >= self.SIZE:
            del self._entries[next(iter(self._entries))]
        self._entries[key] = (node, orjson.dumps(entries))


_created = _CreatedFields()


def _same_node(a: Node | None, b: Node | None) -> bool:
    return a is b or (a is not None and b is not None and a.identity == b.identity)


def _track_create(
    target: dict[str, Any],
    manager: str,
    node: Node | None,
    api_version: str,
    now: str,
    subresource: str,
    reset_fields: Collection[tuple[str, ...]] | None,
) -> dict[str, Any]:
    """:func:`track_update` of a create that carries no managedFields of its own."""
    reset = tuple(tuple(fields) for fields in reset_fields) if reset_fields is not None else None
    key = _created.key(
        target, node.identity if node is not None else None, manager, api_version, subresource, reset
    )
    if key is not None and (entries := _created.get(key, node, now)) is not None:
        if entries:
            target["metadata"]["managedFields"] = entries
        return target
    result = _track(None, target, {}, manager, node, api_version, now, subresource, reset_fields)
    if key is not None:
        _created.put(key, node, clone(_managed_fields_of(result) or []))
    return result


def default_reset_fields(node: Node | None, subresource: str = "") -> tuple[tuple[str, ...], ...]:
    """The fields a write through ``subresource`` leaves alone: ``status`` through the main resource
    of a kind that has one, ``spec`` through ``/status`` (the common strategies' reset fields)."""
    if subresource == "status":
        return (("spec",),)
    if subresource == "" and node is not None and node.field("status") is not None:
        return (("status",),)
    return ()


def _record_update(
    old: dict[str, Any],
    new: dict[str, Any],
    shape: Shape,
    managed: Managed,
    writer: Manager,
    api_version: str,
    now: str,
    ignored: FieldSet,
) -> Managed:
    managed, taken = updater.update(old, new, shape, managed, ignored=ignored)
    taken -= NEVER_OWNED
    if taken:
        previous = managed.get(writer)
        fields = taken | previous.fields if previous is not None else taken
        managed[writer] = ManagedEntry(writer, api_version, fields, now)
    return managed


def _managed_for_update(old: dict[str, Any] | None, new: dict[str, Any], subresource: str) -> Managed:
    if not subresource:
        given = _managed_fields_of(new)
        if isinstance(given, list) and (not given or (len(given) == 1 and not any(_values(given[0])))):
            return {}
        try:
            managed = decode(given)
        except ManagedFieldsError:
            managed = {}
        if managed:
            return managed
    try:
        return decode(_managed_fields_of(old)) if old is not None else {}
    except ManagedFieldsError:
        return {}


def _values(entry: Any) -> list[Any]:
    return list(entry.values()) if isinstance(entry, dict) else [entry]


def _check_config(config: Any, api_version: str) -> None:
    if not isinstance(config, dict):
        raise ApplyError("an applied configuration is a JSON object")
    metadata = config.get("metadata")
    if isinstance(metadata, dict) and metadata.get("managedFields") is not None:
        raise ApplyError("metadata.managedFields must be nil")
    given = config.get("apiVersion")
    if given != api_version:
        raise ApplyError(f"invalid object type: {_gvk(given, config.get('kind'))}")


def _reset_paths(node: Node | None, subresource: str, given: Collection[tuple[str, ...]] | None) -> FieldSet:
    fields = default_reset_fields(node, subresource) if given is None else given
    return frozenset(make_path(*parts) for parts in fields)


def _managed_fields_of(obj: dict[str, Any] | None) -> Any:
    metadata = obj.get("metadata") if isinstance(obj, dict) else None
    return metadata.get("managedFields") if isinstance(metadata, dict) else None


def _without_managed_fields(obj: dict[str, Any]) -> dict[str, Any]:
    copy: dict[str, Any] = clone(obj)
    metadata = copy.get("metadata")
    if isinstance(metadata, dict):
        metadata.pop("managedFields", None)
    return copy


def _with_managed_fields(obj: dict[str, Any], managed: Managed) -> dict[str, Any]:
    entries = encode(managed)
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        if not entries:
            return obj
        metadata = obj["metadata"] = {}
    metadata.pop("managedFields", None)
    if entries:
        metadata["managedFields"] = entries
    return obj


def _describe(config: dict[str, Any]) -> str:
    """``namespace/name; group/version, Kind=kind``, as upstream names the object in errors."""
    metadata = config.get("metadata")
    if not isinstance(metadata, dict):
        metadata = {}
    where = f"{metadata.get('namespace', '')}/{metadata.get('name', '')}"
    return f"{where}; {_gvk(config.get('apiVersion'), config.get('kind'))}"


def _gvk(api_version: Any, kind: Any) -> str:
    text = api_version if isinstance(api_version, str) else ""
    group, _, version = text.rpartition("/")
    return f"{group}/{version}, Kind={kind if isinstance(kind, str) else ''}"


def _joined(found: list[str]) -> str:
    return found[0] if len(found) == 1 else "errors:\n" + "\n".join("  " + message for message in found)
