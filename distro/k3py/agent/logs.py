"""Reading containers' CRI log files for ``kubectl logs`` (the kubelet's ``/containerLogs``).

The container runtime writes one file per container instance
(``<pod log dir>/<container>/<restartCount>.log``), a line per write::

    2026-11-27T12:00:00.123456789Z stdout F hello
    2026-11-27T12:00:00.223456789Z stderr P a long line, first part
    2026-11-27T12:00:00.323456789Z stderr F  and its end

``P`` marks a partial line continued by the following entries of the file until an ``F``.
:func:`read_log` turns such a file into what the user sees, as the kubelet's
``ReadLogs`` does: the text of both streams joined, optionally each line prefixed with its
timestamp (the first part's, nanoseconds always nine digits); ``tailLines`` counts the
file's lines from its end, ``sinceSeconds``/``sinceTime`` skip older entries, ``limitBytes``
stops after that many bytes. With ``follow`` it keeps reading what is appended, reopens the
path when the file is rotated, and ends once ``keep_following`` says the container is gone
(after draining what was written until then).
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

POLL_INTERVAL = 0.2
"""How often a followed file is checked for new lines (seconds)."""
CHECK_INTERVAL = 1.0
"""How often ``keep_following`` is asked while a followed file stays idle (seconds)."""
_BLOCK = 64 * 1024

STREAMS = frozenset({"stdout", "stderr"})
_TIMESTAMP = re.compile(
    r"^(?P<base>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(?P<frac>\d{1,9}))?(?P<zone>Z|[+-]\d\d:\d\d)$"
)


class LogOptionError(ValueError):
    """A query parameter of a log request is invalid (the kubelet answers 400)."""


@dataclass(frozen=True, kw_only=True)
class LogOptions:
    """``PodLogOptions`` as the kubelet applies them to one log file."""

    follow: bool = False
    tail_lines: int | None = None
    since: datetime | None = None
    timestamps: bool = False
    limit_bytes: int | None = None
    streams: frozenset[str] = STREAMS

    @classmethod
    def from_query(cls, query: Mapping[str, str], now: datetime | None = None) -> LogOptions:
        """Parse the kubelet's query string (``follow``, ``tailLines``, ``sinceSeconds``...)."""
        now = datetime.now(UTC) if now is None else now
        since: datetime | None = None
        if "sinceSeconds" in query and "sinceTime" in query:
            raise LogOptionError("at most one of sinceTime or sinceSeconds may be specified")
        if "sinceSeconds" in query:
            seconds = _number(query, "sinceSeconds", minimum=1)
            since = now - timedelta(seconds=seconds)
        elif query.get("sinceTime"):
            parsed = parse_timestamp(query["sinceTime"])
            if parsed is None:
                raise LogOptionError(f"sinceTime: invalid RFC 3339 time {query['sinceTime']!r}")
            since = parsed
        stream = query.get("stream", "All")
        streams = {"All": STREAMS, "Stdout": frozenset({"stdout"}), "Stderr": frozenset({"stderr"})}.get(
            stream
        )
        if streams is None:
            raise LogOptionError(
                f"stream: unsupported value {stream!r}: supported values: All, Stdout, Stderr"
            )
        if streams != STREAMS and "tailLines" in query:
            raise LogOptionError("tailLines and specific stream are mutually exclusive for now")
        return cls(
            follow=_flag(query, "follow"),
            tail_lines=_number(query, "tailLines", minimum=0) if "tailLines" in query else None,
            since=since,
            timestamps=_flag(query, "timestamps"),
            limit_bytes=_number(query, "limitBytes", minimum=1) if "limitBytes" in query else None,
            streams=streams,
        )


def _flag(query: Mapping[str, str], name: str) -> bool:
    return query.get(name, "").lower() in ("1", "true")


def _number(query: Mapping[str, str], name: str, *, minimum: int) -> int:
    raw = query[name]
    try:
        value = int(raw)
    except ValueError:
        raise LogOptionError(f"{name}: invalid integer {raw!r}") from None
    if value < minimum:
        raise LogOptionError(f"{name}: must be greater than or equal to {minimum}, got {value}")
    return value


@dataclass(frozen=True)
class LogEntry:
    """One line of a CRI log file."""

    timestamp: str  # as written; see :func:`format_timestamp`
    time: datetime
    stream: str
    partial: bool
    text: bytes  # without the line's newline


