"""Validation of apps/v1 workloads: Deployments, ReplicaSets, StatefulSets, DaemonSets (and RCs).

Expected causes are kube-apiserver 1.37's: selector rules and their Go-rendered values, template
rules (restart policy, deadlines, the pod spec), strategies, and the apps/v1 update rules.
"""

# ruff: noqa: E501  (tables of upstream's messages: one expected cause per line reads and greps best)
from __future__ import annotations

import copy
from typing import Any

import pytest

from k3py.api import defaults
from k3py.api.validation import Cause, validate
from tests.unit.api_cases import WEB_STATEFULSET, check, forbidden, invalid, required, resource

Obj = dict[str, Any]


def unsupported(field: str, shown: str, *supported: str) -> Cause:
    values = ", ".join(f'"{s}"' for s in supported)
    return Cause("FieldValueNotSupported", f"Unsupported value: {shown}: supported values: {values}", field)


def workload(kind: str, **spec: Any) -> Obj:
    body: Obj = {
        "selector": {"matchLabels": {"app": "nginx"}},
        "template": {
            "metadata": {"labels": {"app": "nginx"}},
            "spec": {
                "containers": [{"name": "nginx", "image": "nginx:1.14.2", "ports": [{"containerPort": 80}]}]
            },
        },
        **spec,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": "nginx", "namespace": "default"},
        "spec": body,
    }


NAMES = {"Deployment": "deployments.apps", "ReplicaSet": "replicasets.apps", "DaemonSet": "daemonsets.apps"}


@pytest.mark.parametrize("kind", ["Deployment", "ReplicaSet", "DaemonSet"])
def test_nginx_workloads_pass(kind: str) -> None:
    assert check(NAMES[kind], workload(kind, replicas=3) if kind != "DaemonSet" else workload(kind)) == []


def test_an_empty_deployment_reports_what_upstream_reports() -> None:
    got = check("deployments.apps", {"metadata": {"name": "d", "namespace": "default"}, "spec": {}})
    assert got == [
        required("spec.selector"),
        invalid(
            "spec.template.metadata.labels",
            "map[string]string(nil)",
            "`selector` does not match template `labels`",
        ),
        required("spec.template.spec.containers"),
    ]


@pytest.mark.parametrize("kind", ["Deployment", "ReplicaSet"])
def test_replica_set_like_selectors_and_templates(kind: str) -> None:
    name = NAMES[kind]
    mismatch = workload(kind, selector={"matchLabels": {"app": "web"}})
    assert check(name, mismatch) == [
        invalid(
            "spec.template.metadata.labels",
            'map[string]string{"app":"nginx"}',
            "`selector` does not match template `labels`",
        )
    ]
    empty = workload(kind, selector={"matchLabels": {}})
    assert check(name, empty) == [
        invalid(
            "spec.selector",
            "v1.LabelSelector{MatchLabels:map[string]string{}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}",
            "empty selector is invalid for deployment",
        )
    ]
    bad = workload(
        kind, selector={"matchExpressions": [{"key": "app", "operator": "Like", "values": ["nginx"]}]}
    )
    assert check(name, bad) == [
        invalid("spec.selector.matchExpressions[0].operator", '"Like"', "not a valid selector operator"),
        invalid(
            "spec.selector",
            "v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement{"
            'v1.LabelSelectorRequirement{Key:"app", Operator:"Like", Values:[]string{"nginx"}}}}',
            "invalid label selector",
        ),
    ]
    expressions = workload(
        kind, selector={"matchExpressions": [{"key": "app", "operator": "In", "values": ["nginx"]}]}
    )
    assert check(name, expressions) == []
    negative = workload(kind, replicas=-1)
    assert check(name, negative) == [invalid("spec.replicas", "-1", "must be greater than or equal to 0")]


@pytest.mark.parametrize("kind", ["Deployment", "ReplicaSet", "DaemonSet"])
def test_templates_must_restart_always_and_have_no_deadline(kind: str) -> None:
    manifest = workload(kind)
    manifest["spec"]["template"]["spec"].update(restartPolicy="OnFailure", activeDeadlineSeconds=30)
    label = "ReplicaSet" if kind == "Deployment" else kind
    assert check(NAMES[kind], manifest) == [
        unsupported("spec.template.spec.restartPolicy", '"OnFailure"', "Always"),
        forbidden(
            "spec.template.spec.activeDeadlineSeconds", f"activeDeadlineSeconds in {label} is not Supported"
        ),
    ]


def test_template_pod_specs_are_validated_and_template_labels_reported_upstream_style() -> None:
    manifest = workload("Deployment")
    manifest["spec"]["template"]["metadata"]["labels"]["bad key"] = "x"
    manifest["spec"]["template"]["spec"]["containers"][0]["name"] = "Nginx"
    got = check("deployments.apps", manifest)
    assert [c.field for c in got] == ["spec.template.labels", "spec.template.spec.containers[0].name"]
    # A selector that does not parse stops there: upstream cannot match the template against it.
    manifest["spec"]["selector"]["matchLabels"]["bad key"] = "x"
    got = check("deployments.apps", manifest)
    assert [c.field for c in got] == ["spec.selector.matchLabels", "spec.selector"]


