"""``podCertificate`` projected volume sources: a private key made on the node and a
certificate for it from the signer the pod names, through a PodCertificateRequest.

For each source of each pod (a :class:`CertificateProjection`, which
:class:`~k3py.agent.volumes.PodVolumes` keeps) the kubelet makes a key of the source's
``keyType``, signs an empty PKCS#10 request with it (the API server checks that signature: it
proves the requester holds the key) and creates a request naming the pod, its service account
and this node, with their UIDs, owned by the pod so that it goes when the pod goes. Until a
signer answers, the volume cannot be set up and the pod stays ``ContainerCreating``; once the
request is Issued the key and the chain are written; a Denied or Failed request is final for
the source (as upstream, a Denied or Failed event on the pod, and its FailedMount events,
carry the signer's reason and message).
At ``status.beginRefreshAt`` a new key and request are made while the old pair keeps being
served, and the new pair replaces it once issued.

The kubelet talks to the API server through a :class:`RequestApi`; :class:`ClientRequests`
is the one over the node's REST client, as upstream's ``IssuingManager`` uses its client.
"""

from __future__ import annotations

import base64
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from k3py.agent.envvars import ConfigError
from k3py.agent.events import Recorder
from k3py.api import podcertificates as pcrs
from k3py.client.rest import ApiStatusError, RestClient

log = logging.getLogger(__name__)

Obj = dict[str, Any]
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey

ABANDON_AFTER = timedelta(minutes=15)
"""A request that cannot be read this long after it was made is taken as deleted, and made again."""
_CURVES: dict[str, ec.EllipticCurve] = {
    "ECDSAP256": ec.SECP256R1(),
    "ECDSAP384": ec.SECP384R1(),
    "ECDSAP521": ec.SECP521R1(),
}
_RSA_BITS = {"RSA3072": 3072, "RSA4096": 4096}
_PEM = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----", re.DOTALL)


class PodCertificateError(ConfigError):
    """A ``podCertificate`` source has no credentials to write (yet, or for good)."""


# -- keys and requests -----------------------------------------------------------------------


def generate_key(key_type: str) -> PrivateKey:
    """A new private key of one of upstream's key types (``pcrs.KEY_TYPES``)."""
    if key_type in _RSA_BITS:
        return rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS[key_type])
    if key_type in _CURVES:
        return ec.generate_private_key(_CURVES[key_type])
    if key_type == "ED25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise PodCertificateError(f'unknown key type "{key_type}"')


def stub_request(key: PrivateKey) -> bytes:
    """An empty PKCS#10 request signed by ``key`` (DER), as the upstream kubelet makes it."""
    digest: hashes.SHA256 | hashes.SHA384 | hashes.SHA512 | None = hashes.SHA256()
    if isinstance(key, ed25519.Ed25519PrivateKey):
        digest = None
    elif isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size > 256:
        digest = hashes.SHA384() if key.curve.key_size <= 384 else hashes.SHA512()  # as Go picks
    request = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(key, digest)
    return request.public_bytes(serialization.Encoding.DER)