def parse_timestamp(text: str) -> datetime | None:
    """An RFC 3339 time with up to nine fractional digits (microseconds kept); None if invalid."""
    match = _TIMESTAMP.match(text)
    if match is None:
        return None
    frac = (match["frac"] or "0")[:6].ljust(6, "0")
    zone = "+00:00" if match["zone"] == "Z" else match["zone"]
    try:
        return datetime.fromisoformat(f"{match['base']}.{frac}{zone}")
    except ValueError:
        return None


def format_timestamp(text: str) -> str:
    """The time as ``kubectl logs --timestamps`` shows it: always nine fractional digits."""
    match = _TIMESTAMP.match(text)
    if match is None:
        return text
    return f"{match['base']}.{(match['frac'] or '').ljust(9, '0')}{match['zone']}"


def parse_line(line: bytes) -> LogEntry | None:
    """A CRI log line (its newline removed); None for a line that is not one."""
    parts = line.split(b" ", 3)
    if len(parts) < 3:
        return None
    raw_time, stream, tag = (p.decode("ascii", "replace") for p in parts[:3])
    time = parse_timestamp(raw_time)
    if time is None or stream not in STREAMS or tag not in ("F", "P"):
        return None
    return LogEntry(raw_time, time, stream, tag == "P", parts[3] if len(parts) > 3 else b"")


def tail_offset(file: BinaryIO, lines: int) -> int:
    """Where the last ``lines`` complete lines of ``file`` start (its size for zero lines)."""
    end = file.seek(0, os.SEEK_END)
    if lines == 0:
        return end
    position = end
    wanted = lines + 1  # the newline ending the last line is counted too
    while position > 0:
        size = min(_BLOCK, position)
        position -= size
        file.seek(position)
        block = file.read(size)
        for index in range(len(block) - 1, -1, -1):
            if block[index] == 0x0A:
                if position + index == end - 1:
                    continue  # the final newline ends the last line, it does not start one
                wanted -= 1
                if wanted == 1:
                    return position + index + 1
    return 0


class _Renderer:
    """Entries to output bytes: timestamps, stream filter, partial lines, the byte limit."""

    def __init__(self, options: LogOptions) -> None:
        self.options = options
        self.remaining = options.limit_bytes
        self.line_start: dict[str, bool] = {stream: True for stream in STREAMS}

    @property
    def exhausted(self) -> bool:
        return self.remaining is not None and self.remaining <= 0

    def render(self, entry: LogEntry) -> bytes:
        options = self.options
        if entry.stream not in options.streams:
            return b""
        if options.since is not None and entry.time < options.since:
            return b""
        out = b""
        if options.timestamps and self.line_start[entry.stream]:
            out = format_timestamp(entry.timestamp).encode("ascii") + b" "
        out += entry.text if entry.partial else entry.text + b"\n"
        self.line_start[entry.stream] = not entry.partial
        if self.remaining is not None:
            out = out[: self.remaining]
            self.remaining -= len(out)
        return out


async def read_log(
    path: Path,
    options: LogOptions,
    *,
    keep_following: Callable[[], Awaitable[bool]] | None = None,
    poll_interval: float = POLL_INTERVAL,
    check_interval: float = CHECK_INTERVAL,
) -> AsyncGenerator[bytes, None]:
    """The log's text in chunks (see the module docstring); :class:`OSError` if unreadable."""
    renderer = _Renderer(options)
    file = path.open("rb")
    try:
        if options.tail_lines is not None:
            file.seek(tail_offset(file, options.tail_lines))
        pending = b""
        idle = 0.0
        while True:
            data = file.read(_BLOCK)
            stopping = False
            if not data and options.follow and idle >= check_interval:
                idle = 0.0
                if keep_following is not None and not await keep_following():
                    # Whatever was written before the container stopped is still read.
                    data, stopping = file.read(), True
            if data:
                idle = 0.0
                pending += data
                *lines, pending = pending.split(b"\n")
                chunk = b"".join(renderer.render(e) for e in map(parse_line, lines) if e is not None)
                if chunk:
                    yield chunk
                if renderer.exhausted or stopping:
                    return
                continue
            if not options.follow or stopping:
                return
            if _rotated(path, file):
                file.close()
                file = path.open("rb")
                pending = b""
                continue
            await asyncio.sleep(poll_interval)
            idle += poll_interval
    finally:
        file.close()


def _rotated(path: Path, file: BinaryIO) -> bool:
    """Was ``path`` replaced (rotation) or truncated since ``file`` was opened?"""
    try:
        current = path.stat()
    except FileNotFoundError:
        return False  # rotated away and not recreated yet: keep the old file for now
    opened = os.fstat(file.fileno())
    return (current.st_ino, current.st_dev) != (opened.st_ino, opened.st_dev) or current.st_size < file.tell()
