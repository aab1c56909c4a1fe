"""Validation of pods and pod specs: containers, ports, env, volumes, probes, resources, updates.

Expected causes are kube-apiserver 1.37's for the same Pod (reason, message, field path). Pods are
defaulted first, as the API server does, so the starting point is what a client would send.
"""

# ruff: noqa: E501  (tables of upstream's messages: one expected cause per line reads and greps best)
from __future__ import annotations

import copy
from typing import Any

import pytest

from k3py.api import defaults, objects
from k3py.api.resources import RESOURCES
from k3py.api.validation import Cause, validate
from tests.unit.api_cases import forbidden, invalid, required, resource

Obj = dict[str, Any]
PODS = resource("pods")
ENV_NAME = "a valid environment variable name must consist only of printable ASCII characters other than '='"


def pod(**spec: Any) -> Obj:
    body: Obj = {"containers": [{"name": "app", "image": "nginx:1.27"}], **spec}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": body,
    }


def container(**fields: Any) -> Obj:
    return {"name": "app", "image": "nginx:1.27", **fields}


def defaulted(obj: Obj) -> Obj:
    out = copy.deepcopy(obj)
    defaults.apply(PODS, out)
    return out


def check(obj: Obj, old: Obj | None = None) -> list[Cause]:
    return validate(PODS, defaulted(obj), defaulted(old) if old is not None else None)


def unsupported(field: str, value: str, *supported: str) -> Cause:
    shown = ", ".join(f'"{s}"' for s in supported)
    return Cause("FieldValueNotSupported", f'Unsupported value: "{value}": supported values: {shown}', field)


def duplicate(field: str, shown: str) -> Cause:
    return Cause("FieldValueDuplicate", f"Duplicate value: {shown}", field)


REALISTIC: Obj = pod(
    containers=[
        container(
            name="web",
            image="registry.example.com/shop/web:2.3.1",
            ports=[{"name": "http", "containerPort": 8080}, {"name": "metrics", "containerPort": 9090}],
            env=[
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {
                    "name": "CPU_LIMIT",
                    "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1m"}},
                },
                {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
                {"name": "log.level", "value": "debug"},
                {"name": "1_STARTS_WITH_A_DIGIT", "value": "fine since 1.34"},
            ],
            envFrom=[{"configMapRef": {"name": "web-config"}, "prefix": "CFG_"}],
            resources={
                "requests": {"cpu": "250m", "memory": "256Mi"},
                "limits": {"cpu": "1", "memory": "512Mi"},
            },
            livenessProbe={"httpGet": {"path": "/healthz", "port": "http"}, "initialDelaySeconds": 5},
            readinessProbe={"tcpSocket": {"port": 8080}},
            lifecycle={"preStop": {"sleep": {"seconds": 5}}},
            volumeMounts=[
                {"name": "config", "mountPath": "/etc/web"},
                {"name": "cache", "mountPath": "/var/cache/web", "subPath": "web"},
            ],
            securityContext={"runAsUser": 1000, "allowPrivilegeEscalation": False},
        ),
        container(name="sidecar", image="busybox:1.36", command=["sh", "-c", "sleep infinity"]),
    ],
    initContainers=[
        container(name="migrate", image="registry.example.com/shop/migrate:2.3.1"),
        container(
            name="proxy",
            image="envoyproxy/envoy:v1.31",
            restartPolicy="Always",
            readinessProbe={"exec": {"command": ["true"]}},
        ),
    ],
    volumes=[
        {
            "name": "config",
            "configMap": {"name": "web-config", "items": [{"key": "app.yaml", "path": "app.yaml"}]},
        },
        {"name": "cache", "emptyDir": {"sizeLimit": "1Gi"}},
        {
            "name": "token",
            "projected": {"sources": [{"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}}]},
        },
    ],
    nodeSelector={"kubernetes.io/os": "linux"},
    tolerations=[{"key": "dedicated", "operator": "Equal", "value": "web", "effect": "NoSchedule"}],
    affinity={
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "podAffinityTerm": {
                        "topologyKey": "kubernetes.io/hostname",
                        "labelSelector": {"matchLabels": {"app": "web"}},
                    },
                }
            ]
        }
    },
    topologySpreadConstraints=[
        {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway"}
    ],
    securityContext={"fsGroup": 2000, "seccompProfile": {"type": "RuntimeDefault"}},
    serviceAccountName="web",
    dnsConfig={"nameservers": ["10.0.0.10"], "options": [{"name": "ndots", "value": "2"}]},
)


