"""Joining a server: check it, then obtain this node's identity through CertificateSigningRequests.

1. Fetch the CA bundle from ``<server>/cacerts`` (the only request made before the server is
   trusted) and compare its SHA-256 with the hash in the ``K10...`` token: a mismatch ends
   the join before anything is sent, let alone created. A bare token cannot be checked; that
   is logged and the presented CA is trusted, as K3s does.
2. With the token as the bearer credential, ask for a client certificate for
   ``system:node:<name>`` in ``system:nodes`` (signer
   ``kubernetes.io/kube-apiserver-client-kubelet``); the server approves it for a valid token
   and signs it. A token the server refuses ends the join with its 401, having created nothing.
3. As the node, ask for a serving certificate for the kubelet API (signer
   ``kubernetes.io/kubelet-serving``, the node's name and IP as SANs).
4. Write the keys, certificates, CA and a kubeconfig into ``<data-dir>/agent/`` (keys 0600).

A node that already holds a client certificate from this CA, for its name, valid for more
than :data:`RENEW_BEFORE`, keeps it and joins without the token being used again.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from k3py.agent.errors import JoinError as JoinError  # part of this module's API
from k3py.client import ApiStatusError, Credentials, RestClient
from k3py.config import AgentConfig
from k3py.pki import PkiError, jointoken, kubeconfig
from k3py.pki.certs import key_to_pem, new_key, parse_key
from k3py.pki.files import CERT_MODE, KEY_MODE, ensure_dir, read_optional, write_atomic

log = logging.getLogger(__name__)

CSRS = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"
SERVING_SIGNER = "kubernetes.io/kubelet-serving"
ISSUE_TIMEOUT = 60.0
POLL_INTERVAL = 0.25
RENEW_BEFORE = timedelta(days=30)
FILES = {
    "ca": "server-ca.crt",
    "client_cert": "client-kubelet.crt",
    "client_key": "client-kubelet.key",
    "serving_cert": "serving-kubelet.crt",
    "serving_key": "serving-kubelet.key",
    "kubeconfig": "kubelet.kubeconfig",
}


@dataclass(frozen=True)
class NodeIdentity:
    name: str
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes
    kubeconfig: Path


def node_user(name: str) -> str:
    return f"system:node:{name}"


async def join(config: AgentConfig) -> NodeIdentity:
    """Join ``config.server`` as ``config.node_name`` (see the module docstring)."""
    try:
        token = jointoken.parse(config.token)
    except jointoken.TokenFormatError as exc:
        raise JoinError(f"--token: {exc}") from None
    ca = await _fetch_ca(config.server)
    if token.ca_hash:
        if not token.matches_ca(ca):
            raise JoinError(
                f"the CA certificate of {config.server} (sha256 {jointoken.ca_hash(ca)}) does not match "
                f"the token's CA hash {token.ca_hash}: refusing to join; "
                "is --server the cluster the token is for?"
            )
    else:
        log.warning(
            "The token has no CA hash (K10<hash>::...): trusting the CA that %s presents", config.server
        )
    directory = config.agent_dir
    if (kept := _existing(directory, config.node_name, ca)) is not None:
        log.info("Using the node credentials in %s", directory)
        return kept
    key = new_key()
    client_csr = _request(key, config.node_name, sans=False, node_ip=config.node_ip)
    async with RestClient(config.server, Credentials(ca_pem=ca, token=config.token)) as api:
        try:
            cert = await _issued(api, client_csr, CLIENT_SIGNER, ["digital signature", "client auth"])
        except ApiStatusError as exc:
            if exc.code == 401:
                raise JoinError(
                    f"{config.server} refused the token (401 Unauthorized): check --token"
                ) from None
            raise JoinError(f"cannot obtain a client certificate: {exc}") from None
    key_pem = key_to_pem(key)
    serving_key = new_key()
    serving_csr = _request(serving_key, config.node_name, sans=True, node_ip=config.node_ip)
    as_node = Credentials(ca_pem=ca, cert_pem=cert, key_pem=key_pem)
    async with RestClient(config.server, as_node) as api:
        try:
            serving = await _issued(api, serving_csr, SERVING_SIGNER, ["digital signature", "server auth"])
        except ApiStatusError as exc:
            raise JoinError(f"cannot obtain a serving certificate: {exc}") from None
    return await asyncio.to_thread(
        _write,
        directory,
        config.server,
        config.node_name,
        ca,
        cert,
        key_pem,
        serving,
        key_to_pem(serving_key),
    )


async def _fetch_ca(server: str) -> bytes:
    async with RestClient(server, Credentials()) as anyone:
        try:
            ca = await anyone.raw("GET", "/cacerts")
        except ApiStatusError as exc:
            raise JoinError(f"cannot fetch the CA certificate from {server}: {exc}") from None
    try:
        x509.load_pem_x509_certificates(ca)
    except ValueError:
        raise JoinError(f"{server}/cacerts did not return PEM certificates: is it a k3py server?") from None
    return ca


def _request(key: object, name: str, *, sans: bool, node_ip: object) -> bytes:
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
            x509.NameAttribute(NameOID.COMMON_NAME, node_user(name)),
        ]
    )
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    if sans:
        names: list[x509.GeneralName] = [x509.DNSName(name)]
        if node_ip is not None:
            names.append(x509.IPAddress(ipaddress.ip_address(str(node_ip))))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)  # type: ignore[arg-type]


async def _issued(api: RestClient, csr_pem: bytes, signer: str, usages: list[str]) -> bytes:
    """Create a CSR and wait for its certificate (or its denial or failure)."""
    body = {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"generateName": "node-csr-"},
        "spec": {"request": base64.b64encode(csr_pem).decode(), "signerName": signer, "usages": usages},
    }
    created = await api.create(CSRS, body)
    name = created["metadata"]["name"]
    deadline = time.monotonic() + ISSUE_TIMEOUT
    while True:
        status = (await api.get(f"{CSRS}/{name}")).get("status") or {}
        for condition in status.get("conditions") or []:
            if condition.get("type") in ("Denied", "Failed") and condition.get("status", "True") == "True":
                raise JoinError(
                    f"certificate request {name} was {condition['type'].lower()}: "
                    f"{condition.get('reason', '')} {condition.get('message', '')}".strip()
                )
        if status.get("certificate"):
            return base64.b64decode(status["certificate"])
        if time.monotonic() > deadline:
            raise JoinError(
                f"certificate request {name} ({signer}) was not signed within {ISSUE_TIMEOUT:.0f}s"
            )
        await asyncio.sleep(POLL_INTERVAL)


def _existing(directory: Path, name: str, ca: bytes) -> NodeIdentity | None:
    cert_pem = read_optional(directory / FILES["client_cert"])
    key_pem = read_optional(directory / FILES["client_key"])
    stored_ca = read_optional(directory / FILES["ca"])
    if cert_pem is None or key_pem is None or stored_ca != ca:
        return None
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        parse_key(directory / FILES["client_key"], key_pem)
    except (ValueError, PkiError):
        return None
    common_names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not common_names or common_names[0].value != node_user(name):
        return None
    if cert.not_valid_after_utc - datetime.now(UTC) < RENEW_BEFORE:
        return None
    return NodeIdentity(name, ca, cert_pem, key_pem, directory / FILES["kubeconfig"])


def _write(
    directory: Path,
    server: str,
    name: str,
    ca: bytes,
    cert: bytes,
    key: bytes,
    serving: bytes,
    serving_key: bytes,
) -> NodeIdentity:
    ensure_dir(directory, mode=0o700)
    write_atomic(directory / FILES["ca"], ca, CERT_MODE)
    write_atomic(directory / FILES["client_key"], key, KEY_MODE)
    write_atomic(directory / FILES["client_cert"], cert, CERT_MODE)
    write_atomic(directory / FILES["serving_key"], serving_key, KEY_MODE)
    write_atomic(directory / FILES["serving_cert"], serving, CERT_MODE)
    config = kubeconfig(server, ca, cert, key, user=node_user(name))
    write_atomic(directory / FILES["kubeconfig"], config.encode(), KEY_MODE)
    log.info("Joined %s as %s; credentials in %s", server, node_user(name), directory)
    return NodeIdentity(name, ca, cert, key, directory / FILES["kubeconfig"])
