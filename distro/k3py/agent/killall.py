"""``k3py killall``: stop a node's pods and undo what they left on the host, like K3s's
``k3s-killall.sh``, so the node can be restarted clean or its data directory removed.

What belongs to the node is told apart from everything else on the host, since several
nodes (and other containerd users) may share it:

1. containerd shims whose command line names this node's containerd socket
   (``-address <socket>``) are killed with every process below them (the containers). Before
   that, each process's network namespace is compared with the ``cni-<uuid>`` files in
   ``/run/netns``: those the node's pods live in are the node's (containerd creates one per
   pod sandbox; a host-network pod has none).
2. Mounts under the data directory, under containerd's state directory, and those network
   namespace files are unmounted (lazily, deepest first), and the namespace files removed.
3. The pod network of the current network namespace goes
   (:func:`k3py.agent.network.teardown_node_network`: the bridge and its veths, k3py's
   iptables chains, the service proxy's included, and routes).
4. The node's pod cgroups (``/k3py/<node>/`` in every cgroup hierarchy, v1 or v2) are emptied
   (remaining processes killed) and removed.

containerd itself, the server and the agent are left running: stop them first, as with K3s's
script and its service. Nothing in the data directory is deleted.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import logging
import os
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from k3py.agent.cri_config import NETNS_RECORD
from k3py.agent.netns import NETNS_DIR
from k3py.agent.network import DEFAULT_BRIDGE, teardown_node_network
from k3py.util.proc import ProcessError

log = logging.getLogger(__name__)

SHIM_PREFIX = "containerd-shim"
CNI_NETNS_PREFIX = "cni-"
CGROUP_ROOT = "k3py"
EXIT_WAIT = 5.0
"""Seconds to wait for killed processes to be gone before going on."""
MNT_DETACH = 2
PROC = Path("/proc")

Report = Callable[[str], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class Targets:
    """What belongs to one node on this host."""

    data_dir: Path
    node_name: str
    containerd_socket: Path | None
    """The node's containerd socket; None when unknown (no shim is then killed)."""
    containerd_state: Path | None = None
    """containerd's state directory (task bundles, sandbox mounts), when outside ``data_dir``."""
    bridge: str = DEFAULT_BRIDGE
    netns_dir: Path = NETNS_DIR
    extra_mount_roots: tuple[Path, ...] = field(default=())


def targets_for(data_dir: Path, node_name: str, *, bridge: str = DEFAULT_BRIDGE) -> Targets:
    """The node's targets, with containerd's paths from :mod:`k3py.agent.containerd` when that
    module is there (it is imported lazily: killall must work on a broken install too)."""
    socket, state = containerd_paths(data_dir)
    return Targets(
        data_dir=data_dir,
        node_name=node_name,
        containerd_socket=socket,
        containerd_state=state,
        bridge=bridge,
    )


def containerd_paths(data_dir: Path) -> tuple[Path | None, Path | None]:
    """(socket, state dir) of the data directory's containerd; (None, None) when unknown."""
    try:
        module = importlib.import_module("k3py.agent.containerd")
        paths = module.ContainerdPaths.for_data_dir(data_dir)
    except (ImportError, AttributeError) as exc:
        log.debug("containerd paths unknown: %s", exc)
        return None, None
    socket = getattr(paths, "socket", None)
    state = getattr(paths, "state", None) or getattr(paths, "state_dir", None)
    return (Path(socket) if socket else None), (Path(state) if state else None)


def killall(targets: Targets, report: Report = print) -> list[str]:
    """Do all four steps (see the module docstring); ``report`` each thing done; return them."""
    done: list[str] = []

    def say(line: str) -> None:
        done.append(line)
        report(line)

    if targets.containerd_socket is None:
        say("containerd socket unknown: no shims looked for")
        ours: set[Path] = set()
    else:
        ours = kill_shims(targets.containerd_socket, targets.netns_dir, say)
    for line in _reset_containerd(targets.data_dir):
        say(line)
    ours |= recorded_netns(targets.data_dir)
    roots = [targets.data_dir, *([targets.containerd_state] if targets.containerd_state else [])]
    unmount(roots + list(targets.extra_mount_roots), ours, say)
    try:
        for line in teardown_node_network(bridge=targets.bridge):
            say(line)
    except ProcessError as exc:
        say(f"pod network not removed: {exc}")
    remove_pod_cgroups(targets.node_name, say)
    return done


