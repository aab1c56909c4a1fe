"""Validation of metadata and of the core kinds without pods: Services, ConfigMaps, Secrets, Namespaces.

Every expected cause is what kube-apiserver 1.37 returns for the same object: upstream's reason,
message (Go's rendering of the bad value included) and field path. Objects are defaulted before
they are validated, as the API server does.
"""

# ruff: noqa: E501  (tables of upstream's messages: one expected cause per line reads and greps best)
from __future__ import annotations

import base64
import copy
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from k3py.api import defaults, objects
from k3py.api.validation import Cause, validate
from tests.unit.api_cases import required, resource

Obj = dict[str, Any]

QUALIFIED_NAME = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used "
    "for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
DNS1035 = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
    "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
CONFIG_KEY = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or "
    "'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)


def check(name: str, obj: Obj, old: Obj | None = None) -> list[Cause]:
    """Default and validate ``obj`` as a create (or, given ``old``, an update) would."""
    new = copy.deepcopy(obj)
    new.setdefault("metadata", {}).setdefault("namespace", "default")
    defaults.apply(resource(name), new)
    if old is not None:
        old = copy.deepcopy(old)
        old.setdefault("metadata", {}).setdefault("namespace", "default")
        defaults.apply(resource(name), old)
    return validate(resource(name), new, old)


def cause(reason: str, message: str, field: str) -> Cause:
    return Cause(reason, message, field)


# -- metadata ------------------------------------------------------------------------------------


CM: Obj = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "app-config"},
    "data": {"mode": "blue"},
}


def with_meta(**meta: Any) -> Obj:
    return {**CM, "metadata": {"name": "app-config", **meta}}


def test_a_valid_config_map_passes() -> None:
    assert check("configmaps", CM) == []


@pytest.mark.parametrize(
    ("name", "meta", "causes"),
    [
        ("configmaps", {}, [required("metadata.name", "name or generateName is required")]),
        (
            "configmaps",
            {"name": "Bad_Name"},
            [
                cause(
                    "FieldValueInvalid",
                    f'Invalid value: "Bad_Name": {objects.SUBDOMAIN_MESSAGE}',
                    "metadata.name",
                )
            ],
        ),
        (
            "services",
            {"name": "1st"},
            [cause("FieldValueInvalid", f'Invalid value: "1st": {DNS1035}', "metadata.name")],
        ),
        (
            "namespaces",
            {"name": "a.b"},
            [cause("FieldValueInvalid", 'Invalid value: "a.b": must not contain dots', "metadata.name")],
        ),
        (
            "statefulsets.apps",
            {"name": "x" * 64},
            [
                cause(
                    "FieldValueInvalid",
                    f'Invalid value: "{"x" * 64}": must be no more than 63 characters',
                    "metadata.name",
                )
            ],
        ),
        (
            "configmaps",
            {"generateName": "Web-", "name": "Web-abcde"},
            [
                cause(
                    "FieldValueInvalid",
                    f'Invalid value: "Web-": {objects.SUBDOMAIN_MESSAGE}',
                    "metadata.generateName",
                ),
                cause(
                    "FieldValueInvalid",
                    f'Invalid value: "Web-abcde": {objects.SUBDOMAIN_MESSAGE}',
                    "metadata.name",
                ),
            ],
        ),
        (
            "configmaps",
            {"name": ".."},
            [cause("FieldValueInvalid", "Invalid value: \"..\": may not be '..'", "metadata.name")],
        ),
    ],
    ids=["missing", "subdomain", "dns-1035", "dns-label-dots", "too-long", "generate-name", "path-segment"],
)
def test_object_names(name: str, meta: Obj, causes: list[Cause]) -> None:
    obj = {"metadata": meta, "spec": {}} if name != "configmaps" else {"metadata": meta}
    got = check(name, obj)
    assert [c for c in got if c.field.startswith("metadata.")] == causes


def test_generate_name_may_end_in_a_dash() -> None:
    assert check("configmaps", with_meta(name="web-x7k2p", generateName="web-")) == []


