"""CertificateSigningRequests through a real SQLite store: who asked, the approval and status
subresources, upstream's validation, the auto-approver and the signer (alone and as tasks),
and the approval subresource over HTTP as ``kubectl certificate approve`` uses it."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from k3py.api.resources import Registry, Resource, from_manifest, selection
from k3py.apiserver import errors
from k3py.apiserver.app import Security, build_app
from k3py.apiserver.authn import User
from k3py.apiserver.authz import Attributes, Authorizer, Decision
from k3py.apiserver.bootstrap import bootstrap
from k3py.apiserver.certificates import (
    AUTO_APPROVED,
    NODE_CLIENT_MESSAGE,
    NODE_SERVING_MESSAGE,
    SELF_NODE_CLIENT_MESSAGE,
    SIGNER_VALIDATION_FAILURE,
    CsrAdmission,
    CsrApprover,
    CsrSigner,
    csr_resource,
)
from k3py.apiserver.generic import ListOptions, ObjectStore, WriteOptions
from k3py.apiserver.rbac import follow as follow_rbac
from k3py.apiserver.rbac_bootstrap import ensure_policy
from k3py.pki import Pki, certs, ensure_pki
from k3py.pki.signing import KUBE_APISERVER_CLIENT, KUBELET_CLIENT, KUBELET_SERVING
from k3py.storage.model import Backend

Obj = dict[str, Any]
TIMEOUT = 10.0
CLIENT_USAGES = ["digital signature", "key encipherment", "client auth"]
SERVING_USAGES = ["digital signature", "key encipherment", "server auth"]

BOOTSTRAP = User(
    "system:bootstrap:abcdef",
    ("system:bootstrappers", "system:authenticated"),
    "uid-1",
    (("authentication.kubernetes.io/credential-id", ("token-abcdef",)),),
)
STRANGER = User("mallory", ("system:authenticated",))
NODE1 = User("system:node:node1", ("system:nodes", "system:authenticated"))
ADMIN = User("system:admin", ("system:masters", "system:authenticated"))


@pytest.fixture
def store(backend: Backend) -> ObjectStore:
    objects = ObjectStore(backend, Registry(from_manifest(selection())), ipaddress.ip_network("10.43.0.0/16"))
    objects.admission.append(CsrAdmission())
    return objects


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return ensure_pki(tmp_path / "tls", dns_names=(), ip_addresses=())


def resource(store: ObjectStore) -> Resource:
    found = csr_resource(store)
    assert found is not None
    return found


def request_pem(
    cn: str = "system:node:node1",
    orgs: Sequence[str] = ("system:nodes",),
    sans: Sequence[x509.GeneralName] = (),
) -> bytes:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attributes))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return builder.sign(certs.new_key(), hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def csr(name: str, pem: bytes, signer: str = KUBELET_CLIENT, usages: Sequence[str] = CLIENT_USAGES) -> Obj:
    return {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {"request": base64.b64encode(pem).decode(), "signerName": signer, "usages": list(usages)},
    }


async def create(store: ObjectStore, body: Obj, user: User | None = BOOTSTRAP) -> Obj:
    return await store.create(resource(store), "", body, WriteOptions(field_manager="test", user=user))


async def get(store: ObjectStore, name: str) -> Obj:
    return await store.get(resource(store), "", name)


def set_conditions(*conditions: Obj) -> Callable[[Obj], Obj]:
    def change(current: Obj) -> Obj:
        status = current.get("status") or {}
        return {
            **current,
            "status": {**status, "conditions": [*(status.get("conditions") or []), *conditions]},
        }

    return change


async def decide(store: ObjectStore, name: str, kind: str = "Approved") -> Obj:
    """What ``kubectl certificate approve|deny`` does: a condition through /approval."""
    condition = {"type": kind, "status": "True", "reason": "KubectlApprove", "message": "by hand"}
    return await store.guaranteed_update(
        resource(store), "", name, set_conditions(condition), WriteOptions(user=ADMIN), "approval"
    )


def condition(obj: Obj, kind: str) -> Obj:
    [found] = [c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == kind]
    return dict(found)


def causes(exc: errors.ApiError) -> list[str]:
    return [f"{c['field']}: {c['message']}" for c in exc.details["causes"]]


def issued(obj: Obj) -> x509.Certificate:
    return x509.load_pem_x509_certificate(base64.b64decode(obj["status"]["certificate"]))


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    """Wait (at most TIMEOUT) for ``check`` to hold."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            if await check():
                return
            await asyncio.sleep(0.01)


