"""The server's side of the datastore: the data directory, and opening the store it names.

Turns the frozen ``ServerConfig`` into the storage layer's own options (path, compaction)
and opens the store. Failures become named errors the CLI reports in one line:
``ServerError`` for the data directory, ``StoreUnavailable`` (from the storage layer) for
a database that is corrupt, foreign or read-only.
"""

from __future__ import annotations

import logging
from pathlib import Path

from k3py.config import ServerConfig
from k3py.server.errors import ServerError
from k3py.storage import Backend, CompactionOptions, SQLiteOptions, open_store

log = logging.getLogger(__name__)

StoreHandle = Backend
"""What the server holds after opening the datastore: any backend, through its protocol."""

_PRIVATE_DIR_MODE = 0o700


def prepare_data_dir(config: ServerConfig) -> None:
    """Create ``<data-dir>`` and ``<data-dir>/server`` (owner-only) if they are missing."""
    for directory in (config.data_dir, config.server_dir):
        _make_private_dir(directory)


def _make_private_dir(directory: Path) -> None:
    try:
        directory.mkdir(mode=_PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    except PermissionError:
        raise ServerError(
            f"cannot create {directory}: permission denied (run as root or choose another --data-dir)"
        ) from None
    except OSError as exc:
        raise ServerError(f"cannot create {directory}: {exc.strerror}") from None
    if not directory.is_dir():
        raise ServerError(f"{directory} exists but is not a directory")


def storage_options(config: ServerConfig) -> SQLiteOptions:
    """The storage layer's options for this server (``--datastore-*`` flags)."""
    interval = config.datastore_compact_interval
    return SQLiteOptions(
        path=config.datastore_endpoint.path,
        compaction=CompactionOptions(
            retain_revisions=config.datastore_compact_retain,
            retain_seconds=config.datastore_compact_min_age,
            interval=interval,
            enabled=interval > 0,
        ),
    )


async def open_datastore(config: ServerConfig) -> StoreHandle:
    """Open the store named by ``--datastore-endpoint``; raises ``StoreUnavailable``."""
    options = storage_options(config)
    _make_private_dir(options.path.parent)
    store = await open_store(options)
    policy = options.compaction
    kept = f"{policy.retain_seconds:g}s of history"
    if policy.retain_revisions:
        kept += f" and at least {policy.retain_revisions} revisions"
    compaction = f"compacting every {policy.interval:g}s, keeping {kept}" if policy.enabled else "off"
    log.info("Datastore %s (compaction: %s)", config.datastore_endpoint, compaction)
    return store
