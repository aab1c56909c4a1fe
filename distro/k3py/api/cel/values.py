"""CEL values at run time: how the evaluator represents them and the rules they obey.

Values are the JSON-like Python values Kubernetes objects already are: ``int`` is CEL int,
``float`` double, ``str``, ``bool``, ``None`` null, a sequence a list and a ``Mapping`` a map
(object values are maps too). What JSON lacks gets a small class: :class:`UInt` (an ``int``
subclass, so it stays JSON-friendly), :class:`Duration` and :class:`Timestamp` (nanoseconds),
:class:`Optional`, and :class:`~k3py.api.cel.types.CelType` for type values.

:func:`kind_of` names a value's runtime type the way overloads declare it; :func:`equal`,
:func:`compare` and the ``check_*`` range guards implement CEL's heterogeneous numeric equality,
ordering and int64/uint64 overflow errors.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Final

from k3py.api.cel import types as t
from k3py.api.cel.errors import CelEvalError
from k3py.api.cel.types import CelType

INT_MIN: Final = -(2**63)
INT_MAX: Final = 2**63 - 1
UINT_MAX: Final = 2**64 - 1
_NUMERIC: Final = frozenset({"int", "uint", "double"})


class UInt(int):
    """A CEL ``uint``; arithmetic on it goes through the evaluator, never Python's operators."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"{int(self)}u"


@dataclass(frozen=True, slots=True, order=True)
class Duration:
    nanos: int

    def __str__(self) -> str:
        return format_duration(self.nanos)


@dataclass(frozen=True, slots=True, order=True)
class Timestamp:
    nanos: int  # since the Unix epoch, UTC

    def datetime(self) -> datetime:
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=self.nanos // 1000)

    def __str__(self) -> str:
        return format_timestamp(self.nanos)


@dataclass(frozen=True, slots=True)
class Optional:
    """``optional.of(x)`` (``present``) or ``optional.none()``."""

    value: object = None
    present: bool = False


NONE: Final = Optional()


def kind_of(value: object) -> str:
    """The runtime type of ``value`` as overloads name it: int, uint, double, string, bytes,
    bool, null, list, map, timestamp, duration, type, optional_type, or an opaque type's name."""
    cls = type(value)
    if cls is str:
        return "string"
    if cls is int:
        return "int"
    if cls is bool:
        return "bool"
    if cls is float:
        return "double"
    if cls is dict or cls is list:
        return "map" if cls is dict else "list"
    if value is None:
        return "null"
    if cls is UInt:
        return "uint"
    if isinstance(value, Mapping):
        return "map"
    if isinstance(value, bytes):
        return "bytes"
    if isinstance(value, Sequence):
        return "list"
    if cls is Timestamp:
        return "timestamp"
    if cls is Duration:
        return "duration"
    if cls is Optional:
        return "optional_type"
    if cls is CelType:
        return "type"
    name = getattr(value, "cel_type", None)
    if isinstance(name, str):
        return name
    raise CelEvalError(f"unsupported conversion to ref.Val: ({cls.__name__}){value!r}")


def runtime_type(value: object) -> CelType:
    """What ``type(value)`` returns."""
    kind = kind_of(value)
    simple = {
        "int": t.INT, "uint": t.UINT, "double": t.DOUBLE, "string": t.STRING, "bytes": t.BYTES,
        "bool": t.BOOL, "null": t.NULL, "timestamp": t.TIMESTAMP, "duration": t.DURATION,
        "list": t.TYPE_NAMES["list"], "map": t.TYPE_NAMES["map"], "type": t.TYPE_NAMES["type"],
    }  # fmt: skip
    if kind in simple:
        return simple[kind]
    if kind == "optional_type":
        return t.opaque("optional_type")
    return t.opaque(kind)


def check_int(value: int) -> int:
    if not INT_MIN <= value <= INT_MAX:
        raise CelEvalError("integer overflow")
    return value


def check_uint(value: int) -> UInt:
    if not 0 <= value <= UINT_MAX:
        raise CelEvalError("unsigned integer overflow")
    return UInt(value)


def equal(a: object, b: object) -> bool:
    """CEL equality: numbers compare by value across int, uint and double; lists and maps
    element-wise; values of different types are simply unequal."""
    cls = type(a)
    if cls is type(b) and (cls is str or cls is int or cls is float or cls is bool):
        return bool(a == b)
    ka, kb = kind_of(a), kind_of(b)
    if ka != kb:
        if ka in _NUMERIC and kb in _NUMERIC:
            return bool(a == b)  # Python compares int and float exactly
        return False
    if ka == "list":
        assert isinstance(a, Sequence) and isinstance(b, Sequence)
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
    if ka == "map":
        assert isinstance(a, Mapping) and isinstance(b, Mapping)
        keys = list(a.keys())
        if len(keys) != len(list(b.keys())):
            return False
        for key in keys:
            other = lookup(b, key)
            if other is MISSING or not equal(a[key], other):
                return False
        return True
    if ka == "type":
        return str(a) == str(b)
    return bool(a == b)


