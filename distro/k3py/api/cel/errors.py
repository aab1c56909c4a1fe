"""The errors of the CEL front end and evaluator, worded as cel-go words them.

Compile errors read as cel-go's ``Issues.String()``.

kube-apiserver puts cel-go's text after ``compilation failed:`` in a field error, so clients
(and conformance tests) see ``ERROR: <input>:1:5: Syntax error: ...`` followed by the source
line and a caret under the offending column. Positions are 1-based lines and columns counted in
code points, as cel-go prints them. :class:`CelTypeError` carries every type error of an
expression, one ``ERROR:`` block each, in source order. :class:`CelEvalError` is a runtime error
(``no such key: foo``, ``division by zero``), carried as plain text as cel-go's are.
"""

from __future__ import annotations


def location(text: str, offset: int) -> tuple[int, int]:
    """The 1-based line and column of ``offset`` in ``text``."""
    before = text[:offset]
    line = before.count("\n") + 1
    column = offset - (before.rfind("\n") + 1) + 1
    return line, column


class CelSyntaxError(ValueError):
    """An expression that does not parse; ``str()`` is cel-go's report of it."""

    def __init__(self, text: str, offset: int, message: str) -> None:
        self.text = text
        self.offset = max(0, min(offset, len(text)))
        self.line, self.column = location(text, self.offset)
        self.message = message
        super().__init__(self._render())

    def _render(self) -> str:
        return render(self.text, self.offset, self.message)


def render(text: str, offset: int, message: str) -> str:
    """One ``ERROR:`` block: the message at its position, the source line, a caret under it."""
    line, column = location(text, max(0, min(offset, len(text))))
    head = f"ERROR: <input>:{line}:{column}: {message}"
    lines = text.split("\n")
    if line > len(lines):
        return head
    source = lines[line - 1].replace("\t", " ")
    return f"{head}\n | {source}\n | {'.' * (column - 1)}^"


class CelTypeError(ValueError):
    """An expression that parses but does not type-check; ``issues`` are (offset, message)
    pairs and ``str()`` is cel-go's report of all of them."""

    def __init__(self, text: str, issues: list[tuple[int, str]]) -> None:
        self.text = text
        self.issues = sorted(issues, key=lambda issue: issue[0])
        super().__init__("\n".join(render(text, offset, message) for offset, message in self.issues))


class CelEvalError(Exception):
    """An expression that failed while evaluating, e.g. ``no such key: replicas``."""
