"""The protocol buffers wire format's integers: base-128 varints and field keys.

Shared by the API's protobuf decoder, the OpenAPI v2 protobuf encoder and the CRI client, which
otherwise each carry their own message code (their schemas differ too much to share more).
"""

from __future__ import annotations

import functools
from typing import Final

MASK64: Final = (1 << 64) - 1
MAX_VARINT_BYTES: Final = 10


class WireFormatError(ValueError):
    """Bytes that are not a valid varint."""


def encode_varint(value: int) -> bytes:
    """``value`` as a varint; a negative one as ten bytes of two's complement, as Go writes int64s."""
    value &= MASK64
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


@functools.cache
def field_key(number: int, wire_type: int) -> bytes:
    """The varint that opens a field: its number and wire type."""
    return encode_varint(number << 3 | wire_type)


def decode_varint(
    data: memoryview | bytes, pos: int, error: type[ValueError] = WireFormatError
) -> tuple[int, int]:
    """The varint at ``pos`` (as an unsigned 64-bit value) and the position after it; ``error``
    (the caller's own error type) for data that ends inside it or a varint over ten bytes."""
    result = shift = 0
    while True:
        if pos >= len(data):
            raise error("unexpected end of data")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result & MASK64, pos
        shift += 7
        if shift >= 7 * MAX_VARINT_BYTES:
            raise error("integer overflow in a varint")
