"""Kubernetes protobuf request bodies (``application/vnd.kubernetes.protobuf``) → API JSON.

kubectl and client-go send built-in kinds as protobuf: the magic ``k8s\\x00``, then a
``runtime.Unknown`` envelope (1: TypeMeta{1: apiVersion, 2: kind}, 2: raw, 3: contentEncoding,
4: contentType) whose ``raw`` is the object's message. kube-apiserver decodes that into the Go
struct and serves the struct with Go's ``encoding/json``; :func:`decode` goes straight from the
wire to the same JSON-shaped dict, which is what k3py stores and serves.

The wire layout comes from ``data/protobuf-1.37.json.gz``, written by ``build/protos.py`` from
the Go structs (see there for its format): per struct, each field's JSON name, protobuf number,
type and Go flags (omitempty, omitzero, pointer, inlined embedding). Structs are compiled on
first use and kept. Go's rules that shape the result:

- a missing non-pointer scalar is its zero; ``omitempty`` drops zeros, empty slices and maps,
  nil pointers; a pointer that was sent keeps its value even when zero (``replicas: 0``);
- a nil slice, map or pointer without ``omitempty`` is ``null``; a struct is never omitted by
  ``omitempty`` (``status: {}``), only by ``omitzero`` (``creationTimestamp``);
- ``[]byte`` is base64; map keys are sorted; unknown field numbers are skipped;
- types with their own JSON: ``metav1.Time`` (seconds, RFC 3339, zero → null), ``MicroTime``
  (microseconds), ``Duration`` (Go's ``1h0m0s``), ``IntOrString``, ``resource.Quantity``
  (canonicalised exactly as Go's ``ParseQuantity`` + ``MarshalJSON`` do), ``RawExtension``,
  ``FieldsV1`` and apiextensions' ``JSON`` (embedded JSON), and the JSONSchemaProps-or-X unions.
"""

from __future__ import annotations

import base64
import codecs
import datetime
import functools
import gzip
import math
import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final

import orjson

from k3py.util.protowire import decode_varint

DATA_FILE: Final = "protobuf-1.37.json.gz"
MAGIC: Final = b"k8s\x00"
CONTENT_TYPE: Final = "application/vnd.kubernetes.protobuf"
MAX_DEPTH: Final = 100
"""Messages nested deeper than this are refused (Go has no limit; Python's stack has one)."""

_ZERO_TIME: Final = -62135596800  # 0001-01-01T00:00:00Z, Go's zero time.Time, as Unix seconds
_EPOCH: Final = datetime.datetime(1970, 1, 1)
_MAX_INT64: Final = (1 << 63) - 1
_PROPS: Final = "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1.JSONSchemaProps"

_VARINT, _FIXED64, _BYTES, _GROUP_START, _GROUP_END, _FIXED32 = 0, 1, 2, 3, 4, 5


class ProtobufError(ValueError):
    """The body is not a Kubernetes protobuf message this server can decode into JSON."""

    def __init__(self, message: str, path: tuple[str, ...] = ()) -> None:
        super().__init__(f"{'.'.join(path)}: {message}" if path else message)
        self.reason = message
        self.path = path


def _go_replace(err: UnicodeError) -> tuple[str, int]:
    """Go's encoding/json writes U+FFFD for each byte of invalid UTF-8 (Python: per sequence)."""
    assert isinstance(err, UnicodeDecodeError)
    return "\ufffd", err.start + 1


codecs.register_error("k3py-go-utf8", _go_replace)


# ---------------------------------------------------------------------------------------------
# Descriptor: type strings from build/protos.py, compiled into small objects on first use.


@dataclass(frozen=True, slots=True)
class _Type:
    kind: str  # scalar, struct, special, list, map, wrap
    name: str = ""  # scalar kind, struct name or special name
    elem: _Type | None = None
    key: str = ""

    @property
    def wire(self) -> int:
        if self.kind == "scalar" and self.name not in ("string", "bytes"):
            return _FIXED64 if self.name == "float64" else _VARINT
        return _BYTES


