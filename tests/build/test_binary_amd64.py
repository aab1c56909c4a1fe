"""The amd64 binary, built natively: it runs, serves /readyz over TLS quickly and carries its data files
(the API manifest and schemas stripped by the build's default profile)."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path

import pytest

from build.apimanifest import strip
from build.smoke import NATIVE, serve
from k3py.api.manifest import Stability, Stripped, parse
from k3py.api.profiles import Profile
from k3py.payload import TRAILER
from tests.build.conftest import Build

pytestmark = [pytest.mark.slow, pytest.mark.root]

READY_WITHIN = 5.0  # amd64 answers /readyz within 5 s of process start
MAX_BYTES = 40_000_000  # the binary with its payload (K3s: 68 MB)


def test_binary_checksum_lock_and_report_agree(built: Build) -> None:
    report = built("amd64")
    binary = Path(report.artifact)
    digest = hashlib.sha256(binary.read_bytes()).hexdigest()
    assert report.sha256 == digest
    assert binary.with_name(binary.name + ".sha256").read_text() == f"{digest}  {binary.name}\n"
    lock = binary.with_name(binary.name + ".lock").read_text().splitlines()
    assert f"k3py=={report.k3py_version}" in lock
    assert any(line.startswith("aiohttp==") for line in lock)
    on_disk = json.loads(binary.with_name(binary.name + ".report.json").read_text())
    assert on_disk["sha256"] == digest
    assert report.guest_machine == "x86_64"


def test_binary_reports_its_version(built: Build) -> None:
    report = built("amd64")
    result = subprocess.run([report.artifact, "version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout == f"k3py version v{report.k3py_version} (python {report.guest_python}, linux/amd64)\n"
    )


def test_binary_serves_readyz_and_the_api(built: Build, tmp_path: Path, free_port: int) -> None:
    report = built("amd64")
    with serve(NATIVE, Path(report.artifact), tmp_path, free_port, timeout=30) as server:
        print(f"amd64 binary: /readyz after {server.ready_seconds:.2f} s")
        assert server.ready_seconds < READY_WITHIN
        assert server.get("/readyz?verbose")[1].decode().endswith("readyz check passed\n")
        # Onefile runs Python in a child of its bootloader, from what it unpacked into /var/tmp.
        pid = server.process.pid
        (child,) = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        assert "/var/tmp/_MEI" in Path(f"/proc/{child}/maps").read_text()
        status, body = server.get("/api/v1/namespaces", client_cert=True)
        assert status == 200
        names = {item["metadata"]["name"] for item in json.loads(body)["items"]}
        assert {"default", "kube-system"} <= names
        # The OpenAPI document is built from the bundled definitions-*.json.gz (importlib.resources).
        status, body = server.get("/openapi/v2", client_cert=True)
        assert status == 200, body[:500]
        assert "io.k8s.api.apps.v1.Deployment" in json.loads(body)["definitions"]


def test_binary_unpacks_its_payload_once_per_version(built: Build, tmp_path: Path, free_port: int) -> None:
    report = built("amd64")
    unpacked = tmp_path / "data" / "data" / report.payload_sha256
    with serve(NATIVE, Path(report.artifact), tmp_path, free_port, timeout=30, agent=True) as first:
        assert "Unpacked the runtime payload" in (tmp_path / "server.log").read_text()
    manifest = json.loads((unpacked / "manifest.json").read_text())
    assert {c["name"] for c in manifest["components"]} >= {"containerd", "runc", "bridge", "pause"}
    assert (tmp_path / "data/data/current").readlink() == Path(report.payload_sha256)
    stamp = (unpacked / "bin/containerd").stat().st_mtime_ns
    with serve(NATIVE, Path(report.artifact), tmp_path, free_port, timeout=30, agent=True) as second:
        assert "Unpacked the runtime payload" not in (tmp_path / "server.log").read_text()
    assert (unpacked / "bin/containerd").stat().st_mtime_ns == stamp
    print(f"amd64 /readyz: first start {first.ready_seconds:.2f} s, second {second.ready_seconds:.2f} s")
    assert first.ready_seconds < READY_WITHIN and second.ready_seconds < READY_WITHIN


def test_binary_is_python_then_payload(built: Build) -> None:
    report = built("amd64")
    assert report.size_bytes == report.python_bytes + report.payload_bytes + TRAILER.size
    assert report.size_bytes <= MAX_BYTES, f"{report.size_bytes / 1e6:.1f} MB > {MAX_BYTES / 1e6:.0f} MB"


def test_binary_carries_the_stripped_api(built: Build, tmp_path: Path, free_port: int) -> None:
    report = built("amd64")
    expected = strip(Profile(), tmp_path / "api")
    assert report.api_profile == {"keep_alpha": False, "keep_deprecated": False, "only": [], "drop": []}
    assert report.api_groupversions == len(expected.served)
    assert report.api_schema_bytes_after == expected.after.gzip_bytes < report.api_schema_bytes_before
    with serve(NATIVE, Path(report.artifact), tmp_path, free_port, timeout=30) as server:
        # What the binary unpacked for its Python (read while it runs): the stripped files, byte for byte.
        pid = server.process.pid
        (child,) = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        match = re.search(r"/var/tmp/_MEI\w+", Path(f"/proc/{child}/maps").read_text())
        assert match is not None
        package = Path(match[0]) / "k3py" / "api"
        manifest_bytes = (package / "manifest.toml").read_bytes()
        assert manifest_bytes == expected.manifest_path.read_bytes()
        assert (
            package / "data" / expected.schemas_path.name
        ).read_bytes() == expected.schemas_path.read_bytes()
        status, body = server.get("/apis", client_cert=True)
        assert status == 200, body[:500]
        served_versions = [v["version"] for g in json.loads(body)["groups"] for v in g["versions"]]
    manifest = parse(manifest_bytes)
    assert manifest.stripped == Stripped()
    assert not [gv.name for gv in manifest if gv.stability is Stability.ALPHA]
    assert served_versions and not [v for v in served_versions if "alpha" in v]
