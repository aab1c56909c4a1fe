"""Defaults kube-apiserver applies to the objects users touch most.

``apply`` runs on create and on every update, as upstream's defaulting runs on every decoded
object, so a field a client drops comes back with its default. Each function mirrors an
upstream ``SetDefaults_*`` (pkg/apis/{core,apps,batch}/v1/defaults.go and the ``+default``
markers of the v1 types), the v1 conversion quirks users see (``serviceAccount`` mirrors
``serviceAccountName``, ``stringData`` folds into ``data``, quantities come back canonical),
the Job strategy's generated selector, and the built-in admission plugin that needs no other
object (DefaultTolerationSeconds; Priority looks PriorityClasses up: ``apiserver/priority.py``).
Every function is idempotent: applying it twice gives what applying it once gives.
"""

from __future__ import annotations

import base64
import functools
import math
import re
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from k3py.api.protobuf import ProtobufError, quantity
from k3py.api.resources import Resource

Obj = dict[str, Any]

MAX_INT32 = 2**31 - 1
DEFAULT_FILE_MODE = 0o644  # 420: secret, configMap, downwardAPI and projected volumes
CLIENT_IP_AFFINITY_SECONDS = 10800
NOT_READY_TAINTS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
JOB_LABELS = (
    ("batch.kubernetes.io/controller-uid", "uid"),
    ("batch.kubernetes.io/job-name", "name"),
    ("controller-uid", "uid"),
    ("job-name", "name"),
)
# VolumeSource's fields, in upstream's order (validation reports the second one set).
VOLUME_SOURCES = (
    "emptyDir", "hostPath", "gitRepo", "gcePersistentDisk", "awsElasticBlockStore", "secret",
    "nfs", "iscsi", "glusterfs", "flocker", "persistentVolumeClaim", "rbd", "cinder", "cephfs",
    "quobyte", "downwardAPI", "fc", "flexVolume", "configMap", "azureFile", "vsphereVolume",
    "photonPersistentDisk", "portworxVolume", "azureDisk", "storageos", "projected", "scaleIO",
    "csi", "ephemeral", "image",
)  # fmt: skip


def apply(resource: Resource, obj: Obj) -> None:
    fn = _BY_RESOURCE.get(resource.name)
    if fn is not None:
        fn(obj)


# -- small helpers -------------------------------------------------------------------------------


def _map(parent: Obj, key: str) -> Obj | None:
    value = parent.get(key)
    return value if isinstance(value, dict) else None


def _maps(parent: Obj, key: str) -> list[Obj]:
    value = parent.get(key)
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _child(parent: Obj, key: str) -> Obj | None:
    """The map at ``key``, created when absent or null (a Go struct field is never nil)."""
    if parent.get(key) is None:
        parent[key] = {}
    return _map(parent, key)


def _unset(d: Obj, key: str) -> bool:
    """A Go pointer left nil (absent or JSON null)."""
    return d.get(key) is None


def _empty(d: Obj, key: str) -> bool:
    """A Go string or number left at its zero value."""
    return d.get(key) in (None, "", 0)


# -- quantities ----------------------------------------------------------------------------------

_QUANTITY = re.compile(r"([+-]?[0-9]+(?:\.[0-9]*)?)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?")
_FACTORS = {
    "n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000), "": Fraction(1),
    "k": Fraction(10**3), "M": Fraction(10**6), "G": Fraction(10**9), "T": Fraction(10**12),
    "P": Fraction(10**15), "E": Fraction(10**18), "Ki": Fraction(2**10), "Mi": Fraction(2**20),
    "Gi": Fraction(2**30), "Ti": Fraction(2**40), "Pi": Fraction(2**50), "Ei": Fraction(2**60),
}  # fmt: skip


