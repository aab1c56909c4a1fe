"""Ownership bookkeeping for one write (structured-merge-diff's ``merge.Updater``).

Objects here carry no ``metadata.managedFields``; ``managed`` maps each :class:`Manager` to
the fields it owns. Both operations start from :func:`take_changes`: compare the old and new
object and, for every manager but the writer, give up the fields that were removed and
collect those it owns that were modified or added. For an update those conflicts are simply
taken over; for an apply they fail the request unless it is forced.

:func:`apply` merges the configuration into the live object, makes the applier own exactly
the configuration's fields, and *prunes*: a field the applier applied last time and omits
now is removed from the object, unless some manager (applier or updater) still owns it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from k3py.api.apply.comparison import MISSING, Comparison, compare
from k3py.api.apply.errors import ApplyConflict
from k3py.api.apply.fieldpath import EMPTY, FieldSet, Path, recursive_difference
from k3py.api.apply.fieldsets import field_set, remove_items, with_named_fields
from k3py.api.apply.managers import Managed, ManagedEntry, Manager
from k3py.api.apply.merging import merge
from k3py.api.apply.shapes import Shape
from k3py.api.patch.json_value import equal


@dataclass(frozen=True, slots=True)
class Applied:
    object: dict[str, Any]
    managed: Managed
    changed: bool
    """Whether the object differs from the live one (upstream's no-op apply keeps times)."""


def take_changes(
    old: Any,
    new: Any,
    shape: Shape,
    managed: Managed,
    writer: Manager | None,
    *,
    force: bool,
    ignored: Iterable[Path] = (),
) -> tuple[Managed, Comparison]:
    """Other managers' ownership after ``old`` became ``new`` (upstream ``Updater.update``)."""
    comparison = compare(old, new, shape).without(ignored)
    changed = comparison.changed()
    conflicts: dict[Manager, FieldSet] = {}
    out: Managed = {}
    for manager, entry in managed.items():
        if manager == writer:
            out[manager] = entry
            continue
        lost = entry.fields & changed
        if lost:
            conflicts[manager] = lost
        out[manager] = replace(entry, fields=entry.fields - lost - comparison.removed)
    if conflicts and not force:
        raise ApplyConflict.from_sets(conflicts)
    return {manager: entry for manager, entry in out.items() if entry.fields}, comparison


def update(
    old: Any, new: Any, shape: Shape, managed: Managed, *, ignored: Iterable[Path] = ()
) -> tuple[Managed, FieldSet]:
    """Other managers' ownership after an update, and the fields the writer takes (``Updater.Update``).

    The writer's own earlier entry is treated as any other manager's: what it no longer has
    leaves it, and the caller merges what it takes now into it.
    """
    cut = frozenset(ignored)
    managed, comparison = take_changes(old, new, shape, managed, None, force=True, ignored=cut)
    taken = frozenset(comparison.modified | comparison.added) - comparison.removed
    return managed, recursive_difference(taken, cut)


def apply(
    live: dict[str, Any],
    config: dict[str, Any],
    shape: Shape,
    managed: Managed,
    applier: Manager,
    api_version: str,
    *,
    force: bool,
    ignored: Iterable[Path] = (),
) -> Applied:
    """``config`` applied by ``applier`` to ``live`` (``Updater.Apply``); raises :class:`ApplyConflict`."""
    cut = frozenset(ignored)
    merged = merge(live, config, shape)
    last = managed.get(applier)
    applied = recursive_difference(field_set(config, shape), cut)
    managed = {**managed, applier: ManagedEntry(applier, api_version, applied, last.time if last else None)}
    if last is not None and last.fields:
        merged = _prune(merged, managed, last.fields, shape)
    managed, _ = take_changes(live, merged, shape, managed, applier, force=force, ignored=cut)
    return Applied(merged, managed, not equal(live, merged))


def _prune(merged: Any, managed: Managed, last: FieldSet, shape: Shape) -> Any:
    """``merged`` without what the applier applied before and dropped now, unless someone owns it."""
    owned_last = with_named_fields(last, shape)
    pruned = remove_items(merged, owned_last, shape)
    merged_set = _named_set(merged, shape)
    # Add back what any manager (including the applier's new configuration) owns.
    owned = EMPTY.union(*(entry.fields for entry in managed.values()))
    keep = _named_set(pruned, shape) | with_named_fields(owned, shape)
    pruned = remove_items(merged, merged_set - keep, shape)
    # Remove only what the applier owned before: anything else pruning took goes back.
    gone = (merged_set - _named_set(pruned, shape)) & owned_last
    result = remove_items(merged, gone, shape)
    return result if result is not None else {}


def _named_set(value: Any, shape: Shape) -> FieldSet:
    if value is None or value is MISSING:
        return EMPTY
    return with_named_fields(field_set(value, shape), shape)
