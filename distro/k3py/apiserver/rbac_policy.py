"""Kubernetes' default RBAC policy (the "bootstrap policy") and its reconciliation at start.

The policy is data: ``k3py/api/data/bootstrap-rbac.yaml`` holds the ClusterRoles,
ClusterRoleBindings, Roles and RoleBindings that kube-apiserver 1.37 keeps in place, in the order
it reconciles them. :func:`load` reads it; for each wanted object the caller GETs the stored one
and asks :func:`reconcile` what to write, as kube-apiserver's ``rbac/bootstrap-roles`` hook does
through ``k8s.io/component-helpers/auth/rbac/reconciliation``:

* nothing stored: create the wanted object;
* stored with annotation ``rbac.authorization.kubernetes.io/autoupdate: "false"``: leave it alone;
* a role: keep what is stored (metadata, extra rules), add the wanted labels and annotations it
  lacks, the wanted rules its rules do not *cover* (upstream's ``Covers``: ``*`` and ``*/sub``
  resources, ``prefix*`` URLs, resource names), and the wanted aggregation selectors it lacks; an
  aggregation rule that is no longer wanted is dropped. Missing rules are appended broken down to
  one (group, resource, verb[, name]) or (URL, verb) each, as upstream appends them;
* a binding: if its roleRef differs it must be deleted and created anew (a roleRef is immutable);
  otherwise add the wanted labels, annotations and subjects it lacks.

Objects stay plain dicts; the result is a :class:`Change`, or None when nothing is to be written.
Not here: upstream creates a Role's namespace if missing (k3py's bootstrap makes kube-system and
kube-public first), and migrates pre-1.9 admin/edit/view and pre-1.14 system:discovery objects
(``primeAggregatedClusterRoles``, ``primeSplitClusterRoleBindings``), which no k3py store holds.
"""

from __future__ import annotations

import copy
import enum
import functools
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final

import yaml

from k3py.apiserver.rbac import breakdown, covers

Obj = dict[str, Any]

DATA_FILE: Final = "bootstrap-rbac.yaml"
K3PY_FILE: Final = "k3py-rbac.yaml"
DNS_FILE: Final = "k3py-rbac-dns.yaml"
DATA_FILES: Final = (DATA_FILE, DNS_FILE, K3PY_FILE)
"""Upstream's default policy, the role of K3s's packaged cluster DNS (``system:coredns``), then
k3py's own bindings (node join, like kubeadm's)."""
AUTOUPDATE: Final = "rbac.authorization.kubernetes.io/autoupdate"
API_VERSION: Final = "rbac.authorization.k8s.io/v1"
ROLE_KINDS: Final = ("ClusterRole", "Role")
BINDING_KINDS: Final = ("ClusterRoleBinding", "RoleBinding")


class PolicyError(Exception):
    """The bundled policy cannot be read, or an object is not an RBAC role or binding."""


class Operation(enum.Enum):
    CREATE = "create"
    UPDATE = "update"  # write over the stored object (its uid and resourceVersion are kept)
    RECREATE = "recreate"  # delete the stored object (precondition: its uid), then create


@dataclass(frozen=True)
class Change:
    """What to write for one wanted object."""

    operation: Operation
    obj: Obj

    @property
    def recreate(self) -> bool:
        return self.operation is Operation.RECREATE


def load() -> list[Obj]:
    """The default policy objects, in reconcile order; the caller owns the returned dicts."""
    return copy.deepcopy(_bundled())


@functools.cache
def _bundled() -> list[Obj]:
    return [doc for name in DATA_FILES for doc in _read(name)]


def _read(name: str) -> list[Obj]:
    resource = resources.files("k3py.api").joinpath("data", name)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml parses it ~10x faster
    try:
        docs = [doc for doc in yaml.load_all(resource.read_bytes(), Loader=loader) if doc is not None]
    except (OSError, yaml.YAMLError) as err:
        raise PolicyError(f"cannot read the bundled RBAC policy {name}: {err}") from None
    for doc in docs:
        if not isinstance(doc, dict) or doc.get("apiVersion") != API_VERSION:
            raise PolicyError(f"{name}: not an {API_VERSION} object: {doc!r:.200}")
        _kind(doc)
    return docs