@functools.cache
def _parse_type(text: str) -> _Type:
    if text.startswith("[]"):
        return _Type("list", elem=_parse_type(text[2:]))
    if text.startswith("wrap[]"):  # a message whose field 1 is the list
        return _Type("wrap", elem=_parse_type(text[4:]))
    if text.startswith("map["):
        key, _, value = text[4:].partition("]")
        return _Type("map", elem=_parse_type(value), key=key)
    if text.startswith("@"):
        return _Type("special", text)
    if "/" in text:
        return _Type("struct", text)
    return _Type("scalar", text)


@dataclass(frozen=True, slots=True)
class _Field:
    json: str
    number: int
    type: _Type
    omitempty: bool
    omitzero: bool
    pointer: bool
    inline: bool


@dataclass(frozen=True, slots=True)
class _Struct:
    name: str
    fields: tuple[_Field, ...]
    names: frozenset[str]  # this struct's own JSON names: they win over inlined ones


class Descriptor:
    """The bundled wire layout: which struct a kind is, and how each struct's fields look."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.kinds: dict[str, dict[str, str]] = document["kinds"]
        self.modules: dict[str, str] = document.get("modules", {})
        self._raw: dict[str, list[list[Any]]] = document["types"]
        self._structs: dict[str, _Struct] = {}

    @classmethod
    def get(cls) -> Descriptor:
        return _bundled()

    def struct(self, name: str) -> _Struct:
        compiled = self._structs.get(name)
        if compiled is None:
            fields = tuple(
                _Field(
                    json, number, _parse_type(text), "o" in flags, "z" in flags, "p" in flags, "i" in flags
                )
                for json, number, text, flags in self._raw[name]
            )
            compiled = _Struct(name, fields, frozenset(f.json for f in fields if f.json))
            self._structs[name] = compiled
        return compiled

    def kind(self, api_version: str, kind: str) -> str | None:
        return self.kinds.get(api_version, {}).get(kind)

    def __len__(self) -> int:
        """How many structs the layout describes."""
        return len(self._raw)


@functools.cache
def _bundled() -> Descriptor:
    data = resources.files("k3py.api").joinpath("data", DATA_FILE).read_bytes()
    return Descriptor(orjson.loads(gzip.decompress(data)))


# ---------------------------------------------------------------------------------------------
# Wire format


Value = int | memoryview  # a varint, or the bytes of a length-delimited/fixed field
Fields = dict[int, list[tuple[int, Value]]]


def _scan(data: memoryview) -> Fields:
    """Every field of one message, by number, in wire order (groups are skipped as Go does)."""
    fields: Fields = {}
    pos, end = 0, len(data)
    while pos < end:
        tag, pos = decode_varint(data, pos, ProtobufError)
        number, wire = _int32(tag >> 3), tag & 7
        if wire == _GROUP_END:
            raise ProtobufError("wiretype end group for non-group")
        if number <= 0:
            raise ProtobufError(f"illegal tag {number} (wire type {wire})")
        value: Value
        if wire == _VARINT:
            value, pos = decode_varint(data, pos, ProtobufError)
        elif wire == _BYTES:
            length, pos = decode_varint(data, pos, ProtobufError)
            if length >= 1 << 63:
                raise ProtobufError("negative length found during unmarshaling")
            if pos + length > end:
                raise ProtobufError("unexpected end of data")
            value, pos = data[pos : pos + length], pos + length
        elif wire in (_FIXED64, _FIXED32):
            size = 8 if wire == _FIXED64 else 4
            if pos + size > end:
                raise ProtobufError("unexpected end of data")
            value, pos = data[pos : pos + size], pos + size
        elif wire == _GROUP_START:
            value, pos = 0, _skip_group(data, pos)
        else:
            raise ProtobufError(f"illegal wireType {wire}")
        fields.setdefault(number, []).append((wire, value))
    return fields


def _skip_group(data: memoryview, pos: int) -> int:
    depth = 1
    while depth:
        tag, pos = decode_varint(data, pos, ProtobufError)
        wire = tag & 7
        if wire == _VARINT:
            _, pos = decode_varint(data, pos, ProtobufError)
        elif wire == _BYTES:
            length, pos = decode_varint(data, pos, ProtobufError)
            pos += length
        elif wire in (_FIXED64, _FIXED32):
            pos += 8 if wire == _FIXED64 else 4
        elif wire in (_GROUP_START, _GROUP_END):
            depth += 1 if wire == _GROUP_START else -1
        else:
            raise ProtobufError(f"illegal wireType {wire}")
        if pos > len(data):
            raise ProtobufError("unexpected end of data")
    return pos


def _int32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def _int64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _text(raw: memoryview) -> str:
    return str(raw, "utf-8", "k3py-go-utf8")


def _payloads(occurrences: list[tuple[int, Value]]) -> Iterator[memoryview]:
    for wire, value in occurrences:
        if wire != _BYTES or isinstance(value, int):
            raise ProtobufError(f"wrong wireType = {wire} for a message, string or bytes field")
        yield value


def _last_payload(occurrences: list[tuple[int, Value]]) -> memoryview | None:
    return list(_payloads(occurrences))[-1] if occurrences else None


def _merged(occurrences: list[tuple[int, Value]]) -> memoryview:
    """Repeated occurrences of one message field merge: as if their bytes were concatenated."""
    payloads = list(_payloads(occurrences))
    if len(payloads) == 1:
        return payloads[0]
    return memoryview(b"".join(payloads))


# ---------------------------------------------------------------------------------------------
# Messages → JSON values


class _Decoder:
    def __init__(self, descriptor: Descriptor) -> None:
        self.descriptor = descriptor
        self.depth = 0

    def message(self, data: memoryview, name: str) -> dict[str, Any]:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ProtobufError(f"messages nested deeper than {MAX_DEPTH} levels")
        try:
            return self._struct(_scan(data), self.descriptor.struct(name))
        finally:
            self.depth -= 1

    def _struct(self, fields: Fields, described: _Struct) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in described.fields:
            occurrences = fields.get(f.number, []) if f.number else []
            try:
                if f.inline:
                    if f.pointer and not occurrences:
                        continue
                    inlined = self.message(_merged(occurrences), f.type.name)
                    for key, value in inlined.items():
                        if key not in described.names and key not in out:
                            out[key] = value
                    continue
                value, empty, zero = self._field(f, occurrences)
            except ProtobufError as err:
                raise ProtobufError(err.reason, (f.json, *err.path) if f.json else err.path) from None
            if (f.omitempty and empty) or (f.omitzero and zero):
                continue
            out[f.json] = value
        return out

    def _field(self, f: _Field, occurrences: list[tuple[int, Value]]) -> tuple[Any, bool, bool]:
        """The field's JSON value, whether Go calls it empty (omitempty) and zero (omitzero)."""
        kind = f.type.kind
        if kind in ("list", "map"):
            value = self._list(f.type, occurrences) if kind == "list" else self._map(f.type, occurrences)
            return (value, False, False) if value else (None, True, True)
        if f.pointer:
            if not occurrences:
                return None, True, True
            return self._single(f.type, occurrences), False, False
        if kind == "scalar":
            if f.type.name == "bytes":
                if not occurrences:
                    return None, True, True
                raw = _last_payload(occurrences)
                return base64.b64encode(raw or b"").decode(), not raw, False
            value = self._scalar(f.type.name, occurrences[-1]) if occurrences else _ZEROS[f.type.name]
            return value, not value, not value
        value = self._single(f.type, occurrences)
        zero = False
        if f.omitzero:  # Go compares the struct with its zero value (Time: its IsZero method)
            zero = (
                value is None if f.type.name in ("@time", "@microtime") else value == self._single(f.type, [])
            )
        return value, False, zero

    def _single(self, t: _Type, occurrences: list[tuple[int, Value]]) -> Any:
        """One value of type ``t`` from its occurrences (none: the Go zero value)."""
        if t.kind == "scalar":
            if t.name == "bytes":
                return base64.b64encode(_last_payload(occurrences) or b"").decode()
            return self._scalar(t.name, occurrences[-1]) if occurrences else _ZEROS[t.name]
        if t.kind == "struct":
            return self.message(_merged(occurrences), t.name)
        if t.kind == "wrap":  # only a map value: gogo fills in an empty, non-nil slice
            assert t.elem is not None
            return self._list(t.elem, _scan(_merged(occurrences)).get(1, []))
        if t.name in ("@time", "@microtime"):  # replaced, not merged, by each occurrence
            last = _last_payload(occurrences)
            return _SPECIALS[t.name](self, last if last is not None else memoryview(b""))
        return _SPECIALS[t.name](self, _merged(occurrences) if occurrences else memoryview(b""))

    def _scalar(self, name: str, occurrence: tuple[int, Value]) -> Any:
        wire, value = occurrence
        if name == "string":
            if isinstance(value, int) or wire != _BYTES:
                raise ProtobufError(f"wrong wireType = {wire} for a string field")
            return _text(value)
        if name == "float64":
            if isinstance(value, int) or wire != _FIXED64:
                raise ProtobufError(f"wrong wireType = {wire} for a double field")
            return _go_float(struct.unpack("<d", value)[0])
        if not isinstance(value, int) or wire != _VARINT:
            raise ProtobufError(f"wrong wireType = {wire} for a varint field")
        return _VARINTS[name](value)

    def _list(self, t: _Type, occurrences: list[tuple[int, Value]]) -> list[Any]:
        elem = t.elem
        assert elem is not None
        if elem.wire == _BYTES:
            return [self._single(elem, [occurrence]) for occurrence in occurrences]
        values: list[Any] = []
        for wire, value in occurrences:
            if wire == _BYTES and not isinstance(value, int):  # packed
                values.extend(self._scalar(elem.name, item) for item in _unpack(value, elem.wire))
            else:
                values.append(self._scalar(elem.name, (wire, value)))
        return values

    def _map(self, t: _Type, occurrences: list[tuple[int, Value]]) -> dict[str, Any]:
        assert t.elem is not None
        entries: dict[str, Any] = {}
        for payload in _payloads(occurrences):
            entry = _scan(payload)
            keys, values = entry.get(1, []), entry.get(2, [])
            key = str(self._scalar(t.key, keys[-1]) if keys else _ZEROS[t.key])
            # A value replaces, never merges; a missing one is the zero ([]byte{}: "", not null).
            entries[key] = self._single(t.elem, values[-1:])
        return dict(sorted(entries.items()))


