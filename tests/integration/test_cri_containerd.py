"""The CRI client and the containerd supervisor against a real containerd (Debian's 1.6).

Each test starts its own containerd with every path under its tmp directory, imports the pause
image and a busybox image built from the host's /bin/busybox, and runs host-network pods.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from k3py.agent import airgap
from k3py.agent.containerd import ContainerdPaths, kill_all
from k3py.agent.cri import NOT_FOUND, UNAVAILABLE, ContainerState, CriError, PodSandboxState
from tests.integration.containerd_support import (
    Node,
    busybox_image,
    container_config,
    processes_naming,
    running_containerd,
    sandbox_config,
)

pytestmark = [pytest.mark.root, pytest.mark.slow]


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    async with running_containerd(tmp_path) as started:
        yield started


@pytest.fixture
async def busybox(node: Node, tmp_path: Path) -> str:
    written = busybox_image(tmp_path / "busybox.tar")
    assert await airgap.import_archive(node.paths.socket, written.path) == [written.reference]
    return written.reference


async def _running_pod(
    node: Node, image: str, logs: Path, command: list[str]
) -> tuple[dict[str, object], str, str]:
    config = sandbox_config(logs)
    sandbox = await node.runtime.run_pod_sandbox(config)
    container = await node.runtime.create_container(sandbox, container_config(image, command), config)
    await node.runtime.start_container(container)
    return config, sandbox, container


async def test_version_status_and_config(node: Node) -> None:
    version = await node.runtime.version()
    assert version["runtime_name"] == "containerd"
    assert version["runtime_api_version"] == "v1"
    conditions = {c["type"]: c for c in (await node.runtime.status())["conditions"]}
    assert conditions["RuntimeReady"]["status"] is True
    assert conditions["NetworkReady"]["status"] is False  # no CNI config written
    pid = node.containerd.pid
    assert pid is not None
    assert os.getsid(pid) == pid, "containerd must lead its own session"
    assert _netns(str(pid)) == _netns("self"), "containerd must stay in the caller's network namespace"
    config = node.paths.config.read_text()
    assert f'sandbox_image = "{node.sandbox_image}"' in config
    assert "SystemdCgroup = false" in config
    assert len(str(node.paths.socket)) < 100
    assert await node.runtime.image_status(node.sandbox_image) is not None
    assert await node.runtime.image_status("k3py.test/absent:1") is None
    assert (await node.runtime.image_fs_info())[0]["fs_id"]["mountpoint"].startswith(str(node.paths.root))


async def test_pod_and_container_lifecycle(node: Node, busybox: str, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    config, sandbox, container = await _running_pod(
        node, busybox, logs, ["sh", "-c", "echo hello from busybox; echo oops >&2; exec sleep 300"]
    )
    sandbox_status = await node.runtime.pod_sandbox_status(sandbox)
    assert sandbox_status["state"] == PodSandboxState.READY
    assert sandbox_status["metadata"]["uid"] == config["metadata"]["uid"]  # type: ignore[index]
    status = await node.runtime.container_status(container)
    assert status["state"] == ContainerState.RUNNING
    assert status["started_at"] > 0 and status["finished_at"] == 0
    assert status["image_ref"].startswith("k3py.test/busybox@sha256:")
    assert status["log_path"] == str(logs / "main" / "0.log")

    stdout, stderr, code = await node.runtime.exec_sync(
        container, ["sh", "-c", "echo out; echo err >&2; exit 3"], 10
    )
    assert (stdout, stderr, code) == (b"out\n", b"err\n", 3)
    listed = await node.runtime.list_containers({"pod_sandbox_id": sandbox})
    assert [c["id"] for c in listed] == [container]
    running = await node.runtime.list_containers({"state": {"state": ContainerState.RUNNING}})
    assert [c["id"] for c in running] == [container]
    assert await node.runtime.list_containers({"state": {"state": ContainerState.EXITED}}) == []
    assert [s["id"] for s in await node.runtime.list_pod_sandbox({"id": sandbox})] == [sandbox]
    url = await node.runtime.exec(container, ["sh"], tty=False, stdin=True, stdout=True, stderr=True)
    assert url.startswith("http://127.0.0.1:") and "/exec/" in url
    assert "/portforward/" in await node.runtime.port_forward(sandbox, [80])

    for _ in range(50):
        text = (logs / "main" / "0.log").read_text() if (logs / "main" / "0.log").exists() else ""
        if "stderr F oops" in text:
            break
        await asyncio.sleep(0.1)
    assert " stdout F hello from busybox" in text and " stderr F oops" in text
    await node.runtime.reopen_container_log(container)

    await node.runtime.stop_container(container, 0)
    stopped = await node.runtime.container_status(container)
    assert stopped["state"] == ContainerState.EXITED
    assert stopped["exit_code"] == 137 and stopped["finished_at"] >= stopped["started_at"]
    assert await node.runtime.list_containers({"state": {"state": ContainerState.RUNNING}}) == []
    await node.runtime.remove_container(container)
    with pytest.raises(CriError) as caught:
        await node.runtime.container_status(container)
    assert caught.value.code == NOT_FOUND
    await node.runtime.stop_pod_sandbox(sandbox)
    assert (await node.runtime.pod_sandbox_status(sandbox))["state"] == PodSandboxState.NOTREADY
    await node.runtime.remove_pod_sandbox(sandbox)
    assert await node.runtime.list_pod_sandbox() == []


async def test_pods_survive_a_containerd_restart(node: Node, busybox: str, tmp_path: Path) -> None:
    _, _, container = await _running_pod(node, busybox, tmp_path / "logs", ["sleep", "300"])
    old_pid = node.containerd.pid
    await node.containerd.stop()  # leave_running: shims and containers stay
    with pytest.raises(CriError) as caught:
        await node.runtime.version()
    assert caught.value.code == UNAVAILABLE
    assert processes_naming("-address", str(node.paths.socket)), "the shim must outlive containerd"
    await node.containerd.start()
    assert node.containerd.pid != old_pid
    # the same Runtime (channel) reconnects by itself
    assert (await node.runtime.container_status(container))["state"] == ContainerState.RUNNING
    assert (await node.runtime.exec_sync(container, ["echo", "still here"], 10))[0] == b"still here\n"


async def test_supervise_restarts_a_killed_containerd(node: Node) -> None:
    supervisor = asyncio.create_task(node.containerd.supervise())
    try:
        old_pid = node.containerd.pid
        assert old_pid is not None
        os.kill(old_pid, signal.SIGKILL)
        for _ in range(200):
            if node.containerd.restarts == 1 and node.containerd.pid not in (None, old_pid):
                break
            await asyncio.sleep(0.05)
        assert node.containerd.restarts == 1
        assert (await node.runtime.version())["runtime_name"] == "containerd"
    finally:
        await node.containerd.stop()
        await asyncio.wait_for(supervisor, 10)


async def test_kill_all_leaves_nothing(node: Node, busybox: str, tmp_path: Path) -> None:
    await _running_pod(node, busybox, tmp_path / "logs", ["sleep", "300"])
    paths: ContainerdPaths = node.paths
    assert processes_naming("-address", str(paths.socket))
    done = await asyncio.to_thread(kill_all, paths)
    # one shim per pod: the pause process and the container below it
    assert any(line.startswith("killed 1 shim(s) and 2 container process(es)") for line in done), done
    assert any(line.startswith("unmounted ") for line in done), done
    assert await asyncio.to_thread(_leftovers, paths) == []


def _netns(pid: str) -> Path:
    return Path(f"/proc/{pid}/ns/net").readlink()


def _leftovers(paths: ContainerdPaths) -> list[str]:
    found = [f"process {pid}" for pid in processes_naming("-address", str(paths.socket))]
    found += [f"process {pid}" for pid in processes_naming("--config", str(paths.config))]
    mounts = Path("/proc/self/mountinfo").read_text()
    found += [f"mount under {d}" for d in (paths.state, paths.root) if f" {d}/" in mounts]
    if paths.state.exists():
        found.append(f"directory {paths.state}")
    return found
