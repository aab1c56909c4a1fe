"""The default RBAC policy in the store, and aggregated ClusterRoles kept filled.

:func:`ensure_policy` runs at every start, before the API server listens: each role and
binding of the bundled policy (``k3py.apiserver.rbac_policy``) is created, extended or
(a binding whose roleRef changed) recreated, so an upgrade brings new permissions and a
cluster admin's own additions survive. :func:`aggregate_forever` is the cluster-role
aggregation controller: a ClusterRole with an ``aggregationRule`` (admin, edit, view...) gets
the rules of every other ClusterRole its selectors match, in name order without repeats, and
again whenever a ClusterRole changes.
"""

from __future__ import annotations

import asyncio
import logging

from k3py.api.selectors import SelectorError, from_label_selector_object
from k3py.apiserver import errors
from k3py.apiserver.cache import ObjectCache
from k3py.apiserver.generic import DeleteOptions, Obj, ObjectStore, WriteOptions
from k3py.apiserver.rbac_policy import load, reconcile

log = logging.getLogger(__name__)

GROUP = "rbac.authorization.k8s.io"
PLURALS = {
    "ClusterRole": "clusterroles",
    "ClusterRoleBinding": "clusterrolebindings",
    "Role": "roles",
    "RoleBinding": "rolebindings",
}
MANAGER = "k3py-rbac-bootstrap"


async def ensure_policy(store: ObjectStore) -> None:
    """Create or extend every object of the default policy (see the module docstring)."""
    counts = {"create": 0, "update": 0, "recreate": 0}
    for wanted in load():
        resource = store.registry.lookup(GROUP, "v1", PLURALS[wanted["kind"]])
        assert resource is not None, "RBAC is a required API"
        meta = wanted["metadata"]
        namespace, name = meta.get("namespace", ""), meta["name"]
        existing = await store.find(resource, namespace, name)
        change = reconcile(wanted, existing)
        if change is None:
            continue
        opts = WriteOptions(field_manager=MANAGER)
        if change.recreate:
            await store.delete(resource, namespace, name, DeleteOptions())
            await store.create(resource, namespace, change.obj, opts)
        elif existing is None:
            await store.create(resource, namespace, change.obj, opts)
        else:
            await store.update(resource, namespace, name, change.obj, opts)
        counts[change.operation.value] += 1
    if any(counts.values()):
        log.info(
            "Default RBAC policy: %d created, %d updated, %d recreated",
            counts["create"],
            counts["update"],
            counts["recreate"],
        )


def aggregated_rules(role: Obj, cluster_roles: list[Obj]) -> list[Obj]:
    """The rules an aggregated ClusterRole should hold, as upstream's controller computes them."""
    rules: list[Obj] = []
    name = role["metadata"]["name"]
    ordered = sorted(cluster_roles, key=lambda r: r["metadata"]["name"])
    for selector_obj in (role.get("aggregationRule") or {}).get("clusterRoleSelectors") or []:
        try:
            selector = from_label_selector_object(selector_obj)
        except SelectorError:
            continue
        for other in ordered:
            if other["metadata"]["name"] == name:
                continue
            if not selector.matches(other["metadata"].get("labels") or {}):
                continue
            for rule in other.get("rules") or []:
                if rule not in rules:
                    rules.append(rule)
    return rules


async def aggregate(store: ObjectStore, cache: ObjectCache) -> int:
    """Bring every aggregated ClusterRole's rules up to date; how many were written."""
    resource = store.registry.lookup(GROUP, "v1", "clusterroles")
    assert resource is not None
    roles = cache.objects()
    written = 0
    for role in roles:
        if not role.get("aggregationRule"):
            continue
        rules = aggregated_rules(role, roles)
        if rules == (role.get("rules") or []):
            continue
        name = role["metadata"]["name"]

        def change(current: Obj, rules: list[Obj] = rules) -> Obj:
            return {**current, "rules": rules}

        try:
            await store.guaranteed_update(resource, "", name, change, WriteOptions(field_manager=MANAGER))
            written += 1
        except errors.ApiError as exc:
            if exc.code != 404:
                raise
    return written


async def aggregate_forever(store: ObjectStore, cache: ObjectCache) -> None:
    """Re-aggregate after every change to the ClusterRoles (a supervised task)."""
    changed = asyncio.Event()
    cache.subscribe(lambda _: changed.set())
    changed.set()
    while True:
        await changed.wait()
        changed.clear()
        if written := await aggregate(store, cache):
            log.debug("Aggregated %d cluster roles", written)
