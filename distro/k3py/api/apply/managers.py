"""``metadata.managedFields``: who owns which fields of an object (apimachinery's ``managedfields``).

Each entry is ``{"manager", "operation": "Apply"|"Update", "apiVersion", "time", "fieldsType":
"FieldsV1", "fieldsV1", "subresource"?}``. An entry's identity is a :class:`Manager`: name,
operation, subresource and, for ``Update`` only, the API version (an applier keeps one entry
whatever version it applies through). :func:`decode` reads entries into
``{Manager: ManagedEntry}`` (a later duplicate wins, as upstream), :func:`encode` writes them
back in upstream's order: ``Apply`` before ``Update``, then by time, manager, version and
subresource, with times in RFC 3339 UTC seconds.

:func:`cap_updaters` keeps at most ten ``Update`` entries by folding the oldest into one
``ancient-changes`` entry per API version, as kube-apiserver does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from k3py.api.apply.fieldpath import FieldSet, FieldsV1Error, from_fields_v1, go_json, to_fields_v1

APPLY: Final = "Apply"
UPDATE: Final = "Update"
FIELDS_V1: Final = "FieldsV1"
MAX_UPDATE_MANAGERS: Final = 10
ANCIENT_CHANGES: Final = "ancient-changes"


class ManagedFieldsError(ValueError):
    """``metadata.managedFields`` that cannot be read."""


@dataclass(frozen=True, slots=True)
class Manager:
    """The identity of a managedFields entry (upstream's manager identifier)."""

    name: str
    operation: str
    api_version: str = ""
    subresource: str = ""

    @classmethod
    def applier(cls, name: str, subresource: str = "") -> Manager:
        return cls(name, APPLY, "", subresource)

    @classmethod
    def updater(cls, name: str, api_version: str, subresource: str = "") -> Manager:
        return cls(name, UPDATE, api_version, subresource)

    @property
    def identifier(self) -> str:
        """Upstream's identifier: the entry as JSON without fields, time and an applier's version."""
        entry: dict[str, str] = {}
        if self.name:
            entry["manager"] = self.name
        entry["operation"] = self.operation
        if self.api_version:
            entry["apiVersion"] = self.api_version
        if self.subresource:
            entry["subresource"] = self.subresource
        return go_json(entry)

    def describe(self) -> str:
        """How conflict messages name the manager: ``"kubectl" using apps/v1`` for an updater."""
        text = go_json(self.name)
        if self.subresource:
            text += f" with subresource {go_json(self.subresource)}"
        if self.operation == UPDATE:
            text += f" using {self.api_version}"
        return text


@dataclass(frozen=True, slots=True)
class ManagedEntry:
    manager: Manager
    api_version: str
    fields: FieldSet
    time: str | None = None


Managed = dict[Manager, ManagedEntry]


def decode(entries: Any) -> Managed:
    """The entries of ``metadata.managedFields`` (None or a list); :class:`ManagedFieldsError` if invalid."""
    if entries is None:
        return {}
    if not isinstance(entries, list):
        raise ManagedFieldsError("metadata.managedFields must be a list")
    managed: Managed = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ManagedFieldsError(f"managed fields entry {index} is not an object")
        operation = entry.get("operation")
        if operation not in (APPLY, UPDATE):
            raise ManagedFieldsError("operation must be `Apply` or `Update`")
        api_version = entry.get("apiVersion")
        if not isinstance(api_version, str) or not api_version:
            raise ManagedFieldsError("apiVersion must not be empty")
        fields_type = entry.get("fieldsType") or ""
        if fields_type == "":
            raise ManagedFieldsError(f"missing fieldsType in managed fields entry {index}")
        if fields_type != FIELDS_V1:
            raise ManagedFieldsError(
                f"invalid fieldsType {go_json(fields_type)} in managed fields entry {index}"
            )
        try:
            fields = from_fields_v1(entry.get("fieldsV1") or {})
        except FieldsV1Error as err:
            raise ManagedFieldsError(f"error decoding managed fields entry {index}: {err}") from None
        name, subresource, time = (
            entry.get("manager") or "",
            entry.get("subresource") or "",
            entry.get("time"),
        )
        if not isinstance(name, str) or not isinstance(subresource, str) or not isinstance(time, str | None):
            raise ManagedFieldsError(
                f"managed fields entry {index}: manager, subresource and time are strings"
            )
        manager = Manager(name, operation, api_version if operation == UPDATE else "", subresource)
        managed[manager] = ManagedEntry(manager, api_version, fields, time)
    return managed


def encode(managed: Mapping[Manager, ManagedEntry]) -> list[dict[str, Any]]:
    """The ``metadata.managedFields`` list for ``managed``, in upstream's order; empty sets are left out."""
    entries = sorted((entry for entry in managed.values() if entry.fields), key=_order)
    out: list[dict[str, Any]] = []
    for entry in entries:
        encoded: dict[str, Any] = {}
        if entry.manager.name:
            encoded["manager"] = entry.manager.name
        encoded["operation"] = entry.manager.operation
        encoded["apiVersion"] = entry.api_version
        if entry.time is not None:
            encoded["time"] = normalize_time(entry.time)
        encoded["fieldsType"] = FIELDS_V1
        encoded["fieldsV1"] = to_fields_v1(entry.fields)
        if entry.manager.subresource:
            encoded["subresource"] = entry.manager.subresource
        out.append(encoded)
    return out


def _order(entry: ManagedEntry) -> tuple[str, int, str, str, str]:
    manager = entry.manager
    return (manager.operation, _seconds(entry.time), manager.name, entry.api_version, manager.subresource)


def cap_updaters(managed: Managed, limit: int = MAX_UPDATE_MANAGERS) -> Managed:
    """``managed`` with at most ``limit`` Update entries, the oldest merged into ``ancient-changes``."""
    updaters = [manager for manager in managed if manager.operation == UPDATE]
    if len(updaters) <= limit:
        return managed
    out = dict(managed)
    updaters.sort(key=lambda manager: (_seconds(out[manager].time), manager.identifier))
    first_of_version: dict[str, Manager] = {}
    remaining = len(updaters)
    for manager in updaters:
        if remaining <= limit:
            break
        entry = out[manager]
        bucket = Manager.updater(ANCIENT_CHANGES, entry.api_version)
        first = first_of_version.get(entry.api_version)
        if first is None:
            first_of_version[entry.api_version] = manager
            continue
        if bucket not in out:
            moved = out.pop(first)
            out[bucket] = ManagedEntry(bucket, entry.api_version, moved.fields, moved.time)
        merged = out[bucket].fields | entry.fields
        out[bucket] = ManagedEntry(bucket, entry.api_version, merged, entry.time)
        del out[manager]
        remaining -= 1
    return out


def normalize_time(text: str) -> str:
    """An RFC 3339 time as upstream writes it: UTC, whole seconds, ``Z``."""
    parsed = parse_time(text)
    return text if parsed is None else parsed.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def _seconds(text: str | None) -> int:
    parsed = parse_time(text)
    return int(parsed.timestamp()) if parsed is not None else 0