def test_realistic_pods_pass() -> None:
    assert check(pod()) == []
    assert check(REALISTIC) == []


def test_containers_are_required() -> None:
    assert check(pod(containers=[])) == [required("spec.containers")]


@pytest.mark.parametrize(
    ("c", "causes"),
    [
        (container(name=""), [required("spec.containers[0].name")]),
        (container(name="Web_1"), [invalid("spec.containers[0].name", '"Web_1"', objects.LABEL_MESSAGE)]),
        (container(image=""), [required("spec.containers[0].image")]),
        (
            container(image=" nginx"),
            [invalid("spec.containers[0].image", '" nginx"', "must not have leading or trailing whitespace")],
        ),
        (
            container(imagePullPolicy="Sometimes"),
            [
                unsupported(
                    "spec.containers[0].imagePullPolicy", "Sometimes", "Always", "IfNotPresent", "Never"
                )
            ],
        ),
        (
            container(terminationMessagePolicy="Log"),
            [
                unsupported(
                    "spec.containers[0].terminationMessagePolicy", "Log", "File", "FallbackToLogsOnError"
                )
            ],
        ),
    ],
    ids=[
        "name-required",
        "name-label",
        "image-required",
        "image-whitespace",
        "pull-policy",
        "termination-message",
    ],
)
def test_container_basics(c: Obj, causes: list[Cause]) -> None:
    assert check(pod(containers=[c])) == causes


def test_container_names_are_unique_across_all_kinds() -> None:
    got = check(
        pod(
            containers=[container(), container()],
            initContainers=[container(name="app")],
        )
    )
    assert got == [
        duplicate("spec.containers[1].name", '"app"'),
        duplicate("spec.initContainers[0].name", '"app"'),
    ]


@pytest.mark.parametrize(
    ("ports", "causes"),
    [
        ([{"containerPort": 0}], [required("spec.containers[0].ports[0].containerPort")]),
        (
            [{"containerPort": 65536}],
            [
                invalid(
                    "spec.containers[0].ports[0].containerPort",
                    "65536",
                    "must be between 1 and 65535, inclusive",
                )
            ],
        ),
        (
            [{"containerPort": 80, "hostPort": 70000}],
            [
                invalid(
                    "spec.containers[0].ports[0].hostPort", "70000", "must be between 1 and 65535, inclusive"
                )
            ],
        ),
        (
            [{"containerPort": 80, "protocol": "HTTP"}],
            [unsupported("spec.containers[0].ports[0].protocol", "HTTP", "SCTP", "TCP", "UDP")],
        ),
        (
            [{"name": "http", "containerPort": 80}, {"name": "http", "containerPort": 81}],
            [duplicate("spec.containers[0].ports[1].name", '"http"')],
        ),
        (
            [{"name": "a-very-long-port-name", "containerPort": 80}],
            [
                invalid(
                    "spec.containers[0].ports[0].name",
                    '"a-very-long-port-name"',
                    "must be no more than 15 characters",
                )
            ],
        ),
        (
            [{"name": "8080", "containerPort": 80}],
            [invalid("spec.containers[0].ports[0].name", '"8080"', "must contain at least one letter (a-z)")],
        ),
    ],
    ids=[
        "port-required",
        "port-range",
        "host-port-range",
        "protocol",
        "duplicate-name",
        "long-name",
        "numeric-name",
    ],
)
def test_container_ports(ports: list[Obj], causes: list[Cause]) -> None:
    assert check(pod(containers=[container(ports=ports)])) == causes


def test_host_ports_conflict_across_containers() -> None:
    got = check(
        pod(
            containers=[
                container(ports=[{"containerPort": 80, "hostPort": 8080}]),
                container(name="b", ports=[{"containerPort": 81, "hostPort": 8080}]),
            ]
        )
    )
    assert got == [duplicate("spec.containers[1].ports[0].hostPort", '"TCP//8080"')]


def test_host_network_pods_must_use_matching_host_ports() -> None:
    got = check(
        pod(hostNetwork=True, containers=[container(ports=[{"containerPort": 80, "hostPort": 8080}])])
    )
    assert got == [
        invalid(
            "spec.containers[0].ports[0].hostPort",
            "8080",
            "must match `containerPort` when `hostNetwork` is true",
        )
    ]