def allow(*grants: tuple[str, str]) -> Authorizer:
    """An authorizer allowing ``(user, subresource)`` pairs to create CSR subresources."""

    def authorize(attrs: Attributes) -> Decision:
        ok = (
            attrs.verb == "create"
            and attrs.api_group == "certificates.k8s.io"
            and attrs.resource == "certificatesigningrequests"
            and (attrs.user.name, attrs.subresource) in grants
        )
        return Decision(ok)

    return authorize


# -- create: the requester is recorded, nothing else comes in ---------------------------------------


async def test_create_records_the_requester_and_clears_what_the_client_claimed(store: ObjectStore) -> None:
    body = csr("node-csr-Xy_9-AbC", request_pem())  # kubelet's names are not DNS subdomains
    body["spec"] |= {
        "username": "system:admin",
        "groups": ["system:masters"],
        "uid": "0",
        "extra": {"a": ["b"]},
    }
    body["status"] = {"conditions": [{"type": "Approved", "status": "True"}], "certificate": "AAAA"}
    created = await create(store, body)
    stored = await get(store, "node-csr-Xy_9-AbC")
    for obj in (created, stored):
        spec = obj["spec"]
        assert spec["username"] == "system:bootstrap:abcdef"
        assert spec["groups"] == ["system:bootstrappers", "system:authenticated"]
        assert spec["uid"] == "uid-1"
        assert spec["extra"] == {"authentication.kubernetes.io/credential-id": ["token-abcdef"]}
        assert obj["status"] == {}


async def test_a_write_by_the_server_itself_records_nobody(store: ObjectStore) -> None:
    body = csr("by-server", request_pem())
    body["spec"]["username"] = "system:admin"
    created = await create(store, body, user=None)
    assert "username" not in created["spec"] and "groups" not in created["spec"]


async def test_no_client_certificate_for_system_masters(store: ObjectStore) -> None:
    masters = request_pem(cn="root", orgs=("system:masters",))
    with pytest.raises(errors.ApiError) as caught:
        await create(store, csr("root", masters, KUBE_APISERVER_CLIENT, ["client auth"]), user=ADMIN)
    assert (caught.value.code, caught.value.message) == (
        403,
        'certificatesigningrequests.certificates.k8s.io "root" is forbidden: use of '
        "kubernetes.io/kube-apiserver-client signer with system:masters group is not allowed",
    )
    await create(store, csr("root-elsewhere", masters, "example.com/mine", ["client auth"]), user=ADMIN)


async def test_the_resource_itself_changes_metadata_only(store: ObjectStore) -> None:
    await create(store, csr("meta", request_pem()))
    await decide(store, "meta")

    def change(current: Obj) -> Obj:
        current["metadata"]["labels"] = {"team": "a"}
        current["spec"]["username"] = "system:admin"
        current["spec"]["signerName"] = KUBE_APISERVER_CLIENT
        current["status"] = {}
        return current

    updated = await store.guaranteed_update(resource(store), "", "meta", change, WriteOptions(user=ADMIN))
    assert updated["metadata"]["labels"] == {"team": "a"}
    assert updated["spec"]["username"] == BOOTSTRAP.name
    assert updated["spec"]["signerName"] == KUBELET_CLIENT
    assert condition(updated, "Approved")["reason"] == "KubectlApprove"


