"""Defaults: what kube-apiserver fills in on create and update, as ``kubectl get -o yaml`` shows it.

Manifests are the ones from the Kubernetes documentation (nginx Deployment, the ``pi`` Job, the
``hello`` CronJob, the ``web`` StatefulSet); expected values are upstream's v1 defaulters'. A
Hypothesis property checks that defaulting is idempotent, which ``apply`` relies on because it
runs on every write.
"""

# ruff: noqa: E501  (manifests and expected objects read best one field per line)
from __future__ import annotations

import base64
import copy
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from k3py.api import defaults
from k3py.api.resources import RESOURCES
from tests.unit.api_cases import WEB_STATEFULSET, resource

Obj = dict[str, Any]
UID = "5f3c2a8e-1111-4b22-9c33-d44e55f66a77"


def defaulted(name: str, obj: Obj) -> Obj:
    out = copy.deepcopy(obj)
    defaults.apply(resource(name), out)
    return out


NGINX_DEPLOYMENT: Obj = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "nginx-deployment", "namespace": "default", "labels": {"app": "nginx"}},
    "spec": {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "nginx"}},
        "template": {
            "metadata": {"labels": {"app": "nginx"}},
            "spec": {
                "containers": [{"name": "nginx", "image": "nginx:1.14.2", "ports": [{"containerPort": 80}]}]
            },
        },
    },
}
PI_JOB: Obj = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"name": "pi", "namespace": "default", "uid": UID},
    "spec": {
        "template": {
            "spec": {
                "containers": [
                    {
                        "name": "pi",
                        "image": "perl:5.34.0",
                        "command": ["perl", "-Mbignum=bpi", "-wle", "print bpi(2000)"],
                    }
                ],
                "restartPolicy": "Never",
            }
        },
        "backoffLimit": 4,
    },
}
HELLO_CRONJOB: Obj = {
    "apiVersion": "batch/v1",
    "kind": "CronJob",
    "metadata": {"name": "hello", "namespace": "default"},
    "spec": {
        "schedule": "* * * * *",
        "jobTemplate": {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "hello",
                                "image": "busybox:1.28",
                                "imagePullPolicy": "IfNotPresent",
                                "command": ["/bin/sh", "-c", "date; echo Hello from the Kubernetes cluster"],
                            }
                        ],
                        "restartPolicy": "OnFailure",
                    }
                }
            }
        },
    },
}

TEMPLATE_POD_SPEC_DEFAULTS = {
    "dnsPolicy": "ClusterFirst",
    "restartPolicy": "Always",
    "schedulerName": "default-scheduler",
    "securityContext": {},
    "terminationGracePeriodSeconds": 30,
}
CONTAINER_DEFAULTS = {
    "resources": {},
    "terminationMessagePath": "/dev/termination-log",
    "terminationMessagePolicy": "File",
}


def test_nginx_deployment_as_kubectl_shows_it() -> None:
    spec = defaulted("deployments.apps", NGINX_DEPLOYMENT)["spec"]
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
    }
    assert (spec["replicas"], spec["revisionHistoryLimit"], spec["progressDeadlineSeconds"]) == (3, 10, 600)
    pod = spec["template"]["spec"]
    assert {k: v for k, v in pod.items() if k != "containers"} == TEMPLATE_POD_SPEC_DEFAULTS
    assert pod["containers"] == [
        {
            "name": "nginx",
            "image": "nginx:1.14.2",
            "imagePullPolicy": "IfNotPresent",
            "ports": [{"containerPort": 80, "protocol": "TCP"}],
            **CONTAINER_DEFAULTS,
        }
    ]


