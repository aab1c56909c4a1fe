"""``pods/binding`` and the legacy ``bindings`` resource: how a scheduler assigns a pod to a node.

A ``Binding`` (``{"metadata": {"name": pod}, "target": {"kind": "Node", "name": node}}``)
is never stored. kube-apiserver's ``BindingREST`` turns it into one conditional write of the
pod, done here the same way, at the storage level and in one compare-and-swap:

- the pod must exist, not be terminating, have no scheduling gates and no node yet
  (409 ``pod X is already assigned to node "Y"`` otherwise);
- the binding's ``metadata.uid`` and ``metadata.resourceVersion``, when given, are
  preconditions on the pod;
- ``spec.nodeName`` is set, the binding's annotations are copied onto the pod and the
  ``PodScheduled`` condition becomes ``True``.

As upstream, the pod write bypasses the pod strategy (which keeps ``status`` on a main-resource
update) and the field manager; the answer is a ``Status`` of success, 201 Created.
``POST /api/v1/namespaces/{ns}/bindings`` takes the pod's name from the binding's own metadata.
"""

from __future__ import annotations

import copy
from typing import Any

from aiohttp import web

from k3py.api import objects
from k3py.api.resources import Resource
from k3py.apiserver import errors
from k3py.apiserver.generic import Obj, ObjectStore, decode, encode
from k3py.apiserver.handlers import read_subresource_body, respond
from k3py.apiserver.request import negotiate
from k3py.storage import Conflict, KeyNotFound

POD_BINDING_PATH = "/api/v1/namespaces/{namespace}/pods/{name}/binding"
LEGACY_BINDINGS_PATH = "/api/v1/namespaces/{namespace}/bindings"
MAX_CAS_RETRIES = 16
BINDING_RESOURCE = Resource(group="", version="v1", kind="Binding", plural="pods/binding", namespaced=True)
"""How conflicts name what failed: upstream's ``pods/binding`` group-resource."""


class BindingRejected(Exception):
    """The pod cannot take this binding (answered 409 on ``pods/binding``)."""


def binding_routes(store: ObjectStore) -> list[web.RouteDef]:
    """The two POST routes; added before the generic API routes, they take precedence."""
    bindings = Bindings(store)
    return [
        web.post(POD_BINDING_PATH, bindings.pod_binding),
        web.post(LEGACY_BINDINGS_PATH, bindings.legacy_binding),
    ]


class Bindings:
    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        pods = store.registry.lookup("", "v1", "pods")
        if pods is None:
            raise ValueError("the registry serves no core/v1 pods: bindings need them")
        self.pods = pods

    async def pod_binding(self, request: web.Request) -> web.Response:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        binding = await _binding_body(request, namespace)
        if _name(binding) != name:
            raise errors.bad_request("name in URL does not match name in Binding object")
        return await self._bind(request, namespace, binding)

    async def legacy_binding(self, request: web.Request) -> web.Response:
        namespace = request.match_info["namespace"]
        binding = await _binding_body(request, namespace)
        return await self._bind(request, namespace, binding)

    async def _bind(self, request: web.Request, namespace: str, binding: Obj) -> web.Response:
        media = negotiate(request.headers.get("Accept", ""))
        dry_run = _dry_run(request)
        problems = validate_binding(binding)
        if problems:
            # Upstream returns the field errors as a plain error, which becomes a 500 Status
            # with no reason; clients see exactly that.
            shown = ", ".join(problems)
            raise errors.ApiError(500, "", f"[{shown}]" if len(problems) > 1 else shown)
        name = _name(binding)
        if not name:
            raise errors.bad_request("Name parameter required.")
        meta = binding.get("metadata") or {}
        await self.assign(
            namespace,
            name,
            str(binding["target"]["name"]),
            annotations=_annotations(meta),
            uid=str(meta.get("uid") or ""),
            resource_version=str(meta.get("resourceVersion") or ""),
            dry_run=dry_run,
        )
        status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}
        return respond(status, status=201, media=media)

    async def assign(
        self,
        namespace: str,
        name: str,
        node: str,
        *,
        annotations: dict[str, str] | None = None,
        uid: str = "",
        resource_version: str = "",
        dry_run: bool = False,
    ) -> Obj:
        """Set the pod's node in one compare-and-swap; the pod as written."""
        key = self.pods.key(namespace, name)
        backend = self.store.backend
        for _ in range(MAX_CAS_RETRIES):
            kv = await backend.get(key)
            if kv is None:
                raise errors.not_found(self.pods, name)
            pod = decode(kv)
            _check_preconditions(self.pods, pod, uid, resource_version)
            try:
                bound = bind_pod(pod, node, annotations or {}, now=objects.now())
            except BindingRejected as exc:
                raise errors.conflict(BINDING_RESOURCE, name, str(exc)) from None
            if dry_run:
                return bound
            try:
                written = await backend.update(key, encode(bound), expected_mod=kv.mod_revision)
            except Conflict:
                continue
            except KeyNotFound:
                raise errors.not_found(self.pods, name) from None
            bound["metadata"]["resourceVersion"] = str(written.mod_revision)
            return bound
        raise errors.conflict(self.pods, name, "too many concurrent writes; please try again")