# -- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda b: b["spec"].__setitem__("request", base64.b64encode(b"nonsense").decode()),
            "spec.request: Invalid value: []byte{0x6e, 0x6f, 0x6e, 0x73, 0x65, 0x6e, 0x73, 0x65}: "
            "PEM block type must be CERTIFICATE REQUEST",
        ),
        (lambda b: b["spec"].pop("usages"), "spec.usages: Required value"),
        (
            lambda b: b["spec"].__setitem__("usages", ["client auth", "flying"]),
            'spec.usages[1]: Unsupported value: "flying": supported values: "any", "cert sign", ',
        ),
        (
            lambda b: b["spec"].__setitem__("usages", ["client auth", "client auth"]),
            'spec.usages[1]: Duplicate value: "client auth"',
        ),
        (lambda b: b["spec"].pop("signerName"), "spec.signerName: Required value"),
        (
            lambda b: b["spec"].__setitem__("signerName", "my-signer"),
            'spec.signerName: Invalid value: "my-signer": must be a fully qualified domain and path of the '
            "form 'example.com/signer-name'",
        ),
        (
            lambda b: b["spec"].__setitem__("signerName", "example/signer"),
            'spec.signerName: Invalid value: "example": should be a domain with at least two segments '
            "separated by dots",
        ),
        (
            lambda b: b["spec"].__setitem__("signerName", "kubernetes.io/legacy-unknown"),
            'spec.signerName: Invalid value: "kubernetes.io/legacy-unknown": the legacy signerName is not '
            "allowed via this API version",
        ),
        (
            lambda b: b["spec"].__setitem__("expirationSeconds", 599),
            "spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 600 seconds "
            "(10 minutes)",
        ),
    ],
)
async def test_create_validation(store: ObjectStore, change: Callable[[Obj], None], expected: str) -> None:
    body = csr("bad", request_pem())
    change(body)
    with pytest.raises(errors.ApiError) as caught:
        await create(store, body)
    assert caught.value.code == 422
    assert any(cause.startswith(expected) for cause in causes(caught.value)), causes(caught.value)


async def test_a_request_whose_signature_does_not_verify_is_invalid(store: ObjectStore) -> None:
    der = bytearray(x509.load_pem_x509_csr(request_pem()).public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01
    forged = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM)
    with pytest.raises(errors.ApiError) as caught:
        await create(store, csr("forged", forged))
    [cause] = causes(caught.value)
    assert cause.startswith("spec.request: Invalid value: []byte{0x2d, 0x2d") and cause.endswith(
        "does not verify"
    )


async def test_a_good_request_for_any_qualified_signer_is_accepted(store: ObjectStore) -> None:
    body = csr("mine", request_pem(cn="jane"), signer="example.com/my-signer", usages=["client auth"])
    body["spec"]["expirationSeconds"] = 600
    created = await create(store, body)
    assert created["spec"]["signerName"] == "example.com/my-signer"


# -- the approval and status subresources ---------------------------------------------------------


async def test_approval_changes_only_the_conditions_and_user_metadata(store: ObjectStore) -> None:
    await create(store, csr("appr", request_pem()))

    def change(current: Obj) -> Obj:
        current["metadata"]["labels"] = {"sneaky": "yes"}
        current["spec"]["username"] = "system:admin"
        current["spec"]["usages"] = ["server auth"]
        current["status"] = {
            "certificate": base64.b64encode(b"not a certificate").decode(),
            "conditions": [{"type": "Approved", "status": "True", "reason": "R", "message": "M"}],
        }
        return current

    approved = await store.guaranteed_update(
        resource(store), "", "appr", change, WriteOptions(user=ADMIN), "approval"
    )
    stored = await get(store, "appr")
    for obj in (approved, stored):
        assert obj["metadata"]["labels"] == {"sneaky": "yes"}  # metadata goes through, as upstream
        assert obj["spec"]["username"] == BOOTSTRAP.name
        assert obj["spec"]["usages"] == CLIENT_USAGES
        assert "certificate" not in obj["status"]
        found = condition(obj, "Approved")
        assert (found["reason"], found["message"]) == ("R", "M")
        assert found["lastUpdateTime"] and found["lastTransitionTime"]


async def test_approved_and_denied_together_are_invalid(store: ObjectStore) -> None:
    await create(store, csr("both", request_pem()))
    await decide(store, "both", "Approved")
    with pytest.raises(errors.ApiError) as caught:
        await decide(store, "both", "Denied")
    assert caught.value.code == 422
    assert (
        'status.conditions[1].type: Invalid value: "Denied": '
        "Approved and Denied conditions are mutually exclusive" in causes(caught.value)
    )
    assert [c["type"] for c in (await get(store, "both"))["status"]["conditions"]] == ["Approved"]


async def test_approval_is_given_once_and_never_taken_back(store: ObjectStore) -> None:
    await create(store, csr("once", request_pem()))
    await decide(store, "once", "Denied")
    with pytest.raises(errors.ApiError) as caught:
        await decide(store, "once", "Denied")
    assert 'status.conditions[1].type: Duplicate value: "Denied"' in causes(caught.value)

    def remove(current: Obj) -> Obj:
        current["status"]["conditions"] = []
        return current

    with pytest.raises(errors.ApiError) as caught:
        await store.guaranteed_update(
            resource(store), "", "once", remove, WriteOptions(user=ADMIN), "approval"
        )
    assert 'status.conditions: Forbidden: updates may not remove a condition of type "Denied"' in causes(
        caught.value
    )


