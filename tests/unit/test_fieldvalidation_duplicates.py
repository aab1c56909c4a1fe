from __future__ import annotations

from k3py.apiserver.fieldvalidation import yaml_duplicates


def test_repeated_keys_are_reported_with_their_line_as_go_yaml_does() -> None:
    text = b"\napiVersion: v1\nkind: Foo\nmetadata:\n  name: x\nspec:\n  u: u\n  foo: 1\n  foo: 2\n"
    assert yaml_duplicates(text) == ['line 9: key "foo" already set in map']
    nested = b"a:\n  - b: 1\n    b: 2\n  - b: 1\n3: x\n3: y\n"
    assert yaml_duplicates(nested) == [
        'line 3: key "b" already set in map',
        "line 6: key 3 already set in map",
    ]
    assert yaml_duplicates(b"a: 1\nb: 2\n") == []
    assert yaml_duplicates(b"a: [unclosed\n") == []


def test_repeated_json_keys_are_named_by_their_path() -> None:
    from k3py.apiserver.fieldvalidation import duplicate_fields

    raw = b'{"a": 1, "spec": {"replicas": 1, "replicas": 2, "c": [{"n": 1}, {"n": 1, "n": 2}]}, "a": 2}'
    assert duplicate_fields(raw) == ["a", "spec.replicas", "spec.c[1].n"]
    assert duplicate_fields(b"{not json") == []
