"""Node identities: what a kubelet may read (the Node authorizer) and write (NodeRestriction).

A node authenticates as ``system:node:<name>`` in ``system:nodes``. As kube-apiserver's Node
authorizer does, k3py lets it read a Secret, ConfigMap, PersistentVolumeClaim or
ServiceAccount only when a pod bound to that node (``spec.nodeName``) uses it (volumes,
projected sources, env, envFrom, image pull secrets, the pod's account), request a token only
for a service account such a pod runs as, create PodCertificateRequests (NodeRestriction
checks them) and read one only when it names the node (listing them is denied: k3py's request
attributes carry no field selector to hold the node to), and
otherwise holds the static ``system:node`` ClusterRole's rules. Relationships come from a cache
of every pod, indexed by node. PersistentVolumes and the rest of upstream's graph (volume
attachments, resource claims) are not related yet: a node reading them is denied.

:class:`NodeRestriction` is the admission half: a node writes only its own Node (not its taints
or restricted labels), Lease and CSINode, mirror pods bound to itself that use no other object,
and the status of its own pods, deletes only its own pods, and creates PodCertificateRequests
only for its own pods (``k3py.apiserver.podcertificates``).
"""

from __future__ import annotations

from collections.abc import Iterator

from k3py.api import podcertificates as pcrs
from k3py.api.resources import Resource
from k3py.apiserver import errors
from k3py.apiserver.authn import User
from k3py.apiserver.authz import Attributes, Authorizer, Decision
from k3py.apiserver.cache import ObjectCache
from k3py.apiserver.generic import Obj, ObjectStore, WriteOptions
from k3py.apiserver.podcertificates import admit_node_request
from k3py.apiserver.rbac import Rbac, rule_allows

NODES_GROUP = "system:nodes"
NODE_PREFIX = "system:node:"
NODE_ROLE = "system:node"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
GRAPHED = {
    "secrets": "secret",
    "configmaps": "configmap",
    "persistentvolumeclaims": "pvc",
    "serviceaccounts": "serviceaccount",
}
"""Core resources whose objects a node reads only through a pod of its own (service accounts:
the ones its pods run as)."""
UNRELATED = {
    ("", "persistentvolumes"),
    ("storage.k8s.io", "volumeattachments"),
    ("resource.k8s.io", "resourceclaims"),
}
"""Resources upstream relates through its graph and k3py does not relate yet: denied to nodes."""


def node_name(user: User) -> str | None:
    """The node a user is, or None for anyone else."""
    if NODES_GROUP not in user.groups or not user.name.startswith(NODE_PREFIX):
        return None
    return user.name[len(NODE_PREFIX) :] or None


def references(pod: Obj) -> Iterator[tuple[str, str]]:
    """``(kind, name)`` of every secret, configmap, PVC and service account a pod uses."""
    spec = pod.get("spec") or {}
    if spec.get("serviceAccountName"):
        yield "serviceaccount", spec["serviceAccountName"]
    for ref in spec.get("imagePullSecrets") or []:
        if ref.get("name"):
            yield "secret", ref["name"]
    for volume in spec.get("volumes") or []:
        if (secret := volume.get("secret")) and secret.get("secretName"):
            yield "secret", secret["secretName"]
        if (configmap := volume.get("configMap")) and configmap.get("name"):
            yield "configmap", configmap["name"]
        if (claim := volume.get("persistentVolumeClaim")) and claim.get("claimName"):
            yield "pvc", claim["claimName"]
        if volume.get("ephemeral"):
            yield "pvc", f"{pod['metadata']['name']}-{volume.get('name')}"
        for source in (volume.get("projected") or {}).get("sources") or []:
            if (secret := source.get("secret")) and secret.get("name"):
                yield "secret", secret["name"]
            if (configmap := source.get("configMap")) and configmap.get("name"):
                yield "configmap", configmap["name"]
        for kind, key in (("secret", "secretRef"), ("secret", "nodePublishSecretRef")):
            for driver in (
                "csi",
                "cephfs",
                "flexVolume",
                "rbd",
                "iscsi",
                "scaleIO",
                "storageos",
                "azureFile",
            ):
                ref = (volume.get(driver) or {}).get(key)
                if isinstance(ref, dict) and ref.get("name"):
                    yield kind, ref["name"]
    for group in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(group) or []:
            for source in container.get("envFrom") or []:
                if (ref := source.get("secretRef")) and ref.get("name"):
                    yield "secret", ref["name"]
                if (ref := source.get("configMapRef")) and ref.get("name"):
                    yield "configmap", ref["name"]
            for env in container.get("env") or []:
                value_from = env.get("valueFrom") or {}
                if (ref := value_from.get("secretKeyRef")) and ref.get("name"):
                    yield "secret", ref["name"]
                if (ref := value_from.get("configMapKeyRef")) and ref.get("name"):
                    yield "configmap", ref["name"]


