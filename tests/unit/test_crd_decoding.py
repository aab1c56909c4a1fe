"""A CustomResourceDefinition's field types, checked as Go's typed decoding checks them.

Every wrongly-typed field is refused with the message of ``json.Unmarshal`` before validation,
nulls become what decoding them leaves, and a stored CRD that cannot be read is never served
(nor stops the others being served).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from k3py.api.crd.decoding import decode
from k3py.apiserver.crds import readable, served

Obj = dict[str, Any]


def crd(group: str = "example.com") -> Obj:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
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
                                    "required": ["size"],
                                    "properties": {
                                        "size": {"type": "integer", "default": 1, "maximum": 5},
                                        "tags": {
                                            "type": "array",
                                            "items": {"type": "string"},
                                            "x-kubernetes-list-type": "set",
                                        },
                                        "any": {"additionalProperties": True, "type": "object"},
                                    },
                                },
                            },
                        }
                    },
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": "Size", "type": "integer", "jsonPath": ".spec.size", "priority": 1}
                    ],
                }
            ],
        },
        "status": {
            "acceptedNames": {
                "plural": "widgets",
                "kind": "Widget",
                "singular": "widget",
                "listKind": "WidgetList",
            },
            "conditions": [
                {"type": "Established", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}
            ],
            "storedVersions": ["v1"],
        },
    }


def changed(path: tuple[str | int, ...], value: Any) -> Obj:
    obj = crd()
    node: Any = obj
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return obj


VERSION = ("spec", "versions", 0)
SCHEMA = (*VERSION, "schema", "openAPIV3Schema")
IN_VERSION = "CustomResourceDefinitionVersion.spec.versions."
IN_SCHEMA = "JSONSchemaProps.spec.versions.schema.openAPIV3Schema."
IN_NAMES = "CustomResourceDefinitionNames.spec.names."
COLUMN = "CustomResourceColumnDefinition.spec.versions.additionalPrinterColumns.priority"

WRONG = [
    (
        (*VERSION, "subresources"),
        ["status"],
        "array",
        IN_VERSION + "subresources",
        "v1.CustomResourceSubresources",
    ),
    ((*VERSION, "schema"), ["x"], "array", IN_VERSION + "schema", "v1.CustomResourceValidation"),
    (
        (*VERSION, "selectableFields"),
        {"a": 1},
        "object",
        IN_VERSION + "selectableFields",
        "[]v1.SelectableField",
    ),
    ((*VERSION, "served"), "yes", "string", IN_VERSION + "served", "bool"),
    ((*VERSION, "name"), 5, "number", IN_VERSION + "name", "string"),
    (
        (*VERSION, "additionalPrinterColumns"),
        7,
        "number",
        IN_VERSION + "additionalPrinterColumns",
        "[]v1.CustomResourceColumnDefinition",
    ),
    ((*VERSION, "additionalPrinterColumns", 0, "priority"), "x", "string", COLUMN, "int32"),
    ((*VERSION, "additionalPrinterColumns", 0, "priority"), 2**40, f"number {2**40}", COLUMN, "int32"),
    ((*SCHEMA, "properties"), ["spec"], "array", IN_SCHEMA + "properties", "map[string]v1.JSONSchemaProps"),
    ((*SCHEMA, "required"), 5, "number", IN_SCHEMA + "required", "[]string"),
    ((*SCHEMA, "required"), [["k"]], "array", IN_SCHEMA + "required", "string"),
    (
        (*SCHEMA, "x-kubernetes-list-map-keys"),
        5,
        "number",
        IN_SCHEMA + "x-kubernetes-list-map-keys",
        "[]string",
    ),
    (
        (*SCHEMA, "x-kubernetes-validations"),
        5,
        "number",
        IN_SCHEMA + "x-kubernetes-validations",
        "[]v1.ValidationRule",
    ),
    ((*SCHEMA, "maxLength"), 1.5, "number 1.5", IN_SCHEMA + "maxLength", "int64"),
    ((*SCHEMA, "nullable"), "yes", "string", IN_SCHEMA + "nullable", "bool"),
    (
        (*SCHEMA, "additionalProperties"),
        "x",
        "string",
        IN_SCHEMA + "additionalProperties",
        "v1.JSONSchemaPropsOrBool",
    ),
    ((*SCHEMA, "items"), 5, "number", IN_SCHEMA + "items", "v1.JSONSchemaPropsOrArray"),
    ((*SCHEMA, "items"), [{"type": 5}], "number", IN_SCHEMA + "items.type", "string"),
    (("spec", "names", "shortNames"), 5, "number", IN_NAMES + "shortNames", "[]string"),
    (("spec", "names", "shortNames"), "ab", "string", IN_NAMES + "shortNames", "[]string"),
    (("spec", "names", "categories"), 5, "number", IN_NAMES + "categories", "[]string"),
    (
        ("spec", "versions"),
        "v1",
        "string",
        "CustomResourceDefinitionSpec.spec.versions",
        "[]v1.CustomResourceDefinitionVersion",
    ),
    (("spec",), ["x"], "array", "CustomResourceDefinition.spec", "v1.CustomResourceDefinitionSpec"),
    (
        ("status", "storedVersions"),
        {"a": 1},
        "object",
        "CustomResourceDefinitionStatus.status.storedVersions",
        "[]string",
    ),
    (
        ("status", "conditions", 0, "lastTransitionTime"),
        5,
        "number",
        "CustomResourceDefinitionCondition.status.conditions.lastTransitionTime",
        "v1.Time",
    ),
]


@pytest.mark.parametrize(("path", "value", "kind", "field", "go_type"), WRONG)
def test_a_wrongly_typed_field_is_named_as_go_names_it(
    path: tuple[str | int, ...], value: Any, kind: str, field: str, go_type: str
) -> None:
    expected = f"json: cannot unmarshal {kind} into Go struct field {field} of type {go_type}"
    assert decode(changed(path, value)) == expected


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ((*SCHEMA, "default"), {"any": ["thing"]}),
        ((*SCHEMA, "enum"), [1, "a", None, {"b": True}]),
        ((*SCHEMA, "additionalProperties"), False),
        ((*SCHEMA, "items"), [{"type": "string"}]),
        ((*SCHEMA, "dependencies"), {"a": ["b"], "c": {"type": "object"}}),
        ((*VERSION, "additionalPrinterColumns", 0, "priority"), 2.0),
        (("spec", "unknownField"), [1]),
        (("metadata",), {"annotations": ["metadata is checked elsewhere"]}),
    ],
)
def test_what_go_decodes_is_accepted(path: tuple[str | int, ...], value: Any) -> None:
    assert decode(changed(path, value)) is None


def test_nulls_become_what_decoding_leaves() -> None:
    obj = crd()
    version = obj["spec"]["versions"][0]
    version["subresources"] = None
    version["additionalPrinterColumns"] = [None]
    schema = version["schema"]["openAPIV3Schema"]
    schema["properties"]["spec"]["properties"]["tags"]["items"] = None
    schema["properties"]["spec"]["required"] = ["size", None]
    schema["properties"]["status"] = None
    schema["enum"] = [None]
    obj["spec"]["names"]["shortNames"] = None
    as_stored = copy.deepcopy(obj)
    assert decode(as_stored, normalize=False) is None
    assert as_stored == obj
    assert decode(obj) is None
    assert "subresources" not in version
    assert version["additionalPrinterColumns"] == [{}]
    assert "items" not in schema["properties"]["spec"]["properties"]["tags"]
    assert schema["properties"]["spec"]["required"] == ["size", ""]
    assert schema["properties"]["status"] == {}
    assert schema["enum"] == [None]
    assert "shortNames" not in obj["spec"]["names"]


def test_stored_crds_that_cannot_be_read_are_not_served_and_the_others_are() -> None:
    for path, value in (
        ((*VERSION, "subresources"), ["status"]),
        ((*VERSION, "schema"), ["x"]),
        ((*VERSION, "selectableFields"), {"a": 1}),
        ((*SCHEMA, "properties"), ["spec"]),
        ((*VERSION, "additionalPrinterColumns", 0, "priority"), "x"),
        (("spec", "names", "shortNames"), 5),
        (("status",), ["x"]),
    ):
        with pytest.raises(ValueError, match=r"^json: cannot unmarshal "):
            readable(changed(path, value))
    nameless = readable(changed(VERSION, {"served": True, "storage": True}))
    nameless["spec"]["group"] = "nameless.example.com"
    nulls = readable(changed(("spec", "versions"), [None]))
    nulls["spec"]["group"] = "nulls.example.com"
    no_spec = {"metadata": {"name": "no-spec"}, "status": crd()["status"]}
    good = readable(crd("good.example.com"))
    resources = served([nameless, nulls, no_spec, good])
    assert [(r.group, r.version, r.plural) for r in resources] == [("good.example.com", "v1", "widgets")]


def test_a_crd_over_a_built_in_is_not_served() -> None:
    overlapping = crd("networking.k8s.io")
    overlapping["spec"]["names"]["plural"] = "networkpolicies"
    overlapping["status"]["acceptedNames"]["plural"] = "networkpolicies"
    assert served([overlapping]) == []
