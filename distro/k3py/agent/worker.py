"""One worker per pod: drive the runtime towards the pod's spec and report what happened.

Each pass of :meth:`PodWorker.sync` looks at the pod as the API last showed it and at the
runtime, and takes the next steps: volumes, the sandbox, init containers one at a time,
then the app containers; restarts follow ``restartPolicy`` with upstream's back-off (10 s
doubling to 5 min, ``CrashLoopBackOff`` while waiting); probes and hooks run beside. Sidecars
(init containers with ``restartPolicy: Always``) start in their turn, let the next one go once
started, and keep running (restarted when they exit) until the app containers are done. A pass
ends by writing the pod's status when it changed. A pod that is being deleted gets its
preStop hooks and ``SIGTERM`` with the rest of its grace period, then ``SIGKILL``, sidecars
last; the worker then removes the sandbox and volumes and deletes the pod for good.

The worker sleeps between passes until something changes: the pod, a container (the
kubelet's relist wakes it), a probe result, or a timer (back-off, volume refresh).
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from k3py.agent import cri_config, podstatus, resize
from k3py.agent.admission import Failure, rejected_status
from k3py.agent.cri import CriError, Runtime
from k3py.agent.envvars import ConfigError, container_env
from k3py.agent.podstatus import ContainerView, is_sidecar, rfc3339
from k3py.agent.probes import Prober, run_handler
from k3py.agent.volumes import PodVolumes, VolumeError, mounts_for
from k3py.client.rest import ApiStatusError

if TYPE_CHECKING:
    from k3py.agent.kubelet import Kubelet

log = logging.getLogger(__name__)

Obj = dict[str, Any]

BACKOFF_START = 10.0
BACKOFF_MAX = 300.0
BACKOFF_RESET = 600.0
"""A container that ran this long before exiting starts its back-off again from the beginning."""
RESYNC = 10.0
"""Seconds between passes when nothing else wakes the worker (volume refresh, status)."""
NOT_FOUND = 5

# CRI ContainerState
CREATED, RUNNING, EXITED = 0, 1, 2
SANDBOX_READY = 0


@dataclass
class Instance:
    """A container the runtime runs (or ran) for one container name."""

    id: str
    attempt: int
    status: Obj = field(default_factory=dict)


@dataclass
class Record:
    """What the worker keeps about one container name across its instances."""

    name: str
    init: bool
    current: Instance | None = None
    restart_count: int = 0
    backoff: float = 0.0
    backoff_since: float = 0.0
    waiting: tuple[str, str] | None = None
    last_terminated: Obj | None = None
    probers: list[asyncio.Task[None]] = field(default_factory=list)
    probe_results: dict[str, bool] = field(default_factory=dict)
    termination_message: str = ""
    applied: Obj | None = None
    """The ``resources`` the current instance runs with (in-place resize compares the spec)."""


def _ns_to_rfc3339(ns: int) -> str | None:
    return rfc3339(ns / 1e9) if ns else None


class PodWorker:
    def __init__(self, kubelet: Kubelet, uid: str, pod: Obj) -> None:
        self.kubelet = kubelet
        self.uid = uid
        self.pod = pod
        self.records: dict[str, Record] = {}
        self.sandbox_id: str | None = None
        self.sandbox_attempt = 0
        self.sandbox_config: Obj | None = None
        self.pod_ip = ""
        self.pod_ips: list[str] = []
        self.volumes: PodVolumes | None = None
        self.start_time = rfc3339()
        self.last_status: Obj | None = None
        self.wake = asyncio.Event()
        self.next_wake: float = 0.0
        self.terminated = False
        self.init_failed = False
        self.initialized = False
        """Every init container has been done with once (sidecars started), in this sandbox."""
        self.volumes_ready = False
        self.failure: tuple[str, str] | None = None
        """Why the kubelet failed the pod itself (reason, message), e.g. its active deadline."""
        self.rejected: Failure | None = None
        """Why the kubelet refused to admit the pod (:mod:`~k3py.agent.admission`): it never runs
        here; the worker writes its Failed status and cleans up when it is deleted."""
        self.task: asyncio.Task[None] | None = None

    # ----------------------------------------------------------------- plumbing
    @property
    def runtime(self) -> Runtime:
        return self.kubelet.runtime

    @property
    def name(self) -> str:
        meta = self.pod["metadata"]
        return f"{meta['namespace']}/{meta['name']}"

    def update(self, pod: Obj | None) -> None:
        if pod is not None:
            self.pod = pod
        else:
            self.deleted_from_api = True
        self.wake.set()

    deleted_from_api = False

    @property
    def holds_resources(self) -> bool:
        """Whether the pod counts against the node when another is admitted (upstream's active
        pods): admitted, not terminated, and not finished unless it is still being deleted."""
        if self.rejected is not None or self.terminated:
            return False
        if self.deleted_from_api or self.pod["metadata"].get("deletionTimestamp"):
            return True
        phase = (self.pod.get("status") or {}).get("phase")
        return phase not in ("Succeeded", "Failed") and self.failure is None

    def timer(self, delay: float) -> None:
        at = time.monotonic() + max(0.0, delay)
        if self.next_wake == 0.0 or at < self.next_wake:
            self.next_wake = at

    async def run(self) -> None:
        while True:
            self.next_wake = 0.0
            try:
                done = await self.sync()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("pod %s: sync failed", self.name)
                self.timer(2.0)
                done = False
            if done:
                return
            timeout = RESYNC
            if self.next_wake:
                timeout = min(timeout, max(0.05, self.next_wake - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout)
            self.wake.clear()

    def record(self, container: Obj, init: bool) -> Record:
        name = container["name"]
        if name not in self.records:
            self.records[name] = Record(name, init)
        return self.records[name]

    # ----------------------------------------------------------------- passes
    async def sync(self) -> bool:
        """One pass; True when the worker is finished (pod gone and cleaned up)."""
        pod = self.pod
        if self.deleted_from_api or pod["metadata"].get("deletionTimestamp"):
            await self.terminate()
            if not self.deleted_from_api:
                await self.final_delete()
            return self.deleted_from_api
        if self.rejected is not None:
            await self.write_status()  # once: later passes find it written
            return False
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed"):
            # A finished pod never runs again, not even after an agent restart (upstream: terminal
            # phases are final); what is left of it stops.
            await self.stop_everything(grace=0, reason="")
            return False
        if await self.past_deadline():
            return False
        await self.refresh_instances()
        if not await self.ensure_volumes():
            await self.write_status()
            return False
        if not await self.ensure_sandbox():
            await self.write_status()
            return False
        spec = pod.get("spec") or {}
        policy = spec.get("restartPolicy") or "Always"
        if self.app_containers_done(spec, policy) and any(map(is_sidecar, spec.get("initContainers") or [])):
            # Nothing will run again but the sidecars: they stop (not to be restarted), and the
            # pod then ends, as upstream's kubelet kills such a pod.
            await self.stop_containers(grace=self._grace(), reason="")
        elif await self.run_init_containers(spec.get("initContainers") or [], policy):
            for container in spec.get("containers") or []:
                await self.ensure_container(container, policy, init=False)
            # Ephemeral containers (``kubectl debug``) start once the pod runs, and never again.
            for container in spec.get("ephemeralContainers") or []:
                await self.ensure_container(container, "Never", init=False)
        await self.write_status()
        if self.pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            await self.stop_everything(grace=0, reason="")
        return False

    async def past_deadline(self) -> bool:
        """``activeDeadlineSeconds``: once the pod has been active that long, it fails."""
        limit = (self.pod.get("spec") or {}).get("activeDeadlineSeconds")
        if not isinstance(limit, int) or limit <= 0:
            return False
        started = _parse_time(str((self.pod.get("status") or {}).get("startTime") or self.start_time))
        left = started + limit - time.time()
        if left > 0:
            self.timer(left)
            return False
        if self.failure is None:
            self.failure = (
                "DeadlineExceeded",
                "Pod was active on the node longer than the specified deadline",
            )
            self.kubelet.events.pod(self.pod, "Normal", "DeadlineExceeded", self.failure[1])
            await self.stop_everything(grace=self._grace(), reason="deadline")
        await self.write_status()
        return True

    async def refresh_instances(self) -> None:
        for record in self.records.values():
            if record.current is None:
                continue
            try:
                record.current.status = await self.runtime.container_status(record.current.id)
            except CriError as exc:
                if exc.code == NOT_FOUND:
                    self._stop_probers(record)
                    record.current = None
                else:
                    raise

    @staticmethod
    def _stop_probers(record: Record) -> None:
        for prober in record.probers:
            prober.cancel()
        record.probers.clear()
        record.probe_results.clear()

    async def ensure_volumes(self) -> bool:
        if self.volumes is None:
            self.volumes = PodVolumes(
                self.kubelet.pod_dir(self.uid),
                self.pod,
                self._fetch,
                self._token,
                self.kubelet.allocatable,
                self.kubelet.trust_bundles,
                certificates=self.kubelet.pod_certificates,
            )
        try:
            await self.volumes.refresh(self.pod)
        except VolumeError as exc:
            self.kubelet.events.pod(self.pod, "Warning", "FailedMount", str(exc))
            self.timer(5.0)
            # Volumes that are up keep serving the running containers; only a first setup waits.
            return self.volumes_ready
        self.volumes_ready = True
        return True

    async def _fetch(self, kind: str, name: str) -> Obj | None:
        return await self.kubelet.fetch(self.pod["metadata"]["namespace"], kind, name)

    async def _token(self, account: str, audience: str, seconds: int) -> tuple[str, float]:
        return await self.kubelet.service_account_token(self.pod, account, audience, seconds)

    async def ensure_sandbox(self) -> bool:
        if self.sandbox_id is not None:
            try:
                status = await self.runtime.pod_sandbox_status(self.sandbox_id)
            except CriError as exc:
                if exc.code != NOT_FOUND:
                    raise
                status = None
            if status is not None and status.get("state") == SANDBOX_READY:
                self._take_network(status)
                return True
            # The sandbox died (or vanished): everything in it goes, and the pod starts over,
            # init containers included.
            self.kubelet.events.pod(
                self.pod, "Normal", "SandboxChanged", "Pod sandbox changed, it will be killed and re-created."
            )
            await self.stop_everything(grace=0, reason="")
            for record in self.records.values():
                if record.current is not None:
                    self._stop_probers(record)
                    record.last_terminated = self._terminated_state(record, record.current)
                    record.current = None
                    record.restart_count += 1
            await self.kubelet.remove_sandbox(self.sandbox_id)
            self.sandbox_id = None
            self.sandbox_attempt += 1
            self.initialized = False
        log_dir = self.kubelet.log_dir(self.pod)
        log_dir.mkdir(parents=True, exist_ok=True)
        self.sandbox_config = cri_config.sandbox_config(
            self.pod, self.kubelet.node_settings, log_directory=log_dir, attempt=self.sandbox_attempt
        )
        try:
            self.sandbox_id = await self.runtime.run_pod_sandbox(self.sandbox_config)
        except CriError as exc:
            self.sandbox_id = None
            if "is reserved for" in exc.message:
                # An earlier attempt that we lost track of (a call that timed out here but
                # succeeded there): remove it, and start over with the next attempt.
                await self.kubelet.remove_stale_sandboxes(self.uid)
                self.sandbox_attempt += 1
            self.kubelet.events.pod(
                self.pod,
                "Warning",
                "FailedCreatePodSandBox",
                f"Failed to create pod sandbox: {exc.message}",
            )
            self.timer(5.0)
            return False
        status = await self.runtime.pod_sandbox_status(self.sandbox_id)
        self._take_network(status)
        await self.kubelet.record_netns(self.uid, self.sandbox_id)
        return True

    def _take_network(self, status: Obj) -> None:
        if cri_config.host_network(self.pod):
            self.pod_ip = self.kubelet.node_ip
            self.pod_ips = [self.kubelet.node_ip]
            return
        network = status.get("network") or {}
        ip = network.get("ip") or ""
        self.pod_ip = ip
        self.pod_ips = [ip] + [a.get("ip", "") for a in network.get("additional_ips") or [] if a.get("ip")]

    def app_containers_done(self, spec: Obj, policy: str) -> bool:
        """Every app container has exited and none will be restarted (``Never``, or
        ``OnFailure`` after success): what is left to do is stop the sidecars."""
        if policy == "Always" or not spec.get("containers"):
            return False
        for container in spec.get("containers") or []:
            record = self.records.get(container["name"])
            current = record.current if record is not None else None
            if current is None or current.status.get("state") != EXITED:
                return False
            if policy == "OnFailure" and current.status.get("exit_code") != 0:
                return False
        return True

    async def run_init_containers(self, init: list[Obj], policy: str) -> bool:
        """Run init containers in order; True once all of them are done with.

        A regular init container is done with once it has succeeded. A sidecar
        (``restartPolicy: Always``) once it has started: running, its postStart hook run and its
        startup probe passed; it is restarted whenever it exits, whatever the pod's policy, and
        once the pod has initialized a restarting sidecar no longer holds the app containers
        back (upstream: a pod does not go back to initializing).
        """
        self.init_failed = False
        if any(r.current is not None for r in self.records.values() if not r.init):
            self.initialized = True  # an app container runs here already (an adopted pod, say)
        for container in init:
            record = self.record(container, True)
            if is_sidecar(container):
                await self.ensure_container(container, "Always", init=True)
                if not self.initialized and not self._started(record):
                    return False
                continue
            current = record.current
            if current is not None and current.status.get("state") == EXITED:
                if current.status.get("exit_code") == 0:
                    continue
                self.init_failed = True
                if policy == "Never":
                    return False
                await self.ensure_container(container, "OnFailure", init=True)
                return False
            if current is not None and current.status.get("state") in (CREATED, RUNNING):
                return False
            await self.ensure_container(container, "OnFailure", init=True)
            return False
        self.initialized = True
        return True

    @staticmethod
    def _started(record: Record) -> bool:
        current = record.current
        return (
            current is not None
            and current.status.get("state") == RUNNING
            and record.probe_results.get("startup", True)
        )

    async def ensure_container(self, container: Obj, policy: str, *, init: bool) -> None:
        record = self.record(container, init)
        current = record.current
        if current is not None and current.status.get("state") in (CREATED, RUNNING):
            if current.status.get("state") == RUNNING:
                if await self.apply_resize(container, record):
                    return
                self.ensure_probers(container, record)
            return
        if current is not None and current.status.get("state") == EXITED:
            self._note_exit(container, record)
            code = current.status.get("exit_code")
            if policy == "Never" or (policy == "OnFailure" and code == 0):
                return
            finished = current.status.get("finished_at", 0) / 1e9
            started = current.status.get("started_at", 0) / 1e9
            now = time.time()
            if started and finished - started > BACKOFF_RESET:
                record.backoff = 0.0
            if record.backoff and now < record.backoff_since + record.backoff:
                wait = record.backoff_since + record.backoff - now
                message = (
                    f"back-off {int(record.backoff)}s restarting failed container={record.name} "
                    f"pod={self.pod['metadata']['name']}_{self.pod['metadata']['namespace']}({self.uid})"
                )
                if record.waiting is None or record.waiting[0] != "CrashLoopBackOff":
                    self.kubelet.events.pod(
                        self.pod,
                        "Warning",
                        "BackOff",
                        f"Back-off restarting failed container {record.name} in pod "
                        f"{self.pod['metadata']['name']}_{self.pod['metadata']['namespace']}({self.uid})",
                        self._field_path(container, init),
                    )
                record.waiting = ("CrashLoopBackOff", message)
                self.timer(wait)
                return
            record.backoff = BACKOFF_START if not record.backoff else min(record.backoff * 2, BACKOFF_MAX)
            record.backoff_since = now
            record.restart_count += 1
            await self._remove_instance(record)
        await self.start_container(container, record, init)

    async def apply_resize(self, container: Obj, record: Record) -> bool:
        """Bring a running container to the resources its spec now asks for (:mod:`resize`);
        True when it was restarted for that."""
        current = record.current
        wanted = container.get("resources") or {}
        if current is None or record.applied is None:
            record.applied = wanted  # an instance adopted from an earlier run: taken as it is asked
            return False
        changed = resize.changed_resources(record.applied, wanted)
        if not changed:
            return False
        where = self._field_path(container, record.init)
        if resize.needs_restart(container, changed):
            self.kubelet.events.pod(
                self.pod,
                "Normal",
                "Killing",
                f"Container {container['name']} resize requires restart",
                where,
            )
            await self._stop_instance(container, record, grace=int(self._grace()))
            current.status = await self._status_or_empty(current.id)
            self._note_exit(container, record)
            record.restart_count += 1
            await self._remove_instance(record)
            await self.start_container(container, record, record.init)
            return True
        try:
            await self.runtime.update_container_resources(current.id, resize.update_request(container))
        except CriError as exc:
            self.kubelet.events.pod(
                self.pod, "Warning", "ResizeError", f"Cannot resize {container['name']}: {exc.message}", where
            )
            self.timer(BACKOFF_START)
            return False
        record.applied = wanted
        return False

    def _note_exit(self, container: Obj, record: Record) -> None:
        """Read the exited instance's termination message once."""
        current = record.current
        if current is None or current.status.get("_noted"):
            return
        current.status["_noted"] = True
        self._stop_probers(record)
        record.termination_message = self.kubelet.termination_message(self.pod, container, current)

    async def _remove_instance(self, record: Record) -> None:
        current = record.current
        if current is None:
            return
        record.last_terminated = self._terminated_state(record, current)
        await asyncio.to_thread(self.kubelet.prune_logs, self.pod, record.name, current.attempt)
        try:
            await self.runtime.remove_container(current.id)
        except CriError as exc:
            if exc.code != NOT_FOUND:
                log.warning("pod %s: cannot remove container %s: %s", self.name, current.id[:12], exc.message)
        record.current = None

    def _field_path(self, container: Obj, init: bool) -> str:
        kind = "initContainers" if init else "containers"
        if not init and self._ephemeral(container["name"]):
            kind = "ephemeralContainers"
        return f"spec.{kind}{{{container['name']}}}"

    def _ephemeral(self, name: str) -> bool:
        spec = self.pod.get("spec") or {}
        return any(c.get("name") == name for c in spec.get("ephemeralContainers") or [])

    async def start_container(self, container: Obj, record: Record, init: bool) -> None:
        pod = self.pod
        events = self.kubelet.events
        where = self._field_path(container, init)
        image = container.get("image", "")
        if not await self.ensure_image(container, record, where):
            return
        try:
            lookup = await self.kubelet.env_sources(pod, container)
            pod_with_ips = dict(
                pod,
                status=dict(
                    pod.get("status") or {},
                    podIP=self.pod_ip,
                    podIPs=[{"ip": ip} for ip in self.pod_ips],
                    hostIP=self.kubelet.node_ip,
                    hostIPs=[{"ip": self.kubelet.node_ip}],
                ),
            )
            env = container_env(
                pod_with_ips,
                container,
                services=self.kubelet.services(),
                lookup=lookup,
                node_allocatable=self.kubelet.allocatable,
            )
            assert self.volumes is not None
            mounts = [
                cri_config.Mount(path, str(host), readonly)
                for path, host, readonly in mounts_for(
                    container, self.volumes.paths, env, self.volumes.read_only
                )
            ]
            mounts += self.kubelet.default_mounts(pod, self, container)
            await self._check_non_root(container)
        except ConfigError as exc:
            record.waiting = ("CreateContainerConfigError", str(exc))
            events.pod(pod, "Warning", "Failed", f"Error: {exc}", where)
            self.timer(5.0)
            return
        termination_log = self.kubelet.termination_log(pod, container["name"], record.restart_count)
        config = cri_config.container_config(
            pod,
            container,
            env=env,
            mounts=mounts,
            restart_count=record.restart_count,
            init=init,
            termination_log=termination_log,
        )
        assert self.sandbox_id is not None and self.sandbox_config is not None
        try:
            container_id = await self.runtime.create_container(self.sandbox_id, config, self.sandbox_config)
        except CriError as exc:
            record.waiting = ("CreateContainerError", exc.message)
            events.pod(pod, "Warning", "Failed", f"Error: {exc.message}", where)
            self.timer(BACKOFF_START)
            return
        record.current = Instance(container_id, record.restart_count)
        record.applied = container.get("resources") or {}
        events.pod(pod, "Normal", "Created", f"Created container: {container['name']}", where)
        try:
            await self.runtime.start_container(container_id)
        except CriError as exc:
            record.waiting = ("RunContainerError", exc.message)
            events.pod(pod, "Warning", "Failed", f"Error: {exc.message}", where)
            record.current.status = await self._status_or_empty(container_id)
            return
        record.waiting = None
        events.pod(pod, "Normal", "Started", f"Started container {container['name']}", where)
        record.current.status = await self._status_or_empty(container_id)
        lifecycle = container.get("lifecycle") or {}
        if (hook := lifecycle.get("postStart")) is not None:
            outcome = await run_handler(self.runtime, container_id, container, hook, self.pod_ip, 30)
            if not outcome.ok:
                events.pod(
                    pod,
                    "Warning",
                    "FailedPostStartHook",
                    f"PostStartHook failed: {outcome.message}",
                    where,
                )
                await self._stop_instance(container, record, grace=int(self._grace()))
        self.ensure_probers(container, record)
        log.debug("pod %s: started %s (%s) from %s", self.name, container["name"], container_id[:12], image)

    async def _check_non_root(self, container: Obj) -> None:
        """``runAsNonRoot``: refuse a container that would run as root, as upstream words it."""
        pod_security = (self.pod.get("spec") or {}).get("securityContext") or {}
        security = container.get("securityContext") or {}
        if not security.get("runAsNonRoot", pod_security.get("runAsNonRoot")):
            return
        meta = self.pod["metadata"]
        where = f'(pod: "{meta["name"]}_{meta["namespace"]}({self.uid})", container: {container["name"]})'
        user = security.get("runAsUser", pod_security.get("runAsUser"))
        if user is not None:
            if int(user) == 0:
                raise ConfigError(f"container's runAsUser breaks non-root policy {where}")
            return
        uid, name = await self.kubelet.image_user(container.get("image", ""))
        if uid == 0 or (uid is None and name in ("", "root")):
            raise ConfigError(f"container has runAsNonRoot and image will run as root {where}")
        if uid is None:
            raise ConfigError(
                f"container has runAsNonRoot and image has non-numeric user ({name}), "
                f"cannot verify user is non-root {where}"
            )

    async def _status_or_empty(self, container_id: str) -> Obj:
        try:
            return await self.runtime.container_status(container_id)
        except CriError:
            return {}

    async def ensure_image(self, container: Obj, record: Record, where: str) -> bool:
        image = container.get("image", "")
        policy = container.get("imagePullPolicy") or ("Always" if _latest(image) else "IfNotPresent")
        present = await self.kubelet.image_present(image)
        events = self.kubelet.events
        if policy == "Never" and not present:
            message = f'Container image "{image}" is not present with pull policy of Never'
            record.waiting = ("ErrImageNeverPull", message)
            events.pod(self.pod, "Warning", "ErrImageNeverPull", message, where)
            self.timer(BACKOFF_START)
            return False
        if present and policy != "Always":
            events.pod(
                self.pod,
                "Normal",
                "Pulled",
                f'Container image "{image}" already present on machine and can be accessed by the pod',
                where,
            )
            return True
        key = f"pull/{image}"
        if record.waiting and record.waiting[0] in ("ErrImagePull", "ImagePullBackOff"):
            until = self.kubelet.pull_backoff.get(key, (0.0, 0.0))
            if time.time() < until[0] + until[1]:
                record.waiting = ("ImagePullBackOff", f'Back-off pulling image "{image}"')
                events.pod(self.pod, "Normal", "BackOff", f'Back-off pulling image "{image}"', where)
                self.timer(until[0] + until[1] - time.time())
                return False
        events.pod(self.pod, "Normal", "Pulling", f'Pulling image "{image}"', where)
        started = time.monotonic()
        try:
            await self.runtime.pull_image(image, self.sandbox_config)
        except CriError as exc:
            message = f'Failed to pull image "{image}": {exc.message}'
            record.waiting = ("ErrImagePull", message)
            events.pod(self.pod, "Warning", "Failed", message, where)
            events.pod(self.pod, "Warning", "Failed", "Error: ErrImagePull", where)
            before = self.kubelet.pull_backoff.get(key, (0.0, 0.0))[1]
            delay = BACKOFF_START if not before else min(before * 2, BACKOFF_MAX)
            self.kubelet.pull_backoff[key] = (time.time(), delay)
            self.timer(delay)
            return False
        self.kubelet.pull_backoff.pop(key, None)
        events.pod(
            self.pod,
            "Normal",
            "Pulled",
            f'Successfully pulled image "{image}" in {time.monotonic() - started:.3f}s',
            where,
        )
        return True

    # ----------------------------------------------------------------- probes
    def ensure_probers(self, container: Obj, record: Record) -> None:
        current = record.current
        if current is None or record.probers:
            return
        specs = [(kind, container.get(f"{kind}Probe")) for kind in ("startup", "liveness", "readiness")]
        started = not container.get("startupProbe")
        record.probe_results = {"startup": started}

        def changed(kind: str, ok: bool, message: str) -> None:
            self._probe_changed(container, record, current, kind, ok, message)

        for kind, probe in specs:
            if not probe:
                continue
            gate = (
                (lambda: True) if kind == "startup" else (lambda: record.probe_results.get("startup", True))
            )
            prober = Prober(
                kind, probe, self.runtime, current.id, container, lambda: self.pod_ip, changed, gate=gate
            )
            task = asyncio.get_running_loop().create_task(prober.run())
            record.probers.append(task)

    def _probe_changed(
        self, container: Obj, record: Record, instance: Instance, kind: str, ok: bool, message: str
    ) -> None:
        if record.current is not instance:
            return
        where = self._field_path(container, record.init)
        title = kind.removesuffix("-attempt").capitalize()
        if not ok:
            self.kubelet.events.pod(
                self.pod, "Warning", "Unhealthy", f"{title} probe failed: {message}", where
            )
        if kind.endswith("-attempt"):
            return
        record.probe_results[kind] = ok
        if not ok and kind in ("liveness", "startup"):
            self.kubelet.events.pod(
                self.pod,
                "Normal",
                "Killing",
                f"Container {container['name']} failed {kind} probe, will be restarted",
                where,
            )
            task = asyncio.get_running_loop().create_task(
                self._stop_instance(container, record, grace=int(self._grace()))
            )
            self.kubelet.keep(task)
        self.wake.set()

    def _grace(self) -> float:
        spec = self.pod.get("spec") or {}
        grace = (self.pod.get("metadata") or {}).get("deletionGracePeriodSeconds")
        if grace is None:
            grace = spec.get("terminationGracePeriodSeconds", 30)
        return float(grace or 0)

    # ----------------------------------------------------------------- stopping
    async def _stop_instance(self, container: Obj, record: Record, *, grace: int) -> None:
        current = record.current
        if current is None:
            return
        for prober in record.probers:
            prober.cancel()
        record.probers.clear()
        try:
            await self.runtime.stop_container(current.id, grace)
        except CriError as exc:
            if exc.code != NOT_FOUND:
                log.warning("pod %s: cannot stop %s: %s", self.name, container.get("name"), exc.message)
        self.wake.set()

    async def stop_everything(self, *, grace: float, reason: str) -> None:
        """Stop every container (:meth:`stop_containers`) and the sandbox."""
        await self.stop_containers(grace=grace, reason=reason)
        if self.sandbox_id is not None:
            try:
                await self.runtime.stop_pod_sandbox(self.sandbox_id)
            except CriError as exc:
                if exc.code != NOT_FOUND:
                    raise

    async def stop_containers(self, *, grace: float, reason: str) -> None:
        """Stop every container, preStop hooks first, within ``grace``.

        Sidecars stop last, in reverse order, as upstream orders them: each waits (within the
        grace period) for the app containers and the sidecars after it, so an app container's
        preStop hook can still use them.
        """
        spec = self.pod.get("spec") or {}
        containers = {
            c["name"]: c for c in (spec.get("containers") or []) + (spec.get("initContainers") or [])
        }
        deadline = time.monotonic() + grace
        stopped = {name: asyncio.Event() for name in self.records}
        prereqs = termination_prereqs(spec, set(self.records))

        async def wait_for_turn(name: str) -> None:
            waits = [stopped[n].wait() for n in prereqs.get(name, [])]
            if waits:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.gather(*waits), max(0.0, deadline - time.monotonic()))

        async def stop(record: Record) -> None:
            try:
                await stop_one(record)
            finally:
                stopped[record.name].set()

        async def stop_one(record: Record) -> None:
            current = record.current
            if current is None:
                return
            status = await self._status_or_empty(current.id)
            if status.get("state") == RUNNING:
                container = containers.get(record.name, {"name": record.name})
                where = self._field_path(container, record.init)
                if reason:
                    self.kubelet.events.pod(
                        self.pod, "Normal", "Killing", f"Stopping container {record.name}", where
                    )
                hook = (container.get("lifecycle") or {}).get("preStop")
                if hook is not None and grace > 0:
                    try:
                        outcome = await asyncio.wait_for(
                            run_handler(self.runtime, current.id, container, hook, self.pod_ip, grace),
                            max(0.1, deadline - time.monotonic()),
                        )
                        if not outcome.ok:
                            self.kubelet.events.pod(
                                self.pod,
                                "Warning",
                                "FailedPreStopHook",
                                f"PreStopHook failed: {outcome.message}",
                                where,
                            )
                    except TimeoutError:
                        pass
                await wait_for_turn(record.name)
                # At least 2 s for SIGTERM after a preStop hook, as upstream gives.
                remaining = max(
                    2 if hook is not None and grace > 0 else 0, int(deadline - time.monotonic() + 0.999)
                )
                await self._stop_instance(container, record, grace=remaining)
            current.status = await self._status_or_empty(current.id)

        await asyncio.gather(*(stop(r) for r in self.records.values()))

    async def terminate(self) -> None:
        """Stop the pod for its deletion, then remove what it left on the node."""
        if not self.terminated:
            await self.stop_everything(grace=self._grace(), reason="deleting")
            if not self.deleted_from_api:
                await self.write_status(terminating=True)
            for record in self.records.values():
                if record.current is not None:
                    try:
                        await self.runtime.remove_container(record.current.id)
                    except CriError as exc:
                        if exc.code != NOT_FOUND:
                            raise
            if self.sandbox_id is not None:
                try:
                    await self.runtime.remove_pod_sandbox(self.sandbox_id)
                except CriError as exc:
                    if exc.code != NOT_FOUND:
                        raise
            if self.volumes is not None:
                await asyncio.to_thread(self.volumes.teardown)
            else:
                await asyncio.to_thread(self.kubelet.remove_pod_dir, self.uid)
            await asyncio.to_thread(self.kubelet.remove_logs, self.pod)
            self.terminated = True

    async def final_delete(self) -> None:
        meta = self.pod["metadata"]
        try:
            await self.kubelet.api.delete(
                f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}",
                {
                    "kind": "DeleteOptions",
                    "apiVersion": "v1",
                    "gracePeriodSeconds": 0,
                    "preconditions": {"uid": self.uid},
                },
            )
        except ApiStatusError as exc:
            if exc.code not in (404, 409):
                log.warning("pod %s: final delete failed: %s", self.name, exc)
                self.timer(2.0)

    # ----------------------------------------------------------------- status
    def _terminated_state(self, record: Record, instance: Instance) -> Obj:
        status = instance.status
        code = int(status.get("exit_code") or 0)
        reason = status.get("reason") or ("Completed" if code == 0 else "Error")
        out = {
            "exitCode": code,
            "reason": reason,
            "startedAt": _ns_to_rfc3339(status.get("started_at", 0)),
            "finishedAt": _ns_to_rfc3339(status.get("finished_at", 0)),
            "containerID": f"containerd://{instance.id}",
        }
        if record.termination_message:
            out["message"] = record.termination_message
        elif status.get("message"):
            out["message"] = status["message"]
        return out

    def container_view(self, container: Obj, init: bool, waiting_reason: str) -> ContainerView:
        record = self.record(container, init)
        view = ContainerView(container["name"], container.get("image", ""), record.restart_count)
        view.restartable = init and is_sidecar(container)
        view.allocated = resize.allocated_resources(container)
        if record.last_terminated is not None:
            view.last_state = {"terminated": record.last_terminated}
        current = record.current
        if current is not None and current.status:
            status = current.status
            view.container_id = f"containerd://{current.id}"
            view.image_id = status.get("image_ref") or status.get("image_id") or ""
            image = (status.get("image") or {}).get("image")
            if image and image.startswith("sha256:"):
                pass
            state = status.get("state")
            if state in (CREATED, RUNNING):
                view.resources = resize.status_resources(
                    record.applied if record.applied is not None else container.get("resources") or {}
                )
            if state == RUNNING:
                view.state = {"running": {"startedAt": _ns_to_rfc3339(status.get("started_at", 0))}}
                started = record.probe_results.get("startup", True)
                view.started = bool(started)
                has_readiness = bool(container.get("readinessProbe"))
                view.ready = bool(started) and (
                    not has_readiness or record.probe_results.get("readiness", False)
                )
                if (init and not view.restartable) or (not init and self._ephemeral(view.name)):
                    # an init container is ready once it has completed; an ephemeral one never is
                    view.ready = False
            elif state == EXITED:
                # a completed init container is ready; a sidecar that exited is not
                view.ready = init and not view.restartable and status.get("exit_code") == 0
                if record.waiting is not None and record.waiting[0] == "CrashLoopBackOff":
                    view.state = {"waiting": {"reason": "CrashLoopBackOff", "message": record.waiting[1]}}
                    view.last_state = {"terminated": self._terminated_state(record, current)}
                else:
                    view.state = {"terminated": self._terminated_state(record, current)}
                view.started = False
            else:
                view.state = {"waiting": {"reason": "ContainerCreating"}}
                view.started = False
        else:
            view.state = {"waiting": {"reason": waiting_reason}}
            if record.waiting is not None:
                view.state = {"waiting": {"reason": record.waiting[0], "message": record.waiting[1]}}
            if record.current is None and record.last_terminated is None:
                view.started = False
        return view

    def compute_status(self, *, terminating: bool = False) -> Obj:
        pod = self.pod
        if self.rejected is not None:
            return rejected_status(pod, self.rejected, self.start_time)
        spec = pod.get("spec") or {}
        policy = spec.get("restartPolicy") or "Always"
        init_views = [
            self.container_view(c, True, "PodInitializing") for c in spec.get("initContainers") or []
        ]
        init_done = all(v.initialized for v in init_views)
        waiting_reason = "ContainerCreating" if init_done else "PodInitializing"
        views = [self.container_view(c, False, waiting_reason) for c in spec.get("containers") or []]
        sandbox_ready = self.sandbox_id is not None and not terminating and self.failure is None
        if terminating:
            # Deleted: the phase is terminal, from how the containers ended (upstream since 1.27).
            policy = "Never"
            for view in views:
                view.ready = False
        pod_phase = podstatus.phase(
            policy,
            init_views,
            views,
            init_failed=self.init_failed,
            initialized=any(view.has_run for view in views),
        )
        if self.failure is not None:
            pod_phase = "Failed"
        status: Obj = {
            "phase": pod_phase,
            "conditions": podstatus.conditions(
                pod, init_views, views, sandbox_ready=sandbox_ready, pod_phase=pod_phase
            ),
            "hostIP": self.kubelet.node_ip,
            "hostIPs": [{"ip": self.kubelet.node_ip}],
            "startTime": (pod.get("status") or {}).get("startTime") or self.start_time,
            "containerStatuses": [v.as_status() for v in views],
            "qosClass": podstatus.qos_class(pod),
        }
        if init_views:
            status["initContainerStatuses"] = [v.as_status() for v in init_views]
        if ephemeral := spec.get("ephemeralContainers") or []:
            status["ephemeralContainerStatuses"] = [
                self.container_view(c, False, waiting_reason).as_status() for c in ephemeral
            ]
        if self.pod_ip:
            status["podIP"] = self.pod_ip
            status["podIPs"] = [{"ip": ip} for ip in self.pod_ips]
        if self.failure is not None:
            status["reason"], status["message"] = self.failure
        if isinstance(generation := self.pod["metadata"].get("generation"), int):
            status["observedGeneration"] = generation
        return status

    async def write_status(self, *, terminating: bool = False) -> None:
        status = self.compute_status(terminating=terminating)
        comparable = _without_times(status)
        if self.last_status is not None and comparable == _without_times(self.last_status):
            return
        meta = self.pod["metadata"]
        try:
            updated = await self.kubelet.api.patch(
                f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status",
                {"metadata": {"uid": self.uid}, "status": status},
            )
        except ApiStatusError as exc:
            if exc.code == 404:
                return
            log.info("pod %s: status update failed: %s", self.name, exc)
            self.timer(2.0)
            return
        self.last_status = status
        if (updated.get("metadata") or {}).get("uid") == self.uid:
            # Only the status: the informer's view of the rest (a deletion, say) may be newer.
            self.pod = dict(self.pod, status=updated.get("status"))


def termination_prereqs(spec: Obj, present: set[str]) -> dict[str, list[str]]:
    """Which containers each one waits for before it is stopped (upstream's termination order).

    App containers and regular init containers wait for none. A sidecar waits for every app
    container and for the sidecar after it, so sidecars stop in reverse order once the app
    containers are gone. Only names in ``present`` (the containers the pod has) are waited for.
    """
    apps = [c["name"] for c in spec.get("containers") or [] if c["name"] in present]
    out: dict[str, list[str]] = {}
    later: str | None = None
    for container in reversed(spec.get("initContainers") or []):
        if not is_sidecar(container):
            continue
        name = container["name"]
        out[name] = apps + ([later] if later is not None and later in present else [])
        later = name
    return out


def _parse_time(text: str) -> float:
    try:
        return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        return time.time()


def _without_times(status: Obj) -> Obj:
    return dict(
        status,
        conditions=[
            {k: v for k, v in c.items() if k != "lastTransitionTime"} for c in status.get("conditions", [])
        ],
    )


def _latest(image: str) -> bool:
    last = image.rsplit("/", 1)[-1]
    if "@" in last:
        return False
    return ":" not in last or last.endswith(":latest")
