"""The runtime payload: appended to an executable, found again, unpacked once, all or nothing."""

from __future__ import annotations

import io
import json
import lzma
import multiprocessing
import os
import tarfile
from pathlib import Path

import pytest

from build.payload import Collected, Compressed, attach, compress
from build.report import sha256_of
from build.runner import CommandLog
from build.targets import load_target
from k3py import payload
from k3py.payload import PayloadError, ensure_unpacked, locate

EXECUTABLE = b"\x7fELF" + b"pretend PyInstaller executable" * 100


def make_tree(tree: Path, *, version: str = "1.0") -> Collected:
    (tree / "bin").mkdir(parents=True)
    (tree / "bin/containerd").write_bytes(b"containerd " + version.encode())
    (tree / "bin/containerd").chmod(0o755)
    (tree / "lib").mkdir()
    (tree / "lib/libseccomp.so.2").write_bytes(b"library")
    (tree / "cni").mkdir()
    (tree / "cni/bridge").write_bytes(b"bridge")
    (tree / "cni/bridge").chmod(0o700)
    manifest: dict[str, object] = {"format": 1, "components": [{"name": "containerd", "version": version}]}
    (tree / payload.MANIFEST).write_text(json.dumps(manifest))
    return Collected(tree=tree, manifest=manifest)


def make_binary(tmp_path: Path, *, version: str = "1.0", name: str = "k3py") -> Path:
    collected = make_tree(tmp_path / f"tree-{name}-{version}", version=version)
    with CommandLog(tmp_path / "build.log") as log:
        compressed = compress(collected, tmp_path / "cache", load_target("amd64"), epoch=0, log=log)
    binary = tmp_path / name
    attach(_executable(tmp_path), compressed, binary)
    return binary


def _executable(tmp_path: Path) -> Path:
    path = tmp_path / "pyinstaller-out"
    path.write_bytes(EXECUTABLE)
    return path


def attach_archive(tmp_path: Path, archive_bytes: bytes) -> Path:
    """A binary carrying ``archive_bytes`` as its payload (for hand-made, hostile archives)."""
    archive = tmp_path / "hostile.tar.xz"
    archive.write_bytes(archive_bytes)
    binary = tmp_path / "hostile"
    attach(
        _executable(tmp_path), Compressed(archive=archive, sha256=sha256_of(archive), cached=False), binary
    )
    return binary


def test_payload_is_found_after_the_executable_which_stays_intact(tmp_path: Path) -> None:
    binary = make_binary(tmp_path)
    located = locate(binary)
    assert located is not None
    data = binary.read_bytes()
    assert data[: located.offset] == EXECUTABLE
    assert located.offset + located.length + payload.TRAILER.size == len(data)


def test_a_binary_without_payload_has_none(tmp_path: Path) -> None:
    assert locate(_executable(tmp_path)) is None
    assert ensure_unpacked(tmp_path / "data-dir", None) is None  # not frozen: running from source


def test_unpacks_once_into_data_sha256_with_modes_and_current_link(tmp_path: Path) -> None:
    binary = make_binary(tmp_path)
    located = locate(binary)
    assert located is not None
    first = ensure_unpacked(tmp_path / "dd", located)
    assert first is not None and first.unpacked_now
    assert first.path == tmp_path / "dd" / "data" / located.sha256
    assert first.binary("containerd").read_bytes() == b"containerd 1.0"
    assert first.binary("containerd").stat().st_mode & 0o777 == 0o755
    assert (first.path / "lib/libseccomp.so.2").stat().st_mode & 0o777 == 0o644
    assert first.manifest["components"] == [{"name": "containerd", "version": "1.0"}]
    assert (tmp_path / "dd/data/current").readlink() == Path(located.sha256)
    second = ensure_unpacked(tmp_path / "dd", located)
    assert second is not None and not second.unpacked_now
    assert sorted(p.name for p in (tmp_path / "dd/data").iterdir()) == sorted(
        [".lock", "current", located.sha256]
    )


def test_a_new_version_becomes_current_and_the_old_one_previous(tmp_path: Path) -> None:
    old, new = (
        locate(make_binary(tmp_path, version="1.0")),
        locate(make_binary(tmp_path, version="2.0", name="new")),
    )
    assert old is not None and new is not None and old.sha256 != new.sha256
    ensure_unpacked(tmp_path / "dd", old)
    unpacked = ensure_unpacked(tmp_path / "dd", new)
    assert unpacked is not None and unpacked.binary("containerd").read_bytes() == b"containerd 2.0"
    assert (tmp_path / "dd/data/current").readlink() == Path(new.sha256)
    assert (tmp_path / "dd/data/previous").readlink() == Path(old.sha256)


def test_same_tree_compresses_to_the_same_bytes_whatever_its_times_and_owners(tmp_path: Path) -> None:
    one, two = make_tree(tmp_path / "one"), make_tree(tmp_path / "two")
    for path in (two.tree / "bin/containerd", two.tree / "cni"):
        os.utime(path, (1, 1))
    with CommandLog(tmp_path / "log") as log:
        a = compress(one, tmp_path / "cache-a", load_target("amd64"), epoch=42, log=log)
        b = compress(two, tmp_path / "cache-b", load_target("amd64"), epoch=42, log=log)
    assert a.archive.read_bytes() == b.archive.read_bytes()
    with tarfile.open(a.archive) as archive:
        assert {(m.mtime, m.uid, m.gid) for m in archive.getmembers()} == {(42, 0, 0)}
        assert [m.name for m in archive.getmembers()] == sorted(m.name for m in archive.getmembers())


