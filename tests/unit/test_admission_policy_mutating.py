"""A MutatingAdmissionPolicy's mutations compiled against a kind's schema and applied to real
objects: apply configurations merged as server-side apply merges, JSON patches, refusals."""

from __future__ import annotations

from typing import Any

import pytest

from k3py.api.cel import CelEvalError
from k3py.api.resources import RESOURCES, Resource
from k3py.apiserver.admission_policy_mutating import (
    KindEvaluator,
    MutatingEvaluator,
    MutationError,
    mutated,
)

Obj = dict[str, Any]
DEPLOYMENTS = next(r for r in RESOURCES if (r.group, r.version, r.plural) == ("apps", "v1", "deployments"))


def deployment() -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}, "annotations": {"kept": "yes"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {"name": "web", "image": "nginx", "args": ["-g"]},
                        {"name": "sidecar", "image": "busybox"},
                    ]
                },
            },
        },
    }


def compiled(*mutations: Obj, res: Resource = DEPLOYMENTS, **spec: Any) -> KindEvaluator:
    policy = {"metadata": {"name": "p"}, "spec": {"mutations": list(mutations), **spec}}
    return MutatingEvaluator(policy).for_kind(res)


def apply_config(expression: str) -> Obj:
    return {"patchType": "ApplyConfiguration", "applyConfiguration": {"expression": expression}}


def json_patch(expression: str) -> Obj:
    return {"patchType": "JSONPatch", "jsonPatch": {"expression": expression}}


def run(evaluator: KindEvaluator, obj: Obj, params: Obj | None = None) -> Obj:
    for mutation in evaluator.mutations:
        activation = evaluator.env.activation(obj=obj, old=None, request={}, namespace=None, params=params)
        obj = mutated(obj, mutation, activation, evaluator.node)
    return obj


def test_apply_configuration_merges_maps_and_keeps_the_rest() -> None:
    evaluator = compiled(
        apply_config('Object{metadata: Object.metadata{annotations: {"mutated-by": "admission-policy"}}}'),
        apply_config("Object{spec: Object.spec{replicas: 1337}}"),
    )
    result = run(evaluator, deployment())
    assert result["metadata"]["annotations"] == {"kept": "yes", "mutated-by": "admission-policy"}
    assert result["spec"]["replicas"] == 1337
    assert result["spec"]["template"] == deployment()["spec"]["template"]


def test_apply_configuration_merges_list_maps_by_key() -> None:
    evaluator = compiled(
        apply_config(
            "Object{spec: Object.spec{template: Object.spec.template{spec: Object.spec.template.spec{"
            "containers: [Object.spec.template.spec.containers{name: 'sidecar', image: 'busybox:2'},"
            " Object.spec.template.spec.containers{name: 'added', image: 'alpine'}]}}}}"
        )
    )
    containers = run(evaluator, deployment())["spec"]["template"]["spec"]["containers"]
    assert containers == [
        {"name": "web", "image": "nginx", "args": ["-g"]},
        {"name": "sidecar", "image": "busybox:2"},
        {"name": "added", "image": "alpine"},
    ]


def test_apply_configuration_may_not_set_atomic_values() -> None:
    evaluator = compiled(
        apply_config('Object{spec: Object.spec{selector: Object.spec.selector{matchLabels: {"a": "b"}}}}')
    )
    with pytest.raises(
        MutationError, match=r"may not mutate atomic arrays, maps or structs: \.spec\.selector$"
    ):
        run(evaluator, deployment())


def test_expressions_see_params_and_variables() -> None:
    evaluator = compiled(
        apply_config("Object{spec: Object.spec{replicas: variables.wanted}}"),
        paramKind={"apiVersion": "v1", "kind": "ConfigMap"},
        variables=[{"name": "wanted", "expression": "int(params.data.replicas)"}],
    )
    assert run(evaluator, deployment(), {"data": {"replicas": "7"}})["spec"]["replicas"] == 7


def test_json_patch_operations_apply_in_order() -> None:
    evaluator = compiled(
        json_patch(
            "[JSONPatch{op: 'add', path: '/metadata/labels/tier', value: 'front'},"
            " JSONPatch{op: 'replace', path: '/spec/replicas', value: object.spec.replicas + 2},"
            " JSONPatch{op: 'remove', path: '/metadata/annotations/kept'}]"
        )
    )
    result = run(evaluator, deployment())
    assert result["metadata"]["labels"] == {"app": "web", "tier": "front"}
    assert result["metadata"]["annotations"] == {}
    assert result["spec"]["replicas"] == 3


def test_json_patch_whose_test_fails_changes_nothing() -> None:
    evaluator = compiled(
        json_patch(
            "[JSONPatch{op: 'test', path: '/spec/replicas', value: 5},"
            " JSONPatch{op: 'replace', path: '/spec/replicas', value: 9}]"
        )
    )
    assert run(evaluator, deployment()) == deployment()


def test_json_patch_that_does_not_apply_is_an_error() -> None:
    evaluator = compiled(json_patch("[JSONPatch{op: 'replace', path: '/spec/missing/x', value: 1}]"))
    with pytest.raises(MutationError, match=r"^JSON Patch: "):
        run(evaluator, deployment())


def test_an_expression_of_the_wrong_type_does_not_compile() -> None:
    evaluator = compiled(apply_config("'not an object'"), json_patch("[1, 2]"))
    for mutation in evaluator.mutations:
        assert mutation.compiled.program is None
    with pytest.raises(CelEvalError, match=r"^compilation error: must evaluate to Object but got string$"):
        run(evaluator, deployment())


def test_an_undefined_field_does_not_compile() -> None:
    (mutation,) = compiled(apply_config("Object{spec: Object.spec{replicaz: 3}}")).mutations
    assert "undefined field 'replicaz'" in mutation.compiled.error
