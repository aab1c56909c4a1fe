"""Deployments: roll a pod template out through ReplicaSets, as upstream's deployment controller.

Each template revision lives in a ReplicaSet named ``<deployment>-<pod-template-hash>``; the hash
label is added to its selector, template and labels so that ReplicaSets never share pods. A
sync, for one Deployment:

1. claims its ReplicaSets (adopting orphans its selector matches, releasing those it no longer
   selects), tells the *new* one (template equal to the Deployment's, ignoring the hash) from
   the *old* ones, and keeps the ``deployment.kubernetes.io/revision`` annotations current
   (a rolled-back-to ReplicaSet gets the next revision and remembers its former ones);
2. when paused, or when ``spec.replicas`` changed (the ``desired-replicas`` annotation of an
   active ReplicaSet disagrees), only scales: the single active ReplicaSet takes all, or the
   replicas are spread proportionally by the ``max-replicas`` annotation during a rollout;
3. otherwise rolls out: *RollingUpdate* grows the new ReplicaSet up to ``replicas + maxSurge``
   pods and shrinks old ones while ``replicas - maxUnavailable`` stay available; *Recreate*
   scales old ones to zero, waits for their pods to go, then scales up the new one;
4. writes the status and its Available/Progressing/ReplicaFailure conditions (a rollout with
   no progress for ``progressDeadlineSeconds`` becomes ``ProgressDeadlineExceeded``) and, once
   complete, deletes old empty ReplicaSets beyond ``revisionHistoryLimit``.

Rollback is the client's job (``kubectl rollout undo`` copies an old ReplicaSet's template back).

The pod-template-hash is upstream's form -- FNV-1a (32 bit) of the template, plus the collision
count, written in decimal and encoded with ``rand.SafeEncodeString`` -- but the bytes hashed are
the template's canonical JSON, not Go's ``spew`` dump of its struct, so the value differs from
the one kube-controller-manager would compute for the same template.
"""

from __future__ import annotations

import copy
import functools
import logging
import math
import time
from collections.abc import Iterable
from typing import Any

import orjson

from k3py.api import objects
from k3py.api.selectors import SelectorError, from_label_selector_object
from k3py.client.events import EventRecorder
from k3py.client.informer import SharedInformers
from k3py.client.rest import ApiStatusError, RestClient
from k3py.controllers.base import Controller, Key, Obj
from k3py.controllers.claims import index_by_controller, pods_of
from k3py.controllers.objects import (
    controller_ref,
    deleting,
    labels_of,
    meta_of,
    owner_reference,
    parse_time,
    uid_of,
)

log = logging.getLogger(__name__)

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
ROLLBACK_TO = "deprecated.deployment.rollback.to"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
SKIPPED_ANNOTATIONS = frozenset(
    {LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS, ROLLBACK_TO}
)
"""Deployment annotations never copied to its ReplicaSets (``annotationsToSkip``)."""
MAX_REVISION_HISTORY_CHARS = 2000
MAX_INT32 = 2**31 - 1
RS_PATH = "/apis/apps/v1/namespaces/{}/replicasets"
DEPLOY_PATH = "/apis/apps/v1/namespaces/{}/deployments"
CONFLICT_RETRY = 0.1
"""Seconds before a sync that lost a write race runs again."""
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
"""``rand.SafeEncodeString``'s alphabet: no vowels (no words), no look-alike characters."""


# -- the pod-template-hash ----------------------------------------------------------------------


def fnv32a(data: bytes) -> int:
    value = 0x811C9DC5
    for byte in data:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def safe_encode(text: str) -> str:
    """``rand.SafeEncodeString``: each byte mapped onto the safe alphabet."""
    return "".join(SAFE_ALPHABET[b % len(SAFE_ALPHABET)] for b in text.encode())


def compute_hash(template: Obj, collision_count: int | None) -> str:
    """The ``pod-template-hash`` of a template (``controller.ComputeHash``)."""
    data = orjson.dumps(template, option=orjson.OPT_SORT_KEYS)
    if collision_count is not None:
        data += (collision_count & 0xFFFFFFFF).to_bytes(4, "little") + bytes(4)
    return safe_encode(str(fnv32a(data)))


def equal_ignore_hash(a: Obj, b: Obj) -> bool:
    """Templates equal once the ``pod-template-hash`` label is removed from both."""

    def strip(template: Obj) -> Obj:
        copied = copy.deepcopy(template)
        template_meta = copied.setdefault("metadata", {})
        labels = template_meta.get("labels") or {}
        labels.pop(HASH_LABEL, None)
        if labels:
            template_meta["labels"] = labels
        else:
            template_meta.pop("labels", None)
        if not template_meta:
            copied.pop("metadata")
        return copied

    return strip(a) == strip(b)


# -- rolling-update arithmetic ------------------------------------------------------------------


