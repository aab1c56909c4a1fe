"""kube-apiserver's ``RuntimeClass`` admission plugin: a pod created with
``spec.runtimeClassName`` takes what its RuntimeClass (node.k8s.io/v1) asks of every pod of it.

- Mutating (:attr:`RuntimeClassAdmission.mutating`, where upstream runs its ``Admit``: after
  Priority, before the webhooks): ``overhead.podFixed`` becomes ``spec.overhead`` (a pod that
  sets a different overhead is refused); ``scheduling.nodeSelector`` joins the pod's node
  selector (a key the pod sets to another value is refused); ``scheduling.tolerations`` are
  merged into the pod's, a toleration another one covers left out.
- Validating (:attr:`RuntimeClassAdmission.validating`, after the mutating webhooks, before the
  validating ones): the pod's overhead is still its class's, and a pod whose class defines none
  has none.

A pod naming a RuntimeClass that does not exist is refused (403). Only pod creation is
admitted: subresources, updates and other resources pass untouched, as upstream.
"""

from __future__ import annotations

import copy

from k3py.api.defaults import quantity_value
from k3py.api.resources import Resource
from k3py.apiserver import errors
from k3py.apiserver.generic import Obj, ObjectStore, WriteOptions

GROUP = "node.k8s.io"
OVERHEAD_MISMATCH = "pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead"
OVERHEAD_WITHOUT_CLASS = "pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead"


class RuntimeClassAdmission:
    """Both halves of the plugin; each is an ``Admission`` step of its own."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        found = store.registry.lookup(GROUP, "v1", "runtimeclasses")
        self.classes: Resource | None = found

    async def mutating(
        self, res: Resource, namespace: str, obj: Obj, old: Obj | None, opts: WriteOptions
    ) -> None:
        if _ignored(res, old, opts):
            return
        runtime_class = await self._class_of(obj)
        if runtime_class is None:
            return
        spec = obj.setdefault("spec", {})
        fixed = _pod_fixed(runtime_class)
        if fixed is not None:
            if spec.get("overhead") and not _same_resources(spec["overhead"], fixed):
                raise _forbidden(obj, OVERHEAD_MISMATCH)
            spec["overhead"] = copy.deepcopy(fixed)
        scheduling = runtime_class.get("scheduling")
        if isinstance(scheduling, dict):
            _schedule(obj, spec, scheduling)

    async def validating(
        self, res: Resource, namespace: str, obj: Obj, old: Obj | None, opts: WriteOptions
    ) -> None:
        if _ignored(res, old, opts):
            return
        runtime_class = await self._class_of(obj)
        spec = obj.get("spec") or {}
        fixed = _pod_fixed(runtime_class) if runtime_class is not None else None
        if fixed is not None:
            if not _same_resources(spec.get("overhead") or {}, fixed):
                raise _forbidden(obj, OVERHEAD_MISMATCH)
        elif spec.get("overhead") is not None:
            raise _forbidden(obj, OVERHEAD_WITHOUT_CLASS)

    async def _class_of(self, pod: Obj) -> Obj | None:
        """The pod's RuntimeClass; None when it names none; 403 when the class does not exist."""
        name = (pod.get("spec") or {}).get("runtimeClassName")
        if name is None:
            return None
        found = await self.store.find(self.classes, "", str(name)) if self.classes is not None else None
        if found is None:
            raise _forbidden(pod, f'pod rejected: RuntimeClass "{name}" not found')
        return found


def _ignored(res: Resource, old: Obj | None, opts: WriteOptions) -> bool:
    return bool(res.group or res.plural != "pods" or old is not None or opts.subresource or opts.deleting)


def _pod_fixed(runtime_class: Obj) -> Obj | None:
    overhead = runtime_class.get("overhead")
    if not isinstance(overhead, dict) or overhead.get("podFixed") is None:
        return None
    fixed = overhead["podFixed"]
    return fixed if isinstance(fixed, dict) else {}


def _same_resources(given: object, wanted: Obj) -> bool:
    """Two resource lists as Go's semantic equality compares them: the same names, each quantity
    of the same value (``1000m`` is ``1``)."""
    if not isinstance(given, dict) or set(given) != set(wanted):
        return False
    return all(quantity_value(given[name]) == quantity_value(wanted[name]) for name in wanted)


def _schedule(pod: Obj, spec: Obj, scheduling: Obj) -> None:
    """``setScheduling``: the class's node selector and tolerations added to the pod's."""
    wanted = scheduling.get("nodeSelector")
    if isinstance(wanted, dict) and wanted:
        selector = spec.get("nodeSelector")
        if not isinstance(selector, dict):
            spec["nodeSelector"] = dict(wanted)
        else:
            for key, value in wanted.items():
                if key in selector and selector[key] != value:
                    raise _forbidden(
                        pod,
                        f"conflict: runtimeClass.scheduling.nodeSelector[{key}] = {value}; "
                        f"pod.spec.nodeSelector[{key}] = {selector[key]}",
                    )
                selector[key] = value
    extra = scheduling.get("tolerations")
    if isinstance(extra, list) and extra:
        own = spec.get("tolerations")
        spec["tolerations"] = merge_tolerations(own if isinstance(own, list) else [], extra)


def merge_tolerations(first: list[Obj], second: list[Obj]) -> list[Obj]:
    """``tolerations.MergeTolerations``: both lists, less any toleration another one covers."""
    every = [*first, *second]
    merged: list[Obj] = []
    for i, toleration in enumerate(every):
        if any(_covers(kept, toleration) for kept in merged):
            continue
        if any(later != toleration and _covers(later, toleration) for later in every[i + 1 :]):
            continue
        merged.append(copy.deepcopy(toleration))
    return merged


def _covers(wider: Obj, toleration: Obj) -> bool:
    """``isSuperset``: whatever ``toleration`` tolerates, ``wider`` does too."""
    if wider == toleration:
        return True
    key, wider_key = toleration.get("key") or "", wider.get("key") or ""
    wider_operator = wider.get("operator") or ""
    if key != wider_key and (wider_key or wider_operator != "Exists"):
        return False
    effect, wider_effect = toleration.get("effect") or "", wider.get("effect") or ""
    if effect != wider_effect and wider_effect:
        return False
    if wider_effect == "NoExecute" and wider.get("tolerationSeconds") is not None:
        seconds = toleration.get("tolerationSeconds")
        if seconds is None or seconds > wider["tolerationSeconds"]:
            return False
    if wider_operator in ("Equal", ""):
        return toleration.get("operator") == "Equal" and (toleration.get("value") or "") == (
            wider.get("value") or ""
        )
    return wider_operator == "Exists"


def _forbidden(pod: Obj, message: str) -> errors.ApiError:
    name = str((pod.get("metadata") or {}).get("name") or "")
    return errors.ApiError(
        403, "Forbidden", f'pods "{name}" is forbidden: {message}', {"name": name, "kind": "pods"}
    )
