"""The authorizer library: requests built step by step in CEL reach the caller's check function
with every attribute, and decisions read back as cel-go's Kubernetes library reads them."""

from __future__ import annotations

import pytest

from k3py.api.cel import (
    AUTHORIZER,
    RESOURCE_CHECK,
    Authorizer,
    AuthzAttributes,
    CelEvalError,
    Decision,
    Env,
    compile,
)

ENV = Env({"authorizer": AUTHORIZER, "authorizer.requestResource": RESOURCE_CHECK})


def test_resource_checks_carry_every_attribute() -> None:
    asked: list[AuthzAttributes] = []

    def check(attributes: AuthzAttributes) -> Decision:
        asked.append(attributes)
        return Decision("allow" if attributes.verb == "get" else "deny", reason="policy")

    expression = (
        "authorizer.group('apps').resource('deployments').subresource('scale')"
        ".namespace('ns').name('web').labelSelector('a=b').check('get').allowed()"
    )
    assert compile(expression, ENV).evaluate({"authorizer": Authorizer(check)}) is True
    assert asked == [
        AuthzAttributes(
            "get", group="apps", resource="deployments", subresource="scale", namespace="ns", name="web",
            label_selector="a=b",
        )
    ]  # fmt: skip
    reason = compile("authorizer.path('/healthz').check('post').reason()", ENV)
    assert reason.evaluate({"authorizer": Authorizer(check)}) == "policy"
    assert asked[-1] == AuthzAttributes("post", path="/healthz")


def test_service_accounts_and_request_resources() -> None:
    asked: list[AuthzAttributes] = []

    def check(attributes: AuthzAttributes) -> Decision:
        asked.append(attributes)
        return Decision("noopinion", error="webhook down")

    authorizer = Authorizer(check)
    program = compile(
        "authorizer.serviceAccount('kube-system', 'sa').group('').resource('pods').check('list')", ENV
    )
    decision = program.evaluate_raw({"authorizer": authorizer})
    assert asked[-1].service_account == ("kube-system", "sa")
    assert isinstance(decision, Decision)
    errored = compile("authorizer.requestResource.check('update').errored()", ENV)
    request = compile("authorizer.group('').resource('pods')", ENV).evaluate_raw({"authorizer": authorizer})
    assert errored.evaluate({"authorizer.requestResource": request}) is True
    with pytest.raises(CelEvalError, match="resource must not be empty"):
        compile("authorizer.group('').resource('')", ENV).evaluate({"authorizer": authorizer})
