"""Reading and atomically writing the PKI's files.

A file is written to a temporary file in the same directory, given its final mode (keys
0600, certificates 0644, kubeconfigs whatever the caller asks), flushed with fsync and
renamed over the target; the directory is then fsynced so the rename itself survives a
crash. A reader therefore sees the old file or the new one, never a torn one. Errors from
the file system become :class:`PkiError` with the path.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from k3py.pki.errors import PkiError

KEY_MODE = 0o600
CERT_MODE = 0o644


def read_optional(path: Path) -> bytes | None:
    """The file's bytes, or None when it does not exist; anything else unreadable raises."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise PkiError(path, f"cannot read: {exc.strerror or exc}") from exc


def ensure_dir(path: Path, mode: int = 0o755) -> None:
    """Create ``path`` and its parents if missing (an existing directory keeps its mode)."""
    try:
        path.mkdir(mode=mode, parents=True, exist_ok=True)
    except OSError as exc:
        raise PkiError(path, f"cannot create directory: {exc.strerror or exc}") from exc


def write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Replace ``path`` with ``data`` and exactly ``mode`` (the umask does not apply)."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        temp.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise PkiError(path, f"cannot write: {exc.strerror or exc}") from exc
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return  # the rename happened; only its durability across a crash is weaker
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