def pem_key(key: PrivateKey) -> bytes:
    """The key as a PKCS#8 ``PRIVATE KEY`` PEM block."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def clean_chain(chain: str) -> bytes:
    """The chain's PEM blocks re-armored as plain ``CERTIFICATE`` blocks: what lies between
    blocks and any block headers are dropped (upstream's ``cleanCertificateChain``)."""
    out = []
    for match in _PEM.finditer(chain.encode()):
        lines = match.group(2).splitlines()
        body = b"".join(line.strip() for line in lines if b":" not in line)
        encoded = base64.b64encode(base64.b64decode(body))
        wrapped = b"".join(encoded[i : i + 64] + b"\n" for i in range(0, len(encoded), 64))
        out.append(b"-----BEGIN CERTIFICATE-----\n" + wrapped + b"-----END CERTIFICATE-----\n")
    return b"".join(out)


@dataclass(frozen=True)
class Requester:
    """Who a request is made for: the pod, its service account and the node, with their UIDs."""

    namespace: str
    pod_name: str
    pod_uid: str
    service_account: str
    service_account_uid: str
    node_name: str
    node_uid: str


def new_request(who: Requester, source: Obj, stub: bytes) -> Obj:
    """The PodCertificateRequest the kubelet creates for ``source`` (spec as upstream fills it)."""
    body: Obj = {
        "signerName": str(source.get("signerName") or ""),
        "podName": who.pod_name,
        "podUID": who.pod_uid,
        "serviceAccountName": who.service_account,
        "serviceAccountUID": who.service_account_uid,
        "nodeName": who.node_name,
        "nodeUID": who.node_uid,
        "stubPKCS10Request": pcrs.encode_bytes(stub),
    }
    if source.get("maxExpirationSeconds") is not None:
        body["maxExpirationSeconds"] = int(source["maxExpirationSeconds"])
    if source.get("userAnnotations"):
        body["unverifiedUserAnnotations"] = dict(source["userAnnotations"])
    return {
        "apiVersion": f"{pcrs.GROUP}/{pcrs.VERSION}",
        "kind": pcrs.KIND,
        "metadata": {
            "namespace": who.namespace,
            "generateName": "req-",
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Pod", "name": who.pod_name, "uid": who.pod_uid}
            ],
        },
        "spec": body,
    }


# -- talking to the API server -----------------------------------------------------------------


class RequestApi(Protocol):
    """What a projection needs from the API server."""

    async def requester(self, pod: Obj) -> Requester:
        """The pod's, its service account's and this node's names and UIDs."""
        ...

    async def create(self, request: Obj) -> Obj:
        """Create a request; the stored object (with its generated name)."""
        ...

    async def get(self, namespace: str, name: str) -> Obj | None:
        """A request as stored now; None when it cannot be read (gone, or not yet visible)."""
        ...

    def refused(self, pod: Obj, kind: str, reason: str, message: str) -> None:
        """Tell the pod's events that a signer refused (``kind``: Denied or Failed)."""
        ...


@dataclass
class ClientRequests:
    """:class:`RequestApi` over the node's client."""

    api: RestClient
    node_name: str
    events: Recorder | None = None

    async def requester(self, pod: Obj) -> Requester:
        meta = pod["metadata"]
        namespace = str(meta.get("namespace") or "default")
        account = str((pod.get("spec") or {}).get("serviceAccountName") or "default")
        try:
            found = await self.api.get(f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}")
        except ApiStatusError as exc:
            raise PodCertificateError(f"while fetching service account: {exc}") from None
        try:
            node = await self.api.get(f"/api/v1/nodes/{self.node_name}")
        except ApiStatusError as exc:
            raise PodCertificateError(f"while getting node object: {exc}") from None
        return Requester(
            namespace=namespace,
            pod_name=str(meta.get("name") or ""),
            pod_uid=str(meta.get("uid") or ""),
            service_account=account,
            service_account_uid=str(found["metadata"].get("uid") or ""),
            node_name=self.node_name,
            node_uid=str(node["metadata"].get("uid") or ""),
        )

    async def create(self, request: Obj) -> Obj:
        namespace = request["metadata"]["namespace"]
        try:
            return await self.api.create(f"{_collection(namespace)}", request)
        except ApiStatusError as exc:
            raise PodCertificateError(f"while creating initial PodCertificateRequest: {exc}") from None

    async def get(self, namespace: str, name: str) -> Obj | None:
        try:
            return await self.api.get(f"{_collection(namespace)}/{name}")
        except ApiStatusError as exc:
            if exc.code in (403, 404):
                return None  # the node authorizer has not seen it yet, or it is gone
            raise PodCertificateError(
                f"while getting PodCertificateRequest {namespace}/{name}: {exc}"
            ) from None

    def refused(self, pod: Obj, kind: str, reason: str, message: str) -> None:
        if self.events is not None:
            self.events.pod(pod, "Warning", kind, message)


