"""Resetting a node's containerd: every process, mount, cgroup and socket it left behind.

:func:`kill_all` is what ``k3py killall`` and :meth:`k3py.agent.containerd.Containerd.stop`
(with ``leave_running=False``) use. Shims outlive containerd by design, so they are found by
the ``-address <socket>`` on their command line (the one containerd passed them); every process
below a shim (the pause process and the containers) is killed first, then the shim. runc's
``state.json`` files name the containers' cgroups, which a killed shim never removed; the
overlay and ``shm`` mounts under containerd's root and state are detached; the shim sockets
(always in ``/run/containerd/s``, named by a hash of address, namespace and id) and the state
directory are removed. The pod-level cgroups the kubelet named are the kubelet's to remove.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import logging
import os
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from k3py.agent.containerd import ContainerdPaths

log = logging.getLogger(__name__)

SHIM_SOCKETS: Final = Path("/run/containerd/s")
"""containerd 1.6 puts every shim's socket here, whatever its own state directory."""
STOP_TIMEOUT: Final = 10.0
_MNT_DETACH: Final = 2


def kill_all(paths: ContainerdPaths) -> list[str]:
    """Stop everything this containerd started; a line per thing done (for a killall command)."""
    done: list[str] = []
    for pid in processes(lambda args: is_containerd_for(args, paths.config)):
        terminate(pid, STOP_TIMEOUT)
        done.append(f"stopped containerd (pid {pid})")
    shims = {pid: args for pid, args in _command_lines().items() if _is_shim_for(args, paths.socket)}
    if shims:
        doomed = _descendants(set(shims))
        containers = doomed - set(shims)
        for pid in sorted(doomed, key=lambda p: p in shims):  # containers first, then their shims
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _wait_gone(doomed, 10.0)
        done.append(f"killed {len(shims)} shim(s) and {len(containers)} container process(es)")
        for args in shims.values():
            socket = _shim_socket(paths.socket, args)
            if socket is not None and socket.exists():
                socket.unlink()
                done.append(f"removed shim socket {socket}")
    for cgroup in _runc_cgroups(paths.runc_root):
        if _remove_cgroup(cgroup):
            done.append(f"removed cgroup {cgroup}")
    for target in _mounts_under((paths.root, paths.state)):
        if _unmount(target):
            done.append(f"unmounted {target}")
    if paths.state.exists():
        shutil.rmtree(paths.state, ignore_errors=True)
        done.append(f"removed {paths.state}")
    return done


def _command_lines() -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                raw = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            found[int(entry.name)] = raw.decode(errors="replace").split("\0")[:-1]
    return found


def processes(match: Callable[[list[str]], bool]) -> list[int]:
    return sorted(
        pid for pid, args in _command_lines().items() if args and match(args) and pid != os.getpid()
    )


def is_containerd_for(args: list[str], config: Path) -> bool:
    return bool(args) and Path(args[0]).name == "containerd" and str(config) in args


def _is_shim_for(args: list[str], socket: Path) -> bool:
    if not args or not Path(args[0]).name.startswith("containerd-shim"):
        return False
    return _option(args, "-address") == str(socket)


def _option(args: list[str], name: str) -> str | None:
    for i, arg in enumerate(args[:-1]):
        if arg == name:
            return args[i + 1]
    return None


def _shim_socket(address: Path, args: list[str]) -> Path | None:
    """containerd 1.6: ``/run/containerd/s/<sha256(<address>/<namespace>/<id>)>``."""
    namespace, shim_id = _option(args, "-namespace"), _option(args, "-id")
    if namespace is None or shim_id is None:
        return None
    return SHIM_SOCKETS / hashlib.sha256(f"{address}/{namespace}/{shim_id}".encode()).hexdigest()


def _descendants(roots: set[int]) -> set[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found = set(roots)
    grew = True
    while grew:
        grew = False
        for pid, ppid in parents.items():
            if ppid in found and pid not in found:
                found.add(pid)
                grew = True
    return found


def terminate(pid: int, grace: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not _wait_gone({pid}, grace):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _wait_gone({pid}, grace)


def _wait_gone(pids: set[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = {pid for pid in pids if _alive(pid)}
        if not alive:
            return True
        time.sleep(0.02)
    return False


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _runc_cgroups(runc_root: Path) -> list[Path]:
    """The cgroups of the containers runc made (from its ``state.json`` files), deepest first."""
    cgroups: set[Path] = set()
    for state in runc_root.glob("*/*/state.json"):
        try:
            paths = json.loads(state.read_text()).get("cgroup_paths") or {}
        except (OSError, ValueError):
            continue
        cgroups.update(Path(p) for p in paths.values() if str(p).startswith("/sys/fs/cgroup/"))
    return sorted(cgroups, key=lambda p: len(p.parts), reverse=True)


def _remove_cgroup(cgroup: Path) -> bool:
    try:
        cgroup.rmdir()
    except FileNotFoundError:
        return False
    except OSError as exc:
        log.warning("cannot remove cgroup %s: %s", cgroup, exc.strerror)
        return False
    return True


def _mounts_under(directories: tuple[Path, ...]) -> list[str]:
    prefixes = [str(d).rstrip("/") + "/" for d in directories]
    targets = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        target = _unescape(line.split()[4])
        if any(target.startswith(prefix) or target + "/" == prefix for prefix in prefixes):
            targets.append(target)
    return sorted(set(targets), key=len, reverse=True)


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    return field.encode().decode("unicode_escape") if "\\" in field else field


def _unmount(target: str) -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.umount2(target.encode(), _MNT_DETACH) == 0:
        return True
    error = ctypes.get_errno()
    if error not in (errno.EINVAL, errno.ENOENT):
        log.warning("cannot unmount %s: %s", target, os.strerror(error))
    return False
