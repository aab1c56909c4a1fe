"""YAML text as go.yaml.in/yaml/v3 writes it, for the ``Any`` values of the OpenAPI v2 protobuf.

gnostic stores ``default``, ``enum``, ``example`` and ``x-*`` values as YAML text; kube-apiserver's
document carries exactly what yaml.v3 emits for a node parsed from JSON once gnostic has cleared
its styles (block style, indent 4, no line folding, unicode kept). This is a port of the parts of
its emitter (emitterc.go) and resolver (resolve.go) that JSON values reach: :meth:`GoYaml.dump`
for a value, :func:`scalar_text` for one scalar.
"""

from __future__ import annotations

import datetime
import math
import re
from dataclasses import dataclass
from typing import Any, Final

import orjson

_PLAIN, _SINGLE, _DOUBLE, _LITERAL = range(4)
_INDENT: Final = 4
_BREAKS: Final = frozenset("\r\n\x85\u2028\u2029")
_ESCAPES: Final = {
    0x00: "0", 0x07: "a", 0x08: "b", 0x09: "t", 0x0A: "n", 0x0B: "v", 0x0C: "f", 0x0D: "r",
    0x1B: "e", 0x22: '"', 0x5C: "\\", 0x85: "N", 0xA0: "_", 0x2028: "L", 0x2029: "P",
}  # fmt: skip


def _printable(ch: str) -> bool:
    c = ord(ch)
    return c == 0x0A or 0x20 <= c <= 0x7E or 0xA0 <= c <= 0xD7FF or (0xE000 <= c <= 0xFFFD and c != 0xFEFF)


@dataclass(frozen=True, slots=True)
class _Scalar:
    """yaml_emitter_analyze_scalar: which styles can carry a string."""

    multiline: bool
    flow_plain: bool
    block_plain: bool
    single_quoted: bool
    block: bool

    @classmethod
    def analyze(cls, value: str) -> _Scalar:
        if not value:
            return cls(False, False, True, True, False)
        block_ind = flow_ind = value.startswith(("---", "..."))
        breaks = special = tabs = False
        leading_space = leading_break = trailing_space = trailing_break = False
        break_space = space_break = previous_space = previous_break = False
        preceded_by_ws = True
        last = len(value) - 1
        for i, ch in enumerate(value):
            followed_by_ws = i == last or value[i + 1] in " \t"
            if i == 0:
                if ch in "#,[]{}&*!|>'\"%@`":
                    flow_ind = block_ind = True
                elif ch in "?:":
                    flow_ind = True
                    block_ind = block_ind or followed_by_ws
                elif ch == "-" and followed_by_ws:
                    flow_ind = block_ind = True
            elif ch in ",?[]{}":
                flow_ind = True
            elif ch == ":":
                flow_ind = True
                block_ind = block_ind or followed_by_ws
            elif ch == "#" and preceded_by_ws:
                flow_ind = block_ind = True
            if ch == "\t":
                tabs = True
            elif not _printable(ch):
                special = True
            if ch == " ":
                leading_space = leading_space or i == 0
                trailing_space = trailing_space or i == last
                break_space = break_space or previous_break
                previous_space, previous_break = True, False
            elif ch in _BREAKS:
                breaks = True
                leading_break = leading_break or i == 0
                trailing_break = trailing_break or i == last
                space_break = space_break or previous_space
                previous_space, previous_break = False, True
            else:
                previous_space = previous_break = False
            preceded_by_ws = ch in " \t\x00" or ch in _BREAKS
        plain = not (leading_space or leading_break or trailing_space or trailing_break or break_space)
        plain = plain and not (space_break or tabs or special or breaks)
        return cls(
            multiline=breaks,
            flow_plain=plain and not flow_ind,
            block_plain=plain and not block_ind,
            single_quoted=not (break_space or space_break or tabs or special),
            block=not (trailing_space or space_break or special),
        )


