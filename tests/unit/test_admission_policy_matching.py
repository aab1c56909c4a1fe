"""Which requests a policy's matchConstraints (or a binding's matchResources) select, and the
inputs its expressions see: the AdmissionRequest and the trimmed Namespace."""

from __future__ import annotations

from typing import Any

import pytest

from k3py.api.resources import RESOURCES
from k3py.apiserver.admission_policy import MatchResources, PolicyConfigError, parse_match, resource_matched
from k3py.apiserver.admission_policy_inputs import namespace_object
from k3py.apiserver.authn import User
from k3py.apiserver.webhook_review import Call, admission_request
from k3py.apiserver.webhook_rules import GroupVersionResource, Request

Obj = dict[str, Any]
DEPLOYMENTS = GroupVersionResource("apps", "v1", "deployments")
RULE = {
    "operations": ["CREATE", "UPDATE"],
    "apiGroups": ["apps"],
    "apiVersions": ["v1"],
    "resources": ["deployments"],
}


def request(
    resource: GroupVersionResource = DEPLOYMENTS,
    operation: str = "CREATE",
    namespace: str = "team",
    obj: Obj | None = None,
    equivalents: tuple[GroupVersionResource, ...] = (),
) -> Request:
    return Request(
        resource, "", operation, namespace, obj or {"metadata": {"name": "web"}}, None, equivalents
    )


def match(**fields: Any) -> MatchResources:
    return parse_match(fields, "policy.example.com")


def test_resource_rules_select_operation_group_version_and_resource() -> None:
    m = match(resourceRules=[RULE])
    assert resource_matched(m, request(), "web", None) == DEPLOYMENTS
    assert resource_matched(m, request(operation="DELETE"), "web", None) is None
    pods = GroupVersionResource("", "v1", "pods")
    assert resource_matched(m, request(pods), "web", None) is None


def test_no_resource_rules_select_every_resource() -> None:
    """A binding's matchResources without rules narrows nothing."""
    pods = GroupVersionResource("", "v1", "pods")
    assert resource_matched(match(), request(pods), "p", None) == pods


def test_resource_names_narrow_a_rule() -> None:
    m = match(resourceRules=[{**RULE, "resourceNames": ["web", "api"]}])
    assert resource_matched(m, request(), "web", None) == DEPLOYMENTS
    assert resource_matched(m, request(), "other", None) is None


def test_exclude_rules_win_over_resource_rules() -> None:
    m = match(resourceRules=[RULE], excludeResourceRules=[{**RULE, "resourceNames": ["skip-me"]}])
    assert resource_matched(m, request(), "web", None) == DEPLOYMENTS
    assert resource_matched(m, request(), "skip-me", None) is None


def test_equivalent_match_policy_matches_another_version() -> None:
    v1beta1 = GroupVersionResource("apps", "v1beta1", "deployments")
    req = request(v1beta1, equivalents=(DEPLOYMENTS,))
    assert resource_matched(match(resourceRules=[RULE]), req, "web", None) == DEPLOYMENTS
    assert resource_matched(match(resourceRules=[RULE], matchPolicy="Exact"), req, "web", None) is None


def test_namespace_selector_reads_the_namespace_labels() -> None:
    m = match(resourceRules=[RULE], namespaceSelector={"matchLabels": {"team": "true"}})
    assert resource_matched(m, request(), "web", {"team": "true"}) == DEPLOYMENTS
    assert resource_matched(m, request(), "web", {"team": "false"}) is None
    assert resource_matched(m, request(), "web", {}) is None


def test_object_selector_reads_the_object_labels() -> None:
    m = match(resourceRules=[RULE], objectSelector={"matchLabels": {"app": "web"}})
    labelled = {"metadata": {"name": "web", "labels": {"app": "web"}}}
    assert resource_matched(m, request(obj=labelled), "web", None) == DEPLOYMENTS
    assert resource_matched(m, request(), "web", None) is None


def test_a_selector_that_does_not_parse_is_a_configuration_error() -> None:
    with pytest.raises(PolicyConfigError, match="not a valid label selector operator"):
        match(namespaceSelector={"matchExpressions": [{"key": "a", "operator": "Near"}]})


def test_admission_request_names_the_matched_and_the_requested_resource() -> None:
    res = next(r for r in RESOURCES if (r.group, r.version, r.plural) == ("apps", "v1", "deployments"))
    user = User("alice", ("system:authenticated",), uid="u-1")
    call = Call(res, "team", "web", "CREATE", "", {}, None, user, True, {"kind": "CreateOptions"})
    matched = GroupVersionResource("apps", "v1beta1", "deployments")
    req = admission_request(call, matched, "Deployment")
    assert req["kind"] == {"group": "apps", "version": "v1beta1", "kind": "Deployment"}
    assert req["resource"] == {"group": "apps", "version": "v1beta1", "resource": "deployments"}
    assert req["requestResource"] == {"group": "apps", "version": "v1", "resource": "deployments"}
    assert req["userInfo"] == {"username": "alice", "uid": "u-1", "groups": ["system:authenticated"]}
    assert (req["namespace"], req["operation"], req["dryRun"]) == ("team", "CREATE", True)
    assert "subResource" not in req


def test_namespace_object_keeps_what_upstream_keeps() -> None:
    ns = {
        "metadata": {"name": "team", "labels": {"a": "b"}, "managedFields": [{}], "ownerReferences": [{}]},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }
    assert namespace_object(ns) == {
        "metadata": {"name": "team", "labels": {"a": "b"}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }
    assert namespace_object(None) is None
