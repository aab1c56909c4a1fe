"""Air-gap image import: image archives → containerd's ``k8s.io`` namespace, with no registry and no ``ctr``.

Archives are read as one sequential stream (plain tar, gzip, or zstd through the ``zstd``
program), so a compressed archive is never unpacked to disk. Through containerd's own gRPC
services, every call carrying ``containerd-namespace: k8s.io``:

1. ``leases.v1 Create``: a lease (expiring in an hour) keeps half-imported content from the
   garbage collector; a crash mid-import leaves nothing behind once it expires.
2. ``content.v1 Write`` per blob, as it passes in the stream: ``Info`` first, so a blob already
   present (an earlier import, a shared layer) is skipped; otherwise a bidirectional stream of
   1 MiB WRITEs and a COMMIT checked against the blob's digest.
3. Once the stream is read, the parents get the labels that keep their children alive
   (``containerd.io/gc.ref.content.config``, ``.l.<i>`` on a manifest, ``.m.<i>`` on an index).
4. ``images.v1 Create`` (``Update`` when the name exists) for every name the archive gives, and
   the digested name ``<repository>@<manifest digest>``, which CRI lists in ``repo_digests``.
5. ``leases.v1 Delete``.
6. A wait (at most :data:`CRI_WAIT`) until the CRI's ``ImageStatus`` lists every name and its
   digest: the CRI learns of new images from containerd's events, a moment after step 4.

Two layouts are read: the OCI image layout (``index.json`` + ``blobs/``, what
:func:`k3py.images.oci.write_image` and ``docker save`` since Docker 25 write) and the older
Docker layout with only ``manifest.json`` (``<id>/layer.tar`` and ``<config>.json``), whose
images get an OCI manifest written for them. Layers are not unpacked: containerd's CRI unpacks
an image the first time a container needs it.

Each image record carries a label naming the archive (path, size and modification time), so
an archive imported before is recognised with one ``List`` and an ``Info`` per image, and is not
read again.

The embedded registry mirror (:mod:`k3py.agent.registry_content`) serves the same archives and
shares the rules that must agree with the import: an image's names (:func:`descriptor_names`),
the OCI manifest a Docker-layout image gets (:func:`docker_manifest`) and the archive's key.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import tarfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any, Final

from k3py.agent.cri.grpc import (
    ALREADY_EXISTS,
    INTERNAL,
    NOT_FOUND,
    UNIMPLEMENTED,
    Channel,
    CriError,
    Metadata,
)
from k3py.agent.cri.messages import (
    CONTAINERD,
    CONTENT_SERVICE,
    CRI,
    IMAGE_SERVICE,
    IMAGES_SERVICE,
    LEASES_SERVICE,
    WriteAction,
)
from k3py.agent.errors import AirgapError as AirgapError  # part of this module's API
from k3py.images import oci

log = logging.getLogger(__name__)

SUFFIXES: Final = (".tar", ".tar.gz", ".tgz", ".tar.zst")
ZSTD = "zstd"
"""The program that reads ``.tar.zst`` archives (Python 3.11 has no zstd; neither has armv7 a wheel)."""
CRI_WAIT: Final = 10.0
"""How long an import waits for containerd's CRI to list what it imported."""
CHUNK: Final = 1 << 20
GZIP_MAGIC: Final = b"\x1f\x8b"
SMALL: Final = 4 << 20
"""Blobs up to this size are kept in memory while the stream is read (manifests, configs)."""
CALL_TIMEOUT: Final = 60.0
WRITE_TIMEOUT: Final = 600.0
LEASE_EXPIRY: Final = datetime.timedelta(hours=1)
ARCHIVE_LABEL: Final = "io.k3py.airgap.archive"
NAME_ANNOTATION: Final = "io.containerd.image.name"
REF_ANNOTATION: Final = "org.opencontainers.image.ref.name"
MEDIA_INDEX: Final = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
_BLOB: Final = re.compile(r"^blobs/(sha256|sha384|sha512)/([0-9a-f]{64,128})$")
_LEGACY_CONFIG: Final = re.compile(r"^([0-9a-f]{64})\.json$")

