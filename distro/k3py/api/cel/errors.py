"""The one error the CEL front end raises, worded as cel-go's ``Issues.String()``.

kube-apiserver puts cel-go's text after ``compilation failed:`` in a field error, so clients
(and conformance tests) see ``ERROR: <input>:1:5: Syntax error: ...`` followed by the source
line and a caret under the offending column. Positions are 1-based lines and columns counted in
code points, as cel-go prints them.
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
        head = f"ERROR: <input>:{self.line}:{self.column}: {self.message}"
        lines = self.text.split("\n")
        if self.line > len(lines):
            return head
        source = lines[self.line - 1].replace("\t", " ")
        return f"{head}\n | {source}\n | {'.' * (self.column - 1)}^"
