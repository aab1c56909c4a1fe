"""The amd64 binary on a bare Debian (minbase: no Python, no containerd): it brings everything it needs."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from build.paths import cache_dir
from build.report import BuildReport
from build.rootfs import Recipe, ensure_rootfs
from build.runner import GUEST_PATH, CommandLog
from build.smoke import Host, guest_root, serve
from build.targets import load_target
from tests.build.conftest import Build

pytestmark = [pytest.mark.slow, pytest.mark.root]


@pytest.fixture(scope="module")
def report(built: Build) -> BuildReport:
    return built("amd64")


@pytest.fixture(scope="module")
def bare(report: BuildReport, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    """A chroot of Debian minbase (bootstrapped once, then cached) holding only the binary."""
    scratch = tmp_path_factory.mktemp("bare")
    target = load_target("amd64")
    with CommandLog(scratch / "bootstrap.log") as log:
        image = ensure_rootfs(target, cache=cache_dir(), log=log, recipe=Recipe.bare(target))
    with guest_root(report, scratch, tarball=image.tarball) as host:
        yield host


def run(host: Host, *argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = ["chroot", str(host.root), "/usr/bin/env", *(f"{k}={v}" for k, v in (env or {}).items()), *argv]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env={"PATH": GUEST_PATH})


def test_the_root_has_no_python_and_no_container_runtime(bare: Host) -> None:
    for program in ("python3", "containerd", "runc"):
        assert run(bare, "sh", "-c", f"command -v {program}").returncode != 0, program
    assert not (bare.root / "usr/lib/cni").exists()
    assert shutil.which("sh", path=str(bare.root / "bin"))


def test_binary_serves_the_api_and_runs_its_payload(report: BuildReport, bare: Host, free_port: int) -> None:
    workdir = bare.root / "var/lib/k3py-test"
    workdir.mkdir()
    binary = bare.root / "usr/local/bin/k3py"
    with serve(bare, binary, workdir, free_port, timeout=30, agent=True) as server:
        status, body = server.get("/api/v1/namespaces/kube-system", client_cert=True)
        assert status == 200, body
        assert json.loads(body)["metadata"]["name"] == "kube-system"
    payload = "/var/lib/k3py-test/data/data/current"
    containerd = run(bare, f"{payload}/bin/containerd", "--version")
    assert containerd.returncode == 0 and "containerd" in containerd.stdout, containerd
    runc = run(bare, f"{payload}/bin/runc", "--version", env={"LD_LIBRARY_PATH": f"{payload}/lib"})
    assert runc.returncode == 0 and "libseccomp: 2." in runc.stdout, runc
    bridge = run(bare, f"{payload}/cni/bridge", env={"CNI_COMMAND": "VERSION"})
    assert bridge.returncode == 0 and "supportedVersions" in bridge.stdout, bridge
    shim = run(bare, f"{payload}/bin/containerd-shim-runc-v2", "-v")
    assert shim.returncode == 0, shim
    with (bare.root / payload.lstrip("/") / "images/pause.tar").open("rb") as image:
        assert image.read(512)[257:262] == b"ustar"