Progress = Callable[[Path, "list[str] | Exception"], None]


@dataclass
class _Stream:
    """What a pass over an archive found."""

    small: dict[str, bytes] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    """Docker layout: path in the archive → digest of that file (symlinks resolved later)."""
    links: dict[str, str] = field(default_factory=dict)
    heads: dict[str, bytes] = field(default_factory=dict)
    """Docker layout: the first bytes of each layer (gzip or plain tar)."""
    index: bytes | None = None
    manifest: bytes | None = None


async def import_archive(socket: Path, archive: Path, *, namespace: str = "k8s.io") -> list[str]:
    """Import one archive; the image names it gave (see the module docstring)."""
    async with Channel(socket, metadata=[("containerd-namespace", namespace)]) as channel:
        return await _Importer(channel).run(archive)


async def import_directory(
    socket: Path, directory: Path, *, progress: Progress | None = None
) -> dict[Path, list[str] | Exception]:
    """Import every archive in ``directory``; a bad one is reported and the rest still imported."""
    results: dict[Path, list[str] | Exception] = {}
    archives = await asyncio.to_thread(_archives, directory)
    async with Channel(socket, metadata=[("containerd-namespace", "k8s.io")]) as channel:
        importer = _Importer(channel)
        for archive in archives:
            started = time.monotonic()
            outcome: list[str] | Exception
            try:
                outcome = await importer.run(archive)
                log.info(
                    "Imported %s in %.2fs: %s", archive.name, time.monotonic() - started, ", ".join(outcome)
                )
            except Exception as exc:  # any damage to one archive is that archive's result
                outcome = (
                    exc if isinstance(exc, AirgapError | CriError) else AirgapError(f"{archive}: {exc!r}")
                )
                log.warning("Cannot import %s: %s", archive, outcome)
            results[archive] = outcome
            if progress is not None:
                progress(archive, outcome)
    return results


