"""The CEL parser: what must parse (the expressions webhook match conditions and CRD rules use),
what must not (with cel-go's wording and positions), precedence, literals, the size and nesting
limits, and, generated from the grammar, that well-formed text always parses and junk never
raises anything but CelSyntaxError."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from k3py.api.cel import MAX_LENGTH, MAX_NESTING, CelSyntaxError, parse
from k3py.api.cel.nodes import (
    Binary,
    Call,
    Conditional,
    CreateList,
    CreateMap,
    CreateMessage,
    Expr,
    FieldInit,
    Ident,
    Index,
    Literal,
    Select,
    Unary,
)

VALID = [
    "object.metadata.name != 'skip-me'",
    "has(object.metadata.labels) && 'x' in object.metadata.labels",
    "request.operation == 'CREATE' || request.resource.resource == \"pods\"",
    "object.spec.replicas > 3 ? true : false",
    "[1, 2].all(x, x > 0)",
    "{'a': 1}['a'] == 1u",
    'b"bytes"',
    "r'raw'",
    "'''triple'''",
    "1.5e3 < 2.0",
    "-1 == -(1)",
    "a.?b.orValue(1)",
    "x[?0]",
    "[?a, b]",
    "{?'k': v}",
    "google.protobuf.Duration{seconds: 1}",
    ".pkg.Msg{?f: 1,}",
    "[1, 2, 3,]",
    "{'a': 1, 'b': 2,}",
    "[]",
    "{}",
    ".root_ident",
    ".root_fn(1)",
    "0x1F + 0xffU + 0u",
    ".5 + 1e-3 + 2E+2",
    "-9223372036854775808",
    "18446744073709551615u",
    "!!true && !false",
    "--1",
    "!-1",
    "null == null",
    'R"\\d+" + r"""\\s"""',
    "B\"abc\" + b'''x''' + br\"\\x\"",
    '"\\a\\b\\f\\n\\r\\t\\v\\\\\\?\\"\\\'\\` \\x41\\X41\\u00e9\\U0001F600\\101"',
    "'''x''x'''",
    '"""a\nb"""',
    "a // a comment\n  + b // another",
    "a\t+\r\nb\f",
    "size(object.spec.containers) <= 10",
    "object.spec.containers.exists_one(c, c.name == 'main')",
    "object.spec.containers.map(c, c.image).filter(i, i.startsWith('r'))",
    "m.map(k, v, v + 1)",
    "a ? b : c ? d : e",
    "(a ? b : c) ? d : e",
    "a in [1, 2] == true",
    "x.in_list",
    "self.size() > 0 && self.all(s, s.matches('^[a-z]+$'))",
    "'\u00e9t\u00e9' + \"\U0001f600\"",
]

INVALID = [
    # (expression, line, column, substring of the message)
    ("... [] bad expression", 1, 2, "Syntax error: mismatched input '.'"),
    ("object.metadata.name [] bad", 1, 23, "Syntax error: mismatched input ']'"),
    ("a b", 1, 3, "mismatched input 'b' expecting <EOF>"),
    ("", 1, 1, "mismatched input '<EOF>' expecting {'['"),
    ("   ", 1, 4, "mismatched input '<EOF>'"),
    ("a +", 1, 4, "mismatched input '<EOF>'"),
    ("(a", 1, 3, "mismatched input '<EOF>' expecting ')'"),
    ("[1 2]", 1, 4, "mismatched input '2' expecting ']'"),
    ("{1 2}", 1, 4, "mismatched input '2' expecting ':'"),
    ("f(1,)", 1, 5, "mismatched input ')'"),
    ("[,]", 1, 2, "mismatched input ','"),
    ("a ? b", 1, 6, "expecting ':'"),
    ("a ? b ? c : d : e", 1, 7, "expecting ':'"),
    ("a = b", 1, 3, "Syntax error: token recognition error at: '='"),
    ("a & b", 1, 3, "token recognition error at: '&'"),
    ("a # b", 1, 3, "token recognition error at: '#'"),
    ("`a`", 1, 1, "token recognition error at: '`'"),
    ("'unterminated", 1, 1, "token recognition error at: '''"),
    ('"no\nnewline"', 1, 1, "token recognition error"),
    ("'''open", 1, 1, "token recognition error"),
    ('"\\q"', 1, 2, "token recognition error at: '\\q'"),
    ('"\\x4"', 1, 2, "token recognition error"),
    ('"\\400"', 1, 2, "token recognition error"),
    ('b"\\u00e9"', 1, 3, "unicode escape sequences are not allowed in bytes literals"),
    ('"\\ud800"', 1, 2, "invalid unicode code point"),
    ('"\\U00110000"', 1, 2, "invalid unicode code point"),
    ("rb'x'", 1, 3, "mismatched input"),
    ("if", 1, 1, "reserved identifier: if"),
    ("namespace == 'x'", 1, 1, "reserved identifier: namespace"),
    ("in", 1, 1, "mismatched input 'in'"),
    ("a.true", 1, 3, "mismatched input 'true' expecting IDENTIFIER"),
    ("9223372036854775808", 1, 1, "invalid int literal"),
    ("-9223372036854775809", 1, 2, "invalid int literal"),
    ("18446744073709551616u", 1, 1, "invalid uint literal"),
    ("has(a)", 1, 5, "invalid argument to has() macro"),
    ("has(a.?b)", 1, 6, "invalid argument to has() macro"),
    ("l.all(x.y, true)", 1, 8, "argument must be a simple name"),
    ("l.map(1, 2, 3)", 1, 7, "argument must be a simple name"),
    ("a.?b(1)", 1, 5, "mismatched input '('"),
    ("f(x){a: 1}", 1, 5, "mismatched input '{'"),
    ("1.", 1, 3, "mismatched input '<EOF>' expecting IDENTIFIER"),
    ("!-x", 1, 2, "mismatched input '-'"),
    ("a\n  && )", 2, 6, "mismatched input ')'"),
]


@pytest.mark.parametrize("text", VALID)
def test_valid_expressions_parse(text: str) -> None:
    assert parse(text) is not None


def test_logical_chains_are_balanced_and_other_chains_limited() -> None:
    a, b, c, d = (Ident(n) for n in "abcd")
    assert parse("a || b || c || d") == Binary("||", Binary("||", a, b), Binary("||", c, d))
    assert parse("a && b && c") == Binary("&&", Binary("&&", a, b), c)
    deep = parse(" || ".join(f"x == {i}" for i in range(5000)))
    depth, stack = 0, [(deep, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, Binary) and node.op == "||":
            depth = max(depth, level)
            stack += [(node.left, level + 1), (node.right, level + 1)]
    assert depth == 13  # ceil(log2(5000))
    assert parse(" + ".join(["1"] * MAX_NESTING)) is not None
    with pytest.raises(CelSyntaxError, match=f"expression recursion limit exceeded: {MAX_NESTING}"):
        parse(" + ".join(["1"] * (MAX_NESTING + 2)))


def test_reserved_words_are_valid_fields_and_methods() -> None:
    assert parse("a.while") == Select(Ident("a"), "while")
    assert parse("M{return: 1}") == CreateMessage("M", (FieldInit("return", Literal("int", 1)),))
    assert parse("c.namespace('x')") == Call("namespace", (Literal("string", "x"),), Ident("c"))


@pytest.mark.parametrize(("text", "line", "column", "message"), INVALID)
def test_invalid_expressions_are_refused_where_cel_go_points(
    text: str, line: int, column: int, message: str
) -> None:
    with pytest.raises(CelSyntaxError) as caught:
        parse(text)
    err = caught.value
    assert (err.line, err.column) == (line, column), str(err)
    assert message in err.message
    assert str(err).startswith(f"ERROR: <input>:{line}:{column}: ")


def test_error_shows_the_line_and_a_caret_under_the_column() -> None:
    with pytest.raises(CelSyntaxError) as caught:
        parse("object.x [] bad")
    assert str(caught.value) == (
        "ERROR: <input>:1:11: Syntax error: mismatched input ']' expecting "
        "{'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', "
        "NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}\n"
        " | object.x [] bad\n"
        " | ..........^"
    )


def a(name: str) -> Ident:
    return Ident(name)


def i(value: int) -> Literal:
    return Literal("int", value)


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("1 + 2 * 3", Binary("+", i(1), Binary("*", i(2), i(3)))),
        ("1 - 2 - 3", Binary("-", Binary("-", i(1), i(2)), i(3))),
        ("a || b && c", Binary("||", a("a"), Binary("&&", a("b"), a("c")))),
        ("a && b == c", Binary("&&", a("a"), Binary("==", a("b"), a("c")))),
        ("a < b + c", Binary("<", a("a"), Binary("+", a("b"), a("c")))),
        ("a == b in c", Binary("in", Binary("==", a("a"), a("b")), a("c"))),
        ("a % b / c", Binary("/", Binary("%", a("a"), a("b")), a("c"))),
        ("-a.b", Unary("-", Select(a("a"), "b"))),
        ("!a[0]", Unary("!", Index(a("a"), i(0)))),
        ("-1.abs()", Call("abs", (), i(-1))),
        ("- 1", i(-1)),
        ("-(1)", Unary("-", i(1))),
        ("--1", Unary("-", i(-1))),
        ("!!a", Unary("!", Unary("!", a("a")))),
        ("a ? b : c ? d : e", Conditional(a("a"), a("b"), Conditional(a("c"), a("d"), a("e")))),
        ("a || b ? c : d", Conditional(Binary("||", a("a"), a("b")), a("c"), a("d"))),
        ("a.b.c", Select(Select(a("a"), "b"), "c")),
        ("a.?b", Select(a("a"), "b", optional=True)),
        ("f(1, a)", Call("f", (i(1), a("a")))),
        (".f()", Call(".f", ())),
        ("x.f(1)", Call("f", (i(1),), a("x"))),
        ("a.b.T{}", CreateMessage("a.b.T", ())),
        ("1u", Literal("uint", 1)),
        ("0x10", i(16)),
        ("1e3", Literal("double", 1000.0)),
        ("-2.5", Literal("double", -2.5)),
        ("true", Literal("bool", True)),
        ("null", Literal("null", None)),
        ('"\\303\\277"', Literal("string", "\u00c3\u00bf")),
        ('b"\\303\\277"', Literal("bytes", b"\xc3\xbf")),
        ('b"\\xFF"', Literal("bytes", b"\xff")),
        ('b"\u00ff"', Literal("bytes", b"\xc3\xbf")),
        ('"\\xFF"', Literal("string", "\u00ff")),
        ('r"\\\\"', Literal("string", "\\\\")),
        ("r'a\\'", Literal("string", "a\\")),
        ("'\"\"'", Literal("string", '""')),
    ],
)
def test_trees(text: str, tree: Expr) -> None:
    assert parse(text) == tree


def test_collections() -> None:
    tree = parse("[1, ?x]")
    assert isinstance(tree, CreateList)
    assert [e.optional for e in tree.elements] == [False, True]
    tree = parse("{'a': 1, ?b: 2}")
    assert isinstance(tree, CreateMap)
    assert [(e.key, e.optional) for e in tree.entries] == [(Literal("string", "a"), False), (a("b"), True)]


def test_nesting_is_limited_without_recursion_error() -> None:
    assert parse("(" * (MAX_NESTING - 1) + "1" + ")" * (MAX_NESTING - 1)) == i(1)
    for opening, closing in (("(", ")"), ("[", "]"), ("f(", ")"), ("-(", ")"), ("a[", "]")):
        text = opening * 5000 + "1" + closing * 5000
        with pytest.raises(CelSyntaxError, match="expression recursion limit exceeded: 100"):
            parse(text)
    with pytest.raises(CelSyntaxError, match="recursion limit"):
        parse("a ? b : " * 200 + "c")


def test_long_flat_expressions_are_not_nesting() -> None:
    assert isinstance(parse(" || ".join(f"a{n}" for n in range(5000))), Binary)
    assert isinstance(parse("a" + ".b" * 5000), Select)
    assert isinstance(parse("!" * 5000 + "a"), Unary)


def test_size_is_limited() -> None:
    assert parse("1" + " " * (MAX_LENGTH - 1)) == i(1)
    with pytest.raises(
        CelSyntaxError, match="expression code point size exceeds limit: size: 100001, limit 100000"
    ):
        parse("1" + " " * MAX_LENGTH)


# -- generated from the grammar ------------------------------------------------------------------

_IDENTS = st.sampled_from(["a", "b", "_x", "self", "object", "request", "x1", "in_", "iff"])
_LITERALS = st.one_of(
    st.integers(0, 2**63 - 1).map(str),
    st.integers(0, 2**64 - 1).map(lambda n: f"{n}u"),
    st.integers(0, 2**63 - 1).map(lambda n: f"{n:#x}"),
    st.integers(0, 2**64 - 1).map(lambda n: f"{n:#x}u"),
    st.floats(0, 1e300, allow_nan=False).map(
        lambda f: repr(f) if any(c in repr(f) for c in ".e") else f"{f!r}.0"
    ),
    st.sampled_from(["true", "false", "null", "1e10", ".5", "2E-3"]),
    st.text(st.characters(exclude_characters="\\'\r\n", exclude_categories=["Cs"]), max_size=5).map(
        lambda s: f"'{s}'"
    ),
    st.text(st.characters(exclude_characters='"', exclude_categories=["Cs"]), max_size=5).map(
        lambda s: f'r"""{s}"""'
    ),
    st.sampled_from(['"\\n\\t\\u00e9"', "b'\\x00\\377'", 'B"""x"""', "R'\\d'"]),
)


def _compound(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary_ops = st.sampled_from(
        ["||", "&&", "<", "<=", ">=", ">", "==", "!=", "in", "+", "-", "*", "/", "%"]
    )
    args = st.lists(children, max_size=3).map(", ".join)
    return st.one_of(
        st.tuples(children, binary_ops, children).map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
        st.tuples(st.sampled_from(["!", "-", "!!", "--"]), children).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(children, children, children).map(lambda t: f"({t[0]}) ? ({t[1]}) : {t[2]}"),
        st.tuples(children, _IDENTS).map(lambda t: f"({t[0]}).{t[1]}"),
        st.tuples(children, _IDENTS).map(lambda t: f"({t[0]}).?{t[1]}"),
        st.tuples(children, _IDENTS, args).map(lambda t: f"({t[0]}).{t[1]}({t[2]})"),
        st.tuples(children, children).map(lambda t: f"({t[0]})[{t[1]}]"),
        st.tuples(_IDENTS, args).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(args, st.booleans()).map(lambda t: f"[{t[0]}{',' if t[0] and t[1] else ''}]"),
        st.lists(st.tuples(children, children), max_size=3).map(
            lambda kv: "{" + ", ".join(f"{k}: {v}" for k, v in kv) + "}"
        ),
        st.tuples(_IDENTS, children).map(lambda t: f"{t[0]}.all(x, {t[1]})"),
        st.tuples(_IDENTS, _IDENTS, children).map(lambda t: f"M.{t[0]}{{{t[1]}: {t[2]}}}"),
        children.map(lambda c: f"({c})"),
    )


EXPRESSIONS = st.recursive(
    st.one_of(_IDENTS, _LITERALS, _IDENTS.map(lambda s: "." + s)), _compound, max_leaves=25
)


@settings(max_examples=300, deadline=None)
@given(EXPRESSIONS)
def test_generated_expressions_parse(text: str) -> None:
    assert parse(text) is not None


_JUNK_ALPHABET = st.sampled_from(
    [*"abx01_.,:?!-+*/%<>=&|()[]{}'\"\\ \n\tru`#$@", "in", "if", "0x", "'''", '"""']
)


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.lists(_JUNK_ALPHABET, max_size=40).map("".join), st.text(max_size=40)))
def test_junk_raises_only_syntax_errors(text: str) -> None:
    try:
        parse(text)
    except CelSyntaxError as err:
        assert str(err).startswith("ERROR: <input>:")
        assert err.column >= 1 and err.line >= 1


@settings(max_examples=200, deadline=None)
@given(EXPRESSIONS, st.integers(0, 200), _JUNK_ALPHABET)
def test_corrupted_expressions_raise_only_syntax_errors(text: str, at: int, junk: str) -> None:
    at = min(at, len(text))
    with contextlib.suppress(CelSyntaxError):
        parse(text[:at] + junk + text[at:])
