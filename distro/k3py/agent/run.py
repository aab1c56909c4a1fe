"""The node agent's flow, for ``k3py agent`` and for the server's embedded agent.

``k3py agent`` first joins its server (:mod:`k3py.agent.join`); the server's embedded agent
gets the same credentials from the server's own CAs. Both then run :func:`run_node`:

1. containerd: the payload's (or the host's) binaries, a config under ``<data-dir>/agent``,
   started and supervised as a child that outlives the agent (pods keep running across agent
   restarts), unless ``--container-runtime-endpoint`` names a runtime to use instead;
2. the air-gap images in ``<data-dir>/agent/images`` (and the pause image) imported; with
   ``--embedded-registry``, served by a registry mirror on loopback that containerd tries
   first (:mod:`k3py.agent.registry_mirror`), beside the ``registries.yaml`` mirrors
   (:mod:`k3py.agent.registry_hosts`);
3. the Node registered and its status and Lease kept current;
4. the pod network: the CNI config for the node's ``spec.podCIDR``, masquerading, and
   routes to the other nodes' pod networks;
5. the kubelet (pod workers) and its HTTPS API on port 10250;
6. the service proxy (:mod:`k3py.agent.serviceproxy`, kube-proxy's iptables mode), unless
   the plan disables it: it follows Services and EndpointSlices on its own, as K3s's
   embedded kube-proxy does.

Stopping (SIGINT/SIGTERM) stops the agent and containerd but leaves the pods' containers
running; ``k3py killall`` stops those too.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

from k3py import payload
from k3py.agent import airgap, network, registry_content, registry_hosts
from k3py.agent.containerd import PAUSE_IMAGE, Containerd, ContainerdPaths, RuntimeFiles
from k3py.agent.cri import CriError, Runtime
from k3py.agent.cri_config import NodeSettings
from k3py.agent.errors import AgentError, JoinError, NetworkError
from k3py.agent.join import FILES, join, node_user
from k3py.agent.kubelet import Kubelet, ensure_dirs
from k3py.agent.kubelet_api import KubeletApi, api_authorizer
from k3py.agent.node import KUBELET_PORT, NodeAgent, NodeIdentity, default_labels
from k3py.agent.registry_mirror import RegistryMirror
from k3py.agent.serviceproxy import ServiceProxy
from k3py.aio import StopRequest, Supervisor, stop_on_signals
from k3py.apiserver.tokens import CLIENT_CA_PATH
from k3py.client.informer import Informer
from k3py.client.rest import ApiStatusError, Credentials, RestClient
from k3py.config import AgentConfig
from k3py.util.addresses import node_ip

__all__ = ["AgentError", "JoinError", "NodeCredentials", "NodePlan", "run_agent", "run_node"]

log = logging.getLogger(__name__)

DEFAULT_CLUSTER_CIDR = ipaddress.ip_network("10.42.0.0/16")
DEFAULT_CLUSTER_DNS = "10.43.0.10"
POD_CIDR_WAIT = 60.0
SHUTDOWN_GRACE = 10.0


@dataclass(frozen=True)
class NodeCredentials:
    """Who the node is to the API server, and how its kubelet API proves itself and checks callers."""

    server: str
    ca_pem: bytes
    cert_pem: bytes = field(repr=False)
    key_pem: bytes = field(repr=False)
    serving_cert_pem: bytes = field(repr=False)
    serving_key_pem: bytes = field(repr=False)
    client_ca_pem: bytes = field(repr=False)


@dataclass(frozen=True)
class NodePlan:
    name: str
    ip: str
    data_dir: Path
    labels: dict[str, str]
    cluster_cidr: ipaddress.IPv4Network | ipaddress.IPv6Network = DEFAULT_CLUSTER_CIDR
    cluster_dns: str = DEFAULT_CLUSTER_DNS
    runtime_endpoint: Path | None = None
    kubelet_port: int = KUBELET_PORT
    disable_kube_proxy: bool = False
    private_registry: Path | None = None
    embedded_registry: bool = False

    @property
    def agent_dir(self) -> Path:
        return self.data_dir / "agent"


def run_agent(config: AgentConfig) -> None:
    """``k3py agent``: join ``config.server``, then run this node until SIGINT/SIGTERM."""
    asyncio.run(_agent(config))


async def _agent(config: AgentConfig) -> None:
    stop = StopRequest()
    with stop_on_signals(stop):
        identity = await join(config)
        files = config.agent_dir
        credentials = NodeCredentials(
            server=config.server,
            ca_pem=identity.ca_pem,
            cert_pem=identity.cert_pem,
            key_pem=identity.key_pem,
            serving_cert_pem=(files / FILES["serving_cert"]).read_bytes(),
            serving_key_pem=(files / FILES["serving_key"]).read_bytes(),
            client_ca_pem=await _client_ca(config.server, identity.ca_pem),
        )
        labels = default_labels(config.node_name) | dict(config.node_label)
        plan = NodePlan(
            name=config.node_name,
            ip=node_ip(config.node_ip),
            data_dir=config.data_dir,
            labels=labels,
            runtime_endpoint=config.container_runtime_endpoint,
            disable_kube_proxy=config.disable_kube_proxy,
            private_registry=config.private_registry,
            embedded_registry=config.embedded_registry,
        )
        log.info("Running node %s as %s", plan.name, node_user(plan.name))
        try:
            await run_node(plan, credentials, stop)
        except AgentError as exc:
            raise AgentError(f"joined {config.server} as {node_user(plan.name)}, but {exc}") from None


async def _client_ca(server: str, ca_pem: bytes) -> bytes:
    async with RestClient(server, Credentials(ca_pem=ca_pem)) as api:
        try:
            return await api.raw("GET", CLIENT_CA_PATH)
        except ApiStatusError as exc:
            raise JoinError(f"cannot fetch the client CA from {server}: {exc}") from None


async def run_node(plan: NodePlan, credentials: NodeCredentials, stop: StopRequest) -> None:
    """Run this node until ``stop`` is set (see the module docstring)."""
    agent_dir = plan.agent_dir
    await asyncio.to_thread(ensure_dirs, agent_dir)
    runtime_tasks = Supervisor("containerd", grace=SHUTDOWN_GRACE, on_crash=lambda _: stop.set())
    tasks = Supervisor("agent", grace=SHUTDOWN_GRACE, on_crash=lambda _: stop.set())
    async with AsyncExitStack() as cleanup:
        cleanup.push_async_callback(runtime_tasks.shutdown)
        socket_path = plan.runtime_endpoint
        containerd: Containerd | None = None
        if socket_path is None:
            unpacked = await asyncio.to_thread(payload.ensure_unpacked, plan.data_dir)
            files = await asyncio.to_thread(RuntimeFiles.find, unpacked)
            paths = ContainerdPaths.for_data_dir(plan.data_dir)
            containerd = Containerd(
                paths, files, sandbox_image=PAUSE_IMAGE, log_path=agent_dir / "containerd" / "containerd.log"
            )
            await asyncio.to_thread(containerd.write_config)
            await containerd.start()
            cleanup.push_async_callback(containerd.stop)
            runtime_tasks.spawn("supervise", containerd.supervise())
            socket_path = paths.socket
            if files.pause_archive is not None:
                await airgap.import_archive(socket_path, files.pause_archive)
        runtime = Runtime(socket_path, timeout=30.0)
        cleanup.push_async_callback(runtime.close)
        try:
            version = await runtime.version()
        except CriError as exc:
            raise AgentError(
                f"the container runtime at {socket_path} is not answering: {exc.message}"
            ) from None
        log.info(
            "Container runtime %s %s at %s", version["runtime_name"], version["runtime_version"], socket_path
        )
        images = agent_dir / "images"
        images.mkdir(parents=True, exist_ok=True)
        results = await airgap.import_directory(socket_path, images)
        for archive, outcome in results.items():
            if isinstance(outcome, Exception):
                log.warning("Cannot import %s: %s", archive, outcome)
            else:
                log.info("Imported %s: %s", archive.name, ", ".join(outcome))
        if containerd is not None:
            await _registries(plan, containerd.paths.certs_dir, cleanup)
        elif plan.embedded_registry:
            log.warning(
                "--embedded-registry: not with --container-runtime-endpoint (its runtime is not k3py's)"
            )

        api = RestClient(
            credentials.server, Credentials(credentials.ca_pem, credentials.cert_pem, credentials.key_pem)
        )
        await cleanup.enter_async_context(api)
        cleanup.push_async_callback(tasks.shutdown)  # before the client closes: watches end first
        identity = NodeIdentity(plan.name, plan.ip, plan.labels, plan.data_dir, plan.kubelet_port)
        node = NodeAgent(api, runtime, identity)
        await node.register()
        tasks.spawn("pod-network", _pod_network(node, plan))
        tasks.spawn("node-status", node.keep_status())
        tasks.spawn("node-lease", node.keep_lease())
        tasks.spawn("node-routes", _keep_routes(api, plan.name))
        if not plan.disable_kube_proxy:
            proxy = ServiceProxy(api, node_name=plan.name, cluster_cidr=plan.cluster_cidr)
            tasks.spawn("service-proxy", proxy.run())
        settings = NodeSettings(node_name=plan.name, cluster_dns=plan.cluster_dns)
        kubelet = Kubelet(
            api=api,
            runtime=runtime,
            node=settings,
            node_ip=plan.ip,
            agent_dir=agent_dir,
            allocatable=node.capacity,
        )
        tasks.spawn("kubelet", kubelet.run())
        kubelet_api = KubeletApi(
            kubelet,
            bind=plan.ip,
            port=plan.kubelet_port,
            serving_cert_pem=credentials.serving_cert_pem,
            serving_key_pem=credentials.serving_key_pem,
            client_ca_pem=credentials.client_ca_pem,
            authorizer=api_authorizer(api),
        )
        await kubelet_api.start()
        cleanup.push_async_callback(kubelet_api.stop)
        await node.write_status(force=True)
        log.info("Node %s is up (kubelet API on %s:%d)", plan.name, plan.ip, plan.kubelet_port)
        await stop.wait()
    for supervisor in (tasks, runtime_tasks):
        if supervisor.failure is not None:
            raise supervisor.failure


async def _registries(plan: NodePlan, certs_dir: Path, cleanup: AsyncExitStack) -> None:
    """containerd's ``hosts.toml`` files, and the embedded registry mirror they name when it is on."""
    try:
        registries = (
            await asyncio.to_thread(registry_hosts.read_registries, plan.private_registry)
            if plan.private_registry is not None
            else registry_hosts.Registries()
        )
    except registry_hosts.RegistryConfigError as exc:
        raise AgentError(f"--private-registry: {exc}") from None
    mirror: RegistryMirror | None = None
    if plan.embedded_registry:
        catalog, _ = await asyncio.to_thread(
            registry_content.index_directory, plan.agent_dir / "images", plan.agent_dir / "registry"
        )
        mirror = RegistryMirror(catalog)
        await mirror.start()
        cleanup.push_async_callback(mirror.stop)
    written = await asyncio.to_thread(
        registry_hosts.write_hosts,
        certs_dir,
        registries,
        mirror_url=mirror.url if mirror is not None else None,
        mirrored=mirror.catalog.registries() if mirror is not None else (),
    )
    if written:
        log.info("Registry hosts for containerd: %s", ", ".join(p.parent.name for p in written))