def scalar_text(value: Any) -> str:
    """The text of a JSON scalar as the YAML parser keeps it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return orjson.dumps(value).decode()
    return str(value)


_YAML_FLOAT: Final = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_DOT_FLOAT: Final = re.compile(r"\.[0-9](_?[0-9])*([eE][-+]?[0-9](_?[0-9])*)?")  # Go: _ between digits
_GO_INT: Final = re.compile(
    r"([+-]?)(?:0([xX])([0-9a-fA-F]+)|0([oO])([0-7]+)|0([bB])([01]+)|0([0-7]*)|([1-9][0-9]*))"
)
_TIMESTAMP: Final = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:[Tt](\d{1,2}):(\d{1,2}):(\d{1,2})(?:[.,]\d+)?(?:Z|[+-](\d\d):(\d\d))"
    r"| (\d{1,2}):(\d{1,2}):(\d{1,2})(?:[.,]\d+)?)?"
)
_SPECIAL_WORDS: Final = frozenset(
    ["true", "True", "TRUE", "false", "False", "FALSE", "~", "null", "Null", "NULL"]
    + [f"{sign}.{word}" for sign in ("", "+", "-") for word in ("inf", "Inf", "INF")]
    + [".nan", ".NaN", ".NAN"]
)


def _go_float(text: str) -> bool:
    """strconv.ParseFloat succeeds on text already known to be a decimal float."""
    return not math.isinf(float(text))  # Go fails on overflow


def _go_int(text: str) -> bool:
    """strconv.ParseInt(text, 0, 64) or ParseUint(text, 0, 64) succeeds."""
    match = _GO_INT.fullmatch(text)
    if match is None:
        return False
    sign, _, hexa, _, octal, _, binary, legacy_octal, decimal = match.groups()
    if hexa is not None:
        magnitude = int(hexa, 16)
    elif octal is not None or legacy_octal is not None:
        magnitude = int(octal or legacy_octal or "0", 8)
    elif binary is not None:
        magnitude = int(binary, 2)
    else:
        magnitude = int(decimal)
    limit = {"": 1 << 64, "+": 1 << 63, "-": (1 << 63) + 1}[sign]
    return magnitude < limit


def _timestamp(text: str) -> bool:
    """time.Parse succeeds with one of the layouts yaml.v3 tries for plain scalars."""
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        return False
    numbers = [None if g is None else int(g) for g in match.groups()]
    year, month, day = numbers[0], numbers[1], numbers[2]
    assert year is not None and month is not None and day is not None
    try:
        datetime.date(year, month, day)
    except ValueError:
        return False
    hour, minute, second = numbers[3:6] if numbers[3] is not None else numbers[8:11]
    if hour is not None and not (
        hour < 24 and minute is not None and minute < 60 and second is not None and second < 60
    ):
        return False
    zone_hour, zone_minute = numbers[6], numbers[7]
    return zone_hour is None or (zone_hour <= 24 and zone_minute is not None and zone_minute <= 60)


def _resolves_to_str(text: str) -> bool:
    """yaml.v3's resolve(): would this text, written plain, read back as a string?"""
    if not text or text in _SPECIAL_WORDS:
        return False
    first = text[0]
    if first == ".":
        return not (_DOT_FLOAT.fullmatch(text) and _go_float(text))
    if not (first.isascii() and (first.isdigit() or first in "+-")):
        return True  # only the words above can start otherwise
    if _timestamp(text):
        return False
    plain = text.replace("_", "")
    if _go_int(plain) or (_YAML_FLOAT.fullmatch(plain) and _go_float(plain)):
        return False
    for prefix, base in (("0b", 2), ("0o", 8)):  # then ParseInt of what follows, which takes a sign
        if plain.startswith(prefix):
            rest = plain[len(prefix) :]
            return not (_go_parse(rest, base, unsigned=False) or _go_parse(rest, base, unsigned=True))
        if plain.startswith("-" + prefix):
            return not _go_parse("-" + plain[len(prefix) + 1 :], base, unsigned=False)
    return True


def _go_parse(text: str, base: int, *, unsigned: bool) -> bool:
    """strconv.ParseInt(text, base, 64), or ParseUint, succeeds (base 2 or 8)."""
    sign = "" if unsigned or text[:1] not in ("+", "-") else text[0]
    digits = text[len(sign) :]
    if not digits or any(ch not in "01234567"[:base] for ch in digits):
        return False
    value = int(digits, base)
    return value < 1 << 64 if unsigned else value < (1 << 63) + (sign == "-")