def recorded_netns(data_dir: Path) -> set[Path]:
    """Network namespaces the kubelet recorded for its sandboxes that still exist and that no
    process uses any more: a runtime stopped while tearing a sandbox down leaves them."""
    used = {_inode(p / "ns" / "net") for p in PROC.iterdir() if p.name.isdigit()}
    found: set[Path] = set()
    for record in (data_dir / "agent" / "kubelet" / "pods").glob(f"*/{NETNS_RECORD}"):
        try:
            lines = record.read_text().split()
        except OSError:
            continue
        for line in lines:
            path = Path(os.path.realpath(line))  # /var/run/netns/... is /run/netns/...
            if path.parent.name == "netns" and path.exists() and _inode(path) not in used:
                found.add(path)
    return found


def _reset_containerd(data_dir: Path) -> list[str]:
    """Stop the node's containerd if it still runs, then remove its state (bundles, sockets)."""
    try:
        module = importlib.import_module("k3py.agent.containerd")
        return list(module.kill_all(module.ContainerdPaths.for_data_dir(data_dir)))
    except (ImportError, AttributeError) as exc:
        return [f"containerd state not reset: {exc}"]


# -- processes -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Process:
    pid: int
    ppid: int
    argv: tuple[str, ...]


def processes(proc: Path = PROC) -> dict[int, Process]:
    """Every process now: pid → (parent, command line)."""
    found: dict[int, Process] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # gone meanwhile
        fields = stat[stat.rfind(")") + 2 :].split()
        found[int(entry.name)] = Process(
            int(entry.name), int(fields[1]), tuple(a.decode(errors="replace") for a in argv if a)
        )
    return found


def shim_address(argv: Iterable[str]) -> str | None:
    """The ``-address`` a containerd shim was started with; None for anything else."""
    args = list(argv)
    if not args or not Path(args[0]).name.startswith(SHIM_PREFIX):
        return None
    for i, arg in enumerate(args):
        if arg in ("-address", "--address") and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(("-address=", "--address=")):
            return arg.split("=", 1)[1]
    return None


def descendants(root: int, table: dict[int, Process]) -> list[int]:
    children: dict[int, list[int]] = {}
    for process in table.values():
        children.setdefault(process.ppid, []).append(process.pid)
    out: list[int] = []
    todo = [root]
    while todo:
        pid = todo.pop()
        for child in children.get(pid, []):
            out.append(child)
            todo.append(child)
    return out


def kill_shims(socket: Path, netns_dir: Path, report: Report) -> set[Path]:
    """Kill the shims of ``socket`` and everything under them; return the ``cni-*`` network
    namespace files their processes were in (the node's pod sandboxes)."""
    table = processes()
    shims = [p for p in table.values() if shim_address(p.argv) == os.fspath(socket)]
    cni_netns = {_inode(path): path for path in _cni_netns_files(netns_dir)}
    ours: set[Path] = set()
    victims: list[int] = []
    for shim in shims:
        below = descendants(shim.pid, table)
        for pid in below:
            path = cni_netns.get(_inode(PROC / str(pid) / "ns" / "net"))
            if path is not None:
                ours.add(path)
        victims += [shim.pid, *below]
        report(
            f"killed containerd shim {shim.pid} ({_shim_id(shim.argv)}) and {len(below)} processes below it"
        )
    for pid in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _wait_gone(victims)
    return ours


def _shim_id(argv: tuple[str, ...]) -> str:
    for i, arg in enumerate(argv[:-1]):
        if arg in ("-id", "--id"):
            return argv[i + 1]
    return "?"


def _wait_gone(pids: Iterable[int], timeout: float = EXIT_WAIT) -> None:
    deadline = time.monotonic() + timeout
    left = set(pids)
    while left and time.monotonic() < deadline:
        left = {pid for pid in left if _alive(pid)}
        if left:
            time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        state = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return False
    return state[state.rfind(")") + 2 :].split()[0] != "Z"  # a zombie is dead, awaiting its reaper


def _cni_netns_files(netns_dir: Path) -> list[Path]:
    try:
        return sorted(p for p in netns_dir.iterdir() if p.name.startswith(CNI_NETNS_PREFIX))
    except OSError:
        return []


