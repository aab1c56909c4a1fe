"""The bundled default RBAC policy (upstream 1.37's bootstrap policy) and its reconciliation.

The data is checked with k3py's own validation and schema walk, plus the body rules of upstream's
``pkg/apis/rbac/validation`` (which k3py's validator does not carry for RBAC kinds), and against
facts of upstream's fixtures. Reconciliation cases follow
``k8s.io/component-helpers/auth/rbac/reconciliation``.
"""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

import pytest

from k3py.api import defaults
from k3py.apiserver import rbac_policy
from k3py.apiserver.fieldvalidation import unknown_fields
from k3py.apiserver.rbac_policy import AUTOUPDATE, Change, Operation, reconcile
from tests.unit.api_cases import check, resource

Obj = dict[str, Any]

GROUP = "rbac.authorization.k8s.io"
PLURALS = {"ClusterRole": "clusterroles", "Role": "roles"}
PLURALS |= {"ClusterRoleBinding": "clusterrolebindings", "RoleBinding": "rolebindings"}
POLICY = rbac_policy.load()


def by_kind(kind: str) -> dict[tuple[str, str], Obj]:
    return {
        (o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in POLICY if o["kind"] == kind
    }


def cluster(kind: str, name: str) -> Obj:
    return copy.deepcopy(by_kind(kind)[("", name)])


def label(obj: Obj) -> str:
    meta = obj["metadata"]
    return f"{obj['kind']}/{meta.get('namespace', '')}/{meta['name']}"


def rule(groups: str, resources: str, verbs: str, names: str = "") -> Obj:
    """A resource rule from comma-separated fields."""
    out: Obj = {"apiGroups": groups.split(","), "resources": resources.split(","), "verbs": verbs.split(",")}
    return out | ({"resourceNames": names.split(",")} if names else {})


def urls(paths: str, verbs: str) -> Obj:
    return {"nonResourceURLs": paths.split(","), "verbs": verbs.split(",")}


def rbac_problems(obj: Obj) -> list[str]:
    """Upstream's ValidatePolicyRule / ValidateRoleBinding body checks, as short messages."""
    problems: list[str] = []
    namespaced = obj["kind"] in ("Role", "RoleBinding")
    if namespaced != ("namespace" in obj["metadata"]):
        problems.append("namespace")
    for i, rule in enumerate(obj.get("rules") or []):
        if not rule.get("verbs"):
            problems.append(f"rules[{i}].verbs required")
        if rule.get("nonResourceURLs"):
            if namespaced or any(rule.get(k) for k in ("apiGroups", "resources", "resourceNames")):
                problems.append(f"rules[{i}].nonResourceURLs invalid")
        elif not rule.get("apiGroups") or not rule.get("resources"):
            problems.append(f"rules[{i}] needs apiGroups and resources")
    if "roleRef" in obj:
        ref = obj["roleRef"]
        kinds = ("Role", "ClusterRole") if namespaced else ("ClusterRole",)
        if ref.get("apiGroup") != GROUP or ref.get("kind") not in kinds or not ref.get("name"):
            problems.append("roleRef")
    for i, subject in enumerate(obj.get("subjects") or []):
        ok = {
            "ServiceAccount": not subject.get("apiGroup") and bool(subject.get("namespace")),
            "User": subject.get("apiGroup") == GROUP,
            "Group": subject.get("apiGroup") == GROUP,
        }.get(subject.get("kind", ""), False)
        if not ok or not subject.get("name"):
            problems.append(f"subjects[{i}]")
    return problems


# -- the data --------------------------------------------------------------------------------------


def test_counts_match_upstream_fixtures() -> None:
    # cluster-roles.yaml 32 + controller-roles.yaml 41; cluster-role-bindings.yaml 13 +
    # controller-role-bindings.yaml 41; namespace-roles.yaml 7; namespace-role-bindings.yaml 7.
    k3s = {"system:coredns"}  # the role K3s's packaged CoreDNS manifest brings

    def from_upstream(name: str) -> bool:
        return not name.startswith("k3py:") and name not in k3s

    upstream = [o for o in POLICY if from_upstream(o["metadata"]["name"])]
    assert Counter(o["kind"] for o in upstream) == {
        "ClusterRole": 73,
        "ClusterRoleBinding": 54,
        "Role": 7,
        "RoleBinding": 7,
    }


def test_k3py_bindings_come_last_and_name_roles_that_exist() -> None:
    ours = [o for o in POLICY if o["metadata"]["name"].startswith("k3py:")]
    assert POLICY[-len(ours) :] == ours
    roles = {o["metadata"]["name"] for o in POLICY if o["kind"] == "ClusterRole"}
    assert {o["metadata"]["name"] for o in ours} == {
        "k3py:node-bootstrapper",
        "k3py:node-autoapprove-bootstrap",
        "k3py:node-autoapprove-certificate-rotation",
        "k3py:controller:disruption-controller",
        "k3py:node-proxier",
    }
    assert all(o["roleRef"]["name"] in roles for o in ours if o["kind"] == "ClusterRoleBinding")


@pytest.mark.parametrize("obj", POLICY, ids=label)
def test_object_validates(obj: Obj) -> None:
    res = resource(f"{PLURALS[obj['kind']]}.{GROUP}")
    assert obj["apiVersion"] == f"{GROUP}/v1"
    assert check(res.name, obj) == []
    assert unknown_fields(res, obj) == []
    assert rbac_problems(obj) == []


@pytest.mark.parametrize("obj", POLICY, ids=label)
def test_object_carries_bootstrap_metadata(obj: Obj) -> None:
    assert set(obj["metadata"]) <= {"name", "namespace", "labels", "annotations"}
    assert obj["metadata"]["labels"]["kubernetes.io/bootstrapping"] == "rbac-defaults"
    assert obj["metadata"]["annotations"] == {AUTOUPDATE: "true"}


def test_validation_helpers_catch_bad_objects() -> None:
    role = cluster("ClusterRole", "system:kube-dns")
    role["metadata"]["name"] = "a/b"
    role["rules"][0]["verb"] = role["rules"][0].pop("verbs")
    res = resource(f"clusterroles.{GROUP}")
    assert check(res.name, role) != []
    assert unknown_fields(res, role) == ["rules[0].verb"]
    assert rbac_problems(role) == ["rules[0].verbs required"]


def test_names_are_unique_per_kind_and_namespace() -> None:
    keys = Counter((o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in POLICY)
    assert [key for key, n in keys.items() if n > 1] == []


def test_namespaced_objects_live_in_system_namespaces() -> None:
    namespaces = {o["metadata"]["namespace"] for o in POLICY if o["kind"] in ("Role", "RoleBinding")}
    assert namespaces == {"kube-system", "kube-public"}


def test_every_binding_refers_to_a_bundled_role() -> None:
    for binding in (o for o in POLICY if "roleRef" in o):
        ref = binding["roleRef"]
        namespace = binding["metadata"].get("namespace", "") if ref["kind"] == "Role" else ""
        assert (namespace, ref["name"]) in by_kind(ref["kind"]), label(binding)


@pytest.mark.parametrize("name", ["admin", "edit", "view"])
def test_user_facing_roles_are_aggregated(name: str) -> None:
    role = cluster("ClusterRole", name)
    assert not role.get("rules")
    assert role["aggregationRule"] == {
        "clusterRoleSelectors": [{"matchLabels": {f"{GROUP}/aggregate-to-{name}": "true"}}]
    }
    source = cluster("ClusterRole", f"system:aggregate-to-{name}")
    assert source["metadata"]["labels"][f"{GROUP}/aggregate-to-{name}"] == "true"
    assert source["rules"]


def test_aggregation_chains_view_into_edit_into_admin() -> None:
    assert cluster("ClusterRole", "edit")["metadata"]["labels"][f"{GROUP}/aggregate-to-admin"] == "true"
    assert cluster("ClusterRole", "view")["metadata"]["labels"][f"{GROUP}/aggregate-to-edit"] == "true"


def test_cluster_admin_can_do_everything() -> None:
    assert cluster("ClusterRole", "cluster-admin")["rules"] == [
        {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
        {"nonResourceURLs": ["*"], "verbs": ["*"]},
    ]
    assert cluster("ClusterRoleBinding", "cluster-admin")["subjects"] == [
        {"kind": "Group", "apiGroup": GROUP, "name": "system:masters"}
    ]


def test_public_info_viewer_is_open_to_everyone() -> None:
    assert cluster("ClusterRole", "system:public-info-viewer")["rules"] == [
        {"nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"], "verbs": ["get"]}
    ]
    subjects = cluster("ClusterRoleBinding", "system:public-info-viewer")["subjects"]
    assert [(s["kind"], s["name"]) for s in subjects] == [
        ("Group", "system:authenticated"),
        ("Group", "system:unauthenticated"),
    ]


@pytest.mark.parametrize(
    ("name", "subjects"),
    [
        ("system:discovery", [("Group", "system:authenticated")]),
        ("system:basic-user", [("Group", "system:authenticated")]),
        ("system:monitoring", [("Group", "system:monitoring")]),
        ("system:node-proxier", [("User", "system:kube-proxy")]),
        ("system:kube-scheduler", [("User", "system:kube-scheduler")]),
        ("system:kube-controller-manager", [("User", "system:kube-controller-manager")]),
        ("system:kube-dns", [("ServiceAccount", "kube-dns")]),
        ("system:service-account-issuer-discovery", [("Group", "system:serviceaccounts")]),
        ("system:controller:job-controller", [("ServiceAccount", "job-controller")]),
        ("system:node", []),  # the Node authorizer grants nodes their access, not RBAC
    ],
)
def test_cluster_role_binding_subjects(name: str, subjects: list[tuple[str, str]]) -> None:
    binding = cluster("ClusterRoleBinding", name)
    assert binding["roleRef"] == {"apiGroup": GROUP, "kind": "ClusterRole", "name": name}
    assert [(s["kind"], s["name"]) for s in binding.get("subjects", [])] == subjects


def test_required_roles_are_present() -> None:
    names = {name for _, name in by_kind("ClusterRole")}
    required = {
        "cluster-admin", "admin", "edit", "view", "system:discovery", "system:basic-user",
        "system:public-info-viewer", "system:monitoring", "system:node", "system:node-proxier",
        "system:node-bootstrapper", "system:kube-scheduler", "system:kube-controller-manager",
        "system:kube-dns", "system:auth-delegator", "system:heapster", "system:kube-aggregator",
        "system:persistent-volume-provisioner", "system:volume-scheduler",
        "system:service-account-issuer-discovery",
        "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
        "system:controller:attachdetach-controller", "system:controller:namespace-controller",
        "system:controller:generic-garbage-collector", "system:controller:service-account-controller",
    }  # fmt: skip
    assert required - names == set()
    controllers = {n for n in names if n.startswith("system:controller:")}
    bound = {name for _, name in by_kind("ClusterRoleBinding")}
    assert controllers <= bound


def test_load_returns_fresh_copies() -> None:
    first = rbac_policy.load()
    first[0]["metadata"]["name"] = "changed"
    assert rbac_policy.load()[0]["metadata"]["name"] != "changed"


# -- reconcile -------------------------------------------------------------------------------------


def stored(obj: Obj, **meta: Any) -> Obj:
    """``obj`` as the API server returns it: defaulted, with server-set metadata."""
    out = copy.deepcopy(obj)
    defaults.apply(resource(f"{PLURALS[obj['kind']]}.{GROUP}"), out)
    out["metadata"] |= {"uid": "u-1", "resourceVersion": "42", "creationTimestamp": "2026-01-01T00:00:00Z"}
    out["metadata"] |= meta
    return out


def kept_server_metadata(change: Change) -> None:
    meta = change.obj["metadata"]
    assert (meta["uid"], meta["resourceVersion"], meta["creationTimestamp"]) == (
        "u-1",
        "42",
        "2026-01-01T00:00:00Z",
    )


@pytest.mark.parametrize("obj", POLICY, ids=label)
def test_reconcile_stored_policy_is_a_no_op(obj: Obj) -> None:
    assert reconcile(obj, stored(obj)) is None


def test_reconcile_missing_creates_wanted() -> None:
    wanted = cluster("ClusterRole", "system:kube-dns")
    change = reconcile(wanted, None)
    assert change == Change(Operation.CREATE, wanted)
    assert change is not None and change.obj is not wanted and not change.recreate


@pytest.mark.parametrize("kind", ["ClusterRole", "ClusterRoleBinding"])
def test_reconcile_leaves_autoupdate_false_alone(kind: str) -> None:
    wanted = cluster(kind, "system:kube-dns")
    existing = stored(wanted, annotations={AUTOUPDATE: "false"})
    existing.pop("rules", None)
    existing.pop("subjects", None)
    existing["metadata"]["labels"] = {}
    assert reconcile(wanted, existing) is None
    if kind == "ClusterRoleBinding":
        existing["roleRef"]["name"] = "other"
        assert reconcile(wanted, existing) is None


def test_reconcile_adds_missing_rules_broken_down_and_keeps_extra_ones() -> None:
    wanted = cluster("ClusterRole", "system:kube-dns")
    assert wanted["rules"] == [rule("", "endpoints,services", "list,watch")]
    extra, partial = rule("example.com", "widgets", "get"), rule("", "endpoints", "list,watch")
    existing = stored(wanted)
    existing["rules"] = [extra, partial]
    change = reconcile(wanted, existing)
    assert change is not None and change.operation is Operation.UPDATE
    assert change.obj["rules"] == [
        extra,
        partial,
        rule("", "services", "list"),
        rule("", "services", "watch"),
    ]
    kept_server_metadata(change)


@pytest.mark.parametrize(
    "owner",
    [rule("*", "*", "*"), rule("", "endpoints,services,pods", "get,list,watch")],
)
def test_reconcile_rules_covered_by_broader_ones_are_not_added(owner: Obj) -> None:
    wanted = cluster("ClusterRole", "system:kube-dns")
    existing = stored(wanted)
    existing["rules"] = [owner]
    assert reconcile(wanted, existing) is None


@pytest.mark.parametrize(
    ("owner", "sub", "covers"),
    [
        (urls("/api/*", "get"), urls("/api/v1", "get"), True),
        (urls("/api", "get"), urls("/api/v1", "get"), False),
        (urls("/api/*", "get"), urls("/api/v1", "list"), False),
        (rule("", "*/status", "get"), rule("", "pods/status", "get"), True),
        (rule("", "*/status", "get"), rule("", "pods", "get"), False),
        (rule("", "pods", "get", names="a"), rule("", "pods", "get"), False),
        (rule("", "pods", "get", names="a,b"), rule("", "pods", "get", names="b"), True),
        (rule("", "pods", "get"), rule("", "pods", "get", names="a"), True),
        (rule("apps", "pods", "get"), rule("", "pods", "get"), False),
        (rule("*", "pods", "*"), rule("apps", "pods", "patch"), True),
        (rule("*", "*", "get"), urls("/healthz", "get"), False),
    ],
)
def test_rule_coverage(owner: Obj, sub: Obj, covers: bool) -> None:
    wanted = {"apiVersion": f"{GROUP}/v1", "kind": "ClusterRole", "metadata": {"name": "r"}, "rules": [sub]}
    existing = copy.deepcopy(wanted) | {"rules": [owner]}
    change = reconcile(wanted, existing)
    assert (change is None) is covers
    if change is not None:
        assert change.obj["rules"] == [owner, sub]


def test_reconcile_adds_missing_labels_and_annotations_without_overriding() -> None:
    wanted = cluster("ClusterRole", "edit")
    existing = stored(wanted, labels={"kubernetes.io/bootstrapping": "mine", "team": "a"}, annotations={})
    change = reconcile(wanted, existing)
    assert change is not None and change.operation is Operation.UPDATE
    assert change.obj["metadata"]["labels"] == {
        "kubernetes.io/bootstrapping": "mine",
        "team": "a",
        f"{GROUP}/aggregate-to-admin": "true",
    }
    assert change.obj["metadata"]["annotations"] == {AUTOUPDATE: "true"}
    kept_server_metadata(change)


def test_reconcile_aggregated_role_keeps_aggregated_rules_and_unions_selectors() -> None:
    wanted = cluster("ClusterRole", "view")
    existing = stored(wanted)
    aggregated = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]
    existing["rules"] = aggregated  # filled in by the clusterrole-aggregation controller
    assert reconcile(wanted, existing) is None
    custom = {"matchLabels": {"example.com/aggregate-to-view": "true"}}
    existing["aggregationRule"]["clusterRoleSelectors"] = [custom]
    change = reconcile(wanted, existing)
    assert change is not None and change.operation is Operation.UPDATE
    assert change.obj["aggregationRule"]["clusterRoleSelectors"] == [
        custom,
        {"matchLabels": {f"{GROUP}/aggregate-to-view": "true"}},
    ]
    assert change.obj["rules"] == aggregated


def test_reconcile_drops_aggregation_rule_no_longer_wanted() -> None:
    wanted = cluster("ClusterRole", "system:kube-dns")
    existing = stored(wanted)
    existing["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {"a": "b"}}]}
    change = reconcile(wanted, existing)
    assert change is not None and "aggregationRule" not in change.obj


def test_reconcile_adds_missing_subjects_and_keeps_extra_ones() -> None:
    wanted = cluster("ClusterRoleBinding", "system:public-info-viewer")
    extra = {"kind": "User", "apiGroup": GROUP, "name": "alice"}
    existing = stored(wanted)
    existing["subjects"] = [extra, wanted["subjects"][1]]
    change = reconcile(wanted, existing)
    assert change is not None and change.operation is Operation.UPDATE and not change.recreate
    assert change.obj["subjects"] == [extra, wanted["subjects"][1], wanted["subjects"][0]]
    kept_server_metadata(change)


def test_reconcile_namespaced_binding_subjects() -> None:
    wanted = copy.deepcopy(by_kind("RoleBinding")[("kube-system", "system::leader-locking-kube-scheduler")])
    existing = stored(wanted)
    del existing["subjects"]
    change = reconcile(wanted, existing)
    assert change is not None and change.obj["subjects"] == wanted["subjects"]
    assert change.obj["metadata"]["namespace"] == "kube-system"


def test_reconcile_binding_with_other_role_ref_is_recreated() -> None:
    wanted = cluster("ClusterRoleBinding", "system:kube-dns")
    existing = stored(wanted)
    existing["roleRef"]["name"] = "system:heapster"
    change = reconcile(wanted, existing)
    assert change == Change(Operation.RECREATE, wanted)
    assert change is not None and change.recreate and "uid" not in change.obj["metadata"]


def test_reconcile_rejects_other_kinds() -> None:
    with pytest.raises(rbac_policy.PolicyError):
        reconcile({"kind": "ConfigMap", "metadata": {"name": "x"}}, None)