@pytest.mark.parametrize(
    ("env", "causes"),
    [
        ([{"name": ""}], [required("spec.containers[0].env[0].name")]),
        ([{"name": "A=B"}], [invalid("spec.containers[0].env[0].name", '"A=B"', ENV_NAME)]),
        ([{"name": "TAB\tNAME"}], [invalid("spec.containers[0].env[0].name", '"TAB\\tNAME"', ENV_NAME)]),
        (
            [{"name": "X", "valueFrom": {}}],
            [
                invalid(
                    "spec.containers[0].env[0].valueFrom",
                    '""',
                    "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
                )
            ],
        ),
        (
            [{"name": "X", "value": "v", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            [
                invalid(
                    "spec.containers[0].env[0].valueFrom",
                    '""',
                    "may not be specified when `value` is not empty",
                )
            ],
        ),
        (
            [{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "status.phase"}}}],
            [
                unsupported(
                    "spec.containers[0].env[0].valueFrom.fieldRef.fieldPath",
                    "status.phase",
                    "metadata.name",
                    "metadata.namespace",
                    "metadata.uid",
                    "spec.nodeName",
                    "spec.serviceAccountName",
                    "status.hostIP",
                    "status.hostIPs",
                    "status.podIP",
                    "status.podIPs",
                )
            ],
        ),
        (
            [{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "spec.containers"}}}],
            [
                invalid(
                    "spec.containers[0].env[0].valueFrom.fieldRef.fieldPath",
                    '"spec.containers"',
                    "error converting fieldPath: field label not supported: spec.containers",
                )
            ],
        ),
        ([{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}}], []),
        (
            [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pass word"}}}],
            [
                invalid(
                    "spec.containers[0].env[0].valueFrom.secretKeyRef.key",
                    '"pass word"',
                    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  "
                    "or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                )
            ],
        ),
        (
            [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "", "key": ""}}}],
            [
                invalid(
                    "spec.containers[0].env[0].valueFrom.configMapKeyRef.name",
                    '""',
                    objects.SUBDOMAIN_MESSAGE,
                ),
                required("spec.containers[0].env[0].valueFrom.configMapKeyRef.key"),
            ],
        ),
        (
            [{"name": "X", "valueFrom": {"resourceFieldRef": {"resource": "limits.gpu"}}}],
            [
                unsupported(
                    "spec.containers[0].env[0].valueFrom.resourceFieldRef.resource",
                    "limits.gpu",
                    "limits.cpu",
                    "limits.ephemeral-storage",
                    "limits.memory",
                    "requests.cpu",
                    "requests.ephemeral-storage",
                    "requests.memory",
                )
            ],
        ),
    ],
    ids=[
        "name-required",
        "equals-sign",
        "control-character",
        "empty-value-from",
        "value-and-value-from",
        "unsupported-field",
        "unconvertible-field",
        "label-subscript",
        "secret-key",
        "config-map-ref",
        "resource",
    ],
)
def test_env(env: list[Obj], causes: list[Cause]) -> None:
    assert check(pod(containers=[container(env=env)])) == causes


def test_env_from() -> None:
    got = check(
        pod(
            containers=[
                container(
                    envFrom=[{"prefix": "A=", "configMapRef": {"name": "x"}, "secretRef": {"name": "y"}}, {}]
                )
            ]
        )
    )
    assert got == [
        invalid("spec.containers[0].envFrom[0].prefix", '"A="', ENV_NAME),
        invalid("spec.containers[0].envFrom", '""', "may not have more than one field specified at a time"),
        invalid("spec.containers[0].envFrom", '""', "must specify one of: `configMapRef` or `secretRef`"),
    ]


