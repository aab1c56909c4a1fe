"""This node's Node object and its Lease: registration, status, heartbeats.

The node registers itself with its own identity (``system:node:<name>``), then keeps its
status current: addresses, capacity and allocatable, node info, the images it holds, and the
conditions. Ready follows the runtime: a runtime or pod network that is not ready makes the
node ``NotReady`` with the runtime's reason, as upstream reports it. The status is written
when it changes and at least every minute; the Lease in ``kube-node-lease`` is renewed every
10 seconds, which is what the node lifecycle controller watches.
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from k3py import KUBERNETES_VERSION, __version__
from k3py.agent.cri import CriError, Runtime
from k3py.client.rest import ApiStatusError, RestClient
from k3py.util.arch import kube_arch

log = logging.getLogger(__name__)

Obj = dict[str, Any]

LEASE_SECONDS = 40
LEASE_RENEW = 10.0
STATUS_CHECK = 10.0
STATUS_REPORT = 60.0
KUBELET_PORT = 10250
MAX_PODS = 110
KUBELET_VERSION = f"v{KUBERNETES_VERSION}+k3py{__version__}"


@dataclass(frozen=True)
class NodeIdentity:
    name: str
    ip: str
    labels: dict[str, str]
    data_dir: Path
    kubelet_port: int = KUBELET_PORT


def capacity(data_dir: Path) -> dict[str, str]:
    """CPU, memory, pods and ephemeral storage as this machine has them (all allocatable)."""
    memory_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_kib = int(line.split()[1])
    except OSError:
        pass
    return {
        "cpu": str(os.cpu_count() or 1),
        "memory": f"{memory_kib}Ki",
        "pods": str(MAX_PODS),
        "ephemeral-storage": f"{shutil.disk_usage(data_dir).total // 1024}Ki",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
    }


def default_labels(name: str) -> dict[str, str]:
    arch = kube_arch()
    return {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": arch,
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": arch,
    }


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def _os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.partition("=")[2].strip('"')
    return "Linux"


def node_info(runtime_version: str) -> Obj:
    machine_id = _read("/etc/machine-id")
    return {
        "machineID": machine_id,
        "systemUUID": _read("/sys/class/dmi/id/product_uuid") or machine_id,
        "bootID": _read("/proc/sys/kernel/random/boot_id"),
        "kernelVersion": platform.release(),
        "osImage": _os_image(),
        "containerRuntimeVersion": runtime_version,
        "kubeletVersion": KUBELET_VERSION,
        "kubeProxyVersion": "",
        "operatingSystem": "linux",
        "architecture": kube_arch(),
    }


def _condition(kind: str, true: bool, reason: str, message: str, previous: list[Obj], now: str) -> Obj:
    status = "True" if true else "False"
    before = next((c for c in previous if c.get("type") == kind), None)
    changed = before is None or before.get("status") != status
    return {
        "type": kind,
        "status": status,
        "lastHeartbeatTime": now,
        "lastTransitionTime": now if changed else before.get("lastTransitionTime", now) if before else now,
        "reason": reason,
        "message": message,
    }


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class NodeAgent:
    """Registers the node, then keeps its status and lease current until cancelled."""

    def __init__(self, api: RestClient, runtime: Runtime, identity: NodeIdentity) -> None:
        self.api = api
        self.runtime = runtime
        self.identity = identity
        self.node: Obj | None = None
        self.runtime_version = ""
        self.capacity = capacity(identity.data_dir)
        self._last_written: Obj | None = None
        self._last_write = 0.0
        self.pod_cidr_known = asyncio.Event()

    @property
    def path(self) -> str:
        return f"/api/v1/nodes/{self.identity.name}"

    async def register(self) -> Obj:
        version = await self.runtime.version()
        self.runtime_version = (
            f"{version.get('runtime_name', 'containerd')}://{version.get('runtime_version', '')}"
        )
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": self.identity.name, "labels": self.identity.labels},
            "spec": {},
        }
        try:
            self.node = await self.api.create("/api/v1/nodes", body)
            log.info("Registered node %s", self.identity.name)
        except ApiStatusError as exc:
            if exc.code != 409:
                raise
            self.node = await self.api.patch(self.path, {"metadata": {"labels": self.identity.labels}})
            log.info("Node %s was registered before; updated its labels", self.identity.name)
        await self.write_status(force=True)
        return self.node

    async def pod_cidr(self, wait: float) -> str | None:
        """``spec.podCIDR`` once the server has allocated one (None after ``wait`` seconds)."""
        deadline = time.monotonic() + wait
        while True:
            node = await self.api.get(self.path)
            cidr = (node.get("spec") or {}).get("podCIDR")
            if cidr or time.monotonic() > deadline:
                return str(cidr) if cidr else None
            await asyncio.sleep(0.5)

    async def runtime_conditions(self) -> tuple[bool, str]:
        """Whether the runtime and its network are ready, and upstream's message when not."""
        try:
            status = await self.runtime.status()
        except CriError as exc:
            return False, f"container runtime is down: {exc.message}"
        problems = []
        for condition in status.get("conditions") or []:
            if not condition.get("status"):
                kind = condition.get("type")
                reason, message = condition.get("reason", ""), condition.get("message", "")
                text = f"{kind}=false reason:{reason} message:{message}"
                if kind == "NetworkReady":
                    problems.append(f"container runtime network not ready: {text}")
                else:
                    problems.append(f"container runtime not ready: {text}")
        return not problems, "; ".join(problems)

    async def images(self) -> list[Obj]:
        try:
            images = await self.runtime.list_images()
        except CriError:
            return []
        out = []
        for image in sorted(images, key=lambda i: -int(i.get("size") or 0))[:50]:
            names = list(image.get("repo_digests") or []) + list(image.get("repo_tags") or [])
            if names:
                out.append({"names": names, "sizeBytes": int(image.get("size") or 0)})
        return out

    async def status(self) -> Obj:
        ready, message = await self.runtime_conditions()
        previous = ((self.node or {}).get("status") or {}).get("conditions") or []
        now = _now()
        conditions = [
            _condition(
                "MemoryPressure",
                False,
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
                previous,
                now,
            ),
            _condition(
                "DiskPressure",
                False,
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure",
                previous,
                now,
            ),
            _condition(
                "PIDPressure",
                False,
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
                previous,
                now,
            ),
            _condition(
                "Ready",
                ready,
                "KubeletReady" if ready else "KubeletNotReady",
                "kubelet is posting ready status" if ready else message,
                previous,
                now,
            ),
        ]
        return {
            "capacity": self.capacity,
            "allocatable": self.capacity,
            "conditions": conditions,
            "addresses": [
                {"type": "InternalIP", "address": self.identity.ip},
                {"type": "Hostname", "address": self.identity.name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.identity.kubelet_port}},
            "nodeInfo": node_info(self.runtime_version),
            "images": await self.images(),
        }

    async def write_status(self, *, force: bool = False) -> None:
        status = await self.status()
        comparable = _without_heartbeats(status)
        due = time.monotonic() - self._last_write >= STATUS_REPORT
        if not force and not due and comparable == self._last_written:
            return
        self.node = await self.api.patch(self.path + "/status", {"status": status})
        if comparable != self._last_written:
            ready = next(c for c in status["conditions"] if c["type"] == "Ready")
            log.info("Node %s status: Ready=%s %s", self.identity.name, ready["status"], ready["message"])
        self._last_written = comparable
        self._last_write = time.monotonic()

    async def keep_status(self) -> None:
        while True:
            await asyncio.sleep(STATUS_CHECK)
            try:
                await self.write_status()
            except ApiStatusError as exc:
                log.warning("cannot update node status: %s", exc)
            except Exception:
                log.exception("cannot update node status")

    async def keep_lease(self) -> None:
        path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{self.identity.name}"
        while True:
            try:
                await self._renew(path)
            except ApiStatusError as exc:
                log.warning("cannot renew the node lease: %s", exc)
            except Exception:
                log.exception("cannot renew the node lease")
            await asyncio.sleep(LEASE_RENEW)

    async def _renew(self, path: str) -> None:
        now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() % 1 * 1e6):06d}Z"
        spec = {"holderIdentity": self.identity.name, "leaseDurationSeconds": LEASE_SECONDS, "renewTime": now}
        try:
            await self.api.patch(path, {"spec": spec})
        except ApiStatusError as exc:
            if exc.code != 404:
                raise
            owner = []
            if self.node is not None:
                owner = [
                    {
                        "apiVersion": "v1",
                        "kind": "Node",
                        "name": self.identity.name,
                        "uid": self.node["metadata"]["uid"],
                    }
                ]
            await self.api.create(
                "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
                {
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {"name": self.identity.name, "ownerReferences": owner},
                    "spec": spec,
                },
            )


def _without_heartbeats(status: Obj) -> Obj:
    return dict(
        status,
        conditions=[
            {k: v for k, v in c.items() if k not in ("lastHeartbeatTime", "lastTransitionTime")}
            for c in status["conditions"]
        ],
    )
