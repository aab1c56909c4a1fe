"""``pods/eviction``: deleting a pod only when its PodDisruptionBudget allows it.

``POST /api/v1/namespaces/{ns}/pods/{name}/eviction`` takes a policy/v1 (or v1beta1)
``Eviction`` and does what kube-apiserver's ``EvictionREST`` does:

1. A pod that is Pending, Succeeded, Failed or already terminating is deleted at once: it is
   not counted as healthy by any budget (a pod that is neither terminal nor terminating is
   deleted on the condition that its resourceVersion did not change since it was read).
2. Otherwise the budgets of the pod's namespace whose selector matches it are read: more than
   one is a 500; none lets the pod go.
3. A pod that is not Ready goes without spending the budget when its budget's
   ``unhealthyPodEvictionPolicy`` is ``AlwaysAllow``, or when the budget is met
   (``currentHealthy >= desiredHealthy > 0``); the delete then requires the pod's
   resourceVersion to be the one read (a pod that became Ready meanwhile is answered 429).
4. Otherwise the budget must have been seen by the disruption controller (its
   ``observedGeneration``) and allow a disruption, else 429 ``TooManyRequests`` with a
   ``DisruptionBudget`` cause; ``disruptionsAllowed`` is decremented and the pod recorded in
   ``status.disruptedPods`` by a status update conditional on the budget's resourceVersion,
   read again and retried on a conflict.
5. The pod gets the ``DisruptionTarget`` condition (``EvictionByEvictionAPI``), then is deleted
   with the eviction's ``deleteOptions`` (grace period, preconditions, propagation, dry run).

The answer is a ``Status`` of success, 201 Created. Authorization (``create`` on
``pods/eviction``) is the middleware's, as for every path.
"""

from __future__ import annotations

import asyncio
import copy
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from aiohttp import web

from k3py.api import objects
from k3py.api.resources import Resource
from k3py.api.selectors import SelectorError, from_label_selector_object
from k3py.apiserver import errors
from k3py.apiserver.generic import DeleteOptions, ListOptions, Obj, ObjectStore, WriteOptions
from k3py.apiserver.handlers import read_subresource_body, respond
from k3py.apiserver.request import negotiate

POD_EVICTION_PATH = "/api/v1/namespaces/{namespace}/pods/{name}/eviction"
EVICTION_VERSIONS = ("policy/v1", "policy/v1beta1")
MAX_DISRUPTED_POD_SIZE = 2000
"""Evictions the disruption controller has not confirmed yet beyond which a budget refuses more."""
RETRY_STEPS = 20
RETRY_DELAY = 0.5
"""Upstream's ``EvictionsRetry``: 20 attempts, 500ms apart (10% jitter)."""
TOO_MANY = "Cannot evict pod as it would violate the pod's disruption budget."
MULTIPLE_PDBS = (
    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
)
POD_GROUP_RESOURCE = Resource(group="", version="v1", kind="Pod", plural="Pod", namespaced=True)
"""How the DisruptionTarget update names the pod in a conflict (upstream's ``{"", "Pod"}``)."""


def eviction_routes(store: ObjectStore) -> list[web.RouteDef]:
    """The POST route; added before the generic API routes, it takes precedence."""
    return [web.post(POD_EVICTION_PATH, Evictions(store).evict)]


@dataclass(frozen=True)
class Options:
    """The eviction's ``deleteOptions``, with the request's dry run folded in."""

    dry_run: bool = False
    grace_period_seconds: int | None = None
    propagation_policy: str = ""
    uid: str = ""
    resource_version: str | None = None
    """None: no resourceVersion precondition (``""`` is a given, empty one)."""

    def delete_options(self) -> DeleteOptions:
        return DeleteOptions(
            dry_run=self.dry_run,
            grace_period_seconds=self.grace_period_seconds,
            propagation_policy=self.propagation_policy,
            precondition_uid=self.uid,
            precondition_resource_version=self.resource_version or "",
        )


