"""Opening, validating and creating the SQLite database file.

The whole store is one table, ``log``, keyed by revision: every create, update and delete
appends a row. A deletion is a row with ``version = 0`` and an empty value. ``meta`` holds
the compaction point. The file is marked with an application id so a foreign SQLite file is
refused instead of being written into.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

from k3py.storage.errors import StoreUnavailable

APPLICATION_ID = 0x6B337079  # "k3py"
SCHEMA_VERSION = 1
SQLITE_MAGIC = b"SQLite format 3\x00"

_SCHEMA = """
CREATE TABLE log (
    rev        INTEGER PRIMARY KEY,
    key        BLOB    NOT NULL,
    create_rev INTEGER NOT NULL,
    prev_rev   INTEGER NOT NULL,
    version    INTEGER NOT NULL,
    value      BLOB    NOT NULL
);
CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO meta(name, value) VALUES ('compact_rev', 0), ('base_rev', 1);
"""

WAL_AUTOCHECKPOINT_PAGES = 256
JOURNAL_SIZE_LIMIT = 2 << 20


def describe(exc: BaseException) -> str:
    """A short human reason for an OS or SQLite failure."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return os.strerror(exc.errno)
    text = str(exc)
    code = getattr(exc, "sqlite_errorname", "")
    if code in ("SQLITE_FULL",) or "database or disk is full" in text:
        return "disk full"
    if code.startswith("SQLITE_READONLY") or "readonly" in text:
        return "read-only file system or file"
    return text or type(exc).__name__


def _check_header(path: Path) -> None:
    try:
        with path.open("rb") as f:
            head = f.read(len(SQLITE_MAGIC))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StoreUnavailable(f"cannot read database {path}: {describe(exc)}") from exc
    if head and head != SQLITE_MAGIC:
        raise StoreUnavailable(
            f"{path} is not a k3py database (not SQLite: corrupt or foreign file); "
            "move it aside or point --datastore-endpoint elsewhere"
        )


def connect(path: Path, *, writer: bool) -> sqlite3.Connection:
    """A connection with the store's pragmas; the writer also owns checkpoints.

    The journal mode is not set here: WAL mode is a property of the file, switched on by
    ``open_database`` only once the file is known to be a k3py store.
    """
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA busy_timeout = 10000")
        # The writer's commits are made durable by the commit log (redo.py), not by SQLite.
        conn.execute(f"PRAGMA synchronous = {'NORMAL' if writer else 'FULL'}")
        if writer:
            conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
            conn.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}")
            # Debian builds SQLite with secure_delete on: every deleted row is overwritten
            # and every page compaction frees is written out once more. FAST zeroes deleted
            # content only in pages written anyway (K3s's SQLite and etcd zero nothing).
            conn.execute("PRAGMA secure_delete = FAST")
        else:
            conn.execute("PRAGMA query_only = 1")
    except BaseException:
        conn.close()
        raise
    return conn


def sync_files(path: Path) -> None:
    """Flush the database and its WAL to the disk: everything committed so far is durable."""
    for p in (Path(f"{path}-wal"), path):
        try:
            fd = os.open(p, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def on_read_only_filesystem(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def open_database(path: Path) -> sqlite3.Connection:
    """Open (creating if new) and validate the database; return the writer connection."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise StoreUnavailable(f"cannot create data directory {path.parent}: {describe(exc)}") from exc
    _check_header(path)
    if on_read_only_filesystem(path.parent):
        raise StoreUnavailable(f"database {path} is on a read-only file system")
    if path.exists() and not os.access(path.parent, os.W_OK):
        raise StoreUnavailable(f"database directory {path.parent} is not writable")
    conn: sqlite3.Connection | None = None
    try:
        conn = connect(path, writer=True)
        _validate_or_create(conn, path)
        if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0] != "wal":
            raise StoreUnavailable(f"cannot switch database {path} to WAL mode")
        return conn
    except StoreUnavailable:
        if conn is not None:
            conn.close()
        raise
    except (sqlite3.Error, OSError) as exc:
        if conn is not None:
            conn.close()
        if isinstance(exc, OSError) and exc.errno == errno.EROFS:
            raise StoreUnavailable(f"database {path} is on a read-only file system") from exc
        raise StoreUnavailable(f"cannot open database {path}: {describe(exc)}") from exc


def _validate_or_create(conn: sqlite3.Connection, path: Path) -> None:
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if app_id == 0 and not tables:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return
    if app_id != APPLICATION_ID:
        raise StoreUnavailable(
            f"{path} is a SQLite database of another program (application id {app_id:#x}); "
            "refusing to use it as the k3py store"
        )
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version != SCHEMA_VERSION:
        raise StoreUnavailable(
            f"{path} has store schema version {version}; this k3py understands {SCHEMA_VERSION}"
        )
    if not {"log", "meta"} <= tables:
        raise StoreUnavailable(f"{path} is missing store tables (found: {sorted(tables)})")
