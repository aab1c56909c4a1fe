"""OCI image archives made from files, with no registry and no container engine.

:func:`write_image` turns an :class:`Image` (files, symlinks, entrypoint, platform) into one
tarball in the OCI image layout (``oci-layout``, ``index.json``, ``blobs/sha256/…``) with a
Docker-style ``manifest.json`` beside it, which is what ``docker save`` writes and what
containerd's import (``ctr images import``, the agent's air-gap import) reads. The one layer is
an uncompressed tar: the archives travel inside an xz-compressed payload or are imported
locally, so compressing the layer again would only cost time.

The bytes depend on nothing but the :class:`Image`: entries sorted, owner root, times fixed to
``created`` (``SOURCE_DATE_EPOCH`` in builds). The same image gives the same digests anywhere.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar"
DEFAULT_REGISTRY = "docker.io"


class ImageError(ValueError):
    """An image cannot be made as described (a bad reference, a path outside the image)."""


@dataclass(frozen=True)
class File:
    """A regular file in the image: ``path`` inside it (``bin/sh`` or ``/bin/sh``), its bytes and mode."""

    path: str
    data: bytes
    mode: int = 0o755


@dataclass(frozen=True)
class Symlink:
    """A symbolic link in the image: ``path`` → ``target`` (as ``ln -s target path``)."""

    path: str
    target: str


@dataclass(frozen=True)
class Directory:
    """A directory in the image with its own mode (``/tmp`` as ``0o1777``); parents of files need none."""

    path: str
    mode: int = 0o755


Entry = File | Symlink | Directory


@dataclass(frozen=True, kw_only=True)
class Image:
    """What an image holds and how its containers start."""

    reference: str
    architecture: str
    variant: str = ""
    os: str = "linux"
    files: tuple[Entry, ...] = ()
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",)
    working_dir: str = ""
    user: str = ""
    created: int = 0
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Written:
    """An image archive on disk and the digests that identify it."""

    path: Path
    reference: str
    manifest_digest: str
    config_digest: str
    layer_digest: str


def normalize_reference(reference: str) -> str:
    """``busybox`` → ``docker.io/library/busybox:latest``; full names pass unchanged.

    The same rules containerd and the kubelet use: a first component with a dot or a colon, or
    ``localhost``, is a registry; otherwise the name lives on Docker Hub.
    """
    name, _, digest = reference.partition("@")
    if not name or any(ch.isspace() for ch in reference) or name != name.strip("/"):
        raise ImageError(f"invalid image reference {reference!r}")
    first, _, rest = name.partition("/")
    if not rest or not ("." in first or ":" in first or first == "localhost"):
        name = f"{DEFAULT_REGISTRY}/{name if rest else 'library/' + name}"
    last = name.rsplit("/", 1)[1]
    if not digest and ":" not in last:
        name += ":latest"
    repository = name.rsplit(":", 1)[0] if ":" in last else name
    if repository != repository.lower():
        raise ImageError(f"invalid image reference {reference!r}: repository names are lower case")
    return f"{name}@{digest}" if digest else name


def write_image(image: Image, path: Path) -> Written:
    """Write ``image`` as an OCI archive at ``path`` (replaced atomically); return its digests."""
    reference = normalize_reference(image.reference)
    layer = _layer(image.files, image.created)
    layer_digest = _digest(layer)
    config = _canonical(_config(image, layer_digest))
    config_digest = _digest(config)
    manifest = _canonical(
        {
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "config": {"mediaType": MEDIA_CONFIG, "digest": config_digest, "size": len(config)},
            "layers": [{"mediaType": MEDIA_LAYER, "digest": layer_digest, "size": len(layer)}],
        }
    )
    manifest_digest = _digest(manifest)
    tag = reference.rsplit(":", 1)[1] if "@" not in reference else ""
    platform = {"architecture": image.architecture, "os": image.os}
    if image.variant:
        platform["variant"] = image.variant
    index = _canonical(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {
                    "mediaType": MEDIA_MANIFEST,
                    "digest": manifest_digest,
                    "size": len(manifest),
                    "platform": platform,
                    "annotations": {
                        "io.containerd.image.name": reference,
                        **({"org.opencontainers.image.ref.name": tag} if tag else {}),
                    },
                }
            ],
        }
    )
    docker_manifest = _canonical(
        [
            {
                "Config": _blob_path(config_digest),
                "RepoTags": [reference] if tag else [],
                "Layers": [_blob_path(layer_digest)],
            }
        ]
    )
    entries = {
        "oci-layout": _canonical({"imageLayoutVersion": "1.0.0"}),
        "index.json": index,
        "manifest.json": docker_manifest,
        _blob_path(layer_digest): layer,
        _blob_path(config_digest): config,
        _blob_path(manifest_digest): manifest,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as archive:
        for directory in ("blobs", "blobs/sha256"):
            archive.addfile(_info(directory + "/", tarfile.DIRTYPE, 0o755, image.created))
        for name in sorted(entries):
            data = entries[name]
            archive.addfile(_info(name, tarfile.REGTYPE, 0o644, image.created, len(data)), io.BytesIO(data))
    partial.replace(path)
    return Written(
        path=path,
        reference=reference,
        manifest_digest=manifest_digest,
        config_digest=config_digest,
        layer_digest=layer_digest,
    )


def _config(image: Image, layer_digest: str) -> dict[str, object]:
    run: dict[str, object] = {"Env": list(image.env)}
    if image.entrypoint:
        run["Entrypoint"] = list(image.entrypoint)
    if image.cmd:
        run["Cmd"] = list(image.cmd)
    if image.working_dir:
        run["WorkingDir"] = image.working_dir
    if image.user:
        run["User"] = image.user
    if image.labels:
        run["Labels"] = dict(sorted(image.labels.items()))
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(image.created))
    config: dict[str, object] = {
        "architecture": image.architecture,
        "os": image.os,
        "created": created,
        "config": run,
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created": created, "created_by": "k3py.images.oci"}],
    }
    if image.variant:
        config["variant"] = image.variant
    return config


def _layer(entries: Iterable[Entry], mtime: int) -> bytes:
    """The layer tar: parent directories first, everything sorted, owned by root, fixed times."""
    by_path: dict[str, Entry] = {}
    for entry in entries:
        name = _inside(entry.path)
        if name in by_path:
            raise ImageError(f"{entry.path!r} is in the image twice")
        by_path[name] = entry
    directories = {
        str(parent) for name in by_path for parent in PurePosixPath(name).parents if str(parent) != "."
    }
    clash = directories & {name for name, entry in by_path.items() if not isinstance(entry, Directory)}
    if clash:
        raise ImageError(f"{sorted(clash)[0]!r} is both a file and a directory in the image")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name in sorted(directories | by_path.keys()):
            found = by_path.get(name)
            if found is None or isinstance(found, Directory):
                mode = 0o755 if found is None else found.mode
                archive.addfile(_info(name + "/", tarfile.DIRTYPE, mode, mtime))
            elif isinstance(found, Symlink):
                info = _info(name, tarfile.SYMTYPE, 0o777, mtime)
                info.linkname = found.target
                archive.addfile(info)
            else:
                info = _info(name, tarfile.REGTYPE, found.mode, mtime, len(found.data))
                archive.addfile(info, io.BytesIO(found.data))
    return buffer.getvalue()


def _inside(path: str) -> str:
    """``/bin/sh`` → ``bin/sh``; refuses paths that leave the image or name its root."""
    parts = PurePosixPath(path.lstrip("/")).parts
    if not parts or any(part in ("..", ".") for part in parts):
        raise ImageError(f"image path {path!r} must name something inside the image")
    return "/".join(parts)


def _info(name: str, kind: bytes, mode: int, mtime: int, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = mtime
    info.size = size
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def _canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _blob_path(digest: str) -> str:
    return "blobs/sha256/" + digest.split(":", 1)[1]
