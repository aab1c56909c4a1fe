"""The commit log: what makes a write durable before SQLite's own files are synced.

SQLite runs with ``synchronous = NORMAL``: a commit reaches the operating system but is not
flushed to the disk. Each group commit is made durable instead by one record in this log,
written with ``O_DIRECT | O_DSYNC`` into a preallocated file: one aligned write that returns
when the data is on stable storage, cheaper than SQLite's WAL append plus ``fdatasync``
(the WAL's 24-byte frame headers make every commit straddle disk blocks).

Layout: block 0 is a header (magic, epoch); records follow, each a whole number of 4 KiB
blocks: a header (magic, epoch, first revision, row count, payload length, CRC-32) and the
rows. A record counts only if its epoch is the file's and its checksum matches; the first one
that does not ends the log. Rows reach SQLite some time after their record (the writer
batches inserts), so the log holds the only durable copy of the newest writes. When the log
is full the writer makes SQLite durable itself (everything waiting inserted by a commit with
``synchronous = FULL``) and then ``reset`` starts a new epoch, which invalidates every old
record at once. On open, records newer than SQLite's head are applied to SQLite.
"""

from __future__ import annotations

import errno
import mmap
import os
import struct
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

from k3py.storage.errors import StoreUnavailable

BLOCK = 4096
MAGIC = b"k3RL"
_FILE_HEADER = struct.Struct("<4sQ")  # magic, epoch
_RECORD_HEADER = struct.Struct("<4sQQIII")  # magic, epoch, first rev, rows, payload, crc
_ROW = struct.Struct("<QQQQII")  # rev, create_rev, prev_rev, version, key length, value length
_ONE_ROW = struct.Struct(_RECORD_HEADER.format + _ROW.format[1:])
"""A record's header and its first row's fixed fields, packed at once."""

DEFAULT_SIZE = 4 << 20
MIN_SIZE = 16 * BLOCK

Row = tuple[int, bytes, int, int, int, bytes]
"""(rev, key, create_rev, prev_rev, version, value): one row of the ``log`` table."""


def redo_path(db: Path) -> Path:
    return db.with_name(db.name + "-redo")


