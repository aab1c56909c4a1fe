"""Request info, RBAC rule matching, impersonation headers and the 403 wording."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from k3py.apiserver import errors
from k3py.apiserver.authn import (
    ANONYMOUS,
    AUTHENTICATED,
    ImpersonationCheck,
    User,
    authenticated,
    impersonation,
)
from k3py.apiserver.authz import Attributes, Chain, Decision, forbidden, privileged_groups
from k3py.apiserver.rbac import rule_allows, subject_applies
from k3py.apiserver.request import request_info

ALICE = User("alice", ("dev",))


@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        ("GET", "/api/v1/namespaces/ns/pods", {}, ("list", "", "ns", "pods", "", "")),
        ("GET", "/api/v1/namespaces/ns/pods", {"watch": "true"}, ("watch", "", "ns", "pods", "", "")),
        ("GET", "/api/v1/pods", {}, ("list", "", "", "pods", "", "")),
        ("GET", "/api/v1/namespaces/ns/pods/p/log", {}, ("get", "", "ns", "pods", "log", "p")),
        (
            "POST",
            "/apis/apps/v1/namespaces/ns/deployments",
            {},
            ("create", "apps", "ns", "deployments", "", ""),
        ),
        ("DELETE", "/api/v1/namespaces/ns/secrets", {}, ("deletecollection", "", "ns", "secrets", "", "")),
        ("DELETE", "/api/v1/namespaces/ns", {}, ("delete", "", "ns", "namespaces", "", "ns")),
        ("PUT", "/api/v1/namespaces/ns/finalize", {}, ("update", "", "ns", "namespaces", "finalize", "ns")),
        ("PATCH", "/api/v1/namespaces/ns/status", {}, ("patch", "", "ns", "namespaces", "status", "ns")),
        ("GET", "/api/v1/nodes/n1", {}, ("get", "", "", "nodes", "", "n1")),
        (
            "GET",
            "/api/v1/namespaces/ns/configmaps",
            {"fieldSelector": "metadata.name=cm1"},
            ("list", "", "ns", "configmaps", "", "cm1"),
        ),
    ],
)
def test_request_info_of_resource_requests(
    method: str, path: str, query: dict[str, str], expected: tuple[str, ...]
) -> None:
    info = request_info(method, path, query)
    assert info.resource_request
    assert (info.verb, info.api_group, info.namespace, info.resource, info.subresource, info.name) == expected


@pytest.mark.parametrize(
    "path", ["/api", "/apis", "/api/v1", "/apis/apps/v1", "/healthz", "/version", "/openapi/v2"]
)
def test_discovery_and_health_are_non_resource_requests(path: str) -> None:
    info = request_info("GET", path, {})
    assert not info.resource_request
    assert (info.verb, info.path) == ("get", path)


def attrs(
    verb: str, resource: str = "", *, group: str = "", ns: str = "", name: str = "", sub: str = ""
) -> Attributes:
    return Attributes(
        ALICE, verb, True, api_group=group, namespace=ns, resource=resource, subresource=sub, name=name
    )


def test_rule_matching() -> None:
    pods = {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}
    assert rule_allows(pods, attrs("get", "pods", ns="a"))
    assert not rule_allows(pods, attrs("delete", "pods", ns="a"))
    assert not rule_allows(pods, attrs("get", "pods", group="apps"))
    assert not rule_allows(pods, attrs("get", "pods", sub="log")), "a subresource needs its own rule"
    assert rule_allows({**pods, "resources": ["pods/log"]}, attrs("get", "pods", sub="log"))
    assert rule_allows({**pods, "resources": ["*/scale"]}, attrs("get", "deployments", sub="scale"))
    assert not rule_allows({**pods, "resources": ["*/scale"]}, attrs("get", "deployments"))
    assert rule_allows({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}, attrs("patch", "x", sub="y"))
    named = {**pods, "resourceNames": ["p1"]}
    assert rule_allows(named, attrs("get", "pods", name="p1"))
    assert not rule_allows(named, attrs("get", "pods", name="p2"))
    assert not rule_allows(named, attrs("list", "pods")), "resourceNames never match an unnamed request"


def test_non_resource_rules() -> None:
    rule = {"verbs": ["get"], "nonResourceURLs": ["/healthz", "/apis/*"]}
    user = Attributes(ALICE, "get", False, path="/healthz")
    assert rule_allows(rule, user)
    assert rule_allows(rule, Attributes(ALICE, "get", False, path="/apis/apps/v1"))
    assert not rule_allows(rule, Attributes(ALICE, "get", False, path="/api"))
    assert not rule_allows(rule, Attributes(ALICE, "post", False, path="/healthz"))
    assert not rule_allows(rule, attrs("get", "healthz")), "URL rules never grant resources"


def test_subjects() -> None:
    sa = User("system:serviceaccount:ns:builder", ("system:serviceaccounts",))
    assert subject_applies({"kind": "User", "name": "alice"}, ALICE, "")
    assert subject_applies({"kind": "Group", "name": "dev"}, ALICE, "")
    assert not subject_applies({"kind": "Group", "name": "alice"}, ALICE, "")
    assert subject_applies({"kind": "ServiceAccount", "name": "builder", "namespace": "ns"}, sa, "other")
    assert subject_applies({"kind": "ServiceAccount", "name": "builder"}, sa, "ns")
    assert not subject_applies({"kind": "ServiceAccount", "name": "builder"}, sa, "other")


def test_masters_bypass_and_chain_reasons() -> None:
    admin = Attributes(User("root", ("system:masters",)), "delete", True, resource="nodes")
    chain = Chain([privileged_groups, lambda a: Decision(False, "RBAC: nothing")])
    assert chain(admin).allowed
    denied = chain(attrs("get", "pods", ns="a"))
    assert not denied.allowed and denied.reason == "RBAC: nothing"


def test_forbidden_wording_matches_kube_apiserver() -> None:
    err = forbidden(attrs("list", "pods", ns="default"))
    assert err.code == 403 and err.reason == "Forbidden"
    assert err.message == (
        'pods is forbidden: User "alice" cannot list resource "pods" in API group "" '
        'in the namespace "default"'
    )
    err = forbidden(attrs("get", "deployments", group="apps", ns="a", name="web", sub="scale"))
    assert err.message == (
        'deployments.apps "web" is forbidden: User "alice" cannot get resource "deployments/scale" '
        'in API group "apps" in the namespace "a"'
    )
    assert err.details == {"group": "apps", "kind": "deployments", "name": "web"}
    err = forbidden(attrs("create", "clusterrolebindings", group="rbac.authorization.k8s.io"))
    assert err.message.endswith('in API group "rbac.authorization.k8s.io" at the cluster scope')
    err = forbidden(Attributes(ANONYMOUS, "get", False, path="/api"))
    assert err.message == 'forbidden: User "system:anonymous" cannot get path "/api"'


def headers(*pairs: tuple[str, str]) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict(pairs))


def impersonated(given: CIMultiDictProxy[str]) -> tuple[User, list[ImpersonationCheck]]:
    got = impersonation(given)
    assert got is not None
    return got


def test_impersonation_headers() -> None:
    assert impersonation(headers(("Accept", "*/*"))) is None
    got = impersonation(
        headers(("Impersonate-User", "bob"), ("Impersonate-Group", "g1"), ("Impersonate-Group", "g2"))
    )
    assert got is not None
    user, checks = got
    assert user == User("bob", ("g1", "g2", AUTHENTICATED))
    assert [(c.resource, c.name) for c in checks] == [("users", "bob"), ("groups", "g1"), ("groups", "g2")]
    user, checks = impersonated(headers(("Impersonate-User", "system:serviceaccount:ns:sa")))
    assert user.groups == ("system:serviceaccounts", "system:serviceaccounts:ns", AUTHENTICATED)
    assert [(c.resource, c.namespace, c.name) for c in checks] == [("serviceaccounts", "ns", "sa")]
    user, checks = impersonated(headers(("Impersonate-User", "u"), ("Impersonate-Extra-Scopes", "view")))
    assert user.extra_dict == {"scopes": ["view"]}
    assert ("userextras", "scopes", "view") in [(c.resource, c.subresource, c.name) for c in checks]
    with pytest.raises(errors.ApiError) as caught:
        impersonation(headers(("Impersonate-Group", "g1")))
    assert caught.value.code == 400


def test_authenticated_group_added_once() -> None:
    assert authenticated(ALICE).groups == ("dev", AUTHENTICATED)
    assert authenticated(authenticated(ALICE)) == authenticated(ALICE)
    assert authenticated(ANONYMOUS) == ANONYMOUS


def test_every_answered_review_has_a_handler() -> None:
    from k3py.api.resources import ANSWERED
    from k3py.apiserver.reviews import Reviews

    assert set(Reviews(privileged_groups, None, (), ()).handlers()) == ANSWERED
