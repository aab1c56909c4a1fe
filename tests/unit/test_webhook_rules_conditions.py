"""Admission webhooks' ``matchConditions``: real CEL over ``object``, ``oldObject``,
``request`` and ``authorizer``, false skipping the webhook, failures following the
failurePolicy, each expression compiled once."""

from __future__ import annotations

from typing import Any

import pytest

from k3py.api.resources import RESOURCES, Resource
from k3py.apiserver import errors
from k3py.apiserver.admission_policy_cel import cel_authorizer
from k3py.apiserver.authn import MASTERS, User
from k3py.apiserver.authz import Attributes, Chain, Decision, privileged_groups
from k3py.apiserver.webhook_review import Call, admission_request
from k3py.apiserver.webhook_rules import (
    GroupVersionResource,
    Hook,
    Request,
    admission_request_of,
    conditions_hold,
    hooks_of,
    parse_hook,
)

Obj = dict[str, Any]
PODS = GroupVersionResource("", "v1", "pods")
DEPLOYMENTS = GroupVersionResource("apps", "v1", "deployments")
ALICE = User("alice", ("system:authenticated", "dev"), uid="alice-uid")
ADMIN = User("admin", (MASTERS, "system:authenticated"))
POD = {"metadata": {"name": "web", "namespace": "team", "labels": {"app": "web"}}, "spec": {}}


def hook(*expressions: str, failure_policy: str = "Fail") -> Hook:
    conditions = [{"name": f"c{i}", "expression": e} for i, e in enumerate(expressions)]
    webhook = {"name": "h.example.com", "failurePolicy": failure_policy, "matchConditions": conditions}
    parsed = parse_hook("config", webhook, mutating=False)
    assert parsed is not None
    return parsed


def request(
    operation: str = "CREATE",
    obj: Obj | None = POD,
    old: Obj | None = None,
    resource: GroupVersionResource = PODS,
    subresource: str = "",
) -> Request:
    return Request(resource, subresource, operation, "team", obj, old)


def resource(group: str, plural: str) -> Resource:
    return next(r for r in RESOURCES if (r.group, r.version, r.plural) == (group, "v1", plural))


def admission_of(req: Request, user: User, dry_run: bool = False) -> Obj:
    """The ``request`` variable as the webhook dispatcher makes it for ``req``."""
    res = resource(req.resource.group, req.resource.resource)
    name = str(((req.obj or req.old or {}).get("metadata") or {}).get("name") or "")
    call = Call(res, "team", name, req.operation, req.subresource, req.obj, req.old, user, dry_run, None)
    return admission_request(call, req.resource, res.kind)


def refusal(h: Hook, req: Request, admission: Obj | None = None) -> errors.ApiError:
    with pytest.raises(errors.ApiError) as caught:
        conditions_hold(h, req, admission)
    return caught.value


# -- true, false, error, by failurePolicy ----------------------------------------------------


@pytest.mark.parametrize("failure_policy", ["Fail", "Ignore"])
def test_true_calls_and_false_skips_whatever_the_failure_policy(failure_policy: str) -> None:
    labelled = "object.metadata.labels['app'] == 'web'"
    assert conditions_hold(hook(labelled, "true", failure_policy=failure_policy), request())
    assert not conditions_hold(hook(labelled, "false", failure_policy=failure_policy), request())
    other = {"metadata": {"name": "db", "labels": {"app": "db"}}}
    assert not conditions_hold(hook(labelled, failure_policy=failure_policy), request(obj=other))


def test_no_conditions_always_hold() -> None:
    assert conditions_hold(hook(), request(obj=None, old=None))


def test_a_failure_refuses_under_fail_with_upstreams_forbidden() -> None:
    failed = refusal(hook("object.spec.replicas > 2"), request())
    assert (failed.code, failed.reason) == (403, "Forbidden")
    assert failed.message.startswith(
        "pods \"web\" is forbidden: expression 'object.spec.replicas > 2' resulted in error: "
    )
    assert "replicas" in failed.message
    assert failed.details == {"name": "web", "kind": "pods"}


def test_a_failure_skips_the_webhook_under_ignore() -> None:
    assert not conditions_hold(hook("object.spec.replicas > 2", failure_policy="Ignore"), request())


def test_a_false_condition_wins_over_failures_before_it() -> None:
    """Upstream: any false skips the webhook, even under Fail and after an error."""
    assert not conditions_hold(hook("object.spec.replicas > 2", "false"), request())


