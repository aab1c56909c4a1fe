"""The CEL type checker: types of well-formed expressions, the object types built from OpenAPI
schemas, and compile errors worded and placed as cel-go words and places them (the substrings
the admission policy e2e tests look for among them)."""

from __future__ import annotations

import pytest

from k3py.api.cel import DYN, CelSyntaxError, CelType, CelTypeError, Env, compile, schema_type
from k3py.api.cel.types import INT, STRING, list_of, map_of
from k3py.api.schema import Schemas


@pytest.fixture(scope="module")
def deployment() -> CelType:
    node = Schemas.get().kind("apps", "v1", "Deployment")
    assert node is not None
    return schema_type(node, "Object")


@pytest.fixture(scope="module")
def env(deployment: CelType) -> Env:
    variables = {
        "object": deployment,
        "oldObject": deployment,
        "params": DYN,
        "variables": map_of(STRING, DYN),
        "labels": map_of(STRING, STRING),
        "items": list_of(INT),
    }
    return Env(variables, {"Object": deployment})


def output(expression: str, env: Env) -> str:
    return str(compile(expression, env).output_type)


def error(expression: str, env: Env) -> str:
    with pytest.raises(CelTypeError) as caught:
        compile(expression, env)
    return str(caught.value)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1 + 2", "int"),
        ("1u * 3u", "uint"),
        ("1.5 / 2.0", "double"),
        ("'a' + 'b'", "string"),
        ("b'a' + b'b'", "bytes"),
        ("[1, 2] + [3]", "list(int)"),
        ("[]", "list(dyn)"),
        ("{'a': 1}", "map(string, int)"),
        ("{'a': 1}.a", "int"),
        ("null", "null_type"),
        ("1 < 2.5", "bool"),
        ("2u >= 1", "bool"),
        ("true ? 1 : 2", "int"),
        ("object.spec.replicas", "int"),
        ("object.spec", "Object.spec"),
        ("object.spec.template.spec.containers", "list(Object.spec.template.spec.containers.@idx)"),
        ("object.metadata.labels", "map(string, string)"),
        ("object.spec.strategy.rollingUpdate.maxSurge", "dyn"),
        ("object.spec.template.spec.containers.map(c, c.name)", "list(string)"),
        ("object.spec.template.spec.containers.all(c, c.image != '')", "bool"),
        ("items.filter(x, x > 1)", "list(int)"),
        ("labels.map(k, labels[k])", "list(string)"),
        ("labels.transformMap(k, v, size(v))", "map(string, int)"),
        ("has(object.spec.paused)", "bool"),
        ("params.anything.goes[3]", "dyn"),
        ("params + 1", "int"),
        ("dyn(1) + dyn(2)", "dyn"),
        ("size(object.metadata.name)", "int"),
        ("object.metadata.name.startsWith('x')", "bool"),
        ("int('1') + int(2.5)", "int"),
        ("string(1)", "string"),
        ("type(1)", "type(int)"),
        ("type(1) == int", "bool"),
        ("duration('1s')", "google.protobuf.Duration"),
        ("timestamp('2024-01-01T00:00:00Z') - duration('1h')", "google.protobuf.Timestamp"),
        ("object.spec.?replicas", "optional_type(int)"),
        ("object.spec.?replicas.orValue(1)", "int"),
        ("optional.of('a')", "optional_type(string)"),
        ("Object{spec: Object.spec{replicas: 1}}", "Object"),
        ("JSONPatch{op: 'add', path: '/a', value: [1]}", "JSONPatch"),
        ("'a,b'.split(',')", "list(string)"),
        ("[1, 2].sum()", "int"),
        ("quantity('1Gi')", "kubernetes.Quantity"),
        ("variables.foo", "dyn"),
        ("object.spec.replicas in items", "bool"),
    ],
)
def test_output_types(expression: str, expected: str, env: Env) -> None:
    assert output(expression, env) == expected


