"""Test images: what is built, the report, the air-gap list, and images made from package fixtures."""

from __future__ import annotations

import io
import json
import platform
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from build.runner import CommandLog
from build.targets import load_target
from conformance.upstream import recipes
from conformance.upstream.catalog import UpstreamImage
from conformance.upstream.debs import DebianPackages, dependency_names
from conformance.upstream.errors import PackageMissing
from conformance.upstream.images import (
    ABSENT,
    BUILT,
    NOT_BUILT,
    Blocked,
    ImageResult,
    ImagesReport,
    airgap_images,
    blocks_for,
    plan,
    read_report,
    report_problems,
)
from conformance.upstream.usage import Use
from k3py.images import oci

needs_dpkg = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb (Debian)")
E2E = "registry.k8s.io/e2e-test-images"


def test_each_image_is_built_left_out_on_purpose_or_not_built_with_a_reason() -> None:
    assert plan(UpstreamImage(reference=f"{E2E}/agnhost:2.66.1", constants=("Agnhost",)))[:2] == (
        BUILT,
        recipes.agnhost,
    )
    status, recipe, reason = plan(
        UpstreamImage(reference="gcr.io/k8s-authenticated-test/agnhost:2.6", constants=("AgnhostPrivate",))
    )
    assert (status, recipe) == (ABSENT, None) and "authenticated registry" in reason
    status, _, reason = plan(
        UpstreamImage(reference=f"{E2E}/volume/nfs:1.6.0", constants=("VolumeNFSServer",))
    )
    assert (status, reason) == (NOT_BUILT, recipes.NOT_BUILT["volume/nfs"])
    assert plan(UpstreamImage(reference="registry.k8s.io/sig-storage/csi-attacher:v4.12.0")) == (
        NOT_BUILT,
        None,
        recipes.CSI_REASON,
    )


def test_every_recipe_and_reason_names_an_image_of_the_suite() -> None:
    assert not set(recipes.RECIPES) & set(recipes.NOT_BUILT)
    assert {"agnhost", "busybox", "pause"} <= set(recipes.RECIPES)


def test_blocked_tests_are_deduplicated_and_a_direct_use_wins() -> None:
    image = UpstreamImage(reference=f"{E2E}/nginx:1.27.0-2", constants=("Nginx", "NginxNew"))
    uses = {
        "Nginx": [Use(spec="b", file="x.go", how="file"), Use(spec="a", file="x.go", how="direct")],
        "NginxNew": [Use(spec="b", file="x.go", how="direct")],
    }
    assert blocks_for(image, uses) == (
        Blocked(test="a", file="x.go", how="direct"),
        Blocked(test="b", file="x.go", how="direct"),
    )


def report_with_archive(base: Path) -> ImagesReport:
    archive = base / "images" / "amd64" / "pause-3.10.2.tar"
    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"not really a tar")
    from build.report import sha256_of

    return ImagesReport(
        key={"version": "v1.37.2", "arch": "amd64"},
        version="v1.37.2",
        arch="amd64",
        platform="linux/amd64",
        built_at="2026-11-27T10:00:00Z",
        seconds=1.0,
        images=(
            ImageResult(
                reference="registry.k8s.io/pause:3.10.2",
                name="pause",
                constants=("Pause",),
                status=BUILT,
                archive="images/amd64/pause-3.10.2.tar",
                bytes=archive.stat().st_size,
                sha256=sha256_of(archive),
                sources=("catatonit 0.1.7",),
            ),
            ImageResult(
                reference=f"{E2E}/perl:5.26",
                name="perl",
                constants=("Perl",),
                status=NOT_BUILT,
                reason="no recipe",
                blocks=(Blocked(test="[sig-x] t [Conformance]", file="test/e2e/x.go", how="direct"),),
            ),
        ),
        directory=base,
    )


