"""CEL lexis: the text of an expression turned into tokens, literals decoded.

Follows the lexical grammar of the CEL language definition (and cel-go's ANTLR lexer where the
definition is silent): identifiers ``[_a-zA-Z][_a-zA-Z0-9]*``; ints (decimal or ``0x`` hex),
uints (``u``/``U`` suffix), doubles (``1.5``, ``1e3``, ``.5``); strings and bytes (``b``
prefix) in single, double or triple quotes, raw with an ``r`` prefix, with the escapes
``\\a \\b \\f \\n \\r \\t \\v \\\\ \\? \\" \\' \\``` ``\\xHH \\uHHHH \\UHHHHHHHH \\ooo``;
``//`` comments. Signs are not part of number tokens: the parser folds ``-`` into a literal.
Reserved words come out as identifiers; the parser refuses them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from k3py.api.cel.errors import CelSyntaxError
from k3py.api.cel.nodes import LiteralValue

KEYWORDS: Final = frozenset({"true", "false", "null", "in"})
PUNCTUATION: Final = (
    "==", "!=", "<=", ">=", "&&", "||",
    "<", ">", "!", "-", "+", "*", "/", "%", "?", ":", ",", ".", "(", ")", "[", "]", "{", "}",
)  # fmt: skip

_SPACE = re.compile(r"(?:[\t\n\f\r ]+|//[^\r\n]*)+")
_IDENT = re.compile(r"[_a-zA-Z][_a-zA-Z0-9]*")
_NUMBER = re.compile(
    r"(?P<double>\d+\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+|\.\d+(?:[eE][+-]?\d+)?)"
    r"|(?P<hex>0x[0-9a-fA-F]+)(?P<hexu>[uU])?"
    r"|(?P<dec>\d+)(?P<decu>[uU])?"
)
_PREFIX = re.compile(r"[bB]?[rR]?(?=['\"])")
_BODIES: Final = {
    (False, '"""'): re.compile(r'"""((?:\\[\s\S]|[^\\])*?)"""'),
    (False, "'''"): re.compile(r"'''((?:\\[\s\S]|[^\\])*?)'''"),
    (False, '"'): re.compile(r'"((?:\\.|[^\\"\r\n])*)"'),
    (False, "'"): re.compile(r"'((?:\\.|[^\\'\r\n])*)'"),
    (True, '"""'): re.compile(r'"""([\s\S]*?)"""'),
    (True, "'''"): re.compile(r"'''([\s\S]*?)'''"),
    (True, '"'): re.compile(r'"([^"\r\n]*)"'),
    (True, "'"): re.compile(r"'([^'\r\n]*)'"),
}
_SIMPLE_ESCAPES: Final = {
    "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
    "\\": "\\", "?": "?", '"': '"', "'": "'", "`": "`",
}  # fmt: skip
_ESCAPE = re.compile(
    r"\\(?:[abfnrtv\\?\"'`]|[xX][0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-3][0-7]{2})"
)


@dataclass(frozen=True, slots=True)
class Token:
    """One token: ``kind`` is a punctuation or keyword's own text, or ``IDENTIFIER``,
    ``NUM_INT``, ``NUM_UINT``, ``NUM_FLOAT``, ``STRING``, ``BYTES``, ``EOF``."""

    kind: str
    text: str
    offset: int
    value: LiteralValue = None


def tokenize(text: str) -> list[Token]:
    """All tokens of ``text``, ending with an ``EOF`` token; a character no token starts with,
    an unterminated string or a bad escape raise :class:`CelSyntaxError`."""
    tokens: list[Token] = []
    pos = 0
    while True:
        space = _SPACE.match(text, pos)
        if space:
            pos = space.end()
        if pos >= len(text):
            tokens.append(Token("EOF", "<EOF>", len(text)))
            return tokens
        token = _token(text, pos)
        tokens.append(token)
        pos += len(token.text)


def _token(text: str, pos: int) -> Token:
    prefix = _PREFIX.match(text, pos)
    if prefix:
        return _string(text, pos, prefix.group())
    number = _NUMBER.match(text, pos)
    if number:
        return _number(text, pos, number)
    ident = _IDENT.match(text, pos)
    if ident:
        word = ident.group()
        return Token(word if word in KEYWORDS else "IDENTIFIER", word, pos)
    for punct in PUNCTUATION:
        if text.startswith(punct, pos):
            return Token(punct, punct, pos)
    raise CelSyntaxError(text, pos, f"Syntax error: token recognition error at: '{text[pos]}'")


def _number(text: str, pos: int, match: re.Match[str]) -> Token:
    lexeme = match.group()
    if match.group("double"):
        return Token("NUM_FLOAT", lexeme, pos, float(lexeme))
    digits, base = (match.group("hex")[2:], 16) if match.group("hex") else (match.group("dec"), 10)
    unsigned = bool(match.group("hexu") or match.group("decu"))
    return Token("NUM_UINT" if unsigned else "NUM_INT", lexeme, pos, int(digits, base))


def _string(text: str, pos: int, prefix: str) -> Token:
    start = pos + len(prefix)
    quote = text[start : start + 3] if text[start : start + 3] in ('"""', "'''") else text[start]
    raw = "r" in prefix.lower()
    is_bytes = "b" in prefix.lower()
    body = _BODIES[(raw, quote)].match(text, start)
    if body is None:
        raise CelSyntaxError(
            text, pos, f"Syntax error: token recognition error at: '{text[pos : start + 1]}'"
        )
    content = body.group(1)
    lexeme = text[pos : body.end()]
    if raw:
        value: str | bytes = content.encode() if is_bytes else content
    else:
        value = _unescape(text, start + len(quote), content, is_bytes=is_bytes)
    return Token("BYTES" if is_bytes else "STRING", lexeme, pos, value)


def _unescape(text: str, base: int, content: str, *, is_bytes: bool) -> str | bytes:
    out = bytearray()
    i = 0
    while i < len(content):
        if content[i] != "\\":
            end = content.find("\\", i)
            end = len(content) if end < 0 else end
            out += content[i:end].encode("utf-8", "surrogatepass")
            i = end
            continue
        escape = _ESCAPE.match(content, i)
        if escape is None:
            seq = content[i : i + 2]
            raise CelSyntaxError(text, base + i, f"Syntax error: token recognition error at: '{seq}'")
        out += _escaped(text, base + i, escape.group(), is_bytes=is_bytes)
        i = escape.end()
    if is_bytes:
        return bytes(out)
    return out.decode("utf-8", "surrogatepass")


def _escaped(text: str, offset: int, seq: str, *, is_bytes: bool) -> bytes:
    kind = seq[1]
    if kind in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[kind].encode()
    if kind in "xX" or kind in "0123":
        value = int(seq[2:], 16) if kind in "xX" else int(seq[1:], 8)
        return bytes([value]) if is_bytes else chr(value).encode()
    if is_bytes:
        raise CelSyntaxError(
            text, offset, "Syntax error: unicode escape sequences are not allowed in bytes literals"
        )
    point = int(seq[2:], 16)
    if point > 0x10FFFF or 0xD800 <= point <= 0xDFFF:
        raise CelSyntaxError(text, offset, f"Syntax error: invalid unicode code point in escape: '{seq}'")
    return chr(point).encode()