def canonical_quantity(value: object) -> str | None:
    """What Go serves for a quantity a client sent (``"0.5"`` → ``"500m"``); None if invalid."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    return _canonical_text(value if isinstance(value, str) else repr(value))


@functools.lru_cache(maxsize=4096)
def _canonical_text(text: str) -> str | None:
    try:
        return quantity(text.strip())
    except (ProtobufError, ValueError):
        return None


def quantity_value(value: object) -> Fraction | None:
    """The exact number a quantity stands for, for comparisons; None if it does not parse."""
    text = canonical_quantity(value)
    return _text_value(text) if text is not None else None


@functools.lru_cache(maxsize=4096)
def _text_value(text: str) -> Fraction | None:
    match = _QUANTITY.fullmatch(text)
    if match is None:
        return None
    number, suffix = Fraction(match.group(1)), match.group(2) or ""
    if suffix[:1] in ("e", "E"):
        return number * Fraction(10) ** int(suffix[1:])
    return number * _FACTORS[suffix]


def _resource_list(resources: Obj | None) -> None:
    """``SetDefaults_ResourceList``: round up to milli-units, serve the canonical form."""
    if resources is None:
        return
    for key, raw in list(resources.items()):
        value = quantity_value(raw)
        if value is None:
            continue  # validation reports it
        milli = value * 1000
        if milli.denominator != 1:
            resources[key] = canonical_quantity(f"{math.ceil(milli)}m")
        else:
            resources[key] = canonical_quantity(raw)


def _requirements(owner: Obj) -> None:
    resources = _map(owner, "resources")
    if resources is not None:
        _resource_list(_map(resources, "requests"))
        _resource_list(_map(resources, "limits"))


# -- image references (parsers.ParseImageName) ---------------------------------------------------

_ALNUM = "[a-z0-9]+"
_PATH = f"{_ALNUM}(?:(?:[._]|__|[-]+){_ALNUM})*"
_DOMAIN_PART = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[a-fA-F0-9:]+\])"
_REFERENCE = re.compile(
    rf"(?P<name>(?:{_HOST}(?::[0-9]+)?/)?{_PATH}(?:/{_PATH})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?"
)
_DIGEST_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}


def image_tag(image: str) -> str:
    """The tag ``ParseImageName`` finds: "latest" when there is neither tag nor digest, "" on error."""
    if re.fullmatch("[a-f0-9]{64}", image):
        return ""
    head, slash, rest = image.partition("/")
    if not slash or (not any(c in head for c in ".:") and head != "localhost" and head.lower() == head):
        domain, remainder = "docker.io", image
    else:
        domain, remainder = head, rest
    remote = remainder.split(":", 1)[0]
    if remote.lower() != remote:
        return ""
    match = _REFERENCE.fullmatch(f"{domain}/{remainder}")
    if match is None or len(match.group("name")) > 255:
        return ""
    tag, digest = match.group("tag") or "", match.group("digest") or ""
    if digest:
        algorithm, _, hexes = digest.partition(":")
        if _DIGEST_LENGTHS.get(algorithm) != len(hexes):
            return ""
    return tag if tag or digest else "latest"


def image_pull_policy(image: object) -> str:
    return "Always" if isinstance(image, str) and image_tag(image) == "latest" else "IfNotPresent"


# -- pod specs -----------------------------------------------------------------------------------


def _http_get(handler: Obj) -> None:
    action = _map(handler, "httpGet")
    if action is not None:
        if _empty(action, "path"):
            action["path"] = "/"
        if _empty(action, "scheme"):
            action["scheme"] = "HTTP"
    grpc = _map(handler, "grpc")
    if grpc is not None and _unset(grpc, "service"):
        grpc["service"] = ""  # +default=""


def _probe(probe: Obj) -> None:
    for key, value in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1)):
        if _empty(probe, key):
            probe[key] = value
    if _empty(probe, "failureThreshold"):
        probe["failureThreshold"] = 3
    _http_get(probe)


def _field_ref(owner: Obj) -> None:
    ref = _map(owner, "fieldRef")
    if ref is not None and _empty(ref, "apiVersion"):
        ref["apiVersion"] = "v1"


def _container(c: Obj) -> None:
    if _empty(c, "imagePullPolicy"):
        c["imagePullPolicy"] = image_pull_policy(c.get("image"))
    if _empty(c, "terminationMessagePath"):
        c["terminationMessagePath"] = "/dev/termination-log"
    if _empty(c, "terminationMessagePolicy"):
        c["terminationMessagePolicy"] = "File"
    if _unset(c, "resources"):
        c["resources"] = {}
    _requirements(c)
    for port in _maps(c, "ports"):
        if _empty(port, "protocol"):
            port["protocol"] = "TCP"  # +default="TCP"
    for env in _maps(c, "env"):
        value_from = _map(env, "valueFrom")
        if value_from is not None:
            _field_ref(value_from)
    for key in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = _map(c, key)
        if probe is not None:
            _probe(probe)
    lifecycle = _map(c, "lifecycle")
    for key in ("postStart", "preStop"):
        handler = _map(lifecycle, key) if lifecycle is not None else None
        if handler is not None:
            _http_get(handler)


def claim_spec(spec: Obj) -> None:
    """``SetDefaults_PersistentVolumeClaimSpec``."""
    if _unset(spec, "volumeMode"):
        spec["volumeMode"] = "Filesystem"
    _requirements(spec)


def _volume(v: Obj) -> None:
    if not any(v.get(key) is not None for key in VOLUME_SOURCES):
        v["emptyDir"] = {}
    for key in ("secret", "configMap", "downwardAPI", "projected"):
        source = _map(v, key)
        if source is not None and _unset(source, "defaultMode"):
            source["defaultMode"] = DEFAULT_FILE_MODE
    host_path = _map(v, "hostPath")
    if host_path is not None and _unset(host_path, "type"):
        host_path["type"] = ""
    empty_dir = _map(v, "emptyDir")
    if empty_dir is not None and "sizeLimit" in empty_dir:
        _resource_list(empty_dir)
    downward = _map(v, "downwardAPI")
    for item in _maps(downward, "items") if downward is not None else []:
        _field_ref(item)
    projected = _map(v, "projected")
    for source in _maps(projected, "sources") if projected is not None else []:
        token = _map(source, "serviceAccountToken")
        if token is not None and _unset(token, "expirationSeconds"):
            token["expirationSeconds"] = 3600
        api = _map(source, "downwardAPI")
        for item in _maps(api, "items") if api is not None else []:
            _field_ref(item)
    ephemeral = _map(v, "ephemeral")
    template = _map(ephemeral, "volumeClaimTemplate") if ephemeral is not None else None
    spec = _map(template, "spec") if template is not None else None
    if spec is not None:
        claim_spec(spec)
    image = _map(v, "image")
    if image is not None and _empty(image, "pullPolicy"):
        image["pullPolicy"] = image_pull_policy(image.get("reference"))


def pod_spec(spec: Obj) -> None:
    """``SetDefaults_PodSpec`` and everything nested in a PodSpec (pods and pod templates)."""
    if _empty(spec, "dnsPolicy"):
        spec["dnsPolicy"] = "ClusterFirst"
    if _empty(spec, "restartPolicy"):
        spec["restartPolicy"] = "Always"
    if _unset(spec, "securityContext"):
        spec["securityContext"] = {}
    if _unset(spec, "terminationGracePeriodSeconds"):
        spec["terminationGracePeriodSeconds"] = 30
    if _empty(spec, "schedulerName"):
        spec["schedulerName"] = "default-scheduler"
    # v1 conversion: the deprecated serviceAccount names the account when the new field does
    # not, and is always served as a copy of serviceAccountName.
    if _empty(spec, "serviceAccountName") and not _empty(spec, "serviceAccount"):
        spec["serviceAccountName"] = spec["serviceAccount"]
    if not _empty(spec, "serviceAccountName"):
        spec["serviceAccount"] = spec["serviceAccountName"]
    for key in ("containers", "initContainers", "ephemeralContainers"):
        for c in _maps(spec, key):
            _container(c)
    for v in _maps(spec, "volumes"):
        _volume(v)
    _resource_list(_map(spec, "overhead"))


def pod_template(owner: Obj | None) -> None:
    """A PodTemplateSpec is a Go struct, never nil: its PodSpec is defaulted even when left out."""
    template = _child(owner, "template") if owner is not None else None
    spec = _child(template, "spec") if template is not None else None
    if spec is not None:
        pod_spec(spec)


def _pod(obj: Obj) -> None:
    spec = _map(obj, "spec")
    if spec is None:
        return
    pod_spec(spec)
    for key in ("containers", "initContainers"):  # SetDefaults_Pod: requests default to limits
        for c in _maps(spec, key):
            resources = _map(c, "resources") or {}
            limits = _map(resources, "limits")
            requests = _child(resources, "requests") if limits else None
            if limits and requests is not None:
                for name, value in limits.items():
                    requests.setdefault(name, value)
            if spec.get("hostNetwork") is True:
                for port in _maps(c, "ports"):
                    if _empty(port, "hostPort"):
                        port["hostPort"] = port.get("containerPort")
    if _unset(spec, "enableServiceLinks"):
        spec["enableServiceLinks"] = True
    _default_tolerations(spec)


def _default_tolerations(spec: Obj) -> None:
    """The DefaultTolerationSeconds admission plugin: tolerate not-ready/unreachable for 300s."""
    tolerations = spec.get("tolerations")
    if tolerations is None:
        tolerations = []
    if not isinstance(tolerations, list):
        return
    for key in NOT_READY_TAINTS:
        covered = any(
            isinstance(t, dict)
            and t.get("key") in (key, "", None)
            and t.get("effect") in ("NoExecute", "", None)
            for t in tolerations
        )
        if not covered:
            tolerations.append(
                {"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            )
    if tolerations:
        spec["tolerations"] = tolerations


# -- workloads -----------------------------------------------------------------------------------


def _replicas(spec: Obj) -> None:
    if _unset(spec, "replicas"):
        spec["replicas"] = 1


def _rolling_update(spec: Obj, field: str, knobs: dict[str, Any]) -> None:
    """A strategy that defaults to RollingUpdate, with ``knobs`` for its unset rollingUpdate fields."""
    strategy = _child(spec, field)
    if strategy is None:
        return
    if _empty(strategy, "type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] != "RollingUpdate":
        return
    if _unset(strategy, "rollingUpdate"):
        strategy["rollingUpdate"] = {}
    rolling = _map(strategy, "rollingUpdate")
    if rolling is not None:
        for key, value in knobs.items():
            if _unset(rolling, key):
                rolling[key] = value


def _deployment(obj: Obj) -> None:
    spec = _map(obj, "spec")
    if spec is None:
        return
    _replicas(spec)
    _rolling_update(spec, "strategy", {"maxUnavailable": "25%", "maxSurge": "25%"})
    if _unset(spec, "revisionHistoryLimit"):
        spec["revisionHistoryLimit"] = 10
    if _unset(spec, "progressDeadlineSeconds"):
        spec["progressDeadlineSeconds"] = 600
    pod_template(spec)


def _replicaset(obj: Obj) -> None:
    spec = _map(obj, "spec")
    if spec is not None:
        _replicas(spec)
        pod_template(spec)


def _replication_controller(obj: Obj) -> None:
    spec = _map(obj, "spec")
    if spec is None:
        return
    template = _map(spec, "template")
    labels = _map(template, "metadata") if template is not None else None
    labels = _map(labels, "labels") if labels is not None else None
    if labels is not None:
        if not spec.get("selector"):
            spec["selector"] = dict(labels)
        meta = obj.setdefault("metadata", {})
        if isinstance(meta, dict) and not meta.get("labels"):
            meta["labels"] = dict(labels)
    _replicas(spec)
    pod_template(spec)


def _statefulset(obj: Obj) -> None:
    spec = _map(obj, "spec")
    if spec is None:
        return
    if _empty(spec, "podManagementPolicy"):
        spec["podManagementPolicy"] = "OrderedReady"
    strategy = _child(spec, "updateStrategy")
    if strategy is not None:
        if _empty(strategy, "type"):
            strategy["type"] = "RollingUpdate"
            if _unset(strategy, "rollingUpdate"):
                strategy["rollingUpdate"] = {}
        rolling = _map(strategy, "rollingUpdate")
        if strategy["type"] == "RollingUpdate" and rolling is not None and _unset(rolling, "partition"):
            rolling["partition"] = 0
    if _unset(spec, "persistentVolumeClaimRetentionPolicy"):
        spec["persistentVolumeClaimRetentionPolicy"] = {}
    retention = _map(spec, "persistentVolumeClaimRetentionPolicy")
    if retention is not None:
        for key in ("whenDeleted", "whenScaled"):
            if _empty(retention, key):
                retention[key] = "Retain"
    _replicas(spec)
    if _unset(spec, "revisionHistoryLimit"):
        spec["revisionHistoryLimit"] = 10
    for claim in _maps(spec, "volumeClaimTemplates"):
        claim.setdefault("apiVersion", "v1")
        claim.setdefault("kind", "PersistentVolumeClaim")
        claim_spec_map = _child(claim, "spec")
        if claim_spec_map is not None:
            claim_spec(claim_spec_map)
        status = _child(claim, "status")
        if status is not None and _empty(status, "phase"):
            status["phase"] = "Pending"
    pod_template(spec)


def _daemonset(obj: Obj) -> None:
    spec = _map(obj, "spec")
    if spec is None:
        return
    _rolling_update(spec, "updateStrategy", {"maxUnavailable": 1, "maxSurge": 0})
    if _unset(spec, "revisionHistoryLimit"):
        spec["revisionHistoryLimit"] = 10
    pod_template(spec)


# -- batch ---------------------------------------------------------------------------------------


def _pod_failure_policy(spec: Obj) -> None:
    policy = _map(spec, "podFailurePolicy")
    for rule in _maps(policy, "rules") if policy is not None else []:
        for pattern in _maps(rule, "onPodConditions"):
            if _empty(pattern, "status"):
                pattern["status"] = "True"


def _job(obj: Obj) -> None:
    """``SetDefaults_Job`` plus the strategy's generated selector and pod labels."""
    spec = _map(obj, "spec")
    if spec is None:
        return
    if _unset(spec, "completions") and _unset(spec, "parallelism"):
        spec["completions"] = 1
        spec["parallelism"] = 1
    if _unset(spec, "parallelism"):
        spec["parallelism"] = 1
    if _unset(spec, "backoffLimit"):
        spec["backoffLimit"] = 6 if _unset(spec, "backoffLimitPerIndex") else MAX_INT32
    if _empty(spec, "completionMode"):
        spec["completionMode"] = "NonIndexed"
    if _unset(spec, "suspend"):
        spec["suspend"] = False
    if _empty(spec, "podReplacementPolicy"):
        spec["podReplacementPolicy"] = "TerminatingOrFailed" if _unset(spec, "podFailurePolicy") else "Failed"
    if _unset(spec, "manualSelector"):
        spec["manualSelector"] = False
    _pod_failure_policy(spec)
    meta = _map(obj, "metadata") or {}
    if spec.get("manualSelector") is not True and meta.get("uid"):
        _generate_selector(spec, meta)
    template = _map(spec, "template")
    template_meta = _map(template, "metadata") if template is not None else None
    labels = _map(template_meta, "labels") if template_meta is not None else None
    if labels is not None and not meta.get("labels") and "metadata" in obj:
        meta["labels"] = dict(labels)
    pod_template(spec)


