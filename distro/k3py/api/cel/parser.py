"""A recursive-descent parser for CEL, after the grammar of the CEL language definition::

    Expr           = ConditionalOr ["?" ConditionalOr ":" Expr] ;
    ConditionalOr  = [ConditionalOr "||"] ConditionalAnd ;
    ConditionalAnd = [ConditionalAnd "&&"] Relation ;
    Relation       = [Relation Relop] Addition ;          Relop = < <= >= > == != in
    Addition       = [Addition ("+" | "-")] Multiplication ;
    Multiplication = [Multiplication ("*" | "/" | "%")] Unary ;
    Unary          = Member | "!" {"!"} Member | "-" {"-"} Member ;
    Member         = Primary | Member "." SELECTOR ["(" [ExprList] ")"] | Member "[" Expr "]" ;
    Primary        = ["."] IDENT ["(" [ExprList] ")"]
                   | ["."] SELECTOR {"." SELECTOR} "{" [FieldInits] [","] "}"
                   | "(" Expr ")" | "[" [ExprList] [","] "]" | "{" [MapInits] [","] "}" | LITERAL ;

plus the optional syntax Kubernetes enables (``a.?b``, ``a[?k]``, ``[?x]``, ``{?k: v}``,
``T{?f: v}``). The binary levels are parsed by precedence climbing over an explicit stack;
chains of ``||`` and ``&&`` become balanced trees (as in cel-go), so the tree, and the stack of
whatever walks it, grows only with real nesting (parentheses, brackets, calls, ``?:``, chains of
other operators), which is capped at :data:`MAX_NESTING`; :data:`MAX_LENGTH` caps the text.
Reserved words as names (not as fields: ``check.namespace('x')`` is valid, as in cel-go), a
malformed ``has()`` and a comprehension macro whose variable is not a simple name are refused
as cel-go refuses them while parsing. Nothing here evaluates or type-checks.
"""

from __future__ import annotations

from typing import Final

from k3py.api.cel.errors import CelSyntaxError
from k3py.api.cel.lexer import Token, tokenize
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
    ListElement,
    Literal,
    MapEntry,
    Select,
    Unary,
)

MAX_LENGTH: Final = 100_000
MAX_NESTING: Final = 100
RESERVED: Final = frozenset(
    {
        "as", "break", "const", "continue", "else", "for", "function", "if", "import",
        "let", "loop", "package", "namespace", "return", "var", "void", "while",
    }
)  # fmt: skip
_PRECEDENCE: Final = {
    "||": 1, "&&": 2,
    "<": 3, "<=": 3, ">=": 3, ">": 3, "==": 3, "!=": 3, "in": 3,
    "+": 4, "-": 4, "*": 5, "/": 5, "%": 5,
}  # fmt: skip
_PRIMARY_START: Final = (
    "{'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', "
    "NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}"
)
_LOGICAL: Final = frozenset({"||", "&&"})
_COMPREHENSIONS: Final = {"all": (2,), "exists": (2,), "exists_one": (2,), "filter": (2,), "map": (2, 3)}
_MAX_INT: Final = 2**63 - 1
_MAX_UINT: Final = 2**64 - 1


def parse(text: str) -> Expr:
    """The syntax tree of the CEL expression ``text``; :class:`CelSyntaxError` if it does not parse."""
    if len(text) > MAX_LENGTH:
        raise CelSyntaxError(
            text[:0], 0, f"expression code point size exceeds limit: size: {len(text)}, limit {MAX_LENGTH}"
        )
    parser = _Parser(text, tokenize(text))
    try:
        expr = parser.expr()
    except RecursionError:  # only if the caller already sits deep in the stack
        raise CelSyntaxError(text, 0, f"expression recursion limit exceeded: {MAX_NESTING}") from None
    parser.expect("EOF", "<EOF>")
    return expr


def check(text: str) -> str | None:
    """The syntax error of ``text`` as cel-go prints it, or None if it parses."""
    try:
        parse(text)
    except CelSyntaxError as err:
        return str(err)
    return None


