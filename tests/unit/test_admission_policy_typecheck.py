"""Type checking a ValidatingAdmissionPolicy against the schemas of the kinds it matches:
built-in kinds from the bundled definitions, custom resources from their CRD."""

from __future__ import annotations

from typing import Any

from k3py.api.crd.model import resources_of
from k3py.api.resources import RESOURCES, Registry
from k3py.apiserver.admission_policy_typecheck import check_policy, kinds_to_check

Obj = dict[str, Any]
CRONTABS = {
    "metadata": {"name": "crontabs.stable.example.com"},
    "spec": {
        "group": "stable.example.com",
        "scope": "Namespaced",
        "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {
                                    "cronSpec": {"type": "string"},
                                    "image": {"type": "string"},
                                    "replicas": {"type": "integer"},
                                },
                            }
                        },
                    }
                },
            }
        ],
    },
}


def registry() -> Registry:
    served = Registry(RESOURCES)
    served.set_custom(resources_of(CRONTABS))
    return served


def policy(group: str, plural: str, *validations: Obj, **spec: Any) -> Obj:
    rule = {"operations": ["CREATE"], "apiGroups": [group], "apiVersions": ["v1"], "resources": [plural]}
    return {
        "metadata": {"name": "p", "generation": 1},
        "spec": {"matchConstraints": {"resourceRules": [rule]}, "validations": list(validations), **spec},
    }


def test_well_typed_expressions_give_no_warnings() -> None:
    checked = policy(
        "apps",
        "deployments",
        {
            "expression": "object.spec.replicas > 1",
            "messageExpression": "'got ' + string(object.spec.replicas)",
        },
        {"expression": "variables.odd"},
        {"expression": "namespaceObject.metadata.name == 'a' && request.operation == 'CREATE'"},
        variables=[{"name": "odd", "expression": "object.spec.replicas % 2 == 1"}],
    )
    assert check_policy(registry(), checked) == []


def test_type_confusion_is_reported_per_expression_and_kind() -> None:
    checked = policy(
        "apps",
        "deployments",
        {
            "expression": "object.spec.replicas > '1'",
            "messageExpression": "'wants replicas > 1, got ' + object.spec.replicas",
        },
    )
    first, second = check_policy(registry(), checked)
    assert first["fieldRef"] == "spec.validations[0].expression"
    assert first["warning"] == (
        "apps/v1, Kind=Deployment: ERROR: <input>:1:22: found no matching overload for '_>_' applied to "
        "'(int, string)'\n | object.spec.replicas > '1'\n | .....................^\n"
    )
    assert second["fieldRef"] == "spec.validations[0].messageExpression"
    assert "found no matching overload for '_+_' applied to '(string, int)'" in second["warning"]


def test_custom_resources_are_checked_against_their_crd_schema() -> None:
    good = policy("stable.example.com", "crontabs", {"expression": "object.spec.replicas > 1"})
    assert check_policy(registry(), good) == []
    bad = policy(
        "stable.example.com",
        "crontabs",
        {"expression": "object.spec.replicas > '1'"},
        {"expression": "object.spec.maxRetries < 10"},
    )
    first, second = check_policy(registry(), bad)
    assert first["fieldRef"] == "spec.validations[0].expression"
    assert "found no matching overload for '_>_' applied to '(int, string)'" in first["warning"]
    assert second["fieldRef"] == "spec.validations[1].expression"
    assert second["warning"].startswith("stable.example.com/v1, Kind=CronTab: ")
    assert "undefined field 'maxRetries'" in second["warning"]


def test_wildcards_and_unserved_kinds_are_not_checked() -> None:
    served = registry()
    assert kinds_to_check(served, policy("*", "deployments")) == []
    assert [r.kind for r in kinds_to_check(served, policy("apps", "*"))] == []
    assert kinds_to_check(served, policy("example.com", "widgets")) == []
    confused = policy("*", "deployments", {"expression": "object.spec.replicas > '1'"})
    assert check_policy(served, confused) == []


def test_kinds_are_sorted_and_deduplicated() -> None:
    rule = {
        "operations": ["*"],
        "apiGroups": ["apps", ""],
        "apiVersions": ["v1"],
        "resources": ["deployments", "pods"],
    }
    checked = {"spec": {"matchConstraints": {"resourceRules": [rule, rule]}}}
    assert [(r.group, r.kind) for r in kinds_to_check(registry(), checked)] == [
        ("", "Pod"),
        ("apps", "Deployment"),
    ]


def test_params_are_typed_from_the_param_kind() -> None:
    checked = policy(
        "apps",
        "deployments",
        {"expression": "object.spec.replicas <= params.data.max"},
        paramKind={"apiVersion": "v1", "kind": "ConfigMap"},
    )
    (warning,) = check_policy(registry(), checked)
    assert "found no matching overload for '_<=_' applied to '(int, string)'" in warning["warning"]
