"""Admission webhooks' ``matchConditions`` on real writes: the object store over real SQLite
with :class:`WebhookAdmission` in its admission chain, a real HTTPS webhook on 127.0.0.1 that
records what it is sent, and configurations followed through the store's watch.

A condition that is false keeps the webhook from being called; one that fails refuses the
write under ``failurePolicy: Fail`` (upstream's 403, before any webhook is called) and skips
the webhook under ``Ignore``; on DELETE ``object`` is null.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from k3py.api.resources import Registry, Resource, from_manifest, selection
from k3py.apiserver import errors
from k3py.apiserver.authn import User
from k3py.apiserver.authz import Attributes, Chain, Decision
from k3py.apiserver.generic import DeleteOptions, ObjectStore, WriteOptions
from k3py.apiserver.webhooks import WebhookAdmission
from k3py.storage.model import Backend
from tests.integration.api_support import webhook_admission
from tests.integration.tls_support import serving, serving_tls

Obj = dict[str, Any]
NS = "team"
GROUP = "admissionregistration.k8s.io"
AS_ALICE = WriteOptions(user=User("alice", ("system:authenticated",), uid="alice-uid"))
AS_BOB = WriteOptions(user=User("bob", ("system:authenticated", "auditors")))


def _auditors(attrs: Attributes) -> Decision:
    """In RBAC's place: the ``auditors`` group may list secrets."""
    return Decision("auditors" in attrs.user.groups and (attrs.verb, attrs.resource) == ("list", "secrets"))


@dataclass
class Webhook:
    """HTTPS on 127.0.0.1, allowing everything and recording the name of each object sent."""

    ca_pem: bytes
    port: int = 0
    seen: list[tuple[str, str]] = field(default_factory=list)

    def config(self) -> Obj:
        return {"url": f"https://127.0.0.1:{self.port}/", "caBundle": base64.b64encode(self.ca_pem).decode()}

    async def handle(self, request: web.Request) -> web.Response:
        review = await request.json()
        req = review["request"]
        self.seen.append((req["operation"], req["name"]))
        answer = {"uid": req["uid"], "allowed": True}
        return web.json_response(
            {"apiVersion": review["apiVersion"], "kind": "AdmissionReview", "response": answer}
        )


@pytest.fixture
async def webhook(tmp_path: Path) -> AsyncIterator[Webhook]:
    tls = serving_tls(tmp_path, "match-conditions-ca", "localhost")
    server = Webhook(tls.ca_pem)
    app = web.Application()
    app.router.add_post("/", server.handle)
    async with serving(app, tls.context) as port:
        server.port = port
        yield server


@pytest.fixture
async def admission(backend: Backend) -> AsyncIterator[WebhookAdmission]:
    store = ObjectStore(backend, Registry(from_manifest(selection())), ipaddress.ip_network("10.43.0.0/16"))
    async with webhook_admission(store, Chain([_auditors])) as webhooks:
        await store.create(res(store, "namespaces"), "", {"metadata": {"name": NS}}, AS_ALICE)
        yield webhooks


def res(store: ObjectStore, plural: str, group: str = "") -> Resource:
    found = store.registry.lookup(group, "v1", plural)
    assert found is not None
    return found


async def configure(
    admission: WebhookAdmission, webhook: Webhook, failure_policy: str, *conditions: str
) -> None:
    """One validating configuration whose single webhook takes configmaps, with ``conditions``."""
    hook = {
        "name": "conditions.example.com",
        "clientConfig": webhook.config(),
        "rules": [
            {
                "operations": ["CREATE", "UPDATE", "DELETE"],
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "resources": ["configmaps"],
            }
        ],
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "failurePolicy": failure_policy,
        "matchConditions": [{"name": f"c{i}", "expression": e} for i, e in enumerate(conditions)],
    }
    body = {"metadata": {"name": "conditions"}, "webhooks": [hook]}
    configurations = res(admission.store, "validatingwebhookconfigurations", GROUP)
    await admission.store.create(configurations, "", body, WriteOptions())
    deadline = time.monotonic() + 10
    while not admission.hooks(mutating=False):
        assert time.monotonic() < deadline, "the configuration was not followed within 10s"
        await asyncio.sleep(0.05)


async def create_cm(
    admission: WebhookAdmission, name: str, as_user: WriteOptions = AS_ALICE, **data: str
) -> Obj:
    body = {"metadata": {"name": name}, "data": data}
    return await admission.store.create(res(admission.store, "configmaps"), NS, body, as_user)


async def test_a_false_condition_skips_the_webhook(admission: WebhookAdmission, webhook: Webhook) -> None:
    await configure(
        admission, webhook, "Fail", "object.metadata.name != 'skip-me'", "request.operation == 'CREATE'"
    )
    await create_cm(admission, "skip-me")
    await create_cm(admission, "called")
    assert webhook.seen == [("CREATE", "called")]
    configmaps = res(admission.store, "configmaps")
    updated = await admission.store.get(configmaps, NS, "called")
    updated["data"] = {"a": "b"}
    await admission.store.update(configmaps, NS, "called", updated, AS_ALICE)  # not a CREATE
    assert webhook.seen == [("CREATE", "called")]


async def test_a_failing_condition_refuses_under_fail(admission: WebhookAdmission, webhook: Webhook) -> None:
    await configure(admission, webhook, "Fail", "object.data.wanted == 'yes'")
    await create_cm(admission, "wanted", wanted="yes")
    with pytest.raises(errors.ApiError) as refused:
        await create_cm(admission, "unwanted")  # no data: no such key
    assert (refused.value.code, refused.value.reason) == (403, "Forbidden")
    assert refused.value.message.startswith(
        "configmaps \"unwanted\" is forbidden: expression 'object.data.wanted == 'yes'' resulted in error: "
    )
    assert webhook.seen == [("CREATE", "wanted")]
    assert await admission.store.find(res(admission.store, "configmaps"), NS, "unwanted") is None


async def test_a_failing_condition_skips_the_webhook_under_ignore(
    admission: WebhookAdmission, webhook: Webhook
) -> None:
    await configure(admission, webhook, "Ignore", "object.data.wanted == 'yes'")
    await create_cm(admission, "unwanted")
    await create_cm(admission, "wanted", wanted="yes")
    assert webhook.seen == [("CREATE", "wanted")]


async def test_object_is_null_on_delete(admission: WebhookAdmission, webhook: Webhook) -> None:
    await configure(admission, webhook, "Fail", "object == null && oldObject.metadata.name == 'doomed'")
    await create_cm(admission, "doomed")
    await create_cm(admission, "kept")
    assert webhook.seen == []
    configmaps = res(admission.store, "configmaps")
    await admission.store.delete(configmaps, NS, "kept", DeleteOptions(user=AS_ALICE.user))
    await admission.store.delete(configmaps, NS, "doomed", DeleteOptions(user=AS_ALICE.user))
    assert webhook.seen == [("DELETE", "doomed")]


async def test_conditions_see_the_request_and_ask_the_authorizer(
    admission: WebhookAdmission, webhook: Webhook
) -> None:
    await configure(
        admission,
        webhook,
        "Fail",
        "request.userInfo.username == 'bob' && request.kind.kind == 'ConfigMap'",
        "authorizer.group('').resource('secrets').namespace(request.namespace).check('list').allowed()",
    )
    await create_cm(admission, "from-alice")
    await create_cm(admission, "from-bob", AS_BOB)
    assert webhook.seen == [("CREATE", "from-bob")]
