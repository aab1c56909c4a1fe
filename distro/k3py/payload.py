"""The runtime payload: containerd, runc, CNI plugins and the pause image, carried inside the binary.

A release binary is PyInstaller's executable followed by the payload and a fixed-size trailer::

    [ executable ][ payload: tar.xz ][ trailer: magic, offset, length, sha256 ]

PyInstaller's bootloader finds its own archive through an ELF section, so bytes appended after
the executable do not disturb it. The payload's tar holds ``bin/`` (containerd,
containerd-shim-runc-v2, runc, catatonit), ``cni/`` (the CNI plugins), ``lib/`` (shared
libraries those need beyond the C library), ``images/`` (OCI archives: the pause image) and
``manifest.json`` (every component with its version, size and sha256).

:func:`ensure_unpacked` unpacks it once per payload into ``<data-dir>/data/<sha256>/`` (K3s's
scheme) and points ``data/current`` at it (the previous one stays as ``data/previous``): later
starts of the same binary find the directory and cost nothing. Unpacking is all or nothing: a
temporary directory, renamed into place only after every file is written and synced, under a
lock that keeps two processes from unpacking at once. Running from source, there is no payload
and :func:`ensure_unpacked` returns ``None``: the agent then uses the host's packages.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import struct
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from k3py.util.locks import exclusive

log = logging.getLogger(__name__)

MAGIC = b"K3PYPLD1"
TRAILER = struct.Struct("<8sQQ32s")
"""magic, payload offset, payload length, payload sha256 (raw): the binary's last bytes."""
MANIFEST = "manifest.json"
CHUNK = 1 << 20


class PayloadError(Exception):
    """The binary's payload is damaged or cannot be unpacked where asked."""


@dataclass(frozen=True, kw_only=True)
class Located:
    """Where a binary's payload lies inside it."""

    executable: Path
    offset: int
    length: int
    sha256: str


@dataclass(frozen=True, kw_only=True)
class Unpacked:
    """A payload unpacked in the data directory."""

    path: Path
    sha256: str
    manifest: dict[str, object]
    unpacked_now: bool
    seconds: float

    def binary(self, name: str) -> Path:
        """``bin/<name>`` inside the unpacked payload."""
        return self.path / "bin" / name


def trailer(offset: int, length: int, sha256: str) -> bytes:
    """The trailer that follows a payload of ``length`` bytes starting at ``offset``."""
    return TRAILER.pack(MAGIC, offset, length, bytes.fromhex(sha256))


def locate(executable: Path) -> Located | None:
    """The payload of ``executable``, or ``None`` if it carries none."""
    try:
        with executable.open("rb") as f:
            size = f.seek(0, os.SEEK_END)
            if size < TRAILER.size:
                return None
            f.seek(size - TRAILER.size)
            magic, offset, length, digest = TRAILER.unpack(f.read(TRAILER.size))
    except OSError:
        return None
    if magic != MAGIC:
        return None
    if offset + length + TRAILER.size != size:
        raise PayloadError(
            f"{executable}: payload trailer does not match the file's size (truncated binary?)"
        )
    return Located(executable=executable, offset=offset, length=length, sha256=digest.hex())


def own_payload() -> Located | None:
    """The payload of the running binary (a frozen release build), else ``None``."""
    if not getattr(sys, "frozen", False):
        return None
    return locate(Path(sys.executable))


