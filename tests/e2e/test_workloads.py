"""Workloads on a real node: the server's controllers, scheduler and embedded agent, through kubectl 1.37."""

from __future__ import annotations

import json

import pytest

from conformance.cluster import EphemeralCluster
from tests.e2e.test_pods import IMAGE, apply, eventually, get, kubectl, node, ns  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.xdist_group("node")]

SLEEP = ["sleep", "3600"]


def deployment(name: str, replicas: int, image: str = IMAGE) -> dict[str, object]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 0,
                    "containers": [{"name": "main", "image": image, "command": SLEEP}],
                },
            },
        },
    }


def running_pods(cluster: EphemeralCluster, namespace: str, selector: str) -> list[str]:
    pods = get(cluster, "pods", "-n", namespace, "-l", selector)["items"]
    return sorted(
        p["metadata"]["name"]
        for p in pods
        if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
    )


def test_deployment_scale_rollout_and_undo(node: EphemeralCluster, ns: str) -> None:  # noqa: F811
    apply(node, ns, deployment("web", 2))
    kubectl(node, "rollout", "status", "-n", ns, "deployment/web", "--timeout=90s")
    assert len(running_pods(node, ns, "app=web")) == 2
    kubectl(node, "scale", "-n", ns, "deployment/web", "--replicas=3")
    kubectl(node, "rollout", "status", "-n", ns, "deployment/web", "--timeout=90s")
    eventually(lambda: len(running_pods(node, ns, "app=web")) == 3, 60, "3 replicas")
    kubectl(node, "set", "env", "-n", ns, "deployment/web", "STAGE=two")
    kubectl(node, "rollout", "status", "-n", ns, "deployment/web", "--timeout=120s")
    template = get(node, "deployment", "web", "-n", ns)["spec"]["template"]
    assert template["spec"]["containers"][0]["env"] == [{"name": "STAGE", "value": "two"}]
    assert len(get(node, "replicasets", "-n", ns, "-l", "app=web")["items"]) == 2
    kubectl(node, "rollout", "undo", "-n", ns, "deployment/web")
    kubectl(node, "rollout", "status", "-n", ns, "deployment/web", "--timeout=120s")
    template = get(node, "deployment", "web", "-n", ns)["spec"]["template"]
    assert "env" not in template["spec"]["containers"][0]
    kubectl(node, "rollout", "pause", "-n", ns, "deployment/web")
    kubectl(node, "set", "env", "-n", ns, "deployment/web", "STAGE=three")
    assert get(node, "deployment", "web", "-n", ns)["spec"]["paused"] is True
    kubectl(node, "rollout", "resume", "-n", ns, "deployment/web")
    kubectl(node, "rollout", "status", "-n", ns, "deployment/web", "--timeout=120s")
    status = get(node, "deployment", "web", "-n", ns)["status"]
    assert status["readyReplicas"] == status["updatedReplicas"] == status["availableReplicas"] == 3


def test_statefulset_daemonset_and_jobs(node: EphemeralCluster, ns: str) -> None:  # noqa: F811
    kubectl(node, "create", "service", "clusterip", "web", "--clusterip=None", "-n", ns)
    statefulset = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "web"},
        "spec": {
            "serviceName": "web",
            "replicas": 2,
            "selector": {"matchLabels": {"app": "sts"}},
            "template": {
                "metadata": {"labels": {"app": "sts"}},
                "spec": {
                    "terminationGracePeriodSeconds": 0,
                    "containers": [{"name": "main", "image": IMAGE, "command": SLEEP}],
                },
            },
        },
    }
    apply(node, ns, statefulset)
    eventually(lambda: running_pods(node, ns, "app=sts") == ["web-0", "web-1"], 90, "web-0 and web-1")
    pods = {p["metadata"]["name"]: p for p in get(node, "pods", "-n", ns, "-l", "app=sts")["items"]}
    assert pods["web-0"]["metadata"]["creationTimestamp"] <= pods["web-1"]["metadata"]["creationTimestamp"]
    daemonset = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "agent"},
        "spec": {
            "selector": {"matchLabels": {"app": "ds"}},
            "template": {
                "metadata": {"labels": {"app": "ds"}},
                "spec": {
                    "terminationGracePeriodSeconds": 0,
                    "containers": [{"name": "main", "image": IMAGE, "command": SLEEP}],
                },
            },
        },
    }
    apply(node, ns, daemonset)
    eventually(lambda: len(running_pods(node, ns, "app=ds")) == 1, 90, "one daemon pod on the node")
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "count"},
        "spec": {
            "completions": 3,
            "parallelism": 3,
            "completionMode": "Indexed",
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "main",
                            "image": IMAGE,
                            "command": ["sh", "-c", "echo $JOB_COMPLETION_INDEX"],
                        }
                    ],
                }
            },
        },
    }
    apply(node, ns, job)
    kubectl(node, "wait", "-n", ns, "--for=condition=Complete", "job/count", "--timeout=120s")
    assert get(node, "job", "count", "-n", ns)["status"]["completedIndexes"] == "0-2"
    failing = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "fail"},
        "spec": {
            "backoffLimit": 1,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": IMAGE, "command": ["sh", "-c", "exit 1"]}],
                }
            },
        },
    }
    apply(node, ns, failing)
    kubectl(node, "wait", "-n", ns, "--for=condition=Failed", "job/fail", "--timeout=120s")
    conditions = get(node, "job", "fail", "-n", ns)["status"]["conditions"]
    assert any(c["type"] == "Failed" and c["reason"] == "BackoffLimitExceeded" for c in conditions)


