"""Per-resource rules around the generic store: what create and update may set, defaults,
validation, generation and status handling, graceful deletion.

Mirrors kube-apiserver's ``RESTCreateStrategy``/``RESTUpdateStrategy``: the status
subresource owns ``status``, the main resource owns everything else; ``generation`` counts
changes outside metadata and status; create starts from a clean status. apiextensions-apiserver's
two strategies are here too: CustomResourceDefinitions' (stored versions, the cleanup finalizer
on delete) and custom resources' (schema pruning, defaulting and validation).
"""

from __future__ import annotations

import copy
from typing import Any

from k3py.api import (
    certificates,
    csr_validation,
    defaults,
    objects,
    pcr_validation,
    podcertificates,
    pods,
    validation,
)
from k3py.api.crd import CLEANUP_FINALIZER, custom, model
from k3py.api.resources import Resource
from k3py.api.validation import Cause

Obj = dict[str, Any]

# Keyed by Resource.name: the plural for core, ``plural.group`` otherwise.
_STATUS_KEPT_ON_CREATE = {"nodes"}  # the kubelet registers a node with its status
_INITIAL_STATUS: dict[str, Obj] = {
    "pods": {"phase": "Pending"},
    "namespaces": {"phase": "Active"},
    "persistentvolumeclaims": {"phase": "Pending"},
    "persistentvolumes": {"phase": "Pending"},
}
_USER_META = ("labels", "annotations", "finalizers", "ownerReferences")
"""The metadata a write may change, through the status subresource too (built-in resources)."""
_STATUS_META_FROM_OLD: dict[str, tuple[str, ...]] = {
    "pods": ("ownerReferences",),  # podStatusStrategy: old kubelets corrupt them
    "deployments.apps": ("labels",),
}
"""Per resource, metadata its status strategy keeps from the stored object all the same."""


def _spec_of(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "kind", "apiVersion")}


class Strategy:
    def __init__(self, resource: Resource) -> None:
        self.resource = resource
        self.has_status = "status" in resource.subresources
        self.tracks_generation = self.has_status or resource.plural in ("podtemplates",)

    def prepare_create(self, obj: Obj) -> None:
        meta = obj["metadata"]
        if self.has_status and self.resource.name not in _STATUS_KEPT_ON_CREATE:
            # Created objects start from an empty status, as upstream's strategies reset it.
            obj["status"] = copy.deepcopy(_INITIAL_STATUS.get(self.resource.name, {}))
        if self.tracks_generation:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        defaults.apply(self.resource, obj)

    def prepare_update(self, new: Obj, old: Obj) -> None:
        if self.resource.plural == "services" and not self.resource.group:
            _keep_allocations(new, old)
        if self.has_status:
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
        defaults.apply(self.resource, new)
        self._count_generation(new, old)

    def _count_generation(self, new: Obj, old: Obj) -> None:
        if self.tracks_generation:
            generation = int(old["metadata"].get("generation") or 1)
            if _spec_of(new) != _spec_of(old):
                generation += 1
            new["metadata"]["generation"] = generation

    def complete_create(self, obj: Obj) -> None:
        """What creation sets once admission has changed the object for the last time."""

    def prepare_subresource_update(self, subresource: str, new: Obj, old: Obj) -> None:
        """A write through a subresource with no rules of its own here (scale): as an update."""
        self.prepare_update(new, old)

    def prepare_status_update(self, new: Obj, old: Obj) -> None:
        """The status subresource writes ``status`` and the metadata users own (labels,
        annotations, finalizers, owner references), as upstream's status strategies keep
        ``spec`` and let metadata through; everything else stays as stored."""
        self._status_only(new, old, keep_meta=_USER_META)

    def _status_only(self, new: Obj, old: Obj, *, keep_meta: tuple[str, ...]) -> None:
        status = new.get("status")
        meta = new["metadata"]
        result = copy.deepcopy(old)
        if status is None:
            result.pop("status", None)
        else:
            result["status"] = status
        from_old = _STATUS_META_FROM_OLD.get(self.resource.name, ())
        for name in keep_meta:
            if name in from_old:
                continue
            if name in meta:
                result["metadata"][name] = meta[name]
            else:
                result["metadata"].pop(name, None)
        if "managedFields" in meta:
            result["metadata"]["managedFields"] = meta["managedFields"]
        new.clear()
        new.update(result)

    def prepare_approval_update(self, new: Obj, old: Obj) -> None:
        """The approval subresource (CSRs) writes ``status.conditions`` and, as the status
        subresource, the metadata users own."""
        wanted = new.get("status")
        conditions = wanted.get("conditions") if isinstance(wanted, dict) else None
        self._status_only(new, old, keep_meta=_USER_META)
        result_status = new.setdefault("status", {})
        result_status.clear()
        result_status.update(copy.deepcopy(old.get("status") or {}))
        if conditions is not None:
            result_status["conditions"] = conditions
        else:
            result_status.pop("conditions", None)

    def validate(self, obj: Obj, old: Obj | None, subresource: str = "") -> list[Cause]:
        return validation.validate(self.resource, obj, old)

    def prepare_delete(self, obj: Obj) -> None:
        """What a deletion changes besides marking the object (a CRD takes a finalizer)."""

    def grace_period(self, obj: Obj, requested: int | None) -> int:
        """Seconds a deletion waits for; 0 deletes at once (finalizers permitting)."""
        if self.resource.name != "pods":  # core pods only, not a custom resource called pods
            return 0
        spec = obj.get("spec") or {}
        if not spec.get("nodeName"):
            return 0  # never scheduled: nothing runs it, nothing to wait for
        if requested is not None:
            return max(0, requested)
        return int(spec.get("terminationGracePeriodSeconds", 30))


