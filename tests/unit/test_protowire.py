from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from k3py.util.protowire import MASK64, WireFormatError, decode_varint, encode_varint, field_key


@given(st.integers(min_value=-(2**63), max_value=2**64 - 1), st.binary(max_size=4))
def test_varints_round_trip_and_leave_what_follows(value: int, rest: bytes) -> None:
    encoded = encode_varint(value)
    assert len(encoded) <= 10
    assert decode_varint(memoryview(encoded + rest), 0) == (value & MASK64, len(encoded))


def test_known_encodings() -> None:
    assert encode_varint(0) == b"\x00"
    assert encode_varint(300) == b"\xac\x02"
    assert encode_varint(-1) == b"\xff" * 9 + b"\x01"  # int64 -1, as Go writes it
    assert field_key(1, 2) == b"\x0a"
    assert field_key(16, 0) == b"\x80\x01"


class CallerError(ValueError):
    pass


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "unexpected end of data"),
        (b"\x80\x80", "unexpected end of data"),
        (b"\xff" * 10 + b"\x01", "integer overflow in a varint"),
    ],
)
def test_bad_varints_raise_the_callers_error(data: bytes, message: str) -> None:
    with pytest.raises(CallerError, match=message):
        decode_varint(data, 0, CallerError)
    with pytest.raises(WireFormatError, match=message):
        decode_varint(data, 0)
