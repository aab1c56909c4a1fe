"""Kubernetes' format library: ``format.dns1123Label().validate(name)`` and ``format.named('uri')``.

``validate`` gives ``optional.none()`` for a valid string and otherwise the list of messages the
API server's own validation gives, so a rule reads
``!format.dns1123Label().validate(object.metadata.name).hasValue()``.
"""

from __future__ import annotations

import base64
import binascii
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Final

from k3py.api import validation
from k3py.api.cel.errors import CelEvalError
from k3py.api.cel.functions import define
from k3py.api.cel.library_time import parse_timestamp
from k3py.api.cel.types import STRING, list_of, opaque, optional_of
from k3py.api.cel.values import NONE, Optional
from k3py.api.selectors import label_key_errors, label_value_errors

FORMAT: Final = opaque("kubernetes.NamedFormat")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)


@dataclass(frozen=True, slots=True)
class Format:
    name: str
    check: Callable[[str], list[str]]
    cel_type = "kubernetes.NamedFormat"


def _prefix(check: Callable[[str], list[str]]) -> Callable[[str], list[str]]:
    """Upstream's ``prefix`` variants: a trailing dash is allowed (generateName)."""
    return lambda s: check(s[:-1] + "a" if s.endswith("-") else s)


def _uri(text: str) -> list[str]:
    parts = urllib.parse.urlsplit(text)
    if not (parts.scheme or text.startswith("/")) or " " in text:
        return [f'parse "{text}": invalid URI for request']
    return []


def _byte(text: str) -> list[str]:
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return ["invalid base64"]
    return []


def _date(text: str) -> list[str]:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return ["invalid date"]
    try:
        date.fromisoformat(text)
    except ValueError:
        return ["invalid date"]
    return []


def _datetime(text: str) -> list[str]:
    try:
        parse_timestamp(text)
    except CelEvalError:
        return ["invalid datetime"]
    return []


FORMATS: Final[dict[str, Callable[[str], list[str]]]] = {
    "dns1123Label": validation.dns_label_errors,
    "dns1123Subdomain": validation.dns_subdomain_errors,
    "dns1035Label": validation.dns1035_errors,
    "qualifiedName": label_key_errors,
    "dns1123LabelPrefix": _prefix(validation.dns_label_errors),
    "dns1123SubdomainPrefix": _prefix(validation.dns_subdomain_errors),
    "dns1035LabelPrefix": _prefix(validation.dns1035_errors),
    "labelValue": label_value_errors,
    "uri": _uri,
    "uuid": lambda s: [] if _UUID.fullmatch(s) else ["does not match the UUID format"],
    "byte": _byte,
    "date": _date,
    "datetime": _datetime,
}


def _validate(fmt: Format, text: str) -> Optional:
    errors = fmt.check(text)
    return Optional(errors, True) if errors else NONE


def _named(name: str) -> Optional:
    check = FORMATS.get(name)
    return NONE if check is None else Optional(Format(name, check), True)


def _define() -> None:
    for name, check in FORMATS.items():
        define(f"format.{name}", (), FORMAT, lambda f=Format(name, check): f)
    define("format.named", (STRING,), optional_of(FORMAT), _named)
    define("validate", (FORMAT, STRING), optional_of(list_of(STRING)), _validate, member=True)


_define()