@pytest.mark.parametrize(
    ("strategy", "causes"),
    [
        ({"type": "Recreate"}, []),
        (
            {"type": "Recreate", "rollingUpdate": {"maxSurge": 1}},
            [
                forbidden(
                    "spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'"
                )
            ],
        ),
        (
            {"type": "Blue"},
            [
                unsupported(
                    "spec.strategy",
                    'apps.DeploymentStrategy{Type:"Blue", RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}',
                    "Recreate",
                    "RollingUpdate",
                )
            ],
        ),
        (
            {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "0%"}},
            [invalid("spec.strategy.rollingUpdate.maxUnavailable", "0", "may not be 0 when `maxSurge` is 0")],
        ),
        (
            {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "120%"}},
            [invalid("spec.strategy.rollingUpdate.maxUnavailable", "120%", "must not be greater than 100%")],
        ),
        (
            {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "lots"}},
            [
                invalid(
                    "spec.strategy.rollingUpdate.maxSurge",
                    "lots",
                    "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or "
                    "'93%', regex used for validation is '[0-9]+%')",
                )
            ],
        ),
    ],
    ids=["recreate", "recreate-with-rolling", "unknown", "both-zero", "over-100", "not-a-percent"],
)
def test_deployment_strategies(strategy: Obj, causes: list[Cause]) -> None:
    assert check("deployments.apps", workload("Deployment", strategy=strategy)) == causes


def test_deployment_deadlines_and_history() -> None:
    got = check("deployments.apps", workload("Deployment", minReadySeconds=600, revisionHistoryLimit=-1))
    assert got == [
        invalid("spec.revisionHistoryLimit", "-1", "must be greater than or equal to 0"),
        invalid("spec.progressDeadlineSeconds", "600", "must be greater than minReadySeconds"),
    ]


@pytest.mark.parametrize("kind", ["Deployment", "ReplicaSet", "DaemonSet"])
def test_apps_v1_selectors_are_immutable(kind: str) -> None:
    stored = workload(kind)
    changed = workload(kind, selector={"matchLabels": {"app": "nginx", "tier": "web"}})
    changed["spec"]["template"]["metadata"]["labels"]["tier"] = "web"
    assert check(NAMES[kind], changed, stored) == [
        invalid(
            "spec.selector",
            'v1.LabelSelector{MatchLabels:map[string]string{"app":"nginx", "tier":"web"}, '
            "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}",
            "field is immutable",
        )
    ]
    scaled = copy.deepcopy(stored)
    scaled["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.27"
    assert check(NAMES[kind], scaled, stored) == []


def test_status_only_updates_of_stored_objects_are_not_revalidated() -> None:
    stored = workload("Deployment", selector={"matchLabels": {"app": "other"}})  # stored by a laxer server
    defaults.apply(resource("deployments.apps"), stored)
    with_status = {**stored, "status": {"replicas": 1}}
    assert validate(resource("deployments.apps"), with_status, stored) == []


# -- DaemonSets ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "causes"),
    [
        (
            {"selector": None},
            [
                invalid(
                    "spec.template.metadata.labels",
                    'map[string]string{"app":"nginx"}',
                    "`selector` does not match template `labels`",
                )
            ],
        ),
        (
            {
                "updateStrategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0},
                }
            },
            [required("spec.updateStrategy.rollingUpdate.maxUnavailable", "cannot be 0 when maxSurge is 0")],
        ),
        (
            {
                "updateStrategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": 1, "maxSurge": "10%"},
                }
            },
            [
                invalid(
                    "spec.updateStrategy.rollingUpdate.maxSurge",
                    "10%",
                    "may not be set when maxUnavailable is non-zero",
                )
            ],
        ),
        ({"updateStrategy": {"type": "OnDelete"}}, []),
        (
            {"updateStrategy": {"type": "Never"}},
            [
                unsupported(
                    "spec.updateStrategy",
                    'apps.DaemonSetUpdateStrategy{Type:"Never", RollingUpdate:(*apps.RollingUpdateDaemonSet)(nil)}',
                    "RollingUpdate",
                    "OnDelete",
                )
            ],
        ),
    ],
    ids=["no-selector", "both-zero", "both-set", "on-delete", "unknown"],
)
def test_daemonsets(spec: Obj, causes: list[Cause]) -> None:
    assert check("daemonsets.apps", workload("DaemonSet", **spec)) == causes


# -- StatefulSets --------------------------------------------------------------------------------