def _keep_allocations(new: Obj, old: Obj) -> None:
    """An update that leaves out the cluster IP or node ports keeps the allocated ones; one that
    changes the type drops what the new type cannot have and the client left as it was
    (upstream's ``dropTypeDependentFields``)."""
    spec, old_spec = new.get("spec"), old.get("spec") or {}
    if not isinstance(spec, dict):
        return
    if spec.get("type", "ClusterIP") != old_spec.get("type", "ClusterIP"):
        _drop_type_dependent_fields(spec, old_spec)
        return
    if not spec.get("clusterIP") and old_spec.get("clusterIP"):
        for name in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
            if name in old_spec:
                spec[name] = copy.deepcopy(old_spec[name])
    old_ports = {
        (p.get("port"), p.get("protocol", "TCP")): p
        for p in old_spec.get("ports") or []
        if isinstance(p, dict)
    }
    for port in spec.get("ports") or []:
        if isinstance(port, dict) and not port.get("nodePort"):
            previous = old_ports.get((port.get("port"), port.get("protocol", "TCP")))
            if previous is not None and previous.get("nodePort"):
                port["nodePort"] = previous["nodePort"]


def _drop_type_dependent_fields(spec: Obj, old_spec: Obj) -> None:
    kind = spec.get("type", "ClusterIP")
    if kind == "ExternalName":
        for name in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
            if name in spec and spec.get(name) == old_spec.get(name):
                del spec[name]
    if kind not in ("NodePort", "LoadBalancer"):
        old_ports = [p for p in old_spec.get("ports") or [] if isinstance(p, dict)]
        for i, port in enumerate(spec.get("ports") or []):
            if (
                isinstance(port, dict)
                and i < len(old_ports)
                and port.get("nodePort") == old_ports[i].get("nodePort")
            ):
                port.pop("nodePort", None)
    if kind != "LoadBalancer":
        for name in ("healthCheckNodePort", "allocateLoadBalancerNodePorts", "loadBalancerClass"):
            if name in spec and spec.get(name) == old_spec.get(name):
                del spec[name]


class _CertificateSigningRequests(Strategy):
    """upstream's csrStrategy, csrStatusStrategy and csrApprovalStrategy (``k3py.api.certificates``)."""

    def prepare_create(self, obj: Obj) -> None:
        super().prepare_create(obj)
        certificates.prepare_create(obj)

    def prepare_update(self, new: Obj, old: Obj) -> None:
        super().prepare_update(new, old)
        certificates.prepare_update(new, old)

    def prepare_status_update(self, new: Obj, old: Obj) -> None:
        super().prepare_status_update(new, old)
        certificates.prepare_status_update(new, old)

    def prepare_approval_update(self, new: Obj, old: Obj) -> None:
        super().prepare_approval_update(new, old)
        certificates.prepare_approval_update(new, old)

    def validate(self, obj: Obj, old: Obj | None, subresource: str = "") -> list[Cause]:
        return super().validate(obj, old, subresource) + csr_validation.validate(obj, old, subresource)


class _PodCertificateRequests(Strategy):
    """upstream's PodCertificateRequest Strategy and StatusStrategy (``k3py.api.podcertificates``);
    who may sign is admission's (``k3py.apiserver.podcertificates``)."""

    def prepare_create(self, obj: Obj) -> None:
        super().prepare_create(obj)
        podcertificates.prepare_create(obj)

    def prepare_update(self, new: Obj, old: Obj) -> None:
        super().prepare_update(new, old)
        podcertificates.prepare_update(new, old)

    def prepare_status_update(self, new: Obj, old: Obj) -> None:
        podcertificates.prepare_status_update(new, old)

    def validate(self, obj: Obj, old: Obj | None, subresource: str = "") -> list[Cause]:
        return super().validate(obj, old, subresource) + pcr_validation.validate(obj, old, subresource)


