"""Request bodies that parse but cannot be stored as JSON are refused as bad requests."""

from __future__ import annotations

import pytest

from k3py.apiserver import errors
from k3py.apiserver.handlers import decode_body

YAML = "application/yaml"


def test_yaml_becomes_json_values() -> None:
    body = (
        b"spec:\n  2: a\n  true: b\n  big: 99999999999999999999\n  data: !!binary aGk=\n  when: 2024-01-02\n"
    )
    assert decode_body(body, YAML) == {
        "spec": {"2": "a", "true": "b", "big": 1e20, "data": "aGk=", "when": "2024-01-02"}
    }


@pytest.mark.parametrize("text", [b"x: .nan\n", b"x: .inf\n", b"x: " + b"[" * 400 + b"]" * 400 + b"\n"])
def test_what_json_cannot_hold_is_a_bad_request(text: bytes) -> None:
    with pytest.raises(errors.ApiError) as caught:
        decode_body(text, YAML)
    assert caught.value.code == 400


def test_json_nested_deeper_than_can_be_written_is_a_bad_request() -> None:
    with pytest.raises(errors.ApiError) as caught:
        decode_body(b'{"a":' + b"[" * 300 + b"]" * 300 + b"}", "application/json")
    assert caught.value.code == 400
