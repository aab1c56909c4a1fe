"""Timestamps and durations: ``timestamp()``, ``duration()``, their arithmetic and accessors.

Both are kept as integer nanoseconds, so arithmetic is exact and overflow is checked the way
cel-go checks it (durations within int64 nanoseconds, timestamps within years 1 to 9999).
``duration()`` reads Go's ``time.ParseDuration`` syntax (``1h30m``, ``-1.5s``, ``300ms``),
``timestamp()`` RFC 3339. Accessors (``getHours()`` ...) take an optional time zone: an IANA
name or a fixed offset such as ``-08:00``; without one they use UTC, as Kubernetes configures.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from k3py.api.cel.errors import CelEvalError
from k3py.api.cel.functions import define
from k3py.api.cel.types import DURATION, INT, STRING, TIMESTAMP
from k3py.api.cel.values import INT_MAX, INT_MIN, Duration, Timestamp

SECOND: Final = 1_000_000_000
_UNITS: Final = {
    "ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000,
    "s": SECOND, "m": 60 * SECOND, "h": 3600 * SECOND,
}  # fmt: skip
_PART = re.compile(r"(\d*)(?:\.(\d*))?(ns|us|µs|μs|ms|s|m|h)")
_MIN_SECONDS: Final = -62135596800  # 0001-01-01T00:00:00Z
_MAX_SECONDS: Final = 253402300799  # 9999-12-31T23:59:59Z
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})"
)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def parse_duration(text: str) -> Duration:
    """Go's ``time.ParseDuration``."""
    rest, sign = text, 1
    if rest[:1] in ("-", "+"):
        sign = -1 if rest[0] == "-" else 1
        rest = rest[1:]
    if rest == "0":
        return Duration(0)
    total = 0
    pos = 0
    while pos < len(rest):
        part = _PART.match(rest, pos)
        if part is None or not (part.group(1) or part.group(2)):
            raise CelEvalError(f'time: invalid duration "{text}"')
        whole, fraction, unit = part.group(1) or "0", part.group(2) or "", part.group(3)
        scale = _UNITS[unit]
        total += int(whole) * scale
        if fraction:
            total += int(fraction) * scale // 10 ** len(fraction)
        pos = part.end()
    if not rest:
        raise CelEvalError(f'time: invalid duration "{text}"')
    return check_duration(sign * total)


def check_duration(nanos: int) -> Duration:
    if not INT_MIN <= nanos <= INT_MAX:
        raise CelEvalError("duration overflow")
    return Duration(nanos)


def check_timestamp(nanos: int) -> Timestamp:
    if not _MIN_SECONDS * SECOND <= nanos <= _MAX_SECONDS * SECOND + SECOND - 1:
        raise CelEvalError("timestamp overflow")
    return Timestamp(nanos)


def parse_timestamp(text: str) -> Timestamp:
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise CelEvalError(f'parsing time "{text}" as "2006-01-02T15:04:05Z07:00": cannot parse')
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    zone = match.group(8)
    offset = 0
    if zone not in ("Z", "z"):
        offset = (int(zone[1:3]) * 60 + int(zone[4:6])) * (1 if zone[0] == "+" else -1)
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError as err:
        raise CelEvalError(f'parsing time "{text}": {err}') from None
    seconds = int((moment - _EPOCH).total_seconds()) - offset * 60
    fraction = match.group(7) or ""
    nanos = int(fraction.ljust(9, "0")) if fraction else 0
    return check_timestamp(seconds * SECOND + nanos)


def _zone(name: str) -> tzinfo:
    fixed = re.fullmatch(r"([+-])?(\d{1,2}):(\d{2})", name)
    if fixed:
        minutes = int(fixed.group(2)) * 60 + int(fixed.group(3))
        return timezone(timedelta(minutes=-minutes if fixed.group(1) == "-" else minutes))
    if name in ("UTC", "utc", ""):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CelEvalError(f"unknown time zone {name}") from None


def _local(ts: Timestamp, zone: str = "UTC") -> datetime:
    seconds = ts.nanos // SECOND
    return (_EPOCH + timedelta(seconds=seconds)).astimezone(_zone(zone))


_ACCESSORS: Final = {
    "getFullYear": lambda d, ns: d.year,
    "getMonth": lambda d, ns: d.month - 1,
    "getDate": lambda d, ns: d.day,
    "getDayOfMonth": lambda d, ns: d.day - 1,
    "getDayOfYear": lambda d, ns: d.timetuple().tm_yday - 1,
    "getDayOfWeek": lambda d, ns: (d.weekday() + 1) % 7,
    "getHours": lambda d, ns: d.hour,
    "getMinutes": lambda d, ns: d.minute,
    "getSeconds": lambda d, ns: d.second,
    "getMilliseconds": lambda d, ns: (ns % SECOND) // 1_000_000,
}
_DURATION_ACCESSORS: Final = {
    "getHours": 3600 * SECOND,
    "getMinutes": 60 * SECOND,
    "getSeconds": SECOND,
    "getMilliseconds": 1_000_000,
}


def _truncated(nanos: int, unit: int) -> int:
    quotient = abs(nanos) // unit
    return -quotient if nanos < 0 else quotient


def _define_accessors() -> None:
    for name, accessor in _ACCESSORS.items():
        define(name, (TIMESTAMP,), INT, lambda t, f=accessor: f(_local(t), t.nanos), member=True)
        define(name, (TIMESTAMP, STRING), INT, lambda t, z, f=accessor: f(_local(t, z), t.nanos), member=True)
    for name, unit in _DURATION_ACCESSORS.items():  # totals, as Go's Duration.Hours() etc.
        define(name, (DURATION,), INT, lambda d, u=unit: _truncated(d.nanos, u), member=True)


def _define() -> None:
    define("duration", (STRING,), DURATION, parse_duration)
    define("duration", (DURATION,), DURATION, lambda d: d)
    define("timestamp", (STRING,), TIMESTAMP, parse_timestamp)
    define("timestamp", (TIMESTAMP,), TIMESTAMP, lambda t: t)
    define("timestamp", (INT,), TIMESTAMP, lambda s: check_timestamp(s * SECOND))
    define("int", (TIMESTAMP,), INT, lambda t: t.nanos // SECOND)
    define("int", (DURATION,), INT, lambda d: d.nanos)
    define("string", (TIMESTAMP,), STRING, str)
    define("string", (DURATION,), STRING, str)
    define("_+_", (TIMESTAMP, DURATION), TIMESTAMP, lambda t, d: check_timestamp(t.nanos + d.nanos))
    define("_+_", (DURATION, TIMESTAMP), TIMESTAMP, lambda d, t: check_timestamp(t.nanos + d.nanos))
    define("_+_", (DURATION, DURATION), DURATION, lambda a, b: check_duration(a.nanos + b.nanos))
    define("_-_", (TIMESTAMP, TIMESTAMP), DURATION, lambda a, b: check_duration(a.nanos - b.nanos))
    define("_-_", (TIMESTAMP, DURATION), TIMESTAMP, lambda t, d: check_timestamp(t.nanos - d.nanos))
    define("_-_", (DURATION, DURATION), DURATION, lambda a, b: check_duration(a.nanos - b.nanos))
    define("-_", (DURATION,), DURATION, lambda d: check_duration(-d.nanos))
    _define_accessors()


_define()
