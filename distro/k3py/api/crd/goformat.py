"""Values printed as Go prints the ``interface{}`` values of an unstructured object.

kube-openapi and apimachinery put values into messages with ``%v`` (numbers, booleans) or
``%#v`` (maps and slices, through ``field.Invalid``); a JSON number is an ``int64`` when it is
integral in the JSON, else a ``float64``. These helpers render Python's JSON values the same way.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from k3py.api.selectors import go_quote


def go_float(value: float) -> str:
    """``%v`` of a float64: the shortest digits, exponent form when the exponent is < -4 or >= 6
    (strconv's ``'g'`` with the shortest precision: ``1e+06``, ``123456``, ``1e-05``)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign, digits, exponent = Decimal(repr(value)).as_tuple()
    assert isinstance(exponent, int)
    text = "".join(str(d) for d in digits).rstrip("0") or "0"
    point = len(digits) + exponent  # position of the decimal point after the first digit group
    exp10 = point - 1
    prefix = "-" if sign else ""
    if exp10 < -4 or exp10 >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{prefix}{mantissa}e{'-' if exp10 < 0 else '+'}{abs(exp10):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{text}"
    if point >= len(text):
        return prefix + text + "0" * (point - len(text))
    return f"{prefix}{text[:point]}.{text[point:]}"


def go_v(value: Any) -> str:
    """``%v`` of a scalar JSON value (strings unquoted, as ``fmt.Sprint`` prints them)."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, (dict, list)):
        return go_sharp_v(value)
    return str(value)


def go_sharp_v(value: Any) -> str:
    """``%#v`` of a JSON value held in an ``interface{}`` (maps print with sorted keys)."""
    if value is None:
        return "interface {}(nil)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[]interface {}{" + ", ".join(go_sharp_v(v) for v in value) + "}"
    if isinstance(value, dict):
        pairs = (f"{go_quote(str(k))}:{go_sharp_v(value[k])}" for k in sorted(value))
        return "map[string]interface {}{" + ", ".join(pairs) + "}"
    return str(value)


def go_field_value(value: Any) -> str:
    """How ``field.Error`` shows a bad value: simple types with ``%v``, strings ``%q``, else ``%#v``."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, (bool, int, float)):
        return go_v(value)
    return go_sharp_v(value)


def go_type(value: Any) -> str:
    """``%T`` of a JSON value held in an ``interface{}``."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "[]interface {}"
    return "map[string]interface {}"
