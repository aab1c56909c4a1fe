"""Network namespaces: run a piece of code inside one, and find the named ones.

Linux keeps the network namespace per thread, so :func:`run_in_netns` enters the namespace
in a thread of its own (``setns(2)`` through libc: Python 3.11 has no ``os.setns``), runs the
function there and lets the thread end; the caller's threads never change namespace. What
the function starts (``ip``, ``iptables``, CNI plugins) inherits that thread's namespace, and
what it opens under ``/proc/sys/net`` is that namespace's.

Named namespaces are files under :data:`NETNS_DIR` (``ip netns add`` and containerd's
``cni-<uuid>`` sandboxes), bind mounts of ``/proc/<pid>/ns/net`` that keep them alive.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000


class NetnsError(OSError):
    """A network namespace could not be entered."""


def netns_path(name_or_path: str | os.PathLike[str]) -> Path:
    """``/run/netns/<name>`` for a bare name, else the path itself (``/proc/<pid>/ns/net``)."""
    text = os.fspath(name_or_path)
    return Path(text) if "/" in text else NETNS_DIR / text


def _setns(path: Path) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise NetnsError(errno, f"cannot enter network namespace {path}: {os.strerror(errno)}")
    finally:
        os.close(fd)


def run_in_netns(name_or_path: str | os.PathLike[str], function: Callable[[], T]) -> T:
    """Call ``function`` in the network namespace ``name_or_path`` and return what it returns
    (or raise what it raises); blocks until it is done."""
    path = netns_path(name_or_path)
    outcome: list[T] = []
    failure: list[BaseException] = []

    def body() -> None:
        try:
            _setns(path)
            outcome.append(function())
        except BaseException as exc:  # handed to the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=body, name=f"netns-{path.name}", daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return outcome[0]


def same_netns(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether two namespace files (or ``/proc/<pid>/ns/net`` links) are one namespace."""
    try:
        first, second = Path(a).stat(), Path(b).stat()
    except OSError:
        return False
    return (first.st_dev, first.st_ino) == (second.st_dev, second.st_ino)
