"""Server-side Tables: the column sets and cell logic of kube-apiserver's printers.

Pod cases marked "upstream" are ported from pkg/printers/internalversion/printers_test.go
(TestPrintPod...); their objects carry no creationTimestamp, hence the "<unknown>" age. The
server always prints wide, so rows carry the priority-1 cells too.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from k3py.api.printers import (
    DEFAULT_PRINTER,
    PRINTERS,
    TableError,
    format_label_selector,
    format_labels,
    printer_for,
    service_ports,
    table,
)

NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)
Obj = dict[str, Any]

NAME_DESCRIPTION = (  # as a real kube-apiserver sends it
    "Name must be unique within a namespace. Is required when creating resources, although some resources "
    "may allow a client to request the generation of an appropriate name automatically. Name is primarily "
    "intended for creation idempotence and configuration definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)
AGE_DESCRIPTION = (
    "CreationTimestamp is a timestamp representing the server time when this object was created. It is not "
    "guaranteed to be set in happens-before order across separate operations. Clients may not set this "
    "value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for "
    "lists. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)


def ago(**delta: float) -> str:
    return (NOW - timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def meta(name: str, **extra: Any) -> Obj:
    return {"name": name, "namespace": "default", "creationTimestamp": ago(minutes=5), **extra}


def cells(resource: str, obj: Obj) -> list[Any]:
    result = table(resource, [obj], now=NOW)
    row: list[Any] = result["rows"][0]["cells"]
    return row


def column_names(resource: str) -> list[tuple[str, int]]:
    definitions = table(resource, [], now=NOW)["columnDefinitions"]
    return [(c["name"], c["priority"]) for c in definitions]


# -- pods ---------------------------------------------------------------------------------------

RUNNING: Obj = {"running": {}}
WAITING: Obj = {"waiting": {}}


def pod(status: Obj, containers: int = 1, init: int = 0, **spec: Any) -> Obj:
    return {
        "metadata": {"name": "p"},
        "spec": {
            "containers": [{"name": f"c{i}"} for i in range(containers)],
            **({"initContainers": [{"name": ""} for _ in range(init)]} if init else {}),
            **spec,
        },
        "status": status,
    }


def finished(**delta: float) -> Obj:
    return {"terminated": {"finishedAt": ago(**delta)}}


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (  # upstream test3: the first container's waiting reason wins
            pod(
                {
                    "phase": "podPhase",
                    "containerStatuses": [
                        {"state": {"waiting": {"reason": "ContainerWaitingReason"}}, "restartCount": 3},
                        {"state": {"terminated": {"reason": "ContainerTerminatedReason"}}, "restartCount": 3},
                    ],
                },
                containers=2,
            ),
            ["p", "0/2", "ContainerWaitingReason", "6", "<unknown>"],
        ),
        (  # upstream test4: ready is not enough for reporting running
            pod(
                {
                    "phase": "podPhase",
                    "containerStatuses": [
                        {"ready": True, "restartCount": 3, "state": RUNNING},
                        {"ready": True, "restartCount": 3},
                    ],
                },
                containers=2,
            ),
            ["p", "1/2", "podPhase", "6", "<unknown>"],
        ),
        (  # upstream test5: the pod's reason beats its phase
            pod(
                {
                    "reason": "podReason",
                    "phase": "podPhase",
                    "containerStatuses": [
                        {"ready": True, "restartCount": 3, "state": RUNNING},
                        {"ready": True},
                    ],
                },
                containers=2,
            ),
            ["p", "1/2", "podReason", "3", "<unknown>"],
        ),
        (  # upstream test6: completed + running, without a Ready condition
            pod(
                {
                    "phase": "Running",
                    "containerStatuses": [
                        {"ready": True, "restartCount": 3, "state": {"terminated": {"reason": "Completed"}}},
                        {"ready": True, "restartCount": 3, "state": RUNNING},
                    ],
                },
                containers=2,
            ),
            ["p", "1/2", "NotReady", "6", "<unknown>"],
        ),
        (  # upstream test6 with the Ready condition
            pod(
                {
                    "phase": "Running",
                    "conditions": [{"type": "Ready", "status": "True"}],
                    "containerStatuses": [
                        {"ready": True, "restartCount": 3, "state": {"terminated": {"reason": "Completed"}}},
                        {"ready": True, "restartCount": 3, "state": RUNNING},
                    ],
                },
                containers=2,
            ),
            ["p", "1/2", "Running", "6", "<unknown>"],
        ),
        (  # upstream test7: an init container restarting
            pod(
                {
                    "phase": "podPhase",
                    "initContainerStatuses": [
                        {"restartCount": 3, "state": RUNNING, "lastState": finished(seconds=10)}
                    ],
                    "containerStatuses": [{"state": WAITING}],
                },
                init=1,
            ),
            ["p", "0/1", "Init:0/1", "3 (10s ago)", "<unknown>"],
        ),
        (  # upstream test8
            pod(
                {
                    "phase": "podPhase",
                    "initContainerStatuses": [
                        {"restartCount": 3, "state": RUNNING, "lastState": finished(seconds=10)},
                        {"state": WAITING},
                    ],
                    "containerStatuses": [{"state": WAITING}],
                },
                init=2,
            ),
            ["p", "0/1", "Init:0/2", "3 (10s ago)", "<unknown>"],
        ),
        (  # upstream test9: the first init container is done
            pod(
                {
                    "phase": "podPhase",
                    "initContainerStatuses": [
                        {"state": {"terminated": {}}},
                        {"restartCount": 3, "state": RUNNING, "lastState": finished(seconds=10)},
                    ],
                    "containerStatuses": [{"state": WAITING}],
                },
                init=2,
            ),
            ["p", "0/1", "Init:1/2", "3 (10s ago)", "<unknown>"],
        ),
        (  # upstream test10: restarts add up, the latest restart shows
            pod(
                {
                    "phase": "podPhase",
                    "initContainerStatuses": [
                        {"restartCount": 2, "state": {"terminated": {}}, "lastState": finished(minutes=2)},
                        {"restartCount": 3, "state": RUNNING, "lastState": finished(seconds=10)},
                    ],
                    "containerStatuses": [{"state": WAITING}],
                },
                init=2,
            ),
            ["p", "0/1", "Init:1/2", "5 (10s ago)", "<unknown>"],
        ),
        (  # upstream test11: once initialized, init restarts no longer count
            pod(
                {
                    "phase": "Running",
                    "initContainerStatuses": [
                        {"restartCount": 2, "state": {"terminated": {}}, "lastState": finished(minutes=2)},
                    ],
                    "containerStatuses": [
                        {"restartCount": 4, "state": RUNNING, "lastState": finished(seconds=20)}
                    ],
                },
                init=1,
            ),
            ["p", "0/1", "Running", "4 (20s ago)", "<unknown>"],
        ),
        (  # upstream test12
            pod(
                {
                    "phase": "Running",
                    "containerStatuses": [
                        {"ready": True, "restartCount": 3, "state": RUNNING, "lastState": finished(days=5)}
                    ],
                }
            ),
            ["p", "1/1", "Running", "3 (5d ago)", "<unknown>"],
        ),
        (  # upstream test14: the most recent restart of any container
            pod(
                {
                    "phase": "Running",
                    "containerStatuses": [
                        {"ready": True, "restartCount": 6, "state": RUNNING, "lastState": finished(days=5)},
                        {"ready": True, "restartCount": 3, "state": RUNNING, "lastState": finished(days=20)},
                    ],
                },
                containers=2,
            ),
            ["p", "2/2", "Running", "9 (5d ago)", "<unknown>"],
        ),
        (  # upstream test15
            pod(
                {
                    "phase": "podPhase",
                    "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}],
                },
                containers=2,
            ),
            ["p", "0/2", "SchedulingGated", "0", "<unknown>"],
        ),
        (  # upstream test17
            pod(
                {
                    "phase": "Failed",
                    "containerStatuses": [{"state": {"terminated": {"reason": "Error", "exitCode": 1}}}],
                }
            ),
            ["p", "0/1", "Error", "0", "<unknown>"],
        ),
        (  # upstream test20: a pending pod being deleted
            pod({"phase": "Pending"}) | {"metadata": {"name": "p", "deletionTimestamp": ago(seconds=1)}},
            ["p", "0/1", "Terminating", "0", "<unknown>"],
        ),
        (  # a terminated container without a reason
            pod(
                {
                    "phase": "Running",
                    "containerStatuses": [{"state": {"terminated": {"exitCode": 137, "signal": 9}}}],
                }
            ),
            ["p", "0/1", "Signal:9", "0", "<unknown>"],
        ),
        (
            pod({"phase": "Running", "containerStatuses": [{"state": {"terminated": {"exitCode": 2}}}]}),
            ["p", "0/1", "ExitCode:2", "0", "<unknown>"],
        ),
        (  # failing init containers
            pod(
                {
                    "phase": "Pending",
                    "initContainerStatuses": [{"state": {"terminated": {"reason": "Error", "exitCode": 1}}}],
                },
                init=1,
            ),
            ["p", "0/1", "Init:Error", "0", "<unknown>"],
        ),
        (
            pod(
                {
                    "phase": "Pending",
                    "initContainerStatuses": [{"state": {"terminated": {"exitCode": 3, "signal": 15}}}],
                },
                init=1,
            ),
            ["p", "0/1", "Init:Signal:15", "0", "<unknown>"],
        ),
        (
            pod(
                {"phase": "Pending", "initContainerStatuses": [{"state": {"terminated": {"exitCode": 3}}}]},
                init=1,
            ),
            ["p", "0/1", "Init:ExitCode:3", "0", "<unknown>"],
        ),
        (
            pod(
                {
                    "phase": "Pending",
                    "initContainerStatuses": [{"state": {"waiting": {"reason": "ImagePullBackOff"}}}],
                },
                init=1,
            ),
            ["p", "0/1", "Init:ImagePullBackOff", "0", "<unknown>"],
        ),
        (
            pod(
                {
                    "phase": "Pending",
                    "initContainerStatuses": [{"state": {"waiting": {"reason": "PodInitializing"}}}],
                },
                init=1,
            ),
            ["p", "0/1", "Init:0/1", "0", "<unknown>"],
        ),
    ],
)
def test_pod_status_and_restarts(obj: Obj, expected: list[Any]) -> None:
    assert cells("pods", obj)[:5] == expected


def test_crash_looping_pod_row() -> None:
    crashing = {
        "metadata": meta("web-0"),
        "spec": {"nodeName": "n1", "containers": [{"name": "web", "image": "nginx"}]},
        "status": {
            "phase": "Running",
            "podIP": "10.42.0.7",
            "podIPs": [{"ip": "10.42.0.7"}],
            "containerStatuses": [
                {
                    "name": "web",
                    "ready": False,
                    "restartCount": 4,
                    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 1m20s"}},
                    "lastState": {
                        "terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(seconds=40)}
                    },
                }
            ],
        },
    }
    row = table("pods", [crashing], now=NOW)["rows"][0]
    assert row["cells"] == [
        "web-0",
        "0/1",
        "CrashLoopBackOff",
        "4 (40s ago)",
        "5m",
        "10.42.0.7",
        "n1",
        "<none>",
        "<none>",
    ]
    assert "conditions" not in row


def test_terminating_pod() -> None:
    terminating = {
        "metadata": meta("web-1", deletionTimestamp=ago(seconds=3), deletionGracePeriodSeconds=30),
        "spec": {"containers": [{"name": "web"}]},
        "status": {"phase": "Running", "containerStatuses": [{"ready": True, "state": RUNNING}]},
    }
    assert cells("pods", terminating)[:3] == ["web-1", "1/1", "Terminating"]
    lost = terminating | {"status": {"phase": "Running", "reason": "NodeLost"}}
    assert cells("pods", lost)[2] == "Unknown"


def test_completed_and_failed_pods_carry_row_conditions() -> None:
    done = pod(
        {"phase": "Succeeded", "containerStatuses": [{"state": {"terminated": {"reason": "Completed"}}}]}
    )
    row = table("pods", [done], now=NOW)["rows"][0]
    assert row["cells"][2] == "Completed"
    assert row["conditions"] == [
        {
            "type": "Completed",
            "status": "True",
            "reason": "Succeeded",
            "message": "The pod has completed successfully.",
        }
    ]
    failed = table("pods", [pod({"phase": "Failed"})], now=NOW)["rows"][0]
    assert failed["conditions"] == [
        {"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}
    ]
    deleted = done | {"metadata": {"name": "p", "deletionTimestamp": ago(seconds=1)}}
    assert cells("pods", deleted)[2] == "Completed"  # terminal pods are not "Terminating"


def test_sidecar_containers_count_towards_ready_and_restarts() -> None:
    sidecar = {
        "metadata": meta("app"),
        "spec": {
            "initContainers": [{"name": "setup"}, {"name": "proxy", "restartPolicy": "Always"}],
            "containers": [{"name": "app"}],
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
            "initContainerStatuses": [
                {"name": "setup", "restartCount": 5, "state": {"terminated": {"reason": "Completed"}}},
                {
                    "name": "proxy",
                    "started": True,
                    "ready": True,
                    "restartCount": 1,
                    "state": RUNNING,
                    "lastState": finished(seconds=30),
                },
            ],
            "containerStatuses": [{"name": "app", "ready": True, "state": RUNNING}],
        },
    }
    assert cells("pods", sidecar)[:4] == ["app", "2/2", "Running", "1 (30s ago)"]


def test_pod_wide_cells() -> None:
    gated = {
        "metadata": meta("p"),
        "spec": {"containers": [], "readinessGates": [{"conditionType": "a"}, {"conditionType": "b"}]},
        "status": {
            "phase": "Pending",
            "podIP": "10.42.0.8",  # podIPs wins when present
            "podIPs": [{"ip": "fd00::8"}, {"ip": "10.42.0.8"}],
            "nominatedNodeName": "n2",
            "conditions": [{"type": "a", "status": "True"}, {"type": "b", "status": "False"}],
        },
    }
    assert cells("pods", gated)[5:] == ["fd00::8", "<none>", "n2", "1/2"]


def test_pod_columns() -> None:
    assert column_names("pods") == [
        ("Name", 0),
        ("Ready", 0),
        ("Status", 0),
        ("Restarts", 0),
        ("Age", 0),
        ("IP", 1),
        ("Node", 1),
        ("Nominated Node", 1),
        ("Readiness Gates", 1),
    ]
    name, ready, status, restarts, age, *_ = table("pods", [], now=NOW)["columnDefinitions"]
    assert name == {
        "name": "Name",
        "type": "string",
        "format": "name",
        "description": NAME_DESCRIPTION,
        "priority": 0,
    }
    assert age["description"] == AGE_DESCRIPTION
    assert ready["description"] == "The aggregate readiness state of this pod for accepting traffic."
    assert restarts["type"] == "string"
    assert status["format"] == ""


# -- workloads ----------------------------------------------------------------------------------

TEMPLATE = {
    "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}, {"name": "log", "image": "busybox"}]}
}


def test_deployment_with_partial_availability() -> None:
    deployment = {
        "metadata": meta("web"),
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE},
        "status": {"replicas": 3, "updatedReplicas": 3, "readyReplicas": 2, "availableReplicas": 2},
    }
    assert cells("deployments.apps", deployment) == [
        "web",
        "2/3",
        3,
        2,
        "5m",
        "web,log",
        "nginx:1.27,busybox",
        "app=web",
    ]
    assert column_names("deployments.apps") == [
        ("Name", 0),
        ("Ready", 0),
        ("Up-to-date", 0),
        ("Available", 0),
        ("Age", 0),
        ("Containers", 1),
        ("Images", 1),
        ("Selector", 1),
    ]


def test_deployment_selector_cell() -> None:
    bad = {"metadata": meta("d"), "spec": {"selector": {"matchLabels": {"-bad": "x"}}}}
    assert cells("deployments.apps", bad)[-1] == "<invalid>"
    assert cells("deployments.apps", {"metadata": meta("d"), "spec": {}})[-1] == ""  # nil selects nothing: ""


def test_replica_set() -> None:
    rs = {
        "metadata": meta("web-5d8"),
        "spec": {
            "replicas": 2,
            "selector": {
                "matchLabels": {"app": "web", "pod-template-hash": "5d8"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front", "back"]}],
            },
            "template": TEMPLATE,
        },
        "status": {"replicas": 2, "readyReplicas": 1},
    }
    assert cells("replicasets.apps", rs) == [
        "web-5d8",
        2,
        2,
        1,
        "5m",
        "web,log",
        "nginx:1.27,busybox",
        "app=web,pod-template-hash=5d8,tier in (back,front)",
    ]


def test_stateful_set_and_daemon_set() -> None:
    sts = {
        "metadata": meta("db"),
        "spec": {"replicas": 3, "template": TEMPLATE},
        "status": {"readyReplicas": 1},
    }
    assert cells("statefulsets.apps", sts) == ["db", "1/3", "5m", "web,log", "nginx:1.27,busybox"]
    ds = {
        "metadata": meta("agent"),
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"}, "containers": []}},
        },
        "status": {
            "desiredNumberScheduled": 3,
            "currentNumberScheduled": 3,
            "numberReady": 2,
            "updatedNumberScheduled": 3,
            "numberAvailable": 2,
        },
    }
    assert cells("daemonsets.apps", ds) == [
        "agent",
        3,
        3,
        2,
        3,
        2,
        "kubernetes.io/os=linux",
        "5m",
        "",
        "",
        "app=agent",
    ]
    empty = cells("daemonsets.apps", {"metadata": meta("x")})
    assert empty[6] == "<none>"
    assert empty[-1] == "<none>"


def test_completed_job() -> None:
    job = {
        "metadata": meta("pi"),
        "spec": {
            "completions": 1,
            "parallelism": 1,
            "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "abc"}},
            "template": {"spec": {"containers": [{"name": "pi", "image": "perl"}]}},
        },
        "status": {
            "succeeded": 1,
            "startTime": ago(minutes=2),
            "completionTime": ago(minutes=1, seconds=15),
            "conditions": [
                {"type": "SuccessCriteriaMet", "status": "True"},
                {"type": "Complete", "status": "True"},
            ],
        },
    }
    assert cells("jobs.batch", job) == [
        "pi",
        "Complete",
        "1/1",
        "45s",
        "5m",
        "pi",
        "perl",
        "batch.kubernetes.io/controller-uid=abc",
    ]
    assert column_names("jobs.batch")[:5] == [
        ("Name", 0),
        ("Status", 0),
        ("Completions", 0),
        ("Duration", 0),
        ("Age", 0),
    ]


@pytest.mark.parametrize(
    ("spec", "status", "deleting", "expected"),
    [
        ({"parallelism": 3}, {"startTime": ago(minutes=3)}, False, ["Running", "0/1 of 3", "3m"]),
        ({}, {}, False, ["Running", "0/1", ""]),
        (
            {"completions": 5},
            {"succeeded": 2, "startTime": ago(seconds=30)},
            False,
            ["Running", "2/5", "30s"],
        ),
        ({"completions": 0}, {}, False, ["Running", "0/0", ""]),
        ({}, {"conditions": [{"type": "Failed", "status": "True"}]}, False, ["Failed", "0/1", ""]),
        ({}, {"conditions": [{"type": "Failed", "status": "True"}]}, True, ["Failed", "0/1", ""]),
        ({}, {}, True, ["Terminating", "0/1", ""]),
        ({}, {"conditions": [{"type": "Suspended", "status": "True"}]}, False, ["Suspended", "0/1", ""]),
        (
            {},
            {"conditions": [{"type": "FailureTarget", "status": "True"}]},
            False,
            ["FailureTarget", "0/1", ""],
        ),
        ({}, {"conditions": [{"type": "Complete", "status": "False"}]}, False, ["Running", "0/1", ""]),
    ],
)
def test_job_status_column(spec: Obj, status: Obj, deleting: bool, expected: list[str]) -> None:
    metadata = meta("j", **({"deletionTimestamp": ago(seconds=1)} if deleting else {}))
    assert cells("jobs.batch", {"metadata": metadata, "spec": spec, "status": status})[1:4] == expected


def test_cron_job() -> None:
    cron = {
        "metadata": meta("backup"),
        "spec": {
            "schedule": "*/5 * * * *",
            "suspend": False,
            "jobTemplate": {
                "spec": {"template": {"spec": {"containers": [{"name": "b", "image": "restic"}]}}}
            },
        },
        "status": {"active": [{"name": "backup-1"}], "lastScheduleTime": ago(minutes=2)},
    }
    assert cells("cronjobs.batch", cron) == [
        "backup",
        "*/5 * * * *",
        "<none>",
        "False",
        1,
        "2m",
        "5m",
        "b",
        "restic",
        "<none>",
    ]
    zoned = cron | {"spec": {"schedule": "@daily", "timeZone": "Etc/UTC"}, "status": {}}
    assert cells("cronjobs.batch", zoned)[1:6] == ["@daily", "Etc/UTC", "<unset>", 0, "<none>"]


# -- services -----------------------------------------------------------------------------------


def service(kind: str | None, **spec: Any) -> Obj:
    return {
        "metadata": meta("svc"),
        "spec": ({"type": kind} if kind else {}) | spec,
        "status": spec.pop("status", {}),
    }


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (
            service(
                "ClusterIP",
                clusterIP="10.43.0.10",
                clusterIPs=["10.43.0.10"],
                selector={"k8s-app": "kube-dns"},
                ports=[
                    {"name": "dns", "port": 53, "protocol": "UDP"},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                ],
            ),
            ["svc", "ClusterIP", "10.43.0.10", "<none>", "53/UDP,53/TCP", "5m", "k8s-app=kube-dns"],
        ),
        (
            service(
                "ClusterIP", clusterIP="None", clusterIPs=["None"], ports=[{"port": 5432, "protocol": "TCP"}]
            ),
            ["svc", "ClusterIP", "None", "<none>", "5432/TCP", "5m", "<none>"],
        ),
        (
            service("ClusterIP", clusterIP="10.43.0.9", externalIPs=["1.2.3.4", "5.6.7.8"], ports=[]),
            ["svc", "ClusterIP", "10.43.0.9", "1.2.3.4,5.6.7.8", "<none>", "5m", "<none>"],
        ),
        (
            service(
                "NodePort",
                clusterIPs=["10.43.1.1", "fd00::1"],
                ports=[
                    {"port": 80, "nodePort": 30080, "protocol": "TCP"},
                    {"port": 443, "nodePort": 30443, "protocol": "TCP"},
                ],
                selector={"app": "web", "tier": "front"},
            ),
            [
                "svc",
                "NodePort",
                "10.43.1.1",
                "<none>",
                "80:30080/TCP,443:30443/TCP",
                "5m",
                "app=web,tier=front",
            ],
        ),
        (
            service(
                "LoadBalancer",
                clusterIPs=["10.43.2.2"],
                ports=[{"port": 80, "protocol": "TCP"}, {"port": 443, "nodePort": 30443, "protocol": "TCP"}],
            ),
            ["svc", "LoadBalancer", "10.43.2.2", "<pending>", "80/TCP,443:30443/TCP", "5m", "<none>"],
        ),
        (
            service(
                "LoadBalancer",
                clusterIPs=["10.43.2.2"],
                ports=[{"port": 80, "nodePort": 31000, "protocol": "TCP"}],
                status={
                    "loadBalancer": {
                        "ingress": [
                            {"hostname": "lb.example.com"},
                            {"ip": "192.0.2.10"},
                            {"ip": "192.0.2.10"},
                        ]
                    }
                },
            ),
            ["svc", "LoadBalancer", "10.43.2.2", "192.0.2.10,lb.example.com", "80:31000/TCP", "5m", "<none>"],
        ),
        (
            service(
                "LoadBalancer",
                clusterIPs=["10.43.2.2"],
                externalIPs=["198.51.100.1"],
                ports=[{"port": 8443, "nodePort": 32443, "protocol": "SCTP"}],
                status={"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}},
            ),
            [
                "svc",
                "LoadBalancer",
                "10.43.2.2",
                "192.0.2.10,198.51.100.1",
                "8443:32443/SCTP",
                "5m",
                "<none>",
            ],
        ),
        (
            service("LoadBalancer", clusterIPs=["10.43.2.3"], externalIPs=["198.51.100.1"]),
            ["svc", "LoadBalancer", "10.43.2.3", "198.51.100.1", "<none>", "5m", "<none>"],
        ),
        (
            service("ExternalName", externalName="db.example.com"),
            ["svc", "ExternalName", "<none>", "db.example.com", "<none>", "5m", "<none>"],
        ),
        (
            service(None, clusterIP="10.43.0.1", ports=[{"port": 443}]),  # unconverted: clusterIP, no type
            ["svc", "", "10.43.0.1", "<unknown>", "443/TCP", "5m", "<none>"],
        ),
    ],
)
def test_services(obj: Obj, expected: list[Any]) -> None:
    assert cells("services", obj) == expected


def test_service_ports_string() -> None:
    ports = [{"port": 80, "protocol": "TCP"}, {"port": 443, "nodePort": 30443, "protocol": "TCP"}]
    assert service_ports(ports) == "80/TCP,443:30443/TCP"
    assert service_ports([]) == ""


def test_service_columns() -> None:
    assert column_names("services") == [
        ("Name", 0),
        ("Type", 0),
        ("Cluster-IP", 0),
        ("External-IP", 0),
        ("Port(s)", 0),
        ("Age", 0),
        ("Selector", 1),
    ]


@pytest.mark.parametrize(
    ("spec", "status", "expected"),
    [
        (
            {
                "ingressClassName": "traefik",
                "rules": [
                    {"host": "a.example"},
                    {},
                    {"host": "b.example"},
                    {"host": "c.example"},
                    {"host": "d.example"},
                ],
                "tls": [{"hosts": ["a.example"]}],
            },
            {"loadBalancer": {"ingress": [{"ip": "10.0.0.5"}]}},
            ["traefik", "a.example,b.example,c.example + 2 more...", "10.0.0.5", "80, 443"],
        ),
        ({"rules": [{}]}, {}, ["<none>", "*", "", "80"]),
        ({"rules": [{"host": "a"}, {"host": "b"}, {"host": "c"}]}, {}, ["<none>", "a,b,c", "", "80"]),
    ],
)
def test_ingresses(spec: Obj, status: Obj, expected: list[str]) -> None:
    row = cells("ingresses.networking.k8s.io", {"metadata": meta("web"), "spec": spec, "status": status})
    assert row == ["web", *expected, "5m"]


def test_endpoint_slices() -> None:
    slice_ = {
        "metadata": meta("web-abc"),
        "addressType": "IPv4",
        "ports": [{"port": 80}, {"name": "https"}, {}, {"port": 9090}],
        "endpoints": [{"addresses": ["10.42.0.1"]}, {"addresses": ["10.42.0.2", "10.42.0.3"]}],
    }
    assert cells("endpointslices.discovery.k8s.io", slice_) == [
        "web-abc",
        "IPv4",
        "80,https,* + 1 more...",
        "10.42.0.1,10.42.0.2,10.42.0.3",
        "5m",
    ]
    empty = {"metadata": meta("e"), "addressType": "IPv6"}
    assert cells("endpointslices.discovery.k8s.io", empty)[2:4] == ["<unset>", "<unset>"]


# -- nodes and events ---------------------------------------------------------------------------


def test_nodes() -> None:
    node = {
        "metadata": {
            "name": "n1",
            "creationTimestamp": ago(days=3, hours=4),
            "labels": {
                "node-role.kubernetes.io/control-plane": "",
                "node-role.kubernetes.io/master": "true",
                "node-role.kubernetes.io/": "",
                "kubernetes.io/role": "etcd",
            },
        },
        "spec": {"unschedulable": True},
        "status": {
            "conditions": [
                {"type": "MemoryPressure", "status": "False"},
                {"type": "Ready", "status": "True"},
            ],
            "addresses": [
                {"type": "Hostname", "address": "n1"},
                {"type": "InternalIP", "address": "192.168.1.10"},
                {"type": "InternalIP", "address": "192.168.1.11"},
            ],
            "nodeInfo": {
                "kubeletVersion": "v1.37.0+k3py",
                "osImage": "Debian GNU/Linux 13 (trixie)",
                "kernelVersion": "6.12.0",
                "containerRuntimeVersion": "containerd://2.1.0",
            },
        },
    }
    assert cells("nodes", node) == [
        "n1",
        "Ready,SchedulingDisabled",
        "control-plane,etcd,master",
        "3d4h",
        "v1.37.0+k3py",
        "192.168.1.10",
        "<none>",
        "Debian GNU/Linux 13 (trixie)",
        "6.12.0",
        "containerd://2.1.0",
    ]
    bare = cells("nodes", {"metadata": {"name": "n2"}})
    assert bare == [
        "n2",
        "Unknown",
        "<none>",
        "<unknown>",
        "",
        "<none>",
        "<none>",
        "<unknown>",
        "<unknown>",
        "<unknown>",
    ]
    not_ready = {
        "metadata": {"name": "n3"},
        "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]},
    }
    assert cells("nodes", not_ready)[1] == "NotReady"


def test_core_event() -> None:
    event = {
        "metadata": meta("web-0.17d"),
        "involvedObject": {"kind": "Pod", "name": "web-0", "fieldPath": "spec.containers{web}"},
        "reason": "BackOff",
        "message": "  Back-off restarting failed container web\n",
        "source": {"component": "kubelet", "host": "n1"},
        "firstTimestamp": ago(minutes=10),
        "lastTimestamp": ago(minutes=3),
        "count": 5,
        "type": "Warning",
    }
    assert cells("events", event) == [
        "3m",
        "Warning",
        "BackOff",
        "pod/web-0",
        "spec.containers{web}",
        "kubelet, n1",
        "Back-off restarting failed container web",
        "10m",
        5,
        "web-0.17d",
    ]
    assert column_names("events") == [
        ("Last Seen", 0),
        ("Type", 0),
        ("Reason", 0),
        ("Object", 0),
        ("Subobject", 1),
        ("Source", 1),
        ("Message", 0),
        ("First Seen", 1),
        ("Count", 1),
        ("Name", 1),
    ]


def test_events_k8s_io_event_prints_like_a_core_one() -> None:
    event = {
        "metadata": meta("e2"),
        "regarding": {"kind": "Node"},
        "reason": "Starting",
        "note": "Starting kubelet.",
        "reportingController": "kubelet",
        "reportingInstance": "n1",
        "eventTime": (NOW - timedelta(minutes=2, seconds=1)).strftime(
            "%Y-%m-%dT%H:%M:%S.123456Z"
        ),  # MicroTime
        "series": {"count": 3, "lastObservedTime": (NOW - timedelta(seconds=30)).isoformat()},
        "type": "Normal",
        "action": "Start",
    }
    assert cells("events.events.k8s.io", event) == [
        "30s",
        "Normal",
        "Starting",
        "node",
        "",
        "kubelet, n1",
        "Starting kubelet.",
        "2m",
        3,
        "e2",
    ]
    singleton = {k: v for k, v in event.items() if k != "series"}
    assert cells("events.events.k8s.io", singleton)[0] == "2m"  # last seen falls back to first seen
    assert cells("events.events.k8s.io", singleton)[8] == 1
    assert cells("events", {"metadata": meta("e3")})[:1] + cells("events", {"metadata": meta("e3")})[7:9] == [
        "<unknown>",
        "<unknown>",
        1,
    ]


# -- config, storage, RBAC, misc ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "obj", "expected"),
    [
        (
            "configmaps",
            {"metadata": meta("c"), "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}},
            ["c", 3, "5m"],
        ),
        ("configmaps", {"metadata": meta("c")}, ["c", 0, "5m"]),
        (
            "secrets",
            {"metadata": meta("s"), "type": "Opaque", "data": {"a": "MQ==", "b": "Mg=="}},
            ["s", "Opaque", 2, "5m"],
        ),
        ("namespaces", {"metadata": meta("dev"), "status": {"phase": "Active"}}, ["dev", "Active", "5m"]),
        ("serviceaccounts", {"metadata": meta("default")}, ["default", 0, "5m"]),
        ("serviceaccounts", {"metadata": meta("old"), "secrets": [{"name": "old-token"}]}, ["old", 1, "5m"]),
        (
            "leases.coordination.k8s.io",
            {"metadata": meta("n1"), "spec": {"holderIdentity": "n1", "leaseDurationSeconds": 40}},
            ["n1", "n1", "5m"],
        ),
        ("leases.coordination.k8s.io", {"metadata": meta("free"), "spec": {}}, ["free", "", "5m"]),
        (
            "priorityclasses.scheduling.k8s.io",
            {"metadata": meta("high"), "value": 1000000, "globalDefault": True, "preemptionPolicy": "Never"},
            ["high", 1000000, True, "5m", "Never"],
        ),
        (
            "storageclasses.storage.k8s.io",
            {
                "metadata": meta(
                    "local-path", annotations={"storageclass.kubernetes.io/is-default-class": "true"}
                ),
                "provisioner": "rancher.io/local-path",
                "volumeBindingMode": "WaitForFirstConsumer",
            },
            ["local-path (default)", "rancher.io/local-path", "Delete", "WaitForFirstConsumer", False, "5m"],
        ),
        (
            "storageclasses.storage.k8s.io",
            {
                "metadata": meta("fast"),
                "provisioner": "x",
                "reclaimPolicy": "Retain",
                "allowVolumeExpansion": True,
            },
            ["fast", "x", "Retain", "Immediate", True, "5m"],
        ),
        (
            "rolebindings.rbac.authorization.k8s.io",
            {
                "metadata": meta("rb"),
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
                "subjects": [
                    {"kind": "User", "name": "alice"},
                    {"kind": "Group", "name": "devs"},
                    {"kind": "User", "name": "bob"},
                    {"kind": "ServiceAccount", "name": "ci", "namespace": "tools"},
                    {"kind": "Robot", "name": "r2"},
                ],
            },
            ["rb", "ClusterRole/view", "5m", "alice, bob", "devs", "tools/ci"],
        ),
        (
            "clusterrolebindings.rbac.authorization.k8s.io",
            {"metadata": meta("crb"), "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"}},
            ["crb", "ClusterRole/cluster-admin", "5m", "", "", ""],
        ),
        (
            "persistentvolumes",
            {
                "metadata": meta("pv1"),
                "spec": {
                    "capacity": {"storage": "10Gi"},
                    "accessModes": ["ReadWriteMany", "ReadWriteOnce", "ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "claimRef": {"namespace": "default", "name": "data"},
                    "storageClassName": "local",
                    "volumeMode": "Filesystem",
                },
                "status": {"phase": "Bound"},
            },
            [
                "pv1",
                "10Gi",
                "RWO,RWX",
                "Retain",
                "Bound",
                "default/data",
                "local",
                "<unset>",
                "",
                "5m",
                "Filesystem",
            ],
        ),
        (
            "persistentvolumes",
            {
                "metadata": meta(
                    "pv2",
                    deletionTimestamp=ago(seconds=1),
                    annotations={"volume.beta.kubernetes.io/storage-class": "old"},
                ),
                "spec": {"storageClassName": "new", "volumeAttributesClassName": "gold"},
                "status": {"phase": "Released", "reason": "Oops"},
            },
            ["pv2", "0", "", "", "Terminating", "", "old", "gold", "Oops", "5m", "<unset>"],
        ),
        (
            "persistentvolumeclaims",
            {
                "metadata": meta("data"),
                "spec": {
                    "volumeName": "pv1",
                    "storageClassName": "local",
                    "resources": {"requests": {"storage": "5Gi"}},
                    "volumeMode": "Filesystem",
                },
                "status": {
                    "phase": "Bound",
                    "capacity": {"storage": "10Gi"},
                    "accessModes": ["ReadWriteOncePod"],
                },
            },
            ["data", "Bound", "pv1", "10Gi", "RWOP", "local", "<unset>", "5m", "Filesystem"],
        ),
        (
            "persistentvolumeclaims",
            {
                "metadata": meta("wait"),
                "spec": {"resources": {"requests": {"storage": "5Gi"}}},
                "status": {"phase": "Pending"},
            },
            ["wait", "Pending", "", "", "", "", "<unset>", "5m", "<unset>"],
        ),
        (
            "certificatesigningrequests.certificates.k8s.io",
            {
                "metadata": meta("csr-1"),
                "spec": {
                    "signerName": "kubernetes.io/kubelet-serving",
                    "username": "system:node:n1",
                    "expirationSeconds": 86400,
                },
                "status": {"conditions": [{"type": "Approved"}, {"type": "Failed"}], "certificate": "LS0t"},
            },
            [
                "csr-1",
                "5m",
                "kubernetes.io/kubelet-serving",
                "system:node:n1",
                "24h",
                "Approved,Failed,Issued",
            ],
        ),
        (
            "certificatesigningrequests.certificates.k8s.io",
            {
                "metadata": meta("csr-2"),
                "spec": {},
                "status": {"conditions": [{"type": "Approved"}, {"type": "Denied"}]},
            },
            ["csr-2", "5m", "<none>", "", "<none>", "Denied"],
        ),
        (
            "poddisruptionbudgets.policy",
            {"metadata": meta("pdb"), "spec": {"minAvailable": 2}, "status": {"disruptionsAllowed": 1}},
            ["pdb", "2", "N/A", 1, "5m"],
        ),
        (
            "poddisruptionbudgets.policy",
            {"metadata": meta("pdb"), "spec": {"maxUnavailable": "25%"}},
            ["pdb", "N/A", "25%", 0, "5m"],
        ),
        (
            "controllerrevisions.apps",
            {
                "metadata": meta(
                    "web-7c9",
                    ownerReferences=[
                        {"apiVersion": "v1", "kind": "Pod", "name": "x"},
                        {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "controller": True},
                    ],
                ),
                "revision": 2,
            },
            ["web-7c9", "statefulset.apps/web", 2, "5m"],
        ),
        ("controllerrevisions.apps", {"metadata": meta("r"), "revision": 1}, ["r", "<none>", 1, "5m"]),
        (
            "ingressclasses.networking.k8s.io",
            {
                "metadata": meta("traefik"),
                "spec": {
                    "controller": "traefik.io/ingress-controller",
                    "parameters": {
                        "apiGroup": "k8s.example.com",
                        "kind": "IngressParameters",
                        "name": "external",
                    },
                },
            },
            ["traefik", "traefik.io/ingress-controller", "IngressParameters.k8s.example.com/external", "5m"],
        ),
        (
            "networkpolicies.networking.k8s.io",
            {"metadata": meta("deny"), "spec": {"podSelector": {}}},
            ["deny", "<none>", "5m"],
        ),
        (
            "networkpolicies.networking.k8s.io",
            {"metadata": meta("web"), "spec": {"podSelector": {"matchLabels": {"app": "web"}}}},
            ["web", "app=web", "5m"],
        ),
        (
            "resourcequotas",
            {
                "metadata": meta("q"),
                "status": {
                    "hard": {"limits.cpu": "2", "requests.cpu": "1", "pods": "10", "limits.memory": "1Gi"},
                    "used": {"requests.cpu": "500m", "pods": "3"},
                },
            },
            ["q", "pods: 3/10, requests.cpu: 500m/1", "limits.cpu: 0/2, limits.memory: 0/1Gi", "5m"],
        ),
        ("runtimeclasses.node.k8s.io", {"metadata": meta("runc"), "handler": "runc"}, ["runc", "runc", "5m"]),
        (
            "mutatingwebhookconfigurations.admissionregistration.k8s.io",
            {"metadata": meta("hooks"), "webhooks": [{"name": "a"}, {"name": "b"}]},
            ["hooks", 2, "5m"],
        ),
        (
            "podtemplates",
            {"metadata": meta("t"), "template": {"metadata": {"labels": {"b": "2", "a": "1"}}} | TEMPLATE},
            ["t", "web,log", "nginx:1.27,busybox", "a=1,b=2"],
        ),
        (
            "replicationcontrollers",
            {
                "metadata": meta("rc"),
                "spec": {"replicas": 2, "selector": {"app": "x"}},
                "status": {"replicas": 1},
            },
            ["rc", 2, 1, 0, "5m", "", "", "app=x"],
        ),
        (
            "volumeattachments.storage.k8s.io",
            {
                "metadata": meta("csi-123"),
                "spec": {
                    "attacher": "ebs.csi.aws.com",
                    "nodeName": "n1",
                    "source": {"persistentVolumeName": "pv1"},
                },
                "status": {"attached": True},
            },
            ["csi-123", "ebs.csi.aws.com", "pv1", "n1", True, "5m"],
        ),
        (
            "csinodes.storage.k8s.io",
            {"metadata": meta("n1"), "spec": {"drivers": [{"name": "d"}]}},
            ["n1", 1, "5m"],
        ),
    ],
)
def test_more_kinds(resource: str, obj: Obj, expected: list[Any]) -> None:
    assert cells(resource, obj) == expected


# -- the default convertor and the Table itself -------------------------------------------------


@pytest.mark.parametrize(
    "resource",
    [
        "roles.rbac.authorization.k8s.io",
        "clusterroles.rbac.authorization.k8s.io",
        "customresourcedefinitions.apiextensions.k8s.io",
        "widgets.example.com",
        "limitranges",
    ],
)
def test_resources_without_a_printer_get_name_and_created_at(resource: str) -> None:
    obj = {"metadata": {"name": "thing", "creationTimestamp": "2024-05-31T22:30:00+02:00"}}
    result = table(resource, [obj], now=NOW)
    assert result["columnDefinitions"] == [
        {"name": "Name", "type": "string", "format": "name", "description": NAME_DESCRIPTION, "priority": 0},
        {"name": "Created At", "type": "date", "format": "", "description": AGE_DESCRIPTION, "priority": 0},
    ]
    assert result["rows"][0]["cells"] == ["thing", "2024-05-31T20:30:00Z"]
    assert printer_for(resource) is DEFAULT_PRINTER


def test_default_convertor_prints_go_zero_time() -> None:
    assert cells("roles.rbac.authorization.k8s.io", {"metadata": {"name": "r"}}) == [
        "r",
        "0001-01-01T00:00:00Z",
    ]


def test_table_envelope_and_row_objects() -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta("c", resourceVersion="7"),
        "data": {"a": "b"},
    }
    result = table(
        "configmaps",
        [obj],
        now=NOW,
        list_meta={"resourceVersion": "42", "continue": "abc", "remainingItemCount": 3, "selfLink": "/x"},
    )
    assert list(result) == ["kind", "apiVersion", "metadata", "columnDefinitions", "rows"]
    assert result["kind"] == "Table"
    assert result["apiVersion"] == "meta.k8s.io/v1"
    assert result["metadata"] == {"resourceVersion": "42", "continue": "abc", "remainingItemCount": 3}
    assert result["rows"] == [
        {
            "cells": ["c", 1, "5m"],
            "object": {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj["metadata"],
            },
        }
    ]
    full = table("configmaps", [obj], now=NOW, include_object="Object")
    assert full["rows"][0]["object"] is obj
    assert full["metadata"] == {}
    assert table("configmaps", [obj], now=NOW, include_object="None")["rows"][0]["object"] is None
    assert (
        table("configmaps", [obj], now=NOW, include_object="")["rows"][0]["object"]["kind"]
        == "PartialObjectMetadata"
    )
    beta = table("configmaps", [obj], now=NOW, group_version="meta.k8s.io/v1beta1")
    assert beta["apiVersion"] == beta["rows"][0]["object"]["apiVersion"] == "meta.k8s.io/v1beta1"


def test_no_headers_and_empty_lists() -> None:
    result = table("pods", [], now=NOW, no_headers=True, list_meta={"resourceVersion": "5", "continue": ""})
    assert result["columnDefinitions"] is None
    assert result["rows"] == []
    assert result["metadata"] == {"resourceVersion": "5"}


def test_unknown_include_object_is_a_bad_request() -> None:
    with pytest.raises(TableError, match=r'^unrecognized includeObject value: "Everything"$'):
        table("pods", [], now=NOW, include_object="Everything")


def test_naive_now_is_utc() -> None:
    assert cells("configmaps", {"metadata": meta("c")})[-1] == "5m"
    naive = table("configmaps", [{"metadata": meta("c")}], now=NOW.replace(tzinfo=None))
    assert naive["rows"][0]["cells"][-1] == "5m"


def test_future_and_garbled_timestamps() -> None:
    assert (
        cells("configmaps", {"metadata": {"name": "c", "creationTimestamp": ago(seconds=-10)}})[-1]
        == "<invalid>"
    )
    assert (
        cells("configmaps", {"metadata": {"name": "c", "creationTimestamp": "yesterday"}})[-1] == "<unknown>"
    )


@pytest.mark.parametrize("resource", sorted(PRINTERS))
def test_every_printer_fills_every_column_even_for_a_bare_object(resource: str) -> None:
    result = table(resource, [{"metadata": {"name": "x"}}], now=NOW)
    assert len(result["rows"][0]["cells"]) == len(result["columnDefinitions"])
    for column in result["columnDefinitions"]:
        assert column["type"] in ("string", "integer", "boolean", "date")
        assert column["priority"] in (0, 1)
        assert column["description"] or (resource, column["name"]) == (
            "runtimeclasses.node.k8s.io",
            "Handler",
        )
    assert [c["name"] for c in result["columnDefinitions"]].count("Name") == 1


def test_label_formatting_helpers() -> None:
    assert format_labels({}) == "<none>"
    assert format_labels({"b": "2", "a": ""}) == "a=,b=2"
    assert format_label_selector(None) == "<none>"
    assert format_label_selector({}) == "<none>"
    assert format_label_selector({"matchLabels": {"a": "b"}}) == "a=b"
    assert format_label_selector({"matchExpressions": [{"key": "a", "operator": "Bad"}]}) == "<error>"


def test_horizontal_pod_autoscalers_in_both_versions() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    created = {"name": "web", "creationTimestamp": "2025-12-31T23:00:00Z"}
    ref = {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"}
    v2 = {
        "metadata": created,
        "spec": {
            "scaleTargetRef": ref,
            "maxReplicas": 5,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}},
                },
                {
                    "type": "Resource",
                    "resource": {
                        "name": "memory",
                        "target": {"type": "AverageValue", "averageValue": "500Mi"},
                    },
                },
            ],
        },
        "status": {
            "currentReplicas": 2,
            "currentMetrics": [
                {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 40}}}
            ],
        },
    }
    v1 = {
        "metadata": created,
        "spec": {
            "scaleTargetRef": ref,
            "minReplicas": 1,
            "maxReplicas": 3,
            "targetCPUUtilizationPercentage": 70,
        },
    }
    t = table("horizontalpodautoscalers.autoscaling", [v2, v1], now=now)
    assert [c["name"] for c in t["columnDefinitions"]] == [
        "Name",
        "Reference",
        "Targets",
        "MinPods",
        "MaxPods",
        "Replicas",
        "Age",
    ]
    assert t["rows"][0]["cells"] == [
        "web",
        "Deployment/web",
        "cpu: 40%/60%, memory: <unknown>/500Mi",
        "<unset>",
        5,
        2,
        "60m",
    ]
    assert t["rows"][1]["cells"] == ["web", "Deployment/web", "cpu: <unknown>/70%", "1", 3, 0, "60m"]