async def test_only_true_is_a_decision(store: ObjectStore) -> None:
    await create(store, csr("maybe", request_pem()))
    with pytest.raises(errors.ApiError) as caught:
        await store.guaranteed_update(
            resource(store),
            "",
            "maybe",
            set_conditions({"type": "Approved", "status": "False"}),
            WriteOptions(user=ADMIN),
            "approval",
        )
    assert 'status.conditions[0].status: Unsupported value: "False": supported values: "True"' in causes(
        caught.value
    )


async def test_status_cannot_approve_and_keeps_the_decision(store: ObjectStore) -> None:
    await create(store, csr("st", request_pem()))
    with pytest.raises(errors.ApiError) as caught:
        await store.guaranteed_update(
            resource(store),
            "",
            "st",
            set_conditions({"type": "Approved", "status": "True"}),
            WriteOptions(user=ADMIN),
            "status",
        )
    assert 'status.conditions: Forbidden: updates may not add a condition of type "Approved"' in causes(
        caught.value
    )
    await decide(store, "st", "Approved")

    def rewrite(current: Obj) -> Obj:
        current["status"]["conditions"][0]["message"] = "rewritten"
        current["spec"]["signerName"] = KUBE_APISERVER_CLIENT
        return current

    kept = await store.guaranteed_update(
        resource(store), "", "st", rewrite, WriteOptions(user=ADMIN), "status"
    )
    assert condition(kept, "Approved")["message"] == "by hand"
    assert kept["spec"]["signerName"] == KUBELET_CLIENT


# -- the approver -------------------------------------------------------------------------------


async def test_approver_approves_a_node_client_request_from_an_allowed_requester(store: ObjectStore) -> None:
    await create(store, csr("allowed", request_pem()), user=BOOTSTRAP)
    await create(store, csr("denied", request_pem()), user=STRANGER)
    approver = CsrApprover(store, allow((BOOTSTRAP.name, "nodeclient")))
    assert await approver.handle(await get(store, "allowed")) is True
    assert await approver.handle(await get(store, "denied")) is False
    approved = condition(await get(store, "allowed"), "Approved")
    assert (approved["status"], approved["reason"], approved["message"]) == (
        "True",
        AUTO_APPROVED,
        NODE_CLIENT_MESSAGE,
    )
    assert "conditions" not in (await get(store, "denied"))["status"]
    assert await approver.handle(await get(store, "allowed")) is False  # decided already


async def test_a_node_renewing_its_own_certificate_needs_selfnodeclient(store: ObjectStore) -> None:
    await create(store, csr("self", request_pem()), user=NODE1)
    await create(store, csr("other", request_pem(cn="system:node:node2")), user=NODE1)
    approver = CsrApprover(store, allow((NODE1.name, "selfnodeclient")))
    assert await approver.handle(await get(store, "self")) is True
    assert condition(await get(store, "self"), "Approved")["message"] == SELF_NODE_CLIENT_MESSAGE
    assert await approver.handle(await get(store, "other")) is False


async def test_approver_leaves_what_it_does_not_recognize(store: ObjectStore) -> None:
    everyone = allow(*((u.name, s) for u in (BOOTSTRAP, NODE1) for s in ("nodeclient", "selfnodeclient")))
    approver = CsrApprover(store, everyone)
    bodies = {
        "admin-cn": csr("admin-cn", request_pem(cn="system:admin", orgs=("system:masters",))),
        "with-san": csr("with-san", request_pem(sans=[x509.DNSName("node1")])),
        "serving-usages": csr("serving-usages", request_pem(), usages=SERVING_USAGES),
        "other-signer": csr("other-signer", request_pem(), signer=KUBE_APISERVER_CLIENT),
    }
    for body in bodies.values():
        await create(store, body)
    for name in bodies:
        assert await approver.handle(await get(store, name)) is False, name


async def test_a_node_serving_request_is_approved_for_its_own_node_only(store: ObjectStore) -> None:
    sans = [x509.DNSName("node1"), x509.IPAddress(ipaddress.ip_address("10.0.0.5"))]
    await create(store, csr("serve", request_pem(sans=sans), KUBELET_SERVING, SERVING_USAGES), user=NODE1)
    foreign = request_pem(cn="system:node:node2", sans=sans)
    await create(store, csr("serve-other", foreign, KUBELET_SERVING, SERVING_USAGES), user=NODE1)
    await create(
        store, csr("serve-boot", request_pem(sans=sans), KUBELET_SERVING, SERVING_USAGES), user=BOOTSTRAP
    )
    approver = CsrApprover(store, allow())
    assert await approver.handle(await get(store, "serve")) is True
    assert condition(await get(store, "serve"), "Approved")["message"] == NODE_SERVING_MESSAGE
    assert await approver.handle(await get(store, "serve-other")) is False
    assert await approver.handle(await get(store, "serve-boot")) is False