class _Parser:
    def __init__(self, text: str, tokens: list[Token]) -> None:
        self.text = text
        self.tokens = tokens
        self.pos = 0
        self.depth = 0

    # -- tokens -------------------------------------------------------------------------------

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.pos + ahead, len(self.tokens) - 1)]

    def next(self) -> Token:
        token = self.peek()
        self.pos = min(self.pos + 1, len(self.tokens) - 1)
        return token

    def accept(self, kind: str) -> Token | None:
        return self.next() if self.peek().kind == kind else None

    def expect(self, kind: str, shown: str | None = None) -> Token:
        token = self.accept(kind)
        if token is None:
            raise self.mismatched(shown or f"'{kind}'")
        return token

    def mismatched(self, expecting: str) -> CelSyntaxError:
        token = self.peek()
        return self.error(token, f"Syntax error: mismatched input '{token.text}' expecting {expecting}")

    def error(self, token: Token, message: str) -> CelSyntaxError:
        return CelSyntaxError(self.text, token.offset, message)

    def name(self) -> Token:
        token = self.expect("IDENTIFIER", "IDENTIFIER")
        if token.text in RESERVED:
            raise self.error(token, f"reserved identifier: {token.text}")
        return token

    # -- rules --------------------------------------------------------------------------------

    def expr(self) -> Expr:
        start = self.peek()
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.error(start, f"expression recursion limit exceeded: {MAX_NESTING}")
        result = self.binary()
        if question := self.accept("?"):
            then = self.binary()
            self.expect(":")
            result = Conditional(result, then, self.expr(), question.offset)
        self.depth -= 1
        return result

    def binary(self) -> Expr:
        operands = [self.unary()]
        ops: list[Token] = []
        chained = 0
        while self.peek().kind in _PRECEDENCE:
            op = self.next()
            chained += op.kind not in _LOGICAL
            while ops and _PRECEDENCE[ops[-1].kind] >= _PRECEDENCE[op.kind]:
                _reduce(operands, ops)
            ops.append(op)
            operands.append(self.unary())
        while ops:
            _reduce(operands, ops)
        result = _balance(operands[0])
        if self.depth + chained > MAX_NESTING and (deep := _too_deep(result, MAX_NESTING - self.depth)):
            raise CelSyntaxError(
                self.text, deep.offset, f"expression recursion limit exceeded: {MAX_NESTING}"
            )
        return result

    def unary(self) -> Expr:
        ops: list[Token] = []
        while self.peek().kind in ("!", "-") and (not ops or self.peek().kind == ops[0].kind):
            ops.append(self.next())
        numeric = ("NUM_INT", "NUM_FLOAT")
        sign = None
        if self.peek().kind == "-" and self.peek(1).kind in numeric:  # ``!-1``: a signed literal
            sign = self.next()
        elif ops and ops[-1].kind == "-" and self.peek().kind in numeric:
            sign = ops.pop()
        result = self.member(self.primary() if sign is None else self.literal(negative=sign))
        for op in reversed(ops):
            result = Unary("!" if op.kind == "!" else "-", result, op.offset)
        return result

    def member(self, result: Expr) -> Expr:
        while True:
            token = self.peek()
            if self.accept("."):
                optional = self.accept("?") is not None
                name = self.expect("IDENTIFIER", "IDENTIFIER")  # reserved words are valid fields
                if not optional and self.accept("("):
                    result = self.call(name, self.arguments(), result)
                else:
                    result = Select(result, name.text, optional, token.offset)
            elif self.accept("["):
                optional = self.accept("?") is not None
                index = self.expr()
                self.expect("]")
                result = Index(result, index, optional, token.offset)
            elif token.kind == "{" and (type_name := _qualified_name(result)) is not None:
                self.next()
                result = CreateMessage(type_name, self.field_inits(), _offset(result))
            else:
                return result

    def primary(self) -> Expr:
        token = self.peek()
        if token.kind in ("IDENTIFIER", "."):
            dot = "." if self.accept(".") else ""
            name = self.name()
            if self.accept("("):
                return self.call(name, self.arguments(), None, dot)
            return Ident(dot + name.text, token.offset)
        if self.accept("("):
            inner = self.expr()
            self.expect(")")
            return inner
        if self.accept("["):
            return CreateList(self.list_elements(), token.offset)
        if self.accept("{"):
            return CreateMap(self.map_entries(), token.offset)
        return self.literal()

    def literal(self, negative: Token | None = None) -> Literal:
        token = self.peek()
        start = negative.offset if negative else token.offset
        if token.kind == "NUM_INT":
            value = -int(token.value or 0) if negative else int(token.value or 0)
            if not -_MAX_INT - 1 <= value <= _MAX_INT:
                raise self.error(token, "invalid int literal")
            self.next()
            return Literal("int", value, start)
        if token.kind == "NUM_UINT":
            if int(token.value or 0) > _MAX_UINT:
                raise self.error(token, "invalid uint literal")
            self.next()
            return Literal("uint", token.value, start)
        if token.kind == "NUM_FLOAT":
            self.next()
            number = float(token.value or 0.0)
            return Literal("double", -number if negative else number, start)
        if token.kind in ("STRING", "BYTES"):
            self.next()
            return Literal("string" if token.kind == "STRING" else "bytes", token.value, start)
        if token.kind in ("true", "false"):
            self.next()
            return Literal("bool", token.kind == "true", start)
        if token.kind == "null":
            self.next()
            return Literal("null", None, start)
        raise self.mismatched(_PRIMARY_START)

    def arguments(self) -> tuple[Expr, ...]:
        args: list[Expr] = []
        if not self.accept(")"):
            args.append(self.expr())
            while self.accept(","):
                args.append(self.expr())
            self.expect(")")
        return tuple(args)

    def list_elements(self) -> tuple[ListElement, ...]:
        elements: list[ListElement] = []
        while not self.accept("]"):
            optional = self.accept("?") is not None
            elements.append(ListElement(self.expr(), optional))
            if not self.accept(","):
                self.expect("]")
                break
        return tuple(elements)

    def map_entries(self) -> tuple[MapEntry, ...]:
        entries: list[MapEntry] = []
        while not self.accept("}"):
            optional = self.accept("?") is not None
            key = self.expr()
            self.expect(":")
            entries.append(MapEntry(key, self.expr(), optional))
            if not self.accept(","):
                self.expect("}")
                break
        return tuple(entries)

    def field_inits(self) -> tuple[FieldInit, ...]:
        fields: list[FieldInit] = []
        while not self.accept("}"):
            optional = self.accept("?") is not None
            name = self.expect("IDENTIFIER", "IDENTIFIER")
            self.expect(":")
            fields.append(FieldInit(name.text, self.expr(), optional))
            if not self.accept(","):
                self.expect("}")
                break
        return tuple(fields)

    def call(self, name: Token, args: tuple[Expr, ...], target: Expr | None, dot: str = "") -> Call:
        """A call, refusing macro calls whose arguments cel-go cannot expand."""
        if target is None and not dot and name.text == "has" and len(args) == 1:
            arg = args[0]
            if not isinstance(arg, Select) or arg.optional:
                raise CelSyntaxError(self.text, _offset(arg), "invalid argument to has() macro")
        if target is not None and len(args) in _COMPREHENSIONS.get(name.text, ()):
            variable = args[0]
            if not isinstance(variable, Ident) or variable.name.startswith("."):
                raise CelSyntaxError(self.text, _offset(variable), "argument must be a simple name")
        return Call(dot + name.text, args, target, name.offset)


