"""ControllerRevisions, as upstream's ``pkg/controller/history``.

A StatefulSet or DaemonSet keeps each pod template it has had as a ControllerRevision: its
``data`` is the patch that puts the template back (``{"spec": {"template": {..., "$patch":
"replace"}}}``), its name ``<owner>-<hash>``, its ``revision`` a number one past the highest
of the owner's revisions. The hash is upstream's: FNV-1 (32 bit) of the data's JSON, plus the
owner's ``collisionCount`` when there is one, in decimal, then "safe encoded" (each digit
mapped to a letter or digit that cannot spell words). Pods carry it in the
``controller-revision-hash`` label: a StatefulSet's pods the revision's name, a DaemonSet's the
hash. (Upstream's DaemonSet hashes its template with Go's object dumper, which has no
portable form; k3py uses the revision hash for both, so names differ from upstream's there.)
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable
from typing import Any

import orjson

from k3py.controllers.objects import owner_reference

log = logging.getLogger(__name__)

Obj = dict[str, Any]

REVISION_HASH_LABEL = "controller.kubernetes.io/hash"
"""The label a ControllerRevision carries its own hash in."""
POD_REVISION_LABEL = "controller-revision-hash"
"""The label a set's pods carry their revision in (``apps/v1 ControllerRevisionHashLabelKey``)."""
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
FNV_OFFSET = 2166136261
FNV_PRIME = 16777619
MAX_PREFIX = 223
"""Longest owner-name prefix of a revision's name (253 less room for the hash)."""


def fnv32(data: bytes) -> int:
    """Go's ``hash/fnv.New32`` (FNV-1: multiply, then xor)."""
    value = FNV_OFFSET
    for byte in data:
        value = (value * FNV_PRIME) & 0xFFFFFFFF
        value ^= byte
    return value


def safe_encode(text: str) -> str:
    """``rand.SafeEncodeString``: each byte picks a character from an alphabet without vowels."""
    return "".join(SAFE_ALPHABET[b % len(SAFE_ALPHABET)] for b in text.encode())


def go_json(value: Any) -> bytes:
    """JSON as Go's ``json.Marshal`` writes a generic map: compact, sorted keys, HTML escaped."""
    raw = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    return raw.replace(b"<", b"\\u003c").replace(b">", b"\\u003e").replace(b"&", b"\\u0026")


def hash_revision(data: Obj, collision_count: int | None = None) -> str:
    """``HashControllerRevision``: the hash of a revision's data and the owner's collision count."""
    raw = go_json(data)
    if collision_count is not None:
        raw += str(collision_count).encode()
    return safe_encode(str(fnv32(raw)))


def template_patch(owner: Obj) -> Obj:
    """A revision's data: the patch that restores the owner's pod template, as upstream's
    ``getPatch`` writes it (the template as Go's typed encoding gives it, keys sorted at every
    level), so that clients comparing a revision's raw data with their own encoding of the set
    (``daemon.Match``) find it equal."""
    template = _as_go_encodes(copy.deepcopy((owner.get("spec") or {}).get("template") or {}))
    template["$patch"] = "replace"
    data: Obj = _sorted({"spec": {"template": template}})
    return data


def _as_go_encodes(template: Obj) -> Obj:
    """The template as Go's typed encoding writes it: struct fields even when empty
    (``metadata``, ``spec``, each container's ``resources``: {}), a zero
    ``metadata.creationTimestamp`` left out (``omitzero``)."""
    meta = template.get("metadata")
    template["metadata"] = meta = meta if isinstance(meta, dict) else {}
    if meta.get("creationTimestamp") is None:
        meta.pop("creationTimestamp", None)
    spec = template.get("spec")
    template["spec"] = spec = spec if isinstance(spec, dict) else {}
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(key) or []:
            if isinstance(container, dict):
                container.setdefault("resources", {})
    return template


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value


def apply_revision(owner: Obj, revision: Obj) -> Obj:
    """The owner as it was at ``revision``: its pod template replaced by the revision's."""
    restored = copy.deepcopy(owner)
    template = copy.deepcopy(((revision.get("data") or {}).get("spec") or {}).get("template") or {})
    template.pop("$patch", None)
    if isinstance(template.get("metadata"), dict) and template["metadata"].get("creationTimestamp") is None:
        template["metadata"].pop("creationTimestamp", None)  # Go's zero time, written as null
    restored.setdefault("spec", {})["template"] = template
    return restored


def revision_name(owner_name: str, hash_: str) -> str:
    return f"{owner_name[:MAX_PREFIX]}-{hash_}"


def new_revision(owner: Obj, kind: str, number: int, collision_count: int | None) -> Obj:
    """``NewControllerRevision`` for the owner's current template."""
    meta = owner.get("metadata") or {}
    data = template_patch(owner)
    hash_ = hash_revision(data, collision_count)
    labels = dict(
        (((owner.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}
    )
    labels[REVISION_HASH_LABEL] = hash_
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": revision_name(str(meta.get("name") or ""), hash_),
            "namespace": meta.get("namespace", ""),
            "labels": labels,
            "ownerReferences": [owner_reference(owner, "apps/v1", kind)],
        },
        "data": data,
        "revision": number,
    }


def revision_number(revision: Obj) -> int:
    value = revision.get("revision")
    return value if isinstance(value, int) else 0


def next_revision_number(revisions: Iterable[Obj]) -> int:
    """One past the highest revision number (1 for the first)."""
    return max((revision_number(r) for r in revisions), default=0) + 1


def sort_revisions(revisions: Iterable[Obj]) -> list[Obj]:
    """Oldest first: by revision number, then creation time, then name (``ByRevision``)."""

    def order(revision: Obj) -> tuple[int, str, str]:
        meta = revision.get("metadata") or {}
        return revision_number(revision), str(meta.get("creationTimestamp") or ""), str(meta.get("name"))

    return sorted(revisions, key=order)


def equal_revision(left: Obj, right: Obj) -> bool:
    """``EqualRevision``: the same data, and the same hash where both hash labels are numbers.

    Upstream only compares hash labels that parse as decimal 32-bit integers; the safe-encoded
    hashes it writes never do, so in practice two revisions are equal when their data is.
    """
    left_hash, right_hash = _numeric_hash(left), _numeric_hash(right)
    if left_hash is not None and right_hash is not None and left_hash != right_hash:
        return False
    return equal_data(left, right)


def _numeric_hash(revision: Obj) -> int | None:
    label = ((revision.get("metadata") or {}).get("labels") or {}).get(REVISION_HASH_LABEL)
    try:
        value = int(str(label), 10)
    except ValueError:
        return None
    return value & 0xFFFFFFFF if -(2**31) <= value < 2**31 else None


def equal_data(left: Obj, right: Obj) -> bool:
    """Whether two revisions put back the same template (the DaemonSet's ``Match``)."""
    return go_json(left.get("data")) == go_json(right.get("data"))


def find_equal_revisions(revisions: Iterable[Obj], needle: Obj) -> list[Obj]:
    return [r for r in revisions if equal_revision(r, needle)]


# -- pod state -----------------------------------------------------------------------------------
