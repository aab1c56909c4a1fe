"""Results as they happen: what a running suite's output says about tests done, total and failed.

:class:`GinkgoOutput` reads the verbose output of ginkgo v2 running ``e2e.test`` (``ginkgo -v``),
which is also what ``e2e.log`` holds. Each spec is a block between dashed lines: its text (with
its labels appended), its location, its output, then one result line, ``• [8.460 seconds]`` if it
passed or ``• [FAILED] [12.3 seconds]`` (PANICKED, TIMEDOUT, INTERRUPTED, ABORTED) followed by the
failure. Specs the focus and skip filters leave out are runs of ``S``; ``Will run 419 of 6731
specs`` opens a run and ``Ran 419 of 6731 Specs in 6465.2 seconds`` closes it. The non-verbose
form (``•`` per passed spec, no names) is understood too.

:class:`PytestOutput` reads ``pytest -v`` output, with or without pytest-xdist
(``[gw0] [ 50%] PASSED path::test`` or ``path::test PASSED [ 50%]``).

Both count as they read; both also keep the cases they saw, so that a run cut short before its
JUnit report was written still has results.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

from conformance.results_model import Case, Status, area_of

DELIMITER = "------------------------------"
_WILL_RUN = re.compile(r"^Will run (\d+) of (\d+) specs")
_RAN = re.compile(r"^Ran (\d+) of (\d+) Specs in ([\d.]+) seconds")
_PASSED = re.compile(r"^• (?:\[FLAKEY[^\]]*\] )?\[([\d.]+) seconds\]")
_FAILED = re.compile(r"^• \[(FAILED|PANICKED|TIMEDOUT|INTERRUPTED|ABORTED)\] \[([\d.]+) seconds\]")
_SKIPPED = re.compile(r"^[SP] \[(SKIPPED|PENDING)\] \[([\d.]+) seconds\]")
_SUITE_NODE = re.compile(
    r"^(\[[A-Za-z]*(?:Before|After)Suite\][^\[]*?|\[DeferCleanup \(Suite\)\])\s*"
    r"\[(FAILED|PANICKED|TIMEDOUT|INTERRUPTED|ABORTED)\] \[([\d.]+) seconds\]"
)
_GLYPHS = re.compile(r"^[•SP]+$")
_RESULTS = (_PASSED, _FAILED, _SKIPPED, _SUITE_NODE, _GLYPHS)
_LABELS = re.compile(r" \[[^\[\]]*, [^\[\]]*\]$")  # ginkgo -v appends "[sig-apps, Conformance]"
MESSAGE_LINES = 60


@dataclass(frozen=True, slots=True)
class SpecEvent:
    """A test finished (``name`` is empty when the output does not say which)."""

    name: str
    status: Status
    seconds: float


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Where a run stands: tests done of total (None until the suite says), failures so far."""

    phase: str
    done: int
    total: int | None
    passed: int
    failed: int
    skipped: int
    last_failure: str


class OutputParser(Protocol):
    def feed(self, line: str) -> SpecEvent | None: ...

    def snapshot(self) -> Snapshot: ...

    def cases(self) -> list[Case]: ...


@dataclass
class _Seen:
    name: str
    status: Status
    seconds: float
    message: list[str] = field(default_factory=list)