async def test_approver_with_rbac_and_the_default_nodeclient_role(store: ObjectStore) -> None:
    await bootstrap(store, 6443)  # the system namespaces the policy's roles live in
    await ensure_policy(store)
    rbac = await follow_rbac(store)
    try:
        bindings = store.registry.lookup("rbac.authorization.k8s.io", "v1", "clusterrolebindings")
        assert bindings is not None
        binding = {
            "metadata": {"name": "test-bootstrappers-nodeclient"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            },
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:bootstrappers"}
            ],
        }
        await store.create(bindings, "", binding, WriteOptions())
        probe = Attributes(
            BOOTSTRAP,
            "create",
            True,
            api_group="certificates.k8s.io",
            resource="certificatesigningrequests",
            subresource="nodeclient",
        )

        async def bound() -> bool:
            return rbac.authorize(probe).allowed

        await until(bound)  # the RBAC cache follows the store
        await create(store, csr("rbac-yes", request_pem()), user=BOOTSTRAP)
        await create(store, csr("rbac-no", request_pem()), user=STRANGER)
        approver = CsrApprover(store, rbac.authorize)
        assert await approver.handle(await get(store, "rbac-yes")) is True
        assert await approver.handle(await get(store, "rbac-no")) is False
    finally:
        await rbac.close()


# -- the signer ---------------------------------------------------------------------------------


async def test_signer_issues_a_node_client_certificate_from_the_client_ca(
    store: ObjectStore, pki: Pki
) -> None:
    await create(store, csr("sign-me", request_pem()))
    signer = CsrSigner(store, pki)
    assert await signer.handle(await get(store, "sign-me")) == ""  # not approved yet
    await decide(store, "sign-me")
    assert await signer.handle(await get(store, "sign-me")) == "issued"
    stored = await get(store, "sign-me")
    cert = issued(stored)
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(pki.client_ca.cert_pem))
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "system:node:node1"
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == [
        "system:nodes"
    ]
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == timedelta(days=365)
    assert "Failed" not in [c["type"] for c in stored["status"]["conditions"]]
    assert await signer.handle(stored) == ""  # issued once


async def test_signer_honours_expiration_seconds_and_signs_serving_with_the_server_ca(
    store: ObjectStore, pki: Pki
) -> None:
    body = csr("serving", request_pem(sans=[x509.DNSName("node1")]), KUBELET_SERVING, SERVING_USAGES)
    body["spec"]["expirationSeconds"] = 3600
    await create(store, body, user=NODE1)
    await decide(store, "serving")
    assert await CsrSigner(store, pki).handle(await get(store, "serving")) == "issued"
    cert = issued(await get(store, "serving"))
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(pki.server_ca.cert_pem))
    # Short-lived: backdated 5 minutes at the start only, as upstream.
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == timedelta(hours=1, minutes=5)


async def test_a_request_the_signer_refuses_gets_failed(store: ObjectStore, pki: Pki) -> None:
    await create(store, csr("bad-san", request_pem(sans=[x509.DNSName("evil.example")])))
    await decide(store, "bad-san")
    assert await CsrSigner(store, pki).handle(await get(store, "bad-san")) == "failed"
    stored = await get(store, "bad-san")
    failed = condition(stored, "Failed")
    assert (failed["status"], failed["reason"], failed["message"]) == (
        "True",
        SIGNER_VALIDATION_FAILURE,
        "DNS subjectAltNames are not allowed",
    )
    assert "certificate" not in stored["status"]
    assert await CsrSigner(store, pki).handle(stored) == ""  # failed is final


async def test_signer_leaves_other_signers_and_denied_requests(store: ObjectStore, pki: Pki) -> None:
    await create(store, csr("theirs", request_pem(cn="jane"), "example.com/theirs", ["client auth"]))
    await decide(store, "theirs")
    await create(store, csr("denied", request_pem()))
    await decide(store, "denied", "Denied")
    signer = CsrSigner(store, pki)
    for name in ("theirs", "denied"):
        assert await signer.handle(await get(store, name)) == ""
        assert "certificate" not in (await get(store, name))["status"]


