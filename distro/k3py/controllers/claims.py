"""Which pods a controller owns: upstream's ``ControllerRefManager.ClaimPods``.

A controller keeps the pods it controls that its selector still matches, releases those it
controls that the selector no longer matches (their controller reference is patched away), and
adopts orphans the selector matches (a controller reference is patched on), unless the owner is
being deleted. Before its first adoption in a sync it reads the owner afresh: an owner deleted
or replaced (same name, new uid) since the cache saw it must not adopt. Patches carry the pod's
uid, so a pod replaced under the same name is never touched.

The candidates come from the pod informer's index by controller (upstream's
``PodControllerUIDIndex``): the pods a controller owns and the orphans its selector may adopt, never
every pod of the namespace, so a sync costs what the owner has, not what its namespace holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from k3py.api.selectors import LabelSelector, Operator, SelectorError
from k3py.client.informer import Informer
from k3py.client.rest import ApiStatusError, RestClient
from k3py.controllers.objects import (
    Obj,
    controller_ref,
    controller_uid,
    deleting,
    labels_of,
    meta_of,
    owner_reference,
    uid_of,
)

EXACT = frozenset({Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.IN})
"""Requirements that name every value a matching label may have."""


BY_CONTROLLER = "controller-uid"
"""The pod index by controller: a pod is found under its controller's uid; an orphan under
:func:`orphans_of` its namespace, and under :func:`orphans_of` its namespace and each label."""


def orphans_of(namespace: str, label: str = "", value: str = "") -> str:
    """The index value of a namespace's pods without a controller, or of those among them with
    ``label`` set to ``value`` (uids and namespaces hold no ``/``, label keys no ``=``)."""
    return f"orphans/{namespace}/{label}={value}" if label else f"orphans/{namespace}"


def _controller_values(pod: Obj) -> list[str]:
    uid = controller_uid(pod)
    if uid:
        return [uid]
    namespace = str(meta_of(pod).get("namespace") or "")
    labels = meta_of(pod).get("labels") or {}
    return [orphans_of(namespace), *(orphans_of(namespace, k, str(v)) for k, v in labels.items())]


def index_by_controller(pods: Informer) -> Informer:
    """Make ``pods`` (a pod informer) answer :func:`pods_of`; returns it."""
    pods.add_index(BY_CONTROLLER, _controller_values)
    return pods


def pods_of(pods: Informer, owner: Obj, selector: LabelSelector | None = None) -> list[Obj]:
    """The pods of ``owner``'s namespace that it controls; with ``selector``, also the orphans
    it could adopt: those with no controller, narrowed by the first label the selector requires
    an exact value of (all of them when it has none); the selector is not applied here.
    ``pods`` went through :func:`index_by_controller`."""
    namespace = str(meta_of(owner).get("namespace") or "")
    found = [
        p for p in pods.by_index(BY_CONTROLLER, uid_of(owner)) if meta_of(p).get("namespace") == namespace
    ]
    if selector is None or selector.nothing:
        return found
    for requirement in selector.requirements:
        if requirement.operator in EXACT:
            for value in requirement.values:
                found += pods.by_index(BY_CONTROLLER, orphans_of(namespace, requirement.key, value))
            return found
    return found + pods.by_index(BY_CONTROLLER, orphans_of(namespace))


class PodClaims:
    def __init__(
        self,
        api: RestClient,
        api_version: str,
        kind: str,
        owner_path: Callable[[str, str], str],
        *,
        finalizer: str = "",
    ) -> None:
        """``owner_path(namespace, name)``: where the owner is read afresh; ``finalizer``: one the
        owner puts on its pods, removed with the reference when a pod is released (Jobs')."""
        self.api = api
        self.api_version = api_version
        self.kind = kind
        self.owner_path = owner_path
        self.finalizer = finalizer

    async def claim(self, owner: Obj, selector: LabelSelector, pods: Iterable[Obj]) -> list[Obj]:
        """The pods ``owner`` controls after keeping, releasing and adopting among ``pods``."""
        uid, claimed = uid_of(owner), []
        checked = False
        for pod in pods:
            ref = controller_ref(pod)
            matches = selector.matches(labels_of(pod))
            if ref is not None:
                if ref.get("uid") != uid:
                    continue
                if matches:
                    claimed.append(pod)
                elif not deleting(owner):
                    await self._release(owner, pod)
                continue
            if deleting(owner) or deleting(pod) or not matches:
                continue
            if not checked:
                await self._can_adopt(owner)
                checked = True
            adopted = await self._adopt(owner, pod)
            if adopted is not None:
                claimed.append(adopted)
        return claimed

    async def _can_adopt(self, owner: Obj) -> None:
        info = meta_of(owner)
        fresh = await self.api.get(self.owner_path(str(info.get("namespace")), str(info["name"])))
        if uid_of(fresh) != uid_of(owner):
            raise RuntimeError(f"original {self.kind} {info['name']} is gone: uid changed")
        if deleting(fresh):
            raise RuntimeError(f"{self.kind} {info['name']} is being deleted: cannot adopt pods")

    async def _adopt(self, owner: Obj, pod: Obj) -> Obj | None:
        ref = owner_reference(owner, self.api_version, self.kind)
        return await self._patch(pod, {"metadata": {"ownerReferences": [ref], "uid": uid_of(pod)}})

    async def _release(self, owner: Obj, pod: Obj) -> None:
        metadata: Obj = {"ownerReferences": [{"$patch": "delete", "uid": uid_of(owner)}], "uid": uid_of(pod)}
        if self.finalizer and self.finalizer in (meta_of(pod).get("finalizers") or []):
            metadata["$deleteFromPrimitiveList/finalizers"] = [self.finalizer]
        await self._patch(pod, {"metadata": metadata})

    async def _patch(self, pod: Obj, patch: Obj) -> Obj | None:
        path = f"/api/v1/namespaces/{meta_of(pod).get('namespace')}/pods/{meta_of(pod)['name']}"
        try:
            return await self.api.patch(path, patch, "strategic")
        except ApiStatusError as exc:
            if exc.code in (404, 409, 422):
                return None  # gone, or changed under us: the next sync sees it again
            raise


def owners_selecting(
    pod: Obj, owners: Iterable[Obj], selector_of: Callable[[Obj], LabelSelector]
) -> list[Obj]:
    """The owners of the pod's namespace whose selector matches it (an orphan's candidates)."""
    namespace, pod_labels = meta_of(pod).get("namespace"), labels_of(pod)
    found = []
    for owner in owners:
        if meta_of(owner).get("namespace") != namespace:
            continue
        try:
            if selector_of(owner).matches(pod_labels):
                found.append(owner)
        except SelectorError:
            continue
    return found