def test_the_report_reads_back_and_lists_archives_and_blocked_tests(tmp_path: Path) -> None:
    report = report_with_archive(tmp_path)
    path = tmp_path / "images" / "amd64" / "images.json"
    report.write(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["summary"] == {
        "built": 1,
        "not_built": 1,
        "failed": 0,
        "absent_by_design": 0,
        "blocked_conformance_tests": 1,
    }
    assert "directory" not in data
    again = read_report(path, tmp_path)
    assert again == report
    assert again is not None and again.blocked_tests == ["[sig-x] t [Conformance]"]
    assert airgap_images(tmp_path) == [tmp_path / "images/amd64/pause-3.10.2.tar"]
    assert airgap_images(tmp_path, "arm64") == []


def test_a_changed_archive_or_other_inputs_invalidate_the_report(tmp_path: Path) -> None:
    report = report_with_archive(tmp_path)
    assert report_problems(report, report.key) == []
    assert report_problems(report, {**report.key, "version": "v1.37.3"}) == ["made from other inputs"]
    (tmp_path / "images/amd64/pause-3.10.2.tar").write_bytes(b"not really a taR")
    assert report_problems(report, report.key) == ["images/amd64/pause-3.10.2.tar changed"]
    (tmp_path / "images/amd64/pause-3.10.2.tar").unlink()
    assert report_problems(report, report.key) == ["images/amd64/pause-3.10.2.tar is missing"]
    assert airgap_images(tmp_path) == []
    assert report_problems(None, report.key) == ["no readable images.json"]


def test_depends_fields_give_the_first_alternative_without_versions() -> None:
    assert dependency_names("libc6 (>= 2.34), bind9-host | host, libssl3:any (>= 3.0.0), libc6") == [
        "libc6",
        "bind9-host",
        "libssl3",
    ]


def make_deb(debs: Path, name: str, version: str, files: dict[str, bytes | str], depends: str = "") -> None:
    """Build ``<name>_<version>_amd64.deb`` in ``debs``; ``files``: bytes, or ``->target`` for a link."""
    root = debs.parent / "roots" / name
    (root / "DEBIAN").mkdir(parents=True)
    control = (
        f"Package: {name}\nVersion: {version}\nArchitecture: amd64\nMaintainer: k3py tests <t@example.com>\n"
    )
    control += f"Depends: {depends}\n" if depends else ""
    control += "Description: fixture\n"
    (root / "DEBIAN" / "control").write_text(control, encoding="utf-8")
    for path, content in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            target.symlink_to(content.removeprefix("->"))
        else:
            target.write_bytes(content)
            target.chmod(0o755)
    debs.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "--build", root, debs / f"{name}_{version}_amd64.deb"],
        check=True,
        capture_output=True,
    )


STATIC_PROGRAM = Path("/bin/busybox")
"""A statically linked program of the host (Debian's busybox-static), standing in for static bash."""
FAKE_BUSYBOX = b"#!/bin/sh\n[ \"$1\" = --list ] && printf 'sh\\nls\\ncat\\nbusybox\\n'\n"


def layer_of(archive: Path) -> tuple[dict[str, object], dict[str, tarfile.TarInfo], dict[str, bytes]]:
    with tarfile.open(archive) as image:
        manifest = json.load(image.extractfile("manifest.json"))  # type: ignore[arg-type]
        config = json.load(image.extractfile(manifest[0]["Config"]))  # type: ignore[arg-type]
        layer = image.extractfile(manifest[0]["Layers"][0]).read()  # type: ignore[union-attr]
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        members = {member.name.rstrip("/"): member for member in tar.getmembers()}
        data = {name: tar.extractfile(m).read() for name, m in members.items() if m.isfile()}  # type: ignore[union-attr]
    return config, members, data


