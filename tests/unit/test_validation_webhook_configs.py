"""Validation of admission webhook configurations: ``matchConditions`` as kube-apiserver checks
them (at most 64, names required, qualified and unique, expressions required and compiling),
the check the conformance tests "should reject validating/mutating webhook configurations with
invalid match conditions" rely on."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from k3py.api.validation import Cause
from tests.unit.api_cases import check, invalid, required

Obj = dict[str, Any]

KINDS = {
    "validatingwebhookconfigurations.admissionregistration.k8s.io": "ValidatingWebhookConfiguration",
    "mutatingwebhookconfigurations.admissionregistration.k8s.io": "MutatingWebhookConfiguration",
}
BAD_EXPRESSION_ERROR = (
    "compilation failed: ERROR: <input>:1:2: Syntax error: mismatched input '.' expecting IDENTIFIER\n"
    " | ... [] bad expression\n"
    " | .^"
)


def configuration(resource: str, *conditions: Obj) -> Obj:
    hook: Obj = {
        "name": "deny.example.com",
        "clientConfig": {"service": {"namespace": "default", "name": "webhook", "path": "/validate"}},
        "rules": [
            {
                "operations": ["CREATE"],
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "resources": ["pods"],
            }
        ],
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "matchConditions": list(conditions),
    }
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": KINDS[resource],
        "metadata": {"name": "webhook-config"},
        "webhooks": [hook],
    }


@pytest.mark.parametrize("resource", sorted(KINDS))
def test_invalid_match_condition_expression_is_refused(resource: str) -> None:
    obj = configuration(resource, {"name": "invalid-expression-1", "expression": "... [] bad expression"})
    assert check(resource, obj) == [
        invalid(
            "webhooks[0].matchConditions[0].expression",
            '"... [] bad expression"',
            BAD_EXPRESSION_ERROR,
        )
    ]


@pytest.mark.parametrize("resource", sorted(KINDS))
def test_valid_match_conditions_pass(resource: str) -> None:
    obj = configuration(
        resource,
        {"name": "skip-me", "expression": "object.metadata.name != 'skip-me'"},
        {
            "name": "example.com/labelled",
            "expression": "has(object.metadata.labels) && 'x' in object.metadata.labels",
        },
        {
            "name": "create",
            "expression": "request.operation == 'CREATE' || request.resource.resource == \"pods\"",
        },
    )
    assert check(resource, obj) == []


def test_names_and_expressions_are_required_qualified_and_unique() -> None:
    resource = "validatingwebhookconfigurations.admissionregistration.k8s.io"
    obj = configuration(
        resource,
        {"name": "", "expression": "  "},
        {"name": "not a name", "expression": "true"},
        {"name": "twice", "expression": "true"},
        {"name": "twice", "expression": " a b "},
    )
    causes = check(resource, obj)
    field = "webhooks[0].matchConditions"
    assert causes[:2] == [required(f"{field}[0].expression"), required(f"{field}[0].name")]
    assert causes[2].field == f"{field}[1].name" and causes[2].reason == "FieldValueInvalid"
    assert causes[2].message.startswith('Invalid value: "not a name": name part must consist of')
    assert causes[3:] == [
        invalid(
            f"{field}[3].expression",
            '"a b"',
            "compilation failed: ERROR: <input>:1:3: Syntax error: mismatched input 'b' expecting <EOF>\n"
            " | a b\n"
            " | ..^",
        ),
        Cause("FieldValueDuplicate", 'Duplicate value: "twice"', f"{field}[3].name"),
    ]


def test_at_most_64_conditions() -> None:
    resource = "mutatingwebhookconfigurations.admissionregistration.k8s.io"
    conditions = [{"name": f"c{n}", "expression": "true"} for n in range(65)]
    assert check(resource, configuration(resource, *conditions)) == [
        Cause("FieldValueTooMany", "Too many: 65: must have at most 64 items", "webhooks[0].matchConditions")
    ]
    assert check(resource, configuration(resource, *conditions[:64])) == []


def test_update_keeps_an_expression_already_stored() -> None:
    resource = "validatingwebhookconfigurations.admissionregistration.k8s.io"
    old = configuration(resource, {"name": "old", "expression": "a b"})
    new = copy.deepcopy(old)
    new["webhooks"][0]["timeoutSeconds"] = 5
    assert check(resource, new, old) == []
    new["webhooks"][0]["matchConditions"].append({"name": "new", "expression": "c d"})
    assert [c.field for c in check(resource, new, old)] == ["webhooks[0].matchConditions[1].expression"]
