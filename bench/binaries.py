"""Build benchmark: per target, build times, sizes and start-up time of the binary.

For each target (``--arch``, default all): a build with whatever the cache holds (run it twice
to get the warm figure), or with ``--cold`` a build into an empty cache directory (debootstrap,
pip, PyInstaller and the payload's xz all from scratch); then the binary's sizes (PyInstaller
part, payload, whole) from the report, and two starts of ``k3py server`` with the embedded agent
on and the same data directory: the first unpacks the runtime payload, the second finds it.
Each start is timed from process start to the first ``200`` from ``/readyz``. Foreign binaries
start in a chroot of their builder root filesystem, under QEMU.

Run as root from the repository root: ``python -m bench.binaries [--arch arm64] [--cold]``.
Results go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import time
from pathlib import Path

from build.paths import cache_dir
from build.pipeline import BuildOptions, build_target
from build.report import BuildReport
from build.runner import QuietSink, terminate_as_interrupt
from build.smoke import NATIVE, Host, guest_root, serve
from build.targets import Target, resolve_targets
from k3py.api.profiles import Profile

START_TIMEOUT = 120.0


class Progress:
    """Prints each stage as it finishes."""

    def stage_started(self, target: Target, stage: str) -> None:
        pass

    def stage_finished(self, target: Target, stage: str, seconds: float, note: str) -> None:
        print(f"  {target.name:>5} {stage:<13} {seconds:7.1f} s  {note}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def starts(report: BuildReport, host: Host, workdir: Path) -> tuple[float, float, float]:
    """Seconds to /readyz for a first start (unpacks the payload) and a second one (does not),
    and the resident memory (MB) of the second, idle, once ready: bootloader and server."""
    binary = host.root / "usr/local/bin/k3py" if host.prefix else Path(report.artifact)
    times, rss = [], 0.0
    for _ in range(2):
        with serve(host, binary, workdir, free_port(), timeout=START_TIMEOUT, agent=True) as server:
            times.append(server.ready_seconds)
            time.sleep(2)
            rss = resident_mb(server.process.pid)
    return times[0], times[1], rss


def resident_mb(pid: int) -> float:
    """VmRSS of ``pid`` and all its descendants (onefile runs Python in a child of its bootloader)."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        total += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
        pending.extend(int(child) for child in children)
    return total / 1024


def measure(target: Target, *, cold: bool, scratch: Path, profile: Profile) -> None:
    cache = scratch / "cache" if cold else cache_dir()
    print(f"{target.name}: building ({'cold, empty cache' if cold else 'cache ' + str(cache)})", flush=True)
    options = BuildOptions(cache=cache, profile=profile)
    report = build_target(target, options=options, listener=Progress(), sink=QuietSink())
    workdir = scratch / f"start-{target.name}"
    if target.emulated:
        guest = scratch / f"guest-{target.name}"
        guest.mkdir()
        with guest_root(report, guest) as host:
            inside = host.root / "var/lib/k3py-bench"
            inside.mkdir()
            first, second, rss = starts(report, host, inside)
    else:
        workdir.mkdir()
        first, second, rss = starts(report, NATIVE, workdir)
    mb = 1e6
    print(
        f"{target.name}: build {report.build_seconds:.0f} s "
        f"(root filesystem {'cached' if report.rootfs_cached else 'bootstrapped'}); "
        f"binary {report.size_bytes / mb:.1f} MB = python {report.python_bytes / mb:.1f} MB "
        f"+ payload {report.payload_bytes / mb:.1f} MB "
        f"({report.payload_unpacked_bytes / mb:.0f} MB unpacked); "
        f"/readyz first start {first:.2f} s, second {second:.2f} s; idle RSS {rss:.1f} MB; "
        f"API profile {report.api_profile}",
        flush=True,
    )
    for name, component in sorted(report.components.items()):
        print(f"    {name:<26} {int(str(component['bytes'])) / mb:6.1f} MB  {component['version']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--arch", default="all", help="targets: 'all' or a comma-separated list (default: all)"
    )
    parser.add_argument(
        "--cold", action="store_true", help="build into an empty cache (no root filesystem, no pip cache)"
    )
    parser.add_argument("--keep-alpha", action="store_true", help="build with the alpha APIs kept")
    parser.add_argument("--keep-deprecated", action="store_true", help="build with the deprecated APIs kept")
    args = parser.parse_args(argv)
    profile = Profile(keep_alpha=args.keep_alpha, keep_deprecated=args.keep_deprecated)
    # SIGTERM unwinds like Ctrl-C: servers stopped, chroots unmounted, the scratch directory removed.
    with (
        terminate_as_interrupt(),
        tempfile.TemporaryDirectory(prefix="k3py-bench-build-", dir="/var/tmp") as scratch,
    ):
        for target in resolve_targets(args.arch):
            measure(target, cold=args.cold, scratch=Path(scratch), profile=profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
