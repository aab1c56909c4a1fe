"""CustomResourceDefinition objects: defaulting, validation, structural schemas, naming, resources.

Messages and field paths are apiextensions-apiserver's, including the internal form's hoisting
of a schema every version shares to ``spec.validation``.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from k3py.api.crd import columns, jsonpath, model, naming
from k3py.api.crd.definition import default_crd, validate_crd
from k3py.api.crd.schemacheck import check_schema

Obj = dict[str, Any]


def crd(**spec: Any) -> Obj:
    base: Obj = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object"}}}
                    },
                }
            ],
        },
        "status": {},
    }
    base["spec"].update(spec)
    default_crd(base)
    return base


def messages(obj: Obj, old: Obj | None = None) -> list[str]:
    return [f"{c.field}: {c.message}" for c in validate_crd(obj, old)]


def test_defaults() -> None:
    obj = crd()
    assert obj["spec"]["names"] == {
        "plural": "widgets",
        "kind": "Widget",
        "singular": "widget",
        "listKind": "WidgetList",
    }
    assert obj["spec"]["conversion"] == {"strategy": "None"}
    assert obj["status"]["storedVersions"] == ["v1"]
    assert messages(obj) == []


def test_name_must_be_plural_dot_group_and_group_needs_a_dot() -> None:
    obj = crd(group="example")
    assert messages(obj) == [
        'metadata.name: Invalid value: "widgets.example.com": must be spec.names.plural+"."+spec.group',
        'spec.group: Invalid value: "example": should be a domain with at least one dot',
    ]


def test_exactly_one_storage_version_and_unique_names() -> None:
    obj = crd()
    second = copy.deepcopy(obj["spec"]["versions"][0])
    obj["spec"]["versions"].append(second)
    found = messages(obj)
    assert any(
        m.startswith("spec.versions: Invalid value: []apiextensions.CustomResourceDefinitionVersion{")
        for m in found
    )
    assert [m.rsplit(": ", 1)[-1] for m in found if m.startswith("spec.versions:")] == [
        "must contain unique version names",
        "must have exactly one version marked as storage version",
    ]


def test_scope_and_names() -> None:
    obj = crd(scope="Everywhere", names={"plural": "Widgets", "kind": "Widget", "shortNames": ["w_1"]})
    found = messages(obj)
    assert (
        found[0]
        == 'metadata.name: Invalid value: "widgets.example.com": must be spec.names.plural+"."+spec.group'
    )
    assert (
        found[1] == 'spec.scope: Unsupported value: "Everywhere": supported values: "Cluster", "Namespaced"'
    )
    assert found[2].startswith('spec.names.plural: Invalid value: "Widgets": a DNS-1035 label')
    assert found[3].startswith('spec.names.shortNames[0]: Invalid value: "w_1": a DNS-1035 label')


def test_schemas_are_required_and_a_webhook_conversion_needs_its_client_config() -> None:
    obj = crd(conversion={"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v1"]}})
    del obj["spec"]["versions"][0]["schema"]
    assert messages(obj) == [
        "spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required",
        "spec.conversion.webhookClientConfig: Required value: required when strategy is set to Webhook",
    ]


def test_a_shared_schema_is_validated_at_spec_validation() -> None:
    obj = crd()
    obj["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"] = {"properties": {"a": {}}}
    assert messages(obj) == [
        "spec.validation.openAPIV3Schema.properties[spec].properties[a].type: Required value: "
        "must not be empty for specified object fields",
        "spec.validation.openAPIV3Schema.properties[spec].type: Required value: "
        "must not be empty for specified object fields",
    ]


def test_different_schemas_are_validated_per_version() -> None:
    obj = crd()
    v2 = copy.deepcopy(obj["spec"]["versions"][0])
    v2.update(name="v2", storage=False)
    v2["schema"]["openAPIV3Schema"]["properties"]["spec"]["default"] = "x"
    obj["spec"]["versions"].append(v2)
    assert messages(obj) == [
        'spec.versions[1].schema.openAPIV3Schema.properties[spec].default: Invalid value: "string": '
        ' in body must be of type object: "string"',
    ]


def test_immutable_fields_once_established() -> None:
    old = crd()
    old["status"]["conditions"] = [{"type": "Established", "status": "True"}]
    new = copy.deepcopy(old)
    new["spec"]["scope"] = "Cluster"
    new["spec"]["names"]["kind"] = "Gadget"
    new["spec"]["names"]["listKind"] = "GadgetList"
    assert messages(new, old) == [
        'spec.scope: Invalid value: "Cluster": field is immutable',
        'spec.names.kind: Invalid value: "Gadget": field is immutable',
    ]


def test_protected_groups_need_approval() -> None:
    obj = crd(group="widgets.k8s.io")
    obj["metadata"]["name"] = "widgets.widgets.k8s.io"
    assert messages(obj) == [
        "metadata.annotations[api-approved.kubernetes.io]: Required value: "
        "protected groups must have approval "
        'annotation "api-approved.kubernetes.io", see https://github.com/kubernetes/enhancements/pull/1111'
    ]
    obj["metadata"]["annotations"] = {"api-approved.kubernetes.io": "unapproved, testing"}
    assert messages(obj) == []


def test_subresources_columns_and_selectable_fields() -> None:
    obj = crd()
    version = obj["spec"]["versions"][0]
    version["subresources"] = {
        "scale": {"specReplicasPath": "spec.replicas", "statusReplicasPath": ".spec.replicas"}
    }
    version["additionalPrinterColumns"] = [{"name": "X", "type": "float", "jsonPath": "spec.x"}]
    version["selectableFields"] = [{"jsonPath": ".spec.missing"}, {"jsonPath": ".spec"}]
    assert messages(obj) == [
        'spec.subresources.scale.specReplicasPath: Invalid value: "spec.replicas": '
        "must be a simple json path starting with .",
        'spec.subresources.scale.statusReplicasPath: Invalid value: ".spec.replicas": '
        "should be a json path under .status",
        'spec.additionalPrinterColumns[0].type: Invalid value: "float": '
        "must be one of boolean,date,integer,number,string",
        'spec.additionalPrinterColumns[0].JSONPath: Invalid value: "spec.x": '
        "must be a simple json path starting with .",
        'spec.selectableFields[0].jsonPath: Invalid value: ".spec.missing": '
        "is an invalid path: does not refer to a "
        "valid field",
        'spec.selectableFields[1].jsonPath: Invalid value: ".spec": '
        "must point to a field of type string, boolean or "
        "integer. Enum string fields and strings with formats are allowed.",
    ]


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        (
            {
                "type": "object",
                "properties": {"metadata": {"type": "object", "properties": {"labels": {"type": "object"}}}},
            },
            [
                "s.properties[metadata]: Forbidden: "
                "must not specify anything other than name and generateName, "
                "but metadata is implicitly specified"
            ],
        ),
        (
            {"type": "object", "properties": {"a": {"type": "string", "anyOf": [{"type": "string"}]}}},
            ["s.properties[a].anyOf[0].type: Forbidden: must be empty to be structural"],
        ),
        (  # upstream checks completeness from the root's junctors only
            {"type": "object", "properties": {"a": {"type": "object", "anyOf": [{"properties": {"b": {}}}]}}},
            [],
        ),
        (
            {"type": "object", "anyOf": [{"properties": {"b": {}}}]},
            ["s.properties[b]: Required value: because it is defined in s.anyOf[0].properties[b]"],
        ),
        (
            {"type": "array", "items": {"type": "string"}},
            ['s.type: Invalid value: "array": must be object at the root'],
        ),
        (
            {
                "type": "object",
                "properties": {
                    "p": {
                        "x-kubernetes-int-or-string": True,
                        "anyOf": [{"type": "integer"}, {"type": "string"}],
                    }
                },
            },
            [],
        ),
        (
            {
                "type": "object",
                "properties": {"l": {"type": "array", "uniqueItems": True, "items": {"type": "string"}}},
            },
            [
                "s.properties[l].uniqueItems: Forbidden: "
                "uniqueItems cannot be set to true since the runtime complexity becomes quadratic"
            ],
        ),
        (
            {
                "type": "object",
                "properties": {
                    "l": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "items": {"type": "object", "properties": {"k": {"type": "string"}}},
                    }
                },
            },
            [
                "s.properties[l].x-kubernetes-list-map-keys: Required value: "
                "must not be empty if x-kubernetes-list-type is map"
            ],
        ),
        (
            {"type": "object", "properties": {"r": {"$ref": "#/definitions/x", "type": "object"}}},
            ["s.properties[r].$ref: Forbidden: $ref is not supported"],
        ),
    ],
)
def test_schema_rules(schema: Obj, expected: list[str]) -> None:
    assert [f"{c.field}: {c.message}" for c in check_schema(schema, "s", status=False)] == expected


def test_status_subresource_limits_the_root() -> None:
    found = check_schema({"type": "object", "additionalProperties": {"type": "string"}}, "s", status=True)
    assert found[0].field == "s"
    assert found[0].message.endswith(
        "fields are allowed at the root of the schema if the status subresource is enabled"
    )


# -- naming -------------------------------------------------------------------------------------


def accepted(obj: Obj) -> Obj:
    names, names_accepted, established = naming.names_and_conditions(obj, [obj])
    obj["status"]["acceptedNames"] = names
    obj["status"]["conditions"] = [names_accepted, established]
    return obj


def test_names_are_accepted_and_the_crd_established() -> None:
    obj = crd(names={"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]})
    names, names_accepted, established = naming.names_and_conditions(obj, [obj])
    assert names == {
        "plural": "widgets",
        "singular": "widget",
        "shortNames": ["wd"],
        "kind": "Widget",
        "listKind": "WidgetList",
    }
    assert names_accepted == {
        "type": "NamesAccepted",
        "status": "True",
        "reason": "NoConflicts",
        "message": "no conflicts found",
    }
    assert established["status"] == "True" and established["reason"] == "InitialNamesAccepted"


def test_a_kind_taken_in_the_group_is_refused() -> None:
    first = accepted(crd(names={"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]}))
    second = crd(names={"plural": "gadgets", "kind": "Widget", "shortNames": ["wd"]})
    second["metadata"]["name"] = "gadgets.example.com"
    names, names_accepted, established = naming.names_and_conditions(second, [first, second])
    assert names_accepted == {
        "type": "NamesAccepted",
        "status": "False",
        "reason": "ListKindConflict",
        "message": '"WidgetList" is already in use',
    }
    assert established == {
        "type": "Established",
        "status": "False",
        "reason": "NotAccepted",
        "message": "not all names are accepted",
    }
    assert names == {"plural": "gadgets"}  # its singular, "widget", is taken too
    other_group = copy.deepcopy(second)
    other_group["spec"]["group"] = "other.example.com"
    assert naming.names_and_conditions(other_group, [first, other_group])[1]["status"] == "True"


def test_the_plural_of_a_built_in_is_never_accepted() -> None:
    for group, plural, version in (
        ("networking.k8s.io", "networkpolicies", "v9"),
        ("apiextensions.k8s.io", "customresourcedefinitions", "v1"),
        ("coordination.k8s.io", "leasecandidates", "v1"),  # an alpha resource k3py does not serve
    ):
        obj = crd(group=group, names={"plural": plural, "kind": "Thing"})
        obj["metadata"]["name"] = f"{plural}.{group}"
        obj["spec"]["versions"][0]["name"] = version
        assert naming.overlaps_builtin(obj)
        names, names_accepted, established = naming.names_and_conditions(obj, [obj])
        assert names["plural"] == ""
        assert (names_accepted["status"], names_accepted["reason"]) == ("False", "OverlappingBuiltInResource")
        assert names_accepted["message"] == (
            f'"{plural}" is already in use by a built-in resource of "{group}": '
            "its objects would be the built-in's"
        )
        assert established["status"] == "False"
    assert not naming.overlaps_builtin(
        crd(group="networking.k8s.io", names={"plural": "foos", "kind": "Foo"})
    )


# -- resources, columns, JSONPath ----------------------------------------------------------------


def test_served_versions_become_resources_preferred_first() -> None:
    obj = accepted(crd())
    obj["spec"]["versions"] = [
        {**obj["spec"]["versions"][0], "name": name, "storage": name == "v1", "served": name != "v1alpha1"}
        for name in ("v1beta1", "v1", "v2", "v1alpha1")
    ]
    resources = model.resources_of(obj)
    assert [r.version for r in resources] == ["v2", "v1", "v1beta1"]
    assert {r.storage_version for r in resources} == {"example.com/v1"}
    assert {r.stored_as for r in resources} == {"example.com/widgets"}
    kube_order = [
        "v10",
        "v2",
        "v1",
        "v11beta2",
        "v10beta3",
        "v3beta1",
        "v12alpha1",
        "v11alpha2",
        "foo1",
        "foo10",
    ]
    assert sorted(reversed(kube_order), key=model.version_order) == kube_order


NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)


def test_printer_columns() -> None:
    obj = crd()
    obj["spec"]["versions"][0]["additionalPrinterColumns"] = [
        {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
        {"name": "Ratio", "type": "number", "jsonPath": ".spec.ratio", "priority": 1},
        {"name": "Labels", "type": "string", "jsonPath": ".metadata.labels"},
        {"name": "Started", "type": "date", "jsonPath": ".status.started"},
        {"name": "Missing", "type": "string", "jsonPath": ".spec.nothing"},
    ]
    [resource] = model.resources_of(accepted(obj))
    assert resource.custom is not None
    printer = columns.printer(resource.custom)
    widget = {
        "metadata": {"name": "w", "labels": {"b": "2", "a": "1"}},
        "spec": {"replicas": 2.0, "ratio": 0.5},
        "status": {
            "started": "2024-06-01T11:55:00Z",
            "conditions": [{"type": "Synced", "status": "False"}, {"type": "Ready", "status": "True"}],
        },
    }
    assert printer.cells(widget, NOW) == ["w", "True", 2, 0.5, '{"a":"1","b":"2"}', "5m", None]
    assert [(c.name, c.type, c.priority) for c in printer.columns] == [
        ("Name", "string", 0),
        ("Ready", "string", 0),
        ("Replicas", "integer", 0),
        ("Ratio", "number", 1),
        ("Labels", "string", 0),
        ("Started", "date", 0),
        ("Missing", "string", 0),
    ]


def test_a_version_without_columns_prints_age() -> None:
    [resource] = model.resources_of(accepted(crd()))
    assert resource.custom is not None
    printer = columns.printer(resource.custom)
    assert [c.name for c in printer.columns] == ["Name", "Age"]
    assert printer.cells({"metadata": {"name": "w", "creationTimestamp": "2024-06-01T08:00:00Z"}}, NOW) == [
        "w",
        "4h",
    ]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (".spec.items[0].name", ["a"]),
        (".spec.items[-1].name", ["c"]),
        (".spec.items[*].name", ["a", "b", "c"]),
        (".spec.items[0:2].name", ["a", "b"]),
        ("{.spec.items[?(@.n > 1)].name}", ["b", "c"]),
        (".metadata.labels['app.kubernetes.io/name']", ["web"]),
        ("..name", ["w", "a", "b", "c"]),
        (".spec.none", []),
    ],
)
def test_jsonpath(path: str, expected: list[Any]) -> None:
    obj = {
        "metadata": {"name": "w", "labels": {"app.kubernetes.io/name": "web"}},
        "spec": {"items": [{"name": "a", "n": 1}, {"name": "b", "n": 2}, {"name": "c", "n": 3}]},
    }
    assert jsonpath.find(obj, jsonpath.parse(path)) == expected
