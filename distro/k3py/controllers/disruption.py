"""The disruption controller: keeps every PodDisruptionBudget's status true to its pods.

As kube-controller-manager's ``disruption`` controller, for one budget:

- the pods are those of its namespace its selector matches (``{}`` matches all, none none);
- ``expectedPods`` is the number of pods for an integer ``minAvailable``, else the summed scale
  of the pods' controllers (ReplicationController, Deployment through its ReplicaSet, a
  ReplicaSet of no Deployment, StatefulSet, else any resource's ``scale`` subresource);
- ``desiredHealthy`` is ``minAvailable`` (a percentage of the expected pods, rounded up) or
  ``expectedPods - maxUnavailable``;
- ``currentHealthy`` counts the Ready pods that are neither terminating nor recorded in
  ``disruptedPods`` by an eviction less than :data:`DELETION_TIMEOUT` ago; older entries and
  entries of pods that are gone or terminating are dropped, and the budget is looked at again
  when the next entry expires;
- ``disruptionsAllowed`` is ``currentHealthy - desiredHealthy`` (never below 0, and 0 while no
  pod is expected) and the ``DisruptionAllowed`` condition says ``SufficientPods`` or
  ``InsufficientPods``. A sync that fails (other than on a conflict) sets the budget to 0
  allowed disruptions with reason ``SyncFailed``: evictions stop rather than risk too many.

Pods whose ``DisruptionTarget`` condition an eviction set but that were not deleted within
:data:`STALE_POD_DISRUPTION_TIMEOUT` get that condition set back to ``False``.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from k3py.api import objects
from k3py.api.selectors import SelectorError, from_label_selector_object
from k3py.client.events import EventRecorder
from k3py.client.informer import SharedInformers
from k3py.client.rest import ApiStatusError, RestClient
from k3py.controllers.base import Controller, Key, Obj
from k3py.controllers.objects import parse_time, pod_ready
from k3py.controllers.queue import ShutDown, WorkQueue

log = logging.getLogger(__name__)

PDBS = "/apis/policy/v1/poddisruptionbudgets"
DELETION_TIMEOUT = 120.0
"""How long an eviction's entry in ``disruptedPods`` keeps its pod out of ``currentHealthy``."""
STALE_POD_DISRUPTION_TIMEOUT = 120.0
"""How long a pod may keep an eviction's ``DisruptionTarget`` condition without being deleted."""
DISRUPTION_ALLOWED = "DisruptionAllowed"
SUFFICIENT_PODS = "SufficientPods"
INSUFFICIENT_PODS = "InsufficientPods"
SYNC_FAILED = "SyncFailed"
TERMINATION_BY_KUBELET = "TerminationByKubelet"


class DisruptionError(Exception):
    """A budget whose status cannot be computed (bad selector or value, a pod of no known controller)."""


# -- the arithmetic -------------------------------------------------------------------------------


def scaled_value(value: Any, total: int, *, round_up: bool) -> int:
    """``intstr.GetScaledValueFromIntOrPercent``: an int as is, ``"N%"`` of ``total``."""
    if isinstance(value, bool):
        raise DisruptionError(f"invalid value for IntOrString: invalid type: {value!r}")
    if isinstance(value, int):
        return value
    if not isinstance(value, str):
        raise DisruptionError("invalid value for IntOrString: invalid type: neither int nor percentage")
    if not value.endswith("%"):
        raise DisruptionError(
            f'invalid value for IntOrString: invalid type: string is not a percentage: "{value}"'
        )
    try:
        percent = int(value[:-1])
    except ValueError:
        raise DisruptionError(f'invalid value "{value}": {value[:-1]!r} is not an integer') from None
    scaled = percent * total / 100
    return math.ceil(scaled) if round_up else math.floor(scaled)


def uses_controller_scale(spec: Obj) -> bool:
    """Whether the expected count comes from the pods' controllers (not just the pods)."""
    if spec.get("maxUnavailable") is not None:
        return True
    min_available = spec.get("minAvailable")
    return min_available is not None and not isinstance(min_available, int)


def desired_healthy(spec: Obj, expected: int) -> int:
    """How many pods the budget wants healthy, given how many are expected."""
    if spec.get("maxUnavailable") is not None:
        return max(0, expected - scaled_value(spec["maxUnavailable"], expected, round_up=True))
    if spec.get("minAvailable") is not None:
        return scaled_value(spec["minAvailable"], expected, round_up=True)
    return 0