def size_for(directory: Path, wanted: int = DEFAULT_SIZE) -> int:
    """``wanted`` bytes, or a tenth of the free space if that is less (never below 64 KiB)."""
    try:
        st = os.statvfs(directory)
        free = st.f_bavail * st.f_frsize
    except OSError:
        return wanted
    return max(MIN_SIZE, min(wanted, free // 10 // BLOCK * BLOCK))


_CRC = struct.Struct("<I")
_CRC_OFFSET = _RECORD_HEADER.size - _CRC.size


def _record_size(rows: Sequence[Row]) -> int:
    """Bytes one record holding ``rows`` takes in the log (whole blocks)."""
    size = _RECORD_HEADER.size
    for row in rows:
        size += _ROW.size + len(row[1]) + len(row[5])
    return size + (-size % BLOCK)


def _decode_rows(payload: bytes, count: int) -> list[Row]:
    rows: list[Row] = []
    pos = 0
    for _ in range(count):
        rev, create, prev, version, klen, vlen = _ROW.unpack_from(payload, pos)
        pos += _ROW.size
        key = payload[pos : pos + klen]
        value = payload[pos + klen : pos + klen + vlen]
        pos += klen + vlen
        rows.append((rev, key, create, prev, version, value))
    return rows


class RedoLog:
    def __init__(self, path: Path, fd: int, size: int, epoch: int, direct: bool) -> None:
        self.path = path
        self._fd = fd
        self._size = size
        self.epoch = epoch
        self.direct = direct
        self._offset = BLOCK
        self._tail = BLOCK
        self._buffer = mmap.mmap(-1, 16 * BLOCK)  # page-aligned, as O_DIRECT requires
        self._view = memoryview(self._buffer)

    @classmethod
    def open(cls, path: Path, size: int) -> RedoLog:
        """Open the log at ``path``, creating and preallocating it (``size`` bytes) if new."""
        created = not path.exists()
        try:
            if created:
                _preallocate(path, size)
            else:
                size = path.stat().st_size
            fd, direct = _open(path)
        except OSError as exc:
            if created:
                path.unlink(missing_ok=True)
            reason = "disk full" if exc.errno == errno.ENOSPC else os.strerror(exc.errno or 0)
            raise StoreUnavailable(f"cannot open commit log {path}: {reason}") from exc
        with path.open("rb") as f:
            head = f.read(_FILE_HEADER.size)
        magic, epoch = _FILE_HEADER.unpack(head) if len(head) == _FILE_HEADER.size else (b"", 0)
        if magic != MAGIC or size < MIN_SIZE or size % BLOCK:
            os.close(fd)
            raise StoreUnavailable(f"{path} is not a k3py commit log (corrupt or foreign file)")
        return cls(path, fd, size, epoch, direct)

    def records(self) -> Iterator[list[Row]]:
        """The valid records of the current epoch, oldest first."""
        with self.path.open("rb") as f:  # buffered: direct I/O would need aligned reads
            offset = self._tail = BLOCK
            while offset + BLOCK <= self._size:
                f.seek(offset)
                head = f.read(_RECORD_HEADER.size)
                magic, epoch, first, count, length, crc = _RECORD_HEADER.unpack(head)
                total = _RECORD_HEADER.size + length
                if magic != MAGIC or epoch != self.epoch or offset + total > self._size:
                    return
                payload = f.read(length)
                unsigned = _RECORD_HEADER.pack(magic, epoch, first, count, length, 0)
                if len(payload) != length or zlib.crc32(payload, zlib.crc32(unsigned)) != crc:
                    return
                yield _decode_rows(payload, count)
                offset += total + (-total % BLOCK)
                self._tail = offset

    def keep(self) -> None:
        """Append after the records ``records`` read, instead of starting afresh: for a
        store whose replayed rows SQLite could not take yet."""
        self._offset = self._tail

    def append(self, rows: Sequence[Row]) -> bool:
        """Write one record holding ``rows`` durably; False, with nothing written, if the log
        has no room for it.

        The record is built in the aligned buffer itself: a header, then each row's fixed
        fields, key and value; the checksum covers the header (with a zero checksum field)
        and the rows. The rest of the last block goes out as the buffer holds it: a record
        ends where its header says, and nothing reads beyond.
        """
        if len(rows) == 1:
            return self.append_row(rows[0])
        total = _record_size(rows)
        if self._offset + total > self._size:
            return False
        self._reserve(total)
        buf = self._buffer
        pos = _RECORD_HEADER.size
        for rev, key, create, prev, version, value in rows:
            klen, vlen = len(key), len(value)
            _ROW.pack_into(buf, pos, rev, create, prev, version, klen, vlen)
            pos += _ROW.size
            buf[pos : pos + klen] = key
            pos += klen
            buf[pos : pos + vlen] = value
            pos += vlen
        _RECORD_HEADER.pack_into(
            buf, 0, MAGIC, self.epoch, rows[0][0], len(rows), pos - _RECORD_HEADER.size, 0
        )
        _CRC.pack_into(buf, _CRC_OFFSET, zlib.crc32(self._view[:pos]))
        self._write(total, self._offset)
        self._offset += total
        return True

    def append_row(self, row: Row) -> bool:
        """``append`` for a record of one row (a sequential writer's every write)."""
        rev, key, create, prev, version, value = row
        klen, vlen = len(key), len(value)
        end = _ONE_ROW.size + klen + vlen
        total = end + (-end % BLOCK)
        offset = self._offset
        if offset + total > self._size:
            return False
        if total > len(self._buffer):
            self._reserve(total)
        buf = self._buffer
        payload = end - _RECORD_HEADER.size
        _ONE_ROW.pack_into(
            buf, 0, MAGIC, self.epoch, rev, 1, payload, 0, rev, create, prev, version, klen, vlen
        )
        buf[_ONE_ROW.size : end - vlen] = key
        buf[end - vlen : end] = value
        _CRC.pack_into(buf, _CRC_OFFSET, zlib.crc32(self._view[:end]))
        self._write(total, offset)
        self._offset = offset + total
        return True

    def reset(self) -> None:
        """Start a new epoch: every record written so far stops counting."""
        epoch = self.epoch + 1
        self._reserve(BLOCK)
        self._buffer[:BLOCK] = _FILE_HEADER.pack(MAGIC, epoch).ljust(BLOCK, b"\0")
        self._write(BLOCK, 0)
        self.epoch = epoch
        self._offset = BLOCK

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._view.release()
        self._buffer.close()

    def _reserve(self, size: int) -> None:
        """Make the aligned buffer hold at least ``size`` bytes."""
        if size > len(self._buffer):
            self._view.release()
            self._buffer.close()
            self._buffer = mmap.mmap(-1, size + (-size % (16 * BLOCK)))
            self._view = memoryview(self._buffer)

    def _write(self, size: int, offset: int) -> None:
        """Write the first ``size`` bytes of the buffer at ``offset``."""
        view = self._view[:size]
        try:
            written = os.pwritev(self._fd, [view], offset)
        finally:
            view.release()
        if written != size:
            raise OSError(errno.EIO, f"short write to {self.path}")


def _preallocate(path: Path, size: int) -> None:
    """Write the whole file (zeros and a header), so later writes change no file metadata."""
    tmp = path.with_name(path.name + ".new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, _FILE_HEADER.pack(MAGIC, 1).ljust(BLOCK, b"\0"))
        zeros = bytes(64 * BLOCK)
        left = size - BLOCK
        while left > 0:
            left -= os.write(fd, zeros[: min(left, len(zeros))])
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    tmp.rename(path)
    dirfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dirfd)
    finally:
        os.close(dirfd)


def _open(path: Path) -> tuple[int, bool]:
    """The log opened for synchronous writes: direct I/O where the file system allows it."""
    flags = os.O_RDWR | os.O_DSYNC | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags | os.O_DIRECT)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
        return os.open(path, flags), False
    # Some file systems accept O_DIRECT at open and refuse the first aligned write instead.
    buf = mmap.mmap(-1, BLOCK)
    try:
        view = memoryview(buf)
        try:
            os.preadv(fd, [view], 0)
        finally:
            view.release()
    except OSError as exc:
        os.close(fd)
        if exc.errno != errno.EINVAL:
            raise
        return os.open(path, flags), False
    finally:
        buf.close()
    return fd, True