class Evictions:
    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        pods = store.registry.lookup("", "v1", "pods")
        pdbs = store.registry.lookup("policy", "v1", "poddisruptionbudgets")
        if pods is None or pdbs is None:
            raise ValueError("evictions need core/v1 pods and policy/v1 poddisruptionbudgets served")
        self.pods, self.pdbs = pods, pdbs

    async def evict(self, request: web.Request) -> web.Response:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        media = negotiate(request.headers.get("Accept", ""))
        body = await _eviction_body(request, namespace)
        if str((body.get("metadata") or {}).get("name") or "") != name:
            raise errors.bad_request("name in URL does not match name in Eviction object")
        options = _options(body.get("deleteOptions"), _dry_run(request))
        await self.evict_pod(namespace, name, options)
        status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}
        return respond(status, status=201, media=media)

    async def evict_pod(self, namespace: str, name: str, options: Options) -> None:
        """Evict or raise the ``ApiError`` upstream answers with."""
        retry_conflicts = options.resource_version is None
        pod: Obj = {}
        for attempt in range(RETRY_STEPS):
            pod = await self.store.get(self.pods, namespace, name)
            if not can_ignore_pdb(pod):
                break
            deleting = options
            if should_enforce_resource_version(pod) and options.resource_version is None:
                deleting = replace(options, resource_version=pod["metadata"]["resourceVersion"])
            try:
                await self._mark_and_delete(namespace, name, deleting)
            except errors.ApiError as exc:
                if exc.code != 409 or not retry_conflicts or attempt == RETRY_STEPS - 1:
                    raise
                await _pause()
                continue
            return
        pdb = await self._budget_of(pod)
        enforce_version = False
        if pdb is not None:
            enforce_version = unhealthy_may_go(pod, pdb)
            if not enforce_version:
                await self._spend(pdb, str(pod["metadata"]["name"]), options.dry_run)
        deleting = options
        if enforce_version:
            deleting = replace(options, resource_version=pod["metadata"]["resourceVersion"])
        try:
            await self._mark_and_delete(namespace, name, deleting)
        except errors.ApiError as exc:
            if exc.code == 409 and enforce_version and options.resource_version is None:
                raise too_many_requests(still_processing(_name(pdb or {})), 10) from None
            raise

    async def _budget_of(self, pod: Obj) -> Obj | None:
        """The one budget guarding the pod (None for none); 500 for several."""
        namespace = pod["metadata"].get("namespace", "")
        listed = await self.store.list(self.pdbs, namespace, ListOptions())
        labels = pod["metadata"].get("labels") or {}
        found = [pdb for pdb in listed["items"] if _selects(pdb, labels)]
        if len(found) > 1:
            raise errors.ApiError(500, "", MULTIPLE_PDBS)
        return found[0] if found else None

    async def _spend(self, pdb: Obj, pod_name: str, dry_run: bool) -> None:
        """``checkAndDecrement``, with a fresh read of the budget after each conflict."""
        namespace, name = pdb["metadata"].get("namespace", ""), _name(pdb)
        for attempt in range(RETRY_STEPS):
            if attempt:
                await _pause()
                pdb = await self.store.get(self.pdbs, namespace, name)
            spent = check_and_decrement(pdb, pod_name, objects.now())
            if dry_run:
                return
            try:
                await self.store.update(self.pdbs, namespace, name, spent, WriteOptions(), "status")
            except errors.ApiError as exc:
                if exc.code != 409 or attempt == RETRY_STEPS - 1:
                    raise
                continue
            return

    async def _mark_and_delete(self, namespace: str, name: str, options: Options) -> None:
        """``addConditionAndDeletePod``: the DisruptionTarget condition, then the delete."""
        if not options.dry_run:
            marked = await self.store.guaranteed_update(
                self.pods, namespace, name, _disruption_target(options), WriteOptions(), "status"
            )
            if options.resource_version is not None:
                options = replace(options, resource_version=marked["metadata"]["resourceVersion"])
        await self.store.delete(self.pods, namespace, name, options.delete_options())


# -- the rules ------------------------------------------------------------------------------------


def can_ignore_pdb(pod: Obj) -> bool:
    """A pod no budget counts as healthy: terminal, Pending or terminating."""
    phase = (pod.get("status") or {}).get("phase")
    return phase in ("Succeeded", "Failed", "Pending") or bool(pod["metadata"].get("deletionTimestamp"))