def test_deployment_replicas_default_to_one_and_recreate_gets_no_rolling_update() -> None:
    manifest = copy.deepcopy(NGINX_DEPLOYMENT)
    del manifest["spec"]["replicas"]
    manifest["spec"]["strategy"] = {"type": "Recreate"}
    spec = defaulted("deployments.apps", manifest)["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}


def test_pod_templates_get_no_pod_only_defaults() -> None:
    pod = defaulted("deployments.apps", NGINX_DEPLOYMENT)["spec"]["template"]["spec"]
    for pod_only in ("enableServiceLinks", "priority", "preemptionPolicy", "tolerations"):
        assert pod_only not in pod


def test_a_missing_template_is_defaulted_as_the_go_struct_would_be() -> None:
    spec = defaulted("deployments.apps", {"metadata": {"name": "d"}, "spec": {}})["spec"]
    assert spec["template"]["spec"] == TEMPLATE_POD_SPEC_DEFAULTS


def test_pods_get_pod_only_defaults_and_requests_from_limits() -> None:
    pod = {
        "metadata": {"name": "p"},
        "spec": {
            "containers": [
                {"name": "app", "image": "nginx", "resources": {"limits": {"cpu": "0.5", "memory": "128Mi"}}}
            ],
            "initContainers": [
                {"name": "init", "image": "busybox:1.36", "resources": {"limits": {"cpu": 1}}}
            ],
        },
    }
    spec = defaulted("pods", pod)["spec"]
    assert spec["enableServiceLinks"] is True
    assert "priority" not in spec  # the Priority admission plugin's (apiserver/priority.py)
    assert spec["containers"][0]["resources"] == {
        "limits": {"cpu": "500m", "memory": "128Mi"},
        "requests": {"cpu": "500m", "memory": "128Mi"},
    }
    assert spec["initContainers"][0]["resources"] == {"limits": {"cpu": "1"}, "requests": {"cpu": "1"}}
    assert spec["tolerations"] == [
        {
            "key": "node.kubernetes.io/not-ready",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": 300,
        },
        {
            "key": "node.kubernetes.io/unreachable",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": 300,
        },
    ]


def test_pods_that_tolerate_everything_get_no_default_tolerations() -> None:
    spec = defaulted(
        "pods",
        {
            "metadata": {"name": "p"},
            "spec": {"tolerations": [{"operator": "Exists"}], "containers": [{"name": "c", "image": "x"}]},
        },
    )["spec"]
    assert spec["tolerations"] == [{"operator": "Exists"}]


def test_host_network_pods_publish_their_container_ports() -> None:
    spec = defaulted(
        "pods",
        {
            "metadata": {"name": "p"},
            "spec": {
                "hostNetwork": True,
                "containers": [{"name": "c", "image": "x", "ports": [{"containerPort": 8080}]}],
            },
        },
    )["spec"]
    assert spec["containers"][0]["ports"] == [{"containerPort": 8080, "hostPort": 8080, "protocol": "TCP"}]


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("nginx:1.25", "IfNotPresent"),
        ("docker.io/library/nginx:1.25-alpine", "IfNotPresent"),
        ("localhost:5000/app", "Always"),
        ("localhost:5000/app:v2", "IfNotPresent"),
        ("registry.example.com:443/team/app:latest", "Always"),
        ("nginx@sha256:" + "a" * 64, "IfNotPresent"),
        ("nginx:latest@sha256:" + "a" * 64, "Always"),  # upstream keys on the tag alone
        ("nginx@sha256:abc", "IfNotPresent"),  # a malformed digest fails to parse: no tag
        ("NGINX", "IfNotPresent"),  # upper-case repository: a parse error, no tag
        ("", "IfNotPresent"),
    ],
)
def test_image_pull_policy_follows_the_tag(image: str, policy: str) -> None:
    assert defaults.image_pull_policy(image) == policy


def test_explicit_pull_policy_is_kept() -> None:
    spec = defaulted(
        "pods",
        {"metadata": {"name": "p"}, "spec": {"containers": [{"image": "a", "imagePullPolicy": "Never"}]}},
    )
    assert spec["spec"]["containers"][0]["imagePullPolicy"] == "Never"


def test_probes_env_and_lifecycle_handlers() -> None:
    container = {
        "name": "c",
        "image": "app:1",
        "livenessProbe": {"httpGet": {"port": 8080}},
        "readinessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 5},
        "startupProbe": {"grpc": {"port": 9000}},
        "lifecycle": {"preStop": {"httpGet": {"port": 80, "path": "/stop"}}},
        "env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
    }
    c = defaulted("pods", {"metadata": {"name": "p"}, "spec": {"containers": [container]}})["spec"][
        "containers"
    ][0]
    assert c["livenessProbe"] == {
        "httpGet": {"port": 8080, "path": "/", "scheme": "HTTP"},
        "timeoutSeconds": 1,
        "periodSeconds": 10,
        "successThreshold": 1,
        "failureThreshold": 3,
    }
    assert c["readinessProbe"]["periodSeconds"] == 5
    assert c["startupProbe"]["grpc"] == {"port": 9000, "service": ""}
    assert c["lifecycle"]["preStop"]["httpGet"] == {"port": 80, "path": "/stop", "scheme": "HTTP"}
    assert c["env"][0]["valueFrom"]["fieldRef"] == {"fieldPath": "spec.nodeName", "apiVersion": "v1"}