def build_disrupted_pods(
    pods: Iterable[Obj], recorded: Mapping[str, str], now: float
) -> tuple[dict[str, str], float | None]:
    """The ``disruptedPods`` entries still in force, and when the first of them expires."""
    kept: dict[str, str] = {}
    recheck: float | None = None
    for pod in pods:
        meta = pod.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            continue
        stamp = recorded.get(str(meta.get("name")))
        if stamp is None:
            continue
        since = parse_time(stamp)
        if since is None:
            continue
        expires = since + DELETION_TIMEOUT
        if expires < now:
            log.info(
                "pod %s/%s was expected to be deleted but it was not", meta.get("namespace"), meta.get("name")
            )
            continue
        kept[str(meta.get("name"))] = stamp
        recheck = expires if recheck is None else min(recheck, expires)
    return kept, recheck


def count_healthy(pods: Iterable[Obj], disrupted: Mapping[str, str], now: float) -> int:
    healthy = 0
    for pod in pods:
        meta = pod.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            continue
        since = parse_time(disrupted.get(str(meta.get("name")), ""))
        if since is not None and since + DELETION_TIMEOUT > now:
            continue
        if pod_ready(pod):
            healthy += 1
    return healthy


def set_condition(status: Obj, condition_status: str, reason: str, message: str, now: str) -> None:
    """``meta.SetStatusCondition`` of ``DisruptionAllowed``: the transition time moves only
    when the status does."""
    conditions: list[Obj] = [c for c in status.get("conditions") or [] if isinstance(c, dict)]
    fresh: Obj = {
        "type": DISRUPTION_ALLOWED,
        "status": condition_status,
        "observedGeneration": int(status.get("observedGeneration") or 0),
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    }
    for index, existing in enumerate(conditions):
        if existing.get("type") == DISRUPTION_ALLOWED:
            if existing.get("status") == condition_status and existing.get("lastTransitionTime"):
                fresh["lastTransitionTime"] = existing["lastTransitionTime"]
            conditions[index] = fresh
            break
    else:
        conditions.append(fresh)
    status["conditions"] = conditions


def update_disruption_allowed_condition(status: Obj, now: str) -> None:
    """``pdbhelper.UpdateDisruptionAllowedCondition``."""
    if int(status.get("disruptionsAllowed") or 0) > 0:
        set_condition(status, "True", SUFFICIENT_PODS, "", now)
    else:
        set_condition(status, "False", INSUFFICIENT_PODS, "", now)


def conditions_up_to_date(pdb: Obj) -> bool:
    """``pdbhelper.ConditionsAreUpToDate``."""
    status = pdb.get("status") or {}
    found = [
        c
        for c in status.get("conditions") or []
        if isinstance(c, dict) and c.get("type") == DISRUPTION_ALLOWED
    ]
    if not found or int(status.get("observedGeneration") or 0) != _generation(pdb):
        return False
    if int(status.get("disruptionsAllowed") or 0) > 0:
        return found[0].get("status") == "True" and found[0].get("reason") == SUFFICIENT_PODS
    return found[0].get("status") == "False" and found[0].get("reason") == INSUFFICIENT_PODS


@dataclass(frozen=True)
class Counts:
    current_healthy: int
    desired_healthy: int
    expected_pods: int
    disrupted_pods: dict[str, str]


def new_status(pdb: Obj, counts: Counts, now: str) -> Obj | None:
    """The budget's next status, or None when its status already says so."""
    allowed = counts.current_healthy - counts.desired_healthy
    if counts.expected_pods <= 0 or allowed <= 0:
        allowed = 0
    status = pdb.get("status") or {}
    if (
        int(status.get("currentHealthy") or 0) == counts.current_healthy
        and int(status.get("desiredHealthy") or 0) == counts.desired_healthy
        and int(status.get("expectedPods") or 0) == counts.expected_pods
        and int(status.get("disruptionsAllowed") or 0) == allowed
        and dict(status.get("disruptedPods") or {}) == counts.disrupted_pods
        and conditions_up_to_date(pdb)
    ):
        return None
    fresh: Obj = {"observedGeneration": _generation(pdb)}
    if counts.disrupted_pods:
        fresh["disruptedPods"] = dict(counts.disrupted_pods)
    fresh.update(
        disruptionsAllowed=allowed,
        currentHealthy=counts.current_healthy,
        desiredHealthy=counts.desired_healthy,
        expectedPods=counts.expected_pods,
    )
    if status.get("conditions"):
        fresh["conditions"] = copy.deepcopy(status["conditions"])
    update_disruption_allowed_condition(fresh, now)
    return fresh