def _collection(namespace: str) -> str:
    return f"/apis/{pcrs.GROUP}/{pcrs.VERSION}/namespaces/{namespace}/{pcrs.PLURAL}"


# -- one source ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    """An issued pair: the PKCS#8 key and the cleaned chain (leaf first), both PEM."""

    key: bytes
    chain: bytes
    begin_refresh_at: datetime


@dataclass
class _Pending:
    key: PrivateKey
    name: str
    namespace: str
    made: datetime


@dataclass
class CertificateProjection:
    """The credentials of one ``podCertificate`` source of one pod (see the module docstring)."""

    source: Obj
    current: Credentials | None = None
    pending: _Pending | None = None
    refused: str = ""

    async def credentials(self, api: RequestApi, pod: Obj, now: datetime | None = None) -> Credentials:
        """The pair to write now; raises :class:`PodCertificateError` while there is none."""
        now = now or datetime.now(UTC)
        if self.refused:
            raise PodCertificateError(self.refused)
        if self.pending is not None:
            await self._follow(api, pod, now)
        if self.pending is None and (self.current is None or now >= self.current.begin_refresh_at):
            await self._request(api, pod, now)
        if self.current is None:
            raise PodCertificateError("credential bundle is not issued yet")
        return self.current

    async def _request(self, api: RequestApi, pod: Obj, now: datetime) -> None:
        key = generate_key(str(self.source.get("keyType") or ""))
        who = await api.requester(pod)
        created = await api.create(new_request(who, self.source, stub_request(key)))
        name = str(created["metadata"]["name"])
        self.pending = _Pending(key, name, who.namespace, now)
        log.info("pod %s/%s: PodCertificateRequest %s created", who.namespace, who.pod_name, name)

    async def _follow(self, api: RequestApi, pod: Obj, now: datetime) -> None:
        assert self.pending is not None
        found = await api.get(self.pending.namespace, self.pending.name)
        if found is None:
            if now - self.pending.made > ABANDON_AFTER:
                self.pending = None  # deleted: ask again
            return
        condition = pcrs.terminal_condition(found)
        if condition is None:
            return
        kind = condition.get("type")
        if kind == pcrs.ISSUED:
            status = pcrs.status(found)
            # Validation makes signers set beginRefreshAt; without it, look again in a while.
            refresh = pcrs.parse_time(status.get("beginRefreshAt")) or now + timedelta(minutes=10)
            try:
                chain = clean_chain(str(status.get("certificateChain") or ""))
            except ValueError as exc:
                raise PodCertificateError(f"issued certificate chain does not decode: {exc}") from None
            self.current = Credentials(pem_key(self.pending.key), chain, refresh)
            self.pending = None
            return
        verb = "denied" if kind == pcrs.DENIED else "failed"
        reason, message = str(condition.get("reason") or ""), str(condition.get("message") or "")
        self.refused = f'PodCertificateRequest was permanently {verb}: reason="{reason}" message="{message}"'
        where = f"{self.pending.namespace}/{self.pending.name}"
        happened = "was denied" if kind == pcrs.DENIED else "failed"
        event = f'PodCertificateRequest {where} {happened}, reason="{reason}", message="{message}"'
        api.refused(pod, str(kind), reason, event)
        self.pending = None
        self.current = None
        raise PodCertificateError(self.refused)


def files(source: Obj, credentials: Credentials, mode: int) -> dict[str, tuple[bytes, int]]:
    """The files a source's paths name: the bundle (key, then chain), the key, the chain."""
    out: dict[str, tuple[bytes, int]] = {}
    if path := source.get("credentialBundlePath"):
        out[str(path)] = (credentials.key + credentials.chain, mode)
    if path := source.get("keyPath"):
        out[str(path)] = (credentials.key, mode)
    if path := source.get("certificateChainPath"):
        out[str(path)] = (credentials.chain, mode)
    return out
