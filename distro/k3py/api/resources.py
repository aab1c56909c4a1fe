# ruff: noqa: E501  (a data table: one resource per line reads best)
"""The served resources: group, version, kind, REST names, scope, verbs, subresources.

One entry per group/version/resource. Discovery, routing, storage keys and printing all
read this table, so a resource that is not here does not exist anywhere. The facts (plural
names, short names, categories, scope, subresources) are upstream Kubernetes 1.37's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

CRUD = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True, slots=True)
class Resource:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    """Subresources served generically: ``status`` and ``scale``."""
    verbs: tuple[str, ...] = CRUD
    singular: str = field(default="")
    stored_as: str = ""
    """``group/plural`` of the resource whose objects this one serves in another version
    ("core/events" for events.k8s.io events): one set of objects, converted when read
    and written (``k3py.api.conversion``)."""

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def api_version(self) -> str:
        return self.group_version

    @property
    def name(self) -> str:
        """``plural.group``, or just ``plural`` for the core group (kubectl's spelling)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def singular_name(self) -> str:
        return self.singular or self.kind.lower()

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    def storage_prefix(self) -> bytes:
        """Where objects of this resource live in the store (one key per object)."""
        if self.stored_as:
            return f"/registry/{self.stored_as}/".encode()
        group = self.group or "core"
        return f"/registry/{group}/{self.plural}/".encode()

    def key(self, namespace: str, name: str) -> bytes:
        if self.namespaced:
            return self.storage_prefix() + f"{namespace}/{name}".encode()
        return self.storage_prefix() + name.encode()

    def namespace_prefix(self, namespace: str) -> bytes:
        return self.storage_prefix() + f"{namespace}/".encode() if namespace else self.storage_prefix()


def _r(
    group: str,
    version: str,
    kind: str,
    plural: str,
    namespaced: bool = True,
    short: Iterable[str] = (),
    categories: Iterable[str] = (),
    sub: Iterable[str] = (),
    verbs: tuple[str, ...] = CRUD,
    stored_as: str = "",
) -> Resource:
    return Resource(
        group,
        version,
        kind,
        plural,
        namespaced,
        tuple(short),
        tuple(categories),
        tuple(sub),
        verbs,
        "",
        stored_as,
    )


ALL = ("all",)

RESOURCES: tuple[Resource, ...] = (
    # core/v1
    _r("", "v1", "ConfigMap", "configmaps", short=["cm"]),
    _r("", "v1", "Endpoints", "endpoints", short=["ep"]),
    _r("", "v1", "Event", "events", short=["ev"]),
    _r("", "v1", "LimitRange", "limitranges", short=["limits"]),
    _r("", "v1", "Namespace", "namespaces", namespaced=False, short=["ns"], sub=["status"]),
    _r("", "v1", "Node", "nodes", namespaced=False, short=["no"], sub=["status"]),
    _r("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", short=["pvc"], sub=["status"]),
    _r("", "v1", "PersistentVolume", "persistentvolumes", namespaced=False, short=["pv"], sub=["status"]),
    _r("", "v1", "Pod", "pods", short=["po"], categories=ALL, sub=["status"]),
    _r("", "v1", "PodTemplate", "podtemplates"),
    _r("", "v1", "ReplicationController", "replicationcontrollers", short=["rc"], categories=ALL, sub=["status", "scale"]),
    _r("", "v1", "ResourceQuota", "resourcequotas", short=["quota"], sub=["status"]),
    _r("", "v1", "Secret", "secrets"),
    _r("", "v1", "ServiceAccount", "serviceaccounts", short=["sa"]),
    _r("", "v1", "Service", "services", short=["svc"], categories=ALL, sub=["status"]),
    # apps/v1
    _r("apps", "v1", "ControllerRevision", "controllerrevisions"),
    _r("apps", "v1", "DaemonSet", "daemonsets", short=["ds"], categories=ALL, sub=["status"]),
    _r("apps", "v1", "Deployment", "deployments", short=["deploy"], categories=ALL, sub=["status", "scale"]),
    _r("apps", "v1", "ReplicaSet", "replicasets", short=["rs"], categories=ALL, sub=["status", "scale"]),
    _r("apps", "v1", "StatefulSet", "statefulsets", short=["sts"], categories=ALL, sub=["status", "scale"]),
    # batch/v1
    _r("batch", "v1", "CronJob", "cronjobs", short=["cj"], categories=ALL, sub=["status"]),
    _r("batch", "v1", "Job", "jobs", categories=ALL, sub=["status"]),
    # autoscaling
    _r("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", short=["hpa"], categories=ALL, sub=["status"]),
    _r("autoscaling", "v1", "HorizontalPodAutoscaler", "horizontalpodautoscalers", short=["hpa"], categories=ALL, sub=["status"], stored_as="autoscaling/horizontalpodautoscalers"),
    # policy/v1
    _r("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", short=["pdb"], sub=["status"]),
    # rbac.authorization.k8s.io/v1
    _r("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", namespaced=False),
    _r("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", namespaced=False),
    _r("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings"),
    _r("rbac.authorization.k8s.io", "v1", "Role", "roles"),
    # coordination.k8s.io/v1
    _r("coordination.k8s.io", "v1", "Lease", "leases"),
    # discovery.k8s.io/v1
    _r("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices"),
    # networking.k8s.io/v1
    _r("networking.k8s.io", "v1", "IngressClass", "ingressclasses", namespaced=False),
    _r("networking.k8s.io", "v1", "Ingress", "ingresses", short=["ing"], sub=["status"]),
    _r("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", short=["netpol"]),
    _r("networking.k8s.io", "v1", "IPAddress", "ipaddresses", namespaced=False, short=["ip"]),
    _r("networking.k8s.io", "v1", "ServiceCIDR", "servicecidrs", namespaced=False, sub=["status"]),
    # storage.k8s.io/v1
    _r("storage.k8s.io", "v1", "CSIDriver", "csidrivers", namespaced=False),
    _r("storage.k8s.io", "v1", "CSINode", "csinodes", namespaced=False),
    _r("storage.k8s.io", "v1", "CSIStorageCapacity", "csistoragecapacities"),
    _r("storage.k8s.io", "v1", "StorageClass", "storageclasses", namespaced=False, short=["sc"]),
    _r("storage.k8s.io", "v1", "VolumeAttachment", "volumeattachments", namespaced=False, sub=["status"]),
    _r("storage.k8s.io", "v1", "VolumeAttributesClass", "volumeattributesclasses", namespaced=False, short=["vac"]),
    # scheduling.k8s.io/v1
    _r("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", namespaced=False, short=["pc"]),
    # events.k8s.io/v1: the same Events as core/v1, in the newer shape
    _r("events.k8s.io", "v1", "Event", "events", short=["ev"], stored_as="core/events"),
    # node.k8s.io/v1
    _r("node.k8s.io", "v1", "RuntimeClass", "runtimeclasses", namespaced=False),
    # certificates.k8s.io/v1
    _r("certificates.k8s.io", "v1", "CertificateSigningRequest", "certificatesigningrequests", namespaced=False, short=["csr"], sub=["status"]),
    # admissionregistration.k8s.io/v1
    _r("admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration", "mutatingwebhookconfigurations", namespaced=False, categories=["api-extensions"]),
    _r("admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration", "validatingwebhookconfigurations", namespaced=False, categories=["api-extensions"]),
    _r("admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicy", "validatingadmissionpolicies", namespaced=False, categories=["api-extensions"], sub=["status"]),
    _r("admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicyBinding", "validatingadmissionpolicybindings", namespaced=False, categories=["api-extensions"]),
    # apiextensions.k8s.io/v1
    _r("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", namespaced=False, short=["crd", "crds"], categories=["api-extensions"], sub=["status"]),
    # flowcontrol.apiserver.k8s.io/v1
    _r("flowcontrol.apiserver.k8s.io", "v1", "FlowSchema", "flowschemas", namespaced=False, sub=["status"]),
    _r("flowcontrol.apiserver.k8s.io", "v1", "PriorityLevelConfiguration", "prioritylevelconfigurations", namespaced=False, sub=["status"]),
)  # fmt: skip


class Registry:
    """Lookup of served resources by URL segments and by kind."""

    def __init__(self, resources: Iterable[Resource] = RESOURCES) -> None:
        self._all = tuple(resources)
        self._by_path = {(r.group, r.version, r.plural): r for r in self._all}
        self._by_kind = {(r.group, r.version, r.kind): r for r in self._all}
        order: dict[str, list[str]] = {}
        for r in self._all:
            versions = order.setdefault(r.group, [])
            if r.version not in versions:
                versions.append(r.version)
        self._versions = order

    def __iter__(self) -> Iterator[Resource]:
        return iter(self._all)

    def lookup(self, group: str, version: str, plural: str) -> Resource | None:
        return self._by_path.get((group, version, plural))

    def by_kind(self, group: str, version: str, kind: str) -> Resource | None:
        return self._by_kind.get((group, version, kind))

    def groups(self) -> list[str]:
        """Served groups in discovery order: core first, then as listed."""
        return list(self._versions)

    def versions(self, group: str) -> list[str]:
        """A group's served versions, preferred first."""
        return list(self._versions.get(group, []))

    def in_version(self, group: str, version: str) -> list[Resource]:
        return [r for r in self._all if r.group == group and r.version == version]
