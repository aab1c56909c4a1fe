"""The embedded registry mirror over real image archives: lookups, headers, 404s, the hosts files.

Archives are written with :func:`k3py.images.oci.write_image` (OCI layout), gzip-compressed
copies of them, and Docker-layout archives made from them (``manifest.json`` only). The
mirror runs on 127.0.0.1 and is asked over HTTP, as containerd asks it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import shutil
import tarfile
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from k3py.agent import airgap, registry_content, registry_hosts
from k3py.agent import run as agent_run
from k3py.agent.containerd import ContainerdPaths, RuntimeFiles, render_config
from k3py.agent.registry_content import Catalog, index_archive, index_directory
from k3py.agent.registry_mirror import RegistryMirror
from k3py.agent.run import NodePlan
from k3py.images import oci

AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.66.1"


def image(reference: str, text: bytes) -> oci.Image:
    return oci.Image(
        reference=reference,
        architecture="amd64",
        files=(oci.File("/bin/hello", text), oci.File("/etc/motd", b"hi\n", 0o644)),
        entrypoint=("/bin/hello",),
        created=1_700_000_000,
    )


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def gzipped(archive: Path, into: Path) -> Path:
    with archive.open("rb") as source, gzip.open(into, "wb") as out:
        shutil.copyfileobj(source, out)
    return into


def docker_layout(archive: Path, into: Path) -> Path:
    """The same image without ``index.json``: what ``docker save`` wrote before Docker 25."""
    into.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as source, tarfile.open(into, "w") as out:
        for member in source.getmembers():
            if member.name not in ("index.json", "oci-layout"):
                out.addfile(member, source.extractfile(member) if member.isfile() else None)
    return into


@pytest.fixture
def images(tmp_path: Path) -> tuple[Path, oci.Written, oci.Written]:
    directory = tmp_path / "images"
    agnhost = oci.write_image(image(AGNHOST, b"agnhost"), directory / "agnhost.tar")
    busybox = oci.write_image(image("busybox:1.36", b"busybox"), tmp_path / "busybox.tar")
    gzipped(busybox.path, directory / "busybox.tar.gz")
    return directory, agnhost, busybox


@pytest.fixture
async def mirror(
    images: tuple[Path, oci.Written, oci.Written], tmp_path: Path
) -> AsyncIterator[RegistryMirror]:
    catalog, failed = index_directory(images[0], tmp_path / "registry")
    assert failed == {}
    server = RegistryMirror(catalog)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def fetch(
    mirror: RegistryMirror, method: str, path: str, *, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, mirror.url + path, headers=headers) as response,
    ):
        return response.status, dict(response.headers), await response.read()


def error_code(body: bytes) -> str:
    errors: list[dict[str, Any]] = json.loads(body)["errors"]
    return str(errors[0]["code"])


AGNHOST_PATH = "/v2/e2e-test-images/agnhost"
NS = "?ns=registry.k8s.io"


async def test_the_base_endpoint_answers_an_empty_object(mirror: RegistryMirror) -> None:
    status, headers, body = await fetch(mirror, "GET", "/v2/")
    assert (status, json.loads(body)) == (200, {})
    assert headers["Docker-Distribution-API-Version"] == "registry/2.0"


async def test_a_manifest_by_tag_is_the_archived_one_with_its_digest(
    mirror: RegistryMirror, images: tuple[Path, oci.Written, oci.Written]
) -> None:
    written = images[1]
    status, headers, body = await fetch(mirror, "GET", f"{AGNHOST_PATH}/manifests/2.66.1{NS}")
    assert status == 200
    assert sha256(body) == written.manifest_digest == headers["Docker-Content-Digest"]
    assert headers["Content-Type"] == oci.MEDIA_MANIFEST
    assert headers["Content-Length"] == str(len(body))
    assert json.loads(body)["config"]["digest"] == written.config_digest


async def test_head_gives_the_headers_of_get_without_a_body(
    mirror: RegistryMirror, images: tuple[Path, oci.Written, oci.Written]
) -> None:
    _, _, manifest = await fetch(mirror, "GET", f"{AGNHOST_PATH}/manifests/2.66.1{NS}")
    status, headers, body = await fetch(mirror, "HEAD", f"{AGNHOST_PATH}/manifests/2.66.1{NS}")
    assert (status, body) == (200, b"")
    assert headers["Docker-Content-Digest"] == images[1].manifest_digest
    assert headers["Content-Length"] == str(len(manifest))
    assert headers["Content-Type"] == oci.MEDIA_MANIFEST
    layer = images[1].layer_digest
    status, headers, body = await fetch(mirror, "HEAD", f"{AGNHOST_PATH}/blobs/{layer}{NS}")
    _, _, data = await fetch(mirror, "GET", f"{AGNHOST_PATH}/blobs/{layer}{NS}")
    assert (status, body, headers["Content-Length"]) == (200, b"", str(len(data)))


async def test_a_manifest_by_digest_and_its_blobs(
    mirror: RegistryMirror, images: tuple[Path, oci.Written, oci.Written]
) -> None:
    written = images[1]
    status, headers, body = await fetch(
        mirror, "GET", f"{AGNHOST_PATH}/manifests/{written.manifest_digest}{NS}"
    )
    assert (status, sha256(body)) == (200, written.manifest_digest)
    for digest in (written.config_digest, written.layer_digest):
        status, headers, body = await fetch(mirror, "GET", f"{AGNHOST_PATH}/blobs/{digest}{NS}")
        assert (status, sha256(body), headers["Docker-Content-Digest"]) == (200, digest, digest)
        assert headers["Content-Length"] == str(len(body))
    with tarfile.open(fileobj=io.BytesIO(body)) as layer:
        assert layer.extractfile("bin/hello").read() == b"agnhost"  # type: ignore[union-attr]


async def test_a_byte_range_of_a_blob(
    mirror: RegistryMirror, images: tuple[Path, oci.Written, oci.Written]
) -> None:
    layer = images[1].layer_digest
    _, _, whole = await fetch(mirror, "GET", f"{AGNHOST_PATH}/blobs/{layer}{NS}")
    status, headers, body = await fetch(
        mirror, "GET", f"{AGNHOST_PATH}/blobs/{layer}{NS}", headers={"Range": "bytes=100-"}
    )
    assert (status, body) == (206, whole[100:])
    assert headers["Content-Range"] == f"bytes 100-{len(whole) - 1}/{len(whole)}"
    status, _, body = await fetch(
        mirror, "GET", f"{AGNHOST_PATH}/blobs/{layer}{NS}", headers={"Range": "bytes=0-9"}
    )
    assert (status, body) == (206, whole[:10])
    status, headers, _ = await fetch(
        mirror, "GET", f"{AGNHOST_PATH}/blobs/{layer}{NS}", headers={"Range": f"bytes={len(whole)}-"}
    )
    assert (status, headers["Content-Range"]) == (416, f"bytes */{len(whole)}")


async def test_docker_hub_names_with_and_without_ns(
    mirror: RegistryMirror, images: tuple[Path, oci.Written, oci.Written]
) -> None:
    """``busybox:1.36`` is ``docker.io/library/busybox``; served from the gzip archive's unpacked blobs."""
    busybox = images[2]
    for query in ("?ns=docker.io", "", "?ns=registry-1.docker.io"):
        status, headers, body = await fetch(mirror, "GET", f"/v2/library/busybox/manifests/1.36{query}")
        assert (status, headers["Docker-Content-Digest"]) == (200, busybox.manifest_digest), query
    status, _, body = await fetch(
        mirror, "GET", f"/v2/library/busybox/blobs/{busybox.layer_digest}?ns=docker.io"
    )
    assert (status, sha256(body)) == (200, busybox.layer_digest)


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", f"{AGNHOST_PATH}/manifests/2.66.1", 404, "NAME_UNKNOWN"),  # no ns: Docker Hub's name
        ("GET", f"{AGNHOST_PATH}/manifests/2.66.1?ns=quay.io", 404, "NAME_UNKNOWN"),
        ("GET", f"/v2/e2e-test-images/nope/manifests/2.66.1{NS}", 404, "NAME_UNKNOWN"),
        ("GET", f"/v2/UPPER/case/manifests/1{NS}", 404, "NAME_UNKNOWN"),
        ("GET", f"{AGNHOST_PATH}/manifests/2.0{NS}", 404, "MANIFEST_UNKNOWN"),
        ("HEAD", f"{AGNHOST_PATH}/manifests/sha256:{'0' * 64}{NS}", 404, ""),
        ("GET", f"{AGNHOST_PATH}/blobs/sha256:{'0' * 64}{NS}", 404, "BLOB_UNKNOWN"),
        ("GET", "/v2/_catalog", 404, "NAME_UNKNOWN"),
        ("PUT", f"{AGNHOST_PATH}/manifests/2.66.1{NS}", 405, "UNSUPPORTED"),
        ("POST", f"{AGNHOST_PATH}/blobs/uploads/{NS}", 405, "UNSUPPORTED"),
    ],
)
async def test_what_the_mirror_does_not_hold_is_a_distribution_error(
    mirror: RegistryMirror, method: str, path: str, status: int, code: str
) -> None:
    got, headers, body = await fetch(mirror, method, path)
    assert got == status
    if method != "HEAD":
        assert headers["Content-Type"].startswith("application/json")
        assert error_code(body) == code