def spec_replicas(obj: Obj) -> int:
    value = (obj.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def scaled_value(value: int | str | None, total: int, round_up: bool) -> int:
    """``intstr.GetScaledValueFromIntOrPercent``: an int, or a percent of ``total`` rounded."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    if not value.endswith("%"):
        raise ValueError(
            f"invalid value for IntOrString: invalid type: string is not a percentage: {value!r}"
        )
    try:
        percent = int(value[:-1])
    except ValueError:
        raise ValueError(f"invalid value {value!r}: not a valid percentage") from None
    scaled = percent * total / 100
    return math.ceil(scaled) if round_up else math.floor(scaled)


def is_rolling_update(deployment: Obj) -> bool:
    strategy = ((deployment.get("spec") or {}).get("strategy") or {}).get("type", "RollingUpdate")
    return str(strategy) == "RollingUpdate"


def resolve_fenceposts(deployment: Obj) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) in pods; both zero becomes an unavailability of one."""
    rolling = ((deployment.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}
    desired = spec_replicas(deployment)
    surge = scaled_value(rolling.get("maxSurge", "25%"), desired, True)
    unavailable = scaled_value(rolling.get("maxUnavailable", "25%"), desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_surge(deployment: Obj) -> int:
    return resolve_fenceposts(deployment)[0] if is_rolling_update(deployment) else 0


def max_unavailable(deployment: Obj) -> int:
    desired = spec_replicas(deployment)
    if not is_rolling_update(deployment) or desired == 0:
        return 0
    return min(resolve_fenceposts(deployment)[1], desired)


def replica_sum(sets: Iterable[Obj | None], field: str = "") -> int:
    """Sum of ``spec.replicas`` (no ``field``) or of a status field."""
    total = 0
    for rs in sets:
        if rs is not None:
            total += spec_replicas(rs) if not field else int((rs.get("status") or {}).get(field) or 0)
    return total


def new_rs_new_replicas(deployment: Obj, all_sets: list[Obj], new: Obj) -> int:
    """How big the new ReplicaSet may be now (``NewRSNewReplicas``)."""
    desired = spec_replicas(deployment)
    if not is_rolling_update(deployment):
        return desired
    current = replica_sum(all_sets)
    max_total = desired + max_surge(deployment)
    if current >= max_total:
        return spec_replicas(new)
    return spec_replicas(new) + min(max_total - current, desired - spec_replicas(new))


def annotation_int(rs: Obj, name: str) -> int | None:
    try:
        return int((meta_of(rs).get("annotations") or {})[name])
    except (KeyError, ValueError):
        return None


def revision_of(rs: Obj) -> int:
    return annotation_int(rs, REVISION) or 0


def proportion(rs: Obj, deployment: Obj, to_add: int, added: int) -> int:
    """The share of ``to_add`` replicas this ReplicaSet takes (``GetProportion``)."""
    if spec_replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    desired = spec_replicas(deployment)
    if desired == 0:
        fraction = -spec_replicas(rs)
    else:
        allowed_total = desired + max_surge(deployment)
        annotated = annotation_int(rs, MAX_REPLICAS)
        if annotated is None:
            annotated = int((deployment.get("status") or {}).get("replicas") or 0)
        size = spec_replicas(rs) * allowed_total / annotated if annotated else 0.0
        fraction = math.floor(size + 0.5) - spec_replicas(rs)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def set_replicas_annotations(rs: Obj, desired: int, maximum: int) -> bool:
    annotations = meta_of(rs).setdefault("annotations", {})
    wanted = {DESIRED_REPLICAS: str(desired), MAX_REPLICAS: str(maximum)}
    changed = any(annotations.get(k) != v for k, v in wanted.items())
    annotations.update(wanted)
    return changed


def set_new_rs_annotations(deployment: Obj, rs: Obj, new_revision: int, exists: bool) -> bool:
    """Copy the Deployment's annotations and bump the revision (``SetNewReplicaSetAnnotations``)."""
    annotations: dict[str, str] = meta_of(rs).setdefault("annotations", {})
    changed = False
    for name, value in (meta_of(deployment).get("annotations") or {}).items():
        if name not in SKIPPED_ANNOTATIONS and annotations.get(name) != value:
            annotations[name] = value
            changed = True
    old_text = annotations.get(REVISION, "")
    try:
        old = int(old_text) if old_text else 0
    except ValueError:
        return False
    if old < new_revision:
        annotations[REVISION] = str(new_revision)
        changed = True
        if old_text:
            _remember_revision(annotations, old_text)
    if not exists:
        desired = spec_replicas(deployment)
        changed = set_replicas_annotations(rs, desired, desired + max_surge(deployment)) or changed
    return changed


def _remember_revision(annotations: dict[str, str], old: str) -> None:
    history = annotations.get(REVISION_HISTORY, "")
    if not history:
        annotations[REVISION_HISTORY] = old
        return
    revisions = history.split(",")
    total, start = len(history) + len(old) + 1, 0
    while total > MAX_REVISION_HISTORY_CHARS and start < len(revisions):
        total -= len(revisions[start]) + 1
        start += 1
    if total <= MAX_REVISION_HISTORY_CHARS:
        annotations[REVISION_HISTORY] = ",".join([*revisions[start:], old])


# -- ordering -----------------------------------------------------------------------------------


def _created(rs: Obj) -> tuple[float, str]:
    return parse_time(meta_of(rs).get("creationTimestamp")) or 0.0, str(meta_of(rs).get("name") or "")


def by_creation(sets: Iterable[Obj]) -> list[Obj]:
    """Oldest first, ties by name (``ReplicaSetsByCreationTimestamp``)."""
    return sorted(sets, key=_created)


def by_size(sets: Iterable[Obj], newer_first: bool) -> list[Obj]:
    """Largest first; ties newest first (scaling up) or oldest first (scaling down)."""

    def compare(a: Obj, b: Obj) -> int:
        if spec_replicas(a) != spec_replicas(b):
            return spec_replicas(b) - spec_replicas(a)
        ca, cb = _created(a), _created(b)
        if ca == cb:
            return 0
        return (-1 if ca > cb else 1) if newer_first else (-1 if ca < cb else 1)

    return sorted(sets, key=functools.cmp_to_key(compare))


def active(sets: Iterable[Obj | None]) -> list[Obj]:
    return [rs for rs in sets if rs is not None and spec_replicas(rs) > 0]


def find_active_or_latest(new: Obj | None, olds: list[Obj]) -> Obj | None:
    if new is None and not olds:
        return None
    newest_first = list(reversed(by_creation(olds)))
    live = active([*newest_first, new])
    if not live:
        return new if new is not None else newest_first[0]
    return live[0] if len(live) == 1 else None


# -- status and conditions ----------------------------------------------------------------------


def condition(status: Obj, kind: str) -> Obj | None:
    for found in status.get("conditions") or []:
        if found.get("type") == kind:
            result: Obj = found
            return result
    return None


def new_condition(kind: str, status: str, reason: str, message: str) -> Obj:
    now = objects.now()
    return {
        "type": kind,
        "status": status,
        "lastUpdateTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    }


def set_condition(status: Obj, wanted: Obj) -> None:
    """``SetDeploymentCondition``: same status and reason is no change; same status keeps the time."""
    current = condition(status, wanted["type"])
    if (
        current is not None
        and current.get("status") == wanted["status"]
        and current.get("reason") == wanted["reason"]
    ):
        return
    if current is not None and current.get("status") == wanted["status"]:
        wanted = {**wanted, "lastTransitionTime": current.get("lastTransitionTime")}
    remove_condition(status, wanted["type"])
    status.setdefault("conditions", []).append(wanted)


def remove_condition(status: Obj, kind: str) -> None:
    status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != kind]


def has_progress_deadline(deployment: Obj) -> bool:
    deadline = (deployment.get("spec") or {}).get("progressDeadlineSeconds")
    return deadline is not None and int(deadline) != MAX_INT32


def deployment_complete(deployment: Obj, status: Obj) -> bool:
    desired = spec_replicas(deployment)
    return (
        int(status.get("updatedReplicas") or 0) == desired
        and int(status.get("replicas") or 0) == desired
        and int(status.get("availableReplicas") or 0) == desired
        and int(status.get("observedGeneration") or 0) >= int(meta_of(deployment).get("generation") or 0)
    )


def deployment_progressing(deployment: Obj, new_status: Obj) -> bool:
    old = deployment.get("status") or {}

    def number(status: Obj, name: str) -> int:
        return int(status.get(name) or 0)

    old_olds = number(old, "replicas") - number(old, "updatedReplicas")
    new_olds = number(new_status, "replicas") - number(new_status, "updatedReplicas")
    return (
        number(new_status, "updatedReplicas") > number(old, "updatedReplicas")
        or new_olds < old_olds
        or number(new_status, "readyReplicas") > number(old, "readyReplicas")
        or number(new_status, "availableReplicas") > number(old, "availableReplicas")
    )


def deployment_timed_out(deployment: Obj, new_status: Obj, now: float) -> bool:
    if not has_progress_deadline(deployment):
        return False
    current = condition(new_status, "Progressing")
    if current is None or current.get("reason") == "NewReplicaSetAvailable":
        return False
    if current.get("reason") == "ProgressDeadlineExceeded":
        return True
    since = parse_time(current.get("lastUpdateTime")) or 0.0
    return since + int(deployment["spec"]["progressDeadlineSeconds"]) < now


def calculate_status(deployment: Obj, all_sets: list[Obj | None], new: Obj | None) -> Obj:
    old = deployment.get("status") or {}
    available = replica_sum(all_sets, "availableReplicas")
    status: Obj = {
        "observedGeneration": int(meta_of(deployment).get("generation") or 0),
        "replicas": replica_sum(all_sets, "replicas"),
        "updatedReplicas": replica_sum([new], "replicas"),
        "readyReplicas": replica_sum(all_sets, "readyReplicas"),
        "availableReplicas": available,
        "unavailableReplicas": max(replica_sum(all_sets) - available, 0),
        "conditions": copy.deepcopy(old.get("conditions") or []),
    }
    if old.get("collisionCount") is not None:
        status["collisionCount"] = old["collisionCount"]
    if available >= spec_replicas(deployment) - max_unavailable(deployment):
        wanted = new_condition(
            "Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability."
        )
    else:
        wanted = new_condition(
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        )
    set_condition(status, wanted)
    return status


def same_status(a: Obj, b: Obj) -> bool:
    """Statuses equal, absent numbers counting as zero."""
    names = set(a) | set(b)
    for name in names:
        if name == "conditions":
            if (a.get(name) or []) != (b.get(name) or []):
                return False
        elif name == "collisionCount":
            if a.get(name) != b.get(name):
                return False
        elif int(a.get(name) or 0) != int(b.get(name) or 0):
            return False
    return True


# -- the controller -----------------------------------------------------------------------------


class DeploymentController(Controller):
    name = "deployment-controller"
    identity = "deployment-controller"
    workers = 2

    def __init__(self, api: RestClient, informers: SharedInformers | None = None) -> None:
        super().__init__(api, informers)
        self.deployments = self.informer("/apis/apps/v1/deployments")
        self.replica_sets = self.informer("/apis/apps/v1/replicasets")
        self.pods = index_by_controller(self.informer("/api/v1/pods"))
        self.events = EventRecorder(api, self.name, kind="Deployment", api_version="apps/v1")
        self.on(self.deployments, lambda old, new: self.enqueue(new or old))
        self.on(self.replica_sets, self._on_replica_set)
        self.on(self.pods, self._on_pod)

    # -- change handlers ----------------------------------------------------------------------

    def _on_replica_set(self, old: Obj | None, new: Obj | None) -> None:
        for rs in (old, new):
            if rs is None:
                continue
            ref = controller_ref(rs)
            if ref is not None:
                if ref.get("kind") == "Deployment":
                    self.queue.add((str(meta_of(rs).get("namespace") or ""), str(ref.get("name") or "")))
            elif rs is new and not deleting(rs):
                for deployment in self._selecting(rs):
                    self.enqueue(deployment)

    def _selecting(self, rs: Obj) -> list[Obj]:
        found = []
        for deployment in self.deployments.items():
            if meta_of(deployment).get("namespace") != meta_of(rs).get("namespace"):
                continue
            try:
                selector = from_label_selector_object((deployment.get("spec") or {}).get("selector"))
            except SelectorError:
                continue
            if not selector.empty and selector.matches(labels_of(rs)):
                found.append(deployment)
        return found

    def _on_pod(self, old: Obj | None, new: Obj | None) -> None:
        """A Recreate rollout waits for the old pods to go: look again when one goes."""
        if (new is not None and not deleting(new)) or old is None:
            return
        ref = controller_ref(old)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        rs = self.replica_sets.get(str(meta_of(old).get("namespace") or ""), str(ref.get("name") or ""))
        owner = controller_ref(rs) if rs is not None else None
        if rs is not None and owner is not None and owner.get("kind") == "Deployment":
            self.queue.add((str(meta_of(rs).get("namespace") or ""), str(owner.get("name") or "")))

    # -- sync ---------------------------------------------------------------------------------

    async def sync(self, key: Key) -> None:
        try:
            await self._sync(key)
        except ApiStatusError as exc:
            if exc.code != 409 or exc.reason != "Conflict":
                raise
            # A ReplicaSet changed since the cache saw it (its status, most often): the
            # decision was made on stale data, so make it again once the cache has caught up.
            log.debug("deployment %s/%s: %s; syncing again", *key, exc)
            self.queue.add_after(key, CONFLICT_RETRY)

    async def _sync(self, key: Key) -> None:
        cached = self.deployments.get(*key)
        if cached is None:
            return
        d = copy.deepcopy(cached)
        d.setdefault("status", {})
        try:
            selector = from_label_selector_object((d.get("spec") or {}).get("selector"))
        except SelectorError as exc:
            log.warning("deployment %s/%s has an invalid selector: %s", *key, exc)
            return
        if selector.empty:
            await self.events.record(
                d,
                "Warning",
                "SelectingAll",
                "This deployment is selecting all pods. A non-empty selector is required.",
            )
            if int(d["status"].get("observedGeneration") or 0) < int(meta_of(d).get("generation") or 0):
                d["status"]["observedGeneration"] = int(meta_of(d).get("generation") or 0)
                await self._write_status(d)
            return
        sets = await self._claim(d, selector)
        if deleting(d):
            new, olds = await self._all_sets(d, sets, create=False)
            await self._sync_status(d, [*olds, new], new)
            return
        await self._check_paused(d)
        if (d.get("spec") or {}).get("paused") or await self._scaling_event(d, sets):
            await self._sync_scale(d, sets)
        elif is_rolling_update(d):
            await self._rollout_rolling(d, sets)
        else:
            await self._rollout_recreate(d, sets)

    async def _claim(self, d: Obj, selector: Any) -> list[Obj]:
        namespace, uid = meta_of(d).get("namespace"), uid_of(d)
        claimed = []
        for rs in self.replica_sets.items():
            if meta_of(rs).get("namespace") != namespace:
                continue
            ref = controller_ref(rs)
            matches = selector.matches(labels_of(rs))
            path = f"{RS_PATH.format(namespace)}/{meta_of(rs)['name']}"
            if ref is not None:
                if ref.get("uid") != uid:
                    continue
                if matches:
                    claimed.append(rs)
                elif not deleting(d):
                    patch = {
                        "metadata": {"ownerReferences": [{"$patch": "delete", "uid": uid}], "uid": uid_of(rs)}
                    }
                    await self._patch_ignoring_gone(path, patch)
                continue
            if deleting(d) or deleting(rs) or not matches:
                continue
            patch = {
                "metadata": {
                    "ownerReferences": [owner_reference(d, "apps/v1", "Deployment")],
                    "uid": uid_of(rs),
                }
            }
            adopted = await self._patch_ignoring_gone(path, patch)
            if adopted is not None:
                claimed.append(adopted)
        return claimed

    async def _patch_ignoring_gone(self, path: str, patch: Obj) -> Obj | None:
        try:
            return await self.api.patch(path, patch, "strategic")
        except ApiStatusError as exc:
            if exc.code in (404, 409, 422):
                return None
            raise

    # -- the new and the old ReplicaSets ------------------------------------------------------

    async def _all_sets(self, d: Obj, sets: list[Obj], create: bool) -> tuple[Obj | None, list[Obj]]:
        """(new, old) ReplicaSets, with revisions synced (``getAllReplicaSetsAndSyncRevision``).

        ``sets`` is updated in place with what was written, so that a later call in the same
        sync does not write again from a stale copy.
        """
        template = (d.get("spec") or {}).get("template") or {}
        new = next(
            (rs for rs in by_creation(sets) if equal_ignore_hash(rs["spec"]["template"], template)), None
        )
        olds = [rs for rs in sets if rs is not new]
        new_revision = max((revision_of(rs) for rs in olds), default=0) + 1
        if new is not None:
            synced = await self._sync_existing_new(d, new, new_revision)
            sets[sets.index(new)] = synced
            return synced, olds
        if not create:
            return None, olds
        created = await self._create_new(d, olds, new_revision)
        if created is not None:
            sets.append(created)
        return created, olds

    async def _sync_existing_new(self, d: Obj, new: Obj, new_revision: int) -> Obj:
        updated = copy.deepcopy(new)
        changed = set_new_rs_annotations(d, updated, new_revision, exists=True)
        min_ready = int((d.get("spec") or {}).get("minReadySeconds") or 0)
        if int(updated["spec"].get("minReadySeconds") or 0) != min_ready:
            updated["spec"]["minReadySeconds"] = min_ready
            changed = True
        if changed:
            new = await self.api.update(
                f"{RS_PATH.format(meta_of(d)['namespace'])}/{meta_of(new)['name']}", updated
            )
        await self._set_revision(d, str(revision_of(new)))
        if has_progress_deadline(d) and condition(d["status"], "Progressing") is None:
            message = f'Found new replica set "{meta_of(new)["name"]}"'
            set_condition(d["status"], new_condition("Progressing", "True", "FoundNewReplicaSet", message))
            await self._write_status(d)
        return new

    async def _create_new(self, d: Obj, olds: list[Obj], new_revision: int) -> Obj | None:
        namespace, spec = meta_of(d)["namespace"], d.get("spec") or {}
        collisions = d["status"].get("collisionCount")
        pod_hash = compute_hash(spec.get("template") or {}, collisions)
        template = copy.deepcopy(spec.get("template") or {})
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = pod_hash
        selector = copy.deepcopy(spec.get("selector") or {})
        selector.setdefault("matchLabels", {})[HASH_LABEL] = pod_hash
        name = f"{meta_of(d)['name']}-{pod_hash}"
        new: Obj = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": dict(template["metadata"]["labels"]),
                "ownerReferences": [owner_reference(d, "apps/v1", "Deployment")],
            },
            "spec": {
                "replicas": 0,
                "minReadySeconds": int(spec.get("minReadySeconds") or 0),
                "selector": selector,
                "template": template,
            },
        }
        replicas = new_rs_new_replicas(d, [*olds, new], new)
        new["spec"]["replicas"] = replicas
        set_new_rs_annotations(d, new, new_revision, exists=False)
        try:
            created = await self.api.create(RS_PATH.format(namespace), new)
        except ApiStatusError as exc:
            if exc.code == 409 and exc.reason == "AlreadyExists":
                existing = await self.api.get(f"{RS_PATH.format(namespace)}/{name}")
                ref = controller_ref(existing)
                if (
                    ref
                    and ref.get("uid") == uid_of(d)
                    and equal_ignore_hash(existing["spec"]["template"], template)
                ):
                    return existing
                d["status"]["collisionCount"] = int(collisions or 0) + 1
                await self._write_status(d)
                raise
            message = f'Failed to create new replica set "{name}": {exc}'
            if has_progress_deadline(d):
                set_condition(
                    d["status"], new_condition("Progressing", "False", "ReplicaSetCreateError", message)
                )
                await self._write_status(d)
            await self.events.record(d, "Warning", "ReplicaSetCreateError", message)
            raise
        if replicas > 0:
            await self._scaling_event_record(d, name, "up", 0, replicas)
        await self._set_revision(d, str(new_revision))
        if has_progress_deadline(d):
            message = f'Created new replica set "{name}"'
            set_condition(d["status"], new_condition("Progressing", "True", "NewReplicaSetCreated", message))
            await self._write_status(d)
        return created

    async def _set_revision(self, d: Obj, revision: str) -> None:
        """The Deployment carries its newest revision (``SetDeploymentRevision``)."""
        annotations = meta_of(d).setdefault("annotations", {})
        if annotations.get(REVISION) == revision:
            return
        annotations[REVISION] = revision
        # An update, as upstream: the controller's role may update deployments, not patch them.
        d_meta = meta_of(d)
        updated = await self.api.update(f"{DEPLOY_PATH.format(d_meta['namespace'])}/{d_meta['name']}", d)
        meta_of(d)["resourceVersion"] = meta_of(updated).get("resourceVersion")

    # -- scaling ------------------------------------------------------------------------------

    async def _scale_rs(self, d: Obj, rs: Obj, replicas: int) -> Obj:
        """Resize a ReplicaSet and refresh its replicas annotations (``scaleReplicaSet``)."""
        desired = spec_replicas(d)
        updated = copy.deepcopy(rs)
        old = spec_replicas(rs)
        annotations_changed = set_replicas_annotations(updated, desired, desired + max_surge(d))
        if old == replicas and not annotations_changed:
            return rs
        updated["spec"]["replicas"] = replicas
        rs_meta = meta_of(rs)
        result = await self.api.update(f"{RS_PATH.format(rs_meta['namespace'])}/{rs_meta['name']}", updated)
        if old != replicas:
            await self._scaling_event_record(
                d, meta_of(rs)["name"], "up" if old < replicas else "down", old, replicas
            )
        return result

    async def _scaling_event_record(self, d: Obj, name: str, way: str, old: int, new: int) -> None:
        await self.events.record(
            d, "Normal", "ScalingReplicaSet", f"Scaled {way} replica set {name} from {old} to {new}"
        )

    async def _scale_if_needed(self, d: Obj, rs: Obj, replicas: int) -> tuple[bool, Obj]:
        """``scaleReplicaSetAndRecordEvent``: nothing to do when the size is already right."""
        if spec_replicas(rs) == replicas:
            return False, rs
        return True, await self._scale_rs(d, rs, replicas)

    async def _scaling_event(self, d: Obj, sets: list[Obj]) -> bool:
        new, olds = await self._all_sets(d, sets, create=False)
        for rs in active([*olds, new]):
            desired = annotation_int(rs, DESIRED_REPLICAS)
            if desired is not None and desired != spec_replicas(d):
                return True
        return False

    async def _sync_scale(self, d: Obj, sets: list[Obj]) -> None:
        """Scale without rolling out (paused, or ``spec.replicas`` changed)."""
        new, olds = await self._all_sets(d, sets, create=False)
        new, olds = await self._scale(d, new, olds)
        if (d.get("spec") or {}).get("paused"):
            await self._cleanup(d, olds)
        await self._sync_status(d, [*olds, new], new)

    async def _scale(self, d: Obj, new: Obj | None, olds: list[Obj]) -> tuple[Obj | None, list[Obj]]:
        desired = spec_replicas(d)
        chosen = find_active_or_latest(new, olds)
        if chosen is not None:
            if spec_replicas(chosen) != desired:
                scaled = await self._scale_rs(d, chosen, desired)
                return _replace(new, olds, chosen, scaled)
            return new, olds
        if is_saturated(d, new):
            for old in active(olds):
                _, scaled = await self._scale_if_needed(d, old, 0)
                new, olds = _replace(new, olds, old, scaled)
            return new, olds
        if not is_rolling_update(d):
            return new, olds
        live = active([*olds, new])
        allowed = desired + max_surge(d) if desired > 0 else 0
        to_add = allowed - replica_sum(live)
        if to_add > 0:
            live = by_size(live, newer_first=True)
        elif to_add < 0:
            live = by_size(live, newer_first=False)
        added, sizes = 0, []
        for rs in live:
            share = proportion(rs, d, to_add, added) if to_add else 0
            sizes.append(spec_replicas(rs) + share)
            added += share
        if live and to_add:
            sizes[0] = max(sizes[0] + to_add - added, 0)
        for rs, size in zip(live, sizes, strict=True):
            scaled = await self._scale_rs(d, rs, size)
            new, olds = _replace(new, olds, rs, scaled)
        return new, olds

    # -- rollouts -----------------------------------------------------------------------------

    async def _rollout_rolling(self, d: Obj, sets: list[Obj]) -> None:
        new, olds = await self._all_sets(d, sets, create=True)
        if new is None:
            return
        scaled, new = await self._reconcile_new(d, new, olds)
        if scaled:
            await self._sync_rollout_status(d, [*olds, new], new)
            return
        scaled_down, olds = await self._reconcile_olds(d, new, olds)
        if scaled_down:
            await self._sync_rollout_status(d, [*olds, new], new)
            return
        if deployment_complete(d, d["status"]):
            await self._cleanup(d, olds)
        await self._sync_rollout_status(d, [*olds, new], new)

    async def _reconcile_new(self, d: Obj, new: Obj, olds: list[Obj]) -> tuple[bool, Obj]:
        desired = spec_replicas(d)
        if spec_replicas(new) == desired:
            return False, new
        if spec_replicas(new) > desired:
            return await self._scale_if_needed(d, new, desired)
        return await self._scale_if_needed(d, new, new_rs_new_replicas(d, [*olds, new], new))

    async def _reconcile_olds(self, d: Obj, new: Obj, olds: list[Obj]) -> tuple[bool, list[Obj]]:
        if replica_sum(olds) == 0:
            return False, olds
        all_pods = replica_sum([*olds, new])
        min_available = spec_replicas(d) - max_unavailable(d)
        new_unavailable = spec_replicas(new) - int((new.get("status") or {}).get("availableReplicas") or 0)
        max_scaled_down = all_pods - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False, olds
        olds, cleaned = await self._cleanup_unhealthy(d, olds, max_scaled_down)
        olds, scaled = await self._scale_down_olds(d, new, olds)
        return cleaned + scaled > 0, olds

    async def _cleanup_unhealthy(self, d: Obj, olds: list[Obj], limit: int) -> tuple[list[Obj], int]:
        """Old ReplicaSets' unavailable pods go first: they serve nobody."""
        result, total = [], 0
        for rs in by_creation(olds):
            available = int((rs.get("status") or {}).get("availableReplicas") or 0)
            if total >= limit or spec_replicas(rs) == 0 or spec_replicas(rs) == available:
                result.append(rs)
                continue
            count = min(limit - total, spec_replicas(rs) - available)
            _, rs = await self._scale_if_needed(d, rs, spec_replicas(rs) - count)
            total += count
            result.append(rs)
        return result, total

    async def _scale_down_olds(self, d: Obj, new: Obj, olds: list[Obj]) -> tuple[list[Obj], int]:
        min_available = spec_replicas(d) - max_unavailable(d)
        available = replica_sum([*olds, new], "availableReplicas")
        if available <= min_available:
            return olds, 0
        budget, total, result = available - min_available, 0, []
        for rs in by_creation(olds):
            if total >= budget or spec_replicas(rs) == 0:
                result.append(rs)
                continue
            count = min(spec_replicas(rs), budget - total)
            _, rs = await self._scale_if_needed(d, rs, spec_replicas(rs) - count)
            total += count
            result.append(rs)
        return result, total

    async def _rollout_recreate(self, d: Obj, sets: list[Obj]) -> None:
        new, olds = await self._all_sets(d, sets, create=False)
        scaled_down = False
        for rs in active(olds):
            scaled, after = await self._scale_if_needed(d, rs, 0)
            scaled_down = scaled_down or scaled
            new, olds = _replace(new, olds, rs, after)
        if scaled_down or self._old_pods_running(new, olds):
            await self._sync_rollout_status(d, [*olds, new], new)
            return
        if new is None:
            new, olds = await self._all_sets(d, sets, create=True)
        if new is not None:
            _, new = await self._scale_if_needed(d, new, spec_replicas(d))
        if deployment_complete(d, d["status"]):
            await self._cleanup(d, olds)
        await self._sync_rollout_status(d, [*olds, new], new)

    def _old_pods_running(self, new: Obj | None, olds: list[Obj]) -> bool:
        if replica_sum(olds, "replicas") > 0:
            return True
        new_uid = uid_of(new) if new is not None else ""
        return any(
            (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
            for rs in olds
            if uid_of(rs) != new_uid
            for pod in pods_of(self.pods, rs)
        )

    async def _cleanup(self, d: Obj, olds: list[Obj]) -> None:
        """Delete the oldest empty ReplicaSets beyond ``revisionHistoryLimit``."""
        limit = (d.get("spec") or {}).get("revisionHistoryLimit")
        if limit is None:
            return
        cleanable = [rs for rs in olds if not deleting(rs)]
        excess = len(cleanable) - int(limit)
        if excess <= 0:
            return
        for rs in sorted(cleanable, key=lambda r: (revision_of(r), _created(r)))[:excess]:
            status = rs.get("status") or {}
            if int(status.get("replicas") or 0) or spec_replicas(rs):
                continue
            if int(meta_of(rs).get("generation") or 0) > int(status.get("observedGeneration") or 0):
                continue
            try:
                await self.api.delete(f"{RS_PATH.format(meta_of(rs)['namespace'])}/{meta_of(rs)['name']}")
            except ApiStatusError as exc:
                if exc.code != 404:
                    raise

    # -- status -------------------------------------------------------------------------------

    async def _check_paused(self, d: Obj) -> None:
        if not has_progress_deadline(d):
            return
        current = condition(d["status"], "Progressing")
        if current is not None and current.get("reason") == "ProgressDeadlineExceeded":
            return
        paused_shown = current is not None and current.get("reason") == "DeploymentPaused"
        paused = bool((d.get("spec") or {}).get("paused"))
        if paused and not paused_shown:
            wanted = new_condition("Progressing", "Unknown", "DeploymentPaused", "Deployment is paused")
        elif not paused and paused_shown:
            wanted = new_condition("Progressing", "Unknown", "DeploymentResumed", "Deployment is resumed")
        else:
            return
        set_condition(d["status"], wanted)
        await self._write_status(d)

    async def _sync_status(self, d: Obj, all_sets: list[Obj | None], new: Obj | None) -> None:
        status = calculate_status(d, all_sets, new)
        if not same_status(d["status"], status):
            d["status"] = status
            await self._write_status(d)

    async def _sync_rollout_status(self, d: Obj, all_sets: list[Obj | None], new: Obj | None) -> None:
        status = calculate_status(d, all_sets, new)
        now = time.time()
        if not has_progress_deadline(d):
            remove_condition(status, "Progressing")
        current = condition(status, "Progressing")
        complete = status["replicas"] == status["updatedReplicas"] and (
            current is not None and current.get("reason") == "NewReplicaSetAvailable"
        )
        paused = bool((d.get("spec") or {}).get("paused"))
        if has_progress_deadline(d) and not paused and not complete:
            subject = (
                f'ReplicaSet "{meta_of(new)["name"]}"'
                if new is not None
                else f'Deployment "{meta_of(d)["name"]}"'
            )
            if deployment_complete(d, status):
                message = f"{subject} has successfully progressed."
                set_condition(status, new_condition("Progressing", "True", "NewReplicaSetAvailable", message))
            elif deployment_progressing(d, status):
                wanted = new_condition(
                    "Progressing", "True", "ReplicaSetUpdated", f"{subject} is progressing."
                )
                if current is not None:
                    if current.get("status") == "True":
                        wanted["lastTransitionTime"] = current.get("lastTransitionTime")
                    remove_condition(status, "Progressing")
                set_condition(status, wanted)
            elif deployment_timed_out(d, status, now):
                message = f"{subject} has timed out progressing."
                set_condition(
                    status, new_condition("Progressing", "False", "ProgressDeadlineExceeded", message)
                )
        failure = _replica_failure([new, *all_sets])
        if failure is not None:
            set_condition(status, failure)
        else:
            remove_condition(status, "ReplicaFailure")
        if same_status(d["status"], status):
            self._requeue_stuck(d, status, now)
            return
        d["status"] = status
        await self._write_status(d)

    def _requeue_stuck(self, d: Obj, status: Obj, now: float) -> None:
        current = condition(d["status"], "Progressing")
        if (
            not has_progress_deadline(d)
            or current is None
            or deployment_complete(d, status)
            or current.get("reason") == "ProgressDeadlineExceeded"
        ):
            return
        since = parse_time(current.get("lastUpdateTime")) or now
        after = since + int(d["spec"]["progressDeadlineSeconds"]) - now
        key = (str(meta_of(d).get("namespace") or ""), str(meta_of(d)["name"]))
        self.queue.add_after(key, after + 1 if after >= 1 else 0.5)

    async def _write_status(self, d: Obj) -> None:
        status = dict(d["status"])
        status["conditions"] = status.get("conditions") or None
        path = f"{DEPLOY_PATH.format(meta_of(d)['namespace'])}/{meta_of(d)['name']}/status"
        try:
            await self.api.update(path, {**d, "status": {k: v for k, v in status.items() if v is not None}})
        except ApiStatusError as exc:
            if exc.code != 404:
                raise


def is_saturated(d: Obj, rs: Obj | None) -> bool:
    """The ReplicaSet has all the Deployment's replicas, all available."""
    if rs is None:
        return False
    desired = spec_replicas(d)
    return (
        annotation_int(rs, DESIRED_REPLICAS) == desired
        and spec_replicas(rs) == desired
        and int((rs.get("status") or {}).get("availableReplicas") or 0) == desired
    )


def _replica_failure(sets: Iterable[Obj | None]) -> Obj | None:
    """The first ReplicaSet ``ReplicaFailure`` condition, as the Deployment's (new ReplicaSet first)."""
    for rs in sets:
        if rs is None:
            continue
        for found in (rs.get("status") or {}).get("conditions") or []:
            if found.get("type") == "ReplicaFailure":
                return {
                    "type": "ReplicaFailure",
                    "status": found.get("status"),
                    "lastUpdateTime": found.get("lastTransitionTime"),
                    "lastTransitionTime": found.get("lastTransitionTime"),
                    "reason": found.get("reason"),
                    "message": found.get("message"),
                }
    return None


def _replace(new: Obj | None, olds: list[Obj], before: Obj, after: Obj) -> tuple[Obj | None, list[Obj]]:
    """Swap a ReplicaSet for its updated self in (new, olds)."""
    if new is before:
        return after, olds
    return new, [after if rs is before else rs for rs in olds]