def validate_binding(binding: Obj) -> list[str]:
    """``ValidatePodBinding``: the target is a Node (or unsaid) and is named."""
    target = binding.get("target")
    target = target if isinstance(target, dict) else {}
    problems = []
    kind = target.get("kind") or ""
    if kind and kind != "Node":
        problems.append(f'target.kind: Unsupported value: "{kind}": supported values: "Node", "<empty>"')
    if not target.get("name"):
        problems.append("target.name: Required value")
    return problems


def bind_pod(pod: Obj, node: str, annotations: dict[str, str], *, now: str) -> Obj:
    """The pod bound to ``node`` (a new object); BindingRejected when it cannot be."""
    name = pod["metadata"].get("name", "")
    spec = pod.get("spec") or {}
    if pod["metadata"].get("deletionTimestamp"):
        raise BindingRejected(f"pod {name} is being deleted, cannot be assigned to a host")
    if spec.get("nodeName"):
        raise BindingRejected(f'pod {name} is already assigned to node "{spec["nodeName"]}"')
    if spec.get("schedulingGates"):
        raise BindingRejected(f"pod {name} has non-empty .spec.schedulingGates")
    bound = copy.deepcopy(pod)
    bound.setdefault("spec", {})["nodeName"] = node
    if annotations:
        bound["metadata"]["annotations"] = {**(bound["metadata"].get("annotations") or {}), **annotations}
    status = bound.setdefault("status", {})
    status["conditions"] = _with_scheduled(list(status.get("conditions") or []), now)
    return bound


def _with_scheduled(conditions: list[Obj], now: str) -> list[Obj]:
    """``UpdatePodCondition`` with ``PodScheduled=True``: the old transition time is kept when
    the status does not change; reason and message are cleared."""
    fresh: Obj = {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": now}
    for index, condition in enumerate(conditions):
        if isinstance(condition, dict) and condition.get("type") == "PodScheduled":
            if condition.get("status") == "True" and condition.get("lastTransitionTime"):
                fresh["lastTransitionTime"] = condition["lastTransitionTime"]
            conditions[index] = fresh
            return conditions
    return [*conditions, fresh]


def _check_preconditions(pods: Resource, pod: Obj, uid: str, resource_version: str) -> None:
    meta = pod["metadata"]
    name = str(meta.get("name") or "")
    if uid and uid != meta.get("uid"):
        raise errors.conflict(
            pods,
            name,
            f"Precondition failed: UID in precondition: {uid}, UID in object meta: {meta.get('uid')}",
        )
    if resource_version and resource_version != meta.get("resourceVersion"):
        raise errors.conflict(
            pods,
            name,
            f"Precondition failed: ResourceVersion in precondition: {resource_version}, "
            f"ResourceVersion in object meta: {meta.get('resourceVersion')}",
        )


async def _binding_body(request: web.Request, namespace: str) -> Obj:
    body = await read_subresource_body(request, namespace, "Binding", ("v1",))
    target = body.get("target")
    if target is not None and not isinstance(target, dict):
        raise errors.bad_request("target: expected an object")
    return body


def _name(binding: Obj) -> str:
    meta = binding.get("metadata")
    return str(meta.get("name") or "") if isinstance(meta, dict) else ""


def _annotations(meta: Any) -> dict[str, str]:
    found = meta.get("annotations") if isinstance(meta, dict) else None
    if found is None:
        return {}
    if not isinstance(found, dict) or not all(isinstance(v, str) for v in found.values()):
        raise errors.bad_request("metadata.annotations: expected a map of strings")
    return {str(k): v for k, v in found.items()}


def _dry_run(request: web.Request) -> bool:
    dry = request.query.getall("dryRun", [])
    for value in dry:
        if value != "All":
            raise errors.bad_request(f'dryRun: Unsupported value: "{value}": supported values: "All"')
    return bool(dry)
