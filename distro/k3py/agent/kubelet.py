"""The kubelet: this node's pods, from the API server's view to the runtime and back.

It follows the pods bound to the node (a watch with ``spec.nodeName=<node>``) and gives each
its :class:`~k3py.agent.worker.PodWorker`. A relist of the runtime every second wakes the
worker of any pod whose containers changed state (containerd 1.6 has no event stream for
CRI). At start it adopts what an earlier run left: sandboxes and containers carry the pod's
UID and the container's name and restart count as labels, so a restarted agent continues
them instead of starting duplicates, and removes those whose pod no longer exists.

A pod seen for the first time is admitted first (:mod:`~k3py.agent.admission`): checked against
this node's Node object (followed by a watch of its own) and the pods already admitted; one that
does not fit gets a worker that only reports it Failed and cleans up after it. Pods arriving in
the same turn of the event loop are admitted oldest first, as upstream sorts a batch by creation
time; pods adopted at start were admitted by an earlier run and are not checked again.

It also answers the kubelet API's questions (:class:`k3py.agent.kubelet_api.KubeletBackend`):
which pods run here, where a container's log files are, and the node's stats.
"""

from __future__ import annotations

import asyncio
import calendar
import logging
import re
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from k3py.agent import admission, cri_config
from k3py.agent.cri import CriError, Runtime
from k3py.agent.cri_config import Mount, NodeSettings
from k3py.agent.envvars import ConfigError
from k3py.agent.events import Recorder
from k3py.agent.kubelet_api import ContainerLocation
from k3py.agent.node import default_labels
from k3py.agent.podcertificates import ClientRequests
from k3py.agent.volumes import teardown_pod_dir
from k3py.agent.worker import EXITED, RUNNING, Instance, PodWorker
from k3py.api.selectors import SelectorError, from_label_selector_object
from k3py.client.informer import Informer
from k3py.client.rest import ApiStatusError, RestClient

log = logging.getLogger(__name__)

Obj = dict[str, Any]
RELIST = 1.0
MESSAGE_LIMIT = 4096
FALLBACK_LINES = 80
FALLBACK_BYTES = 2048