def _inode(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


# -- mounts --------------------------------------------------------------------------------------


def mount_points(mountinfo: Path = PROC / "self" / "mountinfo") -> list[Path]:
    """Every mount point of this mount namespace, in mount order."""
    points = []
    for line in mountinfo.read_text().splitlines():
        fields = line.split()
        if len(fields) > 4:
            points.append(Path(_unescape(fields[4])))
    return points


def _unescape(text: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    for escape, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        text = text.replace(escape, char)
    return text


def _under(path: Path, roots: Iterable[Path]) -> bool:
    """Strictly below one of ``roots``: a data directory that is itself a mount stays."""
    return any(path != root and path.is_relative_to(root) for root in roots)


def unmount(roots: list[Path], files: set[Path], report: Report) -> None:
    """Detach every mount below ``roots`` and each of ``files`` (latest first); remove ``files``."""
    resolved = [Path(os.path.realpath(root)) for root in roots]
    if Path("/") in resolved:
        raise ValueError("refusing to unmount everything below /")
    wanted = set(files)
    seen: set[Path] = set()
    for point in reversed(mount_points()):
        if point in seen or not (point in wanted or _under(point, resolved)):
            continue
        seen.add(point)
        try:
            _umount(point)
        except OSError as exc:
            report(f"cannot unmount {point}: {exc.strerror}")
            continue
        report(f"unmounted {point}")
    for path in sorted(wanted):
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            report(f"cannot remove {path}: {exc.strerror}")
            continue
        report(f"removed network namespace {path.name}")


def _umount(path: Path) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.umount2(os.fsencode(path), MNT_DETACH) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno), os.fspath(path))


# -- cgroups -------------------------------------------------------------------------------------


def cgroup_hierarchies(mountinfo: Path = PROC / "self" / "mountinfo") -> list[Path]:
    """The mount points of every cgroup hierarchy (v1 controllers, named ones, and v2)."""
    found = []
    for line in mountinfo.read_text().splitlines():
        before, _, after = line.partition(" - ")
        fields = before.split()
        fstype = after.split()[0] if after else ""
        if fstype in ("cgroup", "cgroup2") and len(fields) > 4:
            found.append(Path(_unescape(fields[4])))
    return found


def node_cgroups(node_name: str, hierarchies: Iterable[Path]) -> list[Path]:
    """``<hierarchy>/k3py/<node>`` where it exists."""
    return [h / CGROUP_ROOT / node_name for h in hierarchies if (h / CGROUP_ROOT / node_name).is_dir()]


def remove_pod_cgroups(node_name: str, report: Report, hierarchies: Iterable[Path] | None = None) -> None:
    """Kill what is left in the node's cgroups and remove them, in every hierarchy."""
    for top in node_cgroups(node_name, cgroup_hierarchies() if hierarchies is None else hierarchies):
        removed, failed = remove_cgroup_tree(top)
        if removed:
            report(f"removed {removed} cgroups under {top}")
        for path, why in failed:
            report(f"cannot remove cgroup {path}: {why}")
        with contextlib.suppress(OSError):
            top.parent.rmdir()  # <hierarchy>/k3py, when no other node uses it


def remove_cgroup_tree(top: Path, timeout: float = EXIT_WAIT) -> tuple[int, list[tuple[Path, str]]]:
    """Remove ``top`` and every cgroup below it, deepest first, killing the processes still in
    them; (how many went, [(cgroup, why it did not)])."""
    removed = 0
    failed: list[tuple[Path, str]] = []
    for path in sorted(_cgroup_dirs(top), key=lambda p: len(p.parts), reverse=True):
        deadline = time.monotonic() + timeout
        while True:
            _kill_members(path)
            try:
                path.rmdir()
                removed += 1
                break
            except FileNotFoundError:
                break
            except OSError as exc:
                if time.monotonic() > deadline:
                    failed.append((path, exc.strerror or str(exc)))
                    break
                time.sleep(0.05)
    return removed, failed


def _cgroup_dirs(top: Path) -> Iterator[Path]:
    yield top
    for root, dirs, _ in os.walk(top):
        for name in dirs:
            yield Path(root) / name


def _kill_members(cgroup: Path) -> None:
    kill = cgroup / "cgroup.kill"  # cgroup v2, Linux 5.14+: the kernel kills the whole subtree
    if kill.exists():
        with contextlib.suppress(OSError):
            kill.write_text("1")
        return
    try:
        pids = [int(line) for line in (cgroup / "cgroup.procs").read_text().split()]
    except OSError:
        return
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
