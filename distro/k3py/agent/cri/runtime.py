"""The CRI client the kubelet uses: ``runtime.v1`` RuntimeService and ImageService calls.

Each method encodes a request dict with :data:`~k3py.agent.cri.messages.CRI`, makes one unary
call on a :class:`~k3py.agent.cri.grpc.Channel` to containerd's socket and returns the part of
the reply the caller needs, as plain dicts with every field present. Failures are
:class:`~k3py.agent.cri.grpc.CriError` with containerd's status code and message; a socket that
is not there (containerd restarting) is ``UNAVAILABLE`` and the next call connects again.

Filters are the proto's messages too: ``{'id': ..., 'state': {'state': ContainerState.RUNNING},
'pod_sandbox_id': ..., 'label_selector': {...}}`` (the state is wrapped, as in the proto).

Every call has a deadline: ``timeout`` (as the kubelet's ``--runtime-request-timeout``), plus
the time the call itself asks for where it waits on purpose (StopContainer's grace period,
ExecSync's timeout). Image pulls have no deadline but the caller's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from k3py.agent.cri.grpc import Channel, CriError
from k3py.agent.cri.messages import CRI, IMAGE_SERVICE, RUNTIME_SERVICE

Message = dict[str, Any]

KUBELET_API_VERSION: Final = "0.1.0"
"""What the kubelet sends in VersionRequest."""


class Runtime:
    """A CRI runtime (containerd) behind a unix socket."""

    def __init__(self, socket: Path, *, timeout: float = 120.0) -> None:
        self.socket = socket
        self.timeout = timeout
        self.channel = Channel(socket)

    async def close(self) -> None:
        await self.channel.close()

    async def _call(
        self,
        service: str,
        method: str,
        request_type: str,
        response_type: str,
        request: Message,
        *,
        timeout: float | None,  # noqa: ASYNC109 (a gRPC deadline: it travels to containerd)
    ) -> Message:
        reply = await self.channel.unary(service + method, CRI.encode(request_type, request), timeout=timeout)
        return CRI.decode(response_type, reply)

    async def _runtime(self, method: str, request_type: str, response_type: str, request: Message) -> Message:
        return await self._call(
            RUNTIME_SERVICE, method, request_type, response_type, request, timeout=self.timeout
        )

    # -- runtime ------------------------------------------------------------------------------

    async def version(self) -> Message:
        """``{'version', 'runtime_name', 'runtime_version', 'runtime_api_version'}``."""
        return await self._runtime(
            "Version", "VersionRequest", "VersionResponse", {"version": KUBELET_API_VERSION}
        )

    async def status(self) -> Message:
        """RuntimeStatus: ``{'conditions': [{'type', 'status', 'reason', 'message'}]}``."""
        reply = await self._runtime("Status", "StatusRequest", "StatusResponse", {})
        return reply["status"] or CRI.zero("RuntimeStatus")

    async def update_runtime_config(self, pod_cidr: str) -> None:
        request = {"runtime_config": {"network_config": {"pod_cidr": pod_cidr}}}
        await self._runtime("UpdateRuntimeConfig", "UpdateRuntimeConfigRequest", "Empty", request)

    # -- pod sandboxes ------------------------------------------------------------------------

    async def run_pod_sandbox(self, config: Message, runtime_handler: str = "") -> str:
        request = {"config": config, "runtime_handler": runtime_handler}
        reply = await self._runtime("RunPodSandbox", "RunPodSandboxRequest", "RunPodSandboxResponse", request)
        return str(reply["pod_sandbox_id"])

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        await self._runtime("StopPodSandbox", "PodSandboxIdRequest", "Empty", {"pod_sandbox_id": sandbox_id})

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        await self._runtime(
            "RemovePodSandbox", "PodSandboxIdRequest", "Empty", {"pod_sandbox_id": sandbox_id}
        )

    async def pod_sandbox_status(self, sandbox_id: str) -> Message:
        """PodSandboxStatus (``network.ip``, ``state``, ``created_at``, ``linux.namespaces``...)."""
        request = {"pod_sandbox_id": sandbox_id}
        reply = await self._runtime(
            "PodSandboxStatus", "PodSandboxStatusRequest", "PodSandboxStatusResponse", request
        )
        return _required(reply["status"], "PodSandboxStatus", sandbox_id)

    async def pod_sandbox_info(self, sandbox_id: str) -> dict[str, str]:
        """The runtime's verbose details of a sandbox (containerd: ``info`` is JSON with its spec)."""
        request = {"pod_sandbox_id": sandbox_id, "verbose": True}
        reply = await self._runtime(
            "PodSandboxStatus", "PodSandboxStatusRequest", "PodSandboxStatusResponse", request
        )
        return dict(reply.get("info") or {})

    async def list_pod_sandbox(self, filter: Message | None = None) -> list[Message]:
        request = {"filter": filter} if filter else {}
        reply = await self._runtime(
            "ListPodSandbox", "ListPodSandboxRequest", "ListPodSandboxResponse", request
        )
        return list(reply["items"])

    # -- containers ---------------------------------------------------------------------------

    async def create_container(self, sandbox_id: str, config: Message, sandbox_config: Message) -> str:
        request = {"pod_sandbox_id": sandbox_id, "config": config, "sandbox_config": sandbox_config}
        reply = await self._runtime(
            "CreateContainer", "CreateContainerRequest", "CreateContainerResponse", request
        )
        return str(reply["container_id"])

    async def start_container(self, container_id: str) -> None:
        await self._runtime("StartContainer", "ContainerIdRequest", "Empty", {"container_id": container_id})

    async def stop_container(self, container_id: str, timeout: int) -> None:  # noqa: ASYNC109
        """Stop with a grace period of ``timeout`` seconds (0: kill at once)."""
        request = {"container_id": container_id, "timeout": timeout}
        await self._call(
            RUNTIME_SERVICE,
            "StopContainer",
            "StopContainerRequest",
            "Empty",
            request,
            timeout=self.timeout + max(timeout, 0),
        )

    async def remove_container(self, container_id: str) -> None:
        await self._runtime("RemoveContainer", "ContainerIdRequest", "Empty", {"container_id": container_id})

    async def list_containers(self, filter: Message | None = None) -> list[Message]:
        request = {"filter": filter} if filter else {}
        reply = await self._runtime(
            "ListContainers", "ListContainersRequest", "ListContainersResponse", request
        )
        return list(reply["containers"])

    async def container_status(self, container_id: str) -> Message:
        """ContainerStatus (state, exit_code, reason, started_at/finished_at in ns, log_path...)."""
        request = {"container_id": container_id}
        reply = await self._runtime(
            "ContainerStatus", "ContainerStatusRequest", "ContainerStatusResponse", request
        )
        return _required(reply["status"], "ContainerStatus", container_id)

    async def update_container_resources(self, container_id: str, linux: Message) -> None:
        request = {"container_id": container_id, "linux": linux}
        await self._runtime("UpdateContainerResources", "UpdateContainerResourcesRequest", "Empty", request)

    async def reopen_container_log(self, container_id: str) -> None:
        await self._runtime(
            "ReopenContainerLog", "ContainerIdRequest", "Empty", {"container_id": container_id}
        )

    # -- exec, attach, port-forward -----------------------------------------------------------

    async def exec_sync(
        self,
        container_id: str,
        cmd: list[str],
        timeout: int,  # noqa: ASYNC109 (the CRI's own timeout field)
    ) -> tuple[bytes, bytes, int]:
        """Run ``cmd`` in the container; ``(stdout, stderr, exit code)``. ``timeout`` 0: no limit."""
        request = {"container_id": container_id, "cmd": cmd, "timeout": timeout}
        reply = await self._call(
            RUNTIME_SERVICE,
            "ExecSync",
            "ExecSyncRequest",
            "ExecSyncResponse",
            request,
            timeout=self.timeout + timeout if timeout > 0 else None,
        )
        return reply["stdout"], reply["stderr"], int(reply["exit_code"])

    async def exec(
        self, container_id: str, cmd: list[str], *, tty: bool, stdin: bool, stdout: bool, stderr: bool
    ) -> str:
        """The streaming server's URL for an interactive exec (the kubelet proxies to it)."""
        request = {
            "container_id": container_id,
            "cmd": cmd,
            "tty": tty,
            "stdin": stdin,
            "stdout": stdout,
            "stderr": stderr,
        }
        return str((await self._runtime("Exec", "ExecRequest", "UrlResponse", request))["url"])

    async def attach(self, container_id: str, *, tty: bool, stdin: bool, stdout: bool, stderr: bool) -> str:
        request = {
            "container_id": container_id,
            "tty": tty,
            "stdin": stdin,
            "stdout": stdout,
            "stderr": stderr,
        }
        return str((await self._runtime("Attach", "AttachRequest", "UrlResponse", request))["url"])

    async def port_forward(self, sandbox_id: str, ports: list[int]) -> str:
        request = {"pod_sandbox_id": sandbox_id, "port": ports}
        return str((await self._runtime("PortForward", "PortForwardRequest", "UrlResponse", request))["url"])

    # -- stats --------------------------------------------------------------------------------

    async def container_stats(self, container_id: str) -> Message:
        request = {"container_id": container_id}
        reply = await self._runtime("ContainerStats", "ContainerIdRequest", "ContainerStatsResponse", request)
        return _required(reply["stats"], "ContainerStats", container_id)

    async def list_container_stats(self, filter: Message | None = None) -> list[Message]:
        request = {"filter": filter} if filter else {}
        reply = await self._runtime(
            "ListContainerStats", "ListContainerStatsRequest", "ListContainerStatsResponse", request
        )
        return list(reply["stats"])

    async def pod_sandbox_stats(self, sandbox_id: str) -> Message:
        request = {"pod_sandbox_id": sandbox_id}
        reply = await self._runtime(
            "PodSandboxStats", "PodSandboxIdRequest", "PodSandboxStatsResponse", request
        )
        return _required(reply["stats"], "PodSandboxStats", sandbox_id)

    # -- images -------------------------------------------------------------------------------

    async def _image(self, method: str, request_type: str, response_type: str, request: Message) -> Message:
        return await self._call(
            IMAGE_SERVICE, method, request_type, response_type, request, timeout=self.timeout
        )

    async def list_images(self, filter: Message | None = None) -> list[Message]:
        request = {"filter": filter} if filter else {}
        return list(
            (await self._image("ListImages", "ListImagesRequest", "ListImagesResponse", request))["images"]
        )

    async def image_status(self, image: str) -> Message | None:
        """The Image (id, repo_tags, repo_digests, size, uid...), or ``None`` when it is absent."""
        request = {"image": {"image": image}}
        reply = await self._image("ImageStatus", "ImageStatusRequest", "ImageStatusResponse", request)
        found: Message | None = reply["image"]
        return found

    async def pull_image(self, image: str, sandbox_config: Message | None = None) -> str:
        """Pull ``image``; its image ref. Fails with containerd's message (no deadline but the caller's)."""
        request: Message = {"image": {"image": image}}
        if sandbox_config is not None:
            request["sandbox_config"] = sandbox_config
        reply = await self._call(
            IMAGE_SERVICE, "PullImage", "PullImageRequest", "PullImageResponse", request, timeout=None
        )
        return str(reply["image_ref"])

    async def remove_image(self, image: str) -> None:
        await self._image("RemoveImage", "RemoveImageRequest", "Empty", {"image": {"image": image}})

    async def image_fs_info(self) -> list[Message]:
        """The image filesystems' usage (``FilesystemUsage`` dicts)."""
        reply = await self._image("ImageFsInfo", "Empty", "ImageFsInfoResponse", {})
        return list(reply["image_filesystems"])


def _required(value: Message | None, what: str, name: str) -> Message:
    """A reply field the runtime must fill; an empty one is a runtime bug, reported as such."""
    if value is None:
        raise CriError(13, f"{what} reply for {name} carries no {what}")
    return value