def test_the_e2e_messages(env: Env) -> None:
    assert error("object.spec.replicas > '1'", env) == (
        "ERROR: <input>:1:22: found no matching overload for '_>_' applied to '(int, string)'\n"
        " | object.spec.replicas > '1'\n"
        " | .....................^"
    )
    assert "found no matching overload for '_+_' applied to '(string, int)'" in error(
        "'wants replicas > 1, got ' + object.spec.replicas", env
    )
    assert error("object.spec.maxRetries < 10", env).startswith(
        "ERROR: <input>:1:12: undefined field 'maxRetries'"
    )


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("foo", "1:1: undeclared reference to 'foo' (in container '')"),
        ("nope(1)", "1:5: undeclared reference to 'nope' (in container '')"),
        ("size(1)", "1:5: found no matching overload for 'size' applied to '(int)'"),
        (
            "object.metadata.name.startsWith(1)",
            "found no matching overload for 'startsWith' applied to 'string.(int)'",
        ),
        ("1 == 'a'", "1:3: found no matching overload for '_==_' applied to '(int, string)'"),
        ("[1, 'a']", "1:5: expected type 'int' but found 'string'"),
        ("{'a': 1, 'b': 'c'}", "expected type 'int' but found 'string'"),
        ("true ? 1 : 'a'", "found no matching overload for '_?_:_' applied to '(bool, int, string)'"),
        ("1.foo", "type 'int' does not support field selection"),
        (
            "1.all(x, x)",
            "expression of type 'int' cannot be range of a comprehension (must be list, map, or dynamic)",
        ),
        ("items.all(x, x + 1)", "found no matching overload for '_&&_' applied to '(bool, int)'"),
        ("has(object.spec.nothing)", "undefined field 'nothing'"),
        (
            "Object{spec: Object.spec{replicas: 'x'}}",
            "expected type of field 'replicas' is 'int' but provided type is 'string'",
        ),
        ("Object{nothing: 1}", "undefined field 'nothing'"),
        ("Nope{a: 1}", "undeclared reference to 'Nope' (in container '')"),
        ("-'a'", "found no matching overload for '-_' applied to '(string)'"),
        ("!1", "found no matching overload for '!_' applied to '(int)'"),
        ("1 && true", "found no matching overload for '_&&_' applied to '(int, bool)'"),
        ("'a' in items", "found no matching overload for '@in' applied to '(string, list(int))'"),
        ("labels[1]", "found no matching overload for '_[_]' applied to '(map(string, string), int)'"),
    ],
)
def test_errors(expression: str, message: str, env: Env) -> None:
    assert message in error(expression, env)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("duration('1x')", "1:10: invalid duration argument"),
        ("timestamp('yesterday') < timestamp('2024-01-01T00:00:00Z')", "1:11: invalid timestamp argument"),
        ("object.metadata.name.matches('[')", "1:30: invalid matches argument"),
        ("matches(object.metadata.name, '(')", "1:31: invalid matches argument"),
    ],
)
def test_literal_arguments_are_validated(expression: str, message: str, env: Env) -> None:
    assert message in error(expression, env)


def test_every_error_is_reported_once_in_source_order(env: Env) -> None:
    text = error("size(1) + object.spec.nope + foo", env)
    heads = [line for line in text.splitlines() if line.startswith("ERROR:")]
    assert heads == [
        "ERROR: <input>:1:5: found no matching overload for 'size' applied to '(int)'",
        "ERROR: <input>:1:22: undefined field 'nope'",
        "ERROR: <input>:1:30: undeclared reference to 'foo' (in container '')",
    ]


def test_syntax_errors_stay_syntax_errors(env: Env) -> None:
    with pytest.raises(CelSyntaxError):
        compile("1 +", env)


def test_comprehension_variables_shadow_and_end_with_their_scope(env: Env) -> None:
    assert output("items.map(object, object + 1)", env) == "list(int)"
    assert "undeclared reference to 'x'" in error("items.all(x, x > 0) && x > 0", env)


def test_schema_types_follow_kubernetes_naming(deployment: CelType) -> None:
    spec = deployment.field("spec")
    assert spec is not None and str(spec) == "Object.spec"
    template = spec.field("template")
    assert template is not None and str(template) == "Object.spec.template"
    assert deployment.field("nope") is None
    assert schema_type(None) == DYN
    assert str(deployment.field("metadata")) == "Object.metadata"


def test_schema_types_of_custom_resources() -> None:
    schemas = Schemas(
        {
            "crd": {
                "type": "object",
                "properties": {
                    "spec": {
                        "type": "object",
                        "properties": {
                            "count": {"type": "integer"},
                            "ratio": {"type": "number"},
                            "port": {"x-kubernetes-int-or-string": True},
                            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                            "known": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                                "properties": {"a": {"type": "string"}},
                            },
                            "tags": {"type": "object", "additionalProperties": {"type": "boolean"}},
                            "data": {"type": "string", "format": "byte"},
                        },
                    }
                },
            }
        }
    )
    crd = schema_type(schemas.node("crd"), "Object")
    spec = crd.field("spec")
    assert spec is not None
    shown = {name: str(spec.field(name)) for name in ("count", "ratio", "port", "free", "tags", "data")}
    assert shown == {
        "count": "int",
        "ratio": "double",
        "port": "dyn",
        "free": "dyn",
        "tags": "map(string, bool)",
        "data": "string",
    }
    env = Env({"self": crd})
    assert str(compile("self.spec.free.whatever.deep", env).output_type) == "dyn"
    assert str(compile("self.spec.known.a", env).output_type) == "string"
    with pytest.raises(CelTypeError, match="undefined field 'b'"):
        compile("self.spec.known.b", env)
    with pytest.raises(CelTypeError, match="undefined field 'maxRetries'"):
        compile("self.spec.maxRetries", env)


def test_construction_names_follow_mutating_admission_policy(env: Env) -> None:
    volumes = (
        "Object{spec: Object.spec{template: Object.spec.template{spec: Object.spec.template.spec{"
        "volumes: [Object.spec.template.spec.volumes{name: 'v'}]}}}}"
    )
    assert output(volumes, env) == "Object"
    assert "undefined field 'nope'" in error("Object.spec.template.spec.volumes{nope: 1}", env)
    assert "expected type of field 'name' is 'string'" in error(
        "Object.spec.template.spec.volumes{name: 1}", env
    )


def test_objects_without_a_schema_take_any_field() -> None:
    env = Env({"object": DYN}, {"Object": DYN})
    assert output("Object{spec: Object.spec{anything: [1], at: {'all': object.x}}}", env) == "Object"
    assert output("Object{}.spec.whatever", env) == "dyn"
