"""Admission policies enforced on writes: the object store in process over real SQLite, and a
real ``k3py server`` driven through its API as the upstream conformance tests drive one.

In process, the store runs with :class:`MutatingPolicyAdmission` and
:class:`ValidatingPolicyAdmission` in its admission chain, as the server wires them; policies and
bindings are written through the store and followed by its watch. Against the server, a policy
and binding like the conformance tests' deny or change a Deployment, and the server's type
checker fills in ``status.typeChecking``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import ipaddress
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from k3py.api.resources import Registry, Resource, from_manifest, selection
from k3py.apiserver import errors
from k3py.apiserver.admission_policy_mutating import MutatingPolicyAdmission
from k3py.apiserver.admission_policy_typecheck import PolicyTypeChecker
from k3py.apiserver.admission_policy_validating import ValidatingPolicyAdmission
from k3py.apiserver.authn import User
from k3py.apiserver.authz import Attributes, Chain, Decision, privileged_groups
from k3py.apiserver.generic import DeleteOptions, ObjectStore, WriteOptions
from k3py.client.rest import ApiStatusError, RestClient
from k3py.storage.model import Backend
from tests.integration.api_support import until

Obj = dict[str, Any]
GROUP = "admissionregistration.k8s.io"
NS = "team"
OTHER_NS = "elsewhere"
AS_ALICE = WriteOptions(user=User("alice", ("system:authenticated",), uid="alice-uid"))
AS_CAROL = WriteOptions(user=User("carol", ("system:authenticated", "deleters")))
AS_ADMIN = WriteOptions(user=User("admin", ("system:masters", "system:authenticated")))


def _deleters(attrs: Attributes) -> Decision:
    """Below the chain, in RBAC's place: the ``deleters`` group may delete deployments."""
    return Decision(
        "deleters" in attrs.user.groups and (attrs.verb, attrs.resource) == ("delete", "deployments")
    )


AUTHORIZE = Chain([privileged_groups, _deleters])


# -- objects ---------------------------------------------------------------------------------------


def deployment(name: str, replicas: int, **labels: str) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": "nginx", **labels}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx:latest"}]},
            },
        },
    }


def replica_set(name: str, replicas: int) -> Obj:
    obj = deployment(name, replicas)
    obj.update(apiVersion="apps/v1", kind="ReplicaSet")
    return obj


def rule(operations: tuple[str, ...] = ("CREATE", "UPDATE")) -> Obj:
    return {
        "operations": list(operations),
        "apiGroups": ["apps"],
        "apiVersions": ["v1"],
        "resources": ["deployments"],
    }


def validating_policy(name: str, label: str, *validations: Obj, **spec: Any) -> Obj:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "matchConstraints": {
                "namespaceSelector": {"matchLabels": {label: "true"}},
                "resourceRules": [rule()],
            },
            "validations": list(validations),
            **spec,
        },
    }


def mutating_policy(name: str, label: str, *mutations: Obj, **spec: Any) -> Obj:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "MutatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "reinvocationPolicy": "Never",
            "matchConstraints": {
                "namespaceSelector": {"matchLabels": {label: "true"}},
                "resourceRules": [rule()],
            },
            "mutations": list(mutations),
            **spec,
        },
    }


def binding(kind: str, name: str, label: str, policy: str, **spec: Any) -> Obj:
    body: Obj = {
        "policyName": policy,
        "matchResources": {"namespaceSelector": {"matchLabels": {label: "true"}}},
        **spec,
    }
    if kind == "ValidatingAdmissionPolicyBinding":
        body.setdefault("validationActions", ["Deny"])
    return {"apiVersion": f"{GROUP}/v1", "kind": kind, "metadata": {"name": name}, "spec": body}


def apply_configuration(expression: str) -> Obj:
    return {"patchType": "ApplyConfiguration", "applyConfiguration": {"expression": expression}}


REPLICAS_OVER_ONE = {
    "expression": "object.spec.replicas > 1",
    "messageExpression": "'wants replicas > 1, got ' + object.spec.replicas",
}


# -- in process ------------------------------------------------------------------------------------


