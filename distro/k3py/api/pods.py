"""Pod rules the generic strategy does not know: the status a pod starts with and keeps, and the
two subresources that write parts of a pod's spec (upstream's ``pkg/registry/core/pod`` strategies
and ``ValidatePodEphemeralContainersUpdate`` / ``ValidatePodResize``).

- Creation: ``status.qosClass`` is computed from the admitted pod (``k3py.api.qos``); a status
  write that leaves it out keeps the stored one, as it keeps the observed generations.
- ``pods/ephemeralcontainers`` (get, update, patch) changes ``spec.ephemeralContainers`` only:
  everything else, metadata and status included, stays as stored. Ephemeral containers can be
  added, never removed or changed once there, and static pods take none.
- ``pods/resize`` (get, update, patch) changes the cpu and memory of containers' (init
  containers' too) ``resources``, their ``resizePolicy`` and pod-level ``spec.resources``; it may
  not add, remove, rename or reorder containers, remove a request or limit, change the pod's QoS
  class, or resize a pod whose running containers' statuses carry no ``resources`` (a kubelet
  that cannot resize).

The ``prepare_*`` functions turn the written object into what is stored, the ``*_causes``
functions validate the result against the stored pod; both run after defaulting.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from k3py.api import qos, validation
from k3py.api.resources import Resource
from k3py.api.validation import Cause, forbidden, invalid

Obj = dict[str, Any]

EPHEMERAL_CONTAINERS = "ephemeralcontainers"
RESIZE = "resize"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
_COMPUTE = ("cpu", "memory")
_CLAIM_STATUSES = (
    "resourceClaimStatuses",
    "extendedResourceClaimStatus",
    "nodeAllocatableResourceClaimStatuses",
)


# -- status ---------------------------------------------------------------------------------------


def set_qos_class(pod: Obj) -> None:
    """Record the QoS class of a pod being created (``PrepareForCreate``), once admission has
    set its final resources (LimitRanger's defaults, RuntimeClass's overhead)."""
    status = pod.get("status")
    if not isinstance(status, dict):
        status = pod["status"] = {}
    status["qosClass"] = qos.compute_qos(pod)


def keep_status_fields(new: Obj, old: Obj) -> None:
    """What a status write that leaves it out keeps from the stored status (``podStatusStrategy``):
    the QoS class, the claim statuses an older client does not know, and the observed generations
    (the pod's and, condition by condition of the same type, its conditions')."""
    old_status = old.get("status")
    if not isinstance(old_status, dict):
        return
    status = new.get("status")
    if status is None:
        status = new["status"] = {}
    if not isinstance(status, dict):
        return
    for key in ("qosClass", "observedGeneration"):
        if not status.get(key) and old_status.get(key):
            status[key] = old_status[key]
    for key in _CLAIM_STATUSES:
        if status.get(key) is None and old_status.get(key) is not None:
            status[key] = copy.deepcopy(old_status[key])
    generations: dict[object, list[object]] = {}
    for condition in _dicts(old_status.get("conditions")):
        generations.setdefault(condition.get("type"), []).append(condition.get("observedGeneration"))
    for condition in _dicts(status.get("conditions")):
        remembered = generations.get(condition.get("type")) or [None]
        before = remembered.pop(0)
        if not condition.get("observedGeneration") and before:
            condition["observedGeneration"] = before


# -- pods/ephemeralcontainers ---------------------------------------------------------------------


def prepare_ephemeral_containers_update(new: Obj, old: Obj) -> None:
    """``dropNonEphemeralContainerUpdates``: the stored pod with the written ephemeral containers."""
    wanted = _dict(new.get("spec")).get("ephemeralContainers")
    _reset_to(new, old)
    spec = new.setdefault("spec", {})
    if wanted is None:
        spec.pop("ephemeralContainers", None)
    else:
        spec["ephemeralContainers"] = copy.deepcopy(wanted)


def ephemeral_containers_causes(resource: Resource, new: Obj, old: Obj) -> list[Cause]:
    """``ValidatePodEphemeralContainersUpdate``."""
    causes = _pod_causes(resource, new, old)
    if MIRROR_ANNOTATION in _dict(_dict(old.get("metadata")).get("annotations")):
        return [forbidden("", "static pods do not support ephemeral containers")]
    written = {str(c.get("name")): c for c in _dicts(_dict(new.get("spec")).get("ephemeralContainers"))}
    for before in _dicts(_dict(old.get("spec")).get("ephemeralContainers")):
        name = str(before.get("name"))
        after = written.get(name)
        if after is None:
            message = f"existing ephemeral containers {json.dumps(name)} may not be removed\n"
            causes.append(forbidden("spec.ephemeralContainers", message))
        elif _semantic(after) != _semantic(before):
            message = f"existing ephemeral containers {json.dumps(name)} may not be changed\n"
            causes.append(forbidden("spec.ephemeralContainers", message + _diff(before, after)))
    return causes


# -- pods/resize ----------------------------------------------------------------------------------


def prepare_resize(new: Obj, old: Obj) -> None:
    """``dropNonResizeUpdates``: the stored pod with the written containers' resources and
    resize policies and the written pod-level resources. A write that adds, removes, renames or
    reorders containers is left as written, for validation to refuse."""
    spec, old_spec = _dict(new.get("spec")), _dict(old.get("spec"))
    merged: dict[str, list[Obj]] = {}
    for key in ("containers", "initContainers"):
        written, stored = _dicts(spec.get(key)), _dicts(old_spec.get(key))
        if len(written) != len(stored):
            return
        if any(w.get("name") != s.get("name") for w, s in zip(written, stored, strict=True)):
            merged[key] = copy.deepcopy(written)
            continue
        merged[key] = [_with_resources(s, w) for w, s in zip(written, stored, strict=True)]
    pod_resources = copy.deepcopy(spec.get("resources"))
    _reset_to(new, old)
    new_spec = new.setdefault("spec", {})
    for key, containers in merged.items():
        if containers or key in new_spec:
            new_spec[key] = containers
    if pod_resources is None and old_spec.get("resources") is not None:
        pod_resources = copy.deepcopy(old_spec["resources"])  # a client that does not know them
    if pod_resources is None:
        new_spec.pop("resources", None)
    else:
        new_spec["resources"] = pod_resources


def resize_causes(resource: Resource, new: Obj, old: Obj) -> list[Cause]:
    """``ValidatePodResize``."""
    causes = _pod_causes(resource, new, old)
    if MIRROR_ANNOTATION in _dict(_dict(old.get("metadata")).get("annotations")):
        return [forbidden("", "static pods cannot be resized")]
    spec, old_spec = _dict(new.get("spec")), _dict(old.get("spec"))
    if _dict(old_spec.get("os")).get("name") == "windows":
        return [forbidden("", "windows pods cannot be resized")]
    if qos.pod_qos(old) != qos.compute_qos(new):
        shown = _dict(new.get("status")).get("qosClass") or ""
        causes.append(invalid("spec", shown, "Pod QOS Class may not change as a result of resizing"))
    if not _resize_supported(old):
        causes.append(forbidden("spec", "Pod running on node without support for resize"))
    munged = copy.deepcopy(spec)
    causes += _pod_level_resize(spec, old_spec, munged)
    ordering = _container_ordering(spec, old_spec)
    if ordering:
        return causes + ordering
    for key in ("initContainers", "containers"):
        for i, (after, before) in enumerate(
            zip(_dicts(spec.get(key)), _dicts(old_spec.get(key)), strict=True)
        ):
            causes += _removed_requirements(after, before, f"spec.{key}[{i}].resources")
    causes += _only_compute_changed(munged, old_spec)
    if _semantic(spec.get("volumes")) != _semantic(old_spec.get("volumes")):
        causes.append(
            forbidden(
                "spec.volumes",
                "volumes are immutable on resize when InPlacePodVerticalScalingMemoryBackedVolumes "
                "feature gate is disabled",
            )
        )
    if causes:
        return causes
    if _semantic(munged) != _semantic(old_spec):
        causes.append(forbidden("spec", "only cpu and memory resources are mutable"))
    return causes


def _resize_supported(pod: Obj) -> bool:
    """``isPodResizeRequestSupported``: the first running container's status reports resources
    (a kubelet that resizes does); with none running, assume it can."""
    for status in _dicts(_dict(pod.get("status")).get("containerStatuses")):
        if _dict(status.get("state")).get("running") is not None:
            return status.get("resources") is not None
    return True


def _pod_level_resize(spec: Obj, old_spec: Obj, munged: Obj) -> list[Cause]:
    """``validatePodLevelResourcesResize``; leaves ``munged`` with the stored pod-level cpu and
    memory for the final comparison."""
    resources, old_resources = spec.get("resources"), old_spec.get("resources")
    if not _requirements_set(resources) and not _requirements_set(old_resources):
        return []
    if old_resources is not None and resources is None:
        return [forbidden("spec.resources", "pod-level resources cannot be removed")]
    causes: list[Cause] = []
    if isinstance(old_resources, dict):
        for part in ("requests", "limits"):
            if _removed(_dict(_dict(resources).get(part)), _dict(old_resources.get(part))):
                kind = "resource requests" if part == "requests" else "resource limits"
                causes.append(forbidden(f"spec.resources.{part}", f"pod-level {kind} cannot be removed"))
    dropped = _drop_compute_updates(_dict(resources), old_resources)
    if dropped is None:
        munged.pop("resources", None)
    else:
        munged["resources"] = dropped
    if _semantic(munged.get("resources")) != _semantic(old_resources):
        causes.append(forbidden("spec", "only cpu and memory resources are mutable at pod-level"))
    return causes


def _container_ordering(spec: Obj, old_spec: Obj) -> list[Cause]:
    """``validatePodResizeContainerOrdering``."""
    causes: list[Cause] = []
    for key in ("containers", "initContainers"):
        written, stored = _dicts(spec.get(key)), _dicts(old_spec.get(key))
        if len(written) != len(stored):
            causes.append(forbidden(f"spec.{key}", f"{key} may not be added or removed on resize"))
            continue
        for i, (after, before) in enumerate(zip(written, stored, strict=True)):
            if after.get("name") != before.get("name"):
                causes.append(
                    forbidden(f"spec.{key}[{i}].name", f"{key} may not be renamed or reordered on resize")
                )
    return causes


def _removed_requirements(container: Obj, old: Obj, field: str) -> list[Cause]:
    """``validateContainerResize``: requests and limits may change, not go away."""
    resources, old_resources = _dict(container.get("resources")), _dict(old.get("resources"))
    causes: list[Cause] = []
    if _removed(_dict(resources.get("requests")), _dict(old_resources.get("requests"))):
        causes.append(forbidden(f"{field}.requests", "resource requests cannot be removed"))
    if _removed(_dict(resources.get("limits")), _dict(old_resources.get("limits"))):
        causes.append(forbidden(f"{field}.limits", "resource limits cannot be removed"))
    return causes


def _only_compute_changed(munged: Obj, old_spec: Obj) -> list[Cause]:
    """Containers (init containers too) may change their cpu and memory only; ``munged`` gets
    the stored values back for the final comparison."""
    causes: list[Cause] = []
    for key in ("containers", "initContainers"):
        stored = _dicts(old_spec.get(key))
        for i, container in enumerate(_dicts(munged.get(key))):
            before = stored[i]
            changed = _semantic(container) != _semantic(before)
            _restore_compute(container, before)
            if key == "containers":
                if _semantic(container) != _semantic(before):
                    causes.append(forbidden("spec", "only cpu and memory resources are mutable"))
                continue
            if _semantic(container) != _semantic(before):
                causes.append(
                    forbidden(
                        f"spec.initContainers[{i}]",
                        "only cpu and memory resources for init or sidecar containers are mutable",
                    )
                )
            if changed and container.get("restartPolicy") != "Always":
                for policy in _dicts(container.get("resizePolicy")):
                    if policy.get("restartPolicy") == "RestartContainer":
                        causes.append(
                            forbidden(
                                f"spec.initContainers[{i}]",
                                "non-sidecar init containers with a resize policy of RestartContainer "
                                "cannot be resized",
                            )
                        )
    return causes


def _restore_compute(container: Obj, old: Obj) -> None:
    """``dropCPUMemoryResourcesFromContainer``: the stored cpu and memory back in place."""
    resources, old_resources = _dict(container.get("resources")), _dict(old.get("resources"))
    restored: Obj = {}
    for part in ("limits", "requests"):
        dropped = _drop_compute(resources.get(part), old_resources.get(part))
        if dropped is not None:
            restored[part] = dropped
    if resources.get("claims") is not None:
        restored["claims"] = resources["claims"]
    container["resources"] = restored


def _drop_compute_updates(resources: Obj, old_resources: object) -> Obj | None:
    """``dropCPUMemoryResourceRequirementsUpdates`` for pod-level resources."""
    old = _dict(old_resources)
    out = dict(resources)
    for part in ("requests", "limits"):
        dropped = _drop_compute(resources.get(part), old.get(part))
        if dropped is None:
            out.pop(part, None)
        else:
            out[part] = dropped
    if old_resources is None and not out.get("requests") and not out.get("limits") and not out.get("claims"):
        return None
    return out


def _drop_compute(resources: object, old_resources: object) -> Obj | None:
    """``dropCPUMemoryUpdates``: ``resources`` with the stored cpu and memory (or none)."""
    if resources is None and old_resources is None:
        return None
    out = {k: v for k, v in _dict(resources).items() if k not in _COMPUTE}
    old = _dict(old_resources)
    out.update({name: old[name] for name in _COMPUTE if name in old})
    return out


def _removed(resources: Obj, old_resources: Obj) -> bool:
    return any(name not in resources for name in old_resources)


def _requirements_set(resources: object) -> bool:
    value = _dict(resources)
    return bool(_dict(value.get("requests")) or _dict(value.get("limits")))


def _with_resources(stored: Obj, written: Obj) -> Obj:
    merged = copy.deepcopy(stored)
    for key in ("resources", "resizePolicy"):
        if written.get(key) is None:
            merged.pop(key, None)
        else:
            merged[key] = copy.deepcopy(written[key])
    return merged


# -- shared ---------------------------------------------------------------------------------------


def _reset_to(new: Obj, old: Obj) -> None:
    """Make ``new`` the stored pod again, but for the field ownership this write recorded
    (``ResetObjectMetaForStatus`` and the spec and status taken from the stored pod)."""
    managed = _dict(new.get("metadata")).get("managedFields")
    result = copy.deepcopy(old)
    if managed is not None:
        result.setdefault("metadata", {})["managedFields"] = managed
    new.clear()
    new.update(result)


def _pod_causes(resource: Resource, new: Obj, old: Obj) -> list[Cause]:
    """``ValidateObjectMetaUpdate`` and ``validatePodMetadataAndSpec``."""
    causes = validation.metadata_causes(resource, new, old)
    return causes + validation.pod_spec_causes(_dict(new.get("spec")), "spec", is_pod=True)


def _semantic(value: Any) -> Any:
    """``value`` as Go's semantic equality compares it: null, empty lists and empty maps are
    the same as absent."""
    if isinstance(value, dict):
        kept = {k: _semantic(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in (None, [], {})}
    if isinstance(value, list):
        return [_semantic(v) for v in value]
    return value


def _diff(old: Obj, new: Obj) -> str:
    """The fields of a container that differ, old then new, one per line."""
    before, after = _semantic(old), _semantic(new)
    lines = []
    for key in sorted(set(before) | set(after)):
        if before.get(key) == after.get(key):
            continue
        if key in before:
            lines.append(f"- {key}: {json.dumps(before[key], separators=(',', ':'))}")
        if key in after:
            lines.append(f"+ {key}: {json.dumps(after[key], separators=(',', ':'))}")
    return "\n".join(lines)


def _dict(value: object) -> Obj:
    return value if isinstance(value, dict) else {}


def _dicts(value: object) -> list[Obj]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []
