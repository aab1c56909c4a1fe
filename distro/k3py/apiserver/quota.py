"""ResourceQuota admission (kube-apiserver's ``ResourceQuota`` plugin): every write that would
use more than a quota in its namespace allows is refused, and an admitted write is charged to
the quotas' ``status.used`` before it is stored.

For a create (and for updates of pods, Services and claims, which can grow), the object's
usage (``k3py.api.quota``), less what the old object used, is added to the ``status.used`` of
every quota that matches it and limits one of the names it uses. A quota whose new usage
would pass its ``status.hard`` refuses the write with upstream's message::

    pods "x" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2

The charge is a compare-and-swap on the quota's resourceVersion through the store's status
subresource, retried on a concurrent write, and checked again on every retry: two writes
racing for the last unit of a quota cannot both win. A charge for a write that is refused
later (by validation, or because the name is taken) stays until the resourcequota controller
recounts, as upstream's.

A quota created (or whose ``spec.hard`` changes) is admitted with its ``status`` counted from
the namespace's objects, so it is enforced at once rather than refusing every write with
"status unknown" until the controller first counts it.
"""

from __future__ import annotations

import logging
from fractions import Fraction

from k3py.api import quota
from k3py.api.resources import Resource
from k3py.apiserver import errors
from k3py.apiserver.generic import ListOptions, Obj, ObjectStore, WriteOptions

log = logging.getLogger(__name__)

QUOTAS = "resourcequotas"
GROWING = frozenset({"pods", "services", "persistentvolumeclaims"})
"""Core resources whose updates are charged too (the others count once, on create)."""


class Refused(Exception):
    """A quota refused a charge (its message is upstream's)."""


