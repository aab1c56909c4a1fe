"""The arm64 and armv7 binaries, built and run under qemu-user-static: they run and serve.

A foreign binary needs only its target's glibc, so it runs in a chroot of the root filesystem
it was built in (this amd64 host has no aarch64 or armhf loader), its programs run by QEMU
through binfmt_misc.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from build.report import BuildReport
from build.smoke import Host, guest_root, serve
from tests.build.conftest import Build

pytestmark = [pytest.mark.slow, pytest.mark.root, pytest.mark.qemu]

READY_WITHIN = 60.0  # /readyz within 60 s under emulation
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