def test_label_keys_and_values() -> None:
    got = check(
        "configmaps", with_meta(labels={"bad key": "ok", "app": "-bad-", "example.com/tier": "x" * 64})
    )
    assert got == [
        cause("FieldValueInvalid", f'Invalid value: "-bad-": {LABEL_VALUE}', "metadata.labels"),
        cause("FieldValueInvalid", f'Invalid value: "bad key": {QUALIFIED_NAME}', "metadata.labels"),
        cause(
            "FieldValueInvalid",
            f'Invalid value: "{"x" * 64}": must be no more than 63 bytes',
            "metadata.labels",
        ),
    ]


def test_annotation_keys_are_checked_case_insensitively_and_sized() -> None:
    assert check("configmaps", with_meta(annotations={"Example.COM/Owner": "me"})) == []
    got = check("configmaps", with_meta(annotations={"bad key!": "x"}))
    assert got == [
        cause("FieldValueInvalid", f'Invalid value: "bad key!": {QUALIFIED_NAME}', "metadata.annotations")
    ]
    huge = check("configmaps", with_meta(annotations={"a": "x" * (256 * 1024)}))
    assert huge == [
        cause("FieldValueTooLong", "Too long: must have at most 262144 bytes", "metadata.annotations")
    ]


def test_finalizers() -> None:
    assert check("configmaps", with_meta(finalizers=["example.com/keep", "kubernetes", "orphan"])) == []
    got = check("configmaps", with_meta(finalizers=["keep", "orphan", "foregroundDeletion"]))
    assert got == [
        cause(
            "FieldValueInvalid",
            'Invalid value: []string{"keep", "orphan", "foregroundDeletion"}: '
            "finalizer orphan and foregroundDeletion cannot be both set",
            "metadata.finalizers",
        ),
        cause(
            "FieldValueInvalid",
            'Invalid value: "keep": name is neither a standard finalizer name nor is it fully qualified',
            "metadata.finalizers[0]",
        ),
    ]


def test_no_new_finalizers_while_deleting() -> None:
    old = with_meta(finalizers=["a.io/x"], deletionTimestamp="2026-01-01T00:00:00Z")
    got = check(
        "configmaps",
        with_meta(finalizers=["a.io/x", "b.io/y"], deletionTimestamp="2026-01-01T00:00:00Z"),
        old,
    )
    assert got == [
        cause(
            "FieldValueForbidden",
            'Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{"b.io/y"}',
            "metadata.finalizers",
        )
    ]


def test_owner_references() -> None:
    refs: list[Obj] = [
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "1", "controller": True},
        {"apiVersion": "", "kind": "", "name": "", "uid": ""},
    ]
    got = check("configmaps", with_meta(ownerReferences=refs))
    assert got == [
        cause(
            "FieldValueInvalid",
            'Invalid value: "": version must not be empty',
            "metadata.ownerReferences.apiVersion",
        ),
        cause("FieldValueInvalid", 'Invalid value: "": must not be empty', "metadata.ownerReferences.kind"),
        cause("FieldValueInvalid", 'Invalid value: "": must not be empty', "metadata.ownerReferences.name"),
        cause("FieldValueInvalid", 'Invalid value: "": must not be empty', "metadata.ownerReferences.uid"),
    ]
    two = [dict(refs[0]), {**refs[0], "name": "other"}]
    got = check("configmaps", with_meta(ownerReferences=two))
    assert len(got) == 1 and got[0].message.endswith(
        'Only one reference can have Controller set to true. Found "true" in references for ReplicaSet/rs and ReplicaSet/other'
    )


def test_updates_ratchet_on_metadata_the_client_did_not_change() -> None:
    stored = with_meta(labels={"bad key": "x"})  # written by an older, laxer server
    assert check("configmaps", with_meta(labels={"bad key": "x"}, annotations={"a": "b"}), stored) == []
    assert check("configmaps", with_meta(labels={"bad key": "y"}), stored) != []


# -- config maps ---------------------------------------------------------------------------------


