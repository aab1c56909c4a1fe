"""The Job controller: runs a Job's pods to completion, as kube-controller-manager's does.

Each sync looks at one Job and the pods it controls (the informer's cache) and moves three
things forward, in upstream's order:

1. *Tracking.* Pods are created with the ``batch.kubernetes.io/job-tracking`` finalizer, so a
   finished pod cannot vanish before it is counted. A newly finished pod's uid is first written
   to ``status.uncountedTerminatedPods`` (Indexed Jobs also add its index to
   ``completedIndexes``), then its finalizer is removed, then the uid moves into
   ``succeeded``/``failed``. A crash between steps loses nothing and counts nothing twice.
2. *Verdict.* Too many failures (``backoffLimit``), a ``podFailurePolicy`` ``FailJob`` rule, or
   ``activeDeadlineSeconds`` make the Job fail; enough completions (or a ``successPolicy``
   rule) make it succeed. As upstream since 1.31, the interim condition (``FailureTarget``,
   ``SuccessCriteriaMet``) comes first and the terminal one (``Failed``, ``Complete``) only
   once no pod of the Job is still running or terminating.
3. *Pods.* Otherwise the controller creates or deletes pods toward ``parallelism`` (Indexed
   Jobs: one pod per pending index), deletes all of them while ``suspend`` is set, and waits
   out the back-off (10 s doubling, capped at 6 min) after failures before creating again.

Creations the cache has not shown yet are remembered (upstream's "expectations") so a slow
watch never makes the controller create a pod twice.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from k3py.api.selectors import LabelSelector, SelectorError, from_label_selector_object
from k3py.client.events import EventRecorder
from k3py.client.informer import SharedInformers
from k3py.client.rest import ApiStatusError, RestClient
from k3py.controllers.base import Controller, Key
from k3py.controllers.claims import PodClaims, index_by_controller, owners_selecting, pods_of
from k3py.controllers.objects import (
    controller_ref,
    deleting,
    parse_time,
    phase,
    pod_ready,
    rfc3339,
)

log = logging.getLogger(__name__)

Obj = dict[str, Any]

FINALIZER = "batch.kubernetes.io/job-tracking"
INDEX_KEY = "batch.kubernetes.io/job-completion-index"
INDEX_ENV = "JOB_COMPLETION_INDEX"
POD_BACKOFF = 10.0
POD_BACKOFF_MAX = 360.0
EXPECTATIONS_TIMEOUT = 300.0
MAX_BATCH = 500

BACKOFF_MESSAGE = "Job has reached the specified backoff limit"
DEADLINE_MESSAGE = "Job was active longer than specified deadline"
COMPLETIONS_MESSAGE = "Reached expected number of succeeded pods"
FAILED_INDEXES_MESSAGE = "Job has failed indexes"
MAX_FAILED_INDEXES_MESSAGE = "Job has exceeded the specified maximal number of failed indexes"
FAILURE_COUNT_KEY = "batch.kubernetes.io/job-index-failure-count"


# -- reading Jobs and pods -------------------------------------------------------------------------


def condition_true(job: Obj, kind: str) -> Obj | None:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind and cond.get("status") == "True":
            return dict(cond)
    return None


def is_finished(job: Obj) -> bool:
    return condition_true(job, "Complete") is not None or condition_true(job, "Failed") is not None


def pod_index(pod: Obj) -> int | None:
    meta = pod.get("metadata") or {}
    raw = (meta.get("annotations") or {}).get(INDEX_KEY) or (meta.get("labels") or {}).get(INDEX_KEY)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def only_replace_failed(job: Obj) -> bool:
    spec = job.get("spec") or {}
    return spec.get("podReplacementPolicy") == "Failed" or spec.get("podFailurePolicy") is not None


def is_failed(pod: Obj, job: Obj) -> bool:
    """``isPodFailed``: Failed, or (unless only failed pods are replaced) deleted before success."""
    if phase(pod) == "Failed":
        return True
    if only_replace_failed(job):
        return False
    return deleting(pod) and phase(pod) != "Succeeded"


def format_indexes(indexes: set[int]) -> str:
    """``1,3-5,7``: the form of ``completedIndexes`` and ``failedIndexes``."""
    parts: list[str] = []
    ordered = sorted(indexes)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)


def parse_indexes(text: object, completions: int) -> set[int]:
    found: set[int] = set()
    for part in str(text or "").split(","):
        if not part:
            continue
        low, _, high = part.partition("-")
        try:
            first, last = int(low), int(high or low)
        except ValueError:
            continue
        found.update(i for i in range(first, last + 1) if 0 <= i < completions)
    return found


# -- podFailurePolicy and successPolicy ------------------------------------------------------------


def _exit_codes_match(pod: Obj, rule: Obj) -> str | None:
    requirement = rule.get("onExitCodes")
    if not isinstance(requirement, dict):
        return None
    values = set(requirement.get("values") or [])
    wanted_container = requirement.get("containerName")
    status = pod.get("status") or {}
    for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        if wanted_container and cs.get("name") != wanted_container:
            continue
        terminated = (cs.get("state") or {}).get("terminated") or {}
        code = terminated.get("exitCode")
        if not isinstance(code, int) or code == 0:
            continue
        inside = code in values
        if inside == (requirement.get("operator") == "In"):
            meta = pod.get("metadata") or {}
            return (
                f"Container {cs.get('name')} for pod {meta.get('namespace')}/{meta.get('name')} "
                f"failed with exit code {code} matching {rule.get('action')} rule at index {{index}}"
            )
    return None


def _conditions_match(pod: Obj, rule: Obj) -> str | None:
    patterns = rule.get("onPodConditions")
    if not isinstance(patterns, list):
        return None
    conditions = (pod.get("status") or {}).get("conditions") or []
    for pattern in patterns:
        for cond in conditions:
            if cond.get("type") == pattern.get("type") and cond.get("status") == pattern.get(
                "status", "True"
            ):
                meta = pod.get("metadata") or {}
                return (
                    f"Pod {meta.get('namespace')}/{meta.get('name')} has condition {cond.get('type')} "
                    f"matching {rule.get('action')} rule at index {{index}}"
                )
    return None


def failure_policy_action(job: Obj, pod: Obj) -> tuple[str, str]:
    """The action of the first ``podFailurePolicy`` rule that matches a Failed pod, and why."""
    policy = (job.get("spec") or {}).get("podFailurePolicy")
    if not isinstance(policy, dict) or phase(pod) != "Failed":
        return "Count", ""
    for index, rule in enumerate(policy.get("rules") or []):
        message = _exit_codes_match(pod, rule) or _conditions_match(pod, rule)
        if message is not None:
            return str(rule.get("action") or "Count"), message.format(index=index)
    return "Count", ""


def success_policy_rule(job: Obj, completed: set[int]) -> int | None:
    """The index of the first ``successPolicy`` rule the completed indexes satisfy."""
    spec = job.get("spec") or {}
    policy = spec.get("successPolicy")
    if not isinstance(policy, dict):
        return None
    completions = int(spec.get("completions") or 0)
    for index, rule in enumerate(policy.get("rules") or []):
        if rule.get("succeededIndexes") is not None:
            wanted = parse_indexes(rule["succeededIndexes"], completions)
            done = wanted & completed
            count = rule.get("succeededCount")
            if (count is None and done == wanted) or (count is not None and len(done) >= count):
                return index
        elif rule.get("succeededCount") is not None and len(completed) >= rule["succeededCount"]:
            return index
    return None


# -- conditions ------------------------------------------------------------------------------------


def set_condition(status: Obj, kind: str, state: str, reason: str, message: str) -> bool:
    """Add or update a condition; whether anything changed."""
    conditions: list[Obj] = status.setdefault("conditions", [])
    now = rfc3339()
    for cond in conditions:
        if cond.get("type") == kind:
            if (cond.get("status"), cond.get("reason"), cond.get("message")) == (state, reason, message):
                return False
            if cond.get("status") != state:
                cond["lastTransitionTime"] = now
            cond.update(status=state, reason=reason, message=message, lastProbeTime=now)
            return True
    conditions.append(
        {
            "type": kind,
            "status": state,
            "reason": reason,
            "message": message,
            "lastProbeTime": now,
            "lastTransitionTime": now,
        }
    )
    return True


# -- the controller --------------------------------------------------------------------------------


@dataclass
class _Backoff:
    failures: int = 0
    last_failure: float = 0.0


@dataclass
class _Expected:
    names: set[str] = field(default_factory=set)
    since: float = 0.0


@dataclass
class _Pods:
    """A Job's pods, sorted as a sync needs them."""

    active: list[Obj] = field(default_factory=list)
    terminating: list[Obj] = field(default_factory=list)
    finished: list[Obj] = field(default_factory=list)
    by_uid: dict[str, Obj] = field(default_factory=dict)