def _generate_selector(spec: Obj, meta: Obj) -> None:
    """Upstream does this once, at create; with the same uid and name it is a no-op afterwards."""
    template = _child(spec, "template")
    template_meta = _child(template, "metadata") if template is not None else None
    if template_meta is None:
        return
    labels = template_meta.get("labels")
    if not isinstance(labels, dict):
        labels = template_meta["labels"] = {}
    for key, source in JOB_LABELS:
        labels.setdefault(key, str(meta.get(source) or ""))
    selector = spec.get("selector")
    if not isinstance(selector, dict):
        selector = spec["selector"] = {}
    match = selector.get("matchLabels")
    if not isinstance(match, dict):
        match = selector["matchLabels"] = {}
    match.setdefault("batch.kubernetes.io/controller-uid", str(meta["uid"]))


def _cronjob(obj: Obj) -> None:
    spec = _map(obj, "spec")
    if spec is None:
        return
    if _empty(spec, "concurrencyPolicy"):
        spec["concurrencyPolicy"] = "Allow"
    if _unset(spec, "suspend"):
        spec["suspend"] = False
    if _unset(spec, "successfulJobsHistoryLimit"):
        spec["successfulJobsHistoryLimit"] = 3
    if _unset(spec, "failedJobsHistoryLimit"):
        spec["failedJobsHistoryLimit"] = 1
    template = _child(spec, "jobTemplate")
    job_spec = _child(template, "spec") if template is not None else None
    if job_spec is not None:  # SetDefaults_Job takes a Job, so a template's JobSpec keeps its nils
        _pod_failure_policy(job_spec)
        pod_template(job_spec)


