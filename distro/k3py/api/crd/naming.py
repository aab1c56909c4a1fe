"""Which names a CRD may take: apiextensions-apiserver's naming and establishing controllers.

In one group, every plural, singular and short name -- and every kind and list kind -- belongs to
at most one CRD. A CRD keeps the names its status already accepted; a name it asks for anew is
granted only if no CRD of the group (itself included) has accepted it. A conflict leaves the old
accepted name in place and sets ``NamesAccepted`` False with the reason of the last conflicting
name (``PluralConflict``, ``SingularConflict``, ``ShortNamesConflict``, ``KindConflict``,
``ListKindConflict``) and the message ``"<name>" is already in use``.

``Established`` turns True the first time all names are accepted and never goes back (upstream
does it in a second controller, after the naming controller has written ``Installing``; here both
happen in one status write).

A CRD whose group and plural are a built-in resource's (in any version of the API manifest,
served or not: :func:`overlaps_builtin`) would read and write the built-in's stored objects; its
plural is never accepted (``NamesAccepted`` False, reason ``OverlappingBuiltInResource``), so it
is never established nor served, and deleting it deletes no objects.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from k3py.api.crd.model import ESTABLISHED, NAMES_ACCEPTED, condition
from k3py.api.resources import builtin_group_resources
from k3py.api.selectors import go_quote

Obj = dict[str, Any]


def overlaps_builtin(crd: Obj) -> bool:
    """Whether the CRD's ``spec.group`` and ``spec.names.plural`` are a built-in resource's."""
    spec = crd.get("spec")
    names = spec.get("names") if isinstance(spec, dict) else None
    if not isinstance(spec, dict) or not isinstance(names, dict):
        return False
    return (str(spec.get("group") or ""), str(names.get("plural") or "")) in builtin_group_resources()


def _used(crds: Iterable[Obj], group: str) -> tuple[set[str], set[str]]:
    resources: set[str] = set()
    kinds: set[str] = set()
    for crd in crds:
        if (crd.get("spec") or {}).get("group") != group:
            continue
        accepted = (crd.get("status") or {}).get("acceptedNames") or {}
        resources.update(str(accepted.get(k) or "") for k in ("plural", "singular"))
        resources.update(str(n) for n in accepted.get("shortNames") or ())
        kinds.update(str(accepted.get(k) or "") for k in ("kind", "listKind"))
    return resources, kinds


def _taken(requested: str, accepted: str, used: set[str]) -> str:
    """The conflict message, or '' when the name may be taken."""
    if requested == accepted or requested not in used:
        return ""
    return f"{go_quote(requested)} is already in use"


def names_and_conditions(crd: Obj, crds: Iterable[Obj]) -> tuple[Obj, Obj, Obj]:
    """``(acceptedNames, NamesAccepted, Established)`` for ``crd`` among ``crds`` (all CRDs, as
    most recently written)."""
    spec, status = crd["spec"], crd.get("status") or {}
    requested = spec.get("names") or {}
    accepted = dict(status.get("acceptedNames") or {})
    resources, kinds = _used(crds, str(spec.get("group", "")))
    names = dict(accepted)
    problem: tuple[str, str] | None = None

    for key, reason, used in (
        ("plural", "PluralConflict", resources),
        ("singular", "SingularConflict", resources),
    ):
        if message := _taken(str(requested.get(key) or ""), str(accepted.get(key) or ""), used):
            problem = (reason, message)
        else:
            names[key] = requested.get(key) or ""
    wanted_short = list(requested.get("shortNames") or ())
    if wanted_short != list(accepted.get("shortNames") or ()):
        owned = set(accepted.get("shortNames") or ())
        messages = [m for n in wanted_short if n not in owned and (m := _taken(str(n), "", resources))]
        if messages:
            problem = (
                "ShortNamesConflict",
                messages[0] if len(messages) == 1 else f"[{', '.join(messages)}]",
            )
        else:
            names["shortNames"] = wanted_short
    for key, reason in (("kind", "KindConflict"), ("listKind", "ListKindConflict")):
        if message := _taken(str(requested.get(key) or ""), str(accepted.get(key) or ""), kinds):
            problem = (reason, message)
        else:
            names[key] = requested.get(key) or ""
    if overlaps_builtin(crd):
        names["plural"] = accepted.get("plural") or ""
        problem = (
            "OverlappingBuiltInResource",
            f"{go_quote(str(requested.get('plural')))} is already in use by a built-in resource "
            f"of {go_quote(str(spec.get('group')))}: its objects would be the built-in's",
        )
    if requested.get("categories"):
        names["categories"] = list(requested["categories"])
    else:
        names.pop("categories", None)
    if not names.get("shortNames"):
        names.pop("shortNames", None)

    if problem is None:
        names_accepted = {
            "type": NAMES_ACCEPTED,
            "status": "True",
            "reason": "NoConflicts",
            "message": "no conflicts found",
        }
    else:
        names_accepted = {
            "type": NAMES_ACCEPTED,
            "status": "False",
            "reason": problem[0],
            "message": problem[1],
        }
    established = condition(crd, ESTABLISHED) or {
        "type": ESTABLISHED,
        "status": "False",
        "reason": "NotAccepted",
        "message": "not all names are accepted",
    }
    if established.get("status") != "True" and names_accepted["status"] == "True":
        established = {
            "type": ESTABLISHED,
            "status": "True",
            "reason": "InitialNamesAccepted",
            "message": "the initial names have been accepted",
        }
    return names, names_accepted, {k: v for k, v in established.items() if k != "lastTransitionTime"}
