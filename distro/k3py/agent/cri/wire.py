"""A proto3 codec driven by data: messages are layout strings, values are plain dicts.

The CRI and containerd's own services are proto3 over gRPC. k3py does not ship generated code
or the protobuf runtime; a :class:`Schema` holds one layout string per message instead::

    "PortMapping": "protocol=1:enum container_port=2:int32 host_port=3:int32 host_ip=4"

Each token is ``name=number[:type]``; the type defaults to ``str``. Types: ``str``, ``bytes``,
``bool``, ``int32``, ``int64``, ``uint32``, ``uint64``, ``enum`` (int32 on the wire), ``double``,
``float``, a message name, ``*T`` for ``repeated T`` and ``{K,V}`` for ``map<K, V>``.

Encoding follows Go's ``proto.Marshal``: fields in number order, proto3 zero values left out
(a message field that is set is written even when empty), repeated varints packed. A key the
layout does not know is an error, so a misspelt field never vanishes silently. Decoding fills
every field: scalars with their zero value, messages with ``None``, repeated fields with ``[]``
and maps with ``{}``; unknown field numbers are skipped, as proto3 requires.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from k3py.util.protowire import decode_varint, encode_varint, field_key

VARINT: Final = 0
FIXED64: Final = 1
LEN: Final = 2
FIXED32: Final = 5

_WIRE_TYPES: Final = {
    "str": LEN,
    "bytes": LEN,
    "bool": VARINT,
    "int32": VARINT,
    "int64": VARINT,
    "uint32": VARINT,
    "uint64": VARINT,
    "enum": VARINT,
    "double": FIXED64,
    "float": FIXED32,
}
_ZEROS: Final[dict[str, Any]] = {"str": "", "bytes": b"", "bool": False, "double": 0.0, "float": 0.0}
_MAP_KEYS: Final = {"str", "bool", "int32", "int64", "uint32", "uint64"}

Message = dict[str, Any]


class WireError(ValueError):
    """A message cannot be encoded as given, or bytes are not a valid message."""


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a layout: ``map`` is ``(key type, value type)`` for a map field."""

    name: str
    number: int
    type: str
    repeated: bool = False
    map: tuple[str, str] | None = None

    @property
    def packed(self) -> bool:
        return self.repeated and _WIRE_TYPES.get(self.type) in (VARINT, FIXED64, FIXED32)


