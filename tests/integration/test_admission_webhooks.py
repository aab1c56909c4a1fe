"""Admission webhooks called by the object store: a real HTTPS webhook server on 127.0.0.1.

The store runs over real SQLite with :class:`WebhookAdmission` in its admission chain, as the
server wires it; webhook configurations are written through the store and followed by its
watch. The webhook server answers AdmissionReviews with a certificate from a CA the test
makes, reached through a ``url`` client config or through a ``service`` one whose
EndpointSlice the test writes by hand, pointing at 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from k3py.api.resources import Registry, Resource, from_manifest, selection
from k3py.apiserver import errors
from k3py.apiserver.authn import User
from k3py.apiserver.generic import DeleteOptions, ObjectStore, WriteOptions
from k3py.apiserver.webhooks import WebhookAdmission
from k3py.storage.model import Backend
from tests.integration.api_support import webhook_admission
from tests.integration.tls_support import serving, serving_tls

Obj = dict[str, Any]
NS = "team"
GROUP = "admissionregistration.k8s.io"
ALICE = User("alice", ("system:authenticated",), uid="alice-uid")
AS_ALICE = WriteOptions(user=ALICE)
DENIED = "the configmap contains unwanted key and value"


# -- the webhook server ---------------------------------------------------------------------------


@dataclass
class WebhookServer:
    """HTTPS on 127.0.0.1; records every AdmissionReview request per path."""

    ca_pem: bytes
    port: int = 0
    seen: dict[str, list[Obj]] = field(default_factory=dict)

    @property
    def ca_bundle(self) -> str:
        return base64.b64encode(self.ca_pem).decode()

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    def calls(self, path: str) -> list[Obj]:
        return self.seen.get(path, [])

    async def handle(self, request: web.Request) -> web.Response:
        review = await request.json()
        req = review["request"]
        self.seen.setdefault(request.path, []).append(req)
        answer = await ANSWERS[request.path](req)
        answer["uid"] = req["uid"]
        return web.json_response(
            {"apiVersion": review["apiVersion"], "kind": "AdmissionReview", "response": answer}
        )


def _data(req: Obj) -> Obj:
    return dict((req.get("object") or req.get("oldObject") or {}).get("data") or {})


async def _deny_unwanted(req: Obj) -> Obj:
    if _data(req).get("webhook-e2e-test") == "webhook-disallow":
        return {"allowed": False, "status": {"code": 403, "reason": "Forbidden", "message": DENIED}}
    return {"allowed": True}


async def _always_deny(req: Obj) -> Obj:
    return {"allowed": False, "status": {"message": "this webhook denies all requests"}}


async def _allow(req: Obj) -> Obj:
    return {"allowed": True}


async def _slow(req: Obj) -> Obj:
    await asyncio.sleep(3)
    return {"allowed": True}


def _patch(ops: list[Obj]) -> Obj:
    return {"allowed": True, "patchType": "JSONPatch", "patch": base64.b64encode(orjson.dumps(ops)).decode()}


async def _stage(req: Obj, stage: int) -> Obj:
    data = _data(req)
    wanted = "mutation-start" if stage == 1 else "mutation-stage-1"
    if data.get(wanted) != "yes":
        return {"allowed": True}
    return _patch([{"op": "add", "path": f"/data/mutation-stage-{stage}", "value": "yes"}])


async def _stage_1(req: Obj) -> Obj:
    return await _stage(req, 1)


async def _stage_2(req: Obj) -> Obj:
    return await _stage(req, 2)


async def _add_init_container(req: Obj) -> Obj:
    container = {"name": "webhook-added-init-container", "image": "busybox"}
    return _patch([{"op": "add", "path": "/spec/initContainers", "value": [container]}])


async def _add_label(req: Obj) -> Obj:
    return _patch([{"op": "add", "path": "/metadata/labels", "value": {"added-label": "yes"}}])


async def _count_keys(req: Obj) -> Obj:
    """Reinvocation probe: writes how many keys it saw (so a second call changes nothing new)."""
    return _patch(
        [{"op": "add", "path": "/metadata/annotations", "value": {"keys-seen": str(len(_data(req)))}}]
    )


ANSWERS: dict[str, Callable[[Obj], Awaitable[Obj]]] = {
    "/configmaps": _deny_unwanted,
    "/always-deny": _always_deny,
    "/allow": _allow,
    "/slow": _slow,
    "/stage-1": _stage_1,
    "/stage-2": _stage_2,
    "/mutating-pods": _add_init_container,
    "/add-label": _add_label,
    "/count-keys": _count_keys,
}


@pytest.fixture
async def webhook_server(tmp_path: Path) -> AsyncIterator[WebhookServer]:
    tls = serving_tls(tmp_path, "webhook-test-ca", f"webhook.{NS}.svc")
    server = WebhookServer(tls.ca_pem)
    app = web.Application()
    app.router.add_post("/{path:.*}", server.handle)
    async with serving(app, tls.context) as port:
        server.port = port
        yield server


@pytest.fixture
async def admission(backend: Backend) -> AsyncIterator[WebhookAdmission]:
    store = ObjectStore(backend, Registry(from_manifest(selection())), ipaddress.ip_network("10.43.0.0/16"))
    async with webhook_admission(store) as webhooks:
        await store.create(
            res(store, "namespaces"), "", {"metadata": {"name": NS, "labels": {"team": "true"}}}, AS_ALICE
        )
        yield webhooks


# -- helpers --------------------------------------------------------------------------------------


def res(store: ObjectStore, plural: str, group: str = "", version: str = "v1") -> Resource:
    found = store.registry.lookup(group, version, plural)
    assert found is not None
    return found


def webhook(name: str, client_config: Obj, resources: list[str], **fields: Any) -> Obj:
    group = fields.pop("group", "")
    return {
        "name": name,
        "clientConfig": client_config,
        "rules": [
            {
                "operations": fields.pop("operations", ["CREATE", "UPDATE", "DELETE"]),
                "apiGroups": [group],
                "apiVersions": ["*"],
                "resources": resources,
            }
        ],
        "sideEffects": fields.pop("sideEffects", "None"),
        "admissionReviewVersions": ["v1"],
        **fields,
    }


def url_config(server: WebhookServer, path: str) -> Obj:
    return {"url": server.url(path), "caBundle": server.ca_bundle}


async def configure(store: ObjectStore, kind: str, name: str, *webhooks: Obj) -> None:
    plural = f"{kind}webhookconfigurations"
    body = {"metadata": {"name": name}, "webhooks": list(webhooks)}
    await store.create(res(store, plural, GROUP), "", body, WriteOptions())


async def until_true(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {within}s")
        await asyncio.sleep(0.05)


async def until_hooks(webhooks: WebhookAdmission, count: int, *, mutating: bool) -> None:
    async def loaded() -> bool:
        return len(webhooks.hooks(mutating=mutating)) == count

    await until_true(loaded)


async def create_cm(
    store: ObjectStore, name: str, data: Obj, opts: WriteOptions = AS_ALICE, **meta: Any
) -> Obj:
    body = {"metadata": {"name": name, **meta}, "data": data}
    return await store.create(res(store, "configmaps"), NS, body, opts)


async def refusal(write: Awaitable[object]) -> errors.ApiError:
    with pytest.raises(errors.ApiError) as caught:
        await write
    return caught.value


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- validating -----------------------------------------------------------------------------------


async def test_validating_webhook_denies_with_its_message_and_code(
    admission: WebhookAdmission, webhook_server: WebhookServer
) -> None:
    store = admission.store
    await configure(
        store,
        "validating",
        "deny",
        webhook("deny.example.com", url_config(webhook_server, "/configmaps"), ["configmaps"]),
    )
    await until_hooks(admission, 1, mutating=False)

    refused = await refusal(create_cm(store, "bad", {"webhook-e2e-test": "webhook-disallow"}))
    assert (refused.code, refused.reason) == (403, "Forbidden")
    assert refused.message == f'admission webhook "deny.example.com" denied the request: {DENIED}'
    with pytest.raises(errors.ApiError):
        await store.get(res(store, "configmaps"), NS, "bad")

    await create_cm(store, "good", {"admit": "this"})
    refused = await refusal(
        store.update(
            res(store, "configmaps"),
            NS,
            "good",
            {"metadata": {"name": "good"}, "data": {"webhook-e2e-test": "webhook-disallow"}},
            AS_ALICE,
        )
    )
    assert DENIED in refused.message
    create, update = webhook_server.calls("/configmaps")[-2:]
    assert update["operation"] == "UPDATE" and update["oldObject"]["data"] == {"admit": "this"}
    assert update["options"] == {"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1"}
    assert create["operation"] == "CREATE" and create["oldObject"] is None
    assert create["userInfo"] == {"username": "alice", "uid": "alice-uid", "groups": ["system:authenticated"]}
    assert create["kind"] == {"group": "", "version": "v1", "kind": "ConfigMap"}
    assert create["resource"] == {"group": "", "version": "v1", "resource": "configmaps"}
    assert (create["namespace"], create["name"], create["dryRun"]) == (NS, "good", False)


async def test_delete_is_sent_with_the_old_object(
    admission: WebhookAdmission, webhook_server: WebhookServer
) -> None:
    store = admission.store
    await create_cm(store, "keep", {"webhook-e2e-test": "webhook-disallow"})
    await configure(
        store,
        "validating",
        "deny",
        webhook("deny.example.com", url_config(webhook_server, "/configmaps"), ["configmaps"]),
    )
    await until_hooks(admission, 1, mutating=False)
    refused = await refusal(store.delete(res(store, "configmaps"), NS, "keep", DeleteOptions(user=ALICE)))
    assert DENIED in refused.message
    (call,) = webhook_server.calls("/configmaps")
    assert call["operation"] == "DELETE" and call["object"] is None
    assert call["oldObject"]["metadata"]["name"] == "keep"
    assert call["options"]["kind"] == "DeleteOptions"
    await store.get(res(store, "configmaps"), NS, "keep")  # still there


async def test_failure_policy_when_the_webhook_is_down(
    admission: WebhookAdmission, webhook_server: WebhookServer
) -> None:
    store = admission.store
    down = {"url": f"https://127.0.0.1:{closed_port()}/configmaps", "caBundle": webhook_server.ca_bundle}
    await configure(
        store,
        "validating",
        "open",
        webhook("fail-open.example.com", down, ["configmaps"], failurePolicy="Ignore"),
    )
    await until_hooks(admission, 1, mutating=False)
    await create_cm(store, "allowed", {})

    await configure(store, "validating", "closed", webhook("fail-closed.example.com", down, ["configmaps"]))
    await until_hooks(admission, 2, mutating=False)
    refused = await refusal(create_cm(store, "refused", {}))
    assert (refused.code, refused.reason) == (500, "InternalError")
    assert refused.message.startswith(
        'Internal error occurred: failed calling webhook "fail-closed.example.com": '
    )
    assert "connection refused" in refused.message


async def test_certificate_not_from_the_ca_bundle_fails(
    admission: WebhookAdmission, webhook_server: WebhookServer, tmp_path: Path
) -> None:
    store = admission.store
    other_ca = serving_tls(tmp_path, "another-ca").ca_pem
    config = {"url": webhook_server.url("/allow"), "caBundle": base64.b64encode(other_ca).decode()}
    await configure(
        store, "validating", "untrusted", webhook("untrusted.example.com", config, ["configmaps"])
    )
    await until_hooks(admission, 1, mutating=False)
    refused = await refusal(create_cm(store, "x", {}))
    assert refused.code == 500 and "certificate" in refused.message
    assert webhook_server.calls("/allow") == []


async def test_timeout_fails_closed_or_is_ignored(
    admission: WebhookAdmission, webhook_server: WebhookServer
) -> None:
    store = admission.store
    slow = url_config(webhook_server, "/slow")
    await configure(
        store, "validating", "slow", webhook("slow.example.com", slow, ["configmaps"], timeoutSeconds=1)
    )
    await until_hooks(admission, 1, mutating=False)
    started = time.monotonic()
    refused = await refusal(create_cm(store, "late", {}))
    assert time.monotonic() - started < 2.5
    assert refused.code == 500
    assert "context deadline exceeded" in refused.message and "/slow?timeout=1s" in refused.message

    ignore = webhook(
        "slow-ignored.example.com", slow, ["configmaps"], timeoutSeconds=1, failurePolicy="Ignore"
    )
    await store.delete(res(store, "validatingwebhookconfigurations", GROUP), "", "slow", DeleteOptions())
    await configure(store, "validating", "slow-ignored", ignore)
    await until_true(lambda: _names(admission, ["slow-ignored.example.com"]))
    await create_cm(store, "late", {})


async def _names(admission: WebhookAdmission, names: list[str]) -> bool:
    return [h.name for h in admission.hooks(mutating=False)] == names


async def test_namespace_and_object_selectors(
    admission: WebhookAdmission, webhook_server: WebhookServer
) -> None:
    store = admission.store
    deny = url_config(webhook_server, "/always-deny")
    skip = {"matchExpressions": [{"key": "skip-webhook-admission", "operator": "NotIn", "values": ["yes"]}]}
    await configure(
        store,
        "validating",
        "selective",
        webhook(
            "by-namespace.example.com",
            deny,
            ["configmaps"],
            namespaceSelector={"matchLabels": {"team": "true"}, **skip},
        ),
        webhook(
            "by-object.example.com", deny, ["secrets"], objectSelector={"matchLabels": {"guarded": "yes"}}
        ),
    )
    await until_hooks(admission, 2, mutating=False)
    refused = await refusal(create_cm(store, "in-team", {}))
    assert refused.code == 400  # no code in the webhook's status
    assert (
        refused.message
        == 'admission webhook "by-namespace.example.com" denied the request: this webhook denies all requests'
    )

    namespaces = res(store, "namespaces")
    await store.create(
        namespaces,
        "",
        {"metadata": {"name": "exempt", "labels": {"team": "true", "skip-webhook-admission": "yes"}}},
        AS_ALICE,
    )
    await store.create(res(store, "configmaps"), "exempt", {"metadata": {"name": "free"}}, AS_ALICE)

    secrets = res(store, "secrets")
    await store.create(secrets, NS, {"metadata": {"name": "plain"}}, AS_ALICE)
    refused = await refusal(
        store.create(secrets, NS, {"metadata": {"name": "guarded", "labels": {"guarded": "yes"}}}, AS_ALICE)
    )
    assert "by-object.example.com" in refused.message


async def test_dry_run_and_side_effects(admission: WebhookAdmission, webhook_server: WebhookServer) -> None:
    store = admission.store
    allow = url_config(webhook_server, "/allow")
    await configure(
        store,
        "validating",
        "effects",
        webhook("no-effects.example.com", allow, ["configmaps"]),
        webhook("effects.example.com", allow, ["secrets"], sideEffects="Some"),
    )
    await until_hooks(admission, 2, mutating=False)
    dry = WriteOptions(user=ALICE, dry_run=True)
    await create_cm(store, "dry", {}, dry)
    (call,) = webhook_server.calls("/allow")
    assert call["dryRun"] is True and call["options"]["dryRun"] == ["All"]
    with pytest.raises(errors.ApiError):
        await store.get(res(store, "configmaps"), NS, "dry")

    refused = await refusal(store.create(res(store, "secrets"), NS, {"metadata": {"name": "s"}}, dry))
    assert (refused.code, refused.message) == (
        400,
        'admission webhook "effects.example.com" does not support dry run',
    )
    await store.create(
        res(store, "secrets"), NS, {"metadata": {"name": "s"}}, AS_ALICE
    )  # not dry-run: called
    assert len(webhook_server.calls("/allow")) == 2


async def test_api_server_writes_are_not_sent(
    admission: WebhookAdmission, webhook_server: WebhookServer
) -> None:
    store = admission.store
    await configure(
        store,
        "validating",
        "deny",
        webhook("deny.example.com", url_config(webhook_server, "/always-deny"), ["configmaps"]),
    )
    await until_hooks(admission, 1, mutating=False)
    await create_cm(store, "internal", {}, WriteOptions())
    assert webhook_server.calls("/always-deny") == []


# -- mutating -------------------------------------------------------------------------------------


async def test_mutating_webhooks_patch_in_order_and_the_result_is_stored(
    admission: WebhookAdmission, webhook_server: WebhookServer
) -> None:
    store = admission.store
    await configure(
        store,
        "mutating",
        "stages",
        webhook("stage-1.example.com", url_config(webhook_server, "/stage-1"), ["configmaps"]),
        webhook("stage-2.example.com", url_config(webhook_server, "/stage-2"), ["configmaps"]),
    )
    await configure(
        store,
        "validating",
        "deny",
        webhook("deny.example.com", url_config(webhook_server, "/configmaps"), ["configmaps"]),
    )
    await until_hooks(admission, 2, mutating=True)
    await until_hooks(admission, 1, mutating=False)
    created = await create_cm(store, "to-be-mutated", {"mutation-start": "yes"})
    expected = {"mutation-start": "yes", "mutation-stage-1": "yes", "mutation-stage-2": "yes"}
    assert created["data"] == expected
    stored = await store.get(res(store, "configmaps"), NS, "to-be-mutated")
    assert stored["data"] == expected
    (validated,) = webhook_server.calls("/configmaps")  # validating webhooks see the mutated object
    assert validated["object"]["data"] == expected


async def test_mutated_pod_is_defaulted(admission: WebhookAdmission, webhook_server: WebhookServer) -> None:
    store = admission.store
    await configure(
        store,
        "mutating",
        "pods",
        webhook("init.example.com", url_config(webhook_server, "/mutating-pods"), ["pods"]),
    )
    await until_hooks(admission, 1, mutating=True)
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "app", "image": "busybox"}]}}
    created = await store.create(res(store, "pods"), NS, pod, AS_ALICE)
    (init,) = created["spec"]["initContainers"]
    assert init["name"] == "webhook-added-init-container"
    assert init["terminationMessagePolicy"] == "File"


async def test_reinvocation_if_needed(admission: WebhookAdmission, webhook_server: WebhookServer) -> None:
    store = admission.store
    count = url_config(webhook_server, "/count-keys")
    await configure(
        store,
        "mutating",
        "a",
        webhook("count.example.com", count, ["configmaps"], reinvocationPolicy="IfNeeded"),
    )
    await configure(
        store,
        "mutating",
        "b",
        webhook("stage-1.example.com", url_config(webhook_server, "/stage-1"), ["configmaps"]),
    )
    await until_hooks(admission, 2, mutating=True)
    created = await create_cm(store, "again", {"mutation-start": "yes"})
    assert len(webhook_server.calls("/count-keys")) == 2
    assert created["metadata"]["annotations"] == {"keys-seen": "2"}

    await create_cm(store, "once", {})  # stage 1 changes nothing: no second call
    assert len(webhook_server.calls("/count-keys")) == 3


async def test_webhook_configurations_are_never_sent(
    admission: WebhookAdmission, webhook_server: WebhookServer
) -> None:
    store = admission.store
    kinds = ["validatingwebhookconfigurations", "mutatingwebhookconfigurations"]
    deny = webhook(
        "deny-deletions.example.com", url_config(webhook_server, "/always-deny"), kinds, group=GROUP
    )
    label = webhook("add-label.example.com", url_config(webhook_server, "/add-label"), kinds, group=GROUP)
    await configure(store, "validating", "blocking", deny)
    await configure(store, "mutating", "blocking", label)
    await until_hooks(admission, 1, mutating=False)
    await until_hooks(admission, 1, mutating=True)

    vwc = res(store, "validatingwebhookconfigurations", GROUP)
    dummy = {
        "metadata": {"name": "dummy"},
        "webhooks": [webhook("dummy.example.com", url_config(webhook_server, "/allow"), ["invalid"])],
    }
    created = await store.create(vwc, "", dummy, AS_ALICE)
    assert "labels" not in created["metadata"]
    await store.delete(vwc, "", "dummy", DeleteOptions(user=ALICE))
    await store.delete(vwc, "", "blocking", DeleteOptions(user=ALICE))
    assert webhook_server.calls("/always-deny") == [] and webhook_server.calls("/add-label") == []


# -- service client config ------------------------------------------------------------------------


async def expose(store: ObjectStore, name: str, port: int) -> None:
    """A Service ``name`` (port 8443 named https) whose EndpointSlice, written by hand, has a
    not-ready address first and then 127.0.0.1:``port``."""
    service = {
        "metadata": {"name": name},
        "spec": {"ports": [{"name": "https", "port": 8443, "targetPort": 8444}]},
    }
    await store.create(res(store, "services"), NS, service, WriteOptions())
    endpoint_slice = {
        "metadata": {"name": f"{name}-abc", "labels": {"kubernetes.io/service-name": name}},
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": ["127.0.0.2"], "conditions": {"ready": False}},
            {"addresses": ["127.0.0.1"], "conditions": {"ready": True}},
        ],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    }
    await store.create(res(store, "endpointslices", "discovery.k8s.io"), NS, endpoint_slice, WriteOptions())


async def test_service_reference_resolved_through_endpointslices(
    admission: WebhookAdmission, webhook_server: WebhookServer
) -> None:
    store = admission.store
    await expose(store, "webhook", webhook_server.port)
    config = {
        "service": {"namespace": NS, "name": "webhook", "port": 8443, "path": "/configmaps"},
        "caBundle": webhook_server.ca_bundle,
    }
    await configure(store, "validating", "by-service", webhook("service.example.com", config, ["configmaps"]))
    await until_hooks(admission, 1, mutating=False)
    refused = await refusal(create_cm(store, "bad", {"webhook-e2e-test": "webhook-disallow"}))
    assert refused.message == f'admission webhook "service.example.com" denied the request: {DENIED}'
    await create_cm(store, "good", {})
    assert len(webhook_server.calls("/configmaps")) == 2

    missing = {
        "service": {"namespace": NS, "name": "nowhere", "path": "/allow"},
        "caBundle": webhook_server.ca_bundle,
    }
    await configure(store, "validating", "missing", webhook("missing.example.com", missing, ["secrets"]))
    await until_hooks(admission, 2, mutating=False)
    refused = await refusal(store.create(res(store, "secrets"), NS, {"metadata": {"name": "s"}}, AS_ALICE))
    assert refused.code == 500 and 'service "nowhere" not found' in refused.message


async def test_service_certificate_must_name_the_service(
    admission: WebhookAdmission, webhook_server: WebhookServer
) -> None:
    """The same server behind another Service: its certificate names webhook.team.svc (and
    127.0.0.1, the address dialled), not impostor.team.svc, so the call fails."""
    store = admission.store
    await expose(store, "impostor", webhook_server.port)
    config = {
        "service": {"namespace": NS, "name": "impostor", "port": 8443, "path": "/allow"},
        "caBundle": webhook_server.ca_bundle,
    }
    await configure(store, "validating", "impostor", webhook("impostor.example.com", config, ["configmaps"]))
    await until_hooks(admission, 1, mutating=False)
    refused = await refusal(create_cm(store, "x", {}))
    assert refused.code == 500 and "certificate" in refused.message
    assert 'Post "https://impostor.team.svc:8443/allow?timeout=10s"' in refused.message
    assert webhook_server.calls("/allow") == []


# -- CONNECT ----------------------------------------------------------------------------------------


async def test_connect_to_pods_attach(admission: WebhookAdmission, webhook_server: WebhookServer) -> None:
    store = admission.store
    deny = url_config(webhook_server, "/always-deny")
    attach = webhook("deny-attach.example.com", deny, ["pods/attach"], operations=["CONNECT"])
    await configure(store, "validating", "attach", attach)
    await until_hooks(admission, 1, mutating=False)
    pods = res(store, "pods")
    query = [("stdin", "true"), ("stdout", "true"), ("container", "container1")]
    refused = await refusal(admission.connect(pods, NS, "to-be-attached", "attach", query, ALICE))
    assert 'admission webhook "deny-attach.example.com" denied the request' in refused.message
    (call,) = webhook_server.calls("/always-deny")
    assert (call["operation"], call["subResource"], call["name"]) == ("CONNECT", "attach", "to-be-attached")
    expected = {
        "kind": "PodAttachOptions",
        "apiVersion": "v1",
        "stdin": True,
        "stdout": True,
        "container": "container1",
    }
    assert call["object"] == expected and call["options"] == expected
    await admission.connect(
        pods, NS, "to-be-attached", "exec", [("command", "ls")], ALICE
    )  # no rule for exec
    assert len(webhook_server.calls("/always-deny")) == 1
