"""The parts of the cluster that run inside the server process and talk to it as clients.

The embedded agent is a node like any other: it reaches the API server over HTTPS with a
``system:node:<name>`` client certificate, and serves its kubelet API with a serving
certificate, both issued here from the server's own CAs (a joining agent gets the same
through CertificateSigningRequests, which cannot name the server's own addresses). The
scheduler, the controllers and the cluster DNS reach the API server over its local socket
instead, each as its own user (``RestClient.local_client``). The server's node is labelled
``node-role.kubernetes.io/control-plane`` by the server itself, since NodeRestriction keeps
a kubelet from giving itself role labels.
"""

from __future__ import annotations

import asyncio
import copy
import ipaddress
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from k3py.apiserver.generic import ObjectStore, WriteOptions
from k3py.pki import Pki
from k3py.pki.certs import CLIENT_AUTH, SERVER_AUTH, LeafSpec, certs_to_pem, issue, key_to_pem, new_key

if TYPE_CHECKING:
    from k3py.agent.run import NodeCredentials

log = logging.getLogger(__name__)

Obj = dict[str, Any]
CONTROL_PLANE_LABELS = {
    "node-role.kubernetes.io/control-plane": "true",
    "node-role.kubernetes.io/master": "true",
}


def _ca(pem: bytes, key_pem: bytes) -> tuple[x509.Certificate, Any]:
    return x509.load_pem_x509_certificate(pem), load_pem_private_key(key_pem, password=None)


def client_pair(pki: Pki, common_name: str, organizations: tuple[str, ...]) -> tuple[bytes, bytes]:
    """A client certificate (with its CA) and key from the client CA."""
    ca_cert, ca_key = _ca(pki.client_ca.cert_pem, pki.client_ca.key_pem)
    key = new_key()
    spec = LeafSpec(common_name=common_name, organizations=organizations, usage=CLIENT_AUTH)
    cert = issue(spec, key, ca_cert, ca_key, datetime.now(UTC))
    return certs_to_pem(cert, ca_cert), key_to_pem(key)


def node_credentials(pki: Pki, server: str, name: str, ip: str) -> NodeCredentials:
    """The embedded node's client and kubelet serving credentials."""
    from k3py.agent.run import NodeCredentials  # the agent's modules load with the agent

    cert, key = client_pair(pki, f"system:node:{name}", ("system:nodes",))
    ca_cert, ca_key = _ca(pki.server_ca.cert_pem, pki.server_ca.key_pem)
    serving_key = new_key()
    addresses = {ipaddress.ip_address(ip), ipaddress.ip_address("127.0.0.1")}
    spec = LeafSpec(
        common_name=f"system:node:{name}",
        organizations=("system:nodes",),
        usage=SERVER_AUTH,
        dns_names=(name, "localhost"),
        ip_addresses=tuple(sorted(addresses, key=str)),
    )
    serving = issue(spec, serving_key, ca_cert, ca_key, datetime.now(UTC))
    return NodeCredentials(
        server=server,
        ca_pem=pki.server_ca.cert_pem,
        cert_pem=cert,
        key_pem=key,
        serving_cert_pem=certs_to_pem(serving, ca_cert),
        serving_key_pem=key_to_pem(serving_key),
        client_ca_pem=pki.client_ca.cert_pem,
    )


async def label_control_plane(objects: ObjectStore, node_name: str) -> None:
    """Give the server's own node its role labels once it has registered."""
    nodes = objects.registry.lookup("", "v1", "nodes")
    assert nodes is not None

    def add_labels(node: Obj) -> Obj:
        node = copy.deepcopy(node)
        node["metadata"].setdefault("labels", {}).update(CONTROL_PLANE_LABELS)
        return node

    while True:
        node = await objects.find(nodes, "", node_name)
        if node is not None:
            labels = node["metadata"].get("labels") or {}
            if all(labels.get(k) == v for k, v in CONTROL_PLANE_LABELS.items()):
                return
            await objects.guaranteed_update(
                nodes, "", node_name, add_labels, WriteOptions(field_manager="k3py")
            )
            log.info("Labelled node %s as the control plane", node_name)
            return
        await asyncio.sleep(1.0)
