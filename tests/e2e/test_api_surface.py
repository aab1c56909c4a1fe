"""What the server serves is what the API manifest's profile keeps: nothing alpha or deprecated by
default, stripped APIs gone from every listing and every path, and --runtime-config turning an alpha
group-version on for real."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator

import pytest

from k3py.api.manifest import load
from k3py.api.profiles import Profile, select
from tests.e2e.cluster import Cluster, start, stop

AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
ALPHA_GV = "admissionregistration.k8s.io/v1alpha1"


def served_group_versions(cluster: Cluster) -> set[str]:
    status, _, body = cluster.request("GET", "/apis")
    assert status == 200
    versions = {v["groupVersion"] for g in json.loads(body)["groups"] for v in g["versions"]}
    status, _, body = cluster.request("GET", "/api")
    return versions | {f"{v}" for v in json.loads(body)["versions"]}


def test_no_alpha_group_version_is_listed_anywhere(cluster: Cluster) -> None:
    listed = served_group_versions(cluster)
    assert not [gv for gv in listed if "alpha" in gv]
    status, _, body = cluster.request("GET", "/apis", headers={"Accept": AGGREGATED})
    assert status == 200
    aggregated = {
        f"{g['metadata']['name']}/{v['version']}" for g in json.loads(body)["items"] for v in g["versions"]
    }
    assert not [gv for gv in aggregated if "alpha" in gv]
    status, _, body = cluster.request("GET", "/openapi/v3")
    assert status == 200
    assert not [path for path in json.loads(body)["paths"] if "alpha" in path]
    resources = cluster.kubectl("api-resources", "-o", "wide").stdout
    assert "alpha" not in resources and "componentstatuses" not in resources
    assert "deployments" in resources


def test_discovery_documents_are_the_same_with_a_trailing_slash(cluster: Cluster) -> None:
    for root in ("/api", "/apis", "/api/v1", "/apis/apps", "/apis/apps/v1"):
        plain, slashed = cluster.request("GET", root), cluster.request("GET", root + "/")
        assert slashed[0] == 200 and json.loads(slashed[2]) == json.loads(plain[2])


def test_every_ga_group_version_of_the_default_profile_is_served(cluster: Cluster) -> None:
    selection = select(load(), Profile())
    ga = {gv.group_version for gv in selection.groupversions() if gv.stability == "ga"}
    assert ga <= served_group_versions(cluster)


@pytest.mark.parametrize(
    "path",
    [
        f"/apis/{ALPHA_GV}",
        f"/apis/{ALPHA_GV}/mutatingadmissionpolicies",
        f"/apis/{ALPHA_GV}/mutatingadmissionpolicies/x",
        "/apis/resource.k8s.io/v1beta1/resourceclaims",
        "/apis/internal.apiserver.k8s.io",
        "/api/v1/componentstatuses",
        "/api/v1/namespaces/default/componentstatuses/x",
    ],
)
def test_paths_under_stripped_apis_answer_404_with_a_status(cluster: Cluster, path: str) -> None:
    status, headers, body = cluster.request("GET", path)
    assert status == 404, body
    assert headers["Content-Type"].startswith("application/json")
    document = json.loads(body)
    assert (document["kind"], document["status"], document["reason"], document["code"]) == (
        "Status",
        "Failure",
        "NotFound",
        404,
    )


def test_a_verb_the_resource_does_not_have_is_405(cluster: Cluster) -> None:
    status, _, body = cluster.request("DELETE", "/api/v1/namespaces")  # no deletecollection upstream
    assert status == 405, body
    assert json.loads(body)["reason"] == "MethodNotAllowed"
    assert cluster.kubectl_json("get", "namespace", "default")["metadata"]["name"] == "default"


@pytest.fixture(scope="module")
def alpha_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    started = start(tmp_path_factory.mktemp("k3py-alpha"), "--runtime-config", f"{ALPHA_GV}=true")
    try:
        yield started
    finally:
        stop(started)


POLICY = {
    "apiVersion": ALPHA_GV,
    "kind": "MutatingAdmissionPolicy",
    "metadata": {"name": "add-label"},
    "spec": {
        "matchConstraints": {
            "resourceRules": [
                {
                    "apiGroups": [""],
                    "apiVersions": ["v1"],
                    "operations": ["CREATE"],
                    "resources": ["configmaps"],
                }
            ]
        },
        "mutations": [
            {
                "patchType": "ApplyConfiguration",
                "applyConfiguration": {
                    "expression": 'Object{metadata: Object.metadata{labels: {"mutated": "true"}}}'
                },
            }
        ],
        "reinvocationPolicy": "Never",
        "failurePolicy": "Fail",
    },
}


def test_runtime_config_serves_an_alpha_group_version_for_every_verb(alpha_cluster: Cluster) -> None:
    assert ALPHA_GV in served_group_versions(alpha_cluster)
    resources = alpha_cluster.kubectl("api-resources", "--api-group", "admissionregistration.k8s.io").stdout
    assert "mutatingadmissionpolicies" in resources
    events: list[str] = []
    watcher = subprocess.Popen(
        alpha_cluster.kubectl_command(
            "get", "mutatingadmissionpolicies.v1alpha1.admissionregistration.k8s.io", "--watch", "-o", "name"
        ),
        stdout=subprocess.PIPE,
        text=True,
    )
    reader = threading.Thread(target=lambda: events.extend(line.strip() for line in watcher.stdout or []))
    reader.start()
    try:
        alpha_cluster.kubectl("create", "-f", "-", input=json.dumps(POLICY))
        got = alpha_cluster.kubectl_json(
            "get", "mutatingadmissionpolicies.v1alpha1.admissionregistration.k8s.io", "add-label"
        )
        assert got["apiVersion"] == ALPHA_GV and got["spec"]["failurePolicy"] == "Fail"
        listed = alpha_cluster.kubectl_json(
            "get", "mutatingadmissionpolicies.v1alpha1.admissionregistration.k8s.io"
        )
        assert [item["metadata"]["name"] for item in listed["items"]] == ["add-label"]
        # The same object through the GA version: one set of objects, each version's apiVersion.
        status, _, body = alpha_cluster.request(
            "GET", "/apis/admissionregistration.k8s.io/v1/mutatingadmissionpolicies/add-label"
        )
        assert status == 200 and json.loads(body)["apiVersion"] == "admissionregistration.k8s.io/v1"
        alpha_cluster.kubectl(
            "delete", "mutatingadmissionpolicies.v1alpha1.admissionregistration.k8s.io", "add-label"
        )
    finally:
        watcher.terminate()
        watcher.wait(timeout=10)
        reader.join(timeout=10)
        if watcher.stdout is not None:
            watcher.stdout.close()
    assert "mutatingadmissionpolicy.admissionregistration.k8s.io/add-label" in events


def test_runtime_config_naming_an_unknown_api_is_a_usage_error(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    with pytest.raises(pytest.fail.Exception, match="exited with 2"):
        start(tmp_path_factory.mktemp("k3py-bad"), "--runtime-config", "nosuch.k8s.io/v1=true")


def test_a_namespaced_resource_without_a_namespace_serves_list_and_watch_only(
    cluster: Cluster, namespace: str
) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "stays", "namespace": namespace}}
    cluster.kubectl("create", "-f", "-", input=json.dumps(cm))
    status, _, body = cluster.request("DELETE", "/api/v1/configmaps")
    assert status == 405 and json.loads(body)["reason"] == "MethodNotAllowed"
    status, _, _ = cluster.request("POST", "/api/v1/configmaps", json.dumps(cm).encode())
    assert status == 405
    assert cluster.kubectl_json("get", "configmap", "stays", "-n", namespace)["metadata"]["name"] == "stays"
    status, _, _ = cluster.request("GET", "/api/v1/configmaps")
    assert status == 200


def test_a_subresource_answers_only_its_own_verbs(cluster: Cluster, namespace: str) -> None:
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments/x/scale"
    status, _, body = cluster.request("DELETE", path)
    assert status == 405, body
    status, _, body = cluster.request("GET", path + "?watch=true")  # a named GET is a get, as upstream
    assert status == 404 and b'deployments.apps \\"x\\" not found' in body, body


@pytest.mark.parametrize("setting", ["v1/namespaces=false", "v1=false", "api/all=false,apps/v1=true"])
def test_runtime_config_cannot_turn_off_what_the_server_needs(
    tmp_path_factory: pytest.TempPathFactory, setting: str
) -> None:
    with pytest.raises(pytest.fail.Exception, match="exited with 2") as failed:
        start(tmp_path_factory.mktemp("k3py-core"), "--runtime-config", setting)
    assert "cannot run without core/v1/namespaces" in str(failed.value)


def test_apiservices_are_local_and_available_and_aggregated_ones_say_why_not(
    cluster: Cluster, namespace: str
) -> None:
    table = cluster.kubectl("get", "apiservices").stdout.splitlines()
    assert table[0].split() == ["NAME", "SERVICE", "AVAILABLE", "AGE"]
    rows = {line.split()[0]: line.split()[1:3] for line in table[1:]}
    assert rows["v1."] == ["Local", "True"]
    assert rows["v1.apps"] == ["Local", "True"]
    assert set(rows) >= {"v1.rbac.authorization.k8s.io", "v1.authorization.k8s.io"}
    aggregated = {
        "apiVersion": "apiregistration.k8s.io/v1",
        "kind": "APIService",
        "metadata": {"name": "v1.metrics.example.com"},
        "spec": {
            "group": "metrics.example.com",
            "version": "v1",
            "groupPriorityMinimum": 100,
            "versionPriority": 10,
            "insecureSkipTLSVerify": True,
            "service": {"namespace": namespace, "name": "metrics"},
        },
    }
    cluster.kubectl("create", "-f", "-", input=json.dumps(aggregated))
    try:
        reason = "--for=jsonpath={.status.conditions[0].reason}=ServiceNotFound"
        cluster.kubectl("wait", "apiservice/v1.metrics.example.com", reason, "--timeout=20s")
        bad = {**aggregated, "metadata": {"name": "wrong.name"}}
        refused = cluster.kubectl("create", "-f", "-", input=json.dumps(bad), check=False)
        assert refused.returncode != 0
        assert 'must be `spec.version+"."+spec.group`' in refused.stderr
    finally:
        cluster.kubectl("delete", "apiservice", "v1.metrics.example.com", check=False)
