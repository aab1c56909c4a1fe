"""The ``k3py server`` flow: one asyncio loop from start to clean shutdown.

Start-up is sequential and each step fails with a named error: prepare the data
directory → unpack the runtime payload (a release binary with the embedded agent on; once per
version) → open the datastore → create or load the PKI → create the system namespaces, the
``kubernetes`` Service and the local APIServices → serve the stored CustomResourceDefinitions →
reconcile the default RBAC policy → follow roles, bindings and pods for the authorizers → set up
admission (built-in plugins, admission policies, webhooks), the service-account token issuer and
the server token → listen for HTTPS (the Kubernetes API and the health endpoints) → write the
admin kubeconfig → start the scheduler and the controller manager (each while this server holds
its leader Lease, each as a client of the API with its own identity), the cluster DNS (unless
``--disable coredns``) and the embedded node agent → open the ``ready`` gate. The ``kubernetes``
Service's endpoints (this server's node address and HTTPS port) are kept by the server itself,
as kube-apiserver's endpoint reconciler keeps them.
The API server's own controllers (CRDs, APIService availability, the
extension-apiserver-authentication ConfigMap, ClusterRole aggregation, CSR approval and signing,
service accounts, token secrets, node IPAM, admission policy type checking) run as supervised
tasks; the aggregation layer (front-proxy certificates, proxying to the Services of remote
APIServices) follows APIServices from before the server listens. The flow then waits for a stop
request (SIGINT/SIGTERM, or a crashed critical task) and unwinds in reverse: stop the node agent
(its pods keep running), the controllers and the scheduler, end the open watches, stop
listening, cancel tasks with a bounded grace, close the store.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import platform
import re
import socket
import ssl
import uuid
import weakref
from collections.abc import Sequence
from contextlib import AsyncExitStack

from aiohttp import web
from cryptography import x509

from k3py import __version__, payload
from k3py.aio import Gate, StopRequest, Supervisor, stop_on_signals
from k3py.api import resources
from k3py.api.manifest import Manifest
from k3py.api.manifest import load as load_manifest
from k3py.api.profiles import ProfileError
from k3py.api.resources import Registry
from k3py.apiserver.admission_policy_mutating import MutatingPolicyAdmission
from k3py.apiserver.admission_policy_typecheck import PolicyTypeChecker
from k3py.apiserver.admission_policy_validating import ValidatingPolicyAdmission
from k3py.apiserver.aggregator import Aggregator
from k3py.apiserver.aggregator_available import AvailabilityController
from k3py.apiserver.aggregator_trust import TrustInfo, keep_authentication_configmap
from k3py.apiserver.apiservices import keep_available, register_local
from k3py.apiserver.app import Security, build_app
from k3py.apiserver.authn import User
from k3py.apiserver.authz import Chain, privileged_groups
from k3py.apiserver.binding import binding_routes
from k3py.apiserver.bootstrap import bootstrap
from k3py.apiserver.certificates import CsrAdmission, CsrApprover, CsrSigner
from k3py.apiserver.crd_conversion import WebhookConverter
from k3py.apiserver.crds import install_custom_resources, run_crd_controller
from k3py.apiserver.eviction import eviction_routes
from k3py.apiserver.generic import ObjectStore
from k3py.apiserver.kubelet_proxy.routes import KubeletClient
from k3py.apiserver.limitranger import LimitRanger
from k3py.apiserver.node_authz import NodeAuthorizer, NodeRestriction
from k3py.apiserver.nodeipam import NodeIpam
from k3py.apiserver.priority import PriorityAdmission, ensure_system_classes
from k3py.apiserver.quota import ResourceQuotaAdmission
from k3py.apiserver.rbac import EscalationCheck
from k3py.apiserver.rbac import follow as follow_rbac
from k3py.apiserver.rbac_bootstrap import aggregate_forever, ensure_policy
from k3py.apiserver.reviews import Reviews
from k3py.apiserver.runtimeclass import RuntimeClassAdmission
from k3py.apiserver.serviceaccounts import LegacyTokenSecrets, NamespaceDefaults, ServiceAccountAdmission
from k3py.apiserver.tokens import (
    CACERTS_PATH,
    CLIENT_CA_PATH,
    BootstrapTokens,
    ServerToken,
    ServiceAccountTokens,
    TokenRequests,
    cacerts_route,
    discovery_routes,
)
from k3py.apiserver.webhooks import WebhookAdmission
from k3py.client.informer import SharedInformers
from k3py.client.leaderelection import LeaderElector
from k3py.client.rest import LOCAL_IDENTITY_HEADER, LocalIdentity, RestClient
from k3py.config import ConfigError, ServerConfig
from k3py.controllers.manager import CONTROLLERS, identity_user
from k3py.dns import ClusterDns, DnsError, DnsSettings
from k3py.dns.cluster import IDENTITY as DNS_IDENTITY
from k3py.dns.cluster import IDENTITY_GROUPS as DNS_IDENTITY_GROUPS
from k3py.pki import (
    Pki,
    PkiError,
    ServiceAccountKey,
    TokenIssuer,
    client_identity,
    ensure_pki,
    ensure_service_account_key,
    jointoken,
    kubeconfig,
    ssl_server_context,
    write_kubeconfig,
)
from k3py.pki.frontproxy import FrontProxy, ensure_front_proxy
from k3py.pki.serviceaccount import JWKS_PATH
from k3py.scheduler import Scheduler
from k3py.server.collector import freeze_startup_objects, server_collection
from k3py.server.datastore import StoreHandle, open_datastore, prepare_data_dir
from k3py.server.embedded import label_control_plane, node_credentials
from k3py.server.endpoints import keep_kubernetes_endpoints
from k3py.server.errors import ServerError
from k3py.server.health import PING, HealthCheck, health_routes
from k3py.server.listener import Listener
from k3py.util.addresses import node_ip

log = logging.getLogger(__name__)

SHUTDOWN_GRACE = 10.0
"""Seconds that supervised tasks get to finish after cancellation."""


def run_server(config: ServerConfig) -> None:
    """Run the server until SIGINT/SIGTERM; raise on a fatal error."""
    with server_collection():
        asyncio.run(_main(config))


async def _main(config: ServerConfig) -> None:
    stop = StopRequest()
    ready = Gate("ready")
    freeze = asyncio.create_task(_freeze_when(ready), name="freeze-startup-objects")
    try:
        with stop_on_signals(stop):
            await serve(config, stop, ready)
    finally:
        freeze.cancel()


async def _freeze_when(ready: Gate) -> None:
    await ready.wait()
    freeze_startup_objects()


async def serve(config: ServerConfig, stop: StopRequest, ready: Gate | None = None) -> None:
    """Run the server until ``stop`` is set. ``ready`` opens once it answers requests."""
    ready = ready if ready is not None else Gate("ready")
    log.info(
        "Starting k3py v%s (python %s) on node %s", __version__, platform.python_version(), config.node_name
    )
    log.debug("Configuration: %r", config)
    registry = served_apis(config)
    async with AsyncExitStack() as cleanup:
        prepare_data_dir(config)
        if not config.disable_agent:
            await asyncio.to_thread(payload.ensure_unpacked, config.data_dir)
        store = await open_datastore(config)
        cleanup.push_async_callback(_close_store, store)

        tasks = Supervisor("server", grace=SHUTDOWN_GRACE, on_crash=lambda _: stop.set())
        cleanup.push_async_callback(tasks.shutdown)

        async def etcd() -> None:
            if store.current_revision < 1:
                raise RuntimeError(f"datastore reports revision {store.current_revision}")

        async def shutdown() -> None:
            if stop.is_set:
                raise RuntimeError("server is shutting down")

        checks = (
            PING,
            HealthCheck("etcd", etcd),
            HealthCheck("shutdown", shutdown, endpoints=frozenset({"readyz"})),
        )
        pki = await asyncio.to_thread(_pki, config)
        front_proxy = await asyncio.to_thread(_front_proxy, config)
        objects = ObjectStore(store, registry, config.service_cidr)
        await bootstrap(objects, config.https_listen_port)
        await ensure_system_classes(objects)
        await register_local(objects)
        advertised = node_ip(config.node_ip or config.advertise_address)
        tasks.spawn(
            "kubernetes-endpoints",
            keep_kubernetes_endpoints(objects, advertised, config.https_listen_port),
            critical=False,
        )
        await install_custom_resources(objects)
        tasks.spawn("crd-controller", run_crd_controller(objects))
        tasks.spawn("apiservice-availability", keep_available(objects))
        aggregator = await _start_aggregator(objects, pki, front_proxy, tasks, cleanup)
        await ensure_policy(objects)
        rbac = await follow_rbac(objects)
        cleanup.push_async_callback(rbac.close)
        tasks.spawn("clusterrole-aggregation", aggregate_forever(objects, rbac.cluster_roles))
        nodes = NodeAuthorizer(objects, rbac)
        await nodes.start()
        cleanup.push_async_callback(nodes.close)
        authorize = Chain([privileged_groups, nodes, rbac.authorize])
        issuer = TokenIssuer(await asyncio.to_thread(_service_account_key, config))
        ca_pem = pki.server_ca.cert_pem.decode()
        webhooks = WebhookAdmission(objects, authorize)
        await webhooks.start()
        cleanup.push_async_callback(webhooks.close)
        objects.conversion = WebhookConverter(webhooks.client)
        runtime_classes = RuntimeClassAdmission(objects)
        mutating_policies = MutatingPolicyAdmission(objects, authorize)
        validating_policies = ValidatingPolicyAdmission(objects, authorize)
        for policies in (mutating_policies, validating_policies):
            await policies.start()
            cleanup.push_async_callback(policies.close)
        tasks.spawn("validatingadmissionpolicy-status", PolicyTypeChecker(objects).run(), critical=False)
        objects.admission += [
            EscalationCheck(rbac, authorize, objects),
            NodeRestriction(objects, authorize),
            ServiceAccountAdmission(objects),
            PriorityAdmission(objects),
            CsrAdmission(authorize),
            LimitRanger(objects),
            runtime_classes.mutating,
            mutating_policies,
            webhooks.mutating,
            mutating_policies.reinvocation,  # IfNeeded policies, when a webhook changed the object
            runtime_classes.validating,
            validating_policies,
            webhooks.validating,
            ResourceQuotaAdmission(objects),  # last: it charges the finished object
        ]
        objects.connect_admission += [webhooks.connect, validating_policies.connect]
        tasks.spawn("csr-approver", CsrApprover(objects, authorize, _server_names(config, pki)).run())
        tasks.spawn("csr-signer", CsrSigner(objects, pki).run())
        tasks.spawn("serviceaccount-defaults", NamespaceDefaults(objects, ca_pem).run())
        tasks.spawn("serviceaccount-token-secrets", LegacyTokenSecrets(objects, issuer, ca_pem).run())
        tasks.spawn("node-ipam", NodeIpam(objects, config.cluster_cidr).run())
        server_token = await asyncio.to_thread(_server_token, config, pki)
        tokens = (ServiceAccountTokens(issuer, objects), BootstrapTokens(objects), ServerToken(server_token))
        security = Security(
            _identify,
            authorize,
            tokens,
            issuer.api_audiences,
            public_paths=frozenset({CACERTS_PATH, CLIENT_CA_PATH}),
        )
        reviews = Reviews(authorize, rbac, tokens, issuer.api_audiences)
        app = build_app(
            objects,
            [
                *health_routes(checks),
                *discovery_routes(issuer, f"{config.listen_url}{JWKS_PATH}"),
                cacerts_route(pki.server_ca.cert_pem),
                cacerts_route(pki.client_ca.cert_pem, CLIENT_CA_PATH),
                *binding_routes(objects),
                *eviction_routes(objects),
            ],
            security=security,
            reviews=reviews.handlers(),
            token_requests=TokenRequests(issuer, objects),
            kubelet=KubeletClient.of(pki),
            aggregator=aggregator,
        )
        listener = Listener(
            config.bind_address,
            config.https_listen_port,
            app,
            ssl_context=ssl_server_context(pki),
            local_socket=config.local_socket,
            access_log=config.debug,
        )
        await listener.start()
        cleanup.push_async_callback(listener.stop)
        cleanup.push_async_callback(objects.end_watches)  # open watches would hold the listener's stop
        await asyncio.to_thread(_write_admin_kubeconfig, config, pki)
        url = _local_url(config)
        if not (config.disable_scheduler and config.disable_controller_manager):
            shared = await _shared_informers(config, cleanup)
            if not config.disable_scheduler:
                await _start_scheduler(config, shared, tasks, cleanup)
            if not config.disable_controller_manager:
                await _start_controllers(config, shared, tasks, cleanup)
        if "coredns" not in config.disable:
            await _start_dns(config, advertised, tasks, cleanup)
        if not config.disable_agent:
            await _start_agent(config, pki, url, objects, tasks, cleanup)

        _log_missing_components(config)
        ready.open()
        log.info("k3py server is up at %s (revision %d)", config.listen_url, store.current_revision)
        await stop.wait()
        ready.close()
    if tasks.failure is not None:
        raise tasks.failure
    log.info("k3py server stopped")


def served_apis(config: ServerConfig) -> Registry:
    """What this server serves: the bundled API manifest's selection, then ``--runtime-config``.

    A release binary's manifest lacks what its build stripped: turning such a group-version off
    is already true and only logged (configuration carried across builds keeps working);
    turning it on is an error that says how to build a binary that has it.
    """
    runtime_config = dict(config.runtime_config)
    manifest = load_manifest()
    if manifest.stripped is not None:
        for key, enabled in list(runtime_config.items()):
            if not enabled and _absent(manifest, key):
                log.warning("--runtime-config %s=false: this build does not serve it anyway", key)
                del runtime_config[key]
    try:
        selection = resources.selection(runtime_config)
    except ProfileError as err:
        problem = re.sub(r"^--runtime-config:? ", "", str(err))
        if manifest.stripped is not None:
            problem += (
                "; this binary's API manifest was stripped when it was built: rebuild with "
                "`invoke build --keep-alpha`, `--keep-deprecated` or `--only` to carry more"
            )
        raise ConfigError(problem, flag="runtime-config") from None
    served = resources.from_manifest(selection)
    if missing := resources.missing_required(served):
        raise ConfigError(
            f"k3py cannot run without {', '.join(missing)}: it cannot be turned off", flag="runtime-config"
        )
    log.info(
        "Serving %d resources in %d group-versions",
        len(served),
        len({r.group_version for r in served}),
    )
    for r in selection.resources():
        if reason := resources.unserved_reason(r):
            log.debug("Not serving %s/%s: %s", r.group_version, r.plural, reason)
    return Registry(served)


def _absent(manifest: Manifest, key: str) -> bool:
    """Whether a ``--runtime-config`` key names a group-version (or its resource) not in ``manifest``."""
    if key.startswith("api/"):
        return False
    tokens = key.split("/")
    group, version = (
        ("", tokens[0]) if tokens[0] == "v1" else (tokens[0], tokens[1] if len(tokens) > 1 else "")
    )
    if version not in manifest.versions(group):
        return True
    plural = tokens[2] if group and len(tokens) > 2 else (tokens[1] if not group and len(tokens) > 1 else "")
    return bool(plural) and plural not in {r.plural for r in manifest.groupversion(group, version).resources}


async def _close_store(store: StoreHandle) -> None:
    await store.close()
    log.info("Datastore closed")


async def _start_aggregator(
    objects: ObjectStore, pki: Pki, front_proxy: FrontProxy, tasks: Supervisor, cleanup: AsyncExitStack
) -> Aggregator:
    """The aggregation layer: its caches filled before the server listens, the remote
    availability checks, and the ConfigMap that tells aggregated API servers whom to trust."""
    aggregator = Aggregator(objects, front_proxy.client.cert_pem, front_proxy.client.key_pem)
    await aggregator.start()
    cleanup.push_async_callback(aggregator.close)
    checks = tasks.spawn(
        "apiservice-remote-availability", AvailabilityController(aggregator).run(), critical=False
    )
    cleanup.push_async_callback(_cancel, checks)  # before the aggregator closes
    trust = TrustInfo(
        client_ca=pki.client_ca.cert_pem, request_header_ca=front_proxy.request_header_ca.cert_pem
    )
    tasks.spawn("cluster-authentication-trust", keep_authentication_configmap(objects, trust), critical=False)
    return aggregator


def _local(config: ServerConfig, user: str, groups: Sequence[str] = ()) -> RestClient:
    """A client of this process's API server, over its local socket, acting as ``user``."""
    return RestClient.local_client(LocalIdentity(config.local_socket, user, tuple(groups)))


