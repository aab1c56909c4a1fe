"""Label and field selectors, parsed, matched and rejected exactly as kube-apiserver does.

Label selectors (``?labelSelector=``) follow k8s.io/apimachinery/pkg/labels/selector.go: a
hand-written lexer and recursive-descent parser over ``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``,
``a notin (x)``, ``a``, ``!a``, ``a>1``, ``a<1``, joined by commas. Keys and values are validated
as upstream validates them and every error carries upstream's wording, because clients (and
conformance tests) show the message as the server sent it. ``from_label_selector_object`` turns
a ``metav1.LabelSelector`` dict (Deployments, Services' owners, PDBs, ...) into the same type.

Field selectors (``?fieldSelector=``) follow k8s.io/apimachinery/pkg/fields/selector.go:
``a=b``, ``a==b``, ``a!=b``, comma-joined, with ``\\``-escaping in values. Which fields a
resource can be filtered by is decided, as upstream, by two per-kind tables: the field-label
conversion that accepts or rejects (and renames) a label -- ``check_field_selector`` -- and
the selectable-field set computed from an object -- ``selectable_fields``. Upstream's two
tables disagree in places (ReplicaSets compute ``status.replicas`` but reject it; Pods accept
``status.podIPs`` but never compute it); both quirks are kept.

Data flow in the API server: parse the query parameters (``SelectorError`` -> 400), check the
field selector against the resource (``SelectorError`` -> 400), then for each candidate object
``selector.matches(labels)`` and ``field_selector.matches(selectable_fields(resource, obj))``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any


class SelectorError(ValueError):
    """A selector that kube-apiserver would refuse; the message is upstream's, verbatim."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# -- upstream error formatting (util/validation/field) ------------------------------------------


def go_quote(text: str) -> str:
    """Go's ``%q`` / ``strconv.Quote`` for a string."""
    out = ['"']
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable() and ch != "\x7f":
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def _go_string_slice(values: list[str] | None) -> str:
    """Go's ``%#v`` of a ``[]string`` (``nil`` and empty print differently)."""
    if values is None:
        return "[]string(nil)"
    return "[]string{" + ", ".join(go_quote(v) for v in values) + "}"


def _invalid(path: str, value: str | list[str] | None, detail: str) -> str:
    """``field.Invalid(path, value, detail).Error()``."""
    shown = go_quote(value) if isinstance(value, str) else _go_string_slice(value)
    return f"{path}: Invalid value: {shown}: {detail}"


def _aggregate(messages: list[str]) -> str:
    """``utilerrors.NewAggregate(...).Error()`` after ``ErrorList.ToAggregate`` de-duplication."""
    unique = list(dict.fromkeys(messages))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


# -- key and value rules (api/validate/content) -------------------------------------------------

_LABEL_KEY_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_KEY_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an"
    " alphanumeric character"
)
_LABEL_VALUE_FMT = f"({_LABEL_KEY_FMT})?"
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.',"
    " and must start and end with an alphanumeric character"
)
_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.',"
    " and must start and end with an alphanumeric character"
)
_NAME_RE = re.compile(_LABEL_KEY_FMT)
_SUBDOMAIN_RE = re.compile(_DNS1123_SUBDOMAIN_FMT)


def _regex_error(message: str, regex: str, *examples: str) -> str:
    """``content.RegexError``, including upstream's doubled space before each ``or``."""
    shown = "".join(("" if i == 0 else " or ") + f"'{e}', " for i, e in enumerate(examples))
    return f"{message} (e.g. {shown}regex used for validation is '{regex}')"


def _max_len_error(length: int) -> str:
    return f"must be no more than {length} bytes"


