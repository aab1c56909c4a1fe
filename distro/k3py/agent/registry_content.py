"""What the embedded registry mirror serves: the images of the node's air-gap archives.

The mirror (:mod:`k3py.agent.registry_mirror`) answers containerd's pulls with the very
archives the agent imported (:mod:`k3py.agent.airgap`), so a pod that must pull
(``imagePullPolicy: Always``, a ``:latest`` tag) gets the imported image on a node that
reaches no registry. Each archive is indexed once into an :class:`ArchiveIndex`:

- a plain ``.tar`` is served in place: a blob is a byte range of the archive (its member's
  data offset and size), so nothing is copied;
- a compressed archive (``.tar.gz``, ``.tgz``, ``.tar.zst``) is read once as a stream and its
  blobs are written, content-addressed and checked against their digests, to
  ``<data-dir>/agent/registry/blobs/sha256/``;
- an image of the older Docker layout (``manifest.json`` only) gets the OCI manifest the import
  wrote for it (:func:`k3py.agent.airgap.docker_manifest`, byte for byte), stored there too, and
  its names come from the same rules as the import's (:func:`k3py.agent.airgap.descriptor_names`).

The index is kept as JSON in ``<data-dir>/agent/registry/index/<archive key>.json``, the key
being the import's own (path, size, modification time): an unchanged archive is not read
again at the next start. Indexes and blobs of archives no longer present are removed.

A :class:`Catalog` joins the indexes: per repository (``registry.k8s.io/pause``), its tags and
every digest its images reach (index → manifests → config and layers), so that a repository
serves only its own content, as a registry does.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any, Final

from k3py.agent import airgap
from k3py.agent.errors import AirgapError
from k3py.images import oci

log = logging.getLogger(__name__)

INDEX_VERSION: Final = 1
"""Raised when the index's JSON changes meaning: older indexes are then rebuilt."""
SMALL: Final = 4 << 20
"""Manifests and indexes larger than this are not parsed (registries refuse them too)."""
CHUNK: Final = 1 << 20
MEDIA_DOCKER_MANIFEST: Final = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_TYPES: Final = frozenset({*airgap.MEDIA_INDEX, oci.MEDIA_MANIFEST, MEDIA_DOCKER_MANIFEST})


class ContentError(Exception):
    """An archive cannot be indexed: the message names it and the reason."""


@dataclass(frozen=True)
class BlobSource:
    """Where a blob's bytes are: ``size`` bytes of ``path`` from ``offset``."""

    path: Path
    offset: int
    size: int

    def read(self) -> bytes:
        with self.path.open("rb") as file:
            file.seek(self.offset)
            data = file.read(self.size)
        if len(data) != self.size:
            raise ContentError(f"{self.path}: {self.size} bytes at {self.offset} cannot be read")
        return data


@dataclass(frozen=True)
class Image:
    """One name an archive gives: ``docker.io/library/busybox:1.36`` → its target and what it reaches."""

    name: str
    digest: str
    media_type: str
    digests: frozenset[str]