async def test_a_repository_serves_only_its_own_blobs(
    mirror: RegistryMirror, images: tuple[Path, oci.Written, oci.Written]
) -> None:
    busybox = images[2]
    status, _, body = await fetch(mirror, "GET", f"{AGNHOST_PATH}/blobs/{busybox.layer_digest}{NS}")
    assert (status, error_code(body)) == (404, "BLOB_UNKNOWN")
    status, _, body = await fetch(mirror, "GET", f"{AGNHOST_PATH}/manifests/{busybox.manifest_digest}{NS}")
    assert (status, error_code(body)) == (404, "MANIFEST_UNKNOWN")


async def test_requests_are_recorded(mirror: RegistryMirror) -> None:
    await fetch(mirror, "HEAD", f"{AGNHOST_PATH}/manifests/2.66.1{NS}")
    await fetch(mirror, "GET", f"{AGNHOST_PATH}/manifests/2.0{NS}")
    assert [(r.method, r.path, r.ns, r.status) for r in mirror.requests] == [
        ("HEAD", f"{AGNHOST_PATH}/manifests/2.66.1", "registry.k8s.io", 200),
        ("GET", f"{AGNHOST_PATH}/manifests/2.0", "registry.k8s.io", 404),
    ]


# -- the content: indexes, unpacked blobs, Docker layout ------------------------------------------