def ensure_unpacked(data_dir: Path, located: Located | None = None) -> Unpacked | None:
    """Unpack the running binary's payload (or ``located``) under ``data_dir/data/`` unless it is there."""
    located = located if located is not None else own_payload()
    if located is None:
        return None
    started = time.monotonic()
    data = data_dir / "data"
    target = data / located.sha256
    try:
        data.mkdir(parents=True, exist_ok=True, mode=0o755)
        with exclusive(data / ".lock"):
            unpacked_now = not (target / MANIFEST).is_file()
            if unpacked_now:
                _remove_leftovers(data)
                if target.exists():  # a directory someone emptied or broke: start again
                    target.rename(data / f".unpack-broken-{located.sha256[:16]}-{os.getpid()}")
                    _remove_leftovers(data)
                _unpack(located, target)
            _point(data, located.sha256)
        manifest = json.loads((target / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise PayloadError(f"cannot use the runtime payload in {target}: {error}") from error
    seconds = time.monotonic() - started
    if unpacked_now:
        log.info("Unpacked the runtime payload to %s in %.2f s", target, seconds)
    else:
        log.debug("Runtime payload already unpacked at %s", target)
    return Unpacked(
        path=target, sha256=located.sha256, manifest=manifest, unpacked_now=unpacked_now, seconds=seconds
    )


def _unpack(located: Located, target: Path) -> None:
    staging = target.with_name(f".unpack-{located.sha256[:16]}-{os.getpid()}")
    try:
        with located.executable.open("rb") as f:
            _verify(f, located)
            f.seek(located.offset)
            with tarfile.open(fileobj=_Window(f, located.length), mode="r|xz") as archive:
                for member in archive:
                    _extract(archive, member, staging)
        if not (staging / MANIFEST).is_file():
            raise PayloadError(f"{located.executable}: payload has no {MANIFEST}")
        _sync_tree(staging)
        staging.rename(target)
        _fsync_dir(target.parent)
    except (OSError, tarfile.TarError, EOFError) as error:
        raise PayloadError(f"cannot unpack the runtime payload into {target}: {error}") from error
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _verify(f: BinaryIO, located: Located) -> None:
    f.seek(located.offset)
    digest = hashlib.sha256()
    remaining = located.length
    while remaining:
        chunk = f.read(min(CHUNK, remaining))
        if not chunk:
            break
        digest.update(chunk)
        remaining -= len(chunk)
    if remaining or digest.hexdigest() != located.sha256:
        raise PayloadError(f"{located.executable}: payload checksum mismatch (damaged binary?)")


def _extract(archive: tarfile.TarFile, member: tarfile.TarInfo, staging: Path) -> None:
    """Write one member under ``staging``: plain files, directories and relative in-tree symlinks only.

    Nothing is written through a symlink: a member's parent must resolve inside ``staging`` and a
    new file or link must not exist yet (a later member cannot reuse an earlier link to escape).
    """
    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts or not name.parts:
        raise PayloadError(f"payload member {member.name!r} points outside the payload")
    destination = staging.joinpath(*name.parts)
    destination.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    if not destination.parent.resolve().is_relative_to(staging.resolve()):
        raise PayloadError(f"payload member {member.name!r} goes through a link out of the payload")
    if member.isdir():
        if destination.is_symlink():
            raise PayloadError(f"payload directory {member.name!r} is already a link")
        destination.mkdir(exist_ok=True, mode=0o755)
    elif member.isfile():
        source = archive.extractfile(member)
        if source is None:
            raise PayloadError(f"payload member {member.name!r} has no data")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        with os.fdopen(os.open(destination, flags, 0o600), "wb") as out:
            shutil.copyfileobj(source, out, CHUNK)
            os.fchmod(out.fileno(), member.mode & 0o755)
    elif member.issym():
        link = PurePosixPath(member.linkname)
        if link.is_absolute() or _escapes(name, link):
            raise PayloadError(
                f"payload link {member.name!r} -> {member.linkname!r} points outside the payload"
            )
        destination.symlink_to(member.linkname)
    else:
        raise PayloadError(f"payload member {member.name!r} is neither a file, a directory nor a symlink")


def _escapes(name: PurePosixPath, link: PurePosixPath) -> bool:
    """Whether the relative link ``link`` at ``name`` climbs above the payload's top."""
    depth = len(name.parent.parts)
    for part in link.parts:
        depth += -1 if part == ".." else (0 if part == "." else 1)
        if depth < 0:
            return True
    return False


def _sync_tree(root: Path) -> None:
    for directory, _, files in os.walk(root):
        for name in files:
            fd = os.open(Path(directory, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(directory))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _point(data: Path, sha256: str) -> None:
    """``data/current`` → ``sha256``; the one it replaces becomes ``data/previous``."""
    current = data / "current"
    old = str(current.readlink()) if current.is_symlink() else None
    if old == sha256:
        return
    if old is not None:
        _symlink_atomically(data / "previous", old)
    _symlink_atomically(current, sha256)


def _symlink_atomically(link: Path, target: str) -> None:
    temporary = link.with_name(f".{link.name}-{os.getpid()}")
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(target)
    temporary.replace(link)


def _remove_leftovers(data: Path) -> None:
    """Staging directories of unpacks that were interrupted (the lock is held: nobody else unpacks)."""
    for leftover in data.glob(".unpack-*"):
        shutil.rmtree(leftover, ignore_errors=True)


class _Window(io.RawIOBase):
    """The next ``length`` bytes of ``f``: what ``tarfile`` reads the payload through."""

    def __init__(self, f: BinaryIO, length: int) -> None:
        self._f = f
        self._remaining = length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._remaining <= 0:
            return 0
        view = memoryview(buffer)[: min(len(buffer), self._remaining)]
        count = int(self._f.readinto(view))  # type: ignore[attr-defined]
        self._remaining -= count
        return count