@dataclass
class ArchiveIndex:
    """What one archive holds, as the mirror needs it."""

    key: str
    archive: Path
    images: list[Image] = field(default_factory=list)
    blobs: dict[str, BlobSource] = field(default_factory=dict)
    media_types: dict[str, str] = field(default_factory=dict)
    """Manifests and indexes: digest → media type (what ``Content-Type`` says)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "version": INDEX_VERSION,
            "key": self.key,
            "archive": str(self.archive),
            "images": [
                {"name": i.name, "digest": i.digest, "mediaType": i.media_type, "digests": sorted(i.digests)}
                for i in self.images
            ],
            "blobs": {d: [str(s.path), s.offset, s.size] for d, s in sorted(self.blobs.items())},
            "mediaTypes": dict(sorted(self.media_types.items())),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ArchiveIndex:
        if data.get("version") != INDEX_VERSION:
            raise ValueError(f"index version {data.get('version')!r}, not {INDEX_VERSION}")
        return cls(
            key=str(data["key"]),
            archive=Path(data["archive"]),
            images=[
                Image(str(i["name"]), str(i["digest"]), str(i["mediaType"]), frozenset(i["digests"]))
                for i in data["images"]
            ],
            blobs={d: BlobSource(Path(p), int(o), int(s)) for d, (p, o, s) in data["blobs"].items()},
            media_types={str(d): str(t) for d, t in data["mediaTypes"].items()},
        )


@dataclass(frozen=True)
class Manifest:
    """A manifest or index the mirror can answer with."""

    digest: str
    media_type: str
    source: BlobSource


@dataclass
class Repository:
    tags: dict[str, str] = field(default_factory=dict)
    digests: set[str] = field(default_factory=set)


class Catalog:
    """Every indexed archive, looked up by repository (``<registry>/<path>``) and tag or digest."""

    def __init__(self, indexes: Iterable[ArchiveIndex] = ()) -> None:
        self.repositories: dict[str, Repository] = {}
        self._blobs: dict[str, BlobSource] = {}
        self._media_types: dict[str, str] = {}
        for index in indexes:
            self._blobs.update(index.blobs)
            self._media_types.update(index.media_types)
            for image in index.images:
                base = airgap.repository(image.name)
                repository = self.repositories.setdefault(base, Repository())
                repository.digests |= image.digests
                if "@" not in image.name and len(image.name) > len(base):
                    repository.tags[image.name[len(base) + 1 :]] = image.digest

    def registries(self) -> set[str]:
        """The registries the catalog's images come from (``docker.io``, ``registry.k8s.io``…)."""
        return {name.split("/", 1)[0] for name in self.repositories}

    def manifest(self, repository: str, reference: str) -> Manifest | None:
        """The manifest or index that ``reference`` (a tag or a digest) names in ``repository``."""
        found = self.repositories.get(repository)
        if found is None:
            return None
        digest = reference if ":" in reference else found.tags.get(reference)
        if digest is None or digest not in found.digests or digest not in self._media_types:
            return None
        source = self._blobs.get(digest)
        return None if source is None else Manifest(digest, self._media_types[digest], source)

    def blob(self, repository: str, digest: str) -> BlobSource | None:
        found = self.repositories.get(repository)
        if found is None or digest not in found.digests:
            return None
        return self._blobs.get(digest)


# -- indexing -----------------------------------------------------------------------------------


def index_directory(images: Path, content: Path) -> tuple[Catalog, dict[Path, Exception]]:
    """Index every archive in ``images`` (reusing ``content``'s saved indexes); what failed and why."""
    indexes: list[ArchiveIndex] = []
    failed: dict[Path, Exception] = {}
    archives = (
        sorted(p for p in images.iterdir() if p.is_file() and p.name.endswith(airgap.SUFFIXES))
        if images.is_dir()
        else []
    )
    for archive in archives:
        try:
            indexes.append(index_archive(archive, content))
        except (
            ContentError,
            OSError,
            tarfile.TarError,
            ValueError,
            KeyError,
            TypeError,
            AirgapError,
        ) as exc:
            said = str(exc) if isinstance(exc, ContentError) else repr(exc)
            failed[archive] = ContentError(said if str(archive) in said else f"{archive}: {said}")
            log.warning("Registry mirror: cannot index %s: %s", archive, failed[archive])
    _remove_stale(content, indexes)
    return Catalog(indexes), failed


def index_archive(archive: Path, content: Path) -> ArchiveIndex:
    """The archive's index: the saved one when the archive has not changed, else built and saved."""
    key = airgap.archive_key(archive)
    saved = content / "index" / f"{key}.json"
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        index = ArchiveIndex.from_json(json.loads(saved.read_bytes()))
        if all(source.path.is_file() for source in index.blobs.values()):
            return index
    index = ArchiveIndex(key=key, archive=archive.absolute())
    found = _read_plain(archive) if _is_plain(archive) else _read_stream(archive, _blob_dir(content))
    _describe(index, found, content)
    saved.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(saved, json.dumps(index.to_json(), indent=1).encode())
    log.info("Registry mirror: indexed %s (%s)", archive.name, ", ".join(i.name for i in index.images))
    return index