class JobController(Controller):
    name = "job-controller"
    identity = "job-controller"
    pod_backoff = POD_BACKOFF
    pod_backoff_max = POD_BACKOFF_MAX

    def __init__(self, api: RestClient, informers: SharedInformers | None = None) -> None:
        super().__init__(api, informers)
        self.events = EventRecorder(api, "job-controller", kind="Job", api_version="batch/v1")
        self.jobs = self.informer("/apis/batch/v1/jobs")
        self.pods = index_by_controller(self.informer("/api/v1/pods"))
        self.claims = PodClaims(
            api,
            "batch/v1",
            "Job",
            lambda ns, name: f"/apis/batch/v1/namespaces/{ns}/jobs/{name}",
            finalizer=FINALIZER,
        )
        self.on(self.jobs, self._job_changed)
        self.on(self.pods, self._pod_changed)
        self._backoff: dict[str, _Backoff] = {}
        self._expected: dict[str, _Expected] = {}

    def _job_changed(self, old: Obj | None, new: Obj | None) -> None:
        if new is None and old is not None:  # deleted: forget what was kept about it
            uid = str((old.get("metadata") or {}).get("uid"))
            self._backoff.pop(uid, None)
            self._expected.pop(uid, None)
        self.enqueue(new or old)

    def _pod_changed(self, old: Obj | None, new: Obj | None) -> None:
        pod = new or old
        if pod is None:
            return
        meta = pod.get("metadata") or {}
        if controller_ref(pod) is None and new is not None and not deleting(pod):
            for job in owners_selecting(pod, self.jobs.items(), job_selector):
                self.enqueue(job)  # an orphan its selector matches: the Job may adopt it
        for ref in meta.get("ownerReferences") or []:
            if ref.get("controller") is True and ref.get("kind") == "Job":
                expected = self._expected.get(str(ref.get("uid")))
                if expected is not None:
                    expected.names.discard(str(meta.get("name")))
                self.queue.add((str(meta.get("namespace") or ""), str(ref.get("name") or "")))

    async def _claimed(self, job: Obj) -> list[Obj]:
        """The Job's pods, after adopting the orphans its selector matches and releasing the
        pods it no longer matches (``getPodsForJob``)."""
        namespace = job["metadata"]["namespace"]
        try:
            selector = job_selector(job)
        except SelectorError as exc:
            log.warning("Job %s/%s has an invalid selector: %s", namespace, job["metadata"]["name"], exc)
            return pods_of(self.pods, job)
        return await self.claims.claim(job, selector, pods_of(self.pods, job, selector))

    def _pods_of(self, job: Obj, owned: list[Obj]) -> _Pods:
        found = _Pods()
        for pod in owned:
            pmeta = pod.get("metadata") or {}
            found.by_uid[str(pmeta.get("uid"))] = pod
            if phase(pod) in ("Succeeded", "Failed") or is_failed(pod, job):
                found.finished.append(pod)
            elif deleting(pod):
                found.terminating.append(pod)
            else:
                found.active.append(pod)
        return found

    async def _release_orphans(self, namespace: str, name: str) -> None:
        """A deleted Job's pods must not keep the tracking finalizer: nothing would remove it."""
        live = {str(j["metadata"].get("uid")) for j in self.jobs.items()}
        orphans = []
        for pod in self.pods.items():
            meta = pod.get("metadata") or {}
            if meta.get("namespace") != namespace or FINALIZER not in _finalizers(pod):
                continue
            for ref in meta.get("ownerReferences") or []:
                if ref.get("kind") == "Job" and ref.get("name") == name and str(ref.get("uid")) not in live:
                    orphans.append(pod)
        await self._remove_finalizers(orphans)

    def _waiting_for_cache(self, uid: str) -> bool:
        expected = self._expected.get(uid)
        if expected is None or not expected.names:
            return False
        if time.monotonic() - expected.since > EXPECTATIONS_TIMEOUT:
            expected.names.clear()
            return False
        return True

    async def sync(self, key: Key) -> None:
        namespace, name = key
        job = self.jobs.get(namespace, name)
        if job is None or not (job.get("metadata") or {}).get("uid"):
            await self._release_orphans(namespace, name)
            return
        uid = str(job["metadata"]["uid"])
        pods = self._pods_of(job, await self._claimed(job))
        if is_finished(job) or job["metadata"].get("deletionTimestamp"):
            await self._remove_finalizers([p for p in pods.by_uid.values() if FINALIZER in _finalizers(p)])
            self._backoff.pop(uid, None)
            self._expected.pop(uid, None)
            return
        job = copy.deepcopy(job)
        job.setdefault("status", {})
        job, fail = await self._track(job, pods)
        status = job.setdefault("status", {})
        before = copy.deepcopy(status)
        await self._decide(key, job, pods, fail)
        if status != before:
            await self._write_status(job)

    # -- 1. tracking finished pods

    async def _track(self, job: Obj, pods: _Pods) -> tuple[Obj, tuple[str, str] | None]:
        status = job["status"]
        uncounted: Obj = status.get("uncountedTerminatedPods") or {}
        succeeded = list(uncounted.get("succeeded") or [])
        failed = list(uncounted.get("failed") or [])
        seen = set(succeeded) | set(failed)
        indexed = (job.get("spec") or {}).get("completionMode") == "Indexed"
        completions = int((job.get("spec") or {}).get("completions") or 0)
        completed = parse_indexes(status.get("completedIndexes"), completions)
        per_index = (job.get("spec") or {}).get("backoffLimitPerIndex")
        failed_indexes = parse_indexes(status.get("failedIndexes"), completions)
        backoff = self._backoff.setdefault(job["metadata"]["uid"], _Backoff())
        fresh, ignored, fail = False, [], None
        for pod in pods.finished:
            pod_uid = str(pod["metadata"].get("uid"))
            if FINALIZER not in _finalizers(pod) or pod_uid in seen:
                continue
            if phase(pod) == "Succeeded":
                succeeded.append(pod_uid)
                backoff.failures = 0
                index = pod_index(pod)
                if indexed and index is not None and 0 <= index < completions:
                    completed.add(index)
            else:
                action, message = failure_policy_action(job, pod)
                if action == "Ignore":
                    ignored.append(pod)
                    continue
                if action == "FailJob" and fail is None:
                    fail = ("PodFailurePolicy", message)
                index = pod_index(pod)
                exhausted = action == "FailIndex" or failure_count(pod) + 1 > _int(per_index, 0)
                if (
                    isinstance(per_index, int)
                    and index is not None
                    and 0 <= index < completions
                    and exhausted
                ):
                    failed_indexes.add(index)
                failed.append(pod_uid)
                backoff.failures += 1
                backoff.last_failure = time.monotonic()
            fresh = True
        if fresh:
            status["uncountedTerminatedPods"] = {"succeeded": succeeded, "failed": failed}
            if indexed:
                status["completedIndexes"] = format_indexes(completed)
            if isinstance(per_index, int):
                status["failedIndexes"] = format_indexes(failed_indexes)
            job = await self._write_status(job)
        counted_pods = [pods.by_uid[u] for u in succeeded + failed if u in pods.by_uid] + ignored
        gone = await self._remove_finalizers([p for p in counted_pods if FINALIZER in _finalizers(p)])
        done = {
            u
            for u in succeeded + failed
            if u not in pods.by_uid or FINALIZER not in _finalizers(pods.by_uid[u])
        }
        done |= gone
        moved_s = [u for u in succeeded if u in done]
        moved_f = [u for u in failed if u in done]
        if moved_s or moved_f:
            status = job["status"]
            status["failed"] = int(status.get("failed") or 0) + len(moved_f)
            if indexed:
                status["succeeded"] = len(parse_indexes(status.get("completedIndexes"), completions))
            else:
                status["succeeded"] = int(status.get("succeeded") or 0) + len(moved_s)
            status["uncountedTerminatedPods"] = {
                "succeeded": [u for u in succeeded if u not in done],
                "failed": [u for u in failed if u not in done],
            }
            job = await self._write_status(job)
        return job, fail

    async def _remove_finalizers(self, pods: list[Obj]) -> set[str]:
        """Remove the tracking finalizer; the uids of pods that no longer carry it."""

        async def remove(pod: Obj) -> str | None:
            meta = pod["metadata"]
            kept = [f for f in _finalizers(pod) if f != FINALIZER]
            path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}"
            patch = [
                {"op": "test", "path": "/metadata/uid", "value": meta["uid"]},
                {"op": "replace", "path": "/metadata/finalizers", "value": kept},
            ]
            try:
                await self.api.patch(path, patch, patch_type="json")
            except ApiStatusError as exc:
                if exc.code not in (404, 422):
                    raise
            return str(meta["uid"])

        results = await asyncio.gather(*(remove(p) for p in pods))
        return {r for r in results if r}

    # -- 2. the verdict, 3. the pods

    async def _decide(self, key: Key, job: Obj, pods: _Pods, fail: tuple[str, str] | None) -> None:
        spec, status = job.get("spec") or {}, job["status"]
        uncounted = status.get("uncountedTerminatedPods") or {}
        failed = int(status.get("failed") or 0) + len(uncounted.get("failed") or [])
        indexed = spec.get("completionMode") == "Indexed"
        completions = spec.get("completions")
        completed = parse_indexes(status.get("completedIndexes"), int(completions or 0))
        succeeded = (
            len(completed)
            if indexed
            else int(status.get("succeeded") or 0) + len(uncounted.get("succeeded") or [])
        )
        target = condition_true(job, "FailureTarget")
        criteria = condition_true(job, "SuccessCriteriaMet")
        suspended = spec.get("suspend") is True
        now = time.time()
        if not suspended and not status.get("startTime"):
            status["startTime"] = rfc3339(now)
        started = parse_time(status.get("startTime"))
        if target is None and criteria is None:
            deadline = spec.get("activeDeadlineSeconds")
            if fail is None and indexed and isinstance(spec.get("backoffLimitPerIndex"), int):
                fail = self._index_verdict(spec, status, completed)
            if fail is None and failed > _int(spec.get("backoffLimit"), 6):
                fail = ("BackoffLimitExceeded", BACKOFF_MESSAGE)
            if fail is None and deadline is not None and started is not None and not suspended:
                remaining = started + int(deadline) - now
                if remaining <= 0:
                    fail = ("DeadlineExceeded", DEADLINE_MESSAGE)
                else:
                    self.queue.add_after(key, remaining + 0.05)
            if fail is not None:
                set_condition(status, "FailureTarget", "True", fail[0], fail[1])
                target = condition_true(job, "FailureTarget")
            else:
                rule = success_policy_rule(job, completed) if indexed else None
                if rule is not None:
                    set_condition(
                        status,
                        "SuccessCriteriaMet",
                        "True",
                        "SuccessPolicy",
                        f"Matched rules at index {rule}",
                    )
                elif self._complete(spec, succeeded, len(pods.active), completed):
                    set_condition(
                        status, "SuccessCriteriaMet", "True", "CompletionsReached", COMPLETIONS_MESSAGE
                    )
                criteria = condition_true(job, "SuccessCriteriaMet")
        if target is not None or criteria is not None:
            await self._delete_pods(job, pods.active)
            self._set_counts(status, pods)
            # Terminal only once no pod runs or terminates (upstream counts a deleted pod that
            # has not reached a terminal phase as terminating, even one already judged failed).
            lingering = (
                pods.active
                or status["terminating"]
                or any(FINALIZER in _finalizers(p) for p in pods.finished)
            )
            uncounted_left = (uncounted.get("succeeded") or []) or (uncounted.get("failed") or [])
            if lingering or uncounted_left:
                return
            if target is not None:
                set_condition(status, "Failed", "True", target["reason"], target["message"])
                self.events.post(job, "Warning", target["reason"], target["message"])
            else:
                assert criteria is not None
                set_condition(status, "Complete", "True", criteria["reason"], criteria["message"])
                status["completionTime"] = rfc3339(now)
                self.events.post(job, "Normal", "Completed", "Job completed")
            return
        if suspended:
            await self._delete_pods(job, pods.active)
            if condition_true(job, "Suspended") is None:
                set_condition(status, "Suspended", "True", "JobSuspended", "Job suspended")
                self.events.post(job, "Normal", "Suspended", "Job suspended")
            self._set_counts(status, pods)
            return
        if condition_true(job, "Suspended") is not None:
            set_condition(status, "Suspended", "False", "JobResumed", "Job resumed")
            status["startTime"] = rfc3339(now)
            self.events.post(job, "Normal", "Resumed", "Job resumed")
        created = await self._manage(key, job, pods, succeeded, completed)
        self._set_counts(status, pods, tuple(created))

    @staticmethod
    def _index_verdict(spec: Obj, status: Obj, completed: set[int]) -> tuple[str, str] | None:
        """``backoffLimitPerIndex``: too many failed indexes, or every index done and some failed."""
        completions = _int(spec.get("completions"), 0)
        failed = parse_indexes(status.setdefault("failedIndexes", ""), completions)
        most = spec.get("maxFailedIndexes")
        if isinstance(most, int) and len(failed) > most:
            return "MaxFailedIndexesExceeded", MAX_FAILED_INDEXES_MESSAGE
        if failed and len(failed | completed) >= completions:
            return "FailedIndexes", FAILED_INDEXES_MESSAGE
        return None

    @staticmethod
    def _complete(spec: Obj, succeeded: int, active: int, completed: set[int]) -> bool:
        completions = spec.get("completions")
        if completions is None:
            return succeeded > 0 and active == 0
        if spec.get("completionMode") == "Indexed":
            return len(completed) >= int(completions)
        return succeeded >= int(completions)

    @staticmethod
    def _set_counts(status: Obj, pods: _Pods, created: tuple[Obj, ...] = ()) -> None:
        """``active``/``succeeded``/``failed`` are omitted at zero, ``ready``/``terminating`` are not."""
        active = [*pods.active, *created]
        status["active"] = len(active)
        status["ready"] = sum(1 for p in active if pod_ready(p))
        status["terminating"] = len(pods.terminating) + sum(
            1 for p in pods.finished if deleting(p) and phase(p) not in ("Succeeded", "Failed")
        )
        status.setdefault("uncountedTerminatedPods", {})
        for name in ("active", "succeeded", "failed"):
            if not status.get(name):
                status.pop(name, None)

    async def _manage(
        self, key: Key, job: Obj, pods: _Pods, succeeded: int, completed: set[int]
    ) -> list[Obj]:
        spec, meta = job.get("spec") or {}, job["metadata"]
        uid = str(meta["uid"])
        if self._waiting_for_cache(uid):
            return []
        parallelism = _int(spec.get("parallelism"), 1)
        completions = spec.get("completions")
        indexed = spec.get("completionMode") == "Indexed"
        busy = len(pods.active) + (len(pods.terminating) if only_replace_failed(job) else 0)
        if indexed:
            running = {pod_index(p) for p in pods.active + pods.terminating}
            skipped = completed | parse_indexes(job["status"].get("failedIndexes"), int(completions or 0))
            pending = [i for i in range(int(completions or 0)) if i not in skipped and i not in running]
            wanted = min(parallelism, busy + len(pending))
        elif completions is None:
            wanted = 0 if succeeded > 0 else parallelism
        else:
            wanted = max(0, min(parallelism, int(completions) - succeeded))
        if len(pods.active) > wanted:
            extra = sorted(
                pods.active, key=lambda p: (pod_ready(p), p["metadata"].get("creationTimestamp", ""))
            )
            await self._delete_pods(job, extra[: len(pods.active) - wanted])
            pods.active = extra[len(pods.active) - wanted :]
            return []
        missing = min(wanted - busy, MAX_BATCH)
        if missing <= 0:
            return []
        backoff = self._backoff.get(uid)
        if backoff is not None and backoff.failures > 0:
            delay = min(self.pod_backoff * 2 ** (backoff.failures - 1), self.pod_backoff_max)
            remaining = backoff.last_failure + delay - time.monotonic()
            if remaining > 0:
                self.queue.add_after(key, remaining)
                return []
        indexes: list[int | None] = list(pending[:missing]) if indexed else [None] * missing
        expected = self._expected.setdefault(uid, _Expected())
        expected.since = time.monotonic()
        results = await asyncio.gather(
            *(self._create_pod(job, index, _index_failures(pods, index)) for index in indexes),
            return_exceptions=True,
        )
        created: list[Obj] = []
        for result in results:
            if isinstance(result, BaseException):
                raise result
            expected.names.add(str(result["metadata"]["name"]))
            created.append(result)
        return created

    async def _create_pod(self, job: Obj, index: int | None, failures: int = 0) -> Obj:
        meta = job["metadata"]
        template = copy.deepcopy((job.get("spec") or {}).get("template") or {})
        tmeta = template.get("metadata") or {}
        labels = dict(tmeta.get("labels") or {})
        annotations = dict(tmeta.get("annotations") or {})
        pod_spec: Obj = template.get("spec") or {}
        generate = f"{meta['name']}-"
        if index is not None:
            annotations[INDEX_KEY] = str(index)
            if isinstance((job.get("spec") or {}).get("backoffLimitPerIndex"), int):
                annotations[FAILURE_COUNT_KEY] = str(failures)
            labels[INDEX_KEY] = str(index)
            generate = f"{meta['name']}-{index}-"
            if not pod_spec.get("hostname"):
                pod_spec["hostname"] = f"{meta['name']}-{index}"
            for container in (pod_spec.get("initContainers") or []) + (pod_spec.get("containers") or []):
                _add_index_env(container)
        body: Obj = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "generateName": generate,
                "namespace": meta["namespace"],
                "labels": labels,
                "annotations": annotations,
                "finalizers": [FINALIZER],
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": pod_spec,
        }
        if not annotations:
            del body["metadata"]["annotations"]
        pod = await self.api.create(f"/api/v1/namespaces/{meta['namespace']}/pods", body)
        self.events.post(job, "Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}")
        return pod

    async def _delete_pods(self, job: Obj, pods: list[Obj]) -> None:
        async def delete(pod: Obj) -> None:
            pmeta = pod["metadata"]
            path = f"/api/v1/namespaces/{pmeta['namespace']}/pods/{pmeta['name']}"
            try:
                await self.api.delete(path, {"preconditions": {"uid": pmeta["uid"]}})
            except ApiStatusError as exc:
                if exc.code in (404, 409):
                    return
                raise
            self.events.post(job, "Normal", "SuccessfulDelete", f"Deleted pod: {pmeta['name']}")

        await asyncio.gather(*(delete(p) for p in pods))

    async def _write_status(self, job: Obj) -> Obj:
        meta = job["metadata"]
        path = f"/apis/batch/v1/namespaces/{meta['namespace']}/jobs/{meta['name']}/status"
        return await self.api.update(path, job)


