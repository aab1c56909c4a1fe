"""OCI image archives from files: valid layout, content-addressed blobs, same bytes every time."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from k3py.images.oci import Directory, File, Image, ImageError, Symlink, normalize_reference, write_image


def busybox_like(created: int = 1_700_000_000) -> Image:
    return Image(
        reference="k3py/test:1",
        architecture="arm",
        variant="v7",
        files=(
            File("/bin/busybox", b"\x7fELF fake"),
            Symlink("bin/sh", "busybox"),
            File("etc/motd", b"hi\n", 0o644),
        ),
        entrypoint=("/bin/sh",),
        cmd=("-c", "sleep 1"),
        created=created,
    )


def read_archive(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as archive:
        return {
            m.name: archive.extractfile(m).read()  # type: ignore[union-attr]
            for m in archive.getmembers()
            if m.isfile()
        }


def test_archive_is_an_oci_layout_whose_blobs_match_their_digests(tmp_path: Path) -> None:
    written = write_image(busybox_like(), tmp_path / "image.tar")
    files = read_archive(written.path)
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    for name, data in files.items():
        if name.startswith("blobs/sha256/"):
            assert hashlib.sha256(data).hexdigest() == name.rsplit("/", 1)[1]
    index = json.loads(files["index.json"])
    (descriptor,) = index["manifests"]
    assert descriptor["digest"] == written.manifest_digest
    assert descriptor["platform"] == {"architecture": "arm", "os": "linux", "variant": "v7"}
    assert descriptor["annotations"]["io.containerd.image.name"] == "docker.io/k3py/test:1"
    assert descriptor["annotations"]["org.opencontainers.image.ref.name"] == "1"
    manifest = json.loads(files[f"blobs/sha256/{written.manifest_digest[7:]}"])
    assert manifest["config"]["digest"] == written.config_digest
    config = json.loads(files[f"blobs/sha256/{written.config_digest[7:]}"])
    assert config["config"]["Entrypoint"] == ["/bin/sh"]
    assert config["config"]["Cmd"] == ["-c", "sleep 1"]
    assert config["rootfs"]["diff_ids"] == [written.layer_digest]
    assert config["created"] == "2023-11-14T22:13:20Z"
    (docker,) = json.loads(files["manifest.json"])
    assert docker["RepoTags"] == ["docker.io/k3py/test:1"]
    assert docker["Layers"] == [f"blobs/sha256/{written.layer_digest[7:]}"]


def test_layer_holds_the_files_with_parents_owned_by_root(tmp_path: Path) -> None:
    written = write_image(busybox_like(), tmp_path / "image.tar")
    layer = read_archive(written.path)[f"blobs/sha256/{written.layer_digest[7:]}"]
    with tarfile.open(fileobj=io.BytesIO(layer)) as archive:
        members = {m.name.rstrip("/"): m for m in archive.getmembers()}
    assert list(members) == ["bin", "bin/busybox", "bin/sh", "etc", "etc/motd"]
    assert members["bin"].isdir()
    assert members["bin/sh"].issym() and members["bin/sh"].linkname == "busybox"
    assert members["bin/busybox"].mode == 0o755 and members["etc/motd"].mode == 0o644
    assert {(m.uid, m.gid, m.mtime) for m in members.values()} == {(0, 0, 1_700_000_000)}


def test_same_image_gives_the_same_bytes_and_another_time_does_not(tmp_path: Path) -> None:
    one = write_image(busybox_like(), tmp_path / "one.tar")
    two = write_image(busybox_like(), tmp_path / "two.tar")
    later = write_image(busybox_like(created=1_800_000_000), tmp_path / "later.tar")
    assert one.path.read_bytes() == two.path.read_bytes()
    assert one.manifest_digest == two.manifest_digest != later.manifest_digest


@pytest.mark.parametrize(
    ("reference", "normalized"),
    [
        ("busybox", "docker.io/library/busybox:latest"),
        ("k3py/pause:3", "docker.io/k3py/pause:3"),
        ("registry.local:5000/a/b", "registry.local:5000/a/b:latest"),
        ("localhost/x:y", "localhost/x:y"),
        ("quay.io/a/b@sha256:" + "0" * 64, "quay.io/a/b@sha256:" + "0" * 64),
    ],
)
def test_references_are_normalized_like_containerd_does(reference: str, normalized: str) -> None:
    assert normalize_reference(reference) == normalized


@pytest.mark.parametrize("reference", ["", "Busybox", "a b", "/x", "x/"])
def test_bad_references_are_refused(reference: str) -> None:
    with pytest.raises(ImageError):
        normalize_reference(reference)


@pytest.mark.parametrize(
    "files",
    [
        (File("../etc/passwd", b""),),
        (File("/", b""),),
        (File("a", b""), File("/a", b"")),
        (File("a", b""), File("a/b", b"")),
    ],
)
def test_files_outside_the_image_or_clashing_are_refused(tmp_path: Path, files: tuple[File, ...]) -> None:
    with pytest.raises(ImageError):
        write_image(Image(reference="x", architecture="amd64", files=files), tmp_path / "x.tar")
    assert not (tmp_path / "x.tar").exists()


def test_directories_keep_their_mode_and_may_hold_files(tmp_path: Path) -> None:
    image = Image(
        reference="x",
        architecture="amd64",
        files=(Directory("/tmp", 0o1777), Directory("var/empty"), File("/tmp/.keep", b"", 0o644)),
    )
    written = write_image(image, tmp_path / "x.tar")
    layer = read_archive(written.path)[f"blobs/sha256/{written.layer_digest[7:]}"]
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["tmp"].isdir() and members["tmp"].mode == 0o1777
    assert members["var"].mode == 0o755 and members["var/empty"].isdir()
    assert list(members) == ["tmp", "tmp/.keep", "var", "var/empty"]


def test_a_directory_cannot_also_be_a_file(tmp_path: Path) -> None:
    files = (File("a", b""), Directory("a/b"))
    with pytest.raises(ImageError):
        write_image(Image(reference="x", architecture="amd64", files=files), tmp_path / "x.tar")