class ResourceQuotaAdmission:
    """Enforces the ResourceQuotas of a write's namespace and charges them for it."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        found = store.registry.lookup("", "v1", QUOTAS)
        assert found is not None, "core/v1 resourcequotas is required"
        self.quotas = found

    async def __call__(
        self, res: Resource, namespace: str, obj: Obj, old: Obj | None, opts: WriteOptions
    ) -> None:
        if opts.deleting or opts.subresource or not res.namespaced or not namespace:
            return
        if res is self.quotas or (res.plural == QUOTAS and not res.group):
            await self._count_new_quota(namespace, obj, old)
        if old is not None and (res.group or res.plural not in GROWING):
            return
        if old is not None and (old.get("metadata") or {}).get("deletionTimestamp"):
            return
        delta = quota.usage(res.plural, res.group, obj)
        if old is not None:
            delta = {
                k: max(v, Fraction(0))
                for k, v in quota.subtract(delta, quota.usage(res.plural, res.group, old)).items()
            }
        if not any(delta.values()) and old is not None:
            return
        await self._charge(res, namespace, obj, old, delta, opts)

    async def _charge(
        self,
        res: Resource,
        namespace: str,
        obj: Obj,
        old: Obj | None,
        delta: quota.ResourceList,
        opts: WriteOptions,
    ) -> None:
        listed = await self.store.list(self.quotas, namespace, ListOptions())
        applying = [q for q in listed["items"] if quota.matches(q, res.plural, res.group, obj)]
        if not applying:
            return
        name = str((obj.get("metadata") or {}).get("name") or "")
        charges: list[tuple[str, quota.ResourceList]] = []
        for found in sorted(applying, key=lambda q: str(q["metadata"]["name"])):
            quota_name = str(found["metadata"]["name"])
            hard = quota.parse_list((found.get("status") or {}).get("hard"))
            pod_create = old is None and res.plural == "pods" and not res.group
            if pod_create and (why := quota.pod_constraints(hard, obj)):
                raise _forbidden(res, name, f"failed quota: {quota_name}: {why}")
            requested = {k: v for k, v in quota.mask(delta, hard).items() if v}
            if not requested:
                continue
            try:
                check(found, requested)
            except Refused as exc:
                raise _forbidden(res, name, str(exc)) from None
            charges.append((quota_name, requested))
        if opts.dry_run:
            return
        done: list[tuple[str, quota.ResourceList]] = []
        try:
            for quota_name, requested in charges:
                await self._apply(namespace, quota_name, requested, refund=False)
                done.append((quota_name, requested))
        except Refused as exc:
            await self._refund(namespace, done)
            raise _forbidden(res, name, str(exc)) from None

    async def _apply(self, namespace: str, name: str, amounts: quota.ResourceList, *, refund: bool) -> None:
        """Add ``amounts`` to the quota's ``status.used`` (checked, unless refunding) with a
        compare-and-swap on its resourceVersion, retried on a concurrent write."""

        def change(current: Obj) -> Obj:
            if not refund:
                check(current, amounts)
            status = current.setdefault("status", {})
            used = quota.parse_list(status.get("used"))
            changed = quota.subtract(used, amounts) if refund else quota.add(used, amounts)
            status["used"] = {**(status.get("used") or {}), **quota.format_list(quota.mask(changed, amounts))}
            return current

        try:
            await self.store.guaranteed_update(self.quotas, namespace, name, change, WriteOptions(), "status")
        except errors.ApiError as exc:
            if exc.code != 404:  # a quota deleted meanwhile no longer limits anything
                raise

    async def _refund(self, namespace: str, done: list[tuple[str, quota.ResourceList]]) -> None:
        for name, amounts in done:
            try:
                await self._apply(namespace, name, amounts, refund=True)
            except errors.ApiError as exc:  # the controller's next count corrects it
                log.warning("refunding quota %s/%s failed: %s", namespace, name, exc)

    async def _count_new_quota(self, namespace: str, obj: Obj, old: Obj | None) -> None:
        """Give a new quota (or one whose limits changed) the status it would get counted."""
        spec_hard = (obj.get("spec") or {}).get("hard") or {}
        if old is not None and ((old.get("spec") or {}).get("hard") or {}) == spec_hard:
            return
        listed: dict[quota.ResourceKey, list[Obj]] = {}
        for plural, group in quota.resources_counted(spec_hard):
            resource = self._resource(plural, group)
            if resource is not None:
                listed[(plural, group)] = (await self.store.list(resource, namespace, ListOptions()))["items"]
        if old is None:  # a quota counts itself among the namespace's quotas
            listed.setdefault((QUOTAS, ""), []).append(obj)
        used = quota.namespace_usage(obj, listed)
        obj["status"] = {"hard": dict(spec_hard), "used": quota.format_list(used)}

    def _resource(self, plural: str, group: str) -> Resource | None:
        registry = self.store.registry
        for version in registry.versions(group):
            found = registry.lookup(group, version, plural)
            if found is not None and found.namespaced:
                return found
        return None


def check(found: Obj, requested: quota.ResourceList) -> None:
    """Raise :class:`Refused` when ``requested`` on top of the quota's ``status.used`` passes
    its ``status.hard`` (or the quota has not been counted yet for a requested name)."""
    name = str((found.get("metadata") or {}).get("name") or "")
    status = found.get("status") or {}
    hard = quota.parse_list(status.get("hard"))
    used = quota.parse_list(status.get("used"))
    unknown = sorted(k for k in requested if k not in used)
    if unknown:
        raise Refused(f"status unknown for quota: {name}, resources: {','.join(unknown)}")
    exceeded = sorted(k for k, v in requested.items() if used[k] + v > hard.get(k, used[k] + v))
    if exceeded:
        shown = [quota.pretty(quota.mask(values, exceeded)) for values in (requested, used, hard)]
        raise Refused(f"exceeded quota: {name}, requested: {shown[0]}, used: {shown[1]}, limited: {shown[2]}")


def _forbidden(res: Resource, name: str, why: str) -> errors.ApiError:
    """``admission.NewForbidden``: the resource and name, then why."""
    details: dict[str, str] = {"name": name, "kind": res.plural}
    if res.group:
        details["group"] = res.group
    return errors.ApiError(403, "Forbidden", f'{res.name} "{name}" is forbidden: {why}', details)
