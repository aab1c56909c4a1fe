"""Which pods a controller owns: upstream's ``ControllerRefManager.ClaimPods``.

A controller keeps the pods it controls that its selector still matches, releases those it
controls that the selector no longer matches (their controller reference is patched away), and
adopts orphans the selector matches (a controller reference is patched on), unless the owner is
being deleted. Before its first adoption in a sync it reads the owner afresh: an owner deleted
or replaced (same name, new uid) since the cache saw it must not adopt. Patches carry the pod's
uid, so a pod replaced under the same name is never touched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from k3py.api.selectors import LabelSelector, SelectorError
from k3py.client.rest import ApiStatusError, RestClient
from k3py.controllers.objects import (
    Obj,
    controller_ref,
    deleting,
    labels_of,
    meta_of,
    owner_reference,
    uid_of,
)


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