class GinkgoOutput:
    """Counts the specs of one or more ginkgo runs (one ``phase`` each) as their output is fed in."""

    def __init__(self, classname: str = "Kubernetes e2e suite") -> None:
        self.classname = classname
        self.phase = ""
        self._total: int | None = None
        self._done = 0
        self._passed = self._failed = self._skipped = 0
        self._last_failure = ""
        self._seen: list[_Seen] = []
        self._block_name = ""  # the spec text that opened the current block (verbose output)
        self._after_delimiter = False
        self._open: _Seen | None = None  # a failure whose message lines are still coming
        self._name_next = False  # non-verbose: the failed spec's name is on the next line

    def start_phase(self, phase: str) -> None:
        self.phase, self._total, self._done = phase, None, 0

    def feed(self, line: str) -> SpecEvent | None:
        line = line.rstrip("\r\n")
        if line == DELIMITER:
            self._after_delimiter, self._open, self._block_name = True, None, ""
            return None
        if self._after_delimiter:
            self._after_delimiter = False
            if line and not any(pattern.match(line) for pattern in _RESULTS):
                self._block_name = _spec_name(line)
                return None
        return self._result(line)

    def _result(self, line: str) -> SpecEvent | None:
        if found := _WILL_RUN.match(line):
            self._total = int(found.group(1))
            return None
        if found := _RAN.match(line):
            self._done = int(found.group(1))
            return None
        if found := _PASSED.match(line):
            return self._finish(self._block_name, "passed", float(found.group(1)))
        if found := _FAILED.match(line):
            event = self._finish(self._block_name, "failed", float(found.group(2)))
            self._name_next = not self._block_name
            return None if self._name_next else event  # the event comes with the name
        if found := _SKIPPED.match(line):
            event = self._finish(self._block_name, "skipped", float(found.group(2)))
            self._name_next = not self._block_name
            return None if self._name_next else event
        if found := _SUITE_NODE.match(line):
            name = found.group(1).strip()
            self._seen.append(_Seen(name, "failed", float(found.group(3))))
            self._open, self._failed, self._last_failure = self._seen[-1], self._failed + 1, name
            return SpecEvent(name, "failed", float(found.group(3)))
        if _GLYPHS.match(line):
            passed, skipped = line.count("•"), len(line) - line.count("•")
            self._done += passed
            self._passed, self._skipped = self._passed + passed, self._skipped + skipped
            self._seen.extend(_Seen("", "passed", 0.0) for _ in range(passed))
            return None
        if self._open is not None:
            if self._name_next and line.strip():
                self._name_next = False
                self._open.name = _spec_name(line.strip())
                if self._open.status == "failed":
                    self._last_failure = self._open.name
                return SpecEvent(self._open.name, self._open.status, self._open.seconds)
            elif len(self._open.message) < MESSAGE_LINES:
                self._open.message.append(line)
        return None

    def _finish(self, name: str, status: Status, seconds: float) -> SpecEvent:
        seen = _Seen(name, status, seconds)
        self._seen.append(seen)
        self._done += 1  # a spec skipped at run time is one of the "Will run" ones, so it counts as done
        if status == "skipped":
            self._skipped += 1
        elif status == "passed":
            self._passed += 1
        else:
            self._failed += 1
            self._last_failure = name or self._last_failure
        if status != "passed":
            self._open = seen  # the failure or skip reason follows
        return SpecEvent(name, status, seconds)

    def snapshot(self) -> Snapshot:
        return Snapshot(
            phase=self.phase,
            done=self._done,
            total=self._total,
            passed=self._passed,
            failed=self._failed,
            skipped=self._skipped,
            last_failure=self._last_failure,
        )

    def cases(self) -> list[Case]:
        """The named specs seen so far (non-verbose passes carry no name and are left out)."""
        return [
            Case(
                name=seen.name,
                classname=self.classname,
                area=area_of(seen.name),
                status=seen.status,
                seconds=seen.seconds,
                message="\n".join(line.strip() for line in seen.message).strip(),
            )
            for seen in self._seen
            if seen.name
        ]


def _spec_name(text: str) -> str:
    """A spec's name as the JUnit report spells it: no ``[It]``, no appended label list."""
    return _LABELS.sub("", text.strip()).replace("[It] ", "")


_COLLECTED = re.compile(r"^collected (\d+) items?")
_WORKERS = re.compile(r"^\d+ workers? \[(\d+) items?\]")
_OUTCOME = "PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS"
_XDIST_LINE = re.compile(rf"^\[gw\d+\] \[\s*\d+%\] ({_OUTCOME}) (.+?)\s*$")
_PLAIN_LINE = re.compile(rf"^(\S.*::.+?) ({_OUTCOME})(?:\s+\[\s*\d+%\])?\s*$")
_PYTEST_STATUS: dict[str, Status] = {
    "PASSED": "passed",
    "XPASS": "passed",
    "FAILED": "failed",
    "ERROR": "failed",
    "SKIPPED": "skipped",
    "XFAIL": "skipped",
}


class PytestOutput:
    """Counts the tests of a ``pytest -v`` run (with or without xdist) as its output is fed in."""

    def __init__(self) -> None:
        self._total: int | None = None
        self._status: dict[str, Status] = {}
        self._last_failure = ""

    def feed(self, line: str) -> SpecEvent | None:
        line = line.rstrip("\r\n")
        if found := _COLLECTED.match(line) or _WORKERS.match(line):
            self._total = int(found.group(1))
            return None
        if found := _XDIST_LINE.match(line):
            outcome, nodeid = found.group(1), found.group(2)
        elif found := _PLAIN_LINE.match(line):
            nodeid, outcome = found.group(1), found.group(2)
        else:
            return None
        status = _PYTEST_STATUS[outcome]
        if self._status.get(nodeid) == "failed":
            return None  # a teardown error after a failure: counted once
        self._status[nodeid] = status
        if status == "failed":
            self._last_failure = nodeid
        return SpecEvent(nodeid, status, 0.0)

    def snapshot(self) -> Snapshot:
        statuses = list(self._status.values())
        return Snapshot(
            phase="native",
            done=len(statuses),
            total=self._total,
            passed=statuses.count("passed"),
            failed=statuses.count("failed"),
            skipped=statuses.count("skipped"),
            last_failure=self._last_failure,
        )

    def cases(self) -> list[Case]:
        cases = []
        for nodeid, status in self._status.items():
            path, _, name = nodeid.partition("::")
            classname = path.removesuffix(".py").replace("/", ".")
            cases.append(Case(name, classname, area_of(name, classname), status, 0.0))
        return cases