def test_several_failures_read_as_an_aggregate() -> None:
    failed = refusal(hook("object.spec.replicas > 2", "object.spec.paused == true"), request())
    message = failed.message.partition("is forbidden: ")[2]
    assert message.startswith("[expression 'object.spec.replicas > 2' resulted in error: ")
    assert ", expression 'object.spec.paused == true' resulted in error: " in message
    assert message.endswith("]")


def test_a_group_resource_and_no_name_in_the_refusal() -> None:
    req = request(obj={"metadata": {"generateName": "web-"}}, resource=DEPLOYMENTS)
    failed = refusal(hook("object.spec.replicas > 2"), req)
    assert failed.message.startswith("deployments.apps is forbidden: expression ")
    assert failed.details == {"name": "", "kind": "deployments", "group": "apps"}


@pytest.mark.parametrize(
    ("expression", "why"),
    [
        ("'a' == ", "compilation error: compilation failed: ERROR: <input>:1:"),
        ("request.nope == 'x'", "compilation error: compilation failed: ERROR: <input>:1:"),
        ("1 + 'a' == 2", "compilation error: compilation failed: ERROR: <input>:1:"),
        ("'text'", "compilation error: must evaluate to bool but got string"),
    ],
)
def test_expressions_that_do_not_compile_fail_when_evaluated(expression: str, why: str) -> None:
    """A stored expression that does not compile (the configuration's validation checks only
    its syntax) follows the failurePolicy, as upstream's compile errors do."""
    failed = refusal(hook(expression), request())
    assert f"is forbidden: {why}" in failed.message
    assert not conditions_hold(hook(expression, failure_policy="Ignore"), request())


def test_a_dyn_result_is_checked_when_evaluated() -> None:
    """``object.metadata.x`` is dyn: it compiles as a condition, and only a false one skips."""
    assert conditions_hold(hook("object.metadata.x"), request(obj={"metadata": {"x": True}}))
    assert not conditions_hold(hook("object.metadata.x"), request(obj={"metadata": {"x": False}}))


# -- the variables ----------------------------------------------------------------------------------


def test_request_user_info_is_the_requesters() -> None:
    h = hook("request.userInfo.username == 'alice' && 'dev' in request.userInfo.groups")
    req = request()
    assert conditions_hold(h, req, admission_of(req, ALICE))
    assert not conditions_hold(h, req, admission_of(req, ADMIN))
    by_uid = hook("request.userInfo.uid == 'alice-uid' && !request.dryRun")
    assert conditions_hold(by_uid, req, admission_of(req, ALICE))
    assert not conditions_hold(by_uid, req, admission_of(req, ALICE, dry_run=True))


def test_request_names_kind_resource_operation_and_namespace() -> None:
    h = hook(
        "request.kind.kind == 'Pod' && request.resource.resource == 'pods' && request.operation == 'CREATE'"
        " && request.namespace == 'team' && request.name == 'web' && request.requestKind.version == 'v1'"
    )
    req = request()
    assert conditions_hold(h, req, admission_of(req, ALICE))


def test_without_the_admission_request_what_the_request_tells() -> None:
    """When the caller gives no AdmissionRequest, ``request`` is what matching knows."""
    req = request(operation="UPDATE", old=POD, subresource="status")
    assert admission_request_of(req) == {
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "requestResource": {"group": "", "version": "v1", "resource": "pods"},
        "name": "web",
        "operation": "UPDATE",
        "subResource": "status",
        "requestSubResource": "status",
        "namespace": "team",
    }
    h = hook("request.operation == 'UPDATE' && request.subResource == 'status' && request.name == 'web'")
    assert conditions_hold(h, req)
    failed = refusal(hook("request.userInfo.username == 'alice'"), req)
    assert "resulted in error" in failed.message


def test_object_is_null_on_delete_and_old_object_on_create() -> None:
    delete = request(operation="DELETE", obj=None, old=POD)
    assert conditions_hold(hook("object == null", "oldObject.metadata.name == 'web'"), delete)
    assert not conditions_hold(hook("object != null"), delete)
    assert conditions_hold(hook("oldObject == null"), request())
    # Reading a field of the missing object is an error, as upstream's no such key.
    assert not conditions_hold(hook("object.metadata.name == 'web'", failure_policy="Ignore"), delete)
    assert "resulted in error" in refusal(hook("object.metadata.name == 'web'"), delete).message
    guarded = hook("(object != null ? object : oldObject).metadata.name == 'web'")
    assert conditions_hold(guarded, delete) and conditions_hold(guarded, request())