def test_config_map_keys_duplicates_and_size() -> None:
    got = check(
        "configmaps", {**CM, "data": {"bad/key": "1", "dup": "x"}, "binaryData": {"dup": "eA==", "..": ""}}
    )
    assert got == [
        cause("FieldValueInvalid", f'Invalid value: "bad/key": {CONFIG_KEY}', "data[bad/key]"),
        cause(
            "FieldValueInvalid", 'Invalid value: "dup": duplicate of key present in binaryData', "data[dup]"
        ),
        cause("FieldValueInvalid", "Invalid value: \"..\": must not be '..'", "binaryData[..]"),
    ]
    big = check("configmaps", {**CM, "data": {"a": "x" * (1024 * 1024), "b": "y"}})
    assert big == [cause("FieldValueTooLong", "Too long: must have at most 1048576 bytes", "")]


def test_immutable_config_maps() -> None:
    stored = {**CM, "immutable": True}
    assert (
        check("configmaps", {**stored, "metadata": {"name": "app-config", "labels": {"a": "b"}}}, stored)
        == []
    )
    got = check("configmaps", {**CM, "data": {"mode": "green"}}, stored)
    assert got == [
        cause("FieldValueForbidden", "Forbidden: field is immutable when `immutable` is set", "immutable"),
        cause("FieldValueForbidden", "Forbidden: field is immutable when `immutable` is set", "data"),
    ]


# -- secrets -------------------------------------------------------------------------------------


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


SECRET: Obj = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {"name": "s"},
    "data": {"password": b64("hunter2")},
}


@pytest.mark.parametrize(
    ("secret", "causes"),
    [
        (SECRET, []),
        ({**SECRET, "stringData": {"user": "admin"}}, []),
        (
            {**SECRET, "data": {"bad key": "eA=="}},
            [cause("FieldValueInvalid", f'Invalid value: "bad key": {CONFIG_KEY}', "data[bad key]")],
        ),
        (
            {**SECRET, "data": {"a": b64("x" * (1024 * 1024 + 1))}},
            [cause("FieldValueTooLong", "Too long: must have at most 1048576 bytes", "data")],
        ),
        (
            {**SECRET, "type": "kubernetes.io/service-account-token"},
            [required("metadata.annotations[kubernetes.io/service-account.name]")],
        ),
        (
            {
                **SECRET,
                "type": "kubernetes.io/service-account-token",
                "metadata": {"name": "s", "annotations": {"kubernetes.io/service-account.name": "default"}},
            },
            [],
        ),
        ({**SECRET, "type": "kubernetes.io/dockerconfigjson"}, [required("data[.dockerconfigjson]")]),
        (
            {**SECRET, "type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": b64('{"auths": {}}')}},
            [],
        ),
        (
            {**SECRET, "type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": b64("not json")}},
            [
                cause(
                    "FieldValueInvalid",
                    "Invalid value: \"<secret contents redacted>\": invalid character 'o' in literal null (expecting 'u')",
                    "data[.dockerconfigjson]",
                )
            ],
        ),
        ({**SECRET, "type": "kubernetes.io/dockercfg", "data": {}}, [required("data[.dockercfg]")]),
        ({**SECRET, "type": "kubernetes.io/basic-auth", "data": {}}, [required("data[username]"), required("data[password]")]),
        ({**SECRET, "type": "kubernetes.io/basic-auth", "data": {"username": ""}}, []),
        ({**SECRET, "type": "kubernetes.io/ssh-auth"}, [required("data[ssh-privatekey]")]),
        ({**SECRET, "type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}}, [required("data[tls.key]")]),
        ({**SECRET, "type": "example.com/custom"}, []),
    ],
    ids=[
        "opaque", "string-data", "bad-key", "too-big", "sa-token-without-name", "sa-token", "dockerconfigjson-missing",
        "dockerconfigjson", "dockerconfigjson-not-json", "dockercfg-missing", "basic-auth-empty", "basic-auth",
        "ssh-auth", "tls-without-key", "custom-type",
    ],
)  # fmt: skip
def test_secrets(secret: Obj, causes: list[Cause]) -> None:
    assert check("secrets", secret) == causes