def _unpack(data: memoryview, wire: int) -> Iterator[tuple[int, Value]]:
    pos = 0
    while pos < len(data):
        if wire == _FIXED64:
            if pos + 8 > len(data):
                raise ProtobufError("unexpected end of data")
            yield wire, data[pos : pos + 8]
            pos += 8
        else:
            value, pos = decode_varint(data, pos, ProtobufError)
            yield wire, value


_ZEROS: Final[dict[str, Any]] = {
    "string": "", "bool": False, "int32": 0, "int64": 0, "uint32": 0, "uint64": 0, "float64": 0,
}  # fmt: skip
_VARINTS: Final[dict[str, Callable[[int], Any]]] = {
    "bool": lambda v: v != 0,
    "int32": _int32,
    "int64": _int64,
    "uint32": lambda v: v & 0xFFFFFFFF,
    "uint64": lambda v: v,
}


def _go_float(value: float) -> float | int:
    """encoding/json writes integral floats without a fraction; it refuses NaN and infinities."""
    if not math.isfinite(value):
        raise ProtobufError(f"json: unsupported value: {value}")
    return int(value) if value.is_integer() and abs(value) < 1e21 else value


# ---------------------------------------------------------------------------------------------
# Types with their own protobuf or JSON form


def _fields_of(data: memoryview, wires: dict[int, int]) -> Fields:
    """The fields of a small fixed message, with the wire types of the known ones checked."""
    fields = _scan(data)
    for number, wire in wires.items():
        for found, _ in fields.get(number, []):
            if found != wire:
                raise ProtobufError(f"wrong wireType = {found} for field {number}")
    return fields