def test_volume_defaults() -> None:
    volumes = [
        {"name": "scratch"},
        {"name": "cfg", "configMap": {"name": "app"}},
        {"name": "creds", "secret": {"secretName": "app", "defaultMode": 256}},
        {
            "name": "info",
            "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]},
        },
        {"name": "all", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}},
        {"name": "host", "hostPath": {"path": "/var/log"}},
        {"name": "cache", "emptyDir": {"sizeLimit": "1024Mi"}},
    ]
    out = defaulted("pods", {"metadata": {"name": "p"}, "spec": {"containers": [], "volumes": volumes}})
    by_name = {v["name"]: v for v in out["spec"]["volumes"]}
    assert by_name["scratch"] == {"name": "scratch", "emptyDir": {}}
    assert by_name["cfg"]["configMap"]["defaultMode"] == 420
    assert by_name["creds"]["secret"]["defaultMode"] == 256
    assert by_name["info"]["downwardAPI"] == {
        "defaultMode": 420,
        "items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels", "apiVersion": "v1"}}],
    }
    assert by_name["all"]["projected"] == {
        "defaultMode": 420,
        "sources": [{"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}}],
    }
    assert by_name["host"]["hostPath"] == {"path": "/var/log", "type": ""}
    assert by_name["cache"]["emptyDir"] == {"sizeLimit": "1Gi"}


@pytest.mark.parametrize(
    ("given", "served"),
    [
        ("0.5", "500m"),
        ("1000m", "1"),
        (2, "2"),
        (0.25, "250m"),
        ("1024Mi", "1Gi"),
        ("1n", "1m"),
        ("1.5Gi", "1536Mi"),
    ],
)
def test_resource_quantities_are_served_canonical(given: object, served: str) -> None:
    pod = {
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "x", "resources": {"requests": {"cpu": given}}}]},
    }
    assert defaulted("pods", pod)["spec"]["containers"][0]["resources"]["requests"]["cpu"] == served


def test_invalid_quantities_are_left_for_validation() -> None:
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"resources": {"requests": {"cpu": "lots"}}}]}}
    assert defaulted("pods", pod)["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "lots"


def test_service_account_name_and_its_deprecated_twin() -> None:
    spec = defaulted(
        "pods", {"metadata": {"name": "p"}, "spec": {"serviceAccount": "robot", "containers": []}}
    )["spec"]
    assert (spec["serviceAccountName"], spec["serviceAccount"]) == ("robot", "robot")
    spec = defaulted(
        "pods", {"metadata": {"name": "p"}, "spec": {"serviceAccountName": "new", "serviceAccount": "old"}}
    )
    assert spec["spec"]["serviceAccount"] == "new"


def test_statefulset_defaults_and_claim_templates() -> None:
    spec = defaulted("statefulsets.apps", WEB_STATEFULSET)["spec"]
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    assert (spec["replicas"], spec["revisionHistoryLimit"], spec["minReadySeconds"]) == (3, 10, 10)
    assert spec["volumeClaimTemplates"] == [
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "www"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": "my-storage-class",
                "resources": {"requests": {"storage": "1Gi"}},
                "volumeMode": "Filesystem",
            },
            "status": {"phase": "Pending"},
        }
    ]
    assert spec["template"]["spec"]["terminationGracePeriodSeconds"] == 10


