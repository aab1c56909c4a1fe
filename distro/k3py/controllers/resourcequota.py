"""The resourcequota controller: counts what every ResourceQuota's namespace uses.

As kube-controller-manager's ``resourcequota`` controller, each quota's ``status`` is
recomputed from the objects of its namespace (``k3py.api.quota``): ``status.hard`` is
``spec.hard``, ``status.used`` holds every hard name with what the matching objects use. A
quota is recounted when it is created or its ``spec.hard`` changes, when an object it may
count changes or goes away (a deleted pod, a pod that ended: the replenishment upstream's
monitors do), and every ``period`` seconds (``--resource-quota-sync-period``, 5 minutes).

Admission charges a quota before the object is stored; the controller corrects what a refused
or deleted write left behind. The status is written with the quota's resourceVersion, so a
charge admitted meanwhile makes the write conflict and the quota is counted again.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from typing import Any

from k3py.api import quota
from k3py.client.informer import Informer, SharedInformers
from k3py.client.rest import ApiStatusError, RestClient
from k3py.controllers.base import Controller, Key, key_of

log = logging.getLogger(__name__)

Obj = dict[str, Any]
SYNC_PERIOD = 300.0
TICK: Key = ("", "")
"""The key of the periodic full recount (no quota has an empty name)."""
WATCHED = ("pods", "services", "persistentvolumeclaims", "configmaps", "secrets", "replicationcontrollers")
"""Core resources followed by informers; others (``count/<plural>.<group>``) are listed when
a quota counts them."""


class ResourceQuotaController(Controller):
    name = "resourcequota-controller"
    identity = "resourcequota-controller"

    def __init__(
        self, api: RestClient, informers: SharedInformers | None = None, *, period: float = SYNC_PERIOD
    ) -> None:
        super().__init__(api, informers)
        self.period = period
        self.quotas = self.informer("/api/v1/resourcequotas")
        self.on(self.quotas, self._quota_changed)
        self.watched: dict[quota.ResourceKey, Informer] = {}
        for plural in WATCHED:
            informer = self.informer(f"/api/v1/{plural}")
            self.on(informer, self._object_changed)
            self.watched[(plural, "")] = informer
        self._versions: dict[str, str] = {}

    async def run(self) -> None:
        self.queue.add(TICK)
        await super().run()

    def _quota_changed(self, old: Obj | None, new: Obj | None) -> None:
        if new is None:
            return
        status_hard = (new.get("status") or {}).get("hard") or {}
        spec_hard = (new.get("spec") or {}).get("hard") or {}
        if old is None or _differ(spec_hard, status_hard) or _spec(old) != _spec(new):
            self.queue.add(key_of(new))

    def _object_changed(self, old: Obj | None, new: Obj | None) -> None:
        """Recount the quotas of the namespace an object changed in."""
        changed = new if new is not None else old
        if changed is None:
            return
        namespace = key_of(changed)[0]
        for found in self.quotas.items():
            if key_of(found)[0] == namespace:
                self.queue.add(key_of(found))

    async def sync(self, key: Key) -> None:
        if key == TICK:
            for found in self.quotas.items():
                self.queue.add(key_of(found))
            self.queue.add_after(TICK, self.period)
            return
        current = self.quotas.get(*key)
        if current is not None:
            await self.count(current)

    async def count(self, found: Obj) -> None:
        """Recompute one quota's status and write it when it differs."""
        namespace, name = key_of(found)
        spec_hard = dict((found.get("spec") or {}).get("hard") or {})
        listed: dict[quota.ResourceKey, list[Obj]] = {}
        for resource in quota.resources_counted(spec_hard):
            listed[resource] = await self._objects(resource, namespace)
        used = quota.namespace_usage(found, listed)
        status = found.get("status") or {}
        if not _differ(spec_hard, status.get("hard") or {}) and not _differ(
            quota.format_list(used), status.get("used") or {}
        ):
            return
        body = dict(found)
        body["status"] = {**status, "hard": spec_hard, "used": quota.format_list(used)}
        path = f"/api/v1/namespaces/{namespace}/resourcequotas/{name}/status"
        try:
            await self.api.update(path, body)
        except ApiStatusError as exc:
            if exc.code == 404:
                return
            raise  # a conflict: counted again, with back-off
        log.debug("%s: counted quota %s/%s: %s", self.name, namespace, name, body["status"]["used"])

    async def _objects(self, resource: quota.ResourceKey, namespace: str) -> list[Obj]:
        informer = self.watched.get(resource)
        if informer is not None:
            return informer.in_namespace(namespace)
        plural, group = resource
        path = await self._path(group, plural, namespace)
        if path is None:
            return []
        try:
            listed = await self.api.list(path)
        except ApiStatusError as exc:
            if exc.code == 404:
                return []
            raise
        return list(listed.get("items") or [])

    async def _path(self, group: str, plural: str, namespace: str) -> str | None:
        if not group:
            return f"/api/v1/namespaces/{namespace}/{plural}"
        version = self._versions.get(group)
        if version is None:
            try:
                found = await self.api.get(f"/apis/{group}")
            except ApiStatusError as exc:
                if exc.code == 404:
                    return None
                raise
            version = str((found.get("preferredVersion") or {}).get("groupVersion") or "")
            if not version:
                return None
            self._versions[group] = version
        return f"/apis/{version}/namespaces/{namespace}/{plural}"


def _spec(obj: Obj) -> object:
    return obj.get("spec")


def _differ(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two ResourceLists differ by name or by value (``1000m`` equals ``1``)."""
    if set(a) != set(b):
        return True
    left, right = quota.parse_list(a), quota.parse_list(b)
    return any(left.get(k, Fraction(-1)) != right.get(k, Fraction(-2)) for k in a)