@dataclass
class Admission:
    store: ObjectStore
    validating: ValidatingPolicyAdmission
    mutating: MutatingPolicyAdmission

    def res(self, plural: str, group: str = "", version: str = "v1") -> Resource:
        found = self.store.registry.lookup(group, version, plural)
        assert found is not None
        return found

    async def write(self, plural: str, obj: Obj, namespace: str = "", group: str = GROUP) -> Obj:
        return await self.store.create(self.res(plural, group), namespace, copy.deepcopy(obj), WriteOptions())

    async def policies(self, validating: int = 0, mutating: int = 0) -> None:
        """Wait until the caches show that many bound policies of each kind."""
        await until(
            lambda: _true(
                len(self.validating.source.hooks()) == validating
                and len(self.mutating.source.hooks()) == mutating
            ),
            within=5,
        )

    async def create_deployment(self, obj: Obj, namespace: str = NS, opts: WriteOptions = AS_ALICE) -> Obj:
        return await self.store.create(self.res("deployments", "apps"), namespace, copy.deepcopy(obj), opts)


async def _true(value: bool) -> bool:
    return value


@pytest.fixture
async def admission(backend: Backend) -> AsyncIterator[Admission]:
    store = ObjectStore(backend, Registry(from_manifest(selection())), ipaddress.ip_network("10.43.0.0/16"))
    validating = ValidatingPolicyAdmission(store, AUTHORIZE)
    mutating = MutatingPolicyAdmission(store, AUTHORIZE)
    await validating.start()
    await mutating.start()
    store.admission += [mutating, mutating.reinvocation, validating]
    namespaces = store.registry.lookup("", "v1", "namespaces")
    assert namespaces is not None
    for name, labels in ((NS, {"policies": "true"}), (OTHER_NS, {})):
        await store.create(namespaces, "", {"metadata": {"name": name, "labels": labels}}, WriteOptions())
    try:
        yield Admission(store, validating, mutating)
    finally:
        await mutating.close()
        await validating.close()


async def test_a_validation_denies_with_upstreams_status(admission: Admission) -> None:
    await admission.write(
        "validatingadmissionpolicies", validating_policy("p", "policies", REPLICAS_OVER_ONE)
    )
    await admission.write(
        "validatingadmissionpolicybindings", binding("ValidatingAdmissionPolicyBinding", "b", "policies", "p")
    )
    await admission.policies(validating=1)
    with pytest.raises(errors.ApiError) as refused:
        await admission.create_deployment(deployment("marker", 1))
    assert (refused.value.code, refused.value.reason) == (422, "Invalid")
    expected = (
        "ValidatingAdmissionPolicy 'p' with binding 'b' denied request: "
        "failed expression: object.spec.replicas > 1"
    )
    assert refused.value.message == f'deployments.apps "marker" is forbidden: {expected}'
    assert refused.value.details["causes"] == [{"message": expected}]
    assert (await admission.create_deployment(deployment("replicated", 2)))["spec"]["replicas"] == 2
    await admission.store.create(admission.res("replicasets", "apps"), NS, replica_set("rs", 1), AS_ALICE)
    await admission.create_deployment(deployment("marker", 1), OTHER_NS)  # namespace not selected
    await admission.store.create(  # the API server's own writes are not checked
        admission.res("deployments", "apps"), NS, deployment("own", 1), WriteOptions()
    )


async def test_params_reason_and_validation_actions(admission: Admission) -> None:
    limit = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "limits"}, "data": {"max": "3"}}
    await admission.write("configmaps", limit, NS, group="")
    checked = {
        "expression": "object.spec.replicas <= int(params.data.max)",
        "messageExpression": "'at most ' + params.data.max + ' replicas'",
        "reason": "Forbidden",
    }
    policy = validating_policy(
        "limits", "policies", checked, paramKind={"apiVersion": "v1", "kind": "ConfigMap"}
    )
    await admission.write("validatingadmissionpolicies", policy)
    await admission.write(
        "validatingadmissionpolicybindings",
        binding(
            "ValidatingAdmissionPolicyBinding",
            "limits",
            "policies",
            "limits",
            paramRef={"name": "limits", "parameterNotFoundAction": "Deny"},
        ),
    )
    await admission.write(
        "validatingadmissionpolicybindings",
        binding(
            "ValidatingAdmissionPolicyBinding", "warn-only", "policies", "limits", validationActions=["Warn"]
        ),
    )
    await admission.policies(validating=1)
    await admission.create_deployment(deployment("small", 3))
    with pytest.raises(errors.ApiError) as refused:
        await admission.create_deployment(deployment("big", 4))
    assert (refused.value.code, refused.value.reason) == (403, "Forbidden")
    assert refused.value.message.endswith("with binding 'limits' denied request: at most 3 replicas")
    await admission.store.delete(admission.res("configmaps"), NS, "limits", DeleteOptions())
    with pytest.raises(errors.ApiError) as missing:
        await admission.create_deployment(deployment("any", 1))
    assert missing.value.message.endswith(
        "denied request: failed to configure binding: no params found for policy binding with `Deny` "
        "parameterNotFoundAction"
    )