def test_a_plain_archive_is_served_in_place_and_a_compressed_one_unpacked(
    images: tuple[Path, oci.Written, oci.Written], tmp_path: Path
) -> None:
    directory, agnhost, busybox = images
    content = tmp_path / "registry"
    plain = index_archive(directory / "agnhost.tar", content)
    assert {s.path for s in plain.blobs.values()} == {agnhost.path.absolute()}
    packed = index_archive(directory / "busybox.tar.gz", content)
    unpacked = content / "blobs" / "sha256"
    assert {s.path for s in packed.blobs.values()} <= set(unpacked.iterdir())
    assert (unpacked / busybox.layer_digest.split(":")[1]).read_bytes() == packed.blobs[
        busybox.layer_digest
    ].read()
    assert {i.name for i in plain.images} == {
        AGNHOST,
        f"{AGNHOST.rsplit(':', 1)[0]}@{agnhost.manifest_digest}",
    }
    assert Catalog([plain, packed]).registries() == {"registry.k8s.io", "docker.io"}


def test_an_unchanged_archive_is_not_read_again(
    images: tuple[Path, oci.Written, oci.Written], tmp_path: Path
) -> None:
    directory = images[0]
    content = tmp_path / "registry"
    first = index_archive(directory / "busybox.tar.gz", content)
    saved = list((content / "index").glob("*.json"))
    assert len(saved) == 1
    record = json.loads(saved[0].read_text())
    record["images"][0]["name"] = "docker.io/library/marker:1"  # only a saved index can say this
    saved[0].write_text(json.dumps(record))
    again = index_archive(directory / "busybox.tar.gz", content)
    assert again.images[0].name == "docker.io/library/marker:1"
    assert again.blobs == first.blobs
    (directory / "busybox.tar.gz").touch()  # a changed archive (its mtime) is indexed afresh
    assert (
        index_archive(directory / "busybox.tar.gz", content).images[0].name
        == "docker.io/library/busybox:1.36"
    )


def test_a_removed_archive_takes_its_index_and_blobs_along(
    images: tuple[Path, oci.Written, oci.Written], tmp_path: Path
) -> None:
    directory = images[0]
    content = tmp_path / "registry"
    index_directory(directory, content)
    assert list((content / "blobs" / "sha256").iterdir())
    (directory / "busybox.tar.gz").unlink()
    catalog, _ = index_directory(directory, content)
    assert list((content / "blobs" / "sha256").iterdir()) == []
    assert len(list((content / "index").glob("*.json"))) == 1
    assert catalog.registries() == {"registry.k8s.io"}