class GoYaml:
    """The emitter state: where the output is, and the indentation stack."""

    def __init__(self) -> None:
        self.out: list[str] = []
        self.column = 0
        self.whitespace = True
        self.indention = True
        self.indent = -1
        self.indents: list[int] = []
        self.flow_level = 0

    @classmethod
    def dump(cls, value: Any) -> str:
        emitter = cls()
        emitter.node(value, in_sequence=False, simple_key=False)
        emitter.write_indent()  # document end
        return "".join(emitter.out)

    # -- writer

    def put(self, text: str) -> None:
        self.out.append(text)
        self.column += len(text)

    def put_break(self) -> None:
        self.out.append("\n")
        self.column = 0
        self.indention = True

    def write_break(self, ch: str) -> None:
        if ch == "\n":
            self.put_break()
        else:
            self.out.append(ch)
            self.column = 0
            self.indention = True

    def write_indent(self) -> None:
        indent = max(self.indent, 0)
        if not self.indention or self.column > indent or (self.column == indent and not self.whitespace):
            self.put_break()
        if self.column < indent:
            self.put(" " * (indent - self.column))
        self.whitespace = True

    def indicator(self, text: str, need_whitespace: bool, is_whitespace: bool, is_indention: bool) -> None:
        if need_whitespace and not self.whitespace:
            self.put(" ")
        self.put(text)
        self.whitespace = is_whitespace
        self.indention = self.indention and is_indention

    def increase_indent(self, flow: bool, in_sequence: bool) -> None:
        self.indents.append(self.indent)
        if self.indent < 0:
            self.indent = _INDENT if flow else 0
        elif in_sequence:  # the first indent inside a sequence skips the "- "
            self.indent += 2
        else:
            self.indent = _INDENT * ((self.indent + _INDENT) // _INDENT)

    # -- nodes

    def node(self, value: Any, *, in_sequence: bool, simple_key: bool) -> None:
        if isinstance(value, dict | list) and not value:
            self.indicator("{" if isinstance(value, dict) else "[", True, True, False)
            self.increase_indent(True, in_sequence)
            self.indent = self.indents.pop()
            if self.column == 0:
                self.write_indent()
            self.indicator("}" if isinstance(value, dict) else "]", False, False, False)
        elif isinstance(value, dict):
            self.mapping(value, in_sequence)
        elif isinstance(value, list):
            self.increase_indent(False, in_sequence)
            for item in value:
                self.write_indent()
                self.indicator("-", True, False, True)
                self.node(item, in_sequence=True, simple_key=False)
            self.indent = self.indents.pop()
        else:
            self.scalar(scalar_text(value), isinstance(value, str), in_sequence, simple_key)

    def mapping(self, value: dict[str, Any], in_sequence: bool) -> None:
        self.increase_indent(False, in_sequence)
        for key, item in value.items():
            self.write_indent()
            if not _Scalar.analyze(key).multiline and len(key.encode()) <= 128:
                self.scalar(key, True, False, True)
                self.indicator(":", False, False, False)
            else:
                self.indicator("?", True, False, True)
                self.scalar(key, True, False, False)
                self.write_indent()
                self.indicator(":", True, False, True)
            self.node(item, in_sequence=False, simple_key=False)
        self.indent = self.indents.pop()

    def scalar(self, text: str, is_str: bool, in_sequence: bool, simple_key: bool) -> None:
        style = _PLAIN
        if is_str and "\n" in text:
            style = _LITERAL
        elif is_str and not _resolves_to_str(text):
            style = _DOUBLE  # quoted so that it reads back as a string
        info = _Scalar.analyze(text)
        if simple_key and info.multiline:
            style = _DOUBLE
        if style == _PLAIN:
            if not (info.flow_plain if self.flow_level else info.block_plain):
                style = _SINGLE
            if not text and (self.flow_level or simple_key):
                style = _SINGLE
        if style == _SINGLE and not info.single_quoted:
            style = _DOUBLE
        if style == _LITERAL and (not info.block or self.flow_level or simple_key):
            style = _DOUBLE
        self.increase_indent(True, in_sequence)
        (self.plain, self.single_quoted, self.double_quoted, self.literal)[style](text)
        self.indent = self.indents.pop()

    def plain(self, text: str) -> None:
        if text and not self.whitespace:
            self.put(" ")
        self.put(text)  # the analysis keeps spaces and breaks that would need care out of plain
        if text:
            self.whitespace = False
        self.indention = False

    def single_quoted(self, text: str) -> None:
        self.indicator("'", True, False, False)
        breaks = False
        for ch in text:
            if ch == " ":
                self.put(ch)
            elif ch in _BREAKS:
                if not breaks and ch == "\n":
                    self.put_break()
                self.write_break(ch)
                breaks = True
            else:
                if breaks:
                    self.write_indent()
                self.put("''" if ch == "'" else ch)
                self.indention = False
                breaks = False
        self.indicator("'", False, False, False)
        self.whitespace = self.indention = False

    def double_quoted(self, text: str) -> None:
        self.indicator('"', True, False, False)
        bom = text.startswith("\ufeff")  # yaml.v3 tests the start of the value at every position
        for ch in text:
            if bom or not _printable(ch) or ch in _BREAKS or ch in '"\\':
                code = ord(ch)
                escape = _ESCAPES.get(code)
                if escape is None:
                    width, letter = (2, "x") if code <= 0xFF else (4, "u") if code <= 0xFFFF else (8, "U")
                    escape = f"{letter}{code:0{width}X}"
                self.put("\\" + escape)
            else:
                self.put(ch)
        self.indicator('"', False, False, False)
        self.whitespace = self.indention = False

    def literal(self, text: str) -> None:
        self.indicator("|", True, False, False)
        if text[0] == " " or text[0] in _BREAKS:
            self.indicator(str(_INDENT), False, False, False)  # the best indent, whatever the actual one
        if text[-1] not in _BREAKS:
            self.indicator("-", False, False, False)
        elif len(text) == 1 or text[-2] in _BREAKS:
            self.indicator("+", False, False, False)
        self.put_break()
        self.whitespace = True
        breaks = True
        for ch in text:
            if ch in _BREAKS:
                self.write_break(ch)
                breaks = True
            else:
                if breaks:
                    self.write_indent()
                self.put(ch)
                self.indention = False
                breaks = False