async def _pod_network(node: NodeAgent, plan: NodePlan) -> None:
    """The CNI config and the node's rules, once the server has given the node a pod CIDR.

    Until then containerd reports its network not ready, and so does the node. A failure to set
    the rules up (no iptables, say) is logged and retried: pods on the node still reach each
    other, but not the outside or their hostPorts.
    """
    cidr = None
    while cidr is None:
        try:
            cidr = await node.pod_cidr(POD_CIDR_WAIT)
        except ApiStatusError as exc:
            log.warning("cannot read node %s: %s", plan.name, exc)
        if cidr is None:
            log.warning("No pod CIDR allocated to node %s yet: only host-network pods can run", plan.name)
    pod_cidr = ipaddress.ip_network(cidr)
    conf_dir = ContainerdPaths.for_data_dir(plan.data_dir).cni_conf_dir
    await asyncio.to_thread(
        network.write_cni_config,
        conf_dir,
        pod_cidr=pod_cidr,
        cluster_cidr=plan.cluster_cidr,
        ipam_dir=plan.agent_dir / "cni" / "networks",
    )
    delay = 5.0
    while True:
        try:
            await asyncio.to_thread(
                network.setup_node_network,
                pod_cidr=pod_cidr,
                cluster_cidr=plan.cluster_cidr,
                node_ip=ipaddress.ip_address(plan.ip),
            )
        except (NetworkError, OSError) as exc:
            log.error(
                "Pod network %s: cannot set up the node's rules: %s (retrying in %.0fs)", pod_cidr, exc, delay
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 300.0)
            continue
        log.info("Pod network %s on node %s", pod_cidr, plan.name)
        return


async def _keep_routes(api: RestClient, self_name: str) -> None:
    """Routes to the other nodes' pod networks, following the Node objects."""
    nodes = Informer(api, "/api/v1/nodes")
    routes = network.Routes()
    changed = asyncio.Event()
    nodes.add_handler(lambda old, new: changed.set())
    follow = asyncio.create_task(nodes.run())
    try:
        while True:
            await changed.wait()
            changed.clear()
            try:
                await asyncio.to_thread(routes.sync, nodes.items(), self_name)
            except (OSError, CriError, RuntimeError) as exc:
                log.warning("cannot update the routes to other nodes: %s", exc)
            await asyncio.sleep(1.0)
    finally:
        follow.cancel()
