"""Join tokens in K3s's format and the server token file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from k3py.pki import PkiError, jointoken

CA = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
HASH = hashlib.sha256(CA).hexdigest()


@pytest.mark.parametrize(
    ("text", "credential", "ca_hash", "server_secret"),
    [
        (f"K10{HASH}::server:s3cret", "server:s3cret", HASH, "s3cret"),
        (f"K10{HASH}::abcdef.0123456789abcdef", "abcdef.0123456789abcdef", HASH, None),
        ("s3cret", "s3cret", "", "s3cret"),
        ("server:s3cret", "server:s3cret", "", "s3cret"),
        ("abcdef.0123456789abcdef", "abcdef.0123456789abcdef", "", None),
        ("node:password", "node:password", "", None),
    ],
)
def test_parse(text: str, credential: str, ca_hash: str, server_secret: str | None) -> None:
    token = jointoken.parse(text)
    assert (token.credential, token.ca_hash, token.server_secret) == (credential, ca_hash, server_secret)
    assert str(token) == text


@pytest.mark.parametrize("text", ["", "   ", "K10abc::server:x", "K10" + "g" * 64 + "::x", "a b", "x::y"])
def test_what_is_not_a_token(text: str) -> None:
    with pytest.raises(jointoken.TokenFormatError):
        jointoken.parse(text)


def test_the_ca_check() -> None:
    token = jointoken.parse(f"K10{HASH}::server:x")
    assert token.matches_ca(CA)
    assert not token.matches_ca(CA + b"\n")


def test_the_server_token_is_made_once_and_kept(tmp_path: Path) -> None:
    first = jointoken.ensure_server_token(tmp_path, CA, None)
    assert first.ca_hash == HASH and first.server_secret
    assert (tmp_path / "token").read_text() == (tmp_path / "node-token").read_text() == f"{first}\n"
    assert (tmp_path / "token").stat().st_mode & 0o777 == 0o600
    assert jointoken.ensure_server_token(tmp_path, CA, None) == first
    assert jointoken.ensure_server_token(tmp_path, CA, first.server_secret) == first
    with pytest.raises(PkiError, match="differs from the token this server was set up with"):
        jointoken.ensure_server_token(tmp_path, CA, "something-else")


def test_a_given_token_becomes_the_server_token(tmp_path: Path) -> None:
    token = jointoken.ensure_server_token(tmp_path, CA, "my-secret")
    assert str(token) == f"K10{HASH}::server:my-secret"
    with pytest.raises(PkiError, match="must be a server token"):
        jointoken.ensure_server_token(tmp_path / "other", CA, "abcdef.0123456789abcdef")


def test_a_damaged_token_file_is_an_error_and_kept(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("K10zz::broken\n")
    with pytest.raises(PkiError, match="not a join token"):
        jointoken.ensure_server_token(tmp_path, CA, None)
    assert (tmp_path / "token").read_text() == "K10zz::broken\n"