# -- core ----------------------------------------------------------------------------------------


def _namespace(obj: Obj) -> None:
    meta = obj["metadata"]
    name = meta.get("name")
    if name:
        labels = meta.get("labels")
        if not isinstance(labels, dict):
            labels = meta["labels"] = {}
        labels["kubernetes.io/metadata.name"] = name
    spec = _child(obj, "spec")
    if spec is not None:
        spec.setdefault("finalizers", ["kubernetes"])


def externally_accessible(spec: Obj) -> bool:
    kind = spec.get("type")
    return kind in ("NodePort", "LoadBalancer") or (kind == "ClusterIP" and bool(spec.get("externalIPs")))


def _service(obj: Obj) -> None:
    spec = _map(obj, "spec")
    if spec is None:
        return
    if _empty(spec, "sessionAffinity"):
        spec["sessionAffinity"] = "None"
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        config = _map(spec, "sessionAffinityConfig") or {}
        client_ip = _map(config, "clientIP") or {}
        if _unset(client_ip, "timeoutSeconds"):
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": CLIENT_IP_AFFINITY_SECONDS}}
    if _empty(spec, "type"):
        spec["type"] = "ClusterIP"
    for port in _maps(spec, "ports"):
        if _empty(port, "protocol"):
            port["protocol"] = "TCP"
        if port.get("targetPort") in (None, 0, "") and "port" in port:
            port["targetPort"] = port["port"]
    if externally_accessible(spec) and _empty(spec, "externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    if _unset(spec, "internalTrafficPolicy") and spec["type"] in ("NodePort", "LoadBalancer", "ClusterIP"):
        spec["internalTrafficPolicy"] = "Cluster"
    if spec["type"] == "LoadBalancer" and _unset(spec, "allocateLoadBalancerNodePorts"):
        spec["allocateLoadBalancerNodePorts"] = True


def _secret(obj: Obj) -> None:
    if _empty(obj, "type"):
        obj["type"] = "Opaque"
    # v1 conversion: stringData is write-only; its keys overwrite data's, base64-encoded.
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        data = obj.get("data")
        if not isinstance(data, dict):
            data = obj["data"] = {}
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()


def _claim(obj: Obj) -> None:
    spec = _map(obj, "spec")
    if spec is not None:
        claim_spec(spec)


def _volume_object(obj: Obj) -> None:
    spec = _map(obj, "spec")
    if spec is None:
        return
    if _empty(spec, "persistentVolumeReclaimPolicy"):
        spec["persistentVolumeReclaimPolicy"] = "Retain"
    if _unset(spec, "volumeMode"):
        spec["volumeMode"] = "Filesystem"
    _resource_list(_map(spec, "capacity"))


def _endpoints(obj: Obj) -> None:
    for subset in _maps(obj, "subsets"):
        for port in _maps(subset, "ports"):
            if _empty(port, "protocol"):
                port["protocol"] = "TCP"


RBAC_GROUP = "rbac.authorization.k8s.io"


def _role_binding(obj: Obj) -> None:
    """``SetDefaults_RoleBinding`` and ``SetDefaults_Subject`` (rbac/v1): an empty API group is
    RBAC's for the role and for User and Group subjects, the core group for service accounts."""
    role_ref = _map(obj, "roleRef")
    if role_ref is not None and _empty(role_ref, "apiGroup"):
        role_ref["apiGroup"] = RBAC_GROUP
    for subject in _maps(obj, "subjects"):
        if _empty(subject, "apiGroup") and subject.get("kind") in ("User", "Group"):
            subject["apiGroup"] = RBAC_GROUP


def _apiservice(obj: Obj) -> None:
    from k3py.api import apiregistration  # which imports validation, which imports this module

    apiregistration.default_apiservice(obj)


def _custom_resource_definition(obj: Obj) -> None:
    from k3py.api.crd import definition  # which imports validation, which imports this module

    definition.default_crd(obj)


_BY_RESOURCE: dict[str, Callable[[Obj], None]] = {
    "apiservices.apiregistration.k8s.io": _apiservice,
    "customresourcedefinitions.apiextensions.k8s.io": _custom_resource_definition,
    "namespaces": _namespace,
    "pods": _pod,
    "podtemplates": pod_template,
    "replicationcontrollers": _replication_controller,
    "deployments.apps": _deployment,
    "replicasets.apps": _replicaset,
    "statefulsets.apps": _statefulset,
    "daemonsets.apps": _daemonset,
    "jobs.batch": _job,
    "cronjobs.batch": _cronjob,
    "services": _service,
    "secrets": _secret,
    "persistentvolumeclaims": _claim,
    "persistentvolumes": _volume_object,
    "endpoints": _endpoints,
    "rolebindings.rbac.authorization.k8s.io": _role_binding,
    "clusterrolebindings.rbac.authorization.k8s.io": _role_binding,
}