class _Pods(Strategy):
    """upstream's podStrategy (the QoS class set at creation), podStatusStrategy (which keeps it
    and the observed generations) and the ephemeral-container and resize strategies
    (``k3py.api.pods``)."""

    def complete_create(self, obj: Obj) -> None:
        pods.set_qos_class(obj)

    def prepare_status_update(self, new: Obj, old: Obj) -> None:
        super().prepare_status_update(new, old)
        pods.keep_status_fields(new, old)

    def prepare_subresource_update(self, subresource: str, new: Obj, old: Obj) -> None:
        if subresource == pods.EPHEMERAL_CONTAINERS:
            pods.prepare_ephemeral_containers_update(new, old)
        elif subresource == pods.RESIZE:
            pods.prepare_resize(new, old)
        else:
            super().prepare_subresource_update(subresource, new, old)
            return
        defaults.apply(self.resource, new)
        self._count_generation(new, old)

    def validate(self, obj: Obj, old: Obj | None, subresource: str = "") -> list[Cause]:
        if old is not None and subresource == pods.EPHEMERAL_CONTAINERS:
            return pods.ephemeral_containers_causes(self.resource, obj, old)
        if old is not None and subresource == pods.RESIZE:
            return pods.resize_causes(self.resource, obj, old)
        return super().validate(obj, old, subresource)


# -- apiextensions-apiserver ------------------------------------------------------------------


class _CustomResourceDefinitions(Strategy):
    """CRDs: the storage version joins ``status.storedVersions``; a deletion holds the CRD
    (``Terminating``) with a finalizer until its custom resources are gone."""

    def prepare_create(self, obj: Obj) -> None:
        super().prepare_create(obj)
        obj["status"] = {"acceptedNames": {"plural": "", "kind": ""}}
        self._store_version(obj)

    def prepare_update(self, new: Obj, old: Obj) -> None:
        super().prepare_update(new, old)
        self._store_version(new)

    @staticmethod
    def _store_version(obj: Obj) -> None:
        storage = model.storage_version(obj)
        status = obj.setdefault("status", {})
        stored = list(status.get("storedVersions") or ())
        if storage and storage not in stored:
            status["storedVersions"] = [*stored, storage]

    def prepare_delete(self, obj: Obj) -> None:
        meta = obj["metadata"]
        if meta.get("deletionTimestamp"):
            return
        finalizers = list(meta.get("finalizers") or ())
        if CLEANUP_FINALIZER not in finalizers:
            meta["finalizers"] = [*finalizers, CLEANUP_FINALIZER]
        pending = {
            "type": model.TERMINATING,
            "status": "True",
            "reason": "InstanceDeletionPending",
            "message": (
                "CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon"
            ),
        }
        model.set_condition(obj, pending, objects.now())


class _CustomResources(Strategy):
    """``customResourceStrategy``: with the status subresource, create drops status and updates
    keep it; ``generation`` counts every change outside metadata (status too, when it is not a
    subresource); every write is pruned and defaulted by the version's schema and validated."""

    def __init__(self, resource: Resource) -> None:
        super().__init__(resource)
        assert resource.custom is not None
        self.custom = resource.custom

    def prepare_create(self, obj: Obj) -> None:
        if self.has_status:
            obj.pop("status", None)
        obj["metadata"]["generation"] = 1
        custom.normalize(self.custom, obj)

    def prepare_update(self, new: Obj, old: Obj) -> None:
        if self.has_status:
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
        custom.normalize(self.custom, new)
        generation = int(old["metadata"].get("generation") or 1)
        if _content(new) != _content(old):
            generation += 1
        new["metadata"]["generation"] = generation

    def prepare_status_update(self, new: Obj, old: Obj) -> None:
        """Custom resources' status subresource writes ``status`` only, metadata included
        (``customResourceStatusStrategy``)."""
        self._status_only(new, old, keep_meta=())
        custom.normalize(self.custom, new)

    def validate(self, obj: Obj, old: Obj | None, subresource: str = "") -> list[Cause]:
        return custom.validate(self.resource, obj, old)


def _content(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k != "metadata"}


_BY_RESOURCE: dict[str, type[Strategy]] = {
    "pods": _Pods,
    certificates.RESOURCE: _CertificateSigningRequests,
    podcertificates.RESOURCE: _PodCertificateRequests,
    "customresourcedefinitions.apiextensions.k8s.io": _CustomResourceDefinitions,
}
_cache: dict[str, Strategy] = {}


def strategy_for(resource: Resource) -> Strategy:
    if resource.custom is not None:
        return _CustomResources(resource)  # cheap to make; a CRD change replaces the Resource
    key = f"{resource.group}/{resource.version}/{resource.plural}"
    strategy = _cache.get(key)
    if strategy is None:
        strategy = _cache[key] = _BY_RESOURCE.get(resource.name, Strategy)(resource)
    return strategy
