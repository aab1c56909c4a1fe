"""Pod priority: kube-apiserver's ``Priority`` admission plugin and its system PriorityClasses.

- :func:`ensure_system_classes` creates ``system-node-critical`` and ``system-cluster-critical``
  at start, as kube-apiserver's ``scheduling/bootstrap-system-priority-classes`` hook does.
- :class:`PriorityAdmission`, on pod creation: ``spec.priorityClassName`` names a PriorityClass
  whose ``value`` becomes ``spec.priority`` and whose ``preemptionPolicy`` the pod's; a pod
  without a class gets the ``globalDefault`` class (its name too), or priority 0 and
  ``PreemptLowerPriority`` when there is none. An unknown class, or a priority or preemption
  policy the pod sets that differs from its class's, is refused with 403 in upstream's words.
  On PriorityClass writes: at most one class is the global default.
"""

from __future__ import annotations

import logging

from k3py.api.priorityclasses import SYSTEM_CLASSES
from k3py.api.resources import Resource
from k3py.apiserver import errors
from k3py.apiserver.generic import ListOptions, Obj, ObjectStore, WriteOptions

log = logging.getLogger(__name__)

GROUP = "scheduling.k8s.io"
DEFAULT_PRIORITY = 0
"""A pod's priority when it names no class and no class is the global default."""
PREEMPT_LOWER = "PreemptLowerPriority"


def _classes(store: ObjectStore) -> Resource:
    found = store.registry.lookup(GROUP, "v1", "priorityclasses")
    assert found is not None, "scheduling.k8s.io/v1 priorityclasses is required"
    return found


async def ensure_system_classes(store: ObjectStore) -> None:
    classes = _classes(store)
    for system in SYSTEM_CLASSES:
        name = system.name
        body = {
            "apiVersion": f"{GROUP}/v1",
            "kind": "PriorityClass",
            "metadata": {"name": name},
            "value": system.value,
            "description": system.description,
            "preemptionPolicy": PREEMPT_LOWER,
        }
        try:
            await store.create(classes, "", body, WriteOptions())
            log.info("Created PriorityClass %s", name)
        except errors.ApiError as exc:
            if exc.code != 409:
                raise


class PriorityAdmission:
    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self.classes = _classes(store)

    async def __call__(
        self, res: Resource, namespace: str, obj: Obj, old: Obj | None, opts: WriteOptions
    ) -> None:
        if opts.subresource or opts.deleting:
            return
        if res.group == "" and res.plural == "pods" and old is None:
            await self._pod(obj)
        elif res.group == GROUP and res.plural == "priorityclasses" and obj.get("globalDefault") is True:
            await self._one_default(obj)

    async def _pod(self, pod: Obj) -> None:
        spec = pod.setdefault("spec", {})
        name = str(spec.get("priorityClassName") or "")
        if name:
            found = await self.store.find(self.classes, "", name)
            if found is None:
                raise _forbidden(pod, f"no PriorityClass with name {name} was found")
        else:
            found = await self._global_default()
            if found is not None:
                spec["priorityClassName"] = found["metadata"]["name"]
        value = int(found.get("value") or 0) if found is not None else DEFAULT_PRIORITY
        policy = str((found or {}).get("preemptionPolicy") or PREEMPT_LOWER)
        given = spec.get("priority")
        if given is not None and given != value:
            raise _forbidden(
                pod,
                f"the integer value of priority ({given}) must not be provided in pod spec; priority "
                f"admission controller computed {value} from the given PriorityClass name",
            )
        given_policy = spec.get("preemptionPolicy")
        if given_policy and found is not None and found.get("preemptionPolicy") and given_policy != policy:
            raise _forbidden(
                pod,
                f"the string value of PreemptionPolicy ({given_policy}) must not be provided in pod spec; "
                f"priority admission controller computed {policy} from the given PriorityClass name",
            )
        spec["priority"] = value
        spec["preemptionPolicy"] = given_policy or policy

    async def _global_default(self) -> Obj | None:
        """The global default class (the lowest valued, should there be several)."""
        listed = await self.store.list(self.classes, "", ListOptions())
        defaults = [c for c in listed["items"] if c.get("globalDefault") is True]
        return min(defaults, key=lambda c: int(c.get("value") or 0), default=None)

    async def _one_default(self, priority_class: Obj) -> None:
        name = str((priority_class.get("metadata") or {}).get("name") or "")
        current = await self._global_default()
        if current is not None and current["metadata"]["name"] != name:
            raise errors.ApiError(
                403,
                "Forbidden",
                f'priorityclasses.scheduling.k8s.io "{name}" is forbidden: PriorityClass '
                f"{current['metadata']['name']} is already marked as default. Only one default can exist",
                {"name": name, "group": GROUP, "kind": "priorityclasses"},
            )


def _forbidden(pod: Obj, message: str) -> errors.ApiError:
    name = str((pod.get("metadata") or {}).get("name") or "")
    return errors.ApiError(
        403, "Forbidden", f'pods "{name}" is forbidden: {message}', {"name": name, "kind": "pods"}
    )
