"""Object metadata rules shared by every resource: names, generated names, timestamps, uids.

The name patterns and messages are apimachinery's (``IsDNS1123Subdomain``/``IsDNS1123Label``),
because kubectl prints those messages as they are; ``validation`` applies them.
"""

from __future__ import annotations

import re
import secrets
import time
import uuid
from datetime import UTC, datetime
from typing import Any

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # apimachinery's: no vowels, no 0/1/3
GENERATED_SUFFIX = 5
MAX_GENERATE_NAME_BASE = 58

LABEL_MESSAGE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


def path_segment_errors(value: str) -> list[str]:
    """Names that cannot appear in a URL path segment, for every resource."""
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    for bad in ("/", "%"):
        if bad in value:
            return [f"may not contain '{bad}'"]
    return []


def generate_name(base: str) -> str:
    base = base[:MAX_GENERATE_NAME_BASE]
    return base + "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(GENERATED_SUFFIX))


_last_second = (-1, "")
"""The last second :func:`now` formatted, and how."""


def now() -> str:
    """A metav1.Time: RFC 3339 in UTC, whole seconds (formatted once a second)."""
    global _last_second
    second = int(time.time())
    if _last_second[0] != second:
        _last_second = (second, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second)))
    return _last_second[1]


def now_micro() -> str:
    """A metav1.MicroTime (managedFields and leases use these)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_uid() -> str:
    return str(uuid.uuid4())


def metadata(obj: dict[str, Any]) -> dict[str, Any]:
    """The object's metadata map, created if missing or not a map."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
        obj["metadata"] = meta
    return meta