def test_namespace_deletion_removes_its_pods(node: EphemeralCluster) -> None:  # noqa: F811
    kubectl(node, "create", "namespace", "doomed")
    eventually(lambda: kubectl(node, "get", "sa/default", "-n", "doomed", check=False).returncode == 0)
    kubectl(node, "apply", "-n", "doomed", "-f", "-", input=json.dumps(deployment("gone", 2)))
    kubectl(node, "rollout", "status", "-n", "doomed", "deployment/gone", "--timeout=90s")
    kubectl(node, "delete", "namespace", "doomed", "--timeout=120s")
    assert kubectl(node, "get", "namespace", "doomed", check=False).returncode != 0


def replicaset(name: str, replicas: int) -> dict[str, object]:
    manifest = deployment(name, replicas)
    manifest["kind"] = "ReplicaSet"
    return manifest


@pytest.mark.parametrize("cascade", ["background", "foreground", "orphan"])
def test_cascading_delete(node: EphemeralCluster, ns: str, cascade: str) -> None:  # noqa: F811
    apply(node, ns, replicaset("owner", 2))
    eventually(lambda: len(running_pods(node, ns, "app=owner")) == 2, 90, "two owned pods")
    kubectl(node, "delete", "replicaset", "owner", "-n", ns, f"--cascade={cascade}", "--timeout=90s")
    assert kubectl(node, "get", "replicaset", "owner", "-n", ns, check=False).returncode != 0
    if cascade == "orphan":
        pods = get(node, "pods", "-n", ns, "-l", "app=owner")["items"]
        assert len(pods) == 2 and all(not p["metadata"].get("ownerReferences") for p in pods)
    else:
        eventually(
            lambda: get(node, "pods", "-n", ns, "-l", "app=owner")["items"] == [], 90, "dependents gone"
        )


def test_eviction_blocked_by_a_disruption_budget(node: EphemeralCluster, ns: str) -> None:  # noqa: F811
    apply(node, ns, deployment("guarded", 1))
    kubectl(node, "rollout", "status", "-n", ns, "deployment/guarded", "--timeout=90s")
    kubectl(
        node,
        "create",
        "poddisruptionbudget",
        "guard",
        "-n",
        ns,
        "--selector=app=guarded",
        "--min-available=1",
    )
    eventually(
        lambda: get(node, "pdb", "guard", "-n", ns).get("status", {}).get("currentHealthy") == 1,
        60,
        "budget status",
    )
    [pod] = running_pods(node, ns, "app=guarded")
    eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pod, "namespace": ns}}
    refused = kubectl(
        node, "create", "--raw", f"/api/v1/namespaces/{ns}/pods/{pod}/eviction", "-f", "-",
        input=json.dumps(eviction), check=False,
    )  # fmt: skip
    assert refused.returncode != 0 and "disruption budget" in refused.stderr, refused
    assert (
        "429" in refused.stderr
        or "TooManyRequests" in refused.stderr
        or "Too Many Requests" in refused.stderr
    )


@pytest.mark.slow
def test_cronjob_every_minute_creates_a_job(node: EphemeralCluster, ns: str) -> None:  # noqa: F811
    kubectl(
        node,
        "create",
        "cronjob",
        "tick",
        "-n",
        ns,
        f"--image={IMAGE}",
        "--schedule=*/1 * * * *",
        "--",
        "true",
    )
    eventually(lambda: get(node, "jobs", "-n", ns)["items"], 90, "a job from the cron job")
    job = get(node, "jobs", "-n", ns)["items"][0]
    assert job["metadata"]["ownerReferences"][0]["name"] == "tick"
    kubectl(
        node, "wait", "-n", ns, "--for=condition=Complete", f"job/{job['metadata']['name']}", "--timeout=90s"
    )