class NodeAuthorizer:
    """The Node authorizer over a cache of every pod (see the module docstring)."""

    def __init__(self, store: ObjectStore, rbac: Rbac) -> None:
        resource = store.registry.lookup("", "v1", "pods")
        assert resource is not None, "core/v1 pods is required"
        self.pods = pods = ObjectCache(store, resource, shared=True)  # only read here
        self.rbac = rbac
        self._pods_on: dict[str, set[tuple[str, str]]] = {}
        self._node_of: dict[tuple[str, str], str] = {}
        pods.subscribe(self._index)
        requests = store.registry.lookup(pcrs.GROUP, pcrs.VERSION, pcrs.PLURAL)
        self.requests = ObjectCache(store, requests) if requests is not None else None

    async def start(self) -> None:
        await self.pods.start()
        if self.requests is not None:
            await self.requests.start()

    async def close(self) -> None:
        await self.pods.stop()
        if self.requests is not None:
            await self.requests.stop()

    def _index(self, pod: Obj | None) -> None:
        if pod is None:
            self._pods_on.clear()
            self._node_of.clear()
            for each in self.pods.objects():
                self._place(each)
        else:
            self._place(pod)

    def _place(self, pod: Obj) -> None:
        meta = pod["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        if (old := self._node_of.pop(key, None)) is not None:
            self._pods_on.get(old, set()).discard(key)
        current = self.pods.get(*key)  # None once deleted
        node = ((current or {}).get("spec") or {}).get("nodeName")
        if current is not None and node:
            self._node_of[key] = node
            self._pods_on.setdefault(node, set()).add(key)

    def related(self, node: str, namespace: str, kind: str, name: str) -> bool:
        for pod_namespace, pod_name in self._pods_on.get(node, ()):
            if pod_namespace != namespace:
                continue
            pod = self.pods.get(pod_namespace, pod_name)
            if pod is not None and (kind, name) in set(references(pod)):
                return True
        return False

    def __call__(self, attrs: Attributes) -> Decision:
        node = node_name(attrs.user)
        if node is None or not attrs.resource_request:
            return Decision(False)
        group, resource = attrs.api_group, attrs.resource
        if not group and resource in GRAPHED and not attrs.subresource:
            if attrs.verb not in ("get", "list", "watch"):
                return Decision(False, f"node '{node}' can only read resources of this type")
            if not attrs.name:
                return Decision(False, "No Object name found")
            if not self.related(node, attrs.namespace, GRAPHED[resource], attrs.name):
                return Decision(False, f"no relationship found between node '{node}' and this object")
            return Decision(True)
        if not group and resource == "serviceaccounts" and attrs.subresource == "token":
            if attrs.verb != "create" or not attrs.name:
                return Decision(
                    False, f"node '{node}' can only create tokens for individual service accounts"
                )
            if not self.related(node, attrs.namespace, "serviceaccount", attrs.name):
                return Decision(False, f"no relationship found between node '{node}' and this object")
            return Decision(True)
        if (group, resource) == (pcrs.GROUP, pcrs.PLURAL):
            return self._pod_certificate_request(node, attrs)
        if (group, resource) in UNRELATED:
            return Decision(False, f"no relationship found between node '{node}' and this object")
        role = self.rbac.cluster_roles.get("", NODE_ROLE)
        rules = (role or {}).get("rules") or []
        return Decision(any(rule_allows(rule, attrs) for rule in rules if isinstance(rule, dict)))

    def _pod_certificate_request(self, node: str, attrs: Attributes) -> Decision:
        """upstream's ``authorizePodCertificateRequest`` (list and watch: see the module docstring)."""
        if attrs.subresource:
            return Decision(False, "nodes may not access the status subresource of PodCertificateRequests")
        if attrs.verb == "create":
            return Decision(True)  # NodeRestriction checks what is asked
        if attrs.verb == "get":
            found = self.requests.get(attrs.namespace, attrs.name) if self.requests is not None else None
            if found is None or pcrs.spec(found).get("nodeName") != node:
                return Decision(False, f"no relationship found between node '{node}' and this object")
            return Decision(True)
        if attrs.verb in ("list", "watch"):
            return Decision(False, "can only list/watch podcertificaterequests with nodeName field selector")
        return Decision(False, f"nodes may not {attrs.verb} podcertificaterequests")


KUBELET_LABELS = {
    "kubernetes.io/hostname",
    "kubernetes.io/arch",
    "kubernetes.io/os",
    "beta.kubernetes.io/arch",
    "beta.kubernetes.io/os",
    "beta.kubernetes.io/instance-type",
    "node.kubernetes.io/instance-type",
    "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
}
"""Labels in the kubernetes.io and k8s.io namespaces a kubelet may set on its own Node (upstream's list)."""
KUBELET_LABEL_PREFIXES = ("kubelet.kubernetes.io/", "node.kubernetes.io/")


def _restricted_label(key: str) -> bool:
    """Whether a node may not set or change this label on itself (NodeRestriction's rule)."""
    prefix = key.split("/", 1)[0] if "/" in key else ""
    if prefix == "node-restriction.kubernetes.io" or prefix.endswith(".node-restriction.kubernetes.io"):
        return True
    if key in KUBELET_LABELS or key.startswith(KUBELET_LABEL_PREFIXES):
        return False
    return prefix in ("kubernetes.io", "k8s.io") or prefix.endswith((".kubernetes.io", ".k8s.io"))


class NodeRestriction:
    """Admission for node identities (upstream's NodeRestriction plugin): a node writes only its
    own Node (not its taints, not restricted labels), only mirror pods bound to itself that use
    no other object, only the status of its own pods, deletes only its own pods, and touches
    only its own Lease and CSINode, and creates PodCertificateRequests only for its own pods
    (checked against the stored node, pod and service account when a ``store`` is given)."""

    def __init__(self, store: ObjectStore | None = None, authorize: Authorizer | None = None) -> None:
        self.store = store
        self.authorize = authorize

    async def __call__(
        self, res: Resource, namespace: str, obj: Obj, old: Obj | None, opts: WriteOptions
    ) -> None:
        node = node_name(opts.user) if opts.user is not None else None
        if node is None:
            return
        name = str((obj.get("metadata") or {}).get("name") or "")
        target = (res.group, res.plural)
        if target == ("", "nodes"):
            self._node(res, node, name, obj, old, opts)
        elif target == ("", "pods"):
            self._pod(res, node, name, obj, old, opts)
        elif target == ("coordination.k8s.io", "leases"):
            if namespace != "kube-node-lease":
                raise _forbidden(
                    res, name, f'node "{node}" can only access leases in the kube-node-lease namespace'
                )
            if name != node:
                raise _forbidden(
                    res,
                    name,
                    f'node "{node}" can only access node lease with the same name as the requesting node',
                )
        elif target == (pcrs.GROUP, pcrs.PLURAL):
            await admit_node_request(self.store, self.authorize, res, node, namespace, obj, old, opts)
        elif target == ("storage.k8s.io", "csinodes") and name != node:
            raise _forbidden(
                res, name, f'node "{node}" can only access CSINode with the same name as the requesting node'
            )

    @staticmethod
    def _node(res: Resource, node: str, name: str, obj: Obj, old: Obj | None, opts: WriteOptions) -> None:
        if name != node:
            raise _forbidden(res, name, f'node "{node}" is not allowed to modify node "{name}"')
        if opts.deleting:
            return
        old_meta = (old or {}).get("metadata") or {}
        labels, old_labels = (obj.get("metadata") or {}).get("labels") or {}, old_meta.get("labels") or {}
        changed = {k for k in set(labels) | set(old_labels) if labels.get(k) != old_labels.get(k)}
        if bad := sorted(k for k in changed if _restricted_label(k)):
            raise _forbidden(res, name, f'node "{node}" is not allowed to modify labels: {", ".join(bad)}')
        taints = (obj.get("spec") or {}).get("taints") or []
        old_taints = ((old or {}).get("spec") or {}).get("taints") or []
        if old is not None and taints != old_taints:
            raise _forbidden(res, name, f'node "{node}" is not allowed to modify taints')

    @staticmethod
    def _pod(res: Resource, node: str, name: str, obj: Obj, old: Obj | None, opts: WriteOptions) -> None:
        spec = obj.get("spec") or {}
        bound = ((old or obj).get("spec") or {}).get("nodeName")
        if opts.deleting:
            if bound != node:
                raise _forbidden(
                    res, name, f'node "{node}" can only delete pods with spec.nodeName set to itself'
                )
            return
        if old is not None:
            if opts.subresource != "status":
                raise _forbidden(res, name, f'node "{node}" can only update pod status')
            if bound != node:
                raise _forbidden(
                    res,
                    name,
                    f'node "{node}" can only update pod status for pods with spec.nodeName set to itself',
                )
            return
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        if MIRROR_ANNOTATION not in annotations:
            raise _forbidden(
                res,
                name,
                f'pod does not have "{MIRROR_ANNOTATION}" annotation, '
                f'node "{node}" can only create mirror pods',
            )
        if spec.get("nodeName") != node:
            raise _forbidden(
                res, name, f'node "{node}" can only create pods with spec.nodeName set to itself'
            )
        kinds = {kind for kind, _ in references(obj)}
        for kind, what in (
            ("serviceaccount", "a service account"),
            ("secret", "secrets"),
            ("configmap", "configmaps"),
            ("pvc", "persistentvolumeclaims"),
        ):
            if kind in kinds:
                raise _forbidden(res, name, f'node "{node}" can not create pods that reference {what}')
        owners = (obj.get("metadata") or {}).get("ownerReferences") or []
        if owners and not (
            len(owners) == 1 and owners[0].get("kind") == "Node" and owners[0].get("name") == node
        ):
            raise _forbidden(
                res, name, f'node "{node}" can only create pods with an owner reference set to itself'
            )


def _forbidden(res: Resource, name: str, why: str) -> errors.ApiError:
    return errors.ApiError(
        403,
        "Forbidden",
        f'{res.plural} "{name}" is forbidden: {why}',
        {"name": name, "kind": res.plural},
    )