async def _shared_informers(config: ServerConfig, cleanup: AsyncExitStack) -> SharedInformers:
    """One informer per collection for the scheduler and the controllers: one list, one watch
    and one cache of each in this process, whichever of them leads. They list and watch as
    kube-controller-manager, which may read everything (each component writes as itself)."""
    api = _local(config, "system:kube-controller-manager")
    await _open_clients(cleanup, [api])
    return SharedInformers(api)


async def _start_scheduler(
    config: ServerConfig, shared: SharedInformers, tasks: Supervisor, cleanup: AsyncExitStack
) -> None:
    """The scheduler, while this server holds the ``kube-system/kube-scheduler`` Lease."""
    api = _local(config, "system:kube-scheduler")
    await cleanup.enter_async_context(api)
    elector = LeaderElector(api, "kube-system", "kube-scheduler", _candidate())
    scheduler = tasks.spawn("scheduler", elector.run(lambda: Scheduler(api, informers=shared).run()))
    cleanup.push_async_callback(_cancel, scheduler)  # its watches end before the listener stops


async def _start_controllers(
    config: ServerConfig, shared: SharedInformers, tasks: Supervisor, cleanup: AsyncExitStack
) -> None:
    """kube-controller-manager's controllers, each a client with its service account's identity,
    while this server holds the ``kube-system/kube-controller-manager`` Lease."""
    clients = [(kind, _local(config, *identity_user(kind.identity))) for kind in CONTROLLERS]
    lease_api = _local(config, "system:kube-controller-manager")
    await _open_clients(cleanup, [lease_api, *(api for _, api in clients)])

    async def lead() -> None:
        # The controllers of a term take the process's shared informers; each removes its
        # handlers when the term ends.
        async with asyncio.TaskGroup() as group:
            for kind, api in clients:
                group.create_task(kind(api, shared).run(), name=kind.name)

    elector = LeaderElector(lease_api, "kube-system", "kube-controller-manager", _candidate())
    task = tasks.spawn("controller-manager", elector.run(lead))
    cleanup.push_async_callback(_cancel, task)  # before the clients close


