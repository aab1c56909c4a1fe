"""The values a conformance run's results are made of: test cases, their areas, the run's facts.

A :class:`Case` is one test as a suite's JUnit report records it (upstream ``e2e.test`` through
ginkgo, or our native pytest suite), reduced to what the reports need. Its ``area`` is the
Kubernetes SIG the test belongs to: the ``[sig-xxx]`` tag of an upstream test name, or, for a
native test, its ``area`` JUnit property or the suite directory it lives in
(``conformance/suites/api_machinery/`` is ``api-machinery``). :class:`RunMeta` holds what the
harness knows about the run (versions, binary, commit, command lines) and :class:`Results` is
what :func:`conformance.results.write_results` made of both.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

Status = Literal["passed", "failed", "skipped"]

# The areas of the upstream [Conformance] tests, in the order the reports list them.
AREAS = (
    "api-machinery",
    "apps",
    "node",
    "network",
    "storage",
    "auth",
    "cli",
    "scheduling",
    "instrumentation",
    "architecture",
)
# Ginkgo's suite-level nodes, reported beside the specs; a failure there fails the whole run.
SUITE_AREA = "suite"
OTHER_AREA = "other"
SUITE_NODES = (
    "[ReportBeforeSuite]",
    "[BeforeSuite]",
    "[SynchronizedBeforeSuite]",
    "[SynchronizedAfterSuite]",
    "[AfterSuite]",
    "[ReportAfterSuite]",
    "[DeferCleanup (Suite)]",
)
CONFORMANCE_TAG = "[Conformance]"
KUBERNETES_VERSION = "v1.37"

_SIG = re.compile(r"\[sig-([a-z0-9-]+)\]")


@dataclass(frozen=True, slots=True)
class Case:
    """One test and its outcome. ``message`` is the failure (or skip reason), empty if passed."""

    name: str
    classname: str
    area: str
    status: Status
    seconds: float
    message: str = ""

    @property
    def conformance(self) -> bool:
        """Whether this is one of the upstream ``[Conformance]`` tests."""
        return CONFORMANCE_TAG in self.name


def area_of(name: str, classname: str = "", declared: str = "") -> str:
    """The SIG area of a test: a declared ``area`` property, else the ``[sig-xxx]`` tag of its name,
    else a known area among the parts of its module path, else ``suite`` or ``other``."""
    if area := _known_area(declared):
        return area
    if found := _SIG.search(name):
        return found.group(1)
    for part in re.split(r"[./:]+", classname):
        if area := _known_area(part):
            return area
    if name.startswith(SUITE_NODES):
        return SUITE_AREA
    return OTHER_AREA


def _known_area(text: str) -> str:
    norm = text.strip().lower().replace("_", "-").removeprefix("sig-")
    norm = norm.removeprefix("test-").removesuffix("-test")
    return norm if norm in AREAS else ""


@dataclass(frozen=True, slots=True)
class Tally:
    """Passed, failed and skipped counts of a set of cases."""

    passed: int = 0
    failed: int = 0
    skipped: int = 0

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.skipped

    @property
    def ran(self) -> int:
        return self.passed + self.failed

    def add(self, status: Status) -> Tally:
        return Tally(
            passed=self.passed + (status == "passed"),
            failed=self.failed + (status == "failed"),
            skipped=self.skipped + (status == "skipped"),
        )


def tally(cases: Iterable[Case]) -> Tally:
    total = Tally()
    for case in cases:
        total = total.add(case.status)
    return total


def tally_by_area(cases: Iterable[Case], *, every_area: bool = True) -> dict[str, Tally]:
    """Counts per area: the upstream areas in their order (all of them with ``every_area``), then others."""
    found: dict[str, Tally] = {}
    for case in cases:
        found[case.area] = found.get(case.area, Tally()).add(case.status)
    ordered = {area: found.get(area, Tally()) for area in AREAS if every_area or area in found}
    ordered.update({area: found[area] for area in sorted(found) if area not in AREAS})
    return ordered


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterInfo:
    """What the cluster under test says about itself (any part may be unknown)."""

    server_version: Mapping[str, str] | None = None  # GET /version
    kubectl_version: str | None = None  # the client's gitVersion
    server_groups: Mapping[str, object] | None = None  # an APIGroupList, the core group first
    nodes: Mapping[str, bool] = field(default_factory=dict)  # node name -> Ready

    @property
    def server_git_version(self) -> str | None:
        return self.server_version.get("gitVersion") if self.server_version else None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunMeta:
    """The harness's facts about one run; ``binary=None`` means k3py ran from source."""

    run_id: str
    started: datetime
    finished: datetime
    k3py_version: str
    commit: str
    binary: Path | None = None
    binary_sha256: str | None = None
    cluster: ClusterInfo = field(default_factory=ClusterInfo)
    datastore: str = "sqlite"
    focus: str = ""
    skip: str = ""
    commands: Sequence[Sequence[str]] = ()
    interrupted: bool = False
    kubernetes_version: str = KUBERNETES_VERSION
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def seconds(self) -> float:
        return max(0.0, (self.finished - self.started).total_seconds())


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class ResultFiles:
    """The files of one run, all inside its run directory."""

    junit: Path
    e2e_log: Path
    tarball: Path
    product: Path
    summary: Path


@dataclass(frozen=True, slots=True, kw_only=True)
class Results:
    """A written run: its cases, facts and files."""

    run_dir: Path
    suite: str
    cases: tuple[Case, ...]
    meta: RunMeta
    files: ResultFiles
    e2e_version: str | None = None  # what e2e.test said it was, from e2e.log

    @property
    def counts(self) -> Tally:
        return tally(self.cases)

    @property
    def failures(self) -> list[Case]:
        return [case for case in self.cases if case.status == "failed"]

    def by_area(self, *, every_area: bool = True) -> dict[str, Tally]:
        return tally_by_area(self.cases, every_area=every_area)