async def test_an_issued_certificate_cannot_be_replaced(store: ObjectStore, pki: Pki) -> None:
    await create(store, csr("fixed", request_pem(cn="jane"), KUBE_APISERVER_CLIENT, ["client auth"]))
    await decide(store, "fixed")
    assert await CsrSigner(store, pki).handle(await get(store, "fixed")) == "issued"

    def replace(current: Obj) -> Obj:
        current["status"]["certificate"] = base64.b64encode(pki.admin.cert_pem).decode()
        return current

    with pytest.raises(errors.ApiError) as caught:
        await store.guaranteed_update(
            resource(store), "", "fixed", replace, WriteOptions(user=ADMIN), "status"
        )
    assert "status.certificate: Forbidden: updates may not modify existing certificate content" in causes(
        caught.value
    )


# -- both as tasks, from a bootstrap request to a certificate ---------------------------------------


async def test_approver_and_signer_tasks_take_a_join_request_to_a_certificate(
    store: ObjectStore, pki: Pki
) -> None:
    tasks = [
        asyncio.create_task(CsrApprover(store, allow((BOOTSTRAP.name, "nodeclient"))).run()),
        asyncio.create_task(CsrSigner(store, pki).run()),
    ]
    try:
        await create(store, csr("join", request_pem()), user=BOOTSTRAP)
        await create(store, csr("stranger", request_pem()), user=STRANGER)

        async def issued_yet() -> bool:
            return "certificate" in (await get(store, "join"))["status"]

        await until(issued_yet)
        joined = await get(store, "join")
        assert condition(joined, "Approved")["reason"] == AUTO_APPROVED
        assert issued(joined).subject.rfc4514_string() == "CN=system:node:node1,O=system:nodes"
        stranger = await get(store, "stranger")
        assert not stranger["status"].get("conditions") and "certificate" not in stranger["status"]
    finally:
        for task in tasks:
            task.cancel()
        done = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(result, asyncio.CancelledError) for result in done)


# -- over HTTP: routing, discovery and kubectl's approval update --------------------------------


@pytest.fixture
async def client(store: ObjectStore) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    def certificate_user(request: web.Request) -> User | None:
        name = request.headers.get("X-Test-User")
        return None if name is None else User(name, ("system:masters",))

    security = Security(certificate_user, lambda attrs: Decision(True))
    async with TestClient(TestServer(build_app(store, security=security))) as test_client:
        yield test_client


async def test_the_approval_subresource_over_http(
    store: ObjectStore, client: TestClient[web.Request, web.Application]
) -> None:
    headers = {"X-Test-User": "system:admin"}
    path = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
    body = csr("http", request_pem())
    response = await client.post(path, json=body, headers={"X-Test-User": "system:bootstrap:abcdef"})
    assert response.status == 201, await response.text()
    assert (await response.json())["spec"]["username"] == "system:bootstrap:abcdef"

    response = await client.get(f"{path}/http/approval", headers=headers)
    assert response.status == 200
    current = await response.json()
    current["status"]["conditions"] = [
        {
            "type": "Approved",
            "status": "True",
            "reason": "KubectlApprove",
            "message": "This CSR was approved by kubectl certificate approve.",
        }
    ]
    response = await client.put(f"{path}/http/approval", json=current, headers=headers)
    assert response.status == 200, await response.text()
    assert condition(await response.json(), "Approved")["reason"] == "KubectlApprove"

    patch = [{"op": "add", "path": "/status/conditions/-", "value": {"type": "Denied", "status": "True"}}]
    response = await client.patch(
        f"{path}/http/approval",
        json=patch,
        headers={**headers, "Content-Type": "application/json-patch+json"},
    )
    assert response.status == 422
    assert "Approved and Denied conditions are mutually exclusive" in (await response.json())["message"]

    response = await client.get("/apis/certificates.k8s.io/v1", headers=headers)
    names = {r["name"]: r for r in (await response.json())["resources"]}
    assert names["certificatesigningrequests/approval"]["verbs"] == ["get", "patch", "update"]
    assert names["certificatesigningrequests/status"]["verbs"] == ["get", "patch", "update"]
    listed = await store.list(resource(store), "", ListOptions())
    assert [item["metadata"]["name"] for item in listed["items"]] == ["http"]
