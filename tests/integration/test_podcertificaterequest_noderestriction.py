"""NodeRestriction for PodCertificateRequests with the stored objects at hand (a real SQLite
store): a node asks only for a pod bound to it, with the right UIDs, as the pod's service
account, for a signer the pod mounts (or one it is authorized to request for)."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from k3py.agent.podcertificates import generate_key, stub_request
from k3py.api import podcertificates as pcrs
from k3py.api.resources import Registry, Resource, from_manifest, selection
from k3py.apiserver import errors
from k3py.apiserver.authn import User
from k3py.apiserver.authz import Attributes, Decision
from k3py.apiserver.generic import ObjectStore, WriteOptions
from k3py.apiserver.node_authz import MIRROR_ANNOTATION, NodeRestriction
from k3py.apiserver.podcertificates import REQUEST_SIGNER_VERB
from k3py.storage.model import Backend

Obj = dict[str, Any]
NODE1 = User("system:node:node1", ("system:nodes", "system:authenticated"))
SIGNER = "example.com/mounted"
ALLOWED_SIGNERS: set[str] = set()


def authorize(attrs: Attributes) -> Decision:
    """Stands in for RBAC: ``request-serviceaccounts-podcertificate-signer`` on the signers listed."""
    return Decision(attrs.verb == REQUEST_SIGNER_VERB and attrs.resource.replace(":", "/") in ALLOWED_SIGNERS)


def core(store: ObjectStore, plural: str) -> Resource:
    found = store.registry.lookup("", "v1", plural)
    assert found is not None
    return found


def requests(store: ObjectStore) -> Resource:
    found = store.registry.lookup(pcrs.GROUP, pcrs.VERSION, pcrs.PLURAL)
    assert found is not None
    return found


@pytest.fixture
async def store(backend: Backend) -> ObjectStore:
    objects = ObjectStore(backend, Registry(from_manifest(selection())), ipaddress.ip_network("10.43.0.0/16"))
    opts = WriteOptions()
    await objects.create(core(objects, "namespaces"), "", {"metadata": {"name": "default"}}, opts)
    await objects.create(core(objects, "serviceaccounts"), "default", {"metadata": {"name": "default"}}, opts)
    await objects.create(core(objects, "serviceaccounts"), "default", {"metadata": {"name": "other"}}, opts)
    for name in ("node1", "node2"):
        await objects.create(core(objects, "nodes"), "", {"metadata": {"name": name}}, opts)
    volume = {
        "name": "tls",
        "projected": {
            "sources": [{"podCertificate": {"signerName": SIGNER, "keyType": "ED25519", "keyPath": "k"}}]
        },
    }
    for name, node, marks in (
        ("web", "node1", {}),
        ("static", "node1", {MIRROR_ANNOTATION: "x"}),
        ("away", "node2", {}),
    ):
        pod = {
            "metadata": {"name": name, "annotations": marks},
            "spec": {
                "nodeName": node,
                "serviceAccountName": "default",
                "containers": [{"name": "c", "image": "busybox"}],
                "volumes": [volume],
            },
        }
        await objects.create(core(objects, "pods"), "default", pod, opts)
    objects.admission.append(NodeRestriction(objects, authorize))
    ALLOWED_SIGNERS.clear()
    return objects


async def body(store: ObjectStore, pod: str = "web", **changes: str) -> Obj:
    found = await store.get(core(store, "pods"), "default", pod)
    node = await store.get(core(store, "nodes"), "", str(found["spec"]["nodeName"]))
    account = await store.get(core(store, "serviceaccounts"), "default", "default")
    spec = {
        "signerName": SIGNER,
        "podName": pod,
        "podUID": found["metadata"]["uid"],
        "serviceAccountName": "default",
        "serviceAccountUID": account["metadata"]["uid"],
        "nodeName": node["metadata"]["name"],
        "nodeUID": node["metadata"]["uid"],
        "stubPKCS10Request": pcrs.encode_bytes(stub_request(generate_key("ECDSAP256"))),
    }
    spec.update(changes)
    return {"metadata": {"generateName": "req-"}, "spec": spec}


async def ask(store: ObjectStore, obj: Obj) -> Obj:
    return await store.create(requests(store), "default", obj, WriteOptions(user=NODE1))


async def refused(store: ObjectStore, obj: Obj, code: int) -> str:
    with pytest.raises(errors.ApiError) as raised:
        await ask(store, obj)
    assert raised.value.code == code, raised.value.message
    return raised.value.message


async def test_a_node_asks_for_its_own_pod(store: ObjectStore) -> None:
    made = await ask(store, await body(store))
    assert made["spec"]["podName"] == "web"


async def test_stale_uids_are_errors_to_retry(store: ObjectStore) -> None:
    message = await refused(store, await body(store, podUID="stale"), 500)
    assert 'contains pod UID ("stale") which differs from running pod' in message
    message = await refused(store, await body(store, nodeUID="stale"), 500)
    assert 'names node UID "stale", inconsistent with the running node' in message
    message = await refused(store, await body(store, serviceAccountUID="stale"), 500)
    assert 'names service account UID "stale", which differs from the running service account' in message
    message = await refused(store, await body(store, podName="gone"), 500)
    assert 'while retrieving pod "default/gone" named in the PodCertificateRequest' in message


async def test_other_nodes_pods_mirror_pods_and_other_accounts_are_forbidden(store: ObjectStore) -> None:
    away = await body(store, "away")
    away["spec"]["nodeName"] = "node1"
    node1 = await store.get(core(store, "nodes"), "", "node1")
    away["spec"]["nodeUID"] = node1["metadata"]["uid"]
    message = await refused(store, away, 403)
    assert 'pod "default/away" is not running on node "node1" named in the PodCertificateRequest' in message
    message = await refused(store, await body(store, "static"), 403)
    assert 'pod "default/static" is a mirror pod' in message
    message = await refused(store, await body(store, serviceAccountName="other"), 403)
    assert 'contains serviceAccountName ("other") that differs from running pod ("default")' in message
    message = await refused(store, await body(store, nodeName="node2"), 403)
    assert 'which is not the requesting node "node1"' in message


async def test_a_signer_the_pod_does_not_mount_needs_authorization(store: ObjectStore) -> None:
    other = await body(store, signerName="example.com/elsewhere")
    message = await refused(store, other, 403)
    assert (
        'pod "default/web" does not mount a podCertificate projected volume for signer '
        '"example.com/elsewhere"' in message
    )
    ALLOWED_SIGNERS.add("example.com/elsewhere")
    assert (await ask(store, other))["spec"]["signerName"] == "example.com/elsewhere"


async def test_a_node_only_creates_requests(store: ObjectStore) -> None:
    made = await ask(store, await body(store))
    changed = {**made, "metadata": {**made["metadata"], "labels": {"a": "b"}}}
    with pytest.raises(errors.ApiError) as raised:
        await store.update(
            requests(store), "default", made["metadata"]["name"], changed, WriteOptions(user=NODE1)
        )
    assert raised.value.code == 403 and "unexpected operation UPDATE" in raised.value.message