def test_volumes_and_mounts() -> None:
    got = check(
        pod(
            containers=[
                container(
                    volumeMounts=[
                        {"name": "data", "mountPath": "/data"},
                        {"name": "missing", "mountPath": "/data"},
                        {"name": "bad_name", "mountPath": "/x", "subPath": "../escape"},
                    ]
                )
            ],
            volumes=[
                {"name": "data", "emptyDir": {}},
                {"name": "data", "emptyDir": {}},
                {"name": "bad_name", "configMap": {"name": "c"}},
                {"name": "two", "emptyDir": {}, "hostPath": {"path": "/tmp"}},
            ],
        )
    )
    assert got == [
        duplicate("spec.volumes[1].name", '"data"'),
        invalid("spec.volumes[2].name", '"bad_name"', objects.LABEL_MESSAGE),
        forbidden("spec.volumes[3].hostPath", "may not specify more than 1 volume type"),
        Cause("FieldValueNotFound", 'Not found: "missing"', "spec.containers[0].volumeMounts[1].name"),
        invalid("spec.containers[0].volumeMounts[1].mountPath", '"/data"', "must be unique"),
        Cause("FieldValueNotFound", 'Not found: "bad_name"', "spec.containers[0].volumeMounts[2].name"),
        invalid("spec.containers[0].volumeMounts.subPath", '"../escape"', "must not contain '..'"),
    ]


@pytest.mark.parametrize(
    ("volume", "causes"),
    [
        ({"name": "s", "secret": {}}, [required("spec.volumes[0].secret.secretName")]),
        (
            {"name": "c", "configMap": {"name": "c", "defaultMode": 0o1000}},
            [
                invalid(
                    "spec.volumes[0].configMap.defaultMode",
                    "512",
                    "must be a number between 0 and 0777 (octal), both inclusive",
                )
            ],
        ),
        (
            {"name": "c", "configMap": {"name": "c", "items": [{"key": "k", "path": "/etc/x"}]}},
            [invalid("spec.volumes[0].configMap.items[0].path", '"/etc/x"', "must be a relative path")],
        ),
        ({"name": "h", "hostPath": {"path": ""}}, [required("spec.volumes[0].hostPath.path")]),
        (
            {"name": "h", "hostPath": {"path": "/dev/sda", "type": "Disk"}},
            [
                unsupported(
                    "spec.volumes[0].hostPath.type",
                    "Disk",
                    "",
                    "BlockDevice",
                    "CharDevice",
                    "Directory",
                    "DirectoryOrCreate",
                    "File",
                    "FileOrCreate",
                    "Socket",
                )
            ],
        ),
        (
            {"name": "p", "persistentVolumeClaim": {}},
            [required("spec.volumes[0].persistentVolumeClaim.claimName")],
        ),
        (
            {
                "name": "d",
                "downwardAPI": {"items": [{"path": "x", "fieldRef": {"fieldPath": "spec.nodeName"}}]},
            },
            [
                unsupported(
                    "spec.volumes[0].downwardAPI.fieldRef.fieldPath",
                    "spec.nodeName",
                    "metadata.annotations",
                    "metadata.labels",
                    "metadata.name",
                    "metadata.namespace",
                    "metadata.uid",
                )
            ],
        ),
        (
            {
                "name": "t",
                "projected": {"sources": [{"serviceAccountToken": {"path": "t", "expirationSeconds": 60}}]},
            },
            [
                invalid(
                    "spec.volumes[0].projected.sources[0].serviceAccountToken.expirationSeconds",
                    "60",
                    "may not specify a duration less than 10 minutes",
                )
            ],
        ),
        (
            {"name": "n", "nfs": {"server": "nfs", "path": "exports"}},
            [invalid("spec.volumes[0].nfs.path", '"exports"', "must be an absolute path")],
        ),
        ({"name": "e", "ephemeral": {}}, [required("spec.volumes[0].ephemeral.volumeClaimTemplate")]),
    ],
    ids=[
        "secret-name",
        "file-mode",
        "absolute-item-path",
        "host-path",
        "host-path-type",
        "claim-name",
        "downward-field",
        "token-expiry",
        "nfs-path",
        "ephemeral-template",
    ],
)
def test_volume_sources(volume: Obj, causes: list[Cause]) -> None:
    assert check(pod(volumes=[volume])) == causes


