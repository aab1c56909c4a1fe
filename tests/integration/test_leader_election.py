"""Leader election on a Lease: one leader at a time, and a released lease is taken at once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from k3py.client.leaderelection import LeaderElector
from k3py.client.rest import Kubeconfig, RestClient
from tests.e2e.cluster import Cluster

pytestmark = pytest.mark.slow


@pytest.fixture
async def api(cluster: Cluster) -> AsyncIterator[RestClient]:
    config = Kubeconfig.load(cluster.kubeconfig)
    async with RestClient(config.server, config.credentials) as client:
        yield client


def leads(elector: LeaderElector) -> bool:
    return elector.leading


async def test_one_leader_at_a_time_and_handover_on_release(api: RestClient) -> None:
    leading: list[str] = []

    def candidate(name: str) -> tuple[LeaderElector, asyncio.Task[None]]:
        elector = LeaderElector(api, "kube-system", "test-lock", name, lease_duration=30, retry_period=0.2)

        async def lead() -> None:
            leading.append(name)
            await asyncio.Event().wait()

        return elector, asyncio.create_task(elector.run(lead))

    first, first_task = candidate("first")
    await asyncio.sleep(1)
    second, second_task = candidate("second")
    await asyncio.sleep(1.5)
    assert leading == ["first"] and first.leading and not second.leading
    lease = await api.get("/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/test-lock")
    assert lease["spec"]["holderIdentity"] == "first"
    first_task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await first_task
    for _ in range(50):  # well inside the 30 s lease: the release hands it over
        if leads(second):
            break
        await asyncio.sleep(0.1)
    assert leading == ["first", "second"]
    lease = await api.get("/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/test-lock")
    assert lease["spec"]["holderIdentity"] == "second" and lease["spec"]["leaseTransitions"] == 1
    second_task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await second_task
