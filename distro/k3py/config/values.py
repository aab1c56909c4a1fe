"""Parsers for setting values, one per kind of value a flag can take.

Each parser takes a raw value as it arrived (a string from the command line or the
environment, or a string, number, boolean or list from the YAML config file) and returns
the typed value, or raises ``ValueError`` with a message that quotes the value and says
what is wrong. The flag name and the source are added by ``config.build``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from k3py.config.model import DISABLEABLE, IPAddress, IPNetwork, SQLiteEndpoint

T = TypeVar("T")

_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN = re.compile(rf"^{_DNS_LABEL}(\.{_DNS_LABEL})*$")
_SAN_NAME = re.compile(rf"^(\*\.)?{_DNS_LABEL}(\.{_DNS_LABEL})*$", re.IGNORECASE)
_UNSUPPORTED_DATASTORES = ("etcd", "http", "https", "unix", "postgres", "postgresql", "mysql", "nats")


def _scalar(raw: object) -> str:
    """A scalar as text; YAML numbers are accepted where text is expected (e.g. tokens)."""
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise ValueError(f"expected a single value, got {_show(raw)}")
    return str(raw).strip()


def _show(raw: object) -> str:
    if isinstance(raw, str):
        return f'"{raw}"'
    if isinstance(raw, list | dict):
        return f"a YAML {'list' if isinstance(raw, list) else 'mapping'}"
    return repr(raw)


def text(raw: object) -> str:
    value = _scalar(raw)
    if not value or any(ch.isspace() for ch in value):
        raise ValueError(f"{_show(raw)} must be non-empty and contain no whitespace")
    return value


def switch(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
        return raw.strip().lower() == "true"
    raise ValueError(f"{_show(raw)} is not a boolean (use true or false)")


def path(raw: object) -> Path:
    value = _scalar(raw)
    if not value:
        raise ValueError("the path is empty")
    return Path(value).expanduser().absolute()


def port(raw: object) -> int:
    value = _scalar(raw)
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise ValueError(f"{_show(raw)} is not a port number (1-65535)")
    return int(value)


def whole_number(raw: object) -> int:
    value = _scalar(raw)
    if not value.isdigit():
        raise ValueError(f"{_show(raw)} is not a whole number (0 or more)")
    return int(value)


def seconds(raw: object) -> float:
    value = _scalar(raw)
    try:
        number = float(value.removesuffix("s"))
    except ValueError:
        number = -1.0
    if not 0 <= number < float("inf"):
        raise ValueError(f"{_show(raw)} is not a number of seconds (0 or more)")
    return number


def ip_address(raw: object) -> IPAddress:
    value = _scalar(raw)
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{_show(raw)} is not an IPv4 or IPv6 address") from None


def cidr(raw: object) -> IPNetwork:
    value = _scalar(raw)
    if "/" not in value:
        raise ValueError(f"{_show(raw)} is not a CIDR (expected ADDRESS/PREFIX, e.g. 10.42.0.0/16)")
    try:
        return ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"{_show(raw)} is not a valid CIDR: {exc}") from None


def file_mode(raw: object) -> int:
    """An octal permission mode as K3s takes it: ``"0644"``, ``"644"`` or ``0o644``."""
    value = _scalar(raw).lower().removeprefix("0o")
    if not value or any(ch not in "01234567" for ch in value) or int(value, 8) > 0o777:
        raise ValueError(f"{_show(raw)} is not an octal file mode between 0000 and 0777 (e.g. 0644)")
    return int(value, 8)


def node_name(raw: object) -> str:
    value = _scalar(raw)
    if len(value) > 253 or not _DNS_SUBDOMAIN.match(value):
        raise ValueError(
            f"{_show(raw)} is not a valid node name "
            "(lowercase letters, digits, '-' and '.', at most 253 characters)"
        )
    return value


def subject_alt_name(raw: object) -> str:
    value = _scalar(raw)
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    if len(value) > 253 or not _SAN_NAME.match(value):
        raise ValueError(f"{_show(raw)} is neither an IP address nor a DNS name")
    return value.lower()


_LABEL_NAME = re.compile(
    r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


def node_label(raw: object) -> tuple[str, str]:
    """``key=value`` (value may be empty), with Kubernetes label syntax."""
    value = _scalar(raw)
    key, sep, label = value.partition("=")
    if not sep or not _LABEL_NAME.match(key) or not _LABEL_VALUE.match(label):
        raise ValueError(f"{_show(raw)} is not a label: expected key=value with Kubernetes label syntax")
    return key, label


def disable_item(raw: object) -> str:
    value = _scalar(raw)
    if value not in DISABLEABLE:
        raise ValueError(
            f"{_show(raw)} is not a component that can be disabled (one of: {', '.join(DISABLEABLE)})"
        )
    return value


def datastore_endpoint(raw: object) -> SQLiteEndpoint:
    """``sqlite://PATH`` or a plain file path; other schemes are recognised and refused."""
    value = _scalar(raw)
    scheme, sep, rest = value.partition("://")
    if not sep:
        scheme, rest = "sqlite", value
    if scheme in _UNSUPPORTED_DATASTORES:
        raise ValueError(f"{scheme}:// datastores are not supported yet (only sqlite:// for now)")
    if scheme != "sqlite":
        raise ValueError(f"unknown datastore scheme {scheme!r} in {_show(raw)} (expected sqlite://PATH)")
    if "?" in rest:
        raise ValueError(f"{_show(raw)}: sqlite:// endpoints take no query parameters")
    if not rest:
        raise ValueError(f"{_show(raw)} names no database file (expected sqlite:///path/to/state.db)")
    return SQLiteEndpoint(path=Path(rest).expanduser().absolute())