async def _start_dns(config: ServerConfig, ip: str, tasks: Supervisor, cleanup: AsyncExitStack) -> None:
    """The cluster DNS on this server's node address: it reads as CoreDNS's service account and
    writes its ``kube-dns`` Service as the supervisor (K3s applies its manifests so)."""
    reader = _local(config, DNS_IDENTITY, DNS_IDENTITY_GROUPS)
    publisher = _local(config, "system:k3py-supervisor", ("system:masters",))
    await _open_clients(cleanup, [reader, publisher])
    settings = DnsSettings(
        node_ip=ip,
        service_ip=str(config.cluster_dns),
        node_name=None if config.disable_agent else config.node_name,
    )

    dns = ClusterDns(reader, publisher, settings)
    try:
        await dns.start()
    except DnsError as exc:
        log.error("%s", exc)  # the cluster works on without its DNS: say so, do not stop
        return
    task = tasks.spawn("cluster-dns", dns.run(), critical=False)
    cleanup.push_async_callback(_cancel, task)  # before its clients close


async def _open_clients(cleanup: AsyncExitStack, clients: list[RestClient]) -> None:
    """Open API clients that are closed together at shutdown: each close waits a moment for its
    TLS connections to finish, and those waits overlap instead of adding up."""
    opened: list[RestClient] = []

    async def close() -> None:
        await asyncio.gather(*(api.__aexit__(None, None, None) for api in opened))

    cleanup.push_async_callback(close)
    for api in clients:
        await api.__aenter__()
        opened.append(api)


