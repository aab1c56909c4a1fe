"""``k3py killall`` against a real containerd running a busybox container, with mounts,
network namespaces, cgroups and a pod network this test makes; and with things that are not
the node's (another node's cgroup and process, a foreign ``cni-*`` namespace, a mount outside
the data directory, another containerd socket's shims), which must survive it."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from k3py.agent.killall import (
    Targets,
    cgroup_hierarchies,
    killall,
    processes,
    remove_cgroup_tree,
    shim_address,
)
from k3py.agent.netns import run_in_netns
from k3py.agent.network import NAT_CHAIN, setup_node_network

pytestmark = [pytest.mark.root, pytest.mark.slow]

CONTAINERD_CONFIG = 'version = 2\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
NAMESPACE = "k3pytest"


def sh(*command: str) -> str:
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def mounted(path: Path) -> bool:
    return any(
        line.split()[4] == os.fspath(path) for line in Path("/proc/self/mountinfo").read_text().splitlines()
    )


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :].split()[0] != "Z"


@dataclass
class Host:
    tmp: Path
    tag: str
    data_dir: Path
    state_dir: Path
    socket: Path
    node: str
    other_node: str
    node_netns: str
    pod_netns: Path
    foreign_netns: Path
    containerd: subprocess.Popen[bytes] | None = None
    bystander: subprocess.Popen[bytes] | None = None

    def ctr(self, *args: str) -> str:
        return sh("ctr", "--address", str(self.socket), "-n", NAMESPACE, *args)


def start_containerd(host: Host) -> None:
    config = host.tmp / "containerd.toml"
    config.write_text(CONTAINERD_CONFIG)
    log = (host.tmp / "containerd.log").open("wb")
    host.containerd = subprocess.Popen(
        [
            "containerd",
            "--config", str(config),
            "--root", str(host.data_dir / "agent" / "containerd"),
            "--state", str(host.state_dir),
            "--address", str(host.socket),
        ],
        stdout=log,
        stderr=log,
    )  # fmt: skip
    log.close()
    deadline = time.monotonic() + 20
    while not host.socket.exists():
        assert host.containerd.poll() is None, (host.tmp / "containerd.log").read_text()
        assert time.monotonic() < deadline, "containerd did not create its socket"
        time.sleep(0.1)


def rootfs(host: Host) -> Path:
    root = host.tmp / "rootfs"
    (root / "bin").mkdir(parents=True)
    shutil.copy("/bin/busybox", root / "bin" / "busybox")
    (root / "bin" / "sleep").symlink_to("busybox")
    return root


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    tag = secrets.token_hex(3)
    host = Host(
        tmp=tmp_path,
        tag=tag,
        data_dir=tmp_path / "data",
        state_dir=tmp_path / "state",
        socket=tmp_path / "containerd.sock",
        node=f"k3pyt-{tag}-node",
        other_node=f"k3pyt-{tag}-other",
        node_netns=f"k3pyt-{tag}-node",
        pod_netns=Path(f"/run/netns/cni-{uuid.uuid4()}"),
        foreign_netns=Path(f"/run/netns/cni-{uuid.uuid4()}"),
    )
    host.data_dir.mkdir()
    try:
        yield host
    finally:
        # whatever the test left: its shims, processes, cgroups, mounts, namespaces
        for process in processes().values():
            if shim_address(process.argv) == str(host.socket):
                os.kill(process.pid, signal.SIGKILL)
        if host.bystander is not None:
            host.bystander.kill()
            host.bystander.wait()
        for hierarchy in cgroup_hierarchies():
            for node in (host.node, host.other_node):
                if (hierarchy / "k3py" / node).is_dir():
                    remove_cgroup_tree(hierarchy / "k3py" / node)
            with contextlib.suppress(OSError):
                (hierarchy / "k3py").rmdir()  # when no other node's tree is in it
        if host.containerd is not None:
            host.containerd.terminate()
            try:
                host.containerd.wait(10)
            except subprocess.TimeoutExpired:
                host.containerd.kill()
                host.containerd.wait()
        for line in reversed(Path("/proc/self/mountinfo").read_text().splitlines()):
            point = line.split()[4]
            if point.startswith(os.fspath(tmp_path)):
                subprocess.run(["umount", "-l", point], check=False)
        for name in (host.node_netns, host.pod_netns.name, host.foreign_netns.name):
            if (Path("/run/netns") / name).exists():
                subprocess.run(["ip", "netns", "delete", name], check=False)


def test_killall_removes_the_nodes_things_and_only_those(host: Host) -> None:
    start_containerd(host)
    for netns in (host.node_netns, host.pod_netns.name, host.foreign_netns.name):
        sh("ip", "netns", "add", netns)

    # a container in the pod's network namespace and the node's cgroup tree
    host.ctr(
        "run", "-d", "--rootfs",
        "--cgroup", f"/k3py/{host.node}/podtest/c1",
        "--with-ns", f"network:{host.pod_netns}",
        str(rootfs(host)), "c1", "/bin/sleep", "1000",
    )  # fmt: skip
    table = processes()
    [shim] = [p for p in table.values() if shim_address(p.argv) == str(host.socket)]
    [sleeper] = [p for p in table.values() if p.ppid == shim.pid]

    # another node's pod cgroup with a process in it
    other = Path("/sys/fs/cgroup/pids") if Path("/sys/fs/cgroup/pids").is_dir() else Path("/sys/fs/cgroup")
    other_cgroup = other / "k3py" / host.other_node / "podx"
    other_cgroup.mkdir(parents=True)
    host.bystander = subprocess.Popen(["sleep", "1000"])
    (other_cgroup / "cgroup.procs").write_text(str(host.bystander.pid))

    # volumes below the data directory (one inside another), and a mount outside it
    volume = host.data_dir / "agent" / "pods" / "uid" / "volumes" / "v"
    inner = volume / "inner"
    outside = host.tmp / "outside"
    for path in (volume, outside):
        path.mkdir(parents=True)
        sh("mount", "-t", "tmpfs", "tmpfs", str(path))
    inner.mkdir()
    sh("mount", "-t", "tmpfs", "tmpfs", str(inner))

    # the pod network in the node's namespace: chains, the bridge and a veth on it
    def network() -> None:
        import ipaddress

        setup_node_network(
            pod_cidr=ipaddress.IPv4Network("10.42.0.0/24"),
            cluster_cidr=ipaddress.IPv4Network("10.42.0.0/16"),
            node_ip=ipaddress.IPv4Address("192.168.231.1"),
        )
        sh("ip", "link", "add", "cni0", "type", "bridge")
        sh("ip", "link", "add", "vethk3pyt", "type", "veth", "peer", "name", "vethk3pyp")
        sh("ip", "link", "set", "vethk3pyt", "master", "cni0")

    run_in_netns(host.node_netns, network)

    targets = Targets(
        data_dir=host.data_dir,
        node_name=host.node,
        containerd_socket=host.socket,
        containerd_state=host.state_dir,
    )
    printed: list[str] = []
    done = run_in_netns(host.node_netns, lambda: killall(targets, printed.append))
    assert printed == done
    assert f"killed containerd shim {shim.pid} (c1) and 1 processes below it" in done

    assert not alive(shim.pid)
    assert not alive(sleeper.pid)
    assert not host.pod_netns.exists()
    assert host.foreign_netns.exists()
    assert f"removed network namespace {host.pod_netns.name}" in done
    assert not mounted(volume) and not mounted(inner)
    assert f"unmounted {inner}" in done
    assert mounted(outside)
    assert host.data_dir.is_dir()
    for hierarchy in cgroup_hierarchies():
        assert not (hierarchy / "k3py" / host.node).exists(), hierarchy
    assert any(line.startswith("removed ") and "cgroups under" in line for line in done)
    assert host.bystander.poll() is None
    assert other_cgroup.is_dir()
    assert "deleted bridge cni0" in done
    assert "deleted veth vethk3pyt" in done
    assert f"iptables -t nat: removed chain {NAT_CHAIN}" in done
    links = sh("ip", "-n", host.node_netns, "link", "show")
    assert "cni0" not in links and "vethk3py" not in links
    assert "K3PY" not in run_in_netns(host.node_netns, lambda: sh("iptables-save"))
    assert host.containerd is not None and host.containerd.poll() is None  # containerd is left alone

    again = run_in_netns(host.node_netns, lambda: killall(targets, lambda _: None))
    assert again == []


def test_the_command_runs_and_reports(host: Host) -> None:
    sh("ip", "netns", "add", host.node_netns)
    run_in_netns(host.node_netns, lambda: sh("ip", "link", "add", "cni0", "type", "bridge"))
    volume = host.data_dir / "agent" / "v"
    volume.mkdir(parents=True)
    sh("mount", "-t", "tmpfs", "tmpfs", str(volume))
    command = [sys.executable, "-c", "from k3py.cli.main import main; main()", "killall"]
    args = ["--data-dir", str(host.data_dir), "--node-name", host.node]
    done = subprocess.run(
        # nsenter, not `ip netns exec`: that one unmounts in a private mount namespace of its own.
        ["nsenter", f"--net=/run/netns/{host.node_netns}", "--", *command, *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"k3py killall: node {host.node}, data dir {host.data_dir}" in done.stdout
    assert f"unmounted {volume}" in done.stdout
    assert "deleted bridge cni0" in done.stdout
    assert not mounted(volume)