def test_damaged_payload_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    binary = make_binary(tmp_path)
    data = bytearray(binary.read_bytes())
    located = locate(binary)
    assert located is not None
    data[located.offset + 100] ^= 0xFF
    binary.write_bytes(bytes(data))
    with pytest.raises(PayloadError, match="checksum"):
        ensure_unpacked(tmp_path / "dd", located)
    assert sorted(p.name for p in (tmp_path / "dd/data").iterdir()) == [".lock"]


def test_truncated_binary_is_refused(tmp_path: Path) -> None:
    binary = make_binary(tmp_path)
    data = binary.read_bytes()
    binary.write_bytes(data[:1000] + data[-payload.TRAILER.size :])
    with pytest.raises(PayloadError, match="truncated"):
        locate(binary)


def _xz_tar(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buffer = io.BytesIO()
    with lzma.open(buffer, "wb") as xz, tarfile.open(fileobj=xz, mode="w") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return buffer.getvalue()


def _member(
    name: str, kind: bytes = tarfile.REGTYPE, *, data: bytes = b"x", link: str = ""
) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, data


@pytest.mark.parametrize(
    "hostile",
    [
        _member("../escape"),
        _member("/etc/evil"),
        _member("bin/link", tarfile.SYMTYPE, link="../../etc/passwd"),
        _member("bin/link", tarfile.SYMTYPE, link="/etc/passwd"),
        _member("dev/sda", tarfile.BLKTYPE),
        _member("bin/hard", tarfile.LNKTYPE, link="manifest.json"),
    ],
)
def test_members_that_leave_the_payload_or_are_not_plain_are_refused(
    tmp_path: Path, hostile: tuple[tarfile.TarInfo, bytes]
) -> None:
    manifest = _member(payload.MANIFEST, data=b"{}")
    located = locate(attach_archive(tmp_path, _xz_tar(manifest, hostile)))
    assert located is not None
    with pytest.raises(PayloadError):
        ensure_unpacked(tmp_path / "dd", located)
    assert sorted(p.name for p in (tmp_path / "dd/data").iterdir()) == [".lock"]
    assert not (tmp_path / "dd/escape").exists()


def test_payload_without_manifest_is_refused(tmp_path: Path) -> None:
    located = locate(attach_archive(tmp_path, _xz_tar(_member("bin/containerd"))))
    assert located is not None
    with pytest.raises(PayloadError, match="manifest"):
        ensure_unpacked(tmp_path / "dd", located)
    assert sorted(p.name for p in (tmp_path / "dd/data").iterdir()) == [".lock"]


def test_an_interrupted_unpack_is_cleaned_up_by_the_next(tmp_path: Path) -> None:
    located = locate(make_binary(tmp_path))
    assert located is not None
    leftover = tmp_path / "dd/data" / ".unpack-0123456789abcdef-999999"
    (leftover / "bin").mkdir(parents=True)
    unpacked = ensure_unpacked(tmp_path / "dd", located)
    assert unpacked is not None and unpacked.unpacked_now
    assert not leftover.exists()


def _unpack_in_child(binary: str, data_dir: str) -> bool:
    located = locate(Path(binary))
    assert located is not None
    unpacked = ensure_unpacked(Path(data_dir), located)
    assert unpacked is not None
    return unpacked.unpacked_now


def test_processes_starting_together_unpack_once(tmp_path: Path) -> None:
    binary = make_binary(tmp_path)
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        results = pool.starmap(_unpack_in_child, [(str(binary), str(tmp_path / "dd"))] * 4)
    assert sorted(results) == [False, False, False, True]


def test_links_chained_to_climb_out_of_the_payload_are_refused(tmp_path: Path) -> None:
    members = (
        _member(payload.MANIFEST, data=b"{}"),
        _member("d/l", tarfile.SYMTYPE, link=".."),
        _member("d/l/m", tarfile.SYMTYPE, link=".."),
        _member("d/l/m/escaped.txt", data=b"out"),
    )
    located = locate(attach_archive(tmp_path, _xz_tar(*members)))
    assert located is not None
    with pytest.raises(PayloadError, match="through a link"):
        ensure_unpacked(tmp_path / "dd", located)
    assert not (tmp_path / "dd/data/escaped.txt").exists()
    assert sorted(p.name for p in (tmp_path / "dd/data").iterdir()) == [".lock"]


def test_a_file_written_over_an_earlier_link_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "victim"
    outside.write_text("keep")
    members = (
        _member(payload.MANIFEST, data=b"{}"),
        _member("bin/x", tarfile.SYMTYPE, link="../manifest.json"),
        _member("bin/x", data=b"overwrite"),
    )
    located = locate(attach_archive(tmp_path, _xz_tar(*members)))
    assert located is not None
    with pytest.raises(PayloadError):
        ensure_unpacked(tmp_path / "dd", located)
    assert outside.read_text() == "keep"


def test_a_broken_unpacked_directory_is_replaced(tmp_path: Path) -> None:
    located = locate(make_binary(tmp_path))
    assert located is not None
    broken = tmp_path / "dd/data" / located.sha256
    (broken / "bin").mkdir(parents=True)  # no manifest: an unpack someone emptied
    unpacked = ensure_unpacked(tmp_path / "dd", located)
    assert unpacked is not None and unpacked.unpacked_now
    assert (broken / payload.MANIFEST).is_file()
    assert sorted(p.name for p in (tmp_path / "dd/data").iterdir()) == sorted(
        [".lock", "current", located.sha256]
    )


def test_an_unusable_data_directory_is_a_payload_error(tmp_path: Path) -> None:
    located = locate(make_binary(tmp_path))
    assert located is not None
    (tmp_path / "dd").write_text("not a directory")
    with pytest.raises(PayloadError, match="cannot use the runtime payload"):
        ensure_unpacked(tmp_path / "dd", located)