def compare(a: object, b: object) -> int:
    """-1, 0 or 1 for values of one orderable type, or of two numeric types."""
    ka, kb = kind_of(a), kind_of(b)
    if ka != kb and not (ka in _NUMERIC and kb in _NUMERIC):
        raise CelEvalError("no such overload")
    if ka not in _ORDERED:
        raise CelEvalError("no such overload")
    if (ka == "double" and math.isnan(a)) or (kb == "double" and math.isnan(b)):  # type: ignore[arg-type]
        raise CelEvalError("NaN values cannot be ordered")
    return int((a > b) - (a < b))  # type: ignore[operator]


_ORDERED: Final = frozenset({"int", "uint", "double", "string", "bytes", "bool", "timestamp", "duration"})


class _Missing:
    """The absence of a map key (None is a value: JSON null)."""


MISSING: Final = _Missing()


def lookup(mapping: Mapping[object, object], key: object) -> object:
    """``mapping[key]`` with CEL's numeric key equivalence (``m[1.0]`` finds key ``1``), or
    :data:`MISSING`. Only ``__getitem__`` is used, so lazily computed mappings stay lazy."""
    kind = kind_of(key)
    if kind == "double":
        assert isinstance(key, float)
        if not key.is_integer():
            return MISSING
        key = int(key)
    elif kind not in ("string", "int", "uint", "bool"):
        raise CelEvalError(f"unsupported key type: {kind}")
    try:
        return mapping[key]
    except KeyError:
        return MISSING


def get_key(mapping: Mapping[object, object], key: object) -> object:
    value = lookup(mapping, key)
    if value is MISSING:
        raise CelEvalError(f"no such key: {format_value(key)}")
    return value


def has_key(mapping: Mapping[object, object], key: object) -> bool:
    return lookup(mapping, key) is not MISSING


def format_value(value: object) -> str:
    """A value as cel-go's ``%v`` prints it in messages (``no such key: foo``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format_double(value)
    return str(value)


def format_double(value: float) -> str:
    """Go's ``%g`` (shortest digits; exponent form below 1e-4 and from 1e6), as CEL's
    ``string(double)`` prints a double."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits))
    point = len(text) + exponent  # digits before the decimal point
    lead = "-" if sign else ""
    if point - 1 < -4 or point - 1 >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        power = point - 1
        return f"{lead}{mantissa}e{'-' if power < 0 else '+'}{abs(power):02d}"
    if point <= 0:
        return f"{lead}0.{'0' * -point}{text}"
    if point >= len(text):
        return f"{lead}{text}{'0' * (point - len(text))}"
    return f"{lead}{text[:point]}.{text[point:]}"


def format_duration(nanos: int) -> str:
    """Go's protobuf duration text, as ``string(duration)`` gives it: ``1.5s``, ``-3s``."""
    sign = "-" if nanos < 0 else ""
    seconds, rest = divmod(abs(nanos), 1_000_000_000)
    if rest:
        fraction = f"{rest:09d}".rstrip("0")
        return f"{sign}{seconds}.{fraction}s"
    return f"{sign}{seconds}s"


def format_timestamp(nanos: int) -> str:
    """RFC 3339 with as many fraction digits as needed, ``Z`` for UTC."""
    seconds, rest = divmod(nanos, 1_000_000_000)
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if rest:
        text += "." + f"{rest:09d}".rstrip("0")
    return text + "Z"


def to_json(value: object) -> object:
    """A result as JSON-like Python: optionals unwrap, timestamps and durations become text."""
    kind = kind_of(value)
    if kind == "list":
        assert isinstance(value, Sequence)
        return [to_json(v) for v in value]
    if kind == "map":
        assert isinstance(value, Mapping)
        if type(value) is dict and all(_plain(v) for v in value.values()):
            return value
        return {k: to_json(value[k]) for k in value.keys()}  # noqa: SIM118 (lazy mappings)
    if kind == "optional_type":
        assert isinstance(value, Optional)
        return to_json(value.value) if value.present else None
    if kind == "uint":
        assert isinstance(value, int)
        return int(value)
    if kind in _JSON_KINDS:
        return value
    return str(value)  # timestamps, durations, types, quantities, URLs, IPs


_JSON_KINDS: Final = frozenset({"int", "double", "string", "bool", "null", "bytes"})


def _plain(value: object) -> bool:
    return type(value) in (str, int, float, bool, UInt) or value is None