def test_secret_type_is_immutable_and_immutable_secrets_stay_so() -> None:
    got = check("secrets", {**SECRET, "type": "kubernetes.io/basic-auth"}, SECRET)
    assert got == [
        cause("FieldValueInvalid", 'Invalid value: "kubernetes.io/basic-auth": field is immutable', "type")
    ]
    stored = {**SECRET, "immutable": True}
    got = check("secrets", {**SECRET, "immutable": False, "data": {}}, stored)
    assert got == [
        cause("FieldValueForbidden", "Forbidden: field is immutable when `immutable` is set", "immutable"),
        cause("FieldValueForbidden", "Forbidden: field is immutable when `immutable` is set", "data"),
    ]


# -- namespaces and service accounts -------------------------------------------------------------


def test_namespaces_and_service_accounts() -> None:
    assert check("namespaces", {"metadata": {"name": "team-a"}}) == []
    got = check("namespaces", {"metadata": {"name": "team-a"}, "spec": {"finalizers": ["custom"]}})
    assert got == [
        cause(
            "FieldValueInvalid",
            'Invalid value: "custom": name is neither a standard finalizer name nor is it fully qualified',
            "spec.finalizers",
        )
    ]
    assert check("serviceaccounts", {"metadata": {"name": "build-bot.ci"}}) == []
    assert check("serviceaccounts", {"metadata": {"name": "Build_Bot"}})[0].field == "metadata.name"


# -- services ------------------------------------------------------------------------------------