class Schema:
    """A set of message layouts that refer to one another by name."""

    def __init__(self, layouts: Mapping[str, str]) -> None:
        self.fields: dict[str, tuple[Field, ...]] = {
            name: _parse(name, layout) for name, layout in layouts.items()
        }
        self._by_number = {name: {f.number: f for f in fields} for name, fields in self.fields.items()}
        self._by_name = {name: {f.name: f for f in fields} for name, fields in self.fields.items()}
        for message, fields in self.fields.items():
            for f in fields:
                for kind in f.map or (f.type,):
                    if kind not in _WIRE_TYPES and kind not in self.fields:
                        raise WireError(f"{message}.{f.name}: unknown type {kind!r}")

    def __contains__(self, message: str) -> bool:
        return message in self.fields

    def zero(self, message: str) -> Message:
        """The decoded form of an empty ``message``: every field at its zero value."""
        return self.decode(message, b"")

    # -- encoding ---------------------------------------------------------------------------

    def encode(self, message: str, value: Mapping[str, Any] | None) -> bytes:
        """``value`` as the wire bytes of ``message``; ``None`` is the empty message."""
        out = bytearray()
        self._encode(message, value or {}, out)
        return bytes(out)

    def _encode(self, message: str, value: Mapping[str, Any], out: bytearray) -> None:
        if not isinstance(value, Mapping):
            raise WireError(f"{message}: expected a dict, got {type(value).__name__}")
        known = self._by_name[message]
        for key in value:
            if key not in known:
                raise WireError(f"{message} has no field {key!r}")
        for f in self.fields[message]:
            v = value.get(f.name)
            if v is None:
                continue
            try:
                if f.map is not None:
                    self._encode_map(f, v, out)
                elif f.repeated:
                    self._encode_repeated(f, v, out)
                else:
                    self._encode_one(f.type, f.number, v, out, keep_zero=False)
            except (TypeError, ValueError, OverflowError, struct.error) as exc:
                raise WireError(f"{message}.{f.name}: {exc}") from None

    def _encode_map(self, f: Field, value: Any, out: bytearray) -> None:
        assert f.map is not None
        key_type, value_type = f.map
        for key in sorted(value):
            entry = bytearray()
            self._encode_one(key_type, 1, key, entry, keep_zero=False)
            self._encode_one(value_type, 2, value[key], entry, keep_zero=False)
            out += field_key(f.number, LEN) + encode_varint(len(entry)) + entry

    def _encode_repeated(self, f: Field, value: Any, out: bytearray) -> None:
        if isinstance(value, str | bytes | Mapping):
            raise WireError(f"expected a list, got {type(value).__name__}")
        items = list(value)
        if not items:
            return
        if f.packed:
            body = bytearray()
            for item in items:
                body += _scalar(f.type, item)
            out += field_key(f.number, LEN) + encode_varint(len(body)) + body
            return
        for item in items:
            self._encode_one(f.type, f.number, item, out, keep_zero=True)

    def _encode_one(self, kind: str, number: int, value: Any, out: bytearray, *, keep_zero: bool) -> None:
        wire = _WIRE_TYPES.get(kind)
        if wire is None:  # a message: written when set, even if empty
            body = bytearray()
            self._encode(kind, value, body)
            out += field_key(number, LEN) + encode_varint(len(body)) + body
            return
        if wire == LEN:
            if kind == "str" and not isinstance(value, str):
                raise WireError(f"expected a string, got {type(value).__name__}")
            data = value.encode() if isinstance(value, str) else bytes(value)
            if data or keep_zero:
                out += field_key(number, LEN) + encode_varint(len(data)) + data
            return
        if value or keep_zero:
            out += field_key(number, wire) + _scalar(kind, value)

    # -- decoding ---------------------------------------------------------------------------

    def decode(self, message: str, data: bytes | memoryview) -> Message:
        """The dict form of ``data`` as a ``message`` (see the module docstring)."""
        try:
            return self._decode(message, memoryview(data))
        except IndexError:
            raise WireError(f"{message}: truncated message") from None

    def _decode(self, message: str, view: memoryview) -> Message:
        fields = self._by_number[message]
        result: Message = {}
        for f in self.fields[message]:
            result[f.name] = {} if f.map else [] if f.repeated else _zero(f.type)
        pos = 0
        end = len(view)
        while pos < end:
            tag, pos = decode_varint(view, pos, WireError)
            number, wire = tag >> 3, tag & 7
            raw: Any
            if wire == VARINT:
                raw, pos = decode_varint(view, pos, WireError)
            elif wire == FIXED64:
                raw, pos = view[pos : pos + 8], pos + 8
            elif wire == FIXED32:
                raw, pos = view[pos : pos + 4], pos + 4
            elif wire == LEN:
                size, pos = decode_varint(view, pos, WireError)
                raw, pos = view[pos : pos + size], pos + size
            else:
                raise WireError(f"{message}: unsupported wire type {wire} (field {number})")
            if pos > end:
                raise WireError(f"{message}: truncated message (field {number})")
            found = fields.get(number)
            if found is None:
                continue
            if found.map is not None:
                key, value = self._decode_entry(found.map, raw)
                result[found.name][key] = value
            elif found.repeated:
                if wire == LEN and found.packed:
                    result[found.name].extend(self._unpack(found.type, raw))
                else:
                    result[found.name].append(self._value(found.type, wire, raw))
            else:
                result[found.name] = self._value(found.type, wire, raw)
        return result

    def _unpack(self, kind: str, raw: memoryview) -> list[Any]:
        wire = _WIRE_TYPES[kind]
        values: list[Any] = []
        pos = 0
        while pos < len(raw):
            if wire == VARINT:
                x, pos = decode_varint(raw, pos, WireError)
                values.append(_from_varint(kind, x))
            else:
                width = 8 if wire == FIXED64 else 4
                values.append(self._value(kind, wire, raw[pos : pos + width]))
                pos += width
        return values

    def _decode_entry(self, kinds: tuple[str, str], raw: memoryview) -> tuple[Any, Any]:
        entry = self._decode_pair(kinds, raw)
        key = entry.get(1, _zero(kinds[0]))
        if 2 in entry:
            return key, entry[2]
        return key, _zero(kinds[1]) if kinds[1] in _WIRE_TYPES else self.zero(kinds[1])

    def _decode_pair(self, kinds: tuple[str, str], raw: memoryview) -> dict[int, Any]:
        found: dict[int, Any] = {}
        pos = 0
        while pos < len(raw):
            tag, pos = decode_varint(raw, pos, WireError)
            number, wire = tag >> 3, tag & 7
            x: Any
            if wire == VARINT:
                x, pos = decode_varint(raw, pos, WireError)
            elif wire == LEN:
                size, pos = decode_varint(raw, pos, WireError)
                x, pos = raw[pos : pos + size], pos + size
            elif wire in (FIXED64, FIXED32):
                width = 8 if wire == FIXED64 else 4
                x, pos = raw[pos : pos + width], pos + width
            else:
                raise WireError(f"map entry: unsupported wire type {wire}")
            if number in (1, 2):
                found[number] = self._value(kinds[number - 1], wire, x)
        if pos > len(raw):
            raise WireError("truncated map entry")
        return found

    def _value(self, kind: str, wire: int, raw: Any) -> Any:
        expected = _WIRE_TYPES.get(kind, LEN)
        if wire != expected:
            raise WireError(f"field of type {kind} arrived with wire type {wire}")
        if kind == "str":
            try:
                return bytes(raw).decode()
            except UnicodeDecodeError:
                raise WireError("string field is not valid UTF-8") from None
        if kind == "bytes":
            return bytes(raw)
        if kind == "double":
            return struct.unpack("<d", raw)[0]
        if kind == "float":
            return struct.unpack("<f", raw)[0]
        if kind in _WIRE_TYPES:
            return _from_varint(kind, raw)
        return self._decode(kind, raw)


