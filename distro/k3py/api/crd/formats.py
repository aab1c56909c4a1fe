"""String formats a CRD schema may name, checked as kube-openapi's ``strfmt`` registry checks them.

apiextensions-apiserver keeps only the formats every Kubernetes version supports (its
``supportedVersionedFormats``) and drops the others before validating, so an unknown format
validates nothing. The checks follow strfmt's regular expressions and Go's parsers (``net``,
``net/mail``, ``time``); the ISBN and credit-card checks are strfmt's patterns without their
checksums.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Callable
from datetime import date
from email.utils import parseaddr
from typing import Final
from urllib.parse import urlsplit

SUPPORTED: Final = frozenset(
    {
        "bsonobjectid", "uri", "email", "hostname", "ipv4", "ipv6", "cidr", "mac", "uuid", "uuid3",
        "uuid4", "uuid5", "isbn", "isbn10", "isbn13", "creditcard", "ssn", "hexcolor", "rgbcolor",
        "byte", "password", "date", "duration", "datetime",
    }
)  # fmt: skip


def supported(fmt: object) -> str:
    """The normalized format name when apiextensions keeps it, else ''."""
    if not isinstance(fmt, str) or not fmt:
        return ""
    normalized = fmt.replace("-", "")
    return normalized if normalized in SUPPORTED else ""


def valid(fmt: str, value: str) -> bool:
    check = _CHECKS.get(fmt)
    return True if check is None else check(value)


def _regex(pattern: str, flags: int = 0) -> Callable[[str], bool]:
    compiled = re.compile(pattern, flags)
    return lambda value: compiled.search(value) is not None


def _uri(value: str) -> bool:
    """Go's ``url.ParseRequestURI``: an absolute URI, or an absolute path."""
    if not value or any(ch.isspace() for ch in value):
        return False
    if value.startswith("/"):
        return True
    parts = urlsplit(value)
    return bool(parts.scheme) and re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", parts.scheme) is not None


def _email(value: str) -> bool:
    _, address = parseaddr(value)
    return "@" in address and not address.startswith("@") and not address.endswith("@")


def _ip(version: int) -> Callable[[str], bool]:
    def check(value: str) -> bool:
        try:
            return ipaddress.ip_address(value).version == version
        except ValueError:
            return version == 6 and _ipv4_mapped(value)

    return check


def _ipv4_mapped(value: str) -> bool:
    return value.lower().startswith("::ffff:") and _ip(4)(value[7:])


def _cidr(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return "/" in value


_MAC: Final = re.compile(
    r"^([0-9A-Fa-f]{2}([:-])(?:[0-9A-Fa-f]{2}\2){4,18}[0-9A-Fa-f]{2}|"
    r"[0-9A-Fa-f]{4}\.(?:[0-9A-Fa-f]{4}\.){1,8}[0-9A-Fa-f]{4})$"
)


def _byte(value: str) -> bool:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _date(value: str) -> bool:
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) is None:
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


_DATETIME: Final = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:[Zz]|[+-]\d{2}:?\d{2})?"
)


def _datetime(value: str) -> bool:
    """strfmt.ParseDateTime's layouts: RFC 3339 with or without seconds, fractions or zone."""
    match = _DATETIME.fullmatch(value)
    if match is None or not _date(match[1]):
        return False
    return int(match[2]) < 24 and int(match[3]) < 60 and int(match[4] or 0) < 60


_SCALA_DURATION: Final = re.compile(
    r"\d+\s*(ns|nano|nanos|nanosecond|nanoseconds|us|micro|micros|microsecond|microseconds|ms|milli|millis|"
    r"millisecond|milliseconds|s|sec|secs|second|seconds|m|min|mins|minute|minutes|h|hr|hour|hours|d|day|"
    r"days|w|wk|week|weeks)"
)


def _duration(value: str) -> bool:
    """Go's ``time.ParseDuration`` or strfmt's Scala-like ``3 days``."""
    if value in ("0", "+0", "-0"):
        return True
    body = value.lstrip("+-")
    go_like = body and re.fullmatch(r"((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+", body) is not None
    return bool(go_like) or _SCALA_DURATION.fullmatch(value) is not None


def _hostname(value: str) -> bool:
    if not value or len(value) > 255:
        return False
    labels = value.rstrip(".").split(".")
    return all(re.fullmatch(r"[^\W_]([\w-]{0,61}[^\W_])?", label) is not None for label in labels)


_CHECKS: Final[dict[str, Callable[[str], bool]]] = {
    "bsonobjectid": _regex(r"^[0-9a-fA-F]{24}$"),
    "uri": _uri,
    "email": _email,
    "hostname": _hostname,
    "ipv4": _ip(4),
    "ipv6": _ip(6),
    "cidr": _cidr,
    "mac": lambda value: _MAC.match(value) is not None,
    "uuid": _regex(
        r"^([0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}|[0-9a-f]{32})$", re.I
    ),
    "uuid3": _regex(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?3[0-9a-f]{3}-?[0-9a-f]{4}-?[0-9a-f]{12}$", re.I),
    "uuid4": _regex(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$", re.I),
    "uuid5": _regex(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?5[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$", re.I),
    "isbn": _regex(
        r"^(?:[0-9]{9}X|[0-9]{10}|(?:[0-9]{3}[- ]?)?[0-9]{1,5}[- ]?[0-9]+[- ]?[0-9]+[- ]?[0-9X])$"
    ),
    "isbn10": _regex(r"^(?:[0-9]{9}X|[0-9]{10})$"),
    "isbn13": _regex(r"^(?:[0-9]{13})$|^(?:97[89][- ]?[0-9]{1,5}[- ]?[0-9]+[- ]?[0-9]+[- ]?[0-9])$"),
    "creditcard": lambda value: (
        re.fullmatch(
            r"4[0-9]{12}(?:[0-9]{3})?|5[1-5][0-9]{14}|6(?:011|5[0-9][0-9])[0-9]{12}|3[47][0-9]{13}|"
            r"3(?:0[0-5]|[68][0-9])[0-9]{11}|(?:2131|1800|35\d{3})\d{11}",
            re.sub(r"\D", "", value),
        )
        is not None
    ),
    "ssn": _regex(r"^\d{3}[- ]?\d{2}[- ]?\d{4}$"),
    "hexcolor": _regex(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$"),
    "rgbcolor": _regex(
        r"^rgb\(\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*,\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*,"
        r"\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*\)$"
    ),
    "byte": _byte,
    "password": lambda value: True,
    "date": _date,
    "duration": _duration,
    "datetime": _datetime,
}
