"""JWS compact serialization for service-account tokens, and the error a bad token raises.

Decoding is strict (unpadded base64url with exactly one encoding per value, JSON objects
without NaN or Infinity) so that a token cannot be re-encoded into a different string that
still verifies.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
from collections.abc import Mapping


class TokenErrorReason(enum.StrEnum):
    """Why a token was refused. MALFORMED and WRONG_ISSUER mean "not one of ours" upstream:
    its authenticator passes such a token on to the next one instead of rejecting it."""

    MALFORMED = "malformed"
    WRONG_ISSUER = "wrong issuer"
    UNSUPPORTED_ALGORITHM = "unsupported algorithm"
    BAD_SIGNATURE = "bad signature"
    WRONG_AUDIENCE = "wrong audience"
    EXPIRED = "expired"
    NOT_YET_VALID = "not yet valid"


class TokenError(Exception):
    """A token that does not verify; ``reason`` says which check failed."""

    def __init__(self, reason: TokenErrorReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def malformed(detail: str) -> TokenError:
    return TokenError(TokenErrorReason.MALFORMED, f"malformed service account token: {detail}")


def split(token: str) -> tuple[dict[str, object], dict[str, object], bytes, bytes]:
    """(header, payload, signing input, signature) of a compact JWS; MALFORMED otherwise."""
    if not isinstance(token, str) or not token.isascii():
        raise malformed("not a JWT")
    parts = token.split(".")
    if len(parts) != 3:
        raise malformed("a JWT has three dot-separated parts")
    header = json_object(b64decode(parts[0], "header"), "header")
    payload = json_object(b64decode(parts[1], "payload"), "payload")
    signature = b64decode(parts[2], "signature")
    return header, payload, f"{parts[0]}.{parts[1]}".encode("ascii"), signature


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64decode(text: str, what: str) -> bytes:
    """Strict unpadded base64url: one encoding per value, so a token cannot be altered unnoticed."""
    try:
        data = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        data = None
    if data is None or "=" in text or b64(data) != text:
        raise malformed(f"the {what} is not base64url")
    return data


def b64_uint(value: int) -> str:
    return b64(value.to_bytes((value.bit_length() + 7) // 8 or 1, "big"))


def json_bytes(value: Mapping[str, object]) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode("utf-8")


def json_object(data: bytes, what: str) -> dict[str, object]:
    try:
        value = json.loads(data, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise malformed(f"the {what} is not JSON") from None
    if not isinstance(value, dict):
        raise malformed(f"the {what} is not a JSON object")
    return value


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")