@needs_dpkg
@pytest.mark.skipif(not STATIC_PROGRAM.exists(), reason="needs Debian's busybox-static")
def test_busybox_image_from_a_package_fixture(tmp_path: Path) -> None:
    packages_dir = tmp_path / "packages"
    make_deb(packages_dir / "debs", "busybox-static", "1:1.35.0-0test", {"bin/busybox": FAKE_BUSYBOX})
    bash: dict[str, bytes | str] = {"bin/bash-static": STATIC_PROGRAM.read_bytes()}
    make_deb(packages_dir / "debs", "bash-static", "5.2-0test", bash)
    target = load_target("amd64")
    with CommandLog(tmp_path / "images.log") as log:
        workshop = recipes.Workshop(
            source=tmp_path / "src",
            version="v1.37.2",
            target=target,
            work=tmp_path / "work",
            # A fixture .deb is already in the cache: nothing is downloaded (apt would not know it).
            packages=DebianPackages(packages_dir, target, log),
            go=Path("/nonexistent/go"),
            gomodcache=tmp_path / "gomod",
            created=1_700_000_000,
            log=log,
        )
        reference = f"{E2E}/busybox:1.37.0-2"
        made = recipes.busybox(workshop, reference)
    written = oci.write_image(made.image, tmp_path / "busybox.tar")
    assert written.reference == reference
    with tarfile.open(written.path) as image:
        index = json.load(image.extractfile("index.json"))  # type: ignore[arg-type]
    (descriptor,) = index["manifests"]
    assert descriptor["annotations"]["io.containerd.image.name"] == reference
    assert descriptor["platform"] == {"architecture": "amd64", "os": "linux"}

    config, members, data = layer_of(written.path)
    assert config["config"] == {
        "Cmd": ["sh"],
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "Labels": {recipes.LABEL_RECIPE: "busybox", recipes.LABEL_REFERENCE: reference},
    }
    assert data["bin/busybox"] == FAKE_BUSYBOX and members["bin/busybox"].mode == 0o755
    assert {name: members[name].linkname for name in ("bin/ls", "bin/cat")} == dict.fromkeys(
        ("bin/ls", "bin/cat"), "busybox"
    )
    assert members["bin/sh"].linkname == "bash", "sh keeps variables whose names are not shell names"
    assert data["bin/bash"] == STATIC_PROGRAM.read_bytes(), "a static program comes alone"
    assert members["tmp"].isdir() and members["tmp"].mode == 0o1777
    assert members["root"].mode == 0o700
    passwd = data["etc/passwd"].decode()
    assert passwd.startswith("root:x:0:0:root:/root:/bin/sh\n")
    assert "nobody:x:65534:65534:" in passwd
    assert "nogroup:x:65534:" in data["etc/group"].decode()
    assert all(member.uid == 0 and member.mtime == 1_700_000_000 for member in members.values())
    assert made.sources == [
        "busybox-static 1:1.35.0-0test (Debian, 4 applets)",
        "bash-static 5.2-0test (Debian): /bin/bash",
    ]


HOST_LIBC = Path("/lib/x86_64-linux-gnu/libc.so.6")
HOST_LOADER = Path("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")


@needs_dpkg
@pytest.mark.skipif(
    platform.machine() != "x86_64" or not HOST_LIBC.exists() or not HOST_LOADER.exists(),
    reason="uses the host's x86-64 glibc as a package fixture",
)
def test_a_program_comes_with_its_interpreter_and_library_closure(tmp_path: Path) -> None:
    debs = tmp_path / "packages" / "debs"
    make_deb(
        debs, "prog", "1.0", {"usr/bin/prog": Path("/usr/bin/true").read_bytes()}, depends="libc6 (>= 2.34)"
    )
    make_deb(
        debs,
        "libc6",
        "2.36-9",
        {
            "lib/x86_64-linux-gnu/libc.so.6": HOST_LIBC.resolve().read_bytes(),
            "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2": HOST_LOADER.resolve().read_bytes(),
            # Debian's loader link is absolute: it must resolve inside the package, not on the host.
            "lib64/ld-linux-x86-64.so.2": "->/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        },
    )
    make_deb(debs, "lonely", "1.0", {"usr/bin/lonely": Path("/usr/bin/true").read_bytes()})
    with CommandLog(tmp_path / "log") as log:
        packages = DebianPackages(tmp_path / "packages", load_target("amd64"), log)
        files = packages.program("prog", "usr/bin/prog", "/bin/prog")
        by_path = {item.path: item for item in files}
        assert by_path["/bin/prog"].package == "prog"
        assert by_path["/lib64/ld-linux-x86-64.so.2"].package == "libc6"
        loader = tmp_path / "packages/trees/libc6/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
        assert by_path["/lib64/ld-linux-x86-64.so.2"].source == loader
        assert by_path["/lib/x86_64-linux-gnu/libc.so.6"].package == "libc6"
        assert all(item.source.is_file() and not item.source.is_symlink() for item in files)
        with pytest.raises(
            PackageMissing, match=r"no fetched package has ld-linux-x86-64\.so\.2 .*fetched: lonely$"
        ):
            DebianPackages(tmp_path / "packages", load_target("amd64"), log).program(
                "lonely", "usr/bin/lonely"
            )