def test_has_guards_missing_fields() -> None:
    h = hook("!has(object.spec.replicas) || object.spec.replicas > 2")
    assert conditions_hold(h, request())
    assert conditions_hold(h, request(obj={"metadata": {"name": "d"}, "spec": {"replicas": 3}}))
    assert not conditions_hold(h, request(obj={"metadata": {"name": "d"}, "spec": {"replicas": 1}}))


# -- the authorizer ---------------------------------------------------------------------------------


def _secrets_readers(attrs: Attributes) -> Decision:
    """A stand-in below the chain: ``dev`` may get secrets in ``team``; nothing else."""
    allowed = (
        "dev" in attrs.user.groups
        and attrs.verb == "get"
        and (attrs.resource, attrs.namespace) == ("secrets", "team")
    )
    return Decision(allowed, "" if allowed else "no rule allows it")


AUTHORIZE = Chain([privileged_groups, _secrets_readers])


def test_authorizer_asks_the_chain_as_the_requester() -> None:
    h = hook("authorizer.group('').resource('secrets').namespace('team').check('get').allowed()")
    req = request()
    assert conditions_hold(h, req, admission_of(req, ALICE), cel_authorizer(AUTHORIZE, ALICE))
    bob = User("bob", ("system:authenticated",))
    assert not conditions_hold(h, req, admission_of(req, bob), cel_authorizer(AUTHORIZE, bob))
    assert conditions_hold(h, req, admission_of(req, ADMIN), cel_authorizer(AUTHORIZE, ADMIN))
    reason = hook("authorizer.group('').resource('secrets').check('list').reason() == 'no rule allows it'")
    assert conditions_hold(reason, req, admission_of(req, ALICE), cel_authorizer(AUTHORIZE, ALICE))


def test_authorizer_request_resource_is_the_requests_own() -> None:
    h = hook("authorizer.requestResource.check('create').allowed()")
    req = request()
    assert conditions_hold(h, req, admission_of(req, ADMIN), cel_authorizer(AUTHORIZE, ADMIN))
    assert not conditions_hold(h, req, admission_of(req, ALICE), cel_authorizer(AUTHORIZE, ALICE))
    asked: list[Attributes] = []

    def record(attrs: Attributes) -> Decision:
        asked.append(attrs)
        return Decision(False)

    status = request(operation="UPDATE", old=POD, subresource="status")
    conditions_hold(h, status, admission_of(status, ALICE), cel_authorizer(record, ALICE))
    (seen,) = asked
    assert (seen.verb, seen.resource, seen.subresource, seen.namespace, seen.name) == (
        "create",
        "pods",
        "status",
        "team",
        "web",
    )
    assert seen.user == ALICE and seen.resource_request


def test_authorizer_on_behalf_of_a_service_account() -> None:
    asked: list[Attributes] = []

    def record(attrs: Attributes) -> Decision:
        asked.append(attrs)
        return Decision(True)

    h = hook("authorizer.serviceAccount('team', 'robot').path('/healthz').check('get').allowed()")
    req = request()
    assert conditions_hold(h, req, admission_of(req, ALICE), cel_authorizer(record, ALICE))
    (seen,) = asked
    assert seen.user.name == "system:serviceaccount:team:robot"
    assert "system:serviceaccounts:team" in seen.user.groups
    assert (seen.path, seen.resource_request) == ("/healthz", False)


def test_without_an_authorizer_its_checks_fail() -> None:
    h = hook("authorizer.group('').resource('pods').check('get').allowed()")
    assert "resulted in error" in refusal(h, request()).message
    ignoring = hook("authorizer.group('').resource('pods').check('get').allowed()", failure_policy="Ignore")
    assert not conditions_hold(ignoring, request())


# -- compiled once ----------------------------------------------------------------------------------


def test_each_expression_is_compiled_once() -> None:
    configs = [
        {
            "metadata": {"name": "c"},
            "webhooks": [
                {
                    "name": "a",
                    "matchConditions": [{"name": "n", "expression": "object.x == 'compiled-once'"}],
                },
                {
                    "name": "b",
                    "matchConditions": [{"name": "n", "expression": "object.x == 'compiled-once'"}],
                },
            ],
        }
    ]
    first, second = hooks_of(configs, mutating=True)
    (again, _) = hooks_of(configs, mutating=True)  # the configuration read anew after a change
    assert first.conditions[0] is second.conditions[0] is again.conditions[0]
    assert first.conditions[0].compiled.program is not None
