"""A private Docker engine for the tests: its own containerd and dockerd, everything in one directory.

:func:`private_engine` starts ``containerd`` and ``dockerd`` with their sockets, state and data
under ``base`` (no bridge, no iptables, a cgroup parent of their own, no ``/etc/docker`` key),
waits until the engine answers and yields its ``DOCKER_HOST`` URL. Afterwards it stops both by
pid (SIGTERM, then SIGKILL), unmounts the network namespace dockerd leaves on
``<exec-root>/netns/default``, then checks that nothing else of theirs is left: no process naming
``base`` on its command line, no mount under ``base``. Anything found is cleaned up and reported.
The system's own dockerd or containerd, if any, is never used nor touched.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
from docker.errors import DockerException

from build.runner import CommandLog, mount_points_under, remove_tree, unmount_all

SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/bin", "/sbin", "/bin"])
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
# Directories the engine creates outside ``base`` whatever it is told; removed if they were not there.
SHARED_DIRS = (
    Path("/run/containerd/s"),
    Path("/run/containerd"),
    Path("/run/docker/plugins"),
    Path("/run/docker"),
)


class EngineLeak(Exception):
    """The private engine left processes or mounts behind (they were cleaned up)."""


@dataclass(frozen=True)
class Engine:
    """A running private engine: ``host`` is its ``DOCKER_HOST`` URL."""

    host: str
    base: Path

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.host, timeout=120)


def missing_tools() -> list[str]:
    return [
        tool for tool in ("dockerd", "containerd", "runc") if shutil.which(tool, path=SEARCH_PATH) is None
    ]


@contextlib.contextmanager
def private_engine(base: Path) -> Iterator[Engine]:
    """Run containerd and dockerd under ``base`` for the block; stop them and check for leaks after."""
    base.mkdir(parents=True, exist_ok=True)
    logs = CommandLog(base / "engine-setup.log")
    existing = {path for path in SHARED_DIRS if path.exists()}
    cgroup_parent = f"k3py-test-dockerd-{os.getpid()}"
    env = {**os.environ, "PATH": SEARCH_PATH}
    processes: list[subprocess.Popen[bytes]] = []
    try:
        processes.append(_start_containerd(base, env))
        processes.append(_start_dockerd(base, env, cgroup_parent))
        host = f"unix://{base}/docker.sock"
        _wait_until_answering(host, processes, base)
        yield Engine(host=host, base=base)
    finally:
        for process in reversed(processes):
            _stop(process)
        # dockerd leaves the network namespace it made for itself mounted on <exec-root>/netns/default.
        unmount_all(base / "exec" / "netns", logs)
        leaks = _clean_leftovers(base, logs)
        _remove_cgroups(cgroup_parent)
        for path in SHARED_DIRS:
            if path not in existing:
                with contextlib.suppress(OSError):
                    path.rmdir()  # only when empty: a system engine started meanwhile keeps its own
        for directory in ("data", "containerd", "exec"):
            remove_tree(base / directory, logs)
        logs.close()
    if leaks:
        raise EngineLeak("; ".join(leaks))


def _start_containerd(base: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    config = base / "containerd.toml"
    config.write_text(
        "version = 2\n"
        f'root = "{base}/containerd/root"\n'
        f'state = "{base}/containerd/state"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{base}/containerd.sock"\n'
        f'[ttrpc]\n  address = "{base}/containerd.sock.ttrpc"\n'
        '[debug]\n  address = ""\n'
        '[metrics]\n  address = ""\n',
        encoding="utf-8",
    )
    process = _spawn(["containerd", "--config", str(config)], base / "containerd.log", env)
    deadline = time.monotonic() + START_TIMEOUT
    while not (base / "containerd.sock").exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"containerd did not start:\n{_tail(base / 'containerd.log')}")
        time.sleep(0.05)
    return process


def _start_dockerd(base: Path, env: dict[str, str], cgroup_parent: str) -> subprocess.Popen[bytes]:
    config: dict[str, str] = {}
    if _dockerd_major(env) < 23:
        # Before 23.0 dockerd writes a libtrust key to /etc/docker/key.json unless told where.
        config["deprecated-key-path"] = str(base / "key.json")
    (base / "daemon.json").write_text(json.dumps(config), encoding="utf-8")
    command = [
        "dockerd",
        f"--config-file={base}/daemon.json",
        f"--host=unix://{base}/docker.sock",
        f"--data-root={base}/data",
        f"--exec-root={base}/exec",
        f"--pidfile={base}/docker.pid",
        f"--containerd={base}/containerd.sock",
        f"--cgroup-parent={cgroup_parent}",
        "--bridge=none",
        "--iptables=false",
        "--ip6tables=false",
        "--ip-masq=false",
        "--userland-proxy=false",
    ]
    return _spawn(command, base / "dockerd.log", env)


def _dockerd_major(env: dict[str, str]) -> int:
    output = subprocess.run(["dockerd", "--version"], capture_output=True, text=True, env=env, check=True)
    found = re.search(r"version (\d+)\.", output.stdout)
    return int(found.group(1)) if found else 0


def _spawn(command: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        return subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, env=env
        )


def _wait_until_answering(host: str, processes: list[subprocess.Popen[bytes]], base: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            with socket.socket(socket.AF_UNIX) as probe:  # the SDK leaks its socket on a refused connection
                probe.connect(host.removeprefix("unix://"))
            with contextlib.closing(docker.DockerClient(base_url=host, timeout=5)) as client:
                client.ping()
                return
        except (DockerException, OSError):
            pass
        if any(p.poll() is not None for p in processes) or time.monotonic() > deadline:
            raise RuntimeError(f"dockerd did not answer at {host}:\n{_tail(base / 'dockerd.log')}")
        time.sleep(0.2)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _clean_leftovers(base: Path, log: CommandLog) -> list[str]:
    """Kill processes naming ``base`` (shims), unmount what is under it; say what there was."""
    leaks: list[str] = []
    for pid, command in _processes_naming(base):
        leaks.append(f"process {pid} left running: {command}")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    mounts = mount_points_under(base)
    if mounts:
        leaks.append(f"left mounted: {', '.join(map(str, mounts))}")
    return leaks


def _processes_naming(base: Path) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    needle = str(base).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            cmdline = (entry / "cmdline").read_bytes()
            if needle in cmdline:
                found.append((int(entry.name), cmdline.replace(b"\0", b" ").decode(errors="replace").strip()))
    return found


def _remove_cgroups(parent: str) -> None:
    for path in [*Path("/sys/fs/cgroup").glob(f"*/{parent}"), Path("/sys/fs/cgroup") / parent]:
        with contextlib.suppress(OSError):
            path.rmdir()


def _tail(log: Path, lines: int = 20) -> str:
    if not log.exists():
        return "(no log)"
    return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
