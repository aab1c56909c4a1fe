"""CEL's standard functions: operators, ``size``, string tests, conversions and optionals.

Arithmetic keeps CEL's rules rather than Python's: int and uint results outside 64 bits are
errors, integer ``/`` truncates toward zero and ``%`` takes the dividend's sign, integer division
or modulus by zero is an error while double division follows IEEE 754. Comparisons across int,
uint and double are declared (Kubernetes enables cross-type numeric comparisons); ``==`` is
declared on one type parameter, as in cel-go, so ``1 == 'a'`` is a compile error, but compares
heterogeneously at run time (``dyn(1) == 1.0``).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping, Sequence

from k3py.api.cel.errors import CelEvalError
from k3py.api.cel.functions import define
from k3py.api.cel.types import (
    BOOL,
    BYTES,
    DOUBLE,
    DURATION,
    DYN,
    INT,
    STRING,
    TIMESTAMP,
    UINT,
    A,
    B,
    list_of,
    map_of,
    optional_of,
    type_of,
)
from k3py.api.cel.values import (
    INT_MAX,
    INT_MIN,
    NONE,
    UINT_MAX,
    Optional,
    UInt,
    check_int,
    check_uint,
    compare,
    equal,
    format_double,
    get_key,
    has_key,
    kind_of,
    runtime_type,
)

# -- arithmetic --------------------------------------------------------------------------------


def _div_int(a: int, b: int) -> int:
    if b == 0:
        raise CelEvalError("division by zero")
    quotient = abs(a) // abs(b)
    return check_int(quotient if (a < 0) == (b < 0) else -quotient)


def _mod_int(a: int, b: int) -> int:
    if b == 0:
        raise CelEvalError("modulus by zero")
    rest = abs(a) % abs(b)
    return -rest if a < 0 else rest


def _div_uint(a: int, b: int) -> UInt:
    if b == 0:
        raise CelEvalError("division by zero")
    return UInt(a // b)


def _mod_uint(a: int, b: int) -> UInt:
    if b == 0:
        raise CelEvalError("modulus by zero")
    return UInt(a % b)


def _div_double(a: float, b: float) -> float:
    if b == 0:
        if a == 0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def _define_arithmetic() -> None:
    define("_+_", (INT, INT), INT, lambda a, b: check_int(a + b))
    define("_+_", (UINT, UINT), UINT, lambda a, b: check_uint(a + b))
    define("_+_", (DOUBLE, DOUBLE), DOUBLE, lambda a, b: a + b)
    define("_+_", (STRING, STRING), STRING, lambda a, b: a + b)
    define("_+_", (BYTES, BYTES), BYTES, lambda a, b: a + b)
    define("_+_", (list_of(A), list_of(A)), list_of(A), lambda a, b: [*a, *b])
    define("_-_", (INT, INT), INT, lambda a, b: check_int(a - b))
    define("_-_", (UINT, UINT), UINT, lambda a, b: check_uint(a - b))
    define("_-_", (DOUBLE, DOUBLE), DOUBLE, lambda a, b: a - b)
    define("_*_", (INT, INT), INT, lambda a, b: check_int(a * b))
    define("_*_", (UINT, UINT), UINT, lambda a, b: check_uint(a * b))
    define("_*_", (DOUBLE, DOUBLE), DOUBLE, lambda a, b: a * b)
    define("_/_", (INT, INT), INT, _div_int)
    define("_/_", (UINT, UINT), UINT, _div_uint)
    define("_/_", (DOUBLE, DOUBLE), DOUBLE, _div_double)
    define("_%_", (INT, INT), INT, _mod_int)
    define("_%_", (UINT, UINT), UINT, _mod_uint)
    define("-_", (INT,), INT, lambda a: check_int(-a))
    define("-_", (DOUBLE,), DOUBLE, lambda a: -a)
    define("!_", (BOOL,), BOOL, lambda a: not a)


# -- comparison and membership ----------------------------------------------------------------

_ORDERED = (INT, UINT, DOUBLE, STRING, BYTES, BOOL, TIMESTAMP, DURATION)
_COMPARISONS = {
    "_<_": lambda a, b: compare(a, b) < 0,
    "_<=_": lambda a, b: compare(a, b) <= 0,
    "_>_": lambda a, b: compare(a, b) > 0,
    "_>=_": lambda a, b: compare(a, b) >= 0,
}


def _in_list(item: object, items: Sequence[object]) -> bool:
    return any(equal(item, x) for x in items)


def _in_map(key: object, mapping: Mapping[object, object]) -> bool:
    if kind_of(key) not in ("string", "int", "uint", "double", "bool"):
        return False
    return has_key(mapping, key)


def _index_list(items: Sequence[object], index: object) -> object:
    kind = kind_of(index)
    if kind == "double":
        assert isinstance(index, float)
        if not index.is_integer():
            raise CelEvalError(f"unsupported index value {format_double(index)} in list")
        index = int(index)
    elif kind not in ("int", "uint"):
        raise CelEvalError("no such overload")
    assert isinstance(index, int)
    if not 0 <= index < len(items):
        raise CelEvalError(f"index '{index}' out of range in list size '{len(items)}'")
    return items[index]


def _define_relations() -> None:
    for name, impl in _COMPARISONS.items():
        for left in _ORDERED:
            for right in _ORDERED:
                numeric = {left.kind, right.kind} <= {"int", "uint", "double"}
                if left == right or numeric:
                    define(name, (left, right), BOOL, impl)
    define("_==_", (A, A), BOOL, equal)
    define("_!=_", (A, A), BOOL, lambda a, b: not equal(a, b))
    define("@in", (A, list_of(A)), BOOL, _in_list)
    define("@in", (A, map_of(A, B)), BOOL, _in_map)
    define("_[_]", (list_of(A), INT), A, _index_list)
    define("_[_]", (map_of(A, B), A), B, get_key)
    define("_&&_", (BOOL, BOOL), BOOL, lambda a, b: a and b)
    define("_||_", (BOOL, BOOL), BOOL, lambda a, b: a or b)
    define("_?_:_", (BOOL, A, A), A, lambda c, a, b: a if c else b)


# -- size and strings ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def compile_regex(pattern: str) -> re.Pattern[str]:
    """A pattern in RE2 syntax (the common subset Python shares), compiled once."""
    try:
        return re.compile(pattern)
    except re.error as err:
        raise CelEvalError(f"error parsing regexp: {err}: `{pattern}`") from None


def _size(value: object) -> int:
    if isinstance(value, Mapping):
        return len(list(value.keys()))
    assert isinstance(value, (str, bytes, Sequence))
    return len(value)


def _define_strings() -> None:
    for kind in (STRING, BYTES, list_of(A), map_of(A, B)):
        define("size", (kind,), INT, _size)
        define("size", (kind,), INT, _size, member=True)
    matches = lambda text, pattern: compile_regex(pattern).search(text) is not None  # noqa: E731
    define("matches", (STRING, STRING), BOOL, matches)
    define("matches", (STRING, STRING), BOOL, matches, member=True)
    define("contains", (STRING, STRING), BOOL, lambda s, x: x in s, member=True)
    define("startsWith", (STRING, STRING), BOOL, lambda s, x: s.startswith(x), member=True)
    define("endsWith", (STRING, STRING), BOOL, lambda s, x: s.endswith(x), member=True)


# -- conversions --------------------------------------------------------------------------------


def _double_to_int(value: float) -> int:
    if math.isnan(value) or value <= INT_MIN or value >= INT_MAX:
        raise CelEvalError("integer overflow")
    return int(value)


def _double_to_uint(value: float) -> UInt:
    if math.isnan(value) or value < 0 or value >= UINT_MAX:
        raise CelEvalError("unsigned integer overflow")
    return UInt(int(value))


def _parse_int(text: str, unsigned: bool = False) -> int:
    function = "ParseUint" if unsigned else "ParseInt"
    if not re.fullmatch(r"[+-]?\d+" if not unsigned else r"\+?\d+", text):
        raise CelEvalError(f'strconv.{function}: parsing "{text}": invalid syntax')
    value = int(text)
    if (unsigned and value > UINT_MAX) or (not unsigned and not INT_MIN <= value <= INT_MAX):
        raise CelEvalError(f'strconv.{function}: parsing "{text}": value out of range')
    return UInt(value) if unsigned else value


_FLOAT = re.compile(r"[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|inf(inity)?|nan)", re.I)


def _parse_double(text: str) -> float:
    if not _FLOAT.fullmatch(text):
        raise CelEvalError(f'strconv.ParseFloat: parsing "{text}": invalid syntax')
    return float(text)


_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def _parse_bool(text: str) -> bool:
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise CelEvalError(f'strconv.ParseBool: parsing "{text}": invalid syntax')


def _bytes_to_string(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise CelEvalError("invalid UTF-8 in bytes, cannot convert to string") from None


def _define_conversions() -> None:
    define("int", (INT,), INT, lambda v: v)
    define("int", (UINT,), INT, lambda v: check_int(int(v)))
    define("int", (DOUBLE,), INT, _double_to_int)
    define("int", (STRING,), INT, _parse_int)
    define("uint", (UINT,), UINT, lambda v: v)
    define("uint", (INT,), UINT, check_uint)
    define("uint", (DOUBLE,), UINT, _double_to_uint)
    define("uint", (STRING,), UINT, lambda v: _parse_int(v, unsigned=True))
    define("double", (DOUBLE,), DOUBLE, lambda v: v)
    define("double", (INT,), DOUBLE, float)
    define("double", (UINT,), DOUBLE, float)
    define("double", (STRING,), DOUBLE, _parse_double)
    define("string", (STRING,), STRING, lambda v: v)
    define("string", (INT,), STRING, lambda v: str(int(v)))
    define("string", (UINT,), STRING, lambda v: str(int(v)))
    define("string", (DOUBLE,), STRING, format_double)
    define("string", (BOOL,), STRING, lambda v: "true" if v else "false")
    define("string", (BYTES,), STRING, _bytes_to_string)
    define("bytes", (BYTES,), BYTES, lambda v: v)
    define("bytes", (STRING,), BYTES, lambda v: v.encode("utf-8"))
    define("bool", (BOOL,), BOOL, lambda v: v)
    define("bool", (STRING,), BOOL, _parse_bool)
    define("dyn", (A,), DYN, lambda v: v)
    define("type", (A,), type_of(A), runtime_type)


# -- optionals ----------------------------------------------------------------------------------


def _zero(value: object) -> bool:
    if value is None or value is False:
        return True
    if kind_of(value) in ("int", "uint", "double", "string", "bytes", "list", "map"):
        return _size(value) == 0 if kind_of(value) in ("string", "bytes", "list", "map") else value == 0
    return False


def _value(optional: Optional) -> object:
    if not optional.present:
        raise CelEvalError("optional.none() dereference")
    return optional.value


def _define_optionals() -> None:
    opt_a = optional_of(A)
    define("optional.of", (A,), opt_a, lambda v: Optional(v, True))
    define("optional.ofNonZeroValue", (A,), opt_a, lambda v: NONE if _zero(v) else Optional(v, True))
    define("optional.none", (), optional_of(DYN), lambda: NONE)
    define("hasValue", (opt_a,), BOOL, lambda o: o.present, member=True)
    define("value", (opt_a,), A, _value, member=True)
    define("orValue", (opt_a, A), A, lambda o, d: o.value if o.present else d, member=True)
    define("or", (opt_a, opt_a), opt_a, lambda o, p: o if o.present else p, member=True)


_define_arithmetic()
_define_relations()
_define_strings()
_define_conversions()
_define_optionals()