class Kubelet:
    def __init__(
        self,
        *,
        api: RestClient,
        runtime: Runtime,
        node: NodeSettings,
        node_ip: str,
        agent_dir: Path,
        allocatable: Mapping[str, str],
    ) -> None:
        self.api = api
        self.runtime = runtime
        self.node_settings = node
        self.node_name = node.node_name
        self.node_ip = node_ip
        self.agent_dir = agent_dir
        self.allocatable = dict(allocatable)
        self.events = Recorder(api, node.node_name)
        self.pod_certificates = ClientRequests(api, node.node_name, self.events)
        self.pods_informer = Informer(api, "/api/v1/pods", field_selector=f"spec.nodeName={node.node_name}")
        self.services_informer = Informer(api, "/api/v1/services")
        self.node_informer = Informer(api, "/api/v1/nodes", field_selector=f"metadata.name={node.node_name}")
        self.workers: dict[str, PodWorker] = {}
        self.pull_backoff: dict[str, tuple[float, float]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._states: dict[str, int] = {}
        self._adopted = False
        self._arrivals: dict[str, Obj] = {}
        """Pods seen for the first time, waiting for admission (by UID)."""
        self._admission_due = False
        self._rereading_node: set[str] = set()
        """Arrivals whose admission waits for the Node to be read again."""

    # ------------------------------------------------------------------ paths
    def pod_dir(self, uid: str) -> Path:
        return self.agent_dir / "kubelet" / "pods" / uid

    def log_dir(self, pod: Obj) -> Path:
        meta = pod["metadata"]
        return self.agent_dir / "logs" / "pods" / f"{meta['namespace']}_{meta['name']}_{meta['uid']}"

    def termination_log(self, pod: Obj, container: str, restart: int) -> Path:
        path = self.pod_dir(pod["metadata"]["uid"]) / "containers" / container / str(restart)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)
        path.chmod(0o666)
        return path

    def remove_pod_dir(self, uid: str) -> None:
        teardown_pod_dir(self.pod_dir(uid))

    async def record_netns(self, uid: str, sandbox_id: str) -> None:
        """Note where the sandbox's network namespace is (for ``k3py killall``)."""
        try:
            info = await self.runtime.pod_sandbox_info(sandbox_id)
        except CriError:
            return
        paths = set(re.findall(r"/(?:var/)?run/netns/[A-Za-z0-9_.-]+", " ".join(info.values())))
        if paths:
            record = self.pod_dir(uid) / cri_config.NETNS_RECORD
            record.parent.mkdir(parents=True, exist_ok=True)
            with record.open("a") as out:
                out.writelines(f"{p}\n" for p in sorted(paths))

    def remove_logs(self, pod: Obj) -> None:
        shutil.rmtree(self.log_dir(pod), ignore_errors=True)

    def prune_logs(self, pod: Obj, container: str, attempt: int) -> None:
        """Keep a container's log of ``attempt`` (the one ``--previous`` reads) and the newer ones."""
        directory = self.log_dir(pod) / container
        if not directory.is_dir():
            return
        for entry in directory.glob("*.log"):
            if entry.stem.isdigit() and int(entry.stem) < attempt:
                entry.unlink(missing_ok=True)

    # ------------------------------------------------------------------ lifecycle
    def keep(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def run(self) -> None:
        """Follow pods and the runtime until cancelled (pods keep running when it is)."""
        self.pods_informer.add_handler(self._pod_changed)
        informers = [
            asyncio.create_task(self.pods_informer.run(), name="pods-informer"),
            asyncio.create_task(self.services_informer.run(), name="services-informer"),
            asyncio.create_task(self.node_informer.run(), name="node-informer"),
        ]
        try:
            await self.pods_informer.synced()
            await self.services_informer.synced()  # pods' service variables need them
            await self.node_informer.synced()  # admission reads the Node
            await self.adopt()
            await self.relist_forever()
        finally:
            for task in informers:
                task.cancel()
            for worker in self.workers.values():
                if worker.task is not None:
                    worker.task.cancel()
                for record in worker.records.values():
                    for prober in record.probers:
                        prober.cancel()
            for task in list(self._tasks):
                task.cancel()
            await self.events.close()

    def _pod_changed(self, old: Obj | None, new: Obj | None) -> None:
        if not self._adopted:
            return
        if old is not None and new is not None and old["metadata"]["uid"] != new["metadata"]["uid"]:
            # Deleted and created again under the same name while the watch was away.
            self._pod_changed(old, None)
            old = None
        obj = new or old
        assert obj is not None
        uid = obj["metadata"]["uid"]
        worker = self.workers.get(uid)
        if worker is None:
            self._arrived(uid, new)
            return
        worker.update(new)

    # ------------------------------------------------------------------ admission
    def _arrived(self, uid: str, pod: Obj | None) -> None:
        """A pod without a worker: admitted with the others of this turn of the loop, or
        forgotten if it is deleted before."""
        if pod is None:
            self._arrivals.pop(uid, None)
            return
        self._arrivals[uid] = pod
        if uid not in self._rereading_node and not self._admission_due:
            self._admission_due = True
            asyncio.get_running_loop().call_soon(self._admit_arrivals)

    def _admit_arrivals(self) -> None:
        self._admission_due = False
        waiting = [pod for uid, pod in self._arrivals.items() if uid not in self._rereading_node]
        for pod in sorted(waiting, key=lambda p: str(p["metadata"].get("creationTimestamp") or "")):
            del self._arrivals[pod["metadata"]["uid"]]
            try:
                self._admit(pod, None)
            except Exception:
                # A pod the checks cannot read runs as it did before admission existed; the
                # others of the batch are still admitted.
                log.exception(
                    "pod %s/%s: admission failed",
                    pod["metadata"].get("namespace"),
                    pod["metadata"].get("name"),
                )
                if pod["metadata"]["uid"] not in self.workers:
                    self._start_worker(pod)

    def _admit(self, pod: Obj, fresh_node: Obj | None) -> None:
        """Give the pod a worker: one that runs it, or one that reports it rejected.

        A pod that has finished or is being deleted is not checked (its worker only cleans up).
        A pod that fails on its node affinity alone waits for the Node to be read from the API
        server and is checked again, as upstream does (its labels may have changed just now).
        """
        if not admission.wanted(pod):
            self._start_worker(pod)
            return
        found = admission.failures(pod, fresh_node or self.node_object(), self.admitted_pods())
        uid = pod["metadata"]["uid"]
        if fresh_node is None and admission.only_node_affinity(found):
            self._arrivals[uid] = pod
            self._rereading_node.add(uid)
            self.keep(asyncio.get_running_loop().create_task(self._admit_on_fresh_node(uid)))
            return
        if not found:
            self._start_worker(pod)
            return
        failure = found[0]
        meta = pod["metadata"]
        log.info("Rejecting pod %s/%s: %s", meta["namespace"], meta["name"], failure.message)
        self.events.pod(pod, "Warning", failure.reason, failure.message)
        self._start_worker(pod, rejected=failure)

    async def _admit_on_fresh_node(self, uid: str) -> None:
        node: Obj | None = None
        try:
            node = await self.api.get(f"/api/v1/nodes/{self.node_name}")
        except ApiStatusError as exc:  # upstream keeps the first answer when the Node cannot be read
            log.info("cannot read node %s again for admission: %s", self.node_name, exc)
        finally:
            self._rereading_node.discard(uid)
        pod = self._arrivals.pop(uid, None)
        if pod is not None and uid not in self.workers:
            self._admit(pod, node or self.node_object())

    def node_object(self) -> Obj:
        """This node's Node as last seen; before it is, what the agent registers it with (upstream's
        ``initialNode``)."""
        found = self.node_informer.get("", self.node_name)
        if found is not None:
            return found
        return {
            "metadata": {"name": self.node_name, "labels": default_labels(self.node_name)},
            "spec": {},
            "status": {"capacity": dict(self.allocatable), "allocatable": dict(self.allocatable)},
        }

    def admitted_pods(self) -> list[Obj]:
        """The pods admitted here that still hold their resources."""
        return [w.pod for w in self.workers.values() if w.holds_resources]

    def _start_worker(
        self,
        pod: Obj,
        adopt: tuple[str | None, int, dict[str, Instance]] | None = None,
        *,
        rejected: admission.Failure | None = None,
    ) -> PodWorker:
        uid = pod["metadata"]["uid"]
        worker = PodWorker(self, uid, pod)
        worker.rejected = rejected
        if adopt is not None:
            sandbox_id, attempt, instances = adopt
            worker.sandbox_id = sandbox_id
            worker.sandbox_attempt = attempt
            for name, instance in instances.items():
                init = any(c.get("name") == name for c in (pod.get("spec") or {}).get("initContainers") or [])
                record = worker.record({"name": name}, init)
                record.current = instance
                record.restart_count = instance.attempt
            if (pod.get("status") or {}).get("startTime"):
                worker.start_time = pod["status"]["startTime"]
            worker.last_status = None
        self.workers[uid] = worker
        worker.task = asyncio.get_running_loop().create_task(self._work(worker), name=f"pod-{uid[:8]}")
        return worker

    async def _work(self, worker: PodWorker) -> None:
        try:
            await worker.run()
        finally:
            if self.workers.get(worker.uid) is worker and worker.terminated:
                del self.workers[worker.uid]

    async def adopt(self) -> None:
        """Continue the sandboxes and containers an earlier run left; remove those of vanished pods."""
        sandboxes = await self.runtime.list_pod_sandbox()
        containers = await self.runtime.list_containers()
        pods = {p["metadata"]["uid"]: p for p in self.pods_informer.items()}
        by_uid: dict[str, list[Obj]] = {}
        for sandbox in sandboxes:
            uid = (sandbox.get("labels") or {}).get(cri_config.POD_UID)
            if uid:
                by_uid.setdefault(uid, []).append(sandbox)
        for uid, found in by_uid.items():
            pod = pods.get(uid)
            if pod is None:
                await self._remove_orphan(uid, found, containers)
                continue
            ready = [s for s in found if s.get("state") == 0]
            newest = max(ready or found, key=lambda s: (s.get("metadata") or {}).get("attempt", 0))
            instances: dict[str, Instance] = {}
            for container in containers:
                if container.get("pod_sandbox_id") != newest["id"]:
                    continue
                labels = container.get("labels") or {}
                annotations = container.get("annotations") or {}
                name = labels.get(cri_config.CONTAINER_NAME)
                if not name:
                    continue
                attempt = int(annotations.get(cri_config.RESTART_COUNT) or 0)
                if name not in instances or instances[name].attempt < attempt:
                    instances[name] = Instance(container["id"], attempt)
            for stale in found:
                if stale is not newest:
                    await self._remove_sandbox(stale["id"], containers)
            log.info(
                "Adopting pod %s/%s (%d containers)",
                pod["metadata"]["namespace"],
                pod["metadata"]["name"],
                len(instances),
            )
            attempt = int((newest.get("metadata") or {}).get("attempt") or 0)
            self._start_worker(pod, (newest["id"], attempt, instances))
        # Pod directories of pods that are gone (before any new worker makes one).
        root = self.agent_dir / "kubelet" / "pods"
        if root.is_dir():
            for entry in root.iterdir():
                if entry.name not in pods:
                    await asyncio.to_thread(teardown_pod_dir, entry)
        self._adopted = True
        # What changed while adopting: workers see the pods as they are now.
        current = {p["metadata"]["uid"]: p for p in self.pods_informer.items()}
        for uid, worker in list(self.workers.items()):
            worker.update(current.get(uid))
        for uid, pod in current.items():
            if uid not in self.workers:
                self._arrived(uid, pod)  # new to this run: admitted, oldest first

    async def remove_sandbox(self, sandbox_id: str | None) -> None:
        """Remove a sandbox and its containers (stopped already)."""
        if sandbox_id is None:
            return
        await self._remove_sandbox(sandbox_id, await self.runtime.list_containers())

    async def remove_stale_sandboxes(self, uid: str) -> None:
        """Remove every sandbox of the pod ``uid`` that no worker holds."""
        held = {w.sandbox_id for w in self.workers.values()}
        containers = await self.runtime.list_containers()
        for sandbox in await self.runtime.list_pod_sandbox():
            if (sandbox.get("labels") or {}).get(cri_config.POD_UID) == uid and sandbox["id"] not in held:
                await self._remove_sandbox(sandbox["id"], containers)

    async def _remove_orphan(self, uid: str, sandboxes: list[Obj], containers: list[Obj]) -> None:
        log.info("Removing the sandboxes of pod %s, which no longer exists", uid)
        for sandbox in sandboxes:
            await self._remove_sandbox(sandbox["id"], containers)
        await asyncio.to_thread(self.remove_pod_dir, uid)

    async def _remove_sandbox(self, sandbox_id: str, containers: list[Obj]) -> None:
        for container in containers:
            if container.get("pod_sandbox_id") == sandbox_id:
                try:
                    await self.runtime.stop_container(container["id"], 0)
                    await self.runtime.remove_container(container["id"])
                except CriError as exc:
                    log.warning("cannot remove container %s: %s", container["id"][:12], exc.message)
        try:
            await self.runtime.stop_pod_sandbox(sandbox_id)
            await self.runtime.remove_pod_sandbox(sandbox_id)
        except CriError as exc:
            log.warning("cannot remove sandbox %s: %s", sandbox_id[:12], exc.message)

    async def relist_forever(self) -> None:
        """Wake the worker of every pod whose containers changed state since the last look."""
        while True:
            try:
                containers = await self.runtime.list_containers()
            except CriError as exc:
                log.info("runtime relist failed: %s", exc.message)
                await asyncio.sleep(RELIST * 2)
                continue
            states = {}
            for container in containers:
                states[container["id"]] = container.get("state", 0)
                if self._states.get(container["id"]) != states[container["id"]]:
                    uid = (container.get("labels") or {}).get(cri_config.POD_UID)
                    worker = self.workers.get(uid or "")
                    if worker is not None:
                        worker.wake.set()
            for gone in set(self._states) - set(states):
                for worker in self.workers.values():
                    if any(r.current and r.current.id == gone for r in worker.records.values()):
                        worker.wake.set()
            self._states = states
            await asyncio.sleep(RELIST)

    # ------------------------------------------------------------------ what workers ask
    def services(self) -> list[Obj]:
        return self.services_informer.items()

    async def fetch(self, namespace: str, kind: str, name: str) -> Obj | None:
        plural = {"ConfigMap": "configmaps", "Secret": "secrets"}[kind]
        try:
            return await self.api.get(f"/api/v1/namespaces/{namespace}/{plural}/{name}")
        except ApiStatusError as exc:
            if exc.code == 404:
                return None
            raise ConfigError(f'cannot get {kind.lower()} "{name}": {exc}') from None

    async def trust_bundles(self, source: Obj) -> list[str]:
        """The trust bundles a projected ``clusterTrustBundle`` source names: one by ``name``,
        or every bundle of ``signerName`` its ``labelSelector`` matches (no selector: none)."""
        path = "/apis/certificates.k8s.io/v1/clustertrustbundles"
        if name := source.get("name"):
            try:
                return [str((await self.api.get(f"{path}/{name}")).get("spec", {}).get("trustBundle") or "")]
            except ApiStatusError as exc:
                if exc.code == 404:
                    return []
                raise ConfigError(f'cannot get clustertrustbundle "{name}": {exc}') from None
        signer, raw = source.get("signerName"), source.get("labelSelector")
        if not signer or raw is None:
            return []
        try:
            selector = from_label_selector_object(raw)
        except SelectorError as exc:
            raise ConfigError(f"clusterTrustBundle labelSelector: {exc}") from None
        try:
            listed = await self.api.list(path)
        except ApiStatusError as exc:
            raise ConfigError(f"cannot list clustertrustbundles: {exc}") from None
        return [
            str(b.get("spec", {}).get("trustBundle") or "")
            for b in listed["items"]
            if b.get("spec", {}).get("signerName") == signer
            and selector.matches((b.get("metadata") or {}).get("labels") or {})
        ]

    async def env_sources(self, pod: Obj, container: Obj) -> Callable[[str, str], Obj | None]:
        """A lookup over the config maps and secrets ``container``'s environment names."""
        wanted: set[tuple[str, str]] = set()
        for source in container.get("envFrom") or []:
            if ref := source.get("configMapRef"):
                wanted.add(("ConfigMap", ref.get("name", "")))
            if ref := source.get("secretRef"):
                wanted.add(("Secret", ref.get("name", "")))
        for item in container.get("env") or []:
            source = item.get("valueFrom") or {}
            if ref := source.get("configMapKeyRef"):
                wanted.add(("ConfigMap", ref.get("name", "")))
            if ref := source.get("secretKeyRef"):
                wanted.add(("Secret", ref.get("name", "")))
        namespace = pod["metadata"]["namespace"]
        found: dict[tuple[str, str], Obj | None] = {}
        for kind, name in wanted:
            found[(kind, name)] = await self.fetch(namespace, kind, name)

        def lookup(kind: str, name: str) -> Obj | None:
            return found.get((kind, name))

        lookup.namespace = namespace  # type: ignore[attr-defined]
        return lookup

    async def service_account_token(
        self, pod: Obj, account: str, audience: str, seconds: int
    ) -> tuple[str, float]:
        meta = pod["metadata"]
        spec: Obj = {
            "expirationSeconds": seconds,
            "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": meta["name"], "uid": meta["uid"]},
        }
        if audience:
            spec["audiences"] = [audience]
        try:
            answer = await self.api.create(
                f"/api/v1/namespaces/{meta['namespace']}/serviceaccounts/{account}/token",
                {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec},
            )
        except ApiStatusError as exc:
            raise ConfigError(f'cannot get a token for service account "{account}": {exc}') from None
        status = answer.get("status") or {}
        expires = str(status.get("expirationTimestamp") or "")
        when: float
        try:
            when = calendar.timegm(time.strptime(expires, "%Y-%m-%dT%H:%M:%SZ"))
        except ValueError:
            when = time.time() + seconds
        return str(status.get("token") or ""), when

    async def image_user(self, image: str) -> tuple[int | None, str]:
        """The user an image runs as: (uid, or None when named) and the name."""
        found = await self.runtime.image_status(image)
        if found is None:
            return None, ""
        uid = found.get("uid")
        return (int(uid["value"]) if uid else None), str(found.get("username") or "")

    async def image_present(self, image: str) -> bool:
        try:
            return await self.runtime.image_status(image) is not None
        except CriError:
            return False

    def default_mounts(self, pod: Obj, worker: PodWorker, container: Obj) -> list[Mount]:
        """``/etc/hosts`` managed by the kubelet for pods with their own network, unless the
        container mounts its own there."""
        if cri_config.host_network(pod):
            return []
        spec = pod.get("spec") or {}
        if any(m.get("mountPath") == "/etc/hosts" for m in container.get("volumeMounts") or []):
            return []
        hosts = self.pod_dir(pod["metadata"]["uid"]) / "etc-hosts"
        lines = [
            "# Kubernetes-managed hosts file.",
            "127.0.0.1\tlocalhost",
            "::1\tlocalhost ip6-localhost ip6-loopback",
            "fe00::0\tip6-localnet",
            "fe00::0\tip6-mcastprefix",
            "fe00::1\tip6-allnodes",
            "fe00::2\tip6-allrouters",
        ]
        hostname = cri_config.pod_hostname(pod)
        if spec.get("subdomain"):
            namespace = pod["metadata"]["namespace"]
            domain = self.node_settings.cluster_domain
            fqdn = f"{hostname}.{spec['subdomain']}.{namespace}.svc.{domain}"
            names = f"{fqdn}\t{hostname}"
        else:
            names = hostname
        for ip in worker.pod_ips:
            lines.append(f"{ip}\t{names}")
        aliases = spec.get("hostAliases") or []
        if aliases:
            lines.append("")
            lines.append("# Entries added by HostAliases.")
            for alias in aliases:
                lines.append(f"{alias.get('ip', '')}\t{chr(9).join(alias.get('hostnames') or [])}")
        hosts.parent.mkdir(parents=True, exist_ok=True)
        hosts.write_text("\n".join(lines) + "\n")
        return [Mount("/etc/hosts", str(hosts))]

    def termination_message(self, pod: Obj, container: Obj, instance: Instance) -> str:
        path = self.pod_dir(pod["metadata"]["uid"]) / "containers" / container["name"] / str(instance.attempt)
        try:
            with path.open("rb") as f:
                message: str = f.read(MESSAGE_LIMIT).decode(errors="replace")
        except OSError:
            message = ""
        if (
            not message
            and container.get("terminationMessagePolicy") == "FallbackToLogsOnError"
            and instance.status.get("state") == EXITED
            and instance.status.get("exit_code") != 0
        ):
            log_path = str(instance.status.get("log_path") or "")
            message = _log_tail(Path(log_path)) if log_path else ""
        return message

    # ------------------------------------------------------------------ the kubelet API's backend
    def pods(self) -> list[Obj]:
        return [w.pod for w in self.workers.values()]

    def locate(self, namespace: str, pod: str, container: str | None) -> ContainerLocation:
        found = self.pods_informer.get(namespace, pod)
        worker = self.workers.get(found["metadata"]["uid"]) if found is not None else None
        if found is None or worker is None:
            raise LookupError(f"pod {namespace}/{pod} is not running on node {self.node_name}")
        spec = found.get("spec") or {}
        names = [
            c["name"]
            for kind in ("containers", "initContainers", "ephemeralContainers")
            for c in spec.get(kind) or []
        ]
        name = container or (names[0] if names else "")
        if name not in names:
            raise LookupError(f"container {name} is not valid for pod {pod}")
        record = worker.records.get(name)
        log_dir = self.log_dir(found)
        current = record.current if record is not None else None
        previous = None
        if record is not None and record.restart_count > 0:
            previous = log_dir / name / f"{record.restart_count - 1}.log"
        return ContainerLocation(
            pod_uid=found["metadata"]["uid"],
            sandbox_id=worker.sandbox_id or "",
            container_id=current.id if current is not None else None,
            log_path=(log_dir / name / f"{current.attempt}.log") if current is not None else None,
            previous_log_path=previous,
            running=current is not None and current.status.get("state") == RUNNING,
        )

    async def stats_summary(self) -> Obj:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        try:
            stats = await self.runtime.list_container_stats()
        except CriError:
            stats = []
        by_id = {(s.get("attributes") or {}).get("id"): s for s in stats}
        pods = []
        for worker in self.workers.values():
            meta = worker.pod["metadata"]
            containers = []
            for record in worker.records.values():
                if record.current is None:
                    continue
                s = by_id.get(record.current.id) or {}
                cpu = s.get("cpu") or {}
                memory = s.get("memory") or {}
                containers.append(
                    {
                        "name": record.name,
                        "startTime": worker.start_time,
                        "cpu": {
                            "time": now,
                            "usageCoreNanoSeconds": (cpu.get("usage_core_nano_seconds") or {}).get(
                                "value", 0
                            ),
                        },
                        "memory": {
                            "time": now,
                            "workingSetBytes": (memory.get("working_set_bytes") or {}).get("value", 0),
                        },
                    }
                )
            pods.append(
                {
                    "podRef": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"]},
                    "startTime": worker.start_time,
                    "containers": containers,
                }
            )
        usage = shutil.disk_usage(self.agent_dir)
        return {
            "node": {
                "nodeName": self.node_name,
                "startTime": now,
                "fs": {
                    "time": now,
                    "availableBytes": usage.free,
                    "capacityBytes": usage.total,
                    "usedBytes": usage.used,
                },
                "memory": {"time": now, **_memory()},
            },
            "pods": pods,
        }


def _memory() -> Obj:
    values: dict[str, int] = {}
    try:
        with Path("/proc/meminfo").open() as f:
            for line in f:
                key, _, rest = line.partition(":")
                values[key] = int(rest.split()[0]) * 1024
    except OSError:
        return {}
    available = values.get("MemAvailable", 0)
    total = values.get("MemTotal", 0)
    return {
        "availableBytes": available,
        "usageBytes": total - available,
        "workingSetBytes": total - available,
    }


def _log_tail(path: Path) -> str:
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            f.seek(max(0, size - 64 * 1024))
            raw = f.read().decode(errors="replace").splitlines()[-FALLBACK_LINES:]
    except OSError:
        return ""
    text = "\n".join(line.split(" ", 3)[3] if line.count(" ") >= 3 else line for line in raw)
    return text[-FALLBACK_BYTES:]


def ensure_dirs(agent_dir: Path) -> None:
    for sub in ("kubelet/pods", "logs/pods"):
        (agent_dir / sub).mkdir(parents=True, exist_ok=True)
    agent_dir.chmod(0o700)