async def test_deletions_see_the_old_object(admission: Admission) -> None:
    protect = validating_policy(
        "protect",
        "policies",
        {"expression": "object == null && oldObject.metadata.name != 'protected'", "message": "protected"},
    )
    protect["spec"]["matchConstraints"]["resourceRules"] = [rule(("DELETE",))]
    await admission.write("validatingadmissionpolicies", protect)
    await admission.write(
        "validatingadmissionpolicybindings",
        binding("ValidatingAdmissionPolicyBinding", "protect", "policies", "protect"),
    )
    await admission.policies(validating=1)
    for name in ("protected", "free"):
        await admission.create_deployment(deployment(name, 1))
    deployments = admission.res("deployments", "apps")
    as_alice = DeleteOptions(user=AS_ALICE.user)
    await admission.store.delete(deployments, NS, "free", as_alice)
    with pytest.raises(errors.ApiError) as refused:
        await admission.store.delete(deployments, NS, "protected", as_alice)
    assert refused.value.message.endswith("with binding 'protect' denied request: protected")


async def test_connect_requests_are_checked_with_their_options(admission: Admission) -> None:
    no_shell = validating_policy(
        "no-shell", "policies", {"expression": "!('sh' in object.command)", "message": "no shells"}
    )
    no_shell["spec"]["matchConstraints"]["resourceRules"] = [
        {"operations": ["CONNECT"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods/exec"]}
    ]
    await admission.write("validatingadmissionpolicies", no_shell)
    await admission.write(
        "validatingadmissionpolicybindings",
        binding("ValidatingAdmissionPolicyBinding", "no-shell", "policies", "no-shell"),
    )
    await admission.policies(validating=1)
    pods = admission.res("pods")
    user = AS_ALICE.user
    assert user is not None
    await admission.validating.connect(pods, NS, "web", "exec", [("command", "ls"), ("stdout", "true")], user)
    await admission.validating.connect(pods, NS, "web", "attach", [("stdin", "true")], user)
    with pytest.raises(errors.ApiError) as refused:
        await admission.validating.connect(pods, NS, "web", "exec", [("command", "sh")], user)
    assert refused.value.message == (
        "pods \"web\" is forbidden: ValidatingAdmissionPolicy 'no-shell' with binding 'no-shell' "
        "denied request: no shells"
    )


async def test_failure_policy_ignore_lets_errors_through(admission: Admission) -> None:
    broken = {"expression": "object.spec.missing > 1"}
    await admission.write("validatingadmissionpolicies", validating_policy("fail", "policies", broken))
    await admission.write(
        "validatingadmissionpolicies", validating_policy("ignore", "policies", broken, failurePolicy="Ignore")
    )
    for name in ("fail", "ignore"):
        await admission.write(
            "validatingadmissionpolicybindings",
            binding("ValidatingAdmissionPolicyBinding", name, "policies", name),
        )
    await admission.policies(validating=2)
    with pytest.raises(errors.ApiError) as refused:
        await admission.create_deployment(deployment("web", 2))
    assert (
        "ValidatingAdmissionPolicy 'fail' with binding 'fail' denied request: expression"
        in refused.value.message
    )
    await admission.store.delete(
        admission.res("validatingadmissionpolicybindings", GROUP), "", "fail", DeleteOptions()
    )
    await admission.policies(validating=1)
    await admission.create_deployment(deployment("web", 2))


async def test_match_conditions_user_info_and_the_authorizer(admission: Admission) -> None:
    """matchConditions read ``request.userInfo``; validations and mutations ask the authorizer
    as the requester; a condition that fails follows the failurePolicy."""
    not_admin = {"name": "not-admin", "expression": "!('system:masters' in request.userInfo.groups)"}
    may_delete = {
        "expression": "authorizer.requestResource.check('delete').allowed()",
        "message": "only deleters may create deployments",
    }
    await admission.write(
        "validatingadmissionpolicies",
        validating_policy("deleters", "policies", may_delete, matchConditions=[not_admin]),
    )
    broken = {"name": "broken", "expression": "object.spec.missing > 1"}
    await admission.write(
        "validatingadmissionpolicies",
        validating_policy(
            "broken-conditions",
            "policies",
            {"expression": "false"},
            matchConditions=[broken],
            failurePolicy="Ignore",
        ),
    )
    annotate = apply_configuration(
        "Object{metadata: Object.metadata{annotations: {'may-delete': "
        "string(authorizer.group('apps').resource('deployments').namespace(request.namespace).check('delete')"
        ".allowed())}}}"
    )
    await admission.write("mutatingadmissionpolicies", mutating_policy("annotate", "policies", annotate))
    for name in ("deleters", "broken-conditions"):
        await admission.write(
            "validatingadmissionpolicybindings",
            binding("ValidatingAdmissionPolicyBinding", name, "policies", name),
        )
    await admission.write(
        "mutatingadmissionpolicybindings",
        binding("MutatingAdmissionPolicyBinding", "annotate", "policies", "annotate"),
    )
    await admission.policies(validating=2, mutating=1)
    with pytest.raises(errors.ApiError) as refused:
        await admission.create_deployment(deployment("by-alice", 1))
    assert "denied request: only deleters may create deployments" in refused.value.message
    by_carol = await admission.create_deployment(deployment("by-carol", 1), opts=AS_CAROL)
    assert by_carol["metadata"]["annotations"] == {"may-delete": "true"}
    by_admin = await admission.create_deployment(deployment("by-admin", 1), opts=AS_ADMIN)  # not matched
    assert by_admin["metadata"]["annotations"] == {"may-delete": "true"}

    # The same broken condition under Fail refuses every write the policy matches.
    failing = validating_policy(
        "broken-conditions",
        "policies",
        {"expression": "false"},
        matchConditions=[broken],
        failurePolicy="Fail",
    )
    policies = admission.res("validatingadmissionpolicies", GROUP)
    current = await admission.store.get(policies, "", "broken-conditions")
    failing["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
    await admission.store.update(policies, "", "broken-conditions", failing, WriteOptions())

    async def refused_now() -> bool:
        try:
            await admission.create_deployment(deployment("by-carol-again", 1), opts=AS_CAROL)
        except errors.ApiError as exc:
            return (
                "ValidatingAdmissionPolicy 'broken-conditions' with binding 'broken-conditions'"
                in exc.message
            )
        return False

    await until(refused_now, within=5)


async def test_mutations_change_the_object_before_validation(admission: Admission) -> None:
    mutations = (
        apply_configuration(
            'Object{metadata: Object.metadata{annotations: {"mutated-by": "admission-policy"}}}'
        ),
        apply_configuration("Object{spec: Object.spec{replicas: 1337}}"),
    )
    await admission.write("mutatingadmissionpolicies", mutating_policy("m", "policies", *mutations))
    await admission.write(
        "mutatingadmissionpolicybindings", binding("MutatingAdmissionPolicyBinding", "m", "policies", "m")
    )
    await admission.write(
        "validatingadmissionpolicies", validating_policy("v", "policies", REPLICAS_OVER_ONE)
    )
    await admission.write(
        "validatingadmissionpolicybindings", binding("ValidatingAdmissionPolicyBinding", "v", "policies", "v")
    )
    await admission.policies(validating=1, mutating=1)
    created = await admission.create_deployment(deployment("marker", 1))  # 1337 replicas pass "v"
    assert created["metadata"]["annotations"] == {"mutated-by": "admission-policy"}
    assert created["spec"]["replicas"] == 1337
    assert created["spec"]["strategy"]["type"] == "RollingUpdate"  # defaults applied again
    elsewhere = await admission.create_deployment(deployment("marker", 2), OTHER_NS)
    assert elsewhere["spec"]["replicas"] == 2


async def test_reinvocation_and_failed_mutations(admission: Admission) -> None:
    # "a-copy" copies a label that "b-set" sets after it: only IfNeeded sees it.
    copy_label = apply_configuration(
        "Object{metadata: Object.metadata{annotations: {'copied': "
        "object.metadata.labels.exists(k, k == 'tier') ? object.metadata.labels['tier'] : 'none'}}}"
    )
    set_label = apply_configuration("Object{metadata: Object.metadata{labels: {'tier': 'front'}}}")
    await admission.write(
        "mutatingadmissionpolicies",
        mutating_policy("a-copy", "policies", copy_label, reinvocationPolicy="IfNeeded"),
    )
    await admission.write("mutatingadmissionpolicies", mutating_policy("b-set", "policies", set_label))
    for name in ("a-copy", "b-set"):
        await admission.write(
            "mutatingadmissionpolicybindings",
            binding("MutatingAdmissionPolicyBinding", name, "policies", name),
        )
    await admission.policies(mutating=2)
    created = await admission.create_deployment(deployment("web", 1))
    assert created["metadata"]["labels"]["tier"] == "front"
    assert created["metadata"]["annotations"] == {"copied": "front"}

    atomic = apply_configuration(
        'Object{spec: Object.spec{selector: Object.spec.selector{matchLabels: {"a": "b"}}}}'
    )
    await admission.write("mutatingadmissionpolicies", mutating_policy("c-atomic", "policies", atomic))
    await admission.write(
        "mutatingadmissionpolicybindings",
        binding("MutatingAdmissionPolicyBinding", "c-atomic", "policies", "c-atomic"),
    )
    await admission.policies(mutating=3)
    with pytest.raises(errors.ApiError) as refused:
        await admission.create_deployment(deployment("web2", 1))
    assert (refused.value.code, refused.value.reason) == (403, "Invalid")
    assert refused.value.message == (
        "policy 'c-atomic' with binding 'c-atomic' denied request: error applying patch: invalid "
        "ApplyConfiguration: may not mutate atomic arrays, maps or structs: .spec.selector"
    )


async def test_ifneeded_policies_run_again_after_a_webhook_changed_the_object(admission: Admission) -> None:
    copy_label = apply_configuration(
        "Object{metadata: Object.metadata{annotations: {'copied': "
        "object.metadata.labels.exists(k, k == 'tier') ? object.metadata.labels['tier'] : 'none'}}}"
    )
    for name, policy in (
        ("if-needed", mutating_policy("if-needed", "policies", copy_label, reinvocationPolicy="IfNeeded")),
        ("never", mutating_policy("never", "policies", copy_label)),
    ):
        await admission.write("mutatingadmissionpolicies", policy)
        await admission.write(
            "mutatingadmissionpolicybindings",
            binding("MutatingAdmissionPolicyBinding", name, "policies", name),
        )
    await admission.policies(mutating=2)
    calls: list[str] = []

    async def labelling_webhook(
        res: Resource, namespace: str, obj: Obj, old: Obj | None, opts: WriteOptions
    ) -> None:
        """Stands where the mutating webhooks run: it labels Deployments named ``labelled``."""
        calls.append(obj["metadata"]["name"])
        if obj["metadata"]["name"] == "labelled":
            obj["metadata"]["labels"]["tier"] = "from-webhook"

    admission.store.admission.insert(1, labelling_webhook)  # after the policies, before reinvocation
    created = await admission.create_deployment(deployment("labelled", 1))
    assert created["metadata"]["labels"]["tier"] == "from-webhook"
    assert created["metadata"]["annotations"] == {"copied": "from-webhook"}
    untouched = await admission.create_deployment(deployment("plain", 1))
    assert untouched["metadata"]["annotations"] == {"copied": "none"}
    assert calls == ["labelled", "plain"]


async def test_type_checking_writes_the_status(admission: Admission) -> None:
    confused = {
        "expression": "object.spec.replicas > '1'",
        "messageExpression": "'wants replicas > 1, got ' + object.spec.replicas",
    }
    policies = admission.res("validatingadmissionpolicies", GROUP)
    for name, validation in (("correct", {"expression": "object.spec.replicas > 1"}), ("confused", confused)):
        await admission.write("validatingadmissionpolicies", validating_policy(name, "policies", validation))
    checker = PolicyTypeChecker(admission.store)
    task = asyncio.create_task(checker.run())
    try:

        async def checked(name: str) -> bool:
            found = await admission.store.get(policies, "", name)
            return "typeChecking" in (found.get("status") or {})

        await until(lambda: checked("correct"), within=5)
        await until(lambda: checked("confused"), within=5)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    correct = await admission.store.get(policies, "", "correct")
    assert correct["status"] == {"observedGeneration": 1, "typeChecking": {}}
    warnings = (await admission.store.get(policies, "", "confused"))["status"]["typeChecking"][
        "expressionWarnings"
    ]
    assert [w["fieldRef"] for w in warnings] == [
        "spec.validations[0].expression",
        "spec.validations[0].messageExpression",
    ]
    assert "found no matching overload for '_>_' applied to '(int, string)'" in warnings[0]["warning"]
    assert "found no matching overload for '_+_' applied to '(string, int)'" in warnings[1]["warning"]


# -- against a server ------------------------------------------------------------------------------

POLICIES = f"/apis/{GROUP}/v1/validatingadmissionpolicies"
BINDINGS = f"/apis/{GROUP}/v1/validatingadmissionpolicybindings"
MUTATING_POLICIES = f"/apis/{GROUP}/v1/mutatingadmissionpolicies"
MUTATING_BINDINGS = f"/apis/{GROUP}/v1/mutatingadmissionpolicybindings"
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NS}/deployments"


async def poll(check: Callable[[], Any], within: float = 30.0) -> None:
    """Call ``check`` every 0.1 s until it returns True (it may be a coroutine function)."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result is True:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"not within {within}s")
        await asyncio.sleep(0.1)


@pytest.mark.slow
async def test_policies_on_a_server(api: RestClient) -> None:
    await api.create("/api/v1/namespaces", {"metadata": {"name": NS, "labels": {"e2e-unique": "true"}}})
    await api.create(POLICIES, validating_policy("deny.example.com", "e2e-unique", REPLICAS_OVER_ONE))
    await api.create(
        BINDINGS, binding("ValidatingAdmissionPolicyBinding", "deny", "e2e-unique", "deny.example.com")
    )

    async def marker_denied() -> bool:
        try:
            await api.create(DEPLOYMENTS, deployment("marker", 1))
        except ApiStatusError as exc:
            if exc.code == 422 and exc.reason == "Invalid":
                assert "ValidatingAdmissionPolicy 'deny.example.com' with binding 'deny' denied" in str(exc)
                return True
            raise
        await api.delete(f"{DEPLOYMENTS}/marker")
        return False

    await poll(marker_denied)
    await api.create(DEPLOYMENTS, deployment("replicated", 2))
    await api.delete(f"{BINDINGS}/deny")

    mutations = (
        apply_configuration(
            'Object{metadata: Object.metadata{annotations: {"mutated-by": "admission-policy"}}}'
        ),
        apply_configuration("Object{spec: Object.spec{replicas: 1337}}"),
    )
    await api.create(MUTATING_POLICIES, mutating_policy("mutate.example.com", "e2e-unique", *mutations))
    await api.create(
        MUTATING_BINDINGS,
        binding("MutatingAdmissionPolicyBinding", "mutate", "e2e-unique", "mutate.example.com"),
    )

    async def marker_mutated() -> bool:
        created = await api.create(DEPLOYMENTS, deployment("mutated", 1))
        await api.delete(f"{DEPLOYMENTS}/mutated")
        annotations = created["metadata"].get("annotations") or {}
        return annotations.get("mutated-by") == "admission-policy" and created["spec"]["replicas"] == 1337

    await poll(marker_mutated)

    confused = {
        "expression": "object.spec.replicas > '1'",
        "messageExpression": REPLICAS_OVER_ONE["messageExpression"],
    }
    await api.create(POLICIES, validating_policy("confused.example.com", "e2e-unique", confused))

    async def type_checked() -> bool:
        status = (await api.get(f"{POLICIES}/confused.example.com")).get("status") or {}
        return "typeChecking" in status

    await poll(type_checked)
    status = (await api.get(f"{POLICIES}/confused.example.com"))["status"]
    assert status["observedGeneration"] == 1
    warnings = status["typeChecking"]["expressionWarnings"]
    assert [w["fieldRef"] for w in warnings] == [
        "spec.validations[0].expression",
        "spec.validations[0].messageExpression",
    ]
    assert "found no matching overload for '_>_' applied to '(int, string)'" in warnings[0]["warning"]