def _candidate() -> str:
    """This server as a leader-election candidate: host name and a per-process id, as upstream."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


async def _start_agent(
    config: ServerConfig, pki: Pki, url: str, objects: ObjectStore, tasks: Supervisor, cleanup: AsyncExitStack
) -> None:
    """Run this host's node (the embedded agent) beside the control plane, as K3s does.

    It stops before the API server does (its cleanup is registered after the listener's),
    leaving its pods' containers running as a separate ``k3py agent`` would. The agent's
    modules load here, so a server without it does not hold them in memory.
    """
    from k3py.agent.node import default_labels
    from k3py.agent.run import NodePlan, run_node

    ip = node_ip(config.node_ip or config.advertise_address)
    credentials = await asyncio.to_thread(node_credentials, pki, url, config.node_name, ip)
    plan = NodePlan(
        name=config.node_name,
        ip=ip,
        data_dir=config.data_dir,
        labels=default_labels(config.node_name) | dict(config.node_label),
        cluster_cidr=config.cluster_cidr,
        cluster_dns=str(config.cluster_dns),
        runtime_endpoint=config.container_runtime_endpoint,
        disable_kube_proxy=config.disable_kube_proxy,
        private_registry=config.private_registry,
        embedded_registry=config.embedded_registry,
    )
    agent_stop = StopRequest()
    agent = tasks.spawn("agent", run_node(plan, credentials, agent_stop))
    tasks.spawn("control-plane-labels", label_control_plane(objects, config.node_name), critical=False)

    async def stop_agent() -> None:
        agent_stop.set()
        await asyncio.wait([agent], timeout=SHUTDOWN_GRACE * 3)

    cleanup.push_async_callback(stop_agent)


async def _cancel(task: asyncio.Task[object]) -> None:
    task.cancel()
    await asyncio.wait([task], timeout=SHUTDOWN_GRACE)


def _local_url(config: ServerConfig) -> str:
    """Where this process reaches its own API server (as the admin kubeconfig does)."""
    host = "127.0.0.1" if config.bind_address.is_unspecified else str(config.bind_address)
    if ":" in host:
        host = f"[{host}]"
    return f"https://{host}:{config.https_listen_port}"


def _log_missing_components(config: ServerConfig) -> None:
    """Say plainly what this version does not do yet, instead of pretending."""
    if config.disable_agent:
        log.info("Embedded agent disabled (--disable-agent)")
    if config.disable:
        log.debug("Disabled components: %s", ", ".join(sorted(config.disable)))


_CONNECTION_USERS: weakref.WeakKeyDictionary[ssl.SSLObject, User | None] = weakref.WeakKeyDictionary()
"""The user each open TLS connection's client certificate names, read at its first request."""


def _identify(request: web.Request) -> User | None:
    """The user a request's client certificate names or, on the local socket only, the one
    its ``K3py-Local-Identity`` header names."""
    transport = request.transport
    if transport is None:
        return None
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        sock = transport.get_extra_info("socket")
        return _local_user(request) if sock is not None and sock.family == socket.AF_UNIX else None
    try:
        return _CONNECTION_USERS[ssl_object]
    except KeyError:
        identity = client_identity(ssl_object.getpeercert())
        user = _CONNECTION_USERS[ssl_object] = User(identity[0], tuple(identity[1])) if identity else None
        return user


def _local_user(request: web.Request) -> User | None:
    try:
        named = json.loads(request.headers.get(LOCAL_IDENTITY_HEADER, ""))
        user, groups = named["user"], named["groups"]
    except (ValueError, TypeError, KeyError):
        return None
    if not isinstance(user, str) or not user or not isinstance(groups, list):
        return None
    if not all(isinstance(g, str) for g in groups):
        return None
    return User(user, tuple(groups))


def first_service_ip(config: ServerConfig) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(config.service_cidr.network_address + 1)


def _pki(config: ServerConfig) -> Pki:
    """The serving certificate names the host, the node and service IPs and every --tls-san."""
    names = [socket.gethostname(), config.node_name]
    ips: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [first_service_ip(config)]
    for address in (config.node_ip, config.advertise_address):
        if address is not None:
            ips.append(address)
    if not config.bind_address.is_unspecified:
        ips.append(config.bind_address)
    for san in config.tls_san:
        try:
            ips.append(ipaddress.ip_address(san))
        except ValueError:
            names.append(san)
    try:
        return ensure_pki(config.server_dir / "tls", dns_names=names, ip_addresses=ips)
    except PkiError as exc:
        raise ServerError(str(exc)) from None


def _front_proxy(config: ServerConfig) -> FrontProxy:
    try:
        return ensure_front_proxy(config.server_dir / "tls")
    except PkiError as exc:
        raise ServerError(str(exc)) from None


def _server_names(config: ServerConfig, pki: Pki) -> set[str]:
    """Every DNS name and address the API server's certificate carries, and the service IP."""
    cert = x509.load_pem_x509_certificate(pki.serving.cert_pem)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = set(sans.get_values_for_type(x509.DNSName))
    names |= {str(a) for a in sans.get_values_for_type(x509.IPAddress)}
    return names | {str(first_service_ip(config))}


def _server_token(config: ServerConfig, pki: Pki) -> jointoken.JoinToken:
    try:
        return jointoken.ensure_server_token(config.server_dir, pki.server_ca.cert_pem, config.token)
    except PkiError as exc:
        raise ServerError(str(exc)) from None


def _service_account_key(config: ServerConfig) -> ServiceAccountKey:
    try:
        return ensure_service_account_key(config.server_dir / "tls")
    except PkiError as exc:
        raise ServerError(str(exc)) from None


def _write_admin_kubeconfig(config: ServerConfig, pki: Pki) -> None:
    text = kubeconfig(
        _local_url(config),
        pki.server_ca.cert_pem,
        pki.admin.cert_pem,
        pki.admin.key_pem,
    )
    try:
        write_kubeconfig(config.write_kubeconfig, text, config.write_kubeconfig_mode)
    except (OSError, PkiError) as exc:
        raise ServerError(f"cannot write kubeconfig {config.write_kubeconfig}: {exc}") from None
    log.info("Wrote kubeconfig %s", config.write_kubeconfig)
