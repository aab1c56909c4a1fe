"""Reading CRI log files as the kubelet's /containerLogs does (``k3py.agent.logs``)."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from k3py.agent.logs import (
    LogOptionError,
    LogOptions,
    format_timestamp,
    parse_line,
    parse_timestamp,
    read_log,
    tail_offset,
)

LOG = (
    b"2026-11-27T12:00:01.000000001Z stdout F one\n"
    b"2026-11-27T12:00:02.5Z stderr F two\n"
    b"2026-11-27T12:00:03.000000003Z stdout P thr\n"
    b"2026-11-27T12:00:03.100000000Z stdout P e\n"
    b"2026-11-27T12:00:03.200000000Z stdout F e\n"
    b"2026-11-27T12:00:04.000000004+01:00 stdout F four\n"
)


async def collect(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    path = tmp_path / "app" / "0.log"
    path.parent.mkdir()
    path.write_bytes(LOG)
    return path


def test_parse_line_reads_time_stream_tag_and_text() -> None:
    entry = parse_line(b"2026-11-27T12:00:03.000000003Z stderr P  two spaces")
    assert entry is not None
    assert (entry.stream, entry.partial, entry.text) == ("stderr", True, b" two spaces")
    assert entry.time == datetime(2026, 11, 27, 12, 0, 3, tzinfo=UTC)
    assert parse_line(b"2026-11-27T12:00:03Z stdout F") is not None  # an empty line
    for bad in (
        b"",
        b"garbage",
        b"2026-11-27T12:00:03Z stdin F x",
        b"yesterday stdout F x",
        b"2026-11-27T12:00:03Z stdout X x",
    ):
        assert parse_line(bad) is None


def test_timestamps_keep_nanoseconds_and_zone() -> None:
    assert format_timestamp("2026-11-27T12:00:02.5Z") == "2026-11-27T12:00:02.500000000Z"
    assert format_timestamp("2026-11-27T12:00:02Z") == "2026-11-27T12:00:02.000000000Z"
    assert format_timestamp("2026-11-27T12:00:04.000000004+01:00") == "2026-11-27T12:00:04.000000004+01:00"
    assert parse_timestamp("2026-11-27T13:00:00+01:00") == datetime(2026, 11, 27, 12, tzinfo=UTC)
    assert parse_timestamp("2026-11-27 13:00:00") is None


async def test_whole_log_joins_partial_lines_and_both_streams(log_file: Path) -> None:
    assert await collect(read_log(log_file, LogOptions())) == b"one\ntwo\nthree\nfour\n"


async def test_timestamps_prefix_each_line_with_its_first_part(log_file: Path) -> None:
    text = await collect(read_log(log_file, LogOptions(timestamps=True)))
    assert text.decode().splitlines() == [
        "2026-11-27T12:00:01.000000001Z one",
        "2026-11-27T12:00:02.500000000Z two",
        "2026-11-27T12:00:03.000000003Z three",
        "2026-11-27T12:00:04.000000004+01:00 four",
    ]


async def test_tail_counts_file_lines_from_the_end(log_file: Path) -> None:
    assert await collect(read_log(log_file, LogOptions(tail_lines=1))) == b"four\n"
    assert await collect(read_log(log_file, LogOptions(tail_lines=0))) == b""
    assert await collect(read_log(log_file, LogOptions(tail_lines=100))) == b"one\ntwo\nthree\nfour\n"


def test_tail_offset_across_blocks() -> None:
    lines = [f"2026-11-27T12:00:00Z stdout F line {i:06d}\n".encode() for i in range(20000)]
    data = b"".join(lines)
    file = io.BytesIO(data)
    assert data[tail_offset(file, 3) :] == b"".join(lines[-3:])
    assert tail_offset(file, 20000) == 0
    assert tail_offset(file, 5) == len(data) - sum(len(x) for x in lines[-5:])


async def test_since_skips_older_entries(log_file: Path) -> None:
    since = datetime(2026, 11, 27, 12, 0, 2, tzinfo=UTC)
    # 12:00:04+01:00 is 11:00:04Z: older, skipped.
    assert await collect(read_log(log_file, LogOptions(since=since))) == b"two\nthree\n"


async def test_limit_bytes_cuts_the_output(log_file: Path) -> None:
    assert await collect(read_log(log_file, LogOptions(limit_bytes=6))) == b"one\ntw"


async def test_stream_selection(log_file: Path) -> None:
    only_err = LogOptions(streams=frozenset({"stderr"}))
    assert await collect(read_log(log_file, only_err)) == b"two\n"


def test_options_from_query() -> None:
    now = datetime(2026, 11, 27, 12, tzinfo=UTC)
    options = LogOptions.from_query(
        {"follow": "true", "tailLines": "5", "sinceSeconds": "60", "timestamps": "1", "limitBytes": "10"}, now
    )
    assert options == LogOptions(
        follow=True, tail_lines=5, since=now - timedelta(seconds=60), timestamps=True, limit_bytes=10
    )
    assert LogOptions.from_query({"sinceTime": "2026-11-27T11:00:00Z"}, now).since == datetime(
        2026, 11, 27, 11, tzinfo=UTC
    )
    bad = [
        {"tailLines": "-1"},
        {"tailLines": "x"},
        {"limitBytes": "0"},
        {"sinceSeconds": "0"},
        {"sinceTime": "noon"},
        {"sinceSeconds": "1", "sinceTime": "2026-11-27T11:00:00Z"},
        {"stream": "Stdin"},
        {"stream": "Stdout", "tailLines": "1"},
    ]
    for query in bad:
        with pytest.raises(LogOptionError):
            LogOptions.from_query(query, now)


async def test_follow_reads_appended_lines_and_ends_when_the_container_stops(log_file: Path) -> None:
    running = True

    async def keep_following() -> bool:
        return running

    chunks = read_log(
        log_file,
        LogOptions(follow=True, tail_lines=1),
        keep_following=keep_following,
        poll_interval=0.01,
        check_interval=0.05,
    )
    assert await anext(chunks) == b"four\n"
    with log_file.open("ab") as out:
        out.write(b"2026-11-27T12:00:05Z stdout P fi")  # an incomplete line is not shown yet
        out.flush()
        nxt = asyncio.ensure_future(anext(chunks))
        await asyncio.sleep(0.1)
        assert not nxt.done()
        out.write(b"ve\n2026-11-27T12:00:05Z stdout F !\n")
    assert await asyncio.wait_for(nxt, 5) == b"five!\n"
    with log_file.open("ab") as out:
        out.write(b"2026-11-27T12:00:06Z stdout F last words\n")
    running = False
    rest = await asyncio.wait_for(collect(chunks), 5)
    assert rest == b"last words\n"


def rotate(path: Path, first: bytes) -> None:
    """What the runtime does: rename the file away, start a new one at the same path."""
    path.rename(path.with_suffix(".log.20261127-120000"))
    path.write_bytes(first)


async def test_follow_reopens_a_rotated_file(log_file: Path) -> None:
    chunks = read_log(log_file, LogOptions(follow=True, tail_lines=0), poll_interval=0.01)
    pending = asyncio.ensure_future(anext(chunks))
    await asyncio.sleep(0.05)
    rotate(log_file, b"2026-11-27T12:00:07Z stdout F after rotation\n")
    assert await asyncio.wait_for(pending, 5) == b"after rotation\n"
    await chunks.aclose()


async def test_a_missing_file_is_an_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        await collect(read_log(tmp_path / "none.log", LogOptions()))
