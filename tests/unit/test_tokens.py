"""Bootstrap-token expirations and secret comparison: failing closed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from k3py.apiserver.request import request_info
from k3py.apiserver.tokens import _same, expired

NOW = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expiration", "is_expired"),
    [
        ("", False),
        ("2031-01-01T00:00:00Z", False),
        ("2029-12-31T23:59:59Z", True),
        ("2031-01-01T00:00:00+02:00", False),
        ("20310101T000000Z", True),  # not RFC 3339: upstream treats it as expired
        ("2031-01-01", True),
        ("2031-01-01T00:00:00", True),  # no zone
        ("tomorrow", True),
    ],
)
def test_expiration(expiration: str, is_expired: bool) -> None:
    assert expired(expiration, NOW) is is_expired


def test_secrets_of_any_characters_compare_without_error() -> None:
    assert _same("s3cret", "s3cret")
    assert not _same("s3cret", "ü")
    assert not _same("ü", "\udcff")


def test_an_empty_namespace_segment_is_not_dropped() -> None:
    info = request_info("GET", "/api/v1/namespaces//secrets", {})
    assert (info.verb, info.namespace, info.resource, info.name) == ("list", "", "secrets", "")
