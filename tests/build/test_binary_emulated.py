"""The arm64 and armv7 binaries, built and run under qemu-user-static: they run and serve.

A foreign binary needs only its target's glibc, so it runs in a chroot of the root filesystem
it was built in (this amd64 host has no aarch64 or armhf loader), its programs run by QEMU
through binfmt_misc.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from build.report import BuildReport
from build.smoke import Host, guest_root, serve
from tests.build.conftest import Build

pytestmark = [pytest.mark.slow, pytest.mark.root, pytest.mark.qemu]

READY_WITHIN = 60.0  # /readyz within 60 s under emulation
MAX_BYTES = 40_000_000  # the binary with its payload (K3s: 68 MB amd64, 63.5 MB arm64)
# target -> (ELF class: 1 = 32-bit, 2 = 64-bit; e_machine; platform.machine() under QEMU)
EXPECTED = {"arm64": (2, 183, "aarch64"), "armv7": (1, 40, "armv7l")}


@pytest.fixture(scope="module", params=sorted(EXPECTED))
def report(request: pytest.FixtureRequest, built: Build) -> BuildReport:
    return built(str(request.param))


@pytest.fixture(scope="module")
def guest(report: BuildReport, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    with guest_root(report, tmp_path_factory.mktemp(report.target)) as host:
        yield host


def test_binary_is_an_executable_of_its_target(report: BuildReport) -> None:
    elf_class, machine, uname = EXPECTED[report.target]
    header = Path(report.artifact).read_bytes()[:20]
    assert header[:4] == b"\x7fELF"
    assert header[4] == elf_class
    assert int.from_bytes(header[18:20], "little") == machine
    # platform.machine() in the builder's Python, run by QEMU through binfmt_misc
    assert report.guest_machine == uname


def test_binary_reports_its_version_under_qemu(report: BuildReport, guest: Host) -> None:
    command = guest.command(guest.root / "usr/local/bin/k3py", "version")
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    go_arch = {"arm64": "arm64", "armv7": "arm"}[report.target]
    assert (
        result.stdout
        == f"k3py version v{report.k3py_version} (python {report.guest_python}, linux/{go_arch})\n"
    )


def test_binary_serves_readyz_under_qemu(report: BuildReport, guest: Host, free_port: int) -> None:
    workdir = guest.root / "tmp" / f"k3py-smoke-{free_port}"
    workdir.mkdir()
    binary = guest.root / "usr/local/bin/k3py"
    with serve(guest, binary, workdir, free_port, timeout=READY_WITHIN) as server:
        print(f"{report.target} binary under QEMU: /readyz after {server.ready_seconds:.2f} s")
        assert server.get("/readyz?verbose")[1].decode().endswith("readyz check passed\n")
        status, _ = server.get("/api/v1/namespaces", client_cert=True)
        assert status == 200


def test_binary_unpacks_its_own_architectures_payload(
    report: BuildReport, guest: Host, free_port: int
) -> None:
    assert report.size_bytes <= MAX_BYTES, f"{report.size_bytes / 1e6:.1f} MB > {MAX_BYTES / 1e6:.0f} MB"
    workdir = guest.root / "tmp" / f"k3py-payload-{free_port}"
    workdir.mkdir()
    binary = guest.root / "usr/local/bin/k3py"
    with serve(guest, binary, workdir, free_port, timeout=READY_WITHIN, agent=True) as server:
        print(
            f"{report.target} first start (unpacks the payload): /readyz after {server.ready_seconds:.2f} s"
        )
    unpacked = workdir / "data/data" / report.payload_sha256
    manifest = json.loads((unpacked / "manifest.json").read_text())
    assert manifest["target"] == report.target
    elf_class, machine, _ = EXPECTED[report.target]
    for program in ("bin/containerd", "bin/runc", "cni/bridge"):
        header = (unpacked / program).read_bytes()[:20]
        assert (header[4], int.from_bytes(header[18:20], "little")) == (elf_class, machine), program
    version = subprocess.run(
        [*guest.prefix, f"/{(unpacked / 'bin/containerd').relative_to(guest.root)}", "--version"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert version.returncode == 0 and "containerd" in version.stdout, version
