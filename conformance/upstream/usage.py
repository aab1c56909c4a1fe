"""Which ``[Conformance]`` specs use which test image, read from the e2e sources (best effort).

A spec uses an image when the body of its ``ConformanceIt(…, func(…) {…})`` names the image's
constant (``imageutils.Nginx``): that is a *direct* use. A constant named elsewhere in a file
(helpers, ``BeforeEach``, package variables) is charged to every conformance spec of that file:
a *file* use, which may over-count. Bodies of other specs (the dry run without focus gives every
spec's location) are not charged to anyone. Uses through helpers of other packages
(``e2epod.NewAgnhostPod`` in the framework) are not followed, which matters only for images that
are built (agnhost, busybox, pause).

Go is scanned just enough to match braces: comments, strings, raw strings and runes are skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

IMAGE_PACKAGE = "k8s.io/kubernetes/test/utils/image"
_IMPORT = re.compile(
    r"^\s*(?:import\s+)?(?P<alias>\w+)?\s*\"" + re.escape(IMAGE_PACKAGE) + r"\"", re.MULTILINE
)


@dataclass(frozen=True, kw_only=True)
class Spec:
    """Where a spec is declared: file (``test/e2e/…``), line, and whether it is a conformance spec."""

    name: str
    file: str
    line: int
    conformance: bool


@dataclass(frozen=True, kw_only=True)
class Use:
    """A conformance spec that needs an image; ``how`` is ``direct`` or ``file``."""

    spec: str
    file: str
    how: str


def references(source: str, constants: Iterable[str]) -> dict[str, list[int]]:
    """``constant -> lines`` where ``<alias>.<constant>`` appears (alias from the file's import)."""
    aliases = {m.group("alias") or "image" for m in _IMPORT.finditer(source)}
    if not aliases:
        return {}
    code = blank_comments_and_strings(source)
    found: dict[str, list[int]] = {}
    pattern = re.compile(
        r"\b(?:"
        + "|".join(map(re.escape, sorted(aliases)))
        + r")\.(?P<constant>"
        + "|".join(map(re.escape, sorted(constants, key=len, reverse=True)))
        + r")\b"
    )
    for match in pattern.finditer(code):
        found.setdefault(match.group("constant"), []).append(code.count("\n", 0, match.start()) + 1)
    return found


def body_lines(code: str, line: int) -> tuple[int, int]:
    """The lines from ``line`` to the brace closing the first block opened at or after it.

    ``code`` is Go source passed through :func:`blank_comments_and_strings`.
    """
    offsets = [0]
    for index, char in enumerate(code):
        if char == "\n":
            offsets.append(index + 1)
    if line < 1 or line > len(offsets):
        return (line, line)
    opened = code.find("{", offsets[line - 1])
    if opened < 0:
        return (line, line)
    depth = 0
    for index in range(opened, len(code)):
        if code[index] == "{":
            depth += 1
        elif code[index] == "}":
            depth -= 1
            if depth == 0:
                return (line, code.count("\n", 0, index) + 1)
    return (line, len(offsets))


def image_uses(source_root: Path, specs: Iterable[Spec], constants: Iterable[str]) -> dict[str, list[Use]]:
    """``constant -> conformance specs using it``, over the spec files under ``source_root`` (the module)."""
    wanted = sorted(set(constants))
    by_file: dict[str, list[Spec]] = {}
    for spec in specs:
        by_file.setdefault(spec.file, []).append(spec)
    uses: dict[str, dict[str, Use]] = {constant: {} for constant in wanted}
    for file, in_file in sorted(by_file.items()):
        if not any(spec.conformance for spec in in_file):
            continue
        path = source_root / file
        if not path.is_file():
            continue
        source = path.read_text(encoding="utf-8", errors="replace")
        found = references(source, wanted)
        if not found:
            continue
        code = blank_comments_and_strings(source)
        bodies = [(spec, body_lines(code, spec.line)) for spec in in_file]
        for constant, lines in found.items():
            for line in lines:
                owners = [spec for spec, (first, last) in bodies if first <= line <= last]
                if owners:
                    # Innermost body: the spec declared last among those enclosing the line.
                    owner = max(owners, key=lambda spec: spec.line)
                    if owner.conformance:
                        uses[constant][owner.name] = Use(spec=owner.name, file=file, how="direct")
                    continue
                for spec in in_file:
                    if spec.conformance and spec.name not in uses[constant]:
                        uses[constant][spec.name] = Use(spec=spec.name, file=file, how="file")
    return {constant: sorted(found.values(), key=lambda use: use.spec) for constant, found in uses.items()}


_TOKENS = re.compile(r"//[^\n]*|/\*.*?\*/|`[^`]*`|\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*'", re.DOTALL)


def blank_comments_and_strings(source: str) -> str:
    """``source`` with comments, strings and runes replaced by spaces (newlines kept): braces then match."""
    return _TOKENS.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), source)