def _varint_field(fields: Fields, number: int) -> int:
    occurrences = fields.get(number)
    value = occurrences[-1][1] if occurrences else 0
    return value if isinstance(value, int) else 0


def _bytes_field(fields: Fields, number: int) -> memoryview | None:
    occurrences = fields.get(number)
    value = occurrences[-1][1] if occurrences else None
    return value if isinstance(value, memoryview) else None


def _string_field(fields: Fields, number: int) -> str | None:
    raw = _bytes_field(fields, number)
    return None if raw is None else _text(raw)


def _time(decoder: _Decoder, data: memoryview) -> str | None:
    if not data:
        return None
    seconds = _int64(_varint_field(_fields_of(data, {1: _VARINT, 2: _VARINT}), 1))  # nanos dropped, as Go
    return None if seconds == _ZERO_TIME else _format_time(seconds, None)


def _micro_time(decoder: _Decoder, data: memoryview) -> str | None:
    if not data:
        return None
    fields = _fields_of(data, {1: _VARINT, 2: _VARINT})
    seconds, nanos = _int64(_varint_field(fields, 1)), _int32(_varint_field(fields, 2))
    nanos = int(nanos / 1000) * 1000  # truncated towards zero to microseconds
    extra, nanos = divmod(nanos, 1_000_000_000)
    seconds += extra
    return None if seconds == _ZERO_TIME and nanos == 0 else _format_time(seconds, nanos // 1000)


def _format_time(seconds: int, micros: int | None) -> str:
    try:
        moment = _EPOCH + datetime.timedelta(seconds=seconds)
    except OverflowError:
        raise ProtobufError(f"time {seconds} s from the epoch is out of range") from None
    text = f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}"
    return f"{text}.{micros:06d}Z" if micros is not None else f"{text}Z"


