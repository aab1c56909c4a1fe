"""The node's service proxy: kube-proxy's iptables mode, run by the agent as K3s embeds kube-proxy.

:class:`ServiceProxy` follows Services and EndpointSlices with two informers. After a change
(at most once per ``min_sync_period``, kube-proxy's 1 s) and every ``sync_period`` it rebuilds
the whole rule set with :func:`~k3py.agent.serviceproxy_rules.build_rules` and hands it to
:func:`apply_rules`, which loads it with one ``iptables-restore --noflush`` (each table at
once: the service chains are flushed and rewritten, the ones no longer used deleted) and makes
sure the built-in chains jump to k3py's first. When iptables refuses, the error is logged and
the sync retried with a growing pause; the last rules loaded stay in force meanwhile.

When a UDP endpoint stops backing a service address, its conntrack entries are deleted
(``conntrack -D``, when the ``conntrack`` tool is installed): UDP has no connection end, and
the kernel would keep sending a client's datagrams to the old endpoint. A UDP address that
gains endpoints loses its entries too (they may hold the earlier rejection).

:func:`k3py.agent.network.teardown_node_network` removes the service chains and their jumps.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import shutil
import time
from collections.abc import Callable, Iterable

from k3py.agent import network
from k3py.agent.serviceproxy_rules import (
    HOOK_COMMENT,
    HOOKS,
    ProxyOptions,
    Ruleset,
    UdpFlow,
    build_rules,
    is_service_chain,
)
from k3py.client.informer import Informer
from k3py.client.rest import RestClient
from k3py.util.proc import ProcessError, run

__all__ = ["ServiceProxy", "apply_rules", "clear_udp_flows"]

log = logging.getLogger(__name__)

SERVICES = "/api/v1/services"
ENDPOINT_SLICES = "/apis/discovery.k8s.io/v1/endpointslices"
MIN_SYNC_PERIOD = 1.0
SYNC_PERIOD = 30.0
RETRY_MAX = 60.0


def apply_rules(ruleset: Ruleset) -> None:
    """Load ``ruleset`` into the current network namespace and hook it into the built-in
    chains. Raises :class:`~k3py.util.proc.ProcessError` when iptables fails."""
    existing = {table: network.list_chains(table) for table in ruleset.tables}
    network.restore(ruleset.render(existing))
    for table, parent, chain, match in HOOKS:
        rule = [*match, "-m", "comment", "--comment", HOOK_COMMENT, "-j", chain]
        if network.ensure_first_jump(table, parent, rule):
            log.info("service proxy: iptables -t %s %s jumps to %s", table, parent, chain)


def clear_udp_flows(before: Ruleset | None, after: Ruleset, conntrack: str | None = None) -> list[list[str]]:
    """Delete the conntrack entries of UDP flows ``after`` no longer has, and of UDP frontends
    that have gained endpoints; return the ``conntrack`` commands run (none when the tool is
    missing or there is nothing before)."""
    conntrack = conntrack or shutil.which("conntrack")
    if before is None or conntrack is None:
        return []
    commands = [
        _flow_command(conntrack, flow) for flow in sorted(before.udp_flows - after.udp_flows, key=_order)
    ]
    for ip, port in sorted(after.udp_frontends - before.udp_frontends, key=lambda f: (f[0] or "", f[1])):
        commands.append(
            [conntrack, "-D", "-p", "udp", *(["--orig-dst", ip] if ip else []), "--orig-port-dst", str(port)]
        )
    for command in commands:
        # exit 1 with "0 flow entries have been deleted" is the usual case, not an error
        result = run(command, capture=True, check=False, quiet=True)
        if result.returncode not in (0, 1):
            log.warning("service proxy: %s: %s", " ".join(command), result.stderr.strip())
    return commands


def _order(flow: UdpFlow) -> tuple[str, int, str]:
    return flow.frontend or "", flow.port, flow.endpoint


def _flow_command(conntrack: str, flow: UdpFlow) -> list[str]:
    frontend = ["--orig-dst", flow.frontend] if flow.frontend else []
    return [
        conntrack,
        "-D",
        "-p",
        "udp",
        *frontend,
        "--orig-port-dst",
        str(flow.port),
        "--dst-nat",
        flow.endpoint,
    ]


class ServiceProxy:
    """``await ServiceProxy(api, node_name="n1", cluster_cidr=...).run()`` keeps this network
    namespace's service rules current until cancelled."""

    def __init__(
        self,
        api: RestClient,
        *,
        node_name: str,
        cluster_cidr: ipaddress.IPv4Network | ipaddress.IPv6Network | None,
        options: ProxyOptions | None = None,
        min_sync_period: float = MIN_SYNC_PERIOD,
        sync_period: float = SYNC_PERIOD,
        apply: Callable[[Ruleset], None] = apply_rules,
    ) -> None:
        self.node_name = node_name
        self.cluster_cidr = cluster_cidr
        self.options = options or ProxyOptions()
        self.min_sync_period = min_sync_period
        self.sync_period = sync_period
        self.apply = apply
        self.services = Informer(api, SERVICES)
        self.slices = Informer(api, ENDPOINT_SLICES)
        self.applied: Ruleset | None = None
        self.syncs = 0
        self._changed = asyncio.Event()
        for informer in (self.services, self.slices):
            informer.add_handler(lambda old, new: self._changed.set())

    def rules(self) -> Ruleset:
        """The rules for the objects the informers hold now."""
        return build_rules(
            self.services.items(),
            self.slices.items(),
            node_name=self.node_name,
            cluster_cidr=self.cluster_cidr,
            options=self.options,
        )

    async def run(self) -> None:
        follows = [
            asyncio.create_task(i.run(), name=f"informer {i.path}") for i in (self.services, self.slices)
        ]
        try:
            await self.services.synced()
            await self.slices.synced()
            log.info("service proxy: following Services and EndpointSlices for node %s", self.node_name)
            await self._loop()
        finally:
            for task in follows:
                task.cancel()
            await asyncio.gather(*follows, return_exceptions=True)

    async def _loop(self) -> None:
        delay = self.min_sync_period
        last = -float("inf")
        while True:
            wait = last + self.min_sync_period - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._changed.clear()
            last = time.monotonic()
            if await self.sync():
                delay = self.min_sync_period
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), self.sync_period)
            else:
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)

    async def sync(self) -> bool:
        """Rebuild and load the rules once; False (logged) when iptables failed."""
        try:
            ruleset = self.rules()
        except Exception:
            # a bug on one object's path must not stop the node's proxy: keep the last rules
            log.exception("service proxy: cannot build the service rules (will retry)")
            return False
        started = time.monotonic()
        try:
            await asyncio.to_thread(self.apply, ruleset)
        except (ProcessError, OSError) as exc:
            log.error("service proxy: cannot load the service rules (will retry): %s", exc)
            return False
        before, self.applied = self.applied, ruleset
        self.syncs += 1
        try:
            await asyncio.to_thread(clear_udp_flows, before, ruleset)
        except (ProcessError, OSError) as exc:
            log.warning("service proxy: cannot clear stale UDP conntrack entries: %s", exc)
        log.debug(
            "service proxy: %d rules loaded in %.3fs",
            sum(len(t.rules) for t in ruleset.tables.values()),
            time.monotonic() - started,
        )
        return True


def chains_now(tables: Iterable[str] = ("nat", "filter")) -> dict[str, list[str]]:
    """The service chains each table has now (for checks and reports)."""
    return {table: [c for c in network.list_chains(table) if is_service_chain(c)] for table in tables}
