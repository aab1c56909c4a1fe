"""PodCertificateRequests against a real ``k3py server`` on loopback: discovery, create, read,
update, patch and delete as the conformance test drives them, a signer answering through
``/status`` (only with the ``sign`` verb), what a node may ask and read, and the kubelet's
request client getting a certificate issued end to end."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from k3py.agent.podcertificates import (
    CertificateProjection,
    ClientRequests,
    PodCertificateError,
    generate_key,
    stub_request,
)
from k3py.api import podcertificates as pcrs
from k3py.client.rest import ApiStatusError, Credentials, Kubeconfig, RestClient
from k3py.pki.certs import CLIENT_AUTH, LeafSpec, certs_to_pem, issue, key_to_pem, new_key
from tests.e2e.cluster import Cluster
from tests.integration.api_support import until

pytestmark = pytest.mark.slow

Obj = dict[str, Any]
GROUP_VERSION = "/apis/certificates.k8s.io/v1"
REQUESTS = f"{GROUP_VERSION}/namespaces/default/podcertificaterequests"
SIGNER = "example.com/e2e-signer"


def request_body(key: Any, *, node: str = "test-node", node_uid: str = "node-uid", **spec: Any) -> Obj:
    body = {
        "signerName": SIGNER,
        "podName": "test-pod",
        "podUID": "12345678-1234-1234-1234-123456789012",
        "serviceAccountName": "default",
        "serviceAccountUID": "12345678-1234-1234-1234-123456789013",
        "nodeName": node,
        "nodeUID": node_uid,
        "maxExpirationSeconds": 86400,
        "stubPKCS10Request": pcrs.encode_bytes(stub_request(key)),
    }
    body.update(spec)
    return {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "PodCertificateRequest",
        "metadata": {"generateName": "e2e-example-pcr-"},
        "spec": body,
    }


def issued_status(stub: str, message: str = "Issued by E2E test") -> Obj:
    """What the conformance test's signer writes: a certificate for the request's key, valid
    from a minute ago for an hour, refreshed after 15 minutes."""
    public = x509.load_der_x509_csr(pcrs.decode_bytes(stub) or b"").public_key()
    before = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    issuer = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "e2e.example.com")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(before)
        .not_valid_after(before + timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(issuer, hashes.SHA256())
    )
    return {
        "certificateChain": cert.public_bytes(serialization.Encoding.PEM).decode(),
        "notBefore": pcrs.format_time(before),
        "notAfter": pcrs.format_time(before + timedelta(hours=1)),
        "beginRefreshAt": pcrs.format_time(before + timedelta(minutes=15)),
        "conditions": [
            {
                "type": "Issued",
                "status": "True",
                "reason": "E2E",
                "message": message,
                "lastTransitionTime": pcrs.format_time(datetime.now(UTC)),
            }
        ],
    }


@asynccontextmanager
async def client_as(cluster: Cluster, user: str, *groups: str) -> AsyncIterator[RestClient]:
    """A client with a certificate from the cluster's client CA, for ``user`` in ``groups``."""
    tls = cluster.data_dir / "server" / "tls"
    ca_cert = x509.load_pem_x509_certificate((tls / "client-ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((tls / "client-ca.key").read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = new_key()
    spec = LeafSpec(common_name=user, organizations=groups, usage=CLIENT_AUTH)
    cert = issue(spec, key, ca_cert, ca_key, datetime.now(UTC))
    admin = Kubeconfig.load(cluster.kubeconfig)
    credentials = Credentials(
        ca_pem=admin.credentials.ca_pem, cert_pem=certs_to_pem(cert), key_pem=key_to_pem(key)
    )
    async with RestClient(admin.server, credentials) as client:
        yield client


async def refused(call: Any, code: int) -> str:
    with pytest.raises(ApiStatusError) as raised:
        await call
    assert raised.value.code == code, str(raised.value)
    return str(raised.value)


async def test_requests_are_served_and_signed_through_status(api: RestClient) -> None:
    resources = (await api.get(GROUP_VERSION))["resources"]
    names = {r["name"]: r for r in resources}
    assert names["podcertificaterequests"]["namespaced"] is True
    assert "podcertificaterequests/status" in names
    assert {"create", "get", "list", "update", "patch", "delete"} <= set(
        names["podcertificaterequests"]["verbs"]
    )

    key = generate_key("ECDSAP256")
    made = await api.create(REQUESTS, request_body(key))
    name = made["metadata"]["name"]
    assert name.startswith("e2e-example-pcr-")
    assert made["status"] == {} or "status" not in made
    assert made["spec"]["maxExpirationSeconds"] == 86400
    path = f"{REQUESTS}/{name}"
    assert [i["metadata"]["name"] for i in (await api.list(REQUESTS))["items"]] == [name]

    labelled = await api.patch(
        path, {"metadata": {"labels": {"test.podcertificaterequest.example.com": "test"}}}
    )
    assert labelled["metadata"]["labels"] == {"test.podcertificaterequest.example.com": "test"}
    changed = copy.deepcopy(labelled)
    changed["spec"]["podName"] = "other-pod"
    message = await refused(api.update(path, changed), 422)
    assert "spec: Invalid value" in message and "field is immutable" in message
    sneaked = copy.deepcopy(labelled)
    sneaked["status"] = issued_status(made["spec"]["stubPKCS10Request"])
    assert "certificateChain" not in ((await api.update(path, sneaked)).get("status") or {})

    current = await api.get(f"{path}/status")
    current["status"] = issued_status(made["spec"]["stubPKCS10Request"])
    signed = await api.update(f"{path}/status", current)
    assert signed["status"]["certificateChain"] == current["status"]["certificateChain"]
    assert signed["metadata"]["labels"] == {"test.podcertificaterequest.example.com": "test"}
    assert signed["spec"] == made["spec"]
    again = copy.deepcopy(signed)
    again["status"]["conditions"][0]["message"] = "changed"
    message = await refused(api.update(f"{path}/status", again), 422)
    assert "immutable after PodCertificateRequest is issued, denied, or failed" in message

    await api.delete(path)
    await refused(api.get(path), 404)


async def test_status_patches_as_the_conformance_test_sends_them(api: RestClient) -> None:
    for kind in ("merge", "strategic", "apply", "json"):
        made = await api.create(REQUESTS, request_body(generate_key("ECDSAP256")))
        path = f"{REQUESTS}/{made['metadata']['name']}/status"
        status = issued_status(made["spec"]["stubPKCS10Request"], "Issued by E2E test patch")
        if kind in ("merge", "strategic"):
            patched = await api.patch(path, {"status": status}, kind)
        elif kind == "apply":
            applied = {
                "apiVersion": "certificates.k8s.io/v1",
                "kind": "PodCertificateRequest",
                "metadata": {"name": made["metadata"]["name"], "namespace": "default"},
                "status": status,
            }
            patched = await api.patch(f"{path}?fieldManager=e2e-signer&force=true", applied, "apply")
        else:
            operations = [{"op": "add", "path": f"/status/{k}", "value": v} for k, v in status.items()]
            patched = await api.patch(path, operations, "json")
        assert patched["status"]["conditions"][0]["message"] == "Issued by E2E test patch"
        assert patched["status"]["notAfter"] == status["notAfter"]


async def test_bad_requests_and_bad_issuances_are_invalid(api: RestClient) -> None:
    key = generate_key("ECDSAP256")
    message = await refused(api.create(REQUESTS, request_body(key, maxExpirationSeconds=600)), 422)
    assert "must be in the range [3600, 7862400]" in message
    message = await refused(api.create(REQUESTS, request_body(key, stubPKCS10Request="bm90IGEgQ1NS")), 422)
    assert "must be a valid PKCS#10 CSR" in message
    made = await api.create(REQUESTS, request_body(key))
    path = f"{REQUESTS}/{made['metadata']['name']}/status"
    other = issued_status(pcrs.encode_bytes(stub_request(generate_key("ECDSAP256"))))
    message = await refused(api.patch(path, {"status": other}), 422)
    assert "leaf certificate was not issued to the requested public key" in message


async def test_only_a_user_who_may_sign_for_the_signer_answers(cluster: Cluster, api: RestClient) -> None:
    made = await api.create(REQUESTS, request_body(generate_key("ECDSAP256")))
    path = f"{REQUESTS}/{made['metadata']['name']}/status"
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    writer = {
        "apiGroups": ["certificates.k8s.io"],
        "resources": ["podcertificaterequests", "podcertificaterequests/status"],
        "verbs": ["get", "update", "patch"],
    }
    await api.create(f"{rbac}/clusterroles", {"metadata": {"name": "pcr-writer"}, "rules": [writer]})
    await api.create(
        f"{rbac}/clusterrolebindings",
        {
            "metadata": {"name": "pcr-writer"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "pcr-writer"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "signer-bot"}],
        },
    )
    async with client_as(cluster, "signer-bot") as bot:
        status = issued_status(made["spec"]["stubPKCS10Request"])
        message = await refused(bot.patch(path, {"status": status}), 422)
        assert f'User "signer-bot" is not permitted to "sign" for signer "{SIGNER}"' in message
        sign = {
            "apiGroups": ["certificates.k8s.io"],
            "resources": ["signers"],
            "resourceNames": ["example.com/*"],
            "verbs": ["sign"],
        }
        await api.patch(f"{rbac}/clusterroles/pcr-writer", {"rules": [writer, sign]})

        async def signed() -> bool:
            try:
                await bot.patch(path, {"status": status})
            except ApiStatusError as exc:
                assert exc.code == 422 and "not permitted" in str(exc), str(exc)
                return False
            return True

        await until(signed)  # once the RBAC cache has the new rule
        assert (await api.get(path))["status"]["certificateChain"] == status["certificateChain"]


async def test_a_node_asks_for_its_own_pods_and_reads_only_its_own_requests(
    cluster: Cluster, api: RestClient
) -> None:
    node = await api.create("/api/v1/nodes", {"metadata": {"name": "node1"}})
    source: Obj = {"signerName": SIGNER, "keyType": "ED25519", "credentialBundlePath": "b.pem"}
    volume = {"name": "tls", "projected": {"sources": [{"podCertificate": source}]}}
    pod = await api.create(
        "/api/v1/namespaces/default/pods",
        {
            "metadata": {"name": "web"},
            "spec": {
                "nodeName": "node1",
                "containers": [{"name": "c", "image": "busybox"}],
                "volumes": [volume],
            },
        },
    )
    foreign = await api.create(REQUESTS, request_body(generate_key("ECDSAP256"), node="node2"))
    async with client_as(cluster, "system:node:node1", "system:nodes") as kubelet:
        elsewhere = request_body(generate_key("ECDSAP256"), node="node2")
        message = await refused(kubelet.create(REQUESTS, elsewhere), 403)
        assert (
            'PodCertificateRequest.Spec.NodeName="node2", which is not the requesting node "node1"' in message
        )
        await refused(kubelet.get(f"{REQUESTS}/{foreign['metadata']['name']}"), 403)
        await refused(kubelet.list(REQUESTS), 403)

        # The kubelet's own client: names and UIDs from the API, then the request, then the answer.
        requests = ClientRequests(kubelet, "node1")
        who = await requests.requester(pod)
        assert (who.node_uid, who.pod_uid) == (node["metadata"]["uid"], pod["metadata"]["uid"])
        account = await api.get("/api/v1/namespaces/default/serviceaccounts/default")
        assert who.service_account_uid == account["metadata"]["uid"]
        projection = CertificateProjection(dict(source))
        with pytest.raises(PodCertificateError, match="not issued yet"):
            await projection.credentials(requests, pod)
        assert projection.pending is not None
        name = projection.pending.name
        stored = await api.get(f"{REQUESTS}/{name}")
        assert stored["metadata"]["ownerReferences"][0]["uid"] == pod["metadata"]["uid"]
        assert stored["spec"]["nodeUID"] == node["metadata"]["uid"]
        await until(lambda: _readable(kubelet, f"{REQUESTS}/{name}"))
        message = await refused(
            kubelet.patch(
                f"{REQUESTS}/{name}/status", {"status": issued_status(stored["spec"]["stubPKCS10Request"])}
            ),
            403,
        )
        stored["status"] = issued_status(stored["spec"]["stubPKCS10Request"])
        await api.update(f"{REQUESTS}/{name}/status", stored)
        credentials = await projection.credentials(requests, pod)
        assert credentials.chain == stored["status"]["certificateChain"].encode()
        key = serialization.load_pem_private_key(credentials.key, None)
        assert key.public_key() == x509.load_pem_x509_certificate(credentials.chain).public_key()


async def _readable(client: RestClient, path: str) -> bool:
    try:
        await client.get(path)
    except ApiStatusError as exc:
        assert exc.code == 403, str(exc)
        return False
    return True