class _Importer:
    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.metadata: Metadata = ()

    async def _unary(
        self, method: str, request_type: str, request: dict[str, Any], response_type: str
    ) -> Any:
        reply = await self.channel.unary(
            method, CONTAINERD.encode(request_type, request), metadata=self.metadata, timeout=CALL_TIMEOUT
        )
        return CONTAINERD.decode(response_type, reply)

    async def run(self, archive: Path) -> list[str]:
        key = archive_key(archive)
        kept = await self._already_imported(key)
        if kept:
            log.debug("%s: already imported (%s)", archive, ", ".join(kept))
            return kept
        lease = f"k3py-airgap-{key[:16]}-{time.monotonic_ns()}"
        expire = (datetime.datetime.now(datetime.UTC) + LEASE_EXPIRY).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.metadata = ()
        await self._unary(
            LEASES_SERVICE + "Create",
            "CreateLeaseRequest",
            {"id": lease, "labels": {"containerd.io/gc.expire": expire}},
            "CreateLeaseResponse",
        )
        self.metadata = (("containerd-lease", lease),)
        try:
            found = await self._read(archive)
            if found.index is not None:
                images = await self._oci_images(archive, found)
            elif found.manifest is not None:
                images = await self._docker_images(archive, found)
            else:
                raise AirgapError(f"{archive}: neither index.json nor manifest.json: not an image archive")
            if not images:
                raise AirgapError(f"{archive}: no image in it has a name")
            for name, target in images:
                await self._put_image(name, target, key)
                base = repository(name)
                if base:
                    await self._put_image(f"{base}@{target['digest']}", target, key)
        finally:
            self.metadata = ()
            try:
                await self._unary(LEASES_SERVICE + "Delete", "DeleteLeaseRequest", {"id": lease}, "Empty")
            except CriError as exc:  # it expires by itself; do not hide the import's own outcome
                log.warning(
                    "Cannot delete the import lease %s (it expires within %s): %s", lease, LEASE_EXPIRY, exc
                )
        names = [name for name, _ in images]
        await self._listed_by_cri(names, [f"{repository(n)}@{t['digest']}" for n, t in images])
        return names

    async def _listed_by_cri(self, names: list[str], digested: list[str]) -> None:
        """Wait until the CRI lists every name: it learns of new images from events, a moment later.

        Without this, a kubelet asking right after the import could miss the image and try a pull.
        """
        deadline = time.monotonic() + CRI_WAIT
        while True:
            missing = []
            for name, digest_name in zip(names, digested, strict=True):
                request = CRI.encode("ImageStatusRequest", {"image": {"image": name}})
                try:
                    reply = await self.channel.unary(
                        IMAGE_SERVICE + "ImageStatus", request, timeout=CALL_TIMEOUT
                    )
                except CriError as exc:
                    if exc.code == UNIMPLEMENTED:  # a containerd without its CRI plugin: nothing to wait for
                        return
                    raise
                image = CRI.decode("ImageStatusResponse", reply)["image"]
                if image is None or digest_name not in image["repo_digests"]:
                    missing.append(name)
            if not missing:
                return
            if time.monotonic() > deadline:
                log.warning("containerd's CRI does not list %s yet", ", ".join(missing))
                return
            await asyncio.sleep(0.02)

    async def _already_imported(self, key: str) -> list[str]:
        reply = await self._unary(
            IMAGES_SERVICE + "List",
            "ListImagesRequest",
            {"filters": [f'labels."{ARCHIVE_LABEL}"=={key}']},
            "ListImagesResponse",
        )
        names = []
        for image in reply["images"]:
            if not await self._present(image["target"]["digest"]):
                return []
            if "@" not in image["name"]:
                names.append(image["name"])
        return sorted(names)

    async def _present(self, digest: str) -> bool:
        try:
            await self._unary(CONTENT_SERVICE + "Info", "InfoRequest", {"digest": digest}, "InfoResponse")
        except CriError as exc:
            if exc.code == NOT_FOUND:
                return False
            raise
        return True

    # -- the stream ---------------------------------------------------------------------------

    async def _read(self, archive: Path) -> _Stream:
        found = _Stream()
        with open_stream(archive) as stream, tarfile.open(fileobj=stream, mode="r|*") as tar:
            while (member := await asyncio.to_thread(tar.next)) is not None:
                name = PurePosixPath(member.name.removeprefix("./")).as_posix()
                if member.issym() or member.islnk():
                    found.links[name] = str(PurePosixPath(name).parent / member.linkname)
                    continue
                if not member.isfile():
                    continue
                named = named_digest(name)
                if named is not None:
                    digest = named
                    found.sizes[digest] = member.size
                    await self._blob(tar, member, digest, found)
                elif name in ("index.json", "manifest.json"):
                    data = await _read_all(tar, member)
                    found.index, found.manifest = (
                        (data, found.manifest) if name == "index.json" else (found.index, data)
                    )
                elif name.endswith("/layer.tar") or name.endswith(".tar"):
                    head: list[bytes] = []
                    digest = await self._write(tar, member, None, head)
                    found.files[name] = digest
                    found.sizes[digest] = member.size
                    found.heads[digest] = head[0][:2] if head else b""
        return found

    async def _blob(self, tar: tarfile.TarFile, member: tarfile.TarInfo, digest: str, found: _Stream) -> None:
        if member.size <= SMALL:
            data = await _read_all(tar, member)
            found.small[digest] = data
            if not await self._present(digest):
                await self._write_bytes(data, digest)
        elif not await self._present(digest):
            await self._write(tar, member, digest)

    async def _write_bytes(self, data: bytes, digest: str, labels: dict[str, str] | None = None) -> None:
        chunks = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)] or [b""]

        async def reader() -> bytes:
            return chunks.pop(0) if chunks else b""

        await self._ingest(f"k3py-airgap-{digest}", len(data), digest, reader, None, labels)

    async def _write(
        self,
        tar: tarfile.TarFile,
        member: tarfile.TarInfo,
        digest: str | None,
        head: list[bytes] | None = None,
    ) -> str:
        """Stream ``member`` into the content store; its digest (computed when not known)."""
        source = tar.extractfile(member)
        if source is None:
            raise AirgapError(f"{member.name}: cannot be read")
        hasher = hashlib.sha256() if digest is None else None

        async def reader() -> bytes:
            chunk: bytes = await asyncio.to_thread(source.read, CHUNK)
            if hasher is not None:
                hasher.update(chunk)
            if head is not None and not head:
                head.append(chunk)
            return chunk

        ref = f"k3py-airgap-{digest}" if digest else f"k3py-airgap-{member.name}-{member.size}-{member.mtime}"
        committed = await self._ingest(ref, member.size, digest or "", reader, hasher)
        return committed

    async def _ingest(
        self,
        ref: str,
        size: int,
        expected: str,
        read: Callable[[], Awaitable[bytes]],
        hasher: Any,  # hashlib's sha256 object, for a blob whose digest the archive does not name
        labels: dict[str, str] | None = None,
    ) -> str:
        """One content ``Write`` call, lock-step as containerd's own client: WRITE…, COMMIT."""
        offset = 0
        async with await self.channel.open(
            CONTENT_SERVICE + "Write", metadata=self.metadata, timeout=WRITE_TIMEOUT
        ) as call:
            try:
                while True:
                    data = await read()
                    last = offset + len(data) >= size
                    if not data and not last:
                        raise AirgapError(f"{ref}: the archive ended inside this blob")
                    request: dict[str, Any] = {
                        "action": WriteAction.COMMIT if last else WriteAction.WRITE,
                        "ref": ref,
                        "total": size,
                        "offset": offset,
                        "data": data,
                    }
                    if last:
                        request["expected"] = expected or f"sha256:{hasher.hexdigest()}"
                        request["labels"] = labels or {}
                    await call.send(CONTAINERD.encode("WriteContentRequest", request), end=last)
                    reply = await call.receive()
                    if reply is None:
                        raise CriError(INTERNAL, "content Write ended before the commit", call.method)
                    offset += len(data)
                    if last:
                        return str(CONTAINERD.decode("WriteContentResponse", reply)["digest"])
            except CriError as exc:
                if exc.code != ALREADY_EXISTS:
                    raise
                return expected or f"sha256:{hasher.hexdigest()}"

    # -- images -------------------------------------------------------------------------------

    async def _oci_images(self, archive: Path, found: _Stream) -> list[tuple[str, dict[str, Any]]]:
        assert found.index is not None
        index = json.loads(found.index)
        tags = docker_tags(found.manifest)
        images: list[tuple[str, dict[str, Any]]] = []
        for desc in index.get("manifests") or []:
            await self._label_tree(desc, found)
            names = descriptor_names(desc, tags, found.small)
            target = {"media_type": desc["mediaType"], "digest": desc["digest"], "size": desc["size"]}
            images.extend((name, target) for name in names)
            if not names:
                log.warning("%s: image %s has no name: skipped", archive, desc["digest"])
        return images

    async def _label_tree(self, desc: dict[str, Any], found: _Stream) -> None:
        """Give a manifest or index the labels that keep its children (children first)."""
        data = found.small.get(desc["digest"])
        if data is None:
            return  # not in the archive (a platform it leaves out)
        body = json.loads(data)
        labels: dict[str, str] = {}
        if desc.get("mediaType") in MEDIA_INDEX or "manifests" in body:
            for i, child in enumerate(body.get("manifests") or []):
                if child["digest"] in found.small:
                    await self._label_tree(child, found)
                    labels[f"containerd.io/gc.ref.content.m.{i}"] = child["digest"]
        else:
            labels["containerd.io/gc.ref.content.config"] = body["config"]["digest"]
            for i, layer in enumerate(body.get("layers") or []):
                labels[f"containerd.io/gc.ref.content.l.{i}"] = layer["digest"]
        if labels:
            request = {
                "info": {"digest": desc["digest"], "labels": labels},
                "update_mask": {"paths": [f"labels.{k}" for k in labels]},
            }
            await self._unary(
                CONTENT_SERVICE + "Update", "UpdateContentRequest", request, "UpdateContentResponse"
            )

    async def _docker_images(self, archive: Path, found: _Stream) -> list[tuple[str, dict[str, Any]]]:
        assert found.manifest is not None
        images: list[tuple[str, dict[str, Any]]] = []
        for entry in json.loads(found.manifest):
            config = _path_digest(entry["Config"], found)
            layers = []
            for path in entry.get("Layers") or []:
                digest = _path_digest(path, found)
                gzipped = found.heads.get(digest, b"")[:2] == GZIP_MAGIC
                layers.append(Layer(digest, found.sizes[digest], gzipped))
            data = docker_manifest(config, found.sizes[config], layers)
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            labels = {"containerd.io/gc.ref.content.config": config}
            for i, layer in enumerate(layers):
                labels[f"containerd.io/gc.ref.content.l.{i}"] = layer.digest
            if not await self._present(digest):
                await self._write_bytes(data, digest, labels)
            target = {"media_type": oci.MEDIA_MANIFEST, "digest": digest, "size": len(data)}
            tags = entry.get("RepoTags") or []
            if not tags:
                log.warning("%s: image %s has no RepoTags: skipped", archive, config)
            images.extend((oci.normalize_reference(tag), target) for tag in tags)
        return images

    async def _put_image(self, name: str, target: dict[str, Any], key: str) -> None:
        image = {"name": name, "target": target, "labels": {ARCHIVE_LABEL: key}}
        try:
            await self._unary(
                IMAGES_SERVICE + "Create", "CreateImageRequest", {"image": image}, "ImageResponse"
            )
        except CriError as exc:
            if exc.code != ALREADY_EXISTS:
                raise
            request = {"image": image, "update_mask": {"paths": ["target", f"labels.{ARCHIVE_LABEL}"]}}
            await self._unary(IMAGES_SERVICE + "Update", "UpdateImageRequest", request, "ImageResponse")