def test_statefulset_rolling_update_without_details_stays_without() -> None:
    manifest = copy.deepcopy(WEB_STATEFULSET)
    manifest["spec"]["updateStrategy"] = {"type": "RollingUpdate"}
    assert defaulted("statefulsets.apps", manifest)["spec"]["updateStrategy"] == {"type": "RollingUpdate"}
    manifest["spec"]["updateStrategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2}}
    rolling = defaulted("statefulsets.apps", manifest)["spec"]["updateStrategy"]["rollingUpdate"]
    assert rolling == {"maxUnavailable": 2, "partition": 0}


def test_daemonset_and_replicaset_defaults() -> None:
    template = {"metadata": {"labels": {"k": "v"}}, "spec": {"containers": [{"name": "c", "image": "x:1"}]}}
    ds = defaulted("daemonsets.apps", {"metadata": {"name": "d"}, "spec": {"template": template}})["spec"]
    assert ds["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
    }
    assert ds["revisionHistoryLimit"] == 10
    rs = defaulted("replicasets.apps", {"metadata": {"name": "r"}, "spec": {"template": template}})["spec"]
    assert rs["replicas"] == 1


def test_replication_controller_takes_selector_and_labels_from_its_template() -> None:
    rc = defaulted(
        "replicationcontrollers",
        {
            "metadata": {"name": "rc"},
            "spec": {"template": {"metadata": {"labels": {"app": "x"}}, "spec": {}}},
        },
    )
    assert rc["spec"]["selector"] == {"app": "x"} and rc["metadata"]["labels"] == {"app": "x"}
    assert rc["spec"]["replicas"] == 1


def test_pi_job_gets_its_generated_selector_and_labels() -> None:
    job = defaulted("jobs.batch", PI_JOB)
    generated = {
        "batch.kubernetes.io/controller-uid": UID,
        "batch.kubernetes.io/job-name": "pi",
        "controller-uid": UID,
        "job-name": "pi",
    }
    spec = job["spec"]
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": UID}}
    assert spec["template"]["metadata"]["labels"] == generated
    assert job["metadata"]["labels"] == generated
    assert {k: spec[k] for k in ("backoffLimit", "completions", "parallelism", "completionMode")} == {
        "backoffLimit": 4,
        "completions": 1,
        "parallelism": 1,
        "completionMode": "NonIndexed",
    }
    assert (spec["suspend"], spec["manualSelector"], spec["podReplacementPolicy"]) == (
        False,
        False,
        "TerminatingOrFailed",
    )
    assert spec["template"]["spec"]["restartPolicy"] == "Never"


def test_job_parallelism_completions_and_manual_selectors() -> None:
    parallel = copy.deepcopy(PI_JOB)
    parallel["spec"]["parallelism"] = 3
    del parallel["spec"]["backoffLimit"]
    spec = defaulted("jobs.batch", parallel)["spec"]
    assert "completions" not in spec and spec["backoffLimit"] == 6
    per_index = copy.deepcopy(PI_JOB)
    del per_index["spec"]["backoffLimit"]
    per_index["spec"].update(completionMode="Indexed", completions=4, backoffLimitPerIndex=1)
    assert defaulted("jobs.batch", per_index)["spec"]["backoffLimit"] == 2**31 - 1
    manual = copy.deepcopy(PI_JOB)
    manual["spec"].update(manualSelector=True, selector={"matchLabels": {"a": "b"}})
    manual["spec"]["template"]["metadata"] = {"labels": {"a": "b"}}
    out = defaulted("jobs.batch", manual)
    assert out["spec"]["selector"] == {"matchLabels": {"a": "b"}}
    assert out["spec"]["template"]["metadata"]["labels"] == {"a": "b"}


def test_job_own_labels_are_not_overwritten() -> None:
    job = copy.deepcopy(PI_JOB)
    job["metadata"]["labels"] = {"team": "math"}
    assert defaulted("jobs.batch", job)["metadata"]["labels"] == {"team": "math"}


def test_pod_failure_policy_pattern_status_defaults_to_true() -> None:
    job = copy.deepcopy(PI_JOB)
    job["spec"]["podFailurePolicy"] = {
        "rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]
    }
    spec = defaulted("jobs.batch", job)["spec"]
    assert spec["podFailurePolicy"]["rules"][0]["onPodConditions"] == [
        {"type": "DisruptionTarget", "status": "True"}
    ]
    assert spec["podReplacementPolicy"] == "Failed"


def test_hello_cronjob_defaults_leave_the_job_template_spec_alone() -> None:
    spec = defaulted("cronjobs.batch", HELLO_CRONJOB)["spec"]
    assert {
        k: spec[k]
        for k in ("concurrencyPolicy", "suspend", "successfulJobsHistoryLimit", "failedJobsHistoryLimit")
    } == {
        "concurrencyPolicy": "Allow",
        "suspend": False,
        "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 1,
    }
    job_spec = spec["jobTemplate"]["spec"]
    assert set(job_spec) == {"template"}  # SetDefaults_Job takes a Job, not a JobTemplateSpec
    pod = job_spec["template"]["spec"]
    assert pod["restartPolicy"] == "OnFailure" and pod["dnsPolicy"] == "ClusterFirst"


@pytest.mark.parametrize(
    ("service_spec", "expected"),
    [
        (
            {"selector": {"app": "x"}, "ports": [{"port": 80}]},
            {
                "type": "ClusterIP",
                "sessionAffinity": "None",
                "internalTrafficPolicy": "Cluster",
                "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
            },
        ),
        (
            {"type": "NodePort", "ports": [{"port": 80, "targetPort": "http", "protocol": "UDP"}]},
            {
                "type": "NodePort",
                "sessionAffinity": "None",
                "internalTrafficPolicy": "Cluster",
                "externalTrafficPolicy": "Cluster",
                "ports": [{"port": 80, "protocol": "UDP", "targetPort": "http"}],
            },
        ),
        (
            {"type": "LoadBalancer", "ports": [{"port": 443}]},
            {
                "type": "LoadBalancer",
                "sessionAffinity": "None",
                "internalTrafficPolicy": "Cluster",
                "externalTrafficPolicy": "Cluster",
                "allocateLoadBalancerNodePorts": True,
                "ports": [{"port": 443, "protocol": "TCP", "targetPort": 443}],
            },
        ),
        (
            {"type": "ExternalName", "externalName": "db.example.com"},
            {"type": "ExternalName", "sessionAffinity": "None", "externalName": "db.example.com"},
        ),
        (
            {"ports": [{"port": 80}], "externalIPs": ["192.0.2.10"]},
            {
                "type": "ClusterIP",
                "sessionAffinity": "None",
                "internalTrafficPolicy": "Cluster",
                "externalTrafficPolicy": "Cluster",
                "externalIPs": ["192.0.2.10"],
                "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
            },
        ),
    ],
    ids=["cluster-ip", "node-port", "load-balancer", "external-name", "external-ips"],
)
def test_service_defaults(service_spec: Obj, expected: Obj) -> None:
    spec = defaulted("services", {"metadata": {"name": "s"}, "spec": service_spec})["spec"]
    assert {k: v for k, v in spec.items() if k != "selector"} == expected


def test_service_session_affinity_config() -> None:
    spec = defaulted(
        "services", {"metadata": {"name": "s"}, "spec": {"sessionAffinity": "ClientIP", "ports": []}}
    )
    assert spec["spec"]["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}
    spec = defaulted(
        "services",
        {"metadata": {"name": "s"}, "spec": {"sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 5}}}},
    )
    assert "sessionAffinityConfig" not in spec["spec"]  # dropped with sessionAffinity None


def test_secret_type_and_string_data() -> None:
    secret = defaulted(
        "secrets",
        {
            "metadata": {"name": "s"},
            "data": {"a": "eA==", "b": "eQ=="},
            "stringData": {"b": "zz", "c": "ünï"},
        },
    )
    assert secret["type"] == "Opaque" and "stringData" not in secret
    assert secret["data"] == {"a": "eA==", "b": "eno=", "c": base64.b64encode("ünï".encode()).decode()}
    tls = defaulted("secrets", {"metadata": {"name": "s"}, "type": "kubernetes.io/tls"})
    assert tls["type"] == "kubernetes.io/tls"


def test_namespace_label_and_finalizer() -> None:
    ns = defaulted("namespaces", {"metadata": {"name": "team-a", "labels": None}})
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team-a"}
    assert ns["spec"] == {"finalizers": ["kubernetes"]}


def test_claims_volumes_and_endpoints() -> None:
    claim = defaulted(
        "persistentvolumeclaims",
        {"metadata": {"name": "c"}, "spec": {"resources": {"requests": {"storage": "1000Mi"}}}},
    )
    assert claim["spec"] == {"resources": {"requests": {"storage": "1000Mi"}}, "volumeMode": "Filesystem"}
    volume = defaulted(
        "persistentvolumes", {"metadata": {"name": "v"}, "spec": {"capacity": {"storage": "10Gi"}}}
    )
    assert (
        volume["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
        and volume["spec"]["volumeMode"] == "Filesystem"
    )
    endpoints = defaulted("endpoints", {"metadata": {"name": "e"}, "subsets": [{"ports": [{"port": 53}]}]})
    assert endpoints["subsets"][0]["ports"][0]["protocol"] == "TCP"


def test_kinds_without_defaults_are_untouched() -> None:
    sa = {"metadata": {"name": "robot"}}
    assert defaulted("serviceaccounts", sa) == sa
    cm = {"metadata": {"name": "c"}, "data": {"a": "b"}}
    assert defaulted("configmaps", cm) == cm


def test_malformed_shapes_do_not_crash() -> None:
    malformed: list[tuple[str, Obj]] = [
        ("pods", {"metadata": {}, "spec": {"containers": ["x", None, {"ports": "x"}], "volumes": [3]}}),
        ("deployments.apps", {"metadata": {}, "spec": {"strategy": None, "template": None}}),
        (
            "statefulsets.apps",
            {"metadata": {}, "spec": {"updateStrategy": 3, "volumeClaimTemplates": [{"spec": None}]}},
        ),
        ("jobs.batch", {"metadata": {"uid": UID}, "spec": {"template": {"metadata": None}, "selector": "x"}}),
        ("services", {"metadata": {}, "spec": {"ports": [1, {"port": 1}]}}),
        ("secrets", {"metadata": {}, "stringData": "x"}),
    ]
    for name, obj in malformed:
        defaults.apply(resource(name), obj)


# -- idempotence ---------------------------------------------------------------------------------

_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.sampled_from(["", "x", "TCP", "RollingUpdate", "0.5", "nginx"]),
)
_KEYS = st.sampled_from(
    [
        "spec", "template", "containers", "initContainers", "ports", "protocol", "image", "resources", "limits",
        "requests", "cpu", "volumes", "name", "secret", "emptyDir", "livenessProbe", "httpGet", "env",
        "valueFrom", "fieldRef", "strategy", "rollingUpdate", "updateStrategy", "type", "selector", "metadata",
        "labels", "sessionAffinity", "jobTemplate", "volumeClaimTemplates", "stringData", "data", "hostNetwork",
        "tolerations", "serviceAccount", "podFailurePolicy", "rules", "onPodConditions",
    ]
)  # fmt: skip
_JSON = st.recursive(
    _LEAVES,
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(_KEYS, children, max_size=5)),
    max_leaves=25,
)
_NAMES = [r.name for r in RESOURCES if r.name in defaults._BY_RESOURCE]


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(_NAMES), body=st.dictionaries(_KEYS, _JSON, max_size=6))
def test_defaulting_twice_equals_defaulting_once(name: str, body: Obj) -> None:
    obj = {**body, "metadata": {"name": "n", "uid": UID}}
    once = defaulted(name, obj)
    assert defaulted(name, once) == once


@settings(max_examples=50, deadline=None)
@given(manifest=st.sampled_from([NGINX_DEPLOYMENT, PI_JOB, HELLO_CRONJOB, WEB_STATEFULSET]))
def test_documented_manifests_are_fixed_points(manifest: Obj) -> None:
    name = {"Deployment": "deployments.apps", "Job": "jobs.batch", "CronJob": "cronjobs.batch"}.get(
        manifest["kind"], "statefulsets.apps"
    )
    once = defaulted(name, manifest)
    assert defaulted(name, once) == once


@pytest.mark.parametrize("kind", ["rolebindings", "clusterrolebindings"])
def test_role_bindings_get_the_rbac_api_group_where_it_is_left_empty(kind: str) -> None:
    binding = {
        "roleRef": {"kind": "Role", "name": "reader"},
        "subjects": [
            {"kind": "User", "name": "u"},
            {"kind": "Group", "name": "g", "apiGroup": ""},
            {"kind": "ServiceAccount", "name": "sa", "namespace": "ns"},
        ],
    }
    done = defaulted(f"{kind}.rbac.authorization.k8s.io", binding)
    assert done["roleRef"]["apiGroup"] == "rbac.authorization.k8s.io"
    assert [s.get("apiGroup") for s in done["subjects"]] == [
        "rbac.authorization.k8s.io",
        "rbac.authorization.k8s.io",
        None,
    ]
    assert defaulted(f"{kind}.rbac.authorization.k8s.io", done) == done
