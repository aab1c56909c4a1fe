"""Air-gap import into a real containerd: OCI and Docker archives, compressed ones, bad ones.

The images are built in the test from the host's /bin/busybox; CRI (the kubelet's view) must
list them under their tags and digests, and a container must run from an imported image.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from k3py.agent import airgap
from k3py.agent.cri import ContainerState
from k3py.agent.cri.grpc import Channel
from k3py.agent.cri.messages import CONTAINERD, CONTENT_SERVICE, LEASES_SERVICE
from k3py.images import oci
from tests.integration.containerd_support import (
    Node,
    busybox_image,
    container_config,
    running_containerd,
    sandbox_config,
)

pytestmark = [pytest.mark.root, pytest.mark.slow]


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    async with running_containerd(tmp_path) as started:
        yield started


async def _tags(node: Node) -> dict[str, list[str]]:
    return {
        tag: image["repo_digests"] for image in await node.runtime.list_images() for tag in image["repo_tags"]
    }


async def _run(node: Node, image: str, logs: Path) -> bytes:
    config = sandbox_config(logs)
    sandbox = await node.runtime.run_pod_sandbox(config)
    container = await node.runtime.create_container(
        sandbox, container_config(image, ["sleep", "300"]), config
    )
    await node.runtime.start_container(container)
    assert (await node.runtime.container_status(container))["state"] == ContainerState.RUNNING
    stdout, _, _ = await node.runtime.exec_sync(container, ["echo", "ran"], 10)
    await node.runtime.remove_pod_sandbox(sandbox)
    return stdout


async def test_oci_archive_is_imported_once(node: Node, tmp_path: Path) -> None:
    written = busybox_image(tmp_path / "images" / "busybox.tar")
    assert await airgap.import_archive(node.paths.socket, written.path) == [written.reference]
    tags = await _tags(node)
    assert tags[written.reference] == [f"k3py.test/busybox@{written.manifest_digest}"]
    status = await node.runtime.image_status(written.reference)
    assert status is not None and status["id"] == written.config_digest

    # Same path, size and mtime: recognised without reading it, even with its bytes spoilt.
    stat = written.path.stat()
    data = bytearray(written.path.read_bytes())
    data[2048:4096] = bytes(2048)
    written.path.write_bytes(bytes(data))
    os.utime(written.path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert await airgap.import_archive(node.paths.socket, written.path) == [written.reference]
    # A changed archive is read again (and this spoilt one fails).
    os.utime(written.path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with pytest.raises(Exception):  # noqa: B017 (a tar or a digest error, whichever the damage gives)
        await airgap.import_archive(node.paths.socket, written.path)

    assert await _run(node, written.reference, tmp_path / "logs") == b"ran\n"


async def test_imported_content_survives_garbage_collection(node: Node, tmp_path: Path) -> None:
    written = busybox_image(tmp_path / "busybox.tar")
    await airgap.import_archive(node.paths.socket, written.path)
    async with Channel(node.paths.socket, metadata=[("containerd-namespace", "k8s.io")]) as channel:
        lease = CONTAINERD.encode("CreateLeaseRequest", {"id": "gc-trigger"})
        await channel.unary(LEASES_SERVICE + "Create", lease, timeout=10)
        sync = CONTAINERD.encode("DeleteLeaseRequest", {"id": "gc-trigger", "sync": True})
        await channel.unary(LEASES_SERVICE + "Delete", sync, timeout=30)  # runs the GC before answering
        for digest in (written.manifest_digest, written.config_digest, written.layer_digest):
            info = CONTAINERD.encode("InfoRequest", {"digest": digest})
            reply = CONTAINERD.decode(
                "InfoResponse", await channel.unary(CONTENT_SERVICE + "Info", info, timeout=10)
            )
            assert reply["info"]["digest"] == digest


async def test_compressed_archives_and_a_directory(node: Node, tmp_path: Path) -> None:
    images = tmp_path / "images"
    plain = busybox_image(tmp_path / "build" / "plain.tar", "k3py.test/plain:1")
    gz = busybox_image(tmp_path / "build" / "gz.tar", "k3py.test/gz:1")
    zst = busybox_image(tmp_path / "build" / "zst.tar", "k3py.test/zst:1")
    images.mkdir()
    shutil.copy(plain.path, images / "plain.tar")
    (images / "gz.tar.gz").write_bytes(gzip.compress(gz.path.read_bytes()))
    await asyncio.to_thread(_zstd, zst.path, images / "zst.tar.zst")
    (images / "notes.txt").write_text("not an archive")
    (images / "broken.tar").write_bytes(b"this is no tar archive" * 100)
    (images / "truncated.tar").write_bytes(plain.path.read_bytes()[:3000])
    seen: list[Path] = []

    results = await airgap.import_directory(
        node.paths.socket, images, progress=lambda path, _: seen.append(path)
    )

    assert results[images / "plain.tar"] == ["k3py.test/plain:1"]
    assert results[images / "gz.tar.gz"] == ["k3py.test/gz:1"]
    assert results[images / "zst.tar.zst"] == ["k3py.test/zst:1"]
    assert isinstance(results[images / "broken.tar"], Exception)
    assert isinstance(results[images / "truncated.tar"], Exception)
    assert images / "notes.txt" not in results
    assert seen == sorted(results)
    tags = await _tags(node)
    assert {"k3py.test/plain:1", "k3py.test/gz:1", "k3py.test/zst:1"} <= tags.keys()
    # the three archives hold the same image under three names: one image, three tags and digests
    assert f"k3py.test/zst@{zst.manifest_digest}" in tags["k3py.test/zst:1"]
    assert f"k3py.test/gz@{gz.manifest_digest}" in tags["k3py.test/gz:1"]
    assert f"k3py.test/plain@{plain.manifest_digest}" in tags["k3py.test/plain:1"]


async def test_zstd_missing_is_a_clear_error_for_that_file(
    node: Node, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = busybox_image(tmp_path / "busybox.tar")
    archive = tmp_path / "images" / "busybox.tar.zst"
    archive.parent.mkdir()
    await asyncio.to_thread(_zstd, written.path, archive)
    shutil.copy(written.path, archive.parent / "plain.tar")
    monkeypatch.setattr(airgap, "ZSTD", "zstd-is-not-installed")
    results = await airgap.import_directory(node.paths.socket, archive.parent)
    error = results[archive]
    assert isinstance(error, airgap.AirgapError) and "zstd" in str(error)
    assert results[archive.parent / "plain.tar"] == [written.reference]


def _zstd(source: Path, out: Path) -> None:
    subprocess.run(["zstd", "-q", "-o", str(out), str(source)], check=True)


def _docker_save_archive(written: oci.Written, path: Path, tag: str) -> None:
    """The pre-OCI ``docker save`` layout: <id>/layer.tar, <config>.json, manifest.json only."""
    with tarfile.open(written.path) as source:
        config = source.extractfile("blobs/sha256/" + written.config_digest.split(":")[1]).read()  # type: ignore[union-attr]
        layer = source.extractfile("blobs/sha256/" + written.layer_digest.split(":")[1]).read()  # type: ignore[union-attr]
    layer_id = hashlib.sha256(b"legacy" + layer[:64]).hexdigest()
    config_name = written.config_digest.split(":")[1] + ".json"
    manifest = [{"Config": config_name, "RepoTags": [tag], "Layers": [f"{layer_id}/layer.tar"]}]
    entries = {
        f"{layer_id}/VERSION": b"1.0",
        f"{layer_id}/json": b"{}",
        f"{layer_id}/layer.tar": layer,
        config_name: config,
        "manifest.json": json.dumps(manifest).encode(),
        "repositories": b"{}",
    }
    with tarfile.open(path, "w") as archive:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


async def test_docker_archive_without_index_is_converted(node: Node, tmp_path: Path) -> None:
    written = busybox_image(tmp_path / "busybox.tar", "k3py.test/legacy-source:1")
    legacy = tmp_path / "legacy.tar"
    _docker_save_archive(written, legacy, "k3py.test/legacy:1")
    assert await airgap.import_archive(node.paths.socket, legacy) == ["k3py.test/legacy:1"]
    status = await node.runtime.image_status("k3py.test/legacy:1")
    assert status is not None and status["id"] == written.config_digest
    assert await _run(node, "k3py.test/legacy:1", tmp_path / "logs") == b"ran\n"