def failed_status(pdb: Obj, error: str, now: str) -> Obj:
    """``failSafe``: no disruption allowed, ``DisruptionAllowed=False`` for ``SyncFailed``."""
    status = copy.deepcopy(pdb.get("status") or {})
    status["disruptionsAllowed"] = 0
    set_condition(status, "False", SYNC_FAILED, error, now)
    return status


def pod_selected(pdb: Obj, pod: Obj) -> bool:
    meta = pdb.get("metadata") or {}
    pod_meta = pod.get("metadata") or {}
    if meta.get("namespace") != pod_meta.get("namespace"):
        return False
    try:
        selector = from_label_selector_object((pdb.get("spec") or {}).get("selector"))
    except SelectorError:
        return False
    return selector.matches(pod_meta.get("labels") or {})


def stale_disruption_wait(pod: Obj, now: float) -> float | None:
    """Seconds until an eviction's ``DisruptionTarget`` condition on a live pod is stale (None:
    the pod has no such condition to clean)."""
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    if meta.get("deletionTimestamp") or status.get("phase") in ("Succeeded", "Failed"):
        return None
    for condition in status.get("conditions") or []:
        if isinstance(condition, dict) and condition.get("type") == "DisruptionTarget":
            if condition.get("status") != "True" or condition.get("reason") == TERMINATION_BY_KUBELET:
                return None
            since = parse_time(condition.get("lastTransitionTime")) or now
            return max(0.0, STALE_POD_DISRUPTION_TIMEOUT - (now - since))
    return None


def controller_ref(obj: Obj) -> Obj | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller") is True:
            return ref
    return None


def _generation(obj: Obj) -> int:
    return int((obj.get("metadata") or {}).get("generation") or 0)


def _group(api_version: str) -> str:
    return api_version.split("/", 1)[0] if "/" in api_version else ""


# -- the controller -------------------------------------------------------------------------------


