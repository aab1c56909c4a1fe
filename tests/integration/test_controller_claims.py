"""The pods a controller looks at in a sync (``claims.pods_of``), from a real pod informer over an
in-process API server: its own pods and the orphans its selector could adopt, found through the
informer's index by controller as pods are created, adopted and deleted."""

from __future__ import annotations

import asyncio

import pytest

from k3py.api.selectors import LabelSelector, from_label_selector_object
from k3py.client.informer import Informer
from k3py.client.rest import RestClient
from k3py.controllers.claims import index_by_controller, pods_of
from tests.integration.test_informer import api, names, until  # noqa: F401 (the api fixture)

OWNER = {"metadata": {"name": "web", "namespace": "a", "uid": "uid-web"}}
REF = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "uid-web", "controller": True}


def pod(name: str, labels: dict[str, str], *owners: dict[str, object]) -> dict[str, object]:
    meta: dict[str, object] = {"name": name, "labels": labels}
    if owners:
        meta["ownerReferences"] = list(owners)
    return {"metadata": meta, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


def selector(**match: object) -> LabelSelector:
    return from_label_selector_object(match)


async def test_a_sync_sees_its_own_pods_and_the_orphans_its_selector_could_adopt(api: RestClient) -> None:  # noqa: F811
    other = {**REF, "name": "other", "uid": "uid-other"}
    for namespace, body in (
        ("a", pod("mine", {"app": "web"}, REF)),
        ("a", pod("mine-relabelled", {"app": "db"}, REF)),  # still its own: a claim releases it
        ("a", pod("orphan-web", {"app": "web", "tier": "front"})),
        ("a", pod("orphan-db", {"app": "db"})),
        ("a", pod("orphan-bare", {})),
        ("a", pod("someone-elses", {"app": "web"}, other)),
        ("b", pod("orphan-elsewhere", {"app": "web"})),
    ):
        await api.create(f"/api/v1/namespaces/{namespace}/pods", body)
    informer = index_by_controller(Informer(api, "/api/v1/pods"))
    task = asyncio.create_task(informer.run())
    try:
        await informer.synced()
        assert names(pods_of(informer, OWNER)) == {"mine", "mine-relabelled"}
        web = selector(matchLabels={"app": "web"})
        assert names(pods_of(informer, OWNER, web)) == {"mine", "mine-relabelled", "orphan-web"}
        either = selector(matchExpressions=[{"key": "app", "operator": "In", "values": ["web", "db"]}])
        assert names(pods_of(informer, OWNER, either)) == {
            "mine", "mine-relabelled", "orphan-web", "orphan-db"
        }  # fmt: skip
        exists = selector(matchExpressions=[{"key": "tier", "operator": "Exists"}])
        assert names(pods_of(informer, OWNER, exists)) == {  # no exact label: every orphan
            "mine", "mine-relabelled", "orphan-web", "orphan-db", "orphan-bare"
        }  # fmt: skip
        assert names(pods_of(informer, OWNER, LabelSelector(nothing=True))) == {"mine", "mine-relabelled"}

        # Adopted, the orphan is found as the owner's own; a new orphan shows up; a deleted one goes.
        path = "/api/v1/namespaces/a/pods"
        adopted = await api.get(f"{path}/orphan-web")
        adopted["metadata"]["ownerReferences"] = [REF]
        await api.update(f"{path}/orphan-web", adopted)
        await api.create(path, pod("late", {"app": "web"}))
        await api.delete(f"{path}/mine", {"gracePeriodSeconds": 0})
        await until(lambda: names(pods_of(informer, OWNER)) == {"mine-relabelled", "orphan-web"})
        await until(lambda: names(pods_of(informer, OWNER, web)) == {"mine-relabelled", "orphan-web", "late"})
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