@dataclass
class _Found:
    """What a pass over an archive found."""

    blobs: dict[str, BlobSource] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    """Docker layout: path in the archive → digest of that file."""
    links: dict[str, str] = field(default_factory=dict)
    gzipped: set[str] = field(default_factory=set)
    index: bytes | None = None
    manifest: bytes | None = None


def _is_plain(archive: Path) -> bool:
    """An uncompressed tar, whatever its name says (tar's own header is at 257: ``ustar``)."""
    if archive.name.endswith(".zst"):
        return False
    with archive.open("rb") as file:
        head = file.read(512)
    return head[257:262] == b"ustar"


def _member_name(member: tarfile.TarInfo) -> str:
    return PurePosixPath(member.name.removeprefix("./")).as_posix()


def _read_plain(archive: Path) -> _Found:
    found = _Found()
    with tarfile.open(archive, "r:") as tar:
        for member in tar:
            name = _member_name(member)
            if member.issym() or member.islnk():
                found.links[name] = str(PurePosixPath(name).parent / member.linkname)
                continue
            if not member.isfile():
                continue
            source = BlobSource(archive.absolute(), member.offset_data, member.size)
            digest = airgap.named_digest(name)
            if digest is not None:
                found.blobs[digest] = source
            elif name in ("index.json", "manifest.json"):
                data = source.read()
                found.index, found.manifest = (
                    (data, found.manifest) if name == "index.json" else (found.index, data)
                )
            elif name.endswith(".tar"):  # a Docker-layout layer: its digest is its content's
                hasher = hashlib.sha256()
                with archive.open("rb") as file:
                    file.seek(source.offset)
                    head = file.read(2)
                    hasher.update(head)
                    left = source.size - len(head)
                    while left > 0 and (chunk := file.read(min(CHUNK, left))):
                        hasher.update(chunk)
                        left -= len(chunk)
                digest = f"sha256:{hasher.hexdigest()}"
                found.files[name], found.blobs[digest] = digest, source
                if head == airgap.GZIP_MAGIC:
                    found.gzipped.add(digest)
    return found


def _read_stream(archive: Path, blobs: Path) -> _Found:
    found = _Found()
    with airgap.open_stream(archive) as stream, tarfile.open(fileobj=stream, mode="r|*") as tar:
        for member in tar:
            name = _member_name(member)
            if member.issym() or member.islnk():
                found.links[name] = str(PurePosixPath(name).parent / member.linkname)
                continue
            if not member.isfile():
                continue
            digest = airgap.named_digest(name)
            if name in ("index.json", "manifest.json"):
                data = _extract(tar, member).read()
                found.index, found.manifest = (
                    (data, found.manifest) if name == "index.json" else (found.index, data)
                )
            elif digest is not None or name.endswith(".tar"):
                written, head = _store(_extract(tar, member), blobs, digest, f"{archive}: {name}")
                found.blobs[written] = BlobSource(blobs / written.split(":", 1)[1], 0, member.size)
                if digest is None:
                    found.files[name] = written
                if head == airgap.GZIP_MAGIC:
                    found.gzipped.add(written)
    return found


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
    source = tar.extractfile(member)
    if source is None:
        raise ContentError(f"{member.name}: cannot be read")
    return source


def _store(source: IO[bytes], blobs: Path, expected: str | None, what: str) -> tuple[str, bytes]:
    """Copy a blob into ``blobs`` by its digest (checked when known); the digest and first 2 bytes."""
    if expected is not None and not expected.startswith("sha256:"):
        raise ContentError(f"{what}: only sha256 digests are served, not {expected}")
    blobs.mkdir(parents=True, exist_ok=True)
    hasher = hashlib.sha256()
    head = b""
    with tempfile.NamedTemporaryFile(dir=blobs, prefix=".partial-", delete=False) as out:
        try:
            while chunk := source.read(CHUNK):
                head = head or chunk[:2]
                hasher.update(chunk)
                out.write(chunk)
            digest = f"sha256:{hasher.hexdigest()}"
            if expected is not None and digest != expected:
                raise ContentError(f"{what}: its content's digest is {digest}")
            out.flush()
            Path(out.name).replace(blobs / hasher.hexdigest())
        except BaseException:
            Path(out.name).unlink(missing_ok=True)
            raise
    return digest, head


