"""``x-kubernetes-validations`` rules of a CRD schema must parse as CEL, as apiextensions-apiserver
requires when it compiles them (the conformance test for a rule with a syntax error looks for
``Syntax error`` in the refusal)."""

from __future__ import annotations

from k3py.api.crd.subset import check_subset
from k3py.api.validation import Cause

ROOT = "spec.validation.openAPIV3Schema"


def test_a_rule_with_a_syntax_error_is_refused() -> None:
    schema = {
        "type": "object",
        "x-kubernetes-validations": [
            {"rule": "self.spec.x > 0"},
            {"rule": "self = 42", "reason": "FieldValueInvalid"},
        ],
    }
    assert check_subset(schema, ROOT) == [
        Cause(
            "FieldValueInvalid",
            'Invalid value: apiextensions.ValidationRule{Rule:"self = 42", Message:"", MessageExpression:"", '
            'Reason:(*apiextensions.FieldValueErrorReason)(0xc000000000), FieldPath:"", '
            "OptionalOldSelf:(*bool)(nil)}: compilation failed: "
            "ERROR: <input>:1:6: Syntax error: token recognition error at: '='\n"
            " | self = 42\n"
            " | .....^",
            f"{ROOT}.x-kubernetes-validations[1].rule",
        )
    ]


def test_nested_rules_are_checked_and_empty_rules_required() -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "x-kubernetes-validations": [{"rule": " "}, {"rule": "self.a || "}],
            }
        },
    }
    causes = check_subset(schema, ROOT)
    assert [(c.reason, c.field) for c in causes] == [
        ("FieldValueRequired", f"{ROOT}.properties[spec].x-kubernetes-validations[0].rule"),
        ("FieldValueInvalid", f"{ROOT}.properties[spec].x-kubernetes-validations[1].rule"),
    ]
    assert "Syntax error: mismatched input '<EOF>'" in causes[1].message
