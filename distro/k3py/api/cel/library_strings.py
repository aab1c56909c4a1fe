"""cel-go's strings extension (version 2, as Kubernetes enables it).

``charAt``, ``indexOf``, ``lastIndexOf``, ``lowerAscii``, ``upperAscii``, ``replace``, ``split``,
``substring``, ``trim``, ``join``, ``reverse``, ``strings.quote`` and ``format``. Indices count
code points, as cel-go's do, and out-of-range indices are the same errors
(``index out of range: 7``). ``format`` knows the verbs ``%s %d %f %e %b %o %x %X %%`` with an
optional precision (``%.2f``). Kubernetes' ``jsonpatch.escapeKey`` lives here too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Final

from k3py.api.cel.errors import CelEvalError
from k3py.api.cel.functions import define
from k3py.api.cel.types import DYN, INT, STRING, list_of
from k3py.api.cel.values import format_double, kind_of


def char_at(text: str, index: int) -> str:
    if not 0 <= index <= len(text):
        raise CelEvalError(f"index out of range: {index}")
    return text[index : index + 1]


def index_of(text: str, sub: str, offset: int = 0) -> int:
    if offset < 0 or (offset > len(text) and sub):
        if offset < 0:
            raise CelEvalError(f"index out of range: {offset}")
        return -1
    if not sub:
        return min(offset, len(text))
    return text.find(sub, offset)


def last_index_of(text: str, sub: str, offset: int | None = None) -> int:
    if offset is None:
        return len(text) if not sub else text.rfind(sub)
    if offset < 0:
        raise CelEvalError(f"index out of range: {offset}")
    if not sub:
        return min(offset, len(text))
    if offset >= len(text):
        return -1
    return text.rfind(sub, 0, offset + len(sub))


def _ascii(text: str, upper: bool) -> str:
    table = _UPPER if upper else _LOWER
    return text.translate(table)


_LOWER: Final = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_UPPER: Final = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def split(text: str, sep: str, limit: int = -1) -> list[str]:
    if limit == 0:
        return []
    if not sep:
        parts = list(text)
        if 0 < limit < len(parts):
            parts = [*parts[: limit - 1], "".join(parts[limit - 1 :])]
        return parts
    return text.split(sep, limit - 1 if limit > 0 else -1)


def substring(text: str, start: int, end: int | None = None) -> str:
    if end is None:
        if not 0 <= start <= len(text):
            raise CelEvalError(f"index out of range: {start}")
        return text[start:]
    if start > end:
        raise CelEvalError(f"invalid substring range. start: {start}, end: {end}")
    for index in (start, end):
        if not 0 <= index <= len(text):
            raise CelEvalError(f"index out of range: {index}")
    return text[start:end]


def join(items: Sequence[object], sep: str = "") -> str:
    for item in items:
        if not isinstance(item, str):
            raise CelEvalError(f"join: invalid input: {item}")
    return sep.join(items)  # type: ignore[arg-type]


_QUOTE_ESCAPES: Final = {
    "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
    "\v": "\\v", "\\": "\\\\", '"': '\\"',
}  # fmt: skip


def quote(text: str) -> str:
    return '"' + "".join(_QUOTE_ESCAPES.get(c, c) for c in text) + '"'


_VERB = re.compile(r"%(?:\.(\d+))?([sdfeboxX%])")


def format_string(template: str, args: Sequence[object]) -> str:
    out: list[str] = []
    pos = 0
    used = 0
    for match in _VERB.finditer(template):
        out.append(template[pos : match.start()])
        pos = match.end()
        precision, verb = match.group(1), match.group(2)
        if verb == "%":
            out.append("%")
            continue
        if used >= len(args):
            raise CelEvalError(f"index {used} out of range")
        out.append(_format_one(verb, precision, args[used]))
        used += 1
    out.append(template[pos:])
    return "".join(out)


def _format_one(verb: str, precision: str | None, value: object) -> str:
    kind = kind_of(value)
    if verb == "s":
        return to_text(value)
    if verb in "fe":
        if kind not in ("int", "uint", "double"):
            raise CelEvalError(
                f"error during formatting: fixed-point clause can only be used on doubles, was given {kind}"
            )
        digits = int(precision) if precision is not None else 6
        return f"{float(value):.{digits}{verb}}"  # type: ignore[arg-type]
    if verb == "d":
        if kind not in ("int", "uint"):
            raise CelEvalError(
                f"error during formatting: decimal clause can only be used on integers, was given {kind}"
            )
        return str(int(value))  # type: ignore[call-overload]
    if kind == "string" and verb in "xX":
        encoded = str(value).encode().hex()
        return encoded.upper() if verb == "X" else encoded
    if kind not in ("int", "uint"):
        raise CelEvalError(
            f"error during formatting: only integers can be formatted as {verb}, was given {kind}"
        )
    number = int(value)  # type: ignore[call-overload]
    spec = {"b": "b", "o": "o", "x": "x", "X": "X"}[verb]
    return ("-" if number < 0 else "") + format(abs(number), spec)


def to_text(value: object) -> str:
    """A value as ``%s`` shows it: strings bare, inside lists and maps quoted."""
    kind = kind_of(value)
    if kind == "string":
        return str(value)
    if kind == "double":
        return format_double(value)  # type: ignore[arg-type]
    if kind == "bool":
        return "true" if value else "false"
    if kind == "null":
        return "null"
    if kind == "list":
        assert isinstance(value, Sequence)
        return "[" + ", ".join(_nested(v) for v in value) + "]"
    if kind == "map":
        assert isinstance(value, Mapping)
        entries = sorted((_nested(k), _nested(value[k])) for k in value.keys())  # noqa: SIM118 (lazy mappings)
        return "{" + ", ".join(f"{k}: {v}" for k, v in entries) + "}"
    if kind == "bytes":
        assert isinstance(value, bytes)
        return value.decode("utf-8", "replace")
    return str(value)


def _nested(value: object) -> str:
    return quote(value) if isinstance(value, str) else to_text(value)


def _define() -> None:
    define("charAt", (STRING, INT), STRING, char_at, member=True)
    define("indexOf", (STRING, STRING), INT, index_of, member=True)
    define("indexOf", (STRING, STRING, INT), INT, index_of, member=True)
    define("lastIndexOf", (STRING, STRING), INT, last_index_of, member=True)
    define("lastIndexOf", (STRING, STRING, INT), INT, last_index_of, member=True)
    define("lowerAscii", (STRING,), STRING, lambda s: _ascii(s, upper=False), member=True)
    define("upperAscii", (STRING,), STRING, lambda s: _ascii(s, upper=True), member=True)
    define("replace", (STRING, STRING, STRING), STRING, lambda s, a, b: s.replace(a, b), member=True)
    define(
        "replace", (STRING, STRING, STRING, INT), STRING,
        lambda s, a, b, n: s.replace(a, b, n if n >= 0 else -1), member=True,
    )  # fmt: skip
    define("split", (STRING, STRING), list_of(STRING), split, member=True)
    define("split", (STRING, STRING, INT), list_of(STRING), split, member=True)
    define("substring", (STRING, INT), STRING, substring, member=True)
    define("substring", (STRING, INT, INT), STRING, substring, member=True)
    define("trim", (STRING,), STRING, lambda s: s.strip(), member=True)
    define("reverse", (STRING,), STRING, lambda s: s[::-1], member=True)
    define("join", (list_of(STRING),), STRING, join, member=True)
    define("join", (list_of(STRING), STRING), STRING, join, member=True)
    define("strings.quote", (STRING,), STRING, quote)
    define("format", (STRING, list_of(DYN)), STRING, format_string, member=True)
    # Kubernetes' JSON Patch helper (MutatingAdmissionPolicy): a map key as a JSON Pointer token.
    define("jsonpatch.escapeKey", (STRING,), STRING, lambda k: k.replace("~", "~0").replace("/", "~1"))


_define()