def service(**spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": spec}


def unsupported(field: str, value: str, *supported: str) -> Cause:
    shown = ", ".join(f'"{s}"' for s in supported)
    return cause("FieldValueNotSupported", f'Unsupported value: "{value}": supported values: {shown}', field)


@pytest.mark.parametrize(
    ("spec", "causes"),
    [
        ({"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}, []),
        ({"clusterIP": "None", "selector": {"app": "web"}}, []),
        ({"type": "ExternalName", "externalName": "db.example.com."}, []),
        ({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}, []),
        ({"type": "LoadBalancer", "ports": [{"name": "https", "port": 443}, {"name": "http", "port": 80}]}, []),
        ({"selector": {"app": "web"}}, [required("spec.ports")]),
        (
            {"ports": [{"port": 80}, {"port": 81}]},
            [required("spec.ports[0].name"), required("spec.ports[1].name")],
        ),
        (
            {"ports": [{"name": "web", "port": 80}, {"name": "web", "port": 81}]},
            [cause("FieldValueDuplicate", 'Duplicate value: "web"', "spec.ports[1].name")],
        ),
        (
            {"ports": [{"port": 0}]},
            [
                cause("FieldValueInvalid", "Invalid value: 0: must be between 1 and 65535, inclusive", "spec.ports[0].port"),
                cause("FieldValueInvalid", "Invalid value: 0: must be between 1 and 65535, inclusive", "spec.ports[0].targetPort"),
            ],
        ),
        (
            {"ports": [{"port": 70000, "targetPort": "HTTP"}]},
            [
                cause("FieldValueInvalid", "Invalid value: 70000: must be between 1 and 65535, inclusive", "spec.ports[0].port"),
                cause(
                    "FieldValueInvalid",
                    'Invalid value: "HTTP": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)',
                    "spec.ports[0].targetPort",
                ),
                cause("FieldValueInvalid", 'Invalid value: "HTTP": must contain at least one letter (a-z)', "spec.ports[0].targetPort"),
            ],
        ),
        ({"ports": [{"port": 53, "protocol": "ICMP"}]}, [unsupported("spec.ports[0].protocol", "ICMP", "SCTP", "TCP", "UDP")]),
        (
            {"ports": [{"port": 80, "nodePort": 30080}]},
            [cause("FieldValueForbidden", "Forbidden: may not be used when `type` is 'ClusterIP'", "spec.ports[0].nodePort")],
        ),
        (
            {"type": "NodePort", "clusterIP": "None", "ports": [{"port": 80}]},
            [cause("FieldValueInvalid", "Invalid value: \"None\": may not be set to 'None' for NodePort services", "spec.clusterIPs[0]")],
        ),
        ({"type": "ExternalName"}, [required("spec.externalName")]),
        (
            {"type": "ExternalName", "externalName": "Not_A_Host"},
            [cause("FieldValueInvalid", f'Invalid value: "Not_A_Host": {objects.SUBDOMAIN_MESSAGE}', "spec.externalName")],
        ),
        (
            {"type": "ExternalName", "externalName": "db.example.com", "clusterIP": "10.43.0.10"},
            [cause("FieldValueForbidden", "Forbidden: may not be set for ExternalName services", "spec.clusterIPs")],
        ),
        (
            {"ports": [{"port": 80}], "type": "Headless"},
            [unsupported("spec.type", "Headless", "ClusterIP", "ExternalName", "LoadBalancer", "NodePort")],
        ),
        (
            {"ports": [{"port": 80}], "sessionAffinity": "Sticky"},
            [unsupported("spec.sessionAffinity", "Sticky", "ClientIP", "None")],
        ),
        (
            {"ports": [{"port": 80}], "selector": {"app": "my app"}},
            [
                cause(
                    "FieldValueInvalid",
                    f'Invalid value: "my app": {LABEL_VALUE}',
                    "spec.selector",
                )
            ],
        ),
        (
            {"ports": [{"port": 80}], "externalTrafficPolicy": "Local"},
            [
                cause(
                    "FieldValueInvalid",
                    'Invalid value: "Local": may only be set for externally-accessible services',
                    "spec.externalTrafficPolicy",
                )
            ],
        ),
        (
            {"ports": [{"port": 80}, {"port": 80}]},
            [
                required("spec.ports[0].name"),
                required("spec.ports[1].name"),
                cause(
                    "FieldValueDuplicate",
                    'Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", AppProtocol:(*string)(nil), Port:80, '
                    'TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}',
                    "spec.ports[1]",
                ),
            ],
        ),
        (
            {"ports": [{"port": 80}], "clusterIP": "10.43.0.999"},
            [
                cause(
                    "FieldValueInvalid",
                    'Invalid value: "10.43.0.999": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)',
                    "spec.clusterIPs[0]",
                )
            ],
        ),
        (
            {"ports": [{"port": 80}], "loadBalancerSourceRanges": ["10.0.0.0/8"]},
            [cause("FieldValueForbidden", "Forbidden: may only be used when `type` is 'LoadBalancer'", "spec.LoadBalancerSourceRanges")],
        ),
        (
            {"ports": [{"port": 80}], "sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 0}}},
            [
                cause(
                    "FieldValueInvalid",
                    "Invalid value: 0: must be greater than 0 and less than 86400",
                    "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                )
            ],
        ),
    ],
    ids=[
        "cluster-ip", "headless", "external-name", "node-port", "load-balancer", "ports-required", "names-required",
        "duplicate-name", "port-zero", "port-range-and-name", "protocol", "node-port-on-cluster-ip",
        "headless-node-port", "external-name-required", "external-name-invalid", "external-name-cluster-ip",
        "type", "session-affinity", "selector", "external-traffic-policy", "duplicate-port", "cluster-ip-format",
        "source-ranges", "client-ip-timeout",
    ],
)  # fmt: skip
def test_services(spec: Obj, causes: list[Cause]) -> None:
    assert check("services", service(**spec)) == causes


def test_service_updates() -> None:
    stored = service(
        selector={"app": "web"}, ports=[{"port": 80}], clusterIP="10.43.0.10", clusterIPs=["10.43.0.10"]
    )
    assert (
        check(
            "services",
            service(
                selector={"app": "v2"},
                ports=[{"port": 80}],
                clusterIP="10.43.0.10",
                clusterIPs=["10.43.0.10"],
            ),
            stored,
        )
        == []
    )
    moved = service(ports=[{"port": 80}], clusterIP="10.43.0.11", clusterIPs=["10.43.0.10"])
    assert check("services", moved, stored) == [
        cause(
            "FieldValueInvalid",
            'Invalid value: []string{"10.43.0.11"}: may not change once set',
            "spec.clusterIPs[0]",
        )
    ]
    # Switching the type: upstream drops the type's fields; a kept node port is not an error.
    node_port = service(type="NodePort", ports=[{"port": 80, "nodePort": 30080}], clusterIP="10.43.0.10")
    back = service(type="ClusterIP", ports=[{"port": 80, "nodePort": 30080}], clusterIP="10.43.0.10")
    assert check("services", back, node_port) == []


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ("{oops", "invalid character 'o' looking for beginning of object key string"),
        ('{"auths": {}', "unexpected end of JSON input"),
        ("", "unexpected end of JSON input"),
        ("[1]", "json: cannot unmarshal array into Go value of type map[string]interface {}"),
        ('{"a" 1}', "invalid character '1' after object key"),
        ("{} x", "invalid character 'x' after top-level value"),
        ("@", "invalid character '@' looking for beginning of value"),
    ],
)
def test_docker_config_json_errors_read_like_go(content: str, error: str) -> None:
    secret = {**SECRET, "type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": b64(content)}}
    assert check("secrets", secret) == [
        cause(
            "FieldValueInvalid",
            f'Invalid value: "<secret contents redacted>": {error}',
            "data[.dockerconfigjson]",
        )
    ]


# -- robustness ----------------------------------------------------------------------------------

_LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(-70000, 70000), st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["", "x", "None", "TCP", "Always", "-1", "0.5", "a/b", "RollingUpdate", "Indexed", "@every 1x", "*/5 * * * *"]),
)  # fmt: skip
_KEYS = st.sampled_from(
    [
        "spec", "template", "metadata", "labels", "annotations", "containers", "initContainers", "ephemeralContainers",
        "name", "image", "ports", "containerPort", "hostPort", "protocol", "env", "valueFrom", "fieldRef", "fieldPath",
        "volumes", "volumeMounts", "mountPath", "resources", "limits", "requests", "cpu", "selector", "matchLabels",
        "matchExpressions", "operator", "values", "key", "strategy", "rollingUpdate", "maxSurge", "maxUnavailable",
        "updateStrategy", "type", "schedule", "timeZone", "jobTemplate", "clusterIP", "clusterIPs", "port",
        "targetPort", "nodePort", "data", "binaryData", "stringData", "immutable", "finalizers", "ownerReferences",
        "tolerations", "affinity", "nodeAffinity", "volumeClaimTemplates", "livenessProbe", "httpGet", "exec",
        "completionMode", "completions", "podFailurePolicy", "rules", "externalName", "sessionAffinity",
    ]
)  # fmt: skip
_JSON = st.recursive(
    _LEAVES,
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(_KEYS, children, max_size=5)),
    max_leaves=30,
)
_VALIDATED = sorted(
    {"configmaps", "secrets", "namespaces", "pods", "podtemplates", "replicationcontrollers", "persistentvolumeclaims",
     "services", "deployments.apps", "replicasets.apps", "statefulsets.apps", "daemonsets.apps", "jobs.batch",
     "cronjobs.batch", "serviceaccounts"}
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(
    name=st.sampled_from(_VALIDATED),
    body=st.dictionaries(_KEYS, _JSON, max_size=6),
    old_body=st.dictionaries(_KEYS, _JSON, max_size=4),
)
def test_validation_never_raises_on_malformed_objects(name: str, body: Obj, old_body: Obj) -> None:
    meta = body.get("metadata") if isinstance(body.get("metadata"), dict) else {"name": "n"}
    obj = {**body, "metadata": meta}
    old = {**old_body, "metadata": {"name": "n", "uid": "u", "resourceVersion": "1"}}
    for before in (None, old):
        for cause_ in check(name, obj, before):
            assert cause_.reason.startswith("FieldValue") and cause_.message


def test_rbac_names_are_path_segments() -> None:
    role: Obj = {"metadata": {"name": "system:controller:job-controller"}, "rules": []}
    assert check("clusterroles.rbac.authorization.k8s.io", role) == []
    role["metadata"]["name"] = "a/b"
    assert check("clusterroles.rbac.authorization.k8s.io", role) == [
        cause("FieldValueInvalid", "Invalid value: \"a/b\": may not contain '/'", "metadata.name")
    ]