def _duration(decoder: _Decoder, data: memoryview) -> str:
    return go_duration(_int64(_varint_field(_fields_of(data, {1: _VARINT}), 1)))


def go_duration(nanoseconds: int) -> str:
    """Go's ``time.Duration.String``: ``1h0m0s``, ``1.5s``, ``300ms``, ``0s``."""
    if nanoseconds == 0:
        return "0s"
    sign, u = ("-" if nanoseconds < 0 else ""), abs(nanoseconds)
    if u < 1_000_000_000:
        for unit, size in (("ns", 1), ("µs", 1_000), ("ms", 1_000_000)):
            if u < size * 1000:
                return f"{sign}{_fraction(u, size)}{unit}"
    seconds, rest = divmod(u, 1_000_000_000)
    text = f"{_fraction(seconds % 60 * 1_000_000_000 + rest, 1_000_000_000)}s"
    minutes, hours = seconds // 60 % 60, seconds // 3600
    if seconds >= 60:
        text = f"{minutes}m{text}"
    if hours:
        text = f"{hours}h{text}"
    return sign + text


def _fraction(value: int, unit: int) -> str:
    whole, part = divmod(value, unit)
    if not part:
        return str(whole)
    digits = f"{part:0{len(str(unit)) - 1}d}".rstrip("0")
    return f"{whole}.{digits}"


def _int_or_string(decoder: _Decoder, data: memoryview) -> int | str:
    fields = _fields_of(data, {1: _VARINT, 2: _VARINT, 3: _BYTES})
    kind = _int64(_varint_field(fields, 1))
    if kind == 0:
        return _int32(_varint_field(fields, 2))
    if kind == 1:
        return _string_field(fields, 3) or ""
    raise ProtobufError("impossible IntOrString.Type")