def _byte_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def label_key_errors(key: str) -> list[str]:
    """``content.IsLabelKey``: an optional DNS-subdomain prefix and ``/``, then a name of <= 63."""
    errors: list[str] = []
    prefix, slash, name = key.partition("/")
    if not slash:
        name = key
    elif "/" in name:
        return [
            "a valid label key "
            + _regex_error(_LABEL_KEY_MSG, _LABEL_KEY_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    elif not prefix:
        errors.append("prefix part must be non-empty")
    else:
        errors.extend("prefix part " + e for e in _subdomain_errors(prefix))
    if not name:
        errors.append("name part must be non-empty")
    elif _byte_len(name) > 63:
        errors.append("name part " + _max_len_error(63))
    if not _NAME_RE.fullmatch(name):
        errors.append(
            "name part " + _regex_error(_LABEL_KEY_MSG, _LABEL_KEY_FMT, "MyName", "my.name", "123-abc")
        )
    return errors


def label_value_errors(value: str) -> list[str]:
    """``content.IsLabelValue``: empty, or <= 63 alphanumerics with ``-_.`` inside."""
    errors: list[str] = []
    if _byte_len(value) > 63:
        errors.append(_max_len_error(63))
    if value and not _NAME_RE.fullmatch(value):
        errors.append(_regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errors


def _subdomain_errors(value: str) -> list[str]:
    errors: list[str] = []
    if _byte_len(value) > 253:
        errors.append(_max_len_error(253))
    if not _SUBDOMAIN_RE.fullmatch(value):
        errors.append(_regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errors


# -- label requirements and selectors -----------------------------------------------------------


class Operator(enum.Enum):
    """``selection.Operator``; the values are upstream's spellings."""

    IN = "in"
    NOT_IN = "notin"
    EQUALS = "="
    DOUBLE_EQUALS = "=="
    NOT_EQUALS = "!="
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"
    GREATER_THAN = "gt"
    LESS_THAN = "lt"


_BINARY_OPERATORS = "in, notin, =, ==, !=, gt, lt"
_INT64_RE = re.compile(r"[+-]?[0-9]+")


def _parse_int64(text: str) -> int | None:
    """``strconv.ParseInt(text, 10, 64)``: an optional sign and ASCII digits, in int64 range."""
    if not _INT64_RE.fullmatch(text):
        return None
    number = int(text)
    return number if -(2**63) <= number < 2**63 else None


@dataclass(frozen=True, slots=True)
class Requirement:
    """One ANDed term of a label selector: ``key operator values``."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        if op in (Operator.IN, Operator.EQUALS, Operator.DOUBLE_EQUALS):
            return self.key in labels and labels[self.key] in self.values
        if op in (Operator.NOT_IN, Operator.NOT_EQUALS):
            return self.key not in labels or labels[self.key] not in self.values
        if op is Operator.EXISTS:
            return self.key in labels
        if op is Operator.DOES_NOT_EXIST:
            return self.key not in labels
        # Gt / Lt: both sides must be int64s, and there must be exactly one bound.
        if self.key not in labels or len(self.values) != 1:
            return False
        have, bound = _parse_int64(labels[self.key]), _parse_int64(self.values[0])
        if have is None or bound is None:
            return False
        return have > bound if op is Operator.GREATER_THAN else have < bound

    def __str__(self) -> str:
        op = self.operator
        if op is Operator.EXISTS:
            return self.key
        if op is Operator.DOES_NOT_EXIST:
            return "!" + self.key
        shown = self.values[0] if len(self.values) == 1 else ",".join(sorted(self.values))
        if op in (Operator.IN, Operator.NOT_IN):
            return f"{self.key} {op.value} ({shown})"
        symbol = {Operator.GREATER_THAN: ">", Operator.LESS_THAN: "<"}.get(op, op.value)
        return f"{self.key}{symbol}{shown}"


def new_requirement(key: str, operator: Operator, values: list[str] | None, *, path: str = "") -> Requirement:
    """``labels.NewRequirement``: validate key, arity and values; raise all problems at once.

    ``path`` prefixes field paths as upstream's ``field.WithPath`` does ("" means none).
    ``values=None`` stands for a Go nil slice, which only shows in error messages.
    """
    vals = [] if values is None else values
    dot = path + "." if path else ""
    errors: list[str] = []
    if key_errors := label_key_errors(key):
        errors.append(_invalid(dot + "key", key, "; ".join(key_errors)))
    values_path = dot + "values"
    if operator in (Operator.IN, Operator.NOT_IN):
        if not vals:
            errors.append(
                _invalid(values_path, values, "for 'in', 'notin' operators, values set can't be empty")
            )
    elif operator in (Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.NOT_EQUALS):
        if len(vals) != 1:
            errors.append(
                _invalid(values_path, values, "exact-match compatibility requires one single value")
            )
    elif operator in (Operator.EXISTS, Operator.DOES_NOT_EXIST):
        if vals:
            errors.append(
                _invalid(values_path, values, "values set must be empty for exists and does not exist")
            )
    else:
        if len(vals) != 1:
            errors.append(
                _invalid(values_path, values, "for 'Gt', 'Lt' operators, exactly one value is required")
            )
        for i, value in enumerate(vals):
            if _parse_int64(value) is None:
                errors.append(
                    _invalid(
                        f"{values_path}[{i}]", value, "for 'Gt', 'Lt' operators, the value must be an integer"
                    )
                )
    for i, value in enumerate(vals):
        if value_errors := label_value_errors(value):
            errors.append(_invalid(f"{values_path}[{i}][{key}]", value, "; ".join(value_errors)))
    if errors:
        raise SelectorError(_aggregate(errors))
    return Requirement(key, operator, tuple(vals))


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """ANDed requirements, sorted by key as upstream sorts them.

    ``nothing`` is upstream's ``labels.Nothing()``: what a nil ``metav1.LabelSelector`` means.
    """

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False

    @property
    def empty(self) -> bool:
        """True when the selector does not restrict anything (``Selector.Empty``)."""
        return not self.nothing and not self.requirements

    def matches(self, labels: Mapping[str, str]) -> bool:
        return not self.nothing and all(r.matches(labels) for r in self.requirements)

    def requires_exact_match(self, key: str) -> str | None:
        """The single value ``key`` must have (``=``, ``==`` or a one-value ``in``), if any."""
        for r in self.requirements:
            if r.key == key:
                exact = r.operator in (Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.IN)
                return r.values[0] if exact and len(r.values) == 1 else None
        return None

    def __str__(self) -> str:
        return "" if self.nothing else ",".join(str(r) for r in self.requirements)


def _sorted_selector(requirements: Iterable[Requirement]) -> LabelSelector:
    return LabelSelector(tuple(sorted(requirements, key=lambda r: r.key)))


def label_selector_from_set(labels: Mapping[str, str]) -> LabelSelector:
    """``labels.SelectorFromSet``: equality on every pair, unvalidated (Service selectors)."""
    return _sorted_selector(Requirement(k, Operator.EQUALS, (v,)) for k, v in labels.items())


_EXPRESSION_OPERATORS = {
    "In": Operator.IN,
    "NotIn": Operator.NOT_IN,
    "Exists": Operator.EXISTS,
    "DoesNotExist": Operator.DOES_NOT_EXIST,
}


def from_label_selector_object(obj: Mapping[str, Any] | None) -> LabelSelector:
    """``metav1.LabelSelectorAsSelector``: None selects nothing, ``{}`` selects everything."""
    if obj is None:
        return LabelSelector(nothing=True)
    match_labels: Mapping[str, Any] = obj.get("matchLabels") or {}
    expressions: list[Mapping[str, Any]] = obj.get("matchExpressions") or []
    requirements = [
        new_requirement(str(k), Operator.EQUALS, [str(match_labels[k])]) for k in sorted(match_labels)
    ]
    for expression in expressions:
        name = str(expression.get("operator", ""))
        operator = _EXPRESSION_OPERATORS.get(name)
        if operator is None:
            raise SelectorError(f"{go_quote(name)} is not a valid label selector operator")
        values = [str(v) for v in expression.get("values") or []]
        requirements.append(new_requirement(str(expression.get("key", "")), operator, values or None))
    return _sorted_selector(requirements)


# -- the label selector lexer and parser (a port of upstream's, quirks included) -----------------


class _Tok(enum.Enum):
    ERROR = enum.auto()
    END = enum.auto()
    CLOSED_PAR = enum.auto()
    COMMA = enum.auto()
    DOES_NOT_EXIST = enum.auto()
    DOUBLE_EQUALS = enum.auto()
    EQUALS = enum.auto()
    GREATER_THAN = enum.auto()
    IDENTIFIER = enum.auto()
    IN = enum.auto()
    LESS_THAN = enum.auto()
    NOT_EQUALS = enum.auto()
    NOT_IN = enum.auto()
    OPEN_PAR = enum.auto()


_LITERAL_TOKENS = {
    ")": _Tok.CLOSED_PAR,
    ",": _Tok.COMMA,
    "!": _Tok.DOES_NOT_EXIST,
    "==": _Tok.DOUBLE_EQUALS,
    "=": _Tok.EQUALS,
    ">": _Tok.GREATER_THAN,
    "in": _Tok.IN,
    "<": _Tok.LESS_THAN,
    "!=": _Tok.NOT_EQUALS,
    "notin": _Tok.NOT_IN,
    "(": _Tok.OPEN_PAR,
}
_SPECIAL = frozenset("=!(),><")
_WHITESPACE = frozenset(" \t\r\n")
_NUL = "\x00"  # upstream's reader returns byte 0 at the end *and* for a NUL in the input
_OPERATOR_TOKENS = {
    _Tok.IN: Operator.IN,
    _Tok.EQUALS: Operator.EQUALS,
    _Tok.DOUBLE_EQUALS: Operator.DOUBLE_EQUALS,
    _Tok.GREATER_THAN: Operator.GREATER_THAN,
    _Tok.LESS_THAN: Operator.LESS_THAN,
    _Tok.NOT_IN: Operator.NOT_IN,
    _Tok.NOT_EQUALS: Operator.NOT_EQUALS,
}

_Item = tuple[_Tok, str]


class _ParseError(Exception):
    pass


def _lex(text: str) -> list[_Item]:
    """All tokens up to and including the first end-of-string token."""
    pos = 0

    def read() -> str:
        nonlocal pos
        if pos < len(text):
            pos += 1
            return text[pos - 1]
        return _NUL

    def unread() -> None:
        nonlocal pos
        pos -= 1

    def scan_special() -> _Item:
        last: _Item | None = None
        buffer = ""
        while (ch := read()) != _NUL:
            if ch not in _SPECIAL:
                unread()
                break
            buffer += ch
            if (tok := _LITERAL_TOKENS.get(buffer)) is not None:
                last = (tok, buffer)
            elif last is not None:
                unread()
                break
        return last if last is not None else (_Tok.ERROR, f"error expected: keyword found '{buffer}'")

    def scan_identifier() -> _Item:
        buffer = []
        while (ch := read()) != _NUL:
            if ch in _SPECIAL or ch in _WHITESPACE:
                unread()
                break
            buffer.append(ch)
        word = "".join(buffer)
        return _LITERAL_TOKENS.get(word, _Tok.IDENTIFIER), word

    items: list[_Item] = []
    while True:
        ch = read()
        while ch in _WHITESPACE:
            ch = read()
        if ch == _NUL:
            items.append((_Tok.END, ""))
            return items
        unread()
        items.append(scan_special() if ch in _SPECIAL else scan_identifier())


class _Parser:
    """Upstream's parser: in a *values* context, ``in`` and ``notin`` are plain identifiers."""

    def __init__(self, text: str) -> None:
        self.items = _lex(text)
        self.position = 0

    def _item(self, index: int, values: bool) -> _Item:
        tok, lit = self.items[min(index, len(self.items) - 1)]
        if values and tok in (_Tok.IN, _Tok.NOT_IN):
            tok = _Tok.IDENTIFIER
        return tok, lit

    def lookahead(self, values: bool = True) -> _Item:
        return self._item(self.position, values)

    def consume(self, values: bool = True) -> _Item:
        self.position += 1
        return self._item(self.position - 1, values)

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            tok, lit = self.lookahead()
            if tok is _Tok.END:
                return requirements
            if tok not in (_Tok.IDENTIFIER, _Tok.DOES_NOT_EXIST):
                raise SelectorError(f"found '{lit}', expected: !, identifier, or 'end of string'")
            try:
                requirements.append(self.requirement())
            except (_ParseError, SelectorError) as err:
                raise SelectorError(f"unable to parse requirement: {err}") from None
            tok, lit = self.consume()
            if tok is _Tok.END:
                return requirements
            if tok is not _Tok.COMMA:
                raise SelectorError(f"found '{lit}', expected: ',' or 'end of string'")
            tok, lit = self.lookahead()
            if tok not in (_Tok.IDENTIFIER, _Tok.DOES_NOT_EXIST):
                raise SelectorError(f"found '{lit}', expected: identifier after ','")

    def requirement(self) -> Requirement:
        key, operator = self.key_and_inferred_operator()
        if operator is not None:
            return new_requirement(key, operator, [])
        operator = self.operator()
        values = self.value_set() if operator in (Operator.IN, Operator.NOT_IN) else self.exact_value()
        return new_requirement(key, operator, sorted(values))

    def key_and_inferred_operator(self) -> tuple[str, Operator | None]:
        operator = None
        tok, lit = self.consume()
        if tok is _Tok.DOES_NOT_EXIST:
            operator = Operator.DOES_NOT_EXIST
            tok, lit = self.consume()
        if tok is not _Tok.IDENTIFIER:
            raise _ParseError(f"found '{lit}', expected: identifier")
        if errors := label_key_errors(lit):
            raise _ParseError(_invalid("<nil>", lit, "; ".join(errors)))
        if operator is None and self.lookahead()[0] in (_Tok.END, _Tok.COMMA):
            operator = Operator.EXISTS
        return lit, operator

    def operator(self) -> Operator:
        tok, lit = self.consume(values=False)
        if tok not in _OPERATOR_TOKENS:
            raise _ParseError(f"found '{lit}', expected: {_BINARY_OPERATORS}")
        return _OPERATOR_TOKENS[tok]

    def value_set(self) -> set[str]:
        tok, lit = self.consume()
        if tok is not _Tok.OPEN_PAR:
            raise _ParseError(f"found '{lit}' expected: '('")
        tok, lit = self.lookahead()
        if tok is _Tok.CLOSED_PAR:  # "()"
            self.consume()
            return {""}
        if tok not in (_Tok.IDENTIFIER, _Tok.COMMA):
            raise _ParseError(f"found '{lit}', expected: ',', ')' or identifier")
        values = self.identifier_list()
        if self.consume()[0] is not _Tok.CLOSED_PAR:  # unreachable upstream too
            raise _ParseError(f"found '{lit}', expected: ')'")
        return values

    def identifier_list(self) -> set[str]:
        values: set[str] = set()
        while True:
            tok, lit = self.consume()
            if tok is _Tok.IDENTIFIER:
                values.add(lit)
                tok, lit = self.lookahead()
                if tok is _Tok.CLOSED_PAR:
                    return values
                if tok is not _Tok.COMMA:
                    raise _ParseError(f"found '{lit}', expected: ',' or ')'")
            elif tok is _Tok.COMMA:  # "(," ",," and ",)" each stand for an empty value
                if not values:
                    values.add("")
                tok, _ = self.lookahead()
                if tok is _Tok.CLOSED_PAR:
                    values.add("")
                    return values
                if tok is _Tok.COMMA:
                    values.add("")
            else:
                raise _ParseError(f"found '{lit}', expected: ',', or identifier")

    def exact_value(self) -> set[str]:
        if self.lookahead()[0] in (_Tok.END, _Tok.COMMA):
            return {""}
        tok, lit = self.consume()
        if tok is not _Tok.IDENTIFIER:
            raise _ParseError(f"found '{lit}', expected: identifier")
        return {lit}


def parse_label_selector(text: str) -> LabelSelector:
    """``labels.Parse``: the ``labelSelector`` query parameter. Raises ``SelectorError``."""
    return _sorted_selector(_Parser(text).parse())


# -- field selectors ----------------------------------------------------------------------------


def escape_field_value(value: str) -> str:
    """``fields.EscapeValue``: backslash-escape ``\\``, ``,`` and ``=``."""
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def _unescape_field_value(value: str) -> str:
    if not any(ch in value for ch in "\\,="):
        return value
    out: list[str] = []
    in_slash = False
    for ch in value:
        if in_slash:
            if ch not in "\\,=":
                raise SelectorError(f"invalid field selector: invalid escape sequence: \\{ch}")
            out.append(ch)
            in_slash = False
        elif ch == "\\":
            in_slash = True
        elif ch in ",=":  # Go prints the rune with %v: its code point
            raise SelectorError(f"invalid field selector: unescaped character in value: {ord(ch)}")
        else:
            out.append(ch)
    if in_slash:
        raise SelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _split_field_terms(text: str) -> list[str]:
    """Split on commas that are not backslash-escaped; escapes stay in the terms."""
    if not text:
        return []
    terms: list[str] = []
    start = 0
    in_slash = False
    for i, ch in enumerate(text):
        if in_slash:
            in_slash = False
        elif ch == "\\":
            in_slash = True
        elif ch == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


@dataclass(frozen=True, slots=True)
class FieldRequirement:
    """``field=value`` (``equals``) or ``field!=value``; a missing field reads as ``""``."""

    field: str
    value: str
    equals: bool = True

    def matches(self, fields: Mapping[str, str]) -> bool:
        return (fields.get(self.field, "") == self.value) is self.equals

    def __str__(self) -> str:
        return f"{self.field}{'=' if self.equals else '!='}{escape_field_value(self.value)}"


@dataclass(frozen=True, slots=True)
class FieldSelector:
    """ANDed field requirements, in upstream's order (terms sorted as written)."""

    requirements: tuple[FieldRequirement, ...] = field(default=())

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, fields: Mapping[str, str]) -> bool:
        return all(r.matches(fields) for r in self.requirements)

    def requires_exact_match(self, field_name: str) -> str | None:
        """The value ``field_name`` must equal, if the selector pins it (for index lookups)."""
        for r in self.requirements:
            if r.field == field_name and r.equals:
                return r.value
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def parse_field_selector(text: str) -> FieldSelector:
    """``fields.ParseSelector``: the ``fieldSelector`` query parameter. Raises ``SelectorError``."""
    requirements = []
    for term in sorted(_split_field_terms(text)):
        if not term:
            continue
        for i in range(len(term)):
            op = next((op for op in ("!=", "==", "=") if term.startswith(op, i)), None)
            if op is not None:
                value = _unescape_field_value(term[i + len(op) :])
                requirements.append(FieldRequirement(term[:i], value, op != "!="))
                break
        else:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{term}'")
    return FieldSelector(tuple(requirements))


# -- which fields each resource can be selected by ----------------------------------------------


def _not_supported(label: str) -> str:
    return f"field label not supported: {label}"


def _default_rejection(label: str) -> str:
    return f'{go_quote(label)} is not a known field selector: only "metadata.name", "metadata.namespace"'


@dataclass(frozen=True, slots=True)
class _FieldLabels:
    """A kind's field-label conversion: accepted labels, renames, and its own error wording."""

    accepted: frozenset[str]
    renames: Mapping[str, str] = field(default_factory=dict)
    rejection: Callable[[str], str] = _not_supported

    def convert(self, label: str) -> str:
        if label in self.renames:
            return self.renames[label]
        if label in self.accepted:
            return label
        raise SelectorError(self.rejection(label))


_METADATA = frozenset({"metadata.name", "metadata.namespace"})
_EVENT_FIELDS = frozenset(
    {
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    }
)
_EVENTS_K8S_IO_RENAMES = {
    "regarding.kind": "involvedObject.kind",
    "regarding.namespace": "involvedObject.namespace",
    "regarding.name": "involvedObject.name",
    "regarding.uid": "involvedObject.uid",
    "regarding.apiVersion": "involvedObject.apiVersion",
    "regarding.resourceVersion": "involvedObject.resourceVersion",
    "regarding.fieldPath": "involvedObject.fieldPath",
    "reportingController": "reportingComponent",
}

# Keyed by GroupResource string: the plural for the core group, "plural.group" otherwise. Kinds
# not listed get upstream's DefaultMetaV1FieldSelectorConversion (name and namespace only).
_FIELD_LABELS: dict[str, _FieldLabels] = {
    "pods": _FieldLabels(
        _METADATA
        | {
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.podIPs",
            "status.nominatedNodeName",
        },
        renames={"spec.host": "spec.nodeName"},  # old v1 clients
    ),
    "nodes": _FieldLabels(frozenset({"metadata.name", "spec.unschedulable"})),
    "replicationcontrollers": _FieldLabels(_METADATA | {"status.replicas"}),
    "events": _FieldLabels(_METADATA | _EVENT_FIELDS),
    "namespaces": _FieldLabels(frozenset({"metadata.name", "status.phase"})),
    "secrets": _FieldLabels(_METADATA | {"type"}),
    "services": _FieldLabels(_METADATA | {"spec.clusterIP", "spec.type"}),
    "jobs.batch": _FieldLabels(
        _METADATA | {"status.successful"},
        rejection=lambda label: f"field label {go_quote(label)} not supported for batchv1.Job",
    ),
    "certificatesigningrequests.certificates.k8s.io": _FieldLabels(
        frozenset({"metadata.name", "spec.signerName"})
    ),
    "clustertrustbundles.certificates.k8s.io": _FieldLabels(frozenset({"metadata.name", "spec.signerName"})),
    "podcertificaterequests.certificates.k8s.io": _FieldLabels(
        frozenset({"metadata.name", "spec.signerName", "spec.podName", "spec.nodeName"})
    ),
    "events.events.k8s.io": _FieldLabels(
        _METADATA | {"reason", "source", "type"},
        renames=_EVENTS_K8S_IO_RENAMES,
    ),
    "resourceslices.resource.k8s.io": _FieldLabels(
        frozenset({"metadata.name", "spec.nodeName", "spec.driver"}),
        rejection=lambda label: (
            f"field label not supported for resource.k8s.io/v1, Kind=ResourceSlice: {label}"
        ),
    ),
}
_DEFAULT_FIELD_LABELS = _FieldLabels(_METADATA, rejection=_default_rejection)

# Cluster-scoped kinds with their own field tables: their field set has no metadata.namespace.
_CLUSTER_SCOPED = frozenset(
    {
        "nodes",
        "namespaces",
        "certificatesigningrequests.certificates.k8s.io",
        "clustertrustbundles.certificates.k8s.io",
        "resourceslices.resource.k8s.io",
    }
)


@dataclass(frozen=True, slots=True)
class CustomResourceFields:
    """What a CRD version declares: its scope and ``selectableFields`` paths (``spec.color``)."""

    cluster_scoped: bool = False
    selectable_fields: tuple[str, ...] = ()


def check_field_selector(
    resource: str, selector: FieldSelector, *, custom: CustomResourceFields | None = None
) -> FieldSelector:
    """Reject labels the resource cannot be selected by; return the selector with upstream's
    renames applied (``spec.host`` -> ``spec.nodeName``, ``regarding.*`` -> ``involvedObject.*``).

    Raises ``SelectorError`` with the kind's own wording; the API answers 400 BadRequest.
    """
    if custom is not None:
        accepted = {"metadata.name", *custom.selectable_fields}
        if not custom.cluster_scoped:
            accepted.add("metadata.namespace")
        labels = _FieldLabels(frozenset(accepted))
    else:
        labels = _FIELD_LABELS.get(resource, _DEFAULT_FIELD_LABELS)
    return FieldSelector(tuple(replace(r, field=labels.convert(r.field)) for r in selector.requirements))


def _dig(obj: Mapping[str, Any], *path: str) -> Any:
    value: Any = obj
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _text(obj: Mapping[str, Any], *path: str) -> str:
    value = _dig(obj, *path)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _count(obj: Mapping[str, Any], *path: str) -> str:
    value = _dig(obj, *path)
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else "0"


def _flag(obj: Mapping[str, Any], *path: str) -> str:
    return "true" if _dig(obj, *path) is True else "false"


def _pod_fields(pod: Mapping[str, Any]) -> dict[str, str]:
    pod_ips = _dig(pod, "status", "podIPs") or []
    pod_ip = (
        _text(pod_ips[0], "ip")
        if pod_ips and isinstance(pod_ips[0], Mapping)
        else _text(pod, "status", "podIP")
    )
    return {
        "spec.nodeName": _text(pod, "spec", "nodeName"),
        "spec.restartPolicy": _text(pod, "spec", "restartPolicy"),
        "spec.schedulerName": _text(pod, "spec", "schedulerName"),
        "spec.serviceAccountName": _text(pod, "spec", "serviceAccountName"),
        "spec.hostNetwork": _flag(pod, "spec", "hostNetwork"),
        "status.phase": _text(pod, "status", "phase"),
        "status.podIP": pod_ip,
        "status.nominatedNodeName": _text(pod, "status", "nominatedNodeName"),
    }


def _event_fields(event: Mapping[str, Any]) -> dict[str, str]:
    """Core/v1 and events.k8s.io/v1 Events share one internal type and one field set."""
    if "regarding" in event or "reportingController" in event or "note" in event:
        involved = "regarding"
        component = _text(event, "deprecatedSource", "component")
        reporting = _text(event, "reportingController")
    else:
        involved = "involvedObject"
        component = _text(event, "source", "component")
        reporting = _text(event, "reportingComponent")
    fields = {
        f"involvedObject.{name}": _text(event, involved, name)
        for name in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
    }
    fields |= {
        "reason": _text(event, "reason"),
        "reportingComponent": reporting,
        "source": component or reporting,
        "type": _text(event, "type"),
    }
    return fields


_SELECTABLE: dict[str, Callable[[Mapping[str, Any]], dict[str, str]]] = {
    "pods": _pod_fields,
    "nodes": lambda o: {"spec.unschedulable": _flag(o, "spec", "unschedulable")},
    "replicationcontrollers": lambda o: {"status.replicas": _count(o, "status", "replicas")},
    "replicasets.apps": lambda o: {"status.replicas": _count(o, "status", "replicas")},
    "events": _event_fields,
    "events.events.k8s.io": _event_fields,
    # "name" is an upstream bug kept for compatibility; the label check never lets it through.
    "namespaces": lambda o: {
        "status.phase": _text(o, "status", "phase"),
        "name": _text(o, "metadata", "name"),
    },
    "secrets": lambda o: {"type": _text(o, "type")},
    "services": lambda o: {
        "spec.clusterIP": _text(o, "spec", "clusterIP"),
        "spec.type": _text(o, "spec", "type"),
    },
    "jobs.batch": lambda o: {"status.successful": _count(o, "status", "succeeded")},
    "certificatesigningrequests.certificates.k8s.io": lambda o: {
        "spec.signerName": _text(o, "spec", "signerName")
    },
    "clustertrustbundles.certificates.k8s.io": lambda o: {"spec.signerName": _text(o, "spec", "signerName")},
    "podcertificaterequests.certificates.k8s.io": lambda o: {
        "spec.signerName": _text(o, "spec", "signerName"),
        "spec.podName": _text(o, "spec", "podName"),
        "spec.nodeName": _text(o, "spec", "nodeName"),
    },
    "resourceslices.resource.k8s.io": lambda o: {
        "spec.nodeName": _text(o, "spec", "nodeName"),
        "spec.driver": _text(o, "spec", "driver"),
    },
}


def _custom_fields(obj: Mapping[str, Any], paths: tuple[str, ...]) -> dict[str, str]:
    return {path: _text(obj, *path.split(".")) for path in paths}


def selectable_fields(
    resource: str, obj: Mapping[str, Any], *, custom: CustomResourceFields | None = None
) -> dict[str, str]:
    """The ``fields.Set`` kube-apiserver matches field selectors against for ``obj``.

    ``metadata.namespace`` is present only for namespaced resources (upstream's
    ``ObjectMetaFieldsSet``); a missing field matches ``=""``, so this only shows in the set.
    """
    fields = {"metadata.name": _text(obj, "metadata", "name")}
    if custom is not None:
        if not custom.cluster_scoped:
            fields["metadata.namespace"] = _text(obj, "metadata", "namespace")
        return _custom_fields(obj, custom.selectable_fields) | fields
    namespaced = resource not in _CLUSTER_SCOPED and (
        resource in _SELECTABLE or _dig(obj, "metadata", "namespace") is not None
    )
    if namespaced:
        fields["metadata.namespace"] = _text(obj, "metadata", "namespace")
    extra = _SELECTABLE.get(resource)
    return (extra(obj) | fields) if extra is not None else fields
