"""Which admission webhooks a request matches: rules, scopes, selectors, match policy, conditions."""

from __future__ import annotations

from typing import Any

import pytest

from k3py.apiserver.webhook_rules import (
    DEFAULT_TIMEOUT,
    GroupVersionResource,
    Hook,
    Request,
    conditions_hold,
    exempt,
    hooks_of,
    matched_resource,
    namespace_selected,
    needs_namespace,
    object_selected,
    parse_hook,
)

Obj = dict[str, Any]
PODS = GroupVersionResource("", "v1", "pods")


def hook(rules: list[Obj], **fields: Any) -> Hook:
    parsed = parse_hook("config", {"name": "h.example.com", "rules": rules, **fields}, mutating=False)
    assert parsed is not None
    return parsed


def rule(operations: list[str], resources: list[str], groups: list[str] | None = None, **more: Any) -> Obj:
    return {
        "operations": operations,
        "apiGroups": groups if groups is not None else [""],
        "apiVersions": ["v1"],
        "resources": resources,
        **more,
    }


def request(
    resource: GroupVersionResource = PODS,
    operation: str = "CREATE",
    subresource: str = "",
    namespace: str = "team",
    obj: Obj | None = None,
    old: Obj | None = None,
    equivalents: tuple[GroupVersionResource, ...] = (),
) -> Request:
    return Request(resource, subresource, operation, namespace, obj, old, equivalents)


def labelled(**labels: str) -> Obj:
    return {"metadata": {"name": "x", "labels": labels}}


# -- rules ---------------------------------------------------------------------------------------


def test_operation_must_be_listed_or_starred() -> None:
    h = hook([rule(["CREATE"], ["pods"])])
    assert matched_resource(h, request(operation="CREATE")) == PODS
    assert matched_resource(h, request(operation="UPDATE")) is None
    assert matched_resource(hook([rule(["*"], ["pods"])]), request(operation="DELETE")) == PODS


def test_group_version_and_resource_must_match() -> None:
    h = hook([rule(["*"], ["configmaps"])])
    assert matched_resource(h, request()) is None
    apps = GroupVersionResource("apps", "v1", "deployments")
    assert matched_resource(hook([rule(["*"], ["deployments"])]), request(apps)) is None
    assert matched_resource(hook([rule(["*"], ["deployments"], ["apps"])]), request(apps)) == apps
    assert matched_resource(hook([rule(["*"], ["deployments"], ["*"])]), request(apps)) == apps
    v2 = hook([{**rule(["*"], ["pods"]), "apiVersions": ["v2"]}], matchPolicy="Exact")
    assert matched_resource(v2, request()) is None


@pytest.mark.parametrize(
    ("listed", "subresource", "matches"),
    [
        ("pods", "", True),
        ("pods", "status", False),
        ("pods/status", "status", True),
        ("pods/status", "", False),
        ("pods/*", "status", True),
        ("pods/*", "", True),  # upstream: "*" matches no subresource too
        ("*", "", True),
        ("*", "status", False),
        ("*/status", "status", True),
        ("*/scale", "status", False),
        ("*/*", "status", True),
        ("*/*", "", True),
        ("pods/attach", "attach", True),
    ],
)
def test_resources_and_subresources(listed: str, subresource: str, matches: bool) -> None:
    h = hook([rule(["*"], [listed])])
    assert (matched_resource(h, request(subresource=subresource)) is not None) is matches


def test_scope() -> None:
    nodes = GroupVersionResource("", "v1", "nodes")
    cluster = hook([rule(["*"], ["*"], scope="Cluster")])
    namespaced = hook([rule(["*"], ["*"], scope="Namespaced")])
    assert matched_resource(cluster, request(nodes, namespace="")) == nodes
    assert matched_resource(cluster, request()) is None
    assert matched_resource(namespaced, request()) == PODS
    assert matched_resource(namespaced, request(nodes, namespace="")) is None


def test_equivalent_policy_matches_another_version_exact_does_not() -> None:
    beta = GroupVersionResource("events.k8s.io", "v1", "events")
    core = GroupVersionResource("", "v1", "events")
    rules = [rule(["CREATE"], ["events"], ["events.k8s.io"])]
    req = request(core, equivalents=(beta,))
    assert matched_resource(hook(rules), req) == beta  # Equivalent is the default
    assert matched_resource(hook(rules, matchPolicy="Exact"), req) is None


def test_any_rule_matching_is_enough() -> None:
    h = hook([rule(["CREATE"], ["configmaps"]), rule(["CREATE"], ["pods"])])
    assert matched_resource(h, request()) == PODS


# -- selectors ------------------------------------------------------------------------------------


