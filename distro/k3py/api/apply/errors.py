"""How server-side apply fails: a conflict with another manager (409), or a configuration it refuses.

:class:`ApplyConflict` carries one :class:`Conflict` per (manager, field) and words its message
as kube-apiserver does (apimachinery ``internal/conflict.go``)::

    Apply failed with 1 conflict: conflict with "kubectl" using apps/v1: .spec.replicas

    Apply failed with 2 conflicts: conflicts with "hpa" using autoscaling/v2:
    - .spec.replicas
    - .spec.template.spec.containers[name="app"].image

Managers are listed by their sorted identifiers and each one's fields in upstream's set order.
:attr:`ApplyConflict.causes` are the ``details.causes`` of the 409 Status as they go on the
wire (a ``StatusCause``'s type is its JSON ``reason``: ``FieldManagerConflict``).

:class:`ApplyError` is a configuration refused before merging (managedFields set, another
version, a field the schema does not declare): a 400.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from k3py.api.apply.fieldpath import FieldSet, Path, ordered, path_string
from k3py.api.apply.managers import Manager

CONFLICT_CAUSE: Final = "FieldManagerConflict"


class ApplyError(ValueError):
    """An applied configuration kube-apiserver refuses (HTTP 400 Bad Request)."""

    code: Final = 400


@dataclass(frozen=True, slots=True)
class Conflict:
    manager: Manager
    path: Path

    @property
    def field(self) -> str:
        return path_string(self.path)


class ApplyConflict(Exception):
    """Fields the applier would change that other managers own (HTTP 409 Conflict)."""

    code: Final = 409

    def __init__(self, conflicts: Iterable[Conflict]) -> None:
        self.conflicts = tuple(conflicts)
        super().__init__(_message(self.conflicts))

    @classmethod
    def from_sets(cls, sets: Mapping[Manager, FieldSet]) -> ApplyConflict:
        managers = sorted(sets, key=lambda manager: manager.identifier)
        return cls(Conflict(manager, path) for manager in managers for path in ordered(sets[manager]))

    @property
    def causes(self) -> list[dict[str, str]]:
        return [
            {"reason": CONFLICT_CAUSE, "message": f"conflict with {c.manager.describe()}", "field": c.field}
            for c in self.conflicts
        ]


def _message(conflicts: tuple[Conflict, ...]) -> str:
    if len(conflicts) == 1:
        only = conflicts[0]
        return f"Apply failed with 1 conflict: conflict with {only.manager.describe()}: {only.field}"
    by_manager: dict[Manager, list[str]] = {}
    for conflict in conflicts:
        by_manager.setdefault(conflict.manager, []).append(conflict.field)
    lines: list[str] = []
    for manager in sorted(by_manager, key=lambda manager: manager.identifier):
        lines.append(f"conflicts with {manager.describe()}:")
        lines.extend(f"- {field}" for field in by_manager[manager])
    return f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