def test_a_docker_layout_image_gets_the_manifest_the_import_writes(
    images: tuple[Path, oci.Written, oci.Written], tmp_path: Path
) -> None:
    agnhost = images[1]
    legacy = docker_layout(agnhost.path, tmp_path / "legacy" / "agnhost-docker.tar")
    index = index_archive(legacy, tmp_path / "registry")
    with tarfile.open(agnhost.path) as archive:
        config_size = archive.getmember(f"blobs/sha256/{agnhost.config_digest.split(':')[1]}").size
        layer_size = archive.getmember(f"blobs/sha256/{agnhost.layer_digest.split(':')[1]}").size
    expected = airgap.docker_manifest(
        agnhost.config_digest, config_size, [airgap.Layer(agnhost.layer_digest, layer_size, False)]
    )
    found = Catalog([index]).manifest("registry.k8s.io/e2e-test-images/agnhost", "2.66.1")
    assert found is not None
    assert (found.digest, found.media_type, found.source.read()) == (
        sha256(expected),
        oci.MEDIA_MANIFEST,
        expected,
    )


def old_docker_layout(written: oci.Written, into: Path) -> Path:
    """``docker save`` before Docker 25: ``<id>/layer.tar`` (here a symlink to it) and ``<hex>.json``."""
    with tarfile.open(written.path) as source:
        config = source.extractfile(f"blobs/sha256/{written.config_digest.split(':')[1]}").read()  # type: ignore[union-attr]
        layer = source.extractfile(f"blobs/sha256/{written.layer_digest.split(':')[1]}").read()  # type: ignore[union-attr]
    manifest = [{"Config": f"{written.config_digest.split(':')[1]}.json", "RepoTags": [written.reference],
                 "Layers": ["abc/layer.tar"]}]  # fmt: skip
    into.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(into, "w") as out:
        for name, data in (
            ("def/layer.tar", layer),
            (manifest[0]["Config"], config),
            ("manifest.json", json.dumps(manifest).encode()),
        ):
            info = tarfile.TarInfo(str(name))
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("abc/layer.tar")
        link.type, link.linkname = tarfile.SYMTYPE, "../def/layer.tar"
        out.addfile(link)
    return into


@pytest.mark.parametrize("compressed", [False, True])
def test_an_old_docker_save_archive_is_served(
    images: tuple[Path, oci.Written, oci.Written], tmp_path: Path, compressed: bool
) -> None:
    agnhost = images[1]
    legacy = old_docker_layout(agnhost, tmp_path / "legacy" / "agnhost.tar")
    if compressed:
        legacy = gzipped(legacy, tmp_path / "legacy" / "agnhost.tar.gz")
    catalog = Catalog([index_archive(legacy, tmp_path / "registry")])
    found = catalog.manifest("registry.k8s.io/e2e-test-images/agnhost", "2.66.1")
    assert found is not None
    manifest = json.loads(found.source.read())
    assert [layer["digest"] for layer in manifest["layers"]] == [agnhost.layer_digest]
    for digest in (agnhost.config_digest, agnhost.layer_digest):
        source = catalog.blob("registry.k8s.io/e2e-test-images/agnhost", digest)
        assert source is not None and sha256(source.read()) == digest


def test_a_damaged_archive_is_reported_and_the_others_still_served(
    images: tuple[Path, oci.Written, oci.Written], tmp_path: Path
) -> None:
    directory = images[0]
    (directory / "broken.tar.gz").write_bytes(gzip.compress(b"not a tar archive" * 100))
    catalog, failed = index_directory(directory, tmp_path / "registry")
    assert list(failed) == [directory / "broken.tar.gz"]
    assert isinstance(failed[directory / "broken.tar.gz"], registry_content.ContentError)
    assert catalog.registries() == {"registry.k8s.io", "docker.io"}


# -- containerd's hosts files -------------------------------------------------------------------


def test_registries_yaml_mirrors_are_read(tmp_path: Path) -> None:
    path = tmp_path / "registries.yaml"
    assert registry_hosts.read_registries(path).mirrors == {}
    path.write_text(
        "mirrors:\n"
        "  docker.io:\n    endpoint: ['https://mirror.example.com/']\n"
        "  registry.k8s.io:\n"
        '  "*":\n    endpoint: []\n'
    )
    assert registry_hosts.read_registries(path).mirrors == {
        "docker.io": ("https://mirror.example.com",),
        "registry.k8s.io": (),
        "*": (),
    }
    path.write_text("mirrors:\n  docker.io:\n    endpoint: mirror.example.com\n")
    with pytest.raises(registry_hosts.RegistryConfigError, match=r"mirrors\.docker\.io\.endpoint"):
        registry_hosts.read_registries(path)