def _quantity_message(decoder: _Decoder, data: memoryview) -> str:
    text = _string_field(_fields_of(data, {1: _BYTES}), 1)
    return "0" if text is None else quantity(text)


def _embedded_json(raw: memoryview | None, what: str) -> Any:
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        raise ProtobufError(f"{what} does not hold JSON") from None


_JSON_STARTS: Final = frozenset(b'\t\r\n {["-0123456789ntf')


def _raw_extension(decoder: _Decoder, data: memoryview) -> Any:
    raw = _bytes_field(_fields_of(data, {1: _BYTES}), 1)
    if raw is None:
        return None
    if not raw or raw[0] not in _JSON_STARTS:  # Go's guessContentType: JSON, CBOR or unknown
        raise ProtobufError("RawExtension holds no JSON (CBOR or unknown content is not converted)")
    return _embedded_json(raw, "RawExtension")


def _fields_v1(decoder: _Decoder, data: memoryview) -> Any:
    return _embedded_json(_bytes_field(_fields_of(data, {1: _BYTES}), 1), "FieldsV1")


def _json(decoder: _Decoder, data: memoryview) -> Any:
    return _embedded_json(_bytes_field(_fields_of(data, {1: _BYTES}), 1), "JSON")


def _props_or_array(decoder: _Decoder, data: memoryview) -> Any:
    fields = _fields_of(data, {1: _BYTES, 2: _BYTES})
    if schemas := fields.get(2):
        return [decoder.message(payload, _PROPS) for payload in _payloads(schemas)]
    return decoder.message(_merged(fields[1]), _PROPS) if 1 in fields else None


def _props_or_bool(decoder: _Decoder, data: memoryview) -> Any:
    fields = _fields_of(data, {1: _VARINT, 2: _BYTES})
    if 2 in fields:
        return decoder.message(_merged(fields[2]), _PROPS)
    return _varint_field(fields, 1) != 0


def _props_or_string_array(decoder: _Decoder, data: memoryview) -> Any:
    fields = _fields_of(data, {1: _BYTES, 2: _BYTES})
    if strings := fields.get(2):
        return [_text(payload) for payload in _payloads(strings)]
    return decoder.message(_merged(fields[1]), _PROPS) if 1 in fields else None


_SPECIALS: Final[dict[str, Callable[[_Decoder, memoryview], Any]]] = {
    "@time": _time,
    "@microtime": _micro_time,
    "@duration": _duration,
    "@quantity": _quantity_message,
    "@intstr": _int_or_string,
    "@rawext": _raw_extension,
    "@fieldsv1": _fields_v1,
    "@json": _json,
    "@propsorarray": _props_or_array,
    "@propsorbool": _props_or_bool,
    "@propsorstringarray": _props_or_string_array,
}


# ---------------------------------------------------------------------------------------------
# resource.Quantity: Go's ParseQuantity followed by MarshalJSON, value for value.

