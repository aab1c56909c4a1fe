"""``k3py check-config``: does this host have what a k3py node needs?

Each probe reads the kernel's own files (``/proc``, ``/sys``, ``/lib/modules``) or looks
for a program, and yields a ``Finding``: required or optional, ok or not, and a detail that
says what was found or what to install. The report lists every finding; the exit code is
1 if anything required is missing, 0 otherwise. Nothing on the host is changed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from k3py.util import proc

REQUIRED_CONTROLLERS = ("cpu", "memory", "pids")
CNI_PLUGINS = ("bridge", "host-local", "loopback", "portmap")
PROGRAMS = (
    # (program, Debian package, required)
    ("containerd", "containerd", True),
    ("runc", "runc", True),
    ("ip", "iproute2", True),
    ("mount", "util-linux", True),
    ("iptables", "iptables", False),
)
# What a release binary's runtime payload provides (k3py.payload), with the CNI plugins.
PAYLOAD_PROGRAMS = frozenset({"containerd", "runc"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Host:
    """Where to look; the defaults are the real host, tests point them at a fake tree."""

    proc: Path = Path("/proc")
    sys: Path = Path("/sys")
    modules: Path = Path("/lib/modules")
    path: str | None = None
    """Program search path; None means $PATH."""
    cni_dirs: tuple[Path, ...] = (Path("/usr/lib/cni"), Path("/opt/cni/bin"))
    kernel_release: str = field(default_factory=lambda: os.uname().release)
    payload: str | None = None
    """The sha256 of the runtime payload this binary carries (a release build), else None."""


@dataclass(frozen=True, slots=True)
class Finding:
    name: str
    ok: bool
    detail: str
    required: bool = True

    def line(self) -> str:
        mark = "+" if self.ok else ("-" if self.required else "!")
        optional = "" if self.ok or self.required else " (optional)"
        return f"[{mark}] {self.name}{optional}: {self.detail}"


def check_host(host: Host) -> list[Finding]:
    return [
        *_kernel(host),
        *_cgroups(host),
        *_overlay(host),
        *_bridge_netfilter(host),
        *_programs(host),
        *_cni(host),
    ]


def report(findings: list[Finding], out: TextIO) -> int:
    """Print the findings and a summary; return the exit code (1 if a requirement is missing)."""
    for finding in findings:
        print(finding.line(), file=out)
    missing = [f.name for f in findings if f.required and not f.ok]
    if missing:
        print(f"{len(missing)} required item(s) missing: {', '.join(missing)}", file=out)
        return 1
    print("All required items are present.", file=out)
    return 0


def _kernel(host: Host) -> Iterator[Finding]:
    yield Finding("kernel", True, f"Linux {host.kernel_release}")


def _cgroups(host: Host) -> Iterator[Finding]:
    unified = host.sys / "fs" / "cgroup" / "cgroup.controllers"
    if unified.is_file():
        version = "v2"
        enabled = set(unified.read_text().split())
    else:
        version = "v1"
        enabled = _v1_controllers(host.proc / "cgroups")
    missing = [name for name in REQUIRED_CONTROLLERS if name not in enabled]
    if missing:
        yield Finding("cgroups", False, f"{version} without controller(s) {', '.join(missing)}")
    else:
        yield Finding("cgroups", True, f"{version} with {', '.join(REQUIRED_CONTROLLERS)}")


def _v1_controllers(table: Path) -> set[str]:
    try:
        lines = table.read_text().splitlines()
    except OSError:
        return set()
    enabled: set[str] = set()
    for line in lines:
        fields = line.split()
        if len(fields) == 4 and not line.startswith("#") and fields[3] == "1":
            enabled.add(fields[0])
    return enabled


def _kernel_module(host: Host, relative: str) -> Path | None:
    base = host.modules / host.kernel_release / "kernel" / relative
    for candidate in (base, *base.parent.glob(base.name + ".*")):
        if candidate.is_file():
            return candidate
    return None


def _overlay(host: Host) -> Iterator[Finding]:
    try:
        filesystems = host.proc.joinpath("filesystems").read_text().split()
    except OSError:
        filesystems = []
    if "overlay" in filesystems:
        yield Finding("overlay", True, "filesystem supported by the kernel")
    elif _kernel_module(host, "fs/overlayfs/overlay.ko") is not None:
        yield Finding("overlay", True, "available as a module (load it with: modprobe overlay)")
    else:
        yield Finding(
            "overlay", False, "filesystem not supported by this kernel (containerd's snapshotter needs it)"
        )


def _bridge_netfilter(host: Host) -> Iterator[Finding]:
    if (host.proc / "sys" / "net" / "bridge").is_dir():
        yield Finding("br_netfilter", True, "loaded", required=False)
    elif _kernel_module(host, "net/bridge/br_netfilter.ko") is not None:
        yield Finding("br_netfilter", True, "available as a module (modprobe br_netfilter)", required=False)
    else:
        yield Finding(
            "br_netfilter",
            False,
            "not available: service traffic between pods on one node may bypass the proxy",
            required=False,
        )
    try:
        forwarding = (host.proc / "sys" / "net" / "ipv4" / "ip_forward").read_text().strip()
    except OSError:
        forwarding = ""
    if forwarding == "1":
        yield Finding("ip_forward", True, "enabled", required=False)
    else:
        yield Finding(
            "ip_forward", False, "disabled (enable with: sysctl -w net.ipv4.ip_forward=1)", required=False
        )


def _programs(host: Host) -> Iterator[Finding]:
    for program, package, required in PROGRAMS:
        if program in PAYLOAD_PROGRAMS and host.payload is not None:
            yield Finding(program, True, _in_payload(host.payload), required=required)
            continue
        found = proc.which(program, path=host.path)
        if found is None:
            yield Finding(program, False, f"not found (Debian package {package})", required=required)
        else:
            yield Finding(program, True, _describe_program(found), required=required)


def _describe_program(found: Path) -> str:
    if found.name not in ("containerd", "runc"):
        return str(found)
    try:
        result = proc.run([found, "--version"], capture=True, check=False, quiet=True)
    except proc.ProcessError:
        return f"{found} (cannot run it)"
    first = result.stdout.strip().splitlines()[:1]
    return f"{found} ({first[0]})" if first and result.returncode == 0 else str(found)


def _in_payload(sha256: str) -> str:
    return f"carried by this binary (unpacked once to <data-dir>/data/{sha256[:12]}…)"


def _cni(host: Host) -> Iterator[Finding]:
    for plugin in CNI_PLUGINS:
        if host.payload is not None:
            yield Finding(f"cni/{plugin}", True, _in_payload(host.payload))
            continue
        found = next((d / plugin for d in host.cni_dirs if (d / plugin).is_file()), None)
        if found is None:
            dirs = " or ".join(str(d) for d in host.cni_dirs)
            detail = f"not found in {dirs} (Debian package containernetworking-plugins)"
            yield Finding(f"cni/{plugin}", False, detail)
        else:
            yield Finding(f"cni/{plugin}", True, str(found))