def job_path(namespace: str, name: str) -> str:
    return f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}"


def job_selector(job: Obj) -> LabelSelector:
    """The Job's ``spec.selector`` (generated from its uid unless ``manualSelector``)."""
    return from_label_selector_object((job.get("spec") or {}).get("selector"))


def failure_count(pod: Obj) -> int:
    """How many earlier pods of this pod's index failed (the annotation the controller set)."""
    raw = ((pod.get("metadata") or {}).get("annotations") or {}).get(FAILURE_COUNT_KEY)
    try:
        return int(raw) if raw is not None else 0
    except ValueError:
        return 0


def _index_failures(pods: _Pods, index: int | None) -> int:
    """The failures of ``index`` so far: its latest failed pod's count, plus that pod."""
    counts = [
        failure_count(p) + 1
        for p in pods.finished
        if pod_index(p) == index and phase(p) != "Succeeded" and index is not None
    ]
    return max(counts, default=0)


def _int(value: object, default: int) -> int:
    return value if isinstance(value, int) else default


def _finalizers(pod: Obj) -> list[str]:
    return list((pod.get("metadata") or {}).get("finalizers") or [])


def _add_index_env(container: Obj) -> None:
    env: list[Obj] = container.setdefault("env", [])
    if any(e.get("name") == INDEX_ENV for e in env):
        return
    env.append(
        {
            "name": INDEX_ENV,
            "valueFrom": {"fieldRef": {"fieldPath": f"metadata.annotations['{INDEX_KEY}']"}},
        }
    )