_DECIMAL_SI, _BINARY_SI, _DECIMAL_EXPONENT = "DecimalSI", "BinarySI", "DecimalExponent"
_SI_EXPONENTS: Final = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_SI_SUFFIXES: Final = {exponent: suffix for suffix, exponent in _SI_EXPONENTS.items()}
_BINARY_EXPONENTS: Final = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_BINARY_SUFFIXES: Final = {exponent // 10: suffix for suffix, exponent in _BINARY_EXPONENTS.items()}
_DIGITS: Final = frozenset("0123456789")
_SUFFIX_CHARS: Final = frozenset("eEinumkKMGTP")
_EXPONENT: Final = re.compile(r"[+-]?[0-9]+")
_QUANTITY_PATTERN: Final = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"


def quantity(text: str) -> str:
    """The JSON string Go serves for a quantity it parsed from ``text`` ("1000m" → "1").

    Raises :class:`ProtobufError` where ``ParseQuantity`` fails.
    """
    if not text:
        raise ProtobufError(f"quantities must match the regular expression '{_QUANTITY_PATTERN}'")
    if text == "0":
        return "0"
    positive, value, num, denom, suffix = _scan_quantity(text)
    exponent, fmt = _interpret_suffix(suffix)
    # Go's fast path keeps small exact values as int64 * 10^scale, and keeps the very string it
    # parsed when that string is already canonical by its (slightly loose) test.
    mantissa, precision, scale = 1, -1, exponent
    if fmt == _BINARY_SI:
        scale = 0
        if not denom:
            mantissa, precision = 1 << exponent, 15 - len(num) - exponent * 3 // 10 - 1
    else:
        precision = 18 - len(num) - len(denom)
    if precision >= 0:
        scale -= len(denom)
        shifted = num + denom
        if scale >= -9 and int(shifted) * mantissa <= _MAX_INT64:
            result = int(shifted) * mantissa * (1 if positive else -1)
            if fmt == _BINARY_SI:
                if exponent % 10 == 0 and int(shifted) & 7:
                    return text
            elif scale % 3 == 0 and not shifted.endswith("000") and shifted[0] != "0":
                return text
            return _canonical(result, scale, fmt)
    # The slow path: an exact decimal, rounded up (away from zero) to nanos, binary capped.
    if not any(c in _DIGITS for c in value):
        raise ProtobufError("unable to parse numeric part of quantity")
    sign = 1 if positive else -1
    try:
        digits = int(num + denom)
    except ValueError:  # beyond Python's int-from-string limit (4300 digits)
        raise ProtobufError("unable to parse numeric part of quantity") from None
    if fmt == _BINARY_SI:
        m, e = digits * (1 << exponent), -len(denom)
    else:
        m, e = digits, exponent - len(denom)
    m, e = _round_up_nanos(m, e)  # binary values have e >= -9 here
    if fmt == _BINARY_SI:
        unit = 10 ** max(0, -e)
        if m * 10 ** max(0, e) > _MAX_INT64 * unit:
            m, e = _MAX_INT64, 0
        elif 0 < m * 10 ** max(0, e) < unit:
            fmt = _DECIMAL_SI
    return _canonical(sign * m, e, fmt)


def _scan_quantity(text: str) -> tuple[bool, str, str, str, str]:
    """Go's parseQuantityString: sign, the numeric text, digits before/after the point, suffix."""
    positive, pos, end = True, 0, len(text)
    if text[0] in "+-":
        positive, pos = text[0] == "+", 1
    while pos < end and text[pos] == "0":
        pos += 1
    if pos >= end:
        return positive, "0", "0", "", ""
    start = pos
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    num = text[start:pos] or "0"
    if pos >= end:
        return positive, text, num, "", ""
    denom = ""
    if text[pos] == ".":
        pos += 1
        start = pos
        while pos < end and text[pos] in _DIGITS:
            pos += 1
        denom = text[start:pos]
        if pos >= end:
            return positive, text, num, denom, ""
    value, start = text[:pos], pos
    while pos < end and text[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos < end and text[pos] in "+-":
        pos += 1
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    if pos < end:
        raise ProtobufError(f"quantities must match the regular expression '{_QUANTITY_PATTERN}'")
    return positive, value, num, denom, text[start:]


def _interpret_suffix(suffix: str) -> tuple[int, str]:
    if suffix in _SI_EXPONENTS:
        return _SI_EXPONENTS[suffix], _DECIMAL_SI
    if suffix in _BINARY_EXPONENTS:
        return _BINARY_EXPONENTS[suffix], _BINARY_SI
    # (more than 20 digits cannot be an int64: Go's ParseInt fails, and so does this)
    if 1 < len(suffix) <= 22 and suffix[0] in "eE" and _EXPONENT.fullmatch(suffix[1:]):
        parsed = int(suffix[1:])
        if -(1 << 63) <= parsed <= _MAX_INT64:
            return _int32(parsed), _DECIMAL_EXPONENT  # Go keeps an int32
    raise ProtobufError("unable to parse quantity's suffix")


def _round_up_nanos(m: int, e: int) -> tuple[int, int]:
    """m * 10^e rounded away from zero to a multiple of 10^-9 (unchanged when it already is)."""
    if e >= -9 or m == 0:
        return m, e
    shift, sign = -9 - e, (1 if m > 0 else -1)
    if shift > len(str(abs(m))):
        return sign, -9
    whole, rest = divmod(abs(m), 10**shift)
    return sign * (whole + (1 if rest else 0)), -9


def _canonical(m: int, e: int, fmt: str) -> str:
    """Quantity.CanonicalizeBytes for the value m * 10^e."""
    if m == 0:
        return "0"
    if fmt == _BINARY_SI:
        # Whole values from 1024 up in powers of 1024; anything else as DecimalSI (no rounding).
        fmt = _DECIMAL_SI
        if e >= 0 or m % 10**-e == 0:
            integer = m * 10**e if e >= 0 else m // 10**-e
            if abs(integer) >= 1024:
                times = 0
                while integer % 1024 == 0:
                    integer //= 1024
                    times += 1
                return f"{integer}{_BINARY_SUFFIXES.get(times, '')}"
    while m % 10 == 0:
        m //= 10
        e += 1
    shift = e % 3
    m, e = m * 10**shift, e - shift
    if fmt == _DECIMAL_EXPONENT:
        return f"{m}e{e}" if e else str(m)
    return f"{m}{_SI_SUFFIXES.get(e, '')}"  # Go writes no suffix for an exponent it has none for


# ---------------------------------------------------------------------------------------------


def decode(
    body: bytes, *, api_version: str = "", kind: str = "", descriptor: Descriptor | None = None
) -> dict[str, Any]:
    """The JSON object kube-apiserver would serve for a protobuf request body.

    ``api_version`` and ``kind`` are the request's defaults for an envelope that leaves them
    empty (as Go's ``copyKindDefaults``). Raises :class:`ProtobufError` for anything Go would
    refuse to decode or to serialise, and for kinds not in the bundled descriptor.
    """
    if not body:
        raise ProtobufError("empty data")
    if not body.startswith(MAGIC):
        raise ProtobufError(
            f"provided data does not appear to be a protobuf message, expected prefix {MAGIC!r}"
        )
    if len(body) == len(MAGIC):
        raise ProtobufError("empty body")
    descriptor = descriptor or Descriptor.get()
    envelope = _scan(memoryview(body)[len(MAGIC) :])
    type_meta = _fields_of(_merged(envelope.get(1, [])), {1: _BYTES, 2: _BYTES}) if 1 in envelope else {}
    for number in (2, 3, 4):
        list(_payloads(envelope.get(number, [])))  # wire types checked as Go does
    found_version, found_kind = _string_field(type_meta, 1) or "", _string_field(type_meta, 2) or ""
    group, version = _split_api_version(found_version)
    found_kind = found_kind or kind
    if not version and api_version:
        group, version = _split_api_version(api_version)
    if not found_kind:
        raise ProtobufError(f"Object 'Kind' is missing in {found_version!r}")
    if not version:
        raise ProtobufError(f"Object 'apiVersion' is missing for kind {found_kind!r}")
    gv = f"{group}/{version}" if group else version
    name = descriptor.kind(gv, found_kind)
    if name is None:
        raise ProtobufError(f'no kind "{found_kind}" is registered for version "{gv}"')
    raw = _last_payload(envelope.get(2, [])) or memoryview(b"")
    obj = _Decoder(descriptor).message(raw, name)
    return {"kind": found_kind, "apiVersion": gv, **obj}


def _split_api_version(api_version: str) -> tuple[str, str]:
    """schema.ParseGroupVersion; an unparseable apiVersion counts as empty, as in Go."""
    if not api_version:
        return "", ""
    if api_version.count("/") == 0:
        return "", api_version
    if api_version.count("/") == 1:
        group, version = api_version.split("/")
        return group, version
    return "", ""