class DisruptionController(Controller):
    name = "disruption"
    identity = "disruption-controller"

    def __init__(self, api: RestClient, informers: SharedInformers | None = None) -> None:
        super().__init__(api, informers)
        self.events = EventRecorder(
            api, "controllermanager", kind="PodDisruptionBudget", api_version="policy/v1"
        )
        self.pdbs = self.informer(PDBS)
        self.pods = self.informer("/api/v1/pods")
        self.rcs = self.informer("/api/v1/replicationcontrollers")
        self.replicasets = self.informer("/apis/apps/v1/replicasets")
        self.deployments = self.informer("/apis/apps/v1/deployments")
        self.statefulsets = self.informer("/apis/apps/v1/statefulsets")
        self.stale_pods: WorkQueue[Key] = WorkQueue()
        self._plurals: dict[tuple[str, str], str] = {}
        self.on(self.pdbs, lambda old, new: self.enqueue(new or old))
        self.on(self.pods, self._pod_changed)

    async def run(self) -> None:
        try:
            await asyncio.gather(super().run(), self._clean_stale_pods())
        finally:
            await self.stale_pods.shut_down()

    # -- handlers ---------------------------------------------------------------------------------

    def _pod_changed(self, old: Obj | None, new: Obj | None) -> None:
        pod = new or old
        if pod is None:
            return
        for pdb in self.pdbs.items():
            if pod_selected(pdb, pod):
                self.enqueue(pdb)
        if new is not None:
            wait = stale_disruption_wait(new, time.time())
            if wait is not None:
                meta = new["metadata"]
                self.stale_pods.add_after((str(meta.get("namespace") or ""), str(meta["name"])), wait)

    # -- budgets ----------------------------------------------------------------------------------

    async def sync(self, key: Key) -> None:
        pdb = self.pdbs.get(*key)
        if pdb is None:
            return
        try:
            await self._try_sync(pdb)
        except ApiStatusError as exc:
            if exc.code == 409:
                raise
            await self._fail_safe(pdb, str(exc))
        except DisruptionError as exc:
            log.info("%s: cannot sync PodDisruptionBudget %s/%s: %s", self.name, key[0], key[1], exc)
            await self._fail_safe(pdb, str(exc))

    async def _try_sync(self, pdb: Obj) -> None:
        namespace, name = pdb["metadata"].get("namespace", ""), pdb["metadata"]["name"]
        pods = self._pods_for(pdb)
        try:
            expected, desired, unmanaged = await self._expected_count(pdb, pods)
        except DisruptionError as exc:
            await self.events.record(
                pdb,
                "Warning",
                "CalculateExpectedPodCountFailed",
                f"Failed to calculate the number of expected pods: {exc}",
            )
            raise
        now = time.time()
        recorded = (pdb.get("status") or {}).get("disruptedPods") or {}
        disrupted, recheck = build_disrupted_pods(pods, recorded, now)
        counts = Counts(count_healthy(pods, disrupted, now), desired, expected, disrupted)
        status = new_status(pdb, counts, objects.now())
        if status is not None:
            if not pods:
                await self.events.record(pdb, "Normal", "NoPods", "No matching pods found")
            if unmanaged:
                await self.events.record(pdb, "Warning", "UnmanagedPods", _unmanaged_message(pdb))
            await self._write_status(pdb, status)
        if recheck is not None:
            self.queue.add_after((namespace, name), max(0.0, recheck - now))

    def _pods_for(self, pdb: Obj) -> list[Obj]:
        namespace = pdb["metadata"].get("namespace", "")
        try:
            selector = from_label_selector_object((pdb.get("spec") or {}).get("selector"))
        except SelectorError as exc:
            raise DisruptionError(str(exc)) from None
        return [
            pod
            for pod in self.pods.in_namespace(namespace)
            if selector.matches((pod.get("metadata") or {}).get("labels") or {})
        ]

    async def _expected_count(self, pdb: Obj, pods: list[Obj]) -> tuple[int, int, list[str]]:
        """``getExpectedPodCount``: (expected pods, desired healthy, unmanaged pods' names)."""
        spec = pdb.get("spec") or {}
        unmanaged: list[str] = []
        if uses_controller_scale(spec):
            scales: dict[str, int] = {}
            for pod in pods:
                ref = controller_ref(pod)
                if ref is None:
                    unmanaged.append(str(pod["metadata"].get("name")))
                    continue
                if str(ref.get("uid")) in scales:
                    continue
                found = await self._controller_scale(ref, pod["metadata"].get("namespace", ""))
                if found is None:
                    raise DisruptionError(f'found no controllers for pod "{pod["metadata"].get("name")}"')
                scales[found[0]] = found[1]
            expected = sum(scales.values())
        else:
            expected = len(pods)
        return expected, desired_healthy(spec, expected), unmanaged

    async def _controller_scale(self, ref: Obj, namespace: str) -> tuple[str, int] | None:
        """The (uid, replicas) of the controller ``ref`` names, as upstream's finders find it."""
        kind, group, uid = ref.get("kind"), _group(str(ref.get("apiVersion") or "")), ref.get("uid")
        name = str(ref.get("name") or "")
        if kind == "ReplicationController" and group == "":
            return _scale_of(self.rcs.get(namespace, name), uid)
        if kind == "ReplicaSet" and group in ("apps", "extensions"):
            rs = self.replicasets.get(namespace, name)
            if rs is None or rs["metadata"].get("uid") != uid:
                return None
            owner = controller_ref(rs)
            if owner is None or owner.get("kind") != "Deployment":
                return _scale_of(rs, uid)
            if _group(str(owner.get("apiVersion") or "")) not in ("apps", "extensions"):
                return None
            return _scale_of(self.deployments.get(namespace, str(owner.get("name"))), owner.get("uid"))
        if kind == "StatefulSet" and group == "apps":
            return _scale_of(self.statefulsets.get(namespace, name), uid)
        return await self._scale_subresource(ref, namespace)

    async def _scale_subresource(self, ref: Obj, namespace: str) -> tuple[str, int] | None:
        api_version, kind = str(ref.get("apiVersion") or ""), str(ref.get("kind") or "")
        plural = await self._plural(api_version, kind)
        base = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
        try:
            scale = await self.api.get(f"{base}/namespaces/{namespace}/{plural}/{ref.get('name')}/scale")
        except ApiStatusError as exc:
            if exc.code == 404:
                return None
            raise
        if (scale.get("metadata") or {}).get("uid") != ref.get("uid"):
            return None
        return str(ref.get("uid")), int((scale.get("spec") or {}).get("replicas") or 0)

    async def _plural(self, api_version: str, kind: str) -> str:
        """The resource serving ``kind`` in ``api_version``, which must have a ``scale`` subresource."""
        known = self._plurals.get((api_version, kind))
        if known is not None:
            return known
        path = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
        try:
            listed = await self.api.get(path)
        except ApiStatusError as exc:
            if exc.code == 404:
                raise DisruptionError(f'no matches for kind "{kind}" in version "{api_version}"') from None
            raise
        resources = [r for r in listed.get("resources") or [] if isinstance(r, dict)]
        plural = next(
            (r["name"] for r in resources if r.get("kind") == kind and "/" not in r.get("name", "")), None
        )
        if plural is None:
            raise DisruptionError(f'no matches for kind "{kind}" in version "{api_version}"')
        if not any(r.get("name") == f"{plural}/scale" and r.get("kind") == "Scale" for r in resources):
            resource = f"{plural}.{_group(api_version)}" if _group(api_version) else str(plural)
            raise DisruptionError(f"{resource} does not implement the scale subresource")
        self._plurals[(api_version, kind)] = plural
        return str(plural)

    async def _write_status(self, pdb: Obj, status: Obj) -> None:
        meta = pdb["metadata"]
        body = {**copy.deepcopy(pdb), "status": status}
        body.setdefault("apiVersion", "policy/v1")
        body.setdefault("kind", "PodDisruptionBudget")
        await self.api.update(
            f"/apis/policy/v1/namespaces/{meta.get('namespace')}/poddisruptionbudgets/{meta['name']}/status",
            body,
        )

    async def _fail_safe(self, pdb: Obj, error: str) -> None:
        await self._write_status(pdb, failed_status(pdb, error, objects.now()))

    # -- stale DisruptionTarget conditions ----------------------------------------------------------

    async def _clean_stale_pods(self) -> None:
        while True:
            try:
                key = await self.stale_pods.get()
            except ShutDown:
                return
            try:
                await self._clean_stale_pod(key)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "%s: clearing DisruptionTarget of pod %s/%s failed: %s", self.name, key[0], key[1], exc
                )
                self.stale_pods.add_rate_limited(key)
            else:
                self.stale_pods.forget(key)
            finally:
                self.stale_pods.done(key)

    async def _clean_stale_pod(self, key: Key) -> None:
        pod = self.pods.get(*key)
        if pod is None:
            return
        wait = stale_disruption_wait(pod, time.time())
        if wait is None:
            return
        if wait > 0:
            self.stale_pods.add_after(key, wait)
            return
        fresh = copy.deepcopy(pod)
        for condition in fresh["status"]["conditions"]:
            if isinstance(condition, dict) and condition.get("type") == "DisruptionTarget":
                condition.clear()
                condition.update(
                    type="DisruptionTarget",
                    status="False",
                    lastProbeTime=None,
                    lastTransitionTime=objects.now(),
                )
        fresh.setdefault("apiVersion", "v1")
        fresh.setdefault("kind", "Pod")
        await self.api.update(f"/api/v1/namespaces/{key[0]}/pods/{key[1]}/status", fresh)
        log.info(
            "%s: reset stale DisruptionTarget condition of pod %s/%s to False", self.name, key[0], key[1]
        )


def _scale_of(owner: Obj | None, uid: Any) -> tuple[str, int] | None:
    if owner is None or owner["metadata"].get("uid") != uid:
        return None
    replicas = (owner.get("spec") or {}).get("replicas")
    return str(uid), int(1 if replicas is None else replicas)


def _unmanaged_message(pdb: Obj) -> str:
    selector = (pdb.get("spec") or {}).get("selector")
    return (
        f"Pods selected by this PodDisruptionBudget (selector: {selector}) were found to be unmanaged. "
        "As a result, the status of the PDB cannot be calculated correctly, which may result in "
        'undefined behavior. To account for these pods please set ".spec.minAvailable" field of the '
        "PDB to an integer value."
    )