def test_hosts_files_put_the_mirror_first(tmp_path: Path) -> None:
    certs = tmp_path / "certs.d"
    (certs / "quay.io").mkdir(parents=True)
    (certs / "quay.io" / "hosts.toml").write_text(registry_hosts.HEADER + "\n")  # k3py's, no longer wanted
    (certs / "example.org").mkdir()
    (certs / "example.org" / "hosts.toml").write_text('server = "https://example.org"\n')  # someone else's
    registries = registry_hosts.Registries({"docker.io": ("https://mirror.example.com",), "*": ()})
    written = registry_hosts.write_hosts(
        certs, registries, mirror_url="http://127.0.0.1:5001", mirrored={"registry.k8s.io"}
    )
    assert sorted(p.parent.name for p in written) == ["_default", "docker.io", "registry.k8s.io"]
    assert sorted(p.name for p in certs.iterdir()) == [
        "_default",
        "docker.io",
        "example.org",
        "registry.k8s.io",
    ]
    docker = (certs / "docker.io" / "hosts.toml").read_text()
    assert docker == (
        f"{registry_hosts.HEADER}\n"
        'server = "https://registry-1.docker.io"\n\n'
        '[host."http://127.0.0.1:5001"]\n  capabilities = ["pull", "resolve"]\n\n'
        '[host."https://mirror.example.com"]\n  capabilities = ["pull", "resolve"]\n'
    )
    k8s = (certs / "registry.k8s.io" / "hosts.toml").read_text()
    assert 'server = "https://registry.k8s.io"' in k8s and '[host."http://127.0.0.1:5001"]' in k8s
    assert "server" not in (certs / "_default" / "hosts.toml").read_text()


def test_without_the_mirror_only_endpoints_are_written(tmp_path: Path) -> None:
    registries = registry_hosts.Registries({"docker.io": ("https://mirror.example.com",), "ghcr.io": ()})
    written = registry_hosts.write_hosts(tmp_path, registries, mirror_url=None, mirrored={"registry.k8s.io"})
    assert [p.parent.name for p in written] == ["docker.io"]
    assert "127.0.0.1" not in written[0].read_text()


def test_containerd_reads_the_hosts_directory(tmp_path: Path) -> None:
    paths = ContainerdPaths.for_data_dir(tmp_path)
    files = RuntimeFiles(bin_dir=tmp_path, cni_bin_dir=tmp_path, lib_dir=None, pause_archive=None)
    text = render_config(paths, files, sandbox_image="pause", restrict_oom_score_adj=False, apparmor=False)
    assert '[plugins."io.containerd.grpc.v1.cri".registry]' in text
    assert f'config_path = "{tmp_path.resolve()}/agent/etc/containerd/certs.d"' in text


# -- the agent's wiring ---------------------------------------------------------------------------


@pytest.mark.parametrize("embedded", [True, False])
async def test_the_agent_starts_the_mirror_and_points_containerd_at_it(
    images: tuple[Path, oci.Written, oci.Written], tmp_path: Path, embedded: bool
) -> None:
    data_dir = tmp_path / "data"
    (data_dir / "agent").mkdir(parents=True)
    images[0].rename(data_dir / "agent" / "images")
    registries = tmp_path / "registries.yaml"
    registries.write_text("mirrors:\n  quay.io:\n    endpoint: ['https://quay.example.com']\n")
    plan = NodePlan(
        name="n",
        ip="127.0.0.1",
        data_dir=data_dir,
        labels={},
        private_registry=registries,
        embedded_registry=embedded,
    )
    certs = tmp_path / "certs.d"
    async with AsyncExitStack() as cleanup:
        await agent_run._registries(plan, certs, cleanup)
        written = sorted(p.name for p in certs.iterdir())
        quay = (certs / "quay.io" / "hosts.toml").read_text()
        assert '[host."https://quay.example.com"]' in quay
        if not embedded:
            assert written == ["quay.io"] and "127.0.0.1" not in quay
            return
        assert written == ["docker.io", "quay.io", "registry.k8s.io"]
        url = re.search(
            r'\[host\."(http://127\.0\.0\.1:\d+)"\]', (certs / "registry.k8s.io" / "hosts.toml").read_text()
        )
        assert url is not None and f'[host."{url.group(1)}"]' in quay
        async with (
            aiohttp.ClientSession() as session,
            session.head(f"{url.group(1)}{AGNHOST_PATH}/manifests/2.66.1{NS}") as head,
        ):
            assert head.headers["Docker-Content-Digest"] == images[1].manifest_digest
        assert list((data_dir / "agent" / "registry" / "index").glob("*.json"))
