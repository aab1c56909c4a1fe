"""The build host: the Debian packages building needs, and binfmt_misc handlers for QEMU.

``invoke deps`` calls :func:`ensure_binfmt` after installing :data:`BUILD_PACKAGES`: it mounts
binfmt_misc when it is not mounted and enables (``update-binfmts``) the handler of every emulated
target, returning one line per thing it did. :func:`problems` is the read-only check the build
runs first; each problem is one line naming its fix.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from build.errors import HostNotReady
from build.targets import Target
from k3py.util import proc

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")

BUILD_PACKAGES = {
    "debootstrap": "builds the Debian root filesystem each target is built in",
    "qemu-user-static": "runs arm64/armv7 programs on this host (through binfmt_misc)",
    "binfmt-support": "update-binfmts, to register the QEMU handlers with the kernel",
    "zstd": "compresses the cached root filesystem tarballs",
}
HOST_TOOLS = ("debootstrap", "chroot", "mount", "umount", "tar", "zstd")


@dataclass(frozen=True)
class Handler:
    """A binfmt_misc handler as the kernel reports it (``/proc/sys/fs/binfmt_misc/<name>``)."""

    name: str
    enabled: bool
    interpreter: str
    flags: str


def binfmt_mounted() -> bool:
    return (BINFMT_DIR / "status").exists()


def read_handler(name: str) -> Handler | None:
    """The registered handler called ``name``, or None when the kernel has none."""
    path = BINFMT_DIR / name
    if not path.is_file():
        return None
    fields: dict[str, str] = {}
    enabled = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line in ("enabled", "disabled"):
            enabled = line == "enabled"
            continue
        key, _, value = line.partition(" ")
        fields[key.rstrip(":")] = value
    return Handler(name, enabled, fields.get("interpreter", ""), fields.get("flags", ""))


def handler_problem(target: Target) -> str | None:
    """Why ``target``'s programs cannot run here (one line naming the fix), or None if they can."""
    if not target.emulated:
        return None
    if not binfmt_mounted():
        return f"binfmt_misc is not mounted on {BINFMT_DIR}: run `invoke deps` (as root)"
    handler = read_handler(target.binfmt_name)
    if handler is None or not handler.enabled:
        state = "not registered" if handler is None else "disabled"
        return f"binfmt handler {target.binfmt_name} is {state}: run `invoke deps` (as root)"
    if not Path(handler.interpreter).exists():
        return (
            f"binfmt handler {target.binfmt_name} points at missing {handler.interpreter}: "
            "run `apt-get install --reinstall qemu-user-static`"
        )
    if "F" not in handler.flags:
        name = target.binfmt_name
        return (
            f"binfmt handler {name} lacks the F (fix-binary) flag, so chroots cannot find QEMU: "
            f"run `update-binfmts --disable {name}`, then `invoke deps`"
        )
    return None


def problems(targets: Sequence[Target]) -> list[str]:
    """Everything that keeps this host from building ``targets``, one line each with its fix."""
    found: list[str] = []
    if os.geteuid() != 0:
        found.append("building needs root (debootstrap, chroot, mounts): run `sudo invoke build ...`")
    for tool in HOST_TOOLS:
        if proc.which(tool, extra_dirs=[Path("/usr/sbin"), Path("/sbin")]) is None:
            found.append(f"{tool} not found: run `invoke deps` (as root)")
    for target in targets:
        problem = handler_problem(target)
        if problem and problem not in found:
            found.append(problem)
    return found


def require_ready(targets: Sequence[Target]) -> None:
    """Raise :class:`HostNotReady` with every problem when the host cannot build ``targets``."""
    found = problems(targets)
    if found:
        raise HostNotReady("; ".join(found))


def ensure_binfmt(targets: Sequence[Target], *, dry_run: bool = False) -> list[str]:
    """Mount binfmt_misc and enable the QEMU handlers ``targets`` need; say what was done."""
    done: list[str] = []
    if not binfmt_mounted():
        if dry_run:
            done.append(f"would mount binfmt_misc on {BINFMT_DIR}")
        else:
            proc.run(["mount", "-t", "binfmt_misc", "binfmt_misc", BINFMT_DIR])
            done.append(f"mounted binfmt_misc on {BINFMT_DIR}")
    for target in targets:
        if not target.emulated:
            continue
        handler = read_handler(target.binfmt_name) if binfmt_mounted() else None
        if handler is not None and handler.enabled:
            continue
        if dry_run:
            done.append(f"would enable binfmt handler {target.binfmt_name} (for {target.name})")
            continue
        update_binfmts = proc.which("update-binfmts", extra_dirs=[Path("/usr/sbin")])
        if update_binfmts is None:
            raise HostNotReady("update-binfmts not found: run `apt-get install binfmt-support`")
        if not Path("/var/lib/binfmts", target.binfmt_name).exists():
            proc.run([update_binfmts, "--import", target.binfmt_name])
        proc.run([update_binfmts, "--enable", target.binfmt_name])
        problem = handler_problem(target)
        if problem:
            raise HostNotReady(problem)
        done.append(f"enabled binfmt handler {target.binfmt_name} (for {target.name})")
    return done