def should_enforce_resource_version(pod: Obj) -> bool:
    """Whether the delete must race no change of the pod (it could become Ready)."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not pod["metadata"].get("deletionTimestamp")


def is_pod_ready(pod: Obj) -> bool:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if isinstance(condition, dict) and condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


def unhealthy_may_go(pod: Obj, pdb: Obj) -> bool:
    """Whether an unready pod is evicted without spending its budget."""
    if is_pod_ready(pod):
        return False
    if (pdb.get("spec") or {}).get("unhealthyPodEvictionPolicy") == "AlwaysAllow":
        return True
    status = pdb.get("status") or {}
    desired = int(status.get("desiredHealthy") or 0)
    return int(status.get("currentHealthy") or 0) >= desired > 0


def check_and_decrement(pdb: Obj, pod_name: str, now: str) -> Obj:
    """The budget with one disruption spent on ``pod_name``; an ``ApiError`` when it has none."""
    meta = pdb["metadata"]
    status = pdb.get("status") or {}
    name = _name(pdb)
    if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        raise too_many_requests(still_processing(name), 10)
    allowed = int(status.get("disruptionsAllowed") or 0)
    if allowed < 0:
        raise _forbidden(name, "pdb disruptions allowed is negative")
    if len(status.get("disruptedPods") or {}) > MAX_DISRUPTED_POD_SIZE:
        raise _forbidden(
            name, "DisruptedPods map too big - too many evictions not confirmed by PDB controller"
        )
    if allowed == 0:
        needs = (
            f"The disruption budget {name} needs {int(status.get('desiredHealthy') or 0)} healthy pods "
            f"and has {int(status.get('currentHealthy') or 0)} currently"
        )
        raise too_many_requests(needs, 0)
    spent = copy.deepcopy(pdb)
    spent.setdefault("apiVersion", "policy/v1")
    spent.setdefault("kind", "PodDisruptionBudget")
    new_status = spent.setdefault("status", {})
    new_status["disruptionsAllowed"] = allowed - 1
    if allowed - 1 == 0:
        _insufficient_pods(new_status, now)
    new_status["disruptedPods"] = {**(new_status.get("disruptedPods") or {}), pod_name: now}
    return spent


def too_many_requests(cause: str, retry_after: int) -> errors.ApiError:
    details: dict[str, Any] = {"causes": [{"reason": "DisruptionBudget", "message": cause}]}
    headers: dict[str, str] = {}
    if retry_after > 0:
        details["retryAfterSeconds"] = retry_after
        headers["Retry-After"] = str(retry_after)
    return errors.ApiError(429, "TooManyRequests", TOO_MANY, details, headers)


def still_processing(name: str) -> str:
    return f"The disruption budget {name} is still being processed by the server."


def _insufficient_pods(status: Obj, now: str) -> None:
    """``UpdateDisruptionAllowedCondition`` once no disruption is left: False, InsufficientPods."""
    conditions = [c for c in status.get("conditions") or [] if isinstance(c, dict)]
    fresh: Obj = {
        "type": "DisruptionAllowed",
        "status": "False",
        "observedGeneration": int(status.get("observedGeneration") or 0),
        "lastTransitionTime": now,
        "reason": "InsufficientPods",
        "message": "",
    }
    for index, existing in enumerate(conditions):
        if existing.get("type") == "DisruptionAllowed":
            if existing.get("status") == "False" and existing.get("lastTransitionTime"):
                fresh["lastTransitionTime"] = existing["lastTransitionTime"]
            conditions[index] = fresh
            break
    else:
        conditions.append(fresh)
    status["conditions"] = conditions


def _disruption_target(options: Options) -> Callable[[Obj], Obj]:
    """The pod as read, its preconditions checked, with ``DisruptionTarget=True``."""

    def change(pod: Obj) -> Obj:
        meta = pod["metadata"]
        name = str(meta.get("name") or "")
        if options.uid and options.uid != meta.get("uid"):
            raise errors.conflict(
                POD_GROUP_RESOURCE,
                name,
                f"the UID in the precondition ({options.uid}) does not match the UID in record "
                f"({meta.get('uid')}). The object might have been deleted and then recreated",
            )
        if options.resource_version and options.resource_version != meta.get("resourceVersion"):
            raise errors.conflict(
                POD_GROUP_RESOURCE,
                name,
                f"the ResourceVersion in the precondition ({options.resource_version}) does not match "
                f"the ResourceVersion in record ({meta.get('resourceVersion')}). "
                "The object might have been modified",
            )
        status = pod.setdefault("status", {})
        status["conditions"] = _with_disruption_target(list(status.get("conditions") or []), objects.now())
        return pod

    return change


def _with_disruption_target(conditions: list[Any], now: str) -> list[Any]:
    """``UpdatePodCondition``: the transition time is kept when the status does not change."""
    fresh: Obj = {
        "type": "DisruptionTarget",
        "status": "True",
        "lastProbeTime": None,
        "lastTransitionTime": now,
        "reason": "EvictionByEvictionAPI",
        "message": "Eviction API: evicting",
    }
    for index, condition in enumerate(conditions):
        if isinstance(condition, dict) and condition.get("type") == "DisruptionTarget":
            if condition.get("status") == "True" and condition.get("lastTransitionTime"):
                fresh["lastTransitionTime"] = condition["lastTransitionTime"]
                fresh["lastProbeTime"] = condition.get("lastProbeTime")
            conditions[index] = fresh
            return conditions
    return [*conditions, fresh]


def _selects(pdb: Obj, labels: dict[str, str]) -> bool:
    try:
        selector = from_label_selector_object((pdb.get("spec") or {}).get("selector"))
    except SelectorError:
        return False  # an invalid selector matches no pod
    return selector.matches(labels)


def _forbidden(name: str, why: str) -> errors.ApiError:
    return errors.ApiError(
        403,
        "Forbidden",
        f'poddisruptionbudget.policy "{name}" is forbidden: {why}',
        {"name": name, "group": "policy", "kind": "poddisruptionbudget"},
    )


def _name(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


async def _pause() -> None:
    await asyncio.sleep(RETRY_DELAY * random.uniform(1.0, 1.1))


def _options(raw: Any, request_dry_run: list[str]) -> Options:
    """``propagateDryRun`` and the delete options the eviction carries."""
    if raw is None:
        return Options(dry_run=bool(request_dry_run))
    if not isinstance(raw, dict):
        raise errors.bad_request("deleteOptions: expected an object")
    body_dry_run = raw.get("dryRun") or []
    if not isinstance(body_dry_run, list) or any(v != "All" for v in body_dry_run):
        raise errors.bad_request(
            f'deleteOptions.dryRun: Unsupported value: "{body_dry_run}": supported values: "All"'
        )
    if body_dry_run and request_dry_run and body_dry_run != request_dry_run:
        raise errors.internal(
            f"Non-matching dry-run options in request and content: [{' '.join(request_dry_run)}] and "
            f"[{' '.join(body_dry_run)}]"
        )
    grace = raw.get("gracePeriodSeconds")
    if grace is not None and (isinstance(grace, bool) or not isinstance(grace, int)):
        raise errors.bad_request("deleteOptions.gracePeriodSeconds: expected an integer")
    policy = raw.get("propagationPolicy") or ""
    if policy and policy not in ("Orphan", "Background", "Foreground"):
        raise errors.bad_request(f'propagationPolicy: Unsupported value: "{policy}"')
    if not policy and raw.get("orphanDependents") is True:
        policy = "Orphan"
    pre = raw.get("preconditions") or {}
    if not isinstance(pre, dict):
        raise errors.bad_request("deleteOptions.preconditions: expected an object")
    version = pre.get("resourceVersion")
    return Options(
        dry_run=bool(body_dry_run or request_dry_run),
        grace_period_seconds=grace,
        propagation_policy=str(policy),
        uid=str(pre.get("uid") or ""),
        resource_version=None if version is None else str(version),
    )


async def _eviction_body(request: web.Request, namespace: str) -> Obj:
    return await read_subresource_body(request, namespace, "Eviction", EVICTION_VERSIONS)


def _dry_run(request: web.Request) -> list[str]:
    dry = request.query.getall("dryRun", [])
    for value in dry:
        if value != "All":
            raise errors.bad_request(f'dryRun: Unsupported value: "{value}": supported values: "All"')
    return list(dry)