def https_url(raw: object) -> str:
    value = _scalar(raw)
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"{_show(raw)} is not an https URL (e.g. https://10.0.0.1:6443)")
    try:
        parts.port  # noqa: B018  (validates the port)
    except ValueError:
        raise ValueError(f"{_show(raw)} has an invalid port") from None
    return value.rstrip("/")


def list_of(item: Callable[[object], T], *, unique: bool = True) -> Callable[[object], tuple[T, ...]]:
    """A parser for list flags: a YAML list, repeated flags, or comma-separated text.

    Repeats are dropped (the first kept) unless ``unique`` is false: then every entry stays, in
    order, for flags where a later entry overrides an earlier one.
    """

    def parse(raw: object) -> tuple[T, ...]:
        items: list[object]
        if isinstance(raw, list | tuple):
            items = [part for entry in raw for part in _split(entry)]
        else:
            items = list(_split(raw))
        parsed = [item(entry) for entry in items]
        return tuple(dict.fromkeys(parsed)) if unique else tuple(parsed)

    return parse


def _split(raw: object) -> list[object]:
    if isinstance(raw, str):
        return [part.strip() for part in raw.split(",") if part.strip()]
    return [raw]


RUNTIME_CONFIG_MATCHERS = ("api/all", "api/ga", "api/beta", "api/alpha")
_GO_TRUE = ("1", "t", "T", "true", "TRUE", "True")
_GO_FALSE = ("0", "f", "F", "false", "FALSE", "False")


def runtime_config_item(raw: object) -> tuple[str, bool]:
    """One ``--runtime-config`` entry, ``KEY[=BOOL]``, read as kube-apiserver reads it.

    A version or resource key with no value means true; the ``api/...`` keys need an explicit
    ``true`` or ``false``; values are Go booleans (``1``, ``t``, ``True``, ``0``, ``f``...).
    Whether the key names an API is the API manifest's business, checked when the server starts.
    """
    key, sep, value = _scalar(raw).partition("=")
    key, value = key.strip(), value.strip()
    if not key or " " in key:
        raise ValueError(f"{_show(raw)} is not KEY[=BOOL] (e.g. batch/v1=false, api/alpha=true)")
    if key in RUNTIME_CONFIG_MATCHERS and value not in ("true", "false"):
        raise ValueError(f"{_show(raw)}: {key} needs =true or =false")
    if not sep or value == "" or value in _GO_TRUE:
        return key, True
    if value in _GO_FALSE:
        return key, False
    raise ValueError(f"{_show(raw)}: {value!r} is not a boolean")
