"""The service proxy's loop against a real ``k3py server`` (no agent): informers, syncs, retries.

The test writes the Services and EndpointSlices itself (the controller manager is off) and
stands in for iptables with a recorder below :class:`ServiceProxy`, which fails once as a
missing or busy iptables would.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time

import pytest

from k3py.agent.serviceproxy import ServiceProxy
from k3py.agent.serviceproxy_rules import Ruleset
from k3py.client.rest import RestClient
from k3py.util.proc import CommandFailed
from tests.integration.api_support import until

pytestmark = pytest.mark.slow

SERVICES = "/api/v1/namespaces/default/services"
SLICES = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"


class Recorder:
    """What iptables would have been given, with the times; the first load fails."""

    def __init__(self) -> None:
        self.loads: list[tuple[float, Ruleset]] = []
        self.failures = 0

    def __call__(self, ruleset: Ruleset) -> None:
        if self.failures == 0:
            self.failures += 1
            raise CommandFailed(["iptables-restore"], 4, "Another app is currently holding the xtables lock")
        self.loads.append((time.monotonic(), ruleset))

    def text(self) -> str:
        return self.loads[-1][1].render() if self.loads else ""


def endpoint_slice(ips: list[str], name: str = "web-abc") -> dict[str, object]:
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": [{"addresses": [ip], "conditions": {"ready": True}, "nodeName": "n1"} for ip in ips],
    }


async def test_the_proxy_follows_services_and_slices_and_retries(api: RestClient) -> None:
    recorder = Recorder()
    proxy = ServiceProxy(api, node_name="n1", cluster_cidr=None, min_sync_period=0.5, apply=recorder)
    task = asyncio.create_task(proxy.run())
    try:
        await until(lambda: _true(bool(recorder.loads)), 20)  # after one failure, a retry
        assert recorder.failures == 1
        created = await api.create(
            SERVICES,
            {
                "metadata": {"name": "web"},
                "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
            },
        )
        cluster_ip = created["spec"]["clusterIP"]
        await api.create(SLICES, endpoint_slice(["10.42.0.3"]))
        await until(lambda: _true("DNAT --to-destination 10.42.0.3:8080" in recorder.text()), 20)
        assert f"-d {cluster_ip}/32" in recorder.text()

        # a burst of changes: at most one load per min_sync_period
        before = len(recorder.loads)
        started = time.monotonic()
        for i in range(4, 24):
            await api.update(f"{SLICES}/web-abc", endpoint_slice(["10.42.0.3", f"10.42.0.{i}"]))
        await until(lambda: _true("10.42.0.23:8080" in recorder.text()), 20)
        times = [t for t, _ in recorder.loads[before:]]
        assert len(times) <= (time.monotonic() - started) / 0.5 + 2, times
        assert all(b - a >= 0.45 for a, b in itertools.pairwise(times)), times

        await api.delete(f"{SERVICES}/web")
        await until(lambda: _true(cluster_ip not in recorder.text()), 20)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _true(value: bool) -> bool:
    return value
