"""The ephemeral-cluster harness: start, reach, stop, and leave nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conformance.cluster import ClusterError, ClusterSpec, EphemeralCluster
from conformance.cluster.network import leftovers
from k3py.agent.containerd import ContainerdPaths
from k3py.images.busybox import write_busybox
from tests.e2e.cluster import kubectl_binary

pytestmark = [pytest.mark.root, pytest.mark.slow]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_server_only_cluster_is_reachable_and_leaves_nothing(tmp_path: Path) -> None:
    archive = tmp_path / "busybox.tar"
    write_busybox(archive, "docker.io/k3py/busybox:harness")
    with EphemeralCluster(ClusterSpec(tmp_path / "cluster", agents=0, airgap_images=(archive,))) as cluster:
        run_id = cluster.run_id
        pids = [n.process.pid for n in cluster.nodes if n.process is not None]
        assert leftovers(run_id), "the namespace and bridge exist while it runs"
        kubectl = [kubectl_binary(), "--kubeconfig", str(cluster.kubeconfig)]
        listed = subprocess.run(
            [*kubectl, "get", "namespaces", "-o", "name"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert "namespace/kube-system" in listed.stdout.split()
        assert cluster.server_url.startswith("https://10.25")
        # A running pod: its container, mounts and network namespace must all go with the cluster.
        subprocess.run(
            [*kubectl, "run", "left", "--image=docker.io/k3py/busybox:harness", "--", "sleep", "3600"],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        subprocess.run(
            [*kubectl, "wait", "--for=condition=Ready", "pod/left", "--timeout=90s"],
            capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip
        data_dir = cluster.server.data_dir
    assert leftovers(run_id) == []
    assert not any(alive(pid) for pid in pids)
    state = f"containerd-{containerd_tag(data_dir)}"
    mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    assert not [line for line in mounts if str(tmp_path) in line or state in line]
    assert not [
        pid for pid in Path("/proc").iterdir() if pid.name.isdigit() and str(data_dir) in _cmdline(pid)
    ]
    assert not any(
        "containerd-shim" in _cmdline(pid) and f"containerd-{containerd_tag(data_dir)}" in _cmdline(pid)
        for pid in Path("/proc").iterdir()
        if pid.name.isdigit()
    )


def _cmdline(pid: Path) -> str:
    try:
        return (pid / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def containerd_tag(data_dir: Path) -> str:
    return ContainerdPaths.for_data_dir(data_dir).state.name.removeprefix("containerd-")


def test_a_node_that_cannot_start_fails_the_cluster_cleanly(tmp_path: Path) -> None:
    no_runtime = ("--container-runtime-endpoint", str(tmp_path / "no-runtime.sock"))
    spec = ClusterSpec(tmp_path, agents=1, ready_timeout=60, agent_args=no_runtime)
    cluster = EphemeralCluster(spec)
    with pytest.raises(ClusterError) as caught, cluster:
        pass
    assert f"agent agent-1-{cluster.run_id} exited" in str(caught.value)
    assert "is not answering" in str(caught.value)  # the agent joins, then finds no runtime
    assert leftovers(cluster.run_id) == []
    assert not any(n.process is not None and n.process.poll() is None for n in cluster.nodes)


def test_ctrl_c_tears_the_cluster_down(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import signal, sys, time
        from pathlib import Path
        from conformance.cluster import ClusterSpec, EphemeralCluster
        # SIGINT ignored by whoever started the tests (a shell running CI in the background)
        # is ignored here too; Ctrl+C must still reach the harness.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        with EphemeralCluster(ClusterSpec(Path({str(tmp_path)!r}), agents=0)) as cluster:
            print(cluster.run_id, *(n.process.pid for n in cluster.nodes), flush=True)
            time.sleep(120)
        """
    )
    with subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=Path(__file__).parents[2],
    ) as harness:
        assert harness.stdout is not None
        line = harness.stdout.readline().split()
        assert line, "the harness did not start the cluster"
        run_id, pids = line[0], [int(p) for p in line[1:]]
        harness.send_signal(signal.SIGINT)
        harness.wait(timeout=60)
    assert leftovers(run_id) == []
    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in pids):
        assert time.monotonic() < deadline, "a node outlived the harness"
        time.sleep(0.1)