def _describe(index: ArchiveIndex, found: _Found, content: Path) -> None:
    """Fill ``index`` with the archive's images, the digests each reaches, and the blobs."""
    index.blobs.update(found.blobs)
    if found.index is not None:
        tags = airgap.docker_tags(found.manifest)
        for desc in json.loads(found.index).get("manifests") or []:
            source = found.blobs.get(desc["digest"])
            small = {desc["digest"]: source.read()} if source is not None and source.size <= SMALL else {}
            names = airgap.descriptor_names(desc, tags, small)
            reached = _reach(desc["digest"], desc["mediaType"], index)
            index.images += [Image(n, desc["digest"], desc["mediaType"], reached) for n in names]
    elif found.manifest is not None:
        for entry in json.loads(found.manifest):
            config = _path_digest(entry["Config"], found)
            layers = [
                airgap.Layer(digest, found.blobs[digest].size, digest in found.gzipped)
                for digest in (_path_digest(p, found) for p in entry.get("Layers") or [])
            ]
            data = airgap.docker_manifest(config, found.blobs[config].size, layers)
            digest, _ = _store(io.BytesIO(data), _blob_dir(content), None, f"{index.archive}: manifest")
            index.blobs[digest] = BlobSource(_blob_dir(content) / digest.split(":", 1)[1], 0, len(data))
            reached = _reach(digest, oci.MEDIA_MANIFEST, index)
            names = [oci.normalize_reference(t) for t in entry.get("RepoTags") or []]
            index.images += [Image(n, digest, oci.MEDIA_MANIFEST, reached) for n in names]
    else:
        raise ContentError(f"{index.archive}: neither index.json nor manifest.json: not an image archive")
    for image in list(index.images):
        base = airgap.repository(image.name)
        if base:  # the digested name, which containerd's CRI lists in repo_digests
            index.images.append(
                Image(f"{base}@{image.digest}", image.digest, image.media_type, image.digests)
            )


def _reach(digest: str, media_type: str, index: ArchiveIndex) -> frozenset[str]:
    """``digest`` and everything it references that is a manifest, an index, a config or a layer."""
    reached = {digest}
    source = index.blobs.get(digest)
    if source is None or source.size > SMALL or (media_type and media_type not in MANIFEST_TYPES):
        return frozenset(reached)
    try:
        body = json.loads(source.read())
    except ValueError:
        return frozenset(reached)
    media_type = media_type or str(body.get("mediaType", ""))
    if media_type not in MANIFEST_TYPES:
        return frozenset(reached)
    index.media_types[digest] = media_type
    if media_type in airgap.MEDIA_INDEX or "manifests" in body:
        for child in body.get("manifests") or []:
            reached |= _reach(child["digest"], child.get("mediaType", ""), index)
    else:
        reached.add(body["config"]["digest"])
        reached |= {layer["digest"] for layer in body.get("layers") or []}
    return frozenset(reached)


def _path_digest(path: str, found: _Found) -> str:
    """The digest of the file at ``path`` in a Docker-layout archive (following its symlinks)."""
    path = PurePosixPath(path.removeprefix("./")).as_posix()
    for _ in range(8):
        if path not in found.links:
            break
        path = os.path.normpath(found.links[path])
    digest = airgap.named_digest(path) or found.files.get(path)
    if digest is None or digest not in found.blobs:
        raise ContentError(f"manifest.json names {path}, which the archive does not hold")
    return digest


def _blob_dir(content: Path) -> Path:
    return content / "blobs" / "sha256"


def _write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    partial.replace(path)


def _remove_stale(content: Path, kept: list[ArchiveIndex]) -> None:
    """Indexes of archives no longer present, and the unpacked blobs only they used."""
    keys = {index.key for index in kept}
    for saved in (content / "index").glob("*.json") if (content / "index").is_dir() else []:
        if saved.stem not in keys:
            saved.unlink(missing_ok=True)
    used = {source.path for index in kept for source in index.blobs.values()}
    blobs = _blob_dir(content)
    for blob in blobs.iterdir() if blobs.is_dir() else []:
        if blob not in used:
            log.debug("Registry mirror: removing %s, which no archive holds any more", blob)
            blob.unlink(missing_ok=True)