def _balance(expr: Expr) -> Expr:
    """A chain ``a || b || c || d`` as a balanced tree, as cel-go builds it, so that long chains
    of ``||`` and ``&&`` nest only logarithmically."""
    if not isinstance(expr, Binary) or expr.op not in _LOGICAL:
        return expr
    terms: list[Expr] = []
    ops: list[Binary] = []
    node: Expr = expr
    while isinstance(node, Binary) and node.op == expr.op:
        terms.append(node.right)
        ops.append(node)
        node = node.left
    terms.append(node)
    terms.reverse()
    ops.reverse()
    return _balanced([_balance(t) for t in terms], ops, 0, len(ops) - 1)


def _too_deep(expr: Expr, limit: int) -> Binary | None:
    """The first operator found nested more than ``limit`` operators deep, if any."""
    stack: list[tuple[Expr, int]] = [(expr, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, Binary):
            if depth > limit:
                return node
            stack.extend(((node.left, depth + 1), (node.right, depth + 1)))
    return None


def _balanced(terms: list[Expr], ops: list[Binary], lo: int, hi: int) -> Expr:
    mid = (lo + hi + 1) // 2
    left = terms[mid] if mid == lo else _balanced(terms, ops, lo, mid - 1)
    right = terms[mid + 1] if mid == hi else _balanced(terms, ops, mid + 1, hi)
    return Binary(ops[mid].op, left, right, ops[mid].offset)


def _reduce(operands: list[Expr], ops: list[Token]) -> None:
    op = ops.pop()
    right = operands.pop()
    left = operands.pop()
    operands.append(Binary(op.kind, left, right, op.offset))


def _qualified_name(expr: Expr) -> str | None:
    """``a.b.C`` for an identifier or a chain of plain selections on one, else None."""
    if isinstance(expr, Ident):
        return expr.name
    if isinstance(expr, Select) and not expr.optional:
        inner = _qualified_name(expr.operand)
        return None if inner is None else f"{inner}.{expr.field}"
    return None


def _offset(expr: Expr) -> int:
    return expr.offset
