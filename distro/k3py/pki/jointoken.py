"""Join tokens in K3s's format, and the server's own token file.

A full token carries the SHA-256 of the cluster CA bundle, so that a joining node can check
the server it reached before trusting it::

    K10<sha256 hex of the CA bundle>::server:<secret>      the server token
    K10<sha256 hex of the CA bundle>::<id>.<secret>        a bootstrap token

A bare secret (``<secret>`` or ``<id>.<secret>``) is accepted too, as K3s does, but then the
CA cannot be checked. The server keeps its token in ``<data-dir>/server/token`` (and the same
in ``node-token``, K3s's name for what agents are given), created at the first start from
``--token`` or a random secret; a later ``--token`` that disagrees with the file is an error,
since the nodes in the field were given the file's.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from k3py.pki.errors import PkiError
from k3py.pki.files import KEY_MODE, ensure_dir, read_optional, write_atomic

PREFIX = "K10"
SERVER_USER = "server"
TOKEN_FILES = ("token", "node-token")
_FULL = re.compile(r"^K10([0-9a-f]{64})::(.+)$")


class TokenFormatError(ValueError):
    """A token that is not a join token."""


@dataclass(frozen=True)
class JoinToken:
    credential: str
    """What authenticates: ``server:<secret>`` or ``<id>.<secret>`` (or a bare secret)."""
    ca_hash: str = ""
    """The SHA-256 (hex) of the CA bundle the token was issued for; empty for a bare token."""

    def __str__(self) -> str:
        return f"{PREFIX}{self.ca_hash}::{self.credential}" if self.ca_hash else self.credential

    @property
    def server_secret(self) -> str | None:
        """The secret of a server token (``server:<secret>`` or a bare secret); None otherwise."""
        user, sep, secret = self.credential.partition(":")
        if sep:
            return secret if user == SERVER_USER else None
        return None if "." in self.credential else self.credential

    def matches_ca(self, ca_bundle: bytes) -> bool:
        return hmac.compare_digest(self.ca_hash, ca_hash(ca_bundle))


def ca_hash(ca_bundle: bytes) -> str:
    return hashlib.sha256(ca_bundle).hexdigest()


def parse(text: str) -> JoinToken:
    """A join token from its text; :class:`TokenFormatError` for anything else."""
    text = text.strip()
    if not text:
        raise TokenFormatError("the token is empty")
    if text.startswith(PREFIX) and "::" in text:
        match = _FULL.match(text)
        if match is None:
            raise TokenFormatError("a K10 token is K10<64 hex digits of the CA hash>::<credential>")
        return JoinToken(match.group(2), match.group(1))
    if any(c.isspace() for c in text) or "::" in text:
        raise TokenFormatError("the token contains spaces or '::' outside the K10 format")
    return JoinToken(text)


def ensure_server_token(server_dir: Path, ca_bundle: bytes, given: str | None) -> JoinToken:
    """The server token: read from ``server_dir/token``, or created there (and in node-token)."""
    path = server_dir / TOKEN_FILES[0]
    existing = read_optional(path)
    wanted_secret: str | None = None
    if given:
        try:
            wanted_secret = parse(given).server_secret
        except TokenFormatError as exc:
            raise PkiError(path, f"--token: {exc}") from None
        if wanted_secret is None:
            raise PkiError(path, "--token must be a server token (server:<secret> or a bare secret)")
    if existing is not None:
        try:
            token = parse(existing.decode())
        except (TokenFormatError, UnicodeDecodeError) as exc:
            raise PkiError(path, f"not a join token: {exc}") from None
        secret = token.server_secret
        if secret is None:
            raise PkiError(path, "does not hold a server token")
        if wanted_secret is not None and not hmac.compare_digest(secret, wanted_secret):
            raise PkiError(path, "--token differs from the token this server was set up with")
        if token.ca_hash != ca_hash(ca_bundle):
            token = JoinToken(token.credential, ca_hash(ca_bundle))
            _write(server_dir, token)
        return token
    token = JoinToken(f"{SERVER_USER}:{wanted_secret or secrets.token_hex(16)}", ca_hash(ca_bundle))
    _write(server_dir, token)
    return token


def _write(server_dir: Path, token: JoinToken) -> None:
    ensure_dir(server_dir, mode=0o700)
    for name in TOKEN_FILES:
        write_atomic(server_dir / name, f"{token}\n".encode(), KEY_MODE)
