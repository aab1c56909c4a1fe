"""Shared by the containerd tests: a private containerd in the test's directory, test images.

:func:`running_containerd` starts containerd from the host's Debian packages with every path
under the test's own directory (the state under ``/run/k3py/containerd-<hash>``), imports the
pause image, and always stops it and runs :func:`k3py.agent.containerd.kill_all`, so no shim,
mount or state directory outlives the test. :func:`busybox_image` builds a busybox image from
the host's ``/bin/busybox`` (Debian's busybox-static) with :mod:`k3py.images.oci`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from k3py.agent import airgap
from k3py.agent.containerd import Containerd, ContainerdPaths, RuntimeFiles, kill_all, pause_archive
from k3py.agent.cri import NamespaceMode, Runtime
from k3py.images import oci
from k3py.util.arch import kube_arch

BUSYBOX = Path("/bin/busybox")
CGROUP_PARENT = f"k3py-test-{os.getpid()}"  # one per test process: parallel workers keep apart
APPLETS = ("sh", "sleep", "echo", "cat", "id", "ls", "true", "false", "hostname", "grep")


@dataclass
class Node:
    containerd: Containerd
    paths: ContainerdPaths
    runtime: Runtime
    sandbox_image: str
    data_dir: Path


def busybox_image(path: Path, reference: str = "k3py.test/busybox:1") -> oci.Written:
    files: list[oci.Entry] = [oci.File("/bin/busybox", BUSYBOX.read_bytes())]
    files += [oci.Symlink(f"/bin/{applet}", "busybox") for applet in APPLETS]
    files += [
        oci.Directory("/tmp", 0o1777),
        oci.File("/etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n", 0o644),
    ]
    image = oci.Image(reference=reference, architecture=kube_arch(), files=tuple(files), cmd=("sh",))
    return oci.write_image(image, path)


@asynccontextmanager
async def running_containerd(tmp_path: Path) -> AsyncIterator[Node]:
    data_dir = tmp_path / "data"
    paths = ContainerdPaths.for_data_dir(data_dir)
    files = RuntimeFiles.find(None)
    pause = pause_archive(files, tmp_path)
    containerd = Containerd(
        paths,
        files,
        sandbox_image=pause.reference,
        log_path=data_dir / "agent" / "containerd" / "containerd.log",
    )
    runtime = Runtime(paths.socket, timeout=60)
    try:
        await containerd.start()
        await airgap.import_archive(paths.socket, pause.path)
        yield Node(containerd, paths, runtime, pause.reference, data_dir)
    finally:
        await runtime.close()
        await containerd.stop(leave_running=False)
        kill_all(paths)
        remove_pod_cgroups()


def remove_pod_cgroups() -> None:
    """The pod-level cgroups the tests named (containerd removes only the containers')."""
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        top = hierarchy / CGROUP_PARENT
        if top.is_dir():
            for directory in sorted(top.rglob("*"), key=lambda p: len(p.parts), reverse=True):
                if directory.is_dir():
                    directory.rmdir()
            top.rmdir()


def processes_naming(*words: str) -> list[int]:
    """Processes whose command line holds every one of ``words`` as an argument."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                args = entry.joinpath("cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if all(word.encode() in args for word in words):
                found.append(int(entry.name))
    return found


def host_network() -> dict[str, int]:
    return {"network": NamespaceMode.NODE, "pid": NamespaceMode.CONTAINER, "ipc": NamespaceMode.POD}


def sandbox_config(log_dir: Path, name: str = "test") -> dict[str, object]:
    uid = str(uuid.uuid4())
    return {
        "metadata": {"name": name, "uid": uid, "namespace": "default", "attempt": 0},
        "hostname": "",  # host network: runc refuses a hostname without its own UTS namespace
        "log_directory": str(log_dir),
        "labels": {"io.kubernetes.pod.uid": uid},
        "linux": {
            "cgroup_parent": f"/{CGROUP_PARENT}/pod{uid}",
            "security_context": {"namespace_options": host_network()},
        },
    }


def container_config(image: str, command: list[str], name: str = "main") -> dict[str, object]:
    return {
        "metadata": {"name": name, "attempt": 0},
        "image": {"image": image},
        "command": command,
        "log_path": f"{name}/0.log",
        "labels": {"io.kubernetes.container.name": name},
        "linux": {
            "resources": {"cpu_shares": 2, "memory_limit_in_bytes": 64 << 20, "oom_score_adj": -997},
            "security_context": {"namespace_options": host_network()},
        },
    }