def _parse(message: str, layout: str) -> tuple[Field, ...]:
    fields: list[Field] = []
    for token in layout.split():
        name, _, rest = token.partition("=")
        number_text, _, kind = rest.partition(":")
        if not name or not number_text.isdigit():
            raise WireError(f"{message}: bad layout token {token!r}")
        number = int(number_text)
        kind = kind or "str"
        if kind.startswith("{") and kind.endswith("}"):
            key_type, _, value_type = kind[1:-1].partition(",")
            if key_type not in _MAP_KEYS:
                raise WireError(f"{message}.{name}: map keys cannot be {key_type!r}")
            fields.append(Field(name, number, "", map=(key_type, value_type)))
        elif kind.startswith("*"):
            fields.append(Field(name, number, kind[1:], repeated=True))
        else:
            fields.append(Field(name, number, kind))
    numbers = [f.number for f in fields]
    names = [f.name for f in fields]
    if len(set(numbers)) != len(numbers) or len(set(names)) != len(names):
        raise WireError(f"{message}: a field name or number is used twice")
    return tuple(sorted(fields, key=lambda f: f.number))


def _zero(kind: str) -> Any:
    if kind in _ZEROS:
        return _ZEROS[kind]
    return 0 if kind in _WIRE_TYPES else None


def _scalar(kind: str, value: Any) -> bytes:
    """The payload (no key) of a varint, fixed64 or fixed32 value."""
    if kind == "double":
        return struct.pack("<d", float(value))
    if kind == "float":
        return struct.pack("<f", float(value))
    if kind == "bool":
        return encode_varint(1 if value else 0)
    if isinstance(value, bool) or not isinstance(value, int):
        raise WireError(f"expected an integer for {kind}, got {type(value).__name__}")
    if kind in ("uint32", "uint64") and value < 0:
        raise WireError(f"{kind} cannot be negative ({value})")
    limit = 1 << (32 if kind in ("int32", "uint32", "enum") else 64)
    if not (-limit // 2 <= value < (limit if kind.startswith("u") else limit // 2)):
        raise WireError(f"{value} does not fit in {kind}")
    return encode_varint(value)


def _from_varint(kind: str, x: int) -> Any:
    if kind == "bool":
        return x != 0
    if kind in ("int32", "enum"):
        x &= 0xFFFFFFFF
        return x - (1 << 32) if x >> 31 else x
    if kind == "int64":
        return x - (1 << 64) if x >> 63 else x
    if kind == "uint32":
        return x & 0xFFFFFFFF
    return x