def test_namespace_selector_reads_the_namespace_labels() -> None:
    h = hook(
        [rule(["*"], ["*"])],
        namespaceSelector={
            "matchLabels": {"team": "true"},
            "matchExpressions": [{"key": "skip", "operator": "NotIn", "values": ["yes"]}],
        },
    )
    req = request()
    assert needs_namespace(h, req)
    assert namespace_selected(h, req, {"team": "true"})
    assert not namespace_selected(h, req, {"team": "true", "skip": "yes"})
    assert not namespace_selected(h, req, {})


def test_namespace_selector_on_namespaces_uses_the_object_and_cluster_objects_pass() -> None:
    h = hook([rule(["*"], ["*"])], namespaceSelector={"matchLabels": {"team": "true"}})
    namespaces = GroupVersionResource("", "v1", "namespaces")
    create = request(namespaces, namespace="", obj=labelled(team="true"))
    assert not needs_namespace(h, create)
    assert namespace_selected(h, create, None)
    assert not namespace_selected(h, request(namespaces, namespace="", obj=labelled()), None)
    delete = request(namespaces, "DELETE", namespace="", old=labelled(team="true"))
    assert namespace_selected(h, delete, None)
    nodes = request(GroupVersionResource("", "v1", "nodes"), namespace="")
    assert not needs_namespace(h, nodes)
    assert namespace_selected(h, nodes, None)


def test_empty_or_missing_selectors_select_everything() -> None:
    h = hook([rule(["*"], ["*"])])
    assert not needs_namespace(h, request())
    assert namespace_selected(h, request(), None)
    assert object_selected(h, request(obj=labelled()))
    assert object_selected(hook([rule(["*"], ["*"])], objectSelector={}), request())


def test_object_selector_on_new_or_old_object() -> None:
    h = hook([rule(["*"], ["*"])], objectSelector={"matchLabels": {"app": "web"}})
    assert object_selected(h, request(obj=labelled(app="web")))
    assert not object_selected(h, request(obj=labelled(app="db")))
    assert object_selected(h, request(operation="UPDATE", obj=labelled(), old=labelled(app="web")))
    assert object_selected(h, request(operation="DELETE", old=labelled(app="web")))
    assert not object_selected(h, request(operation="DELETE"))


def test_unparseable_selector_leaves_the_webhook_out() -> None:
    bad = {
        "name": "h",
        "rules": [],
        "objectSelector": {"matchExpressions": [{"key": "a", "operator": "Near"}]},
    }
    assert parse_hook("c", bad, mutating=True) is None


# -- match conditions -----------------------------------------------------------------------------


def test_conditions_are_cel() -> None:
    """Every condition is evaluated (more in test_webhook_rules_conditions.py)."""
    h = hook(
        [rule(["*"], ["*"])],
        matchConditions=[
            {"name": "cel", "expression": "!has(object.spec) || object.spec.replicas > 2"},
            {"name": "name", "expression": "object.metadata.name != 'skip-me'"},
        ],
    )
    assert conditions_hold(h, request(obj={"metadata": {"name": "x"}}))
    assert conditions_hold(h, request(obj={"metadata": {"name": "x"}, "spec": {"replicas": 3}}))
    assert not conditions_hold(h, request(obj={"metadata": {"name": "x"}, "spec": {"replicas": 1}}))
    assert not conditions_hold(h, request(obj={"metadata": {"name": "skip-me"}}))


# -- configurations -------------------------------------------------------------------------------


def test_hooks_in_configuration_name_then_webhook_order_with_v1_defaults() -> None:
    configs = [
        {"metadata": {"name": "b"}, "webhooks": [{"name": "b1"}, {"name": "b2"}]},
        {
            "metadata": {"name": "a"},
            "webhooks": [{"name": "a1", "timeoutSeconds": 3, "failurePolicy": "Ignore"}],
        },
    ]
    hooks = hooks_of(configs, mutating=True)
    assert [h.name for h in hooks] == ["a1", "b1", "b2"]
    assert hooks[0].timeout == 3 and hooks[0].ignores_failures
    assert hooks[1].timeout == DEFAULT_TIMEOUT and not hooks[1].ignores_failures
    assert hooks[1].match_policy == "Equivalent" and hooks[1].reinvocation == "Never"
    assert all(h.mutating for h in hooks)


def test_webhook_configurations_are_exempt() -> None:
    group = "admissionregistration.k8s.io"
    assert exempt(GroupVersionResource(group, "v1", "validatingwebhookconfigurations"))
    assert exempt(GroupVersionResource(group, "v1", "mutatingwebhookconfigurations"))
    assert not exempt(PODS)
    assert not exempt(GroupVersionResource("example.com", "v1", "mutatingwebhookconfigurations"))
