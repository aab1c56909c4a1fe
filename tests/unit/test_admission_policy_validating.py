"""A ValidatingAdmissionPolicy's expressions compiled and evaluated against real objects:
validations, messages, variables, match conditions, audit annotations, failure policies."""

from __future__ import annotations

from typing import Any

from k3py.apiserver.admission_policy_cel import LazyVariables
from k3py.apiserver.admission_policy_validating import Failure, compile_policy, validate

Obj = dict[str, Any]
REQUEST = {"operation": "CREATE", "name": "web", "namespace": "team", "userInfo": {"username": "alice"}}


def deployment(replicas: int, **labels: str) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": labels},
        "spec": {"replicas": replicas},
    }


def failures(spec: Obj, obj: Obj, params: Obj | None = None, namespace: str = "team") -> list[Failure]:
    evaluator = compile_policy({"metadata": {"name": "p"}, "spec": spec})
    activation = evaluator.env.activation(
        obj=obj, old=None, request=REQUEST, namespace={"metadata": {"name": namespace}}, params=params
    )
    return validate(evaluator, activation)


def test_a_false_validation_fails_with_its_message_else_the_expression() -> None:
    spec = {
        "validations": [
            {"expression": "object.spec.replicas > 1", "message": "  too few  "},
            {"expression": "object.spec.replicas > 2"},
        ]
    }
    assert failures(spec, deployment(3)) == []
    assert failures(spec, deployment(1)) == [
        Failure("too few", "Invalid"),
        Failure("failed expression: object.spec.replicas > 2", "Invalid"),
    ]


def test_message_expression_wins_and_falls_back_when_it_fails() -> None:
    spec = {
        "validations": [
            {
                "expression": "object.spec.replicas > 1",
                "messageExpression": "'wants replicas > 1, got ' + string(object.spec.replicas)",
                "reason": "Forbidden",
            },
            {
                "expression": "object.spec.replicas > 1",
                "messageExpression": "'wants replicas > 1, got ' + object.spec.replicas",  # int: fails
            },
            {"expression": "object.spec.replicas > 1", "messageExpression": "'two\\nlines'", "message": "m"},
        ]
    }
    assert failures(spec, deployment(1)) == [
        Failure("wants replicas > 1, got 1", "Forbidden"),
        Failure("failed expression: object.spec.replicas > 1", "Invalid"),
        Failure("m", "Invalid"),
    ]


def test_variables_compose_and_are_evaluated_lazily() -> None:
    spec = {
        "variables": [
            {"name": "replicas", "expression": "object.spec.replicas"},
            {"name": "oddReplicas", "expression": "variables.replicas % 2 == 1"},
            {"name": "broken", "expression": "object.spec.missing"},
        ],
        "validations": [{"expression": "variables.replicas > 1"}, {"expression": "variables.oddReplicas"}],
    }
    assert failures(spec, deployment(3)) == []  # "broken" is never read
    assert [f.message for f in failures(spec, deployment(2))] == ["failed expression: variables.oddReplicas"]


def test_a_variable_that_fails_fails_the_expressions_reading_it() -> None:
    spec = {
        "variables": [{"name": "broken", "expression": "object.spec.missing"}],
        "validations": [{"expression": "variables.broken == 1"}],
    }
    (failure,) = failures(spec, deployment(1))
    assert 'composited variable "broken" fails to evaluate: no such key: missing' in failure.message
    assert failures({**spec, "failurePolicy": "Ignore"}, deployment(1)) == []


def test_lazy_variables_evaluate_each_once() -> None:
    evaluator = compile_policy(
        {"spec": {"variables": [{"name": "n", "expression": "object.spec.replicas + 1"}], "validations": []}}
    )
    activation = evaluator.env.activation(
        obj=deployment(1), old=None, request=REQUEST, namespace=None, params=None
    )
    variables = activation["variables"]
    assert isinstance(variables, LazyVariables)
    assert "n" in variables and "other" not in variables
    assert variables["n"] == 2
    assert dict(variables) == {"n": 2}


def test_namespace_object_request_and_params_are_inputs() -> None:
    spec = {
        "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
        "validations": [
            {"expression": "namespaceObject.metadata.name == 'team'", "message": "namespace"},
            {"expression": "request.userInfo.username == 'alice'", "message": "user"},
            {"expression": "object.spec.replicas <= int(params.data.maxReplicas)", "message": "params"},
        ],
    }
    params = {"data": {"maxReplicas": "3"}}
    assert failures(spec, deployment(2), params) == []
    assert [f.message for f in failures(spec, deployment(5), params, "other")] == ["namespace", "params"]


def test_params_are_not_declared_without_a_param_kind() -> None:
    (failure,) = failures({"validations": [{"expression": "params.x == 1"}]}, deployment(1))
    assert failure.message.startswith("compilation error: compilation failed: ERROR: <input>:1:1: undeclared")


def test_a_validation_that_is_not_boolean_does_not_compile() -> None:
    (failure,) = failures({"validations": [{"expression": "'yes'"}]}, deployment(1))
    assert failure.message == "compilation error: must evaluate to bool but got string"


def test_an_evaluation_error_fails_unless_ignored() -> None:
    spec = {"validations": [{"expression": "object.spec.missing > 1"}]}
    (failure,) = failures(spec, deployment(1))
    assert failure.message == "expression 'object.spec.missing > 1' resulted in error: no such key: missing"
    assert failure.reason == ""
    assert failures({**spec, "failurePolicy": "Ignore"}, deployment(1)) == []


def test_match_conditions_skip_the_policy_when_one_is_false() -> None:
    spec = {
        "matchConditions": [{"name": "labelled", "expression": "'check' in object.metadata.labels"}],
        "validations": [{"expression": "object.spec.replicas > 1"}],
    }
    assert failures(spec, deployment(1)) == []
    assert len(failures(spec, deployment(1, check="yes"))) == 1


def test_a_match_condition_error_fails_unless_ignored() -> None:
    spec = {
        "matchConditions": [{"name": "c", "expression": "object.spec.missing == 1"}],
        "validations": [{"expression": "true"}],
    }
    (failure,) = failures(spec, deployment(1))
    assert "no such key: missing" in failure.message
    assert failures({**spec, "failurePolicy": "Ignore"}, deployment(1)) == []


def test_audit_annotations_are_evaluated_and_must_be_strings() -> None:
    ok = {
        "auditAnnotations": [{"key": "k", "valueExpression": "'replicas: ' + string(object.spec.replicas)"}]
    }
    assert failures(ok, deployment(1)) == []
    bad = {"auditAnnotations": [{"key": "k", "valueExpression": "object.spec.replicas"}]}
    (failure,) = failures(bad, deployment(1))
    assert "resulted in unsupported return type: int" in failure.message
