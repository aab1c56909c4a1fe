"""Tunables of the revisioned store, built once by the server from its configuration."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True, kw_only=True)
class CompactionOptions:
    """Compaction removes history that no reader can still ask for.

    The compaction point is the newest revision that is both at least ``retain_revisions``
    behind the head and at least ``retain_seconds`` old. The compactor runs every
    ``interval`` seconds, and also as soon as ``trigger_revisions`` writes accumulated since
    the last run, so the log stays bounded under any write rate.
    """

    retain_revisions: int = 1000
    retain_seconds: float = 0.0
    interval: float = 300.0
    trigger_revisions: int = 1000
    enabled: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class SQLiteOptions:
    path: Path
    compaction: CompactionOptions = CompactionOptions()
    max_batch: int = 512
    """Most writes committed together in one transaction (one fsync)."""
    watch_buffer: int = 10_000
    """Events buffered for a slow watcher before it falls back to reading the log."""
