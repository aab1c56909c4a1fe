"""What the kubelet API needs from the kubelet core: its pods, containers' logs, the runtime.

The core implements :class:`KubeletBackend`; the API only reads through it. The runtime is
the CRI client: for exec, attach and port-forward it returns the URL of the runtime's
streaming server, to which the kubelet then proxies the caller's upgraded connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

Obj = dict[str, Any]


class StreamingRuntime(Protocol):
    """The part of the CRI client (``k3py.agent.cri.Runtime``) the kubelet API uses."""

    async def exec(
        self, container_id: str, cmd: list[str], *, tty: bool, stdin: bool, stdout: bool, stderr: bool
    ) -> str: ...

    async def attach(
        self, container_id: str, *, tty: bool, stdin: bool, stdout: bool, stderr: bool
    ) -> str: ...

    async def port_forward(self, sandbox_id: str, ports: list[int]) -> str: ...


@dataclass(frozen=True)
class ContainerLocation:
    """Where one container of a pod runs and logs."""

    pod_uid: str
    sandbox_id: str
    container_id: str | None  # None: not created yet
    log_path: Path | None  # the current instance's CRI log file
    previous_log_path: Path | None  # the previous (terminated) instance's, for ?previous=true
    running: bool = True  # False once the current instance has exited: ``logs -f`` then ends


class KubeletBackend(Protocol):
    """The kubelet core, as its HTTPS API sees it."""

    @property
    def node_name(self) -> str: ...

    @property
    def runtime(self) -> StreamingRuntime:
        """The CRI client (``k3py.agent.cri.Runtime``)."""
        ...

    def pods(self) -> list[Obj]:
        """The pod objects this kubelet runs, as the API sees them."""
        ...

    def locate(self, namespace: str, pod: str, container: str | None) -> ContainerLocation:
        """The container (None: the pod's only or default one); :class:`LookupError` if absent.

        The error's message is shown to the user, as upstream words it: ``pod "x" does not
        exist``, ``container "c" not found in pod "x"``.
        """
        ...

    async def stats_summary(self) -> Obj:
        """The ``/stats/summary`` body."""
        ...
