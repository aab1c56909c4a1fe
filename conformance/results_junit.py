"""JUnit XML in and out: the reports of ginkgo (upstream ``e2e.test``) and of pytest.

Both write ``<testsuites>`` (or a lone ``<testsuite>``) holding ``<testcase name classname time>``
elements; a case failed if it has a ``<failure>`` or ``<error>`` child, was skipped if it has a
``<skipped>`` child, and passed otherwise. Ginkgo also puts a ``status`` attribute on each case
(``passed``, ``failed``, ``skipped``, ``pending``, ``panicked``, ``interrupted``, ``timedout``,
``aborted``) and prefixes spec names with ``[It]``, which :func:`parse_junit` drops so that names
match upstream's conformance list. pytest may report one test twice (a failing test whose
teardown also errors); such duplicates are folded into one case, the worse outcome winning.

:func:`merge_junit` joins the reports of the two upstream runs (parallel, then ``[Serial]``):
each lists every spec of the suite, skipping those the other run ran, so for each spec the run
that executed it wins. :func:`write_junit` renders cases as a report when no suite wrote one.
"""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from pathlib import Path

from conformance.results_model import Case, Status, area_of, tally

_FAILED_STATES = {"failed", "panicked", "interrupted", "timedout", "aborted", "error"}
_SKIPPED_STATES = {"skipped", "pending", "disabled"}
_RANK: dict[Status, int] = {"skipped": 0, "passed": 1, "failed": 2}
IT_PREFIX = "[It] "


class JUnitError(ValueError):
    """A JUnit file is missing, empty or not XML; the message names the file."""


def parse_junit(path: Path) -> list[Case]:
    """The cases of a ginkgo or pytest JUnit report, in file order, duplicates folded."""
    root = _load(path)
    cases: dict[tuple[str, str], Case] = {}
    for element in root.iter("testcase"):
        case = _case(element)
        key = (case.classname, case.name)
        cases[key] = _fold(cases[key], case) if key in cases else case
    return list(cases.values())


def _load(path: Path) -> ET.Element:
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        raise JUnitError(f"{path}: no such JUnit report") from None
    except ET.ParseError as exc:
        raise JUnitError(f"{path}: not a JUnit report ({exc})") from None
    if root.tag not in ("testsuites", "testsuite"):
        raise JUnitError(f"{path}: not a JUnit report (root element <{root.tag}>)")
    return root


def _case(element: ET.Element) -> Case:
    name = element.get("name", "").removeprefix(IT_PREFIX)
    classname = element.get("classname", "")
    status, message = _outcome(element)
    return Case(
        name=name,
        classname=classname,
        area=area_of(name, classname, _property(element, "area")),
        status=status,
        seconds=_seconds(element.get("time")),
        message=message,
    )


def _outcome(element: ET.Element) -> tuple[Status, str]:
    state = element.get("status", "").lower()
    skipped = element.find("skipped")
    problems = [child for child in element if child.tag in ("failure", "error")]
    if skipped is not None or (state in _SKIPPED_STATES and not problems):
        return "skipped", _text(skipped) if skipped is not None else state
    if problems or state in _FAILED_STATES:
        return "failed", "\n\n".join(_text(child) for child in problems) or state
    return "passed", ""


def _text(element: ET.Element) -> str:
    """A failure's message attribute and its body, each once (ginkgo often repeats one in the other)."""
    message = (element.get("message") or "").strip()
    body = (element.text or "").strip()
    if not body or body == message:
        return message
    if not message or message in body:
        return body
    return f"{message}\n{body}"


def _property(element: ET.Element, name: str) -> str:
    for prop in element.iterfind("properties/property"):
        if prop.get("name") == name:
            return prop.get("value", "")
    return ""


def _seconds(value: str | None) -> float:
    try:
        return max(0.0, float((value or "0").replace(",", "")))
    except ValueError:
        return 0.0


def _fold(first: Case, second: Case) -> Case:
    worse = second if _RANK[second.status] > _RANK[first.status] else first
    messages = [m for m in (first.message, second.message) if m]
    message = "\n\n".join(dict.fromkeys(messages))
    return Case(
        name=worse.name,
        classname=worse.classname,
        area=worse.area,
        status=worse.status,
        seconds=first.seconds + second.seconds,
        message=message if worse.status != "passed" else "",
    )


def merge_junit(paths: Sequence[Path], target: Path, *, suite_name: str = "Kubernetes e2e suite") -> None:
    """Write one report to ``target`` joining ``paths``: per test name, the run that executed it wins.

    Missing or unreadable reports are left out (an interrupted run may not have written one);
    with none readable, :class:`JUnitError` is raised.
    """
    chosen: dict[str, ET.Element] = {}
    readable = 0
    for path in paths:
        try:
            root = _load(path)
        except JUnitError:
            continue
        readable += 1
        for element in root.iter("testcase"):
            name = element.get("name", "")
            kept = chosen.get(name)
            if kept is None or _RANK[_outcome(element)[0]] >= _RANK[_outcome(kept)[0]]:
                chosen[name] = element
    if not readable:
        raise JUnitError(f"no readable JUnit report among {', '.join(str(p) for p in paths)}")
    _write(target, [copy.deepcopy(element) for element in chosen.values()], suite_name)


def write_junit(cases: Iterable[Case], target: Path, *, suite_name: str) -> None:
    """Render cases as a JUnit report (for a run whose suite wrote none)."""
    elements = []
    for case in cases:
        element = ET.Element("testcase", name=case.name, classname=case.classname, time=f"{case.seconds:.3f}")
        element.set("status", case.status)
        if case.status == "failed":
            ET.SubElement(element, "failure", message=case.message.split("\n", 1)[0]).text = case.message
        elif case.status == "skipped":
            ET.SubElement(element, "skipped", message=case.message or "skipped")
        elements.append(element)
    _write(target, elements, suite_name)


def _write(target: Path, testcases: list[ET.Element], suite_name: str) -> None:
    counts = tally(_case(element) for element in testcases)
    seconds = sum(_seconds(element.get("time")) for element in testcases)
    attrs = {
        "tests": str(counts.total),
        "disabled": "0",
        "errors": "0",
        "failures": str(counts.failed),
        "time": f"{seconds:.3f}",
    }
    root = ET.Element("testsuites", attrs)
    suite = ET.SubElement(root, "testsuite", {"name": suite_name, **attrs, "skipped": str(counts.skipped)})
    suite.extend(testcases)
    ET.indent(root, space="  ")
    target.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(target, encoding="UTF-8", xml_declaration=True)
