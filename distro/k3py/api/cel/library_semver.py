"""Kubernetes' semver library: ``semver('1.2.3')``, ``isSemver``, ``major()``/``minor()``/``patch()``
and ordering by Semantic Versioning 2.0 precedence (``isGreaterThan``, ``isLessThan``,
``compareTo``). With a second argument ``true`` the text is normalized first, as upstream does:
a leading ``v`` is dropped and missing minor or patch numbers become zero.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from k3py.api.cel.errors import CelEvalError
from k3py.api.cel.functions import define
from k3py.api.cel.types import BOOL, INT, STRING, opaque

SEMVER: Final = opaque("kubernetes.Semver")
_PATTERN = re.compile(
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?"
)


@dataclass(frozen=True, slots=True)
class Semver:
    major: int
    minor: int
    patch: int
    pre: tuple[str, ...] = ()
    build: str = ""
    cel_type = "kubernetes.Semver"

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.pre:
            text += "-" + ".".join(self.pre)
        return text + (f"+{self.build}" if self.build else "")


def parse_semver(text: str, normalize: bool = False) -> Semver:
    if normalize:
        text = _normalized(text)
    match = _PATTERN.fullmatch(text)
    if match is None:
        raise CelEvalError(f"Invalid semver: {text}")
    pre = tuple(match.group(4).split(".")) if match.group(4) else ()
    return Semver(int(match.group(1)), int(match.group(2)), int(match.group(3)), pre, match.group(5) or "")


def _normalized(text: str) -> str:
    text = text.removeprefix("v")
    split = re.search(r"[-+]", text)
    core, rest = (text[: split.start()], text[split.start() :]) if split else (text, "")
    parts = core.split(".")
    while len(parts) < 3:
        parts.append("0")
    parts = [p.lstrip("0") or "0" for p in parts]
    return ".".join(parts) + rest


def compare(a: Semver, b: Semver) -> int:
    core_a, core_b = (a.major, a.minor, a.patch), (b.major, b.minor, b.patch)
    if core_a != core_b:
        return -1 if core_a < core_b else 1
    if a.pre == b.pre:
        return 0
    if not a.pre or not b.pre:
        return 1 if not a.pre else -1
    for x, y in zip(a.pre, b.pre, strict=False):
        if x == y:
            continue
        if x.isdigit() and y.isdigit():
            return -1 if int(x) < int(y) else 1
        if x.isdigit() != y.isdigit():
            return -1 if x.isdigit() else 1
        return -1 if x < y else 1
    return -1 if len(a.pre) < len(b.pre) else 1


def _valid(text: str, normalize: bool = False) -> bool:
    try:
        parse_semver(text, normalize)
    except CelEvalError:
        return False
    return True


def _define() -> None:
    define("semver", (STRING,), SEMVER, parse_semver)
    define("semver", (STRING, BOOL), SEMVER, parse_semver)
    define("isSemver", (STRING,), BOOL, _valid)
    define("isSemver", (STRING, BOOL), BOOL, _valid)
    define("isGreaterThan", (SEMVER, SEMVER), BOOL, lambda a, b: compare(a, b) > 0, member=True)
    define("isLessThan", (SEMVER, SEMVER), BOOL, lambda a, b: compare(a, b) < 0, member=True)
    define("compareTo", (SEMVER, SEMVER), INT, compare, member=True)
    define("major", (SEMVER,), INT, lambda v: v.major, member=True)
    define("minor", (SEMVER,), INT, lambda v: v.minor, member=True)
    define("patch", (SEMVER,), INT, lambda v: v.patch, member=True)


_define()