def statefulset(**spec: Any) -> Obj:
    out = copy.deepcopy(WEB_STATEFULSET)
    out["spec"].update(spec)
    return out


def test_the_web_statefulset_passes_with_mounts_from_its_claim_templates() -> None:
    assert check("statefulsets.apps", WEB_STATEFULSET) == []


@pytest.mark.parametrize(
    ("spec", "causes"),
    [
        (
            {"podManagementPolicy": "Random"},
            [invalid("spec.podManagementPolicy", '"Random"', "must be 'OrderedReady' or 'Parallel'")],
        ),
        (
            {"updateStrategy": {"type": "OnDelete", "rollingUpdate": {"partition": 1}}},
            [
                invalid(
                    "spec.updateStrategy.rollingUpdate",
                    "&apps.RollingUpdateStatefulSetStrategy{}",
                    "only allowed for updateStrategy 'RollingUpdate'",
                )
            ],
        ),
        (
            {
                "updateStrategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"partition": -1, "maxUnavailable": 0},
                }
            },
            [
                invalid(
                    "spec.updateStrategy.rollingUpdate.partition", "-1", "must be greater than or equal to 0"
                ),
                invalid("spec.updateStrategy.rollingUpdate.maxUnavailable", "0", "cannot be 0"),
            ],
        ),
        (
            {"persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Keep", "whenScaled": "Delete"}},
            [
                unsupported(
                    "spec.persistentVolumeClaimRetentionPolicy.whenDeleted", '"Keep"', "Retain", "Delete"
                )
            ],
        ),
        (
            {"selector": {}},
            [
                invalid(
                    "spec.selector",
                    "v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}",
                    "empty selector is invalid for statefulset",
                )
            ],
        ),
        (
            {
                "volumeClaimTemplates": [
                    {"metadata": {"name": "www"}, "spec": {"resources": {"requests": {"storage": "0"}}}}
                ]
            },
            [
                required(
                    "spec.volumeClaimTemplates[0].spec.accessModes", "at least 1 access mode is required"
                ),
                invalid(
                    "spec.volumeClaimTemplates[0].spec.resources[storage]", '"0"', "must be greater than zero"
                ),
            ],
        ),
        (
            {"volumeClaimTemplates": []},
            [
                Cause(
                    "FieldValueNotFound",
                    'Not found: "www"',
                    "spec.template.spec.containers[0].volumeMounts[0].name",
                )
            ],
        ),
        (
            {"ordinals": {"start": -1}},
            [invalid("spec.ordinals.start", "-1", "must be greater than or equal to 0")],
        ),
    ],
    ids=[
        "pod-management",
        "on-delete-rolling",
        "partition",
        "retention",
        "empty-selector",
        "claim-spec",
        "mount",
        "ordinals",
    ],
)
def test_statefulsets(spec: Obj, causes: list[Cause]) -> None:
    assert check("statefulsets.apps", statefulset(**spec)) == causes


def test_statefulset_names_are_dns_labels() -> None:
    named = copy.deepcopy(WEB_STATEFULSET)
    named["metadata"]["name"] = "web.v2"
    assert check("statefulsets.apps", named) == [
        invalid("metadata.name", '"web.v2"', "must not contain dots")
    ]


def test_statefulset_updates() -> None:
    scaled = statefulset(replicas=5, updateStrategy={"type": "OnDelete"}, minReadySeconds=0)
    scaled["spec"]["template"]["spec"]["containers"][0]["image"] = "registry.k8s.io/nginx-slim:0.25"
    assert check("statefulsets.apps", scaled, WEB_STATEFULSET) == []
    renamed = statefulset(serviceName="nginx-headless")
    assert check("statefulsets.apps", renamed, WEB_STATEFULSET) == [
        forbidden(
            "spec",
            "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
            "'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
        )
    ]


def test_statefulset_templates_stored_invalid_are_not_suddenly_refused() -> None:
    stored = statefulset()
    stored["spec"]["template"]["spec"]["containers"][0]["name"] = "Nginx"  # accepted before 1.34
    scaled = copy.deepcopy(stored)
    scaled["spec"]["replicas"] = 5
    assert check("statefulsets.apps", scaled, stored) == []
    assert check("statefulsets.apps", scaled) != []


# -- ReplicationControllers ----------------------------------------------------------------------


def test_replication_controllers() -> None:
    rc: Obj = {
        "metadata": {"name": "rc", "namespace": "default"},
        "spec": {
            "template": {
                "metadata": {"labels": {"app": "x"}},
                "spec": {"containers": [{"name": "c", "image": "x:1"}]},
            }
        },
    }
    assert check("replicationcontrollers", rc) == []
    rc["spec"]["selector"] = {"app": "y"}
    assert check("replicationcontrollers", rc) == [
        invalid(
            "spec.template.metadata.labels",
            'map[string]string{"app":"x"}',
            "`selector` does not match template `labels`",
        )
    ]