def _archives(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_file() and p.name.endswith(SUFFIXES))


async def _read_all(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    source = tar.extractfile(member)
    if source is None:
        raise AirgapError(f"{member.name}: cannot be read")
    data: bytes = await asyncio.to_thread(source.read)
    return data


def archive_key(archive: Path) -> str:
    stat = archive.stat()
    text = f"{archive.absolute()}\0{stat.st_size}\0{stat.st_mtime_ns}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def repository(name: str) -> str:
    """``docker.io/library/busybox:1.36`` → ``docker.io/library/busybox``."""
    base = name.split("@", 1)[0]
    last = base.rsplit("/", 1)[-1]
    return base.rsplit(":", 1)[0] if ":" in last else base


def docker_tags(manifest_json: bytes | None) -> dict[str, list[str]]:
    """Config digest → RepoTags, from a ``manifest.json`` beside ``index.json``."""
    if manifest_json is None:
        return {}
    tags: dict[str, list[str]] = {}
    for entry in json.loads(manifest_json):
        digest = named_digest(str(entry.get("Config", "")))
        if digest is not None:
            tags.setdefault(digest, []).extend(entry.get("RepoTags") or [])
    return tags


def descriptor_names(desc: dict[str, Any], tags: dict[str, list[str]], small: dict[str, bytes]) -> list[str]:
    """The normalized names an ``index.json`` entry gives its image.

    containerd's name annotation first, then a full reference in the OCI ref annotation, then
    the RepoTags that ``manifest.json`` gives the image's config (``small`` holds the manifests).
    """
    annotations = desc.get("annotations") or {}
    names = [annotations[NAME_ANNOTATION]] if NAME_ANNOTATION in annotations else []
    if not names and "/" in annotations.get(REF_ANNOTATION, ""):
        names = [annotations[REF_ANNOTATION]]
    if not names:
        names = tags.get(_config_of(desc, small), [])
    return [oci.normalize_reference(name) for name in names]


@dataclass(frozen=True)
class Layer:
    """A layer of a ``docker save`` image, for the OCI manifest written for it."""

    digest: str
    size: int
    gzipped: bool


def docker_manifest(config: str, config_size: int, layers: list[Layer]) -> bytes:
    """The OCI manifest an image of the older Docker layout gets: the same bytes wherever it is made.

    Import and the registry mirror both write it, so a pull through the mirror resolves to the
    digest the import gave the image.
    """
    manifest = {
        "schemaVersion": 2,
        "mediaType": oci.MEDIA_MANIFEST,
        "config": {"mediaType": oci.MEDIA_CONFIG, "digest": config, "size": config_size},
        "layers": [
            {
                "mediaType": oci.MEDIA_LAYER + ("+gzip" if layer.gzipped else ""),
                "digest": layer.digest,
                "size": layer.size,
            }
            for layer in layers
        ],
    }
    return json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()


def named_digest(path: str) -> str | None:
    """The digest a file's name gives: ``blobs/<algorithm>/<hex>``, or Docker's ``<hex>.json``."""
    if (blob := _BLOB.match(path)) is not None:
        return f"{blob.group(1)}:{blob.group(2)}"
    if (legacy := _LEGACY_CONFIG.match(path)) is not None:
        return f"sha256:{legacy.group(1)}"
    return None


def _config_of(desc: dict[str, Any], small: dict[str, bytes]) -> str:
    data = small.get(desc["digest"])
    if data is None:
        return ""
    return str((json.loads(data).get("config") or {}).get("digest", ""))


def _path_digest(path: str, found: _Stream) -> str:
    """The digest of the file at ``path`` in a Docker-layout archive (following its symlinks)."""
    path = PurePosixPath(path.removeprefix("./")).as_posix()
    for _ in range(8):
        if path not in found.links:
            break
        path = os.path.normpath(found.links[path])
    named = named_digest(path)
    if named is not None:
        return named
    if path in found.files:
        return found.files[path]
    raise AirgapError(f"manifest.json names {path}, which the archive does not hold")


class open_stream:
    """The archive's bytes as a stream: the file itself, or ``zstd -dc`` reading it."""

    def __init__(self, archive: Path) -> None:
        self.archive = archive
        self._file: IO[bytes] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> IO[bytes]:
        if not self.archive.name.endswith(".zst"):
            self._file = self.archive.open("rb")
            return self._file
        zstd = shutil.which(ZSTD)
        if zstd is None:
            raise AirgapError(
                f"{self.archive}: the zstd program is needed for .tar.zst archives (package zstd)"
            )
        log.debug("+ %s -dc -- %s", zstd, self.archive)
        self._process = subprocess.Popen(
            [zstd, "-q", "-dc", "--", str(self.archive)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert self._process.stdout is not None
        return self._process.stdout

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if self._file is not None:
            self._file.close()
        process = self._process
        if process is not None:
            if exc_type is not None:
                process.kill()
            assert process.stdout is not None and process.stderr is not None
            process.stdout.close()
            error = process.stderr.read().decode(errors="replace").strip()
            process.stderr.close()
            code = process.wait()
            if code != 0 and exc_type is None:
                raise AirgapError(f"{self.archive}: zstd failed with exit code {code}: {error}")