def reconcile(wanted: Obj, existing: Obj | None) -> Change | None:
    """What to write so that ``existing`` (None: not stored) grants at least what ``wanted`` does."""
    kind = _kind(wanted)
    if existing is None:
        return Change(Operation.CREATE, copy.deepcopy(wanted))
    if _meta(existing, "annotations").get(AUTOUPDATE) == "false":
        return None  # reconcile-protected: upstream only logs what it would have added
    if kind in BINDING_KINDS and _role_ref(wanted) != _role_ref(existing):
        return Change(Operation.RECREATE, copy.deepcopy(wanted))
    result = copy.deepcopy(existing)
    changed = _merge_metadata(result, wanted)
    if kind in ROLE_KINDS:
        changed |= _merge_rules(result, wanted)
        changed |= _merge_aggregation(result, wanted)
    else:
        changed |= _merge_subjects(result, wanted)
    return Change(Operation.UPDATE, result) if changed else None


def _kind(obj: Obj) -> str:
    kind = obj.get("kind")
    if kind not in ROLE_KINDS + BINDING_KINDS:
        raise PolicyError(f"not an RBAC role or binding: kind {kind!r}")
    return str(kind)


def _meta(obj: Obj, key: str) -> dict[str, str]:
    return dict(obj.get("metadata", {}).get(key) or {})


def _merge_metadata(result: Obj, wanted: Obj) -> bool:
    """Add the wanted labels and annotations the stored object lacks; its own values win."""
    changed = False
    for key in ("labels", "annotations"):
        have = _meta(result, key)
        merged = _meta(wanted, key) | have
        if merged != have:
            result.setdefault("metadata", {})[key] = merged
            changed = True
    return changed


# -- roles -----------------------------------------------------------------------------------------


def _merge_rules(result: Obj, wanted: Obj) -> bool:
    owned = result.get("rules") or []
    missing = [sub for rule in wanted.get("rules") or [] for sub in breakdown(rule)]
    missing = [sub for sub in missing if not any(covers(owner, sub) for owner in owned)]
    if missing:
        result["rules"] = [*owned, *missing]
    return bool(missing)


def _merge_aggregation(result: Obj, wanted: Obj) -> bool:
    want, have = wanted.get("aggregationRule"), result.get("aggregationRule")
    if want is None:
        if have is None:
            return False
        del result["aggregationRule"]  # no longer an aggregated role
        return True
    have_selectors = (have or {}).get("clusterRoleSelectors") or []
    seen = [_selector(s) for s in have_selectors]
    missing = [s for s in want.get("clusterRoleSelectors") or [] if _selector(s) not in seen]
    if missing:
        result["aggregationRule"] = (have or {}) | {"clusterRoleSelectors": [*have_selectors, *missing]}
    return bool(missing)


def _selector(selector: Obj) -> Obj:
    """A label selector for comparison: empty and absent fields are the same (semantic equality)."""
    return {key: value for key, value in selector.items() if value}


# -- bindings --------------------------------------------------------------------------------------


def _role_ref(binding: Obj) -> tuple[str, str, str]:
    ref = binding.get("roleRef") or {}
    return (ref.get("apiGroup") or "", ref.get("kind") or "", ref.get("name") or "")


def _subject_key(subject: Obj) -> tuple[str, ...]:
    """A subject for comparison (upstream compares the struct: absent and "" are the same)."""
    return tuple(str(subject.get(field) or "") for field in ("kind", "apiGroup", "name", "namespace"))


def _merge_subjects(result: Obj, wanted: Obj) -> bool:
    owned = result.get("subjects") or []
    seen = {_subject_key(s) for s in owned}
    missing: list[Obj] = []
    for subject in wanted.get("subjects") or []:
        if _subject_key(subject) not in seen:
            seen.add(_subject_key(subject))
            missing.append(copy.deepcopy(subject))
    if missing:
        result["subjects"] = [*owned, *missing]
    return bool(missing)