@pytest.mark.parametrize(
    ("resources", "causes"),
    [
        ({"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}, [invalid("spec.containers[0].resources.requests", '"2"', "must be less than or equal to cpu limit of 1")]),
        (
            {"requests": {"memory": "1Gi"}, "limits": {"memory": "1000Mi"}},
            [invalid("spec.containers[0].resources.requests", '"1Gi"', "must be less than or equal to memory limit of 1000Mi")],
        ),
        ({"requests": {"cpu": "-1"}}, [invalid("spec.containers[0].resources.requests[cpu]", '"-1"', "must be greater than or equal to 0")]),
        (
            {"requests": {"gpu": "1"}},
            [invalid("spec.containers[0].resources.requests[gpu]", '"gpu"', "must be a standard resource type or fully qualified")],
        ),
        (  # a Pod's requests default to its limits, so both are reported
            {"limits": {"pods": "1"}},
            [
                invalid("spec.containers[0].resources.limits[pods]", '"pods"', "must be a standard resource for containers"),
                invalid("spec.containers[0].resources.requests[pods]", '"pods"', "must be a standard resource for containers"),
            ],
        ),
        (
            {"requests": {"example.com/fpga": "1"}},
            [required("spec.containers[0].resources.limits", "Limit must be set for non overcommitable resources")],
        ),
        (
            {"requests": {"example.com/fpga": "1"}, "limits": {"example.com/fpga": "2"}},
            [invalid("spec.containers[0].resources.requests", '"1"', "must be equal to example.com/fpga limit of 2")],
        ),
        (
            {"limits": {"example.com/fpga": "500m"}},
            [
                invalid("spec.containers[0].resources.limits[example.com/fpga]", "500m", "must be an integer"),
                invalid("spec.containers[0].resources.requests[example.com/fpga]", "500m", "must be an integer"),
            ],
        ),
        ({"limits": {"hugepages-2Mi": "4Mi"}}, [forbidden("spec.containers[0].resources", "HugePages require cpu or memory")]),
        (
            {"requests": {"cpu": "lots"}},
            [
                invalid(
                    "spec.containers[0].resources.requests[cpu]",
                    '"lots"',
                    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
                )
            ],
        ),
    ],
    ids=[
        "cpu-over-limit", "memory-over-limit", "negative", "unknown", "not-for-containers", "extended-needs-limit",
        "extended-equal", "extended-integer", "hugepages-alone", "unparsable",
    ],
)  # fmt: skip
def test_resources(resources: Obj, causes: list[Cause]) -> None:
    assert check(pod(containers=[container(resources=resources)])) == causes


@pytest.mark.parametrize(
    ("c", "causes"),
    [
        (
            container(livenessProbe={}),
            [required("spec.containers[0].livenessProbe", "must specify a handler type")],
        ),
        (
            container(readinessProbe={"exec": {"command": ["true"]}, "httpGet": {"port": 80}}),
            [
                forbidden(
                    "spec.containers[0].readinessProbe.httpGet", "may not specify more than 1 handler type"
                )
            ],
        ),
        (container(livenessProbe={"exec": {}}), [required("spec.containers[0].livenessProbe.exec.command")]),
        (
            container(livenessProbe={"exec": {"command": ["true"]}, "successThreshold": 2}),
            [invalid("spec.containers[0].livenessProbe.successThreshold", "2", "must be 1")],
        ),
        (
            container(readinessProbe={"tcpSocket": {"port": 80}, "periodSeconds": -1}),
            [
                invalid(
                    "spec.containers[0].readinessProbe.periodSeconds",
                    "-1",
                    "must be greater than or equal to 0",
                )
            ],
        ),
        (
            container(readinessProbe={"httpGet": {"port": 80, "scheme": "FTP"}}),
            [unsupported("spec.containers[0].readinessProbe.httpGet.scheme", "FTP", "HTTP", "HTTPS")],
        ),
        (
            container(lifecycle={"preStop": {"sleep": {"seconds": 60}}}),
            [
                invalid(
                    "spec.containers[0].lifecycle.preStop.sleep",
                    "60",
                    "must be non-negative and less than terminationGracePeriodSeconds (30)",
                )
            ],
        ),
    ],
    ids=[
        "no-handler",
        "two-handlers",
        "exec-command",
        "liveness-success",
        "negative-period",
        "scheme",
        "sleep",
    ],
)
def test_probes_and_hooks(c: Obj, causes: list[Cause]) -> None:
    assert check(pod(containers=[c])) == causes


def test_init_containers() -> None:
    got = check(
        pod(
            initContainers=[
                container(name="init", livenessProbe={"exec": {"command": ["true"]}}),
                container(name="side", restartPolicy="OnFailure"),
            ]
        )
    )
    assert got == [
        forbidden(
            "spec.initContainers[0].livenessProbe",
            "may not be set for init containers without restartPolicy=Always",
        ),
        unsupported("spec.initContainers[1].restartPolicy", "OnFailure", "Always"),
    ]


@pytest.mark.parametrize(
    ("spec", "causes"),
    [
        ({"restartPolicy": "Sometimes"}, [unsupported("spec.restartPolicy", "Sometimes", "Always", "OnFailure", "Never")]),
        (
            {"dnsPolicy": "Google"},
            [unsupported("spec.dnsPolicy", "Google", "ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")],
        ),
        ({"dnsPolicy": "None"}, [required("spec.dnsConfig", "must provide `dnsConfig` when `dnsPolicy` is None")]),
        ({"terminationGracePeriodSeconds": None}, []),  # defaulted back to 30
        ({"activeDeadlineSeconds": 0}, [invalid("spec.activeDeadlineSeconds", "0", "must be between 1 and 2147483647, inclusive")]),
        ({"hostname": "Web.1"}, [invalid("spec.hostname", '"Web.1"', objects.LABEL_MESSAGE)]),
        ({"nodeSelector": {"disk": "fast ssd"}}, [invalid("spec.nodeSelector", '"fast ssd"', "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")]),
        ({"serviceAccountName": "Robot"}, [invalid("spec.serviceAccountName", '"Robot"', objects.SUBDOMAIN_MESSAGE)]),
        (
            {"tolerations": [{"operator": "Equal", "value": "x"}]},
            [invalid("spec.tolerations[0].operator", '"Equal"', 'operator must be Exists when `key` is empty, which means "match all values and all keys"')],
        ),
        (
            {"tolerations": [{"key": "k", "operator": "Exists", "value": "v"}]},
            [invalid("spec.tolerations[0].operator", '"v"', "value must be empty when `operator` is 'Exists'")],
        ),
        (
            {"tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 5}]},
            [invalid("spec.tolerations[0].effect", '"NoSchedule"', "effect must be 'NoExecute' when `tolerationSeconds` is set")],
        ),
        (
            {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}}},
            [
                required(
                    "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms",
                    "must have at least one node selector term",
                )
            ],
        ),
        (
            {"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {}}]}}},
            [required("spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey", "can not be empty"),
             invalid("spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey", '""', "name part must be non-empty"),
             invalid("spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey", '""', "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")],
        ),
        (
            {"topologySpreadConstraints": [{"maxSkew": 0, "topologyKey": "zone", "whenUnsatisfiable": "Maybe"}]},
            [
                invalid("spec.topologySpreadConstraints[0].maxSkew", "0", "must be greater than zero"),
                unsupported("spec.topologySpreadConstraints[0].whenUnsatisfiable", "Maybe", "DoNotSchedule", "ScheduleAnyway"),
            ],
        ),
        ({"securityContext": {"runAsUser": -1}}, [invalid("spec.securityContext.runAsUser", "-1", "must be between 0 and 4294967295, inclusive")]),
        ({"preemptionPolicy": "Always"}, [unsupported("spec.preemptionPolicy", "Always", "PreemptLowerPriority", "Never")]),
        ({"os": {"name": "plan9"}}, [unsupported("spec.os", "plan9", "linux", "windows")]),
        (
            {"dnsConfig": {"nameservers": ["1.1.1.1", "8.8.8.8", "9.9.9.9", "8.8.4.4"]}},
            [invalid("spec.dnsConfig.nameservers", '[]string{"1.1.1.1", "8.8.8.8", "9.9.9.9", "8.8.4.4"}', "must not have more than 3 nameservers")],
        ),
        ({"ephemeralContainers": [{"name": "debug", "image": "busybox"}]}, [forbidden("spec.ephemeralContainers", "cannot be set on create")]),
        (
            {"nodeName": "node-1", "schedulingGates": [{"name": "example.com/wait"}]},
            [forbidden("spec.nodeName", "cannot be set until all schedulingGates have been cleared")],
        ),
    ],
    ids=[
        "restart-policy", "dns-policy", "dns-none", "grace-defaulted", "deadline", "hostname", "node-selector",
        "service-account", "toleration-key", "toleration-exists", "toleration-seconds", "node-affinity",
        "pod-affinity", "topology-spread", "run-as-user", "preemption", "os", "nameservers", "ephemeral-on-create",
        "gated-node-name",
    ],
)  # fmt: skip
def test_pod_spec_fields(spec: Obj, causes: list[Cause]) -> None:
    assert check(pod(**spec)) == causes


# -- updates -------------------------------------------------------------------------------------

UPDATABLE = (
    "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
    "`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
    "(allow it to be set to 1 if it was previously negative)"
)


def test_pod_updates_that_upstream_allows() -> None:
    stored = pod(
        activeDeadlineSeconds=600,
        tolerations=[{"key": "a", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10}],
    )
    changed = copy.deepcopy(stored)
    changed["spec"]["containers"][0]["image"] = "nginx:1.28"
    changed["spec"]["activeDeadlineSeconds"] = 300
    changed["spec"]["tolerations"] = [
        {"key": "a", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 20},
        {"key": "b", "operator": "Exists"},
    ]
    changed["metadata"]["labels"] = {"version": "1.28"}
    assert check(changed, stored) == []


def test_pods_can_be_bound_once() -> None:
    bound = pod(nodeName="node-1")
    assert check(bound, pod()) == []
    moved = pod(nodeName="node-2")
    got = check(moved, bound)
    assert len(got) == 1 and got[0].field == "spec" and "NodeName" in got[0].message


def test_pod_updates_may_not_change_other_fields() -> None:
    got = check(pod(restartPolicy="Never"), pod())
    assert len(got) == 1
    assert got[0].reason == "FieldValueForbidden" and got[0].field == "spec"
    assert got[0].message.startswith(f"Forbidden: pod updates may not change fields other than {UPDATABLE}\n")
    assert (
        '- \tRestartPolicy: "Always",' in got[0].message and '+ \tRestartPolicy: "Never",' in got[0].message
    )


def test_pod_updates_may_not_add_containers_or_drop_images() -> None:
    two = pod(containers=[container(), container(name="b")])
    assert check(two, pod()) == [forbidden("spec.containers", "pod updates may not add or remove containers")]
    no_image = pod(containers=[container(image="")])
    assert check(no_image, pod()) == [required("spec.containers[0].image")]


def test_pod_deadline_and_toleration_updates() -> None:
    assert check(pod(activeDeadlineSeconds=700), pod(activeDeadlineSeconds=600)) == [
        invalid("spec.activeDeadlineSeconds", "700", "must be less than or equal to previous value")
    ]
    assert check(pod(), pod(activeDeadlineSeconds=600)) == [
        invalid("spec.activeDeadlineSeconds", "null", "must not update from a positive integer to nil value")
    ]
    stored = pod(tolerations=[{"key": "a", "operator": "Exists"}])
    got = check(pod(tolerations=[{"key": "a", "operator": "Equal", "value": "x"}]), stored)
    assert (
        forbidden("spec.tolerations", "existing toleration can not be modified except its tolerationSeconds")
        in got
    )


def test_scheduling_gates_may_only_be_removed() -> None:
    stored = pod(schedulingGates=[{"name": "example.com/a"}])
    assert check(pod(), stored) == []
    got = check(pod(schedulingGates=[{"name": "example.com/a"}, {"name": "example.com/b"}]), stored)
    assert got == [
        forbidden(
            "spec.schedulingGates[1].name",
            "only deletion is allowed, but found new scheduling gate 'example.com/b'",
        )
    ]


def test_status_updates_of_pods_stored_without_todays_defaults_pass() -> None:
    stored = pod(containers=[container(env=[{"name": "A=B"}])])  # invalid now, accepted by an older server
    stored["spec"].update(restartPolicy="Always", dnsPolicy="ClusterFirst")  # no priority, no tolerations
    with_status = copy.deepcopy(stored)
    with_status["status"] = {"phase": "Running"}
    assert validate(PODS, with_status, stored) == []


def test_second_volume_types_are_reported_at_upstreams_paths() -> None:
    got = check(
        pod(volumes=[{"name": "v", "emptyDir": {}, "downwardAPI": {}, "cephfs": {"monitors": ["m"]}}])
    )
    assert got == [
        forbidden("spec.volumes[0].cephFS", "may not specify more than 1 volume type"),
        forbidden("spec.volumes[0].downwarAPI", "may not specify more than 1 volume type"),
    ]


def test_pod_templates() -> None:
    templates = next(r for r in RESOURCES if r.name == "podtemplates")
    template: Obj = {
        "metadata": {"name": "t", "namespace": "default"},
        "template": {"metadata": {"labels": {"a": "b"}}, "spec": {}},
    }
    defaults.apply(templates, template)
    assert validate(templates, template, None) == [required("template.spec.containers")]
